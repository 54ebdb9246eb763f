"""The training configuration: flags and config.json.

One `TrainConfig` describes a training run of any mode. The three training
entry points share one argparse builder, the trainer reads nothing else, and
the run's config.json beside its checkpoints tells inference which network to
build and with which settings it was trained:

    from network import builder, checkpoints
    prefix = checkpoints.resolve_checkpoint('snapshots/run')  # its latest
    config = load_config_for_checkpoint(prefix)
    network = builder.build_network_from_config(config)
    tf.train.Checkpoint(model=network).restore(prefix).expect_partial()

Flag names, meanings and defaults follow the original release's
pyscripts/train/train_segsort.py, except where MODE_DEFAULTS or the notes
below say otherwise; flags after `--backbone` are this port's.

Deliberate differences from the original's defaults:

* --iter_size accumulates gradients into one update per step; the original's
  default 10 ran 10 separate updates per step. Accumulating 10 batches per
  update would train on 10x the images per step, so the default is 1.
* --learning_rate is the original's 1e-3 for SegSort and softmax, and
  2.5e-4 for unsupervised SegSort (see MODE_DEFAULTS).
* --num_banks is 0 for unsupervised SegSort, whose loss keeps no memory
  bank.
"""

import argparse
import dataclasses
import json
import math
import os

from segsort import flags
from segsort import io_utils
from segsort import run_record

MODES = ('segsort', 'segsort_unsup', 'softmax')
# Kept in step with network.builder (checked by tests) so that flags can be
# validated without importing TensorFlow.
BACKBONES = ('resnet_v1_101', 'resnet_v1_50', 'mini')
HEADS = ('pspnet', 'deeplab', 'deeplabv3plus')
OUTPUT_STRIDES = (8, 16, 32)
# What the initial k-means grid and the location features of a training crop
# span: its source image (the original release) or the crop itself.
KMEANS_GRIDS = ('image', 'crop')

CONFIG_FILE_NAME = 'config.json'
# The key of config.json that records the software of the run (see
# segsort.run_record.environment); not a TrainConfig field.
ENVIRONMENT_KEY = 'environment'

# Flag defaults that depend on the training mode; TrainConfig's own defaults
# are those of the default mode, 'segsort'.
MODE_DEFAULTS = {
  'learning_rate': {'segsort': 1e-3, 'softmax': 1e-3, 'segsort_unsup': 2.5e-4},
  'num_banks': {'segsort': 2, 'softmax': 2, 'segsort_unsup': 0},
}

# Fields that may change between a run and its resumption: they affect how
# often things are logged or saved, where the first weights came from, or how
# the same global batch is computed, not what is trained.
RESUMABLE_FIELD_CHANGES = frozenset(
  {
    'save_pred_every',
    'update_tb_every',
    'restore_from',
    'num_gpu',
    'jit_compile',
    'overwrite_config',
    'prototype_num_clusters',
    'eval_every',
    'eval_list',
    'eval_images',
    'eval_prototype_images',
  }
)

