"""CamVid support: the SegNet-release converter and the CPU benchmark script."""

import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from segsort import data
from tools import camvid_to_voc
from tools import folder_jobs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_release(root, splits=('train', 'val', 'test'), size=(6, 8)):
  """Writes a tiny SegNet-style CamVid tree; returns {id: annotation ids}."""
  rng = np.random.default_rng(0)
  annotations = {}
  for split in splits:
    (root / split).mkdir(parents=True)
    (root / (split + 'annot')).mkdir()
    lines = []
    for index in range(2):
      image_id = '%s_%03d' % (split, index)
      Image.fromarray(rng.integers(0, 256, size + (3,), np.uint8)).save(
        root / split / (image_id + '.png')
      )
      ids = rng.integers(0, 12, size).astype(np.uint8)
      Image.fromarray(ids).save(root / (split + 'annot') / (image_id + '.png'))
      annotations[image_id] = ids
      # The release's lists name the authors' absolute paths.
      lines.append(
        '/SegNet/CamVid/%s/%s.png /SegNet/CamVid/%sannot/%s.png\n'
        % (split, image_id, split, image_id)
      )
    (root / (split + '.txt')).write_text(''.join(lines))
  return annotations


def test_converts_release_into_voc_layout(tmp_path):
  annotations = _write_release(tmp_path / 'CamVid')
  out = tmp_path / 'voc'
  assert (
    camvid_to_voc.main(
      [
        '--camvid_dir',
        str(tmp_path / 'CamVid'),
        '--output_dir',
        str(out),
        '--workers',
        '1',
      ]
    )
    == 0
  )
  assert (out / 'classes.txt').read_text().split('\n')[:3] == [
    'sky',
    'building',
    'pole',
  ]
  for split in ('train', 'val', 'test'):
    entries = data.read_data_list(str(out), str(out / (split + '.txt')))
    assert [entry.image_id for entry in entries] == [
      '%s_000' % split,
      '%s_001' % split,
    ]
    for entry in entries:
      label = data.load_label(entry.label_path)
      expected = annotations[entry.image_id].astype(np.int32)
      expected[expected == 11] = 255
      np.testing.assert_array_equal(label, expected)
      assert data.load_image(entry.image_path).shape == (6, 8, 3)
      with Image.open(entry.image_path) as image:
        assert image.format == 'JPEG'


def test_skips_missing_splits_and_existing_outputs(tmp_path, capsys):
  _write_release(tmp_path / 'CamVid', splits=('train',))
  arguments = [
    '--camvid_dir',
    str(tmp_path / 'CamVid'),
    '--output_dir',
    str(tmp_path / 'voc'),
    '--workers',
    '1',
  ]
  assert camvid_to_voc.main(arguments) == 0
  assert sorted(os.listdir(tmp_path / 'voc')) == [
    'VOC2012',
    'classes.txt',
    'train.txt',
  ]
  output = capsys.readouterr().out
  for split in ('val', 'test'):
    assert (
      'note: %s is missing; no %s.txt'
      % (
        tmp_path / 'CamVid' / (split + '.txt'),
        split,
      )
      in output
    )
  assert camvid_to_voc.main(arguments) == 0
  assert '2 images, 0 to convert' in capsys.readouterr().out
  # A split a later release leaves out loses the list of an earlier one,
  # which said "no val.txt" and kept it, naming images it may now train on.
  _write_release(tmp_path / 'Full')
  full = ['--camvid_dir', str(tmp_path / 'Full')] + arguments[2:]
  assert camvid_to_voc.main(full) == 0
  assert (tmp_path / 'voc' / 'val.txt').exists()
  assert camvid_to_voc.main(arguments) == 0
  assert sorted(os.listdir(tmp_path / 'voc')) == [
    'VOC2012',
    'classes.txt',
    'train.txt',
  ]


def test_names_malformed_line(tmp_path, capsys):
  _write_release(tmp_path / 'CamVid')
  with open(tmp_path / 'CamVid' / 'val.txt', 'a') as stream:
    stream.write('/SegNet/CamVid/val/only_one_field.png\n')
  assert (
    camvid_to_voc.main(
      [
        '--camvid_dir',
        str(tmp_path / 'CamVid'),
        '--output_dir',
        str(tmp_path / 'voc'),
      ]
    )
    == 1
  )
  error = capsys.readouterr().err
  assert 'val.txt, line 3' in error and 'IMAGE ANNOTATION' in error
  assert not (tmp_path / 'voc').exists()


