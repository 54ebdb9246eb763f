"""io_utils: atomic writes (complete files, usual mode) and reading arrays."""

import json
import os
import stat

import numpy as np
import pytest

from segsort import colormap
from segsort import io_utils


def test_atomic_path_leaves_nothing_when_the_writer_fails(tmp_path):
  target = tmp_path / 'out.json'
  target.write_text('old')
  with pytest.raises(RuntimeError):
    with io_utils.atomic_path(str(target)) as temporary:
      with open(temporary, 'w') as stream:
        stream.write('half')
      raise RuntimeError('killed')
  assert target.read_text() == 'old'
  assert sorted(os.listdir(tmp_path)) == ['out.json']


def test_outputs_get_the_umask_mode(tmp_path):
  previous = os.umask(0o022)
  try:
    io_utils.save_json(str(tmp_path / 'a' / 'config.json'), {'x': 1})
  finally:
    os.umask(previous)
  path = tmp_path / 'a' / 'config.json'
  assert json.loads(path.read_text()) == {'x': 1}
  assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_save_png_and_npy_round_trip(tmp_path):
  from PIL import Image

  labels = np.array([[0, 1], [15, 255]], np.uint8)
  io_utils.save_png(str(tmp_path / 'l.png'), labels)
  np.testing.assert_array_equal(
    np.array(Image.open(tmp_path / 'l.png')), labels
  )
  io_utils.save_npy(str(tmp_path / 'f.npy'), labels.astype(np.float32))
  np.testing.assert_array_equal(np.load(tmp_path / 'f.npy'), labels)


def test_voc_colormap_known_entries():
  colors = colormap.voc_colormap()
  assert colors[0].tolist() == [0, 0, 0]
  assert colors[1].tolist() == [128, 0, 0]
  assert colors[15].tolist() == [192, 128, 128]
  assert colors[255].tolist() == [224, 224, 192]
  assert colormap.colorize(np.array([[1, 2]])).tolist() == [
    [[128, 0, 0], [0, 128, 0]]
  ]


@pytest.mark.parametrize(
  'contents',
  [b'', b'just some text\n', b'\x93NUMPY\x01\x00broken'],
  ids=['empty', 'text', 'broken header'],
)
def test_load_npy_names_a_file_that_holds_no_array(tmp_path, contents):
  path = tmp_path / 'array.npy'
  path.write_bytes(contents)
  with pytest.raises(ValueError) as raised:
    io_utils.load_npy(str(path))
  assert str(raised.value) == io_utils.NOT_AN_ARRAY_FILE


def test_load_npy_refuses_pickles_and_archives(tmp_path):
  pickled = tmp_path / 'pickled.npy'
  np.save(pickled, np.array([{'a': 1}], dtype=object))
  archive = tmp_path / 'archive.npy'
  with open(archive, 'wb') as stream:
    np.savez(stream, a=np.zeros(2))
  for path in (pickled, archive):
    with pytest.raises(ValueError, match='not a NumPy array file'):
      io_utils.load_npy(str(path))


def test_load_npy_reads_an_array_and_passes_os_errors(tmp_path):
  path = tmp_path / 'array.npy'
  np.save(path, np.arange(6).reshape(2, 3))
  np.testing.assert_array_equal(
    io_utils.load_npy(str(path)), np.arange(6).reshape(2, 3)
  )
  with pytest.raises(FileNotFoundError):
    io_utils.load_npy(str(tmp_path / 'missing.npy'))
