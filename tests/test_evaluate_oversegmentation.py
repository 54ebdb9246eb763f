"""Tests of tools/evaluate_oversegmentation.py."""

import json
import logging
import os
import re

import numpy as np
from PIL import Image
import pytest

from tools import evaluate_oversegmentation
from tools import make_oversegmentation

# Two classes split at column 3; the right segment straddles the split.
GROUND_TRUTH = np.array(
  [
    [0, 0, 0, 1, 1, 1],
    [0, 0, 0, 1, 1, 1],
    [0, 0, 0, 1, 1, 255],
  ],
  np.uint8,
)
SEGMENTS = np.array(
  [
    [0, 0, 1, 1, 1, 1],
    [0, 0, 1, 1, 1, 1],
    [0, 0, 1, 1, 1, 1],
  ],
  np.uint8,
)


def test_counts_take_each_segments_majority_and_leave_out_void():
  counts = evaluate_oversegmentation.oversegmentation_counts(
    SEGMENTS, GROUND_TRUTH, boundary_tolerance=0
  )
  # Segment 0: 6 pixels of class 0. Segment 1: 3 of class 0, 8 valid of
  # class 1 (the void pixel left out): its majority, class 1, holds 8.
  assert (counts.best_labelled, counts.valid) == (14, 17)
  assert (counts.segments, counts.pixels) == (2, 18)
  assert counts.squared_segment_sizes == 6**2 + 12**2
  results = counts.results()
  assert results['achievable_segmentation_accuracy'] == pytest.approx(14 / 17)
  assert results['pixel_weighted_segment_size'] == pytest.approx(180 / 18)
  assert results['segments_per_image'] == 2
  # Ground-truth boundary pixels: columns 2 and 3, and the two valid
  # neighbours of the void pixel. Segment boundary pixels: columns 1 and 2.
  assert results['boundary_recall'] == pytest.approx(3 / 8)
  assert results['boundary_precision'] == pytest.approx(3 / 6)
  within_one = evaluate_oversegmentation.oversegmentation_counts(
    SEGMENTS, GROUND_TRUTH, boundary_tolerance=1
  ).results()
  assert within_one['boundary_recall'] == pytest.approx(6 / 8)


def test_regions_of_equal_label_score_one():
  results = evaluate_oversegmentation.oversegmentation_counts(
    make_oversegmentation.label_components(GROUND_TRUTH), GROUND_TRUTH
  ).results()
  assert results['achievable_segmentation_accuracy'] == 1
  assert results['boundary_recall'] == 1


def test_counts_add_up_over_images():
  one = evaluate_oversegmentation.oversegmentation_counts(
    SEGMENTS, GROUND_TRUTH
  )
  both = one + evaluate_oversegmentation.oversegmentation_counts(
    np.zeros((2, 2), np.int64), np.array([[0, 1], [1, 1]])
  )
  assert (both.best_labelled, both.valid, both.images) == (17, 21, 2)
  assert both.segments == 3
  assert both.boundaries.ground_truth > one.boundaries.ground_truth


def test_counts_refuse_arrays_of_different_shapes():
  with pytest.raises(ValueError, match='segments are 3x6 but .* is 3x5'):
    evaluate_oversegmentation.oversegmentation_counts(
      SEGMENTS, GROUND_TRUTH[:, :5]
    )


def _write_set(root, ids=('a', 'b')):
  segment_dir = root / 'VOC2012' / 'hed'
  gt_dir = root / 'VOC2012' / 'segcls'
  segment_dir.mkdir(parents=True)
  gt_dir.mkdir(parents=True)
  for image_id in ids:
    Image.fromarray(SEGMENTS).save(segment_dir / (image_id + '.png'))
    Image.fromarray(GROUND_TRUTH).save(gt_dir / (image_id + '.png'))
  (root / 'train.txt').write_text(
    ''.join(
      'VOC2012/JPEGImages/%s.jpg VOC2012/segcls/%s.png\n' % (i, i) for i in ids
    )
  )
  return segment_dir, gt_dir


