"""Tests of the data preparation tools (tools/)."""

import importlib
import os
import re
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
from PIL import Image
import pytest
import scipy.io

from segsort import data
from tools import folder_jobs
from tools import make_lists
from tools import make_oversegmentation
from tools import make_synthetic_voc
from tools import sbd_to_clsimg
from tools import voc_to_segcls

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOC12_LISTS = os.path.join(REPO_ROOT, 'dataset', 'voc12')


@pytest.mark.parametrize(
  'tool',
  [
    'sbd_to_clsimg',
    'voc_to_segcls',
    'make_lists',
    'make_oversegmentation',
    'evaluate_oversegmentation',
    'make_synthetic_voc',
  ],
)
def test_tools_run_as_module_and_as_script(tool):
  for command in (
    ['-m', 'tools.' + tool],
    [os.path.join('tools', tool + '.py')],
  ):
    result = subprocess.run(
      [sys.executable] + command + ['--help'],
      cwd=REPO_ROOT,
      capture_output=True,
      text=True,
      check=False,
    )
    assert result.returncode == 0, result.stderr
    assert 'usage:' in result.stdout


# --- sbd_to_clsimg ------------------------------------------------------------


def test_sbd_to_clsimg_converts_mat_files(tmp_path):
  cls_dir = tmp_path / 'sbd' / 'dataset' / 'cls'
  cls_dir.mkdir(parents=True)
  segmentation = (
    np.random.default_rng(0).integers(0, 21, (7, 9)).astype(np.uint8)
  )
  scipy.io.savemat(
    cls_dir / '2008_000002.mat',
    {
      'GTcls': {
        'Segmentation': segmentation,
        'Boundaries': np.zeros((21, 1), object),
        'CategoriesPresent': np.unique(segmentation)[1:],
      }
    },
  )
  assert (
    sbd_to_clsimg.main(['--data_dir', str(tmp_path), '--workers', '1']) == 0
  )
  output = tmp_path / 'sbd' / 'dataset' / 'clsimg' / '2008_000002.png'
  with Image.open(output) as png:
    assert png.mode == 'L'
  np.testing.assert_array_equal(data.load_label(str(output)), segmentation)


def test_sbd_to_clsimg_keeps_a_segmentation_of_one_row(tmp_path):
  scipy.io.savemat(
    tmp_path / 'row.mat',
    {'GTcls': {'Segmentation': np.array([[0, 3, 3]], np.uint8)}},
  )
  np.testing.assert_array_equal(
    sbd_to_clsimg.read_sbd_segmentation(str(tmp_path / 'row.mat')), [[0, 3, 3]]
  )


def test_sbd_to_clsimg_rejects_files_without_segmentation(tmp_path):
  scipy.io.savemat(tmp_path / 'other.mat', {'GTinst': {'Segmentation': 1}})
  with pytest.raises(ValueError, match='no GTcls.Segmentation'):
    sbd_to_clsimg.read_sbd_segmentation(str(tmp_path / 'other.mat'))


@pytest.mark.parametrize(
  'segmentation, message',
  [
    ('abc', 'non-empty 2-D array, got shape (1,)'),
    (np.array([['ab', 'cd']]), 'holds <U2 values; expected integer class ids'),
    (np.zeros((0, 5), np.uint8), 'non-empty 2-D array, got shape (0, 5)'),
    (np.full((2, 3), 1.6), 'holds float64 values'),
    (np.array([[1.0, np.nan]]), 'holds float64 values'),
    (np.full((2, 2), 1 + 2j), 'holds complex128 values'),
    (
      np.full((2, 2), 300, np.int32),
      'must hold class ids 0-20 (or 255, void), got 300',
    ),
    (
      np.array([[0, 40, 21], [-1, 255, 20]], np.int32),
      'must hold class ids 0-20 (or 255, void), got -1, 21, 40',
    ),
  ],
)
def test_sbd_to_clsimg_refuses_segmentations_that_are_no_class_ids(
  tmp_path, segmentation, message
):
  scipy.io.savemat(
    tmp_path / 'odd.mat', {'GTcls': {'Segmentation': segmentation}}
  )
  with pytest.raises(ValueError) as raised:
    sbd_to_clsimg.read_sbd_segmentation(str(tmp_path / 'odd.mat'))
  assert str(raised.value).startswith(str(tmp_path / 'odd.mat'))
  assert message in str(raised.value)


