"""One trainer for every training mode: SegSort, unsupervised SegSort, softmax.

The trainer knows nothing of a mode: its objective (segsort.objectives)
gives the inputs, the state besides the network, the loss and the
pictures. Nor does it hold the parts of a run, one per module of
segsort.training: the strategy (distribution), what is trained (state),
the step (step), the checkpoints and resume (checkpointing), the
divergence checks (health) and the input stream (inputs). It puts them
together and runs the loop.

    config = TrainConfig.from_flags(mode='segsort')
    Trainer(config).train()

Checkpoints go to --snapshot_dir with config.json beside them; running
again with the same --snapshot_dir resumes from the latest checkpoint
(segsort.training.checkpointing).

Defaults that differ from the original release's train_segsort.py are
listed in segsort/config.py.
"""

import dataclasses
import logging
import os
import re
import time

import keras
import tensorflow as tf

from segsort import config as config_lib
from segsort import console
from segsort import errors
from segsort import objectives
from segsort import summaries
from segsort.training import checkpointing
from segsort.training import distribution
from segsort.training import health
from segsort.training import inputs
from segsort.training import state as state_lib
from segsort.training import step as step_lib

# Validation keeps its best checkpoints under the same name.
CHECKPOINT_NAME = checkpointing.CHECKPOINT_NAME
TENSORBOARD_DIR_NAME = 'tensorboard'

# How a segsort.errors.DataError raised inside the input pipeline shows in the
# message of the tf.errors.OpError that reaches the training loop.
_DATA_ERROR_PATTERN = re.compile(r'DataError: ([^\n]*, line \d+: [^\n]*)')

_LOGGER = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainResult:
  """What a call of Trainer.train did.

  Attributes:
    step: The step reached.
    losses: The last step's loss terms (empty if no step ran).
    checkpoint: The latest checkpoint prefix, or None.
  """

  step: int
  losses: dict
  checkpoint: str | None


def _seed_process(config):
  """Seeds the process's random generators; deterministic ops if asked.

  Process-wide, as TensorFlow and Keras keep them: the network's initial
  weights are drawn from these generators.
  """
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  keras.utils.set_random_seed(config.random_seed)


