"""Common functions of SegSort: normalisation, prototypes and spherical k-means.

Every function works on plain tensors. Functions that cluster accept either one
set of pixels (`[num_pixels, ...]`) or a batch of images (`[batch, num_pixels,
...]`); the batched form clusters every image separately with one set of ops,
so that no Python loop over the batch is needed and shapes stay static for XLA.
"""

import numbers

import tensorflow as tf

# Squared norms below this are treated as zero vectors by normalize_embedding.
_NORM_EPSILON = 1e-12


def normalize_embedding(embedding):
  """Normalises embeddings to unit L2 norm along the last axis.

  A zero vector stays zero instead of becoming NaN (the original divided by the
  norm directly, so an empty cluster's prototype was NaN).

  Args:
    embedding: An N-D float tensor `[..., embedding_dim]`.

  Returns:
    A float tensor of the same shape and dtype, each last-axis vector of
    norm 1 or 0.
  """
  if embedding.dtype == tf.float16:
    # The epsilon is 0 in float16, whose squares also underflow below 6e-8:
    # zero vectors became NaN and small ones infinite.
    return tf.cast(
      normalize_embedding(tf.cast(embedding, tf.float32)), tf.float16
    )
  squared_norm = tf.reduce_sum(tf.square(embedding), axis=-1, keepdims=True)
  return embedding * tf.math.rsqrt(tf.maximum(squared_norm, _NORM_EPSILON))


def calculate_prototypes_from_labels(embedding, labels, max_label=None):
  """Calculates the mean direction of the embeddings that share a label.

  This is the M-step of vMF k-means and the prototype of a segment. A label in
  `[0, max_label)` that no pixel carries gets a zero prototype; negative labels
  mark pixels that belong to no prototype.

  Args:
    embedding: A float tensor `[..., embedding_dim]` (e.g. `[num_pixels, D]`
      or `[batch, height, width, D]`).
    labels: An integer tensor with the shape of `embedding` without its last
      axis.
    max_label: An integer, the number of prototypes; `max(labels) + 1` when
      None.

  Returns:
    A float tensor `[max_label, embedding_dim]` of unit or zero vectors.
  """
  embedding_dim = tf.shape(embedding)[-1]
  embedding = tf.reshape(embedding, [-1, embedding_dim])
  labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
  if max_label is None:
    max_label = tf.reduce_max(labels) + 1
  sums = tf.math.unsorted_segment_sum(embedding, labels, max_label)
  return normalize_embedding(sums)


def find_nearest_prototypes(embedding, prototypes, prototype_mask=None):
  """Finds the most similar prototype (largest cosine) of every pixel.

  This is the E-step of vMF k-means.

  Args:
    embedding: A float tensor `[num_pixels, D]`, or `[batch, num_pixels, D]`
      together with batched prototypes.
    prototypes: A float tensor `[num_prototypes, D]`, or
      `[batch, num_prototypes, D]`.
    prototype_mask: An optional boolean tensor `[num_prototypes]` (or
      `[batch, num_prototypes]`); prototypes where it is False are never
      chosen.

  Returns:
    An int32 tensor `[num_pixels]` (or `[batch, num_pixels]`) of prototype
    indices.
  """
  similarities = tf.matmul(embedding, prototypes, transpose_b=True)
  if prototype_mask is not None:
    # Cosines lie in [-1, 1], so -2 is below every real candidate.
    similarities = tf.where(
      tf.expand_dims(prototype_mask, -2),
      similarities,
      tf.constant(-2.0, similarities.dtype),
    )
  return tf.argmax(similarities, axis=-1, output_type=tf.int32)


