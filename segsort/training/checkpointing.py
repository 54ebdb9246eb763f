"""The snapshot directory of a run: its checkpoints, resume and restore.

Checkpoints (tf.train.CheckpointManager in --snapshot_dir) hold the model,
the optimizer's slots, the step and the objective's state (the memory
bank); config.json beside them records the run. Running again with the
same --snapshot_dir resumes from the latest checkpoint. The input pipeline
is not checkpointed: an example is decided by its position in the seeded
stream alone, so a resumed run (every worker of a multi-worker run alike)
rebuilds its stream at the batch it had reached, step * iter_size.
"""

import glob
import logging
import os
import shutil

import tensorflow as tf

from network import checkpoints
from network.segsort import common_utils
from segsort import config as config_lib
from segsort import errors
from segsort import io_utils

MAX_CHECKPOINTS_TO_KEEP = 5
CHECKPOINT_NAME = 'ckpt'

_LOGGER = logging.getLogger(__name__)


def require_snapshot_dir(config):
  """Raises TrainingError if the config has no --snapshot_dir."""
  if not config.snapshot_dir:
    raise errors.TrainingError(
      '--snapshot_dir is required: checkpoints, '
      'config.json and TensorBoard logs go there'
    )


def latest_checkpoint(config):
  """The run's latest checkpoint in --snapshot_dir, or None for a new run.

  tf.train.latest_checkpoint returns None (after an ERROR line) when the
  `checkpoint` file names a checkpoint whose index is missing, or when that
  file is missing: the run then started from random weights and wrote over
  the intact checkpoints. Those states are refused here.

  Args:
    config: The TrainConfig; a missing `checkpoint` file beside unlisted
      checkpoints is accepted with --overwrite_config, which starts again
      (as a diverged run's advice says: its checkpoints are unlisted).

  Returns:
    The checkpoint prefix, or None when the folder lists none.

  Raises:
    TrainingError: Naming the `checkpoint` file and its missing index, or
      the checkpoints it no longer lists.
  """
  directory = config.snapshot_dir
  state = (
    tf.train.get_checkpoint_state(directory)
    if os.path.isdir(directory)
    else None
  )
  if state is not None:
    prefix = state.model_checkpoint_path
    if tf.io.gfile.exists(prefix + '.index'):
      return prefix
    intact = [
      os.path.basename(path)
      for path in state.all_model_checkpoint_paths
      if path != prefix and tf.io.gfile.exists(path + '.index')
    ]
    raise errors.TrainingError(
      '%s names %s as the latest checkpoint, but %s.index is missing, so '
      'the run cannot resume; %s'
      % (
        os.path.join(directory, 'checkpoint'),
        os.path.basename(prefix),
        prefix,
        'name an intact one (%s) on its model_checkpoint_path line to '
        'resume from it' % ', '.join(intact)
        if intact
        else 'remove the folder\'s ckpt-* files and that file to start again',
      )
    )
  unlisted = sorted(
    (
      os.path.basename(path)[: -len('.index')]
      for path in glob.glob(
        os.path.join(glob.escape(directory), CHECKPOINT_NAME + '-*.index')
      )
    ),
    key=lambda name: (
      int(name.rsplit('-', 1)[1]) if name.rsplit('-', 1)[1].isdigit() else -1
    ),
  )
  if unlisted and not config.overwrite_config:
    raise errors.TrainingError(
      '%s holds checkpoints (%s) but no "checkpoint" file listing them: '
      'training would start from random weights and write over them. To '
      'resume, write that file with the line model_checkpoint_path: "%s"; '
      'to start again, pass --overwrite_config or remove them'
      % (directory, ', '.join(unlisted), unlisted[-1])
    )
  return None