_DESCRIPTIONS = {
  'segsort': 'Trains SegSort (supervised) on a segmentation data list.',
  'segsort_unsup': 'Trains unsupervised SegSort from contour-based '
  'oversegmentations (VOC2012/hed/).',
  'softmax': 'Trains the pixel-wise softmax baseline (same network, '
  'num_classes logits).',
}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Every setting of a training run.

  Attributes mirror the command-line flags (see `build_argument_parser` for
  their help); `mode` is one of MODES and `input_size` is (height, width).
  """

  mode: str = 'segsort'
  # Data.
  batch_size: int = 1
  data_dir: str = ''
  data_list: str = ''
  ignore_label: int = 255
  input_size: tuple = (336, 336)
  random_seed: int = 1234
  # Training.
  is_training: bool = False
  use_global_status: bool = False
  learning_rate: float = 1e-3
  power: float = 0.9
  momentum: float = 0.9
  weight_decay: float = 5e-4
  num_classes: int = 21
  num_steps: int = 20000
  iter_size: int = 1
  random_mirror: bool = False
  random_crop: bool = False
  random_scale: bool = False
  # SegSort.
  embedding_dim: int = 32
  concentration: float = 10.0
  # (clusters along y, along x); the flag also takes the original's n.
  num_clusters: tuple = (5, 5)
  kmeans_grid: str = 'image'
  kmeans_iterations: int = 10
  num_banks: int = 2
  # Misc.
  restore_from: str = ''
  save_pred_every: int = 10000
  update_tb_every: int = 20
  snapshot_dir: str = ''
  not_restore_classifier: bool = False
  # This port.
  backbone: str = 'resnet_v1_101'
  head: str = 'pspnet'
  output_stride: int = 8
  num_gpu: int = 1
  sync_batch_norm: bool = False
  mixed_precision: bool = False
  jit_compile: bool = False
  deterministic: bool = False
  overwrite_config: bool = False
  apply_exif_orientation: bool = False
  # Read by prototype extraction only; None: the --num_clusters grid.
  prototype_num_clusters: tuple | None = None
  # Validation during training (segsort/validation.py).
  eval_every: int = 0
  eval_list: str = ''
  eval_images: int = 100
  eval_prototype_images: int = 200

  def __post_init__(self):
    # JSON stores tuples as lists; keep the field hashable and comparable.
    object.__setattr__(
      self, 'input_size', tuple(int(size) for size in self.input_size)
    )
    # config.json of earlier versions holds clusters per axis, one integer.
    object.__setattr__(self, 'num_clusters', _grid_pair(self.num_clusters))
    if self.prototype_num_clusters is not None:
      object.__setattr__(
        self, 'prototype_num_clusters', _grid_pair(self.prototype_num_clusters)
      )
    self.validate()

  @property
  def output_channels(self):
    """The network's output channels: logits or embedding dimensions."""
    return self.num_classes if self.mode == 'softmax' else self.embedding_dim

  def validate(self):
    """Checks values that no network or data could use.

    Raises:
      ValueError: Naming the flag and the accepted values.
    """
    problems = []
    if self.mode not in MODES:
      problems.append('mode %r is not one of %s' % (self.mode, MODES))
    if self.backbone not in BACKBONES:
      problems.append(
        '--backbone %r is not one of %s' % (self.backbone, BACKBONES)
      )
    if self.head not in HEADS:
      problems.append('--head %r is not one of %s' % (self.head, HEADS))
    if self.output_stride not in OUTPUT_STRIDES:
      problems.append(
        '--output_stride %r is not one of %s'
        % (self.output_stride, OUTPUT_STRIDES)
      )
    if self.kmeans_grid not in KMEANS_GRIDS:
      problems.append(
        '--kmeans_grid %r is not one of %s' % (self.kmeans_grid, KMEANS_GRIDS)
      )
    if len(self.input_size) != 2 or min(self.input_size) < 1:
      problems.append(
        '--input_size %r must be two positive integers '
        '"height,width"' % (self.input_size,)
      )
    for name in ('num_clusters', 'prototype_num_clusters'):
      grid = getattr(self, name)
      if grid is not None and (len(grid) != 2 or min(grid) < 1):
        problems.append(
          '--%s %r must be "N" or two positive integers '
          '"ROWS,COLUMNS"' % (name, grid)
        )
    for name in (
      'batch_size',
      'num_steps',
      'iter_size',
      'num_classes',
      'embedding_dim',
      'save_pred_every',
      'update_tb_every',
      'num_gpu',
    ):
      if getattr(self, name) < 1:
        problems.append(
          '--%s must be at least 1, got %r' % (name, getattr(self, name))
        )
    for name in (
      'kmeans_iterations',
      'num_banks',
      'weight_decay',
      'learning_rate',
      'momentum',
      'power',
      'random_seed',
      'eval_every',
      'eval_images',
      'eval_prototype_images',
    ):
      value = getattr(self, name)
      if not (math.isfinite(value) and value >= 0):
        problems.append('--%s must be a number >= 0, got %r' % (name, value))
    if not (math.isfinite(self.concentration) and self.concentration > 0):
      problems.append(
        '--concentration must be a number > 0, got %r' % self.concentration
      )
    if self.momentum > 1:
      problems.append('--momentum must be at most 1, got %r' % self.momentum)
    if 0 <= self.ignore_label < self.num_classes:
      problems.append(
        '--ignore_label %d is a class id of [0, --num_classes '
        '%d); it must lie outside' % (self.ignore_label, self.num_classes)
      )
    if self.eval_every and not self.eval_list:
      problems.append(
        '--eval_every needs --eval_list, an annotated list (IMAGE LABEL a line)'
      )
    if self.mode == 'segsort_unsup' and self.num_banks:
      problems.append(
        '--num_banks must be 0 for unsupervised SegSort (its '
        'loss keeps no memory bank), got %d' % self.num_banks
      )
    if problems:
      raise ValueError('Invalid training configuration: ' + '; '.join(problems))

  def to_dict(self):
    """Returns the config as a JSON-serialisable dict."""
    config = dataclasses.asdict(self)
    config['input_size'] = list(self.input_size)
    config['num_clusters'] = list(self.num_clusters)
    if self.prototype_num_clusters is not None:
      config['prototype_num_clusters'] = list(self.prototype_num_clusters)
    return config

  @classmethod
  def from_dict(cls, values):
    """Builds a config from a dict such as `to_dict`'s.

    Missing fields take their defaults (configs of older versions).

    Raises:
      ValueError: If the dict has fields TrainConfig does not know.
    """
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
      raise ValueError('Unknown training config fields: %s' % unknown)
    return cls(**values)

  @classmethod
  def from_flags(cls, argv=None, mode='segsort'):
    """Parses command-line flags into a config.

    Args:
      argv: The arguments without the program name; sys.argv[1:] when None.
      mode: One of MODES, the entry point's training mode.

    Returns:
      A TrainConfig. Invalid values exit with a usage message, as argparse
      does; so does a --config file that is missing, malformed or of
      another mode.
    """
    parser = build_argument_parser(mode)
    flags = run_record.parse_with_saved_config(
      parser, argv, lambda path: _saved_flag_values(path, mode)
    )
    try:
      return cls(mode=mode, **vars(flags))
    except ValueError as error:
      parser.error(str(error))


