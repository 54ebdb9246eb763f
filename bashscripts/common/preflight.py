"""Checks the CPU pipeline's settings and data before it does any work.

    python bashscripts/common/preflight.py --data_dir DATAROOT \
        --train_list TRAIN_LIST --val_list VAL_LIST NUM_CLASSES=11 \
        NUM_STEPS=2000 CROP=160,160 SEEDS="0 1 2" METHODS="segsort softmax" ...

bashscripts/common/cpu_pipeline.sh runs it first, so that a setting the last
method would refuse, or a bad file of the validation list, stops the run
before the first training step rather than after an hour of it. Settings
come as NAME=VALUE arguments (the environment variables of the demo and the
CamVid benchmark) and are read with the flag types of the commands they
become; every problem is named by its variable, on one line. Then every line
of the training and validation lists is read (segsort.data.check_data_list:
missing, undecodable or mismatched files, labels outside [0, num_classes)),
with the oversegmentations of unsupervised SegSort's list when asked for,
and the class names of DATAROOT/classes.txt are counted. Without lists
(a set the demo is about to generate) only the settings are checked.

Exits with status 1 and one `error:` line naming every problem found.
"""

import argparse
import difflib
import os
import shlex
import sys

sys.path.insert(
  0,
  os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
)

from segsort import config as config_lib  # pylint: disable=g-import-not-at-top
from segsort import console  # pylint: disable=g-import-not-at-top
from segsort import errors  # pylint: disable=g-import-not-at-top
from segsort import flags  # pylint: disable=g-import-not-at-top
from segsort import inference_flags  # pylint: disable=g-import-not-at-top
from tools import make_oversegmentation  # pylint: disable=g-import-not-at-top
from tools import make_synthetic_voc  # pylint: disable=g-import-not-at-top

METHODS = ('segsort', 'segsort_unsup', 'softmax')
# The classes tools/make_synthetic_voc.py can draw (background included).
GENERATED_CLASSES = (2, make_synthetic_voc.MAX_NUM_CLASSES)


def _choice(choices):
  def parse(text):
    if text not in choices:
      raise argparse.ArgumentTypeError(
        'expected one of %s, got %r' % (', '.join(choices), text)
      )
    return text

  return parse


def _switch(text):
  """A 0/1 setting, as a bool."""
  if text not in ('0', '1'):
    raise argparse.ArgumentTypeError('must be 0 or 1')
  return text == '1'


# Every setting: the training config field it sets (None for inference
# settings) and the flag type of the command it becomes.
SETTINGS = {
  'BACKBONE': ('backbone', _choice(config_lib.BACKBONES)),
  'BATCH_SIZE': ('batch_size', flags.integer(1)),
  # Labels are 8-bit PNGs whose 255 is the ignore label.
  'NUM_CLASSES': ('num_classes', flags.integer(1, 255)),
  'CROP': ('input_size', flags.size_pair),
  'NUM_STEPS': ('num_steps', flags.integer(1, config_lib.MAX_STEPS)),
  'LEARNING_RATE': ('learning_rate', flags.real(0)),
  'HEAD_LEARNING_RATE_MULTIPLIER': (
    'head_learning_rate_multiplier',
    flags.real(above=0),
  ),
  'WEIGHT_DECAY': ('weight_decay', flags.real(0)),
  'WARMUP_STEPS': ('warmup_steps', flags.integer(0)),
  'EMA_DECAY': ('ema_decay', flags.real(0, below=1)),
  'EMBEDDING_DIM': ('embedding_dim', flags.integer(1)),
  'CONCENTRATION': ('concentration', flags.real(above=0)),
  'NUM_CLUSTERS': ('num_clusters', flags.cluster_grid),
  'KMEANS_GRID': ('kmeans_grid', _choice(config_lib.KMEANS_GRIDS)),
  'KMEANS_ITERATIONS': ('kmeans_iterations', flags.integer(0)),
  'NUM_BANKS': ('num_banks', flags.integer(0)),
  'SEGMENT_GROUPS': ('segment_groups', _switch),
  'RANDOM_COLOUR': ('random_colour', _switch),
  'WINDOW': (None, flags.size_pair),
  'PROTOTYPE_CLUSTERS': (None, flags.cluster_grid),
  'INFERENCE_CLUSTERS': (None, flags.cluster_grid),
  'K_IN_NEAREST_NEIGHBORS': (None, flags.integer(1)),
  'COLOUR_WEIGHT': (
    None,
    flags.real(0, inference_flags.MAX_COLOUR_WEIGHT),
  ),
  # The CamVid benchmark's, for the oversegmentations it makes.
  'OVERSEGMENTATION_THRESHOLD': (None, flags.real(0, 1)),
  'SEGMENT_GROUP_THRESHOLD': (None, flags.real(0, 1)),
}


