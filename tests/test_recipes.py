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
