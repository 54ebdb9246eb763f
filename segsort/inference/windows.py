"""Dense network outputs of a whole image by sliding windows.

The image is zero-padded (zero is the mean colour after mean subtraction) to
at least one window and to a multiple of the output stride; every window of
the image goes through the network in one batched call; window offsets are
multiples of the output stride, so each window's output cells coincide with
cells of the image's output grid, where overlapping windows are averaged.

`dense_output_grid` and `upsample_to_image` take every size as a tensor, so
that the same code runs eagerly (`DenseOutputRunner`, the predictors) and
traced for images of any size (the SavedModel's serving function).
"""

import tensorflow as tf

from network.segsort import common_utils
from segsort import errors


def _round_up(value, multiple):
  return -(-value // multiple) * multiple


def window_offset_tensor(padded_length, window_length, stride, output_stride):
  """Offsets of windows that tile `[0, padded_length)` along one axis.

  Args:
    padded_length: The padded image length, a multiple of `output_stride`
      and at least `window_length`; an int or an int32 scalar tensor.
    window_length: The window length, a multiple of `output_stride`.
    stride: The distance between window starts before rounding, >= 1.
    output_stride: The network's output stride.

  Returns:
    An int32 tensor `[n]` of sorted distinct offsets, multiples of
    `output_stride` (rounded down), the last one
    `padded_length - window_length`.
  """
  last = padded_length - window_length
  positions = tf.range(0, last, stride)
  offsets = tf.minimum(positions // output_stride * output_stride, last)
  # Non-decreasing, so unique keeps them sorted.
  return tf.unique(tf.concat([offsets, [last]], axis=0))[0]


def window_offsets(padded_length, window_length, stride, output_stride):
  """`window_offset_tensor` on Python ints: a sorted list of ints."""
  return (
    window_offset_tensor(padded_length, window_length, stride, output_stride)
    .numpy()
    .tolist()
  )


def _check_window_outputs(outputs, window_size, cells, output_stride):
  """Raises InferenceError if the network's window outputs are not `cells`.

  Shapes unknown while tracing are not checked.
  """
  output_cells = tuple(outputs.shape[1:3])
  if None in output_cells or output_cells == cells:
    return
  raise errors.InferenceError(
    'The network maps %dx%d windows to %dx%d outputs; output stride %d '
    'implies %dx%d.' % (window_size + output_cells + (output_stride,) + cells)
  )


def dense_output_grid(
  call_network, image, window_size, strides, output_stride, normalize_windows
):
  """Computes a network's output for every cell of an image's grid.

  Args:
    call_network: Maps float32 windows `[N, h, w, 3]` to outputs
      `[N, h / s, w / s, C]` (s = `output_stride`).
    image: A float32 tensor `[H, W, 3]`, mean-subtracted; H and W may be
      unknown while tracing.
    window_size: (h, w) of the windows, multiples of `output_stride`.
    strides: (vertical, horizontal) distances between windows, in [1, h]
      and [1, w].
    output_stride: The network's output stride s.
    normalize_windows: Whether to L2-normalise every window's output before
      averaging (embeddings).

  Returns:
    A float32 tensor `[ceil(H / s), ceil(W / s), C]`: the mean of the
    outputs of the windows that cover each cell.

  Raises:
    InferenceError: If the network's outputs are not `window_size / s` cells.
  """
  window_height, window_width = window_size
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  grid_height = (height + output_stride - 1) // output_stride
  grid_width = (width + output_stride - 1) // output_stride
  padded_height = tf.maximum(window_height, grid_height * output_stride)
  padded_width = tf.maximum(window_width, grid_width * output_stride)
  padded = tf.pad(
    image, [[0, padded_height - height], [0, padded_width - width], [0, 0]]
  )
  tops, lefts = tf.meshgrid(
    window_offset_tensor(
      padded_height, window_height, strides[0], output_stride
    ),
    window_offset_tensor(padded_width, window_width, strides[1], output_stride),
    indexing='ij',
  )
  tops, lefts = tf.reshape(tops, [-1]), tf.reshape(lefts, [-1])
  # [windows, window_height, window_width, 3], rows of windows first.
  rows = tops[:, tf.newaxis] + tf.range(window_height)
  columns = lefts[:, tf.newaxis] + tf.range(window_width)
  windows = tf.gather(tf.gather(padded, rows), columns, axis=2, batch_dims=1)
  outputs = call_network(windows)
  cells = (window_height // output_stride, window_width // output_stride)
  _check_window_outputs(outputs, tuple(window_size), cells, output_stride)
  if normalize_windows:
    outputs = common_utils.normalize_embedding(outputs)
  cell_rows = tops[:, tf.newaxis] // output_stride + tf.range(cells[0])
  cell_columns = lefts[:, tf.newaxis] // output_stride + tf.range(cells[1])
  # [windows, cells[0], cells[1], 2]: every output cell's place.
  places = tf.stack(
    [
      tf.tile(cell_rows[:, :, tf.newaxis], [1, 1, cells[1]]),
      tf.tile(cell_columns[:, tf.newaxis, :], [1, cells[0], 1]),
    ],
    axis=-1,
  )
  padded_cells = tf.stack(
    [padded_height // output_stride, padded_width // output_stride]
  )
  output_sum = tf.scatter_nd(
    places, outputs, tf.concat([padded_cells, tf.shape(outputs)[-1:]], axis=0)
  )
  window_counts = tf.scatter_nd(
    places, tf.ones(tf.shape(places)[:-1]), padded_cells
  )
  return (
    output_sum[:grid_height, :grid_width]
    / window_counts[:grid_height, :grid_width, tf.newaxis]
  )


def upsample_to_image(grid, height, width, output_stride):
  """Bilinearly upsamples an output grid to its image's pixels.

  Args:
    grid: A float tensor `[ceil(H / s), ceil(W / s), C]` (s = output_stride).
    height: H, an int or an int32 scalar tensor.
    width: W, likewise.
    output_stride: s.

  Returns:
    A float32 tensor `[H, W, C]`.
  """
  # Cell j covers pixels [j * s, (j + 1) * s): resize to the whole cells'
  # extent, then crop the part beyond the image.
  upsampled = tf.image.resize(
    grid[tf.newaxis], tf.shape(grid)[:2] * output_stride, method='bilinear'
  )[0]
  return upsampled[:height, :width]


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
      InferenceError: If a window side is < 1 or a stride is not in
        [1, window size].
    """
    if min(window_size) < 1:
      raise errors.InferenceError(
        'The window size %s must be at least 1x1 pixels.'
        % (tuple(window_size),)
      )
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
    # Traced (one graph for every image size after the second): op by op,
    # the window gathers and scatters made a 360x480 frame 13-27% slower
    # than slicing windows in Python; traced, 12-23% faster.
    self._output_grid = tf.function(
      self._dense_output_grid, reduce_retracing=True
    )

  def _dense_output_grid(self, image):
    return dense_output_grid(
      lambda windows: self._network(windows, training=False),
      image,
      self.window_size,
      self.strides,
      self.output_stride,
      self._normalize_windows,
    )

  def output_grid(self, image):
    """`dense_output_grid` of a float32 `[H, W, 3]` image, mean-subtracted."""
    return self._output_grid(image)

  def upsample_to_image(self, grid, image_size):
    """`upsample_to_image` of a grid to its image's size (H, W)."""
    return upsample_to_image(
      grid, image_size[0], image_size[1], self.output_stride
    )