# Settings that are lists of words, and the type of each word.
LIST_SETTINGS = {
  # np.random's seeds are 32-bit.
  'SEEDS': flags.integer(0, 2**32 - 1),
  'METHODS': _choice(METHODS),
}


# The other variables the pipeline reads.
_OTHER_VARIABLES = (
  'DATAROOT',
  'OUT',
  'TRAIN_LIST',
  'VAL_LIST',
  'UNSUP_TRAIN_LIST',
  'SEGSORT_DRY_RUN',
  'PYTHON',
)


# Names that other tools give to a setting of the pipeline, too unlike it
# for the spelling check of misspelt_variables.
_SYNONYMS = {
  'DATA_DIR': 'DATAROOT',
  'DATASET': 'DATAROOT',
  'OUTPUT_DIR': 'OUT',
  'OUT_DIR': 'OUT',
  'SNAPSHOT_DIR': 'OUT',
  'LR': 'LEARNING_RATE',
  'STEPS': 'NUM_STEPS',
  'ITERATIONS': 'NUM_STEPS',
  'INPUT_SIZE': 'CROP',
  'CROP_SIZE': 'CROP',
  'K': 'K_IN_NEAREST_NEIGHBORS',
  'KNN': 'K_IN_NEAREST_NEIGHBORS',
  'WD': 'WEIGHT_DECAY',
  'KAPPA': 'CONCENTRATION',
}


def misspelt_variables(environment):
  """Notes on environment variables that look like a misspelt setting.

  A misspelt setting (COLOR_WEIGHT, NUM_STEP) or another tool's name for
  one (DATA_DIR, LR) is not read, so the run silently uses the default; the
  note names the setting it resembles.

  Args:
    environment: A mapping of variable names, e.g. os.environ.

  Returns:
    A list of one-line notes, sorted by variable.
  """
  known = set(SETTINGS) | set(LIST_SETTINGS) | set(_OTHER_VARIABLES)
  notes = []
  for name in sorted(environment):
    if name in known:
      continue
    # Capitals matter to the shell: num_steps is not NUM_STEPS.
    resembled = (
      [_SYNONYMS[name.upper()]]
      if name.upper() in _SYNONYMS
      else (difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.85))
    )
    if resembled:
      notes.append(
        '%s is not a setting of the pipeline and is ignored; did you mean '
        '%s?' % (name, resembled[0])
      )
  return notes


def empty_setting_problems(empty_variables):
  """The problem of settings given empty (NUM_STEPS= ...), naming them.

  The scripts read an empty setting as unset (bash's ${NAME:-default}), so
  `NUM_STEPS=$STEPS` with STEPS unset would silently train the default.

  Args:
    empty_variables: The names of the variables that were set but empty
      when the script started.
  """
  settings = set(SETTINGS) | set(LIST_SETTINGS) | {'DATAROOT', 'OUT'}
  empty = sorted(set(empty_variables) & settings)
  if not empty:
    return []
  return [
    '%s set but empty: give %s a value, or unset %s for %s default%s'
    % (
      ', '.join(empty),
      'it' if len(empty) == 1 else 'each',
      'it' if len(empty) == 1 else 'them',
      'its' if len(empty) == 1 else 'their',
      '' if len(empty) == 1 else 's',
    )
  ]


