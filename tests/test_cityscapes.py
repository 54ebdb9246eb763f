"""Cityscapes support: the trainId converter, its colours and the recipes."""

import os
import shutil
import types

import numpy as np
from PIL import Image
import pytest

from segsort import colormap
from segsort import data
from segsort import errors
from segsort import inference
from tools import cityscapes_to_segcls


def _write_tree(root, size=(4, 6)):
  """Writes a tiny official-layout tree; returns {image id: labelIds}."""
  rng = np.random.default_rng(0)
  label_ids = {}
  for split, cities in (
    ('train', ('aachen', 'bochum')),
    ('val', ('lindau',)),
    ('test', ('berlin',)),
  ):
    for city in cities:
      image_dir = root / 'leftImg8bit' / split / city
      label_dir = root / 'gtFine' / split / city
      image_dir.mkdir(parents=True)
      label_dir.mkdir(parents=True)
      prefix = '%s_000000_%06d' % (city, 19)
      Image.fromarray(rng.integers(0, 256, size + (3,), np.uint8)).save(
        image_dir / (prefix + '_leftImg8bit.png')
      )
      ids = rng.integers(0, 34, size).astype(np.uint8)
      # The official test annotations hold only void; they are not used.
      Image.fromarray(ids).save(label_dir / (prefix + '_gtFine_labelIds.png'))
      label_ids[prefix + '_leftImg8bit'] = ids
  return label_ids


def test_label_ids_map_to_the_official_train_ids():
  table = cityscapes_to_segcls.label_id_to_train_id()
  assert table[7] == 0  # road
  assert table[11] == 2  # building
  assert table[24] == 11  # person
  assert table[33] == 18  # bicycle
  for void in (0, 1, 6, 9, 10, 14, 15, 16, 18, 29, 30):
    assert table[void] == 255
  assert sorted(set(table.tolist()) - {255}) == list(range(19))


def test_converts_tree_into_train_ids_and_lists(tmp_path):
  label_ids = _write_tree(tmp_path / 'cs')
  out = tmp_path / 'out'
  assert (
    cityscapes_to_segcls.main(
      [
        '--cityscapes_dir',
        str(tmp_path / 'cs'),
        '--output_dir',
        str(out),
        '--workers',
        '1',
      ]
    )
    == 0
  )
  table = cityscapes_to_segcls.label_id_to_train_id()
  train = data.read_data_list(str(out), str(out / 'train.txt'))
  assert [entry.image_id for entry in train] == [
    'aachen_000000_000019_leftImg8bit',
    'bochum_000000_000019_leftImg8bit',
  ]
  for entry in train + data.read_data_list(str(out), str(out / 'val.txt')):
    np.testing.assert_array_equal(
      data.load_label(entry.label_path), table[label_ids[entry.image_id]]
    )
    assert data.load_image(entry.image_path).shape == (4, 6, 3)
  assert (out / 'test.txt').read_text() == (
    '../cs/leftImg8bit/test/berlin/berlin_000000_000019_leftImg8bit.png\n'
  )
  assert (out / 'classes.txt').read_text().split('\n')[:2] == [
    'road',
    'sidewalk',
  ]
  # Inference colours the predictions of this DATAROOT in Cityscapes' colours.
  np.testing.assert_array_equal(
    inference.load_colormap(None, str(out)), colormap.CITYSCAPES_COLORS
  )


def test_default_output_is_the_cityscapes_folder(tmp_path):
  _write_tree(tmp_path)
  assert (
    cityscapes_to_segcls.main(
      ['--cityscapes_dir', str(tmp_path), '--workers', '1']
    )
    == 0
  )
  assert (tmp_path / 'val.txt').read_text() == (
    'leftImg8bit/val/lindau/lindau_000000_000019_leftImg8bit.png '
    'segcls/lindau_000000_000019_leftImg8bit.png\n'
  )
  # A split removed since: its list goes too, not kept from the last run.
  for folder in ('leftImg8bit', 'gtFine'):
    shutil.rmtree(tmp_path / folder / 'test')
  assert (
    cityscapes_to_segcls.main(
      ['--cityscapes_dir', str(tmp_path), '--workers', '1']
    )
    == 0
  )
  assert not (tmp_path / 'test.txt').exists()


