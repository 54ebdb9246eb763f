"""Atomic file writes and TensorFlow-free image readers.

Writes are atomic: an output either exists complete or not at all. The
readers (list files, label and RGB images) are shared by the input pipeline,
the tools and the metrics, which must not import TensorFlow, so that every
part of the project reads a file the same way.
"""

import contextlib
import json
import logging
import os
import sys
import tempfile
import threading

import numpy as np
from PIL import Image
from PIL import ImageOps

from segsort import errors


# The file recording the settings that made an output directory's files
# (inference's predictions); light to import, for the scoring tools.
SETTINGS_FILE = 'settings.json'
# Present in a folder of oversegmentations (or groups) while
# tools.make_oversegmentation --overwrite replaces segments of other
# settings: until it completes, the folder holds segments of two settings,
# and the data lists' readers refuse it.
OVERSEGMENTATION_OVERWRITE_MARK_FILE = '.make_oversegmentation.overwriting'


def give_usual_mode(path):
  """Gives a file or folder the mode a plain open or mkdir would.

  `tempfile.mkstemp` and `mkdtemp` make them private (0600, 0700); an output
  renamed from one would stay unreadable to other users.

  Args:
    path: An existing file or folder.
  """
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~umask)


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
    dir=directory, prefix='.tmp-' + os.path.basename(path) + '-', suffix=suffix
  )
  os.close(handle)
  give_usual_mode(temporary)
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
      temporary, format='PNG'
    )


def save_jpeg(path, image, quality):
  """Writes a uint8 RGB array `[H, W, 3]` as a JPEG of `quality`, atomically."""
  with atomic_path(path) as temporary:
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(
      temporary, format='JPEG', quality=quality
    )


def save_npy(path, array):
  """Writes a NumPy array as a .npy file, atomically."""
  with atomic_path(path) as temporary:
    np.save(temporary, array)


NOT_AN_ARRAY_FILE = (
  'not a NumPy array file (corrupt, truncated, or written by something else)'
)


def load_npy(path):
  """Reads the array of a .npy file; pickled objects are refused.

  Args:
    path: The .npy file.

  Returns:
    The stored np.ndarray.

  Raises:
    OSError: If the file cannot be opened (missing, a folder, not allowed).
    ValueError: NOT_AN_ARRAY_FILE, when it opens but holds no readable
      array: NumPy's own message would advise loading it as a pickle
      ("allow_pickle"), the wrong fix for a damaged array.
  """
  try:
    array = np.load(path, allow_pickle=False)
  except (ValueError, EOFError) as error:
    raise ValueError(NOT_AN_ARRAY_FILE) from error
  if not isinstance(array, np.ndarray):
    # An .npz archive under a .npy name.
    array.close()
    raise ValueError(NOT_AN_ARRAY_FILE)
  return array


def print_scores(report, scores, output_json):
  """Prints a scoring tool's report, and its scores as JSON for '-'.

  Args:
    report: The scores as lines of text.
    scores: A JSON-ready dict.
    output_json: The tool's --output_json; with '-' the JSON alone goes to
      stdout, so that it can be piped, and the report to stderr.

  Returns:
    Whether the JSON went to stdout (the tool then writes no file).
  """
  if output_json != '-':
    print(report)
    return False
  print(report, file=sys.stderr)
  json.dump(scores, sys.stdout, indent=2, sort_keys=True)
  sys.stdout.write('\n')
  return True


def save_json(path, obj, sort_keys=True):
  """Writes an object as indented JSON, atomically.

  Args:
    path: The file to write; its folders are made.
    obj: A JSON-ready object.
    sort_keys: Whether objects' keys are written sorted (stable diffs of
      settings files) or in their insertion order (tables whose order means
      something, e.g. classes by id).
  """
  with atomic_path(path) as temporary:
    with open(temporary, 'w') as stream:
      json.dump(obj, stream, indent=2, sort_keys=sort_keys)
      stream.write('\n')


# ----------------------------------------------------------------------------
# Reading list files.

_UTF8_BOM = b'\xef\xbb\xbf'
_ASCII_WHITESPACE_TO_SPACE = str.maketrans('\t\n\r\f\v', '     ')


