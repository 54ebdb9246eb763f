"""The SegSort training losses and the prototype memory bank.

The supervised loss scores every pixel against the prototypes (mean
directions) of the batch's segments: a pixel should be likely under the
prototypes of its own class and unlikely under the others. Probabilities use
the von Mises-Fisher kernel exp(concentration * cosine) and are computed in the
log domain, so that no concentration overflows or underflows.

This module cuts a batch into numbered segments and holds the two public
losses; the rest lives by idea in its own module, and the original release's
names stay importable from here (`__all__`):

    memory_bank        `MemoryBank`, the prototypes of earlier steps
    replicas           gathering prototypes across replicas, and
                       `mean_over_pixels`, each replica's share of the loss
    vmf_loss           `calculate_vmf_loss` of numbered segments
    chunked_logsumexp  the pixel-by-prototype log-sum-exps and their gradient

Every shape is static from input to output, so that eager execution,
`tf.function` and XLA (`jit_compile=True`) compute the same loss and
gradients: segments are numbered by sorting (not `tf.unique`) and pixels left
out are masked (not gathered away). XLA compiles the clustering once per
input shape (on a 2-core CPU, a 2 x 20 x 20 batch's loss and gradient took
1.5-3 s at each new size, then 14-27 ms a call): train on crops of one
size, as the trainers do, not on whole images of varying sizes.

Arguments of the wrong shape or dtype are refused with a ValueError naming
them before any graph work (`checks`), and initial cluster labels outside
their grid with an InvalidArgumentError (not under XLA, which drops
assertions).
"""

import tensorflow as tf

from network.segsort import checks
from network.segsort import chunked_logsumexp
from network.segsort import common_utils
from network.segsort import replicas
from network.segsort import vmf_loss
from network.segsort.memory_bank import MemoryBank
from network.segsort.replicas import mean_over_pixels
from network.segsort.vmf_loss import calculate_vmf_loss

__all__ = [
  'MemoryBank',
  'add_segsort_loss',
  'add_unsupervised_segsort_loss',
  'calculate_vmf_loss',
  'mean_over_pixels',
  'segment_by_kmeans',
  'segment_by_kmeans_and_labels',
]


def _number_segments(keys, valid):
  """Numbers the distinct keys of the valid pixels, in increasing key order.

  A static-shape `tf.unique`: sorting the keys puts each segment's pixels
  next to each other, and a running count of key changes numbers them.

  Args:
    keys: An int64 tensor `[num_pixels]` of non-negative keys below 2**62.
    valid: A boolean tensor `[num_pixels]`, the pixels to number.

  Returns:
    An int32 tensor `[num_pixels]`: every valid pixel's segment in
    `[0, num_segments)`, -1 for the others.
  """
  # Above every valid key, so that invalid pixels sort last.
  keys = tf.where(valid, keys, tf.constant(2**62, tf.int64))
  order = tf.argsort(keys, stable=True)
  sorted_keys = tf.gather(keys, order)
  sorted_valid = tf.gather(valid, order)
  is_first = tf.logical_and(
    sorted_valid,
    tf.concat([[True], tf.not_equal(sorted_keys[1:], sorted_keys[:-1])], 0),
  )
  sorted_segments = tf.where(
    sorted_valid, tf.cumsum(tf.cast(is_first, tf.int32)) - 1, -1
  )
  # `order` is a permutation: every pixel is written exactly once.
  return tf.scatter_nd(
    order[:, tf.newaxis], sorted_segments, tf.shape(keys, out_type=tf.int32)
  )


