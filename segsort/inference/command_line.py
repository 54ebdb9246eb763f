"""What the inference entry points do with their flags (segsort.inference_flags
defines and parses them without TensorFlow).

The flags that repeat a training setting (--num_classes, --ignore_label,
--num_clusters, --kmeans_iterations) default to the checkpoint's, read from
the config.json beside it (`settings_from_checkpoint`), so that a model is
evaluated with the settings it was trained with unless a flag says
otherwise; a flag that does is logged and recorded with the outputs.
"""

import logging

from segsort import errors
from segsort import flags
from segsort import inference_flags
from segsort.inference import banks
from segsort.inference import predictors
from segsort.inference import restore
from segsort.inference import run_over_list

_LOGGER = logging.getLogger(__name__)
# Checkpoint settings that inference overrides as a matter of course, logged
# at INFO rather than WARNING.
_ROUTINE_OVERRIDES = ('num_clusters', 'kmeans_iterations')


def _checkpoint_value(name, config, grid_for_prototypes):
  """The value of inference flag `name` that a TrainConfig implies."""
  if name == 'num_clusters':
    if grid_for_prototypes and config.prototype_num_clusters is not None:
      return tuple(config.prototype_num_clusters)
    return tuple(config.num_clusters)
  return getattr(config, name)


def settings_from_checkpoint(args, config, checkpoint_prefix):
  """Gives every flag of FLAGS_FROM_CHECKPOINT not given the checkpoint's value.

  Flags given keep their value; those that differ from the checkpoint's are
  logged, and returned so that the outputs record them.

  Args:
    args: The argparse.Namespace of `parse_flags`, changed in place; flags
      the tool does not have are left out.
    config: The checkpoint's segsort.config.TrainConfig.
    checkpoint_prefix: The checkpoint, for the messages.

  Returns:
    A JSON-ready dict from the name of every given flag whose value differs
    from the checkpoint's to {'flag': its value, 'checkpoint': the
    checkpoint's}; empty when the checkpoint's settings are used throughout.

  Raises:
    InferenceError: If --ignore_label (given or the checkpoint's) is a class
      id of [0, --num_classes).
  """
  overrides = {}
  grid_for_prototypes = getattr(args, 'grid_for_prototypes', False)
  for name in inference_flags.FLAGS_FROM_CHECKPOINT:
    if not hasattr(args, name):
      continue
    checkpoint_value = _checkpoint_value(name, config, grid_for_prototypes)
    value = getattr(args, name)
    if value is None:
      setattr(args, name, checkpoint_value)
    elif value != checkpoint_value:
      if name in _ROUTINE_OVERRIDES:
        _LOGGER.info(
          'Using --%s %s; %s.',
          name,
          _format_flag(value),
          _training_use(name, config, checkpoint_value, checkpoint_prefix),
        )
      else:
        _LOGGER.warning(
          '--%s %s differs from the %s checkpoint %s was trained with; '
          'using --%s %s.',
          name,
          _format_flag(value),
          _format_flag(checkpoint_value),
          checkpoint_prefix,
          name,
          _format_flag(value),
        )
      overrides[name] = {
        'flag': _json_value(value),
        'checkpoint': _json_value(checkpoint_value),
      }
  message = (
    flags.ignore_label_problem(args)
    if hasattr(args, 'ignore_label') and hasattr(args, 'num_classes')
    else None
  )
  if message:
    raise errors.InferenceError('--ignore_label ' + message)
  return overrides


def _training_use(name, config, checkpoint_value, checkpoint_prefix):
  """What training did with a routine override's setting, for its INFO line.

  Whole images are clustered on other grids than crops by design (README:
  "What held SegSort back"), so the line must not read as a mismatch.
  """
  if config.mode == 'segsort_unsup':
    # Its loss takes the oversegmentation's segments, not k-means clusters.
    return (
      'checkpoint %s was trained by unsupervised SegSort, which does not '
      'use k-means' % checkpoint_prefix
    )
  if name == 'kmeans_iterations':
    return 'checkpoint %s was trained with %d k-means iterations' % (
      checkpoint_prefix,
      checkpoint_value,
    )
  if tuple(config.num_clusters) != checkpoint_value:
    return 'the run of checkpoint %s named %s for its prototypes' % (
      checkpoint_prefix,
      _format_flag(checkpoint_value),
    )
  return 'checkpoint %s was trained on a %s k-means grid per %s' % (
    checkpoint_prefix,
    _format_flag(checkpoint_value),
    'crop' if config.kmeans_grid == 'crop' else 'source image',
  )


