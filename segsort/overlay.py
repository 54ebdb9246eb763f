"""Pictures of results: prediction overlays and per-class IoU charts.

    picture = overlay.draw_overlay(image, labels, colormap, segment_ids)
    chart = overlay.draw_iou_chart(results['class_names'],
                                   results['class_iou'], results['mean_iou'])

Drawn with NumPy and OpenCV, which the project depends on already, rather
than matplotlib: a bar chart of about twenty classes does not justify a
plotting library (and its font cache) in every installation, and the
pixels stay exactly testable.
"""

import math

import cv2
import numpy as np
import PIL.ImageColor

from segsort import colormap as colormap_lib
from segsort import metrics

# The weight of the label colours in an overlay (the image has the rest).
OVERLAY_ALPHA = 0.5
BOUNDARY_COLOR = (255, 255, 255)

# The chart's layout, in pixels.
CHART_NAME_WIDTH = 150
CHART_BAR_WIDTH = 300
CHART_VALUE_WIDTH = 70
CHART_ROW_HEIGHT = 20
CHART_TITLE_HEIGHT = 30
CHART_MARGIN = 10
CHART_BACKGROUND = (255, 255, 255)
CHART_TEXT_COLOR = (0, 0, 0)
CHART_AXIS_COLOR = (160, 160, 160)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.4


def draw_overlay(
  image,
  labels,
  colormap,
  segment_ids=None,
  alpha=OVERLAY_ALPHA,
  boundary_color=BOUNDARY_COLOR,
):
  """Blends an image with its colour labels and marks segment boundaries.

  Args:
    image: A uint8 RGB array `[H, W, 3]`.
    labels: An integer array `[H, W]` of class ids, each < len(colormap).
    colormap: A uint8 array `[num_colors, 3]`.
    segment_ids: An integer array `[H, W]` of segments whose boundaries are
      drawn; the regions of `labels` when None.
    alpha: The weight in [0, 1] of the label colours.
    boundary_color: The RGB colour of boundary pixels (both pixels of every
      4-neighbour pair of different segments).

  Returns:
    A uint8 RGB array `[H, W, 3]`: round((1 - alpha) * image + alpha *
    colormap[labels]), boundary pixels in `boundary_color`.

  Raises:
    ValueError: If the shapes differ or a label has no colour.
  """
  image = np.asarray(image)
  labels = np.asarray(labels)
  segment_ids = labels if segment_ids is None else np.asarray(segment_ids)
  if (
    image.ndim != 3
    or image.shape[2] != 3
    or labels.shape != image.shape[:2]
    or segment_ids.shape != labels.shape
  ):
    raise ValueError(
      'Overlay needs an image [H, W, 3] and labels and segments [H, W]; '
      'got %s, %s and %s' % (image.shape, labels.shape, segment_ids.shape)
    )
  colors = colormap_lib.colorize(labels, colormap)
  blended = np.rint(
    (1.0 - alpha) * image.astype(np.float32) + alpha * colors.astype(np.float32)
  )
  picture = np.clip(blended, 0, 255).astype(np.uint8)
  picture[metrics.label_boundaries(segment_ids)] = boundary_color
  return picture


def overlay_segments(predictor, image, labels, scales, flip):
  """The segments whose boundaries an inference overlay draws.

  Args:
    predictor: A segsort.inference SegSortPredictor or SoftmaxPredictor.
    image: A float32 tensor `[H, W, 3]`, mean-subtracted.
    labels: The predicted class ids `[H, W]`.
    scales: The image scales of the prediction.
    flip: Whether the prediction added flips.

  Returns:
    An integer array `[H, W]`: the k-means segments of single-scale SegSort
    without flips (computed again: the votes do not keep them); otherwise
    (softmax, or segments of several views) `labels`.
  """
  if hasattr(predictor, 'neighbours') and tuple(scales) == (1.0,) and not flip:
    return predictor.neighbours(image).segment_ids
  return labels


def _put_text(picture, text, x, y, color=CHART_TEXT_COLOR):
  """Writes text with its baseline at (x, y)."""
  cv2.putText(picture, text, (x, y), _FONT, _FONT_SCALE, color, 1, cv2.LINE_AA)


def bar_length(iou):
  """The length in pixels of the bar of an IoU in [0, 1]."""
  return int(round(iou * CHART_BAR_WIDTH))


def chart_row_top(row):
  """The top pixel row of a class's bar row."""
  return CHART_TITLE_HEIGHT + row * CHART_ROW_HEIGHT


