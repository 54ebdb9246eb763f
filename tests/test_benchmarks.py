"""The benchmark scripts run end to end at tiny sizes and print their figures."""

import os
import re
import subprocess
import sys

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(script, *flags):
  result = subprocess.run(
    [sys.executable, os.path.join('benchmarks', script), *flags],
    cwd=REPOSITORY,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-2000:]
  return result.stdout


def test_train_step_benchmark_prints_step_and_loss_times():
  output = _run(
    'benchmark_train_step.py',
    '--backbone', 'mini',
    '--batch_size', '2',
    '--input_size', '48,48',
    '--is_training',
    '--steps', '1',
    '--warmup_steps', '1',
  )  # fmt: skip
  assert re.search(r'train step .*: +[0-9.]+ ms/step', output), output
  assert re.search(r'add_segsort_loss .*: +[0-9.]+ ms/step', output), output


def test_loss_benchmark_prints_both_compilations():
  output = _run(
    'benchmark_segsort_loss.py',
    '--batch_size', '2',
    '--size', '12',
    '--steps', '1',
    '--repeats', '1',
  )  # fmt: skip
  assert 'tf.function: ' in output and 'XLA (jit_compile=True): ' in output
  assert output.count('peak memory') == 2, output
  assert re.search(r'XLA / tf\.function, .*: median [0-9.]+ \(', output), output
