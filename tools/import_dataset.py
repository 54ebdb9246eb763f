r"""Imports a folder of images and a folder of masks into the VOC data layout.

Masks are matched to images by file stem (`cat_01.jpg` <-> `cat_01.png`) and
hold class ids: grayscale values or palette indices (as VOC's
SegmentationClass PNGs), 255 for pixels to ignore. With --binary_masks,
masks of 0 (background) and 255 (object) become classes 0 and 1. Writes:

    OUTPUT_DIR/VOC2012/JPEGImages/ID.jpg  RGB images (JPEG, --jpeg_quality)
    OUTPUT_DIR/VOC2012/segcls/ID.png      grayscale class ids, 255 = ignore
    OUTPUT_DIR/train.txt, val.txt         `IMAGE LABEL` lines of the images
                                          with masks
    OUTPUT_DIR/unlabeled.txt              `IMAGE` lines of the images without
    OUTPUT_DIR/train+unlabeled.txt        train and unlabeled images, `IMAGE`
                                          lines: unsupervised SegSort's list
    OUTPUT_DIR/colormap.txt               the masks' palette, when they have
                                          one (inference colours with it)
    OUTPUT_DIR/VOC2012/hed/ID.png         oversegmentations, with --oversegment

The images with masks are split into train and val at random
(--val_fraction, --seed), or as id files say (--train_ids, --val_ids). The
classes found and their pixel counts are printed. Every output is written
atomically; images imported before are skipped unless --overwrite, or
unless their image or mask has changed since (their masks are still read
for the counts).

Example:
  python -m tools.import_dataset --image_dir photos --mask_dir masks \
      --output_dir data/mine --val_fraction 0.2 --oversegment
"""

import functools
import json
import os
import sys

import numpy as np
from PIL import Image

if __package__ in (None, ''):
  # Run as a script: make the repository's packages importable.
  sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  )

from segsort import colormap  # pylint: disable=g-import-not-at-top
from segsort import config_files  # pylint: disable=g-import-not-at-top
from segsort import console  # pylint: disable=g-import-not-at-top
from segsort import errors  # pylint: disable=g-import-not-at-top
from segsort import flags  # pylint: disable=g-import-not-at-top
from segsort import io_utils  # pylint: disable=g-import-not-at-top
from tools import folder_jobs  # pylint: disable=g-import-not-at-top
from tools import make_lists  # pylint: disable=g-import-not-at-top
from tools import make_oversegmentation  # pylint: disable=g-import-not-at-top

# Lossless formats only: JPEG compression changes ids at class boundaries.
MASK_EXTENSIONS = ('.png', '.bmp', '.gif', '.pgm', '.tif', '.tiff')
IGNORE_LABEL = 255


class DatasetError(ValueError):
  """Images and masks that cannot be imported: unmatched, odd or bad ids."""


# Written into OUTPUT_DIR: the settings its labels and lists were made with,
# so that a rerun with others (say --binary_masks, which changes every
# label) does not keep the old files while reporting the new settings.
SETTINGS_FILE = '.import_dataset.json'
# The lists import_dataset may write.
LIST_NAMES = ('train', 'val', 'unlabeled', 'train+unlabeled')


def _check_earlier_settings(output_dir, settings, overwrite):
  """Refuses to add to a DATAROOT imported with other settings.

  Raises:
    DatasetError: Naming the settings that differ, unless overwriting.
  """
  path = os.path.join(output_dir, SETTINGS_FILE)
  if overwrite or not os.path.exists(path):
    return
  try:
    with open(path) as stream:
      recorded = json.load(stream)
  except (OSError, ValueError) as error:
    raise DatasetError('cannot read %s: %s' % (path, error)) from error
  differences = [
    '%s %s -> %s'
    % (
      (name, _describe_split(old), _describe_split(new))
      if name == 'split'
      else (name, old, new)
    )
    for name, old, new in config_files.setting_differences(recorded, settings)
  ]
  if differences:
    raise DatasetError(
      '%s was imported with other settings (%s); pass --overwrite to '
      'import it again with these, or write into another --output_dir'
      % (output_dir, ', '.join(differences))
    )


