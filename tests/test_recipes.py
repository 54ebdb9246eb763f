"""The VOC12 and Cityscapes recipes fail early and clearly, and parse."""

import os
import shlex
import subprocess

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The interpreter the recipes run (bashscripts/voc12/common.sh).
DRY_RUN_PYTHON = (
  os.path.join(_ROOT, '.venv', 'bin', 'python')
  if os.access(os.path.join(_ROOT, '.venv', 'bin', 'python'), os.X_OK)
  else os.environ.get('PYTHON', 'python3')
)
_RECIPES = (
  'train_segsort.sh',
  'train_segsort_mgpu.sh',
  'train_segsort_unsup.sh',
  'train_softmax.sh',
)
_CITYSCAPES_RECIPES = ('train_segsort_mgpu.sh', 'train_softmax.sh')


def _run(command, dataroot):
  return subprocess.run(
    ['bash', '-c', command],
    cwd=_ROOT,
    capture_output=True,
    text=True,
    timeout=60,
    env=dict(os.environ, DATAROOT=str(dataroot)),
    check=False,
  )


@pytest.mark.parametrize('recipe', _RECIPES)
def test_recipe_refuses_missing_data(recipe, tmp_path):
  completed = _run('bash bashscripts/voc12/' + recipe, tmp_path / 'none')
  assert completed.returncode != 0
  assert 'VOC2012/JPEGImages does not exist' in completed.stderr


@pytest.mark.parametrize('recipe', _RECIPES)
def test_recipe_refuses_missing_imagenet_weights(recipe, tmp_path):
  (tmp_path / 'VOC2012' / 'JPEGImages').mkdir(parents=True)
  (tmp_path / 'VOC2012' / 'hed').mkdir(parents=True)
  completed = _run('bash bashscripts/voc12/' + recipe, tmp_path)
  assert completed.returncode != 0
  assert 'resnet_v1_101.ckpt.index does not exist' in completed.stderr
  assert 'resnet_v1_101_2016_08_28.tar.gz' in completed.stderr


@pytest.mark.parametrize(
  'recipe',
  ['voc12/' + name for name in _RECIPES]
  + ['cityscapes/' + name for name in _CITYSCAPES_RECIPES],
)
def test_recipe_refuses_a_step_switch_that_is_not_0_or_1(recipe, tmp_path):
  """`[ yes -eq 1 ]` is false with a bash warning: the step was skipped
  and the recipe went on."""
  completed = _run(
    'SEGSORT_DRY_RUN=1 IS_PROTOTYPE=true IS_TRAIN_1=yes IS_SANDBOX=x '
    'bash bashscripts/' + recipe,
    tmp_path,
  )
  assert completed.returncode != 0
  assert completed.stderr.splitlines() == [
    'error: IS_PROTOTYPE=true, IS_TRAIN_1=yes: a step switch is 0 (skip the '
    'step) or 1 (run it)'
  ]
  assert not completed.stdout


def test_sourced_recipe_returns_without_closing_the_shell(tmp_path):
  completed = _run(
    'source bashscripts/voc12/train_segsort.sh; echo "status $?"; echo alive',
    tmp_path / 'none',
  )
  assert completed.stdout.split() == ['status', '1', 'alive']


class _Parsed(Exception):
  """Raised once an entry point's flags parsed, before it does any work."""


def _write_cityscapes_layout(dataroot):
  """The folders and lists the Cityscapes recipes check, without images."""
  (dataroot / 'leftImg8bit').mkdir(parents=True, exist_ok=True)
  (dataroot / 'segcls').mkdir(exist_ok=True)
  (dataroot / 'train.txt').touch()
  (dataroot / 'val.txt').touch()


def _recipe_commands(recipe, tmp_path):
  """The dry-run commands of a recipe, `voc12/NAME` or `cityscapes/NAME`."""
  (tmp_path / 'VOC2012' / 'JPEGImages').mkdir(parents=True, exist_ok=True)
  (tmp_path / 'VOC2012' / 'hed').mkdir(parents=True, exist_ok=True)
  _write_cityscapes_layout(tmp_path)
  (tmp_path / 'weights.ckpt.index').touch()
  completed = subprocess.run(
    ['bash', 'bashscripts/' + recipe],
    cwd=_ROOT,
    capture_output=True,
    text=True,
    timeout=60,
    check=False,
    env=dict(
      os.environ,
      DATAROOT=str(tmp_path),
      SEGSORT_DRY_RUN='1',
      IMAGENET=str(tmp_path / 'weights.ckpt'),
    ),
  )
  assert completed.returncode == 0, completed.stderr
  lines = completed.stdout.splitlines()
  # How to run them as the recipe does comes first, as a comment.
  assert lines[0].startswith('# These commands stop at the first failure')
  commands = [shlex.split(line) for line in lines[1:]]
  # The commands name lists and snapshots from the repository root: the
  # first line goes there, so that they paste from any folder.
  assert commands[0] == ['cd', str(_ROOT)]
  assert all(command[0] == DRY_RUN_PYTHON for command in commands[1:])
  return [command[1:] for command in commands[1:]]


