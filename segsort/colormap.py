"""Colour maps for label pictures: PASCAL VOC's, Cityscapes' and a data set's.

A data set may carry its own colours in `DATAROOT/colormap.txt` (`R G B`
rows in class-id order), written by the tools that import it
(tools/cityscapes_to_segcls.py, tools/import_dataset.py); inference and
explanation use that file unless --colormap names another.
"""

import numpy as np

from segsort import io_utils

# The file of a data set's colours inside its DATAROOT.
COLORMAP_FILE = 'colormap.txt'

# Cityscapes' official colours of its 19 training ids, in trainId order
# (cityscapesscripts/helpers/labels.py): road, sidewalk, building, wall,
# fence, pole, traffic light, traffic sign, vegetation, terrain, sky, person,
# rider, car, truck, bus, train, motorcycle, bicycle.
CITYSCAPES_COLORS = (
  (128, 64, 128),
  (244, 35, 232),
  (70, 70, 70),
  (102, 102, 156),
  (190, 153, 153),
  (153, 153, 153),
  (250, 170, 30),
  (220, 220, 0),
  (107, 142, 35),
  (152, 251, 152),
  (70, 130, 180),
  (220, 20, 60),
  (255, 0, 0),
  (0, 0, 142),
  (0, 0, 70),
  (0, 60, 100),
  (0, 80, 100),
  (0, 0, 230),
  (119, 11, 32),
)


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


def cityscapes_colormap(num_colors=256):
  """Builds Cityscapes' colour map of training ids; other ids are black.

  Args:
    num_colors: The number of label ids to cover, at least 19.

  Returns:
    A uint8 array `[num_colors, 3]`.
  """
  colormap = np.zeros((num_colors, 3), dtype=np.uint8)
  colormap[: len(CITYSCAPES_COLORS)] = CITYSCAPES_COLORS
  return colormap


# The colour maps --colormap accepts by name.
NAMED_COLORMAPS = {'voc': voc_colormap, 'cityscapes': cityscapes_colormap}


def save_colormap(path, colormap):
  """Writes a colour map as text, one `R G B` row per class id, atomically."""
  with io_utils.atomic_path(path) as temporary:
    with open(temporary, 'w') as stream:
      stream.writelines(
        '%d %d %d\n' % tuple(color)
        for color in np.asarray(colormap, dtype=np.int64)
      )


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
