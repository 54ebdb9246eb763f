"""What makes a run replayable: its environment, saved flags and flag files.

* `environment()` is recorded in every training run's config.json (under
  "environment"): the versions of Python, TensorFlow, Keras and NumPy and
  the git commit of this code (null outside a git checkout).
* `--config RUN/config.json` starts a training run from a saved
  configuration; flags given on the command line override its values
  (`parse_with_saved_config`).
* `@FILE` on any command line of this project reads flags from FILE
  (`ArgumentParser`): one or more shell-quoted words a line, '#' comments:

      # flags.txt
      --data_dir /data/voc --data_list dataset/voc12/train.txt
      --num_steps 30000   # stage 1

      python -m segsort.train_segsort @flags.txt --batch_size 4

Nothing here imports TensorFlow at import time, so that flags are parsed
(and --help answered) before it loads.
"""

import os
import platform
import shlex
import subprocess

from segsort import flags

# The repository root when this package runs from a git checkout.
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_GIT_TIMEOUT_SECONDS = 10


# How deep @FILE arguments may name further @FILEs.
MAX_FLAG_FILE_DEPTH = 8


class ArgumentParser(flags.ArgumentParser):
  """An argparse parser that reads `@FILE` arguments as shell-quoted lines
  and shows flags' defaults in --help (the entry points' parser).

  A missing or unreadable FILE stops the program with a one-line error
  naming it ("error: [Errno 2] No such file or directory: 'f.txt'"); a line
  with unbalanced quotes with an error naming the line.
  """

  def __init__(self, *args, **kwargs):
    kwargs.setdefault('fromfile_prefix_chars', '@')
    kwargs.setdefault('formatter_class', flags.DefaultsHelpFormatter)
    super().__init__(*args, **kwargs)

  def convert_arg_line_to_args(self, arg_line):
    try:
      return shlex.split(arg_line, comments=True)
    except ValueError as error:
      self.error(
        'cannot read the flags line %r of %s: %s'
        % (arg_line, ', '.join(self._flag_files_read), error)
      )

  def _read_args_from_files(self, arg_strings):
    # argparse reads an @FILE named inside an @FILE without limit: a file
    # that names itself (or two that name each other) would recurse until
    # Python's RecursionError. argparse offers no public hook for this.
    self._flag_file_depth = getattr(self, '_flag_file_depth', 0) + 1
    try:
      if self._flag_file_depth > MAX_FLAG_FILE_DEPTH:
        self.error(
          'flag files name flag files more than %d deep (one that names '
          'itself?): %s'
          % (
            MAX_FLAG_FILE_DEPTH,
            ' '.join(text for text in arg_strings if text.startswith('@')),
          )
        )
      # The files this call reads, for convert_arg_line_to_args's message
      # (argparse passes it a line, not its file).
      self._flag_files_read = [
        text[1:] for text in arg_strings if text.startswith('@')
      ]
      return super()._read_args_from_files(arg_strings)
    finally:
      self._flag_file_depth -= 1


def git_commit(directory=_SOURCE_ROOT):
  """The commit checked out at `directory` if it is a git checkout's root.

  Args:
    directory: The root of the source tree (this package's parent).

  Returns:
    A dict {'commit': 40 hex digits, 'dirty': whether tracked files differ
    from it}, or None when `directory` is not the root of a git checkout
    (e.g. an installed package) or git is missing.
  """

  def git(*arguments):
    return subprocess.run(
      ('git', '-C', directory) + arguments,
      check=True,
      capture_output=True,
      text=True,
      timeout=_GIT_TIMEOUT_SECONDS,
    ).stdout.strip()

  try:
    top_level = git('rev-parse', '--show-toplevel')
    if os.path.realpath(top_level) != os.path.realpath(directory):
      # An installed copy inside some other repository's tree.
      return None
    return {
      'commit': git('rev-parse', 'HEAD'),
      'dirty': bool(git('status', '--porcelain', '--untracked-files=no')),
    }
  except (OSError, subprocess.SubprocessError):
    return None


def environment():
  """The software a run used, for config.json.

  Imports TensorFlow and Keras (the trainer has loaded them already).

  Returns:
    A JSON-ready dict: 'python', 'tensorflow', 'keras', 'numpy' (version
    strings) and 'git' (see `git_commit`; None outside a git checkout).
  """
  # pylint: disable=g-import-not-at-top
  import keras
  import numpy as np
  import tensorflow as tf

  # pylint: enable=g-import-not-at-top
  return {
    'python': platform.python_version(),
    'tensorflow': tf.__version__,
    'keras': keras.__version__,
    'numpy': np.__version__,
    'git': git_commit(),
  }


def add_config_flag(parser, what):
  """Adds --config to a parser whose flags a saved configuration can set.

  Args:
    parser: An argparse.ArgumentParser.
    what: What the file configures, for the help text (e.g. 'training run').
  """
  parser.add_argument(
    '--config',
    default=None,
    metavar='RUN/config.json',
    help='Start from the settings of a saved %s (its config.json, or its '
    'directory); flags given here override them. Give a new '
    '--snapshot_dir unless the run is to be resumed.' % what,
  )


def parse_with_saved_config(parser, argv, load_values):
  """Parses flags, taking the defaults from the file of --config if given.

  Args:
    parser: A parser with the flags of `add_config_flag`.
    argv: The arguments without the program name; sys.argv[1:] when None.
    load_values: A function from the --config path to a dict from flag
      destination to value; it raises OSError or ValueError naming the file
      when the file is missing or malformed.

  Returns:
    The parsed argparse.Namespace, without 'config'. A missing or malformed
    file stops the program with a usage error naming --config and the file.
  """
  pre_parser = ArgumentParser(add_help=False)
  add_config_flag(pre_parser, '')
  known, _ = pre_parser.parse_known_args(argv)
  if known.config is not None:
    try:
      values = load_values(known.config)
    except (OSError, ValueError) as error:
      parser.error('argument --config: %s' % ' '.join(str(error).split()))
    parser.set_defaults(**values)
  args = parser.parse_args(argv)
  del args.config
  return args
