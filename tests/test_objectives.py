"""The objective of every training mode (segsort.objectives)."""

import numpy as np
import pytest
import tensorflow as tf

from network import builder
from network.segsort import train_utils
from segsort import config as config_lib
from segsort import inference
from segsort import objectives


def test_every_mode_has_one_objective():
  assert set(objectives.OBJECTIVES) == set(config_lib.MODES)
  for mode in config_lib.MODES:
    config = config_lib.TrainConfig(
      mode=mode, num_banks=0 if mode == 'segsort_unsup' else 2
    )
    assert objectives.for_config(config).mode == mode


def test_inference_kinds_pick_the_modes_inference_accepts():
  assert inference.SEGSORT_MODES == ('segsort', 'segsort_unsup')
  assert inference.SOFTMAX_MODES == ('softmax',)


def test_supervised_segsort_banks_one_step_of_prototypes():
  objective = objectives.for_config(
    config_lib.TrainConfig(
      num_clusters=(2, 3), batch_size=4, num_banks=2, embedding_dim=8
    )
  )
  state = objective.build_state()
  assert state == {'memory_bank': objective.memory_bank}
  # At most one prototype per cluster of every image of a global batch.
  assert objective.memory_bank.prototypes.shape == (2, 2 * 3 * 4, 8)
  assert (
    objectives.for_config(config_lib.TrainConfig(num_banks=0)).build_state()
    == {}
  )


@pytest.mark.parametrize(
  'mode, inputs, oversegmentation',
  [
    ('segsort', None, False),
    ('segsort_unsup', ('image', 'oversegmentation'), True),
    ('softmax', ('image', 'label'), False),
  ],
)
def test_what_each_objective_reads(mode, inputs, oversegmentation):
  objective = objectives.OBJECTIVES[mode]
  assert objective.inputs == inputs
  assert objective.needs_oversegmentation == oversegmentation
  assert objective.loss_name == mode + '_loss'


def test_pictures_show_predictions_or_the_embedding_s_segments():
  batch = {
    'image': tf.zeros([2, 32, 32, 3]),
    'label': tf.zeros([2, 32, 32, 1], tf.int32),
    'loc_feature': tf.zeros([2, 32, 32, 2]),
  }
  for mode, expected in (
    ('softmax', 'prediction'),
    ('segsort', 'kmeans_segments'),
  ):
    config = config_lib.TrainConfig(
      mode=mode,
      backbone='mini',
      head='deeplab',
      embedding_dim=8,
      num_classes=3,
      num_clusters=(2, 2),
    )
    network = builder.build_network_from_config(config)
    pictures = objectives.for_config(config).pictures(network, batch)
    assert expected in pictures and 'input' in pictures
    assert all(
      np.asarray(picture).shape == (2, 32, 32, 3)
      for picture in pictures.values()
    )


def test_softmax_loss_is_the_mean_over_valid_pixels():
  logits = tf.random.stateless_normal([2, 3, 4, 5], seed=[1, 2])
  labels = tf.constant([[0, 1, 255, 4], [2, 255, 3, 0], [1, 1, 1, 1]] * 2)
  labels = tf.reshape(labels, [2, 3, 4, 1])
  valid = tf.reshape(labels, [-1]) != 255
  expected = train_utils.mean_over_pixels(
    tf.boolean_mask(
      tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.where(valid, tf.reshape(labels, [-1]), 0),
        logits=tf.reshape(logits, [-1, 5]),
      ),
      valid,
    )
  )
  np.testing.assert_allclose(
    objectives.softmax_loss(logits, labels, 255), expected, rtol=1e-6
  )
  assert (
    float(objectives.softmax_loss(logits, tf.fill([2, 3, 4, 1], 255), 255))
    == 0.0
  )