def _describe_split(split):
  """A split setting in a few words: its id lists by their sizes, which
  would make a line of every id."""
  if not isinstance(split, dict) or 'train_ids' not in split:
    return split
  return '{id files: %d train, %d val}' % (
    len(split.get('train_ids') or ()),
    len(split.get('val_ids') or ()),
  )


def files_by_stem(folder, extensions, flag):
  """Maps the stem of every file of `folder` with one of `extensions` to it.

  Args:
    folder: A folder of images or masks (subfolders and hidden files are
      ignored).
    extensions: Lower-case file extensions to take.
    flag: The flag that named the folder, for errors.

  Returns:
    (files, problems): a dict from stem to path, and the descriptions of
    names that cannot be imported (white space, a stem shared).

  Raises:
    DatasetError: If the folder is missing.
  """
  if not os.path.isdir(folder):
    raise DatasetError('%s %s is not a folder' % (flag, folder))
  files, problems = {}, []
  for name in sorted(os.listdir(folder)):
    stem, extension = os.path.splitext(name)
    path = os.path.join(folder, name)
    if (
      name.startswith('.')
      or extension.lower() not in extensions
      or not os.path.isfile(path)
    ):
      continue
    if any(character.isspace() for character in name):
      # List lines separate their paths by white space.
      problems.append(
        '%s: a name with white space cannot be written into a list; rename '
        'it' % io_utils.printable_path(path)
      )
    elif stem in files:
      problems.append(
        '%s and %s share the id %s; rename one' % (files[stem], path, stem)
      )
    else:
      files[stem] = path
  return files, problems


def read_mask(path, binary=False):
  """Reads a mask into class ids.

  Args:
    path: A single-channel image of class ids (grayscale or palette).
    binary: Whether the mask holds 0 (class 0) and 255 (class 1) only.

  Returns:
    A uint8 array `[H, W]` of class ids, 255 = ignore.

  Raises:
    DatasetError: Naming the file if it holds ids above 255, or, binary,
      values other than 0 and 255.
    ImageFileError: If it cannot be decoded or has colours.
  """
  ids = io_utils.read_label_image(path, what='mask')
  if binary:
    unexpected = np.unique(ids[(ids != 0) & (ids != 255)])
    if unexpected.size:
      raise DatasetError(
        '%s holds values %s; --binary_masks takes masks of '
        '0 and 255 only' % (path, unexpected.tolist()[:10])
      )
    return (ids == 255).astype(np.uint8)
  unexpected = np.unique(ids[(ids < 0) | (ids > IGNORE_LABEL)])
  if unexpected.size:
    raise DatasetError(
      '%s holds ids %s; class ids are 0-254 and %d (ignore)'
      % (path, unexpected.tolist()[:10], IGNORE_LABEL)
    )
  return ids.astype(np.uint8)


def read_palette(path):
  """The palette `[256, 3]` of a palette image, or None for other modes."""
  with Image.open(path) as mask:
    if mask.mode != 'P':
      return None
    palette = np.zeros((256, 3), dtype=np.uint8)
    colors = np.asarray(mask.getpalette(), dtype=np.uint8).reshape(-1, 3)
    palette[: len(colors)] = colors[:256]
  return palette


