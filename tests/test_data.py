"""Tests of the data lists and tf.data input pipelines (segsort/data/)."""

import logging
import os
import re
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from network.segsort import common_utils
from segsort import data
from segsort import errors
from tools import check_list
from tools import make_synthetic_voc

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE_SIZE = (40, 56)
NUM_CLASSES = 4


@pytest.fixture(scope='module')
def voc_root(tmp_path_factory):
  """A synthetic VOC-layout set of 6 train and 2 val images, 40x56."""
  root = str(tmp_path_factory.mktemp('voc'))
  make_synthetic_voc.make_synthetic_voc(
    root,
    num_train=6,
    num_val=2,
    size=IMAGE_SIZE,
    num_classes=NUM_CLASSES,
    seed=3,
  )
  return root


def _write_list(path, lines):
  with open(path, 'w') as stream:
    stream.write(''.join(line + '\n' for line in lines))
  return str(path)


def _image_line(image_id, label=True):
  line = 'VOC2012/JPEGImages/%s.jpg' % image_id
  return line + (' VOC2012/segcls/%s.png' % image_id if label else '')


def _take(dataset, count):
  return [
    {key: value.numpy() for key, value in element.items()}
    for element in dataset.take(count)
  ]


# --- read_data_list -----------------------------------------------------------


def test_read_data_list_joins_paths_with_or_without_trailing_slash(voc_root):
  list_path = os.path.join(voc_root, 'train.txt')
  with_slash = data.read_data_list(voc_root + '/', list_path)
  without_slash = data.read_data_list(voc_root, list_path)
  assert len(with_slash) == 6
  for first, second in zip(with_slash, without_slash):
    assert os.path.normpath(first.image_path) == os.path.normpath(
      second.image_path
    )
  entry = without_slash[1]
  assert entry.line_number == 2
  assert entry.image_id == 'train_000001'
  assert entry.image_path == os.path.join(
    voc_root, 'VOC2012/JPEGImages/train_000001.jpg'
  )
  assert entry.label_path == os.path.join(
    voc_root, 'VOC2012/segcls/train_000001.png'
  )
  assert entry.oversegmentation_path is None


def test_read_data_list_skips_blank_lines(voc_root, tmp_path):
  list_path = _write_list(
    tmp_path / 'list.txt',
    ['', _image_line('train_000000'), '   ', _image_line('train_000001')],
  )
  entries = data.read_data_list(voc_root, list_path)
  assert [entry.line_number for entry in entries] == [2, 4]


@pytest.mark.parametrize(
  'bad_line', ['a b c d', 'VOC2012/JPEGImages/train_000000.jpg']
)
def test_read_data_list_rejects_wrong_field_count(voc_root, tmp_path, bad_line):
  list_path = _write_list(
    tmp_path / 'list.txt', [_image_line('train_000000'), bad_line]
  )
  with pytest.raises(errors.DataError, match=r'list\.txt: line 2: expected'):
    data.read_data_list(voc_root, list_path)


def test_read_data_list_names_missing_files(voc_root, tmp_path):
  list_path = _write_list(
    tmp_path / 'list.txt',
    [
      _image_line('train_000000'),
      _image_line('train_000001'),
      'VOC2012/JPEGImages/nothing.jpg VOC2012/segcls/train_000000.png',
    ],
  )
  with pytest.raises(errors.DataError) as raised:
    data.read_data_list(voc_root, list_path)
  message = str(raised.value)
  assert 'list.txt: line 3: missing file' in message
  assert os.path.join(voc_root, 'VOC2012/JPEGImages/nothing.jpg') in message
  with pytest.raises(errors.DataError, match='Cannot read data list'):
    data.read_data_list(voc_root, str(tmp_path / 'absent.txt'))


def test_one_column_lines_need_require_labels_false(voc_root, tmp_path):
  list_path = _write_list(
    tmp_path / 'test.txt', [_image_line('val_000000', label=False)]
  )
  with pytest.raises(errors.DataError, match='line 1'):
    data.read_data_list(voc_root, list_path)
  entries = data.read_data_list(voc_root, list_path, require_labels=False)
  assert entries[0].label_path is None


