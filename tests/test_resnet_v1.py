"""ResNet v1 backbones: output sizes, TF-Slim layout and names, frozen BatchNorm."""

import math

import numpy as np
import pytest
import tensorflow as tf

from network import resnet_v1

# (height, width) pairs: odd, even, tiny and non-square.
INPUT_SIZES = ((96, 96), (65, 33), (7, 9), (1, 1), (50, 81))


def _expected_size(size, output_stride):
  return math.ceil(size / (output_stride or 32))


@pytest.mark.parametrize('output_stride', (8, 16, None))
def test_mini_output_sizes(output_stride):
  backbone = resnet_v1.resnet_v1_mini(output_stride=output_stride)
  for height, width in INPUT_SIZES:
    features = backbone(np.zeros((2, height, width, 3), np.float32))
    assert features.shape == (
      2,
      _expected_size(height, output_stride),
      _expected_size(width, output_stride),
      256,
    )
    assert features.dtype == tf.float32


def test_resnet_v1_50_layout_names_and_sizes():
  backbone = resnet_v1.resnet_v1_50(output_stride=16)
  assert backbone.name == 'resnet_v1_50'
  features = backbone(np.zeros((1, 33, 50, 3), np.float32))
  assert features.shape == (1, 3, 4, 2048)

  variables = resnet_v1.slim_variable_map(backbone)
  # 53 convolutions (1 root, 16 units x 3, 4 shortcuts), each with 4 BatchNorm variables.
  assert len(variables) == 53 * 5 == len(backbone.weights)
  expected_shapes = {
    'resnet_v1_50/conv1/weights': (7, 7, 3, 64),
    'resnet_v1_50/conv1/BatchNorm/moving_variance': (64,),
    'resnet_v1_50/block1/unit_1/bottleneck_v1/shortcut/weights': (
      1,
      1,
      64,
      256,
    ),
    'resnet_v1_50/block1/unit_1/bottleneck_v1/shortcut/BatchNorm/beta': (256,),
    'resnet_v1_50/block3/unit_5/bottleneck_v1/conv2/BatchNorm/moving_variance': (
      256,
    ),
    'resnet_v1_50/block4/unit_3/bottleneck_v1/conv3/weights': (1, 1, 512, 2048),
  }
  for name, shape in expected_shapes.items():
    assert tuple(variables[name].shape) == shape, name
  # Only a block's first unit changes the depth, so only it has a shortcut convolution.
  shortcuts = sorted(
    name for name in variables if name.endswith('shortcut/weights')
  )
  assert shortcuts == [
    'resnet_v1_50/block%d/unit_1/bottleneck_v1/shortcut/weights' % block
    for block in range(1, 5)
  ]
  for layer in backbone.layers:
    if isinstance(layer, resnet_v1.BatchNorm):
      assert layer.epsilon == 1e-5 and layer.momentum == 0.997 and layer.scale


def _conv(backbone, slim_scope):
  return backbone.get_layer(resnet_v1.keras_layer_name(slim_scope))


@pytest.mark.parametrize(
  'output_stride, strides, rates',
  [
    # Per block: the stride of its last unit's conv2 and the rate of its last unit's conv2.
    (8, (2, 1, 1, 1), (1, 1, 2, 4)),
    (16, (2, 2, 1, 1), (1, 1, 1, 2)),
    (None, (2, 2, 2, 1), (1, 1, 1, 1)),
  ],
)
def test_strides_become_atrous_rates_beyond_the_output_stride(
  output_stride, strides, rates
):
  backbone = resnet_v1.resnet_v1_mini(output_stride=output_stride)
  for block, stride, rate in zip(range(1, 5), strides, rates):
    last_unit = 1 if block == 4 else 2
    conv2 = _conv(
      backbone, 'block%d/unit_%d/bottleneck_v1/conv2' % (block, last_unit)
    )
    assert conv2.strides == (stride, stride)
    assert conv2.dilation_rate == (rate, rate)
    if last_unit > 1:
      # TF-Slim v1 puts a block's stride in its last unit, never its first.
      assert _conv(
        backbone, 'block%d/unit_1/bottleneck_v1/conv2' % block
      ).strides == (1, 1)


def test_multi_grid_multiplies_block4_rates():
  backbone = resnet_v1.resnet_v1_50(output_stride=16, multi_grid=(1, 2, 4))
  rates = [
    _conv(backbone, 'block4/unit_%d/bottleneck_v1/conv2' % unit).dilation_rate[
      0
    ]
    for unit in (1, 2, 3)
  ]
  assert rates == [2, 4, 8]
  with pytest.raises(ValueError, match='one rate per unit of block4'):
    resnet_v1.resnet_v1_mini(multi_grid=(1, 2))


@pytest.mark.parametrize('output_stride', (2, 12, 64))
def test_unreachable_output_stride_raises(output_stride):
  with pytest.raises(ValueError, match='cannot be reached'):
    resnet_v1.resnet_v1_mini(output_stride=output_stride)


def test_mini_is_small():
  assert resnet_v1.resnet_v1_mini().count_params() < 500_000


def _moving_statistics(model):
  return [
    variable.numpy().copy()
    for variable in model.weights
    if 'moving_' in variable.path
  ]


@pytest.mark.parametrize('use_global_status', (True, False))
def test_frozen_batch_norm_keeps_moving_statistics(use_global_status):
  backbone = resnet_v1.resnet_v1_mini(use_global_status=use_global_status)
  images = tf.random.stateless_normal((2, 33, 33, 3), seed=(1, 2)) * 50.0
  before = _moving_statistics(backbone)
  with tf.GradientTape() as tape:
    features = backbone(images, training=True)
    loss = tf.reduce_mean(tf.square(features))
  after = _moving_statistics(backbone)
  changed = [not np.array_equal(old, new) for old, new in zip(before, after)]
  assert not any(changed) if use_global_status else all(changed)

  gammas = [
    variable
    for variable in backbone.trainable_variables
    if variable.path.endswith('gamma')
  ]
  gradients = tape.gradient(loss, gammas)
  assert all(gradient is not None for gradient in gradients)
  if use_global_status:
    # Frozen statistics: the training call equals the inference call.
    np.testing.assert_allclose(
      features, backbone(images, training=False), rtol=1e-5, atol=1e-5
    )


def test_stride4_features():
  backbone = resnet_v1.resnet_v1_mini(output_stride=16)
  assert (
    resnet_v1.stride4_feature_name(backbone) == 'block1.unit_1.bottleneck_v1'
  )
  extractor = resnet_v1.with_stride4_features(backbone)
  outputs = extractor(np.zeros((1, 61, 30, 3), np.float32))
  assert outputs['features'].shape == (1, 4, 2, 256)
  assert outputs['stride4_features'].shape == (1, 16, 8, 64)
  # The extractor shares the backbone's layers rather than copying them.
  assert {id(v) for v in extractor.weights} == {id(v) for v in backbone.weights}
