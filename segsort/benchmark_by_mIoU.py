"""Scores predicted class-id PNGs: per-class IoU, mean IoU, pixel accuracy, boundary F.

    python -m segsort.benchmark_by_mIoU --pred_dir OUT/gray \
        --gt_dir DATAROOT/VOC2012/segcls --num_classes 21

Prints the scores like the original ("mean IOU: 71.2345%") and writes them
all, with the confusion matrix, as JSON to --output_json (default
`pred_dir/../metrics.json`; `-` for stdout), and beside it a bar chart of
the per-class IoU in VOC's class colours, named by --class_names
(`metrics_iou.png` for `metrics.json`; see segsort.overlay.draw_iou_chart).
When --pred_dir is inference's SAVE_DIR/gray, the JSON keeps the settings
of that inference run as "prediction_settings".
See segsort/metrics.py for the definitions.
"""

import json
import os

from segsort import errors
from segsort import flags
from segsort import inference_flags
from segsort import io_utils
from segsort import metrics
from segsort import overlay
from segsort import run_record


def _refuse_constant(name):
  raise ValueError('%s is not a JSON number' % name)


def prediction_settings(pred_dir):
  """The settings of the inference run that wrote `pred_dir`, or None.

  Inference records them in SAVE_DIR/settings.json beside SAVE_DIR/gray;
  they are kept with the scores (without the colour map, which changes
  only the pictures), so that a score says which checkpoint, prototype
  bank, k, clusters and scales made it.
  """
  path = os.path.join(
    os.path.dirname(os.path.abspath(pred_dir)), io_utils.SETTINGS_FILE
  )
  if not os.path.exists(path):
    return None
  try:
    with open(path) as stream:
      # NaN and Infinity are not JSON; metrics.json must stay standard.
      settings = json.load(stream, parse_constant=_refuse_constant)
  except (OSError, ValueError) as error:
    print(
      'warning: the prediction settings %s are not kept: %s' % (path, error)
    )
    return None
  if not isinstance(settings, dict):
    print(
      'warning: the prediction settings %s are not kept: not a JSON '
      'object' % path
    )
    return None
  settings.pop('colormap', None)
  return settings


def parse_args(argv=None):
  parser = run_record.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument(
    '--pred_dir',
    required=True,
    help='Directory of predicted ID.png class-id maps.',
  )
  parser.add_argument(
    '--gt_dir',
    required=True,
    help='Directory of ground-truth ID.png class-id maps.',
  )
  flags.add_label_flags(
    parser, 21, 'Number of classes including background (VOC: 21).'
  )
  parser.add_argument(
    '--data_list',
    help='Score only the images of this list (first column); '
    'default: every PNG of --pred_dir.',
  )
  flags.add_boundary_tolerance_flag(parser)
  inference_flags.add_class_names_flag(parser)
  parser.add_argument(
    '--output_json',
    type=flags.output_file,
    help="Where to write every score; '-' for stdout "
    '(default: PRED_DIR/../metrics.json). The per-class '
    'IoU chart goes beside it (OUTPUT_iou.png).',
  )
  args = parser.parse_args(argv)
  flags.check_folders_exist(parser, args, 'pred_dir', 'gt_dir')
  flags.check_ignore_label(parser, args)
  if args.output_json != '-':
    flag = '--output_json' if args.output_json else '--pred_dir'
    args.output_json = args.output_json or os.path.join(
      os.path.dirname(os.path.abspath(args.pred_dir)), metrics.SCORES_FILE_NAME
    )
    flags.check_derived_output(parser, flag, args.output_json)
    flags.check_derived_output(
      parser, flag, metrics.chart_path(args.output_json)
    )
  args.names = None
  if args.class_names is not None:
    try:
      args.names = metrics.read_class_names(args.class_names, args.num_classes)
    except ValueError as error:
      parser.error('argument --class_names: %s' % error)
  return args


@errors.one_line_on_interrupt
def main(argv=None):
  args = parse_args(argv)
  try:
    # Messages about a listed image's files name its line.
    locations = (
      metrics.list_image_locations(args.data_list) if args.data_list else None
    )
    results = metrics.evaluate_prediction_dir(
      args.pred_dir,
      args.gt_dir,
      args.num_classes,
      args.ignore_label,
      list(locations) if locations else None,
      args.boundary_tolerance,
      args.names,
      progress=True,
      locations=locations,
    )
  except (OSError, ValueError) as error:
    raise SystemExit('error: %s' % error) from error
  settings = prediction_settings(args.pred_dir)
  if settings is not None:
    results['prediction_settings'] = settings
  if io_utils.print_scores(
    metrics.format_report(results), results, args.output_json
  ):
    return
  io_utils.save_json(args.output_json, results)
  io_utils.save_png(
    metrics.chart_path(args.output_json),
    overlay.draw_iou_chart(
      results['class_names'], results['class_iou'], results['mean_iou']
    ),
  )
  print(
    'Scores written to %s, their chart to %s'
    % (args.output_json, metrics.chart_path(args.output_json))
  )


if __name__ == '__main__':
  main()
