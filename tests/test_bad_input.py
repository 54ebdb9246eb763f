"""Bad input of five kinds, and what every reader, entry point and tool does.

Odd image modes, unchecked numeric flags, EXIF orientation, invisible
characters in list files and suspicious labels (divergence is tested with
the trainer in test_trainer.py).
"""

import logging
import os
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
from PIL import Image
import pytest

from segsort import benchmark_by_mIoU
from segsort import config as config_lib
from segsort import data
from segsort import errors
from segsort import explain
from segsort import flags
from segsort import export
from segsort import extract_prototypes
from segsort import inference
from segsort import inference_segsort
from segsort import inference_segsort_msc
from segsort import inference_softmax
from segsort import io_utils
from segsort import run_record
from segsort.data import decoding
from segsort import metrics
from segsort import train_segsort
from tools import camvid_to_voc
from tools import check_list
from tools import evaluate_oversegmentation
from tools import make_lists
from tools import make_oversegmentation
from tools import make_synthetic_voc
from tools import sbd_to_clsimg
from tools import voc_to_segcls

IMAGE_SIZE = (40, 48)
NUM_CLASSES = 4


@pytest.fixture(scope='module')
def voc_root(tmp_path_factory):
  """A synthetic VOC-layout set of 3 train and 1 val images, 40x48."""
  root = str(tmp_path_factory.mktemp('voc'))
  make_synthetic_voc.make_synthetic_voc(
    root,
    num_train=3,
    num_val=1,
    size=IMAGE_SIZE,
    num_classes=NUM_CLASSES,
    seed=5,
  )
  return root


def _write_list(path, lines, prefix=''):
  with open(path, 'w', encoding='utf-8') as stream:
    stream.write(prefix + ''.join(line + '\n' for line in lines))
  return str(path)


def _label_path(voc_root, image_id='train_000000'):
  return os.path.join(voc_root, 'VOC2012', 'segcls', image_id + '.png')


# --- 1. Image modes -----------------------------------------------------------

# A 16-bit ramp: 0, 1000, ..., 65535, as medical and remote-sensing exports.
_RAMP_16 = (
  np.concatenate([np.arange(0, 65535, 1000), [65535]])
  .astype(np.uint16)[np.newaxis]
  .repeat(2, axis=0)
)


def _scaled_ramp():
  return np.round(_RAMP_16 * (255.0 / 65535.0)).astype(np.uint8)


def test_16_bit_grayscale_png_is_scaled_not_clipped(tmp_path):
  path = str(tmp_path / 'gray16.png')
  cv2.imwrite(path, _RAMP_16)
  assert Image.open(path).mode == 'I;16'
  rgb = io_utils.read_rgb_image(path)
  assert rgb.dtype == np.uint8 and rgb.shape == _RAMP_16.shape + (3,)
  for channel in range(3):
    np.testing.assert_array_equal(rgb[..., channel], _scaled_ramp())
  # As the 16-bit RGB PNG of the same values, which Pillow scales itself.
  cv2.imwrite(str(tmp_path / 'rgb16.png'), np.stack([_RAMP_16] * 3, axis=-1))
  np.testing.assert_allclose(
    io_utils.read_rgb_image(str(tmp_path / 'rgb16.png')), rgb, atol=1
  )


def test_16_bit_pgm_opened_as_32_bit_is_scaled(tmp_path):
  path = tmp_path / 'gray16.pgm'
  path.write_bytes(
    b'P5 3 1 65535\n' + np.array([0, 32896, 65535], '>u2').tobytes()
  )
  assert Image.open(path).mode == 'I'
  np.testing.assert_array_equal(
    io_utils.read_rgb_image(str(path))[0, :, 0], [0, 128, 255]
  )


@pytest.mark.parametrize(
  'mode, value, expected',
  [
    ('1', 1, (255, 255, 255)),
    ('L', 90, (90, 90, 90)),
    ('LA', (90, 0), (90, 90, 90)),
    ('RGBA', (10, 20, 30, 0), (10, 20, 30)),
    ('CMYK', (0, 255, 0, 0), (255, 0, 255)),
    ('YCbCr', (128, 128, 128), (128, 128, 128)),
  ],
)
def test_8_bit_modes_convert_to_rgb(tmp_path, mode, value, expected):
  path = str(tmp_path / 'image.tiff')
  Image.new(mode, (3, 2), value).save(path)
  rgb = io_utils.read_rgb_image(path)
  assert rgb.shape == (2, 3, 3)
  np.testing.assert_array_equal(rgb[0, 0], expected)


def test_palette_image_gives_its_colours(tmp_path):
  image = Image.new('P', (3, 2), 1)
  image.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
  image.save(tmp_path / 'palette.png')
  np.testing.assert_array_equal(
    io_utils.read_rgb_image(str(tmp_path / 'palette.png'))[1, 2], [200, 100, 50]
  )


@pytest.mark.parametrize(
  'array, match',
  [
    (
      np.full((2, 3), 0.5, np.float32),
      r'is a mode F image with values in '
      r'\[0.5, 0.5\], which has no defined conversion',
    ),
    (
      np.full((2, 3), 70000, np.int32),
      r'is a mode I image with values in '
      r'\[70000, 70000\]',
    ),
  ],
)
def test_modes_without_a_defined_white_are_refused_naming_the_file(
  tmp_path, array, match
):
  path = str(tmp_path / 'odd.tiff')
  Image.fromarray(array).save(path)
  with pytest.raises(errors.ImageFileError, match=match) as raised:
    io_utils.read_rgb_image(path)
  assert path in str(raised.value)


@pytest.mark.parametrize(
  'mode, value, expected',
  [('1', 1, 1), ('L', 3, 3), ('I;16', 300, 300), ('I', 70000, 70000)],
)
def test_single_channel_labels_are_read_as_ids(tmp_path, mode, value, expected):
  path = str(tmp_path / 'label.tiff')
  Image.new(mode, (3, 2), value).save(path)
  np.testing.assert_array_equal(
    io_utils.read_label_image(path), np.full((2, 3), expected)
  )


@pytest.mark.parametrize(
  'mode, value',
  [('LA', (1, 255)), ('RGBA', (1, 1, 1, 255)), ('F', 1.0), ('CMYK', 0)],
)
def test_labels_in_other_modes_are_refused_naming_file_and_mode(
  tmp_path, mode, value
):
  path = str(tmp_path / 'label.tiff')
  Image.new(mode, (3, 2), value).save(path)
  with pytest.raises(errors.ImageFileError) as raised:
    io_utils.read_label_image(path)
  assert '%s is a mode %s image (bands' % (
    path,
    mode,
  ) in str(raised.value)


