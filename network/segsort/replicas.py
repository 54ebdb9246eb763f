"""The SegSort losses under `tf.distribute`: one global batch on every replica.

With several replicas the losses gather the prototypes of every replica, so
that each pixel is scored against the segments of the global batch, and each
replica returns its share of the global loss (its sum over pixels divided by
the global number of pixels): summing the replicas' values and gradients, as
`tf.distribute` does, gives the global mean.
"""

import tensorflow as tf


def replica_context():
  """Returns the replica context when the loss runs on several replicas."""
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return None
  return context


def gather_prototypes(prototypes, prototype_labels):
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
  context = replica_context()
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
  context = replica_context()
  if context is not None:
    count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
  return loss_sum / tf.maximum(count, 1.0)
