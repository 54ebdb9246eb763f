# `make test` and `make demo` are the two commands a newcomer needs.
PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo venv clean-venv

# TensorFlow comes from the `cpu` extra (see setup.py: `gpu` instead for
# CUDA, never both); constraints.txt pins the versions the suite runs with.
$(STAMP): setup.py constraints.txt
	test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --upgrade pip
	$(VENV_PY) -m pip install --quiet -c constraints.txt -e '.[cpu,test]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(VENV_PY) -m pytest -q -n 2 tests

demo: $(STAMP)
	bash bashscripts/demo/run_demo.sh

clean-venv:
	rm -rf $(VENV)
