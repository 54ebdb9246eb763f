"""The command-line flags shared by the inference entry points.

The flags that repeat a training setting (--num_classes, --ignore_label,
--num_clusters, --kmeans_iterations) default to the checkpoint's, read from
the config.json beside it (`settings_from_checkpoint`), so that a model is
evaluated with the settings it was trained with unless a flag says
otherwise; a flag that does is logged and recorded with the outputs.
"""

import logging

from segsort import colormap as colormap_lib
from segsort import errors
from segsort import flags
from segsort.inference import banks
from segsort.inference import predictors
from segsort.inference import restore
from segsort.inference import run_over_list

# The image scales of multi-scale inference, also those of a bare --scale_aug.
MULTI_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)

# The inference flags that repeat a training setting; unless given, each
# takes the checkpoint's value.
FLAGS_FROM_CHECKPOINT = ('num_classes', 'ignore_label', 'num_clusters',
                         'kmeans_iterations')

_LOGGER = logging.getLogger(__name__)


def add_model_and_data_flags(parser, default_input_size=(480, 480),
                             data_list_required=True):
  """Adds the data, window and checkpoint flags of every inference tool.

  Args:
    parser: An argparse.ArgumentParser.
    default_input_size: The default window: the recipe uses 480x480 crops,
      720x720 (a whole VOC image in one window) for single-scale inference.
    data_list_required: Whether --data_list must be given.
  """
  parser.add_argument('--data_dir', required=True,
                      help='Dataset root; list paths are relative to it.')
  parser.add_argument('--data_list', required=data_list_required,
                      default=None,
                      help='List file of the images (IMAGE [LABEL] a line).')
  parser.add_argument('--input_size', type=flags.size_pair,
                      default=default_input_size,
                      help='Sliding window "height,width" (rounded up to a '
                      'multiple of the output stride; smaller images are '
                      'padded).')
  parser.add_argument('--strides', type=flags.size_pair,
                      default=(320, 320),
                      help='Distances "vertical,horizontal" between windows, '
                      'at most --input_size.')
  parser.add_argument('--restore_from', required=True,
                      help='Checkpoint prefix, or a directory for its latest; '
                      'its config.json gives the network.')
  parser.add_argument('--save_dir', required=True,
                      help='Output directory.')
  parser.add_argument('--num_classes', type=flags.integer(1), default=None,
                      help='Number of classes, background included; '
                      "default: the checkpoint's.")
  parser.add_argument('--ignore_label', type=flags.integer(0), default=None,
                      help='Label value of pixels to leave out (not a class '
                      "id); default: the checkpoint's.")
  parser.add_argument('--apply_exif_orientation', action='store_true',
                      help='Turn images (and labels) as their EXIF '
                      'orientation asks, as viewers show them; by default '
                      'files are read as stored.')


def add_embedding_dim_flag(parser):
  """Adds --embedding_dim, checked against the checkpoint's config."""
  parser.add_argument('--embedding_dim', type=flags.integer(1), default=None,
                      help="Checked against the checkpoint's embedding "
                      'dimension (which is used either way).')


def add_segment_flags(parser, for_prototypes=False):
  """Adds the k-means flags.

  Args:
    parser: An argparse.ArgumentParser.
    for_prototypes: Whether the grid is prototype extraction's, which
      defaults to the checkpoint's --prototype_num_clusters (when its run set
      one) rather than its --num_clusters.
  """
  parser.add_argument('--num_clusters', type=flags.cluster_grid,
                      default=None,
                      help='k-means grid of an image: "N" (N x N) or '
                      '"ROWS,COLUMNS"; default: the checkpoint\'s %s.'
                      % ('--prototype_num_clusters, else its --num_clusters'
                         if for_prototypes else '--num_clusters'))
  parser.add_argument('--kmeans_iterations', type=flags.integer(0),
                      default=None,
                      help="Iterations of vMF k-means; default: the "
                      "checkpoint's.")
  parser.set_defaults(grid_for_prototypes=for_prototypes)


def add_knn_flags(parser):
  """Adds the prototype bank flags."""
  parser.add_argument('--prototype_dir', required=True,
                      help='Directory of prototype_features.npy and '
                      'prototype_labels.npy (SAVE_DIR/prototypes of '
                      'segsort.extract_prototypes).')
  parser.add_argument('--k_in_nearest_neighbors', type=flags.integer(1),
                      default=15,
                      help='Number of nearest prototypes that vote.')


