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

Every shape is static from input to output, so that eager execution,
`tf.function` and XLA (`jit_compile=True`) compute the same loss and
gradients: segments are numbered by sorting (not `tf.unique`), pixels left
out and empty segment slots are masked (not gathered away), prototypes are
segment sums with a static number of slots, and pixels are scored against
the filled slots one chunk of prototypes at a time, so that the cost follows
the number of segments rather than the number of slots.
"""

import numbers

import tensorflow as tf

from network.segsort import common_utils

# Prototypes scored per iteration of the pixel-by-prototype loop: large
# enough for efficient matrix products, small enough that few slots are
# wasted past the last segment (the recipe has about 700 with its banks).
_PROTOTYPE_CHUNK = 128
# The widest range of logits whose exponentials, relative to their largest
# possible value, stay normal float32 numbers (exp(-80) > 1.2e-38).
_MAX_FIXED_SHIFT_RANGE = 80.0


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
        `common_utils.total_clusters(num_clusters) * global_batch_size`.
      embedding_dim: The prototypes' dimension.
      name: An optional module name.
    """
    super().__init__(name=name)
    self.num_banks = num_banks
    self.capacity = capacity
    self.embedding_dim = embedding_dim
    aggregation = tf.VariableAggregation.ONLY_FIRST_REPLICA
    self.prototypes = tf.Variable(
      tf.zeros([num_banks, capacity, embedding_dim]),
      trainable=False,
      name='memory',
      aggregation=aggregation,
    )
    self.labels = tf.Variable(
      tf.fill([num_banks, capacity], -1),
      trainable=False,
      name='memory_labels',
      aggregation=aggregation,
    )
    # Seeds the order of pushed prototypes, so that a resumed run keeps the
    # same prototypes as an uninterrupted one.
    self.num_pushes = tf.Variable(
      0,
      dtype=tf.int64,
      trainable=False,
      name='num_pushes',
      aggregation=aggregation,
    )

  def shuffle_seed(self):
    """Returns the stateless seed `[2]` for ordering the next push."""
    return tf.stack([self.num_pushes, tf.constant(0, tf.int64)])

  def read(self):
    """Returns every slot of every bank.

    Returns:
      prototypes: A float32 tensor `[num_banks * capacity, embedding_dim]`.
      labels: An int32 tensor `[num_banks * capacity]`, negative when empty.
    """
    return (
      tf.reshape(self.prototypes, [-1, self.embedding_dim]),
      tf.reshape(self.labels, [-1]),
    )

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
    new_prototypes = tf.concat(
      [
        tf.stop_gradient(tf.cast(prototypes, tf.float32)),
        tf.zeros([self.capacity, self.embedding_dim]),
      ],
      0,
    )[: self.capacity]
    new_labels = tf.concat(
      [tf.cast(labels, tf.int32), tf.fill([self.capacity], -1)], 0
    )[: self.capacity]
    self.prototypes.assign(
      tf.concat([self.prototypes[1:], new_prototypes[tf.newaxis]], 0)
    )
    self.num_pushes.assign_add(1)
    return self.labels.assign(
      tf.concat([self.labels[1:], new_labels[tf.newaxis]], 0)
    )


def _replica_context():
  """Returns the replica context when the loss runs on several replicas."""
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return None
  return context


def _gather_prototypes(prototypes, prototype_labels):
  """Gathers the prototype slots of every replica.

  Every replica has the same static number of slots, so the gathered slots of
  replica r start at r times that number.

  Args:
    prototypes: A float tensor `[num_slots, D]` of this replica.
    prototype_labels: An int32 tensor `[num_slots]`, negative for empty slots.

  Returns:
    all_prototypes: A float tensor `[num_replicas * num_slots, D]`.
    all_labels: An int32 tensor `[num_replicas * num_slots]`.
    own_offset: The index in `all_prototypes` of this replica's first slot.
  """
  context = _replica_context()
  if context is None:
    return prototypes, prototype_labels, 0
  own_offset = context.replica_id_in_sync_group * tf.shape(prototype_labels)[0]
  return (
    context.all_gather(prototypes, axis=0),
    context.all_gather(prototype_labels, axis=0),
    own_offset,
  )


