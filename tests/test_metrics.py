"""Tests of segsort.metrics and segsort.benchmark_by_mIoU against hand counts."""

import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from segsort import benchmark_by_mIoU
from segsort import colormap
from segsort import errors
from segsort import io_utils
from segsort import metrics

# Region example, 3 classes, one ignored pixel. Valid (gt, pred) pairs:
# (0,0) (0,1) (1,1) (1,1) (0,0) (1,2) (2,2).
REGION_GT = np.array([[0, 0, 1, 1], [0, 255, 1, 2]])
REGION_PRED = np.array([[0, 1, 1, 1], [0, 0, 2, 2]])
# class 0: TP 2, FN 1, FP 0 -> 2/3; class 1: TP 2, FN 1, FP 1 -> 2/4;
# class 2: TP 1, FN 0, FP 1 -> 1/2.
REGION_IOUS = [2 / 3, 2 / 4, 1 / 2]
REGION_MEAN_IOU = (2 / 3 + 1 / 2 + 1 / 2) / 3  # 0.5556
REGION_PIXEL_ACCURACY = 5 / 7

# Boundary example A: a vertical edge predicted one column to the right.
# Ground-truth boundary pixels: columns 2 and 3 (10); predicted: 3 and 4 (10).
EDGE_GT = np.repeat([[0, 0, 0, 1, 1, 1]], 5, axis=0)
EDGE_PRED = np.repeat([[0, 0, 0, 0, 1, 1]], 5, axis=0)
# Boundary example B: a VOC-like ignore band in column 2. Ground-truth
# boundary pixels: columns 1 and 3 (8, the band's edges); predicted boundary
# pixels: columns 2 and 3, of which column 3 (4) lies on valid ground truth.
BAND_GT = np.repeat([[0, 0, 255, 1, 1, 1]], 4, axis=0)
BAND_PRED = np.repeat([[0, 0, 0, 1, 1, 1]], 4, axis=0)


def test_confusion_matrix_counts_valid_pairs():
  confusion = metrics.confusion_matrix(REGION_PRED, REGION_GT, 3)
  np.testing.assert_array_equal(confusion, [[2, 1, 0], [0, 2, 1], [0, 0, 1]])


def test_ious_mean_and_pixel_accuracy():
  confusion = metrics.confusion_matrix(REGION_PRED, REGION_GT, 3)
  np.testing.assert_allclose(metrics.class_ious(confusion), REGION_IOUS)
  assert metrics.mean_iou(confusion) == pytest.approx(REGION_MEAN_IOU)
  assert metrics.pixel_accuracy(confusion) == pytest.approx(
    REGION_PIXEL_ACCURACY
  )


def test_absent_class_has_no_iou_and_is_left_out_of_the_mean():
  confusion = metrics.confusion_matrix(REGION_PRED, REGION_GT, 4)
  assert math.isnan(metrics.class_ious(confusion)[3])
  assert metrics.mean_iou(confusion) == pytest.approx(REGION_MEAN_IOU)


def test_out_of_range_ids_are_errors():
  with pytest.raises(ValueError, match='prediction holds class id 3'):
    metrics.confusion_matrix(np.array([[3]]), np.array([[0]]), 3)
  with pytest.raises(ValueError, match='ground truth holds class id 7'):
    metrics.confusion_matrix(np.array([[0]]), np.array([[7]]), 3)


def test_label_boundaries_mark_both_sides_of_a_change():
  expected = np.zeros((5, 6), bool)
  expected[:, 2:4] = True
  np.testing.assert_array_equal(metrics.label_boundaries(EDGE_GT), expected)


@pytest.mark.parametrize(
  'tolerance, expected',
  [
    (0, metrics.BoundaryCounts(5, 10, 5, 10)),
    (1, metrics.BoundaryCounts(10, 10, 10, 10)),
  ],
)
def test_boundary_counts_of_a_shifted_edge(tolerance, expected):
  assert (
    metrics.boundary_match_counts(EDGE_PRED, EDGE_GT, tolerance) == expected
  )