def _convert_error(tmp_path, capsys, camvid_dir):
  """convert's one-line error for a release; asserts nothing was written."""
  code = camvid_to_voc.main(
    ['--camvid_dir', str(camvid_dir), '--output_dir', str(tmp_path / 'voc')]
  )
  assert code == 1
  error = capsys.readouterr().err
  assert error.count('\n') == 1
  assert not (tmp_path / 'voc').exists()
  return error.strip()


def test_names_a_line_of_two_frames_and_a_path_with_a_space(tmp_path, capsys):
  """A line pairing other frames labelled one frame with another's
  classes, silently; a path with a space was not named as the cause."""
  _write_release(tmp_path / 'CamVid')
  (tmp_path / 'CamVid' / 'train.txt').write_text(
    '/SegNet/CamVid/train/train_000.png /SegNet/CamVid/trainannot/'
    'train_001.png\n/my data/CamVid/train/train_001.png '
    '/my data/CamVid/trainannot/train_001.png\n'
  )
  list_path = tmp_path / 'CamVid' / 'train.txt'
  assert _convert_error(tmp_path, capsys, tmp_path / 'CamVid') == (
    'error: %s, line 1: image train_000.png and annotation train_001.png are '
    'of other frames (the release names both alike); %s, line 2: expected '
    '"IMAGE ANNOTATION", got \'/my data/CamVid/train/train_001.png /my '
    "data/CamVid/trainannot/train_001.png' (a path with a space? rename "
    'the folder)' % (list_path, list_path)
  )


def test_names_a_folder_already_in_the_voc_layout(tmp_path, capsys):
  _write_release(tmp_path / 'CamVid')
  camvid_to_voc.convert(str(tmp_path / 'CamVid'), str(tmp_path / 'converted'))
  assert _convert_error(tmp_path, capsys, tmp_path / 'converted') == (
    'error: %s is already in the VOC layout (VOC2012/, no trainannot/): use '
    "it as DATAROOT, or give SegNet's release as --camvid_dir"
    % (tmp_path / 'converted')
  )


def test_an_oriented_frame_is_noted_once_with_what_conversion_does(
  tmp_path, caplog
):
  """The note advised --apply_exif_orientation, which the tool lacks, and
  came twice (the check and the conversion)."""
  _write_release(tmp_path / 'CamVid', splits=('train',))
  frame = tmp_path / 'CamVid' / 'train' / 'train_000.png'
  image = Image.open(frame)
  exif = image.getexif()
  exif[0x0112] = 6
  image.save(frame, exif=exif)
  with caplog.at_level('WARNING'):
    camvid_to_voc.convert(str(tmp_path / 'CamVid'), str(tmp_path / 'voc'))
  notes = [
    record.getMessage()
    for record in caplog.records
    if 'EXIF orientation' in record.getMessage()
  ]
  assert len(notes) == 1
  assert notes[0].endswith(
    'it is converted as stored (the JPEG written holds the stored pixels '
    'and no orientation tag), so its label must match the stored pixels, '
    'not the displayed view'
  )
  assert '--apply_exif_orientation' not in notes[0]


def test_a_frame_edited_since_its_conversion_is_converted_again(
  tmp_path, capsys
):
  """`0 to convert`, and the old label kept, before."""
  annotations = _write_release(tmp_path / 'CamVid', splits=('train',))
  camvid_to_voc.convert(str(tmp_path / 'CamVid'), str(tmp_path / 'voc'))
  label = tmp_path / 'voc' / 'VOC2012' / 'segcls' / 'train_001.png'
  written = os.stat(label).st_mtime_ns
  fixed = np.zeros_like(annotations['train_001'])
  annotation = tmp_path / 'CamVid' / 'trainannot' / 'train_001.png'
  Image.fromarray(fixed).save(annotation)
  os.utime(annotation, ns=(written + 10**9,) * 2)
  capsys.readouterr()
  camvid_to_voc.convert(str(tmp_path / 'CamVid'), str(tmp_path / 'voc'))
  assert '2 images, 1 to convert' in capsys.readouterr().out
  np.testing.assert_array_equal(np.asarray(Image.open(label)), fixed)