def read_list_lines(path, kind='data list'):
  """Reads the lines of a UTF-8 list file, without a byte-order mark.

  Windows tools start UTF-8 files with a byte-order mark, which would
  otherwise stick to the first path of the file.

  Args:
    path: A text file.
    kind: What the file is, for the error message ('data list').

  Returns:
    The list of its lines, line ends kept.

  Raises:
    ListFileError: Naming the file (and line) if it cannot be read or is not
      UTF-8 text.
  """
  try:
    with open(path, 'rb') as stream:
      contents = stream.read()
  except OSError as error:
    raise errors.ListFileError(
      'Cannot read %s %s: %s' % (kind, path, error)
    ) from error
  if contents.startswith(_UTF8_BOM):
    contents = contents[len(_UTF8_BOM) :]
  lines = []
  for line_number, line in enumerate(
    contents.splitlines(keepends=True), start=1
  ):
    try:
      lines.append(line.decode('utf-8'))
    except UnicodeDecodeError as error:
      raise errors.ListFileError(
        '%s, line %d is not UTF-8 text (%s): %r'
        % (path, line_number, error.reason, line)
      ) from error
  return lines


def split_fields(line):
  """Splits a list line at ASCII whitespace only.

  str.split would also split at non-breaking and other Unicode spaces, which
  can be part of a file name and should show in the error when they are not.
  """
  return [
    field
    for field in line.translate(_ASCII_WHITESPACE_TO_SPACE).split(' ')
    if field
  ]


def comment_line_problem(fields):
  """What is wrong with a list line read as a comment, or None.

  Lists have no comment syntax: read as paths, the words of '# train split'
  were each named a missing file.

  Args:
    fields: The line's fields, as `split_fields` gives them (not empty).
  """
  if fields[0].startswith('#'):
    return 'starts with "#", but data lists have no comments; remove the line'
  return None


def printable_path(path):
  """A path as it reads, or its repr when it holds invisible characters.

  Zero-width spaces, byte-order marks, non-breaking spaces and control
  characters look like nothing in a message; repr shows them as escapes.
  """
  return path if path.isprintable() else repr(path)


# ----------------------------------------------------------------------------
# Reading images (NumPy and Pillow only, no TensorFlow).
#
# Every image the project reads goes through `read_rgb_image` or
# `read_label_image`, so that training, prototype extraction, inference,
# explanation, the list check and the tools see the same pixels.

# Pillow modes of single-channel images of ids: palette, 8-bit, 32-bit,
# 16-bit and 1-bit. np.asarray gives palette indices (not colours) for 'P'.
LABEL_IMAGE_MODES = ('P', 'L', 'I', 'I;16', 'I;16B', 'I;16L', 'I;16N', '1')

# Modes that Pillow converts to RGB exactly: 8-bit colour spaces, 1-bit,
# palette, and the same with alpha, which is dropped (premultiplied 'La' and
# 'RGBa' are unpremultiplied first).
_RGB_CONVERTIBLE_MODES = (
  'RGB',
  'RGBX',
  'RGBA',
  'RGBa',
  'L',
  'LA',
  'La',
  'P',
  'PA',
  '1',
  'CMYK',
  'YCbCr',
  'HSV',
)

# 16-bit grayscale modes, scaled to 8 bits (65535 -> 255). Pillow's own
# conversion clips every value above 255 to white.
_16_BIT_MODES = ('I;16', 'I;16B', 'I;16L', 'I;16N')

# The EXIF tag of the orientation, and what its values ask a viewer to do.
_EXIF_ORIENTATION_TAG = 0x0112
_ORIENTATIONS = {
  2: 'mirrored left-right',
  3: 'rotated 180 degrees',
  4: 'mirrored top-bottom',
  5: 'transposed',
  6: 'rotated 90 degrees clockwise',
  7: 'transversed',
  8: 'rotated 90 degrees counter-clockwise',
}

_LOGGER = logging.getLogger(__name__)

# Files already warned about (decoding runs on several threads, and a
# training run reads every file once per epoch).
_warned_orientations = set()
_warned_orientations_lock = threading.Lock()


def _exif_orientation(image):
  """The EXIF orientation (1 to 8) of an opened Pillow image; 1 without one."""
  orientation = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
  return orientation if orientation in _ORIENTATIONS else 1


def read_exif_orientation(path):
  """The EXIF orientation (1 to 8) of an image file; 1 without one.

  Raises:
    ImageFileError: Naming the file if it cannot be opened.
  """
  with open_image(path, 'image') as image:
    return _exif_orientation(image)