def segment_by_kmeans_and_labels(
  embedding,
  labels,
  ignore_label,
  cluster_labels,
  num_clusters,
  kmeans_iterations,
  loc_features,
):
  """Cuts every image of a batch into segments by k-means and label.

  k-means clusters each image's valid pixels on the embedding concatenated
  with the pixel location; a segment is an (image, cluster, semantic label)
  triple, so that a cluster across a class boundary gives a segment of each
  class (test-time segments are clusters alone:
  `eval_utils.segment_by_kmeans_without_labels`). Segments are numbered
  in increasing order of that triple, and shapes are static: every pixel is
  kept, with -1 marking those left out.

  Args:
    embedding: A float tensor `[batch, height, width, D]` of unit vectors.
    labels: An integer tensor `[batch, height, width, 1]` of semantic labels;
      `ignore_label` and negative labels leave a pixel out.
    ignore_label: The label of pixels to leave out.
    cluster_labels: An integer tensor `[batch, height, width, 1]` of initial
      cluster labels in `[0, common_utils.total_clusters(num_clusters))`.
    num_clusters: The initial grid: the clusters per image axis n (an n x n
      grid, the original's) or (clusters along y, along x).
    kmeans_iterations: The number of k-means iterations.
    loc_features: A float tensor `[batch, height, width, 2]` of (y, x) in
      [0, 1].

  Returns:
    embedding: A float tensor `[batch * height * width, D]`, every pixel.
    semantic_labels: An int32 tensor `[batch * height * width]`, -1 for
      pixels left out.
    unique_instance_labels: An int32 tensor `[batch * height * width]`, every
      valid pixel's segment in `[0, num_segments)`, -1 for pixels left out.
    prototype_labels: An int32 tensor `[batch * height * width]`, the labels
      of the segments in its first `num_segments` slots, -1 after them.

  Raises:
    ValueError: If a tensor's static shape does not fit the embedding's
      pixels, `loc_features` are not float, or `num_clusters` is no grid.
    tf.errors.InvalidArgumentError: If `cluster_labels` leave the grid
      (eager and tf.function; XLA drops the check).
  """
  _check_pixel_maps(embedding, labels, cluster_labels, loc_features)
  num_clusters = common_utils.cluster_grid(num_clusters)
  embedding_dim = tf.shape(embedding)[3]
  with tf.control_dependencies(
    _ops(checks.assert_cluster_labels_in_grid(cluster_labels, num_clusters))
  ):
    cluster_labels = tf.identity(cluster_labels)
  semantic_labels, unique_instance_labels, prototype_labels = (
    _cluster_and_number(
      tf.stop_gradient(embedding),
      labels,
      cluster_labels,
      loc_features,
      ignore_label,
      num_clusters,
      kmeans_iterations,
    )
  )
  return (
    tf.reshape(embedding, [-1, embedding_dim]),
    semantic_labels,
    unique_instance_labels,
    prototype_labels,
  )


# The original release's name.
segment_by_kmeans = segment_by_kmeans_and_labels


def _ops(*assertions):
  """The assertion ops to depend on (eager assertions return None: run)."""
  return [assertion for assertion in assertions if assertion is not None]


def _check_pixel_maps(embedding, labels, cluster_labels, loc_features):
  """The static checks of the supervised loss's per-pixel arguments."""
  embedding_shape = checks.check_embedding(embedding)
  checks.check_pixel_map(
    'labels',
    labels,
    embedding_shape,
    1,
    "semantic labels at the embedding's resolution",
  )
  checks.check_pixel_map(
    'cluster_labels',
    cluster_labels,
    embedding_shape,
    1,
    'initial k-means labels of every image',
  )
  checks.check_location_features(loc_features, embedding_shape)


@tf.function(jit_compile=True)
def _cluster_and_number(
  embedding,
  labels,
  cluster_labels,
  loc_features,
  ignore_label,
  num_clusters,
  kmeans_iterations,
):
  """The labels of `segment_by_kmeans_and_labels`, compiled with XLA.

  k-means and the numbering of segments take no gradient; compiling them
  fuses the k-means iterations' small ops, and every mode computes the same
  segments.
  """
  shape = tf.shape(embedding)
  batch_size, embedding_dim = shape[0], shape[3]
  num_total_clusters = common_utils.total_clusters(num_clusters)
  embedding = tf.reshape(embedding, [batch_size, -1, embedding_dim])
  labels = tf.reshape(tf.cast(labels, tf.int32), [batch_size, -1])
  cluster_labels = tf.reshape(
    tf.cast(cluster_labels, tf.int32), [batch_size, -1]
  )
  loc_features = tf.reshape(
    tf.cast(loc_features, embedding.dtype), [batch_size, -1, 2]
  )
  valid_mask = tf.logical_and(tf.not_equal(labels, ignore_label), labels >= 0)

  embedding_with_loc = common_utils.normalize_embedding(
    tf.concat([embedding, loc_features], axis=2)
  )
  cluster_labels = common_utils.kmeans_with_initial_labels(
    embedding_with_loc,
    cluster_labels,
    num_total_clusters,
    kmeans_iterations,
    valid_mask,
  )
  # Offsetting by image keeps the clusters of different images apart; the
  # label takes the low 32 bits of the key.
  instance_labels = cluster_labels + (
    tf.range(batch_size)[:, tf.newaxis] * num_total_clusters
  )
  keys = tf.bitwise.left_shift(
    tf.cast(instance_labels, tf.int64), 32
  ) + tf.cast(labels, tf.int64)
  valid_mask = tf.reshape(valid_mask, [-1])
  unique_instance_labels = _number_segments(tf.reshape(keys, [-1]), valid_mask)
  semantic_labels = tf.where(valid_mask, tf.reshape(labels, [-1]), -1)
  # Empty slots get the reduction's lowest value, raised to -1.
  prototype_labels = tf.maximum(
    tf.math.unsorted_segment_max(
      semantic_labels, unique_instance_labels, tf.shape(semantic_labels)[0]
    ),
    -1,
  )
  return semantic_labels, unique_instance_labels, prototype_labels


