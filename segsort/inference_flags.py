"""The flags shared by the inference entry points (no TensorFlow).

Kept apart from segsort.inference, which imports TensorFlow, so that an
entry point builds and parses its flags (and answers --help) before
TensorFlow loads:

    parser = argparse.ArgumentParser(...)
    inference_flags.add_model_and_data_flags(parser)
    args = inference_flags.parse_flags(parser, argv)
    from segsort import inference  # only now

The flags that repeat a training setting (--num_classes, --ignore_label,
--num_clusters, --kmeans_iterations) default to None here and take the
checkpoint's value in `segsort.inference.settings_from_checkpoint`.
"""

from segsort import colormap as colormap_lib
from segsort import flags

# The single-scale inference commands' defaults, shared by segsort.api and
# segsort.export (checked by tests).
DEFAULT_WINDOW_SIZE = (720, 720)
DEFAULT_STRIDES = (320, 320)
DEFAULT_K_IN_NEAREST_NEIGHBORS = 15
# The original release segments by embedding and location alone.
DEFAULT_COLOUR_WEIGHT = 0.0
# network.segsort.kmeans_segmentation.MAX_COLOUR_WEIGHT (kept apart so that
# the flags load without TensorFlow; a test checks they agree).
MAX_COLOUR_WEIGHT = 1_000_000

# The image scales of multi-scale inference, also those of a bare --scale_aug.
MULTI_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)

# The inference flags that repeat a training setting; unless given, each
# takes the checkpoint's value.
FLAGS_FROM_CHECKPOINT = (
  'num_classes',
  'ignore_label',
  'num_clusters',
  'kmeans_iterations',
)


def add_model_and_data_flags(
  parser,
  default_input_size=(480, 480),
  data_list_required=True,
  data_list_help='List file of the images (IMAGE [LABEL] a line).',
):
  """Adds the data, window and checkpoint flags of every inference tool.

  Args:
    parser: An argparse.ArgumentParser.
    default_input_size: The default window: the recipe uses 480x480 crops,
      720x720 (a whole VOC image in one window) for single-scale inference.
    data_list_required: Whether --data_list must be given.
    data_list_help: The help of --data_list (what its lines must hold).
  """
  parser.add_argument(
    '--data_dir',
    required=True,
    help='Dataset root; list paths are relative to it.',
  )
  parser.add_argument(
    '--data_list',
    required=data_list_required,
    default=None,
    help=data_list_help,
  )
  add_window_flags(parser, default_input_size)
  add_checkpoint_flag(parser)
  parser.add_argument(
    '--save_dir',
    required=True,
    type=flags.output_folder,
    help='Output directory.',
  )
  _add_flag_from_checkpoint(
    parser,
    'num_classes',
    flags.integer(1),
    'Number of classes, background included',
  )
  _add_flag_from_checkpoint(
    parser,
    'ignore_label',
    flags.integer(0),
    'Label value of pixels to leave out (not a class id)',
  )
  parser.add_argument(
    '--apply_exif_orientation',
    action='store_true',
    help='Turn images (and labels) as their EXIF '
    'orientation asks, as viewers show them; by default '
    'files are read as stored.',
  )


def add_window_flags(parser, default_input_size):
  """Adds --input_size and --strides, the sliding windows over an image."""
  parser.add_argument(
    '--input_size',
    type=flags.size_pair,
    default=default_input_size,
    help='Sliding window "height,width" (rounded up to a '
    'multiple of the output stride; smaller images are '
    'padded).',
  )
  parser.add_argument(
    '--strides',
    type=flags.size_pair,
    default=DEFAULT_STRIDES,
    help='Distances "vertical,horizontal" between windows, '
    'at most --input_size.',
  )


def add_checkpoint_flag(parser):
  """Adds --restore_from."""
  parser.add_argument(
    '--restore_from',
    required=True,
    help='Checkpoint prefix, or a run directory for its latest; '
    'its config.json gives the network and the defaults of '
    'the flags that repeat a training setting.',
  )


def _add_flag_from_checkpoint(
  parser, name, flag_type, help_text, checkpoint_flags=None
):
  """Adds a flag of FLAGS_FROM_CHECKPOINT.

  It stays None unless given, and then takes the checkpoint's value
  (`segsort.inference.settings_from_checkpoint`).

  Args:
    parser: An argparse.ArgumentParser.
    name: The flag's name, without dashes.
    flag_type: Its argparse type.
    help_text: What it is, completed by where its default comes from.
    checkpoint_flags: The training flags that give the default, when not
      --NAME.
  """
  parser.add_argument(
    '--' + name,
    type=flag_type,
    default=None,
    help="%s; default: the checkpoint's %s."
    % (help_text, checkpoint_flags or '--' + name),
  )


def add_embedding_dim_flag(parser):
  """Adds --embedding_dim, checked against the checkpoint's config."""
  parser.add_argument(
    '--embedding_dim',
    type=flags.integer(1),
    default=None,
    help="Checked against the checkpoint's embedding "
    'dimension (which is used either way).',
  )