def unused_setting_notes(values):
  """Notes on switched-on settings that no method of METHODS reads.

  Args:
    values: The parsed settings, METHODS among them.

  Returns:
    A list of one-line notes: SEGMENT_GROUPS=1 without segsort_unsup.
  """
  if values.get('SEGMENT_GROUPS') and 'segsort_unsup' not in values.get(
    'METHODS', ()
  ):
    return [
      'SEGMENT_GROUPS=1 is read by segsort_unsup alone, which METHODS '
      'leaves out'
    ]
  return []


def segment_group_problems(data_dir, values, generated_set=False):
  """SEGMENT_GROUPS=1 with groups the grouping step would refuse or waste.

  A cut of the contours at a threshold not above the segments' own makes
  every group one segment: the loss would be the original's, while the run
  is recorded as trained with groups. The segments' threshold is that of
  DATAROOT/VOC2012/hed's settings record; while the folder is still to be
  made, OVERSEGMENTATION_THRESHOLD, or the generated set's. Groups already
  in VOC2012/hed_groups at another threshold would stop the run at the
  grouping step, after the output folder is made.

  Returns:
    A list of problems, each naming the thresholds and what to do.
  """
  if not values.get('SEGMENT_GROUPS') or 'segsort_unsup' not in values.get(
    'METHODS', ()
  ):
    return []
  group_threshold = values.get('SEGMENT_GROUP_THRESHOLD')
  if group_threshold is None:
    return []
  voc_dir = os.path.join(data_dir, 'VOC2012')
  hed_dir = os.path.join(voc_dir, 'hed')
  problems = []
  try:
    if os.path.isdir(hed_dir):
      record = make_oversegmentation.read_settings_record(hed_dir) or {}
      segments_threshold = record.get('threshold')
      cut = 'the threshold %s at which the segments of %s were cut' % (
        segments_threshold,
        hed_dir,
      )
    elif generated_set:
      segments_threshold = make_oversegmentation.DEFAULT_THRESHOLD
      cut = "the threshold %s at which the generated set's segments are cut" % (
        segments_threshold
      )
    else:
      segments_threshold = values.get('OVERSEGMENTATION_THRESHOLD')
      cut = (
        'OVERSEGMENTATION_THRESHOLD=%s, at which the segments will be cut'
        % (segments_threshold)
      )
    if segments_threshold is not None and group_threshold <= segments_threshold:
      problems.append(
        'SEGMENT_GROUP_THRESHOLD=%s is not above %s: every group would be one '
        'segment' % (group_threshold, cut)
      )
    groups_dir = os.path.join(voc_dir, 'hed_groups')
    groups = None
    if os.path.isdir(groups_dir):
      groups = make_oversegmentation.read_settings_record(groups_dir)
  except SystemExit as error:
    return problems + [str(error).replace('error: ', '', 1)]
  if groups and groups.get('threshold') not in (None, group_threshold):
    problems.append(
      '%s holds groups cut at threshold %s, not SEGMENT_GROUP_THRESHOLD=%s: '
      'set SEGMENT_GROUP_THRESHOLD=%s to train with them, or remove the '
      'folder to have it made again'
      % (groups_dir, groups['threshold'], group_threshold, groups['threshold'])
    )
  return problems