def test_tool_prints_and_writes_the_scores(tmp_path, capsys, caplog):
  _write_set(tmp_path)
  output = tmp_path / 'scores.json'
  with caplog.at_level(logging.INFO):
    assert (
      evaluate_oversegmentation.main(
        [
          '--data_dir',
          str(tmp_path),
          '--data_list',
          str(tmp_path / 'train.txt'),
          '--output_json',
          str(output),
        ]
      )
      == 0
    )
  printed = capsys.readouterr().out
  assert 'achievable segmentation accuracy: 82.35%' in printed
  assert 'images: 2' in printed
  scores = json.loads(output.read_text())
  assert scores['num_images'] == 2
  assert (scores['boundary_tolerance'], scores['ignore_label']) == (2.0, 255)
  assert scores['achievable_segmentation_accuracy'] == pytest.approx(14 / 17)
  assert 'images' in caplog.text


def test_tool_names_every_missing_file_before_reading(tmp_path):
  segment_dir, gt_dir = _write_set(tmp_path, ids=('a', 'b', 'c'))
  (segment_dir / 'a.png').unlink()
  (gt_dir / 'c.png').unlink()
  (segment_dir / 'b.png').write_bytes(b'not a png')
  with pytest.raises(SystemExit) as raised:
    evaluate_oversegmentation.main(
      ['--data_dir', str(tmp_path), '--data_list', str(tmp_path / 'train.txt')]
    )
  message = str(raised.value)
  assert message.startswith('error: 2 missing file(s): ')
  assert re.search(r'train\.txt, line 1: \S*hed/a\.png does not exist', message)
  assert re.search(
    r'train\.txt, line 3: \S*segcls/c\.png does not exist', message
  )
  assert '\n' not in message


def test_tool_notes_third_columns_it_does_not_score(tmp_path, capsys):
  # They were left out without a word, while training reads them.
  segment_dir, _ = _write_set(tmp_path, ids=('a', 'b'))
  data_list = tmp_path / 'third.txt'
  data_list.write_text(
    'VOC2012/JPEGImages/a.jpg VOC2012/segcls/a.png other/a.png\n'
    'VOC2012/JPEGImages/b.jpg VOC2012/segcls/b.png\n'
  )
  argv = ['--data_dir', str(tmp_path), '--data_list', str(data_list)]
  assert evaluate_oversegmentation.main(argv) == 0
  assert (
    'note: 1 line(s) of %s name an oversegmentation (third column); the '
    'ID.png of %s is scored instead'
    % (data_list, segment_dir)
    in capsys.readouterr().out
  )


def test_tool_names_every_bad_file_on_one_line(tmp_path):
  segment_dir, gt_dir = _write_set(tmp_path, ids=('a', 'b', 'c'))
  (segment_dir / 'a.png').write_bytes(b'not a png')
  Image.fromarray(GROUND_TRUTH[:2]).save(gt_dir / 'b.png')
  Image.fromarray(np.zeros((3, 6, 3), np.uint8)).save(segment_dir / 'c.png')
  with pytest.raises(SystemExit) as raised:
    evaluate_oversegmentation.main(['--data_dir', str(tmp_path)])
  message = str(raised.value)
  assert message.startswith('error: 3 bad file(s): ')
  assert (
    'Cannot decode oversegmentation %s' % (segment_dir / 'a.png') in message
  )
  assert 'hed/b.png is 3x6 but %s is 2x6' % (gt_dir / 'b.png') in message
  assert 'c.png is a mode RGB image' in message
  assert '\n' not in message