def test_oversegmentation_path_rule(voc_root, tmp_path):
  hed_dir = os.path.join(voc_root, 'VOC2012', 'hed')
  sbd_dir = os.path.join(voc_root, 'sbd', 'dataset', 'clsimg')
  os.makedirs(sbd_dir, exist_ok=True)
  shutil.copy(
    os.path.join(voc_root, 'VOC2012/segcls/train_000001.png'), sbd_dir
  )
  list_path = _write_list(
    tmp_path / 'list.txt',
    [
      _image_line('train_000000'),
      'VOC2012/JPEGImages/train_000001.jpg sbd/dataset/clsimg/train_000001.png',
      _image_line('train_000002') + ' VOC2012/hed/train_000003.png',
    ],
  )
  entries = data.read_data_list(voc_root, list_path, with_oversegmentation=True)
  assert entries[0].oversegmentation_path == os.path.join(
    hed_dir, 'train_000000.png'
  )
  # An SBD label path must not lead to SBD's ground truth.
  assert entries[1].oversegmentation_path == os.path.join(
    hed_dir, 'train_000001.png'
  )
  assert entries[2].oversegmentation_path == os.path.join(
    voc_root, 'VOC2012/hed/train_000003.png'
  )


# --- NumPy loaders ------------------------------------------------------------


def test_load_label_reads_palette_png_by_index(tmp_path):
  indices = np.array([[0, 1, 2], [15, 255, 3]], np.uint8)
  palette_png = Image.fromarray(indices, mode='P')
  palette = np.zeros((256, 3), np.uint8)
  palette[:16] = np.random.default_rng(0).integers(0, 256, (16, 3))
  palette_png.putpalette(palette.ravel().tolist())
  palette_png.save(tmp_path / 'palette.png')
  np.testing.assert_array_equal(
    data.load_label(str(tmp_path / 'palette.png')), indices
  )
  # The pitfall this guards against: TF decodes palette PNGs as colours.
  decoded = tf.io.decode_png(
    tf.io.read_file(str(tmp_path / 'palette.png')), channels=1
  ).numpy()[..., 0]
  assert not np.array_equal(decoded, indices)


def test_load_label_reads_16_bit_and_rejects_colour(tmp_path):
  ids = np.array([[0, 300], [65535, 7]], np.uint16)
  Image.fromarray(ids).save(tmp_path / 'ids.png')
  np.testing.assert_array_equal(data.load_label(str(tmp_path / 'ids.png')), ids)
  Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / 'rgb.png')
  with pytest.raises(errors.DataError, match='mode RGB'):
    data.load_label(str(tmp_path / 'rgb.png'))


