"""Heads and build_network: shapes, variable split, compilation, mixed precision, errors."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from network import builder
from network import heads
from network import resnet_v1

HEADS = ('pspnet', 'deeplab', 'deeplabv3plus')


def _reference_adaptive_average_pool(array, bins):
  """NumPy adaptive average pooling of [B, H, W, C] into [B, bins, bins, C]."""
  height, width = array.shape[1:3]
  pooled = np.zeros((array.shape[0], bins, bins, array.shape[3]), np.float64)
  for i in range(bins):
    rows = slice(i * height // bins, math.ceil((i + 1) * height / bins))
    for j in range(bins):
      columns = slice(j * width // bins, math.ceil((j + 1) * width / bins))
      pooled[:, i, j] = array[:, rows, columns].mean(axis=(1, 2))
  return pooled


@pytest.mark.parametrize(
  'height, width', [(12, 12), (7, 5), (2, 3), (1, 1), (13, 40)]
)
@pytest.mark.parametrize('bins', (1, 2, 3, 6))
def test_adaptive_average_pooling_matches_reference(height, width, bins):
  array = np.random.default_rng(height * width + bins).normal(
    size=(2, height, width, 3)
  )
  pooled = heads.AdaptiveAveragePooling2D(bins)(array.astype(np.float32))
  np.testing.assert_allclose(
    pooled, _reference_adaptive_average_pool(array, bins), rtol=1e-5, atol=1e-5
  )


def test_adaptive_average_pooling_compiles_with_unknown_and_static_sizes():
  pooling = heads.AdaptiveAveragePooling2D(6)
  array = np.random.default_rng(0).normal(size=(1, 13, 9, 4)).astype(np.float32)
  expected = _reference_adaptive_average_pool(array, 6)
  dynamic = tf.function(
    pooling, input_signature=[tf.TensorSpec((None, None, None, 4))]
  )
  compiled = tf.function(pooling, jit_compile=True)
  np.testing.assert_allclose(dynamic(array), expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(compiled(array), expected, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope='module', params=HEADS)
def mini_network(request):
  return builder.build_network(
    'mini', request.param, output_stride=8, output_channels=5
  )


def _output_size(size, output_stride):
  return math.ceil(size / output_stride)


def test_output_shapes_eager_and_compiled(mini_network):
  stride = mini_network.output_stride
  assert stride == (4 if mini_network.name == 'mini_deeplabv3plus' else 8)
  dynamic = tf.function(
    mini_network, input_signature=[tf.TensorSpec((None, None, None, 3))]
  )
  for height, width in ((65, 33), (96, 96), (9, 50)):
    images = tf.random.stateless_normal(
      (2, height, width, 3), seed=(height, width)
    )
    outputs = mini_network(images, training=False)
    assert outputs.shape == (
      2,
      _output_size(height, stride),
      _output_size(width, stride),
      5,
    )
    assert outputs.dtype == tf.float32
    np.testing.assert_allclose(dynamic(images), outputs, rtol=1e-4, atol=1e-4)
  # 65 x 33 makes every resize in the heads a non-integer one.
  compiled = tf.function(mini_network, jit_compile=True)
  images = tf.random.stateless_normal((1, 65, 33, 3), seed=(1, 1))
  np.testing.assert_allclose(
    compiled(images), mini_network(images), rtol=1e-4, atol=1e-4
  )


@pytest.mark.parametrize(
  'input_size, output_size',
  [
    ((9, 5), (17, 9)),
    ((12, 12), (24, 24)),
    ((1, 1), (5, 4)),
    ((17, 9), (5, 4)),
  ],
)
def test_resize_bilinear_matches_tf_image_resize_when_compiled(
  input_size, output_size
):
  images = tf.random.stateless_normal((2,) + input_size + (3,), seed=input_size)
  expected = tf.image.resize(images, output_size)
  compiled = tf.function(heads.resize_bilinear, jit_compile=True)
  np.testing.assert_allclose(
    heads.resize_bilinear(images, output_size), expected, atol=1e-5
  )
  np.testing.assert_allclose(compiled(images, output_size), expected, atol=1e-5)


def test_variable_split_and_kernel_names(mini_network):
  backbone_ids = {id(v) for v in mini_network.backbone_variables}
  head_ids = {id(v) for v in mini_network.head_variables}
  assert backbone_ids and head_ids and not backbone_ids & head_ids
  assert backbone_ids | head_ids == {id(v) for v in mini_network.variables}
  assert len(mini_network.variables) == len(backbone_ids) + len(head_ids)
  assert backbone_ids == {
    id(v) for v in resnet_v1.slim_variable_map(mini_network.backbone).values()
  }
  assert head_ids == {id(v) for v in mini_network.head.weights}
  assert mini_network.head.name == 'block5'

  convolutions = [
    layer
    for model in (mini_network.backbone, mini_network.head)
    for layer in model.layers
    if isinstance(layer, keras.layers.Conv2D)
  ]
  kernels = {id(layer.kernel) for layer in convolutions}
  assert kernels == {
    id(v) for v in mini_network.variables if v.path.endswith('/kernel')
  }


def test_training_step_reaches_every_trainable_variable_and_keeps_statistics(
  mini_network,
):
  images = tf.random.stateless_normal((2, 40, 40, 3), seed=(3, 4))
  statistics = [
    v.numpy().copy() for v in mini_network.variables if 'moving_' in v.path
  ]
  with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(mini_network(images, training=True)))
  gradients = tape.gradient(loss, mini_network.trainable_variables)
  assert all(gradient is not None for gradient in gradients)
  # use_global_status=True (the default) freezes the head's BatchNorm too.
  for old, variable in zip(
    statistics, [v for v in mini_network.variables if 'moving_' in v.path]
  ):
    np.testing.assert_array_equal(old, variable.numpy())


def test_batch_norm_statistics_update_when_not_frozen():
  network = builder.build_network('mini', 'pspnet', use_global_status=False)
  head_means = [
    v for v in network.head_variables if v.path.endswith('moving_mean')
  ]
  before = [v.numpy().copy() for v in head_means]
  network(
    tf.random.stateless_normal((2, 40, 40, 3), seed=(5, 6)), training=True
  )
  assert all(
    not np.array_equal(old, v.numpy()) for old, v in zip(before, head_means)
  )


@pytest.mark.parametrize(
  'head, output_stride, rates',
  [
    ('deeplab', 8, (12, 24, 36)),
    ('deeplab', 16, (6, 12, 18)),
    ('deeplabv3plus', None, (3, 6, 9)),
  ],
)
def test_aspp_rates_follow_the_output_stride(head, output_stride, rates):
  network = builder.build_network('mini', head, output_stride=output_stride)
  assert (
    tuple(
      network.head.get_layer('aspp%d_conv' % index).dilation_rate[0]
      for index in (1, 2, 3)
    )
    == rates
  )
  images = np.zeros((1, 70, 45, 3), np.float32)
  expected_stride = 4 if head == 'deeplabv3plus' else output_stride
  assert network(images).shape == (
    1,
    _output_size(70, expected_stride),
    _output_size(45, expected_stride),
    32,
  )


@pytest.mark.parametrize('output_stride', (16, None))
def test_pspnet_at_other_strides(output_stride):
  network = builder.build_network(
    'mini', 'pspnet', output_stride=output_stride, output_channels=21
  )
  assert network.output_stride == (output_stride or 32)
  assert network(np.zeros((1, 97, 61, 3), np.float32)).shape == (
    1,
    _output_size(97, network.output_stride),
    _output_size(61, network.output_stride),
    21,
  )


def test_resnet_v1_101_pspnet_has_the_original_widths():
  network = builder.build_network(
    'resnet_v1_101', 'pspnet', output_stride=8, output_channels=32
  )
  assert network.backbone.name == 'resnet_v1_101'
  assert len(network.backbone_variables) == 104 * 5
  assert tuple(network.head.get_layer('pyramid_pool6_conv').kernel.shape) == (
    1,
    1,
    2048,
    512,
  )
  assert tuple(network.head.get_layer('fusion_conv').kernel.shape) == (
    3,
    3,
    2048 + 4 * 512,
    512,
  )
  assert tuple(network.head.get_layer('output').kernel.shape) == (1, 1, 512, 32)
  assert network(np.zeros((1, 41, 30, 3), np.float32)).shape == (1, 6, 4, 32)


@pytest.mark.parametrize('head', ('pspnet', 'deeplabv3plus'))
def test_mixed_precision(head):
  previous_policy = keras.mixed_precision.global_policy()
  try:
    keras.mixed_precision.set_global_policy('mixed_float16')
    network = builder.build_network('mini', head)
    images = tf.random.stateless_normal((2, 33, 47, 3), seed=(7, 8))
    with tf.GradientTape() as tape:
      outputs = network(images, training=True)
      loss = tf.reduce_mean(tf.square(outputs))
    gradients = tape.gradient(loss, network.trainable_variables)
    compiled = tf.function(network, jit_compile=True)(images)
  finally:
    keras.mixed_precision.set_global_policy(previous_policy)
  assert outputs.dtype == compiled.dtype == tf.float32
  assert all(variable.dtype == tf.float32 for variable in network.variables)
  assert all(gradient is not None for gradient in gradients)
  assert np.all(np.isfinite(outputs.numpy()))
  assert network.backbone.get_layer('conv1').compute_dtype == 'float16'


def test_unknown_names_list_the_valid_ones():
  with pytest.raises(
    ValueError, match="'mini', 'resnet_v1_101', 'resnet_v1_50'"
  ):
    builder.build_network('resnet_v1_18', 'pspnet')
  with pytest.raises(ValueError, match="'pspnet', 'deeplab', 'deeplabv3plus'"):
    builder.build_network('mini', 'fcn')
