"""ResNet v1 backbones in TF-Slim's layout, with atrous convolution.

The models reproduce `tf_slim.nets.resnet_v1` exactly (same padding, same
strides, same atrous rates, same BatchNorm constants), so the TF-Slim ImageNet
checkpoints load by name and give the same features as TF-Slim itself.

Naming. Every Keras layer that owns weights is named after its TF-Slim
variable scope, with '/' written as '.' because Keras 3 forbids '/' in layer
names; the model's own name is the Slim root scope. Slim's
`resnet_v1_101/block1/unit_1/bottleneck_v1/conv1/weights` is therefore the
variable `kernel` of layer `block1.unit_1.bottleneck_v1.conv1` of the model
named `resnet_v1_101`, and its `BatchNorm/gamma` is the variable `gamma` of
layer `block1.unit_1.bottleneck_v1.conv1.BatchNorm`. `slim_variable_map`
spells this mapping out. Each unit's output layer carries Slim's end-point
name (`block1.unit_2.bottleneck_v1`).

Inputs are mean-subtracted RGB images [B, H, W, 3] float32 of any size; the
output is [B, ceil(H / output_stride), ceil(W / output_stride), channels].
"""

import collections
import re

import keras

# TF-Slim's resnet_arg_scope BatchNorm constants (decay 0.997, eps 1e-5, scale).
BATCH_NORM_DECAY = 0.997
BATCH_NORM_EPSILON = 1e-5

# Stands for Slim's scope separator '/' in Keras layer names.
SCOPE_SEPARATOR = '.'

# The Keras variable name that differs from TF-Slim's; BatchNorm's are identical.
_KERAS_TO_SLIM_VARIABLE = {'kernel': 'weights'}

# Spatial stride of the root block (conv1 /2 followed by pool1 /2).
_ROOT_STRIDE = 4

BlockSpec = collections.namedtuple(
  'BlockSpec', ['scope', 'base_depth', 'num_units', 'stride']
)
BlockSpec.__doc__ = """One ResNet v1 block: `num_units` bottlenecks of output depth 4 * base_depth.

As in TF-Slim, the block's `stride` is applied by its last unit.
"""


class BatchNorm(keras.layers.BatchNormalization):
  """TF-Slim's BatchNorm whose statistics can be frozen.

  With `use_global_status=True` (the original's --use_global_status) the
  layer always normalises with its moving statistics and never updates
  them, even when called with training=True; gamma and beta stay trainable.
  Small segmentation batches give poor batch statistics, which is why the
  ImageNet statistics are usually kept.

  Args:
    use_global_status: Freeze the moving statistics (see above).
    momentum: Moving-average decay, TF-Slim's `decay`.
    epsilon: Added to the variance before the square root.
    **kwargs: Passed to keras.layers.BatchNormalization.
  """

  def __init__(
    self,
    use_global_status=False,
    momentum=BATCH_NORM_DECAY,
    epsilon=BATCH_NORM_EPSILON,
    **kwargs,
  ):
    super().__init__(momentum=momentum, epsilon=epsilon, **kwargs)
    self.use_global_status = use_global_status

  def call(self, inputs, training=None, mask=None):
    if self.use_global_status:
      training = False
    return super().call(inputs, training=training, mask=mask)

  def get_config(self):
    config = super().get_config()
    config['use_global_status'] = self.use_global_status
    return config


def keras_layer_name(slim_scope):
  """Returns the Keras layer name that stands for a TF-Slim scope (without root)."""
  return slim_scope.replace('/', SCOPE_SEPARATOR)


