"""Builds a segmentation/embedding network from a backbone name and a head name.

network = build_network('resnet_v1_101', 'pspnet', output_stride=8, output_channels=32)
load_slim_resnet(network.backbone, 'snapshots/imagenet/trained/resnet_v1_101.ckpt')
embedding = network(images, training=True)  # [B, ceil(H / 8), ceil(W / 8), 32]
"""

import keras

from network import heads
from network import resnet_v1

BACKBONES = {
  'resnet_v1_101': resnet_v1.resnet_v1_101,
  'resnet_v1_50': resnet_v1.resnet_v1_50,
  'mini': resnet_v1.resnet_v1_mini,
}
HEADS = ('pspnet', 'deeplab', 'deeplabv3plus')

# The mini backbone is for CPU runs, where full-width heads make a training
# step about 30x slower; its heads are narrowed by this factor.
_MINI_HEAD_WIDTH_DIVISOR = 8

# Default head widths (PSPNet 512, DeepLab 256, DeepLabv3+ stride-4 reduction 48).
_HEAD_WIDTHS = {'pspnet': 512, 'deeplab': 256, 'deeplabv3plus': 256}
_STRIDE4_WIDTH = 48
_NOMINAL_OUTPUT_STRIDE = 32


class SegmentationNetwork(keras.Model):
  """Backbone + head: images to an un-normalised per-pixel output.

  Attributes:
    backbone: The ResNet v1 keras.Model ([B, H, W, 3] -> features), the
      model load_slim_resnet restores from ImageNet.
    head: The head keras.Model (the original's "block5").
    feature_extractor: What feeds the head: the backbone itself, or for
      DeepLabv3+ a model sharing its layers that also returns the stride-4
      features (resnet_v1.with_stride4_features).
    output_stride: Stride of the output relative to the input (4 for
      deeplabv3plus, else the backbone's output stride).
    backbone_variables: The backbone's variables.
    head_variables: The head's variables (not restored from ImageNet,
      trained at 10x learning rate); disjoint from backbone_variables and
      together all of the model's variables.
  """

  def __init__(
    self, backbone, head, output_stride, use_stride4_features=False, **kwargs
  ):
    """Wraps built backbone and head models.

    Args:
      backbone: keras.Model from network.resnet_v1.
      head: keras.Model from network.heads taking the backbone's features
        (a dict with 'features' and 'stride4_features' if
        use_stride4_features).
      output_stride: Stride of the head's output.
      use_stride4_features: Feed the head the backbone's stride-4
        features as well (DeepLabv3+).
      **kwargs: Passed to keras.Model.
    """
    super().__init__(**kwargs)
    self.backbone = backbone
    self.head = head
    self.output_stride = output_stride
    if use_stride4_features:
      self.feature_extractor = resnet_v1.with_stride4_features(backbone)
    else:
      self.feature_extractor = backbone
    # The functional sub-models already own every variable; nothing is left to build.
    self.built = True

  @property
  def backbone_variables(self):
    return list(self.backbone.variables)

  @property
  def head_variables(self):
    return list(self.head.variables)

  def call(self, images, training=False):
    """Computes the per-pixel output.

    Args:
      images: [B, H, W, 3] float32 mean-subtracted RGB images.
      training: Training mode (BatchNorm batch statistics unless frozen).

    Returns:
      [B, ceil(H / output_stride), ceil(W / output_stride), output_channels]
      float32, not normalised.
    """
    features = self.feature_extractor(images, training=training)
    return self.head(features, training=training)


def build_network(
  backbone='resnet_v1_101',
  head='pspnet',
  output_stride=8,
  output_channels=32,
  use_global_status=True,
  multi_grid=None,
  name=None,
):
  """Builds a SegmentationNetwork.

  Build under the mixed-precision policy you want (e.g. after
  keras.mixed_precision.set_global_policy('mixed_float16')); the output is
  float32 either way. Heads have the published widths (PSPNet 512, ASPP
  and decoder 256, stride-4 reduction 48), divided by 8 on the mini backbone.

  Args:
    backbone: One of BACKBONES: 'resnet_v1_101', 'resnet_v1_50', 'mini'.
    head: One of HEADS: 'pspnet', 'deeplab', 'deeplabv3plus'.
    output_stride: Backbone output stride, 8, 16 or None (= 32).
    output_channels: Output channels: the embedding dimension for SegSort
      (32), the number of classes for the softmax baseline (21).
    use_global_status: Freeze every BatchNorm's statistics (the original's
      --use_global_status).
    multi_grid: Per-unit rate multipliers of block4, or None.
    name: Model name; defaults to '<backbone>_<head>'.

  Returns:
    SegmentationNetwork with all its variables created.

  Raises:
    ValueError: For an unknown backbone or head name or an invalid stride.
  """
  if backbone not in BACKBONES:
    raise ValueError(
      'Unknown backbone %r; valid backbones: %s.'
      % (backbone, sorted(BACKBONES))
    )
  if head not in HEADS:
    raise ValueError('Unknown head %r; valid heads: %s.' % (head, list(HEADS)))
  backbone_model = BACKBONES[backbone](
    output_stride=output_stride,
    multi_grid=multi_grid,
    use_global_status=use_global_status,
  )
  feature_stride = output_stride or _NOMINAL_OUTPUT_STRIDE
  feature_channels = backbone_model.outputs[0].shape[-1]
  width_divisor = _MINI_HEAD_WIDTH_DIVISOR if backbone == 'mini' else 1
  width = _HEAD_WIDTHS[head] // width_divisor
  if head == 'pspnet':
    head_model = heads.pspnet_head(
      feature_channels, output_channels, use_global_status, width=width
    )
  elif head == 'deeplab':
    head_model = heads.deeplab_head(
      feature_channels,
      output_channels,
      feature_stride,
      use_global_status,
      width=width,
    )
  else:
    stride4_layer = backbone_model.get_layer(
      resnet_v1.stride4_feature_name(backbone_model)
    )
    head_model = heads.deeplabv3plus_head(
      feature_channels,
      stride4_layer.output.shape[-1],
      output_channels,
      feature_stride,
      use_global_status,
      width=width,
      stride4_width=_STRIDE4_WIDTH // width_divisor,
    )
  return SegmentationNetwork(
    backbone_model,
    head_model,
    output_stride=4 if head == 'deeplabv3plus' else feature_stride,
    use_stride4_features=head == 'deeplabv3plus',
    name=name or '%s_%s' % (backbone, head),
  )


def build_network_from_config(config, use_global_status=True):
  """Builds the network a training configuration trains (variables created, not restored).

  Args:
    config: An object with the attributes `backbone`, `head`, `output_stride` and
      `output_channels`, such as segsort.config.TrainConfig (its
      `output_channels` is the embedding dimension, or the number of classes
      of the softmax baseline).
    use_global_status: Freeze BatchNorm statistics (True for inference).

  Returns:
    SegmentationNetwork with all its variables created.

  Raises:
    ValueError: For an unknown backbone or head name or an invalid stride.
  """
  return build_network(
    backbone=config.backbone,
    head=config.head,
    output_stride=config.output_stride,
    output_channels=config.output_channels,
    use_global_status=use_global_status,
  )