def _format_flag(value):
  return ','.join(map(str, value)) if isinstance(value, tuple) else str(value)


def _json_value(value):
  return list(value) if isinstance(value, tuple) else value


def predict_list_from_flags(
  predictor, args, checkpoint_prefix, checkpoint_overrides=None
):
  """Runs `predict_list` as the inference flags ask.

  Args:
    predictor: A SegSortPredictor or SoftmaxPredictor.
    args: Parsed flags of `add_model_and_data_flags` and `add_output_flags`,
      completed by `settings_from_checkpoint`.
    checkpoint_prefix: The resolved checkpoint of the predictor's network.
    checkpoint_overrides: What `settings_from_checkpoint` returned, recorded
      in the settings file.

  Returns:
    The number of images predicted (not skipped).
  """
  return run_over_list.predict_list(
    predictor,
    checkpoint_prefix=checkpoint_prefix,
    data_dir=args.data_dir,
    data_list=args.data_list,
    save_dir=args.save_dir,
    scales=args.scale_aug,
    flip=args.flip_aug,
    colormap=run_over_list.load_colormap(
      args.colormap, args.data_dir, args.num_classes
    ),
    apply_exif_orientation=args.apply_exif_orientation,
    checkpoint_overrides=checkpoint_overrides,
    save_overlay=args.save_overlay,
  )


def window_and_segment_settings(args):
  """The sliding-window and k-means keywords that flags ask for.

  Args:
    args: Parsed flags of `add_model_and_data_flags` and `add_segment_flags`,
      completed by `settings_from_checkpoint`.

  Returns:
    A dict of window_size, strides, num_classes, num_clusters and
    kmeans_iterations, as predictors.SegSortPredictor and
    extraction.extract_prototypes take them.
  """
  return {
    'window_size': args.input_size,
    'strides': args.strides,
    'num_classes': args.num_classes,
    'num_clusters': args.num_clusters,
    'kmeans_iterations': args.kmeans_iterations,
  }


def restore_segsort_network_from_flags(args):
  """Restores a SegSort checkpoint and completes the flags from its settings.

  Args:
    args: Parsed flags of `add_model_and_data_flags` and
      `add_embedding_dim_flag` (and others); the flags not given take the
      checkpoint's values (`settings_from_checkpoint`).

  Returns:
    network: The restored network.SegmentationNetwork.
    config: The checkpoint's segsort.config.TrainConfig.
    checkpoint_prefix: The resolved checkpoint.
    checkpoint_overrides: What `settings_from_checkpoint` returned.

  Raises:
    FileNotFoundError, InferenceError,
    network.checkpoints.CheckpointMismatchError: As `restore_network` and
      `settings_from_checkpoint` raise them.
  """
  network, config, checkpoint_prefix = restore.restore_network(
    args.restore_from, restore.SEGSORT_MODES, args.embedding_dim
  )
  return (
    network,
    config,
    checkpoint_prefix,
    settings_from_checkpoint(args, config, checkpoint_prefix),
  )


def segsort_predictor_from_flags(args, with_sources=False):
  """Restores a SegSort checkpoint and binds it to a bank, as flags ask.

  Args:
    args: Parsed flags of `add_model_and_data_flags`,
      `add_embedding_dim_flag`, `add_segment_flags` and `add_knn_flags`;
      the flags not given take the checkpoint's values
      (`settings_from_checkpoint`).
    with_sources: Whether to load every prototype's image and box as well.

  Returns:
    predictor: A predictors.SegSortPredictor.
    bank: Its banks.PrototypeBank.
    checkpoint_prefix: The resolved checkpoint.
    checkpoint_overrides: What `settings_from_checkpoint` returned.

  Raises:
    FileNotFoundError, InferenceError,
    network.checkpoints.CheckpointMismatchError: As
      `restore_segsort_network_from_flags` and `load_prototype_bank` raise
      them.
  """
  network, config, checkpoint_prefix, checkpoint_overrides = (
    restore_segsort_network_from_flags(args)
  )
  bank = banks.load_prototype_bank(
    args.prototype_dir,
    config.embedding_dim,
    args.num_classes,
    with_sources=with_sources,
    checkpoint_prefix=checkpoint_prefix,
  )
  predictor = predictors.SegSortPredictor(
    network,
    bank,
    k_in_nearest_neighbors=args.k_in_nearest_neighbors,
    colour_weight=args.colour_weight,
    **window_and_segment_settings(args),
  )
  return predictor, bank, checkpoint_prefix, checkpoint_overrides
