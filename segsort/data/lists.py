"""Data lists: one example per line, paths relative to a data directory.

    VOC2012/JPEGImages/2007_000032.jpg VOC2012/segcls/2007_000032.png

A line has 1 column (image only, for test sets), 2 columns (image and label)
or 3 columns (image, label and oversegmentation). A malformed line or a
missing file is reported with the list file, line number and path.

An oversegmentation's segment groups (unsupervised SegSort's
`--segment_groups`) are the PNG of the same name in the sibling folder whose
name ends in `_groups`: `VOC2012/hed/ID.png` has its groups in
`VOC2012/hed_groups/ID.png` (`segment_groups_path`).
"""

import dataclasses
import os

from segsort import errors
from segsort import io_utils


@dataclasses.dataclass(frozen=True)
class ListEntry:
  """One line of a data list, with paths joined to the data directory.

  Attributes:
    line_number: The 1-based line number in the list file.
    image_path: The image file.
    label_path: The label PNG, or None when the line has none.
    oversegmentation_path: The oversegmentation PNG, or None when not asked
      for.
    segment_groups_path: Its segment groups PNG (`segment_groups_path`), or
      None when not asked for.
    image_id: The image's file name without extension, e.g. '2007_000032'.
    list_path: The list file the entry comes from, for error messages.
  """

  line_number: int
  image_path: str
  label_path: str | None
  oversegmentation_path: str | None
  image_id: str
  list_path: str = ''
  segment_groups_path: str | None = None

  def location(self):
    """Returns 'LIST, line N', where the entry comes from."""
    return '%s, line %d' % (self.list_path, self.line_number)


def segment_groups_path(oversegmentation_path):
  """The segment groups PNG of an oversegmentation PNG.

  Args:
    oversegmentation_path: e.g. 'DATAROOT/VOC2012/hed/ID.png'.

  Returns:
    The same file name in the sibling folder named with `_groups` appended,
    e.g. 'DATAROOT/VOC2012/hed_groups/ID.png'.
  """
  folder, name = os.path.split(oversegmentation_path)
  return os.path.join(folder + '_groups', name)


OVERWRITE_MARK_FILE = io_utils.OVERSEGMENTATION_OVERWRITE_MARK_FILE


def _unfinished_overwrite_problems(entries):
  """One problem per segments folder of `entries` that an interrupted
  --overwrite left mixed, on the line of its first entry."""
  problems, seen = [], set()
  for entry in entries:
    for path in (entry.oversegmentation_path, entry.segment_groups_path):
      folder = path and os.path.dirname(path)
      if not folder or folder in seen:
        continue
      seen.add(folder)
      if os.path.exists(os.path.join(folder, OVERWRITE_MARK_FILE)):
        problems.append(
          (
            entry.line_number,
            '%s: %s holds segments of two settings (an interrupted '
            'tools.make_oversegmentation --overwrite); run it again with '
            '--overwrite to finish'
            % (entry.location(), io_utils.printable_path(folder)),
          )
        )
  return problems