def conv2d_bn(
  inputs,
  filters,
  kernel_size,
  slim_scope,
  stride=1,
  rate=1,
  relu=True,
  use_global_status=True,
):
  """TF-Slim's conv2d_same + BatchNorm (+ ReLU), without a convolution bias.

  A strided convolution pads explicitly ((k_eff - 1) // 2 before, the rest
  after) and then runs VALID, as Slim's conv2d_same does; this differs from
  SAME for even input sizes and is needed to reproduce Slim's features.

  Args:
    inputs: [B, H, W, C] tensor.
    filters: Number of output channels.
    kernel_size: Square kernel size.
    slim_scope: TF-Slim scope of the convolution below the root, e.g.
      'block1/unit_1/bottleneck_v1/conv2'.
    stride: Convolution stride.
    rate: Atrous rate; a rate above 1 needs stride 1.
    relu: Apply a ReLU after the BatchNorm.
    use_global_status: Freeze the BatchNorm statistics.

  Returns:
    [B, ceil(H / stride), ceil(W / stride), filters] tensor.
  """
  name = keras_layer_name(slim_scope)
  padding = 'same'
  if stride > 1:
    effective_kernel_size = kernel_size + (kernel_size - 1) * (rate - 1)
    pad_total = effective_kernel_size - 1
    pad_before = pad_total // 2
    if pad_total > 0:
      pads = (pad_before, pad_total - pad_before)
      inputs = keras.layers.ZeroPadding2D(
        (pads, pads), name=name + SCOPE_SEPARATOR + 'pad'
      )(inputs)
    padding = 'valid'
  net = keras.layers.Conv2D(
    filters,
    kernel_size,
    strides=stride,
    dilation_rate=rate,
    padding=padding,
    use_bias=False,
    kernel_initializer='he_normal',
    name=name,
  )(inputs)
  net = BatchNorm(use_global_status, name=name + SCOPE_SEPARATOR + 'BatchNorm')(
    net
  )
  if relu:
    net = keras.layers.ReLU(name=name + SCOPE_SEPARATOR + 'Relu')(net)
  return net


def bottleneck(
  inputs, depth, depth_bottleneck, stride, rate, slim_scope, use_global_status
):
  """TF-Slim's bottleneck_v1 unit: 1x1, 3x3 (strided, atrous), 1x1, plus shortcut.

  Args:
    inputs: [B, H, W, C] tensor.
    depth: Output channels.
    depth_bottleneck: Channels of the inner 1x1 and 3x3 convolutions.
    stride: Stride of the unit (on the 3x3 convolution and the shortcut).
    rate: Atrous rate of the 3x3 convolution.
    slim_scope: Scope of the unit below the root, e.g. 'block1/unit_1'.
    use_global_status: Freeze the BatchNorm statistics.

  Returns:
    [B, ceil(H / stride), ceil(W / stride), depth] tensor.
  """
  scope = slim_scope + '/bottleneck_v1'
  if inputs.shape[-1] == depth:
    shortcut = inputs
    if stride > 1:
      shortcut = keras.layers.MaxPooling2D(
        1, stride, padding='same', name=keras_layer_name(scope + '/shortcut')
      )(inputs)
  else:
    shortcut = conv2d_bn(
      inputs,
      depth,
      1,
      scope + '/shortcut',
      stride=stride,
      relu=False,
      use_global_status=use_global_status,
    )
  residual = conv2d_bn(
    inputs,
    depth_bottleneck,
    1,
    scope + '/conv1',
    use_global_status=use_global_status,
  )
  residual = conv2d_bn(
    residual,
    depth_bottleneck,
    3,
    scope + '/conv2',
    stride=stride,
    rate=rate,
    use_global_status=use_global_status,
  )
  residual = conv2d_bn(
    residual,
    depth,
    1,
    scope + '/conv3',
    relu=False,
    use_global_status=use_global_status,
  )
  net = keras.layers.Add(name=keras_layer_name(scope + '/add'))(
    [shortcut, residual]
  )
  return keras.layers.ReLU(name=keras_layer_name(scope))(net)


