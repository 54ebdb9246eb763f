"""Training augmentation: scale, mirror, pad and crop, as TensorFlow ops.

Random draws are keyed by stateless random seeds, so a seeded pipeline is
reproducible; only the pixels inside the crop are computed.
"""

import collections
import dataclasses

import tensorflow as tf

from network.segsort import common_utils

# The RGB mean (the original release's) subtracted from every image the
# network sees; zero padding after the subtraction is the mean colour.
IMG_MEAN = (122.675, 116.669, 104.008)

# Range of the random scale factor of training images (the original's).
_MIN_SCALE = 0.5
MAX_SCALE = 2.0

# Colour jitter (this port's addition, `random_colour`): the largest
# brightness shift (a fraction of white), the contrast and saturation
# factor ranges, the largest hue shift (a fraction of the hue circle), and
# the chance that an image is turned gray.
_MAX_BRIGHTNESS_DELTA = 0.3
_CONTRAST_RANGE = (0.6, 1.4)
_SATURATION_RANGE = (0.6, 1.4)
_MAX_HUE_DELTA = 0.05
_GRAY_PROBABILITY = 0.2
# Folded into an example's seed for its colour draws, so that the scale,
# mirror and crop of an example are the same with and without the jitter.
_COLOUR_SEED_SALT = 1


# Where the output positions of a resize along one axis sample the input:
# the nearest pixel, and the two bilinear pixels with the weight of `upper`.
_SourceIndices = collections.namedtuple(
  '_SourceIndices', ['nearest', 'lower', 'upper', 'fraction']
)


def _resize_indices(positions, in_size, out_size):
  """Source pixels of output positions of a resize from in_size to out_size.

  Follows `tf.image.resize` (half-pixel centres) exactly, so that sampling
  only the pixels a crop needs equals resizing the whole image and cropping.

  Args:
    positions: An int32 tensor of output positions in `[0, out_size)`.
    in_size: A scalar int32 tensor, the input size along this axis.
    out_size: A scalar int32 tensor, the output size along this axis.

  Returns:
    A _SourceIndices of int32 indices and float32 fractions, one per
    position.
  """
  scale = tf.cast(in_size, tf.float32) / tf.cast(out_size, tf.float32)
  centres = (tf.cast(positions, tf.float32) + 0.5) * scale
  nearest = tf.clip_by_value(
    tf.cast(tf.floor(centres), tf.int32), 0, in_size - 1
  )
  source = centres - 0.5
  source_floor = tf.floor(source)
  lower = tf.maximum(tf.cast(source_floor, tf.int32), 0)
  upper = tf.minimum(tf.cast(tf.math.ceil(source), tf.int32), in_size - 1)
  return _SourceIndices(nearest, lower, upper, source - source_floor)


def _gather_bilinear(image, rows, columns):
  """Bilinearly samples `image` [H, W, C] at rows x columns (_SourceIndices)."""
  top = tf.cast(tf.gather(image, rows.lower, axis=0), tf.float32)
  bottom = tf.cast(tf.gather(image, rows.upper, axis=0), tf.float32)
  image_rows = top + (bottom - top) * rows.fraction[:, tf.newaxis, tf.newaxis]
  left = tf.gather(image_rows, columns.lower, axis=1)
  right = tf.gather(image_rows, columns.upper, axis=1)
  return left + (right - left) * columns.fraction[tf.newaxis, :, tf.newaxis]


def _gather_nearest(array, rows, columns):
  """Samples `array` [H, W, ...] at the nearest pixels of rows x columns."""
  return tf.gather(
    tf.gather(array, rows.nearest, axis=0), columns.nearest, axis=1
  )


