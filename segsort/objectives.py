"""One objective per training mode: what a run trains, apart from how.

The trainer (segsort.trainer) owns the strategy, the step, the loop and the
checkpoints, the same for every mode; an objective owns what differs:

* `inputs`: the batch keys its loss reads, and whether the data pipeline
  must add oversegmentations (`needs_oversegmentation`; else the labels of
  the data list are surveyed before training);
* `build_state()`: the state it trains with besides the network (the
  supervised SegSort memory bank), checkpointed with the run;
* `loss(outputs, batch)`: one replica's share of the global task loss, and
  `loss_name`, its TensorBoard name;
* `pictures(network, batch)`: the TensorBoard pictures of a batch;
* `inference_kind`: how its checkpoints are evaluated: 'segsort' (k-NN over
  prototypes) or 'softmax' (segsort.inference).

    objective = objectives.for_config(config)
    with strategy.scope():
      state = objective.build_state()   # {'memory_bank': ...} or {}
    task_loss = objective.loss(network_outputs, batch)
"""

import tensorflow as tf

from network.segsort import common_utils
from network.segsort import train_utils
from segsort import summaries


def softmax_loss(logits, labels, ignore_label):
  """Pixel-wise softmax cross-entropy, averaged over non-ignored pixels.

  Under several replicas the count of pixels is global, so that the
  replicas' values sum to the global mean (train_utils.mean_over_pixels, as
  the SegSort losses do).

  Args:
    logits: A float tensor `[B, h, w, num_classes]`.
    labels: An integer tensor `[B, h, w, 1]` at the logits' size.
    ignore_label: The label of pixels to leave out.

  Returns:
    A float32 scalar.
  """
  num_classes = logits.shape[-1]
  logits = tf.reshape(tf.cast(logits, tf.float32), [-1, num_classes])
  labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
  valid = tf.not_equal(labels, ignore_label)
  pixel_losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
    labels=tf.where(valid, labels, 0), logits=logits
  )
  return train_utils.mean_over_pixels(pixel_losses, valid)


def _at_output_size(batch, name, outputs):
  """A per-pixel batch entry resized (nearest) to the network's outputs."""
  return summaries.resize_nearest(batch[name], tf.shape(outputs)[1:3])


class Objective:
  """What every objective has; subclasses set the class attributes.

  Attributes:
    mode: The training mode (segsort.config.MODES) it serves.
    loss_name: The TensorBoard name of its task loss.
    inputs: The batch keys its loss reads; None: every key.
    needs_oversegmentation: Whether batches must hold oversegmentations
      (and may lack labels).
    inference_kind: 'segsort' or 'softmax', how its checkpoints are
      evaluated.
  """

  mode = None
  loss_name = None
  inputs = None
  needs_oversegmentation = False
  inference_kind = 'segsort'

  def __init__(self, config):
    """Binds the objective to a run.

    Args:
      config: The run's segsort.config.TrainConfig.
    """
    self.config = config

  def build_state(self):
    """Creates the state trained besides the network (in a strategy scope).

    Returns:
      A dict from checkpoint name to trackable object; empty by default.
    """
    return {}

  def loss(self, outputs, batch):
    """One replica's share of the global task loss, a float32 scalar.

    Args:
      outputs: The network's float32 outputs `[B, h, w, channels]`.
      batch: One replica's batch, a dict (see segsort.data).
    """
    raise NotImplementedError

  def pictures(self, network, batch):
    """The TensorBoard pictures of a batch: name -> uint8 `[B, H, W, 3]`."""
    return summaries.embedding_pictures(
      network, batch, self.config.num_clusters, self.config.kmeans_iterations
    )


class SupervisedSegSort(Objective):
  """SegSort: the vMF loss of k-means segments cut by the semantic labels.

  Attributes:
    memory_bank: The train_utils.MemoryBank of the last --num_banks steps'
      prototypes, or None (--num_banks 0, or before `build_state`).
  """

  mode = 'segsort'
  loss_name = 'segsort_loss'
  inputs = None

  def __init__(self, config):
    super().__init__(config)
    self.memory_bank = None

  def build_state(self):
    """Creates the memory bank when --num_banks > 0.

    Returns:
      {'memory_bank': MemoryBank} or {}.
    """
    config = self.config
    if config.num_banks <= 0:
      return {}
    # A bank holds one step's prototypes: at most one per cluster of every
    # image of the global batch.
    self.memory_bank = train_utils.MemoryBank(
      config.num_banks,
      common_utils.total_clusters(config.num_clusters) * config.batch_size,
      config.embedding_dim,
      name='memory_bank',
    )
    return {'memory_bank': self.memory_bank}

  def loss(self, outputs, batch):
    config = self.config
    return train_utils.add_segsort_loss(
      outputs,
      _at_output_size(batch, 'label', outputs),
      config.embedding_dim,
      config.ignore_label,
      config.concentration,
      _at_output_size(batch, 'cluster_label', outputs),
      config.num_clusters,
      config.kmeans_iterations,
      config.num_banks,
      _at_output_size(batch, 'loc_feature', outputs),
      self.memory_bank,
    )


class UnsupervisedSegSort(Objective):
  """Unsupervised SegSort: the vMF loss of oversegmentation segments."""

  mode = 'segsort_unsup'
  loss_name = 'segsort_unsup_loss'
  inputs = ('image', 'oversegmentation')
  needs_oversegmentation = True

  def loss(self, outputs, batch):
    # With segment groups, the oversegmentation's second channel.
    oversegmentation = _at_output_size(batch, 'oversegmentation', outputs)
    return train_utils.add_unsupervised_segsort_loss(
      outputs,
      self.config.concentration,
      oversegmentation[..., :1],
      segment_groups=(
        oversegmentation[..., 1:] if self.config.segment_groups else None
      ),
    )


class Softmax(Objective):
  """The pixel-wise softmax baseline: cross-entropy of class logits."""

  mode = 'softmax'
  loss_name = 'softmax_loss'
  inputs = ('image', 'label')
  inference_kind = 'softmax'

  def loss(self, outputs, batch):
    return softmax_loss(
      outputs,
      _at_output_size(batch, 'label', outputs),
      self.config.ignore_label,
    )

  def pictures(self, network, batch):
    return summaries.prediction_pictures(network, batch)


# The objective of every training mode.
OBJECTIVES = {
  objective.mode: objective
  for objective in (SupervisedSegSort, UnsupervisedSegSort, Softmax)
}


def modes_of_inference_kind(inference_kind):
  """The training modes whose checkpoints are evaluated as `inference_kind`.

  Args:
    inference_kind: 'segsort' or 'softmax'.

  Returns:
    A tuple of modes of segsort.config.MODES.
  """
  return tuple(
    mode
    for mode, objective in OBJECTIVES.items()
    if objective.inference_kind == inference_kind
  )


def for_config(config):
  """The objective of a run.

  Args:
    config: A segsort.config.TrainConfig.

  Returns:
    An Objective of `config.mode`, bound to `config`.
  """
  return OBJECTIVES[config.mode](config)