def test_names_missing_file(tmp_path, capsys):
  _write_release(tmp_path / 'CamVid')
  os.remove(tmp_path / 'CamVid' / 'testannot' / 'test_001.png')
  assert (
    camvid_to_voc.main(
      [
        '--camvid_dir',
        str(tmp_path / 'CamVid'),
        '--output_dir',
        str(tmp_path / 'voc'),
      ]
    )
    == 1
  )
  error = capsys.readouterr().err
  assert 'test.txt, line 2' in error and 'test_001.png' in error


def test_names_every_missing_file_of_a_list(tmp_path):
  _write_release(tmp_path / 'CamVid', splits=('train',))
  for name in ('train/train_000.png', 'trainannot/train_001.png'):
    os.remove(tmp_path / 'CamVid' / name)
  with pytest.raises(camvid_to_voc.CamVidError) as raised:
    camvid_to_voc.read_split_list(str(tmp_path / 'CamVid'), 'train')
  message = str(raised.value)
  assert 'train.txt, line 1: missing file' in message
  assert 'train.txt, line 2: missing file' in message
  assert '\n' not in message


@pytest.mark.parametrize(
  'contents, message',
  [
    (b'', 'train.txt names no image'),
    (b'\n  \n', 'train.txt names no image'),
    (b'\xff\xfe/a/train/x.png /a/trainannot/x.png\n', 'not UTF-8'),
  ],
  ids=['empty', 'blank lines', 'not utf-8'],
)
def test_names_an_unreadable_or_empty_split_list(tmp_path, contents, message):
  _write_release(tmp_path / 'CamVid', splits=('train',))
  (tmp_path / 'CamVid' / 'train.txt').write_bytes(contents)
  with pytest.raises(camvid_to_voc.CamVidError, match=message) as raised:
    camvid_to_voc.convert(str(tmp_path / 'CamVid'), str(tmp_path / 'voc'))
  assert '\n' not in str(raised.value)
  assert not (tmp_path / 'voc').exists()


def test_names_a_split_list_that_is_a_folder(tmp_path):
  _write_release(tmp_path / 'CamVid', splits=('val',))
  (tmp_path / 'CamVid' / 'train.txt').mkdir()
  with pytest.raises(camvid_to_voc.CamVidError, match='train.txt'):
    camvid_to_voc.convert(str(tmp_path / 'CamVid'), str(tmp_path / 'voc'))


def test_names_bad_annotations_and_images_before_any_output(tmp_path):
  _write_release(tmp_path / 'CamVid', splits=('train', 'val'))
  annotation = tmp_path / 'CamVid' / 'trainannot' / 'train_000.png'
  Image.fromarray(np.full((6, 8), 12, np.uint8)).save(annotation)
  (tmp_path / 'CamVid' / 'val' / 'val_001.png').write_bytes(b'not a png')
  other_size = tmp_path / 'CamVid' / 'valannot' / 'val_000.png'
  Image.fromarray(np.zeros((5, 8), np.uint8)).save(other_size)
  with pytest.raises(folder_jobs.BadInputsError) as raised:
    camvid_to_voc.convert(str(tmp_path / 'CamVid'), str(tmp_path / 'voc'))
  message = str(raised.value)
  assert message.startswith('3 bad input(s), nothing written: ')
  assert (
    'train_000.png holds label ids [12]; CamVid annotations hold 0-10'
    in message
  )
  assert 'val_001.png' in message
  assert '%s is 5x8 but its image' % other_size in message
  assert not (tmp_path / 'voc').exists()


def test_names_both_files_of_a_bad_pair(tmp_path):
  _write_release(tmp_path / 'CamVid', splits=('train',))
  image = tmp_path / 'CamVid' / 'train' / 'train_000.png'
  annotation = tmp_path / 'CamVid' / 'trainannot' / 'train_000.png'
  image.write_bytes(b'not a png')
  Image.fromarray(np.full((6, 8), 12, np.uint8)).save(annotation)
  with pytest.raises(folder_jobs.BadInputsError) as raised:
    camvid_to_voc.convert(str(tmp_path / 'CamVid'), str(tmp_path / 'voc'))
  message = str(raised.value)
  assert message.startswith('1 bad input(s), nothing written: ')
  assert 'Cannot decode image %s' % image in message
  assert '%s holds label ids [12]' % annotation in message