class Trainer:
  """Trains one network by the mode of its config, on one or many replicas.

  Attributes:
    config: The TrainConfig.
    strategy: The tf.distribute strategy.
    network: The SegmentationNetwork.
    optimizer: The Keras SGD optimizer (in a LossScaleOptimizer with
      --mixed_precision).
    step: The int64 variable counting applied steps.
    objective: The segsort.objectives.Objective of the config's mode.
    checkpoint: The tf.train.Checkpoint of the run's state.
    checkpoint_manager: The tf.train.CheckpointManager in --snapshot_dir.
    restored_from: How the weights were initialised: 'resumed:<prefix>',
      'slim:<prefix>', 'checkpoint:<prefix>' or 'scratch'.
  """

  def __init__(self, config, strategy=None, dataset=None):
    """Builds the model, optimizer and input, and restores or resumes.

    Args:
      config: A TrainConfig.
      strategy: A tf.distribute strategy;
        `segsort.training.distribution.make_strategy(config)` when None.
      dataset: Optional tf.data.Dataset of global batches (dicts as
        segsort.data.build_training_dataset gives) to train on instead of
        the config's data list, e.g. for benchmarks.

    Raises:
      ConfigMismatchError: If --snapshot_dir holds a run of another config.
      CheckpointMismatchError: If a checkpoint does not fit the model.
      TrainingError: For settings this machine cannot run.
      DataError: If the data list is malformed.
    """
    checkpointing.require_snapshot_dir(config)
    self.config = config
    self.objective = objectives.for_config(config)
    # A multi-worker strategy must exist before other TensorFlow work.
    self.strategy = strategy or distribution.make_strategy(config)
    _seed_process(config)
    self._placement = distribution.placement_of(
      self.strategy, config.batch_size
    )
    replaced_settings = checkpointing.check_snapshot_config(config)
    self._state = state_lib.TrainingState(config, self.strategy, self.objective)
    self.network = self._state.network
    self.optimizer = self._state.optimizer
    self.step = self._state.step
    self._checkpoints = checkpointing.RunCheckpoints(
      config, self._state, self._placement
    )
    self.checkpoint = self._checkpoints.checkpoint
    self.checkpoint_manager = self._checkpoints.manager
    self.restored_from = self._checkpoints.restore()
    if int(self.step.numpy()) > config.num_steps:
      # Its config.json would claim fewer steps than its checkpoints hold.
      raise errors.TrainingError(
        '--num_steps %d is below step %d, which %s has reached already; '
        'give at least %d'
        % (
          config.num_steps,
          int(self.step.numpy()),
          config.snapshot_dir,
          int(self.step.numpy()),
        )
      )
    self._iterator, self._picture_batch = inputs.training_stream(
      config, self.objective, self._placement, int(self.step.numpy()), dataset
    )
    self._step_functions = step_lib.TrainingStep(
      config, self.strategy, self._state, self.objective
    )
    self._train_step = self._step_functions.train_step
    self._health = health.DivergenceWatch(
      config, self.network, self._checkpoints
    )
    self._draw_pictures = tf.function(
      lambda batch: self.objective.pictures(self.network, batch)
    )
    self._validator = self._make_validator()
    # Written once the run is set up, so that a run that could not start
    # does not claim the directory.
    if self._placement.is_chief:
      if replaced_settings:
        checkpointing.keep_replaced_config(
          config.snapshot_dir, int(self.step.numpy())
        )
      config_lib.save_config(config, config.snapshot_dir)

  def current_learning_rate(self):
    """The base learning rate of the current step (poly policy)."""
    return self._state.learning_rate()

  def _make_validator(self):
    """The segsort.validation.Validator with --eval_every, else None."""
    if not self.config.eval_every:
      if self.config.eval_list:
        _LOGGER.warning(
          '--eval_list %s is not evaluated: give --eval_every N as well '
          '(validation every N steps)',
          self.config.eval_list,
        )
      return None
    # Imported here: segsort.validation imports this module.
    from segsort import validation  # pylint: disable=g-import-not-at-top

    return validation.Validator(
      self.config, self.network, self.checkpoint, self.strategy
    )

  def losses_and_gradients(self, batch):
    """Computes the global loss terms and gradients of a global batch.

    Nothing is updated except what the forward pass updates (BatchNorm
    statistics in training mode, the memory bank).

    Args:
      batch: A dict of a global batch, not distributed.

    Returns:
      losses: A dict of float32 scalars: 'task_loss', 'weight_decay' and
        'total_loss'.
      gradients: A list of tensors aligned with the trainable variables, of
        the global total loss (before the head's 10x; times the loss scale
        with --mixed_precision).
    """
    return self._step_functions.losses_and_gradients(batch)

  def train(self, until_step=None):
    """Trains to config.num_steps (or `until_step`), saving on the way.

    Args:
      until_step: Stop after this step instead, with a checkpoint, e.g. to
        split a run over jobs of limited duration.

    Returns:
      A TrainResult.

    Raises:
      DivergenceError: If a checked loss grows by orders of magnitude
        (errors.NonFiniteLossError: if a loss, gradient or weight becomes NaN or
        infinite); nothing is saved then, and checkpoints that may hold
        diverging weights are no longer the latest (see
        segsort.training.health.DivergenceWatch.stop).
    """
    config = self.config
    is_chief = self._placement.is_chief
    step = int(self.step.numpy())
    # The checkpoints of earlier runs count as vouched for, until the first
    # check of this one.
    self._health.start(step)
    end = min(config.num_steps, until_step or config.num_steps)
    latest = self.checkpoint_manager.latest_checkpoint
    if step >= end:
      _LOGGER.info('Step %d reached already; nothing to train', step)
      return TrainResult(step, {}, latest)
    images_per_step = config.batch_size * config.iter_size
    if is_chief:
      writer = tf.summary.create_file_writer(
        os.path.join(config.snapshot_dir, TENSORBOARD_DIR_NAME)
      )
    else:
      writer = tf.summary.create_noop_writer()
    losses = {}
    first_step = step + 1
    with (
      writer.as_default(),
      console.progress(
        total=config.num_steps,
        initial=step,
        desc='Training',
        unit='step',
        disable=not is_chief,
      ) as progress,
    ):
      interval_start, interval_steps = time.perf_counter(), 0
      while step < end:
        try:
          step_losses, non_finite = self._train_step(self._iterator)
        except KeyboardInterrupt:
          raise errors.TrainingInterruptedError(
            'interrupted at step %d of %d; %s'
            % (
              step,
              config.num_steps,
              'run the same command again to resume from %s, the latest '
              'checkpoint' % latest
              if latest
              else 'no checkpoint was written: run the same command again '
              'to start over',
            )
          ) from None
        step += 1
        interval_steps += 1
        # The one value fetched every step: a single scalar, so that a NaN
        # stops the run at the step that made it.
        if float(non_finite):
          self._health.stop(
            errors.NonFiniteLossError,
            step,
            'loss or gradients not finite: %s'
            % ', '.join(
              '%s %g' % (name, float(value))
              for name, value in step_losses.items()
            ),
          )
        if config.mixed_precision and int(self.step.numpy()) < step:
          # The loss-scale optimizer skipped the update (its scale was too
          # large): the step is tried again, at a smaller scale.
          step -= 1
          continue
        if self._state.weight_average is not None and step == config.num_steps:
          self._state.use_weight_average()
        saving = step % config.save_pred_every == 0 or step == end
        # The losses are fetched from the device only here: at the first
        # step (the level that divergence is measured against), on summary
        # steps and before every save, so that no diverged model is saved.
        if step == first_step or saving or step % config.update_tb_every == 0:
          losses = {name: float(value) for name, value in step_losses.items()}
          self._health.check(step, losses)
        # The last step too: a run shorter than --update_tb_every wrote no
        # summary at all.
        summary_step = step % config.update_tb_every == 0 or step == end
        if summary_step:
          # The rate the step used, computed on the host.
          learning_rate = float(
            state_lib.poly_learning_rate(
              config.learning_rate,
              step - 1,
              config.num_steps,
              config.power,
              config.warmup_steps,
            )
          )
          progress.set_postfix(
            loss='%.4f' % losses['total_loss'],
            lr='%.3g' % learning_rate,
            refresh=False,
          )
        # After the postfix, so that the line it may print is of this step.
        progress.update()
        if summary_step:
          images_per_second = (
            interval_steps
            * images_per_step
            / (time.perf_counter() - interval_start)
          )
          _LOGGER.info(
            'step %d: %s, lr %.4g, %.1f images/s',
            step,
            ', '.join('%s %.4f' % item for item in losses.items()),
            learning_rate,
            images_per_second,
          )
          if is_chief:
            summaries.write_training_summaries(
              step,
              losses,
              self.objective.loss_name,
              learning_rate,
              images_per_second,
              self._draw_pictures(self._picture_batch),
            )
            # Flushed now, so that a run killed later keeps them.
            writer.flush()
          interval_start, interval_steps = time.perf_counter(), 0
        if saving:
          self._health.check_weights(step)
          latest = self._checkpoints.save(step)
        if self._validator and step % config.eval_every == 0:
          with self._state.averaged_weights():
            # Left out of the images/s of the interval.
            interval_start += self._validator.evaluate(step).seconds
    writer.flush()
    self._health.warn_if_unvouched(step, losses)
    return TrainResult(step, losses, latest)


def run(config):
  """Trains by a config, as the entry points do.

  Returns:
    A TrainResult.
  """
  console.setup_logging()
  return Trainer(config).train()


def main(config):
  """Trains as the entry points do; known errors exit with a message.

  Args:
    config: A TrainConfig, e.g. of TrainConfig.from_flags (the entry points
      parse their flags before importing this module and TensorFlow).
  """
  try:
    with errors.exit_on_known_errors():
      run(config)
  except tf.errors.OpError as error:
    # A file found bad only when read (e.g. a truncated JPEG) fails inside
    # the input pipeline; its DataError names the list, line and path.
    found = _DATA_ERROR_PATTERN.search(error.message or '')
    if found is None:
      raise
    raise SystemExit(
      'error: bad data file, stopped without saving (the '
      'checkpoints written are intact; fix or remove the '
      'file, then resume): %s' % found.group(1).strip()
    ) from error