def test_tool_refuses_missing_folders_and_an_empty_one(
  tmp_path, capsys, monkeypatch
):
  with pytest.raises(SystemExit):
    evaluate_oversegmentation.main(['--data_dir', str(tmp_path)])
  assert (
    '--data_dir: no folder %s' % (tmp_path / 'VOC2012' / 'hed')
    in capsys.readouterr().err
  )
  with pytest.raises(SystemExit):
    evaluate_oversegmentation.main(
      ['--segment_dir', str(tmp_path / 'elsewhere')]
    )
  assert '--segment_dir: no folder' in capsys.readouterr().err
  # Neither flag given: it named --data_dir, which the user never gave.
  monkeypatch.chdir(tmp_path)
  with pytest.raises(SystemExit):
    evaluate_oversegmentation.main([])
  assert (
    'argument --segment_dir: no folder %s (--segment_dir not given, nor '
    '--data_dir)'
    % os.path.join('.', 'VOC2012', 'hed')
    in capsys.readouterr().err
  )
  (tmp_path / 'VOC2012' / 'hed').mkdir(parents=True)
  (tmp_path / 'VOC2012' / 'segcls').mkdir()
  with pytest.raises(SystemExit, match='holds no PNG oversegmentation'):
    evaluate_oversegmentation.main(['--data_dir', str(tmp_path)])


def test_tool_pipes_json_to_stdout(tmp_path, capsys):
  _write_set(tmp_path)
  assert (
    evaluate_oversegmentation.main(
      ['--data_dir', str(tmp_path), '--output_json', '-']
    )
    == 0
  )
  captured = capsys.readouterr()
  assert json.loads(captured.out)['num_images'] == 2
  assert 'achievable segmentation accuracy' in captured.err


def test_scores_without_evidence_read_not_available():
  void = np.full((3, 6), 255, np.uint8)
  results = evaluate_oversegmentation.oversegmentation_counts(
    SEGMENTS, void
  ).results()
  assert results['achievable_segmentation_accuracy'] is None
  assert results['boundary_recall'] is None
  report = evaluate_oversegmentation.format_report(results)
  assert 'achievable segmentation accuracy: n/a' in report
  assert 'boundary recall: n/a' in report
  # One class, 16-bit ids: no boundary to recall, every pixel labelled.
  one_class = np.full((3, 6), 1000, np.uint16)
  results = evaluate_oversegmentation.oversegmentation_counts(
    SEGMENTS, one_class
  ).results()
  assert results['achievable_segmentation_accuracy'] == 1
  assert 'boundary recall: n/a' in evaluate_oversegmentation.format_report(
    results
  )
  # The tolerance reads in its unit: 0.99 was about 59 pixels on a 36x48
  # image, beside 1 meaning one pixel.
  for tolerance, text in (
    (2.0, '2 pixels'),
    (0.0075, '0.0075 of the image diagonal'),
  ):
    report = evaluate_oversegmentation.format_report(
      dict(results, boundary_tolerance=tolerance)
    )
    assert report.splitlines()[1].endswith('(tolerance %s)' % text)


def test_counts_refuse_negative_class_ids():
  ground_truth = GROUND_TRUTH.astype(np.int32)
  ground_truth[0, 0] = -2
  with pytest.raises(ValueError, match=r'negative ids \(down to -2\)'):
    evaluate_oversegmentation.oversegmentation_counts(SEGMENTS, ground_truth)


def test_tool_refuses_a_list_naming_an_image_twice(tmp_path):
  _write_set(tmp_path)
  data_list = tmp_path / 'twice.txt'
  data_list.write_text(
    'JPEGImages/a.jpg segcls/a.png\n\nJPEGImages/b.jpg\n'
    'JPEGImages/a.jpg segcls/a.png\na b c d\n'
  )
  with pytest.raises(SystemExit) as raised:
    evaluate_oversegmentation.main(
      ['--data_dir', str(tmp_path), '--data_list', str(data_list)]
    )
  assert str(raised.value) == (
    'error: %s: line 4 names image a again (first on line 1); line 5 has 4 '
    'fields; expected IMAGE [LABEL [OVERSEGMENTATION]]' % data_list
  )


def test_a_folder_where_a_file_goes_is_named_as_such(tmp_path):
  segment_dir, _ = _write_set(tmp_path, ids=('a',))
  (segment_dir / 'b.png').mkdir()
  with pytest.raises(SystemExit) as raised:
    evaluate_oversegmentation.main(['--data_dir', str(tmp_path)])
  assert str(raised.value).endswith(
    '%s is not a file; %s does not exist'
    % (segment_dir / 'b.png', tmp_path / 'VOC2012' / 'segcls' / 'b.png')
  )
