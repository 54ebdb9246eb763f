"""argparse types that check flags when they are parsed.

Every entry point and tool declares its numeric flags with these types, so
that a value no run could use stops it before any work with argparse's
one-line message naming the flag and the allowed range; output paths are
declared with `output_folder` and `output_file`, so that a path blocked by
a file or folder is named before any work too (input folders are checked
once parsed, `check_folders_exist`):

    parser.add_argument('--k_in_nearest_neighbors', type=flags.integer(1))
    # --k_in_nearest_neighbors 0 -> "error: argument --k_in_nearest_neighbors:
    #     must be an integer >= 1, got '0'"
"""

import argparse
import math
import os
import re
import tempfile


# The most k-means iterations any entry point takes. Spherical k-means on
# these grids settles within tens (the original ran 10, its Cityscapes
# settings 15); beyond this, time and memory grow with nothing to gain, and
# a typo (100000) would run for hours without a progress line.
MAX_KMEANS_ITERATIONS = 1000


class ArgumentParser(argparse.ArgumentParser):
  """The argparse parser of every entry point and tool: errors in one line.

  argparse prints its whole usage block (dozens of lines for the training
  commands) before the error; here a bad flag stops the command with the
  error line alone, `PROG: error: MESSAGE`, and argparse's exit status 2
  (`--help` shows the usage). A flag must be spelt in full: argparse's
  abbreviations would let `--num_step` pass today and silently mean another
  flag once one more starting alike is added.
  """

  def __init__(self, *args, **kwargs):
    kwargs.setdefault('allow_abbrev', False)
    super().__init__(*args, **kwargs)
    # argparse takes '-64,64' for an unknown option, as its private test for
    # negative numbers knows no lists: '--input_size -64,64' said "expected
    # one argument" instead of what is wrong with the value. No flag here
    # starts with '-' and a digit.
    self._negative_number_matcher = re.compile(r'^-\.?\d[\d.,eE+-]*$')

  def error(self, message):
    self.exit(2, '%s: error: %s\n' % (self.prog, message))


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
  """Shows a flag's default in --help, as it would be typed (336,336, not
  Python's (336, 336)), unless its help already speaks of its default, or
  the default is None or empty (the help says what unset means)."""

  def _get_help_string(self, action):
    if action.default in (None, '') or 'default' in (action.help or ''):
      return action.help
    if isinstance(action.default, (tuple, list)) and action.option_strings:
      return '%s (default: %s)' % (
        action.help,
        _format(tuple(action.default)).replace('%', '%%'),
      )
    return super()._get_help_string(action)


class DescriptionAndDefaultsHelpFormatter(
  argparse.RawDescriptionHelpFormatter, DefaultsHelpFormatter
):
  """The tools' --help: their module docstring as written (examples keep
  their lines) and every flag's default (DefaultsHelpFormatter)."""


def _describe_range(kind, minimum, maximum, above, below=None):
  bounds = []
  if above is not None:
    bounds.append('> %s' % above)
  if minimum is not None:
    bounds.append('>= %s' % minimum)
  if maximum is not None:
    bounds.append('<= %s' % maximum)
  if below is not None:
    bounds.append('< %s' % below)
  return '%s %s' % (kind, ' and '.join(bounds)) if bounds else kind


# TensorFlow's int32: an unbounded integer flag above it failed as a
# traceback where it became a tensor (a batch size, a window).
MAX_INTEGER = 2**31 - 1


def _number(convert, kind, minimum, maximum, above, below=None):
  description = _describe_range(kind, minimum, maximum, above, below)

  def parse(text):
    try:
      value = convert(text)
    except ValueError:
      value = None
    if convert is int and maximum is None and (value or 0) > MAX_INTEGER:
      raise argparse.ArgumentTypeError(
        'must be at most %d, got %r' % (MAX_INTEGER, text)
      )
    if (
      value is None
      or (isinstance(value, float) and not math.isfinite(value))
      or (above is not None and not value > above)
      or (minimum is not None and value < minimum)
      or (maximum is not None and value > maximum)
      or (below is not None and not value < below)
    ):
      raise argparse.ArgumentTypeError(
        'must be %s, got %r' % (description, text)
      )
    return value

  # argparse names the type in some messages.
  parse.__name__ = description
  return parse


def integer(minimum=None, maximum=None):
  """An argparse type of integers in [minimum, maximum] (None: unbounded)."""
  return _number(int, 'an integer', minimum, maximum, None)


