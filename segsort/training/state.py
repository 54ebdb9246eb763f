"""What a run trains: the network, the step, the optimizer and its rate.

The optimizer is momentum SGD at the poly learning rate of the step
variable; the head's gradients are scaled by --head_learning_rate_multiplier
(the original's 10 by default).
With --mixed_precision the network computes in float16 and the optimizer
scales the loss (keras.optimizers.LossScaleOptimizer).

Keras' SGD folds the learning rate into the momentum (v = m*v - lr*g) where
TF1's MomentumOptimizer applied it afterwards (a = m*a + g, w -= lr*a); with
the slowly decaying poly rate the two differ negligibly.
"""

import contextlib

import keras
import tensorflow as tf

from network import builder
from segsort.training import distribution


def poly_learning_rate(
  base_learning_rate, step, num_steps, power, warmup_steps=0
):
  """The poly policy, optionally after a linear warm-up.

  base * (1 - step / num_steps) ** power, never below 0 (the original
  release's schedule), times min(1, (step + 1) / warmup_steps) when
  warmup_steps > 0: the first steps of a network trained from random weights
  take small updates (Goyal et al., "Accurate, large minibatch SGD", 2017).

  Args:
    base_learning_rate: A float, the rate at step 0 without warm-up.
    step: A scalar (int or tensor), the 0-based step the rate is for.
    num_steps: An int > 0, the steps of the whole schedule.
    power: A float, the poly decay power.
    warmup_steps: An int >= 0, the steps of the linear warm-up.

  Returns:
    A float32 scalar tensor.
  """
  step = tf.cast(step, tf.float32)
  progress = tf.minimum(step / float(num_steps), 1.0)
  rate = base_learning_rate * tf.pow(1.0 - progress, power)
  if warmup_steps > 0:
    rate *= tf.minimum((step + 1.0) / float(warmup_steps), 1.0)
  return rate


@contextlib.contextmanager
def _dtype_policy(name):
  """Sets Keras' global dtype policy for the layers built inside."""
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(name)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


class TrainingState:
  """The variables a run trains and checkpoints, built under a strategy.

  Attributes:
    network: The SegmentationNetwork.
    step: The int64 variable counting applied steps.
    objective_state: The objective's state besides the network, a dict of
      trackables by checkpoint name (see segsort.objectives).
    optimizer: The Keras SGD optimizer (in a LossScaleOptimizer with
      --mixed_precision).
    trainable_variables: The network's trainable variables.
    weight_average: With --ema_decay, a float32 variable per trainable
      variable: their exponential moving average (`update_weight_average`);
      else None.
    gradient_multipliers: A float per trainable variable: the head's
      --head_learning_rate_multiplier, 1 elsewhere.
    conv_kernels: The trainable convolution kernels, weight-decayed.
  """

  def __init__(self, config, strategy, objective):
    """Builds the state of a run of `config` in the scope of `strategy`."""
    self._config = config
    with strategy.scope():
      with _dtype_policy(
        'mixed_float16' if config.mixed_precision else 'float32'
      ):
        self.network = builder.build_network_from_config(
          config, use_global_status=config.use_global_status
        )
      if config.sync_batch_norm:
        distribution.synchronize_batch_norm(self.network)
      self.step = tf.Variable(
        0,
        dtype=tf.int64,
        trainable=False,
        name='step',
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
      )
      self.objective_state = objective.build_state()
      self.optimizer = keras.optimizers.SGD(
        learning_rate=self.learning_rate, momentum=config.momentum
      )
      if config.mixed_precision:
        self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
      self.trainable_variables = self.network.trainable_variables
      self.optimizer.build(self.trainable_variables)
      self.weight_average = None
      if config.ema_decay:
        self.weight_average = [
          tf.Variable(
            tf.convert_to_tensor(variable),
            trainable=False,
            name='weight_average_%d' % index,
          )
          for index, variable in enumerate(self.trainable_variables)
        ]
    head = {id(variable) for variable in self.network.head_variables}
    self.gradient_multipliers = [
      config.head_learning_rate_multiplier if id(variable) in head else 1.0
      for variable in self.trainable_variables
    ]
    # The original regularised the weights of every convolution.
    self.conv_kernels = [
      variable
      for variable in self.trainable_variables
      if variable.path.endswith('kernel')
    ]

  def update_weight_average(self):
    """Moves the weight average towards the weights, after a step.

    Called in cross-replica context inside the training step's tf.function
    (segsort.training.step), after the step counter has advanced.

    The decay is --ema_decay, less over the first steps, so that the
    random initial weights weigh little in short runs: min(decay,
    (1 + step) / (10 + step)), as TF1's tf.train.ExponentialMovingAverage
    with num_updates (Polyak and Juditsky, "Acceleration of stochastic
    approximation by averaging", 1992, for averaging the iterates).
    """
    step = tf.cast(self.step, tf.float32)
    decay = tf.minimum(self._config.ema_decay, (1.0 + step) / (10.0 + step))
    for average, variable in zip(self.weight_average, self.trainable_variables):
      average.assign_sub((1.0 - decay) * (average - variable))

  @tf.function
  def use_weight_average(self):
    """Replaces the trained weights by their average (at the last step)."""
    for average, variable in zip(self.weight_average, self.trainable_variables):
      variable.assign(average)

  @contextlib.contextmanager
  def averaged_weights(self):
    """Within the block the network holds the weight average, if any.

    For validation during training (--eval_every), so that it scores the
    weights the run will end with; the trained weights are put back after
    the block, also when it raises.
    """
    if self.weight_average is None:
      yield
      return
    # Read values are snapshots: the assignments below do not change them.
    trained = [tf.convert_to_tensor(v) for v in self.trainable_variables]
    self.use_weight_average()
    try:
      yield
    finally:
      for variable, value in zip(self.trainable_variables, trained):
        variable.assign(value)

  def learning_rate(self):
    """The base learning rate of the current step (poly policy, warm-up)."""
    config = self._config
    return poly_learning_rate(
      config.learning_rate,
      self.step,
      config.num_steps,
      config.power,
      config.warmup_steps,
    )
