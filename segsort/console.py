"""What a command prints: progress, log lines and TensorFlow's start-up noise.

Every entry point calls `quiet_tensorflow` before TensorFlow is imported and
`setup_logging` once its flags are parsed, and shows progress with
`progress`:

    for entry in console.progress(entries, desc='Predicting', unit='image'):
      ...

On a terminal `progress` is a tqdm bar, and log lines are written above it
(never into it). When stderr is a file or a pipe there is no bar and no
carriage return: a single log line reports the count, rate and ETA every
tenth of the work (at most every `LINE_INTERVAL_SECONDS`) and at the end,
so that a log file reads line by line.

TensorFlow's C++ start-up lines (CPU feature notices, absl's "All log
messages before absl::InitializeLog()") and absl's Python warnings are
silenced unless the environment variable SEGSORT_VERBOSE_TF=1 asks for them.
"""

import contextlib
import importlib.abc
import importlib.util
import logging
import math
import os
import re
import sys
import tempfile
import time

import tqdm

# The environment variable that brings TensorFlow's own messages back.
VERBOSE_TF_VARIABLE = 'SEGSORT_VERBOSE_TF'
# Without a terminal, a progress line at least this often (and at every
# tenth of the work).
LINE_INTERVAL_SECONDS = 60.0
# ... but a tenth of the work done sooner than this after the last line is
# not logged: a check of a thousand files in a second gave ten lines.
MIN_LINE_SECONDS = 1.0
LOG_FORMAT = '%(asctime)s %(levelname)s %(message)s'

_LOGGER = logging.getLogger('segsort.progress')


def verbose_tensorflow():
  """Whether SEGSORT_VERBOSE_TF asks for TensorFlow's own messages."""
  return os.environ.get(VERBOSE_TF_VARIABLE, '') not in ('', '0')


def quiet_tensorflow():
  """Silences TensorFlow's C++ INFO and WARNING lines (errors stay).

  Must run before TensorFlow is imported: its C++ logging reads
  TF_CPP_MIN_LOG_LEVEL once, at load. A TF_CPP_MIN_LOG_LEVEL already set,
  or SEGSORT_VERBOSE_TF=1, is left alone.

  Lines that C++ code logs while TensorFlow loads, before absl::InitializeLog
  (e.g. "oneDNN custom operations are on" on CPUs where oneDNN is on by
  default), reach stderr whatever the level: abseil's logging ignores its
  threshold until it is initialised (abseil-cpp pull requests 1718 and
  1957). So the first import of TensorFlow also runs with stderr captured,
  and the INFO and WARNING lines below the level are dropped from what it
  printed; everything else is written back.
  """
  if verbose_tensorflow():
    return
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  if 'tensorflow' not in sys.modules and not any(
    isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path
  ):
    sys.meta_path.insert(0, _QuietTensorFlowImport())


# absl's notice that precedes the first line logged before InitializeLog.
_ABSL_UNINITIALISED_NOTICE = 'All log messages before absl::InitializeLog()'
# C++ log lines: severity letter, MMDD, time.
_CPP_LOG_LINE = re.compile(r'^([IWEF])\d{4} ')
_CPP_SEVERITIES = 'IWEF'


def _drops_line(line, min_level):
  """Whether a line TensorFlow printed at load is below TF_CPP_MIN_LOG_LEVEL."""
  if _ABSL_UNINITIALISED_NOTICE in line:
    return True
  match = _CPP_LOG_LINE.match(line)
  return bool(match) and _CPP_SEVERITIES.index(match.group(1)) < min_level