def test_16_bit_image_reaches_the_network_scaled_in_every_reader(
  voc_root, tmp_path
):
  gray16 = np.full(IMAGE_SIZE, 30000, np.uint16)
  image_path = str(tmp_path / 'gray16.png')
  cv2.imwrite(image_path, gray16)
  list_path = _write_list(
    tmp_path / 'list.txt', ['%s %s' % (image_path, _label_path(voc_root))]
  )
  expected = round(30000 * 255 / 65535) - np.array(data.IMG_MEAN)
  batch = next(
    iter(
      data.build_training_dataset(
        voc_root,
        list_path,
        IMAGE_SIZE,
        1,
        random_scale=False,
        random_mirror=False,
        random_crop=False,
      )
    )
  )
  np.testing.assert_allclose(batch['image'][0, 5, 5], expected, atol=1e-3)
  dataset = data.entries_dataset(data.read_data_list(voc_root, list_path))
  np.testing.assert_allclose(
    next(iter(dataset))['image'][5, 5], expected, atol=1e-3
  )
  assert data.check_data_list(voc_root, list_path, NUM_CLASSES).ok


def test_refused_mode_is_a_problem_of_the_list_check(voc_root, tmp_path):
  image_path = str(tmp_path / 'float.tiff')
  Image.fromarray(np.zeros(IMAGE_SIZE, np.float32)).save(image_path)
  list_path = _write_list(
    tmp_path / 'list.txt', ['%s %s' % (image_path, _label_path(voc_root))]
  )
  report = data.check_data_list(voc_root, list_path, NUM_CLASSES)
  assert report.problems == [
    '%s, line 1: %s is a mode F image with values in [0.0, 0.0], which has '
    'no defined conversion to 8-bit RGB; save it as an 8- or 16-bit image'
    % (list_path, image_path)
  ]


def test_voc_to_segcls_refuses_a_colour_label_in_one_line(tmp_path, capsys):
  input_dir = tmp_path / 'in'
  input_dir.mkdir()
  Image.new('RGB', (3, 2)).save(input_dir / 'a.png')
  (input_dir / 'b.png').write_bytes(b'not a png')
  Image.new('L', (3, 2)).save(input_dir / 'c.png')
  with pytest.raises(SystemExit) as raised:
    voc_to_segcls.main(
      [
        '--input_dir',
        str(input_dir),
        '--output_dir',
        str(tmp_path / 'out'),
        '--workers',
        '1',
      ]
    )
  message = str(raised.value)
  assert message.startswith(
    'error: 2 bad input(s), nothing written: %s is a mode RGB image'
    % (input_dir / 'a.png')
  )
  assert 'Cannot decode label image %s' % (input_dir / 'b.png') in message
  assert '\n' not in message
  assert not (tmp_path / 'out').exists()


# --- 2. Unchecked flags -------------------------------------------------------

_INFERENCE_FLAGS = [
  '--data_dir',
  'd',
  '--data_list',
  'l',
  '--restore_from',
  'r',
  '--save_dir',
  's',
]
_KNN_FLAGS = _INFERENCE_FLAGS + ['--prototype_dir', 'p']


