"""The README's library example runs as printed."""

import os
import re
import subprocess
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_library_example_runs():
  with open(os.path.join(_ROOT, 'README.md')) as stream:
    readme = stream.read()
  blocks = re.findall(r'```python\n(.*?)```', readme, flags=re.DOTALL)
  example = [block for block in blocks if 'add_segsort_loss' in block]
  assert len(example) == 1, 'expected one python example using the loss'
  completed = subprocess.run(
    [sys.executable, '-c', example[0]],
    cwd=_ROOT,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
    env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'),
  )
  assert completed.returncode == 0, completed.stderr[-3000:]
  loss, shape = completed.stdout.strip().splitlines()[-1].split(' ', 1)
  assert float(loss) > 0
  assert shape == '(2, 42, 42)'