def kmeans_with_initial_labels(
  embedding, initial_labels, max_label=None, iterations=10, valid_mask=None
):
  """Runs von Mises-Fisher (spherical) k-means from given cluster labels.

  Each iteration takes prototypes as normalised sums of member embeddings
  (M-step) and moves every pixel to the prototype of largest cosine (E-step).
  Clusters that are empty are never chosen. With a leading batch axis, each
  image is clustered on its own: a pixel only moves among its image's
  clusters.

  Args:
    embedding: A float tensor `[num_pixels, D]` or `[batch, num_pixels, D]`,
      normally unit vectors.
    initial_labels: An integer tensor `[num_pixels]` or `[batch, num_pixels]`
      with values in `[0, max_label)`.
    max_label: An integer, the number of clusters per image; `max + 1` of
      `initial_labels` when None.
    iterations: The number of E/M iterations.
    valid_mask: An optional boolean tensor shaped like `initial_labels`;
      pixels where it is False neither form prototypes nor get moved (their
      returned label is their initial one).

  Returns:
    An int32 tensor shaped like `initial_labels` with the final cluster labels.
  """
  batched = embedding.shape.rank == 3
  if not batched:
    embedding = embedding[tf.newaxis]
    initial_labels = initial_labels[tf.newaxis]
    if valid_mask is not None:
      valid_mask = valid_mask[tf.newaxis]
  labels = tf.cast(initial_labels, tf.int32)
  if max_label is None:
    max_label = tf.reduce_max(labels) + 1
  if valid_mask is None:
    valid_mask = tf.ones_like(labels, dtype=tf.bool)
  batch_size = tf.shape(labels)[0]
  embedding_dim = tf.shape(embedding)[2]
  # A column of ones makes the segment sums count the members too.
  embedding_with_ones = tf.concat(
    [embedding, tf.ones_like(embedding[..., :1])], axis=2
  )
  image_offsets = tf.range(batch_size)[:, tf.newaxis] * max_label
  for _ in range(iterations):
    # Segment sums (not a [pixels x clusters] one-hot product): the cost is
    # linear in the pixels. Negative ids (invalid pixels) are dropped.
    sums = tf.math.unsorted_segment_sum(
      embedding_with_ones,
      tf.where(valid_mask, labels + image_offsets, -1),
      batch_size * max_label,
    )
    sums = tf.reshape(sums, [batch_size, max_label, embedding_dim + 1])
    prototypes = normalize_embedding(sums[..., :-1])
    nearest = find_nearest_prototypes(embedding, prototypes, sums[..., -1] > 0)
    labels = tf.where(valid_mask, nearest, labels)
  return labels if batched else labels[0]


def cluster_grid(num_clusters):
  """The (rows, columns) of a grid of initial k-means clusters.

  A grid is a per-axis pair everywhere in this package; the functions that
  took the original release's clusters per axis, one integer n for an n x n
  grid, accept that too.

  Args:
    num_clusters: An integer n (an n x n grid), or a pair of integers
      (clusters along y, clusters along x); Python or NumPy integers.

  Returns:
    A tuple of two Python ints, (clusters along y, clusters along x).

  Raises:
    ValueError: If `num_clusters` is not one or two integers >= 1 (a
      bool, a float or a tensor is none).
  """
  counts = (
    (num_clusters, num_clusters)
    if isinstance(num_clusters, numbers.Integral)
    else tuple(num_clusters)
    # A pair: a tuple, list or NumPy array (a tensor's items are no ints).
    if hasattr(num_clusters, '__len__') and not isinstance(num_clusters, str)
    else ()
  )
  grid = tuple(
    int(count)
    for count in counts
    if isinstance(count, numbers.Integral) and not isinstance(count, bool)
  )
  if len(grid) != 2 or len(counts) != 2 or min(grid) < 1:
    raise ValueError(
      'A k-means grid is n or (rows, columns) of integers >= '
      '1, got %r' % (num_clusters,)
    )
  return grid


def total_clusters(num_clusters):
  """The number of clusters of a grid (`cluster_grid`): rows times columns."""
  rows, columns = cluster_grid(num_clusters)
  return rows * columns


