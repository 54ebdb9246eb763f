"""Tests of segsort.overlay: inference overlays and per-class IoU charts."""

import json
import logging
import os

import numpy as np
import pytest
from PIL import Image

# inference_fixtures is also loaded as this module's pytest plugin (below);
# registered first so that pytest can still rewrite its asserts.
pytest.register_assert_rewrite('inference_fixtures')

# pylint: disable=g-import-not-at-top,wrong-import-position
from inference_fixtures import NUM_CLASSES
from inference_fixtures import WINDOW_FLAGS
from inference_fixtures import prototype_dir
from segsort import benchmark_by_mIoU
from segsort import colormap as colormap_lib
from segsort import data
from segsort import inference_segsort
from segsort import inference_softmax
from segsort import metrics
from segsort import overlay

pytest_plugins = ('inference_fixtures',)

WHITE = [255, 255, 255]


def _read_png(path):
  with Image.open(path) as image:
    return np.asarray(image)


def test_overlay_blends_colours_and_marks_boundaries_white():
  image = np.full((4, 6, 3), 100, np.uint8)
  image[:, :, 2] = 201
  labels = np.zeros((4, 6), np.int32)
  labels[:, 3:] = 1
  colormap = np.array([[0, 0, 0], [200, 50, 0]], np.uint8)
  picture = overlay.draw_overlay(image, labels, colormap)
  assert picture.shape == (4, 6, 3) and picture.dtype == np.uint8
  # Both pixels of every pair across the class change are boundary pixels.
  assert (picture[:, 2:4] == WHITE).all()
  assert (picture[:, :2] == [50, 50, 100]).all()  # rint(100.5) = 100.
  assert (picture[:, 4:] == [150, 75, 100]).all()
  # Segments of their own: boundaries of the segments, colours of labels.
  segments = np.zeros((4, 6), np.int32)
  segments[2:, :] = 1
  picture = overlay.draw_overlay(image, labels, colormap, segments)
  assert (picture[1:3] == WHITE).all()
  assert (picture[0, :3] == [50, 50, 100]).all()
  assert (picture[3, 3:] == [150, 75, 100]).all()


def test_overlay_refuses_shapes_that_differ():
  with pytest.raises(ValueError, match='Overlay needs'):
    overlay.draw_overlay(
      np.zeros((4, 6, 3), np.uint8),
      np.zeros((4, 5), np.int32),
      colormap_lib.voc_colormap(),
    )


