"""Collects the CPU pipeline's benchmark results into a table, JSON and chart.

    python bashscripts/common/summarize.py --out OUT \
        --methods segsort segsort_unsup softmax --runs OUT/seed_0 OUT/seed_1

Reads RUN/<method>/results/metrics.json (and results/seconds, when present)
of every run (one per training seed), prints one table, draws the methods
side by side in OUT/summary.png (mIoU, boundary F and every class's IoU:
each method's mean as a bar, the range over the runs as a line across it)
and writes OUT/summary.json:

    {method: {"miou", "boundary_f", "seconds", "per_class_iou": {name: iou},
              "miou_spread", "boundary_f_spread", "runs": [...]}}

"miou", "boundary_f", "seconds" and the per-class IoU are means over the
runs; a spread is the largest minus the smallest value (0 for one run);
boundary F is null where no scored label holds a boundary;
"runs" holds every run's own figures, with the settings its predictions
were made with ("prediction_settings", from metrics.json). Scores are fractions in [0, 1]; a class
that no image of the list holds has IoU null. Methods keep the order of
--methods and classes their class-id order.
"""

import json
import os
import statistics
import sys

sys.path.insert(
  0,
  os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
)

from segsort import io_utils  # pylint: disable=g-import-not-at-top
from segsort import flags  # pylint: disable=g-import-not-at-top
from segsort import overlay  # pylint: disable=g-import-not-at-top

METHODS = ('segsort', 'segsort_unsup', 'softmax')
_FIGURE_NAMES = {'miou': 'mean_iou', 'boundary_f': 'boundary_f_score'}


def _is_score(value):
  """Whether a figure is a fraction in [0, 1] (not null, NaN or text)."""
  return (
    isinstance(value, (int, float))
    and not isinstance(value, bool)
    and 0 <= value <= 1
  )


def read_run(run_dir, method):
  """One method's figures of one run.

  Raises:
    FileNotFoundError: Naming a missing metrics.json.
    ValueError: Naming a metrics.json or seconds file that cannot be read
      (not JSON, a key missing; not a number).
  """
  results = os.path.join(run_dir, method, 'results')
  metrics_path = os.path.join(results, 'metrics.json')
  with open(metrics_path) as stream:
    try:
      metrics = json.load(stream)
      figures = {
        'miou': metrics['mean_iou'],
        'boundary_f': metrics['boundary_f_score'],
        'per_class_iou': dict(
          zip(metrics['class_names'], metrics['class_iou'])
        ),
      }
    except (ValueError, KeyError, TypeError) as error:
      raise ValueError(
        '%s is not benchmark_by_mIoU\'s scores (%s: %s); benchmark the run '
        'again' % (metrics_path, type(error).__name__, error)
      ) from error
  # mIoU is null (or NaN, which is not JSON) when no pixel of the scored
  # list's labels has a class: a mean over such runs would mean nothing.
  # Boundary F is null, rightly, when no label holds a boundary.
  if figures['miou'] is None or figures['miou'] != figures['miou']:
    raise ValueError(
      '%s holds no mean_iou (%r): no pixel of the labels of the list it '
      'scored has a class; score an annotated list'
      % (metrics_path, figures['miou'])
    )
  for name in ('miou', 'boundary_f'):
    if figures[name] is not None and not _is_score(figures[name]):
      raise ValueError(
        '%s holds %s %r, not a fraction in [0, 1]; benchmark the run again'
        % (metrics_path, _FIGURE_NAMES[name], figures[name])
      )
  names, ious = metrics['class_names'], metrics['class_iou']
  # zip dropped the classes of a shorter list, and text failed in a mean.
  if (
    not isinstance(names, list)
    or not isinstance(ious, list)
    or len(names) != len(ious)
    or not all(isinstance(name, str) for name in names)
    or not all(iou is None or _is_score(iou) for iou in ious)
  ):
    raise ValueError(
      '%s holds class_names %r and class_iou %r: expected as many names '
      'as IoUs, each a fraction in [0, 1] or null; benchmark the run again'
      % (metrics_path, names, ious)
    )
  seconds_path = os.path.join(results, 'seconds')
  seconds = None
  if os.path.exists(seconds_path):
    with open(seconds_path) as stream:
      text = stream.read().strip()
    try:
      seconds = float(text)
    except ValueError as error:
      raise ValueError(
        '%s holds %r, not a number of seconds' % (seconds_path, text[:40])
      ) from error
  return dict(
    figures,
    run=run_dir,
    seconds=seconds,
    # Which checkpoint, prototype bank, k and clusters made the figures.
    prediction_settings=metrics.get('prediction_settings'),
  )


def _mean(values):
  values = [value for value in values if value is not None]
  return statistics.fmean(values) if values else None


def _spread(values):
  """Largest minus smallest of the values that are not None; None if none."""
  values = [value for value in values if value is not None]
  return max(values) - min(values) if values else None