def oversegmentation_threshold_problems(data_dir, values, threshold_given):
  """An OVERSEGMENTATION_THRESHOLD that DATAROOT/VOC2012/hed was not cut at.

  The benchmark makes hed/ only when it is missing: a threshold set for a
  folder cut at another would train unsupervised SegSort on the old
  segments while the user believes otherwise.

  Args:
    data_dir: DATAROOT.
    values: The parsed settings.
    threshold_given: Whether the user set OVERSEGMENTATION_THRESHOLD (else
      it holds the benchmark's default, which any existing folder beats).

  Returns:
    (problems, notes): a threshold other than the folder's recorded one is
    a problem; one the folder has no record of is a note.
  """
  threshold = values.get('OVERSEGMENTATION_THRESHOLD')
  hed_dir = os.path.join(data_dir, 'VOC2012', 'hed')
  if (
    not threshold_given
    or threshold is None
    or 'segsort_unsup' not in values.get('METHODS', ())
    or not os.path.isdir(hed_dir)
  ):
    return [], []
  try:
    record = make_oversegmentation.read_settings_record(hed_dir) or {}
  except SystemExit as error:
    return [str(error).replace('error: ', '', 1)], []
  made_at = record.get('threshold')
  if made_at is None:
    made_by = (
      'was cut into %s segments per image' % record['num_segments']
      if record.get('num_segments')
      else 'records no threshold'
    )
    return [], [
      'OVERSEGMENTATION_THRESHOLD=%s is not used: %s exists and %s (remove '
      'it to have it made at this threshold)' % (threshold, hed_dir, made_by)
    ]
  if made_at != threshold:
    return [
      'OVERSEGMENTATION_THRESHOLD=%s: %s holds segments cut at threshold %s '
      '(its %s); unset OVERSEGMENTATION_THRESHOLD to train on them, or '
      'remove the folder to have it made at %s'
      % (
        threshold,
        hed_dir,
        made_at,
        make_oversegmentation.SETTINGS_FILE,
        threshold,
      )
    ], []
  return [], []


def _distinct_words(text, parse):
  """The words of a list setting (SEEDS, METHODS), each parsed once."""
  words = text.split()
  if not words:
    raise argparse.ArgumentTypeError('names none')
  values = [parse(word) for word in words]
  # A seed named twice (also as 1 and 01) would count one model twice in
  # the mean and spread.
  repeated = sorted({str(value) for value in values if values.count(value) > 1})
  if repeated:
    raise argparse.ArgumentTypeError(
      'names %s more than once' % ', '.join(repeated)
    )
  return values


def setting_problems(settings):
  """Problems of NAME -> text settings, each naming its variable.

  Args:
    settings: A dict of the pipeline's variables (unknown names are
      refused: a misspelt one would otherwise be ignored).

  Returns:
    (problems, values): descriptions of every problem, and the parsed
    values of the settings without one.
  """
  problems, values = [], {}
  for name, text in settings.items():
    try:
      if name in LIST_SETTINGS:
        values[name] = _distinct_words(text, LIST_SETTINGS[name])
      elif name in SETTINGS:
        values[name] = SETTINGS[name][1](text)
      else:
        problems.append('%s is not a setting of the pipeline' % name)
    except argparse.ArgumentTypeError as error:
      problems.append('%s=%s: %s' % (name, text, error))
  return problems, values


# The training fields the pipeline passes to each method's command (the
# rest keep their defaults), as cpu_pipeline_train does.
_SHARED_FIELDS = (
  'backbone',
  'batch_size',
  'num_classes',
  'input_size',
  'num_steps',
  'learning_rate',
  'head_learning_rate_multiplier',
  'weight_decay',
  'warmup_steps',
  'ema_decay',
  'random_colour',
)
_METHOD_FIELDS = {
  'segsort': _SHARED_FIELDS
  + (
    'embedding_dim',
    'concentration',
    'num_clusters',
    'kmeans_grid',
    'kmeans_iterations',
    'num_banks',
  ),
  'segsort_unsup': _SHARED_FIELDS
  + ('embedding_dim', 'concentration', 'segment_groups'),
  'softmax': _SHARED_FIELDS,
}


def _variable_of_field(values):
  """The pipeline variable of every training field the settings give."""
  return {SETTINGS[name][0]: name for name in values if name in SETTINGS}


def _method_fields(method, values):
  """The training fields the settings give one method's command."""
  variable_of_field = _variable_of_field(values)
  fields = {
    field: values[variable_of_field[field]]
    for field in _METHOD_FIELDS[method]
    if field in variable_of_field
  }
  if method == 'segsort_unsup':
    fields['num_banks'] = 0
  return fields