def add_segsort_loss(
  embedding,
  labels,
  embedding_dim,
  ignore_label,
  concentration,
  cluster_labels,
  num_clusters,
  kmeans_iterations,
  num_banks,
  loc_features,
  memory_bank=None,
):
  """Computes the supervised SegSort loss of a batch.

  Unlike the original release, the batch is clustered with one set of ops (no
  Python loop over images), ignore-only images add nothing, a batch without
  valid pixels gives 0, and the memory bank tolerates steps with fewer
  segments than its capacity.

  Args:
    embedding: A float tensor `[batch, height, width, embedding_dim]`, not
      necessarily normalised.
    labels: An integer tensor `[batch, height, width, 1]` of semantic labels
      at the embedding's resolution.
    embedding_dim: The embedding's dimension.
    ignore_label: The label of pixels to leave out.
    concentration: A float, the vMF concentration (kappa).
    cluster_labels: An integer tensor `[batch, height, width, 1]` of initial
      k-means labels (the `num_clusters` grid).
    num_clusters: The initial grid: the clusters per image axis n (an n x n
      grid, the original's) or (clusters along y, along x).
    kmeans_iterations: The number of k-means iterations.
    num_banks: 0 uses no memory bank; any other number reads and pushes
      `memory_bank` (which holds its own number of banks).
    loc_features: A float tensor `[batch, height, width, 2]` of (y, x) in
      [0, 1].
    memory_bank: A `MemoryBank`, required when `num_banks > 0`.

  Returns:
    A float32 scalar loss (under several replicas, this replica's share).

  Raises:
    ValueError: If `num_banks > 0` without a `memory_bank` (the original
      release made its banks inside the loss; a port of its calls would
      train without them, silently), or as `segment_by_kmeans_and_labels`
      raises.
    tf.errors.InvalidArgumentError: As `segment_by_kmeans_and_labels`.
  """
  if num_banks and memory_bank is None:
    raise ValueError(
      'num_banks=%s needs a memory_bank (a train_utils.MemoryBank); pass '
      'num_banks=0 to train without one' % (num_banks,)
    )
  checks.check_embedding(embedding)
  embedding = common_utils.normalize_embedding(
    tf.ensure_shape(
      tf.cast(embedding, tf.float32), [None, None, None, embedding_dim]
    )
  )
  pixel_embedding, semantic_labels, unique_instance_labels, prototype_labels = (
    segment_by_kmeans_and_labels(
      embedding,
      labels,
      ignore_label,
      cluster_labels=cluster_labels,
      num_clusters=num_clusters,
      kmeans_iterations=kmeans_iterations,
      loc_features=loc_features,
    )
  )
  use_memory = memory_bank is not None and num_banks > 0
  memory, memory_labels = memory_bank.read() if use_memory else (None, None)
  loss, new_memory, new_memory_labels = calculate_vmf_loss(
    pixel_embedding,
    semantic_labels,
    unique_instance_labels,
    prototype_labels,
    concentration,
    memory,
    memory_labels,
    memory_bank.shuffle_seed() if use_memory else None,
  )
  if use_memory:
    with tf.control_dependencies(
      [memory_bank.push(new_memory, new_memory_labels)]
    ):
      loss = tf.identity(loss)
  return loss


def _number_per_image(ids, valid):
  """Numbers the distinct (image, id) pairs of the valid pixels.

  Args:
    ids: An int64 tensor `[batch, pixels]` of non-negative ids below 2**32
      where valid.
    valid: A boolean tensor `[batch * pixels]`.

  Returns:
    An int32 tensor `[batch * pixels]` as `_number_segments`'s: equal ids of
    different images get different numbers.
  """
  # Offsetting by image keeps equal ids of different images apart.
  image_offsets = tf.bitwise.left_shift(
    tf.range(tf.cast(tf.shape(ids)[0], tf.int64))[:, tf.newaxis], 32
  )
  return _number_segments(tf.reshape(ids + image_offsets, [-1]), valid)


def _prototype_groups(
  segment_groups, segment_labels, num_segments, slots, num_slots
):
  """The group of every prototype slot, unique across the images.

  Args:
    segment_groups: An integer tensor `[batch, height, width, 1]`, every
      pixel's group id in its image.
    segment_labels: An int32 tensor `[batch * height * width]`, every
      pixel's segment in `[0, num_segments)`, -1 when left out.
    num_segments: An int32 scalar.
    slots: An int32 tensor `[num_segments]`, every segment's slot.
    num_slots: An int32 scalar, the number of slots.

  Returns:
    An int32 tensor `[num_slots]`: -1 for empty slots, else a group id
    shared only by the slots of the same image and group.
  """
  batch_size = tf.shape(segment_groups)[0]
  group_numbers = _number_per_image(
    tf.reshape(tf.cast(segment_groups, tf.int64), [batch_size, -1]),
    segment_labels >= 0,
  )
  segment_group = tf.math.unsorted_segment_max(
    group_numbers, tf.maximum(segment_labels, 0), tf.size(segment_labels)
  )[:num_segments]
  return tf.scatter_nd(slots[:, tf.newaxis], segment_group + 1, [num_slots]) - 1