def test_sbd_to_clsimg_names_every_corrupt_file_before_writing(tmp_path):
  cls_dir = tmp_path / 'sbd' / 'dataset' / 'cls'
  cls_dir.mkdir(parents=True)
  scipy.io.savemat(
    cls_dir / 'good.mat',
    {'GTcls': {'Segmentation': np.ones((40, 50), np.uint8)}},
    do_compression=True,
  )
  contents = (cls_dir / 'good.mat').read_bytes()
  # SciPy fails differently on each: a short header, a cut stream and a
  # damaged compressed stream.
  (cls_dir / 'garbage.mat').write_bytes(b'garbage')
  (cls_dir / 'half.mat').write_bytes(contents[: len(contents) // 2])
  damaged = bytearray(contents)
  damaged[200:260] = b'x' * 60
  (cls_dir / 'damaged.mat').write_bytes(bytes(damaged))
  with pytest.raises(SystemExit) as raised:
    sbd_to_clsimg.main(['--data_dir', str(tmp_path), '--workers', '1'])
  message = str(raised.value)
  assert message.startswith('error: 3 bad input(s), nothing written: ')
  for name in ('garbage', 'half', 'damaged'):
    assert 'Cannot read %s' % (cls_dir / (name + '.mat')) in message
  assert '\n' not in message
  assert not (tmp_path / 'sbd' / 'dataset' / 'clsimg').exists()


# --- voc_to_segcls ------------------------------------------------------------


def test_voc_to_segcls_writes_palette_indices(tmp_path):
  input_dir = tmp_path / 'VOC2012' / 'SegmentationClass'
  input_dir.mkdir(parents=True)
  indices = np.array([[0, 15, 255], [1, 20, 255]], np.uint8)
  label = Image.fromarray(indices, mode='P')
  label.putpalette(np.random.default_rng(0).integers(0, 256, 768).tolist())
  label.save(input_dir / '2007_000032.png')
  assert (
    voc_to_segcls.main(['--data_dir', str(tmp_path), '--workers', '1']) == 0
  )
  output = tmp_path / 'VOC2012' / 'segcls' / '2007_000032.png'
  with Image.open(output) as png:
    assert png.mode == 'L'
    np.testing.assert_array_equal(np.asarray(png), indices)


def test_voc_to_segcls_rejects_colour_pngs(tmp_path):
  Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / 'rgb.png')
  with pytest.raises(ValueError, match='mode RGB'):
    voc_to_segcls.read_class_ids(str(tmp_path / 'rgb.png'))


def test_voc_to_segcls_reads_16_bit_ids_that_fit_8_bits(tmp_path):
  Image.fromarray(np.array([[0, 20], [255, 1]], np.uint16)).save(
    tmp_path / 'ids.png'
  )
  ids = voc_to_segcls.read_class_ids(str(tmp_path / 'ids.png'))
  assert ids.dtype == np.uint8
  np.testing.assert_array_equal(ids, [[0, 20], [255, 1]])
  Image.fromarray(np.array([[0, 300]], np.uint16)).save(tmp_path / 'big.png')
  with pytest.raises(
    ValueError, match=r'big\.png holds ids in \[0, 300\]; 8-bit'
  ):
    voc_to_segcls.read_class_ids(str(tmp_path / 'big.png'))


# --- make_lists ---------------------------------------------------------------


def _list_ids(name):
  with open(os.path.join(VOC12_LISTS, name)) as stream:
    return [
      os.path.splitext(os.path.basename(line.split()[0]))[0] for line in stream
    ]


def _write_split(path, image_ids):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(''.join(image_id + '\n' for image_id in image_ids))


def test_make_lists_reproduces_the_release_lists(tmp_path):
  voc_train, voc_val = _list_ids('train.txt'), _list_ids('val.txt')
  # train+ is VOC train, then the SBD images outside VOC train and val: a
  # sorted run from SBD train and one from SBD val.
  sbd_part = _list_ids('train+.txt')[len(voc_train) :]
  split = next(
    index
    for index in range(1, len(sbd_part))
    if sbd_part[index] < sbd_part[index - 1]
  )
  # SBD's splits also hold VOC train and val images, which train+ skips.
  sbd_train = sorted(sbd_part[:split] + voc_train[-400::3] + voc_val[::4])
  sbd_val = sorted(sbd_part[split:] + voc_train[-300::5] + voc_val[1::4])
  splits = tmp_path / 'VOC2012' / 'ImageSets' / 'Segmentation'
  _write_split(splits / 'train.txt', voc_train)
  _write_split(splits / 'val.txt', voc_val)
  _write_split(
    tmp_path / 'VOC2012-test' / 'ImageSets' / 'Segmentation' / 'test.txt',
    _list_ids('test.txt'),
  )
  _write_split(tmp_path / 'sbd' / 'dataset' / 'train.txt', sbd_train)
  _write_split(tmp_path / 'sbd' / 'dataset' / 'val.txt', sbd_val)
  output_dir = tmp_path / 'lists'
  assert (
    make_lists.main(
      ['--data_dir', str(tmp_path), '--output_dir', str(output_dir)]
    )
    == 0
  )
  for name in ('train+', 'train', 'val', 'trainval', 'test'):
    with open(os.path.join(VOC12_LISTS, name + '.txt'), 'rb') as expected:
      assert (output_dir / (name + '.txt')).read_bytes() == expected.read(), (
        name
      )


def test_make_lists_skips_optional_splits(tmp_path):
  splits = tmp_path / 'VOC2012' / 'ImageSets' / 'Segmentation'
  _write_split(splits / 'train.txt', ['2007_000032'])
  _write_split(splits / 'val.txt', ['2007_000033'])
  paths = make_lists.make_lists(str(tmp_path), str(tmp_path / 'lists'))
  assert sorted(paths) == ['train', 'trainval', 'val']


def test_make_lists_removes_the_lists_of_splits_since_removed(tmp_path):
  splits = tmp_path / 'VOC2012' / 'ImageSets' / 'Segmentation'
  _write_split(splits / 'train.txt', ['2007_000032'])
  _write_split(splits / 'val.txt', ['2007_000033'])
  sbd_train = tmp_path / 'sbd' / 'dataset' / 'train.txt'
  _write_split(sbd_train, ['2008_000002'])
  output_dir = str(tmp_path / 'lists')
  assert 'train+' in make_lists.make_lists(str(tmp_path), output_dir)
  os.remove(sbd_train)
  make_lists.make_lists(str(tmp_path), output_dir)
  assert sorted(os.listdir(output_dir)) == [
    'train.txt',
    'trainval.txt',
    'val.txt',
  ]
  with pytest.raises(SystemExit):
    make_lists.main(
      ['--data_dir', str(tmp_path / 'nowhere'), '--output_dir', output_dir]
    )


def test_make_lists_notes_a_missing_sbd_split(tmp_path, capsys):
  splits = tmp_path / 'VOC2012' / 'ImageSets' / 'Segmentation'
  _write_split(splits / 'train.txt', ['2007_000032'])
  _write_split(splits / 'val.txt', ['2007_000033'])
  _write_split(tmp_path / 'sbd' / 'dataset' / 'train.txt', ['2008_000002'])
  paths = make_lists.make_lists(str(tmp_path), str(tmp_path / 'lists'))
  assert 'train+' in paths
  assert (
    'note: %s is missing: train+ holds the images of the other SBD split only'
    % os.path.join(str(tmp_path), 'sbd', 'dataset', 'val.txt')
    in capsys.readouterr().err
  )


@pytest.mark.parametrize(
  'train, val, message',
  [
    (
      ['2007_000032', 'x', '2007_000032'],
      ['2007_000033'],
      'train.txt: line 3 repeats 2007_000032 of line 1',
    ),
    (
      ['2007_000032 VOC2012/segcls/2007_000032.png'],
      ['2007_000033'],
      'train.txt: line 1: expected one image id, got 2 fields',
    ),
    (
      ['../2007_000032', '..'],
      ['2007_000033'],
      "train.txt: line 1: '../2007_000032' is a path, not an image id; "
      "line 2: '..' is a path",
    ),
    (
      ['2007_000032', '2007_000033'],
      ['2007_000033'],
      'the VOC train and val splits both name 2007_000033',
    ),
    (
      ['2007_000032.jpg'],
      ['2007_000033'],
      "train.txt: line 1: '2007_000032.jpg' is a file name; an image id has "
      'no extension',
    ),
    ([' ', ''], ['2007_000033'], 'train.txt: it names no image id'),
  ],
)
def test_make_lists_refuses_bad_split_files_before_writing(
  tmp_path, train, val, message
):
  # They were written into the lists: repeated ids, paths as ids, data
  # lists as split files, images scored on that were trained on.
  splits = tmp_path / 'VOC2012' / 'ImageSets' / 'Segmentation'
  _write_split(splits / 'train.txt', train)
  _write_split(splits / 'val.txt', val)
  with pytest.raises(SystemExit, match=re.escape(message)):
    make_lists.main(
      ['--data_dir', str(tmp_path), '--output_dir', str(tmp_path / 'lists')]
    )
  assert not (tmp_path / 'lists').exists() or not os.listdir(tmp_path / 'lists')


# --- make_oversegmentation ----------------------------------------------------


def _two_region_image():
  """A blue disc on a grey ramp, with mild noise."""
  rng = np.random.default_rng(0)
  image = np.zeros((60, 80, 3), np.float32)
  image[:] = np.linspace(90, 130, 80)[None, :, None]
  cv2.circle(image, (50, 30), 18, (40, 60, 200), -1)
  image += rng.normal(0, 3, image.shape)
  return np.clip(image, 0, 255).astype(np.uint8)


def test_oversegment_separates_objects_and_numbers_row_major():
  image = _two_region_image()
  segments = make_oversegmentation.oversegment(image)
  assert segments.dtype == np.int32 and segments.shape == (60, 80)
  first_seen = []
  for segment_id in segments.ravel():
    if segment_id not in first_seen:
      first_seen.append(segment_id)
  assert first_seen == list(range(len(first_seen)))
  disc = np.zeros((60, 80), np.uint8)
  cv2.circle(disc, (50, 30), 15, 1, -1)
  disc_segments = np.unique(segments[disc == 1])
  assert len(disc_segments) == 1
  assert not np.isin(segments[:, :20], disc_segments).any()


def test_oversegment_num_segments_and_threshold():
  image = make_synthetic_voc.render_example(
    (64, 64), 4, np.random.default_rng(1)
  )[0]
  fine = make_oversegmentation.oversegment(image, threshold=0.02, min_size=0)
  coarse = make_oversegmentation.oversegment(image, threshold=0.3, min_size=0)
  assert fine.max() > coarse.max()
  three = make_oversegmentation.oversegment(image, num_segments=3, min_size=0)
  assert three.max() + 1 == 3


def test_oversegment_min_size():
  image = make_synthetic_voc.render_example(
    (64, 64), 4, np.random.default_rng(2)
  )[0]
  segments = make_oversegmentation.oversegment(
    image, threshold=0.01, min_size=50
  )
  assert np.bincount(segments.ravel()).min() >= 50


def test_save_segments_uses_16_bits_from_256_segments(tmp_path):
  few = np.arange(12, dtype=np.int32).reshape(3, 4)
  many = np.arange(300, dtype=np.int32).reshape(15, 20)
  make_oversegmentation.save_segments(str(tmp_path / 'few.png'), few)
  make_oversegmentation.save_segments(str(tmp_path / 'many.png'), many)
  with Image.open(tmp_path / 'few.png') as png:
    assert png.mode == 'L'
  np.testing.assert_array_equal(data.load_label(str(tmp_path / 'few.png')), few)
  np.testing.assert_array_equal(
    data.load_label(str(tmp_path / 'many.png')), many
  )


def test_structured_edges_need_opencv_contrib():
  if hasattr(cv2, 'ximgproc'):
    pytest.skip('OpenCV contrib is installed')
  with pytest.raises(RuntimeError, match='opencv-contrib'):
    make_oversegmentation.oversegment(
      _two_region_image(), sed_model='model.yml.gz'
    )


def test_make_oversegmentation_tool_skips_existing(tmp_path):
  image_dir = tmp_path / 'VOC2012' / 'JPEGImages'
  image_dir.mkdir(parents=True)
  for image_id in ('a', 'b', 'c'):
    Image.fromarray(_two_region_image()).save(image_dir / (image_id + '.jpg'))
  (tmp_path / 'list.txt').write_text(
    'VOC2012/JPEGImages/a.jpg\nVOC2012/JPEGImages/b.jpg\n'
  )
  arguments = ['--data_dir', str(tmp_path), '--workers', '1']
  assert (
    make_oversegmentation.main(
      arguments + ['--data_list', str(tmp_path / 'list.txt')]
    )
    == 0
  )
  hed_dir = tmp_path / 'VOC2012' / 'hed'
  assert sorted(os.listdir(hed_dir)) == [
    '.make_oversegmentation.json',
    'a.png',
    'b.png',
  ]
  (hed_dir / 'a.png').write_bytes(b'stale')
  assert make_oversegmentation.main(arguments) == 0
  assert (hed_dir / 'a.png').read_bytes() == b'stale'
  assert sorted(os.listdir(hed_dir))[1:] == ['a.png', 'b.png', 'c.png']
  assert make_oversegmentation.main(arguments + ['--overwrite']) == 0
  assert data.load_label(str(hed_dir / 'a.png')).shape == (60, 80)


def test_an_image_edited_since_its_oversegmentation_is_oversegmented_again(
  tmp_path, capsys
):
  """`0 to oversegment`, and the segments of the old image kept, before."""
  image_dir = tmp_path / 'VOC2012' / 'JPEGImages'
  image_dir.mkdir(parents=True)
  for image_id in ('a', 'b'):
    Image.fromarray(_two_region_image()).save(image_dir / (image_id + '.jpg'))
  arguments = ['--data_dir', str(tmp_path), '--workers', '1']
  assert make_oversegmentation.main(arguments) == 0
  hed_dir = tmp_path / 'VOC2012' / 'hed'
  written = os.stat(hed_dir / 'a.png').st_mtime_ns
  # Edited later: a time after the segments'.
  os.utime(image_dir / 'b.jpg', ns=(written + 10**9, written + 10**9))
  capsys.readouterr()
  assert make_oversegmentation.main(arguments) == 0
  assert '2 images, 1 to oversegment' in capsys.readouterr().out
  assert os.stat(hed_dir / 'a.png').st_mtime_ns == written
  # Segments of unknown settings are kept, however old.
  os.remove(hed_dir / make_oversegmentation.SETTINGS_FILE)
  os.utime(image_dir / 'a.jpg', ns=(written + 2 * 10**9,) * 2)
  assert make_oversegmentation.main(arguments) == 0
  assert '2 images, 0 to oversegment' in capsys.readouterr().out


def test_images_cut_into_one_segment_each_are_warned_of(tmp_path, capsys):
  """--threshold 1 made every image one segment, silently."""
  image_dir = tmp_path / 'VOC2012' / 'JPEGImages'
  image_dir.mkdir(parents=True)
  for image_id in ('a', 'b'):
    Image.fromarray(_two_region_image()).save(image_dir / (image_id + '.jpg'))
  arguments = ['--data_dir', str(tmp_path), '--workers', '1']
  assert make_oversegmentation.main(arguments + ['--threshold', '1']) == 0
  assert (
    'warning: each of the 2 images of %s is one segment: lower --threshold '
    'or --min_size' % (tmp_path / 'VOC2012' / 'hed')
  ) in capsys.readouterr().out
  assert (
    make_oversegmentation.main(
      arguments + ['--output_dir', str(tmp_path / 'fine')]
    )
    == 0
  )
  assert 'is one segment' not in capsys.readouterr().out


def test_make_oversegmentation_refuses_to_mix_settings(tmp_path, capsys):
  # A rerun with another threshold kept the old segments and said
  # "0 to oversegment", so a threshold sweep measured one threshold.
  image_dir = tmp_path / 'VOC2012' / 'JPEGImages'
  image_dir.mkdir(parents=True)
  Image.fromarray(_two_region_image()).save(image_dir / 'a.jpg')
  arguments = ['--data_dir', str(tmp_path), '--workers', '1']
  assert make_oversegmentation.main(arguments + ['--threshold', '0.2']) == 0
  hed_dir = tmp_path / 'VOC2012' / 'hed'
  made = (hed_dir / 'a.png').read_bytes()
  with pytest.raises(SystemExit) as raised:
    make_oversegmentation.main(arguments + ['--num_segments', '3'])
  assert str(raised.value) == (
    'error: %s holds oversegmentations made with --threshold 0.2 --min_size '
    '64, not --num_segments 3 --min_size 64; pass --overwrite to remake them '
    'all, or write into another --output_dir' % hed_dir
  )
  assert (hed_dir / 'a.png').read_bytes() == made
  assert make_oversegmentation.main(arguments + ['--threshold', '0.2']) == 0
  assert (
    make_oversegmentation.main(
      arguments + ['--num_segments', '3', '--overwrite']
    )
    == 0
  )
  # Segments of a version that recorded nothing are kept, with a note.
  (hed_dir / '.make_oversegmentation.json').unlink()
  capsys.readouterr()
  assert make_oversegmentation.main(arguments) == 0
  assert (
    'note: the 1 oversegmentations in %s were made with settings not '
    'recorded' % hed_dir in capsys.readouterr().out
  )
  with pytest.raises(SystemExit):
    make_oversegmentation.main(
      arguments + ['--threshold', '0.2', '--num_segments', '3']
    )
  assert (
    capsys.readouterr()
    .err.strip()
    .endswith(
      'argument --num_segments: give --threshold or --num_segments, not both'
    )
  )


def test_make_oversegmentation_names_an_undecodable_image(tmp_path):
  (tmp_path / 'broken.jpg').write_bytes(b'not a jpeg')
  with pytest.raises(ValueError, match=r'Cannot decode image .*broken\.jpg'):
    make_oversegmentation._oversegment_file(  # pylint: disable=protected-access
      (str(tmp_path / 'broken.jpg'), str(tmp_path / 'out.png')), {}
    )
  assert not (tmp_path / 'out.png').exists()


def test_make_oversegmentation_names_bad_images_before_any_output(
  tmp_path, capsys
):
  image_dir = tmp_path / 'VOC2012' / 'JPEGImages'
  image_dir.mkdir(parents=True)
  Image.fromarray(_two_region_image()).save(image_dir / 'a.jpg')
  (image_dir / 'b.jpg').write_bytes(b'not a jpeg')
  (image_dir / 'c.jpg').write_bytes(b'')
  with pytest.raises(SystemExit) as raised:
    make_oversegmentation.main(['--data_dir', str(tmp_path), '--workers', '2'])
  message = str(raised.value)
  assert message.startswith('error: 2 bad input(s), nothing written: ')
  assert 'b.jpg' in message and 'c.jpg' in message and '\n' not in message
  assert not (tmp_path / 'VOC2012' / 'hed').exists()
  capsys.readouterr()


def test_make_oversegmentation_names_listed_images_it_cannot_find(tmp_path):
  image_dir = tmp_path / 'VOC2012' / 'JPEGImages'
  image_dir.mkdir(parents=True)
  Image.fromarray(_two_region_image()).save(image_dir / 'a.jpg')
  (tmp_path / 'list.txt').write_text(
    'VOC2012/JPEGImages/a.jpg\nVOC2012/JPEGImages/gone.jpg\n'
  )
  with pytest.raises(SystemExit) as raised:
    make_oversegmentation.main(
      [
        '--data_dir',
        str(tmp_path),
        '--data_list',
        str(tmp_path / 'list.txt'),
        '--workers',
        '1',
      ]
    )
  assert str(raised.value) == (
    'error: 1 image(s) of %s are not in %s: gone'
    % (tmp_path / 'list.txt', image_dir)
  )
  assert not (tmp_path / 'VOC2012' / 'hed').exists()


def test_make_oversegmentation_refuses_an_empty_folder_and_twice_named_ids(
  tmp_path,
):
  image_dir = tmp_path / 'VOC2012' / 'JPEGImages'
  image_dir.mkdir(parents=True)
  arguments = ['--data_dir', str(tmp_path), '--workers', '1']
  with pytest.raises(SystemExit, match='holds no image'):
    make_oversegmentation.main(arguments)
  Image.fromarray(_two_region_image()).save(image_dir / 'a.jpg')
  Image.fromarray(_two_region_image()).save(image_dir / 'a.png')
  with pytest.raises(
    SystemExit, match='image id a is named twice in .*: a.jpg and a.png'
  ):
    make_oversegmentation.main(arguments)
  assert not (tmp_path / 'VOC2012' / 'hed').exists()


@pytest.mark.parametrize('extension', ['.tif', '.webp'])
def test_make_oversegmentation_takes_every_image_training_reads(
  tmp_path, extension
):
  """TIFF and WebP frames train (Pillow reads them), so they get segments."""
  image_dir = tmp_path / 'VOC2012' / 'JPEGImages'
  image_dir.mkdir(parents=True)
  Image.fromarray(_two_region_image()).save(image_dir / ('a' + extension))
  make_oversegmentation.main(['--data_dir', str(tmp_path), '--workers', '1'])
  assert (tmp_path / 'VOC2012' / 'hed' / 'a.png').is_file()


def test_make_oversegmentation_refuses_a_file_where_hed_goes(tmp_path, capsys):
  (tmp_path / 'VOC2012' / 'JPEGImages').mkdir(parents=True)
  (tmp_path / 'VOC2012' / 'hed').write_text('')
  with pytest.raises(SystemExit):
    make_oversegmentation.main(['--data_dir', str(tmp_path)])
  assert (
    'argument --data_dir: %s is a file, not a folder'
    % (tmp_path / 'VOC2012' / 'hed')
    in capsys.readouterr().err
  )


def test_oracle_oversegmentation_is_the_regions_of_equal_label(tmp_path):
  label = np.array(
    [
      [1, 1, 0, 2],
      [0, 0, 0, 2],
      [1, 255, 0, 2],
    ],
    np.uint8,
  )
  np.testing.assert_array_equal(
    make_oversegmentation.label_components(label),
    [[0, 0, 1, 2], [1, 1, 1, 2], [3, 4, 1, 2]],
  )
  image_dir = tmp_path / 'VOC2012' / 'JPEGImages'
  label_dir = tmp_path / 'VOC2012' / 'segcls'
  image_dir.mkdir(parents=True)
  label_dir.mkdir()
  for image_id in ('a', 'b'):
    Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(
      image_dir / (image_id + '.jpg')
    )
  Image.fromarray(label).save(label_dir / 'a.png')
  arguments = [
    '--data_dir',
    str(tmp_path),
    '--oracle_label_dir',
    str(label_dir),
    '--workers',
    '1',
  ]
  # b's label has another size, c has none: named before anything is
  # written.
  Image.fromarray(label[:2]).save(label_dir / 'b.png')
  Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(image_dir / 'c.jpg')
  with pytest.raises(SystemExit) as raised:
    make_oversegmentation.main(arguments)
  assert str(raised.value).startswith('error: 2 bad input(s), nothing written')
  assert 'b.png is 2x4 but its image' in str(raised.value)
  assert 'c.png' in str(raised.value)
  os.remove(image_dir / 'c.jpg')
  os.remove(label_dir / 'b.png')
  with pytest.raises(
    SystemExit, match=r'1 bad input\(s\), nothing written: .*b\.png'
  ):
    make_oversegmentation.main(arguments)
  assert not (tmp_path / 'VOC2012' / 'hed').exists()
  Image.fromarray(label).save(label_dir / 'b.png')
  assert make_oversegmentation.main(arguments) == 0
  np.testing.assert_array_equal(
    data.load_label(str(tmp_path / 'VOC2012' / 'hed' / 'a.png')),
    make_oversegmentation.label_components(label),
  )


def test_oracle_segments_of_a_moved_data_root_are_kept(tmp_path):
  # Labels inside the DATAROOT move with it; labels outside stay where they
  # are (their record was relative, so the moved root named a folder that
  # never existed).
  root = tmp_path / 'root'
  (root / 'VOC2012' / 'JPEGImages').mkdir(parents=True)
  Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(
    root / 'VOC2012' / 'JPEGImages' / 'a.jpg'
  )
  for label_dir in (root / 'VOC2012' / 'segcls', tmp_path / 'outside'):
    label_dir.mkdir()
    Image.fromarray(np.zeros((3, 4), np.uint8)).save(label_dir / 'a.png')

  def oversegment(data_root, label_dir, output_name):
    return make_oversegmentation.main(
      [
        '--data_dir',
        str(data_root),
        '--oracle_label_dir',
        str(label_dir),
        '--output_dir',
        str(data_root / 'VOC2012' / output_name),
        '--workers',
        '1',
      ]
    )

  assert oversegment(root, root / 'VOC2012' / 'segcls', 'inside') == 0
  assert oversegment(root, tmp_path / 'outside', 'outside') == 0
  moved = tmp_path / 'deeper' / 'moved'
  shutil.copytree(root, moved)
  assert oversegment(moved, moved / 'VOC2012' / 'segcls', 'inside') == 0
  assert oversegment(moved, tmp_path / 'outside', 'outside') == 0


def test_a_sed_model_inside_the_data_root_is_recorded_to_move_with_it(
  tmp_path,
):
  # It was recorded absolute, so a moved DATAROOT named another model file.
  output_dir = tmp_path / 'root' / 'VOC2012' / 'hed'
  output_dir.mkdir(parents=True)
  inside = str(tmp_path / 'root' / 'models' / 'model.yml.gz')
  outside = str(tmp_path / 'model.yml.gz')
  for model, recorded in (
    (inside, os.path.join('..', '..', 'models', 'model.yml.gz')),
    (outside, outside),
  ):
    settings = make_oversegmentation.contour_settings(sed_model=model)
    record = make_oversegmentation._portable_folders(settings, str(output_dir))
    assert record['sed_model'] == recorded
    # Read back from any place the root moved to, it names the model there.
    moved = tmp_path / 'moved' / 'VOC2012' / 'hed'
    resolved = make_oversegmentation._resolved_folders(record, str(moved))
    assert resolved['sed_model'] == os.path.realpath(
      model.replace(str(tmp_path / 'root'), str(tmp_path / 'moved'))
    )


def test_make_oversegmentation_list_ids_are_those_of_metrics(tmp_path):
  image_dir = tmp_path / 'VOC2012' / 'JPEGImages'
  image_dir.mkdir(parents=True)
  Image.fromarray(_two_region_image()).save(image_dir / 'a.jpg')
  (tmp_path / 'empty.txt').write_text('\n')
  with pytest.raises(SystemExit, match=r'error: .*empty\.txt lists no image'):
    make_oversegmentation.main(
      [
        '--data_dir',
        str(tmp_path),
        '--workers',
        '1',
        '--data_list',
        str(tmp_path / 'empty.txt'),
      ]
    )


# --- make_synthetic_voc -------------------------------------------------------


def test_synthetic_voc_layout_labels_and_lists(tmp_path):
  lists = make_synthetic_voc.make_synthetic_voc(
    str(tmp_path), num_train=4, num_val=2, size=(48, 64), num_classes=5, seed=1
  )
  assert lists == {
    name: str(tmp_path / (name + '.txt')) for name in ('train', 'val', 'train+')
  }
  assert (tmp_path / 'train+.txt').read_text() == (
    tmp_path / 'train.txt'
  ).read_text()
  entries = data.read_data_list(
    str(tmp_path), lists['val'], with_oversegmentation=True
  )
  assert [entry.image_id for entry in entries] == ['val_000000', 'val_000001']
  all_labels = []
  for entry in data.read_data_list(str(tmp_path), lists['train']):
    image = data.load_image(entry.image_path)
    label = data.load_label(entry.label_path)
    assert image.shape == (48, 64, 3) and label.shape == (48, 64)
    all_labels.append(label)
  values = np.unique(all_labels)
  assert set(values) <= set(range(5)) | {255}
  assert 0 in values and 255 in values and len(values) >= 4


def test_synthetic_voc_is_deterministic(tmp_path):
  for name in ('first', 'second'):
    make_synthetic_voc.make_synthetic_voc(
      str(tmp_path / name), num_train=2, num_val=1, size=32, seed=4
    )
  for folder in ('JPEGImages', 'segcls', 'hed'):
    first_dir = tmp_path / 'first' / 'VOC2012' / folder
    for file_name in os.listdir(first_dir):
      assert (first_dir / file_name).read_bytes() == (
        tmp_path / 'second' / 'VOC2012' / folder / file_name
      ).read_bytes()


def test_synthetic_oversegmentations_record_their_settings(tmp_path, capsys):
  # Without a record, the tool kept them as of unknown settings, with a note.
  root = str(tmp_path / 'voc')
  make_synthetic_voc.make_synthetic_voc(
    root, num_train=2, num_val=1, size=32, seed=4
  )
  capsys.readouterr()
  assert make_oversegmentation.main(['--data_dir', root]) == 0
  output = capsys.readouterr().out
  assert 'not recorded' not in output
  assert '3 images, 0 to oversegment into' in output
  with pytest.raises(SystemExit, match='made with --threshold 0.1 '):
    make_oversegmentation.main(['--data_dir', root, '--threshold', '0.3'])
  # Images made anew without segments: the earlier segments are not theirs.
  make_synthetic_voc.make_synthetic_voc(
    root, num_train=2, num_val=1, size=32, seed=5, with_oversegmentation=False
  )
  assert not os.listdir(os.path.join(root, 'VOC2012', 'hed'))


def test_synthetic_class_names():
  assert make_synthetic_voc.class_names(4) == [
    'background',
    'ellipse',
    'rectangle',
    'triangle',
  ]
  assert (
    len(make_synthetic_voc.class_names(make_synthetic_voc.MAX_NUM_CLASSES))
    == make_synthetic_voc.MAX_NUM_CLASSES
  )


def test_synthetic_classes_differ_in_colour():
  rng = np.random.default_rng(0)
  hues = {}
  for _ in range(30):
    image, label = make_synthetic_voc.render_example((64, 64), 4, rng)
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL)
    for class_id in range(1, 4):
      if (label == class_id).sum() > 50:
        hues.setdefault(class_id, []).append(
          np.median(hsv[..., 0][label == class_id])
        )
  assert len(hues) == 3
  # OpenCV's full-range hue: 256 steps around the circle; classes sit 120
  # degrees (85 steps) apart.
  medians = sorted(np.median(values) for values in hues.values())
  assert min(np.diff(medians)) > 50