def summarize_method(runs):
  """Means and spreads of one method's runs (see the module docstring).

  Raises:
    ValueError: If the runs' scores name other classes.
  """
  classes = runs[0]['per_class_iou']
  for run in runs[1:]:
    if list(run['per_class_iou']) != list(classes):
      raise ValueError(
        'the scores of %s and %s name other classes (%s against %s); '
        'benchmark both with the same --class_names'
        % (
          runs[0]['run'],
          run['run'],
          ', '.join(classes),
          ', '.join(run['per_class_iou']),
        )
      )
  return {
    'miou': _mean(run['miou'] for run in runs),
    'boundary_f': _mean(run['boundary_f'] for run in runs),
    'seconds': _mean(run['seconds'] for run in runs),
    'per_class_iou': {
      name: _mean(run['per_class_iou'][name] for run in runs)
      for name in classes
    },
    'miou_spread': _spread(run['miou'] for run in runs),
    'boundary_f_spread': _spread(run['boundary_f'] for run in runs),
    'runs': runs,
  }


def _seconds(seconds):
  return '-' if seconds is None else '%.0f' % seconds


def _percent(value, width):
  """A fraction as a percentage of `width` characters; n/a for None."""
  return (
    ('%*.2f%%' % (width - 1, 100 * value))
    if value is not None
    else ('%*s' % (width, 'n/a'))
  )


def format_table(summary):
  """The table printed at the end of a pipeline run (figures in percent)."""
  num_runs = len(next(iter(summary.values()))['runs'])
  lines = [
    '%-14s %8s %8s %11s %8s %8s'
    % ('method', 'mIoU', 'spread', 'boundary F', 'spread', 'seconds')
  ]

  def spread(value):
    # One run has no spread to show (summary.json keeps its 0).
    if num_runs == 1 or value is None:
      return '%8s' % '-'
    return '%8.2f' % (100 * value)

  for method, row in summary.items():
    lines.append(
      '%-14s %s %s %s %s %8s'
      % (
        method,
        _percent(row['miou'], 8),
        spread(row['miou_spread']),
        _percent(row['boundary_f'], 11),
        spread(row['boundary_f_spread']),
        _seconds(row['seconds']),
      )
    )
    if num_runs > 1:
      # Every seed's own figures under the method's means.
      for run in row['runs']:
        lines.append(
          '  %-12s %s %8s %s %8s %8s'
          % (
            os.path.basename(run['run']),
            _percent(run['miou'], 8),
            '',
            _percent(run['boundary_f'], 11),
            '',
            _seconds(run['seconds']),
          )
        )
  lines.append(
    '(%d run%s; figures are means%s, spread = max - min)'
    % (
      num_runs,
      '' if num_runs == 1 else 's',
      ' over the runs below each method' if num_runs > 1 else '',
    )
  )
  return '\n'.join(lines)


def _value_range(values):
  values = [value for value in values if value is not None]
  return (min(values), max(values)) if len(values) > 1 else None


def draw_summary(summary):
  """The methods' mIoU, boundary F and per-class IoU side by side.

  Returns:
    overlay.draw_comparison_chart's picture, with ranges over the runs.
  """
  methods = list(summary)
  classes = list(summary[methods[0]]['per_class_iou'])
  means, ranges = [], []
  for method in methods:
    row, runs = summary[method], summary[method]['runs']
    means.append(
      [row['miou'], row['boundary_f']]
      + [row['per_class_iou'][name] for name in classes]
    )
    ranges.append(
      [
        _value_range(run['miou'] for run in runs),
        _value_range(run['boundary_f'] for run in runs),
      ]
      + [
        _value_range(run['per_class_iou'][name] for run in runs)
        for name in classes
      ]
    )
  num_runs = len(summary[methods[0]]['runs'])
  return overlay.draw_comparison_chart(
    'means over %d runs; lines: smallest to largest' % num_runs
    if num_runs > 1
    else 'one run',
    ['mIoU', 'boundary F'] + ['IoU ' + name for name in classes],
    methods,
    means,
    ranges,
  )


def main(argv=None):
  parser = flags.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
    '--out',
    required=True,
    help='Where summary.json and its chart summary.png are written.',
  )
  parser.add_argument(
    '--methods',
    nargs='+',
    choices=METHODS,
    default=list(METHODS),
    help='Methods to collect.',
  )
  parser.add_argument(
    '--runs',
    nargs='+',
    default=None,
    help='Run folders, one per seed (default: OUT).',
  )
  args = parser.parse_args(argv)
  run_dirs = args.runs or [args.out]
  # By real path: one run named twice would count twice in every mean.
  names_of_path = {}
  for run_dir in run_dirs:
    names_of_path.setdefault(os.path.realpath(run_dir), []).append(run_dir)
  for names in names_of_path.values():
    if len(names) > 1:
      parser.error('argument --runs: %s name one run' % ' and '.join(names))
  summary = {}
  for method in args.methods:
    try:
      runs = [read_run(run_dir, method) for run_dir in run_dirs]
      summary[method] = summarize_method(runs)
    except FileNotFoundError as error:
      parser.exit(
        1,
        'error: %s is missing: did the %s run finish?\n'
        % (error.filename, method),
      )
    except ValueError as error:
      parser.exit(1, 'error: %s\n' % error)
  # Unsorted: methods in the order asked, classes in class-id order.
  io_utils.save_json(
    os.path.join(args.out, 'summary.json'), summary, sort_keys=False
  )
  io_utils.save_png(
    os.path.join(args.out, 'summary.png'), draw_summary(summary)
  )
  print('\n' + format_table(summary))
  print(
    '\nWritten %s and its chart summary.png'
    % os.path.join(args.out, 'summary.json')
  )


if __name__ == '__main__':
  main()
