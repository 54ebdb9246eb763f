"""The SegSort training losses and the prototype memory bank.

The supervised loss scores every pixel against the prototypes (mean
directions) of the batch's segments: a pixel should be likely under the
prototypes of its own class and unlikely under the others. Probabilities use
the von Mises-Fisher kernel exp(concentration * cosine) and are computed in the
log domain, so that no concentration overflows or underflows.

Under `tf.distribute` with several replicas the losses gather the prototypes
of every replica, so that each pixel is scored against the segments of the
global batch, and each replica returns its share of the global loss (its sum
over pixels divided by the global number of pixels): summing the replicas'
values and gradients, as `tf.distribute` does, gives the global mean.
"""

import tensorflow as tf

from network.segsort import common_utils


class MemoryBank(tf.Module):
  """A FIFO queue of the prototypes of the last `num_banks` training steps.

  Each bank holds `capacity` prototypes and their semantic labels; a negative
  label marks an empty slot, which the loss ignores. Contents carry no
  gradient. The variables are checkpointable with `tf.train.Checkpoint` and,
  under `tf.distribute`, keep the first replica's update (every replica pushes
  the same gathered prototypes in the same order: the order is drawn from a
  stateless seed of the bank's push count, `shuffle_seed`, identical on all
  replicas).
  """

  def __init__(self, num_banks, capacity, embedding_dim, name=None):
    """Creates empty banks.

    Args:
      num_banks: The number of steps remembered.
      capacity: The number of prototypes per bank, normally
        `num_clusters**2 * global_batch_size`.
      embedding_dim: The prototypes' dimension.
      name: An optional module name.
    """
    super().__init__(name=name)
    self.num_banks = num_banks
    self.capacity = capacity
    self.embedding_dim = embedding_dim
    aggregation = tf.VariableAggregation.ONLY_FIRST_REPLICA
    self.prototypes = tf.Variable(
        tf.zeros([num_banks, capacity, embedding_dim]), trainable=False,
        name='memory', aggregation=aggregation)
    self.labels = tf.Variable(
        tf.fill([num_banks, capacity], -1), trainable=False,
        name='memory_labels', aggregation=aggregation)
    # Seeds the order of pushed prototypes, so that a resumed run keeps the
    # same prototypes as an uninterrupted one.
    self.num_pushes = tf.Variable(0, dtype=tf.int64, trainable=False,
                                  name='num_pushes', aggregation=aggregation)

  def shuffle_seed(self):
    """Returns the stateless seed `[2]` for ordering the next push."""
    return tf.stack([self.num_pushes, tf.constant(0, tf.int64)])

  def read(self):
    """Returns every slot of every bank.

    Returns:
      prototypes: A float32 tensor `[num_banks * capacity, embedding_dim]`.
      labels: An int32 tensor `[num_banks * capacity]`, negative when empty.
    """
    return (tf.reshape(self.prototypes, [-1, self.embedding_dim]),
            tf.reshape(self.labels, [-1]))

  def push(self, prototypes, labels):
    """Drops the oldest bank and appends a new one.

    Args:
      prototypes: A float tensor `[num_new, embedding_dim]`; the first
        `capacity` rows are kept, and missing rows are left empty.
      labels: An integer tensor `[num_new]` of their semantic labels.

    Returns:
      The assign operation of the labels (for control dependencies).
    """
    # Appending a full bank of empty slots and keeping the first `capacity`
    # rows gives a static shape however many prototypes arrived.
    new_prototypes = tf.concat([
        tf.stop_gradient(tf.cast(prototypes, tf.float32)),
        tf.zeros([self.capacity, self.embedding_dim])], 0)[:self.capacity]
    new_labels = tf.concat([
        tf.cast(labels, tf.int32),
        tf.fill([self.capacity], -1)], 0)[:self.capacity]
    self.prototypes.assign(
        tf.concat([self.prototypes[1:], new_prototypes[tf.newaxis]], 0))
    self.num_pushes.assign_add(1)
    return self.labels.assign(
        tf.concat([self.labels[1:], new_labels[tf.newaxis]], 0))


def _replica_context():
  """Returns the replica context when the loss runs on several replicas."""
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return None
  return context