def real(minimum=None, maximum=None, above=None, below=None):
  """An argparse type of finite floats in [minimum, maximum], > above and
  < below."""
  return _number(float, 'a finite number', minimum, maximum, above, below)


def _positive_pair(text, expected):
  try:
    values = tuple(int(value) for value in text.split(','))
  except ValueError:
    values = ()
  if len(values) == 1:
    values = values * 2
  if len(values) != 2 or min(values) < 1:
    raise argparse.ArgumentTypeError(
      'expected %s of positive integers, got %r' % (expected, text)
    )
  if max(values) > MAX_INTEGER:
    raise argparse.ArgumentTypeError(
      'expected %s of positive integers at most %d, got %r'
      % (expected, MAX_INTEGER, text)
    )
  return values


def size_pair(text):
  """Parses "height,width" (or one number for a square) of positive integers."""
  return _positive_pair(text, '"height,width"')


def cluster_grid(text):
  """Parses a k-means grid "N" (N x N) or "ROWS,COLUMNS" of positive integers."""
  return _positive_pair(text, '"N" or "ROWS,COLUMNS"')


def positive_real_list(text, maximum=None):
  """Parses 'a,b,c' into a tuple of finite floats > 0 and <= maximum."""
  parse = real(above=0, maximum=maximum)
  try:
    return tuple(parse(value) for value in text.split(','))
  except argparse.ArgumentTypeError as error:
    raise argparse.ArgumentTypeError(
      'expected comma-separated numbers > 0%s, got %r'
      % ('' if maximum is None else ' and <= %g' % maximum, text)
    ) from error


# An image enlarged 4 times holds 16 times its pixels, all of whose windows
# go through the network in one call: larger scales exhaust the memory of
# any machine on ordinary photographs, and the original's largest is 1.75.
MAX_IMAGE_SCALE = 4.0


def image_scale_list(text):
  """Parses 'a,b,c' into image scales: finite floats in (0, MAX_IMAGE_SCALE]."""
  return positive_real_list(text, MAX_IMAGE_SCALE)


def check_at_most(parser, args, name, limit_name):
  """Stops with a usage error unless args.name <= args.limit_name elementwise.

  For flags bounded by another flag, e.g. --strides by --input_size.
  """
  value, limit = getattr(args, name), getattr(args, limit_name)
  pairs = zip(value, limit) if isinstance(value, tuple) else [(value, limit)]
  if any(item > bound for item, bound in pairs):
    # The user may not have typed the default: say it is one.
    got = 'its default %s: give --%s' % (_format(value), name)
    if value != parser.get_default(name):
      got = _format(value)
    parser.error(
      'argument --%s: must be at most --%s %s, got %s'
      % (name, limit_name, _format(limit), got)
    )


def add_label_flags(parser, num_classes_default, num_classes_help):
  """Adds --num_classes and --ignore_label (255) of a ground-truth reader.

  `check_ignore_label` checks them against each other once parsed.

  Args:
    parser: An argparse.ArgumentParser.
    num_classes_default: The default of --num_classes (None: not checked).
    num_classes_help: What --num_classes is for in this command.
  """
  parser.add_argument(
    '--num_classes',
    type=integer(1),
    default=num_classes_default,
    help=num_classes_help,
  )
  parser.add_argument(
    '--ignore_label',
    type=integer(0),
    default=255,
    help='Label value of pixels left out (not a class id).',
  )


def ignore_label_problem(args):
  """Why args.ignore_label does not fit args.num_classes, or None if it does.

  Args:
    args: A namespace with integers ignore_label and num_classes.

  Returns:
    The reason, worded to follow '--ignore_label ', or None.
  """
  if 0 <= args.ignore_label < args.num_classes:
    return 'must not be a class id of [0, --num_classes %d), got %d' % (
      args.num_classes,
      args.ignore_label,
    )
  return None


def check_ignore_label(parser, args):
  """Stops with a usage error if --ignore_label is a class id.

  Nothing is checked while either flag is None (not given, or still to be
  filled from a checkpoint).
  """
  if None in (args.ignore_label, args.num_classes):
    return
  message = ignore_label_problem(args)
  if message:
    parser.error('argument --ignore_label: ' + message)


def _format(value):
  return ','.join(map(str, value)) if isinstance(value, tuple) else str(value)