@contextlib.contextmanager
def _stderr_below_level_dropped():
  """Captures file descriptor 2, then writes back the lines worth keeping."""
  try:
    min_level = int(os.environ.get('TF_CPP_MIN_LOG_LEVEL', '0'))
  except ValueError:
    min_level = 0
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      lines = captured.read().decode('utf-8', 'replace').splitlines(True)
      # A multi-line message continues on lines without a severity.
      dropping = False
      kept = []
      for line in lines:
        if _CPP_LOG_LINE.match(line) or _ABSL_UNINITIALISED_NOTICE in line:
          dropping = _drops_line(line, min_level)
        if not dropping:
          kept.append(line)
      if kept:
        sys.stderr.write(''.join(kept))
        sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
  """Runs a module's loader with stderr filtered (see quiet_tensorflow)."""

  def __init__(self, loader):
    self._loader = loader

  def create_module(self, spec):
    return self._loader.create_module(spec)

  def exec_module(self, module):
    with _stderr_below_level_dropped():
      self._loader.exec_module(module)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
  """Finds `tensorflow` once, for loading with stderr filtered."""

  def find_spec(self, name, path, target=None):
    if name != 'tensorflow':
      return None
    sys.meta_path.remove(self)
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.loader is not None:
      spec.loader = _QuietLoader(spec.loader)
    return spec


class _TqdmAwareHandler(logging.Handler):
  """Writes records to stderr through tqdm.write, which keeps bars below.

  The stream is looked up at every record, so that a replaced sys.stderr
  (e.g. pytest's capture) is followed.
  """

  def emit(self, record):
    try:
      tqdm.tqdm.write(self.format(record), file=sys.stderr)
    except Exception:  # pylint: disable=broad-except
      self.handleError(record)


def setup_logging(level=logging.INFO):
  """Sends log records to stderr as one line each, around progress bars.

  Like logging.basicConfig, does nothing to the root logger when it has
  handlers already (an application's or a test runner's own). Quiets
  TensorFlow's and absl's Python loggers to warnings and errors
  respectively unless SEGSORT_VERBOSE_TF=1.

  Args:
    level: The root logger's level.
  """
  logging.basicConfig(
    level=level, format=LOG_FORMAT, handlers=[_TqdmAwareHandler()]
  )
  if not verbose_tensorflow():
    # TensorFlow's own INFO messages (checkpoint sharding) and absl's
    # warnings (e.g. Keras' notes on saving) are noise to a user.
    logging.getLogger('tensorflow').setLevel(logging.WARNING)
    logging.getLogger('absl').setLevel(logging.ERROR)


def _format_seconds(seconds):
  seconds = int(round(seconds))
  hours, rest = divmod(seconds, 3600)
  minutes, seconds = divmod(rest, 60)
  if hours:
    return '%dh%02dm%02ds' % (hours, minutes, seconds)
  return '%dm%02ds' % (minutes, seconds) if minutes else '%ds' % seconds


