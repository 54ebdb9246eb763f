"""Segmentation heads (the original's "block5"): PSPNet pyramid pooling, DeepLabv3 ASPP, DeepLabv3+.

Each head is a functional keras.Model that maps backbone features to an
un-normalised output of `output_channels` channels (the embedding for
SegSort, class logits for the softmax baseline). Every head ends in a 1x1
convolution with a bias that computes in float32, so the output is float32
under a mixed-precision policy too. All heads accept any spatial size, known
or unknown, and run under tf.function(jit_compile=True).

Convolution kernels are Keras `kernel` variables (the final convolution also
has a `bias`); BatchNorm layers are resnet_v1.BatchNorm and can be frozen.
"""

import keras
import tensorflow as tf

from network.resnet_v1 import BatchNorm

PSPNET_BINS = (1, 2, 3, 6)
# ASPP rates at output stride 16 (DeepLabv3); they scale with 16 / output_stride.
ASPP_RATES_AT_STRIDE_16 = (6, 12, 18)


def _adaptive_pooling_matrix(input_size, bins, dtype):
  """Averaging weights of adaptive average pooling along one axis.

  Bin i covers [floor(i * n / bins), ceil((i + 1) * n / bins)), so bins
  overlap when n is not a multiple of `bins` and every bin is non-empty even
  when n < bins.

  Args:
    input_size: Scalar int32 tensor n, the length of the axis.
    bins: Number of output bins.
    dtype: dtype of the weights.

  Returns:
    [bins, n] tensor whose row i averages the positions of bin i.
  """
  bin_index = tf.range(bins, dtype=tf.int32)[:, tf.newaxis]
  starts = (bin_index * input_size) // bins
  ends = ((bin_index + 1) * input_size + bins - 1) // bins
  positions = tf.range(input_size, dtype=tf.int32)[tf.newaxis, :]
  in_bin = tf.logical_and(positions >= starts, positions < ends)
  weights = tf.cast(in_bin, tf.float32) / tf.cast(ends - starts, tf.float32)
  return tf.cast(weights, dtype)


def _bilinear_matrix(input_size, output_size, dtype):
  """Interpolation weights of tf.image.resize's bilinear mode along one axis.

  Output position o samples input coordinate (o + 0.5) * n / m - 0.5
  (half-pixel centres), clamped to the input.

  Args:
    input_size: Scalar int32 tensor n, the input length.
    output_size: Scalar int32 tensor m, the output length.
    dtype: dtype of the weights.

  Returns:
    [m, n] tensor; row o holds the (at most two) weights of output o.
  """
  scale = tf.cast(input_size, tf.float32) / tf.cast(output_size, tf.float32)
  source = (tf.range(output_size, dtype=tf.float32) + 0.5) * scale - 0.5
  source = tf.clip_by_value(source, 0.0, tf.cast(input_size - 1, tf.float32))
  lower = tf.floor(source)
  fraction = (source - lower)[:, tf.newaxis]
  lower = tf.cast(lower, tf.int32)
  upper = tf.minimum(lower + 1, input_size - 1)
  weights = (
    tf.one_hot(lower, input_size) * (1.0 - fraction)
    + tf.one_hot(upper, input_size) * fraction
  )
  return tf.cast(weights, dtype)


def _apply_separable(row_weights, column_weights, images):
  """Applies [h', H] row and [w', W] column weights to [B, H, W, C] -> [B, h', w', C]."""
  images = tf.einsum('ih,bhwc->biwc', row_weights, images)
  return tf.einsum('jw,biwc->bijc', column_weights, images)


def resize_bilinear(images, size):
  """Bilinear resize, equal to tf.image.resize(images, size) (half-pixel centres).

  Written as two small matrix products because XLA's CPU ResizeBilinear
  disagrees with TensorFlow's kernel for non-integer scale factors (e.g.
  9 -> 17 rows); this gives the same result eagerly, in tf.function and
  under jit_compile=True, in the input's dtype, for unknown sizes too.

  Args:
    images: [B, H, W, C] floating tensor.
    size: (height, width), Python ints or scalar int32 tensors.

  Returns:
    [B, height, width, C] tensor of the input's dtype.
  """
  shape = tf.shape(images)
  return _apply_separable(
    _bilinear_matrix(shape[1], size[0], images.dtype),
    _bilinear_matrix(shape[2], size[1], images.dtype),
    images,
  )