def check_snapshot_config(config):
  """Refuses a snapshot directory with checkpoints of another config.

  Returns:
    The differences (field, saved, now) that --overwrite_config accepts;
    empty when the run is new or resumed with its own config.

  Raises:
    ConfigMismatchError: If --snapshot_dir holds checkpoints of a config
      that differs, or without its config.json, without --overwrite_config;
      with it too where the difference changes the variables or their
      shapes (`_structure`, `_memory_bank_shape`).
    TrainingError: As `latest_checkpoint` raises.
  """
  path = os.path.join(config.snapshot_dir, config_lib.CONFIG_FILE_NAME)
  latest = latest_checkpoint(config)
  if latest is None:
    return []
  if not os.path.exists(path):
    if config.overwrite_config:
      return []
    # Resumed, it took any settings and wrote them as the whole run's.
    raise errors.ConfigMismatchError(
      '%s holds checkpoint %s but no %s: what it was trained with is '
      'unknown. Use a new --snapshot_dir, or pass --overwrite_config to '
      'resume it with these settings.'
      % (
        config.snapshot_dir,
        os.path.basename(latest),
        config_lib.CONFIG_FILE_NAME,
      )
    )
  saved = config_lib.load_config(path)
  differences = config_lib.config_differences(saved, config)
  saved_structure, structure = _structure(saved), _structure(config)
  # Named as the differences name them: a mode's head outputs (classes or
  # embedding) change with it, and --mode is no flag.
  structural = sorted(
    name
    for name, _, _ in differences
    if (
      name in saved_structure and saved_structure[name] != structure.get(name)
    )
    or (
      name in _MEMORY_BANK_FIELDS
      and _memory_bank_shape(config) is not None
      and _memory_bank_shape(config) != _memory_bank_shape(saved)
    )
  )
  if not differences or (config.overwrite_config and not structural):
    return differences
  if structural:
    advice = (
      'Use a new --snapshot_dir: %s %s the variables of the run, so '
      'that its checkpoints cannot be resumed (not even with '
      '--overwrite_config).'
      % (
        ', '.join(
          'the mode (its training entry point)'
          if name == 'mode'
          else "--%s (the memory bank's shape)" % name
          if name in _MEMORY_BANK_FIELDS
          else '--' + name
          for name in structural
        ),
        'changes' if len(structural) == 1 else 'change',
      )
    )
  else:
    advice = (
      'Use a new --snapshot_dir, or pass --overwrite_config to replace '
      'its config.json and resume its latest checkpoint with these '
      'settings.'
    )
  # One line, as every error an entry point prints.
  raise errors.ConfigMismatchError(
    '%s holds a run with another configuration; differing fields '
    '(saved -> now): %s. %s'
    % (
      config.snapshot_dir,
      '; '.join('%s: %r -> %r' % difference for difference in differences),
      advice,
    )
  )


def keep_replaced_config(snapshot_dir, step):
  """Copies the config.json that --overwrite_config replaces to
  `config.until_step_STEP.json`, so that the run keeps the settings its
  first `step` steps were trained with.

  Returns:
    The path of the copy.
  """
  path = os.path.join(snapshot_dir, config_lib.CONFIG_FILE_NAME)
  stem, extension = os.path.splitext(path)
  kept = '%s.until_step_%d%s' % (stem, step, extension)
  # One kept already: the config now replaced trained no step, and the
  # kept one holds the settings of the first `step` steps.
  if not os.path.exists(kept):
    with io_utils.atomic_path(kept) as temporary:
      shutil.copyfile(path, temporary)
  return kept


# The fields that size the memory bank (`_memory_bank_shape`).
_MEMORY_BANK_FIELDS = ('num_banks', 'num_clusters', 'batch_size')


def _memory_bank_shape(config):
  """The memory bank's (banks, prototypes a bank) of a run, None if none.

  A resumed run restores its bank, so another shape cannot be resumed; a
  run that drops its bank (`--num_banks 0`) leaves it unread.
  """
  if config.mode != 'segsort' or config.num_banks <= 0:
    return None
  return (
    config.num_banks,
    common_utils.total_clusters(config.num_clusters) * config.batch_size,
  )


def _structure(config):
  """What decides the variables of a run and their shapes: its head's
  outputs (classes for softmax, the embedding for SegSort), and whether it
  keeps a weight average."""
  head_outputs = 'num_classes' if config.mode == 'softmax' else 'embedding_dim'
  return {
    'mode': config.mode,
    'backbone': config.backbone,
    'head': config.head,
    head_outputs: getattr(config, head_outputs),
    'ema_decay': config.ema_decay > 0,
  }


