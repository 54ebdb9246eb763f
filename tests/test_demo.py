"""The CPU demo runs end to end (with few steps) and writes its summary."""

import json
import os
import subprocess

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_demo_writes_summary_predictions_and_explanation(tmp_path):
  out = tmp_path / 'demo'
  completed = subprocess.run(
    ['bash', 'bashscripts/demo/run_demo.sh'],
    cwd=_ROOT,
    capture_output=True,
    text=True,
    timeout=600,
    check=False,
    env=dict(os.environ, OUT=str(out), NUM_STEPS='10'),
  )
  assert completed.returncode == 0, completed.stderr[-3000:]
  summary = json.loads((out / 'summary.json').read_text())
  assert sorted(summary) == ['segsort', 'segsort_unsup', 'softmax']
  for method, row in summary.items():
    assert 0 <= row['miou'] <= 1 and 0 <= row['boundary_f'] <= 1, method
    assert row['seconds'] >= 0
    predictions = os.listdir(out / method / 'results' / 'val' / 'color')
    assert len(predictions) == 24
  assert (out / 'explain' / 'val_000000.png').stat().st_size > 0
  assert 'boundary F' in completed.stdout