@pytest.mark.parametrize(
  'tolerance, expected, f_score',
  [
    # Column 1 is 1 pixel from the nearest predicted boundary (column 2).
    (0, metrics.BoundaryCounts(4, 4, 4, 8), 2 * 1 * 0.5 / 1.5),
    (1, metrics.BoundaryCounts(4, 4, 8, 8), 1.0),
  ],
)
def test_boundary_counts_with_an_ignore_band(tolerance, expected, f_score):
  counts = metrics.boundary_match_counts(BAND_PRED, BAND_GT, tolerance)
  assert counts == expected
  assert counts.scores()[2] == pytest.approx(f_score)


def test_boundary_scores_sum_counts_over_images():
  evaluator = metrics.SegmentationEvaluator(2, boundary_tolerance=0)
  evaluator.add(EDGE_PRED, EDGE_GT)
  evaluator.add(BAND_PRED, BAND_GT)
  results = evaluator.results()
  # Matched predicted 5 + 4 of 10 + 4; matched ground truth 5 + 4 of 10 + 8.
  assert results['boundary_precision'] == pytest.approx(9 / 14)
  assert results['boundary_recall'] == pytest.approx(9 / 18)
  assert results['boundary_f_score'] == pytest.approx(9 / 16)


def test_no_predicted_boundary_gives_zero_f_score():
  counts = metrics.boundary_match_counts(np.zeros_like(EDGE_GT), EDGE_GT, 2)
  precision, recall, f_score = counts.scores()
  assert math.isnan(precision) and recall == 0 and f_score == 0


def test_fractional_tolerance_is_relative_to_the_diagonal():
  assert metrics.tolerance_in_pixels(0.1, (4, 6)) == pytest.approx(
    0.1 * math.sqrt(52)
  )
  assert metrics.tolerance_in_pixels(2, (4, 6)) == 2
  # 0.72 pixels: only exact matches, as with tolerance 0.
  assert metrics.boundary_match_counts(
    BAND_PRED, BAND_GT, 0.1
  ) == metrics.BoundaryCounts(4, 4, 4, 8)


def _write_png(path, array, palette=False):
  array = np.asarray(array, np.uint8)
  if palette:
    image = Image.frombytes('P', array.shape[::-1], array.tobytes())
    image.putpalette(colormap.voc_colormap().ravel().tolist())
  else:
    image = Image.fromarray(array)
  image.save(path)


@pytest.fixture
def prediction_dirs(tmp_path):
  pred_dir, gt_dir = tmp_path / 'run' / 'gray', tmp_path / 'gt'
  pred_dir.mkdir(parents=True)
  gt_dir.mkdir()
  _write_png(pred_dir / 'a.png', REGION_PRED)
  _write_png(gt_dir / 'a.png', REGION_GT, palette=True)
  _write_png(pred_dir / 'b.png', BAND_PRED)
  _write_png(gt_dir / 'b.png', BAND_GT)
  return pred_dir, gt_dir


def _run_benchmark(pred_dir, gt_dir, *flags):
  """benchmark_by_mIoU.main on 3 classes with more flags."""
  benchmark_by_mIoU.main(
    ['--pred_dir', str(pred_dir), '--gt_dir', str(gt_dir), '--num_classes', '3']
    + list(flags)
  )


def test_benchmark_prints_and_writes_hand_computed_scores(
  prediction_dirs, capsys
):
  pred_dir, gt_dir = prediction_dirs
  _run_benchmark(str(pred_dir), str(gt_dir), '--boundary_tolerance', '1')
  # Image b adds 8 (0, 0) and 12 (1, 1) pairs: class 0 TP 10, FN 1 -> 10/11;
  # class 1 TP 14, FN 1, FP 1 -> 14/16; class 2 as before, 1/2.
  mean_iou = (10 / 11 + 14 / 16 + 1 / 2) / 3
  assert 'mean IOU: %.4f%%' % (100 * mean_iou) in capsys.readouterr().out
  with open(pred_dir.parent / 'metrics.json') as stream:
    results = json.load(stream)
  assert results['mean_iou'] == pytest.approx(mean_iou)
  assert results['pixel_accuracy'] == pytest.approx(25 / 27)
  assert results['num_images'] == 2


