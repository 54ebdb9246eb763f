"""Decoding the files of a list entry into arrays, checked per file.

Images and labels are decoded by Pillow (segsort.io_utils), so that a file
that cannot be decoded, a palette PNG, or a label whose size differs from its
image is handled per file and reported with the list file, line number and
path.
"""

import dataclasses

import numpy as np

from segsort import errors
from segsort import io_utils
from segsort.data import labels


def load_image(path, apply_exif_orientation=False):
  """Decodes an image file into RGB (`io_utils.read_rgb_image`).

  Args:
    path: An image file (JPEG, PNG, ...).
    apply_exif_orientation: Whether to turn the image as its EXIF
      orientation asks.

  Returns:
    A uint8 array `[height, width, 3]`.

  Raises:
    DataError: If the file cannot be read or decoded (also when truncated).
  """
  try:
    return io_utils.read_rgb_image(path, apply_exif_orientation)
  except errors.ImageFileError as error:
    raise errors.DataError(str(error)) from error


def load_label(path, apply_exif_orientation=False, what='label image'):
  """Decodes a label or oversegmentation PNG (`io_utils.read_label_image`).

  Args:
    path: A single-channel image file.
    apply_exif_orientation: Whether to turn the ids as the file's EXIF
      orientation asks.
    what: What the file is, for the error message.

  Returns:
    An int32 array `[height, width]`.

  Raises:
    DataError: If the file cannot be decoded or has colour channels.
  """
  try:
    return io_utils.read_label_image(
      path, apply_exif_orientation=apply_exif_orientation, what=what
    )
  except errors.ImageFileError as error:
    raise errors.DataError(str(error)) from error


def check_segments_nest_in_groups(segments, groups, groups_path):
  """Raises unless every segment lies in one group.

  Args:
    segments: A non-negative int array `[H, W]` of segment ids.
    groups: An int array `[H, W]` of group ids.
    groups_path: The groups file, for the message.

  Raises:
    DataError: Naming the file and the first segment that spans groups.
  """
  # Any one pixel's group per segment; vectorised, unlike np.unique on pairs.
  group_of_segment = np.zeros(int(segments.max()) + 1, groups.dtype)
  group_of_segment[segments] = groups
  spanning = group_of_segment[segments] != groups
  if spanning.any():
    row, column = np.argwhere(spanning)[0]
    segment = segments[row, column]
    raise errors.DataError(
      '%s: segment %d spans groups %d and %d; every segment must lie in one '
      'group (tools.make_oversegmentation --groups_of makes such groups)'
      % (
        groups_path,
        segment,
        group_of_segment[segment],
        groups[row, column],
      )
    )


def decode_entry(
  entry,
  *,
  num_classes,
  ignore_label,
  with_oversegmentation,
  apply_exif_orientation=False,
  with_segment_groups=False,
):
  """Decodes and validates one entry's files.

  Returns:
    image: uint8 `[H, W, 3]`.
    label: int32 `[H, W]`, all `ignore_label` when the entry has no label;
      with `num_classes`, values outside [0, num_classes) are set to
      `ignore_label`.
    oversegmentation: int32 `[H, W]` when asked for, `[H, W, 2]` (segment
      ids, then group ids) with `with_segment_groups`, else None.

  Raises:
    DataError: Naming the list file, line number and path, if a file cannot
      be decoded, its size differs from the image's, or a segment spans
      groups.
  """
  try:
    image = load_image(entry.image_path, apply_exif_orientation)
    height, width = image.shape[:2]
    if entry.label_path is None:
      label = np.full((height, width), ignore_label, np.int32)
    else:
      label = load_label(entry.label_path, apply_exif_orientation)
      _check_size(entry.label_path, label, image, 'label')
      if num_classes is not None:
        label = labels.ignore_out_of_range(label, num_classes, ignore_label)
    oversegmentation = None
    if with_oversegmentation:
      oversegmentation = load_label(
        entry.oversegmentation_path, apply_exif_orientation, 'oversegmentation'
      )
      _check_size(
        entry.oversegmentation_path, oversegmentation, image, 'oversegmentation'
      )
      if with_segment_groups:
        groups = load_label(
          entry.segment_groups_path, apply_exif_orientation, 'segment groups'
        )
        _check_size(entry.segment_groups_path, groups, image, 'segment groups')
        check_segments_nest_in_groups(
          oversegmentation, groups, entry.segment_groups_path
        )
        oversegmentation = np.stack([oversegmentation, groups], axis=-1)
  except errors.DataError as error:
    raise errors.DataError('%s: %s' % (entry.location(), error)) from error
  return image, label, oversegmentation


def _check_size(path, array, image, what):
  if array.shape != image.shape[:2]:
    raise errors.DataError(
      '%s %s is %dx%d but its image is %dx%d'
      % (
        what,
        path,
        array.shape[0],
        array.shape[1],
        image.shape[0],
        image.shape[1],
      )
    )


@dataclasses.dataclass(frozen=True)
class DecodeSettings:
  """How every entry of a list is decoded: `decode_entry`'s keywords, bound.

  The training and inference pipelines and the up-front list checks decode
  with the same settings object, so that a check passes exactly what a
  reader accepts.
  """

  num_classes: int | None
  ignore_label: int
  with_oversegmentation: bool
  apply_exif_orientation: bool = False
  with_segment_groups: bool = False

  def decode(self, entry):
    """`decode_entry(entry)` with these settings; same returns and errors."""
    return decode_entry(entry, **dataclasses.asdict(self))