class AdaptiveAveragePooling2D(keras.layers.Layer):
  """Average-pools a feature map of any size into a bins x bins grid.

  Args:
    bins: Output grid size.
    **kwargs: Passed to keras.layers.Layer.
  """

  def __init__(self, bins, **kwargs):
    super().__init__(**kwargs)
    self.bins = bins

  def call(self, inputs):
    """[B, H, W, C] -> [B, bins, bins, C]."""
    shape = tf.shape(inputs)
    return _apply_separable(
      _adaptive_pooling_matrix(shape[1], self.bins, inputs.dtype),
      _adaptive_pooling_matrix(shape[2], self.bins, inputs.dtype),
      inputs,
    )

  def compute_output_shape(self, input_shape):
    return (input_shape[0], self.bins, self.bins, input_shape[3])

  def get_config(self):
    config = super().get_config()
    config['bins'] = self.bins
    return config


class ResizeBilinearLike(keras.layers.Layer):
  """Bilinearly resizes a tensor to the spatial size of a reference tensor.

  Called on [tensor [B, h, w, C], reference [B, H, W, C']], returns
  [B, H, W, C] in the tensor's dtype (see resize_bilinear).
  """

  def call(self, inputs):
    tensor, reference = inputs
    reference_shape = tf.shape(reference)
    return resize_bilinear(tensor, (reference_shape[1], reference_shape[2]))

  def compute_output_shape(self, input_shape):
    tensor_shape, reference_shape = input_shape
    return (
      tensor_shape[0],
      reference_shape[1],
      reference_shape[2],
      tensor_shape[3],
    )


def _conv_bn_relu(
  inputs, filters, kernel_size, name, use_global_status, rate=1
):
  """Conv (no bias, SAME, stride 1) + BatchNorm + ReLU; layers named name_{conv,bn,relu}."""
  net = keras.layers.Conv2D(
    filters,
    kernel_size,
    dilation_rate=rate,
    padding='same',
    use_bias=False,
    kernel_initializer='he_normal',
    name=name + '_conv',
  )(inputs)
  net = BatchNorm(use_global_status, name=name + '_bn')(net)
  return keras.layers.ReLU(name=name + '_relu')(net)


def _output_conv(inputs, output_channels):
  """The final 1x1 convolution with bias, computed in float32."""
  return keras.layers.Conv2D(
    output_channels,
    1,
    use_bias=True,
    kernel_initializer='he_normal',
    dtype='float32',
    name='output',
  )(inputs)


def pspnet_head(
  feature_channels,
  output_channels,
  use_global_status=True,
  width=512,
  name='block5',
):
  """PSPNet's pyramid pooling head.

  For each bin size N in (1, 2, 3, 6): adaptive average pooling to N x N,
  1x1 conv to `width` + BN + ReLU, bilinear resize back; concatenated with
  the features, then 3x3 conv to `width` + BN + ReLU and a 1x1 conv with
  bias to `output_channels`.

  Args:
    feature_channels: Channels C of the backbone features.
    output_channels: Channels of the output.
    use_global_status: Freeze the BatchNorm statistics.
    width: Channels of the pyramid branches and of the 3x3 convolution (512
      in PSPNet).
    name: Model name.

  Returns:
    keras.Model: [B, h, w, C] features -> [B, h, w, output_channels] float32.
  """
  features = keras.Input(shape=(None, None, feature_channels), name='features')
  branches = [features]
  for bins in PSPNET_BINS:
    branch_name = 'pyramid_pool%d' % bins
    pooled = AdaptiveAveragePooling2D(bins, name=branch_name + '_pool')(
      features
    )
    pooled = _conv_bn_relu(pooled, width, 1, branch_name, use_global_status)
    branches.append(
      ResizeBilinearLike(name=branch_name + '_resize')([pooled, features])
    )
  net = keras.layers.Concatenate(name='pyramid_concat')(branches)
  net = _conv_bn_relu(net, width, 3, 'fusion', use_global_status)
  return keras.Model(features, _output_conv(net, output_channels), name=name)


