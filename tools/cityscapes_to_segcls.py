r"""Converts Cityscapes' fine annotations into 19 training ids and lists.

Reads the official layout:

    CITYSCAPES_DIR/leftImg8bit/{train,val,test}/CITY/*_leftImg8bit.png
    CITYSCAPES_DIR/gtFine/{train,val}/CITY/*_gtFine_labelIds.png

and writes, leaving the images where they are:

    OUTPUT_DIR/segcls/ID.png        the 19 training ids (0-18), others 255
    OUTPUT_DIR/{train,val,test}.txt `IMAGE LABEL` list lines (test: `IMAGE`)
    OUTPUT_DIR/classes.txt          the 19 class names in training-id order
    OUTPUT_DIR/colormap.txt         their official colours, which inference
                                    uses for its colour PNGs

ID is the image's file name without extension (e.g.
`aachen_000000_000019_leftImg8bit`), the name inference gives its
predictions and the benchmark looks for in `--gt_dir OUTPUT_DIR/segcls`.
List paths are relative to OUTPUT_DIR (the `--data_dir` of training and
inference), which defaults to CITYSCAPES_DIR. Label ids map to training ids
by the official table (cityscapesscripts/helpers/labels.py); "unlabeled",
the void classes and the classes not evaluated (parking, rail track, guard
rail, bridge, tunnel, polegroup, caravan, trailer) become 255.

Every pair is checked before anything is written; every output is written
atomically and existing labels are skipped unless --overwrite. Splits whose
image folder is missing are skipped with a note.

Example:
  python -m tools.cityscapes_to_segcls --cityscapes_dir data/cityscapes \
      --workers 2
"""

import os
import sys

import numpy as np

if __package__ in (None, ''):
  # Run as a script: make the repository's packages importable.
  sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  )

from segsort import colormap  # pylint: disable=g-import-not-at-top
from segsort import flags  # pylint: disable=g-import-not-at-top
from segsort import console  # pylint: disable=g-import-not-at-top
from segsort import errors  # pylint: disable=g-import-not-at-top
from segsort import io_utils  # pylint: disable=g-import-not-at-top
from tools import folder_jobs  # pylint: disable=g-import-not-at-top
from tools import make_lists  # pylint: disable=g-import-not-at-top

CLASS_NAMES = (
  'road',
  'sidewalk',
  'building',
  'wall',
  'fence',
  'pole',
  'traffic light',
  'traffic sign',
  'vegetation',
  'terrain',
  'sky',
  'person',
  'rider',
  'car',
  'truck',
  'bus',
  'train',
  'motorcycle',
  'bicycle',
)
# The label ids of the 19 training ids, in training-id order.
TRAIN_LABEL_IDS = (
  7,
  8,
  11,
  12,
  13,
  17,
  19,
  20,
  21,
  22,
  23,
  24,
  25,
  26,
  27,
  28,
  31,
  32,
  33,
)
# labelIds PNGs hold ids 0 ("unlabeled") to 33 ("bicycle"); license plates
# (id -1) are drawn with their vehicle's id.
MAX_LABEL_ID = 33
IGNORE_LABEL = 255
SPLITS = ('train', 'val', 'test')
LABELED_SPLITS = ('train', 'val')
IMAGE_SUFFIX = '_leftImg8bit.png'
LABEL_SUFFIX = '_gtFine_labelIds.png'


class CityscapesError(ValueError):
  """A malformed Cityscapes tree: a missing pair or an unexpected label id."""


def label_id_to_train_id():
  """The official labelId -> trainId table.

  Returns:
    A uint8 array `[MAX_LABEL_ID + 1]`: training ids 0-18 and 255.
  """
  table = np.full(MAX_LABEL_ID + 1, IGNORE_LABEL, dtype=np.uint8)
  table[list(TRAIN_LABEL_IDS)] = np.arange(len(TRAIN_LABEL_IDS))
  return table


def _files_by_prefix(folder, suffix):
  """Maps `CITY/PREFIX` to the path of every `folder/CITY/PREFIX+suffix`."""
  files = {}
  for city in sorted(os.listdir(folder)):
    city_dir = os.path.join(folder, city)
    if not os.path.isdir(city_dir):
      continue
    for name in sorted(os.listdir(city_dir)):
      if name.endswith(suffix):
        files[city + '/' + name[: -len(suffix)]] = os.path.join(city_dir, name)
  return files


