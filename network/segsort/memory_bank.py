"""The prototype memory bank of the supervised SegSort loss."""

import tensorflow as tf


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
