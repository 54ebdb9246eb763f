r"""Writes a DATAROOT's VOC12 lists: train+, train, val, trainval and test.

Only the official split files are read, no images:

    DATAROOT/VOC2012/ImageSets/Segmentation/{train,val}.txt
    DATAROOT/VOC2012-test/ImageSets/Segmentation/test.txt   (optional)
    DATAROOT/sbd/dataset/{train,val}.txt                     (SBD, optional)

The lists, as in dataset/voc12/:

* train, val: the VOC split, in split-file order, labels VOC2012/segcls/.
* trainval: train followed by val.
* test: one column, VOC2012-test/JPEGImages/<id>.jpg.
* train+ (10,582 images): VOC train first (labels VOC2012/segcls/), then
  the SBD train and then SBD val images that are in neither VOC train nor
  VOC val (labels sbd/dataset/clsimg/), each in split-file order.

On the official split files the output equals dataset/voc12/*.txt byte for
byte.

Example:
  python -m tools.make_lists --data_dir DATAROOT --output_dir dataset/voc12
"""

import os
import sys

if __package__ in (None, ''):
  # Run as a script: make the repository's packages importable.
  sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  )

from segsort import errors  # pylint: disable=g-import-not-at-top
from segsort import flags  # pylint: disable=g-import-not-at-top
from segsort import io_utils  # pylint: disable=g-import-not-at-top

VOC_SPLIT_DIR = os.path.join('VOC2012', 'ImageSets', 'Segmentation')
VOC_TEST_SPLIT = os.path.join(
  'VOC2012-test', 'ImageSets', 'Segmentation', 'test.txt'
)
SBD_SPLIT_DIR = os.path.join('sbd', 'dataset')
# The lists make_lists may write.
LIST_NAMES = ('train', 'val', 'trainval', 'test', 'train+')
# Names that are files, not ids.
_FILE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.mat', '.txt')


def read_split(path):
  """Reads the image ids of a split file, one a line (blank lines skipped).

  Returns:
    The ids, in file order.

  Raises:
    ListFileError: Naming the file and the lines of every problem
      (`parse_split`), or if the file cannot be read.
  """
  line_of_id, problems = parse_split(path)
  if problems:
    raise errors.ListFileError(
      '%s: %s' % (path, errors.join_problems(problems))
    )
  return list(line_of_id)


def parse_split(path):
  """Reads a split file's ids and the problems of its lines, raising none.

  So that a caller checking the ids against other files can name those
  problems together with the lines' own.

  Returns:
    line_of_id: A dict from the id of every good line, in file order, to
      its line number.
    problems: A description of every problem, each naming its line: a line
      of more than one field (a data list given as split file, say), an id
      that is a path or a file name (it names the image and label files of
      the lists), an id given twice; or that the file names no id.

  Raises:
    ListFileError: If the file cannot be read as text.
  """
  problems, first_line_of_id = [], {}
  lines = io_utils.read_list_lines(path, kind='split file')
  for line_number, line in enumerate(lines, start=1):
    fields = io_utils.split_fields(line)
    if not fields:
      continue
    image_id = fields[0]
    if len(fields) > 1:
      problems.append(
        'line %d: expected one image id, got %d fields'
        % (line_number, len(fields))
      )
    elif '/' in image_id or '\\' in image_id or image_id in ('.', '..'):
      problems.append(
        'line %d: %r is a path, not an image id' % (line_number, image_id)
      )
    elif image_id.lower().endswith(_FILE_EXTENSIONS):
      problems.append(
        'line %d: %r is a file name; an image id has no extension (the lists '
        'add .jpg and .png)' % (line_number, image_id)
      )
    elif image_id in first_line_of_id:
      problems.append(
        'line %d repeats %s of line %d'
        % (line_number, image_id, first_line_of_id[image_id])
      )
    else:
      first_line_of_id[image_id] = line_number
  if not first_line_of_id and not problems:
    problems.append('it names no image id')
  return first_line_of_id, problems


def _voc_line(image_id):
  return 'VOC2012/JPEGImages/%s.jpg VOC2012/segcls/%s.png\n' % (
    image_id,
    image_id,
  )


def _sbd_line(image_id):
  return 'VOC2012/JPEGImages/%s.jpg sbd/dataset/clsimg/%s.png\n' % (
    image_id,
    image_id,
  )