def _gather_prototypes(prototypes, prototype_labels):
  """Gathers the prototypes of every replica.

  Replicas may have different numbers of prototypes, so each pads its own to
  the largest number with label -1 before the gather.

  Args:
    prototypes: A float tensor `[num_prototypes, D]` of this replica.
    prototype_labels: An int32 tensor `[num_prototypes]` of non-negative
      labels.

  Returns:
    all_prototypes: A float tensor `[num_all, D]`.
    all_labels: An int32 tensor `[num_all]`, -1 for padding.
    own_offset: The index in `all_prototypes` of this replica's first
      prototype.
  """
  context = _replica_context()
  if context is None:
    return prototypes, prototype_labels, 0
  num_prototypes = tf.shape(prototype_labels)[0]
  largest = tf.reduce_max(
      context.all_gather(num_prototypes[tf.newaxis], axis=0))
  missing = largest - num_prototypes
  prototypes = tf.pad(prototypes, [[0, missing], [0, 0]])
  prototype_labels = tf.pad(prototype_labels, [[0, missing]],
                            constant_values=-1)
  own_offset = context.replica_id_in_sync_group * largest
  return (context.all_gather(prototypes, axis=0),
          context.all_gather(prototype_labels, axis=0),
          own_offset)


def mean_over_pixels(pixel_losses):
  """Averages per-pixel losses over the pixels of all replicas.

  Used by every training loss (the SegSort losses here, the softmax loss of
  segsort.trainer), so that the replicas' values sum to the global mean.

  Args:
    pixel_losses: A float tensor `[num_pixels]` of this replica.

  Returns:
    A float scalar: this replica's sum divided by the global number of pixels
    (0 when there is no pixel anywhere).
  """
  loss_sum = tf.reduce_sum(pixel_losses)
  count = tf.cast(tf.size(pixel_losses), pixel_losses.dtype)
  context = _replica_context()
  if context is not None:
    count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
  return loss_sum / tf.maximum(count, 1.0)


def _segment_membership(segment_ids, prototype_labels):
  """Tells which prototype every pixel belongs to.

  Built by comparison rather than `tf.one_hot`, whose depth XLA needs as a
  constant while the number of segments is only known at run time.

  Args:
    segment_ids: An int32 tensor `[num_pixels]` of prototype indices.
    prototype_labels: A tensor `[num_prototypes]` (only its size is used).

  Returns:
    A boolean tensor `[num_pixels, num_prototypes]`.
  """
  prototype_indices = tf.cumsum(tf.ones_like(prototype_labels,
                                             dtype=tf.int32)) - 1
  return tf.equal(segment_ids[:, tf.newaxis], prototype_indices[tf.newaxis])


def _calculate_prototypes(embedding, segment_ids, prototype_labels):
  """Calculates segment prototypes when their number is known at run time.

  Args:
    embedding: A float tensor `[num_pixels, D]`.
    segment_ids: An int32 tensor `[num_pixels]` in `[0, num_prototypes)`.
    prototype_labels: A tensor `[num_prototypes]` (only its size is used).

  Returns:
    A float tensor `[num_prototypes, D]` of unit vectors.
  """
  membership = tf.cast(_segment_membership(segment_ids, prototype_labels),
                       embedding.dtype)
  return common_utils.normalize_embedding(
      tf.matmul(membership, embedding, transpose_a=True))


def _masked_logsumexp(logits, mask):
  """Computes log(sum(exp(logits))) over the masked entries of each row.

  Args:
    logits: A float tensor `[num_rows, num_columns]`.
    mask: A boolean tensor of the same shape.

  Returns:
    A float tensor `[num_rows]`; -inf for rows with no masked entry. Its
    gradient is finite everywhere.
  """
  negative_infinity = tf.constant(-float('inf'), logits.dtype)
  row_max = tf.reduce_max(tf.where(mask, logits, negative_infinity), axis=1,
                          keepdims=True)
  row_max = tf.stop_gradient(
      tf.where(tf.math.is_finite(row_max), row_max, tf.zeros_like(row_max)))
  # exp(-inf) = 0 has a zero gradient, unlike exp of an unselected large value.
  exponentials = tf.exp(tf.where(mask, logits - row_max, negative_infinity))
  total = tf.reduce_sum(exponentials, axis=1)
  has_entry = tf.reduce_any(mask, axis=1)
  safe_total = tf.where(has_entry, total, tf.ones_like(total))
  return tf.where(has_entry, tf.squeeze(row_max, 1) + tf.math.log(safe_total),
                  negative_infinity)