def find_pairs(cityscapes_dir, split):
  """Pairs the images of a split with their fine annotations.

  Args:
    cityscapes_dir: The folder holding leftImg8bit/ and gtFine/.
    split: 'train', 'val' or 'test'.

  Returns:
    A list of (image_path, label_path) pairs sorted by city and file name
    (label_path None for test), or None when leftImg8bit/<split> is missing.

  Raises:
    CityscapesError: Naming a split folder without images, or, on one
      line, every image without its labelIds PNG and every labelIds PNG
      without its image (the first errors.MAX_PROBLEMS_SHOWN, then a count).
  """
  image_dir = os.path.join(cityscapes_dir, 'leftImg8bit', split)
  if not os.path.isdir(image_dir):
    return None
  images = _files_by_prefix(image_dir, IMAGE_SUFFIX)
  if not images:
    # An empty list would replace a good one of an earlier run.
    raise CityscapesError(
      '%s holds no CITY/*%s image' % (image_dir, IMAGE_SUFFIX)
    )
  if split not in LABELED_SPLITS:
    return [(images[key], None) for key in sorted(images)]
  label_dir = os.path.join(cityscapes_dir, 'gtFine', split)
  labels = (
    _files_by_prefix(label_dir, LABEL_SUFFIX)
    if os.path.isdir(label_dir)
    else {}
  )
  unpaired = [
    '%s has no annotation %s'
    % (images[key], os.path.join(label_dir, key + LABEL_SUFFIX))
    for key in sorted(images)
    if key not in labels
  ] + [
    '%s has no image %s'
    % (labels[key], os.path.join(image_dir, key + IMAGE_SUFFIX))
    for key in sorted(labels)
    if key not in images
  ]
  if unpaired:
    raise CityscapesError(
      errors.join_problems(unpaired)
      + (' (%d unpaired files)' % len(unpaired) if len(unpaired) > 1 else '')
    )
  return [(images[key], labels[key]) for key in sorted(images)]


def read_train_ids(path):
  """Reads a labelIds PNG into training ids.

  Args:
    path: A single-channel PNG of Cityscapes label ids 0-33.

  Returns:
    A uint8 array `[H, W]` of training ids 0-18 and 255.

  Raises:
    ImageFileError: Naming the file if it holds ids above 33, or
      cannot be decoded or has colours.
  """
  return io_utils.read_label_through_table(
    path, label_id_to_train_id(), 'Cityscapes labelIds are 0-%d' % MAX_LABEL_ID
  )


def _check_pair(paths):
  """Refuses a label unless it has its image's size, or an image (label None)
  whose header does not decode."""
  label_path, image_path = paths
  if label_path is None:
    io_utils.open_image(image_path, 'image').close()
    return
  io_utils.check_fits_image(read_train_ids(label_path), label_path, image_path)


def _convert(job):
  (label_path, _), output_path = job
  io_utils.save_png(output_path, read_train_ids(label_path))


def _check_outputs(output_dir, lists):
  """Refuses, before any work, outputs that a file or folder blocks."""
  try:
    folder_jobs.check_writable(
      folders=[os.path.join(output_dir, 'segcls')],
      files=[os.path.join(output_dir, split + '.txt') for split in lists]
      + [
        os.path.join(output_dir, 'classes.txt'),
        os.path.join(output_dir, colormap.COLORMAP_FILE),
      ],
    )
  except ValueError as error:
    raise CityscapesError(str(error)) from error