def mean_over_pixels(pixel_losses, valid=None):
  """Averages per-pixel losses over the (valid) pixels of all replicas.

  Used by every training loss (the SegSort losses here, the softmax loss of
  segsort.trainer), so that the replicas' values sum to the global mean.

  Args:
    pixel_losses: A float tensor `[num_pixels]` of this replica.
    valid: An optional boolean tensor `[num_pixels]`; pixels where it is False
      count neither in the sum nor in the number of pixels (and get a zero
      gradient). A mask rather than a gathered subset keeps shapes static.

  Returns:
    A float scalar: this replica's sum divided by the global number of
    (valid) pixels (0 when there is no pixel anywhere).
  """
  if valid is None:
    count = tf.cast(tf.size(pixel_losses), pixel_losses.dtype)
  else:
    pixel_losses = tf.where(valid, pixel_losses, tf.zeros_like(pixel_losses))
    count = tf.reduce_sum(tf.cast(valid, pixel_losses.dtype))
  loss_sum = tf.reduce_sum(pixel_losses)
  context = _replica_context()
  if context is not None:
    count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
  return loss_sum / tf.maximum(count, 1.0)


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


def _calculate_prototypes(embedding, segment_ids, num_slots):
  """Calculates segment prototypes by segment sums.

  Args:
    embedding: A float tensor `[num_pixels, D]`.
    segment_ids: An int32 tensor `[num_pixels]` in `[0, num_slots)`; negative
      ids (pixels left out) are dropped.
    num_slots: The number of prototype slots.

  Returns:
    A float tensor `[num_slots, D]` of unit vectors (zero for empty slots).
  """
  return common_utils.normalize_embedding(
    tf.math.unsorted_segment_sum(embedding, segment_ids, num_slots)
  )