def resnet_v1(
  blocks,
  output_stride=8,
  multi_grid=None,
  use_global_status=True,
  root_depth=64,
  name='resnet_v1',
):
  """Builds a fully convolutional ResNet v1 (TF-Slim's resnet_v1, global_pool=False).

  Once the requested output stride is reached, later strides become atrous
  rates (TF-Slim's stack_blocks_dense): at output stride 8, block3 runs at
  rate 2 and block4 at rate 4.

  Args:
    blocks: List of BlockSpec, applied in order after the root block.
    output_stride: 4, 8, 16, ... up to the nominal stride, or None for the
      nominal stride (32 for the standard blocks).
    multi_grid: Per-unit rate multipliers of the last block (DeepLabv3's
      multi-grid), e.g. (1, 2, 4); None means all ones.
    use_global_status: Freeze all BatchNorm statistics.
    root_depth: Channels of the root 7x7 convolution.
    name: Model name, which is also the TF-Slim root scope of the weights.

  Returns:
    keras.Model mapping [B, H, W, 3] float32 images to
    [B, ceil(H / output_stride), ceil(W / output_stride), 4 * blocks[-1].base_depth].

  Raises:
    ValueError: If output_stride cannot be reached or multi_grid has the wrong length.
  """
  nominal_stride = _ROOT_STRIDE
  reachable_strides = [_ROOT_STRIDE]
  for block in blocks:
    nominal_stride *= block.stride
    reachable_strides.append(nominal_stride)
  if output_stride is not None and output_stride not in reachable_strides:
    raise ValueError(
      'output_stride=%s cannot be reached; valid: %s or None.'
      % (output_stride, sorted(set(reachable_strides)))
    )
  if multi_grid is None:
    multi_grid = (1,) * blocks[-1].num_units
  if len(multi_grid) != blocks[-1].num_units:
    raise ValueError(
      'multi_grid=%s needs one rate per unit of %s (%d units).'
      % (tuple(multi_grid), blocks[-1].scope, blocks[-1].num_units)
    )

  images = keras.Input(shape=(None, None, 3), name='images')
  net = conv2d_bn(
    images,
    root_depth,
    7,
    'conv1',
    stride=2,
    use_global_status=use_global_status,
  )
  net = keras.layers.MaxPooling2D(3, 2, padding='same', name='pool1')(net)

  current_stride = _ROOT_STRIDE
  rate = 1
  for block_index, block in enumerate(blocks):
    is_last_block = block_index == len(blocks) - 1
    for unit_index in range(block.num_units):
      unit_stride = block.stride if unit_index == block.num_units - 1 else 1
      unit_rate = multi_grid[unit_index] if is_last_block else 1
      unit_scope = '%s/unit_%d' % (block.scope, unit_index + 1)
      depth = 4 * block.base_depth
      if output_stride is not None and current_stride == output_stride:
        net = bottleneck(
          net,
          depth,
          block.base_depth,
          1,
          rate * unit_rate,
          unit_scope,
          use_global_status,
        )
        rate *= unit_stride
      else:
        net = bottleneck(
          net,
          depth,
          block.base_depth,
          unit_stride,
          unit_rate,
          unit_scope,
          use_global_status,
        )
        current_stride *= unit_stride
  return keras.Model(images, net, name=name)


# About 0.33M parameters, 256 output channels: for CPU demos and tests.
_RESNET_V1_MINI_BLOCKS = (
  BlockSpec('block1', 16, 2, 2),
  BlockSpec('block2', 32, 2, 2),
  BlockSpec('block3', 64, 2, 2),
  BlockSpec('block4', 64, 1, 1),
)
_RESNET_V1_MINI_ROOT_DEPTH = 32


def _slim_imagenet_resnet_v1(
  block3_units, output_stride, multi_grid, use_global_status, name
):
  """A ResNet v1 of TF-Slim's ImageNet layout, 50 and 101 layers alike.

  The two differ only in the number of units of block3.

  Returns:
    keras.Model: [B, H, W, 3] -> [B, ceil(H / os), ceil(W / os), 2048].
  """
  blocks = (
    BlockSpec('block1', 64, 3, 2),
    BlockSpec('block2', 128, 4, 2),
    BlockSpec('block3', 256, block3_units, 2),
    BlockSpec('block4', 512, 3, 1),
  )
  return resnet_v1(
    blocks, output_stride, multi_grid, use_global_status, name=name
  )


def resnet_v1_50(
  output_stride=8, multi_grid=None, use_global_status=True, name='resnet_v1_50'
):
  """ResNet-50 v1 (6 units in block3); arguments and output as resnet_v1_101."""
  return _slim_imagenet_resnet_v1(
    6, output_stride, multi_grid, use_global_status, name
  )


