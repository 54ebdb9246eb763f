"""The training step: losses, gradients and the update, on every replica.

A step draws `iter_size` global batches, computes the loss and gradients of
each on every replica, averages them, scales the head's gradients by
--head_learning_rate_multiplier and applies them with momentum SGD at the
poly learning rate, then (with --ema_decay) moves the weight average. The
loss functions gather prototypes across replicas and return each replica's
share of the global loss, so that the optimizer's sum over replicas is the
global gradient.
"""

import tensorflow as tf

from segsort.training import distribution


class TrainingStep:
  """The step functions of one run.

  Attributes:
    train_step: The tf.function of one training step: from an iterator of
      this worker's batches to (the loss terms, 1.0 if the loss or a gradient
      is not finite else 0.0), summed over the replicas.
  """

  def __init__(self, config, strategy, state, objective):
    """Builds the step of a run.

    Args:
      config: The TrainConfig.
      strategy: The tf.distribute strategy.
      state: The segsort.training.state.TrainingState trained.
      objective: The segsort.objectives.Objective of the config's mode.
    """
    self._config = config
    self._strategy = strategy
    self._state = state
    self._objective = objective
    self._network_outputs = self._make_network_outputs()
    self.train_step = self._make_train_step()
    self._compute_global_losses_and_gradients = None

  def _losses_and_gradients(self, batch):
    """Computes one replica's loss terms and gradients on one batch.

    Returns:
      losses: A dict of float32 scalars: 'task_loss', 'weight_decay' and
        'total_loss', each this replica's share of the global value.
      gradients: A list aligned with the trainable variables, of the
        (loss-scaled, with --mixed_precision) total loss.
    """
    config = self._config
    state = self._state
    with tf.GradientTape() as tape:
      outputs = self._network_outputs(batch['image'])
      task_loss = self._objective.loss(outputs, batch)
      # Every replica adds its share, so that the sum counts it once.
      weight_decay = (
        config.weight_decay
        * tf.add_n(
          [
            tf.nn.l2_loss(tf.cast(kernel, tf.float32))
            for kernel in state.conv_kernels
          ]
        )
        / self._strategy.num_replicas_in_sync
      )
      total_loss = task_loss + weight_decay
      scaled_loss = (
        state.optimizer.scale_loss(total_loss)
        if config.mixed_precision
        else total_loss
      )
    gradients = tape.gradient(scaled_loss, state.trainable_variables)
    losses = {
      'task_loss': task_loss,
      'weight_decay': weight_decay,
      'total_loss': total_loss,
    }
    return losses, gradients

  def _replica_step(self, micro_batches):
    """Accumulates gradients over micro-batches and applies them.

    Returns:
      losses: The loss terms averaged over the micro-batches.
      non_finite: 1.0 if the loss (or, without loss scaling, a gradient) is
        NaN or infinite, else 0.0.
    """
    state = self._state
    compute = self._losses_and_gradients
    losses, gradients = compute(micro_batches[0])
    for batch in micro_batches[1:]:
      # One micro-batch at a time: their activations never coexist.
      with tf.control_dependencies(gradients):
        batch_losses, batch_gradients = compute(batch)
      losses = {name: losses[name] + batch_losses[name] for name in losses}
      gradients = [
        total + new for total, new in zip(gradients, batch_gradients)
      ]
    scale = len(micro_batches)
    losses = {name: value / scale for name, value in losses.items()}
    gradients = [
      gradient * (multiplier / scale)
      for gradient, multiplier in zip(gradients, state.gradient_multipliers)
    ]
    finite = tf.math.is_finite(losses['total_loss'])
    if self._config.mixed_precision:
      # The loss-scale optimizer skips the update (and lowers its scale) when
      # a gradient is not finite, by this same test; such a step must not
      # advance the step, and with it the learning-rate schedule.
      applied = tf.reduce_all(
        [tf.reduce_all(tf.math.is_finite(gradient)) for gradient in gradients]
      )
    else:
      finite = tf.logical_and(
        finite, tf.math.is_finite(tf.linalg.global_norm(gradients))
      )
      applied = True
    state.optimizer.apply_gradients(zip(gradients, state.trainable_variables))
    state.step.assign_add(tf.cast(applied, tf.int64))
    return losses, 1.0 - tf.cast(finite, tf.float32)

  def _compile_replica_step(self):
    """Whether --jit_compile compiles the whole replica step with XLA."""
    return (
      self._config.jit_compile
      and not self._config.sync_batch_norm
      and self._strategy.num_replicas_in_sync == 1
    )

  def _make_network_outputs(self):
    """The function from images to the network's float32 outputs."""
    config = self._config
    network = self._state.network

    def network_outputs(images):
      return tf.cast(network(images, training=config.is_training), tf.float32)

    if (
      config.jit_compile
      and not config.sync_batch_norm
      and not self._compile_replica_step()
    ):
      # A compiled function cannot hold MirroredStrategy's collectives (the
      # losses' gathers, the gradients' all-reduce) on this TensorFlow: only
      # the network is compiled.
      return tf.function(network_outputs, jit_compile=True)
    return network_outputs

  def _make_train_step(self):
    """Builds the tf.function of one training step."""
    iter_size = self._config.iter_size
    replica_step = self._replica_step
    if self._compile_replica_step():
      # One XLA program for the network, the loss, the gradients and the
      # update: the losses have static shapes (network/segsort).
      replica_step = tf.function(self._replica_step, jit_compile=True)

    state = self._state

    @tf.function
    def train_step(iterator):
      micro_batches = [next(iterator) for _ in range(iter_size)]
      steps_before = state.step.read_value()
      results = distribution.run_on_replicas(
        self._strategy, replica_step, micro_batches
      )
      # A step the loss-scale optimizer skipped leaves the average as well.
      if state.weight_average is not None and state.step > steps_before:
        state.update_weight_average()
      return results

    return train_step

  def losses_and_gradients(self, batch):
    """Computes the global loss terms and gradients of a global batch.

    See segsort.trainer.Trainer.losses_and_gradients, which documents it.
    """
    if self._compute_global_losses_and_gradients is None:

      @tf.function
      def compute(batch):
        return distribution.run_on_replicas(
          self._strategy,
          lambda batches: self._losses_and_gradients(batches[0]),
          [batch],
        )

      self._compute_global_losses_and_gradients = compute
    return self._compute_global_losses_and_gradients(batch)