def test_load_image_rejects_truncated_jpeg(voc_root, tmp_path):
  jpeg = os.path.join(voc_root, 'VOC2012/JPEGImages/train_000000.jpg')
  image = data.load_image(jpeg)
  assert image.dtype == np.uint8 and image.shape == IMAGE_SIZE + (3,)
  with open(jpeg, 'rb') as stream:
    contents = stream.read()
  (tmp_path / 'cut.jpg').write_bytes(contents[: len(contents) // 2])
  with pytest.raises(errors.DataError, match='cut.jpg'):
    data.load_image(str(tmp_path / 'cut.jpg'))


# --- augment_example ----------------------------------------------------------


def _reference_augmentation(image, label, crop_size, seed):
  """Whole-image resize, mirror, pad and crop, drawing the same numbers."""
  crop_height, crop_width = crop_size
  scale_seed, mirror_seed, row_seed, column_seed = tf.unstack(
    tf.random.experimental.stateless_split(seed, 4)
  )
  scale = tf.random.stateless_uniform([], scale_seed, 0.5, 2.0)
  height, width = image.shape[:2]
  scaled_size = [
    max(int(tf.cast(size, tf.float32) * scale), 1) for size in (height, width)
  ]
  scaled_image = (
    tf.image.resize(tf.cast(image, tf.float32), scaled_size).numpy()
    - data.IMG_MEAN
  )
  scaled_label = tf.image.resize(label, scaled_size, 'nearest').numpy()
  if tf.random.stateless_uniform([], mirror_seed) < 0.5:
    scaled_image, scaled_label = scaled_image[:, ::-1], scaled_label[:, ::-1]
  padded_height = max(scaled_size[0], crop_height)
  padded_width = max(scaled_size[1], crop_width)
  padded_image = np.zeros((padded_height, padded_width, 3), np.float32)
  padded_label = np.full((padded_height, padded_width, 1), 255, np.int32)
  padded_image[: scaled_size[0], : scaled_size[1]] = scaled_image
  padded_label[: scaled_size[0], : scaled_size[1]] = scaled_label
  top = int(
    tf.random.stateless_uniform(
      [], row_seed, 0, padded_height - crop_height + 1, dtype=tf.int32
    )
  )
  left = int(
    tf.random.stateless_uniform(
      [], column_seed, 0, padded_width - crop_width + 1, dtype=tf.int32
    )
  )
  return (
    padded_image[top : top + crop_height, left : left + crop_width],
    padded_label[top : top + crop_height, left : left + crop_width],
  )


def test_augmentation_equals_resize_mirror_pad_crop():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (27, 35, 3), dtype=np.uint8)
  label = rng.integers(0, 21, (27, 35, 1), dtype=np.int32)
  for index in range(12):
    seed = tf.constant([5, index], tf.int64)
    example = data.augment_example(
      tf.constant(image), tf.constant(label), (30, 32), seed
    )
    expected_image, expected_label = _reference_augmentation(
      image, tf.constant(label), (30, 32), seed
    )
    np.testing.assert_allclose(
      example['image'].numpy(), expected_image, atol=1e-3
    )
    np.testing.assert_array_equal(example['label'].numpy(), expected_label)


def test_colour_jitter_changes_colours_alone():
  # Scale, mirror and crop are drawn alike with and without the jitter, so
  # that runs with and without it see the same crops.
  rng = np.random.default_rng(2)
  image = rng.integers(0, 256, (27, 35, 3), dtype=np.uint8)
  label = rng.integers(0, 21, (27, 35, 1), dtype=np.int32)
  segments = rng.integers(0, 9, (27, 35, 1), dtype=np.int32)
  mean = np.array(data.IMG_MEAN, np.float32)
  gray = 0
  for index in range(20):
    seed = tf.constant([3, index], tf.int64)
    plain, jittered = (
      data.augment_example(
        tf.constant(image),
        tf.constant(label),
        (30, 32),
        seed,
        oversegmentation=tf.constant(segments),
        random_colour=random_colour,
      )
      for random_colour in (False, True)
    )
    for key in ('label', 'cluster_label', 'loc_feature', 'oversegmentation'):
      np.testing.assert_array_equal(plain[key].numpy(), jittered[key].numpy())
    colours = jittered['image'].numpy() + mean
    valid = plain['label'].numpy()[..., 0] != 255
    assert colours[valid].min() >= -1e-3 and colours[valid].max() <= 255.001
    # Padding stays the mean colour (0 after the subtraction).
    assert (jittered['image'].numpy()[~valid] == 0).all()
    assert np.abs(jittered['image'].numpy() - plain['image'].numpy()).max() > 1
    channels = colours[valid]
    gray += bool(np.allclose(channels, channels[:, :1], atol=1e-3))
    again = data.augment_example(
      tf.constant(image),
      tf.constant(label),
      (30, 32),
      seed,
      random_colour=True,
    )
    np.testing.assert_array_equal(again['image'], jittered['image'])
  # One image in five is turned gray.
  assert 0 < gray < 12


def test_cluster_labels_and_locations_follow_the_pixels():
  height, width = 23, 31
  # Every pixel's label is its own (y, x) index, so after augmentation each
  # output pixel tells where it came from.
  pixel_ids = np.arange(height * width, dtype=np.int32).reshape(height, width)
  image = np.zeros((height, width, 3), np.uint8)
  grid = common_utils.initialize_cluster_labels([3, 3], [height, width]).numpy()
  mirrored = 0
  for index in range(16):
    example = data.augment_example(
      tf.constant(image),
      tf.constant(pixel_ids[..., None]),
      (20, 26),
      tf.constant([1, index], tf.int64),
      num_clusters=(3, 3),
      ignore_label=-7,
    )
    source = example['label'].numpy()[..., 0]
    valid = source != -7
    source_y, source_x = source[valid] // width, source[valid] % width
    location = example['loc_feature'].numpy()[valid]
    np.testing.assert_allclose(location[:, 0], source_y / height, atol=1e-6)
    np.testing.assert_allclose(location[:, 1], source_x / width, atol=1e-6)
    np.testing.assert_array_equal(
      example['cluster_label'].numpy()[..., 0][valid], grid[source_y, source_x]
    )
    assert (example['loc_feature'].numpy()[~valid] == 0).all()
    row = source[0][valid[0]]
    mirrored += bool(len(row) > 1 and row[1] < row[0])
  assert 0 < mirrored < 16


def test_no_augmentation_pads_bottom_right_with_fill_values():
  rng = np.random.default_rng(1)
  image = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
  label = rng.integers(0, 4, (10, 12, 1), dtype=np.int32)
  segments = rng.integers(0, 9, (10, 12, 1), dtype=np.int32)
  example = data.augment_example(
    tf.constant(image),
    tf.constant(label),
    (14, 16),
    tf.constant([0, 0], tf.int64),
    oversegmentation=tf.constant(segments),
    random_scale=False,
    random_mirror=False,
    random_crop=False,
  )
  np.testing.assert_allclose(
    example['image'].numpy()[:10, :12],
    image - np.array(data.IMG_MEAN, np.float32),
    atol=1e-4,
  )
  assert (example['image'].numpy()[10:] == 0).all()
  assert (example['image'].numpy()[:, 12:] == 0).all()
  np.testing.assert_array_equal(example['label'].numpy()[:10, :12], label)
  assert (example['label'].numpy()[10:] == 255).all()
  np.testing.assert_array_equal(
    example['oversegmentation'].numpy()[:10, :12], segments
  )
  assert (example['oversegmentation'].numpy()[:, 12:] == -1).all()
  np.testing.assert_array_equal(
    example['cluster_label'].numpy()[:10, :12, 0],
    common_utils.initialize_cluster_labels([5, 5], [10, 12]).numpy(),
  )
  np.testing.assert_allclose(
    example['loc_feature'].numpy()[:10, :12],
    common_utils.generate_location_features([10, 12], 'float').numpy(),
  )


def test_centre_crop_without_random_crop():
  image = np.zeros((20, 30, 3), np.uint8)
  ids = np.arange(600, dtype=np.int32).reshape(20, 30, 1)
  example = data.augment_example(
    tf.constant(image),
    tf.constant(ids),
    (10, 10),
    tf.constant([0, 0], tf.int64),
    random_scale=False,
    random_mirror=False,
    random_crop=False,
  )
  np.testing.assert_array_equal(example['label'].numpy(), ids[5:15, 10:20])


# --- build_training_dataset ---------------------------------------------------


def test_training_dataset_shapes_and_dtypes(voc_root):
  dataset = data.build_training_dataset(
    voc_root,
    os.path.join(voc_root, 'train.txt'),
    (32, 48),
    3,
    unsupervised=True,
    seed=0,
    num_classes=NUM_CLASSES,
  )
  expected = {
    'image': ([3, 32, 48, 3], tf.float32),
    'label': ([3, 32, 48, 1], tf.int32),
    'cluster_label': ([3, 32, 48, 1], tf.int32),
    'loc_feature': ([3, 32, 48, 2], tf.float32),
    'oversegmentation': ([3, 32, 48, 1], tf.int32),
  }
  assert {
    key: (spec.shape.as_list(), spec.dtype)
    for key, spec in dataset.element_spec.items()
  } == expected
  batch = _take(dataset, 1)[0]
  assert set(np.unique(batch['label'])) <= set(range(NUM_CLASSES)) | {255}
  assert batch['oversegmentation'].min() >= -1
  assert 0 <= batch['loc_feature'].min() and batch['loc_feature'].max() < 1
  assert batch['cluster_label'].max() < 25


def test_training_dataset_is_deterministic_for_a_seed(voc_root):
  list_path = os.path.join(voc_root, 'train.txt')

  def batches(seed):
    return _take(
      data.build_training_dataset(
        voc_root, list_path, (24, 24), 2, seed=seed, deterministic=True
      ),
      4,
    )

  first, second, other = batches(7), batches(7), batches(8)
  for batch, same in zip(first, second):
    for key in batch:
      np.testing.assert_array_equal(batch[key], same[key])
  assert any(
    not np.array_equal(batch['image'], different['image'])
    for batch, different in zip(first, other)
  )


def test_training_dataset_resumes_at_a_batch(voc_root):
  list_path = os.path.join(voc_root, 'train.txt')

  def batches(start_batch, count):
    return _take(
      data.build_training_dataset(
        voc_root,
        list_path,
        (24, 24),
        4,
        seed=3,
        deterministic=True,
        start_batch=start_batch,
      ),
      count,
    )

  # Batch 2 starts in the second epoch, at its third example.
  fresh, resumed = batches(0, 5), batches(2, 3)
  for batch, same in zip(fresh[2:], resumed, strict=True):
    for key in batch:
      np.testing.assert_array_equal(batch[key], same[key])


@pytest.mark.parametrize(
  'outputs', [('image', 'label'), ('image', 'oversegmentation')]
)
def test_training_dataset_computes_only_the_asked_outputs(
  voc_root, tmp_path, outputs
):
  list_path = os.path.join(voc_root, 'train.txt')

  def build(outputs, list_path=list_path):
    return data.build_training_dataset(
      voc_root,
      list_path,
      (24, 24),
      2,
      seed=5,
      deterministic=True,
      unsupervised=True,
      outputs=outputs,
    )

  dataset = build(outputs)
  assert set(dataset.element_spec) == set(outputs)
  for batch, full in zip(_take(dataset, 3), _take(build(None), 3), strict=True):
    for key in outputs:
      np.testing.assert_array_equal(batch[key], full[key])
  if 'label' not in outputs:
    # Labels are not even read: a list naming broken ones still works.
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'not a png')
    with open(list_path) as stream:
      lines = [
        '%s %s' % (line.split()[0], broken)
        for line in stream.read().split('\n')
        if line.strip()
      ]
    assert _take(build(outputs, _write_list(tmp_path / 'list.txt', lines)), 1)


