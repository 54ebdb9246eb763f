"""Collects the demo's benchmark results into one table and summary.json.

    python bashscripts/demo/summarize.py --out OUT --seconds segsort=120 ...

Reads OUT/<method>/results/metrics.json for every method, prints a table and
writes OUT/summary.json: {method: {"miou", "boundary_f", "seconds"}}.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from segsort import io_utils  # pylint: disable=g-import-not-at-top

METHODS = ('segsort', 'segsort_unsup', 'softmax')


def _parse_seconds(text):
  method, _, seconds = text.partition('=')
  if method not in METHODS or not seconds.isdigit():
    raise argparse.ArgumentTypeError('expected METHOD=SECONDS with METHOD in '
                                     '%s, got %r' % (METHODS, text))
  return method, int(seconds)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True, help="The demo's OUT folder.")
  parser.add_argument('--seconds', type=_parse_seconds, action='append',
                      default=[], help='METHOD=SECONDS of a method\'s run.')
  args = parser.parse_args(argv)
  seconds = dict(args.seconds)
  summary = {}
  for method in METHODS:
    path = os.path.join(args.out, method, 'results', 'metrics.json')
    with open(path) as stream:
      metrics = json.load(stream)
    summary[method] = {'miou': metrics['mean_iou'],
                       'boundary_f': metrics['boundary_f_score'],
                       'seconds': seconds.get(method)}
  io_utils.save_json(os.path.join(args.out, 'summary.json'), summary)
  print('\n%-14s %8s %11s %8s' % ('method', 'mIoU', 'boundary F', 'seconds'))
  for method, row in summary.items():
    print('%-14s %7.2f%% %10.2f%% %8s' % (
        method, 100 * row['miou'], 100 * row['boundary_f'],
        '-' if row['seconds'] is None else row['seconds']))
  print('\nWritten %s' % os.path.join(args.out, 'summary.json'))


if __name__ == '__main__':
  main()