class RunCheckpoints:
  """The checkpoints of a run in its snapshot directory.

  Attributes:
    checkpoint: The tf.train.Checkpoint of the run's state.
    manager: The tf.train.CheckpointManager in --snapshot_dir (a worker's
      own directory below it on workers other than the chief).
  """

  def __init__(self, config, state, placement):
    """Tracks a run's state.

    Args:
      config: The TrainConfig.
      state: The segsort.training.state.TrainingState of the run.
      placement: This process's segsort.training.distribution.Placement.
    """
    self._config = config
    self._state = state
    self._is_chief = placement.is_chief
    # No input pipeline: a resumed run rebuilds it from the step.
    # The weight average only when kept: checkpoints of runs without it
    # then restore as before.
    average = (
      {}
      if state.weight_average is None
      else {'weight_average': state.weight_average}
    )
    self.checkpoint = tf.train.Checkpoint(
      **state.objective_state,
      **average,
      model=state.network,
      optimizer=state.optimizer,
      step=state.step,
    )
    directory = config.snapshot_dir
    if not placement.is_chief:
      # Every worker takes part in saving; only the chief's files are kept.
      directory = os.path.join(directory, '.worker_%d' % placement.worker_index)
    self.manager = tf.train.CheckpointManager(
      self.checkpoint,
      directory,
      max_to_keep=MAX_CHECKPOINTS_TO_KEEP,
      checkpoint_name=CHECKPOINT_NAME,
    )

  def restore(self):
    """Resumes the run, or initialises weights from --restore_from.

    Raises as `_restore` does; a checkpoint whose files are missing or
    damaged is a CheckpointMismatchError too (`checkpoints.reading`).
    """
    latest = latest_checkpoint(self._config)
    with checkpoints.reading(latest or self._config.restore_from):
      return self._restore(latest)

  def _restore(self, latest):
    """Resumes the run from `latest` (its latest checkpoint, or None), or
    initialises weights from --restore_from.

    Returns:
      How the weights were initialised: 'resumed:<prefix>', 'slim:<prefix>',
      'checkpoint:<prefix>' or 'scratch'.

    Raises:
      CheckpointMismatchError: If a checkpoint does not fit the model.
    """
    config = self._config
    network = self._state.network
    if latest is not None:
      if config.restore_from:
        _LOGGER.info(
          'Resuming %s; --restore_from %s is ignored',
          latest,
          config.restore_from,
        )
      fitted = dict(self._state.objective_state, model=network)
      checkpoints.check_checkpoint_fits(fitted, latest)
      self.checkpoint.restore(latest).assert_existing_objects_matched()
      _LOGGER.info(
        'Resumed %s at step %d', latest, int(self._state.step.numpy())
      )
      return 'resumed:' + latest
    if not config.restore_from:
      _LOGGER.warning(
        'No --restore_from: training from random weights%s',
        ''
        if config.is_training and not config.use_global_status
        else '; BatchNorm keeps its initial statistics (mean 0, variance 1) '
        'without --is_training (or with --use_global_status), and random '
        'weights seldom train so: pass --is_training',
      )
      return 'scratch'
    prefix = checkpoints.resolve_checkpoint(config.restore_from)
    if checkpoints.is_slim_checkpoint(prefix):
      try:
        names = checkpoints.load_slim_resnet(network.backbone, prefix)
      except ValueError as error:
        raise checkpoints.CheckpointMismatchError(str(error)) from error
      _LOGGER.info(
        'Restored %d backbone weights from TF-Slim checkpoint %s',
        len(names),
        prefix,
      )
      return 'slim:' + prefix
    self._restore_weights(prefix)
    return 'checkpoint:' + prefix

  def _restore_weights(self, prefix):
    """Restores the model (and objective's state) of one of our checkpoints.

    The optimizer and step are not restored: a new stage starts at step 0
    with its own learning rate.
    """
    if self._config.not_restore_classifier:
      model = tf.Module()
      model.backbone = self._state.network.backbone
    else:
      model = self._state.network
    objects = {'model': model}
    try:
      checkpoints.check_checkpoint_fits(objects, prefix)
    except checkpoints.CheckpointMismatchError as error:
      if self._config.not_restore_classifier:
        raise
      # The usual cause in training: a checkpoint of another mode's run
      # (softmax's classifier against SegSort's embedding head).
      raise checkpoints.CheckpointMismatchError(
        '%s. To start from its backbone alone, pass --not_restore_classifier'
        % error
      ) from error
    for name, state in self._state.objective_state.items():
      try:
        checkpoints.check_checkpoint_fits({name: state}, prefix)
        objects[name] = state
      except checkpoints.CheckpointMismatchError:
        _LOGGER.warning(
          'Checkpoint %s has no %s of this run\'s size; it starts empty',
          prefix,
          name,
        )
    tf.train.Checkpoint(**objects).restore(prefix).expect_partial()
    _LOGGER.info('Restored %s from %s', '/'.join(sorted(objects)), prefix)

  def save(self, step):
    """Saves a checkpoint of the state after `step` steps.

    Returns:
      The prefix of the run's latest checkpoint.
    """
    path = self.manager.save(checkpoint_number=step)
    if not self._is_chief:
      tf.io.gfile.rmtree(self.manager.directory)
      return tf.train.latest_checkpoint(self._config.snapshot_dir)
    _LOGGER.info('Saved %s', path)
    return path

  def unlist_from(self, step):
    """Drops the checkpoints of `step` and later from the latest ones.

    They stay on disk but leave the directory's checkpoint list, so that
    resuming starts from the last earlier one, or from scratch if there is
    none.

    Returns:
      kept: The prefixes of the checkpoints before `step`, oldest first.
      dropped: Those of `step` and later.
    """
    snapshot_dir = self._config.snapshot_dir
    kept = [
      prefix
      for prefix in self.manager.checkpoints
      if int(prefix.rsplit('-', 1)[1]) < step
    ]
    dropped = self.manager.checkpoints[len(kept) :]
    if dropped and self._is_chief:
      if kept:
        tf.compat.v1.train.update_checkpoint_state(
          snapshot_dir, kept[-1], all_model_checkpoint_paths=kept
        )
      else:
        os.remove(os.path.join(snapshot_dir, 'checkpoint'))
    return kept, dropped