def add_segment_flags(parser, for_prototypes=False):
  """Adds the k-means flags.

  Args:
    parser: An argparse.ArgumentParser.
    for_prototypes: Whether the grid is prototype extraction's, which
      defaults to the checkpoint's --prototype_num_clusters (when its run set
      one) rather than its --num_clusters.
  """
  _add_flag_from_checkpoint(
    parser,
    'num_clusters',
    flags.cluster_grid,
    'k-means grid of an image: "N" (N x N) or "ROWS,COLUMNS"',
    '--prototype_num_clusters, else its --num_clusters'
    if for_prototypes
    else None,
  )
  _add_flag_from_checkpoint(
    parser,
    'kmeans_iterations',
    flags.integer(0, flags.MAX_KMEANS_ITERATIONS),
    'Iterations of vMF k-means',
  )
  if not for_prototypes:
    # Prototype extraction clusters output cells only; colour enters where
    # pixels join clusters.
    parser.add_argument(
      '--colour_weight',
      type=flags.real(0, MAX_COLOUR_WEIGHT),
      default=DEFAULT_COLOUR_WEIGHT,
      help='Weight of the squared RGB distance (colours in [0, 1]) between '
      'a pixel and a cluster when pixels join the clusters of their '
      'surrounding cells; 0 (the original) ignores colour, 10 sharpens '
      'boundaries onto image edges (README: "Colour in the pixel join").',
    )
  parser.set_defaults(grid_for_prototypes=for_prototypes)


def add_knn_flags(parser, prototype_dir_required=True):
  """Adds the prototype bank flags.

  Args:
    parser: An argparse.ArgumentParser.
    prototype_dir_required: Whether --prototype_dir must be given (a tool
      that also serves softmax runs, which have no bank, leaves it out).
  """
  parser.add_argument(
    '--prototype_dir',
    required=prototype_dir_required,
    default=None,
    help='Directory of prototype_features.npy and '
    'prototype_labels.npy (SAVE_DIR/prototypes of '
    'segsort.extract_prototypes)%s.'
    % ('' if prototype_dir_required else '; none for softmax runs'),
  )
  parser.add_argument(
    '--k_in_nearest_neighbors',
    type=flags.integer(1),
    default=DEFAULT_K_IN_NEAREST_NEIGHBORS,
    help='Number of nearest prototypes that vote.',
  )


def add_colormap_flag(parser):
  """Adds --colormap."""
  parser.add_argument(
    '--colormap',
    default=None,
    help='%s, or a .npy or text (R G B rows) colour map; '
    'default: DATA_DIR/%s when it exists (written by the '
    'data set tools), else voc.'
    % (
      ' or '.join(sorted(colormap_lib.NAMED_COLORMAPS)),
      colormap_lib.COLORMAP_FILE,
    ),
  )


def add_class_names_flag(parser, data_dir_default=False):
  """Adds --class_names FILE (read with metrics.data_set_class_names).

  Args:
    parser: An argparse.ArgumentParser.
    data_dir_default: Whether the tool has --data_dir, whose classes.txt is
      then the default when it exists.
  """
  parser.add_argument(
    '--class_names',
    default=None,
    metavar='FILE',
    help='Class names of the report and pictures: one per line in class-id '
    'order (the classes.txt of tools/camvid_to_voc.py and '
    "tools/cityscapes_to_segcls.py); default: %sVOC's names for 21 "
    "classes, else 'class N'."
    % (
      'DATA_DIR/classes.txt when it exists, else ' if data_dir_default else ''
    ),
  )


def add_output_flags(parser, default_scales):
  """Adds the colour map, multi-scale and overlay flags.

  --scale_aug given bare, as the original release's switch, selects the
  multi-scale set `MULTI_SCALES`.
  """
  add_colormap_flag(parser)
  parser.add_argument(
    '--scale_aug',
    type=flags.image_scale_list,
    nargs='?',
    const=MULTI_SCALES,
    default=default_scales,
    help='Comma-separated image scales (> 0, <= %g) whose scores '
    'are summed; given bare, %s.'
    % (
      flags.MAX_IMAGE_SCALE,
      ','.join('%g' % scale for scale in MULTI_SCALES),
    ),
  )
  parser.add_argument(
    '--flip_aug',
    action='store_true',
    help='Add the left-right flip of every scale.',
  )
  parser.add_argument(
    '--save_overlay',
    action='store_true',
    help='Also write SAVE_DIR/overlay/ID.png: the image '
    'blended with the colour labels, with segment '
    'boundaries in white: k-means segments for '
    'single-scale SegSort without flips (one more pass '
    'per image), else the predicted regions.',
  )


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
  flags.check_at_most(parser, args, 'strides', 'input_size')
  # Given both, they are checked now; else once the checkpoint fills them.
  flags.check_ignore_label(parser, args)
  return args