# What a tool without --apply_exif_orientation says of an oriented image
# (read_rgb_image's `orientation_advice`): it converts the stored pixels.
CONVERTED_AS_STORED = (
  'it is converted as stored (the JPEG written holds the stored pixels '
  'and no orientation tag), so its label must match the stored pixels, '
  'not the displayed view'
)


def describe_orientation(path, orientation, advice=None):
  """Says what an EXIF orientation other than 1 means for a file's pixels.

  Args:
    path: The image file.
    orientation: Its EXIF orientation, 2 to 8.
    advice: What the reading command does about it; None for the advice of
      commands with --apply_exif_orientation.
  """
  if advice is None:
    advice = (
      'without --apply_exif_orientation it is read as stored, so a label '
      'drawn on the displayed view does not match it. Pass '
      '--apply_exif_orientation if its label was drawn on the displayed '
      'view, or set its orientation tag to 1 if the label matches the '
      'stored pixels.'
    )
  return '%s has EXIF orientation %d (viewers show it %s); %s' % (
    path,
    orientation,
    _ORIENTATIONS[orientation],
    advice,
  )


def _oriented(image, path, apply_exif_orientation, advice=None):
  """Applies an image's EXIF orientation, or warns (once per file and
  process) of it with `advice` (describe_orientation's; False: no
  warning)."""
  orientation = _exif_orientation(image)
  if orientation == 1:
    return image
  if apply_exif_orientation:
    return ImageOps.exif_transpose(image)
  if advice is False:
    return image
  with _warned_orientations_lock:
    first_time = path not in _warned_orientations
    _warned_orientations.add(path)
  if first_time:
    _LOGGER.warning(describe_orientation(path, orientation, advice))
  return image


def open_image(path, what):
  """Opens an image file with Pillow, naming it in any error."""
  try:
    return Image.open(path)
  except (
    OSError,
    SyntaxError,
    ValueError,
    Image.DecompressionBombError,
  ) as error:
    # DecompressionBombError: a header that claims too many pixels to decode
    # safely (Pillow's limit).
    raise errors.ImageFileError(
      'Cannot decode %s %s: %s' % (what, path, error)
    ) from error


def check_fits_image(label, label_path, image_path):
  """Refuses a label (or oversegmentation) of another size than its image.

  Only the image's header is read: its pixels are not needed.

  Args:
    label: The decoded array `[height, width]` of `label_path`.
    label_path: Its file, for the message.
    image_path: The image it annotates.

  Raises:
    ImageFileError: Naming both files if the sizes differ, or the image if
      its header does not decode.
  """
  with open_image(image_path, 'image') as image:
    width, height = image.size
  if label.shape != (height, width):
    raise errors.ImageFileError(
      '%s is %dx%d but its image %s is %dx%d'
      % (label_path, *label.shape, image_path, height, width)
    )


def read_label_image(
  path, dtype=np.int32, apply_exif_orientation=False, what='label image'
):
  """Reads a label (class-id) or segment-id image into integer ids.

  Grayscale images (1, 8, 16 or 32 bit) give their values, palette images
  (VOC's SegmentationClass) their palette indices, not their colours.

  Args:
    path: A single-channel image file, normally a PNG.
    dtype: The integer dtype of the result.
    apply_exif_orientation: Whether to turn the ids as the file's EXIF
      orientation asks (see `read_rgb_image`).
    what: What the file is, for the messages (e.g. 'oversegmentation').

  Returns:
    An array `[height, width]` of `dtype`.

  Raises:
    ImageFileError: Naming the file when it cannot be decoded or has no
      single channel of integer ids (colour, alpha or floating point).
  """
  with open_image(path, what) as label:
    mode = label.mode
    if mode not in LABEL_IMAGE_MODES:
      raise errors.ImageFileError(
        '%s is a mode %s image (bands %s); expected a single-channel image '
        'of ids (grayscale or palette)'
        % (path, mode, ','.join(label.getbands()))
      )
    try:
      ids = np.asarray(_oriented(label, path, apply_exif_orientation))
    except (OSError, SyntaxError, ValueError) as error:
      raise errors.ImageFileError(
        'Cannot decode %s %s: %s' % (what, path, error)
      ) from error
  return ids.astype(dtype)


