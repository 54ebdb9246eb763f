"""Atomic file writes and TensorFlow-free image readers.

Writes are atomic: an output either exists complete or not at all. The
readers (label and RGB images) are shared by the input pipeline, the tools
and the metrics, which must not import TensorFlow.
"""

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


# ----------------------------------------------------------------------------
# Reading images (NumPy and Pillow only, no TensorFlow).

# Pillow modes of single-channel images: palette, 8-bit, 32-bit, 16-bit and
# 1-bit. np.asarray gives palette indices (not colours) for 'P'.
LABEL_IMAGE_MODES = ('P', 'L', 'I', 'I;16', 'I;16B', 'I;16L', '1')


class ImageFileError(ValueError):
  """An image file that cannot be decoded or has the wrong kind of pixels."""


def read_label_image(path, dtype=np.int32):
  """Reads a label (class-id) or segment-id image into integer ids.

  Grayscale images (1, 8, 16 or 32 bit) give their values, palette images
  (VOC's SegmentationClass) their palette indices, not their colours.

  Args:
    path: A single-channel image file, normally a PNG.
    dtype: The integer dtype of the result.

  Returns:
    An array `[height, width]` of `dtype`.

  Raises:
    ImageFileError: Naming the file when it cannot be decoded or has colour
      channels (its ids would be lost).
  """
  try:
    with Image.open(path) as label:
      mode = label.mode
      ids = np.asarray(label) if mode in LABEL_IMAGE_MODES else None
  except (OSError, SyntaxError, ValueError) as error:
    raise ImageFileError('Cannot decode label image %s: %s'
                         % (path, error)) from error
  if ids is None:
    raise ImageFileError(
        '%s is a %s image; expected a single-channel image of class ids '
        '(grayscale or palette), not mode %s with colour channels.'
        % (path, mode, mode))
  return ids.astype(dtype)


def read_rgb_image(path):
  """Decodes an image file (JPEG, PNG, ...) into RGB.

  EXIF orientation is ignored, as by label PNGs, so that an image and its
  label keep the same pixel grid.

  Args:
    path: An image file.

  Returns:
    A uint8 array `[height, width, 3]`.

  Raises:
    ImageFileError: Naming the file if it cannot be read or decoded (also
      when truncated).
  """
  try:
    with Image.open(path) as image:
      if image.mode != 'RGB':
        image = image.convert('RGB')
      return np.asarray(image)
  except (OSError, SyntaxError, ValueError) as error:
    raise ImageFileError('Cannot decode image %s: %s'
                         % (path, error)) from error
