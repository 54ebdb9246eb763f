"""Tests of the inference engine and its entry points (CPU, tiny images)."""

import argparse
import json
import logging
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

# inference_fixtures is also loaded as this module's pytest plugin (below);
# registered first so that pytest can still rewrite its asserts.
pytest.register_assert_rewrite('inference_fixtures')
# pylint: disable=g-import-not-at-top,wrong-import-position
from inference_fixtures import EMBEDDING_DIM
from inference_fixtures import IMAGE_SIZE
from inference_fixtures import NUM_CLASSES
from inference_fixtures import WINDOW_FLAGS
from inference_fixtures import prototype_dir
from inference_fixtures import write_untrained_checkpoint
from network import checkpoints
from network.segsort import common_utils
from network.segsort import eval_utils
from segsort import api
from segsort import config as config_lib
from segsort import data
from segsort import errors
from segsort import explain
from segsort import extract_prototypes
from segsort import inference
from segsort import inference_segsort
from segsort import inference_segsort_msc
from segsort import inference_softmax
from segsort.inference import banks
from segsort.inference import extraction
from segsort import metrics

# The session fixtures: synthetic_set, segsort_checkpoint_dir,
# softmax_checkpoint_dir, unsup_checkpoint_dir and prototype_run.
pytest_plugins = ('inference_fixtures',)


@pytest.fixture(autouse=True)
def _capture_inference_progress(caplog):
  """Captures the engine's progress messages (INFO), which runs log."""
  caplog.set_level(logging.INFO, logger='segsort.inference')


def _read_png(path):
  with Image.open(path) as image:
    return np.asarray(image)


def _list_ids(data_list):
  return metrics.list_image_ids(data_list)


def _spoil_keeping_mtime(path):
  """Makes a file undecodable without a newer time, which would have its
  outputs redone: a reader that decoded it would fail."""
  mtime_ns = os.stat(path).st_mtime_ns
  path.write_bytes(b'not an image')
  os.utime(path, ns=(mtime_ns, mtime_ns))


# ----------------------------------------------------------------------------
# Geometry and per-image maths.


@pytest.mark.parametrize(
  'padded, window, stride, expected',
  [
    (64, 64, 48, [0]),
    (160, 64, 48, [0, 48, 96]),
    (160, 64, 50, [0, 48, 96]),  # 50 rounds down to 48, a multiple of 8.
    (504, 480, 320, [0, 24]),
  ],
)
def test_window_offsets(padded, window, stride, expected):
  assert inference.window_offsets(padded, window, stride, 8) == expected


class _AveragePoolingNetwork:
  """A network stand-in whose output cell is its 4x4 input block's mean."""

  output_stride = 4

  def __call__(self, images, training=False):
    del training
    return tf.nn.avg_pool2d(images, 4, 4, 'VALID')


def test_sliding_windows_line_up_with_the_image_grid():
  image = tf.random.stateless_normal([18, 27, 3], seed=[1, 2])
  runner = inference.DenseOutputRunner(
    _AveragePoolingNetwork(), (12, 16), (8, 8), normalize_windows=False
  )
  grid = runner.output_grid(image)
  # Windows are aligned to the 4-pixel cells, so every window's cell equals
  # the whole zero-padded image's cell, whatever the overlap.
  padded = tf.pad(image, [[0, 2], [0, 1], [0, 0]])
  expected = tf.nn.avg_pool2d(padded[tf.newaxis], 4, 4, 'VALID')[0]
  np.testing.assert_allclose(grid.numpy(), expected.numpy(), atol=1e-6)
  assert runner.upsample_to_image(grid, (18, 27)).shape == (18, 27, 3)


def test_strides_larger_than_the_window_are_rejected():
  with pytest.raises(errors.InferenceError, match='strides'):
    inference.DenseOutputRunner(
      _AveragePoolingNetwork(), (8, 8), (12, 4), normalize_windows=False
    )


def test_labels_at_cell_centres():
  labels = np.arange(100).reshape(10, 10)
  # Cells of 4 pixels: centre rows/columns 2, 6 and (clipped) 9.
  np.testing.assert_array_equal(
    inference.labels_at_cell_centres(labels, 4),
    [[22, 26, 29], [62, 66, 69], [92, 96, 99]],
  )


def test_prototype_boxes_in_image_pixels():
  cell_prototypes = np.array([[0, 0, -1], [1, 0, -1]])
  boxes = inference.prototype_boxes(cell_prototypes, 2, 8, (12, 20))
  np.testing.assert_array_equal(boxes, [[0, 0, 12, 16], [8, 0, 12, 8]])


def test_image_prototypes_match_eval_utils_and_their_members():
  height, width, dim = 6, 7, 5
  embedding = common_utils.normalize_embedding(
    tf.random.stateless_normal([height, width, dim], seed=[3, 4])
  )
  labels = tf.random.stateless_uniform(
    [height, width], seed=[5, 6], maxval=4, dtype=tf.int32
  )
  labels = tf.where(labels == 3, 255, labels)
  features, prototype_labels, cell_prototypes = (
    inference.extract_image_prototypes(embedding, labels, 2, 5, 255)
  )
  expected = eval_utils.extract_trained_prototypes(
    tf.reshape(embedding, [-1, dim]),
    tf.reshape(
      common_utils.generate_location_features([height, width], 'float'), [-1, 2]
    ),
    tf.reshape(
      common_utils.initialize_cluster_labels([2, 2], [height, width]), [-1]
    ),
    4,
    5,
    tf.reshape(labels, [-1]),
    1,
    255,
  )
  np.testing.assert_allclose(features.numpy(), expected[0].numpy(), atol=1e-6)
  np.testing.assert_array_equal(prototype_labels.numpy(), expected[1].numpy())
  cell_prototypes = cell_prototypes.numpy()
  assert np.all(cell_prototypes[labels.numpy() == 255] == -1)
  for index, feature in enumerate(features.numpy()):
    members = cell_prototypes == index
    assert np.all(labels.numpy()[members] == prototype_labels[index])
    member_sum = embedding.numpy()[members].sum(axis=0)
    np.testing.assert_allclose(
      feature, member_sum / np.linalg.norm(member_sum), atol=1e-5
    )


# ----------------------------------------------------------------------------
# Prototype extraction.


def test_prototype_files_are_consistent(prototype_run, synthetic_set):
  bank = inference.load_prototype_bank(
    prototype_dir(prototype_run), EMBEDDING_DIM, NUM_CLASSES, with_sources=True
  )
  num_prototypes = len(bank.labels)
  assert bank.features.shape == (num_prototypes, EMBEDDING_DIM)
  assert bank.features.dtype == np.float32 and bank.labels.dtype == np.int32
  np.testing.assert_allclose(
    np.linalg.norm(bank.features, axis=1), 1, atol=1e-5
  )
  train_ids = _list_ids(synthetic_set.train_list)
  assert [image['image_id'] for image in bank.sources['images']] == train_ids
  assert bank.sources['num_prototypes'] == num_prototypes
  assert np.all(np.diff(bank.image_indices) >= 0)
  assert set(bank.image_indices) <= set(range(len(train_ids)))
  y0, x0, y1, x1 = bank.boxes.T
  assert np.all((0 <= y0) & (y0 < y1) & (y1 <= IMAGE_SIZE[0]))
  assert np.all((0 <= x0) & (x0 < x1) & (x1 <= IMAGE_SIZE[1]))
  for label, image_index, (top, left, bottom, right) in zip(
    bank.labels, bank.image_indices, bank.boxes
  ):
    label_path = os.path.join(
      synthetic_set.data_dir,
      'VOC2012',
      'segcls',
      bank.sources['images'][image_index]['image_id'] + '.png',
    )
    assert label in data.load_label(label_path)[top:bottom, left:right]