@pytest.mark.parametrize(
  'main, argv, message',
  [
    (
      inference_segsort.main,
      _KNN_FLAGS + ['--k_in_nearest_neighbors', '0'],
      "argument --k_in_nearest_neighbors: must be an integer >= 1, got '0'",
    ),
    (
      inference_segsort.main,
      _KNN_FLAGS + ['--k_in_nearest_neighbors', '-3'],
      "argument --k_in_nearest_neighbors: must be an integer >= 1, got '-3'",
    ),
    (
      inference_segsort.main,
      _KNN_FLAGS + ['--num_clusters', '0'],
      "argument --num_clusters: expected \"N\" or \"ROWS,COLUMNS\" of positive "
      "integers, got '0'",
    ),
    (
      inference_segsort.main,
      _KNN_FLAGS + ['--kmeans_iterations', '-1'],
      "argument --kmeans_iterations: must be an integer >= 0",
    ),
    (
      inference_segsort.main,
      _KNN_FLAGS + ['--kmeans_iterations', '100000'],
      "argument --kmeans_iterations: must be an integer >= 0 and <= 1000, "
      "got '100000'",
    ),
    (
      inference_segsort.main,
      _KNN_FLAGS + ['--colour_weight', '-1'],
      "argument --colour_weight: must be a finite number >= 0 and <= 1000000, "
      "got '-1'",
    ),
    (
      inference_segsort.main,
      _KNN_FLAGS + ['--colour_weight', 'nan'],
      "argument --colour_weight: must be a finite number >= 0 and <= 1000000, "
      "got 'nan'",
    ),
    (
      inference_segsort.main,
      _KNN_FLAGS + ['--colour_weight', '1e39'],
      "argument --colour_weight: must be a finite number >= 0 and <= 1000000, "
      "got '1e39'",
    ),
    (
      inference_segsort.main,
      _KNN_FLAGS + ['--strides', '800,10'],
      'argument --strides: must be at most --input_size 720,720, got 800,10',
    ),
    # A default the user never typed is named as one.
    (
      inference_segsort.main,
      _KNN_FLAGS + ['--input_size', '48,64'],
      'argument --strides: must be at most --input_size 48,64, got its '
      'default 320,320: give --strides',
    ),
    (
      inference_segsort.main,
      _KNN_FLAGS + ['--input_size', '0'],
      'argument --input_size: expected "height,width" of positive integers',
    ),
    (
      inference_segsort.main,
      _KNN_FLAGS + ['--num_classes', '21', '--ignore_label', '3'],
      'argument --ignore_label: must not be a class id of [0, --num_classes '
      '21), got 3',
    ),
    (
      inference_segsort.main,
      _KNN_FLAGS + ['--embedding_dim', '0'],
      "argument --embedding_dim: must be an integer >= 1",
    ),
    (
      inference_segsort_msc.main,
      _KNN_FLAGS + ['--scale_aug', '0'],
      "argument --scale_aug: expected comma-separated numbers > 0 and <= 4, "
      "got '0'",
    ),
    (
      inference_segsort_msc.main,
      _KNN_FLAGS + ['--scale_aug', '1,nan'],
      'argument --scale_aug: expected comma-separated numbers > 0',
    ),
    (
      inference_segsort_msc.main,
      _KNN_FLAGS + ['--scale_aug', '1,100'],
      "argument --scale_aug: expected comma-separated numbers > 0 and <= 4, "
      "got '1,100'",
    ),
    (
      inference_softmax.main,
      _INFERENCE_FLAGS + ['--num_classes', '0'],
      "argument --num_classes: must be an integer >= 1, got '0'",
    ),
    (
      inference_softmax.main,
      _INFERENCE_FLAGS + ['--scale_aug', '0.5,-1'],
      'argument --scale_aug: expected comma-separated numbers > 0',
    ),
    (
      inference_softmax.main,
      _INFERENCE_FLAGS + ['--scale_aug', '4.5'],
      'argument --scale_aug: expected comma-separated numbers > 0 and <= 4',
    ),
    (
      extract_prototypes.main,
      _INFERENCE_FLAGS + ['--num_clusters', '-2'],
      "argument --num_clusters: expected \"N\" or \"ROWS,COLUMNS\" of positive "
      "integers, got '-2'",
    ),
    (
      extract_prototypes.main,
      _INFERENCE_FLAGS + ['--num_clusters', '8,0'],
      "argument --num_clusters: expected \"N\" or \"ROWS,COLUMNS\" of positive "
      "integers, got '8,0'",
    ),
    (
      explain.main,
      _KNN_FLAGS + ['--image_id', 'a', '--num_segments', '0'],
      "argument --num_segments: must be an integer >= 1, got '0'",
    ),
    (
      explain.main,
      _KNN_FLAGS + ['--image_id', 'a', '--tile_size', '2'],
      "argument --tile_size: must be an integer >= 16, got '2'",
    ),
    (
      benchmark_by_mIoU.main,
      ['--pred_dir', '.', '--gt_dir', '.', '--num_classes', '0'],
      "argument --num_classes: must be an integer >= 1, got '0'",
    ),
    (
      benchmark_by_mIoU.main,
      ['--pred_dir', '.', '--gt_dir', '.', '--ignore_label', '20'],
      'argument --ignore_label: must not be a class id of [0, --num_classes '
      '21), got 20',
    ),
    (
      explain.main,
      _KNN_FLAGS + ['--image_id', 'a', '--num_segments', '0'],
      "argument --num_segments: must be an integer >= 1, got '0'",
    ),
    (
      explain.main,
      _KNN_FLAGS + ['--image_id', 'a', '--num_neighbours_shown', '-1'],
      "argument --num_neighbours_shown: must be an integer >= 0, got '-1'",
    ),
    (
      benchmark_by_mIoU.main,
      ['--pred_dir', '.', '--gt_dir', '.', '--boundary_tolerance', '-1'],
      "argument --boundary_tolerance: must be a finite number >= 0, got '-1'",
    ),
    (
      check_list.main,
      ['--data_dir', 'd', '--data_list', 'l', '--workers', '0'],
      "argument --workers: must be an integer >= 1, got '0'",
    ),
    (
      check_list.main,
      [
        '--data_dir',
        'd',
        '--data_list',
        'l',
        '--num_classes',
        '21',
        '--ignore_label',
        '0',
      ],
      'argument --ignore_label: must not be a class id',
    ),
    (
      make_oversegmentation.main,
      ['--threshold', '2'],
      "argument --threshold: must be a finite number >= 0 and <= 1, got '2'",
    ),
    (
      make_oversegmentation.main,
      ['--min_size', '0'],
      "argument --min_size: must be an integer >= 1, got '0'",
    ),
    (
      make_oversegmentation.main,
      ['--num_segments', '0'],
      "argument --num_segments: must be an integer >= 1, got '0'",
    ),
    (
      make_lists.main,
      ['--data_dir', '.', '--output_dir', __file__],
      'argument --output_dir: %s is a file, not a folder to write into'
      % __file__,
    ),
    # Flags that the chosen mode ignored were dropped silently.
    (
      make_oversegmentation.main,
      ['--groups_of', 'hed', '--min_size', '5'],
      'argument --min_size: not with --groups_of, which does not use it',
    ),
    (
      make_oversegmentation.main,
      ['--oracle_label_dir', 'segcls', '--threshold', '0.2'],
      'argument --threshold: not with --oracle_label_dir, which does not '
      'use it',
    ),
    (
      make_oversegmentation.main,
      ['--oracle_label_dir', 'segcls', '--apply_exif_orientation'],
      'argument --apply_exif_orientation: not with --oracle_label_dir, '
      'which does not use it',
    ),
    (
      make_oversegmentation.main,
      ['--oracle_label_dir', 'segcls', '--groups_of', 'hed'],
      'argument --groups_of: not with --oracle_label_dir, which does not '
      'use it',
    ),
    (
      make_synthetic_voc.main,
      ['--root', 'r', '--num_classes', '99'],
      "argument --num_classes: must be an integer >= 2 and <= %d, got '99'"
      % make_synthetic_voc.MAX_NUM_CLASSES,
    ),
    (
      make_synthetic_voc.main,
      ['--root', 'r', '--size', '0x5'],
      "argument --size: expected 'H' or 'HxW' of positive integers",
    ),
    (
      make_synthetic_voc.main,
      ['--root', 'r', '--seed', '-1'],
      "argument --seed: must be an integer >= 0, got '-1'",
    ),
    (
      voc_to_segcls.main,
      ['--workers', '0'],
      "argument --workers: must be an integer >= 1, got '0'",
    ),
    (
      sbd_to_clsimg.main,
      ['--workers', '-4'],
      "argument --workers: must be an integer >= 1, got '-4'",
    ),
  ],
)
def test_numeric_flags_are_checked_before_any_work(capsys, main, argv, message):
  with pytest.raises(SystemExit) as raised:
    main(argv)
  assert raised.value.code == 2
  assert message in capsys.readouterr().err


@pytest.mark.parametrize(
  'argv, message',
  [
    (['--concentration', '0'], '--concentration must be a number > 0'),
    (['--learning_rate', 'nan'], '--learning_rate must be a number >= 0'),
    (['--momentum', '1.5'], '--momentum must be at most 1'),
    (['--ema_decay', '1'], '--ema_decay must be a number in [0, 1), got 1.0'),
    (['--ema_decay', '-0.1'], '--ema_decay must be a number in [0, 1)'),
    (
      ['--kmeans_iterations', '1001'],
      '--kmeans_iterations must be at most 1000, got 1001',
    ),
    (
      ['--head_learning_rate_multiplier', '0'],
      '--head_learning_rate_multiplier must be a number > 0, got 0.0',
    ),
    (
      ['--head_learning_rate_multiplier', 'nan'],
      '--head_learning_rate_multiplier must be a number > 0, got nan',
    ),
    (['--random_seed', '-1'], '--random_seed must be a number >= 0'),
    (
      ['--ignore_label', '3'],
      '--ignore_label 3 is a class id of [0, --num_classes 21)',
    ),
    # One class: the loss is 0 whatever the network does.
    (
      ['--num_classes', '1'],
      '--num_classes must be at least 2: with one class there is nothing to '
      'tell apart',
    ),
    # Keras's seed is 32-bit: a traceback at start-up.
    (
      ['--random_seed', '4294967296'],
      '--random_seed must be at most 2**32 - 1 = 4294967295, got 4294967296',
    ),
    # Beyond TensorFlow's int32: a traceback in the memory bank.
    (
      ['--batch_size', '99999999999999999999'],
      '--batch_size 99999999999999999999 is more than 2147483647',
    ),
    (
      ['--input_size', '99999999999999999999,64'],
      'argument --input_size: expected "height,width" of positive integers '
      "at most 2147483647, got '99999999999999999999,64'",
    ),
    # A typo's step count, which no run would end.
    (
      ['--num_steps', '99999999999999999999'],
      '--num_steps 99999999999999999999 is more than 2147483647',
    ),
    # argparse took a negative pair or exponent for an unknown option and
    # said only "expected one argument".
    (
      ['--input_size', '-64,64'],
      'argument --input_size: expected "height,width" of positive integers, '
      "got '-64,64'",
    ),
    (
      ['--learning_rate', '-1e-3'],
      '--learning_rate must be a number >= 0, got -0.001',
    ),
    (
      ['--kmeans_grid', 'crop', '--input_size', '32,48', '--num_clusters', '5'],
      '--num_clusters 5,5 is more clusters per axis than the 4x6 embedding '
      'of an --input_size 32x48 crop at --output_stride 8',
    ),
  ],
)
def test_training_flags_are_checked(capsys, argv, message):
  with pytest.raises(SystemExit):
    config_lib.TrainConfig.from_flags(argv, mode='segsort')
  error = capsys.readouterr().err
  assert message in error
  assert (
    error.strip().splitlines()[-1].endswith(error.strip().split('error: ')[-1])
  )


