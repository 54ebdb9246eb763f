"""The errors a user can fix, and how the entry points report them.

Every exception here names the file, list line, flag or checkpoint at fault,
so that an entry point can stop with its message alone instead of a
traceback (`exit_on_known_errors`). The module imports no TensorFlow: the
tools and the metrics, which must not load it, raise these errors too. A
checkpoint that does not fit its model raises
`network.checkpoints.CheckpointMismatchError`, defined beside the checkpoint
inspection in the TensorFlow-only `network` package.
"""

import contextlib
import functools


# Problems named in full on an error line (lists, scores, converters); the
# rest are counted.
MAX_PROBLEMS_SHOWN = 20


def join_problems(descriptions, limit=MAX_PROBLEMS_SHOWN):
  """One line of the first `limit` problem descriptions, then a count.

  Args:
    descriptions: Strings, each naming one problem and its file or line.
    limit: How many to give in full.

  Returns:
    'a; b; ...; and N more' (without the count when all are given).
  """
  more = len(descriptions) - limit
  return '; '.join(descriptions[:limit]) + (
    '; and %d more' % more if more > 0 else ''
  )


class ListFileError(ValueError):
  """A list file that cannot be read or decoded as text."""


class ImageFileError(ValueError):
  """An image file that cannot be decoded or has the wrong kind of pixels."""


class ConfigFileError(ValueError):
  """A run's config.json that cannot be read as a training config."""


class DataError(ValueError):
  """A data list or one of its files is malformed, missing or undecodable."""


class InferenceError(ValueError):
  """A checkpoint, prototype bank or setting that inference cannot use."""


class TrainingError(Exception):
  """A run cannot start or continue; the message says why and what to do."""


class ConfigMismatchError(TrainingError, ValueError):
  """The snapshot directory holds a run with another configuration."""


class DivergenceError(TrainingError, FloatingPointError):
  """The loss grew by orders of magnitude (or became NaN or infinite).

  Attributes:
    step: The 1-based number of the step that failed.
  """

  def __init__(self, message, step):
    super().__init__(message)
    self.step = step


class NonFiniteLossError(DivergenceError):
  """The loss, its gradients or the weights became NaN or infinite."""


class TrainingInterruptedError(TrainingError):
  """Training was stopped by Ctrl-C; the message names the checkpoint kept."""


# What every entry point and tool says when Ctrl-C stops it: they write
# every file whole (segsort.io_utils.atomic_path) and skip what is done.
INTERRUPTED_MESSAGE = (
  'error: interrupted; every file written is whole: run the same command '
  'again to continue'
)


def one_line_on_interrupt(main):
  """Decorates an entry point's `main`: Ctrl-C stops it with one line.

  `exit_on_known_errors` covers the work; this covers the seconds before
  it, TensorFlow's import among them, where Ctrl-C gave a traceback of
  the import machinery. Nothing is written by then.
  """

  @functools.wraps(main)
  def main_stopping_in_one_line(*args, **kwargs):
    try:
      return main(*args, **kwargs)
    except KeyboardInterrupt:
      raise SystemExit(INTERRUPTED_MESSAGE) from None

  return main_stopping_in_one_line


@contextlib.contextmanager
def exit_on_known_errors():
  """Turns errors a user can fix (bad files, flags) into an exit message.

  Raises:
    SystemExit: With 'error: ' and the message of a ListFileError,
      ImageFileError, ConfigFileError, DataError, InferenceError,
      TrainingError (and its subclasses), FileNotFoundError or
      network.checkpoints.CheckpointMismatchError raised inside; with one
      line for Ctrl-C instead of a traceback (every output of the entry
      points is written whole, and a rerun continues: training from its
      latest checkpoint, inference skipping the images done).
  """
  # Imported here: network.checkpoints loads TensorFlow, which the tools
  # importing this module must not.
  from network import checkpoints  # pylint: disable=g-import-not-at-top

  try:
    yield
  except (
    ListFileError,
    ImageFileError,
    ConfigFileError,
    DataError,
    InferenceError,
    TrainingError,
    FileNotFoundError,
    checkpoints.CheckpointMismatchError,
  ) as error:
    raise SystemExit('error: %s' % error) from error
  except KeyboardInterrupt:
    raise SystemExit(INTERRUPTED_MESSAGE) from None