def _class_logsumexps(logits, semantic_labels, prototype_labels, valid):
  """Sums exp(logits) over valid prototypes of the pixel's class and others.

  Args:
    logits: A float tensor `[num_pixels, num_prototypes]`.
    semantic_labels: An int32 tensor `[num_pixels]`.
    prototype_labels: An int32 tensor `[num_prototypes]`.
    valid: A boolean tensor broadcastable to `logits`, the prototypes that
      count.

  Returns:
    same_class: A float tensor `[num_pixels, 1]`, the log-sum over valid
      prototypes of the pixel's class (-inf when there is none).
    other_classes: A float tensor `[num_pixels, 1]`, the same over the other
      classes.
  """
  same_class = tf.equal(semantic_labels[:, tf.newaxis],
                        prototype_labels[tf.newaxis])
  same_class_mask = tf.logical_and(valid, same_class)
  other_class_mask = tf.logical_and(valid, tf.logical_not(same_class))
  return (_masked_logsumexp(logits, same_class_mask)[:, tf.newaxis],
          _masked_logsumexp(logits, other_class_mask)[:, tf.newaxis])


def calculate_vmf_loss(embedding,
                       semantic_labels,
                       unique_instance_labels,
                       prototype_labels,
                       concentration,
                       memory=None,
                       memory_labels=None,
                       shuffle_seed=None):
  """Calculates the supervised SegSort (von Mises-Fisher) loss.

  With s = exp(concentration * cosine) between a pixel of class c in segment g
  and every prototype: same = sum of s over prototypes of class c other than
  g; numerator = same if such prototypes exist, else s(g); denominator =
  numerator + sum of s over prototypes of other classes. The loss is the mean
  of -log(numerator / denominator).

  Args:
    embedding: A float tensor `[num_pixels, embedding_dim]` of unit vectors.
    semantic_labels: An integer tensor `[num_pixels]`.
    unique_instance_labels: An integer tensor `[num_pixels]`, every pixel's
      segment in `[0, num_prototypes)`.
    prototype_labels: An integer tensor `[num_prototypes]`, every segment's
      semantic label.
    concentration: A float, the vMF concentration (kappa).
    memory: An optional float tensor `[num_memory, embedding_dim]` of
      prototypes from earlier steps (no gradient flows into them).
    memory_labels: An integer tensor `[num_memory]` of their labels; negative
      labels mark empty slots.
    shuffle_seed: An optional int64 tensor `[2]`, a stateless seed for the
      random order of `new_memory`; TensorFlow's stateful generator when None.

  Returns:
    loss: A float32 scalar (under several replicas, this replica's share).
    new_memory: A float tensor `[num_all_prototypes, embedding_dim]`, the
      step's prototypes (of all replicas) in random order, to push into the
      memory bank; None when `memory` is None.
    new_memory_labels: An int32 tensor `[num_all_prototypes]` of their labels
      (negative for padding); None when `memory` is None.
  """
  embedding = tf.cast(embedding, tf.float32)
  semantic_labels = tf.cast(semantic_labels, tf.int32)
  unique_instance_labels = tf.cast(unique_instance_labels, tf.int32)
  prototype_labels = tf.cast(prototype_labels, tf.int32)

  prototypes = _calculate_prototypes(embedding, unique_instance_labels,
                                     prototype_labels)
  prototypes, prototype_labels, own_offset = _gather_prototypes(
      prototypes, prototype_labels)
  prototype_valid = prototype_labels >= 0
  is_self = _segment_membership(unique_instance_labels + own_offset,
                                prototype_labels)
  logits = concentration * tf.matmul(embedding, prototypes, transpose_b=True)
  self_logits = tf.reduce_sum(
      tf.where(is_self, logits, tf.zeros_like(logits)), axis=1)
  same_class_blocks, other_class_blocks = _class_logsumexps(
      logits, semantic_labels, prototype_labels,
      tf.logical_and(prototype_valid[tf.newaxis], tf.logical_not(is_self)))

  if memory is not None:
    shape = tf.shape(prototype_labels)
    random_keys = (tf.random.uniform(shape) if shuffle_seed is None else
                   tf.random.stateless_uniform(shape, shuffle_seed))
    # Replica padding (keys >= 2) goes last, so that it never displaces a
    # prototype when the bank keeps only its capacity's worth.
    shuffled = tf.argsort(
        random_keys + 2.0 * tf.cast(prototype_labels < 0, tf.float32))
    new_memory = tf.stop_gradient(tf.gather(prototypes, shuffled))
    new_memory_labels = tf.gather(prototype_labels, shuffled)
    memory_labels = tf.cast(memory_labels, tf.int32)
    memory = common_utils.normalize_embedding(
        tf.stop_gradient(tf.cast(memory, tf.float32)))
    memory_same, memory_other = _class_logsumexps(
        concentration * tf.matmul(embedding, memory, transpose_b=True),
        semantic_labels, memory_labels, (memory_labels >= 0)[tf.newaxis])
    # Memory is scored as a separate block: XLA mis-sizes some ops on a
    # concatenation of the run-time-sized batch prototypes with the bank.
    same_class_blocks = tf.concat([same_class_blocks, memory_same], 1)
    other_class_blocks = tf.concat([other_class_blocks, memory_other], 1)
  else:
    new_memory = new_memory_labels = None

  log_same_class = _masked_logsumexp(
      same_class_blocks, tf.math.is_finite(same_class_blocks))
  log_numerator = tf.where(tf.math.is_finite(log_same_class), log_same_class,
                           self_logits)
  log_other_classes = _masked_logsumexp(
      other_class_blocks, tf.math.is_finite(other_class_blocks))
  # -log(n / (n + o)) = softplus(log o - log n), exact and stable.
  pixel_losses = tf.nn.softplus(log_other_classes - log_numerator)
  return mean_over_pixels(pixel_losses), new_memory, new_memory_labels


