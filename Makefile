# `make test` and `make demo` are the two commands a newcomer needs.
PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint format demo venv clean-venv

# TensorFlow comes from the `cpu` extra (see setup.py: `gpu` instead for
# CUDA, never both); constraints.txt pins the versions the suite runs with.
$(STAMP): setup.py constraints.txt
	test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --upgrade pip
	$(VENV_PY) -m pip install --quiet -c constraints.txt -e '.[cpu,test]'
	touch $(STAMP)

venv: $(STAMP)

# The one code style (ruff.toml): `make format` applies it, `make lint`
# checks it, and `make test` lints before testing.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .

test: lint
	$(VENV_PY) -m pytest -q -n 2 tests

demo: $(STAMP)
	bash bashscripts/demo/run_demo.sh

clean-venv:
	rm -rf $(VENV)