def test_synthetic_voc_cli_and_bad_class_count(tmp_path):
  assert (
    make_synthetic_voc.main(
      [
        '--root',
        str(tmp_path),
        '--num_train',
        '1',
        '--num_val',
        '1',
        '--size',
        '24x40',
        '--workers',
        '1',
        '--no_oversegmentation',
      ]
    )
    == 0
  )
  assert data.load_image(
    str(tmp_path / 'VOC2012' / 'JPEGImages' / 'val_000000.jpg')
  ).shape == (24, 40, 3)
  assert not (tmp_path / 'VOC2012' / 'hed').exists()
  with pytest.raises(ValueError, match='num_classes'):
    make_synthetic_voc.make_synthetic_voc(str(tmp_path), num_classes=9)


def test_list_counts_read_as_english():
  assert make_lists.describe_lists({'train': 1, 'val': 3, 'test': 0}) == (
    'train.txt (1 image), val.txt (3 images), test.txt (0 images)'
  )


def test_an_interrupted_oversegmentation_keeps_its_settings(
  tmp_path, monkeypatch
):
  image_dir = tmp_path / 'VOC2012' / 'JPEGImages'
  image_dir.mkdir(parents=True)
  Image.fromarray(_two_region_image()).save(image_dir / 'a.jpg')
  arguments = ['--data_dir', str(tmp_path), '--workers', '1']
  _interrupt_writing(monkeypatch, after=1)
  # Ctrl-C printed a traceback.
  with pytest.raises(SystemExit, match='^error: interrupted; every file'):
    make_oversegmentation.main(arguments + ['--threshold', '0.2'])
  monkeypatch.undo()
  with pytest.raises(SystemExit, match='made with --threshold 0.2'):
    make_oversegmentation.main(arguments + ['--threshold', '0.5'])