def draw_iou_chart(class_names, class_iou, mean_iou, colormap=None):
  """Draws per-class IoU as horizontal bars, one row per class.

  Class i's bar starts at x = CHART_MARGIN + CHART_NAME_WIDTH and is
  `bar_length(iou)` pixels long, filled with colormap[i] (the colour of the
  class in the colour PNGs) and outlined in grey; its row spans
  `chart_row_top(i)` + 3 to + CHART_ROW_HEIGHT - 3. A class without pixels
  (IoU None or NaN) has no bar and the value 'n/a'.

  Args:
    class_names: The names of the classes, in class-id order.
    class_iou: The IoU of every class, in [0, 1], or None.
    mean_iou: The mean IoU in [0, 1] (or None/NaN), shown in the title.
    colormap: A uint8 array `[num_colors, 3]` of at least as many colours
      as classes; VOC's when None.

  Returns:
    A uint8 RGB array `[CHART_TITLE_HEIGHT + len(class_names) *
    CHART_ROW_HEIGHT + CHART_MARGIN, CHART_MARGIN * 2 + CHART_NAME_WIDTH +
    CHART_BAR_WIDTH + CHART_VALUE_WIDTH, 3]` on a white background.

  Raises:
    ValueError: If names and values differ in number, or an IoU lies
      outside [0, 1].
  """
  if len(class_names) != len(class_iou):
    raise ValueError(
      '%d class names for %d IoU values' % (len(class_names), len(class_iou))
    )
  values = [
    None if value is None or math.isnan(value) else float(value)
    for value in class_iou
  ]
  if any(value is not None and not 0 <= value <= 1 for value in values):
    raise ValueError('IoU values must lie in [0, 1], got %s' % (class_iou,))
  if colormap is None:
    colormap = colormap_lib.voc_colormap()
  width = (
    2 * CHART_MARGIN + CHART_NAME_WIDTH + CHART_BAR_WIDTH + CHART_VALUE_WIDTH
  )
  height = chart_row_top(len(values)) + CHART_MARGIN
  picture = np.empty((height, width, 3), np.uint8)
  picture[:] = CHART_BACKGROUND
  has_mean = mean_iou is not None and not math.isnan(mean_iou)
  _put_text(
    picture,
    'per-class IoU, mean %s'
    % ('%.2f%%' % (100 * mean_iou) if has_mean else 'n/a'),
    CHART_MARGIN,
    CHART_TITLE_HEIGHT - 12,
  )
  bar_left = CHART_MARGIN + CHART_NAME_WIDTH
  for row, (name, value) in enumerate(zip(class_names, values)):
    top = chart_row_top(row)
    baseline = top + CHART_ROW_HEIGHT - 6
    _put_text(picture, str(name)[:22], CHART_MARGIN, baseline)
    if value is None:
      _put_text(picture, 'n/a', bar_left + 4, baseline, CHART_AXIS_COLOR)
      continue
    length = bar_length(value)
    if length:
      bar = (
        slice(top + 3, top + CHART_ROW_HEIGHT - 3),
        slice(bar_left, bar_left + length),
      )
      picture[bar] = colormap[row]
      cv2.rectangle(
        picture,
        (bar_left, top + 3),
        (bar_left + length - 1, top + CHART_ROW_HEIGHT - 4),
        CHART_AXIS_COLOR,
        1,
      )
    _put_text(
      picture,
      '%.1f%%' % (100 * value),
      bar_left + CHART_BAR_WIDTH + 6,
      baseline,
    )
  # The axis at IoU 0.
  picture[CHART_TITLE_HEIGHT : height - CHART_MARGIN, bar_left - 1] = (
    CHART_AXIS_COLOR
  )
  return picture


# One colour per method of a comparison chart, in the order the methods are
# given, cycling: matplotlib's first "tab10" colours, spelled as it defines
# them.
METHOD_COLORS = tuple(
  PIL.ImageColor.getrgb(hex_color)
  for hex_color in ('#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd')
)
# The height of one method's bar in a comparison chart, and the gap between
# rows, in pixels.
COMPARISON_BAR_HEIGHT = 10
COMPARISON_ROW_GAP = 8


def comparison_row_top(row, num_methods):
  """The top pixel row of a comparison chart's row (below title and legend).

  Method m's bar of that row spans rows `top + m * COMPARISON_BAR_HEIGHT` to
  `top + (m + 1) * COMPARISON_BAR_HEIGHT - 2`.
  """
  legend_height = CHART_ROW_HEIGHT * num_methods
  row_height = COMPARISON_BAR_HEIGHT * num_methods + COMPARISON_ROW_GAP
  return CHART_TITLE_HEIGHT + legend_height + row * row_height


