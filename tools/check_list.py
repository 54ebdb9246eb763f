r"""Checks every line of a data list before training or evaluation.

Reports, with list file, line number and path, every line that is malformed
or names a missing file, an image or label that does not decode, a label
(or oversegmentation) whose size differs from its image or that has colour
channels, and, with --num_classes, labels holding values outside
[0, num_classes) other than the ignore label, and an image with an EXIF
orientation (unless --apply_exif_orientation). Warns, without failing, of
classes that no label of the list holds and of labels holding only 0 and
the ignore label (binary masks stored as 0/255). Exits with status 1 if any
problem is found.

Example:
  python -m tools.check_list --data_dir DATAROOT \
      --data_list dataset/voc12/train+.txt --num_classes 21
"""

import os
import sys

if __package__ in (None, ''):
  # Run as a script: make the repository's packages importable.
  sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  )

from segsort import console  # pylint: disable=g-import-not-at-top
from segsort import errors  # pylint: disable=g-import-not-at-top
from segsort import flags  # pylint: disable=g-import-not-at-top
from segsort import io_utils  # pylint: disable=g-import-not-at-top


@errors.one_line_on_interrupt
def main(argv=None):
  console.quiet_tensorflow()
  parser = flags.ArgumentParser(
    description=__doc__,
    formatter_class=flags.DescriptionAndDefaultsHelpFormatter,
  )
  parser.add_argument(
    '--data_dir', required=True, help='Directory list paths are relative to.'
  )
  parser.add_argument('--data_list', required=True, help='List file.')
  flags.add_label_flags(
    parser,
    None,
    'Check that labels are below this (or ignore), '
    'and warn of classes that no label holds.',
  )
  parser.add_argument(
    '--with_oversegmentation',
    action='store_true',
    help='Also check oversegmentations (third column or VOC2012/hed/<id>.png).',
  )
  parser.add_argument(
    '--with_segment_groups',
    action='store_true',
    help='With --with_oversegmentation, also check their segment groups '
    '(VOC2012/hed_groups/<id>.png beside hed/): of the image\'s size, '
    'every segment in one group.',
  )
  parser.add_argument(
    '--allow_unlabeled',
    action='store_true',
    help='Allow one-column lines (test lists).',
  )
  parser.add_argument(
    '--apply_exif_orientation',
    action='store_true',
    help='Images are read turned as their EXIF orientation '
    'asks, as training with this flag reads them; '
    'without it, an image with an orientation is a '
    'problem.',
  )
  parser.add_argument(
    '--workers',
    type=flags.integer(1),
    default=os.cpu_count(),
    help='Decoding threads.',
  )
  args = parser.parse_args(argv)
  if args.with_segment_groups and not args.with_oversegmentation:
    parser.error(
      'argument --with_segment_groups: needs --with_oversegmentation'
    )
  flags.check_ignore_label(parser, args)
  if not os.path.isdir(args.data_dir):
    # Else every file of the list would be named missing, one line each.
    parser.error('argument --data_dir: %s is not a folder' % args.data_dir)
  console.setup_logging()
  # Imported once the flags are parsed, so that --help is quick.
  from segsort import data  # pylint: disable=g-import-not-at-top

  try:
    report = data.check_data_list(
      args.data_dir,
      args.data_list,
      num_classes=args.num_classes,
      ignore_label=args.ignore_label,
      with_oversegmentation=args.with_oversegmentation,
      with_segment_groups=args.with_segment_groups,
      require_labels=not args.allow_unlabeled,
      apply_exif_orientation=args.apply_exif_orientation,
      num_workers=args.workers,
      progress=console.progress,
    )
  except errors.DataError as error:
    # The list file itself cannot be read: nothing to report line by line.
    parser.exit(1, 'error: %s\n' % error)
  for problem in report.problems:
    print(problem)
  for warning in report.warnings:
    print('warning: %s' % warning)
  lines = [
    fields
    for fields in map(
      io_utils.split_fields, io_utils.read_list_lines(args.data_list)
    )
    if fields
  ]
  if len(lines) > 1 and not any(
    os.path.exists(os.path.join(args.data_dir, fields[0])) for fields in lines
  ):
    print(
      'note: no image of the list is under --data_dir %s: is it the folder '
      "the list's paths are relative to?" % args.data_dir
    )
  if not args.with_oversegmentation:
    third_columns = sum(len(fields) == 3 for fields in lines)
    if third_columns:
      print(
        'note: %d line(s) name an oversegmentation (third column), not '
        'checked: add --with_oversegmentation to check them' % third_columns
      )
  print(
    '%s: %d lines, %d problem(s)%s'
    % (
      args.data_list,
      report.num_entries,
      len(report.problems),
      ', %d out-of-range label pixels' % report.out_of_range_pixels
      if report.out_of_range_pixels
      else '',
    )
  )
  return 0 if report.ok else 1


if __name__ == '__main__':
  sys.exit(main())