def _grid_pair(grid):
  """A k-means grid as (rows, columns): n (an n x n grid) or a pair."""
  if isinstance(grid, int):
    return (grid, grid)
  return tuple(int(count) for count in grid)


def build_argument_parser(mode='segsort'):
  """Builds the argparse parser shared by the training entry points.

  Args:
    mode: One of MODES; it picks the description and the defaults of
      MODE_DEFAULTS (e.g. unsupervised SegSort uses no memory bank).

  Returns:
    An argparse.ArgumentParser whose parsed namespace holds every
    TrainConfig field except `mode`, and 'config' (see
    segsort.run_record.parse_with_saved_config).
  """
  if mode not in MODES:
    raise ValueError('mode %r is not one of %s' % (mode, MODES))
  defaults = TrainConfig()
  parser = run_record.ArgumentParser(
    description=_DESCRIPTIONS[mode],
    formatter_class=argparse.ArgumentDefaultsHelpFormatter,
  )
  run_record.add_config_flag(parser, 'training run')

  def add(group, name, help_text, **kwargs):
    """Adds --name with TrainConfig's default and, unless a switch, type."""
    if kwargs.get('action') != 'store_true':
      kwargs.setdefault('type', type(getattr(defaults, name)))
    kwargs.setdefault(
      'default', MODE_DEFAULTS.get(name, {}).get(mode, getattr(defaults, name))
    )
    group.add_argument('--' + name, help=help_text, **kwargs)

  data = parser.add_argument_group('data')
  add(
    data,
    'batch_size',
    'Number of images in one step (the global batch, '
    'split evenly over GPUs and machines).',
  )
  add(
    data, 'data_dir', 'Path to the dataset root; list paths are relative to it.'
  )
  add(data, 'data_list', 'Path to the data list file (IMAGE LABEL per line).')
  add(data, 'ignore_label', 'The label value of pixels to ignore.')
  add(
    data,
    'input_size',
    'Crop size "height,width" of training images.',
    type=flags.size_pair,
  )
  add(
    data, 'random_seed', 'Random seed of weights, shuffling and augmentation.'
  )
  for name in ('random_mirror', 'random_crop', 'random_scale'):
    add(
      data,
      name,
      'Whether to randomly %s the inputs.' % name.split('_')[1],
      action='store_true',
    )
  add(
    data,
    'apply_exif_orientation',
    'Turn images (and labels) as their '
    'EXIF orientation asks, as viewers and annotation tools show them; by '
    'default files are read as stored, and images with an orientation are '
    'reported.',
    action='store_true',
  )

  training = parser.add_argument_group('training')
  add(
    training,
    'is_training',
    'Whether BatchNorm layers use batch '
    'statistics (and update their moving averages) unless '
    '--use_global_status freezes them.',
    action='store_true',
  )
  add(
    training,
    'use_global_status',
    'Whether to freeze BatchNorm moving '
    'mean and variance (always normalise with them).',
    action='store_true',
  )
  add(training, 'learning_rate', 'Base learning rate (the head trains at 10x).')
  add(training, 'power', 'Decay power of the poly learning rate policy.')
  add(training, 'momentum', 'Momentum of the SGD optimizer.')
  add(
    training, 'weight_decay', 'L2 regularisation factor of convolution kernels.'
  )
  add(
    training,
    'num_classes',
    'Number of classes (logits of the softmax baseline).',
  )
  add(training, 'num_steps', 'Number of training steps.')
  add(
    training,
    'iter_size',
    'Number of mini-batches whose gradients are '
    'accumulated (averaged) into one update per step. The original\'s '
    'default 10 ran 10 separate updates per step instead; accumulating 10 '
    'would train on 10x the images per step, hence the default 1.',
  )

  segsort = parser.add_argument_group('SegSort')
  add(segsort, 'embedding_dim', 'Dimension of the feature embeddings.')
  add(
    segsort, 'concentration', 'Concentration (kappa) of the vMF distribution.'
  )
  add(
    segsort,
    'num_clusters',
    'k-means grid of every crop: "N", the number '
    'of clusters along each image axis (the original\'s), or '
    '"ROWS,COLUMNS".',
    type=flags.cluster_grid,
  )
  add(
    segsort,
    'kmeans_grid',
    'What the initial k-means grid and the '
    'location features span: each crop\'s source image (the original '
    'release; a crop much smaller than its image then starts from the few '
    'grid cells it overlaps) or the crop itself (as inference lays them on '
    'each window).',
    choices=KMEANS_GRIDS,
  )
  add(segsort, 'kmeans_iterations', 'Number of k-means iterations.')
  add(
    segsort, 'num_banks', 'Number of memory banks (steps of prototypes kept).'
  )
  add(
    segsort,
    'prototype_num_clusters',
    'k-means grid "N" (N x N) or '
    '"ROWS,COLUMNS" with which segsort.extract_prototypes cuts annotated '
    'images into prototypes by default; unset: the --num_clusters grid. '
    'Not used in training: recorded in config.json, where inference reads '
    'its defaults (the original\'s street-scene settings extracted '
    'prototypes on a finer grid, 16x16, than they trained and inferred '
    'on, 8x8).',
    type=flags.cluster_grid,
  )

  misc = parser.add_argument_group('checkpoints and logs')
  add(
    misc,
    'restore_from',
    'Checkpoint to start from: a TF-Slim ImageNet '
    'checkpoint (backbone only) or one of ours (a prefix, or a directory '
    'for its latest). Ignored when --snapshot_dir holds a checkpoint to '
    'resume.',
  )
  add(misc, 'save_pred_every', 'Save a checkpoint every this many steps.')
  add(
    misc,
    'update_tb_every',
    'Write TensorBoard summaries every this many steps.',
  )
  add(
    misc,
    'snapshot_dir',
    'Directory of checkpoints, config.json and '
    'TensorBoard logs; a run found there is resumed.',
  )
  add(
    misc,
    'not_restore_classifier',
    'Restore only the backbone from one of '
    'our checkpoints, not the head (TF-Slim checkpoints have no head '
    'anyway).',
    action='store_true',
  )

  port = parser.add_argument_group('model and hardware')
  add(
    port,
    'backbone',
    'Backbone network (mini is a tiny CPU backbone).',
    choices=BACKBONES,
  )
  add(port, 'head', 'Segmentation head.', choices=HEADS)
  add(
    port,
    'output_stride',
    'Output stride of the backbone.',
    choices=OUTPUT_STRIDES,
  )
  add(
    port,
    'num_gpu',
    'Number of GPUs of this machine to train on '
    '(MirroredStrategy when > 1). A TF_CONFIG environment variable selects '
    'MultiWorkerMirroredStrategy instead.',
  )
  add(
    port,
    'sync_batch_norm',
    'Compute BatchNorm batch statistics over all '
    'replicas (with --is_training and without --use_global_status).',
    action='store_true',
  )
  add(
    port,
    'mixed_precision',
    'Compute in float16 with dynamic loss scaling.',
    action='store_true',
  )
  add(
    port,
    'jit_compile',
    'Compile the training step with XLA.',
    action='store_true',
  )
  add(
    port,
    'deterministic',
    'Use deterministic op kernels too (slower), '
    'for bit-reproducible GPU runs; the input order and augmentation are '
    'always fixed by --random_seed, which makes CPU runs reproducible.',
    action='store_true',
  )
  add(
    port,
    'overwrite_config',
    'Accept a --snapshot_dir whose config.json '
    'differs from these flags: overwrite it and resume its checkpoint.',
    action='store_true',
  )

  validation = parser.add_argument_group(
    'validation during training (segsort/validation.py)'
  )
  add(
    validation,
    'eval_every',
    'Every this many steps, compute the mIoU of '
    '--eval_images images of --eval_list (k-NN of prototypes of '
    '--eval_prototype_images training images; softmax: plain inference) '
    'and keep the best checkpoint in SNAPSHOT_DIR/best; 0: never.',
  )
  add(
    validation,
    'eval_list',
    'Annotated list file to validate on (IMAGE '
    'LABEL a line, paths relative to --data_dir).',
  )
  add(
    validation,
    'eval_images',
    'Images of --eval_list evaluated, spread evenly over it; 0: all.',
  )
  add(
    validation,
    'eval_prototype_images',
    'Annotated images of --data_list '
    'whose prototypes validation uses, spread evenly over it; 0: all.',
  )
  return parser