class LineProgress:
  """Progress as whole log lines, for output that is not a terminal.

  Has the part of tqdm's interface that this project uses: iteration over
  `iterable`, `update`, `set_postfix`, `close` and use as a context
  manager. A line such as

      Predicting: 40/120 images (33%), 2.51 images/s, ETA 31s

  is logged (INFO, logger 'segsort.progress') when `every` more items are
  done than at the last line (and MIN_LINE_SECONDS have passed), or
  LINE_INTERVAL_SECONDS have passed, and when the work ends.
  """

  def __init__(
    self,
    iterable=None,
    total=None,
    desc='',
    unit='it',
    initial=0,
    every=None,
    disable=False,
  ):
    """Starts counting.

    Args:
      iterable: What to iterate over, or None to count with `update`.
      total: The number of items of the whole work; len(iterable) when
        None and the iterable has a length.
      desc: What is counted, e.g. 'Predicting'.
      unit: The items' name, e.g. 'image'.
      initial: Items done before (e.g. the step a run resumes from).
      every: Items between two lines; a tenth of `total - initial` (at least
        1) when None.
      disable: Print nothing (e.g. on every worker but the chief).
    """
    if total is None and iterable is not None and hasattr(iterable, '__len__'):
      total = len(iterable)
    self.iterable = iterable
    self.total = total
    self.n = initial
    self._desc = desc
    self._unit = unit
    self._disable = disable
    self._postfix = ''
    if every is None:
      every = max(1, math.ceil((total - initial) / 10)) if total else 1
    self._every = every
    self._start_n = initial
    self._start = self._last_time = time.monotonic()
    self._last_n = initial
    self._closed = False

  def __iter__(self):
    for item in self.iterable:
      yield item
      self.update()
    self.close()

  def __enter__(self):
    return self

  def __exit__(self, *unused_exc_info):
    self.close()

  def update(self, n=1):
    """Counts `n` more items done; logs a line when one is due."""
    self.n += n
    now = time.monotonic()
    since_last = now - self._last_time
    if (
      self.n - self._last_n >= self._every and since_last >= MIN_LINE_SECONDS
    ) or since_last >= LINE_INTERVAL_SECONDS:
      self._log(now)

  def set_postfix(self, refresh=True, **values):  # pylint: disable=unused-argument
    """Appends `name value` pairs (e.g. loss=0.12) to the following lines."""
    self._postfix = ', '.join('%s %s' % item for item in values.items())

  def close(self):
    """Logs the last line, unless nothing was done since the previous one."""
    if not self._closed:
      self._closed = True
      if self.n != self._last_n:
        self._log(time.monotonic())

  def format_line(self, now):
    """The progress line at time `now` (time.monotonic())."""
    elapsed = now - self._start
    done = self.n - self._start_n
    rate = done / elapsed if elapsed > 0 else 0.0
    units = self._unit + ('' if self._unit.endswith('s') else 's')
    if self.total:
      parts = [
        '%d/%d %s (%d%%)'
        % (self.n, self.total, units, 100 * self.n // self.total)
      ]
    else:
      parts = ['%d %s' % (self.n, units)]
    # 3 significant digits, without 1.2e+03 from a thousand on.
    parts.append(
      '%s %s/s' % ('%.3g' % rate if rate < 1000 else round(rate), units)
    )
    if self.total and rate > 0 and self.n < self.total:
      parts.append('ETA %s' % _format_seconds((self.total - self.n) / rate))
    elif self.n and self.total and self.n >= self.total:
      parts.append('took %s' % _format_seconds(elapsed))
    if self._postfix:
      parts.append(self._postfix)
    return '%s: %s' % (self._desc or 'Progress', ', '.join(parts))

  def _log(self, now):
    self._last_n, self._last_time = self.n, now
    if not self._disable:
      _LOGGER.info('%s', self.format_line(now))


def on_terminal(stream=None):
  """Whether `stream` (stderr by default) is an interactive terminal."""
  stream = sys.stderr if stream is None else stream
  return hasattr(stream, 'isatty') and stream.isatty()


def progress(
  iterable=None, *, total=None, desc='', unit='it', initial=0, disable=False
):
  """A progress bar on a terminal, else periodic log lines.

  Args:
    iterable: What to iterate over, or None to count with `update`.
    total: The number of items of the whole work (len(iterable) if None).
    desc: What is counted, e.g. 'Predicting'.
    unit: The items' name, e.g. 'image' or 'step'.
    initial: Items done before (e.g. the step a run resumes from).
    disable: Show nothing (e.g. on every worker but the chief).

  Returns:
    A tqdm.tqdm when stderr is a terminal, else a LineProgress; both
    iterate over `iterable`, count with `update(n)`, take
    `set_postfix(**values)`, and `close()` (or end a `with` block).
  """
  # LineProgress takes tqdm's keywords, so that callers need not know which.
  options = {
    'total': total,
    'desc': desc,
    'unit': unit,
    'initial': initial,
    'disable': disable,
  }
  if on_terminal():
    return tqdm.tqdm(iterable, dynamic_ncols=True, **options)
  return LineProgress(iterable, **options)