def add_unsupervised_segsort_loss(
  embedding, concentration, cluster_labels, num_banks=0, segment_groups=None
):
  """Computes the unsupervised SegSort loss from given segments.

  Every segment of every image (e.g. of a contour-based oversegmentation) has
  a prototype; a pixel's loss is -log(s(own) / sum of s over all prototypes of
  the batch), with s = exp(concentration * cosine).

  With `segment_groups` (this port's addition; the original release has
  none), the sum leaves out the other segments of the pixel's group: a fine
  oversegmentation cuts one object into many segments, and pushing those
  apart teaches the network to tell apart what it should group. Groups from
  a coarser cut of the same hierarchy (`tools.make_oversegmentation
  --groups_of`) neither push nor pull them, while the fine segments keep
  the few pixels of other classes that a coarse cut would pull in.

  Args:
    embedding: A float tensor `[batch, height, width, D]`.
    concentration: A float, the vMF concentration (kappa).
    cluster_labels: An integer tensor `[batch, height, width, 1]` of segment
      ids per image; negative ids mark pixels to leave out (e.g. padding).
    num_banks: Must be 0: the unsupervised loss keeps no memory bank (the
      original release accepted and silently ignored this argument).
    segment_groups: An optional integer tensor like `cluster_labels`, each
      pixel's group id in its image, in [0, 2**31). Every segment must lie
      in one group (a segment across several takes the largest id).

  Returns:
    A float32 scalar loss (under several replicas, this replica's share).

  Raises:
    ValueError: If `num_banks` is not 0, or a tensor's static shape does
      not fit the embedding's pixels.
  """
  if num_banks:
    raise ValueError(
      'The unsupervised SegSort loss uses no memory bank; '
      'got num_banks=%s, expected 0.' % (num_banks,)
    )
  embedding_shape = checks.check_embedding(embedding)
  checks.check_pixel_map(
    'cluster_labels',
    cluster_labels,
    embedding_shape,
    1,
    "segment ids at the embedding's resolution",
  )
  if segment_groups is not None:
    checks.check_pixel_map(
      'segment_groups',
      segment_groups,
      embedding_shape,
      1,
      "group ids at the embedding's resolution",
    )
  embedding = common_utils.normalize_embedding(tf.cast(embedding, tf.float32))
  shape = tf.shape(embedding)
  batch_size, embedding_dim = shape[0], shape[3]
  segment_ids = tf.reshape(tf.cast(cluster_labels, tf.int64), [batch_size, -1])
  valid = tf.reshape(segment_ids >= 0, [-1])
  unique_segment_labels = _number_per_image(segment_ids, valid)
  embedding = tf.reshape(embedding, [-1, embedding_dim])
  num_pixels = tf.shape(unique_segment_labels)[0]
  prototypes = vmf_loss.calculate_prototypes(
    embedding, unique_segment_labels, num_pixels
  )
  num_segments = tf.reduce_max(unique_segment_labels) + 1
  filled = tf.where(tf.range(num_pixels) < num_segments, 0, -1)
  prototypes, filled, own_offset = replicas.gather_prototypes(
    prototypes, filled
  )
  compacted, compacted_filled, positions, count = (
    chunked_logsumexp.compact_prototypes(prototypes, filled)
  )
  self_indices = tf.where(
    valid,
    tf.gather(positions, tf.maximum(unique_segment_labels, 0) + own_offset),
    -1,
  )
  # Every prototype is a class of its own: the numerator is the pixel's own
  # prototype and every other prototype is in the denominator.
  prototype_classes = tf.where(
    compacted_filled >= 0, tf.range(tf.shape(compacted_filled)[0]), -1
  )
  pixel_groups = prototype_groups = None
  if segment_groups is not None:
    prototype_groups = _prototype_groups(
      segment_groups,
      unique_segment_labels,
      num_segments,
      tf.gather(positions, tf.range(num_segments) + own_offset),
      tf.shape(compacted_filled)[0],
    )
    pixel_groups = tf.gather(prototype_groups, tf.maximum(self_indices, 0))
  log_numerator, log_others = chunked_logsumexp.vmf_log_terms(
    embedding,
    compacted,
    self_indices,
    self_indices,
    prototype_classes,
    count,
    count,
    concentration,
    pixel_groups,
    prototype_groups,
  )
  return mean_over_pixels(tf.nn.softplus(log_others - log_numerator), valid)
