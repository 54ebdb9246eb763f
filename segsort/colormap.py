"""The PASCAL VOC colour map, for label pictures."""

import numpy as np


def voc_colormap(num_colors=256):
  """Builds PASCAL VOC's colour map (label id -> RGB).

  Colour bits are taken from the label's bits, highest colour bit from the
  lowest label bits, as in the VOC development kit.

  Args:
    num_colors: The number of label ids to cover.

  Returns:
    A uint8 array `[num_colors, 3]`.
  """
  label_ids = np.arange(num_colors)
  colormap = np.zeros((num_colors, 3), dtype=np.int64)
  for shift in range(7, -1, -1):
    for channel in range(3):
      bit = (label_ids >> (3 * (7 - shift) + channel)) & 1
      colormap[:, channel] |= bit << shift
  return colormap.astype(np.uint8)


def colorize(labels, colormap=None):
  """Paints a label map with a colour map.

  Args:
    labels: An integer array `[height, width]` of label ids in [0, 255].
    colormap: A uint8 array `[num_colors, 3]`; VOC's when None.

  Returns:
    A uint8 RGB array `[height, width, 3]`.
  """
  if colormap is None:
    colormap = voc_colormap()
  return colormap[np.asarray(labels, dtype=np.int64)]