def _compact_prototypes(prototypes, prototype_labels):
  """Moves the filled slots to the front, in order, padded to whole chunks.

  Args:
    prototypes: A float tensor `[num_slots, D]`.
    prototype_labels: An int32 tensor `[num_slots]`, negative when empty.

  Returns:
    prototypes: A float tensor `[num_padded, D]`, the filled slots first
      (zero rows after them), with `num_padded` the multiple of
      `_PROTOTYPE_CHUNK` at or above `num_slots`.
    labels: An int32 tensor `[num_padded]`, -1 after the filled slots.
    positions: An int32 tensor `[num_slots]`, every filled slot's new index
      (-1 for empty slots).
    count: An int32 scalar, the number of filled slots.
  """
  num_slots = tf.shape(prototype_labels)[0]
  num_padded = -(-num_slots // _PROTOTYPE_CHUNK) * _PROTOTYPE_CHUNK
  filled = prototype_labels >= 0
  positions = tf.where(filled, tf.cumsum(tf.cast(filled, tf.int32)) - 1, -1)
  # Segment sums of unique positions are copies, with a gather as gradient.
  compacted = tf.math.unsorted_segment_sum(prototypes, positions, num_padded)
  labels = (
    tf.math.unsorted_segment_sum(prototype_labels + 1, positions, num_padded)
    - 1
  )
  return (
    compacted,
    labels,
    positions,
    tf.reduce_sum(tf.cast(filled, tf.int32)),
  )


def _chunk_masks(start, pixel_classes, self_indices, chunk_classes):
  """Tells, for a chunk of prototypes, which count for which pixel.

  Args:
    start: The index of the chunk's first prototype.
    pixel_classes: An int32 tensor `[num_pixels]`.
    self_indices: An int32 tensor `[num_pixels]`, every pixel's own
      prototype (-1 when the pixel is left out).
    chunk_classes: An int32 tensor `[chunk]`, -1 for empty slots.

  Returns:
    same: A boolean tensor `[num_pixels, chunk]`, prototypes of the pixel's
      class other than its own.
    other: A boolean tensor `[num_pixels, chunk]`, prototypes of other
      classes.
    is_self: A boolean tensor `[num_pixels, chunk]`, the pixel's own
      prototype.
  """
  filled = chunk_classes[tf.newaxis] >= 0
  is_self = tf.equal(
    self_indices[:, tf.newaxis],
    start + tf.range(tf.shape(chunk_classes)[0])[tf.newaxis],
  )
  same_class = tf.equal(pixel_classes[:, tf.newaxis], chunk_classes[tf.newaxis])
  same = tf.logical_and(
    tf.logical_and(filled, same_class), tf.logical_not(is_self)
  )
  other = tf.logical_and(filled, tf.logical_not(same_class))
  return same, other, is_self


def _accumulate_logsumexp(logits, mask, running_max, running_sum, fixed_shift):
  """Adds the masked logits of a chunk to a running log-sum-exp per row.

  The sum is kept relative to a shift, log-sum-exp = running_max +
  log(running_sum), so that no concentration overflows or underflows.

  Args:
    logits: A float tensor `[num_rows, chunk]`.
    mask: A boolean tensor of the same shape, the entries to add.
    running_max: A float tensor `[num_rows]`, the shift: -inf before any
      entry, or the fixed shift.
    running_sum: A float tensor `[num_rows]`, 0 before any entry.
    fixed_shift: Whether `running_max` is a fixed bound of every logit
      instead of the running maximum (one pass over the logits instead of
      two; see `_vmf_log_terms`).

  Returns:
    The updated `running_max` and `running_sum`.
  """
  if fixed_shift:
    return running_max, running_sum + tf.reduce_sum(
      tf.where(
        mask, tf.exp(logits - running_max[:, tf.newaxis]), tf.zeros_like(logits)
      ),
      axis=1,
    )
  negative_infinity = tf.constant(-float('inf'), logits.dtype)
  new_max = tf.maximum(
    running_max,
    tf.reduce_max(tf.where(mask, logits, negative_infinity), axis=1),
  )
  shift = tf.where(tf.math.is_finite(new_max), new_max, tf.zeros_like(new_max))
  new_sum = running_sum * tf.exp(running_max - shift) + tf.reduce_sum(
    tf.where(
      mask, tf.exp(logits - shift[:, tf.newaxis]), tf.zeros_like(logits)
    ),
    axis=1,
  )
  return new_max, new_sum


@tf.function(jit_compile=True)
def _vmf_log_terms_forward(
  embedding,
  prototypes,
  pixel_classes,
  self_indices,
  prototype_classes,
  num_prototypes,
  concentration,
  fixed_shift,
):
  """Computes the log-domain numerator and other-class sum of every pixel.

  See `_vmf_log_terms`. Compiled with XLA in every mode (eager, tf.function),
  so that the elementwise work on each `[pixels x chunk]` block is fused into
  a few passes, and every mode computes the same numbers.
  """
  num_pixels = tf.shape(embedding)[0]
  scaled_embedding = concentration * embedding
  zeros = tf.zeros([num_pixels], embedding.dtype)
  negative_infinity = tf.fill(
    [num_pixels], tf.constant(-float('inf'), embedding.dtype)
  )
  initial_max = (
    tf.fill([num_pixels], concentration) if fixed_shift else negative_infinity
  )

  def body(chunk_index, self_logits, same_max, same_sum, other_max, other_sum):
    start = chunk_index * _PROTOTYPE_CHUNK
    logits = tf.matmul(
      scaled_embedding,
      tf.slice(prototypes, [start, 0], [_PROTOTYPE_CHUNK, -1]),
      transpose_b=True,
    )
    same, other, is_self = _chunk_masks(
      start,
      pixel_classes,
      self_indices,
      tf.slice(prototype_classes, [start], [_PROTOTYPE_CHUNK]),
    )
    self_logits += tf.reduce_sum(
      tf.where(is_self, logits, tf.zeros_like(logits)), axis=1
    )
    same_max, same_sum = _accumulate_logsumexp(
      logits, same, same_max, same_sum, fixed_shift
    )
    other_max, other_sum = _accumulate_logsumexp(
      logits, other, other_max, other_sum, fixed_shift
    )
    return (
      chunk_index + 1,
      self_logits,
      same_max,
      same_sum,
      other_max,
      other_sum,
    )

  num_chunks = -(-num_prototypes // _PROTOTYPE_CHUNK)
  _, self_logits, same_max, same_sum, other_max, other_sum = tf.while_loop(
    lambda chunk_index, *_: chunk_index < num_chunks,
    body,
    [tf.constant(0), zeros, initial_max, zeros, initial_max, zeros],
  )
  # A sum is positive once it has an entry: at least exp(0) = 1 relative to
  # the running maximum, or exp(-2 * concentration) > 0 below the fixed one.
  has_same = same_sum > 0
  log_numerator = tf.where(
    has_same,
    same_max + tf.math.log(tf.where(has_same, same_sum, 1.0)),
    self_logits,
  )
  has_other = other_sum > 0
  log_others = tf.where(
    has_other,
    other_max + tf.math.log(tf.where(has_other, other_sum, 1.0)),
    negative_infinity,
  )
  return log_numerator, log_others, has_same


@tf.function(jit_compile=True)
def _vmf_log_terms_backward(
  embedding,
  prototypes,
  pixel_classes,
  self_indices,
  prototype_classes,
  num_prototypes,
  num_differentiable,
  concentration,
  log_numerator,
  log_others,
  has_same,
  numerator_gradient,
  others_gradient,
):
  """Back-propagates into the embedding and prototypes of `_vmf_log_terms`.

  The logits of every chunk are computed again rather than kept: keeping
  them would take memory for `[pixels x all slots]`. The derivative of a
  log-sum-exp is the softmax of its entries, exp(logit - log-sum-exp).
  """
  scaled_embedding = concentration * embedding
  has_others = tf.math.is_finite(log_others)
  safe_log_others = tf.where(has_others, log_others, tf.zeros_like(log_others))[
    :, tf.newaxis
  ]
  has_others = has_others[:, tf.newaxis]
  has_same = has_same[:, tf.newaxis]
  log_numerator = log_numerator[:, tf.newaxis]
  numerator_gradient = numerator_gradient[:, tf.newaxis]
  others_gradient = others_gradient[:, tf.newaxis]

  def body(chunk_index, embedding_gradient, prototype_gradient):
    start = chunk_index * _PROTOTYPE_CHUNK
    chunk_prototypes = tf.slice(prototypes, [start, 0], [_PROTOTYPE_CHUNK, -1])
    logits = tf.matmul(scaled_embedding, chunk_prototypes, transpose_b=True)
    same, other, is_self = _chunk_masks(
      start,
      pixel_classes,
      self_indices,
      tf.slice(prototype_classes, [start], [_PROTOTYPE_CHUNK]),
    )
    # The numerator's terms: the same-class prototypes, or the own one.
    in_numerator = tf.where(has_same, same, is_self)
    zeros = tf.zeros_like(logits)
    logit_gradient = tf.where(
      tf.logical_and(other, has_others),
      others_gradient * tf.exp(logits - safe_log_others),
      zeros,
    ) + tf.where(
      in_numerator, numerator_gradient * tf.exp(logits - log_numerator), zeros
    )
    embedding_gradient += tf.matmul(logit_gradient, chunk_prototypes)
    # Prototypes after the differentiable ones (memory) take no gradient.
    prototype_gradient = tf.cond(
      start < num_differentiable,
      lambda: tf.tensor_scatter_nd_update(
        prototype_gradient,
        (start + tf.range(_PROTOTYPE_CHUNK))[:, tf.newaxis],
        tf.matmul(logit_gradient, embedding, transpose_a=True),
      ),
      lambda: prototype_gradient,
    )
    return chunk_index + 1, embedding_gradient, prototype_gradient

  num_chunks = -(-num_prototypes // _PROTOTYPE_CHUNK)
  _, embedding_gradient, prototype_gradient = tf.while_loop(
    lambda chunk_index, *_: chunk_index < num_chunks,
    body,
    [tf.constant(0), tf.zeros_like(embedding), tf.zeros_like(prototypes)],
  )
  # d(concentration * e . p) / de = concentration * p, and likewise for p.
  return (
    concentration * embedding_gradient,
    concentration * prototype_gradient,
  )


def _vmf_log_terms(
  embedding,
  prototypes,
  pixel_classes,
  self_indices,
  prototype_classes,
  num_prototypes,
  num_differentiable,
  concentration,
):
  """Scores every pixel against every prototype, one chunk at a time.

  With logits concentration * cosine between pixel p and prototype j: the
  numerator is the log-sum-exp over filled prototypes of p's class other than
  its own (over its own prototype alone when there is none), and the others
  term the log-sum-exp over filled prototypes of other classes. Only the
  chunks below `num_prototypes` are visited, so the cost follows the number
  of segments, while every shape is static.

  Args:
    embedding: A float32 tensor `[num_pixels, D]` of unit (or zero) vectors:
      the logits are then bounded by the concentration.
    prototypes: A float32 tensor `[num_slots, D]`, `num_slots` a multiple of
      `_PROTOTYPE_CHUNK`, filled slots first.
    pixel_classes: An int32 tensor `[num_pixels]`.
    self_indices: An int32 tensor `[num_pixels]`, every pixel's own prototype
      (-1 for pixels left out, whose terms are then meaningless).
    prototype_classes: An int32 tensor `[num_slots]`, -1 for empty slots.
    num_prototypes: An int32 scalar, the number of filled slots.
    num_differentiable: An int32 scalar; prototypes from this index on get a
      zero gradient (memory-bank prototypes).
    concentration: A Python float (or float32 scalar tensor), the vMF
      concentration.

  Returns:
    log_numerator: A float32 tensor `[num_pixels]`.
    log_others: A float32 tensor `[num_pixels]`, -inf without other classes.
  """
  inputs = (pixel_classes, self_indices, prototype_classes, num_prototypes)
  # Logits lie in [-concentration, concentration], so exp(logit -
  # concentration) >= exp(-2 * concentration) stays a normal float32 (above
  # exp(-87)) up to this concentration: a fixed shift is then exact, and
  # saves the running maximum's extra pass.
  fixed_shift = (
    isinstance(concentration, numbers.Real)
    and 2.0 * concentration <= _MAX_FIXED_SHIFT_RANGE
  )
  concentration = tf.cast(concentration, tf.float32)

  @tf.custom_gradient
  def log_terms(embedding, prototypes):
    # Unwatched inputs keep tapes from differentiating the compiled loop.
    embedding = tf.stop_gradient(embedding)
    prototypes = tf.stop_gradient(prototypes)
    log_numerator, log_others, has_same = _vmf_log_terms_forward(
      embedding, prototypes, *inputs, concentration, fixed_shift
    )

    def gradient(numerator_gradient, others_gradient):
      return _vmf_log_terms_backward(
        embedding,
        prototypes,
        *inputs,
        num_differentiable,
        concentration,
        log_numerator,
        log_others,
        has_same,
        numerator_gradient,
        others_gradient,
      )

    return (log_numerator, log_others), gradient

  return log_terms(embedding, prototypes)


def _shuffle_keys(size, seed):
  """Returns distinct pseudo-random int64 keys in `[0, 2**32)`, one per index.

  TensorFlow's stateless random ops give other numbers under XLA than in its
  own kernels; this bijective integer hash (MurmurHash3's finaliser) of the
  index and the seed gives the same keys in every mode.

  Args:
    size: The number of keys.
    seed: An int64 tensor `[2]`; its first element varies the keys.

  Returns:
    An int64 tensor `[size]`.
  """
  offset = (seed[0] % 2**31) * 0x9E3779B9 % 2**32
  hashed = tf.cast((tf.range(size, dtype=tf.int64) + offset) % 2**32, tf.uint32)
  for shift, multiplier in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
    hashed = tf.bitwise.bitwise_xor(
      hashed, tf.bitwise.right_shift(hashed, tf.constant(shift, tf.uint32))
    )
    hashed *= tf.constant(multiplier, tf.uint32)
  hashed = tf.bitwise.bitwise_xor(
    hashed, tf.bitwise.right_shift(hashed, tf.constant(16, tf.uint32))
  )
  return tf.cast(hashed, tf.int64)


def calculate_vmf_loss(
  embedding,
  semantic_labels,
  unique_instance_labels,
  prototype_labels,
  concentration,
  memory=None,
  memory_labels=None,
  shuffle_seed=None,
):
  """Calculates the supervised SegSort (von Mises-Fisher) loss.

  With s = exp(concentration * cosine) between a pixel of class c in segment g
  and every prototype: same = sum of s over prototypes of class c other than
  g; numerator = same if such prototypes exist, else s(g); denominator =
  numerator + sum of s over prototypes of other classes. The loss is the mean
  over pixels of -log(numerator / denominator). All shapes are static: pixels
  left out and empty prototype slots are masked, not removed.

  Args:
    embedding: A float tensor `[num_pixels, embedding_dim]` of unit vectors.
    semantic_labels: An integer tensor `[num_pixels]`.
    unique_instance_labels: An integer tensor `[num_pixels]`, every pixel's
      segment in `[0, num_prototypes)`; negative for pixels left out.
    prototype_labels: An integer tensor `[num_prototypes]`, every segment's
      semantic label; negative for empty slots (segments without pixels).
    concentration: A float, the vMF concentration (kappa).
    memory: An optional float tensor `[num_memory, embedding_dim]` of
      prototypes from earlier steps (no gradient flows into them).
    memory_labels: An integer tensor `[num_memory]` of their labels; negative
      labels mark empty slots.
    shuffle_seed: An optional int64 tensor `[2]`, the seed of the random
      order of `new_memory` (the same in every mode, XLA included); drawn
      from TensorFlow's stateful generator when None.

  Returns:
    loss: A float32 scalar (under several replicas, this replica's share).
    new_memory: A float32 tensor `[num_replicas * num_prototypes,
      embedding_dim]`, the step's filled prototype slots (of all replicas) in
      random order followed by the empty ones, to push into the memory bank;
      None when `memory` is None.
    new_memory_labels: An int32 tensor of their labels (negative for empty
      slots); None when `memory` is None.
  """
  embedding = tf.cast(embedding, tf.float32)
  semantic_labels = tf.cast(semantic_labels, tf.int32)
  unique_instance_labels = tf.cast(unique_instance_labels, tf.int32)
  prototype_labels = tf.cast(prototype_labels, tf.int32)
  valid = unique_instance_labels >= 0

  prototypes = _calculate_prototypes(
    embedding, unique_instance_labels, tf.shape(prototype_labels)[0]
  )
  prototypes, prototype_labels, own_offset = _gather_prototypes(
    prototypes, prototype_labels
  )
  num_batch_slots = tf.shape(prototype_labels)[0]

  if memory is not None:
    if shuffle_seed is None:
      shuffle_seed = tf.random.uniform([2], maxval=2**31, dtype=tf.int64)
    # Empty slots (keys >= 2**32) go last, so that they never displace a
    # prototype when the bank keeps only its capacity's worth.
    shuffled = tf.argsort(
      _shuffle_keys(num_batch_slots, shuffle_seed)
      + 2**32 * tf.cast(prototype_labels < 0, tf.int64)
    )
    new_memory = tf.stop_gradient(tf.gather(prototypes, shuffled))
    new_memory_labels = tf.gather(prototype_labels, shuffled)
    memory = common_utils.normalize_embedding(
      tf.stop_gradient(tf.cast(memory, tf.float32))
    )
    all_prototypes = tf.concat([prototypes, memory], 0)
    all_labels = tf.concat(
      [prototype_labels, tf.cast(memory_labels, tf.int32)], 0
    )
  else:
    new_memory = new_memory_labels = None
    all_prototypes, all_labels = prototypes, prototype_labels

  compacted, compacted_labels, positions, count = _compact_prototypes(
    all_prototypes, all_labels
  )
  # The batch's filled slots come first, then the memory's.
  num_differentiable = tf.reduce_sum(
    tf.cast(all_labels[:num_batch_slots] >= 0, tf.int32)
  )
  self_indices = tf.where(
    valid,
    tf.gather(positions, tf.maximum(unique_instance_labels, 0) + own_offset),
    -1,
  )
  log_numerator, log_others = _vmf_log_terms(
    embedding,
    compacted,
    tf.where(valid, semantic_labels, -1),
    self_indices,
    compacted_labels,
    count,
    num_differentiable,
    concentration,
  )
  # -log(n / (n + o)) = softplus(log o - log n), exact and stable.
  pixel_losses = tf.nn.softplus(log_others - log_numerator)
  return (mean_over_pixels(pixel_losses, valid), new_memory, new_memory_labels)


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
  """
  embedding_dim = tf.shape(embedding)[3]
  semantic_labels, unique_instance_labels, prototype_labels = (
    _cluster_and_number(
      tf.stop_gradient(embedding),
      labels,
      cluster_labels,
      loc_features,
      ignore_label,
      common_utils.cluster_grid(num_clusters),
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
    num_banks: The number of memory banks to use; 0 uses none.
    loc_features: A float tensor `[batch, height, width, 2]` of (y, x) in
      [0, 1].
    memory_bank: An optional `MemoryBank`, read and pushed when
      `num_banks > 0`.

  Returns:
    A float32 scalar loss (under several replicas, this replica's share).
  """
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
      cluster_labels,
      num_clusters,
      kmeans_iterations,
      loc_features,
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


def add_unsupervised_segsort_loss(
  embedding, concentration, cluster_labels, num_banks=0
):
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
    raise ValueError(
      'The unsupervised SegSort loss uses no memory bank; '
      'got num_banks=%s, expected 0.' % (num_banks,)
    )
  embedding = common_utils.normalize_embedding(tf.cast(embedding, tf.float32))
  shape = tf.shape(embedding)
  batch_size, embedding_dim = shape[0], shape[3]
  segment_ids = tf.reshape(tf.cast(cluster_labels, tf.int64), [batch_size, -1])
  valid = tf.reshape(segment_ids >= 0, [-1])
  # Offsetting by image keeps equal ids of different images apart.
  image_offsets = tf.bitwise.left_shift(
    tf.range(tf.cast(batch_size, tf.int64))[:, tf.newaxis], 32
  )
  unique_segment_labels = _number_segments(
    tf.reshape(segment_ids + image_offsets, [-1]), valid
  )
  embedding = tf.reshape(embedding, [-1, embedding_dim])
  num_pixels = tf.shape(unique_segment_labels)[0]
  prototypes = _calculate_prototypes(
    embedding, unique_segment_labels, num_pixels
  )
  num_segments = tf.reduce_max(unique_segment_labels) + 1
  filled = tf.where(tf.range(num_pixels) < num_segments, 0, -1)
  prototypes, filled, own_offset = _gather_prototypes(prototypes, filled)
  compacted, compacted_filled, positions, count = _compact_prototypes(
    prototypes, filled
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
  log_numerator, log_others = _vmf_log_terms(
    embedding,
    compacted,
    self_indices,
    self_indices,
    prototype_classes,
    count,
    count,
    concentration,
  )
  return mean_over_pixels(tf.nn.softplus(log_others - log_numerator), valid)