def test_prototype_extraction_rerun_reuses_the_cache(
  prototype_run, synthetic_set, segsort_checkpoint_dir, caplog
):
  features_path = os.path.join(
    prototype_dir(prototype_run), inference.PROTOTYPE_FEATURES_FILE
  )
  features = np.load(features_path)
  caplog.clear()
  extract_prototypes.main(
    [
      '--data_dir',
      synthetic_set.data_dir,
      '--data_list',
      synthetic_set.train_list,
      '--restore_from',
      segsort_checkpoint_dir,
      '--save_dir',
      prototype_run,
      '--num_classes',
      str(NUM_CLASSES),
    ]
    + WINDOW_FLAGS
  )
  assert '0 images in' in caplog.text
  np.testing.assert_array_equal(np.load(features_path), features)


def test_prototype_extraction_redoes_an_image_edited_since(
  prototype_run, synthetic_set, segsort_checkpoint_dir, tmp_path, caplog
):
  """A cached image older than its label (a mask fixed since) is redone."""
  shutil.copytree(prototype_run, tmp_path / 'out')
  first_id = _list_ids(synthetic_set.train_list)[0]
  cached = tmp_path / 'out' / 'prototypes' / 'cache' / (first_id + '.npz')
  os.utime(cached, ns=(1, 1))
  caplog.clear()
  extract_prototypes.main(
    _extraction_flags(
      synthetic_set, segsort_checkpoint_dir, synthetic_set.train_list, tmp_path
    )
  )
  assert '1 images in' in caplog.text and '3 skipped' in caplog.text
  assert os.stat(cached).st_mtime_ns > 1


def test_prototype_cache_of_other_settings_is_cleared(
  prototype_run, synthetic_set, segsort_checkpoint_dir, tmp_path, caplog
):
  save_dir = str(tmp_path / 'copy')
  shutil.copytree(prototype_run, save_dir)
  caplog.clear()
  extract_prototypes.main(
    [
      '--data_dir',
      synthetic_set.data_dir,
      '--data_list',
      synthetic_set.train_list,
      '--restore_from',
      segsort_checkpoint_dir,
      '--save_dir',
      save_dir,
      '--num_classes',
      str(NUM_CLASSES),
      '--num_clusters',
      '2',
    ]
    + WINDOW_FLAGS
  )
  output = caplog.text
  assert 'clearing 4 files' in output and '4 images in' in output
  # 2 x 2 clusters give at most 4 prototypes per image.
  labels = np.load(
    os.path.join(prototype_dir(save_dir), inference.PROTOTYPE_LABELS_FILE)
  )
  assert len(labels) <= 4 * 4


def _copy_list_files(synthetic_set, image_ids, directory, label=None):
  """Copies images (and labels) to `directory`; returns a list of them."""
  lines = []
  for image_id in image_ids:
    image_path = os.path.join(directory, image_id + '.jpg')
    shutil.copy(
      os.path.join(
        synthetic_set.data_dir, 'VOC2012', 'JPEGImages', image_id + '.jpg'
      ),
      image_path,
    )
    label_path = os.path.join(directory, image_id + '.png')
    if label is None:
      shutil.copy(
        os.path.join(
          synthetic_set.data_dir, 'VOC2012', 'segcls', image_id + '.png'
        ),
        label_path,
      )
    else:
      Image.fromarray(label).save(label_path)
    lines.append('%s %s\n' % (image_path, label_path))
  data_list = os.path.join(directory, 'list.txt')
  with open(data_list, 'w') as stream:
    stream.writelines(lines)
  return data_list


def _extraction_flags(synthetic_set, checkpoint_dir, data_list, tmp_path):
  """extract_prototypes.main's flags for a list, writing into tmp_path/out."""
  return [
    '--data_dir',
    synthetic_set.data_dir,
    '--data_list',
    data_list,
    '--restore_from',
    checkpoint_dir,
    '--save_dir',
    str(tmp_path / 'out'),
    '--num_classes',
    str(NUM_CLASSES),
  ] + WINDOW_FLAGS


