"""tools/import_dataset.py: one's own images and masks into the VOC layout."""

import os
import re

import numpy as np
from PIL import Image
import pytest

from segsort import colormap
from segsort import data
from segsort import inference
from tools import import_dataset

_PALETTE = [[0, 0, 0], [200, 10, 10], [10, 200, 10]]


def _write_folders(root, num_masked=4, size=(12, 16)):
  """Images a0..., masks of ids 0-2 and 255 (palette PNGs), one unmasked.

  Returns:
    {image id: mask ids}.
  """
  rng = np.random.default_rng(0)
  (root / 'images').mkdir(parents=True)
  (root / 'masks').mkdir()
  masks = {}
  for index in range(num_masked + 1):
    image_id = 'a%d' % index
    extension = '.jpg' if index % 2 else '.png'
    Image.fromarray(rng.integers(0, 256, size + (3,), np.uint8)).save(
      root / 'images' / (image_id + extension)
    )
    if index == num_masked:
      continue
    ids = rng.choice(np.array([0, 1, 2, 255], np.uint8), size)
    mask = Image.fromarray(ids, mode='P')
    # A full palette, as VOC's: Pillow renumbers the pixels of a short one.
    mask.putpalette(sum(_PALETTE, []) + [224, 224, 192] * 253)
    mask.save(root / 'masks' / (image_id + '.png'))
    masks[image_id] = ids
  (root / 'masks' / 'notes.txt').write_text('not a mask')
  return masks


def _error_line(capsys):
  """The one `error:` line of stderr (the progress bar shares it)."""
  errors = [
    line
    for line in capsys.readouterr().err.split('\n')
    if line.startswith('error: ')
  ]
  assert len(errors) == 1, errors
  return errors[0]


def _main(root, *flags):
  return import_dataset.main(
    [
      '--image_dir',
      str(root / 'images'),
      '--mask_dir',
      str(root / 'masks'),
      '--output_dir',
      str(root / 'out'),
      '--workers',
      '1',
    ]
    + list(flags)
  )


def _id_files(tmp_path, train_ids, val_ids):
  """Writes train and val id files; returns their flags."""
  (tmp_path / 'train_ids.txt').write_text(train_ids)
  (tmp_path / 'val_ids.txt').write_text(val_ids)
  return [
    '--train_ids',
    str(tmp_path / 'train_ids.txt'),
    '--val_ids',
    str(tmp_path / 'val_ids.txt'),
  ]


def test_imports_masks_splits_and_reports(tmp_path, capsys):
  masks = _write_folders(tmp_path)
  assert _main(tmp_path, '--val_fraction', '0.25', '--seed', '3') == 0
  out = tmp_path / 'out'
  train = data.read_data_list(str(out), str(out / 'train.txt'))
  val = data.read_data_list(str(out), str(out / 'val.txt'))
  assert len(train) == 3 and len(val) == 1
  assert sorted(entry.image_id for entry in train + val) == sorted(masks)
  for entry in train + val:
    np.testing.assert_array_equal(
      data.load_label(entry.label_path), masks[entry.image_id]
    )
    assert data.load_image(entry.image_path).shape == (12, 16, 3)
  assert (out / 'unlabeled.txt').read_text() == 'VOC2012/JPEGImages/a4.jpg\n'
  unsupervised = data.read_data_list(
    str(out), str(out / 'train+unlabeled.txt'), require_labels=False
  )
  assert [entry.image_id for entry in unsupervised] == sorted(
    entry.image_id for entry in train
  ) + ['a4']
  # The masks' palette colours the predictions of this DATAROOT.
  np.testing.assert_array_equal(
    inference.load_colormap(None, str(out))[:3], _PALETTE
  )
  report = capsys.readouterr().out
  all_ids = np.concatenate([ids.ravel() for ids in masks.values()])
  assert '%5d %14d' % (2, np.sum(all_ids == 2)) in report
  assert 'Train with --num_classes 3 (class ids 0-2).' in report
  # The same seed draws the same split.
  first_split = (out / 'val.txt').read_text()
  assert _main(tmp_path, '--val_fraction', '0.25', '--seed', '3') == 0
  assert (out / 'val.txt').read_text() == first_split


