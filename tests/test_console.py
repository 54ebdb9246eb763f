"""Tests of segsort.console: progress in files and on terminals, quiet
TensorFlow, and --help of every entry point without TensorFlow."""

import fcntl
import glob
import logging
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from segsort import console

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A log line of console.setup_logging: '2026-01-31 12:00:00,123 INFO ...'.
LOG_LINE = re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ')


def _entry_points():
  """Every module or script of the repository with a __main__ block."""
  found = []
  for pattern in (
    'segsort/*.py',
    'tools/*.py',
    'benchmarks/*.py',
    'bashscripts/*/*.py',
  ):
    for path in sorted(glob.glob(os.path.join(REPOSITORY, pattern))):
      with open(path) as stream:
        if "if __name__ == '__main__':" not in stream.read():
          continue
      relative = os.path.relpath(path, REPOSITORY)
      if relative.startswith(('segsort', 'tools')):
        found.append(relative[:-3].replace(os.sep, '.'))
      else:
        found.append(relative)
  return found


_HELP_PROBE = """
import argparse, os, runpy, sys
sys.path.insert(0, os.getcwd())  # as python -m does
target = sys.argv[1]
sys.argv = [target, '--help']
without_help = []
real_print_help = argparse.ArgumentParser.print_help
def print_help(parser, file=None):
  without_help.extend(
    action.option_strings[-1]
    for action in parser._actions
    if action.option_strings and not action.help
  )
  real_print_help(parser, file)
argparse.ArgumentParser.print_help = print_help
try:
  if target.endswith('.py'):
    runpy.run_path(target, run_name='__main__')
  else:
    runpy.run_module(target, run_name='__main__', alter_sys=True)
except SystemExit as exit:
  assert exit.code in (0, None), exit.code
print('tensorflow imported:', 'tensorflow' in sys.modules, file=sys.stderr)
print('scipy imported:', 'scipy' in sys.modules, file=sys.stderr)
print('flags without help:', without_help, file=sys.stderr)
"""


def test_entry_points_are_found():
  entry_points = _entry_points()
  for expected in (
    'segsort.train_segsort',
    'segsort.inference_segsort',
    'segsort.benchmark_by_mIoU',
    'segsort.explain',
    'tools.check_list',
    'benchmarks/benchmark_train_step.py',
    'bashscripts/common/summarize.py',
  ):
    assert expected in entry_points
  assert len(entry_points) >= 23


@pytest.mark.parametrize('entry_point', _entry_points())
def test_help_is_quick_and_explains_every_flag(entry_point):
  # Each takes longer to load than a whole quick --help.
  result = subprocess.run(
    [sys.executable, '-c', _HELP_PROBE, entry_point],
    cwd=REPOSITORY,
    capture_output=True,
    text=True,
    timeout=120,
    check=False,
  )
  assert result.returncode == 0, result.stderr
  assert 'usage:' in result.stdout
  assert 'tensorflow imported: False' in result.stderr, result.stderr
  assert 'scipy imported: False' in result.stderr, result.stderr
  assert 'flags without help: []' in result.stderr, result.stderr


_PROGRESS_SCRIPT = """
import logging
from segsort import console
console.setup_logging()
console.MIN_LINE_SECONDS = 0  # Every tenth of this instant work.
for index in console.progress(range(30), desc='Counting', unit='item'):
  if index == 12:
    logging.getLogger('test').info('a message in the middle')
"""


def test_progress_in_a_file_is_whole_log_lines(tmp_path):
  log_path = tmp_path / 'log.txt'
  with open(log_path, 'w') as log:
    subprocess.run(
      [sys.executable, '-c', _PROGRESS_SCRIPT],
      cwd=REPOSITORY,
      stdout=log,
      stderr=subprocess.STDOUT,
      check=True,
      timeout=60,
    )
  text = log_path.read_text()
  assert '\r' not in text
  lines = text.splitlines()
  assert lines and all(LOG_LINE.match(line) for line in lines), text
  messages = [LOG_LINE.sub('', line) for line in lines]
  assert 'a message in the middle' in messages
  progress = [
    message for message in messages if message.startswith('Counting: ')
  ]
  # A line at every tenth of the work (3 items), the last one at the end.
  assert len(progress) == 10, progress
  assert re.match(
    r'Counting: 3/30 items \(10%\), [\d.e+]+ items/s, ETA ', progress[0]
  ), progress[0]
  assert progress[-1].startswith('Counting: 30/30 items (100%)')
  assert 'took' in progress[-1]