def add_colormap_flag(parser):
  """Adds --colormap."""
  parser.add_argument('--colormap', default=None,
                      help='%s, or a .npy or text (R G B rows) colour map; '
                      'default: DATA_DIR/%s when it exists (written by the '
                      'data set tools), else voc.'
                      % (' or '.join(sorted(colormap_lib.NAMED_COLORMAPS)),
                         colormap_lib.COLORMAP_FILE))


def add_output_flags(parser, default_scales):
  """Adds the colour map and multi-scale flags.

  --scale_aug given bare, as the original release's switch, selects the
  multi-scale set `MULTI_SCALES`.
  """
  add_colormap_flag(parser)
  parser.add_argument('--scale_aug', type=flags.positive_real_list,
                      nargs='?', const=MULTI_SCALES, default=default_scales,
                      help='Comma-separated image scales (> 0) whose scores '
                      'are summed; given bare, %s.'
                      % ','.join('%g' % scale for scale in MULTI_SCALES))
  parser.add_argument('--flip_aug', action='store_true',
                      help='Add the left-right flip of every scale.')


def parse_flags(parser, argv=None):
  """Parses the flags of an inference tool and checks them against each other.

  Each flag's own range is checked by its argparse type; this adds the
  checks between flags, so that every bad value stops the tool before any
  work with a usage error naming the flag. The tool's progress messages
  (logged at INFO) go to stderr.

  Args:
    parser: A parser of `add_model_and_data_flags` and others of this module.
    argv: The arguments without the program name; sys.argv[1:] when None.

  Returns:
    The parsed argparse.Namespace.
  """
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
  flags.check_at_most(parser, args, 'strides', 'input_size')
  # Given both, they are checked now; else once the checkpoint fills them.
  if None not in (args.ignore_label, args.num_classes):
    message = _ignore_label_problem(args)
    if message:
      parser.error('argument --ignore_label: ' + message)
  return args


def _ignore_label_problem(args):
  if 0 <= args.ignore_label < args.num_classes:
    return 'must not be a class id of [0, --num_classes %d), got %d' % (
        args.num_classes, args.ignore_label)
  return None


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
  for name in FLAGS_FROM_CHECKPOINT:
    if not hasattr(args, name):
      continue
    checkpoint_value = _checkpoint_value(name, config, grid_for_prototypes)
    value = getattr(args, name)
    if value is None:
      setattr(args, name, checkpoint_value)
    elif value != checkpoint_value:
      _LOGGER.warning('--%s %s differs from the %s checkpoint %s was trained '
                      'with; using --%s %s.', name, _format_flag(value),
                      _format_flag(checkpoint_value), checkpoint_prefix, name,
                      _format_flag(value))
      overrides[name] = {'flag': _json_value(value),
                         'checkpoint': _json_value(checkpoint_value)}
  message = (_ignore_label_problem(args)
             if hasattr(args, 'ignore_label') and hasattr(args, 'num_classes')
             else None)
  if message:
    raise errors.InferenceError('--ignore_label ' + message)
  return overrides


def _format_flag(value):
  return ','.join(map(str, value)) if isinstance(value, tuple) else str(value)


def _json_value(value):
  return list(value) if isinstance(value, tuple) else value


def predict_list_from_flags(predictor, args, checkpoint_prefix,
                            checkpoint_overrides=None):
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
      predictor, checkpoint_prefix=checkpoint_prefix, data_dir=args.data_dir,
      data_list=args.data_list, save_dir=args.save_dir, scales=args.scale_aug,
      flip=args.flip_aug,
      colormap=run_over_list.load_colormap(args.colormap, args.data_dir),
      ignore_label=args.ignore_label,
      apply_exif_orientation=args.apply_exif_orientation,
      checkpoint_overrides=checkpoint_overrides)


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
    network.checkpoints.CheckpointMismatchError: As `restore_network`,
      `settings_from_checkpoint` and `load_prototype_bank` raise them.
  """
  network, config, checkpoint_prefix = restore.restore_network(
      args.restore_from, restore.SEGSORT_MODES, args.embedding_dim)
  checkpoint_overrides = settings_from_checkpoint(args, config,
                                                  checkpoint_prefix)
  bank = banks.load_prototype_bank(
      args.prototype_dir, config.embedding_dim, args.num_classes,
      with_sources=with_sources, checkpoint_prefix=checkpoint_prefix)
  predictor = predictors.SegSortPredictor(
      network, bank, window_size=args.input_size, strides=args.strides,
      k_in_nearest_neighbors=args.k_in_nearest_neighbors,
      num_classes=args.num_classes, num_clusters=args.num_clusters,
      kmeans_iterations=args.kmeans_iterations)
  return predictor, bank, checkpoint_prefix, checkpoint_overrides