# (entry point, flags with FILE for an existing file, the flag named).
_OUTPUT_FOLDER_FLAGS = [
  (inference_segsort.main, _KNN_FLAGS + ['--save_dir', 'FILE'], '--save_dir'),
  (
    extract_prototypes.main,
    _INFERENCE_FLAGS + ['--save_dir', 'FILE/sub'],
    '--save_dir',
  ),
  (
    explain.main,
    _KNN_FLAGS + ['--image_id', 'a', '--save_dir', 'FILE'],
    '--save_dir',
  ),
  (
    export.main,
    ['--restore_from', 'r', '--output_dir', 'FILE/model'],
    '--output_dir',
  ),
  (train_segsort.main, ['--snapshot_dir', 'FILE'], '--snapshot_dir'),
  (make_oversegmentation.main, ['--output_dir', 'FILE'], '--output_dir'),
  (voc_to_segcls.main, ['--output_dir', 'FILE/a'], '--output_dir'),
  (sbd_to_clsimg.main, ['--output_dir', 'FILE'], '--output_dir'),
  (
    camvid_to_voc.main,
    ['--camvid_dir', 'c', '--output_dir', 'FILE'],
    '--output_dir',
  ),
]


@pytest.mark.parametrize('main, argv, flag', _OUTPUT_FOLDER_FLAGS)
def test_an_output_folder_blocked_by_a_file_is_named_before_any_work(
  capsys, tmp_path, main, argv, flag
):
  blocking_file = tmp_path / 'file.txt'
  blocking_file.write_text('keep me\n')
  with pytest.raises(SystemExit) as raised:
    main([value.replace('FILE', str(blocking_file)) for value in argv])
  assert raised.value.code == 2
  error = capsys.readouterr().err.strip().splitlines()[-1]
  assert error.endswith(
    'argument %s: %s is a file, not a folder to write into'
    % (flag, blocking_file)
  ), error
  assert blocking_file.read_text() == 'keep me\n'


@pytest.mark.skipif(not os.path.isdir('/proc/self'), reason='needs Linux /proc')
@pytest.mark.parametrize('main, argv, flag', _OUTPUT_FOLDER_FLAGS)
def test_an_output_folder_that_cannot_be_made_is_named_before_any_work(
  capsys, main, argv, flag
):
  # /proc takes no new folder, even from root (whom permissions would not
  # stop): the OS error came after the work, without the flag.
  with pytest.raises(SystemExit) as raised:
    main([value.replace('FILE', '/proc/segsort_no_such') for value in argv])
  assert raised.value.code == 2
  error = capsys.readouterr().err.strip().splitlines()[-1]
  assert re.search(
    r'argument %s: cannot make /proc/segsort_no_such\S*: no folder can be '
    r'made in /proc \(.+\)$' % flag,
    error,
  ), error


@pytest.mark.skipif(not os.path.isdir('/proc/self'), reason='needs Linux /proc')
def test_an_output_file_that_cannot_be_written_is_named_before_any_work(
  capsys, tmp_path
):
  with pytest.raises(SystemExit) as raised:
    benchmark_by_mIoU.main(
      [
        '--pred_dir',
        str(tmp_path),
        '--gt_dir',
        str(tmp_path),
        '--output_json',
        '/proc/segsort_no_such/metrics.json',
      ]
    )
  assert raised.value.code == 2
  assert (
    capsys.readouterr()
    .err.strip()
    .splitlines()[-1]
    .endswith(
      'argument --output_json: cannot make /proc/segsort_no_such: no folder '
      'can be made in /proc (No such file or directory)'
    )
  )


@pytest.mark.parametrize(
  'main, argv, message',
  [
    (
      benchmark_by_mIoU.main,
      ['--pred_dir', 'MISSING', '--gt_dir', 'DIR'],
      'argument --pred_dir: no folder MISSING',
    ),
    (
      benchmark_by_mIoU.main,
      ['--pred_dir', 'DIR', '--gt_dir', 'FILE'],
      'argument --gt_dir: FILE is not a folder',
    ),
    (
      benchmark_by_mIoU.main,
      ['--pred_dir', 'DIR', '--gt_dir', 'DIR', '--output_json', 'DIR'],
      'argument --output_json: DIR is a folder, not a file to write',
    ),
    (
      benchmark_by_mIoU.main,
      ['--pred_dir', 'DIR', '--gt_dir', 'DIR', '--output_json', 'FILE/x.json'],
      'argument --output_json: FILE is a file, not a folder to write into',
    ),
    (
      make_oversegmentation.main,
      ['--image_dir', 'MISSING'],
      'argument --image_dir: no folder MISSING',
    ),
    (
      make_oversegmentation.main,
      ['--data_dir', 'DIR'],
      'argument --data_dir: no image folder DIR/VOC2012/JPEGImages (or give '
      '--image_dir)',
    ),
    (
      make_oversegmentation.main,
      ['--image_dir', 'DIR', '--sed_model', 'MISSING'],
      'argument --sed_model: no file MISSING',
    ),
    (
      voc_to_segcls.main,
      ['--data_dir', 'DIR'],
      'argument --data_dir: no folder DIR/VOC2012/SegmentationClass',
    ),
    (
      voc_to_segcls.main,
      ['--input_dir', 'FILE', '--output_dir', 'DIR/out'],
      'argument --input_dir: FILE is not a folder',
    ),
    (
      voc_to_segcls.main,
      ['--input_dir', 'DIR', '--output_dir', 'DIR/out'],
      'DIR holds no .png file',
    ),
    (
      sbd_to_clsimg.main,
      ['--data_dir', 'DIR'],
      'argument --data_dir: no folder DIR/sbd/dataset/cls',
    ),
    (
      sbd_to_clsimg.main,
      ['--cls_dir', 'DIR', '--output_dir', 'DIR/out'],
      'DIR holds no .mat file',
    ),
    (
      evaluate_oversegmentation.main,
      ['--data_dir', 'DIR'],
      'argument --data_dir: no folder DIR/VOC2012/hed',
    ),
  ],
)
def test_input_paths_are_named_before_any_work(
  capsys, tmp_path, main, argv, message
):
  (tmp_path / 'file.txt').write_text('not a model\n')

  def fill(text):
    return (
      text.replace('MISSING', str(tmp_path / 'missing'))
      .replace('FILE', str(tmp_path / 'file.txt'))
      .replace('DIR', str(tmp_path))
    )

  with pytest.raises(SystemExit) as raised:
    main([fill(value) for value in argv])
  assert raised.value.code == 2
  error = capsys.readouterr().err.strip().splitlines()[-1]
  assert error.endswith(fill(message)), error