def jitter_colour(image, seed):
  """Randomly shifts an image's brightness, contrast, saturation and hue.

  This port's addition (the original release has none). Unsupervised
  SegSort's segments come from colour contours, so its loss can be met by
  telling segments apart by colour alone; with every image's colours drawn
  anew, what a segment shares with other images' segments of its class
  must be found in texture and shape. On CamVid it did not pay: no gain
  for unsupervised SegSort over 5 seeds, large losses for the supervised
  methods, whose classes differ by colour (README: "Colour jitter").

  Args:
    image: A float32 tensor `[H, W, 3]` of RGB values in [0, 255].
    seed: An int64 tensor `[2]`, a stateless random seed.

  Returns:
    A float32 tensor `[H, W, 3]` in [0, 255]: brightness shifted by up to
    +-_MAX_BRIGHTNESS_DELTA of white, contrast and saturation scaled by
    factors uniform in their ranges, hue turned by up to +-_MAX_HUE_DELTA of
    the circle (in this order), and the whole image gray with probability
    _GRAY_PROBABILITY.
  """
  brightness, contrast, saturation, hue, gray = tf.unstack(
    tf.random.experimental.stateless_split(seed, 5)
  )
  pixels = image / 255.0
  pixels = tf.image.stateless_random_brightness(
    pixels, _MAX_BRIGHTNESS_DELTA, brightness
  )
  pixels = tf.image.stateless_random_contrast(
    pixels, *_CONTRAST_RANGE, contrast
  )
  pixels = tf.image.stateless_random_saturation(
    pixels, *_SATURATION_RANGE, saturation
  )
  pixels = tf.image.stateless_random_hue(pixels, _MAX_HUE_DELTA, hue)
  pixels = tf.where(
    tf.random.stateless_uniform([], gray) < _GRAY_PROBABILITY,
    tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(pixels)),
    pixels,
  )
  return tf.clip_by_value(pixels, 0.0, 1.0) * 255.0


# The keys of a training example, as augment_example gives them.
TRAINING_KEYS = (
  'image',
  'label',
  'cluster_label',
  'loc_feature',
  'oversegmentation',
)


