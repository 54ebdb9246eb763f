"""The VOC12 recipes fail early and clearly, with bash and with source."""

import os
import subprocess

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RECIPES = ('train_segsort.sh', 'train_segsort_mgpu.sh',
            'train_segsort_unsup.sh', 'train_softmax.sh')


def _run(command, dataroot):
  return subprocess.run(['bash', '-c', command], cwd=_ROOT,
                        capture_output=True, text=True, timeout=60,
                        env=dict(os.environ, DATAROOT=str(dataroot)),
                        check=False)


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


def test_sourced_recipe_returns_without_closing_the_shell(tmp_path):
  completed = _run('source bashscripts/voc12/train_segsort.sh; '
                   'echo "status $?"; echo alive', tmp_path / 'none')
  assert completed.stdout.split() == ['status', '1', 'alive']


class _Parsed(Exception):
  """Raised once an entry point's flags parsed, before it does any work."""


def _recipe_commands(recipe, tmp_path):
  (tmp_path / 'VOC2012' / 'JPEGImages').mkdir(parents=True, exist_ok=True)
  (tmp_path / 'VOC2012' / 'hed').mkdir(parents=True, exist_ok=True)
  (tmp_path / 'weights.ckpt.index').touch()
  completed = subprocess.run(
      ['bash', 'bashscripts/voc12/' + recipe], cwd=_ROOT, capture_output=True,
      text=True, timeout=60, check=False,
      env=dict(os.environ, DATAROOT=str(tmp_path), SEGSORT_DRY_RUN='1',
               IMAGENET=str(tmp_path / 'weights.ckpt')))
  assert completed.returncode == 0, completed.stderr
  return [line.split() for line in completed.stdout.splitlines()]


@pytest.mark.parametrize('recipe', _RECIPES)
def test_recipe_commands_parse_with_the_entry_points(recipe, tmp_path,
                                                     monkeypatch):
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
  commands = _recipe_commands('train_segsort.sh', tmp_path)
  training = [command for command in commands
              if command[1] == 'segsort.train_segsort']
  assert len(training) == 2
  assert '--not_restore_classifier' not in training[0]
  assert '--not_restore_classifier' in training[1]
  stage_one = training[1][training[1].index('--restore_from') + 1]
  assert stage_one.endswith('/stage1')