def config_problems(values, refused=()):
  """Problems of the training configs the settings make, one per method.

  Combinations no single setting shows (e.g. a k-means grid finer than a
  crop's embedding) are named as segsort.config words them, with the
  variable that sets each flag after it. A method one of whose settings is
  `refused` (already named as a problem) is not checked: its config would
  hold the trainer's default in its place, not the pipeline's, and be
  refused for a value the user never set.
  """
  variable_of_field = _variable_of_field(values)
  methods_of_problem = {}
  for method in values.get('METHODS', ()):
    if any(
      name in SETTINGS and SETTINGS[name][0] in _METHOD_FIELDS[method]
      for name in refused
    ):
      continue
    try:
      config_lib.TrainConfig(mode=method, **_method_fields(method, values))
    except ValueError as error:
      message = str(error).replace('Invalid training configuration: ', '')
      for field, variable in variable_of_field.items():
        message = message.replace(
          '--%s ' % field, '--%s (%s) ' % (field, variable)
        )
      methods_of_problem.setdefault(message, []).append(method)
  return [
    '%s: %s' % (', '.join(methods), message)
    for message, methods in methods_of_problem.items()
  ]


def seed_layout_notes(out, methods, seed_words):
  """Runs in OUT of the other layout, which these SEEDS do not reuse.

  One seed trains into OUT/METHOD, several into OUT/seed_SEED/METHOD
  (cpu_pipeline_run_dir): going from SEEDS=0 to SEEDS="0 1" trains seed 0
  again, silently, beside its finished run.

  Returns:
    One note per such run, saying where to move it to be reused.
  """
  if not out or not os.path.isdir(out) or not seed_words:
    return []
  notes = []
  for method in methods:
    if len(seed_words) > 1:
      single = os.path.join(out, method)
      if not os.path.exists(os.path.join(single, 'checkpoint')):
        continue
      try:
        seed = config_lib.load_config(single).random_seed
      except (OSError, ValueError):
        continue
      target = os.path.join(out, 'seed_%d' % seed, method)
      # Not when this layout holds a run of that seed already.
      if str(seed) in seed_words and not os.path.exists(
        os.path.join(target, 'checkpoint')
      ):
        notes.append(
          '%s holds a finished run of seed %d, which SEEDS="%s" trains '
          'again into %s; move it there first to reuse it'
          % (
            single,
            seed,
            ' '.join(seed_words),
            target,
          )
        )
    else:
      several = os.path.join(out, 'seed_%s' % seed_words[0], method)
      if os.path.exists(
        os.path.join(several, 'checkpoint')
      ) and not os.path.exists(os.path.join(out, method, 'checkpoint')):
        notes.append(
          '%s holds a finished run of seed %s, which SEEDS=%s trains again '
          'into %s; move it there first to reuse it'
          % (
            several,
            seed_words[0],
            seed_words[0],
            os.path.join(out, method),
          )
        )
  return notes