def test_training_dataset_reshuffles_every_epoch(voc_root):
  list_path = os.path.join(voc_root, 'train.txt')
  originals = [
    data.load_image(entry.image_path).astype(np.float32) - data.IMG_MEAN
    for entry in data.read_data_list(voc_root, list_path)
  ]
  dataset = data.build_training_dataset(
    voc_root,
    list_path,
    IMAGE_SIZE,
    1,
    random_scale=False,
    random_mirror=False,
    random_crop=False,
    seed=2,
    deterministic=True,
  )
  order = []
  for batch in _take(dataset, 18):
    order.append(
      next(
        index
        for index, original in enumerate(originals)
        if np.allclose(original, batch['image'][0], atol=1e-3)
      )
    )
  epochs = [order[start : start + 6] for start in (0, 6, 12)]
  assert all(sorted(epoch) == list(range(6)) for epoch in epochs)
  assert len({tuple(epoch) for epoch in epochs}) > 1


def test_training_dataset_ignores_out_of_range_labels(
  voc_root, tmp_path, caplog
):
  label = np.full(IMAGE_SIZE, 9, np.uint8)
  label[:, :10] = 1
  Image.fromarray(label).save(tmp_path / 'high.png')
  list_path = _write_list(
    tmp_path / 'list.txt',
    ['VOC2012/JPEGImages/train_000000.jpg %s' % (tmp_path / 'high.png')],
  )
  dataset = data.build_training_dataset(
    voc_root,
    list_path,
    IMAGE_SIZE,
    1,
    random_scale=False,
    random_mirror=False,
    random_crop=False,
    num_classes=NUM_CLASSES,
  )
  with caplog.at_level(logging.WARNING, logger='segsort.data'):
    labels = [batch['label'][0, ..., 0] for batch in _take(dataset, 3)]
  for epoch_labels in labels:
    np.testing.assert_array_equal(epoch_labels, np.where(label == 9, 255, 1))
  # The survey, not every epoch of the pipeline, reports the file.
  assert not caplog.text
  with caplog.at_level(logging.WARNING, logger='segsort.data'):
    data.check_training_list(voc_root, list_path, NUM_CLASSES, 255)
  assert caplog.text.count('list.txt, line 1') == 1
  assert (
    '%d label pixels of %s outside [0, 4)'
    % ((label == 9).sum(), tmp_path / 'high.png')
    in caplog.text
  )