def augment_example(
  image,
  label,
  crop_size,
  seed,
  *,
  oversegmentation=None,
  num_clusters=(5, 5),
  kmeans_grid='image',
  random_scale=True,
  random_mirror=True,
  random_crop=True,
  random_colour=False,
  ignore_label=255,
  outputs=None,
):
  """Scales, mirrors, pads and crops one example, as the original release.

  The steps are: scale by a factor uniform in [0.5, 2.0] (bilinear for the
  image, nearest neighbour for the rest), mirror left-right with probability
  1/2, pad bottom and right to at least the crop size, and crop at a random
  (or the central) position. Only the pixels inside the crop are computed:
  the crop window is mapped back to source pixels, which gives the same
  result as transforming the whole image and cropping, at a fraction of the
  cost.

  With `kmeans_grid='image'` (the original release), cluster labels (a
  `num_clusters` grid) and location features are those of the original
  image, so they follow its pixels through every step; a crop much smaller
  than its scaled image then starts k-means from only the few cells it
  overlaps. With `kmeans_grid='crop'` they are laid on the crop itself, as
  inference lays them on each window, so that training segments have the
  size of the segments that inference and prototype extraction make.

  Args:
    image: A uint8 tensor `[H, W, 3]`.
    label: An int32 tensor `[H, W, 1]`.
    crop_size: (crop_height, crop_width), Python integers.
    seed: An int64 tensor `[2]`, the stateless random seed of this example.
    oversegmentation: An optional int32 tensor `[H, W, 1]`, or `[H, W, 2]`
      with segment groups (every channel is sampled alike).
    num_clusters: (clusters along y, clusters along x) of the grid.
    kmeans_grid: 'image' or 'crop', what the grid and the location features
      span (see above).
    random_scale: Whether to scale randomly.
    random_mirror: Whether to mirror randomly.
    random_crop: Whether to crop at a random position (else the centre).
    random_colour: Whether to jitter the image's colours (`jitter_colour`,
      before the mean is subtracted; this port's addition). The other draws
      do not depend on it.
    ignore_label: The label of padded pixels.
    outputs: The keys to compute (of TRAINING_KEYS; 'image' always is), or
      None for all; others are left out of the result.

  Returns:
    A dict of tensors of static shape `[crop_height, crop_width, C]`: 'image'
    float32 (RGB minus IMG_MEAN, 0 in padding), 'label' int32 (ignore_label
    in padding), 'cluster_label' int32 (0 in padding), 'loc_feature'
    float32 (y / H, x / W of the source pixel, 0 in padding) and, when
    given, 'oversegmentation' int32 (-1 in padding).
  """
  outputs = set(TRAINING_KEYS if outputs is None else outputs) | {'image'}
  crop_height, crop_width = crop_size
  scale_seed, mirror_seed, row_seed, column_seed = tf.unstack(
    tf.random.experimental.stateless_split(seed, 4)
  )
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  if random_scale:
    scale = tf.random.stateless_uniform([], scale_seed, _MIN_SCALE, MAX_SCALE)
    scaled_height = tf.maximum(
      tf.cast(tf.cast(height, tf.float32) * scale, tf.int32), 1
    )
    scaled_width = tf.maximum(
      tf.cast(tf.cast(width, tf.float32) * scale, tf.int32), 1
    )
  else:
    scaled_height, scaled_width = height, width
  padded_height = tf.maximum(scaled_height, crop_height)
  padded_width = tf.maximum(scaled_width, crop_width)
  if random_crop:
    top = tf.random.stateless_uniform(
      [], row_seed, 0, padded_height - crop_height + 1, dtype=tf.int32
    )
    left = tf.random.stateless_uniform(
      [], column_seed, 0, padded_width - crop_width + 1, dtype=tf.int32
    )
  else:
    top = (padded_height - crop_height) // 2
    left = (padded_width - crop_width) // 2
  # Rows and columns of the crop that fall on the scaled image, not padding.
  valid_height = tf.minimum(crop_height, scaled_height - top)
  valid_width = tf.minimum(crop_width, scaled_width - left)
  scaled_rows = top + tf.range(valid_height)
  scaled_columns = left + tf.range(valid_width)
  if random_mirror:
    mirror = tf.random.stateless_uniform([], mirror_seed) < 0.5
    scaled_columns = tf.where(
      mirror, scaled_width - 1 - scaled_columns, scaled_columns
    )
  rows = _resize_indices(scaled_rows, height, scaled_height)
  columns = _resize_indices(scaled_columns, width, scaled_width)
  paddings = [
    [0, crop_height - valid_height],
    [0, crop_width - valid_width],
    [0, 0],
  ]

  def pad(tensor, value):
    padded = tf.pad(tensor, paddings, constant_values=value)
    padded.set_shape([crop_height, crop_width, tensor.shape[-1]])
    return padded

  image = _gather_bilinear(image, rows, columns)
  if random_colour:
    image = jitter_colour(
      image,
      tf.random.experimental.stateless_fold_in(seed, _COLOUR_SEED_SALT),
    )
  image -= tf.constant(IMG_MEAN)
  example = {'image': pad(image, 0.0)}
  if 'label' in outputs:
    example['label'] = pad(_gather_nearest(label, rows, columns), ignore_label)
  if kmeans_grid == 'crop':
    if 'cluster_label' in outputs:
      example['cluster_label'] = common_utils.initialize_cluster_labels(
        num_clusters, crop_size
      )[..., tf.newaxis]
    if 'loc_feature' in outputs:
      example['loc_feature'] = common_utils.generate_location_features(
        crop_size, 'float'
      )
    outputs = outputs - {'cluster_label', 'loc_feature'}
  if 'cluster_label' in outputs:
    cluster_grid = common_utils.initialize_cluster_labels(
      num_clusters, [height, width]
    )
    example['cluster_label'] = pad(
      _gather_nearest(cluster_grid, rows, columns)[..., tf.newaxis], 0
    )
  if 'loc_feature' in outputs:
    location = tf.stack(
      tf.meshgrid(
        tf.cast(rows.nearest, tf.float32) / tf.cast(height, tf.float32),
        tf.cast(columns.nearest, tf.float32) / tf.cast(width, tf.float32),
        indexing='ij',
      ),
      axis=2,
    )
    example['loc_feature'] = pad(location, 0.0)
  if oversegmentation is not None and 'oversegmentation' in outputs:
    example['oversegmentation'] = pad(
      _gather_nearest(oversegmentation, rows, columns), -1
    )
  return example


@dataclasses.dataclass(frozen=True)
class AugmentSettings:
  """How every example of a training stream is augmented: the keywords of
  `augment_example` that do not change from example to example, bound.
  """

  crop_size: tuple
  num_clusters: tuple
  kmeans_grid: str
  random_scale: bool
  random_mirror: bool
  random_crop: bool
  random_colour: bool
  ignore_label: int
  outputs: tuple | None

  def augment(self, image, label, seed, oversegmentation=None):
    """`augment_example` with these settings; same arguments and returns."""
    return augment_example(
      image,
      label,
      seed=seed,
      oversegmentation=oversegmentation,
      **dataclasses.asdict(self),
    )