def test_implied_outputs_blocked_by_a_folder_or_file_are_named_before_work(
  capsys, tmp_path
):
  run_dir = tmp_path / 'run'
  (run_dir / 'gray').mkdir(parents=True)
  (run_dir / 'metrics.json').mkdir()
  benchmark = ['--gt_dir', str(tmp_path), '--pred_dir', str(run_dir / 'gray')]
  with pytest.raises(SystemExit):
    benchmark_by_mIoU.main(benchmark)
  assert (
    capsys.readouterr()
    .err.strip()
    .endswith(
      'argument --pred_dir: %s is a folder, not a file to write'
      % (run_dir / 'metrics.json')
    )
  )
  (tmp_path / 'out_iou.png').mkdir()
  with pytest.raises(SystemExit):
    benchmark_by_mIoU.main(
      benchmark + ['--output_json', str(tmp_path / 'out.json')]
    )
  assert (
    capsys.readouterr()
    .err.strip()
    .endswith(
      'argument --output_json: %s is a folder, not a file to write'
      % (tmp_path / 'out_iou.png')
    )
  )
  segcls = tmp_path / 'VOC2012' / 'segcls'
  assert _voc_to_segcls_refusal(
    tmp_path, capsys, lambda: segcls.write_text('keep me\n')
  ).endswith(
    'argument --data_dir: %s is a file, not a folder to write into' % segcls
  )
  assert segcls.read_text() == 'keep me\n'


def _voc_to_segcls_refusal(tmp_path, capsys, block_output):
  """voc_to_segcls's error on one label, once block_output() has run."""
  voc_dir = tmp_path / 'VOC2012'
  (voc_dir / 'SegmentationClass').mkdir(parents=True)
  Image.new('L', (3, 2)).save(voc_dir / 'SegmentationClass' / 'a.png')
  block_output()
  with pytest.raises(SystemExit):
    voc_to_segcls.main(['--data_dir', str(tmp_path)])
  return capsys.readouterr().err.strip()


def test_a_sed_model_that_opencv_cannot_read_is_named(capsys, tmp_path):
  model = tmp_path / 'model.yml.gz'
  model.write_text('not a model\n')
  with pytest.raises(SystemExit) as raised:
    make_oversegmentation.main(
      ['--image_dir', str(tmp_path), '--sed_model', str(model)]
    )
  assert raised.value.code == 2
  error = capsys.readouterr().err.strip().splitlines()[-1]
  # OpenCV's reason, or that cv2.ximgproc is missing, on the same line.
  assert 'error: argument --sed_model: ' in error, error


# --- 4. EXIF orientation ------------------------------------------------------


def _rotated_photo(path, orientation=6):
  """A 40x48 (rows x columns) JPEG whose EXIF asks viewers to turn it."""
  pixels = np.zeros(IMAGE_SIZE + (3,), np.uint8)
  pixels[:10, :] = 255  # A white band along the stored top.
  exif = Image.Exif()
  exif[0x0112] = orientation
  Image.fromarray(pixels).save(path, exif=exif, quality=95)
  return str(path)


def test_exif_orientation_is_warned_once_or_applied(tmp_path, caplog):
  path = _rotated_photo(tmp_path / 'photo.jpg')
  with caplog.at_level(logging.WARNING, logger='segsort.io_utils'):
    stored = io_utils.read_rgb_image(path)
    io_utils.read_rgb_image(path)
  assert stored.shape == IMAGE_SIZE + (3,)
  assert caplog.text.count('%s has EXIF orientation 6' % path) == 1
  assert '--apply_exif_orientation' in caplog.text
  displayed = io_utils.read_rgb_image(path, apply_exif_orientation=True)
  # Orientation 6: turned 90 degrees clockwise, the top band on the right.
  assert displayed.shape == (IMAGE_SIZE[1], IMAGE_SIZE[0], 3)
  assert displayed[:, -5].mean() > 200 and displayed[:, 5].mean() < 50


def test_list_check_reports_exif_orientation_and_accepts_it_applied(
  voc_root, tmp_path, capsys
):
  photo = _rotated_photo(tmp_path / 'photo.jpg')
  # The mask drawn on the displayed view, as annotation tools show it.
  mask = np.zeros((IMAGE_SIZE[1], IMAGE_SIZE[0]), np.uint8)
  mask[:, -10:] = 1
  Image.fromarray(mask).save(tmp_path / 'mask.png')
  list_path = _write_list(
    tmp_path / 'list.txt', ['%s %s' % (photo, tmp_path / 'mask.png')]
  )
  argv = [
    '--data_dir',
    voc_root,
    '--data_list',
    list_path,
    '--num_classes',
    '2',
    '--workers',
    '1',
  ]
  assert check_list.main(argv) == 1
  output = capsys.readouterr().out
  assert (
    'list.txt, line 1: label %s is 48x40 but its image is 40x48'
    % (tmp_path / 'mask.png')
    in output
  )
  assert check_list.main(argv + ['--apply_exif_orientation']) == 0
  # Square images pass the size check; the orientation is still reported.
  square = _rotated_photo(tmp_path / 'square.jpg')
  Image.open(square).crop((0, 0, 40, 40)).save(
    tmp_path / 'square.jpg', exif=Image.open(square).getexif()
  )
  Image.fromarray(mask[:40]).save(tmp_path / 'square.png')
  list_path = _write_list(
    tmp_path / 'square.txt',
    ['%s %s' % (tmp_path / 'square.jpg', tmp_path / 'square.png')],
  )
  report = data.check_data_list(voc_root, list_path, 2)
  assert report.problems == [
    '%s, line 1: %s'
    % (
      list_path,
      io_utils.describe_orientation(str(tmp_path / 'square.jpg'), 6),
    )
  ]
  assert data.check_data_list(
    voc_root, list_path, 2, apply_exif_orientation=True
  ).ok


def test_training_and_inference_apply_the_orientation_when_asked(
  voc_root, tmp_path
):
  photo = _rotated_photo(tmp_path / 'photo.jpg')
  Image.fromarray(np.ones((IMAGE_SIZE[1], IMAGE_SIZE[0]), np.uint8)).save(
    tmp_path / 'mask.png'
  )
  list_path = _write_list(
    tmp_path / 'list.txt', ['%s %s' % (photo, tmp_path / 'mask.png')]
  )
  crop = (IMAGE_SIZE[1], IMAGE_SIZE[0])
  batch = next(
    iter(
      data.build_training_dataset(
        voc_root,
        list_path,
        crop,
        1,
        random_scale=False,
        random_mirror=False,
        random_crop=False,
        apply_exif_orientation=True,
      )
    )
  )
  assert (batch['label'].numpy() == 1).all()
  assert batch['image'][0, :, -5].numpy().mean() > 100
  dataset = data.entries_dataset(
    data.read_data_list(voc_root, list_path), apply_exif_orientation=True
  )
  assert next(iter(dataset))['image'].shape == crop + (3,)
  config = config_lib.TrainConfig.from_flags(['--apply_exif_orientation'])
  assert config.apply_exif_orientation


