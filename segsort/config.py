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

The argparse builder lives in segsort.train_flags and the config.json files
in segsort.config_files; their names are importable from here as well.

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

import dataclasses
import math

from segsort import config_files
from segsort import flags
from segsort import run_record
from segsort import train_flags

# The names of the modules split from this one, still importable from here.
# They need TrainConfig only when called, so that importing them here makes
# no import cycle.
from segsort.config_files import CONFIG_FILE_NAME as CONFIG_FILE_NAME
from segsort.config_files import ENVIRONMENT_KEY as ENVIRONMENT_KEY
from segsort.config_files import PATH_FIELDS as PATH_FIELDS
from segsort.config_files import (
  RESUMABLE_FIELD_CHANGES as RESUMABLE_FIELD_CHANGES,
)
from segsort.config_files import config_differences as config_differences
from segsort.config_files import load_config as load_config
from segsort.config_files import (
  load_config_for_checkpoint as load_config_for_checkpoint,
)
from segsort.config_files import save_config as save_config
from segsort.config_files import setting_differences as setting_differences
from segsort.train_flags import build_argument_parser as build_argument_parser

MODES = ('segsort', 'segsort_unsup', 'softmax')
# Kept in step with network.builder (checked by tests) so that flags can be
# validated without importing TensorFlow.
BACKBONES = ('resnet_v1_101', 'resnet_v1_50', 'mini')
HEADS = ('pspnet', 'deeplab', 'deeplabv3plus')
OUTPUT_STRIDES = (8, 16, 32)
# What the initial k-means grid and the location features of a training crop
# span: its source image (the original release) or the crop itself.
KMEANS_GRIDS = ('image', 'crop')
# NumPy's and Keras's seeds are 32-bit: a larger one failed at start-up.
MAX_RANDOM_SEED = 2**32 - 1
# More steps than any run could take (years of the smallest network on a
# GPU): a larger --num_steps is a typo, and overflowed the 64-bit
# arithmetic of the CPU scripts' warm-up. The bound of every integer field.
MAX_STEPS = flags.MAX_INTEGER