def _read_job(job, binary, orientation_advice=io_utils.CONVERTED_AS_STORED):
  """The image (`[H, W, 3]` uint8) and mask ids (`[H, W]` uint8, None
  without a mask) of a job.

  Raises:
    DatasetError: Naming every bad file of the job (undecodable image or
      mask, bad mask values), or a mask whose size differs from its image's.
  """
  image_path, mask_path = job[:2]
  # Both are read before either refusal, so that a pair of bad files is
  # named in full.
  refusals = []
  image = ids = None
  try:
    image = io_utils.read_rgb_image(
      image_path, orientation_advice=orientation_advice
    )
  except ValueError as error:
    refusals.append(str(error))
  if mask_path is not None:
    try:
      ids = read_mask(mask_path, binary)
    except ValueError as error:
      refusals.append(str(error))
  if refusals:
    raise DatasetError('; '.join(refusals))
  if ids is not None and ids.shape != image.shape[:2]:
    raise DatasetError(
      '%s is %dx%d but its image %s is %dx%d'
      % (mask_path, *ids.shape, image_path, *image.shape[:2])
    )
  return image, ids


def _import_image(job, binary, jpeg_quality, overwrite):
  """Writes one image (and its mask's ids); returns the ids' pixel counts.

  Returns:
    An int64 array `[256]` of pixels per id, or None without a mask.
  """
  image_path, mask_path, jpeg_path, label_path = job
  outputs = [jpeg_path] + ([label_path] if mask_path else [])
  # A mask fixed since the last import is imported again.
  if overwrite or not io_utils.output_is_newer(
    outputs, [image_path, mask_path]
  ):
    # The check of every job warned of its orientation already.
    image, ids = _read_job(job, binary, orientation_advice=False)
    if ids is not None:
      io_utils.save_png(label_path, ids)
    io_utils.save_jpeg(jpeg_path, image, jpeg_quality)
  else:
    ids = None if mask_path is None else read_mask(mask_path, binary)
  return None if ids is None else np.bincount(ids.ravel(), minlength=256)


def split_ids(
  labeled_ids, val_fraction=0.1, seed=0, train_ids_file=None, val_ids_file=None
):
  """Splits the ids of the images with masks into train and val.

  Args:
    labeled_ids: The ids of the images with masks.
    val_fraction: The fraction (rounded) taken for val at random.
    seed: The seed of the random split.
    train_ids_file: A file of train ids, one per line; with val_ids_file it
      replaces the random split.
    val_ids_file: A file of val ids.

  Returns:
    (train_ids, val_ids): sorted lists; ids in neither file are left out.

  Raises:
    DatasetError: Naming every problem of the id files on one line: lines
      they cannot hold (`make_lists.parse_split`), ids of their other lines
      without an image and mask, ids in both files.
  """
  if train_ids_file is None:
    shuffled = np.random.default_rng(seed).permutation(sorted(labeled_ids))
    num_val = int(round(len(shuffled) * val_fraction))
    return (
      sorted(shuffled[num_val:].tolist()),
      sorted(shuffled[:num_val].tolist()),
    )
  splits, problems = [], []
  for path in (train_ids_file, val_ids_file):
    try:
      line_of_id, line_problems = make_lists.parse_split(path)
    except errors.ListFileError as error:
      problems.append(str(error))
      line_of_id = {}
    else:
      if line_problems:
        problems.append('%s: %s' % (path, errors.join_problems(line_problems)))
    ids = list(line_of_id)
    # Its good lines are checked too: a bad line no longer hides them.
    problems.extend(
      '%s, line %d names %s, which has no image with a mask'
      % (path, line_of_id[image_id], image_id)
      for image_id in ids
      if image_id not in labeled_ids
    )
    splits.append(sorted(set(ids)))
  both = sorted(set(splits[0]) & set(splits[1]))
  if both:
    problems.append(
      '%s and %s both name %s'
      % (train_ids_file, val_ids_file, ', '.join(both[:5]))
    )
  # Named together, not one a run.
  if problems:
    raise DatasetError(errors.join_problems(problems))
  return splits[0], splits[1]