# --- 5. Invisible characters in list files ------------------------------------


def test_list_with_byte_order_mark_reads_in_every_list_reader(
  voc_root, tmp_path
):
  lines = [
    'VOC2012/JPEGImages/train_000000.jpg VOC2012/segcls/train_000000.png'
  ]
  list_path = _write_list(tmp_path / 'bom.txt', lines, prefix='\ufeff')
  with open(list_path, 'rb') as stream:
    assert stream.read(3) == b'\xef\xbb\xbf'
  assert [
    entry.image_id for entry in data.read_data_list(voc_root, list_path)
  ] == ['train_000000']
  assert data.check_data_list(voc_root, list_path, NUM_CLASSES).ok
  assert metrics.list_image_ids(list_path) == ['train_000000']
  split = _write_list(tmp_path / 'split.txt', ['2007_000032'], prefix='\ufeff')
  assert make_lists.read_split(split) == ['2007_000032']


def test_a_repeated_image_id_is_refused_by_every_list_reader(
  voc_root, tmp_path, capsys
):
  """Before training: extraction and inference name outputs by image id,
  and the pipelines extract prototypes from the training list."""
  lines = [
    'VOC2012/JPEGImages/train_000000.jpg VOC2012/segcls/train_000000.png',
    'VOC2012/JPEGImages/train_000001.jpg VOC2012/segcls/train_000001.png',
    'VOC2012/JPEGImages/train_000000.jpg VOC2012/segcls/train_000000.png',
  ]
  list_path = _write_list(tmp_path / 'repeated.txt', lines)
  repeated = 'line 3: image id train_000000 again (first on line 1)'
  for read in (
    lambda: data.read_data_list(voc_root, list_path),
    lambda: data.read_data_list(voc_root, list_path, require_labels=False),
    lambda: data.check_training_list(voc_root, list_path, NUM_CLASSES, 255),
  ):
    with pytest.raises(errors.DataError, match=re.escape(repeated)):
      read()
  report = data.check_data_list(voc_root, list_path, NUM_CLASSES)
  assert not report.ok and any(repeated in line for line in report.problems)
  assert check_list.main(['--data_dir', voc_root, '--data_list', list_path])
  assert repeated in capsys.readouterr().out
  with pytest.raises(ValueError, match='line 3 names image train_000000'):
    metrics.list_image_ids(list_path)


def test_a_comment_line_is_named_once_in_every_list_reader(voc_root, tmp_path):
  """Read as paths, '# train split' gave two missing files for one line."""
  list_path = _write_list(
    tmp_path / 'commented.txt',
    [
      '# train split',
      'VOC2012/JPEGImages/train_000000.jpg VOC2012/segcls/train_000000.png',
    ],
  )
  message = 'line 1: starts with "#", but data lists have no comments'
  with pytest.raises(errors.DataError) as raised:
    data.read_data_list(voc_root, list_path)
  assert str(raised.value).startswith('1 problem(s) in data list ')
  assert message in str(raised.value)
  with pytest.raises(
    ValueError, match='line 1 starts with "#", but data lists have no comments'
  ):
    metrics.list_image_ids(list_path)


@pytest.mark.parametrize('invisible', ['\u200b', '\u00a0', '\u2060', '\x7f'])
def test_invisible_characters_in_paths_show_in_the_error(
  voc_root, tmp_path, invisible
):
  list_path = _write_list(
    tmp_path / 'list.txt',
    [
      'VOC2012/JPEGImages/train_000000%s.jpg VOC2012/segcls/train_000000.png'
      % invisible
    ],
  )
  with pytest.raises(errors.DataError) as raised:
    data.read_data_list(voc_root, list_path)
  assert repr(
    os.path.join(voc_root, 'VOC2012/JPEGImages/train_000000%s.jpg' % invisible)
  ) in str(raised.value)


def test_list_that_is_not_utf8_names_its_line(voc_root, tmp_path):
  list_path = tmp_path / 'latin1.txt'
  list_path.write_bytes(b'a.jpg b.png\nimage_\xe9t\xe9.jpg b.png\n')
  with pytest.raises(
    errors.DataError, match=r'latin1.txt, line 2 is not UTF-8 text'
  ):
    data.read_data_list(voc_root, str(list_path))


# --- Suspicious labels --------------------------------------------------------


def _binary_masks(voc_root, tmp_path, values):
  lines = []
  for index in range(2):
    mask = np.zeros(IMAGE_SIZE, np.uint8)
    mask[10:20, 10 + index : 30] = values
    path = tmp_path / ('mask%d.png' % index)
    Image.fromarray(mask).save(path)
    lines.append('VOC2012/JPEGImages/train_%06d.jpg %s' % (index, path))
  return _write_list(tmp_path / 'masks.txt', lines)


def test_binary_masks_stored_as_0_255_are_warned_about(
  voc_root, tmp_path, caplog, capsys
):
  list_path = _binary_masks(voc_root, tmp_path, 255)
  with caplog.at_level(logging.WARNING, logger='segsort.data'):
    data.check_training_list(voc_root, list_path, 2, 255)
  assert (
    'The labels of %s hold only 0 and the ignore label 255' % list_path
    in caplog.text
  )
  assert (
    check_list.main(
      ['--data_dir', voc_root, '--data_list', list_path, '--num_classes', '2']
    )
    == 0
  )
  assert 'warning: The labels of %s hold only 0' % list_path in (
    capsys.readouterr().out
  )
  assert not data.check_training_list(
    voc_root, _binary_masks(voc_root, tmp_path, 1), 2, 255
  ).warnings()


def test_a_list_whose_labels_hold_no_class_is_refused(voc_root, tmp_path):
  """It trained nothing (every pixel left out of the loss) and, as the
  CamVid benchmark's val list, scored null after every method had trained."""
  list_path = _binary_masks(voc_root, tmp_path, 255)
  for index in range(2):
    Image.fromarray(np.full(IMAGE_SIZE, 255, np.uint8)).save(
      tmp_path / ('mask%d.png' % index)
    )
  problem = (
    'no pixel of the labels of %s has a class of [0, 2): all are the '
    'ignore label 255 or out of range' % list_path
  )
  with pytest.raises(errors.DataError) as raised:
    data.check_training_list(voc_root, list_path, 2, 255)
  assert str(raised.value) == problem + '; nothing to train'
  assert data.check_data_list(voc_root, list_path, 2).problems == [problem]
  # Unsupervised lists need no labels; the lines' own problems come first.
  assert data.check_data_list(voc_root, list_path, 2, require_labels=False).ok
  (tmp_path / 'mask1.png').unlink()
  problems = data.check_data_list(voc_root, list_path, 2).problems
  assert len(problems) == 1 and 'mask1.png' in problems[0]