def test_binary_masks_become_classes_zero_and_one(tmp_path, capsys):
  (tmp_path / 'images').mkdir()
  (tmp_path / 'masks').mkdir()
  Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(
    tmp_path / 'images' / 'b.png'
  )
  mask = np.array([[0, 255, 255, 0]] * 4, np.uint8)
  Image.fromarray(mask).save(tmp_path / 'masks' / 'b.png')
  assert _main(tmp_path, '--val_fraction', '0') == 0
  report = capsys.readouterr().out
  assert 'pass --binary_masks' in report
  # It advised --num_classes 1, whose runs trained nothing.
  assert 'The masks hold one class (0): training needs at least 2' in report
  assert 'Train with --num_classes' not in report
  assert (
    _main(tmp_path, '--val_fraction', '0', '--binary_masks', '--overwrite') == 0
  )
  label = data.load_label(
    str(tmp_path / 'out' / 'VOC2012' / 'segcls' / 'b.png')
  )
  np.testing.assert_array_equal(label, mask // 255)
  assert not (tmp_path / 'out' / 'val.txt').exists()
  assert not (tmp_path / 'out' / colormap.COLORMAP_FILE).exists()
  mask[0, 0] = 128
  Image.fromarray(mask).save(tmp_path / 'masks' / 'b.png')
  assert _main(tmp_path, '--binary_masks', '--overwrite') == 1
  error = _error_line(capsys)
  assert (
    'b.png holds values [128]; --binary_masks takes masks of 0 and 255' in error
  )


def test_split_by_id_files(tmp_path):
  _write_folders(tmp_path)
  assert _main(tmp_path, *_id_files(tmp_path, 'a0\na1\n', 'a3\n')) == 0
  assert (tmp_path / 'out' / 'val.txt').read_text() == (
    'VOC2012/JPEGImages/a3.jpg VOC2012/segcls/a3.png\n'
  )
  assert len((tmp_path / 'out' / 'train.txt').read_text().split('\n')) == 3


@pytest.mark.parametrize(
  'problem, message',
  [
    (
      'unknown_id',
      'val_ids.txt, line 1 names a4, which has no image with a mask',
    ),
    ('orphan_mask', 'mask .*z9.png has no image'),
    ('size', 'a0.png is 3x3 but its image .*a0.png is 12x16'),
    # Its list lines were split at the space by every reader.
    ('space', 'a 5.png: a name with white space cannot be written'),
  ],
)
def test_errors_name_the_file(tmp_path, capsys, problem, message):
  _write_folders(tmp_path)
  flags = []
  if problem == 'unknown_id':
    flags = _id_files(tmp_path, 'a0\n', 'a4\n')
  elif problem == 'space':
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(
      tmp_path / 'images' / 'a 5.png'
    )
  elif problem == 'orphan_mask':
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(
      tmp_path / 'masks' / 'z9.png'
    )
  else:
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(
      tmp_path / 'masks' / 'a0.png'
    )
  assert _main(tmp_path, *flags) == 1
  assert re.search(message, _error_line(capsys))


def test_every_bad_file_is_named_before_anything_is_written(tmp_path, capsys):
  # The import stopped at the first bad file, after writing the files
  # before it, and named one problem per run.
  _write_folders(tmp_path)
  (tmp_path / 'images' / 'a1.jpg').write_bytes(b'not an image')
  Image.fromarray(np.full((12, 16), 300, np.uint16)).save(
    tmp_path / 'masks' / 'a2.png'
  )
  Image.fromarray(np.zeros((3, 3), np.uint8)).save(
    tmp_path / 'masks' / 'a3.png'
  )
  assert _main(tmp_path) == 1
  line = _error_line(capsys)
  assert line.startswith('error: 3 bad input(s), nothing written: ')
  assert re.search(r'a1\.jpg', line)
  assert re.search(r'a2\.png holds ids \[300\]', line)
  assert re.search(r'a3\.png is 3x3 but its image .*a3\.jpg is 12x16', line)
  assert not (tmp_path / 'out').exists()


def test_split_flags_that_do_nothing_are_refused_and_unsplit_images_noted(
  tmp_path, capsys
):
  # --val_fraction was ignored with id files, and masked images in neither
  # file went into no list without a word.
  _write_folders(tmp_path)
  ids = _id_files(tmp_path, 'a0\n', 'a1\n')
  with pytest.raises(SystemExit):
    _main(tmp_path, *ids, '--val_fraction', '0.5')
  assert "argument --val_fraction: the split is --train_ids and --val_ids" in (
    capsys.readouterr().err
  )
  assert _main(tmp_path, *ids) == 0
  assert (
    'note: 2 images with masks are in neither --train_ids nor --val_ids: '
    'they go into no list' in capsys.readouterr().out
  )


def test_an_output_path_taken_by_a_folder_is_named_before_writing(
  tmp_path, capsys
):
  # Images before it were written, then the import stopped at it.
  _write_folders(tmp_path)
  blocked = tmp_path / 'out' / 'VOC2012' / 'JPEGImages' / 'a2.jpg'
  blocked.mkdir(parents=True)
  assert _main(tmp_path) == 1
  assert str(blocked) in _error_line(capsys)
  assert os.listdir(blocked.parent) == ['a2.jpg']
  assert not (tmp_path / 'out' / 'VOC2012' / 'segcls').exists() or not (
    os.listdir(tmp_path / 'out' / 'VOC2012' / 'segcls')
  )


def test_every_problem_of_the_id_files_is_named_together(tmp_path, capsys):
  # An unknown id came first; the bad line and the overlap on later runs.
  _write_folders(tmp_path)
  ids = _id_files(tmp_path, 'a0\na1 extra\n', 'zzz\n')
  assert _main(tmp_path, *ids) == 1
  line = _error_line(capsys)
  assert 'train_ids.txt: line 2: expected one image id, got 2 fields' in line
  assert 'val_ids.txt, line 1 names zzz, which has no image with a mask' in line
  assert not (tmp_path / 'out').exists()
  # A file's bad line no longer hides its own unknown ids.
  ids = _id_files(tmp_path, 'a0\na1 extra\nyyy\n', 'a1\n')
  assert _main(tmp_path, *ids) == 1
  line = _error_line(capsys)
  assert 'train_ids.txt: line 2: expected one image id' in line
  assert (
    'train_ids.txt, line 3 names yyy, which has no image with a mask' in line
  )


def test_a_rerun_with_other_id_files_names_their_sizes_not_their_ids(
  tmp_path, capsys
):
  # The refusal printed every id of both splits on its one line.
  _write_folders(tmp_path)
  assert _main(tmp_path, *_id_files(tmp_path, 'a0\n', 'a1\n')) == 0
  capsys.readouterr()
  assert _main(tmp_path, *_id_files(tmp_path, 'a0\na1\n', 'a2\n')) == 1
  assert (
    'other settings (split {id files: 1 train, 1 val} -> {id files: 2 '
    'train, 1 val}); pass --overwrite' in _error_line(capsys)
  )


def test_names_that_cannot_be_imported_are_named_together(tmp_path, capsys):
  # A name with a space, a stem shared and an orphan mask took three runs.
  _write_folders(tmp_path)
  blank = Image.fromarray(np.zeros((12, 16, 3), np.uint8))
  blank.save(tmp_path / 'images' / 'a 5.png')
  blank.save(tmp_path / 'images' / 'a0.bmp')
  Image.fromarray(np.zeros((3, 3), np.uint8)).save(
    tmp_path / 'masks' / 'z9.png'
  )
  assert _main(tmp_path) == 1
  line = _error_line(capsys)
  assert 'a 5.png: a name with white space' in line
  assert re.search(r'a0\.bmp and .*a0\.png share the id a0', line) or re.search(
    r'a0\.png and .*a0\.bmp share the id a0', line
  )
  assert 'mask %s has no image' % (tmp_path / 'masks' / 'z9.png') in line


def test_oversegmentations_on_request(tmp_path):
  _write_folders(tmp_path, num_masked=1, size=(24, 24))
  assert _main(tmp_path, '--val_fraction', '0', '--oversegment') == 0
  out = tmp_path / 'out'
  entries = data.read_data_list(
    str(out),
    str(out / 'train+unlabeled.txt'),
    require_labels=False,
    with_oversegmentation=True,
  )
  assert [entry.image_id for entry in entries] == ['a0', 'a1']
  assert data.load_label(entries[1].oversegmentation_path).shape == (24, 24)


def test_a_split_that_leaves_val_empty_says_so(tmp_path, capsys):
  """--val_fraction 0.1 of 3 images rounds to none."""
  (tmp_path / 'images').mkdir()
  (tmp_path / 'masks').mkdir()
  for image_id in ('b', 'c', 'd'):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(
      tmp_path / 'images' / (image_id + '.png')
    )
    Image.fromarray(np.ones((4, 4), np.uint8)).save(
      tmp_path / 'masks' / (image_id + '.png')
    )
  assert _main(tmp_path) == 0
  assert not (tmp_path / 'out' / 'val.txt').exists()
  assert (
    'note: no image with a mask goes to val.txt, which is not written'
    in capsys.readouterr().out
  )


def test_a_rerun_with_other_settings_is_refused_then_replaces_all(
  tmp_path, capsys
):
  # With --binary_masks added, the 0/255 labels of the first import were
  # kept as done while the report spoke of classes 0 and 1; and a rerun
  # with --val_fraction 0 left the old val.txt beside the new train.txt.
  (tmp_path / 'images').mkdir()
  (tmp_path / 'masks').mkdir()
  mask = np.array([[0, 255, 255, 0]] * 4, np.uint8)
  for image_id in ('b', 'c'):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(
      tmp_path / 'images' / (image_id + '.png')
    )
    Image.fromarray(mask).save(tmp_path / 'masks' / (image_id + '.png'))
  assert _main(tmp_path, '--val_fraction', '1') == 0
  assert (tmp_path / 'out' / 'val.txt').exists()
  assert (
    'note: no image with a mask goes to train.txt, which is not written'
    in capsys.readouterr().out
  )
  capsys.readouterr()
  assert _main(tmp_path, '--val_fraction', '0', '--binary_masks') == 1
  assert re.search(
    r'imported with other settings \(binary_masks False -> True, split '
    r'.*val_fraction.*\); pass --overwrite',
    _error_line(capsys),
  )
  assert (
    _main(tmp_path, '--val_fraction', '0', '--binary_masks', '--overwrite') == 0
  )
  assert not (tmp_path / 'out' / 'val.txt').exists()
  np.testing.assert_array_equal(
    data.load_label(str(tmp_path / 'out' / 'VOC2012' / 'segcls' / 'b.png')),
    mask // 255,
  )
  # The same settings again: nothing to refuse.
  assert _main(tmp_path, '--val_fraction', '0', '--binary_masks') == 0


def test_a_mask_fixed_since_the_import_is_imported_again(tmp_path, capsys):
  # A rerun kept the old mask while its report counted the new one.
  masks = _write_folders(tmp_path)
  assert _main(tmp_path) == 0
  label_path = tmp_path / 'out' / 'VOC2012' / 'segcls' / 'a0.png'
  untouched_path = tmp_path / 'out' / 'VOC2012' / 'segcls' / 'a1.png'
  untouched_time = os.stat(untouched_path).st_mtime_ns
  fixed = np.ones_like(masks['a0'])
  mask_path = tmp_path / 'masks' / 'a0.png'
  Image.fromarray(fixed).save(mask_path)
  later = os.stat(label_path).st_mtime_ns + 10**9
  os.utime(mask_path, ns=(later, later))
  assert _main(tmp_path) == 0
  np.testing.assert_array_equal(data.load_label(str(label_path)), fixed)
  # The others are not written again.
  assert os.stat(untouched_path).st_mtime_ns == untouched_time
