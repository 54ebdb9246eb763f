"""Tests of setup.py: what a wheel installs, and the exclusive TensorFlow
extras."""

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _setup_keywords():
  """The keyword arguments of setup() in setup.py, as literals."""
  with open(os.path.join(REPOSITORY, 'setup.py')) as stream:
    tree = ast.parse(stream.read())
  call = next(
    node
    for node in ast.walk(tree)
    if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'setup'
  )
  return {keyword.arg: keyword.value for keyword in call.keywords}


def test_tensorflow_comes_from_exactly_one_extra():
  keywords = _setup_keywords()
  install_requires = ast.literal_eval(keywords['install_requires'])
  extras = ast.literal_eval(keywords['extras_require'])
  assert not [
    requirement
    for requirement in install_requires
    if requirement.startswith('tensorflow')
  ]
  assert 'tensorboard' in install_requires
  assert 'opencv-contrib-python-headless' in install_requires
  assert all(
    requirement.split('>')[0] in ('tensorflow-cpu', 'tensorflow')
    for requirement in extras['cpu']
  )
  assert extras['gpu'] == ['tensorflow[and-cuda]>=2.16']


@pytest.mark.skipif(
  importlib.util.find_spec('setuptools') is None,
  reason='building without isolation needs setuptools',
)
def test_a_wheel_holds_only_network_and_segsort(tmp_path):
  source = tmp_path / 'source'
  source.mkdir()
  for name in ('setup.py', 'LICENSE', 'README.md'):
    shutil.copy(os.path.join(REPOSITORY, name), source / name)
  for name in ('network', 'segsort', 'tools', 'benchmarks'):
    shutil.copytree(
      os.path.join(REPOSITORY, name),
      source / name,
      ignore=shutil.ignore_patterns('__pycache__'),
    )
  subprocess.run(
    [
      sys.executable,
      '-m',
      'pip',
      'wheel',
      '--no-deps',
      '--no-build-isolation',
      '--quiet',
      '-w',
      str(tmp_path / 'wheel'),
      str(source),
    ],
    check=True,
    capture_output=True,
    timeout=300,
  )
  wheels = os.listdir(tmp_path / 'wheel')
  assert len(wheels) == 1
  with zipfile.ZipFile(tmp_path / 'wheel' / wheels[0]) as wheel:
    top_level = {name.split('/')[0] for name in wheel.namelist()}
    entry_points = wheel.read(
      next(
        name for name in wheel.namelist() if name.endswith('entry_points.txt')
      )
    ).decode()
  assert top_level == {'network', 'segsort', 'segsort_tf2-0.1.0.dist-info'}
  assert 'segsort-train = segsort.train_segsort:main' in entry_points