def test_a_crop_far_larger_than_every_image_is_refused(voc_root, tmp_path):
  """CROP=10000,10000 on small images trained until memory ran out."""
  list_path = _binary_masks(voc_root, tmp_path, 1)
  height, width = IMAGE_SIZE
  for random_scale, scale in ((False, 1), (True, 2)):
    limit = (2 * height * scale, 2 * width * scale)
    # Up to twice the (scaled) image, crops are padded as the original's.
    data.check_training_list(
      voc_root, list_path, 2, 255, input_size=limit, random_scale=random_scale
    )
    with pytest.raises(errors.DataError) as raised:
      data.check_training_list(
        voc_root,
        list_path,
        2,
        255,
        input_size=(limit[0], limit[1] + 1),
        random_scale=random_scale,
      )
    assert str(raised.value) == (
      '--input_size %dx%d is more than twice the largest image of %s '
      '(%dx%d%s) along an axis: most of every crop would be padding'
      % (
        limit[0],
        limit[1] + 1,
        list_path,
        height * scale,
        width * scale,
        ', scaled by the largest random scale 2' if random_scale else '',
      )
    )


def test_classes_missing_from_a_whole_list_are_named(
  voc_root, tmp_path, caplog
):
  list_path = _binary_masks(voc_root, tmp_path, 1)
  with caplog.at_level(logging.WARNING, logger='segsort.data'):
    survey = data.check_training_list(voc_root, list_path, 5, 255)
  assert survey.class_pixels[2:].sum() == 0
  assert (
    'No pixel of the labels of %s has class 2, 3, 4 (of [0, 5)): the '
    'network never learns them.' % list_path
  ) in caplog.text
  report = data.check_data_list(voc_root, list_path, 5)
  assert report.ok and report.warnings == survey.warnings()


def test_out_of_range_files_are_logged_once_each_then_counted(
  voc_root, tmp_path, caplog
):
  high = np.full(IMAGE_SIZE, 9, np.uint8)
  high[0, 0] = 1
  Image.fromarray(high).save(tmp_path / 'high.png')
  num_files = data._MAX_OUT_OF_RANGE_WARNINGS + 3
  image = os.path.join(voc_root, 'VOC2012', 'JPEGImages', 'train_000000.jpg')
  lines = []
  for index in range(num_files):
    # Each line its own image id: a list may name an id once.
    copy = tmp_path / ('image_%d.jpg' % index)
    shutil.copyfile(image, copy)
    lines.append('%s %s' % (copy, tmp_path / 'high.png'))
  list_path = _write_list(tmp_path / 'list.txt', lines)
  with caplog.at_level(logging.WARNING, logger='segsort.data'):
    data.check_training_list(
      voc_root, list_path, NUM_CLASSES, 255, num_workers=1
    )
  assert caplog.text.count('are ignored (as 255)') == (
    data._MAX_OUT_OF_RANGE_WARNINGS
  )
  assert (
    'Ignored %d label pixels of %d files of %s holding values outside '
    '[0, 4) (3 files not named above).'
    % ((high == 9).sum() * num_files, num_files, list_path)
    in caplog.text
  )


def test_prototype_bank_missing_classes_are_named(caplog):
  with caplog.at_level(logging.WARNING, logger='segsort.inference'):
    inference.warn_of_missing_classes(np.array([0, 2, 2]), 4, 'Bank X')
  assert (
    'Bank X holds no prototype of class 1, 3 (of [0, 4)): k-NN '
    'inference never predicts them.'
  ) in caplog.text


