"""Tests of replayable runs: the environment and absolute paths in
config.json, --config RUN/config.json and @FILE flags."""

import json
import os
import platform
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from segsort import config as config_lib
from segsort import inference_flags
from segsort import inference_segsort
from segsort import run_record
from tools import make_synthetic_voc

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOG_LINE = re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ')


def _git_head():
  try:
    return subprocess.run(
      ['git', '-C', REPOSITORY, 'rev-parse', 'HEAD'],
      capture_output=True,
      text=True,
      check=True,
    ).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return None


def test_config_json_records_versions_commit_and_absolute_paths(
  tmp_path, monkeypatch
):
  monkeypatch.chdir(tmp_path)
  config = config_lib.TrainConfig(
    backbone='mini',
    data_dir='data/',
    data_list='data/../lists/train.txt',
    snapshot_dir='runs/a',
    restore_from='',
  )
  path = config_lib.save_config(config, str(tmp_path))
  with open(path) as stream:
    saved = json.load(stream)
  assert saved['data_dir'] == str(tmp_path / 'data')
  assert saved['data_list'] == str(tmp_path / 'lists' / 'train.txt')
  assert saved['snapshot_dir'] == str(tmp_path / 'runs' / 'a')
  assert saved['restore_from'] == ''
  environment = saved['environment']
  assert environment['python'] == platform.python_version()
  assert environment['tensorflow'] == tf.__version__
  assert environment['keras'] == keras.__version__
  assert environment['numpy'] == np.__version__
  head = _git_head()
  if head is None:
    assert environment['git'] is None
  else:
    assert environment['git']['commit'] == head
    assert isinstance(environment['git']['dirty'], bool)
  # Read back: the same run, the environment left out.
  assert config_lib.load_config(path) == config_lib.TrainConfig(
    **dict(
      config.to_dict(),
      data_dir=saved['data_dir'],
      data_list=saved['data_list'],
      snapshot_dir=saved['snapshot_dir'],
    )
  )


def test_git_commit_outside_a_checkout_is_none(tmp_path):
  assert run_record.git_commit(str(tmp_path)) is None


def _saved_run(tmp_path, **fields):
  config = config_lib.TrainConfig(
    mode=fields.pop('mode', 'segsort'),
    backbone='mini',
    batch_size=4,
    input_size=(64, 80),
    num_steps=7,
    data_dir=str(tmp_path / 'data'),
    random_mirror=True,
    snapshot_dir=str(tmp_path / 'run'),
    **fields,
  )
  return config_lib.save_config(config, str(tmp_path)), config


def test_a_run_starts_from_a_saved_config_with_flags_overriding(tmp_path):
  path, saved = _saved_run(tmp_path, learning_rate=0.25)
  config = config_lib.TrainConfig.from_flags(
    [
      '--config',
      path,
      '--batch_size',
      '2',
      '--snapshot_dir',
      str(tmp_path / 'replay'),
    ]
  )
  assert config == config_lib.TrainConfig(
    **dict(saved.to_dict(), batch_size=2, snapshot_dir=str(tmp_path / 'replay'))
  )
  assert config.learning_rate == 0.25 and config.random_mirror
  # The run's directory names its config.json too.
  assert config_lib.TrainConfig.from_flags(['--config', str(tmp_path)]) == saved


def test_a_replayed_config_does_not_replay_overwrite_config(tmp_path):
  # Recorded by a run that replaced its config, it let a replay take over
  # another run's folder without a word.
  path, _ = _saved_run(tmp_path, overwrite_config=True)
  assert not config_lib.TrainConfig.from_flags(
    ['--config', path]
  ).overwrite_config
  assert config_lib.TrainConfig.from_flags(
    ['--config', path, '--overwrite_config']
  ).overwrite_config


@pytest.mark.parametrize(
  'content, expected',
  [
    (None, 'No training config at'),
    ('{"mode": "segsort", "batch_size": ', 'Invalid training config'),
    ('[1, 2]', 'expected a JSON object'),
    ('{"mode": "segsort", "colour": 1}', 'colour'),
  ],
)
def test_a_bad_config_file_is_one_line_naming_it(
  tmp_path, capsys, content, expected
):
  path = tmp_path / 'config.json'
  if content is not None:
    path.write_text(content)
  with pytest.raises(SystemExit) as exited:
    config_lib.TrainConfig.from_flags(['--config', str(path)])
  assert exited.value.code == 2
  error = capsys.readouterr().err.strip().splitlines()[-1]
  assert 'error: argument --config: ' in error
  assert str(path) in error and expected in error
  assert 'Traceback' not in error


def test_a_config_of_another_mode_is_refused(tmp_path, capsys):
  path, _ = _saved_run(tmp_path, mode='softmax')
  with pytest.raises(SystemExit):
    config_lib.TrainConfig.from_flags(['--config', path], mode='segsort')
  error = capsys.readouterr().err.strip().splitlines()[-1]
  assert 'holds a softmax run, not segsort' in error and path in error