@pytest.mark.parametrize(
  'recipe',
  (
    ['voc12/' + recipe for recipe in _RECIPES]
    + ['cityscapes/' + recipe for recipe in _CITYSCAPES_RECIPES]
  ),
)
def test_recipe_commands_parse_with_the_entry_points(
  recipe, tmp_path, monkeypatch
):
  import argparse
  import importlib

  real_parse_args = argparse.ArgumentParser.parse_args

  def parse_then_stop(parser, args=None, namespace=None):
    real_parse_args(parser, args, namespace)
    raise _Parsed()

  monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', parse_then_stop)
  commands = _recipe_commands(recipe, tmp_path)
  modules = [command[1] for command in commands]
  assert any(module.startswith('segsort.train_') for module in modules)
  assert modules[-1] == 'segsort.benchmark_by_mIoU'
  for command in commands:
    assert command[0] == '-m'
    main = importlib.import_module(command[1]).main
    with pytest.raises(_Parsed):
      main(command[2:])


def test_single_gpu_stage_two_restores_the_backbone_only(tmp_path):
  commands = _recipe_commands('voc12/train_segsort.sh', tmp_path)
  training = [
    command for command in commands if command[1] == 'segsort.train_segsort'
  ]
  assert len(training) == 2
  assert '--not_restore_classifier' not in training[0]
  assert '--not_restore_classifier' in training[1]
  stage_one = training[1][training[1].index('--restore_from') + 1]
  assert stage_one.endswith('/stage1')


@pytest.mark.parametrize('recipe', _CITYSCAPES_RECIPES)
def test_cityscapes_recipe_refuses_missing_data(recipe, tmp_path):
  completed = _run('bash bashscripts/cityscapes/' + recipe, tmp_path / 'none')
  assert completed.returncode != 0
  assert 'none/leftImg8bit does not exist' in completed.stderr
  assert 'tools/cityscapes_to_segcls.py' in completed.stderr
  # Images without the converter's lists.
  (tmp_path / 'leftImg8bit').mkdir()
  completed = _run('bash bashscripts/cityscapes/' + recipe, tmp_path)
  assert 'train.txt does not exist' in completed.stderr


@pytest.mark.parametrize('recipe', _CITYSCAPES_RECIPES)
def test_cityscapes_recipe_refuses_missing_imagenet_weights(recipe, tmp_path):
  _write_cityscapes_layout(tmp_path)
  completed = _run('bash bashscripts/cityscapes/' + recipe, tmp_path)
  assert completed.returncode != 0
  assert 'resnet_v1_101.ckpt.index does not exist' in completed.stderr


def _flag(command, name):
  return command[command.index(name) + 1]


def test_cityscapes_segsort_recipe_has_the_authors_settings(tmp_path):
  commands = _recipe_commands('cityscapes/train_segsort_mgpu.sh', tmp_path)
  train, prototypes, infer, benchmark = commands
  for flag, value in (
    ('--batch_size', '8'),
    ('--input_size', '720,720'),
    ('--num_steps', '150000'),
    ('--learning_rate', '3e-3'),
    ('--weight_decay', '5e-4'),
    ('--num_gpu', '4'),
    ('--num_classes', '19'),
    ('--num_clusters', '8'),
    ('--kmeans_iterations', '15'),
  ):
    assert _flag(train, flag) == value, flag
  assert _flag(prototypes, '--num_clusters') == '16'
  assert _flag(prototypes, '--data_list') == str(tmp_path / 'train.txt')
  for flag, value in (
    ('--num_clusters', '8'),
    ('--kmeans_iterations', '15'),
    ('--input_size', '720,720'),
    ('--strides', '480,480'),
    ('--data_list', str(tmp_path / 'val.txt')),
  ):
    assert _flag(infer, flag) == value, flag
  assert _flag(benchmark, '--gt_dir') == str(tmp_path / 'segcls')