# Fields holding paths, compared by the file they name, not their spelling.
PATH_FIELDS = ('data_dir', 'data_list', 'restore_from', 'snapshot_dir')


def _normalized_path(path):
  return os.path.normpath(os.path.abspath(path)) if path else path


def setting_differences(old, new, ignored=(), comparable=None):
  """Lists the settings in which two dicts of settings differ.

  The one comparison of recorded settings with current ones: a snapshot's
  config.json with the flags (`config_differences`), an output directory's
  settings file with a rerun's (segsort.inference.output_dirs).

  Args:
    old: A dict of settings, e.g. the recorded ones.
    new: A dict of settings; a key missing from one of the two reads None.
    ignored: Keys not compared.
    comparable: None, or a function (key, value) -> what is compared in
      place of the value (e.g. a normalised path).

  Returns:
    A list of (key, old value, new value), sorted by key.
  """

  def compared(key, values):
    value = values.get(key)
    return comparable(key, value) if comparable else value

  return [
    (key, old.get(key), new.get(key))
    for key in sorted(set(old) | set(new))
    if key not in ignored and compared(key, old) != compared(key, new)
  ]


def config_differences(saved, current, ignored=RESUMABLE_FIELD_CHANGES):
  """Lists the fields in which two configs differ.

  Paths are compared normalised (absolute, without '.', '..' or trailing
  slashes), so that 'data/' and '/home/me/data' are the same directory.

  Args:
    saved: A TrainConfig (e.g. a snapshot directory's).
    current: A TrainConfig.
    ignored: Field names not compared.

  Returns:
    A sorted list of (field name, saved value, current value).
  """

  def comparable(name, value):
    return _normalized_path(value) if name in PATH_FIELDS else value

  return setting_differences(
    saved.to_dict(), current.to_dict(), ignored, comparable
  )