def test_log_lines_go_above_the_bar_on_a_terminal():
  controller, terminal = pty.openpty()
  # 24 rows of 100 columns: a new pseudo-terminal has none, and a bar none.
  fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 100, 0, 0))
  try:
    process = subprocess.Popen(
      [sys.executable, '-c', _PROGRESS_SCRIPT],
      cwd=REPOSITORY,
      stdout=terminal,
      stderr=terminal,
    )
    os.close(terminal)
    output = b''
    while True:
      try:
        chunk = os.read(controller, 4096)
      except OSError:  # The terminal is closed once the process exits.
        break
      if not chunk:
        break
      output += chunk
    assert process.wait(timeout=60) == 0
  finally:
    os.close(controller)
  text = output.decode()
  assert '\r' in text and 'item/s' in text and '30/30' in text
  message_lines = [
    line for line in text.split('\n') if 'a message in the middle' in line
  ]
  assert len(message_lines) == 1
  # What the terminal shows of that line: the text after its last carriage
  # return (the terminal writes '\n' as '\r\n'), which tqdm.write put there
  # after clearing the bar.
  shown = message_lines[0].rstrip('\r').split('\r')[-1]
  assert LOG_LINE.match(shown), repr(message_lines[0])


class _Clock:
  """A time.monotonic that advances by `step` seconds at every reading."""

  def __init__(self, step):
    self.now, self.step = 0.0, step

  def __call__(self):
    self.now += self.step
    return self.now


def test_line_progress_counts_rates_and_postfix(caplog, monkeypatch):
  caplog.set_level(logging.INFO, logger='segsort.progress')
  monkeypatch.setattr(console.time, 'monotonic', _Clock(1.0))
  with console.LineProgress(
    total=100, initial=40, desc='Training', unit='step'
  ) as progress:
    progress.set_postfix(loss='0.5000')
    for _ in range(60):
      progress.update()
  lines = [record.getMessage() for record in caplog.records]
  # A line every tenth of the 60 steps still to do.
  assert len(lines) == 10
  assert lines[0].startswith('Training: 46/100 steps (46%), ')
  assert lines[0].endswith(', loss 0.5000')
  assert 'ETA' in lines[0]
  assert lines[-1].startswith('Training: 100/100 steps (100%)')


def test_quick_work_logs_its_last_line_only(caplog, monkeypatch):
  # Checking a thousand files in a second logged ten lines.
  caplog.set_level(logging.INFO, logger='segsort.progress')
  monkeypatch.setattr(console.time, 'monotonic', _Clock(0.001))
  for _ in console.LineProgress(range(1000), desc='Checking', unit='file'):
    pass
  lines = [record.getMessage() for record in caplog.records]
  assert len(lines) == 1
  assert lines[0].startswith('Checking: 1000/1000 files (100%)')


def test_line_progress_disabled_prints_nothing(caplog):
  caplog.set_level(logging.INFO, logger='segsort.progress')
  assert list(console.LineProgress(range(5), disable=True)) == list(range(5))
  assert not caplog.records


def test_progress_is_line_progress_off_a_terminal():
  # pytest captures stderr, so it is not a terminal here.
  assert isinstance(console.progress(range(3)), console.LineProgress)


def test_quiet_tensorflow_sets_the_log_level_unless_verbose(monkeypatch):
  monkeypatch.delenv('TF_CPP_MIN_LOG_LEVEL', raising=False)
  monkeypatch.setenv(console.VERBOSE_TF_VARIABLE, '1')
  console.quiet_tensorflow()
  assert 'TF_CPP_MIN_LOG_LEVEL' not in os.environ
  monkeypatch.setenv(console.VERBOSE_TF_VARIABLE, '0')
  console.quiet_tensorflow()
  assert os.environ['TF_CPP_MIN_LOG_LEVEL'] == '2'