def _check_fractions(values, what):
  flat = [value for value in values if value is not None]
  if any(math.isnan(value) or not 0 <= value <= 1 for value in flat):
    raise ValueError('%s must lie in [0, 1], got %s' % (what, values))


def draw_comparison_chart(title, row_names, method_names, means, ranges=None):
  """Draws several methods' scores side by side, one group of bars per row.

  Each row (a score such as mIoU, or a class's IoU) holds one horizontal
  bar per method, in METHOD_COLORS[m], `bar_length(value)` pixels long from
  x = CHART_MARGIN + CHART_NAME_WIDTH, with the value written after the bar
  area; a range (e.g. the smallest and largest value over training seeds)
  is a black line across the middle of the bar from `bar_length(low)` to
  `bar_length(high)`. A legend of the methods' colours sits below the title.

  Args:
    title: The chart's title.
    row_names: The R names of the rows, top to bottom.
    method_names: The M names of the methods.
    means: M lists of R values in [0, 1], or None where a method has no
      value (no bar, 'n/a').
    ranges: None, or M lists of R (low, high) pairs in [0, 1] or None.

  Returns:
    A uint8 RGB array `[comparison_row_top(R, M) + CHART_MARGIN,
    2 * CHART_MARGIN + CHART_NAME_WIDTH + CHART_BAR_WIDTH +
    CHART_VALUE_WIDTH, 3]` on a white background.

  Raises:
    ValueError: If the lists do not have M x R entries, or a value lies
      outside [0, 1].
  """
  num_rows, num_methods = len(row_names), len(method_names)
  if ranges is None:
    ranges = [[None] * num_rows for _ in method_names]
  if (
    len(means) != num_methods
    or len(ranges) != num_methods
    or any(len(values) != num_rows for values in list(means) + list(ranges))
  ):
    raise ValueError(
      'means and ranges need %d methods x %d rows' % (num_methods, num_rows)
    )
  for values, pairs in zip(means, ranges):
    _check_fractions(values, 'Scores')
    _check_fractions([v for pair in pairs if pair for v in pair], 'Ranges')
  width = (
    2 * CHART_MARGIN + CHART_NAME_WIDTH + CHART_BAR_WIDTH + CHART_VALUE_WIDTH
  )
  height = comparison_row_top(num_rows, num_methods) + CHART_MARGIN
  picture = np.empty((height, width, 3), np.uint8)
  picture[:] = CHART_BACKGROUND
  _put_text(picture, title, CHART_MARGIN, CHART_TITLE_HEIGHT - 12)
  bar_left = CHART_MARGIN + CHART_NAME_WIDTH
  for method, name in enumerate(method_names):
    top = CHART_TITLE_HEIGHT + method * CHART_ROW_HEIGHT
    color = METHOD_COLORS[method % len(METHOD_COLORS)]
    picture[top + 4 : top + CHART_ROW_HEIGHT - 4, bar_left : bar_left + 30] = (
      color
    )
    _put_text(picture, str(name), bar_left + 36, top + CHART_ROW_HEIGHT - 6)
  for row, row_name in enumerate(row_names):
    row_top = comparison_row_top(row, num_methods)
    _put_text(
      picture,
      str(row_name)[:22],
      CHART_MARGIN,
      row_top + COMPARISON_BAR_HEIGHT * num_methods // 2 + 4,
    )
    for method in range(num_methods):
      top = row_top + method * COMPARISON_BAR_HEIGHT
      bottom = top + COMPARISON_BAR_HEIGHT - 1
      value = means[method][row]
      baseline = bottom - 1
      if value is None:
        _put_text(picture, 'n/a', bar_left + 4, baseline, CHART_AXIS_COLOR)
        continue
      length = bar_length(value)
      picture[top:bottom, bar_left : bar_left + length] = METHOD_COLORS[
        method % len(METHOD_COLORS)
      ]
      pair = ranges[method][row]
      if pair is not None:
        middle = (top + bottom) // 2
        low, high = bar_length(min(pair)), bar_length(max(pair))
        picture[middle, bar_left + low : bar_left + high + 1] = CHART_TEXT_COLOR
      _put_text(
        picture,
        '%.1f%%' % (100 * value),
        bar_left + CHART_BAR_WIDTH + 6,
        baseline,
      )
  # The axis at 0.
  picture[
    comparison_row_top(0, num_methods) : height - CHART_MARGIN, bar_left - 1
  ] = CHART_AXIS_COLOR
  return picture