@pytest.mark.parametrize(
  'script, argv, message',
  [
    (
      'benchmark_knn.py',
      ['--k', '0'],
      "argument --k: must be an integer >= 1, got '0'",
    ),
    (
      'benchmark_segsort_loss.py',
      ['--num_banks', '-1'],
      "argument --num_banks: must be an integer >= 0, got '-1'",
    ),
    (
      'benchmark_train_step.py',
      ['--batch_size', '0'],
      "argument --batch_size: must be an integer >= 1, got '0'",
    ),
    (
      'benchmark_input_pipeline.py',
      ['--batches', '-5'],
      "argument --batches: must be an integer >= 1, got '-5'",
    ),
  ],
)
def test_benchmark_flags_are_checked(script, argv, message):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  completed = subprocess.run(
    [sys.executable, os.path.join(root, 'benchmarks', script)] + argv,
    cwd=root,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert completed.returncode == 2
  assert message in completed.stderr


def test_join_problems_gives_the_first_ones_then_a_count():
  assert errors.join_problems(['a', 'b'], 2) == 'a; b'
  assert errors.join_problems(['a', 'b', 'c', 'd'], 2) == 'a; b; and 2 more'


@pytest.mark.parametrize('overwrite', [[], ['--overwrite']])
def test_file_jobs_refuse_outputs_taken_by_folders(tmp_path, capsys, overwrite):
  # A folder at an output path passed for a done job, or (overwriting) gave a
  # traceback halfway through the run.
  voc_dir = tmp_path / 'VOC2012'
  (voc_dir / 'SegmentationClass').mkdir(parents=True)
  for name in ('a', 'b', 'c'):
    Image.new('L', (3, 2)).save(voc_dir / 'SegmentationClass' / (name + '.png'))
  (voc_dir / 'segcls' / 'a.png').mkdir(parents=True)
  (voc_dir / 'segcls' / 'c.png').mkdir()
  with pytest.raises(SystemExit) as exit_info:
    voc_to_segcls.main(
      ['--data_dir', str(tmp_path), '--workers', '1'] + overwrite
    )
  assert str(exit_info.value) == (
    'error: 2 output(s) blocked by a folder or other non-file, nothing '
    'written: %s; %s'
    % (voc_dir / 'segcls' / 'a.png', voc_dir / 'segcls' / 'c.png')
  )
  assert sorted(os.listdir(voc_dir / 'segcls')) == ['a.png', 'c.png']


def test_make_oversegmentation_refuses_an_output_taken_by_a_folder(tmp_path):
  image_dir = tmp_path / 'images'
  image_dir.mkdir()
  Image.new('RGB', (8, 6)).save(image_dir / 'a.jpg')
  (tmp_path / 'hed' / 'a.png').mkdir(parents=True)
  with pytest.raises(SystemExit, match=r'1 output\(s\) blocked .*a\.png$'):
    make_oversegmentation.main(
      [
        '--image_dir',
        str(image_dir),
        '--output_dir',
        str(tmp_path / 'hed'),
        '--workers',
        '1',
      ]
    )


def test_label_survey_names_every_malformed_line_of_a_training_list(
  voc_root, tmp_path
):
  # The survey read lines without a label as valid, so a training run named
  # a four-field line first and the missing label only on the next run.
  list_path = _write_list(
    tmp_path / 'train.txt',
    [
      'VOC2012/JPEGImages/train_000000.jpg VOC2012/segcls/train_000000.png',
      'VOC2012/JPEGImages/train_000001.jpg',
      'a b c d',
    ],
  )
  with pytest.raises(errors.DataError) as raised:
    data.check_training_list(voc_root, list_path, NUM_CLASSES, 255)
  message = str(raised.value)
  assert 'line 2: expected 2 or 3 fields' in message
  assert 'line 3: expected 2 or 3 fields' in message


def test_label_survey_decodes_images_too_in_the_same_pass(
  voc_root, tmp_path, monkeypatch
):
  # Training decoded every file of its list, then read every label again
  # for the survey; one pass now does both, and names a truncated image.
  image = os.path.join(voc_root, 'VOC2012/JPEGImages/train_000001.jpg')
  cut = tmp_path / 'cut.jpg'
  with open(image, 'rb') as stream:
    cut.write_bytes(stream.read()[:200])
  label_reads = []
  load_label = decoding.load_label
  monkeypatch.setattr(
    decoding,
    'load_label',
    lambda path, *args: label_reads.append(path) or load_label(path, *args),
  )
  list_path = _write_list(
    tmp_path / 'train.txt',
    [
      'VOC2012/JPEGImages/train_000000.jpg VOC2012/segcls/train_000000.png',
      '%s VOC2012/segcls/train_000001.png' % cut,
    ],
  )
  with pytest.raises(errors.DataError, match='line 2: .*cut.jpg'):
    data.check_training_list(voc_root, list_path, NUM_CLASSES, 255)
  list_path = _write_list(
    tmp_path / 'train.txt',
    [
      'VOC2012/JPEGImages/train_00000%d.jpg VOC2012/segcls/train_00000%d.png'
      % (index, index)
      for index in range(2)
    ],
  )
  del label_reads[:]
  survey = data.check_training_list(voc_root, list_path, NUM_CLASSES, 255)
  assert survey.class_pixels.sum() > 0
  assert len(label_reads) == 2


@pytest.mark.parametrize(
  'contents, message',
  [
    ('{bad', 'Expecting property name'),
    # It was read as every default.
    ('{}', "no 'mode' field: not a config.json of this port"),
  ],
)
def test_a_corrupt_config_json_beside_a_checkpoint_is_one_line(
  tmp_path, capsys, contents, message
):
  # It ended in a traceback, in inference and in training alike.
  (tmp_path / 'config.json').write_text(contents)
  (tmp_path / 'ckpt-1.index').touch()
  (tmp_path / 'checkpoint').write_text('model_checkpoint_path: "ckpt-1"\n')
  with pytest.raises(SystemExit) as raised:
    inference_segsort.main(
      [str(tmp_path) if flag == 'r' else flag for flag in _KNN_FLAGS]
    )
  assert str(raised.value).startswith(
    'error: Invalid training config %s: ' % (tmp_path / 'config.json')
  )
  assert message in str(raised.value)
  with pytest.raises(errors.ConfigFileError, match=re.escape(message)):
    config_lib.load_config(str(tmp_path))


def test_a_broken_symbolic_link_as_output_folder_is_named(tmp_path, capsys):
  # mkdir raised FileExistsError with a traceback.
  segcls = tmp_path / 'VOC2012' / 'segcls'
  assert _voc_to_segcls_refusal(
    tmp_path, capsys, lambda: segcls.symlink_to(tmp_path / 'gone')
  ).endswith(
    'argument --data_dir: %s is a broken symbolic link, not a folder to '
    'write into' % segcls
  )


@pytest.mark.parametrize(
  'command, message',
  [
    (
      ['segsort.train_segsort', '--num_steps', '-3'],
      'train_segsort.py: error: Invalid training configuration: --num_steps '
      'must be at least 1, got -3',
    ),
    (
      ['segsort.inference_segsort', '--k_in_nearest_neighbors', '0'],
      "inference_segsort.py: error: argument --k_in_nearest_neighbors: must "
      "be an integer >= 1, got '0'",
    ),
    (
      ['tools.make_oversegmentation', '--threshold', '7'],
      'make_oversegmentation.py: error: argument --threshold: must be a '
      "finite number >= 0 and <= 1, got '7'",
    ),
    (
      ['tools.check_list', '--bogus'],
      'check_list.py: error: the following arguments are required: '
      '--data_dir, --data_list',
    ),
  ],
)
def test_a_bad_flag_stops_a_command_with_one_line(command, message):
  # argparse printed its whole usage block (up to 40 lines) first.
  completed = subprocess.run(
    [sys.executable, '-m', *command],
    cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    capture_output=True,
    text=True,
    timeout=120,
    check=False,
  )
  assert completed.returncode == 2
  assert completed.stderr.splitlines() == [message]


def test_help_names_a_default_once():
  parser = run_record.ArgumentParser(prog='p')
  parser.add_argument('--steps', type=int, default=3, help='Steps.')
  parser.add_argument(
    '--num_classes', type=int, help="Default: the checkpoint's."
  )
  parser.add_argument('--input_size', default=(336, 336), help='Size.')
  parser.add_argument('--scales', default=(1.0,), help='Scales.')
  parser.add_argument('--data_dir', default='', help='Folder.')
  help_text = ' '.join(parser.format_help().split())
  assert 'Steps. (default: 3)' in help_text
  # As typed on the command line.
  assert 'Size. (default: 336,336)' in help_text
  assert 'Scales. (default: 1.0)' in help_text
  assert 'Folder. --' in help_text + ' --'
  assert "Default: the checkpoint's. --" in help_text + ' --'
  assert 'None' not in help_text


@pytest.mark.parametrize(
  'main, argv',
  [
    (make_oversegmentation.main, ['--thresh', '0.2']),
    (train_segsort.main, ['--num_step', '5']),
    (
      benchmark_by_mIoU.main,
      ['--pred', 'p', '--pred_dir', 'p', '--gt_dir', 'g'],
    ),
  ],
)
def test_an_abbreviated_flag_is_refused(main, argv, capsys):
  # argparse took `--num_step` for --num_steps, and would take it for
  # another flag as soon as a second one starts alike.
  with pytest.raises(SystemExit) as raised:
    main(argv)
  assert raised.value.code == 2
  assert 'unrecognized arguments: %s' % argv[0] in capsys.readouterr().err


def test_ctrl_c_in_an_entry_point_is_one_line():
  with pytest.raises(SystemExit) as raised:
    with errors.exit_on_known_errors():
      raise KeyboardInterrupt
  assert str(raised.value.code) == (
    'error: interrupted; every file written is whole: run the same command '
    'again to continue'
  )


@pytest.mark.parametrize(
  'main',
  [
    train_segsort.main,
    extract_prototypes.main,
    inference_segsort.main,
    inference_segsort_msc.main,
    inference_softmax.main,
    explain.main,
    export.main,
    benchmark_by_mIoU.main,
    check_list.main,
  ],
  ids=lambda main: main.__module__.rsplit('.', 1)[-1],
)
def test_ctrl_c_before_the_work_is_one_line(main, monkeypatch):
  # TensorFlow's import takes seconds after the flags are parsed; Ctrl-C
  # then printed a traceback of the import machinery.
  def interrupted(*args, **kwargs):
    raise KeyboardInterrupt

  monkeypatch.setattr(flags.ArgumentParser, 'parse_args', interrupted)
  monkeypatch.setattr(flags.ArgumentParser, 'parse_known_args', interrupted)
  try:
    main([])
    outcome = 'no exit'
  except SystemExit as exit_:
    outcome = exit_.code
  except KeyboardInterrupt:
    # Caught here: escaping, it would stop the whole test session.
    outcome = 'KeyboardInterrupt escaped'
  assert outcome == errors.INTERRUPTED_MESSAGE