def format_class_report(pixel_counts, image_counts):
  """Describes the classes found, for the user to choose --num_classes.

  Args:
    pixel_counts: An int64 array `[256]` of pixels per id over all masks.
    image_counts: An int64 array `[256]` of masks holding each id.

  Returns:
    The report's lines, joined, ending in a newline.
  """
  classes = [
    index for index in np.flatnonzero(pixel_counts) if index != IGNORE_LABEL
  ]
  labeled = max(int(pixel_counts[classes].sum()), 1)
  lines = ['%5s %14s %9s %7s' % ('class', 'pixels', 'share', 'masks')]
  for index in classes:
    lines.append(
      '%5d %14d %8.2f%% %7d'
      % (
        index,
        pixel_counts[index],
        100.0 * pixel_counts[index] / labeled,
        image_counts[index],
      )
    )
  lines.append(
    '%5s %14d %9s %7d'
    % (
      '255',
      pixel_counts[IGNORE_LABEL],
      '(ignore)',
      image_counts[IGNORE_LABEL],
    )
  )
  num_classes = int(classes[-1]) + 1 if classes else 0
  if num_classes == 1:
    # Training refuses one class: its loss is 0 whatever the network does.
    lines.append(
      'The masks hold one class (0): training needs at least 2 classes.'
    )
  elif num_classes:
    lines.append(
      'Train with --num_classes %d (class ids 0-%d).'
      % (num_classes, num_classes - 1)
    )
    missing = sorted(set(range(num_classes)) - set(classes))
    if missing:
      lines.append(
        'note: ids %s have no pixels; renumber the classes or '
        'expect them never to be predicted.' % missing[:20]
      )
  if classes == [0] and pixel_counts[IGNORE_LABEL]:
    lines.append(
      'note: the masks hold only 0 and 255 (ignore); pass '
      '--binary_masks if 255 marks the objects.'
    )
  return '\n'.join(lines) + '\n'