def test_training_dataset_unsupervised_without_labels(voc_root, tmp_path):
  list_path = _write_list(
    tmp_path / 'list.txt', [_image_line('train_000000', label=False)]
  )
  batch = _take(
    data.build_training_dataset(
      voc_root, list_path, (16, 16), 1, unsupervised=True
    ),
    1,
  )[0]
  assert (batch['label'] == 255).all()
  assert batch['oversegmentation'].max() >= 0


def test_decode_errors_name_list_line_and_path(voc_root, tmp_path):
  bad_image = tmp_path / 'bad.jpg'
  bad_image.write_bytes(b'not a jpeg at all')
  small_label = tmp_path / 'small.png'
  Image.fromarray(np.zeros((5, 5), np.uint8)).save(small_label)
  cases = [
    ('%s VOC2012/segcls/train_000001.png' % bad_image, str(bad_image)),
    (
      'VOC2012/JPEGImages/train_000001.jpg %s' % small_label,
      'label %s is 5x5 but its image is 40x56' % small_label,
    ),
  ]
  for line, expected in cases:
    list_path = _write_list(
      tmp_path / 'list.txt', [_image_line('train_000000'), line]
    )
    dataset = data.build_training_dataset(
      voc_root,
      list_path,
      (16, 16),
      1,
      shuffle=False,
      deterministic=True,
      repeat=False,
    )
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
      _take(dataset, 2)
    assert 'list.txt, line 2' in str(raised.value)
    assert expected in str(raised.value)