def convert(cityscapes_dir, output_dir=None, *, workers=1, overwrite=False):
  """Writes the training ids and lists of a Cityscapes tree (see the module).

  Args:
    cityscapes_dir: The folder holding leftImg8bit/ and gtFine/.
    output_dir: The DATAROOT to write into; cityscapes_dir when None.
    workers: The number of processes converting labels.
    overwrite: Whether to convert labels whose output exists.

  Returns:
    A dict from split name to its number of images.

  Raises:
    CityscapesError: For no split at all, a split without images, missing
      pairs, duplicate image ids, or an output path blocked by a file or
      folder, before anything is written.
    SystemExit: With the one-line message of a label that cannot be read or
      holds an id above 33 (the outputs written are complete).
  """
  output_dir = cityscapes_dir if output_dir is None else output_dir
  splits, unpaired = {}, []
  for split in SPLITS:
    try:
      splits[split] = find_pairs(cityscapes_dir, split)
    except CityscapesError as error:
      unpaired.append(str(error))
  if unpaired:
    raise CityscapesError('; '.join(unpaired))
  for split, pairs in splits.items():
    if pairs is None:
      print(
        'note: %s is missing; no %s.txt'
        % (os.path.join(cityscapes_dir, 'leftImg8bit', split), split)
      )
  splits = {
    split: pairs for split, pairs in splits.items() if pairs is not None
  }
  if not splits:
    raise CityscapesError(
      '%s holds none of leftImg8bit/{%s}' % (cityscapes_dir, ','.join(SPLITS))
    )
  jobs, unlabelled, lists, sources = [], [], {}, {}
  for split, pairs in splits.items():
    lines = []
    for image, label in pairs:
      image_id = os.path.splitext(os.path.basename(image))[0]
      if sources.setdefault(image_id, image) != image:
        raise CityscapesError(
          'image id %s is named twice: %s and %s'
          % (image_id, sources[image_id], image)
        )
      # Forward slashes, so that the lists work on every system.
      image_field = os.path.relpath(image, output_dir).replace(os.sep, '/')
      if any(character.isspace() for character in image_field):
        # List lines separate their fields by white space: no reader could
        # parse the line.
        raise CityscapesError(
          'the lists would name %s as %r, whose white space no list line '
          'can hold; give an --output_dir whose path to the Cityscapes '
          'folder has none (or link the folder), or no --output_dir'
          % (image, image_field)
        )
      if label is None:
        unlabelled.append((None, image))
        lines.append(image_field + '\n')
        continue
      segcls = 'segcls/%s.png' % image_id
      lines.append('%s %s\n' % (image_field, segcls))
      jobs.append(((label, image), os.path.join(output_dir, segcls)))
    lists[split] = lines
  _check_outputs(output_dir, lists)
  folder_jobs.run_file_jobs(
    _convert,
    jobs,
    overwrite,
    workers,
    os.path.join(output_dir, 'segcls'),
    '%d annotations, %d to convert into %s',
    # Read twice (reading is most of the work), so that every bad file
    # is named before any output; images by their header only.
    check=_check_pair,
    also_check=unlabelled,
  )
  # An earlier conversion's list of a split now missing would stay.
  make_lists.write_lists(lists, output_dir, SPLITS)
  with io_utils.atomic_path(os.path.join(output_dir, 'classes.txt')) as path:
    with open(path, 'w') as stream:
      stream.writelines(name + '\n' for name in CLASS_NAMES)
  colormap.save_colormap(
    os.path.join(output_dir, colormap.COLORMAP_FILE), colormap.CITYSCAPES_COLORS
  )
  return {split: len(lines) for split, lines in lists.items()}


def main(argv=None):
  parser = flags.ArgumentParser(
    description=__doc__,
    formatter_class=flags.DescriptionAndDefaultsHelpFormatter,
  )
  parser.add_argument(
    '--cityscapes_dir',
    required=True,
    help='The folder holding leftImg8bit/ and gtFine/.',
  )
  parser.add_argument(
    '--output_dir',
    default=None,
    type=flags.output_folder,
    help='DATAROOT to write segcls/ and the lists into '
    '(default: --cityscapes_dir).',
  )
  folder_jobs.add_job_flags(
    parser, items='annotations', workers_help='Parallel processes.'
  )
  args = parser.parse_args(argv)
  console.setup_logging()
  try:
    counts = convert(
      args.cityscapes_dir,
      args.output_dir,
      workers=args.workers,
      overwrite=args.overwrite,
    )
  except (CityscapesError, errors.ImageFileError, OSError) as error:
    print('error: %s' % error, file=sys.stderr)
    return 1
  print('Written %s' % make_lists.describe_lists(counts))
  return 0


if __name__ == '__main__':
  sys.exit(main())