def build_lists(
  voc_train, voc_val, voc_test=None, sbd_train=None, sbd_val=None
):
  """Builds the list files' lines from split ids.

  Args:
    voc_train: VOC2012 segmentation train ids, in split-file order.
    voc_val: VOC2012 segmentation val ids.
    voc_test: VOC2012 test ids, or None to skip the test list.
    sbd_train: SBD train ids, or None.
    sbd_val: SBD val ids, or None; train+ is built unless both are None.

  Returns:
    A dict from list name to its lines (each ending in a newline).

  Raises:
    ListFileError: If an id is in both VOC train and val: trainval would
      hold it twice, and val would score images trained on.
  """
  both = sorted(set(voc_train) & set(voc_val))
  if both:
    raise errors.ListFileError(
      'the VOC train and val splits both name %s%s'
      % (
        ', '.join(both[:5]),
        ' and %d more' % (len(both) - 5) if len(both) > 5 else '',
      )
    )
  lists = {
    'train': [_voc_line(image_id) for image_id in voc_train],
    'val': [_voc_line(image_id) for image_id in voc_val],
  }
  lists['trainval'] = lists['train'] + lists['val']
  if voc_test is not None:
    lists['test'] = [
      'VOC2012-test/JPEGImages/%s.jpg\n' % image_id for image_id in voc_test
    ]
  if sbd_train is not None or sbd_val is not None:
    taken = set(voc_train) | set(voc_val)
    train_plus = list(lists['train'])
    for image_id in list(sbd_train or []) + list(sbd_val or []):
      if image_id not in taken:
        taken.add(image_id)
        train_plus.append(_sbd_line(image_id))
    lists['train+'] = train_plus
  return lists


def write_lists(lists, output_dir, list_names=()):
  """Writes every list to `<output_dir>/<name>.txt`, each file atomically.

  Args:
    lists: A dict from list name to its lines (each ending in a newline).
    output_dir: The folder to write into.
    list_names: Every list the caller may write: those not in `lists` are
      removed, so that a list of an earlier run that this one leaves out
      (train+ after the SBD splits were removed, an old val.txt now all in
      train.txt) does not stay beside the new ones.

  Returns:
    A dict from list name to the path written.
  """
  paths = {}
  for name, lines in lists.items():
    paths[name] = os.path.join(output_dir, name + '.txt')
    with io_utils.atomic_path(paths[name]) as temporary:
      with open(temporary, 'w') as stream:
        stream.writelines(lines)
  for name in list_names:
    stale = os.path.join(output_dir, name + '.txt')
    if name not in lists and os.path.exists(stale):
      os.remove(stale)
  return paths


def describe_lists(counts):
  """'train.txt (1 image), val.txt (3 images)' for {list name: images}."""
  return ', '.join(
    '%s.txt (%d image%s)' % (name, count, '' if count == 1 else 's')
    for name, count in counts.items()
  )


def make_lists(data_dir, output_dir):
  """Reads a DATAROOT's split files and writes its list files.

  The test list is skipped when VOC2012-test's split is missing, train+ when
  both SBD splits are.

  Args:
    data_dir: DATAROOT.
    output_dir: The folder to write `<name>.txt` into.

  Returns:
    A dict from list name to the path written.
  """

  def optional_split(relative_path):
    path = os.path.join(data_dir, relative_path)
    return read_split(path) if os.path.exists(path) else None

  sbd_splits = [
    optional_split(os.path.join(SBD_SPLIT_DIR, name + '.txt'))
    for name in ('train', 'val')
  ]
  lists = build_lists(
    read_split(os.path.join(data_dir, VOC_SPLIT_DIR, 'train.txt')),
    read_split(os.path.join(data_dir, VOC_SPLIT_DIR, 'val.txt')),
    optional_split(VOC_TEST_SPLIT),
    *sbd_splits,
  )
  paths = write_lists(lists, output_dir, LIST_NAMES)
  if sum(split is None for split in sbd_splits) == 1:
    # The release's train+ (10,582 images) needs both.
    print(
      'note: %s is missing: train+ holds the images of the other SBD split '
      'only'
      % os.path.join(
        data_dir,
        SBD_SPLIT_DIR,
        'train.txt' if sbd_splits[0] is None else 'val.txt',
      ),
      file=sys.stderr,
    )
  return paths


def main(argv=None):
  parser = flags.ArgumentParser(
    description=__doc__,
    formatter_class=flags.DescriptionAndDefaultsHelpFormatter,
  )
  parser.add_argument('--data_dir', required=True, help='DATAROOT.')
  parser.add_argument(
    '--output_dir',
    required=True,
    type=flags.output_folder,
    help='Folder to write the list files into.',
  )
  args = parser.parse_args(argv)
  if not os.path.isdir(args.data_dir):
    parser.error('argument --data_dir: %s is not a folder' % args.data_dir)
  try:
    paths = make_lists(args.data_dir, args.output_dir)
  except errors.ListFileError as error:
    raise SystemExit('error: %s' % error) from error
  for name, path in sorted(paths.items()):
    with open(path) as stream:
      print('%-9s %6d lines  %s' % (name, sum(1 for _ in stream), path))
  return 0


if __name__ == '__main__':
  sys.exit(main())