def existing_run_problems(args, values, seed_words):
  """Runs in OUT that were trained with other settings than these.

  A rerun skips finished training and resumes the rest, so the trainer
  refuses a run directory whose config.json differs; before, that came
  only when the method's turn came, after the earlier methods' work, with
  advice (--snapshot_dir, --overwrite_config) a pipeline user cannot act
  on. The fields the pipeline sets are compared (its settings, DATAROOT,
  the seed and the training list); the trainer still checks the rest.

  Args:
    args: The parsed arguments: out (None checks nothing), data_dir,
      trains_on and unsup_trains_on (None: not compared).
    values: The parsed settings (SEEDS and METHODS among them).
    seed_words: SEEDS as written, which name the seeds' folders.

  Returns:
    Problems naming the variables that differ, one per difference (the
    runs that share it named together) and one per unreadable run.
  """
  methods = values.get('METHODS')
  if not args.out or not seed_words or not methods:
    return []
  variable_of_field = _variable_of_field(values)
  variable_of_field.update(
    data_dir='DATAROOT', random_seed='SEEDS', data_list='TRAIN_LIST'
  )
  problems = []
  runs_of_difference = {}
  for seed_word in seed_words:
    for method in methods:
      # As cpu_pipeline_run_dir lays them out.
      run_dir = os.path.join(
        args.out,
        *([] if len(seed_words) == 1 else ['seed_%s' % seed_word]),
        method,
      )
      # The trainer compares configs only once a checkpoint exists.
      if not os.path.exists(os.path.join(run_dir, 'checkpoint')):
        continue
      try:
        saved = config_lib.load_config(run_dir)
      except FileNotFoundError:
        problems.append(
          '%s holds a checkpoint without its config.json, so what it was '
          'trained with is unknown; remove that run to train it again' % run_dir
        )
        continue
      except ValueError as error:
        problems.append('%s; remove that run to train it again' % error)
        continue
      data_list = args.trains_on
      if method == 'segsort_unsup' and args.unsup_trains_on:
        data_list = args.unsup_trains_on
      now = config_lib.TrainConfig(
        mode=method,
        data_dir=args.data_dir,
        data_list=data_list or saved.data_list,
        random_seed=int(seed_word),
        **_method_fields(method, values),
      )
      difference = _difference_problem(
        run_dir, method, saved, now, args.out, variable_of_field
      )
      if difference:
        runs_of_difference.setdefault(difference, []).append(run_dir)
  return problems + _grouped_difference_problems(runs_of_difference)


def _difference_problem(run_dir, method, saved, now, out, variable_of_field):
  """How a run's saved config differs from the pipeline's.

  Returns:
    None when it does not; else (changes, advice): the differing variables
    with their old and new values, and what to do.
  """
  differences = [
    (field, old, new)
    for field, old, new in config_lib.config_differences(saved, now)
    if field in variable_of_field
  ]
  if not differences:
    return None
  # The folders above the run directory: OUT when the run was made.
  saved_out = saved.snapshot_dir
  for _ in os.path.relpath(run_dir, out).split(os.sep):
    saved_out = os.path.dirname(saved_out)
  advice = 'use another OUT'
  if all(
    _same_place_in_out(old, saved_out, new, out) for _, old, new in differences
  ):
    # The demo's generated set lies in OUT; the trainer refuses another
    # data_dir, however alike the files.
    advice = 'this OUT was copied or moved from %s: rerun it there' % (
      saved_out
    )
  changes = ', '.join(
    '%s %s -> %s'
    % (
      'UNSUP_TRAIN_LIST'
      if field == 'data_list' and method == 'segsort_unsup'
      else variable_of_field[field],
      _setting_text(old),
      _setting_text(new),
    )
    for field, old, new in differences
  )
  return changes, advice


def _grouped_difference_problems(runs_of_difference):
  """One problem per (changes, advice), naming all its runs once.

  Args:
    runs_of_difference: A dict {(changes, advice): [run directory, ...]},
      in the order the runs were found.
  """
  problems = []
  for (changes, advice), run_dirs in runs_of_difference.items():
    one = len(run_dirs) == 1
    problems.append(
      '%s %s trained with other settings (%s); %s, or remove %s to train '
      '%s again'
      % (
        ', '.join(run_dirs),
        'was' if one else 'were',
        changes,
        advice,
        'that run' if one else 'those runs',
        'it' if one else 'them',
      )
    )
  return problems


def _same_place_in_out(old, old_out, new, new_out):
  """Whether two paths name the same place inside a moved OUT."""
  if not isinstance(old, str) or not isinstance(new, str):
    return False
  old_inside = os.path.relpath(os.path.abspath(old), os.path.abspath(old_out))
  new_inside = os.path.relpath(os.path.abspath(new), os.path.abspath(new_out))
  return old_inside == new_inside and not old_inside.startswith(os.pardir)


