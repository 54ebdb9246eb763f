"""Divergence checks, and stopping a run that diverged with advice.

The loss of step k is that of the weights after step k - 1, so a checked
loss within HEALTHY_FACTOR of the run's level vouches for the checkpoints
written before step k; a run that diverges stops without saving, and
checkpoints no check vouched for are no longer the latest.
"""

import logging
import math
import os

import tensorflow as tf

from segsort import config as config_lib
from segsort import errors

# A run has diverged when its total loss exceeds this multiple of its lowest
# checked loss, or of 1 if lower: the losses are means of negative
# log-likelihoods of order 1 (at most 2 * concentration + log(segments) for
# SegSort) plus a weight decay that grows slowly in a healthy run.
DIVERGENCE_FACTOR = 100.0
# A checked loss within this multiple of the same level vouches for the
# checkpoints written before it; one above may already come from diverging
# weights (softmax on the mini network at --learning_rate 3: 23x its first
# loss at step 2, 210x at step 3).
HEALTHY_FACTOR = 10.0

_LOGGER = logging.getLogger(__name__)


class DivergenceWatch:
  """The health of the losses and weights of one call of Trainer.train."""

  def __init__(self, config, network, run_checkpoints):
    """Watches a run.

    Args:
      config: The TrainConfig.
      network: The network trained.
      run_checkpoints: The segsort.training.checkpointing.RunCheckpoints.
    """
    self._config = config
    self._checkpoints = run_checkpoints
    float_variables = [
      variable
      for variable in network.variables
      if variable.dtype.startswith('float')
    ]
    self._weights_are_finite = tf.function(
      lambda: tf.reduce_all(
        [
          tf.reduce_all(tf.math.is_finite(variable))
          for variable in float_variables
        ]
      )
    )
    self.start(0)

  def start(self, step):
    """Starts watching at `step`, which vouches for the checkpoints before.

    The lowest checked loss is forgotten: the level is this call's.
    """
    self._lowest_loss = math.inf
    self._vouched_step = step

  def check(self, step, losses):
    """Stops the run if a checked loss grew by orders of magnitude.

    Raises:
      DivergenceError: If the total loss exceeds DIVERGENCE_FACTOR times
        its lowest checked value of this run (or 1 if lower).
    """
    loss = losses['total_loss']
    level = max(min(self._lowest_loss, loss), 1.0)
    if loss > DIVERGENCE_FACTOR * level:
      self.stop(
        errors.DivergenceError,
        step,
        'total loss %g, over %g times its lowest level of '
        'this run, %g' % (loss, DIVERGENCE_FACTOR, self._lowest_loss),
      )
    if loss <= HEALTHY_FACTOR * level:
      self._vouched_step = step
    self._lowest_loss = min(self._lowest_loss, loss)

  def check_weights(self, step):
    """Stops the run if a weight is NaN or infinite.

    A finite step can still overflow the weights; nothing is saved then.

    Raises:
      NonFiniteLossError: If a weight is not finite.
    """
    if not bool(self._weights_are_finite()):
      self.stop(errors.NonFiniteLossError, step, 'weights not finite')

  def stop(self, error_class, step, what):
    """Keeps only vouched checkpoints as the latest and raises with advice.

    Checkpoints written from the step of the last passed check on hold
    weights (and momentum) that may already be diverging: they stay on disk
    but are dropped from the directory's checkpoint list, so that resuming
    starts from the last vouched one, or from scratch if there is none.

    Raises:
      error_class: Always, with advice that works when followed literally.
    """
    config = self._config
    vouched, dropped = self._checkpoints.unlist_from(self._vouched_step)
    learning_rate = min(
      config.learning_rate / 10.0,
      config_lib.MODE_DEFAULTS['learning_rate'][config.mode],
    )
    message = 'Training diverged at step %d (%s); stopped without saving.' % (
      step,
      what,
    )
    if dropped:
      message += (
        ' Checkpoints written since the last healthy check (%s) '
        'stay on disk but are no longer listed in %s.'
        % (
          ', '.join(os.path.basename(prefix) for prefix in dropped),
          config.snapshot_dir,
        )
      )
    message += (
      ' To go on, run the same command with --learning_rate %g '
      '--overwrite_config: it %s. If it diverges again, check the '
      'data (tools.check_list).'
      % (
        learning_rate,
        'resumes from %s, the last checkpoint of a healthy loss' % vouched[-1]
        if vouched
        else 'starts again from the first step',
      )
    )
    raise error_class(message, step)

  def warn_if_unvouched(self, step, losses):
    """Warns if the last checked loss, of `step`, vouched for nothing."""
    if self._vouched_step < step:
      _LOGGER.warning(
        'The last loss, %g, is over %g times the lowest of this run, %g: '
        'the run may be diverging (see its TensorBoard losses); if so, '
        'rerun with a lower --learning_rate.',
        losses['total_loss'],
        HEALTHY_FACTOR,
        self._lowest_loss,
      )