def _saved_flag_values(path, mode):
  """The flag values of a saved config.json of `mode`, for --config."""
  config = load_config(path)
  if config.mode != mode:
    raise ValueError(
      '%s holds a %s run, not %s; replay it with that '
      "mode's entry point" % (path, config.mode, mode)
    )
  values = config.to_dict()
  del values['mode']
  return values


def save_config(config, snapshot_dir):
  """Writes `snapshot_dir/config.json` atomically.

  The file holds every TrainConfig field, with paths made absolute (so that
  it can be replayed from any directory with --config), and under
  "environment" the software of the run (segsort.run_record.environment:
  Python, TensorFlow, Keras and NumPy versions, the git commit).

  Returns:
    The path written.
  """
  path = os.path.join(snapshot_dir, CONFIG_FILE_NAME)
  values = config.to_dict()
  for name in PATH_FIELDS:
    values[name] = _normalized_path(values[name])
  values[ENVIRONMENT_KEY] = run_record.environment()
  io_utils.save_json(path, values)
  return path


def load_config(path_or_dir):
  """Reads a config.json (or the one in a directory), less its environment.

  Raises:
    FileNotFoundError: If there is no such file.
    ValueError: If the file is not a valid config.
  """
  path = path_or_dir
  if os.path.isdir(path):
    path = os.path.join(path, CONFIG_FILE_NAME)
  if not os.path.isfile(path):
    raise FileNotFoundError('No training config at %s' % path)
  try:
    with open(path) as stream:
      values = json.load(stream)
    if not isinstance(values, dict):
      raise ValueError('expected a JSON object, got %s' % type(values).__name__)
    values.pop(ENVIRONMENT_KEY, None)
    return TrainConfig.from_dict(values)
  except (ValueError, TypeError) as error:
    raise ValueError(
      'Invalid training config %s: %s' % (path, error)
    ) from error


def load_config_for_checkpoint(checkpoint_prefix):
  """Reads the config.json of the run that wrote a checkpoint.

  Args:
    checkpoint_prefix: A prefix from `network.checkpoints.resolve_checkpoint`.

  Raises:
    FileNotFoundError: If the checkpoint's directory has no config.json
      (e.g. an ImageNet checkpoint, or a run of an older version).
  """
  directory = os.path.dirname(os.path.abspath(checkpoint_prefix))
  path = os.path.join(directory, CONFIG_FILE_NAME)
  if not os.path.isfile(path):
    raise FileNotFoundError(
      'No %s beside checkpoint %s: it was not written by this port\'s '
      'trainer, so its network is unknown'
      % (CONFIG_FILE_NAME, checkpoint_prefix)
    )
  return load_config(path)