def _setting_text(value):
  """A config value as its pipeline variable spells it (160,160 for a pair)."""
  if isinstance(value, (list, tuple)):
    return ','.join(str(item) for item in value)
  if isinstance(value, bool):
    return str(int(value))
  return str(value)


def class_name_problems(data_dir, num_classes):
  """A DATAROOT/classes.txt that the benchmark's reader would refuse."""
  # Imported here: segsort.metrics is not needed to check the settings.
  from segsort import metrics  # pylint: disable=g-import-not-at-top

  path = os.path.join(data_dir, 'classes.txt')
  if not os.path.lexists(path):
    return []
  try:
    metrics.read_class_names(path, num_classes)
  except ValueError as error:
    return [str(error).replace('(--num_classes)', '(NUM_CLASSES)')]
  return []


def _missing_oversegmentation_advice(args, problems):
  """What to do when VOC2012/hed/ lacks files of the list: it is made only
  when missing, so an interrupted run leaves it incomplete for good."""
  hed_dir = os.path.join(args.data_dir, 'VOC2012', 'hed')
  missing = [
    problem
    for problem in problems
    if ': missing file %s%s' % (hed_dir, os.sep) in problem
  ]
  if not missing:
    return []
  try:
    threshold = (make_oversegmentation.read_settings_record(hed_dir) or {}).get(
      'threshold'
    )
  except SystemExit:
    threshold = None
  return [
    '%s lacks the oversegmentations of %d image(s) of %s (an interrupted '
    'oversegmentation?): python -m tools.make_oversegmentation --data_dir '
    '%s %s makes the missing ones, or remove the folder to have it made '
    'again'
    % (
      hed_dir,
      len(missing),
      args.unsup_train_list,
      shlex.quote(args.data_dir),
      'with the threshold it was made at'
      if threshold is None
      else '--threshold %s' % threshold,
    )
  ]


def data_problems(args, num_classes, crop=None):
  """Every problem of the lists' lines and files (check_data_list), and a
  CROP far larger than the training images (every method trains with
  --random_scale)."""
  # Imported here: TensorFlow is not needed to check the settings.
  from segsort import data  # pylint: disable=g-import-not-at-top

  # (list, labels required, oversegmentations read, trains)
  checks = [
    (data_list, True, False, trains)
    for data_list, trains in ((args.train_list, True), (args.val_list, False))
    if data_list
  ]
  if args.unsup_train_list:
    checks.append(
      (args.unsup_train_list, False, args.with_oversegmentation, True)
    )
  problems = []
  for data_list, require_labels, with_oversegmentation, trains in checks:
    try:
      report = data.check_data_list(
        args.data_dir,
        data_list,
        num_classes=num_classes,
        with_oversegmentation=with_oversegmentation,
        require_labels=require_labels,
        progress=console.progress,
      )
    except errors.DataError as error:
      problems.append(str(error))
      continue
    problems.extend(report.problems)
    if with_oversegmentation:
      problems.extend(_missing_oversegmentation_advice(args, report.problems))
    crop_problem = (
      trains
      and crop
      and data.oversized_crop_problem(
        crop, report.largest_image_size, True, data_list
      )
    )
    if crop_problem:
      problems.append('CROP=%d,%d %s' % (crop[0], crop[1], crop_problem))
  # A list checked twice (the training list is unsupervised SegSort's too
  # unless UNSUP_TRAIN_LIST is another) names each problem once.
  return list(dict.fromkeys(problems))


