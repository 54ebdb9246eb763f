"""TF-Slim checkpoint loading: parity with TF-Slim's own ResNet, and the loader's errors."""

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import ops as tf_ops
from tf_slim import layers as slim_layers
from tf_slim.nets import resnet_utils
from tf_slim.nets import resnet_v1 as slim_resnet_v1
from tf_slim.ops.arg_scope import arg_scope
from tf_slim.ops.arg_scope import arg_scope_func_key

from network import checkpoints
from network import resnet_v1

# An odd size: Slim's conv2d_same padding and the ceil output sizes both matter.
PARITY_INPUT_SHAPE = (1, 65, 65, 3)
PARITY_STRIDES = (8, 16)


def _random_slim_value(name, shape, rng):
  """A random but well-scaled value for a TF-Slim ResNet variable."""
  if name.endswith('/weights'):
    fan_in = np.prod(shape[:-1])
    return rng.normal(0.0, np.sqrt(1.0 / fan_in), shape)
  if name.endswith('/moving_variance'):
    return rng.uniform(0.5, 2.0, shape)
  if name.endswith('/gamma'):
    return rng.uniform(0.5, 1.5, shape)
  if name.endswith('/moving_mean') or name.endswith('/beta'):
    return rng.normal(0.0, 0.2, shape)
  raise ValueError('Unexpected TF-Slim ResNet variable %s.' % name)


@pytest.fixture(scope='module')
def slim_resnet_v1_101(tmp_path_factory):
  """A random-weight TF-Slim resnet_v1_101 checkpoint and TF-Slim's features for it.

  TF-Slim builds in a private tf.Graph so that eager execution stays on for
  the rest of the test process.

  Returns:
    (checkpoint prefix, images [1, 65, 65, 3], {output_stride: features}).
  """
  slim_scope = resnet_utils.resnet_arg_scope()
  # With updates_collections=UPDATE_OPS, slim's batch_norm wraps the Keras 2
  # BatchNormalization layer, which needs the tf_keras package (absent under
  # Keras 3). With None it runs slim's own fused_batch_norm, which computes
  # the same inference output and creates the same variables.
  batch_norm_params = dict(
    slim_scope[arg_scope_func_key(slim_layers.conv2d)]['normalizer_params'],
    updates_collections=None,
  )

  rng = np.random.default_rng(0)
  images = rng.normal(0.0, 50.0, PARITY_INPUT_SHAPE).astype(np.float32)
  checkpoint_prefix = str(
    tmp_path_factory.mktemp('slim') / 'resnet_v1_101.ckpt'
  )
  with tf.Graph().as_default() as graph, pytest.MonkeyPatch.context() as patch:
    # tf_slim 1.1.0's smart_cond still checks isinstance(x, ops.Tensor),
    # an alias TF 2.21 removed.
    patch.setattr(tf_ops, 'Tensor', tf.Tensor, raising=False)
    outputs = {}
    with (
      arg_scope(slim_scope),
      arg_scope([slim_layers.conv2d], normalizer_params=batch_norm_params),
    ):
      for index, output_stride in enumerate(PARITY_STRIDES):
        outputs[output_stride], _ = slim_resnet_v1.resnet_v1_101(
          tf.constant(images),
          num_classes=None,
          is_training=False,
          global_pool=False,
          output_stride=output_stride,
          reuse=index > 0,
        )
    variables = tf.compat.v1.global_variables()
    values = {
      tf.compat.v1.placeholder(tf.float32, variable.shape): variable
      for variable in variables
    }
    assign_all = tf.group(
      [variable.assign(value) for value, variable in values.items()]
    )
    with tf.compat.v1.Session(graph=graph) as session:
      session.run(
        assign_all,
        feed_dict={
          value: _random_slim_value(
            variable.op.name, variable.shape.as_list(), rng
          )
          for value, variable in values.items()
        },
      )
      tf.compat.v1.train.Saver(variables).save(session, checkpoint_prefix)
      features = session.run(outputs)
  return checkpoint_prefix, images, features


