"""Session fixtures for the inference tests: a generated data set and checkpoints.

The SegSort checkpoint is a mini model trained for a few steps by the
trainer, so that its embedding carries some signal; the softmax and
unsupervised checkpoints are untrained (inference only needs their format),
written as the trainer writes them: a tf.train.Checkpoint of the model in a
CheckpointManager directory with config.json beside it.
"""

import dataclasses
import os

import pytest
import tensorflow as tf

from network import builder
from segsort import config as config_lib
from segsort import trainer
from tools import make_synthetic_voc

NUM_CLASSES = 4
EMBEDDING_DIM = 8
# Small images, one window each: fast on 2 CPU cores.
IMAGE_SIZE = (64, 80)
WINDOW_FLAGS = ['--input_size', '64,80', '--strides', '64,80']


@dataclasses.dataclass
class SyntheticSet:
  data_dir: str
  train_list: str
  val_list: str


@pytest.fixture(scope='session')
def synthetic_set(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp('voc'))
  lists = make_synthetic_voc.make_synthetic_voc(
    data_dir,
    num_train=4,
    num_val=2,
    size=IMAGE_SIZE,
    num_classes=NUM_CLASSES,
    seed=0,
    with_oversegmentation=False,
  )
  return SyntheticSet(data_dir, lists['train'], lists['val'])


@pytest.fixture(scope='session')
def segsort_checkpoint_dir(synthetic_set, tmp_path_factory):
  """A mini SegSort model trained for 3 steps by the trainer."""
  snapshot_dir = str(tmp_path_factory.mktemp('segsort_run'))
  config = config_lib.TrainConfig(
    mode='segsort',
    backbone='mini',
    data_dir=synthetic_set.data_dir,
    data_list=synthetic_set.train_list,
    batch_size=2,
    input_size=(64, 64),
    num_steps=3,
    save_pred_every=3,
    learning_rate=1e-3,
    embedding_dim=EMBEDDING_DIM,
    num_classes=NUM_CLASSES,
    snapshot_dir=snapshot_dir,
  )
  trainer.Trainer(config).train()
  return snapshot_dir


def write_untrained_checkpoint(snapshot_dir, **config_fields):
  """Writes an untrained mini model's checkpoint and config.json.

  Returns:
    The checkpoint prefix.
  """
  config = config_lib.TrainConfig(
    backbone='mini',
    num_classes=NUM_CLASSES,
    embedding_dim=EMBEDDING_DIM,
    snapshot_dir=snapshot_dir,
    **config_fields,
  )
  network = builder.build_network_from_config(config)
  network(tf.zeros([1, 32, 32, 3]))
  manager = tf.train.CheckpointManager(
    tf.train.Checkpoint(model=network), snapshot_dir, max_to_keep=1
  )
  prefix = manager.save()
  config_lib.save_config(config, snapshot_dir)
  return prefix


@pytest.fixture(scope='session')
def softmax_checkpoint_dir(tmp_path_factory):
  snapshot_dir = str(tmp_path_factory.mktemp('softmax_run'))
  write_untrained_checkpoint(snapshot_dir, mode='softmax')
  return snapshot_dir


@pytest.fixture(scope='session')
def unsup_checkpoint_dir(tmp_path_factory):
  snapshot_dir = str(tmp_path_factory.mktemp('unsup_run'))
  write_untrained_checkpoint(snapshot_dir, mode='segsort_unsup', num_banks=0)
  return snapshot_dir


@pytest.fixture(scope='session')
def prototype_run(synthetic_set, segsort_checkpoint_dir, tmp_path_factory):
  """Extracts prototypes of the training list; returns the save_dir."""
  from segsort import extract_prototypes  # pylint: disable=g-import-not-at-top

  save_dir = str(tmp_path_factory.mktemp('prototypes_run'))
  extract_prototypes.main(
    [
      '--data_dir',
      synthetic_set.data_dir,
      '--data_list',
      synthetic_set.train_list,
      '--restore_from',
      segsort_checkpoint_dir,
      '--save_dir',
      save_dir,
      '--num_classes',
      str(NUM_CLASSES),
    ]
    + WINDOW_FLAGS
  )
  return save_dir


def prototype_dir(save_dir):
  return os.path.join(save_dir, 'prototypes')