def parse_data_list(
  data_dir,
  data_list,
  require_labels,
  with_oversegmentation,
  use_labels=True,
  with_segment_groups=False,
):
  """Parses a data list, collecting problems instead of stopping at one.

  Arguments as `read_data_list`'s, and `use_labels`: when False, a line's
  label column is allowed but neither checked nor kept (label_path None),
  for readers that only predict.

  Returns:
    entries: A list of ListEntry for the well-formed lines whose files exist
      and whose image id (file name without extension) no earlier line has.
    problems: A list of (line number, description) pairs, each description
      naming the list file, line number and, for a missing file, its path
      (for a repeated image id, the line of its first use);
      an empty list (no non-blank line) is the problem of line 0.
    num_lines: The number of non-blank lines.

  Raises:
    DataError: If the list file itself cannot be read.
  """
  try:
    lines = io_utils.read_list_lines(data_list)
  except errors.ListFileError as error:
    raise errors.DataError(str(error)) from error
  entries, problems, num_lines = [], [], 0
  first_line_of_id = {}
  min_fields = 2 if require_labels and use_labels else 1
  for line_number, line in enumerate(lines, start=1):
    fields = io_utils.split_fields(line)
    if not fields:
      continue
    num_lines += 1
    comment_problem = io_utils.comment_line_problem(fields)
    if comment_problem:
      problems.append(
        (
          line_number,
          '%s, line %d: %s' % (data_list, line_number, comment_problem),
        )
      )
      continue
    if not min_fields <= len(fields) <= 3:
      problems.append(
        (
          line_number,
          (
            '%s, line %d: expected %s fields (IMAGE LABEL [OVERSEGMENTATION]), '
            'got %d: %r'
            % (
              data_list,
              line_number,
              '2 or 3' if require_labels else '1 to 3',
              len(fields),
              line.rstrip('\n'),
            )
          ),
        )
      )
      continue
    image_path = os.path.join(data_dir, fields[0])
    image_id = os.path.splitext(os.path.basename(fields[0]))[0]
    first_line = first_line_of_id.setdefault(image_id, line_number)
    if first_line != line_number:
      # Refused in every list, training's too: the pipelines extract
      # prototypes from the training list, and every output is named by id.
      problems.append(
        (
          line_number,
          '%s, line %d: image id %s again (first on line %d); outputs are '
          'named by image id, so each may appear once'
          % (data_list, line_number, image_id, first_line),
        )
      )
      continue
    label_path = (
      os.path.join(data_dir, fields[1])
      if use_labels and len(fields) > 1
      else None
    )
    oversegmentation_path = None
    if with_oversegmentation:
      if len(fields) == 3:
        oversegmentation_path = os.path.join(data_dir, fields[2])
      else:
        oversegmentation_path = os.path.join(
          data_dir, 'VOC2012', 'hed', image_id + '.png'
        )
    groups_path = None
    if with_oversegmentation and with_segment_groups:
      groups_path = segment_groups_path(oversegmentation_path)
    entry = ListEntry(
      line_number,
      image_path,
      label_path,
      oversegmentation_path,
      image_id,
      data_list,
      groups_path,
    )
    missing = [
      path
      for path in (image_path, label_path, oversegmentation_path, groups_path)
      if path is not None and not os.path.exists(path)
    ]
    for path in missing:
      problems.append(
        (
          line_number,
          '%s: missing file %s'
          % (entry.location(), io_utils.printable_path(path)),
        )
      )
    if not missing:
      entries.append(entry)
  problems += _unfinished_overwrite_problems(entries)
  if not num_lines:
    # Every reader would have nothing to do; saying so beats an empty run.
    problems.append((0, '%s is empty (no line names an image)' % data_list))
  return entries, problems, num_lines


def raise_for_problems(data_list, problems):
  """Raises one DataError listing the first problems of a list, if any.

  Args:
    data_list: The list file, for the message.
    problems: (line number, description) pairs, as parse_data_list's.

  Raises:
    DataError: One line: the count and the list, then the first problems
      (each 'line N: ...', the list named once), how many more.
  """
  if not problems:
    return
  # Each description names its list so that it can stand alone; the message
  # names it once, in front.
  own_prefix = '%s, ' % data_list
  descriptions = [
    description[len(own_prefix) :]
    if description.startswith(own_prefix)
    else description
    for _, description in problems
  ]
  # One line, as every error an entry point prints.
  raise errors.DataError(
    '%d problem(s) in data list %s: %s'
    % (len(problems), data_list, errors.join_problems(descriptions))
  )


def read_data_list(
  data_dir,
  data_list,
  require_labels=True,
  with_oversegmentation=False,
  with_segment_groups=False,
):
  """Reads a data list and checks that every file it names exists.

  The oversegmentation of an image is the line's third column when present,
  else `data_dir/VOC2012/hed/<image_id>.png`. It is never derived from the
  label path: the original release's `replace('segcls', 'hed')` left the
  label path of SBD images (`sbd/dataset/clsimg/...`) unchanged and so
  silently trained "unsupervised" on SBD ground truth for 9,118 of the
  10,582 train+ images.

  Args:
    data_dir: The directory list paths are relative to (with or without a
      trailing slash; absolute list paths are kept).
    data_list: The list file.
    require_labels: Whether every line must name a label; when False,
      one-column lines (image only) are allowed.
    with_oversegmentation: Whether to find each image's oversegmentation.
    with_segment_groups: Whether to find its segment groups as well
      (`segment_groups_path`).

  Returns:
    A list of ListEntry in list order, blank lines skipped.

  Raises:
    DataError: If the list is empty, or a line has the wrong number of
      fields, names a missing file or an image id that an earlier line
      names (every output is named by image id); the one-line message
      names the list file, line numbers and paths.
  """
  entries, problems, _ = parse_data_list(
    data_dir,
    data_list,
    require_labels,
    with_oversegmentation,
    with_segment_groups=with_segment_groups,
  )
  raise_for_problems(data_list, problems)
  return entries
