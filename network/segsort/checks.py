"""Argument checks of the public SegSort functions, before any graph work.

A tensor of the wrong shape met TensorFlow's own shape errors deep inside
the losses (`Dimensions must be equal, but are 16384 and 256 for
'{{node SelectV2}}'`) without naming the argument; these checks name it.
Shapes are compared where they are static (always under XLA, where shapes
are static by design), so a check costs nothing at run time. Value checks
(`assert_cluster_labels_in_grid`, `assert_finite`) are ops: eager execution
and `tf.function` raise InvalidArgumentError naming the argument, while XLA
(`jit_compile=True`) drops assertions, as it drops every Assert op.
"""

import numbers

import tensorflow as tf

from network.segsort import common_utils


def _shape_text(shape):
  return '[%s]' % ', '.join(
    '?' if side is None else str(side) for side in shape
  )


def check_embedding(embedding, name='embedding'):
  """Raises ValueError unless `embedding` is `[batch, height, width, D]`.

  Args:
    embedding: A tensor.
    name: The argument's name, for the message.

  Returns:
    The static shape, a tf.TensorShape of rank 4.
  """
  shape = tf.TensorShape(embedding.shape)
  if shape.rank is not None and shape.rank != 4:
    raise ValueError(
      '%s must be [batch, height, width, D], got shape %s'
      % (name, _shape_text(shape))
    )
  return shape.with_rank(4) if shape.rank is None else shape


def check_rank(name, tensor, rank, layout):
  """Raises ValueError unless `tensor`'s static rank (where known) is `rank`.

  Args:
    name: The argument's name.
    tensor: A tensor.
    rank: The rank it must have.
    layout: Its dimensions, for the message, e.g. '[num_pixels, D]'.
  """
  shape = tf.TensorShape(tensor.shape)
  if shape.rank is not None and shape.rank != rank:
    raise ValueError(
      '%s must be %s, got shape %s' % (name, layout, _shape_text(shape))
    )


def check_pixel_map(name, tensor, embedding_shape, channels, layout):
  """Raises ValueError unless a per-pixel tensor fits the embedding's pixels.

  Args:
    name: The argument's name, e.g. 'labels'.
    tensor: `[batch, height, width, channels]`, or, with one channel,
      `[batch, height, width]` too.
    embedding_shape: The embedding's static shape `[batch, height, width,
      D]`.
    channels: The tensor's last dimension.
    layout: What the tensor is, for the message, e.g. 'semantic labels at
      the embedding's resolution'.
  """
  shape = tf.TensorShape(tensor.shape)
  if shape.rank is None:
    return
  expected = embedding_shape[:3].concatenate([channels])
  fits = shape.is_compatible_with(expected) or (
    channels == 1 and shape.is_compatible_with(embedding_shape[:3])
  )
  if not fits:
    raise ValueError(
      '%s must be %s (%s), as the embedding %s; got shape %s'
      % (
        name,
        _shape_text(expected),
        layout,
        _shape_text(embedding_shape),
        _shape_text(shape),
      )
    )


def check_location_features(loc_features, embedding_shape):
  """Raises ValueError unless `loc_features` are float (y, x) per pixel.

  Integer locations (`common_utils.generate_location_features`' default,
  the original's) are pixel indices, which outweigh a unit embedding so
  that k-means cuts by position alone.
  """
  check_pixel_map(
    'loc_features', loc_features, embedding_shape, 2, '(y, x) in [0, 1]'
  )
  if not tf.as_dtype(loc_features.dtype).is_floating:
    raise ValueError(
      'loc_features must be float (y, x) in [0, 1] '
      "(common_utils.generate_location_features(size, 'float')), got %s"
      % tf.as_dtype(loc_features.dtype).name
    )


def assert_cluster_labels_in_grid(cluster_labels, num_clusters):
  """An assertion that initial cluster labels lie in the k-means grid.

  A label of `total_clusters(num_clusters)` or more belongs to the next
  image once labels are offset per image, joining segments across images.

  Returns:
    The assertion op (None in eager mode, where it has run).
  """
  return tf.debugging.assert_less(
    tf.cast(cluster_labels, tf.int64),
    tf.constant(common_utils.total_clusters(num_clusters), tf.int64),
    message=(
      'cluster_labels must lie in [0, %d), the num_clusters %s grid'
      % (
        common_utils.total_clusters(num_clusters),
        'x'.join(map(str, common_utils.cluster_grid(num_clusters))),
      )
    ),
  )


def assert_finite(tensor, name):
  """`tensor`, checked for NaN and infinity (an op: see the module).

  NaN embeddings gave every pixel a label at inference (k-NN of a NaN
  query returns the bank's first rows), silently.
  """
  return tf.debugging.assert_all_finite(
    tensor, '%s holds NaN or infinity' % name
  )


def check_positive_integer(name, value):
  """Raises ValueError unless `value` is an integer >= 1 (Python or NumPy;
  not bool)."""
  if (
    isinstance(value, bool)
    or not isinstance(value, numbers.Integral)
    or value < 1
  ):
    raise ValueError('%s must be an integer >= 1, got %r' % (name, value))