def test_scores_keep_the_settings_of_the_predictions(prediction_dirs):
  # metrics.json did not say which checkpoint, bank or k made the scores.
  pred_dir, gt_dir = prediction_dirs
  settings = {'checkpoint': 'run/ckpt-9', 'k_in_nearest_neighbors': 5}
  (pred_dir.parent / 'settings.json').write_text(
    json.dumps({**settings, 'colormap': [[0, 0, 0]]})
  )
  _run_benchmark(str(pred_dir), str(gt_dir))
  with open(pred_dir.parent / 'metrics.json') as stream:
    assert json.load(stream)['prediction_settings'] == settings


def test_prediction_settings_that_are_no_object_are_named_and_left_out(
  prediction_dirs, capsys
):
  pred_dir, gt_dir = prediction_dirs
  for text, reason in (
    ('[1, 2]', 'not a JSON object'),
    ('{"k": NaN}', 'NaN is not a JSON number'),
  ):
    (pred_dir.parent / 'settings.json').write_text(text)
    _run_benchmark(str(pred_dir), str(gt_dir))
    assert 'not kept: %s' % reason in capsys.readouterr().out
    with open(pred_dir.parent / 'metrics.json') as stream:
      assert 'prediction_settings' not in json.load(stream)


def test_benchmark_names_a_missing_prediction(prediction_dirs, tmp_path):
  pred_dir, gt_dir = prediction_dirs
  data_list = tmp_path / 'list.txt'
  data_list.write_text('JPEGImages/a.jpg\nJPEGImages/c.jpg\n')
  _write_png(gt_dir / 'c.png', REGION_GT)
  with pytest.raises(SystemExit) as raised:
    _run_benchmark(str(pred_dir), str(gt_dir), '--data_list', str(data_list))
  # The list's line is named too, not only the path.
  assert str(raised.value) == (
    'error: 1 missing file(s): %s, line 2: %s does not exist'
    % (data_list, pred_dir / 'c.png')
  )


def test_benchmark_refuses_predictions_named_with_another_case(
  prediction_dirs,
):
  # b.PNG was left out of the scores silently (2 images scored as 1).
  pred_dir, gt_dir = prediction_dirs
  os.rename(pred_dir / 'b.png', pred_dir / 'b.PNG')
  with pytest.raises(SystemExit) as raised:
    _run_benchmark(str(pred_dir), str(gt_dir))
  assert str(raised.value) == (
    'error: %s holds 1 prediction file(s) whose extension is not .png '
    '(b.PNG); rename them ID.png, as their ground truth is found by that '
    'name' % pred_dir
  )
  assert not (pred_dir.parent / 'metrics.json').exists()


def test_benchmark_names_a_file_of_another_size(prediction_dirs):
  pred_dir, gt_dir = prediction_dirs
  _write_png(gt_dir / 'b.png', np.zeros((3, 5)))
  # Height x width, as every other message gives sizes.
  with pytest.raises(ValueError, match=r'b\.png is 4x6 .* is 3x5'):
    metrics.evaluate_prediction_dir(str(pred_dir), str(gt_dir), 3)
  # From a list, the message starts with the list's line.
  with pytest.raises(
    ValueError, match=r': list\.txt, line 7: \S*b\.png is 4x6'
  ):
    metrics.evaluate_prediction_dir(
      str(pred_dir),
      str(gt_dir),
      3,
      image_ids=['a', 'b'],
      locations={'a': 'list.txt, line 2', 'b': 'list.txt, line 7'},
    )


def test_benchmark_rejects_colour_predictions(prediction_dirs):
  pred_dir, gt_dir = prediction_dirs
  _write_png(pred_dir / 'a.png', np.zeros((2, 4, 3)))
  with pytest.raises(ValueError, match=r'a\.png is a mode RGB image'):
    metrics.evaluate_prediction_dir(str(pred_dir), str(gt_dir), 3)