def _nearest_existing(path):
  """The absolute path at or above `path` that exists, None if none does.

  A broken symbolic link counts as existing: making a folder there fails.
  """
  path = os.path.abspath(path)
  while not os.path.lexists(path):
    parent = os.path.dirname(path)
    if parent == path:
      return None
    path = parent
  return path


def _file_in_the_way(path):
  """The nearest existing path at or above `path` if it is not a folder."""
  existing = _nearest_existing(path)
  return None if existing is None or os.path.isdir(existing) else existing


def _write_problem(folder):
  """Why nothing can be written into `folder` (made when missing), or None.

  Tried with a uniquely named temporary file (or, for a missing folder, a
  folder in its nearest existing parent), removed at once: permissions,
  read-only file systems and virtual ones such as /proc are told only by
  trying, and a unique name cannot meet another process's files.
  """
  folder = os.path.abspath(folder)
  existing = _nearest_existing(folder)
  try:
    if existing == folder:
      with tempfile.TemporaryFile(dir=folder):
        pass
    else:
      os.rmdir(tempfile.mkdtemp(dir=existing))
  except OSError as error:
    reason = error.strerror or str(error)
    if existing == folder:
      return 'cannot write into %s (%s)' % (folder, reason)
    return 'cannot make %s: no folder can be made in %s (%s)' % (
      folder,
      existing,
      reason,
    )
  return None


def _blocking_kind(path):
  return (
    'a broken symbolic link'
    if os.path.islink(path) and not os.path.exists(path)
    else 'a file'
  )


def output_folder(text):
  """An argparse type: a folder to write into, made when missing.

  Refuses a path that is a file or a broken symbolic link, or lies below
  one, which would otherwise fail after work with an OS error.
  """
  blocking = _file_in_the_way(text)
  if blocking is not None:
    raise argparse.ArgumentTypeError(
      '%s is %s, not a folder to write into'
      % (blocking, _blocking_kind(blocking))
    )
  problem = _write_problem(text)
  if problem is not None:
    raise argparse.ArgumentTypeError(problem)
  return text


def check_derived_output(parser, flag, path, folder=False):
  """Refuses an output path that a flag implies but argparse never saw.

  A default output, or a file written beside the one a flag names, would
  otherwise fail with an OS error after the work.

  Args:
    parser: The argparse.ArgumentParser, whose usage error stops the run.
    flag: The flag the path comes from, e.g. '--data_dir'.
    path: The file (or, with `folder`, the folder) to be written.
    folder: Whether `path` is a folder to write into.
  """
  try:
    (output_folder if folder else output_file)(path)
  except argparse.ArgumentTypeError as error:
    parser.error('argument %s: %s' % (flag, error))


def _not_found(path, kind):
  """Why `path` is not the `kind` ('file' or 'folder') a flag needs."""
  if os.path.exists(path):
    return '%s is not a %s' % (path, kind)
  return 'no %s %s' % (kind, path)


def add_boundary_tolerance_flag(parser):
  """Adds --boundary_tolerance (pixels, or a fraction of the diagonal)."""
  parser.add_argument(
    '--boundary_tolerance',
    type=real(0),
    default=2.0,
    help='Boundary match distance in pixels; a value in '
    '(0, 1) is a fraction of the image diagonal.',
  )


def check_folders_exist(parser, args, *names):
  """Stops with a usage error naming the first flag whose folder is missing.

  Checked after parsing, not as an argparse type, so that a recipe's
  commands still parse (in its dry-run test) before its folders exist.
  """
  for name in names:
    path = getattr(args, name)
    if not os.path.isdir(path):
      parser.error('argument --%s: %s' % (name, _not_found(path, 'folder')))


def existing_file(text):
  """An argparse type: a file to read, which must exist."""
  if not os.path.isfile(text):
    raise argparse.ArgumentTypeError(_not_found(text, 'file'))
  return text


def output_file(text):
  """An argparse type: a file to write, '-' (stdout) passed through.

  Refuses a path that is a folder, or whose folder is blocked by a file.
  """
  if text == '-':
    return text
  if os.path.isdir(text):
    raise argparse.ArgumentTypeError(
      '%s is a folder, not a file to write' % text
    )
  blocking = _file_in_the_way(os.path.dirname(text) or '.')
  if blocking is not None:
    raise argparse.ArgumentTypeError(
      '%s is %s, not a folder to write into'
      % (blocking, _blocking_kind(blocking))
    )
  problem = _write_problem(os.path.dirname(text) or '.')
  if problem is not None:
    raise argparse.ArgumentTypeError(problem)
  return text