def read_label_through_table(path, table, expected_ids):
  """Reads a label image and maps its ids through a lookup table.

  For converting a data set's annotation ids into training ids (e.g.
  CamVid's void 11 into 255, Cityscapes' labelIds into trainIds).

  Args:
    path: A single-channel label image (see `read_label_image`).
    table: An integer array `[num_ids]`, the training id of every id.
    expected_ids: Words for the ids the file may hold, for the error, e.g.
      'Cityscapes labelIds are 0-33'.

  Returns:
    An array `[height, width]` of `table`'s dtype.

  Raises:
    ImageFileError: Naming the file and up to ten ids outside
      `[0, len(table))`, or when it cannot be read (see `read_label_image`).
  """
  ids = read_label_image(path)
  unexpected = np.unique(ids[(ids < 0) | (ids >= len(table))])
  if unexpected.size:
    raise errors.ImageFileError(
      '%s holds label ids %s; %s'
      % (path, unexpected.tolist()[:10], expected_ids)
    )
  return np.asarray(table)[ids]


# The image files that tools gather from a folder (make_oversegmentation,
# import_dataset): every one of them read_rgb_image (Pillow) decodes.
IMAGE_EXTENSIONS = (
  '.jpg',
  '.jpeg',
  '.png',
  '.bmp',
  '.ppm',
  '.tif',
  '.tiff',
  '.webp',
)


def read_rgb_image(path, apply_exif_orientation=False, orientation_advice=None):
  """Decodes an image file (JPEG, PNG, TIFF, ...) of any usual mode into RGB.

  8-bit colour spaces, palettes and 1-bit images are converted by Pillow
  (alpha is dropped); 16-bit grayscale is scaled to 8 bits (16-bit colour
  PNGs are already decoded so by Pillow), as is a 32-bit integer image
  whose values fit 16 bits (Pillow decodes 16-bit PGM files so). Floating
  point images and wider integers have no defined white and are refused.

  EXIF orientation is ignored by default, as by label PNGs, so that an image
  and its label keep the same pixel grid; an image with an orientation
  other than 1 is reported once per file.

  Args:
    path: An image file.
    apply_exif_orientation: Whether to turn the image as its EXIF
      orientation asks (as viewers and annotation tools show it).
    orientation_advice: What the warning of an orientation left unapplied
      advises (`describe_orientation`): None for --apply_exif_orientation,
      a sentence for a command without that flag (e.g.
      CONVERTED_AS_STORED), False for no warning (already given).

  Returns:
    A uint8 array `[height, width, 3]`.

  Raises:
    ImageFileError: Naming the file if it cannot be read or decoded (also
      when truncated) or its mode has no defined conversion to RGB.
  """
  with open_image(path, 'image') as image:
    mode = image.mode
    try:
      image = _oriented(image, path, apply_exif_orientation, orientation_advice)
      if mode in _RGB_CONVERTIBLE_MODES:
        return np.asarray(image if mode == 'RGB' else image.convert('RGB'))
      pixels = np.asarray(image)
    except (OSError, SyntaxError, ValueError) as error:
      raise errors.ImageFileError(
        'Cannot decode image %s: %s' % (path, error)
      ) from error
  if mode == 'I' and pixels.size and 0 <= pixels.min() <= pixels.max() < 2**16:
    mode = 'I;16'
  if mode not in _16_BIT_MODES:
    value_range = (
      ' with values in [%s, %s]' % (pixels.min(), pixels.max())
      if pixels.size
      else ''
    )
    raise errors.ImageFileError(
      '%s is a mode %s image%s, which has no defined conversion to 8-bit '
      'RGB; save it as an 8- or 16-bit image' % (path, mode, value_range)
    )
  gray = np.round(pixels.astype(np.float32) * (255.0 / 65535.0))
  return np.repeat(gray.astype(np.uint8)[..., np.newaxis], 3, axis=2)


def output_is_newer(output_paths, input_paths):
  """Whether every output exists and was written after every input.

  An output kept from an earlier run is reused only if so: its settings
  cannot tell that a label or image was edited since (a fixed mask would
  otherwise keep its old prototypes, or its old imported copy).

  Args:
    output_paths: The files one image's outputs are.
    input_paths: The files they were computed from; None items are skipped.

  Returns:
    False if an output is missing or older than an input.
  """
  try:
    oldest_output = min(os.stat(path).st_mtime_ns for path in output_paths)
  except FileNotFoundError:
    return False
  return all(
    os.stat(path).st_mtime_ns <= oldest_output
    for path in input_paths
    if path is not None
  )
