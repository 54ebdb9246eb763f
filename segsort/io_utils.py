"""Atomic file writes: an output either exists complete or not at all."""

import contextlib
import json
import os
import tempfile

import numpy as np
from PIL import Image


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary path next to `path`, renamed onto it on success.

  The temporary file keeps the destination's extension so that libraries that
  pick a format from the name (Pillow, NumPy) behave as for `path` itself.

  Args:
    path: The final file path.

  Yields:
    A temporary path in the same directory to write to.
  """
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  suffix = os.path.splitext(path)[1]
  handle, temporary = tempfile.mkstemp(
      dir=directory, prefix='.tmp-' + os.path.basename(path) + '-',
      suffix=suffix)
  os.close(handle)
  # mkstemp creates the file private (0600); outputs get the usual mode.
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(temporary, 0o666 & ~umask)
  try:
    yield temporary
    os.replace(temporary, path)
  except BaseException:
    if os.path.exists(temporary):
      os.remove(temporary)
    raise


def save_png(path, array):
  """Writes a uint8 array (`[H, W]` or `[H, W, 3]`) as a PNG, atomically."""
  with atomic_path(path) as temporary:
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(
        temporary, format='PNG')


def save_npy(path, array):
  """Writes a NumPy array as a .npy file, atomically."""
  with atomic_path(path) as temporary:
    np.save(temporary, array)


def save_json(path, obj):
  """Writes an object as indented JSON, atomically."""
  with atomic_path(path) as temporary:
    with open(temporary, 'w') as stream:
      json.dump(obj, stream, indent=2, sort_keys=True)
      stream.write('\n')