def resnet_v1_101(
  output_stride=8, multi_grid=None, use_global_status=True, name='resnet_v1_101'
):
  """ResNet-101 v1, the original release's backbone (23 units in block3).

  Args:
    output_stride: As resnet_v1's.
    multi_grid: As resnet_v1's.
    use_global_status: As resnet_v1's.
    name: The model's name, also the TF-Slim root scope of its weights.

  Returns:
    keras.Model: [B, H, W, 3] -> [B, ceil(H / os), ceil(W / os), 2048].
  """
  return _slim_imagenet_resnet_v1(
    23, output_stride, multi_grid, use_global_status, name
  )


def resnet_v1_mini(
  output_stride=8,
  multi_grid=None,
  use_global_status=True,
  name='resnet_v1_mini',
):
  """A ResNet v1 of about 0.33M parameters for CPU demos and tests.

  Same layout, naming and interface as resnet_v1_101 (two units in blocks
  1-3, one in block4, a 32-channel root); no ImageNet weights exist for it.

  Returns:
    keras.Model: [B, H, W, 3] -> [B, ceil(H / os), ceil(W / os), 256].
  """
  return resnet_v1(
    _RESNET_V1_MINI_BLOCKS,
    output_stride,
    multi_grid,
    use_global_status,
    root_depth=_RESNET_V1_MINI_ROOT_DEPTH,
    name=name,
  )


def stride4_feature_name(backbone):
  """Name of the backbone's last layer at stride 4 (DeepLabv3+'s low-level features).

  In TF-Slim's layout block1's last unit is strided, so its stride-4 output
  is the previous unit's (`block1.unit_2.bottleneck_v1` for ResNet-50/101),
  or pool1's when block1 has a single unit.

  Args:
    backbone: A model built by resnet_v1.

  Returns:
    The Keras layer name.
  """
  unit_pattern = re.compile(
    re.escape(keras_layer_name('block1/unit_'))
    + r'(\d+)'
    + re.escape(keras_layer_name('/bottleneck_v1'))
    + '$'
  )
  block1_units = []
  for layer in backbone.layers:
    match = unit_pattern.match(layer.name)
    if match:
      block1_units.append(int(match.group(1)))
  if len(block1_units) < 2:
    return 'pool1'
  return keras_layer_name(
    'block1/unit_%d/bottleneck_v1' % (max(block1_units) - 1)
  )


def with_stride4_features(backbone):
  """A model sharing the backbone's layers that also returns its stride-4 features.

  Args:
    backbone: A model built by resnet_v1.

  Returns:
    keras.Model mapping [B, H, W, 3] images to a dict with 'features'
    (the backbone's output) and 'stride4_features'
    [B, ceil(H / 4), ceil(W / 4), C4] (C4 = 256 for ResNet-50/101).
  """
  stride4 = backbone.get_layer(stride4_feature_name(backbone)).output
  return keras.Model(
    backbone.inputs,
    {'features': backbone.outputs[0], 'stride4_features': stride4},
    name=backbone.name + '_with_stride4_features',
  )


def slim_variable_map(backbone, slim_root_scope=None):
  """Maps TF-Slim variable names onto the backbone's variables.

  Args:
    backbone: A model built by resnet_v1.
    slim_root_scope: Root scope of the names; defaults to the model's name
      (e.g. 'resnet_v1_101').

  Returns:
    Dict from TF-Slim name (e.g. 'resnet_v1_101/conv1/BatchNorm/gamma') to
    the keras.Variable, covering every variable of the backbone.
  """
  root = slim_root_scope or backbone.name
  mapping = {}
  for layer in backbone.layers:
    layer_scope = layer.name.replace(SCOPE_SEPARATOR, '/')
    for variable in layer.weights:
      short_name = variable.path.rsplit('/', 1)[-1]
      slim_name = '%s/%s/%s' % (
        root,
        layer_scope,
        _KERAS_TO_SLIM_VARIABLE.get(short_name, short_name),
      )
      mapping[slim_name] = variable
  return mapping