def test_a_path_with_white_space_in_the_lists_is_refused_before_work(
  tmp_path, capsys
):
  cityscapes_dir = tmp_path / 'city scapes'
  _write_tree(cityscapes_dir)
  output_dir = tmp_path / 'out'
  arguments = ['--cityscapes_dir', str(cityscapes_dir), '--workers', '1']
  assert (
    cityscapes_to_segcls.main(arguments + ['--output_dir', str(output_dir)])
    == 1
  )
  error = capsys.readouterr().err
  assert error.count('\n') == 1
  assert "as '../city scapes/leftImg8bit/" in error
  assert not output_dir.exists()
  # Into the Cityscapes folder itself the lines hold no space.
  assert cityscapes_to_segcls.main(arguments) == 0


def test_missing_annotation_is_named(tmp_path, capsys):
  _write_tree(tmp_path)
  os.remove(
    tmp_path
    / 'gtFine'
    / 'val'
    / 'lindau'
    / 'lindau_000000_000019_gtFine_labelIds.png'
  )
  assert (
    cityscapes_to_segcls.main(
      ['--cityscapes_dir', str(tmp_path), '--workers', '1']
    )
    == 1
  )
  error = capsys.readouterr().err
  assert error.count('\n') == 1
  assert 'lindau_000000_000019_leftImg8bit.png has no annotation' in error
  assert not (tmp_path / 'segcls').exists()


def test_annotation_without_image_is_named(tmp_path, capsys):
  _write_tree(tmp_path)
  os.remove(
    tmp_path
    / 'leftImg8bit'
    / 'train'
    / 'bochum'
    / 'bochum_000000_000019_leftImg8bit.png'
  )
  assert (
    cityscapes_to_segcls.main(
      ['--cityscapes_dir', str(tmp_path), '--workers', '1']
    )
    == 1
  )
  assert (
    'bochum_000000_000019_gtFine_labelIds.png has no image'
    in capsys.readouterr().err
  )


def test_every_unpaired_file_of_every_split_is_named(tmp_path, capsys):
  _write_tree(tmp_path)
  train_label = (
    tmp_path / 'gtFine' / 'train' / 'aachen' / 'aachen_000000_000019'
  )
  os.remove(str(train_label) + '_gtFine_labelIds.png')
  Image.fromarray(np.zeros((4, 6), np.uint8)).save(
    tmp_path
    / 'gtFine'
    / 'val'
    / 'lindau'
    / 'x_000000_000001_gtFine_labelIds.png'
  )
  assert (
    cityscapes_to_segcls.main(
      ['--cityscapes_dir', str(tmp_path), '--workers', '1']
    )
    == 1
  )
  error = capsys.readouterr().err
  assert error.count('\n') == 1
  assert 'aachen_000000_000019_leftImg8bit.png has no annotation' in error
  assert 'x_000000_000001_gtFine_labelIds.png has no image' in error
  assert not (tmp_path / 'segcls').exists()


def test_a_label_of_another_size_or_an_undecodable_image_is_named(tmp_path):
  _write_tree(tmp_path)
  image = (
    tmp_path
    / 'leftImg8bit'
    / 'train'
    / 'aachen'
    / 'aachen_000000_000019_leftImg8bit.png'
  )
  image.write_bytes(b'corrupt')
  label = (
    tmp_path
    / 'gtFine'
    / 'val'
    / 'lindau'
    / 'lindau_000000_000019_gtFine_labelIds.png'
  )
  Image.fromarray(np.zeros((2, 6), np.uint8)).save(label)
  # Unlabelled test images are read (their header) before any work too.
  test_image = (
    tmp_path
    / 'leftImg8bit'
    / 'test'
    / 'berlin'
    / 'berlin_000000_000019_leftImg8bit.png'
  )
  test_image.write_bytes(b'')
  with pytest.raises(SystemExit) as raised:
    cityscapes_to_segcls.main(
      ['--cityscapes_dir', str(tmp_path), '--workers', '1']
    )
  error = str(raised.value)
  assert error.startswith('error: 3 bad input(s), nothing written: ')
  assert 'Cannot decode image %s' % image in error
  assert 'Cannot decode image %s' % test_image in error
  assert '%s is 2x6 but its image' % label in error
  assert not (tmp_path / 'segcls').exists()
  assert not (tmp_path / 'train.txt').exists()