def test_benchmark_names_every_bad_file_on_one_line(prediction_dirs):
  pred_dir, gt_dir = prediction_dirs
  _write_png(pred_dir / 'a.png', np.zeros((2, 4, 3)))
  _write_png(gt_dir / 'b.png', np.zeros((3, 5)))
  with pytest.raises(ValueError) as raised:
    metrics.evaluate_prediction_dir(str(pred_dir), str(gt_dir), 3)
  message = str(raised.value)
  assert message.startswith('2 bad file(s): ')
  assert 'a.png is a mode RGB image' in message
  assert 'b.png is 4x6 but' in message and '\n' not in message
  os.remove(pred_dir / 'a.png')
  os.remove(gt_dir / 'b.png')
  with pytest.raises(
    ValueError, match=r'^2 missing file\(s\): .*a\.png .*b\.png'
  ):
    metrics.evaluate_prediction_dir(
      str(pred_dir), str(gt_dir), 3, image_ids=['a', 'b']
    )


def test_benchmark_names_classes_from_a_file(prediction_dirs, tmp_path, capsys):
  pred_dir, gt_dir = prediction_dirs
  names_file = tmp_path / 'classes.txt'
  # A byte-order mark, spaces around names and blank lines at the end are
  # what editors leave; none of them is part of a name.
  names_file.write_bytes(b'\xef\xbb\xbfsky\n  road \r\nsign symbol\n\n')
  output_json = tmp_path / 'scores.json'
  _run_benchmark(
    str(pred_dir),
    str(gt_dir),
    '--class_names',
    str(names_file),
    '--output_json',
    str(output_json),
  )
  assert 'class  2 sign symbol  IOU:' in capsys.readouterr().out
  results = json.loads(output_json.read_text())
  assert results['class_names'] == ['sky', 'road', 'sign symbol']
  assert os.path.exists(tmp_path / 'scores_iou.png')


@pytest.mark.parametrize(
  'contents, message',
  [
    (b'sky\nroad\n', r'classes\.txt holds 2 class names but there are 3'),
    (b'a\nb\nc\nd\n', r'classes\.txt holds 4 class names but there are 3'),
    (b'sky\n\nroad\ncar\n', r'classes\.txt, line 2: empty class name'),
    (b'sky\nr\xf6ad\ncar\n', r'classes\.txt, line 2 is not UTF-8 text'),
    (None, r'Cannot read class names .*classes\.txt'),
  ],
)
def test_benchmark_rejects_a_bad_class_names_file_before_scoring(
  tmp_path, capsys, contents, message
):
  names_file = tmp_path / 'classes.txt'
  if contents is not None:
    names_file.write_bytes(contents)
  # The prediction folder is empty: the file is checked before it.
  pred_dir = tmp_path / 'run' / 'gray'
  pred_dir.mkdir(parents=True)
  with pytest.raises(SystemExit):
    _run_benchmark(
      str(pred_dir),
      str(tmp_path),
      '--class_names',
      str(names_file),
    )
  error = capsys.readouterr().err
  assert re.search('argument --class_names: .*' + message, error), error
  assert not os.path.exists(tmp_path / 'run' / 'metrics.json')


def test_benchmark_json_to_stdout(prediction_dirs, capsys):
  pred_dir, gt_dir = prediction_dirs
  _run_benchmark(str(pred_dir), str(gt_dir), '--output_json', '-')
  results = json.loads(capsys.readouterr().out)
  assert results['confusion_matrix'][2] == [0, 0, 1]
  assert not os.path.exists(pred_dir.parent / 'metrics.json')


def test_metrics_import_no_tensorflow():
  code = (
    'import sys; from segsort import metrics; '
    'assert "tensorflow" not in sys.modules, "tensorflow imported"'
  )
  subprocess.run(
    [sys.executable, '-c', code],
    check=True,
    cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
  )


