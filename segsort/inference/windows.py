"""Dense network outputs of a whole image by sliding windows.

The image is zero-padded (zero is the mean colour after mean subtraction) to
at least one window and to a multiple of the output stride; every window of
the image goes through the network in one batched call; window offsets are
multiples of the output stride, so each window's output cells coincide with
cells of the image's output grid, where overlapping windows are averaged.
"""

import numpy as np
import tensorflow as tf

from network.segsort import common_utils
from segsort import errors


def _round_up(value, multiple):
  return -(-value // multiple) * multiple


def window_offsets(padded_length, window_length, stride, output_stride):
  """Offsets of windows that tile `[0, padded_length)` along one axis.

  Args:
    padded_length: The padded image length, a multiple of `output_stride`
      and at least `window_length`.
    window_length: The window length, a multiple of `output_stride`.
    stride: The distance between window starts before rounding.
    output_stride: The network's output stride.

  Returns:
    Sorted distinct offsets, multiples of `output_stride` (rounded down), the
    last one `padded_length - window_length`.
  """
  last = padded_length - window_length
  offsets = {
    min(position // output_stride * output_stride, last)
    for position in range(0, last, stride)
  }
  offsets.add(last)
  return sorted(offsets)


class DenseOutputRunner:
  """Runs a network over a whole image by sliding windows.

  Attributes:
    output_stride: The network's output stride.
    window_size: (height, width) of the windows, rounded up to multiples of
      the output stride.
    strides: (vertical, horizontal) window strides.
  """

  def __init__(self, network, window_size, strides, normalize_windows):
    """Wraps a network.

    Args:
      network: A SegmentationNetwork.
      window_size: (height, width) of the windows.
      strides: (vertical, horizontal) distances between windows, at most the
        window size so that windows leave no gap.
      normalize_windows: Whether to L2-normalise every window's output before
        averaging (embeddings).

    Raises:
      InferenceError: If a stride is not in [1, window size].
    """
    self.output_stride = int(network.output_stride)
    self.window_size = tuple(
      _round_up(int(length), self.output_stride) for length in window_size
    )
    self.strides = tuple(int(stride) for stride in strides)
    for stride, length in zip(self.strides, self.window_size):
      if not 1 <= stride <= length:
        raise errors.InferenceError(
          'Window strides %s must lie in [1, window size %s] so that '
          'windows cover the image.' % (self.strides, self.window_size)
        )
    self._normalize_windows = normalize_windows
    self._network = network
    self._predict_windows = tf.function(
      self._call_network, reduce_retracing=True
    )

  def _call_network(self, windows):
    return self._network(windows, training=False)

  def output_grid(self, image):
    """Computes the network's output for every cell of the image's grid.

    Args:
      image: A float32 tensor `[H, W, 3]`, mean-subtracted.

    Returns:
      A float32 tensor `[ceil(H / s), ceil(W / s), channels]`.
    """
    stride = self.output_stride
    height, width = int(image.shape[0]), int(image.shape[1])
    window_height, window_width = self.window_size
    grid_height, grid_width = -(-height // stride), -(-width // stride)
    padded_height = max(window_height, grid_height * stride)
    padded_width = max(window_width, grid_width * stride)
    padded = tf.pad(
      image, [[0, padded_height - height], [0, padded_width - width], [0, 0]]
    )
    corners = [
      (y, x)
      for y in window_offsets(
        padded_height, window_height, self.strides[0], stride
      )
      for x in window_offsets(
        padded_width, window_width, self.strides[1], stride
      )
    ]
    windows = tf.stack(
      [padded[y : y + window_height, x : x + window_width] for y, x in corners]
    )
    outputs = self._predict_windows(windows)
    cells = (window_height // stride, window_width // stride)
    if tuple(outputs.shape[1:3]) != cells:
      raise errors.InferenceError(
        'The network maps %dx%d windows to %dx%d outputs; output stride %d '
        'implies %dx%d.'
        % (
          window_height,
          window_width,
          outputs.shape[1],
          outputs.shape[2],
          stride,
          cells[0],
          cells[1],
        )
      )
    if self._normalize_windows:
      outputs = common_utils.normalize_embedding(outputs)
    padded_cells = (padded_height // stride, padded_width // stride)
    window_counts = np.zeros(padded_cells, np.float32)
    placed_outputs = []
    for output, (y, x) in zip(tf.unstack(outputs), corners):
      top, left = y // stride, x // stride
      window_counts[top : top + cells[0], left : left + cells[1]] += 1
      placed_outputs.append(
        tf.pad(
          output,
          [
            [top, padded_cells[0] - top - cells[0]],
            [left, padded_cells[1] - left - cells[1]],
            [0, 0],
          ],
        )
      )
    output_sum = tf.add_n(placed_outputs)[:grid_height, :grid_width]
    return output_sum / window_counts[:grid_height, :grid_width, np.newaxis]

  def upsample_to_image(self, grid, image_size):
    """Bilinearly upsamples an output grid to its image's pixels.

    Args:
      grid: A float tensor `[ceil(H / s), ceil(W / s), channels]`.
      image_size: (H, W).

    Returns:
      A float32 tensor `[H, W, channels]`.
    """
    grid_height, grid_width = int(grid.shape[0]), int(grid.shape[1])
    # Cell j covers pixels [j * s, (j + 1) * s): resize to the whole cells'
    # extent, then crop the part beyond the image.
    upsampled = tf.image.resize(
      grid[tf.newaxis],
      [grid_height * self.output_stride, grid_width * self.output_stride],
      method='bilinear',
    )[0]
    return upsampled[: image_size[0], : image_size[1]]
