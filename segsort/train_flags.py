"""The training flags, which the three training entry points share.

Flag names, meanings and defaults are TrainConfig's (segsort.config, whose
docstring tells where they differ from the original release's);
`--config RUN/config.json` replays a saved run, `@FILE` reads flags from a
file. `main` is what every training entry point does with them: the work is
done by segsort.trainer.
"""

from segsort import console
from segsort import errors
from segsort import flags
from segsort import run_record

_DESCRIPTIONS = {
  'segsort': 'Trains SegSort (supervised) on a segmentation data list.',
  'segsort_unsup': 'Trains unsupervised SegSort from contour-based '
  'oversegmentations (VOC2012/hed/).',
  'softmax': 'Trains the pixel-wise softmax baseline (same network, '
  'num_classes logits).',
}


def build_argument_parser(mode='segsort'):
  """Builds the argparse parser shared by the training entry points.

  Args:
    mode: One of segsort.config.MODES; it picks the description and the
      defaults of MODE_DEFAULTS (e.g. unsupervised SegSort uses no memory
      bank).

  Returns:
    An argparse.ArgumentParser whose parsed namespace holds every
    TrainConfig field except `mode`, and 'config' (see
    segsort.run_record.parse_with_saved_config).
  """
  # Imported here: segsort.config, which TrainConfig belongs to, imports
  # this module.
  from segsort import config as config_lib

  if mode not in config_lib.MODES:
    raise ValueError('mode %r is not one of %s' % (mode, config_lib.MODES))
  defaults = config_lib.TrainConfig()
  parser = run_record.ArgumentParser(description=_DESCRIPTIONS[mode])
  run_record.add_config_flag(parser, 'training run')

  def add(group, name, help_text, **kwargs):
    """Adds --name with TrainConfig's default and, unless a switch, type."""
    if kwargs.get('action') != 'store_true':
      kwargs.setdefault('type', type(getattr(defaults, name)))
    kwargs.setdefault(
      'default',
      config_lib.MODE_DEFAULTS.get(name, {}).get(mode, getattr(defaults, name)),
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
  add(
    data,
    'data_list',
    'Path to the data list file: IMAGE LABEL a line (unsupervised SegSort: '
    'IMAGE [LABEL [OVERSEGMENTATION]], labels unused).',
  )
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
    'random_colour',
    'Whether to randomly jitter the colours of the inputs (brightness, '
    'contrast, saturation, hue; one image in five gray). This port\'s '
    'addition, off in the original.',
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
  add(
    training,
    'learning_rate',
    'Base learning rate (the head trains at --head_learning_rate_multiplier '
    'times it).',
  )
  add(
    training,
    'head_learning_rate_multiplier',
    "The head's learning rate over the base rate: 10, the original's, "
    'for a new head on ImageNet weights; a network trained from random '
    'weights has no part that learns first (README: "The head\'s learning '
    'rate"). This port\'s flag.',
  )
  add(training, 'power', 'Decay power of the poly learning rate policy.')
  add(
    training,
    'warmup_steps',
    'Steps over which the learning rate rises linearly to the poly '
    "schedule's (0: none, as in the original release; helps training from "
    'random weights).',
  )
  add(training, 'momentum', 'Momentum of the SGD optimizer.')
  add(
    training,
    'ema_decay',
    'Decay per step of an exponential moving average of the trained '
    'weights, which the final checkpoint holds instead of the last weights '
    '(0: the last weights, as in the original release); in [0, 1). This '
    'port\'s addition.',
  )
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
    choices=config_lib.KMEANS_GRIDS,
  )
  add(segsort, 'kmeans_iterations', 'Number of k-means iterations.')
  add(
    segsort, 'num_banks', 'Number of memory banks (steps of prototypes kept).'
  )
  if mode == 'segsort_unsup':
    add(
      segsort,
      'segment_groups',
      'Also read every oversegmentation\'s segment '
      'groups (VOC2012/hed_groups/ID.png beside VOC2012/hed/ID.png; made by '
      'tools.make_oversegmentation --groups_of) and leave the other segments '
      'of a pixel\'s group out of its loss, so that the pieces of one object '
      'are not pushed apart. This port\'s addition; off: the original loss.',
      action='store_true',
    )
  else:
    # Every mode's namespace holds every TrainConfig field.
    parser.set_defaults(segment_groups=False)
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
    type=flags.output_folder,
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
    choices=config_lib.BACKBONES,
  )
  add(port, 'head', 'Segmentation head.', choices=config_lib.HEADS)
  add(
    port,
    'output_stride',
    'Output stride of the backbone.',
    choices=config_lib.OUTPUT_STRIDES,
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


def main(mode, argv=None):
  """Trains a model of one mode from command-line flags.

  Args:
    mode: One of segsort.config.MODES, the entry point's training mode.
    argv: The arguments without the program name; sys.argv[1:] when None.
  """
  # Imported here: segsort.config imports this module.
  from segsort import config as config_lib

  console.quiet_tensorflow()
  config = config_lib.TrainConfig.from_flags(argv, mode=mode)
  # Imported once the flags are parsed, so that --help is quick.
  from segsort import trainer  # pylint: disable=g-import-not-at-top

  trainer.main(config)


def entry_point(mode):
  """The `main(argv=None)` of the training entry point of `mode`.

  Args:
    mode: One of segsort.config.MODES.

  Returns:
    A function of `argv` (sys.argv[1:] when None) running `main(mode, argv)`,
    for `python -m` and the console scripts.
  """

  @errors.one_line_on_interrupt
  def main_of_mode(argv=None):
    main(mode, argv)

  main_of_mode.__doc__ = 'Trains a %s model from command-line flags.' % mode
  return main_of_mode