def _interrupt_writing(monkeypatch, after):
  """Makes the tools' writing stop by Ctrl-C after `after` jobs."""
  real_run_jobs = folder_jobs._run_jobs  # pylint: disable=protected-access

  def interrupted(work, jobs, workers, progress, desc, unit):
    if desc == 'Writing':
      for job in jobs[:after]:
        work(job)
      raise KeyboardInterrupt
    return real_run_jobs(work, jobs, workers, progress, desc, unit)

  monkeypatch.setattr(folder_jobs, '_run_jobs', interrupted)


def _three_images(tmp_path):
  image_dir = tmp_path / 'VOC2012' / 'JPEGImages'
  image_dir.mkdir(parents=True)
  for image_id in 'abc':
    Image.fromarray(_two_region_image()).save(image_dir / (image_id + '.jpg'))
  return tmp_path / 'VOC2012' / 'hed'


def test_an_interrupted_overwrite_must_be_finished_by_an_overwrite(
  tmp_path, monkeypatch
):
  # The settings were recorded before the first segment, so a rerun after
  # an interrupted --overwrite kept the older segments under the new record.
  hed = _three_images(tmp_path)
  arguments = ['--data_dir', str(tmp_path), '--workers', '1']
  make_oversegmentation.main(arguments + ['--threshold', '0.2'])
  _interrupt_writing(monkeypatch, after=1)
  with pytest.raises(SystemExit, match='interrupted'):
    make_oversegmentation.main(
      arguments + ['--threshold', '0.5', '--overwrite']
    )
  monkeypatch.undo()
  with pytest.raises(SystemExit, match='was interrupted.*with --overwrite$'):
    make_oversegmentation.main(arguments + ['--threshold', '0.5'])
  make_oversegmentation.main(arguments + ['--threshold', '0.5', '--overwrite'])
  assert not (hed / make_oversegmentation.OVERWRITE_MARK_FILE).exists()
  assert make_oversegmentation.main(arguments + ['--threshold', '0.5']) == 0