def kmeans(embedding, num_clusters, iterations=10):
  """Clusters every image of a batch by vMF k-means from a uniform grid.

  Args:
    embedding: A float tensor `[batch, height, width, D]`.
    num_clusters: A list of 2 integers, the grid's clusters along y and x
      (see `cluster_grid`).
    iterations: The number of k-means iterations.

  Returns:
    An int32 tensor `[batch, height, width]` of cluster labels in
    `[0, total_clusters(num_clusters))`, separate per image.
  """
  shape = tf.shape(embedding)
  batch_size, height, width = shape[0], shape[1], shape[2]
  grid_labels = initialize_cluster_labels(num_clusters, [height, width])
  initial_labels = tf.tile(tf.reshape(grid_labels, [1, -1]), [batch_size, 1])
  labels = kmeans_with_initial_labels(
    tf.reshape(embedding, [batch_size, height * width, -1]),
    initial_labels,
    total_clusters(num_clusters),
    iterations,
  )
  return tf.reshape(labels, [batch_size, height, width])


def initialize_cluster_labels(num_clusters, img_dimensions):
  """Partitions an image into a uniform grid of cluster labels.

  Cells are ceil(height / num_clusters[0]) by ceil(width / num_clusters[1])
  pixels; a label is `y_cell + num_y_cells * x_cell` (column-major, as in the
  original release).

  Args:
    num_clusters: A list of 2 integers, clusters along y and x (see
      `cluster_grid`).
    img_dimensions: A list of 2 integers (or scalar tensors), height and width.

  Returns:
    An int32 tensor `[height, width]` of labels in
    `[0, total_clusters(num_clusters))`.
  """
  num_clusters = cluster_grid(num_clusters)
  height = tf.cast(img_dimensions[0], tf.int32)
  width = tf.cast(img_dimensions[1], tf.int32)
  cell_height = (height + num_clusters[0] - 1) // num_clusters[0]
  cell_width = (width + num_clusters[1] - 1) // num_clusters[1]
  y_labels = tf.reshape(tf.range(height) // cell_height, [-1, 1])
  x_labels = tf.reshape(tf.range(width) // cell_width, [1, -1])
  num_y_cells = (height + cell_height - 1) // cell_height
  return y_labels + num_y_cells * x_labels


def generate_location_features(img_dimensions, feature_type='int'):
  """Generates every pixel's (y, x) location.

  Args:
    img_dimensions: A list of 2 integers (or scalar tensors), height and width.
    feature_type: 'int' for pixel indices, 'float' for `index / size`, i.e.
      values in [0, 1).

  Returns:
    A tensor `[height, width, 2]` (int32 or float32) holding (y, x).

  Raises:
    ValueError: If `feature_type` is neither 'int' nor 'float'.
  """
  height, width = img_dimensions[0], img_dimensions[1]
  if feature_type == 'int':
    y_features = tf.range(height)
    x_features = tf.range(width)
  elif feature_type == 'float':
    y_features = tf.range(height, dtype=tf.float32) / tf.cast(
      height, tf.float32
    )
    x_features = tf.range(width, dtype=tf.float32) / tf.cast(width, tf.float32)
  else:
    raise ValueError(
      "feature_type must be 'int' or 'float', got %r." % (feature_type,)
    )
  y_grid, x_grid = tf.meshgrid(y_features, x_features, indexing='ij')
  return tf.stack([y_grid, x_grid], axis=2)


def prepare_prototype_labels(semantic_labels, instance_labels, offset=256):
  """Numbers the distinct (instance, semantic label) pairs of pixels.

  Args:
    semantic_labels: An integer tensor `[num_pixels]` in `[0, offset)`.
    instance_labels: An integer tensor `[num_pixels]`, e.g. cluster labels
      already offset per image.
    offset: An integer greater than every semantic label.

  Returns:
    unique_instance_labels: An int32 tensor `[num_pixels]`, the index of every
      pixel's pair in order of first appearance.
    prototype_labels: An int32 tensor `[num_prototypes]`, the semantic label of
      every pair.
  """
  keys = tf.cast(instance_labels, tf.int64) * offset + tf.cast(
    semantic_labels, tf.int64
  )
  unique_keys, unique_instance_labels = tf.unique(tf.reshape(keys, [-1]))
  prototype_labels = tf.cast(unique_keys % offset, tf.int32)
  return tf.cast(unique_instance_labels, tf.int32), prototype_labels