def _environment_without_tensorflow_settings():
  """This process's environment without the variables quiet_tensorflow
  reads, as a user's shell would give it."""
  return {
    name: value
    for name, value in os.environ.items()
    if name not in ('TF_CPP_MIN_LOG_LEVEL', console.VERBOSE_TF_VARIABLE)
  }


def test_tensorflow_starts_silently():
  environment = _environment_without_tensorflow_settings()
  result = subprocess.run(
    [
      sys.executable,
      '-c',
      'from segsort import console; '
      'console.quiet_tensorflow(); import tensorflow as tf; '
      'print(int(tf.reduce_sum(tf.ones([3]))))',
    ],
    cwd=REPOSITORY,
    env=environment,
    capture_output=True,
    text=True,
    check=True,
    timeout=300,
  )
  assert result.stdout == '3\n'
  assert result.stderr == ''


@pytest.mark.parametrize(
  'entry_point, flags',
  [
    ('segsort.export', ['--output_dir', 'OUT/saved_model']),
    (
      'segsort.inference_softmax',
      [
        '--data_dir',
        'OUT',
        '--data_list',
        'OUT/list.txt',
        '--save_dir',
        'OUT/predictions',
      ],
    ),
  ],
)
def test_a_failing_command_prints_one_line_and_no_tensorflow_banner(
  tmp_path, entry_point, flags
):
  # The checkpoint is missing: TensorFlow is loaded by then, so its C++
  # start-up lines would show if the command did not silence them.
  (tmp_path / 'list.txt').write_text('a.jpg\n')
  result = subprocess.run(
    [sys.executable, '-m', entry_point, '--restore_from', str(tmp_path / 'run')]
    + [flag.replace('OUT', str(tmp_path)) for flag in flags],
    cwd=tmp_path,
    env={
      **{
        name: value
        for name, value in os.environ.items()
        if name != 'TF_CPP_MIN_LOG_LEVEL'  # set by conftest.py
      },
      'PYTHONPATH': REPOSITORY,
    },
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert result.returncode != 0
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: '), result.stderr


def test_lines_logged_before_absl_starts_are_dropped_below_the_level(
  capfd, monkeypatch
):
  monkeypatch.setenv('TF_CPP_MIN_LOG_LEVEL', '2')
  # pylint: disable-next=protected-access
  with console._stderr_below_level_dropped():
    os.write(
      2,
      b'WARNING: All log messages before absl::InitializeLog() is called '
      b'are written to STDERR\n'
      b'I0000 00:00:1796131733.504740   17308 port.cc:153] oneDNN custom '
      b'operations are on.\n'
      b'I0000 00:00:1796131755.370918   17382 cpu_feature_guard.cc:227] This '
      b'TensorFlow binary is optimized\n'
      b'To enable the following instructions: AVX2, in other operations\n'
      b'W0000 00:00:1796131755.370918   17382 some.cc:1] a warning\n'
      b'E0000 00:00:1796131755.370918   17382 some.cc:2] an error\n'
      b'a line of Python\n',
    )
  assert capfd.readouterr().err == (
    'E0000 00:00:1796131755.370918   17382 some.cc:2] an error\n'
    'a line of Python\n'
  )


def test_fast_rates_are_written_without_an_exponent(monkeypatch):
  monkeypatch.setattr(console.time, 'monotonic', _Clock(0.001))
  progress = console.LineProgress(total=100, desc='Checking', unit='file')
  progress.n = 50
  assert '50000 files/s' in progress.format_line(progress._start + 0.001)  # pylint: disable=protected-access


def test_importing_the_api_prints_nothing():
  # TensorFlow's start-up lines (oneDNN, CPU features) came twice.
  environment = _environment_without_tensorflow_settings()
  result = subprocess.run(
    [sys.executable, '-c', 'from segsort import api'],
    cwd=REPOSITORY,
    env=environment,
    capture_output=True,
    text=True,
    timeout=300,
    check=True,
  )
  assert result.stderr == ''