def test_rerunning_an_interrupted_overwrite_remakes_only_what_it_had_not(
  tmp_path, monkeypatch, capsys
):
  # The rerun that the interruption asks for remade every image again.
  hed = _three_images(tmp_path)
  arguments = ['--data_dir', str(tmp_path), '--workers', '1']
  make_oversegmentation.main(arguments + ['--threshold', '0.2'])
  for name in ('a.png', 'b.png', 'c.png'):  # Made an hour ago.
    os.utime(hed / name, (time.time() - 3600,) * 2)
  _interrupt_writing(monkeypatch, after=1)
  with pytest.raises(
    SystemExit, match='run the same command again to continue'
  ):
    make_oversegmentation.main(
      arguments + ['--threshold', '0.5', '--overwrite']
    )
  monkeypatch.undo()
  capsys.readouterr()
  make_oversegmentation.main(arguments + ['--threshold', '0.5', '--overwrite'])
  assert '3 images, 2 to oversegment' in capsys.readouterr().out
  assert not (hed / make_oversegmentation.OVERWRITE_MARK_FILE).exists()
  # Every segment is now of the new settings: a fresh run agrees.
  fresh = tmp_path / 'fresh'
  make_oversegmentation.main(
    arguments + ['--threshold', '0.5', '--output_dir', str(fresh)]
  )
  for name in ('a.png', 'b.png', 'c.png'):
    assert (hed / name).read_bytes() == (fresh / name).read_bytes()