def test_flags_are_read_from_a_file(tmp_path):
  flags_path = tmp_path / 'flags.txt'
  flags_path.write_text(
    '# stage 1\n'
    '--data_dir "%s" --num_steps 30   # trailing comment\n'
    '\n'
    '--random_mirror\n' % (tmp_path / 'my data')
  )
  config = config_lib.TrainConfig.from_flags(
    ['@' + str(flags_path), '--num_steps', '40']
  )
  assert config.data_dir == str(tmp_path / 'my data')
  assert config.num_steps == 40 and config.random_mirror
  parser = inference_segsort.build_parser('', (1.0,), (720, 720))
  (tmp_path / 'inference.txt').write_text(
    '--data_dir d --data_list l --restore_from r --save_dir s\n'
    '--prototype_dir p --k_in_nearest_neighbors 5\n'
  )
  args = inference_flags.parse_flags(
    parser, ['@' + str(tmp_path / 'inference.txt')]
  )
  assert (args.data_dir, args.k_in_nearest_neighbors) == ('d', 5)


def test_a_missing_flags_file_is_one_line_naming_it(tmp_path, capsys):
  missing = str(tmp_path / 'nothing.txt')
  with pytest.raises(SystemExit) as exited:
    config_lib.TrainConfig.from_flags(['@' + missing])
  assert exited.value.code == 2
  error = capsys.readouterr().err.strip().splitlines()[-1]
  assert 'error: ' in error and missing in error


def test_flag_files_that_name_each_other_are_one_line(tmp_path, capsys):
  first, second = tmp_path / 'first.txt', tmp_path / 'second.txt'
  first.write_text('--batch_size 2\n@%s\n' % second)
  second.write_text('@%s\n' % first)
  with pytest.raises(SystemExit) as exited:
    config_lib.TrainConfig.from_flags(['@%s' % first])
  assert exited.value.code == 2
  error = capsys.readouterr().err.strip().splitlines()
  assert len(error) == 1
  assert 'error: flag files name flag files more than 8 deep' in error[0]
  assert str(first) in error[0] or str(second) in error[0]


def _train(arguments, log_path):
  with open(log_path, 'w') as log:
    subprocess.run(
      [sys.executable, '-m', 'segsort.train_segsort'] + arguments,
      cwd=REPOSITORY,
      stdout=log,
      stderr=subprocess.STDOUT,
      check=True,
      timeout=600,
    )
  with open(log_path) as stream:
    return stream.read()


def test_training_from_a_flags_file_and_its_replay_log_whole_lines(tmp_path):
  root = str(tmp_path / 'voc')
  lists = make_synthetic_voc.make_synthetic_voc(
    root, num_train=4, num_val=0, size=(64, 72), seed=0
  )
  flags_path = tmp_path / 'flags.txt'
  flags_path.write_text(
    '--data_dir %s --data_list %s\n'
    '--backbone mini --input_size 48,48 --batch_size 2 --num_classes 8\n'
    '--num_steps 4 --update_tb_every 2 --save_pred_every 4\n'
    '--kmeans_iterations 2 --snapshot_dir %s\n'
    % (root, lists['train'], tmp_path / 'run')
  )
  log = _train(['@' + str(flags_path)], tmp_path / 'log.txt')
  assert '\r' not in log
  lines = log.splitlines()
  # Every line is a log line: no bar frames, no TensorFlow start-up lines,
  # and no log line glued to anything else.
  assert lines and all(LOG_LINE.match(line) for line in lines), log
  # A line at each step done a second or more after the last line
  # (segsort.console.MIN_LINE_SECONDS), and at the end.
  assert 1 <= len(re.findall(r'INFO Training: \d+/4 steps', log)) <= 4, log
  assert 'INFO Training: 4/4 steps (100%)' in log
  assert 'INFO step 4: ' in log
  # The last progress line shows the last step's loss, not an earlier one's.
  last_loss = re.search(r'INFO step 4: .*total_loss ([0-9.]+)', log).group(1)
  assert re.search(
    r'INFO Training: 4/4 steps \(100%%\).*loss %s' % re.escape(last_loss), log
  ), log

  saved = config_lib.load_config(str(tmp_path / 'run'))
  replay_log = _train(
    [
      '--config',
      str(tmp_path / 'run' / 'config.json'),
      '--snapshot_dir',
      str(tmp_path / 'replay'),
      '--num_steps',
      '2',
    ],
    tmp_path / 'replay.txt',
  )
  assert 'INFO Training: 2/2 steps' in replay_log
  replayed = config_lib.load_config(str(tmp_path / 'replay'))
  assert replayed == config_lib.TrainConfig(
    **dict(saved.to_dict(), snapshot_dir=str(tmp_path / 'replay'), num_steps=2)
  )


def test_a_badly_quoted_flags_line_names_its_file(tmp_path, capsys):
  # The message named the line only.
  flag_file = tmp_path / 'flags.txt'
  flag_file.write_text('--batch_size 2\n--data_dir "unclosed\n')
  with pytest.raises(SystemExit) as exited:
    config_lib.TrainConfig.from_flags(['@%s' % flag_file])
  assert exited.value.code == 2
  error = capsys.readouterr().err.strip().splitlines()[-1]
  assert error.endswith(
    'error: cannot read the flags line \'--data_dir "unclosed\' of %s: '
    'No closing quotation' % flag_file
  ), error