def test_extraction_ignores_labels_of_unknown_classes(
  synthetic_set, segsort_checkpoint_dir, tmp_path, caplog
):
  train_id = _list_ids(synthetic_set.train_list)[0]
  label = np.full(IMAGE_SIZE, 9, np.uint8)
  label[IMAGE_SIZE[0] // 2 :] = 1
  data_list = _copy_list_files(
    synthetic_set, [train_id], str(tmp_path), label=label
  )
  extract_prototypes.main(
    _extraction_flags(
      synthetic_set, segsort_checkpoint_dir, data_list, tmp_path
    )
  )
  num_ignored = IMAGE_SIZE[0] // 2 * IMAGE_SIZE[1]
  assert (
    'Ignored %d label pixels of 1 files of %s holding values outside '
    '[0, 4).' % (num_ignored, data_list) in caplog.text
  )
  assert re.search(
    r'%d label pixels of .*%s.png outside \[0, 4\) \(values '
    r'\[9\]\) are ignored' % (num_ignored, train_id),
    caplog.text,
  )
  labels = np.load(
    os.path.join(
      prototype_dir(str(tmp_path / 'out')), inference.PROTOTYPE_LABELS_FILE
    )
  )
  assert set(labels.tolist()) == {1}


def test_a_k_means_grid_finer_than_the_embedding_is_warned_of_once(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path, caplog
):
  # 64x80 images at output stride 8: an 8x10 embedding. A 9,4 grid asks for
  # 9 rows of clusters; it gave 8 rows, silently.
  warning = (
    'The k-means grid num_clusters 9,4 asks for more clusters per axis '
    'than the 8x10 embedding of a 64x80 image has cells (output stride 8)'
  )
  extract_prototypes.main(
    _extraction_flags(
      synthetic_set, segsort_checkpoint_dir, synthetic_set.train_list, tmp_path
    )
    + ['--num_clusters', '9,4']
  )
  assert caplog.text.count(warning) == 1
  caplog.clear()
  segmenter = api.load(
    segsort_checkpoint_dir, prototype_dir(prototype_run), num_clusters=(9, 4)
  )
  image = np.zeros(IMAGE_SIZE + (3,), np.uint8)
  segmenter.predict(image)
  segmenter.predict(image)
  assert caplog.text.count(warning) == 1
  caplog.clear()
  api.load(
    segsort_checkpoint_dir, prototype_dir(prototype_run), num_clusters=(8, 10)
  ).predict(image)
  assert 'clusters per axis' not in caplog.text


def test_predicting_with_other_windows_than_the_extraction_is_warned_of(
  segsort_checkpoint_dir, prototype_run, caplog
):
  """Silent before: on CamVid val, the commands' default 720x720 windows
  over prototypes of 360x480 ones gave 9.24% mIoU against 31.04%."""
  sources = banks.load_prototype_bank(
    prototype_dir(prototype_run), 8, NUM_CLASSES
  ).sources
  window, strides = sources['window_size'], sources['strides']
  api.load(
    segsort_checkpoint_dir,
    prototype_dir(prototype_run),
    window_size=tuple(window),
    strides=tuple(strides),
  )
  assert 'The prototypes were extracted with' not in caplog.text
  api.load(
    segsort_checkpoint_dir,
    prototype_dir(prototype_run),
    window_size=(window[0] + 8, window[1]),
    strides=tuple(strides),
  )
  assert (
    'The prototypes were extracted with %dx%d windows (strides %d,%d), these '
    'predictions use %dx%d (strides %d,%d)'
    % (*window, *strides, window[0] + 8, window[1], *strides)
  ) in caplog.text
  assert (
    "to predict with the extraction's windows, give --input_size %d,%d "
    '--strides %d,%d (window_size and strides in segsort.api).'
    % (*window, *strides)
  ) in caplog.text


def test_extraction_of_a_list_without_labelled_pixels_stops_before_any_work(
  synthetic_set, segsort_checkpoint_dir, tmp_path, monkeypatch
):
  # It ran the network over the whole list and made the cache first.
  image_ids = _list_ids(synthetic_set.train_list)[:2]
  label = np.full(IMAGE_SIZE, 255, np.uint8)
  label[0, :5] = 9  # out of range: ignored too
  data_list = _copy_list_files(
    synthetic_set, image_ids, str(tmp_path), label=label
  )
  monkeypatch.setattr(
    extraction,
    '_extract_one',
    lambda *args: pytest.fail('the network ran'),
  )
  with pytest.raises(
    SystemExit,
    match='No labelled pixel in the images of %s: no prototype to write'
    % re.escape(data_list),
  ):
    extract_prototypes.main(
      _extraction_flags(
        synthetic_set, segsort_checkpoint_dir, data_list, tmp_path
      )
    )
  assert not (tmp_path / 'out' / 'prototypes').exists()


def test_extraction_skips_cached_images_without_decoding_them(
  synthetic_set, segsort_checkpoint_dir, tmp_path, caplog
):
  image_ids = _list_ids(synthetic_set.train_list)[:2]
  data_list = _copy_list_files(synthetic_set, image_ids, str(tmp_path))
  flags = _extraction_flags(
    synthetic_set, segsort_checkpoint_dir, data_list, tmp_path
  )
  extract_prototypes.main(flags)
  bank_path = os.path.join(
    prototype_dir(str(tmp_path / 'out')), inference.PROTOTYPE_FEATURES_FILE
  )
  features = np.load(bank_path)
  _spoil_keeping_mtime(tmp_path / (image_ids[0] + '.jpg'))
  caplog.clear()
  extract_prototypes.main(flags)
  output = caplog.text
  assert 'Extracted prototypes: 0 images in' in output
  assert '2 skipped' in output
  np.testing.assert_array_equal(np.load(bank_path), features)


def test_a_moved_output_folder_is_reused_and_a_retrained_run_redone(
  synthetic_set, segsort_checkpoint_dir, tmp_path, caplog
):
  # The pipelines keep runs, prototypes and predictions in one OUT folder.
  # Moved, everything was extracted and predicted again (the settings held
  # absolute paths); a run trained again in place was not.
  def run_everything(out):
    extract_prototypes.main(
      _extraction_flags(
        synthetic_set, str(out / 'run'), synthetic_set.train_list, out
      )
    )
    inference_segsort.main(
      _segsort_flags(
        synthetic_set, str(out / 'run'), str(out / 'out'), out / 'predicted'
      )
    )

  shutil.copytree(segsort_checkpoint_dir, tmp_path / 'first' / 'run')
  run_everything(tmp_path / 'first')
  os.rename(tmp_path / 'first', tmp_path / 'moved')
  caplog.clear()
  run_everything(tmp_path / 'moved')
  assert 'Extracted prototypes: 0 images in' in caplog.text
  assert 'Predicted: 0 images in' in caplog.text
  assert 'were made with other settings' not in caplog.text
  # Trained again in place: the same name, other weights.
  other_prefix = write_untrained_checkpoint(
    str(tmp_path / 'other'), mode='segsort'
  )
  for suffix in ('.index', '.data-00000-of-00001'):
    shutil.copy(
      other_prefix + suffix,
      str(tmp_path / 'moved' / 'run' / 'ckpt-3') + suffix,
    )
  caplog.clear()
  run_everything(tmp_path / 'moved')
  assert 'Prototypes cached in' in caplog.text
  assert 'Extracted prototypes: 4 images in' in caplog.text
  assert 'Predicted: 2 images in' in caplog.text


def test_embedding_dim_flag_is_checked(
  synthetic_set, segsort_checkpoint_dir, tmp_path
):
  with pytest.raises(SystemExit, match='--embedding_dim 16 differs from the 8'):
    extract_prototypes.main(
      [
        '--data_dir',
        synthetic_set.data_dir,
        '--data_list',
        synthetic_set.train_list,
        '--restore_from',
        segsort_checkpoint_dir,
        '--save_dir',
        str(tmp_path),
        '--embedding_dim',
        '16',
      ]
      + WINDOW_FLAGS
    )


# ----------------------------------------------------------------------------
# k-NN inference.


def _segsort_flags(synthetic_set, checkpoint_dir, prototype_run, save_dir):
  return [
    '--data_dir',
    synthetic_set.data_dir,
    '--data_list',
    synthetic_set.val_list,
    '--restore_from',
    checkpoint_dir,
    '--prototype_dir',
    prototype_dir(prototype_run),
    '--save_dir',
    str(save_dir),
    '--num_classes',
    str(NUM_CLASSES),
  ] + WINDOW_FLAGS


def _command(command, synthetic_set, checkpoint_dir, prototype_run, save_dir):
  """The main and flags of 'inference' or 'extraction', without a list."""
  argv = _segsort_flags(synthetic_set, checkpoint_dir, prototype_run, save_dir)
  if command == 'inference':
    return inference_segsort.main, argv
  index = argv.index('--prototype_dir')
  del argv[index : index + 2]
  return extract_prototypes.main, argv


@pytest.fixture(scope='module')
def single_scale_dir(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path_factory
):
  save_dir = tmp_path_factory.mktemp('single_scale')
  inference_segsort.main(
    _segsort_flags(
      synthetic_set, segsort_checkpoint_dir, prototype_run, save_dir
    )
  )
  return save_dir


def test_single_scale_predictions_have_the_image_size(
  single_scale_dir, synthetic_set
):
  for image_id in _list_ids(synthetic_set.val_list):
    gray = _read_png(single_scale_dir / 'gray' / (image_id + '.png'))
    color = _read_png(single_scale_dir / 'color' / (image_id + '.png'))
    assert gray.shape == IMAGE_SIZE and gray.max() < NUM_CLASSES
    assert color.shape == IMAGE_SIZE + (3,)
  results = metrics.evaluate_prediction_dir(
    str(single_scale_dir / 'gray'),
    os.path.join(synthetic_set.data_dir, 'VOC2012', 'segcls'),
    NUM_CLASSES,
  )
  assert results['num_images'] == 2 and results['mean_iou'] is not None


def test_rerun_skips_finished_images(
  single_scale_dir, synthetic_set, segsort_checkpoint_dir, prototype_run, caplog
):
  first_id, second_id = _list_ids(synthetic_set.val_list)
  kept = single_scale_dir / 'gray' / (first_id + '.png')
  kept_mtime = os.stat(kept).st_mtime_ns
  removed = single_scale_dir / 'color' / (second_id + '.png')
  removed_prediction = _read_png(removed)
  os.remove(removed)
  caplog.clear()
  inference_segsort.main(
    _segsort_flags(
      synthetic_set, segsort_checkpoint_dir, prototype_run, single_scale_dir
    )
  )
  output = caplog.text
  assert 'Predicted: 1 images in' in output and '1 skipped' in output
  assert os.stat(kept).st_mtime_ns == kept_mtime
  np.testing.assert_array_equal(_read_png(removed), removed_prediction)


def test_rerun_redoes_an_image_edited_since(
  single_scale_dir, synthetic_set, segsort_checkpoint_dir, prototype_run, caplog
):
  first_id, _ = _list_ids(synthetic_set.val_list)
  stale = single_scale_dir / 'color' / (first_id + '.png')
  os.utime(stale, ns=(1, 1))
  # The benchmark's default scores, of predictions about to change.
  scores = [
    single_scale_dir / name for name in ('metrics.json', 'metrics_iou.png')
  ]
  for path in scores:
    path.write_text('{}')
  caplog.clear()
  inference_segsort.main(
    _segsort_flags(
      synthetic_set, segsort_checkpoint_dir, prototype_run, single_scale_dir
    )
  )
  assert 'Predicted: 1 images in' in caplog.text
  assert '1 skipped' in caplog.text
  assert os.stat(stale).st_mtime_ns > 1
  assert not any(path.exists() for path in scores)


def test_rerun_does_not_decode_finished_images(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path, caplog
):
  data_list = _copy_list_files(
    synthetic_set, _list_ids(synthetic_set.val_list), str(tmp_path)
  )
  flags = _segsort_flags(
    synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path / 'out'
  )
  flags[flags.index('--data_list') + 1] = data_list
  inference_segsort.main(flags)
  for name in os.listdir(tmp_path):
    if name.endswith('.jpg'):
      _spoil_keeping_mtime(tmp_path / name)
  caplog.clear()
  inference_segsort.main(flags)
  output = caplog.text
  assert 'Predicted: 0 images in' in output and '2 skipped' in output


def _settings(save_dir):
  with open(os.path.join(save_dir, inference.SETTINGS_FILE)) as stream:
    return json.load(stream)


def test_predictions_of_other_settings_are_recomputed(
  single_scale_dir,
  synthetic_set,
  segsort_checkpoint_dir,
  prototype_run,
  tmp_path,
  caplog,
):
  save_dir = tmp_path / 'copy'
  shutil.copytree(single_scale_dir, save_dir)
  settings = _settings(save_dir)
  # The checkpoint and the bank by content, not by where they lie.
  assert settings['checkpoint'] == {
    'name': 'ckpt-3',
    'index_sha256': inference.file_sha256(
      os.path.join(segsort_checkpoint_dir, 'ckpt-3.index')
    ),
  }
  assert settings['k_in_nearest_neighbors'] == 15
  # Not given: the checkpoint's (the trainer's defaults), not overridden.
  assert settings['num_clusters'] == [5, 5]
  assert settings['kmeans_iterations'] == 10
  assert settings['colour_weight'] == 0.0
  assert 'flags_overriding_checkpoint' not in settings
  assert settings['scales'] == [1.0] and settings['flip'] is False
  assert set(settings['prototype_bank']) == {'sha256'}
  caplog.clear()
  inference_segsort.main(
    _segsort_flags(
      synthetic_set, segsort_checkpoint_dir, prototype_run, save_dir
    )
    + ['--k_in_nearest_neighbors', '3']
  )
  output = caplog.text
  assert 'k_in_nearest_neighbors: 15 -> 3' in output
  assert 'clearing 4 files' in output
  assert 'Predicted: 2 images in' in output and '0 skipped' in output
  assert _settings(save_dir)['k_in_nearest_neighbors'] == 3


def _rewrite_bank_in_place(directory):
  """Reorders a bank's prototypes and records the new files' digests."""
  sources_path = os.path.join(directory, inference.PROTOTYPE_SOURCES_FILE)
  with open(sources_path) as stream:
    sources = json.load(stream)
  for name in inference.PROTOTYPE_ARRAY_FILES:
    path = os.path.join(directory, name)
    np.save(path, np.load(path)[::-1])
    sources['sha256'][name] = inference.file_sha256(path)
  with open(sources_path, 'w') as stream:
    json.dump(sources, stream)


def test_predictions_of_a_rewritten_bank_are_recomputed(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path, caplog
):
  bank_run = tmp_path / 'bank'
  shutil.copytree(prototype_dir(prototype_run), prototype_dir(bank_run))
  flags = _segsort_flags(
    synthetic_set, segsort_checkpoint_dir, str(bank_run), tmp_path / 'out'
  )
  inference_segsort.main(flags)
  _rewrite_bank_in_place(prototype_dir(bank_run))
  caplog.clear()
  inference_segsort.main(flags)
  output = caplog.text
  assert 'prototype_bank:' in output and 'clearing 4 files' in output
  assert 'Predicted: 2 images in' in output


def test_scale_aug_given_bare_selects_the_multi_scale_set():
  required = [
    '--data_dir',
    'd',
    '--data_list',
    'l',
    '--restore_from',
    'r',
    '--save_dir',
    's',
    '--prototype_dir',
    'p',
  ]
  for default_scales in [(1.0,), inference.MULTI_SCALES]:
    parser = inference_segsort.build_parser('', default_scales, (720, 720))
    args = parser.parse_args(required + ['--scale_aug', '--flip_aug'])
    assert args.scale_aug == (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
    assert args.flip_aug
    assert parser.parse_args(required).scale_aug == default_scales
    assert parser.parse_args(required + ['--scale_aug', '0.5,1']).scale_aug == (
      0.5,
      1.0,
    )
    # The largest accepted scale (flags.MAX_IMAGE_SCALE).
    assert parser.parse_args(required + ['--scale_aug', '4']).scale_aug == (
      4.0,
    )
    args = parser.parse_args(
      required + ['--embedding_dim', '32', '--input_size', '321']
    )
    assert args.embedding_dim == 32 and args.input_size == (321, 321)


@pytest.mark.parametrize('tool', [inference_segsort, inference_segsort_msc])
def test_inference_embedding_dim_flag_is_checked(
  tool, synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path
):
  with pytest.raises(SystemExit, match='--embedding_dim 16 differs from the 8'):
    tool.main(
      _segsort_flags(
        synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path
      )
      + ['--embedding_dim', '16']
    )


def test_explain_shows_no_more_neighbours_than_vote(tmp_path, capsys):
  """Accepted before, and fewer were shown than asked."""
  argv = ['--image', 'x.png', '--restore_from', 'run', '--prototype_dir', 'p']
  argv += ['--data_dir', str(tmp_path), '--save_dir', str(tmp_path / 'out')]
  with pytest.raises(SystemExit):
    explain.main(
      argv + ['--k_in_nearest_neighbors', '3', '--num_neighbours_shown', '4']
    )
  assert (
    'argument --num_neighbours_shown: must be at most --k_in_nearest_neighbors'
    ' 3, got 4' in capsys.readouterr().err
  )
  with pytest.raises(SystemExit):
    explain.main(argv + ['--num_neighbours_shown', '20'])
  assert 'at most --k_in_nearest_neighbors 15, got 20' in (
    capsys.readouterr().err
  )


def test_explain_embedding_dim_flag_is_checked(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path
):
  with pytest.raises(SystemExit, match='--embedding_dim 16 differs from the 8'):
    explain.main(
      [
        '--image_id',
        'x',
        '--data_dir',
        synthetic_set.data_dir,
        '--restore_from',
        segsort_checkpoint_dir,
        '--prototype_dir',
        prototype_dir(prototype_run),
        '--save_dir',
        str(tmp_path),
        '--embedding_dim',
        '16',
      ]
    )


def test_msc_with_scale_one_and_no_flip_equals_single_scale(
  single_scale_dir,
  synthetic_set,
  segsort_checkpoint_dir,
  prototype_run,
  tmp_path,
):
  inference_segsort_msc.main(
    _segsort_flags(
      synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path
    )
    + ['--scale_aug', '1']
  )
  for image_id in _list_ids(synthetic_set.val_list):
    np.testing.assert_array_equal(
      _read_png(tmp_path / 'gray' / (image_id + '.png')),
      _read_png(single_scale_dir / 'gray' / (image_id + '.png')),
    )


def test_msc_with_scales_and_flips_predicts_full_size(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path
):
  inference_segsort_msc.main(
    _segsort_flags(
      synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path
    )
    + ['--flip_aug']
  )
  for image_id in _list_ids(synthetic_set.val_list):
    gray = _read_png(tmp_path / 'gray' / (image_id + '.png'))
    assert gray.shape == IMAGE_SIZE and gray.max() < NUM_CLASSES


def test_unsupervised_checkpoints_are_evaluated_the_same_way(
  synthetic_set, unsup_checkpoint_dir, tmp_path
):
  extract_prototypes.main(
    [
      '--data_dir',
      synthetic_set.data_dir,
      '--data_list',
      synthetic_set.train_list,
      '--restore_from',
      unsup_checkpoint_dir,
      '--save_dir',
      str(tmp_path),
      '--num_classes',
      str(NUM_CLASSES),
    ]
    + WINDOW_FLAGS
  )
  inference_segsort.main(
    _segsort_flags(
      synthetic_set, unsup_checkpoint_dir, str(tmp_path), tmp_path / 'val'
    )
  )
  image_id = _list_ids(synthetic_set.val_list)[0]
  assert (
    _read_png(tmp_path / 'val' / 'gray' / (image_id + '.png')).shape
    == IMAGE_SIZE
  )


# ----------------------------------------------------------------------------
# Softmax baseline.


def test_softmax_is_the_argmax_of_upsampled_logits(
  softmax_checkpoint_dir, synthetic_set
):
  network, _, _ = inference.restore_network(
    softmax_checkpoint_dir, inference.SOFTMAX_MODES
  )
  predictor = inference.SoftmaxPredictor(
    network, window_size=IMAGE_SIZE, strides=IMAGE_SIZE, num_classes=NUM_CLASSES
  )
  image = tf.random.stateless_normal(IMAGE_SIZE + (3,), seed=[7, 8]) * 50
  logits = network(image[tf.newaxis], training=False)
  expected = tf.argmax(tf.image.resize(logits, IMAGE_SIZE), axis=-1)[0]
  np.testing.assert_array_equal(
    inference.predict_labels(predictor, image), expected.numpy()
  )


def _softmax_val_flags(
  synthetic_set, checkpoint_dir, save_dir, num_classes=NUM_CLASSES
):
  """inference_softmax.main's flags for the val list."""
  return [
    '--data_dir',
    synthetic_set.data_dir,
    '--data_list',
    synthetic_set.val_list,
    '--restore_from',
    checkpoint_dir,
    '--save_dir',
    str(save_dir),
    '--num_classes',
    str(num_classes),
  ] + WINDOW_FLAGS


def test_softmax_multi_scale_predicts_full_size(
  softmax_checkpoint_dir, synthetic_set, tmp_path
):
  inference_softmax.main(
    _softmax_val_flags(synthetic_set, softmax_checkpoint_dir, tmp_path)
    + ['--scale_aug', '0.5,1', '--flip_aug']
  )
  for image_id in _list_ids(synthetic_set.val_list):
    gray = _read_png(tmp_path / 'gray' / (image_id + '.png'))
    assert gray.shape == IMAGE_SIZE and gray.max() < NUM_CLASSES


def test_softmax_with_other_classes_than_its_checkpoint_is_refused_plainly(
  softmax_checkpoint_dir, synthetic_set, tmp_path, caplog
):
  # It warned that it used --num_classes, then refused it.
  with pytest.raises(
    SystemExit,
    match='predicts %d classes, not --num_classes %d'
    % (NUM_CLASSES, NUM_CLASSES + 2),
  ):
    inference_softmax.main(
      _softmax_val_flags(
        synthetic_set, softmax_checkpoint_dir, tmp_path, NUM_CLASSES + 2
      )
    )
  assert 'differs from the' not in caplog.text


# ----------------------------------------------------------------------------
# Bad input.


def _write_bank(directory, features, labels):
  os.makedirs(directory, exist_ok=True)
  np.save(
    os.path.join(directory, inference.PROTOTYPE_FEATURES_FILE),
    np.asarray(features, np.float32),
  )
  np.save(
    os.path.join(directory, inference.PROTOTYPE_LABELS_FILE),
    np.asarray(labels, np.int32),
  )


def test_missing_prototype_files_are_named(tmp_path):
  with pytest.raises(
    errors.InferenceError,
    match=r'Missing prototype features file .*'
    r'prototype_features\.npy',
  ):
    inference.load_prototype_bank(str(tmp_path), EMBEDDING_DIM, NUM_CLASSES)


@pytest.mark.parametrize(
  'contents', [b'just some text\n', b'', b'\x93NUMPY\x01\x00broken']
)
def test_a_corrupt_bank_file_is_named_without_numpy_s_advice(
  tmp_path, contents
):
  _write_bank(tmp_path, np.ones((2, EMBEDDING_DIM)), [0, 1])
  features = tmp_path / inference.PROTOTYPE_FEATURES_FILE
  features.write_bytes(contents)
  with pytest.raises(errors.InferenceError) as raised:
    inference.load_prototype_bank(str(tmp_path), EMBEDDING_DIM, NUM_CLASSES)
  message = str(raised.value)
  assert message.startswith(
    'Cannot read prototype features file %s: ' % features
  )
  assert message.endswith('run segsort.extract_prototypes again')
  assert 'allow_pickle' not in message and '\n' not in message


@pytest.mark.parametrize(
  'features, labels, message',
  [
    (
      np.full((2, EMBEDDING_DIM), np.nan, np.float32),
      np.array([0, 1], np.int32),
      'NaN or infinite features',
    ),
    (
      np.ones((2, EMBEDDING_DIM), np.complex64),
      np.array([0, 1], np.int32),
      'holds complex64 values; expected floating-point features',
    ),
    (
      np.ones((2, EMBEDDING_DIM), np.float32),
      np.array([0.5, 1.0]),
      'holds float64 values; expected integer class ids',
    ),
    (
      np.ones((2, EMBEDDING_DIM), np.float32),
      np.array(['a', 'b']),
      'holds <U1 values; expected integer class ids',
    ),
  ],
  ids=['nan features', 'complex features', 'float labels', 'string labels'],
)
def test_bank_values_of_the_wrong_kind_are_named(
  tmp_path, features, labels, message
):
  np.save(tmp_path / inference.PROTOTYPE_FEATURES_FILE, features)
  np.save(tmp_path / inference.PROTOTYPE_LABELS_FILE, labels)
  with pytest.raises(errors.InferenceError, match=re.escape(message)):
    inference.load_prototype_bank(str(tmp_path), EMBEDDING_DIM, NUM_CLASSES)


def test_prototypes_of_another_dimension_are_rejected(tmp_path):
  _write_bank(tmp_path, np.ones((3, 5)), [0, 1, 2])
  with pytest.raises(
    errors.InferenceError,
    match=r'prototype_features\.npy holds 5-dimensional '
    r'prototypes but the model embeds in 8',
  ):
    inference.load_prototype_bank(str(tmp_path), EMBEDDING_DIM, NUM_CLASSES)


def test_an_empty_bank_is_rejected(tmp_path):
  _write_bank(tmp_path, np.ones((0, EMBEDDING_DIM)), [])
  with pytest.raises(
    errors.InferenceError, match=r'prototype_features\.npy holds an empty'
  ):
    inference.load_prototype_bank(str(tmp_path), EMBEDDING_DIM, NUM_CLASSES)


def test_prototype_labels_out_of_range_are_rejected(tmp_path):
  _write_bank(tmp_path, np.ones((2, EMBEDDING_DIM)), [0, 7])
  with pytest.raises(
    errors.InferenceError,
    match=r'prototype_labels\.npy holds labels in \[0, 7\]',
  ):
    inference.load_prototype_bank(str(tmp_path), EMBEDDING_DIM, NUM_CLASSES)


def _copied_bank(prototype_run, tmp_path):
  directory = str(tmp_path / 'prototypes')
  shutil.copytree(prototype_dir(prototype_run), directory)
  return directory


def test_a_bank_with_another_prototype_count_is_rejected(
  prototype_run, tmp_path
):
  directory = _copied_bank(prototype_run, tmp_path)
  sources_path = os.path.join(directory, inference.PROTOTYPE_SOURCES_FILE)
  with open(sources_path) as stream:
    sources = json.load(stream)
  sources['num_prototypes'] += 1
  with open(sources_path, 'w') as stream:
    json.dump(sources, stream)
  with pytest.raises(
    errors.InferenceError,
    match=r'prototype_sources\.json describes \d+ prototypes '
    r'but .*prototype_features\.npy and '
    r'.*prototype_labels\.npy hold',
  ):
    inference.load_prototype_bank(directory, EMBEDDING_DIM, NUM_CLASSES)


@pytest.mark.parametrize(
  'name',
  [
    inference.PROTOTYPE_FEATURES_FILE,
    inference.PROTOTYPE_LABELS_FILE,
    inference.PROTOTYPE_BOXES_FILE,
  ],
)
def test_a_half_rewritten_bank_is_rejected(prototype_run, tmp_path, name):
  directory = _copied_bank(prototype_run, tmp_path)
  # A rewrite interrupted before prototype_sources.json: same count, other
  # contents.
  path = os.path.join(directory, name)
  np.save(path, np.load(path)[::-1])
  with pytest.raises(
    errors.InferenceError,
    match=re.escape(name) + r' has changed; .*'
    r'prototype_sources\.json records the file of another',
  ):
    inference.load_prototype_bank(directory, EMBEDDING_DIM, NUM_CLASSES)


def test_a_bank_of_another_checkpoint_is_warned_about(
  prototype_run, segsort_checkpoint_dir, unsup_checkpoint_dir, tmp_path, caplog
):
  directory = prototype_dir(prototype_run)
  inference.load_prototype_bank(
    directory,
    EMBEDDING_DIM,
    NUM_CLASSES,
    checkpoint_prefix=os.path.join(segsort_checkpoint_dir, 'ckpt-3'),
  )
  assert 'extracted with checkpoint' not in caplog.text
  # Another run's checkpoint under the same name: told by its contents.
  other_prefix = tf.train.latest_checkpoint(unsup_checkpoint_dir)
  for suffix in ('.index', '.data-00000-of-00001'):
    shutil.copy(other_prefix + suffix, str(tmp_path / 'ckpt-3') + suffix)
  for prefix in (other_prefix, str(tmp_path / 'ckpt-3')):
    caplog.clear()
    inference.load_prototype_bank(
      directory, EMBEDDING_DIM, NUM_CLASSES, checkpoint_prefix=prefix
    )
    assert (
      'extracted with checkpoint ckpt-3, not with %s' % prefix in caplog.text
    )


def test_a_bank_without_sources_loads_for_inference(prototype_run, tmp_path):
  directory = _copied_bank(prototype_run, tmp_path)
  os.remove(os.path.join(directory, inference.PROTOTYPE_SOURCES_FILE))
  bank = inference.load_prototype_bank(directory, EMBEDDING_DIM, NUM_CLASSES)
  assert bank.sources is None and len(bank.labels)
  with pytest.raises(
    errors.InferenceError, match=r'Missing prototype sources file'
  ):
    inference.load_prototype_bank(
      directory, EMBEDDING_DIM, NUM_CLASSES, with_sources=True
    )


def test_inference_exits_naming_missing_prototypes(
  synthetic_set, segsort_checkpoint_dir, tmp_path
):
  with pytest.raises(SystemExit, match=r'prototype_features\.npy'):
    inference_segsort.main(
      _segsort_flags(
        synthetic_set, segsort_checkpoint_dir, str(tmp_path / 'none'), tmp_path
      )
    )


def test_a_checkpoint_that_does_not_fit_is_named(
  segsort_checkpoint_dir, tmp_path
):
  checkpoint_dir = tmp_path / 'edited'
  shutil.copytree(segsort_checkpoint_dir, checkpoint_dir)
  config_path = checkpoint_dir / 'config.json'
  config = json.loads(config_path.read_text())
  config['embedding_dim'] = 16
  config_path.write_text(json.dumps(config))
  with pytest.raises(
    checkpoints.CheckpointMismatchError,
    match=r'edited/ckpt-3 does not fit(.|\n)*\[8\]',
  ):
    inference.restore_network(str(checkpoint_dir), inference.SEGSORT_MODES)


def test_a_checkpoint_of_another_mode_is_named(softmax_checkpoint_dir):
  with pytest.raises(
    errors.InferenceError, match=r"ckpt-1 was trained in mode 'softmax'"
  ):
    inference.restore_network(softmax_checkpoint_dir, inference.SEGSORT_MODES)


@pytest.mark.parametrize('damage', ['missing', 'truncated'])
def test_a_damaged_checkpoint_is_named_in_one_line(
  softmax_checkpoint_dir, tmp_path, damage
):
  # TensorFlow's OpError (missing) or IndexError (truncated) ended the run
  # with a traceback.
  run = tmp_path / 'run'
  shutil.copytree(softmax_checkpoint_dir, run)
  (data_file,) = [name for name in os.listdir(run) if '.data-' in name]
  if damage == 'missing':
    os.remove(run / data_file)
  else:
    contents = (run / data_file).read_bytes()
    (run / data_file).write_bytes(contents[: len(contents) // 2])
  with pytest.raises(
    checkpoints.CheckpointMismatchError,
    match=r'Cannot read checkpoint .*ckpt-1 \(a file of it is missing or '
    r'damaged\): ',
  ):
    inference.restore_network(str(run), inference.SOFTMAX_MODES)


# ----------------------------------------------------------------------------
# Settings from the checkpoint.


def _flag_values(**values):
  return argparse.Namespace(**values)


def test_flags_not_given_take_the_checkpoint_s_settings():
  config = config_lib.TrainConfig(
    num_classes=6, ignore_label=250, num_clusters=7, kmeans_iterations=3
  )
  args = _flag_values(
    num_classes=None,
    ignore_label=None,
    num_clusters=None,
    kmeans_iterations=None,
  )
  assert inference.settings_from_checkpoint(args, config, 'ckpt-1') == {}
  assert (
    args.num_classes,
    args.ignore_label,
    args.num_clusters,
    args.kmeans_iterations,
  ) == (6, 250, (7, 7), 3)


def test_a_flag_given_wins_and_is_reported(caplog):
  caplog.set_level(logging.INFO)
  config = config_lib.TrainConfig(num_classes=6, num_clusters=7)
  args = _flag_values(
    num_classes=6, num_clusters=(3, 4), kmeans_iterations=None
  )
  overrides = inference.settings_from_checkpoint(args, config, 'ckpt-1')
  # --num_classes equals the checkpoint's: no override.
  assert overrides == {'num_clusters': {'flag': [3, 4], 'checkpoint': [7, 7]}}
  assert args.num_clusters == (3, 4) and args.kmeans_iterations == 10
  # Inference grids differ from training grids by design: no warning, and
  # no word of a mismatch.
  assert [
    (record.levelname, record.getMessage())
    for record in caplog.records
    if '--num_clusters' in record.getMessage()
  ] == [
    (
      'INFO',
      'Using --num_clusters 3,4; checkpoint ckpt-1 was trained on a 7,7 '
      'k-means grid per source image.',
    )
  ]
  args = _flag_values(num_classes=5, num_clusters=None, kmeans_iterations=None)
  inference.settings_from_checkpoint(args, config, 'ckpt-1')
  assert [
    record.levelname
    for record in caplog.records
    if '--num_classes 5 differs' in record.getMessage()
  ] == ['WARNING']


def test_routine_overrides_say_what_training_did_with_the_setting(caplog):
  caplog.set_level(logging.INFO)
  cases = (
    (
      config_lib.TrainConfig(num_clusters=7, kmeans_grid='crop'),
      {'kmeans_iterations': 15},
      'Using --kmeans_iterations 15; checkpoint ckpt-1 was trained with 10 '
      'k-means iterations.',
    ),
    (
      # Unsupervised SegSort's loss never clusters: no grid to differ from.
      config_lib.TrainConfig(mode='segsort_unsup', num_banks=0),
      {'num_clusters': (16, 21)},
      'Using --num_clusters 16,21; checkpoint ckpt-1 was trained by '
      'unsupervised SegSort, which does not use k-means.',
    ),
    (
      config_lib.TrainConfig(num_clusters=7, prototype_num_clusters=(16, 21)),
      {'num_clusters': (8, 8), 'grid_for_prototypes': True},
      'Using --num_clusters 8,8; the run of checkpoint ckpt-1 named 16,21 '
      'for its prototypes.',
    ),
  )
  for config, flag_values, expected in cases:
    caplog.clear()
    args = _flag_values(
      **{
        'num_classes': None,
        'num_clusters': None,
        'kmeans_iterations': None,
        **flag_values,
      }
    )
    inference.settings_from_checkpoint(args, config, 'ckpt-1')
    assert [
      (record.levelname, record.getMessage()) for record in caplog.records
    ] == [('INFO', expected)]


def test_prototype_extraction_defaults_to_the_run_s_prototype_grid():
  config = config_lib.TrainConfig(
    num_clusters=8, prototype_num_clusters=(16, 16)
  )
  for grid_for_prototypes, expected in ((True, (16, 16)), (False, (8, 8))):
    args = _flag_values(
      num_clusters=None, grid_for_prototypes=grid_for_prototypes
    )
    inference.settings_from_checkpoint(args, config, 'ckpt-1')
    assert args.num_clusters == expected
  args = _flag_values(num_clusters=None, grid_for_prototypes=True)
  inference.settings_from_checkpoint(
    args, config_lib.TrainConfig(num_clusters=8), 'ckpt-1'
  )
  assert args.num_clusters == (8, 8)


def test_an_ignore_label_that_is_a_class_id_is_refused_after_filling():
  config = config_lib.TrainConfig(num_classes=21, ignore_label=255)
  args = _flag_values(num_classes=None, ignore_label=3)
  with pytest.raises(
    errors.InferenceError,
    match=r'--ignore_label must not be a class id of \[0, '
    r'--num_classes 21\), got 3',
  ):
    inference.settings_from_checkpoint(args, config, 'ckpt-1')


def test_extraction_records_the_checkpoint_s_settings_and_overrides(
  synthetic_set, tmp_path
):
  checkpoint_dir = str(tmp_path / 'run')
  write_untrained_checkpoint(
    checkpoint_dir,
    num_clusters=3,
    prototype_num_clusters=(2, 3),
    kmeans_iterations=2,
    ignore_label=250,
  )
  data_list = _copy_list_files(
    synthetic_set, _list_ids(synthetic_set.train_list)[:1], str(tmp_path)
  )
  flags = [
    '--data_dir',
    synthetic_set.data_dir,
    '--data_list',
    data_list,
    '--restore_from',
    checkpoint_dir,
    '--save_dir',
    str(tmp_path / 'out'),
  ] + WINDOW_FLAGS
  sources_path = os.path.join(
    prototype_dir(str(tmp_path / 'out')), inference.PROTOTYPE_SOURCES_FILE
  )
  extract_prototypes.main(flags)
  with open(sources_path) as stream:
    sources = json.load(stream)
  assert (
    sources['num_classes'],
    sources['ignore_label'],
    sources['num_clusters'],
    sources['kmeans_iterations'],
  ) == (NUM_CLASSES, 250, [2, 3], 2)
  assert 'flags_overriding_checkpoint' not in sources
  extract_prototypes.main(flags + ['--num_clusters', '4'])
  with open(sources_path) as stream:
    sources = json.load(stream)
  assert sources['num_clusters'] == [4, 4]
  assert sources['flags_overriding_checkpoint'] == {
    'num_clusters': {'flag': [4, 4], 'checkpoint': [2, 3]}
  }


# ----------------------------------------------------------------------------
# Explanations.


def _explain_flags(synthetic_set, checkpoint_dir, prototype_run, save_dir):
  """explain.main's flags for the first val image, and that image's id."""
  image_id = _list_ids(synthetic_set.val_list)[0]
  return _segsort_flags(
    synthetic_set, checkpoint_dir, prototype_run, save_dir
  ) + [
    '--image_id',
    image_id,
    '--num_segments',
    '3',
    '--num_neighbours_shown',
    '4',
    '--k_in_nearest_neighbors',
    '5',
    '--tile_size',
    '48',
  ], image_id


def test_explain_shows_the_retrieved_training_segments(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path
):
  argv, image_id = _explain_flags(
    synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path
  )
  explain.main(argv)
  facts = json.loads((tmp_path / (image_id + '.json')).read_text())
  assert len(facts['segments']) == 3
  assert facts['settings']['k_in_nearest_neighbors'] == 5
  assert facts['settings']['colour_weight'] == 0.0
  train_ids = set(_list_ids(synthetic_set.train_list))
  for segment in facts['segments']:
    assert len(segment['neighbours']) == 5 and sum(segment['votes']) == 5
    similarities = [
      neighbour['similarity'] for neighbour in segment['neighbours']
    ]
    assert similarities == sorted(similarities, reverse=True)
    assert {neighbour['image_id'] for neighbour in segment['neighbours']} <= (
      train_ids
    )
  figure = _read_png(tmp_path / (image_id + '.png'))
  # A header row and 3 segment rows of 48-pixel tiles with 28-pixel captions,
  # each row the segment and 4 neighbours wide.
  assert figure.shape == (4 * (48 + 28), 5 * 48, 3)


def test_explain_shows_as_many_as_vote_by_default(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path
):
  argv, image_id = _explain_flags(
    synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path
  )
  shown = argv.index('--num_neighbours_shown')
  del argv[shown : shown + 2]
  argv[argv.index('--k_in_nearest_neighbors') + 1] = '3'
  explain.main(argv)
  # The default 5 lowered to the 3 that vote: each row the segment and 3.
  assert _read_png(tmp_path / (image_id + '.png')).shape[1] == 4 * 48


def test_explain_names_an_image_id_it_cannot_find(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path
):
  argv, image_id = _explain_flags(
    synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path
  )
  argv[argv.index(image_id)] = 'missing'
  with pytest.raises(SystemExit, match='Image id missing is not in .*val'):
    explain.main(argv)
  list_flag = argv.index('--data_list')
  del argv[list_flag : list_flag + 2]
  # It said it could not decode a file that did not exist.
  with pytest.raises(
    SystemExit,
    match='--image_id missing: no --data_list given and no image '
    '.*JPEGImages/missing.jpg; give the list that names it, or --image',
  ):
    explain.main(argv)
  assert not os.listdir(tmp_path)


def test_explain_never_writes_over_its_image_and_checks_outputs_first(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path, capsys
):
  argv, image_id = _explain_flags(
    synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path
  )
  # A PNG explained into its own folder: the figure would replace it.
  image = tmp_path / 'photo.png'
  Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(image)
  original = image.read_bytes()
  id_flag = argv.index('--image_id')
  own_folder = argv[:id_flag] + argv[id_flag + 2 :] + ['--image', str(image)]
  with pytest.raises(SystemExit):
    explain.main(own_folder)
  assert (
    'argument --save_dir: %s is the image explained' % image
    in capsys.readouterr().err
  )
  assert image.read_bytes() == original
  # A folder where the figure goes is named before the work, not after.
  (tmp_path / (image_id + '.png')).mkdir()
  with pytest.raises(SystemExit):
    explain.main(argv)
  assert 'argument --save_dir: ' in capsys.readouterr().err
  assert not (tmp_path / (image_id + '.json')).exists()


def test_explain_names_a_training_image_missing_or_replaced_since(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path
):
  data_dir = tmp_path / 'data'
  shutil.copytree(synthetic_set.data_dir, data_dir)
  argv, _ = _explain_flags(
    synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path / 'out'
  )
  argv[argv.index('--data_dir') + 1] = str(data_dir)
  train_images = [
    data_dir / 'VOC2012' / 'JPEGImages' / (image_id + '.jpg')
    for image_id in _list_ids(synthetic_set.train_list)
  ]
  for path in train_images:
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)
  with pytest.raises(
    SystemExit, match=r'is 4x4, smaller than its segment .*extract them again'
  ):
    explain.main(argv)
  for path in train_images:
    os.remove(path)
  with pytest.raises(SystemExit, match='of prototype .* is missing'):
    explain.main(argv)
  assert not (tmp_path / 'out').exists() or not os.listdir(tmp_path / 'out')


def test_explain_names_classes_from_a_file(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path
):
  names = ['ground', 'disc', 'square', 'triangle', 'star'][:NUM_CLASSES]
  names_file = tmp_path / 'names.txt'
  names_file.write_text('\n'.join(names) + '\n')
  argv, image_id = _explain_flags(
    synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path / 'out'
  )
  explain.main(argv + ['--class_names', str(names_file)])
  facts = json.loads((tmp_path / 'out' / (image_id + '.json')).read_text())
  for segment in facts['segments']:
    assert segment['predicted_name'] == names[segment['predicted_label']]
    assert {neighbour['name'] for neighbour in segment['neighbours']} <= set(
      names
    )

  names_file.write_text('ground\n')
  with pytest.raises(SystemExit) as exit_info:
    explain.main(argv + ['--class_names', str(names_file)])
  message = str(exit_info.value)
  assert re.fullmatch(
    r'error: .*names\.txt holds 1 class names but there are %d classes '
    r'\(--num_classes\)' % NUM_CLASSES,
    message,
  ), message


def test_colormaps_load_from_text_and_npy(tmp_path):
  text_path = tmp_path / 'colours.txt'
  text_path.write_text('0 0 0\n255 0 0\n0 255 0\n')
  np.testing.assert_array_equal(
    inference.load_colormap(str(text_path)),
    [[0, 0, 0], [255, 0, 0], [0, 255, 0]],
  )
  npy_path = tmp_path / 'colours.npy'
  np.save(npy_path, np.array([[1, 2, 3]]))
  np.testing.assert_array_equal(
    inference.load_colormap(str(npy_path)), [[1, 2, 3]]
  )
  np.save(npy_path, np.array([1, 2, 3]))
  with pytest.raises(
    errors.InferenceError, match=r'colours\.npy has shape \(3,\)'
  ):
    inference.load_colormap(str(npy_path))


@pytest.mark.parametrize(
  'name, contents, message',
  [
    ('ragged.txt', b'0 0 0\n1 1\n', r'rows must be "R G B", three numbers'),
    ('bright.txt', b'0 0 0\n300 0 0\n', r'values outside \[0, 255\]'),
    ('negative.txt', b'0 0 -1\n', r'values outside \[0, 255\]'),
    ('text.npy', b'R G B\n', r'not a NumPy array file'),
    ('empty.npy', b'', r'not a NumPy array file'),
    ('empty.txt', b'', r'holds no colour'),
    ('hex.txt', b'#ff0000\n', r'holds no colour'),
  ],
)
def test_a_bad_colour_map_is_named_in_one_line(
  tmp_path, name, contents, message
):
  path = tmp_path / name
  path.write_bytes(contents)
  with pytest.raises(errors.InferenceError) as raised:
    inference.load_colormap(str(path))
  assert re.search(message, str(raised.value)), raised.value
  assert str(path) in str(raised.value) and '\n' not in str(raised.value)


@pytest.mark.parametrize(
  'array', [np.array([['a', 'b', 'c']]), np.ones((1, 3), bool)]
)
def test_a_colour_map_of_other_values_than_numbers_is_named(tmp_path, array):
  path = tmp_path / 'colours.npy'
  np.save(path, array)
  with pytest.raises(errors.InferenceError, match='expected numbers'):
    inference.load_colormap(str(path))


def test_a_text_colour_map_may_start_with_a_byte_order_mark(tmp_path):
  path = tmp_path / 'colours.txt'
  path.write_bytes(b'\xef\xbb\xbf0 0 0\n255 0 0\n')
  np.testing.assert_array_equal(
    inference.load_colormap(str(path)), [[0, 0, 0], [255, 0, 0]]
  )


# ----------------------------------------------------------------------------
# Bad files stop inference and extraction before any output.


def _list_with_a_bad_line_2(synthetic_set, directory, bad):
  """A list of two val images whose second file is spoilt by `bad`."""
  os.makedirs(directory)
  data_list = _copy_list_files(
    synthetic_set, _list_ids(synthetic_set.val_list)[:2], str(directory)
  )
  with open(data_list) as stream:
    second_image, second_label = stream.read().splitlines()[1].split()
  if bad == 'truncated image':
    with open(second_image, 'rb') as stream:
      head = stream.read(200)
    with open(second_image, 'wb') as stream:
      stream.write(head)
    return data_list, second_image
  Image.fromarray(np.zeros((3, 5), np.uint8)).save(second_label)
  return data_list, second_label


@pytest.mark.parametrize(
  'command, bad',
  [
    ('inference', 'truncated image'),
    ('extraction', 'truncated image'),
    ('extraction', 'label of another size'),
  ],
)
def test_a_bad_file_stops_before_any_output(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path, bad, command
):
  data_list, bad_path = _list_with_a_bad_line_2(
    synthetic_set, tmp_path / 'data', bad
  )
  save_dir = tmp_path / 'out'
  main, argv = _command(
    command, synthetic_set, segsort_checkpoint_dir, prototype_run, save_dir
  )
  with pytest.raises(SystemExit) as exit_info:
    main(argv + ['--data_list', data_list])
  message = str(exit_info.value)
  assert '\n' not in message
  assert re.match(
    r'error: 1 problem\(s\) in data list .*list\.txt: line 2: ',
    message,
  ), message
  assert bad_path in message
  written = [
    os.path.relpath(os.path.join(folder, name), save_dir)
    for folder, _, names in os.walk(save_dir)
    for name in names
  ]
  assert written == []


@pytest.mark.parametrize('command', ['inference', 'extraction'])
def test_a_bad_file_stops_a_rerun_with_other_settings_before_clearing(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path, command
):
  # The same two images, good in one folder and the second spoilt in the
  # other: every output of the first run is "done" for the second.
  os.makedirs(tmp_path / 'good')
  good_list = _copy_list_files(
    synthetic_set, _list_ids(synthetic_set.val_list)[:2], str(tmp_path / 'good')
  )
  bad_list, bad_path = _list_with_a_bad_line_2(
    synthetic_set, tmp_path / 'bad', 'truncated image'
  )
  save_dir = tmp_path / 'out'
  main, argv = _command(
    command, synthetic_set, segsort_checkpoint_dir, prototype_run, save_dir
  )
  other_setting = (
    ['--k_in_nearest_neighbors', '3']
    if command == 'inference'
    else ['--kmeans_iterations', '2']
  )
  main(argv + ['--data_list', good_list])

  def written():
    return {
      os.path.join(folder, name): os.path.getmtime(os.path.join(folder, name))
      for folder, _, names in os.walk(save_dir)
      for name in names
    }

  before = written()
  with pytest.raises(SystemExit) as exit_info:
    main(argv + ['--data_list', bad_list] + other_setting)
  assert bad_path in str(exit_info.value)
  assert '\n' not in str(exit_info.value)
  assert written() == before


@pytest.mark.parametrize('command', ['inference', 'extraction'])
def test_missing_and_undecodable_files_are_named_together(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path, command
):
  data_list, truncated = _list_with_a_bad_line_2(
    synthetic_set, tmp_path / 'data', 'truncated image'
  )
  first_image = open(data_list).read().splitlines()[0].split()[0]
  os.remove(first_image)
  main, argv = _command(
    command,
    synthetic_set,
    segsort_checkpoint_dir,
    prototype_run,
    tmp_path / 'out',
  )
  with pytest.raises(SystemExit) as exit_info:
    main(argv + ['--data_list', data_list])
  message = str(exit_info.value)
  assert message.startswith('error: 2 problem(s) in data list'), message
  assert message.index(first_image) < message.index(truncated)
  assert not (tmp_path / 'out').exists() or not os.listdir(tmp_path / 'out')


def test_inference_reads_no_label(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path
):
  data_list, mismatched_label = _list_with_a_bad_line_2(
    synthetic_set, tmp_path / 'data', 'label of another size'
  )
  # The first line's label goes missing, the second's has another size.
  first_label = open(data_list).read().splitlines()[0].split()[1]
  os.remove(first_label)
  save_dir = tmp_path / 'out'
  inference_segsort.main(
    _segsort_flags(
      synthetic_set, segsort_checkpoint_dir, prototype_run, save_dir
    )
    + ['--data_list', data_list]
  )
  predictions = sorted(os.listdir(save_dir / 'gray'))
  assert len(predictions) == 2
  assert os.path.basename(mismatched_label) in predictions


@pytest.mark.parametrize('command', ['inference', 'extraction'])
def test_an_empty_list_is_refused_before_any_output(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path, command
):
  empty_list = tmp_path / 'empty.txt'
  empty_list.write_text('\n\n')
  save_dir = tmp_path / 'out'
  main, argv = _command(
    command, synthetic_set, segsort_checkpoint_dir, prototype_run, save_dir
  )
  argv += ['--data_list', str(empty_list)]
  with pytest.raises(
    SystemExit,
    match=r'^error: .*empty\.txt is empty \(no line names an image\)$',
  ):
    main(argv)
  assert not save_dir.exists()