def parse_args(argv=None):
  parser = flags.ArgumentParser(
    description=__doc__.splitlines()[0],
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument(
    '--data_dir', required=True, help='DATAROOT; list paths are relative to it.'
  )
  parser.add_argument(
    '--train_list',
    help='The annotated training list; left out with --val_list, only the '
    'settings are checked.',
  )
  parser.add_argument('--val_list', help='The annotated validation list.')
  parser.add_argument(
    '--unsup_train_list',
    help="Unsupervised SegSort's list (lines without labels allowed).",
  )
  parser.add_argument(
    '--with_oversegmentation',
    action='store_true',
    help="Also read the oversegmentations of --unsup_train_list's images "
    '(VOC2012/hed/ or its third column); left out while they are still to '
    'be made.',
  )
  parser.add_argument(
    '--out',
    help='OUT: runs already in it must have been trained with these '
    'settings (a rerun resumes them).',
  )
  parser.add_argument(
    '--trains_on',
    help="TRAIN_LIST, compared with the runs in --out (not read).",
  )
  parser.add_argument(
    '--unsup_trains_on',
    help="Unsupervised SegSort's training list, compared likewise.",
  )
  parser.add_argument(
    '--generated_set',
    action='store_true',
    help='NUM_CLASSES is for the set the demo generates '
    '(tools/make_synthetic_voc.py: %d to %d classes).' % GENERATED_CLASSES,
  )
  parser.add_argument(
    '--oversegmentation_threshold_given',
    action='store_true',
    help='OVERSEGMENTATION_THRESHOLD was set by the user, not defaulted: an '
    'existing VOC2012/hed/ cut at another threshold is refused.',
  )
  parser.add_argument(
    '--empty_variables',
    default='',
    help='The names of the environment variables set but empty when the '
    'script started (refused when they are settings).',
  )
  parser.add_argument(
    'settings', nargs='*', metavar='NAME=VALUE', help='Pipeline settings.'
  )
  return parser.parse_args(argv)


def main(argv=None):
  console.quiet_tensorflow()
  args = parse_args(argv)
  for note in misspelt_variables(os.environ):
    print('warning: %s' % note, file=sys.stderr)
  settings = {}
  problems = empty_setting_problems(args.empty_variables.split())
  for setting in args.settings:
    name, equals, text = setting.partition('=')
    if not equals:
      problems.append('%r is not NAME=VALUE' % setting)
      continue
    settings[name] = text
  more, values = setting_problems(settings)
  problems += more
  for note in unused_setting_notes(values):
    print('warning: %s' % note, file=sys.stderr)
  if args.out:
    try:
      # Unwritable, or below a file: mkdir failed after the data check
      # (and after oversegmenting), or the first training, before.
      flags.output_folder(args.out)
    except argparse.ArgumentTypeError as error:
      problems.append('OUT=%s: %s' % (args.out, error))
  if 'NUM_CLASSES' not in settings:
    problems.append('NUM_CLASSES is not set')
  elif args.generated_set and 'NUM_CLASSES' in values:
    low, high = GENERATED_CLASSES
    if not low <= values['NUM_CLASSES'] <= high:
      problems.append(
        'NUM_CLASSES=%d: the generated set holds %d to %d classes'
        % (values['NUM_CLASSES'], low, high)
      )
  problems += config_problems(values, set(settings) - set(values))
  problems += segment_group_problems(args.data_dir, values, args.generated_set)
  more, notes = oversegmentation_threshold_problems(
    args.data_dir, values, args.oversegmentation_threshold_given
  )
  problems += more
  for note in notes:
    print('note: %s' % note, file=sys.stderr)
  if not problems:
    problems += existing_run_problems(
      args, values, settings.get('SEEDS', '').split()
    )
    for note in seed_layout_notes(
      args.out, values.get('METHODS', ()), settings.get('SEEDS', '').split()
    ):
      print('note: %s' % note, file=sys.stderr)
  if 'NUM_CLASSES' in values:
    problems += class_name_problems(args.data_dir, values['NUM_CLASSES'])
  if problems:
    # Settings first: reading the data takes a while.
    sys.exit('error: %s' % errors.join_problems(problems))
  problems = data_problems(args, values['NUM_CLASSES'], values.get('CROP'))
  if problems:
    sys.exit(
      'error: %d problem(s) in the data, nothing trained: %s'
      % (len(problems), errors.join_problems(problems))
    )
  return 0


if __name__ == '__main__':
  sys.exit(main())