def test_refuses_folder_without_lists(tmp_path, capsys):
  assert (
    camvid_to_voc.main(
      ['--camvid_dir', str(tmp_path), '--output_dir', str(tmp_path / 'voc')]
    )
    == 1
  )
  assert 'holds none of train.txt, val.txt, test.txt' in (
    capsys.readouterr().err
  )
  with pytest.raises(SystemExit):
    camvid_to_voc.main(
      ['--camvid_dir', str(tmp_path / 'nope'), '--output_dir', str(tmp_path)]
    )
  assert (
    capsys.readouterr()
    .err.strip()
    .endswith(
      'error: argument --camvid_dir: no folder %s' % (tmp_path / 'nope')
    )
  )


def test_runs_as_module_and_as_script():
  for command in (
    ['-m', 'tools.camvid_to_voc'],
    [os.path.join('tools', 'camvid_to_voc.py')],
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


@pytest.mark.parametrize(
  'flag, value',
  [('--jpeg_quality', '0'), ('--jpeg_quality', '96'), ('--workers', '0')],
)
def test_refuses_out_of_range_flags(tmp_path, capsys, flag, value):
  with pytest.raises(SystemExit):
    camvid_to_voc.main(
      [
        '--camvid_dir',
        str(tmp_path),
        '--output_dir',
        str(tmp_path / 'voc'),
        flag,
        value,
      ]
    )
  assert 'argument %s: must be an integer >=' % flag in capsys.readouterr().err


def test_names_the_problems_of_every_list_at_once(tmp_path):
  _write_release(tmp_path / 'CamVid', splits=('train', 'val', 'test'))
  (tmp_path / 'CamVid' / 'train.txt').write_text('a b c\n')
  (tmp_path / 'CamVid' / 'val.txt').write_bytes(b'\xff\xfe\n')
  (tmp_path / 'CamVid' / 'test.txt').write_text('')
  with pytest.raises(camvid_to_voc.CamVidError) as raised:
    camvid_to_voc.convert(str(tmp_path / 'CamVid'), str(tmp_path / 'voc'))
  message = str(raised.value)
  assert 'train.txt, line 1: expected "IMAGE ANNOTATION"' in message
  assert 'val.txt' in message and 'not UTF-8' in message
  assert 'test.txt names no image' in message
  assert '\n' not in message


def test_refuses_an_image_in_two_lists(tmp_path):
  _write_release(tmp_path / 'CamVid', splits=('train', 'test'))
  # The release's test list naming a training frame: a leak, and its
  # annotation would replace the training one.
  with open(tmp_path / 'CamVid' / 'test.txt', 'a') as stream:
    stream.write(
      '/SegNet/CamVid/train/train_000.png '
      '/SegNet/CamVid/trainannot/train_000.png\n'
    )
  with pytest.raises(camvid_to_voc.CamVidError) as raised:
    camvid_to_voc.convert(str(tmp_path / 'CamVid'), str(tmp_path / 'voc'))
  assert str(raised.value) == (
    'image id train_000 is named twice: %s in train.txt and %s in test.txt'
    % ((tmp_path / 'CamVid' / 'train' / 'train_000.png',) * 2)
  )
  assert not (tmp_path / 'voc').exists()


def test_refuses_to_write_over_the_release_lists(tmp_path):
  _write_release(tmp_path / 'CamVid', splits=('train',))
  before = (tmp_path / 'CamVid' / 'train.txt').read_text()
  with pytest.raises(camvid_to_voc.CamVidError, match='into another folder'):
    camvid_to_voc.convert(str(tmp_path / 'CamVid'), str(tmp_path / 'CamVid'))
  assert (tmp_path / 'CamVid' / 'train.txt').read_text() == before
  assert not (tmp_path / 'CamVid' / 'VOC2012').exists()


@pytest.mark.parametrize(
  'blocked, kind',
  [
    ('classes.txt', 'folder'),
    ('VOC2012', 'file'),
    ('VOC2012/JPEGImages/train_001.jpg', 'folder'),
  ],
)
def test_refuses_blocked_outputs_before_writing(tmp_path, blocked, kind):
  _write_release(tmp_path / 'CamVid', splits=('train',))
  path = tmp_path / 'voc' / blocked
  path.parent.mkdir(parents=True, exist_ok=True)
  if kind == 'folder':
    path.mkdir()
  else:
    path.write_text('keep me\n')
  with pytest.raises(camvid_to_voc.CamVidError) as raised:
    camvid_to_voc.convert(str(tmp_path / 'CamVid'), str(tmp_path / 'voc'))
  assert str(path) in str(raised.value)
  assert not (tmp_path / 'voc' / 'train.txt').exists()
  assert not (tmp_path / 'voc' / 'VOC2012' / 'segcls').exists()