# --- entries_dataset ----------------------------------------------------------


def test_inference_dataset_keeps_order_and_full_size(voc_root, tmp_path):
  list_path = _write_list(
    tmp_path / 'test.txt',
    [
      _image_line('val_000001', label=False),
      _image_line('val_000000', label=False),
    ],
  )
  entries = data.read_data_list(voc_root, list_path, require_labels=False)
  dataset = data.entries_dataset(entries)
  assert [entry.image_id for entry in entries] == ['val_000001', 'val_000000']
  examples = _take(dataset, 5)
  assert [example['index'] for example in examples] == [0, 1]
  for example, entry in zip(examples, entries):
    np.testing.assert_allclose(
      example['image'],
      data.load_image(entry.image_path) - np.array(data.IMG_MEAN, np.float32),
      atol=1e-4,
    )
    assert example['label'].shape == IMAGE_SIZE + (1,)
    assert (example['label'] == 255).all()


def test_inference_dataset_reads_palette_labels_by_index(voc_root, tmp_path):
  label = data.load_label(
    os.path.join(voc_root, 'VOC2012/segcls/val_000000.png')
  ).astype(np.uint8)
  palette_png = Image.fromarray(label, mode='P')
  palette_png.putpalette(
    np.random.default_rng(0).integers(0, 256, 768).tolist()
  )
  palette_png.save(tmp_path / 'palette.png')
  list_path = _write_list(
    tmp_path / 'val.txt',
    ['VOC2012/JPEGImages/val_000000.jpg %s' % (tmp_path / 'palette.png')],
  )
  dataset = data.entries_dataset(
    data.read_data_list(
      voc_root, list_path, require_labels=True, with_oversegmentation=True
    ),
    with_oversegmentation=True,
  )
  example = _take(dataset, 1)[0]
  np.testing.assert_array_equal(example['label'][..., 0], label)
  assert example['oversegmentation'].shape == IMAGE_SIZE + (1,)


# --- check_data_list ----------------------------------------------------------


def test_check_data_list_reports_every_problem(voc_root, tmp_path):
  bad_image = tmp_path / 'bad.jpg'
  bad_image.write_bytes(b'garbage')
  small_label = tmp_path / 'small.png'
  Image.fromarray(np.zeros((5, 5), np.uint8)).save(small_label)
  high_label = tmp_path / 'high.png'
  Image.fromarray(np.full(IMAGE_SIZE, 7, np.uint8)).save(high_label)
  list_path = _write_list(
    tmp_path / 'list.txt',
    [
      _image_line('train_000000'),
      'too many fields here now',
      'VOC2012/JPEGImages/missing.jpg VOC2012/segcls/train_000000.png',
      '%s VOC2012/segcls/train_000000.png' % bad_image,
      'VOC2012/JPEGImages/train_000001.jpg %s' % small_label,
      'VOC2012/JPEGImages/train_000002.jpg %s' % high_label,
    ],
  )
  report = data.check_data_list(voc_root, list_path, num_classes=NUM_CLASSES)
  assert report.num_entries == 6
  assert not report.ok
  assert [problem.split(':')[0] for problem in report.problems] == [
    '%s, line %d' % (list_path, line) for line in (2, 3, 4, 5, 6)
  ]
  assert report.out_of_range_pixels == IMAGE_SIZE[0] * IMAGE_SIZE[1]
  good = data.check_data_list(
    voc_root,
    os.path.join(voc_root, 'train.txt'),
    num_classes=NUM_CLASSES,
    with_oversegmentation=True,
  )
  assert good.ok and good.num_entries == 6


