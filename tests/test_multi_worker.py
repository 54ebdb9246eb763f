"""Two worker processes on this machine train one run through TF_CONFIG."""

import json
import os
import socket
import subprocess
import sys

from tools import make_synthetic_voc

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for sock in sockets:
    sock.bind(('localhost', 0))
  ports = [sock.getsockname()[1] for sock in sockets]
  for sock in sockets:
    sock.close()
  return ports


def test_two_workers_train_resume_and_the_chief_saves(tmp_path):
  lists = make_synthetic_voc.make_synthetic_voc(
    str(tmp_path / 'data'), num_train=8, num_val=0, size=64, seed=3
  )
  snapshot_dir = tmp_path / 'run'

  def train(num_steps, extra_flags=()):
    extra_flags = list(extra_flags)
    cluster = {'worker': ['localhost:%d' % port for port in _free_ports(2)]}
    workers = []
    for index in range(2):
      environment = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL='2',
        TF_CONFIG=json.dumps(
          {'cluster': cluster, 'task': {'type': 'worker', 'index': index}}
        ),
      )
      workers.append(
        subprocess.Popen(
          [
            sys.executable,
            '-m',
            'segsort.train_segsort',
            '--backbone',
            'mini',
            '--data_dir',
            str(tmp_path / 'data'),
            '--data_list',
            lists['train'],
            '--snapshot_dir',
            str(snapshot_dir),
            '--batch_size',
            '4',
            '--input_size',
            '64,64',
            '--num_steps',
            str(num_steps),
            '--num_classes',
            '4',
            '--save_pred_every',
            '2',
            '--update_tb_every',
            '2',
            '--is_training',
          ]
          + extra_flags,
          cwd=_ROOT,
          env=environment,
          stdout=subprocess.PIPE,
          stderr=subprocess.STDOUT,
          text=True,
        )
      )
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    for worker, output in zip(workers, outputs):
      assert worker.returncode == 0, output[-3000:]
    return outputs

  train(4)
  saved = sorted(
    name for name in os.listdir(snapshot_dir) if name.endswith('.index')
  )
  assert saved == ['ckpt-2.index', 'ckpt-4.index']
  config = json.loads((snapshot_dir / 'config.json').read_text())
  assert config['batch_size'] == 4 and config['backbone'] == 'mini'

  # Resumed, every worker rebuilds its stream at the step reached.
  outputs = train(6, ['--overwrite_config'])
  assert all(
    'Resumed %s at step 4' % (snapshot_dir / 'ckpt-4') in output
    for output in outputs
  ), outputs[0][-3000:]
  saved = sorted(
    name for name in os.listdir(snapshot_dir) if name.endswith('.index')
  )
  assert saved == ['ckpt-2.index', 'ckpt-4.index', 'ckpt-6.index']