# Flag defaults that depend on the training mode; TrainConfig's own defaults
# are those of the default mode, 'segsort'.
MODE_DEFAULTS = {
  'learning_rate': {'segsort': 1e-3, 'softmax': 1e-3, 'segsort_unsup': 2.5e-4},
  'num_banks': {'segsort': 2, 'softmax': 2, 'segsort_unsup': 0},
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
  # The head (the original's "block5") learns at this multiple of the rate.
  head_learning_rate_multiplier: float = 10.0
  power: float = 0.9
  warmup_steps: int = 0
  momentum: float = 0.9
  weight_decay: float = 5e-4
  # This port's addition: 0 keeps the last weights, as the original.
  ema_decay: float = 0.0
  num_classes: int = 21
  num_steps: int = 20000
  iter_size: int = 1
  random_mirror: bool = False
  random_crop: bool = False
  random_scale: bool = False
  # This port's addition: colour jitter (segsort.data.augmentation).
  random_colour: bool = False
  # SegSort.
  embedding_dim: int = 32
  concentration: float = 10.0
  # (clusters along y, along x); the flag also takes the original's n.
  num_clusters: tuple = (5, 5)
  kmeans_grid: str = 'image'
  kmeans_iterations: int = 10
  num_banks: int = 2
  # Unsupervised SegSort: read segment groups, left out of each other's loss.
  segment_groups: bool = False
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
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      # TensorFlow's int32 (random seeds have their own bound).
      if (
        field.name != 'random_seed'
        and isinstance(value, int)
        and not isinstance(value, bool)
        and value > flags.MAX_INTEGER
      ):
        problems.append(
          '--%s %d is more than %d' % (field.name, value, flags.MAX_INTEGER)
        )
    for name in (
      'kmeans_iterations',
      'warmup_steps',
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
    if self.num_classes == 1:
      # The loss of one class is 0 whatever the network does: such a run
      # trained nothing, silently (masks of 0 and 255 suggest it).
      problems.append(
        '--num_classes must be at least 2: with one class there is nothing '
        'to tell apart (for masks of 0 = background and 255 = object, '
        'import them with tools.import_dataset --binary_masks)'
      )
    if self.random_seed > MAX_RANDOM_SEED:
      problems.append(
        '--random_seed must be at most 2**32 - 1 = %d, got %r'
        % (MAX_RANDOM_SEED, self.random_seed)
      )
    if self.kmeans_iterations > flags.MAX_KMEANS_ITERATIONS:
      problems.append(
        '--kmeans_iterations must be at most %d, got %r'
        % (flags.MAX_KMEANS_ITERATIONS, self.kmeans_iterations)
      )
    if not (math.isfinite(self.concentration) and self.concentration > 0):
      problems.append(
        '--concentration must be a number > 0, got %r' % self.concentration
      )
    if not (
      math.isfinite(self.head_learning_rate_multiplier)
      and self.head_learning_rate_multiplier > 0
    ):
      problems.append(
        '--head_learning_rate_multiplier must be a number > 0, got %r'
        % self.head_learning_rate_multiplier
      )
    if self.momentum > 1:
      problems.append('--momentum must be at most 1, got %r' % self.momentum)
    if not (math.isfinite(self.ema_decay) and 0 <= self.ema_decay < 1):
      problems.append(
        '--ema_decay must be a number in [0, 1), got %r' % self.ema_decay
      )
    if self.num_steps >= 1 and self.warmup_steps > self.num_steps:
      problems.append(
        '--warmup_steps %d is more than --num_steps %d'
        % (self.warmup_steps, self.num_steps)
      )
    if 0 <= self.ignore_label < self.num_classes:
      problems.append(
        '--ignore_label %d is a class id of [0, --num_classes '
        '%d); it must lie outside' % (self.ignore_label, self.num_classes)
      )
    if self.eval_every and not self.eval_list:
      problems.append(
        '--eval_every needs --eval_list, an annotated list (IMAGE LABEL a line)'
      )
    problems.extend(self._crop_grid_problems())
    if self.segment_groups and self.mode != 'segsort_unsup':
      problems.append(
        '--segment_groups is for unsupervised SegSort only (mode %s)'
        % self.mode
      )
    if self.mode == 'segsort_unsup' and self.num_banks:
      problems.append(
        '--num_banks must be 0 for unsupervised SegSort (its '
        'loss keeps no memory bank), got %d' % self.num_banks
      )
    if problems:
      raise ValueError('Invalid training configuration: ' + '; '.join(problems))

  def _crop_grid_problems(self):
    """A k-means grid laid on each crop with more cells per axis than the
    crop's embedding has: most clusters would start empty and stay so."""
    if (
      self.mode == 'softmax'
      or self.kmeans_grid != 'crop'
      or len(self.input_size) != 2
      or len(self.num_clusters) != 2
      or self.output_stride not in OUTPUT_STRIDES
    ):
      return []
    embedding_size = [
      math.ceil(side / self.output_stride) for side in self.input_size
    ]
    if all(
      clusters <= cells
      for clusters, cells in zip(self.num_clusters, embedding_size)
    ):
      return []
    return [
      '--num_clusters %s is more clusters per axis than the %dx%d embedding '
      'of an --input_size %dx%d crop at --output_stride %d'
      % (
        ','.join(map(str, self.num_clusters)),
        embedding_size[0],
        embedding_size[1],
        self.input_size[0],
        self.input_size[1],
        self.output_stride,
      )
    ]

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
    parser = train_flags.build_argument_parser(mode)
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


def _saved_flag_values(path, mode):
  """The flag values of a saved config.json of `mode`, for --config."""
  config = config_files.load_config(path)
  if config.mode != mode:
    raise ValueError(
      '%s holds a %s run, not %s; replay it with that '
      "mode's entry point" % (path, config.mode, mode)
    )
  values = config.to_dict()
  del values['mode']
  # An action of the run that recorded it, not a setting: replayed, it let
  # another run's folder be taken over without a word.
  del values['overwrite_config']
  return values