def test_check_list_tool_exit_status(voc_root, tmp_path):
  bad_list = _write_list(
    tmp_path / 'list.txt',
    ['VOC2012/JPEGImages/missing.jpg VOC2012/segcls/train_000000.png'],
  )
  result = subprocess.run(
    [
      sys.executable,
      '-m',
      'tools.check_list',
      '--data_dir',
      voc_root,
      '--data_list',
      bad_list,
      '--num_classes',
      str(NUM_CLASSES),
    ],
    cwd=REPO_ROOT,
    capture_output=True,
    text=True,
    check=False,
  )
  assert result.returncode == 1
  assert 'list.txt, line 1: missing file' in result.stdout


def test_check_list_tool_passes_a_good_list(voc_root, capsys):
  assert (
    check_list.main(
      [
        '--data_dir',
        voc_root,
        '--data_list',
        os.path.join(voc_root, 'val.txt'),
        '--with_oversegmentation',
      ]
    )
    == 0
  )
  assert '2 lines, 0 problem(s)' in capsys.readouterr().out


def test_check_list_tool_names_a_wrong_data_dir_once(
  voc_root, tmp_path, capsys
):
  # Every file of the list was named missing, one line each.
  with pytest.raises(SystemExit):
    check_list.main(
      [
        '--data_dir',
        str(tmp_path / 'elsewhere'),
        '--data_list',
        os.path.join(voc_root, 'val.txt'),
      ]
    )
  error = capsys.readouterr().err
  assert error.splitlines()[-1].endswith(
    'error: argument --data_dir: %s is not a folder' % (tmp_path / 'elsewhere')
  )
  # A folder, but not the one the paths are relative to.
  argv = ['--data_dir', str(tmp_path), '--data_list']
  assert check_list.main(argv + [os.path.join(voc_root, 'val.txt')]) == 1
  assert (
    'note: no image of the list is under --data_dir %s: is it the folder '
    "the list's paths are relative to?" % tmp_path in capsys.readouterr().out
  )


def test_check_list_tool_notes_oversegmentations_it_does_not_check(
  voc_root, tmp_path, capsys
):
  # A third column naming a missing file passed without a word.
  list_path = _write_list(
    tmp_path / 'list.txt',
    [
      'VOC2012/JPEGImages/train_000000.jpg VOC2012/segcls/train_000000.png '
      'VOC2012/hed/missing.png'
    ],
  )
  argv = ['--data_dir', voc_root, '--data_list', list_path]
  assert check_list.main(argv) == 0
  assert (
    'note: 1 line(s) name an oversegmentation (third column), not checked: '
    'add --with_oversegmentation to check them' in capsys.readouterr().out
  )
  assert check_list.main(argv + ['--with_oversegmentation']) == 1
  assert (
    'missing file %s' % os.path.join(voc_root, 'VOC2012', 'hed', 'missing.png')
    in capsys.readouterr().out
  )


def test_a_truncated_oversegmentation_is_named_as_one(voc_root, tmp_path):
  # It was called a "label image".
  hed = os.path.join(voc_root, 'VOC2012', 'hed', 'train_000000.png')
  cut = tmp_path / 'cut.png'
  with open(hed, 'rb') as stream:
    cut.write_bytes(stream.read()[:60])
  list_path = _write_list(
    tmp_path / 'list.txt',
    [
      'VOC2012/JPEGImages/train_000000.jpg VOC2012/segcls/train_000000.png '
      '%s' % cut
    ],
  )
  report = data.check_data_list(voc_root, list_path, with_oversegmentation=True)
  assert len(report.problems) == 1
  assert 'Cannot decode oversegmentation %s' % cut in report.problems[0]