def segment_by_kmeans(embedding, labels, ignore_label, cluster_labels,
                      num_clusters, kmeans_iterations, loc_features):
  """Cuts every image of a batch into segments by k-means and label.

  k-means clusters each image's valid pixels on the embedding concatenated
  with the pixel location; a segment is an (image, cluster, semantic label)
  triple.

  Args:
    embedding: A float tensor `[batch, height, width, D]` of unit vectors.
    labels: An integer tensor `[batch, height, width, 1]` of semantic labels.
    ignore_label: The label of pixels to leave out.
    cluster_labels: An integer tensor `[batch, height, width, 1]` of initial
      cluster labels in `[0, num_clusters**2)`.
    num_clusters: An integer, the clusters per image axis.
    kmeans_iterations: The number of k-means iterations.
    loc_features: A float tensor `[batch, height, width, 2]` of (y, x) in
      [0, 1].

  Returns:
    valid_embedding: A float tensor `[num_valid, D]` of the valid pixels.
    semantic_labels: An int32 tensor `[num_valid]`.
    unique_instance_labels: An int32 tensor `[num_valid]`, every pixel's
      segment in `[0, num_segments)`.
    prototype_labels: An int32 tensor `[num_segments]`, the segments' labels.
  """
  shape = tf.shape(embedding)
  batch_size, embedding_dim = shape[0], shape[3]
  num_total_clusters = num_clusters * num_clusters
  embedding = tf.reshape(embedding, [batch_size, -1, embedding_dim])
  labels = tf.reshape(tf.cast(labels, tf.int32), [batch_size, -1])
  cluster_labels = tf.reshape(tf.cast(cluster_labels, tf.int32),
                              [batch_size, -1])
  loc_features = tf.reshape(tf.cast(loc_features, embedding.dtype),
                            [batch_size, -1, 2])
  valid_mask = tf.not_equal(labels, ignore_label)

  embedding_with_loc = common_utils.normalize_embedding(
      tf.concat([embedding, loc_features], axis=2))
  cluster_labels = common_utils.kmeans_with_initial_labels(
      embedding_with_loc, cluster_labels, num_total_clusters,
      kmeans_iterations, valid_mask)
  # Offsetting by image keeps the clusters of different images apart.
  image_offsets = tf.range(batch_size)[:, tf.newaxis] * num_total_clusters
  instance_labels = cluster_labels + image_offsets

  valid_indices = tf.where(tf.reshape(valid_mask, [-1]))[:, 0]
  valid_embedding = tf.gather(tf.reshape(embedding, [-1, embedding_dim]),
                              valid_indices)
  semantic_labels = tf.gather(tf.reshape(labels, [-1]), valid_indices)
  instance_labels = tf.gather(tf.reshape(instance_labels, [-1]),
                              valid_indices)
  label_offset = tf.maximum(tf.reduce_max(semantic_labels), 0) + 1
  unique_instance_labels, prototype_labels = (
      common_utils.prepare_prototype_labels(
          semantic_labels, instance_labels, tf.cast(label_offset, tf.int64)))
  return (valid_embedding, semantic_labels, unique_instance_labels,
          prototype_labels)