def test_the_groups_of_a_folder_path_with_a_dot_go_beside_it(tmp_path):
  hed = _three_images(tmp_path)
  arguments = ['--data_dir', str(tmp_path), '--workers', '1']
  make_oversegmentation.main(arguments + ['--threshold', '0.02'])
  make_oversegmentation.main(
    arguments + ['--groups_of', str(hed) + '/.', '--threshold', '0.3']
  )
  assert sorted(os.listdir(tmp_path / 'VOC2012' / 'hed_groups')) == [
    '.make_oversegmentation.json',
    'a.png',
    'b.png',
    'c.png',
  ]


def test_an_overwrite_of_part_of_a_folder_keeps_no_other_settings(
  tmp_path, capsys
):
  hed = _three_images(tmp_path)
  arguments = ['--data_dir', str(tmp_path), '--workers', '1']
  make_oversegmentation.main(arguments + ['--threshold', '0.2'])
  part = tmp_path / 'part.txt'
  part.write_text('VOC2012/JPEGImages/a.jpg\n')
  before = {name: (hed / name).read_bytes() for name in os.listdir(hed)}
  with pytest.raises(
    SystemExit,
    match='remake 1 of the 3 .* keep 2 of other settings '
    r'\(--threshold 0.2 .*\) \(e.g. b.png\)',
  ):
    make_oversegmentation.main(
      arguments
      + ['--threshold', '0.5', '--overwrite', '--data_list', str(part)]
    )
  assert {name: (hed / name).read_bytes() for name in os.listdir(hed)} == (
    before
  )
  # With the folder's own settings, part of it may be remade.
  capsys.readouterr()
  make_oversegmentation.main(
    arguments + ['--threshold', '0.2', '--overwrite', '--data_list', str(part)]
  )
  assert ', 1 to oversegment into' in ' '.join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
  'module',
  [
    'camvid_to_voc',
    'check_list',
    'cityscapes_to_segcls',
    'evaluate_oversegmentation',
    'import_dataset',
    'make_lists',
    'make_oversegmentation',
    'make_synthetic_voc',
    'sbd_to_clsimg',
    'voc_to_segcls',
  ],
)
def test_every_tool_s_help_shows_its_description_and_defaults(module, capsys):
  """The tools' --help kept their docstring's lines but showed no default
  (evaluate_oversegmentation's 255 and 2, say)."""
  tool = importlib.import_module('tools.' + module)
  with pytest.raises(SystemExit) as raised:
    tool.main(['--help'])
  assert raised.value.code == 0
  text = capsys.readouterr().out
  # make_lists has no flag with a default.
  assert ('(default: ' in text) == (module != 'make_lists')
  first_line = tool.__doc__.strip().splitlines()[0]
  assert first_line in text