def test_an_unsupervised_training_list_is_decoded_not_surveyed(
  voc_root, tmp_path
):
  hed = os.path.join(voc_root, 'VOC2012', 'hed', 'train_000000.png')
  cut = tmp_path / 'cut.png'
  with open(hed, 'rb') as stream:
    cut.write_bytes(stream.read()[:60])
  small = tmp_path / 'small.png'
  Image.fromarray(np.zeros((5, 5), np.uint8)).save(small)
  # Labels are optional; an oversegmentation is VOC2012/hed/ID.png unless
  # the third column names one.
  good = _write_list(
    tmp_path / 'good.txt',
    [
      'VOC2012/JPEGImages/train_000000.jpg VOC2012/segcls/train_000000.png '
      'VOC2012/hed/train_000000.png',
      'VOC2012/JPEGImages/train_000001.jpg',
    ],
  )
  assert (
    data.check_training_list(
      voc_root, good, NUM_CLASSES, 255, unsupervised=True
    )
    is None
  )
  bad = _write_list(
    tmp_path / 'bad.txt',
    [
      'VOC2012/JPEGImages/train_000000.jpg VOC2012/segcls/train_000000.png '
      '%s' % cut,
      'VOC2012/JPEGImages/missing.jpg',
      'VOC2012/JPEGImages/train_000001.jpg VOC2012/segcls/train_000001.png '
      '%s' % small,
    ],
  )
  with pytest.raises(errors.DataError) as raised:
    data.check_training_list(voc_root, bad, NUM_CLASSES, 255, unsupervised=True)
  message = str(raised.value)
  assert 'line 1: Cannot decode oversegmentation %s' % cut in message
  assert 'line 2: missing file' in message
  # Its size is that of an oversegmentation, and says so.
  assert (
    'line 3: oversegmentation %s is 5x5 but its image is' % small in message
  )


@pytest.mark.parametrize(
  'contents, message',
  [
    (None, r'^error: Cannot read data list .*list\.txt'),
    (b'\xff\xfeV\x00', r'^error: .*list\.txt, line 1 is not UTF-8 text'),
  ],
)
def test_check_list_tool_names_an_unreadable_list_in_one_line(
  voc_root, tmp_path, capsys, contents, message
):
  list_path = tmp_path / 'list.txt'
  if contents is not None:
    list_path.write_bytes(contents)
  with pytest.raises(SystemExit) as exit_info:
    check_list.main(['--data_dir', voc_root, '--data_list', str(list_path)])
  assert exit_info.value.code == 1
  error = capsys.readouterr().err
  assert len(error.splitlines()) == 1 and re.match(message, error), error


def test_an_empty_list_is_a_problem_everywhere(voc_root, tmp_path, capsys):
  empty = tmp_path / 'empty.txt'
  empty.write_text('\n \n')
  with pytest.raises(errors.DataError, match=r'empty\.txt is empty'):
    data.read_data_list(voc_root, str(empty))
  assert check_list.main(['--data_dir', voc_root, '--data_list', str(empty)])
  assert 'empty.txt is empty' in capsys.readouterr().out


def test_list_problems_are_reported_in_one_line(voc_root, tmp_path):
  bad_list = _write_list(
    tmp_path / 'list.txt',
    [
      'VOC2012/JPEGImages/missing_a.jpg VOC2012/segcls/train_000000.png',
      'only one two three four',
      'VOC2012/JPEGImages/missing_b.jpg VOC2012/segcls/train_000000.png',
    ],
  )
  with pytest.raises(errors.DataError) as error_info:
    data.read_data_list(voc_root, bad_list)
  message = str(error_info.value)
  assert '\n' not in message
  assert message.startswith('3 problem(s) in data list %s: ' % bad_list)
  assert message.count('; ') == 2 and 'missing_b.jpg' in message
  # The list is named once, in front; each problem by its line.
  assert message.count(str(bad_list)) == 1
  assert ': line 1: missing file ' in message and '; line 2: ' in message


def test_the_decoding_check_s_progress_reaches_its_total(voc_root):
  # The bar counts an item when the next is asked for; the loop never asked
  # after the last, so it stopped at 7/8.
  entries = data.read_data_list(voc_root, os.path.join(voc_root, 'train.txt'))
  finished = []

  def progress(items, total, desc, unit):
    yield from items
    finished.append(total)

  data.check_entries_decode(
    entries, os.path.join(voc_root, 'train.txt'), progress=progress
  )
  assert finished == [len(entries)]
