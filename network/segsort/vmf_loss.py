"""The supervised SegSort (von Mises-Fisher) loss of numbered segments.

A pixel should be likely under the prototypes (mean directions) of the
segments of its own class and unlikely under the others'; the scores are the
chunked log-sum-exps of `chunked_logsumexp`. Prototypes are segment sums with
a static number of slots, and pixels left out and empty slots are masked, not
gathered away, so that every shape is static.
"""

import tensorflow as tf

from network.segsort import chunked_logsumexp
from network.segsort import common_utils
from network.segsort import replicas


def calculate_prototypes(embedding, segment_ids, num_slots):
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

  prototypes = calculate_prototypes(
    embedding, unique_instance_labels, tf.shape(prototype_labels)[0]
  )
  prototypes, prototype_labels, own_offset = replicas.gather_prototypes(
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

  compacted, compacted_labels, positions, count = (
    chunked_logsumexp.compact_prototypes(all_prototypes, all_labels)
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
  log_numerator, log_others = chunked_logsumexp.vmf_log_terms(
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
  return (
    replicas.mean_over_pixels(pixel_losses, valid),
    new_memory,
    new_memory_labels,
  )