def test_an_empty_split_or_a_blocked_list_is_refused_before_work(
  tmp_path, capsys
):
  _write_tree(tmp_path)
  (tmp_path / 'train.txt').write_text('good list\n')
  test_dir = tmp_path / 'leftImg8bit' / 'test' / 'berlin'
  for name in os.listdir(test_dir):
    os.remove(test_dir / name)
  assert (
    cityscapes_to_segcls.main(
      ['--cityscapes_dir', str(tmp_path), '--workers', '1']
    )
    == 1
  )
  assert 'leftImg8bit/test holds no CITY/*_leftImg8bit.png image' in (
    capsys.readouterr().err
  )
  assert (tmp_path / 'train.txt').read_text() == 'good list\n'
  os.rmdir(test_dir)
  os.rmdir(test_dir.parent)
  (tmp_path / 'val.txt').mkdir()
  assert (
    cityscapes_to_segcls.main(
      ['--cityscapes_dir', str(tmp_path), '--workers', '1']
    )
    == 1
  )
  assert capsys.readouterr().err.strip() == (
    'error: %s is a folder, not a file to write' % (tmp_path / 'val.txt')
  )
  assert not (tmp_path / 'segcls').exists()
  assert (tmp_path / 'train.txt').read_text() == 'good list\n'


def test_unexpected_label_id_is_named(tmp_path):
  _write_tree(tmp_path)
  path = (
    tmp_path
    / 'gtFine'
    / 'train'
    / 'aachen'
    / 'aachen_000000_000019_gtFine_labelIds.png'
  )
  Image.fromarray(np.full((4, 6), 34, np.uint8)).save(path)
  with pytest.raises(
    SystemExit,
    match=r'^error: 1 bad input\(s\), nothing written: .*'
    r'aachen_000000_000019_gtFine_labelIds'
    r'\.png holds label ids \[34\]; Cityscapes labelIds are '
    r'0-33',
  ):
    cityscapes_to_segcls.main(
      ['--cityscapes_dir', str(tmp_path), '--workers', '1']
    )
  assert not (tmp_path / 'segcls').exists()


def test_colormap_flag_names_and_data_set_default(tmp_path):
  np.testing.assert_array_equal(
    inference.load_colormap('cityscapes')[:19], colormap.CITYSCAPES_COLORS
  )
  np.testing.assert_array_equal(
    inference.load_colormap(None, str(tmp_path)), colormap.voc_colormap()
  )
  colormap.save_colormap(
    str(tmp_path / colormap.COLORMAP_FILE), [[1, 2, 3], [4, 5, 6]]
  )
  np.testing.assert_array_equal(
    inference.load_colormap(None, str(tmp_path)), [[1, 2, 3], [4, 5, 6]]
  )
  # An explicit --colormap wins over the data set's.
  np.testing.assert_array_equal(
    inference.load_colormap('voc', str(tmp_path)), colormap.voc_colormap()
  )


def test_too_short_colormap_names_its_sources(tmp_path):
  colormap_path = tmp_path / colormap.COLORMAP_FILE
  colormap.save_colormap(str(colormap_path), colormap.CITYSCAPES_COLORS)
  with pytest.raises(errors.InferenceError) as raised:
    inference.load_colormap(None, str(tmp_path), num_classes=21)
  assert str(raised.value) == (
    'Colour map %s has 19 colours for --num_classes 21; pass --colormap voc '
    'or a map of at least 21 colours.' % colormap_path
  )
  with pytest.raises(errors.InferenceError, match='^Colour map voc has 256 '):
    inference.load_colormap(None, None, num_classes=300)
  assert len(inference.load_colormap(None, str(tmp_path), 19)) == 19
  predictor = types.SimpleNamespace(num_classes=21)
  with pytest.raises(
    errors.InferenceError,
    match=r'^Colour map given to predict_list has 19 colours for '
    r'--num_classes 21; pass --colormap voc',
  ):
    inference.predict_list(
      predictor,
      checkpoint_prefix='unused',
      data_dir=str(tmp_path),
      data_list='unused',
      save_dir=str(tmp_path / 'out'),
      colormap=inference.load_colormap(None, str(tmp_path)),
    )