def add_segsort_loss(embedding,
                     labels,
                     embedding_dim,
                     ignore_label,
                     concentration,
                     cluster_labels,
                     num_clusters,
                     kmeans_iterations,
                     num_banks,
                     loc_features,
                     memory_bank=None):
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
      k-means labels (a `num_clusters` x `num_clusters` grid).
    num_clusters: An integer, the clusters per image axis.
    kmeans_iterations: The number of k-means iterations.
    num_banks: The number of memory banks to use; 0 uses none.
    loc_features: A float tensor `[batch, height, width, 2]` of (y, x) in
      [0, 1].
    memory_bank: An optional `MemoryBank`, read and pushed when
      `num_banks > 0`.

  Returns:
    A float32 scalar loss (under several replicas, this replica's share).
  """
  embedding = common_utils.normalize_embedding(
      tf.ensure_shape(tf.cast(embedding, tf.float32),
                      [None, None, None, embedding_dim]))
  valid_embedding, semantic_labels, unique_instance_labels, prototype_labels = (
      segment_by_kmeans(embedding, labels, ignore_label, cluster_labels,
                        num_clusters, kmeans_iterations, loc_features))
  use_memory = memory_bank is not None and num_banks > 0
  memory, memory_labels = memory_bank.read() if use_memory else (None, None)
  loss, new_memory, new_memory_labels = calculate_vmf_loss(
      valid_embedding, semantic_labels, unique_instance_labels,
      prototype_labels, concentration, memory, memory_labels,
      memory_bank.shuffle_seed() if use_memory else None)
  if use_memory:
    with tf.control_dependencies([memory_bank.push(new_memory,
                                                   new_memory_labels)]):
      loss = tf.identity(loss)
  return loss


def add_unsupervised_segsort_loss(embedding,
                                  concentration,
                                  cluster_labels,
                                  num_banks=0):
  """Computes the unsupervised SegSort loss from given segments.

  Every segment of every image (e.g. of a contour-based oversegmentation) has
  a prototype; a pixel's loss is -log(s(own) / sum of s over all prototypes of
  the batch), with s = exp(concentration * cosine).

  Args:
    embedding: A float tensor `[batch, height, width, D]`.
    concentration: A float, the vMF concentration (kappa).
    cluster_labels: An integer tensor `[batch, height, width, 1]` of segment
      ids per image; negative ids mark pixels to leave out (e.g. padding).
    num_banks: Must be 0: the unsupervised loss keeps no memory bank (the
      original release accepted and silently ignored this argument).

  Returns:
    A float32 scalar loss (under several replicas, this replica's share).

  Raises:
    ValueError: If `num_banks` is not 0.
  """
  if num_banks:
    raise ValueError('The unsupervised SegSort loss uses no memory bank; '
                     'got num_banks=%s, expected 0.' % (num_banks,))
  embedding = common_utils.normalize_embedding(tf.cast(embedding, tf.float32))
  shape = tf.shape(embedding)
  batch_size, embedding_dim = shape[0], shape[3]
  segment_ids = tf.reshape(tf.cast(cluster_labels, tf.int64), [batch_size, -1])
  valid_indices = tf.where(tf.reshape(segment_ids >= 0, [-1]))[:, 0]
  # Offsetting by image keeps equal ids of different images apart.
  ids_per_image = tf.maximum(tf.reduce_max(segment_ids), 0) + 1
  image_offsets = tf.range(tf.cast(batch_size, tf.int64))[:, tf.newaxis]
  keys = tf.gather(tf.reshape(segment_ids + image_offsets * ids_per_image,
                              [-1]), valid_indices)
  segment_keys, unique_segment_labels = tf.unique(keys)
  unique_segment_labels = tf.cast(unique_segment_labels, tf.int32)
  valid_embedding = tf.gather(tf.reshape(embedding, [-1, embedding_dim]),
                              valid_indices)

  segment_placeholders = tf.zeros_like(segment_keys, dtype=tf.int32)
  prototypes = _calculate_prototypes(valid_embedding, unique_segment_labels,
                                     segment_placeholders)
  prototypes, prototype_labels, own_offset = _gather_prototypes(
      prototypes, segment_placeholders)
  logits = concentration * tf.matmul(valid_embedding, prototypes,
                                     transpose_b=True)
  self_logits = tf.gather(logits, unique_segment_labels + own_offset,
                          axis=1, batch_dims=1)
  log_denominator = _masked_logsumexp(
      logits, tf.broadcast_to(prototype_labels[tf.newaxis] >= 0,
                              tf.shape(logits)))
  return mean_over_pixels(log_denominator - self_logits)