@pytest.mark.parametrize(
  'mode, values',
  [
    ('L', [[0, 1], [255, 7]]),
    ('P', [[0, 1], [255, 7]]),
    ('I;16', [[0, 1], [300, 7]]),
    ('I', [[0, 1], [70000, 7]]),
    ('1', [[0, 1], [1, 0]]),
  ],
)
def test_label_images_of_every_single_channel_mode_are_read(
  tmp_path, mode, values
):
  values = np.array(values)
  if mode == '1':
    image = Image.fromarray(values.astype(bool))
  elif mode == 'P':
    image = Image.fromarray(values.astype(np.uint8), mode='P')
    image.putpalette([255, 0, 0] * 256)
  elif mode == 'I;16':
    image = Image.fromarray(values.astype(np.uint16))
  elif mode == 'I':
    image = Image.fromarray(values.astype(np.int32))
  else:
    image = Image.fromarray(values.astype(np.uint8))
  # PNG holds no 32-bit grayscale; TIFF does.
  path = str(tmp_path / ('label.tif' if mode == 'I' else 'label.png'))
  image.save(path)
  with Image.open(path) as written:
    assert written.mode == mode
  ids = io_utils.read_label_image(path, np.int64)
  assert ids.dtype == np.int64
  np.testing.assert_array_equal(ids, values)
  assert io_utils.read_label_image(path).dtype == np.int32


def test_colour_and_undecodable_label_images_are_named(tmp_path):
  Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / 'rgb.png')
  with pytest.raises(
    errors.ImageFileError,
    match=r'rgb\.png is a mode RGB image \(bands R,G,B\); expected a single-'
    r'channel image of ids',
  ):
    io_utils.read_label_image(str(tmp_path / 'rgb.png'))
  (tmp_path / 'broken.png').write_bytes(b'not a png')
  with pytest.raises(
    errors.ImageFileError, match=r'Cannot decode label image .*broken\.png'
  ):
    io_utils.read_label_image(str(tmp_path / 'broken.png'))


def test_rgb_images_are_read_and_bad_ones_named(tmp_path):
  Image.fromarray(np.full((2, 3), 7, np.uint8)).save(tmp_path / 'gray.png')
  rgb = io_utils.read_rgb_image(str(tmp_path / 'gray.png'))
  assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8 and np.all(rgb == 7)
  (tmp_path / 'broken.jpg').write_bytes(b'not a jpeg')
  with pytest.raises(
    errors.ImageFileError, match=r'Cannot decode image .*broken\.jpg'
  ):
    io_utils.read_rgb_image(str(tmp_path / 'broken.jpg'))


def test_class_names_come_from_the_flag_then_the_data_set(tmp_path):
  assert metrics.data_set_class_names(3) == ['class 0', 'class 1', 'class 2']
  assert metrics.data_set_class_names(3, data_dir=str(tmp_path)) == [
    'class 0',
    'class 1',
    'class 2',
  ]
  (tmp_path / metrics.CLASS_NAMES_FILE).write_text('sky\nroad\ncar\n')
  assert metrics.data_set_class_names(3, data_dir=str(tmp_path)) == [
    'sky',
    'road',
    'car',
  ]
  flag_file = tmp_path / 'other.txt'
  flag_file.write_text('a\nb\nc\n')
  assert metrics.data_set_class_names(
    3, str(flag_file), data_dir=str(tmp_path)
  ) == ['a', 'b', 'c']
  with pytest.raises(errors.ListFileError, match='classes.txt holds 3'):
    metrics.data_set_class_names(4, data_dir=str(tmp_path))


@pytest.mark.parametrize(
  'tolerance, text',
  [(2.0, '2 pixels'), (0.0075, '0.0075 of the image diagonal')],
)
def test_the_report_names_the_tolerance_in_its_unit(tolerance, text):
  """`(tolerance 0.0075)` read as pixels, beside `(tolerance 2)`."""
  results = {
    'class_names': ['a'],
    'class_iou': [0.5],
    'mean_iou': 0.5,
    'pixel_accuracy': 0.5,
    'boundary_precision': 0.5,
    'boundary_recall': 0.5,
    'boundary_f_score': 0.5,
    'boundary_tolerance': tolerance,
    'num_images': 1,
  }
  assert '(tolerance %s)' % text in metrics.format_report(results)