def test_iou_chart_draws_bars_of_the_iou_s_length():
  colormap = np.array(
    [[200, 0, 0], [0, 0, 200], [0, 200, 0], [90, 90, 0]], np.uint8
  )
  chart = overlay.draw_iou_chart(
    ['a', 'b', 'c', 'd'], [1.0, 0.5, None, 0.0], 0.5, colormap
  )
  width = (
    2 * overlay.CHART_MARGIN
    + overlay.CHART_NAME_WIDTH
    + overlay.CHART_BAR_WIDTH
    + overlay.CHART_VALUE_WIDTH
  )
  assert chart.shape == (
    overlay.chart_row_top(4) + overlay.CHART_MARGIN,
    width,
    3,
  )
  left = overlay.CHART_MARGIN + overlay.CHART_NAME_WIDTH

  def middle_row(row):
    return chart[overlay.chart_row_top(row) + overlay.CHART_ROW_HEIGHT // 2]

  # Class 0: a full bar of its colour; class 1: half of it.
  assert (
    middle_row(0)[left + 1 : left + overlay.CHART_BAR_WIDTH - 1] == colormap[0]
  ).all()
  half = overlay.bar_length(0.5)
  assert half == overlay.CHART_BAR_WIDTH // 2
  assert (middle_row(1)[left + 1 : left + half - 1] == colormap[1]).all()
  assert (
    middle_row(1)[left + half + 1 : left + overlay.CHART_BAR_WIDTH]
    == overlay.CHART_BACKGROUND
  ).all()
  # No bar for a class without pixels, nor for IoU 0.
  for row in (2, 3):
    bar_area = middle_row(row)[left : left + overlay.CHART_BAR_WIDTH]
    assert not (bar_area == colormap[row]).all(axis=-1).any()


def test_iou_chart_refuses_values_outside_0_1():
  with pytest.raises(ValueError, match=r'\[0, 1\]'):
    overlay.draw_iou_chart(['a'], [1.5], 1.5)


def test_comparison_chart_draws_each_method_s_bar_and_range():
  chart = overlay.draw_comparison_chart(
    'title',
    ['mIoU', 'sky'],
    ['segsort', 'softmax'],
    [[0.5, 1.0], [0.25, None]],
    [[(0.4, 0.6), None], [None, None]],
  )
  assert chart.shape == (
    overlay.comparison_row_top(2, 2) + overlay.CHART_MARGIN,
    2 * overlay.CHART_MARGIN
    + overlay.CHART_NAME_WIDTH
    + overlay.CHART_BAR_WIDTH
    + overlay.CHART_VALUE_WIDTH,
    3,
  )
  left = overlay.CHART_MARGIN + overlay.CHART_NAME_WIDTH

  def bar_row(row, method, offset=2):
    top = overlay.comparison_row_top(row, 2)
    return chart[top + method * overlay.COMPARISON_BAR_HEIGHT + offset]

  first, second = overlay.METHOD_COLORS[:2]
  half, quarter = overlay.bar_length(0.5), overlay.bar_length(0.25)
  assert (bar_row(0, 0)[left : left + half] == first).all()
  assert (bar_row(0, 0)[left + half] == overlay.CHART_BACKGROUND).all()
  assert (bar_row(0, 1)[left : left + quarter] == second).all()
  assert (bar_row(0, 1)[left + quarter] == overlay.CHART_BACKGROUND).all()
  # The range is a black line across the middle of the bar and beyond it.
  middle = bar_row(0, 0, (overlay.COMPARISON_BAR_HEIGHT - 1) // 2)
  low, high = overlay.bar_length(0.4), overlay.bar_length(0.6)
  assert (middle[left + low : left + high + 1] == 0).all()
  assert (middle[left + low - 1] == first).all()
  assert (middle[left + high + 1] == overlay.CHART_BACKGROUND).all()
  # A full bar for 1.0 and none for a missing value.
  assert (bar_row(1, 0)[left : left + overlay.CHART_BAR_WIDTH] == first).all()
  bar_area = bar_row(1, 1)[left : left + overlay.CHART_BAR_WIDTH]
  assert not (bar_area == second).all(axis=-1).any()


@pytest.mark.parametrize(
  'means, ranges, message',
  [
    ([[0.5]], None, r'2 methods x 1 rows'),
    ([[1.5], [0.5]], None, r'Scores must lie in \[0, 1\]'),
    ([[0.5], [0.5]], [[(0.1, 2.0)], [None]], r'Ranges must lie in \[0, 1\]'),
  ],
)
def test_comparison_chart_refuses_bad_values(means, ranges, message):
  with pytest.raises(ValueError, match=message):
    overlay.draw_comparison_chart('t', ['mIoU'], ['a', 'b'], means, ranges)


def _check_overlays(save_dir, synthetic_set):
  colormap = colormap_lib.voc_colormap()
  ids = metrics.list_image_ids(synthetic_set.val_list)
  assert ids and sorted(os.listdir(save_dir / 'overlay')) == sorted(
    image_id + '.png' for image_id in ids
  )
  for entry in data.read_data_list(
    synthetic_set.data_dir, synthetic_set.val_list
  ):
    image = data.load_image(entry.image_path)
    labels = _read_png(save_dir / 'gray' / (entry.image_id + '.png'))
    picture = _read_png(save_dir / 'overlay' / (entry.image_id + '.png'))
    assert picture.shape == image.shape
    white = (picture == WHITE).all(axis=-1)
    # Every change of predicted class is a segment boundary.
    assert white[metrics.label_boundaries(labels)].all()
    blended = np.rint(
      0.5 * image.astype(np.float32) + 0.5 * colormap[labels].astype(np.float32)
    )
    assert (picture[~white] == blended[~white]).all()
  return ids


def test_inference_writes_overlays_on_request(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path, caplog
):
  flags = [
    '--data_dir',
    synthetic_set.data_dir,
    '--data_list',
    synthetic_set.val_list,
    '--restore_from',
    segsort_checkpoint_dir,
    '--prototype_dir',
    prototype_dir(prototype_run),
    '--save_dir',
    str(tmp_path),
    '--num_classes',
    str(NUM_CLASSES),
  ] + WINDOW_FLAGS
  inference_segsort.main(flags)
  assert not os.path.exists(tmp_path / 'overlay')
  caplog.set_level(logging.INFO, logger='segsort.inference')
  caplog.clear()
  # Asked for later: the images without an overlay are predicted again.
  inference_segsort.main(flags + ['--save_overlay'])
  ids = _check_overlays(tmp_path, synthetic_set)
  assert 'Predicted: %d images' % len(ids) in caplog.text
  # The k-means segments are drawn, not only the class regions.
  picture = _read_png(tmp_path / 'overlay' / (ids[0] + '.png'))
  labels = _read_png(tmp_path / 'gray' / (ids[0] + '.png'))
  assert (picture == WHITE).all(axis=-1).sum() > metrics.label_boundaries(
    labels
  ).sum()


def test_softmax_overlays_mark_the_predicted_regions(
  synthetic_set, softmax_checkpoint_dir, tmp_path
):
  inference_softmax.main(
    [
      '--data_dir',
      synthetic_set.data_dir,
      '--data_list',
      synthetic_set.val_list,
      '--restore_from',
      softmax_checkpoint_dir,
      '--save_dir',
      str(tmp_path),
      '--num_classes',
      str(NUM_CLASSES),
      '--save_overlay',
    ]
    + WINDOW_FLAGS
  )
  for image_id in _check_overlays(tmp_path, synthetic_set):
    picture = _read_png(tmp_path / 'overlay' / (image_id + '.png'))
    labels = _read_png(tmp_path / 'gray' / (image_id + '.png'))
    assert (
      (picture == WHITE).all(axis=-1) == metrics.label_boundaries(labels)
    ).all()


def test_benchmark_writes_a_per_class_iou_chart(tmp_path, capsys):
  prediction = np.zeros((8, 8), np.uint8)
  prediction[:, 4:] = 1
  truth = np.zeros((8, 8), np.uint8)
  truth[:, 6:] = 1
  for folder, labels in (('pred', prediction), ('gt', truth)):
    os.makedirs(tmp_path / folder)
    Image.fromarray(labels).save(tmp_path / folder / 'a.png')
  benchmark_by_mIoU.main(
    [
      '--pred_dir',
      str(tmp_path / 'pred'),
      '--gt_dir',
      str(tmp_path / 'gt'),
      '--num_classes',
      '3',
    ]
  )
  chart_path = tmp_path / 'metrics_iou.png'
  assert str(chart_path) in capsys.readouterr().out
  with open(tmp_path / 'metrics.json') as stream:
    results = json.load(stream)
  # Class 0: 32 of 48 pixels; class 1: 16 of 32; class 2: no pixels.
  assert results['class_iou'][:2] == pytest.approx([32 / 48, 0.5])
  chart = _read_png(chart_path)
  assert (
    chart.shape
    == overlay.draw_iou_chart(
      results['class_names'], results['class_iou'], results['mean_iou']
    ).shape
  )
  left = overlay.CHART_MARGIN + overlay.CHART_NAME_WIDTH
  row = chart[overlay.chart_row_top(1) + overlay.CHART_ROW_HEIGHT // 2]
  half = overlay.bar_length(0.5)
  assert (
    row[left + 1 : left + half - 1] == colormap_lib.voc_colormap()[1]
  ).all()
  assert (
    row[left + half + 1 : left + overlay.CHART_BAR_WIDTH]
    == overlay.CHART_BACKGROUND
  ).all()