def import_dataset(
  image_dir,
  mask_dir,
  output_dir,
  *,
  binary_masks=False,
  val_fraction=0.1,
  seed=0,
  train_ids_file=None,
  val_ids_file=None,
  jpeg_quality=92,
  workers=1,
  overwrite=False,
):
  """Writes the VOC layout of images and masks (see the module docstring).

  Args:
    image_dir: The folder of images.
    mask_dir: The folder of masks, named as their images.
    output_dir: The DATAROOT to write.
    binary_masks: Whether masks hold 0 and 255, imported as classes 0 and 1.
    val_fraction: The fraction of the images with masks drawn for val.
    seed: The seed of that draw.
    train_ids_file: A file of train ids replacing the draw, or None.
    val_ids_file: A file of val ids, given with train_ids_file.
    jpeg_quality: The JPEG quality of the images written.
    workers: The number of processes.
    overwrite: Whether to rewrite images and labels that exist.

  Returns:
    A dict with the lines of every list written ('train', 'val',
    'unlabeled', 'train+unlabeled'), 'pixel_counts' and 'image_counts'
    (int64 arrays `[256]` over the masks of every id) and 'palette' (the
    colour map written, or None).

  Raises:
    DatasetError: For a mask without its image, shared stems or bad split
      files, before anything is written.
    folder_jobs.BadInputsError: Naming every image or mask that cannot be
      decoded, bad mask values and masks whose size differs from their
      image's, on one line, before anything is written.
  """
  images, image_problems = files_by_stem(
    image_dir, io_utils.IMAGE_EXTENSIONS, '--image_dir'
  )
  masks, mask_problems = files_by_stem(mask_dir, MASK_EXTENSIONS, '--mask_dir')
  # Named together, not one a run.
  problems = (
    image_problems
    + mask_problems
    + [
      'mask %s has no image %s.* in --image_dir'
      % (masks[stem], os.path.join(image_dir, stem))
      for stem in sorted(masks)
      if stem not in images
    ]
  )
  if problems:
    raise DatasetError(errors.join_problems(problems))
  if not images:
    raise DatasetError(
      '--image_dir %s holds no images (%s)'
      % (image_dir, ' '.join(io_utils.IMAGE_EXTENSIONS))
    )
  train_ids, val_ids = split_ids(
    set(masks), val_fraction, seed, train_ids_file, val_ids_file
  )
  settings = {
    'binary_masks': binary_masks,
    'split': (
      {'train_ids': train_ids, 'val_ids': val_ids}
      if train_ids_file
      else {'val_fraction': val_fraction, 'seed': seed}
    ),
    'jpeg_quality': jpeg_quality,
  }
  _check_earlier_settings(output_dir, settings, overwrite)
  unlabeled_ids = sorted(set(images) - set(masks))

  def jpeg(image_id):
    return 'VOC2012/JPEGImages/%s.jpg' % image_id

  def segcls(image_id):
    return 'VOC2012/segcls/%s.png' % image_id

  jobs = [
    (
      images[stem],
      masks.get(stem),
      os.path.join(output_dir, jpeg(stem)),
      os.path.join(output_dir, segcls(stem)),
    )
    for stem in sorted(images)
  ]
  # Every image and mask is read first, so that bad files are named
  # together and stop the import before it writes anything.
  folder_jobs.check_inputs(
    functools.partial(_read_job, binary=binary_masks),
    jobs,
    workers,
    unit='image',
  )
  try:
    folder_jobs.check_writable(
      folders=[os.path.dirname(jobs[0][2]), os.path.dirname(jobs[0][3])],
      # Every image's JPEG; a label only where there is a mask.
      files=[job[2] for job in jobs] + [job[3] for job in jobs if job[1]],
    )
  except ValueError as error:
    raise DatasetError(str(error)) from error
  os.makedirs(output_dir, exist_ok=True)
  io_utils.save_json(
    os.path.join(output_dir, SETTINGS_FILE), settings, sort_keys=False
  )
  print(
    '%d images, %d with masks (%d train, %d val), %d without, into %s'
    % (
      len(images),
      len(masks),
      len(train_ids),
      len(val_ids),
      len(unlabeled_ids),
      output_dir,
    )
  )
  unsplit = len(masks) - len(train_ids) - len(val_ids)
  if unsplit:
    print(
      'note: %d images with masks are in neither --train_ids nor --val_ids: '
      'they go into no list' % unsplit
    )
  if masks and not train_ids:
    print('note: no image with a mask goes to train.txt, which is not written')
  if masks and not val_ids:
    # Silent before, while the pipelines' first check asks for val.txt.
    print(
      'note: no image with a mask goes to val.txt, which is not written; '
      'the demo and CamVid pipelines score one (raise --val_fraction or '
      'give --val_ids)'
    )
  counts = folder_jobs.run_jobs(
    functools.partial(
      _import_image,
      binary=binary_masks,
      jpeg_quality=jpeg_quality,
      overwrite=overwrite,
    ),
    jobs,
    workers,
    desc='Importing',
    unit='image',
  )
  masked_counts = [count for count in counts if count is not None]
  pixel_counts = (
    np.sum(masked_counts, axis=0)
    if masked_counts
    else (np.zeros(256, np.int64))
  )
  image_counts = (
    np.sum([count > 0 for count in masked_counts], axis=0, dtype=np.int64)
    if masked_counts
    else (np.zeros(256, np.int64))
  )

  lists = {}
  for name, ids in (('train', train_ids), ('val', val_ids)):
    if ids:
      lists[name] = ['%s %s\n' % (jpeg(stem), segcls(stem)) for stem in ids]
  if unlabeled_ids:
    lists['unlabeled'] = [jpeg(stem) + '\n' for stem in unlabeled_ids]
    lists['train+unlabeled'] = [
      jpeg(stem) + '\n' for stem in train_ids + unlabeled_ids
    ]
  make_lists.write_lists(lists, output_dir, LIST_NAMES)
  # All 256 colours of the first mask's palette, so that any --num_classes
  # finds its colours (binary masks' indices are not their classes).
  palette = None
  if masks and not binary_masks:
    palette = read_palette(masks[min(masks)])
  if palette is not None:
    colormap.save_colormap(
      os.path.join(output_dir, colormap.COLORMAP_FILE), palette
    )
  return dict(
    lists, pixel_counts=pixel_counts, image_counts=image_counts, palette=palette
  )