@pytest.mark.parametrize('output_stride', PARITY_STRIDES)
def test_features_match_tf_slim(slim_resnet_v1_101, output_stride):
  checkpoint_prefix, images, slim_features = slim_resnet_v1_101
  backbone = resnet_v1.resnet_v1_101(output_stride=output_stride)
  restored = checkpoints.load_slim_resnet(backbone, checkpoint_prefix)
  assert len(restored) == len(backbone.weights) == 104 * 5

  features = backbone(images, training=False).numpy()
  expected = slim_features[output_stride]
  assert (
    features.shape
    == expected.shape
    == (1, -(-65 // output_stride), -(-65 // output_stride), 2048)
  )
  scale = np.abs(expected).max()
  assert scale > 0
  np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4 * scale)


def _write_checkpoint(prefix, tensors):
  """Writes a name-based (TF-Slim style) checkpoint of {name: array}."""
  names = sorted(tensors)
  tf.raw_ops.SaveV2(
    prefix=prefix,
    tensor_names=names,
    shape_and_slices=[''] * len(names),
    tensors=[tf.constant(tensors[name]) for name in names],
  )


def _mini_weights(backbone):
  return {
    name: variable.numpy()
    for name, variable in resnet_v1.slim_variable_map(backbone).items()
  }


def test_save_and_load_round_trip_ignores_extra_names(tmp_path):
  source = resnet_v1.resnet_v1_mini()
  weights = _mini_weights(source)
  weights['resnet_v1_mini/logits/weights'] = np.zeros(
    (1, 1, 256, 1000), np.float32
  )
  weights['global_step'] = np.array(7, np.int64)
  prefix = str(tmp_path / 'with_extras.ckpt')
  _write_checkpoint(prefix, weights)

  target = resnet_v1.resnet_v1_mini()
  restored = checkpoints.load_slim_resnet(target, prefix)
  assert restored == sorted(resnet_v1.slim_variable_map(target))
  for name, value in _mini_weights(target).items():
    np.testing.assert_array_equal(value, weights[name])

  saved_prefix = str(tmp_path / 'saved' / 'mini.ckpt')
  assert checkpoints.save_slim_resnet(target, saved_prefix) == restored
  assert sorted(os.listdir(tmp_path / 'saved')) == [
    'mini.ckpt.data-00000-of-00001',
    'mini.ckpt.index',
  ]
  reader = tf.train.load_checkpoint(saved_prefix)
  np.testing.assert_array_equal(
    reader.get_tensor('resnet_v1_mini/conv1/weights'),
    weights['resnet_v1_mini/conv1/weights'],
  )


def test_missing_weights_are_listed_and_nothing_is_assigned(tmp_path):
  backbone = resnet_v1.resnet_v1_mini()
  weights = _mini_weights(backbone)
  missing = [
    'resnet_v1_mini/block3/unit_2/bottleneck_v1/conv2/BatchNorm/moving_variance',
    'resnet_v1_mini/conv1/weights',
  ]
  prefix = str(tmp_path / 'incomplete.ckpt')
  _write_checkpoint(
    prefix,
    {
      name: value + 1.0
      for name, value in weights.items()
      if name not in missing
    },
  )

  with pytest.raises(ValueError, match='2 backbone weights missing') as error:
    checkpoints.load_slim_resnet(backbone, prefix)
  for name in missing:
    assert name in str(error.value)
  for name, value in _mini_weights(backbone).items():
    np.testing.assert_array_equal(value, weights[name])


def test_shape_mismatch_is_listed(tmp_path):
  backbone = resnet_v1.resnet_v1_mini()
  weights = _mini_weights(backbone)
  weights['resnet_v1_mini/block4/unit_1/bottleneck_v1/conv3/weights'] = (
    np.zeros((1, 1, 64, 128), np.float32)
  )
  prefix = str(tmp_path / 'wrong_shape.ckpt')
  _write_checkpoint(prefix, weights)

  with pytest.raises(
    ValueError, match='1 backbone weights with a different shape'
  ) as error:
    checkpoints.load_slim_resnet(backbone, prefix)
  assert (
    'resnet_v1_mini/block4/unit_1/bottleneck_v1/conv3/weights: '
    'checkpoint [1, 1, 64, 128] vs model [1, 1, 64, 256]'
  ) in str(error.value)
  assert '\n' not in str(error.value)


def test_wrong_root_scope_reports_missing_weights(tmp_path):
  backbone = resnet_v1.resnet_v1_mini()
  prefix = str(tmp_path / 'mini.ckpt')
  checkpoints.save_slim_resnet(backbone, prefix)
  with pytest.raises(ValueError, match='resnet_v1_101/conv1/weights'):
    checkpoints.load_slim_resnet(
      backbone, prefix, slim_root_scope='resnet_v1_101'
    )
  assert (
    len(
      checkpoints.load_slim_resnet(
        backbone, prefix, slim_root_scope='resnet_v1_mini'
      )
    )
    > 0
  )


def test_unreadable_checkpoint_names_the_path(tmp_path):
  path = str(tmp_path / 'does_not_exist.ckpt')
  with pytest.raises(ValueError, match='does_not_exist.ckpt'):
    checkpoints.load_slim_resnet(resnet_v1.resnet_v1_mini(), path)