def _aspp_rates(output_stride):
  """ASPP atrous rates: (6, 12, 18) at output stride 16, doubled at 8, halved at 32."""
  if output_stride not in (8, 16, 32):
    raise ValueError(
      'ASPP needs output_stride 8, 16 or 32, got %s.' % (output_stride,)
    )
  return tuple(rate * 16 // output_stride for rate in ASPP_RATES_AT_STRIDE_16)


def _aspp(features, output_stride, use_global_status, width):
  """DeepLabv3's atrous spatial pyramid pooling: [B, h, w, C] -> [B, h, w, width]."""
  branches = [_conv_bn_relu(features, width, 1, 'aspp0', use_global_status)]
  for index, rate in enumerate(_aspp_rates(output_stride), start=1):
    branches.append(
      _conv_bn_relu(
        features, width, 3, 'aspp%d' % index, use_global_status, rate=rate
      )
    )
  pooled = keras.layers.GlobalAveragePooling2D(
    keepdims=True, name='image_pool'
  )(features)
  pooled = _conv_bn_relu(pooled, width, 1, 'image_pool', use_global_status)
  branches.append(
    ResizeBilinearLike(name='image_pool_resize')([pooled, features])
  )
  net = keras.layers.Concatenate(name='aspp_concat')(branches)
  return _conv_bn_relu(net, width, 1, 'aspp_projection', use_global_status)


def deeplab_head(
  feature_channels,
  output_channels,
  output_stride,
  use_global_status=True,
  width=256,
  name='block5',
):
  """DeepLabv3's ASPP head.

  A 1x1 conv, three 3x3 atrous convs (rates (6, 12, 18) at output stride
  16, doubled at 8) and image pooling, each to `width` + BN + ReLU;
  concatenated, 1x1 conv to `width` + BN + ReLU, then a 1x1 conv with bias
  to `output_channels`.

  Args:
    feature_channels: Channels C of the backbone features.
    output_channels: Channels of the output.
    output_stride: The backbone's output stride (8, 16 or 32).
    use_global_status: Freeze the BatchNorm statistics.
    width: Channels of the ASPP branches (256 in DeepLabv3).
    name: Model name.

  Returns:
    keras.Model: [B, h, w, C] features -> [B, h, w, output_channels] float32.
  """
  features = keras.Input(shape=(None, None, feature_channels), name='features')
  net = _aspp(features, output_stride, use_global_status, width)
  return keras.Model(features, _output_conv(net, output_channels), name=name)


def deeplabv3plus_head(
  feature_channels,
  stride4_channels,
  output_channels,
  output_stride,
  use_global_status=True,
  width=256,
  stride4_width=48,
  name='block5',
):
  """DeepLabv3+'s ASPP and decoder.

  ASPP as in deeplab_head; the stride-4 backbone features are reduced to
  `stride4_width` channels (1x1 conv + BN + ReLU), the ASPP output is
  bilinearly upsampled to their size and concatenated with them, followed by
  two 3x3 convs to `width` + BN + ReLU and a 1x1 conv with bias to
  `output_channels`.

  Args:
    feature_channels: Channels C of the backbone's output features.
    stride4_channels: Channels C4 of the backbone's stride-4 features.
    output_channels: Channels of the output.
    output_stride: The backbone's output stride (8, 16 or 32).
    use_global_status: Freeze the BatchNorm statistics.
    width: Channels of the ASPP and decoder convolutions (256).
    stride4_width: Channels the stride-4 features are reduced to (48).
    name: Model name.

  Returns:
    keras.Model mapping a dict {'features': [B, h, w, C],
    'stride4_features': [B, h4, w4, C4]} to [B, h4, w4, output_channels] float32.
  """
  features = keras.Input(shape=(None, None, feature_channels), name='features')
  stride4_features = keras.Input(
    shape=(None, None, stride4_channels), name='stride4_features'
  )
  aspp = _aspp(features, output_stride, use_global_status, width)
  reduced = _conv_bn_relu(
    stride4_features, stride4_width, 1, 'decoder_stride4', use_global_status
  )
  upsampled = ResizeBilinearLike(name='decoder_upsample')([aspp, reduced])
  net = keras.layers.Concatenate(name='decoder_concat')([upsampled, reduced])
  net = _conv_bn_relu(net, width, 3, 'decoder_conv1', use_global_status)
  net = _conv_bn_relu(net, width, 3, 'decoder_conv2', use_global_status)
  return keras.Model(
    {'features': features, 'stride4_features': stride4_features},
    _output_conv(net, output_channels),
    name=name,
  )