def main(argv=None):
  parser = flags.ArgumentParser(
    description=__doc__,
    formatter_class=flags.DescriptionAndDefaultsHelpFormatter,
  )
  parser.add_argument(
    '--image_dir',
    required=True,
    help='Folder of images (%s).' % ' '.join(io_utils.IMAGE_EXTENSIONS),
  )
  parser.add_argument(
    '--mask_dir',
    required=True,
    help='Folder of masks named as their images (%s); '
    'images without one go to unlabeled.txt.' % ' '.join(MASK_EXTENSIONS),
  )
  parser.add_argument(
    '--output_dir',
    required=True,
    type=flags.output_folder,
    help='DATAROOT of the VOC layout to write.',
  )
  parser.add_argument(
    '--binary_masks',
    action='store_true',
    help='Masks hold 0 (background) and 255 (object), '
    'imported as classes 0 and 1.',
  )
  parser.add_argument(
    '--val_fraction',
    type=flags.real(0, 1),
    default=None,
    help='Fraction of the images with masks drawn at random for val.txt '
    '(default 0.1; not with --train_ids).',
  )
  parser.add_argument(
    '--seed',
    type=flags.integer(0),
    default=None,
    help='Seed of the random split (default 0; not with --train_ids).',
  )
  parser.add_argument(
    '--train_ids',
    default=None,
    help='File of train image ids, one per line; with '
    '--val_ids it replaces the random split.',
  )
  parser.add_argument('--val_ids', default=None, help='File of val image ids.')
  parser.add_argument(
    '--oversegment',
    action='store_true',
    help='Also write VOC2012/hed/ oversegmentations '
    '(tools/make_oversegmentation.py) for unsupervised '
    'SegSort.',
  )
  parser.add_argument(
    '--jpeg_quality',
    type=flags.integer(1, 95),
    default=92,
    help='JPEG quality of the images, 1-95.',
  )
  folder_jobs.add_job_flags(
    parser, items='images', workers_help='Parallel processes.'
  )
  args = parser.parse_args(argv)
  console.setup_logging()
  if (args.train_ids is None) != (args.val_ids is None):
    parser.error('argument --train_ids: --train_ids and --val_ids go together')
  for name, default in (('val_fraction', 0.1), ('seed', 0)):
    if getattr(args, name) is None:
      setattr(args, name, default)
    elif args.train_ids is not None:
      parser.error(
        'argument --%s: the split is --train_ids and --val_ids; a random '
        "split's --%s is not used with them" % (name, name)
      )
  try:
    result = import_dataset(
      args.image_dir,
      args.mask_dir,
      args.output_dir,
      binary_masks=args.binary_masks,
      val_fraction=args.val_fraction,
      seed=args.seed,
      train_ids_file=args.train_ids,
      val_ids_file=args.val_ids,
      jpeg_quality=args.jpeg_quality,
      workers=args.workers,
      overwrite=args.overwrite,
    )
  except (
    DatasetError,
    folder_jobs.BadInputsError,
    errors.ImageFileError,
    OSError,
  ) as error:
    print('error: %s' % error, file=sys.stderr)
    return 1
  print(
    format_class_report(result['pixel_counts'], result['image_counts']), end=''
  )
  print(
    'Written %s'
    % make_lists.describe_lists(
      {name: len(result[name]) for name in LIST_NAMES if name in result}
    )
  )
  if result['palette'] is not None:
    print(
      'The masks\' palette is %s; inference colours with it.'
      % os.path.join(args.output_dir, colormap.COLORMAP_FILE)
    )
  if args.oversegment:
    return make_oversegmentation.main(
      ['--data_dir', args.output_dir, '--workers', str(args.workers)]
      + (['--overwrite'] if args.overwrite else [])
    )
  return 0


if __name__ == '__main__':
  sys.exit(main())
