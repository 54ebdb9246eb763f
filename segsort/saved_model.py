"""The SavedModel of a trained run: network and prototype bank inside, uint8
image of any size in, class ids out.

`export(segmenter, output_dir)` writes it; `segsort.export` is its command.
The serving signature computes what `inference.DenseOutputRunner` and the
predictors compute, traced for images of any size.
"""

import json
import os
import shutil
import tempfile

import tensorflow as tf

from network.segsort import common_utils
from network.segsort import eval_utils
from segsort import data
from segsort import inference

SIGNATURE_KEY = 'serving_default'
SETTINGS_FILE = os.path.join('assets.extra', 'segsort_export.json')


def _window_offsets(padded_length, window_length, stride, output_stride):
  """`inference.window_offsets` on scalar tensors: an int32 tensor `[n]`."""
  last = padded_length - window_length
  positions = tf.range(0, last, stride)
  offsets = tf.minimum(positions // output_stride * output_stride, last)
  # Non-decreasing, so unique keeps them sorted.
  return tf.unique(tf.concat([offsets, [last]], axis=0))[0]


class SegmenterModule(tf.Module):
  """The tf.Module saved by `export`: a network, a bank, one serving function.

  `labels` computes what `inference.DenseOutputRunner` and the predictors
  compute on an image of known size, with every shape a tensor, so that one
  graph serves images of any size: the same padding, window offsets and
  averaging of overlapping windows, the same upsampling, k-means and k-NN
  votes, and the argmax with ties to the lowest class.
  """

  def __init__(self, segmenter):
    """Takes the network, bank and settings of an api.Segmenter."""
    super().__init__(name='segsort')
    settings = segmenter.settings
    self.network = segmenter.network
    self._segsort = segmenter.bank is not None
    self._output_stride = int(segmenter.network.output_stride)
    self._window_size = tuple(settings['window_size'])
    self._strides = tuple(settings['strides'])
    self._num_classes = settings['num_classes']
    if self._segsort:
      self.prototype_features = tf.Variable(
        segmenter.bank.features, trainable=False, name='prototype_features'
      )
      self.prototype_labels = tf.Variable(
        segmenter.bank.labels, trainable=False, name='prototype_labels'
      )
      self._k = settings['k_in_nearest_neighbors']
      self._num_clusters = tuple(settings['num_clusters'])
      self._kmeans_iterations = settings['kmeans_iterations']

  def _output_grid(self, image):
    """`DenseOutputRunner.output_grid` of a float32 `[H, W, 3]` image."""
    stride = self._output_stride
    window_height, window_width = self._window_size
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    grid_height = (height + stride - 1) // stride
    grid_width = (width + stride - 1) // stride
    padded_height = tf.maximum(window_height, grid_height * stride)
    padded_width = tf.maximum(window_width, grid_width * stride)
    padded = tf.pad(
      image, [[0, padded_height - height], [0, padded_width - width], [0, 0]]
    )
    tops, lefts = tf.meshgrid(
      _window_offsets(padded_height, window_height, self._strides[0], stride),
      _window_offsets(padded_width, window_width, self._strides[1], stride),
      indexing='ij',
    )
    tops, lefts = tf.reshape(tops, [-1]), tf.reshape(lefts, [-1])
    # [windows, window_height, window_width, 3], in the runner's order.
    rows = tops[:, tf.newaxis] + tf.range(window_height)
    columns = lefts[:, tf.newaxis] + tf.range(window_width)
    windows = tf.gather(tf.gather(padded, rows), columns, axis=2, batch_dims=1)
    outputs = self.network(windows, training=False)
    if self._segsort:
      outputs = common_utils.normalize_embedding(outputs)
    cells = (window_height // stride, window_width // stride)
    cell_rows = tops[:, tf.newaxis] // stride + tf.range(cells[0])
    cell_columns = lefts[:, tf.newaxis] // stride + tf.range(cells[1])
    # [windows, cells[0], cells[1], 2]: every output cell's place.
    places = tf.stack(
      [
        tf.tile(cell_rows[:, :, tf.newaxis], [1, 1, cells[1]]),
        tf.tile(cell_columns[:, tf.newaxis, :], [1, cells[0], 1]),
      ],
      axis=-1,
    )
    padded_cells = tf.stack([padded_height // stride, padded_width // stride])
    # Summed in window order from zero, as the runner's add_n sums them.
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

  def _upsample_to_image(self, grid, height, width):
    """`DenseOutputRunner.upsample_to_image` with tensor sizes."""
    upsampled = tf.image.resize(
      grid[tf.newaxis],
      tf.shape(grid)[:2] * self._output_stride,
      method='bilinear',
    )[0]
    return upsampled[:height, :width]

  @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
  def labels(self, image):
    """Labels one RGB image.

    Args:
      image: A uint8 tensor `[H, W, 3]` of RGB values, H, W >= 1, without
        the mean subtracted.

    Returns:
      A dict with 'labels': a uint8 tensor `[H, W]` of class ids in
      `[0, num_classes)`.
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    image = tf.cast(image, tf.float32) - tf.constant(data.IMG_MEAN)
    grid = self._output_grid(image)
    if self._segsort:
      grid = common_utils.normalize_embedding(grid)
      pixel_embedding = common_utils.normalize_embedding(
        self._upsample_to_image(grid, height, width)
      )
      segment_ids, segment_prototypes = inference.segment_embedding(
        grid,
        pixel_embedding,
        self._num_clusters,
        self._kmeans_iterations,
        self._output_stride,
      )
      votes = eval_utils.knn_label_votes(
        segment_prototypes,
        self.prototype_features,
        self.prototype_labels,
        self._k,
        self._num_classes,
      )
      scores = tf.gather(votes, segment_ids)
    else:
      scores = tf.nn.softmax(
        self._upsample_to_image(grid, height, width), axis=-1
      )
    labels = tf.argmax(scores, axis=-1, output_type=tf.int32)
    return {'labels': tf.cast(labels, tf.uint8)}


def export(segmenter, output_dir):
  """Writes a SavedModel of a Segmenter (see the module docstring).

  Args:
    segmenter: An api.Segmenter.
    output_dir: The SavedModel directory to create; it must not exist.

  Returns:
    The settings recorded in `output_dir/assets.extra/segsort_export.json`.

  Raises:
    FileExistsError: If `output_dir` exists.
  """
  if os.path.exists(output_dir):
    raise FileExistsError(
      'Output directory %s exists; remove it or choose '
      'another --output_dir.' % output_dir
    )
  parent = os.path.dirname(os.path.abspath(output_dir))
  os.makedirs(parent, exist_ok=True)
  module = SegmenterModule(segmenter)
  settings = dict(
    segmenter.settings,
    mode=segmenter.config.mode,
    checkpoint=os.path.abspath(segmenter.checkpoint_prefix),
    signature=SIGNATURE_KEY,
    inputs={'image': 'uint8 [H, W, 3] RGB'},
    outputs={'labels': 'uint8 [H, W] class ids'},
  )
  temporary = tempfile.mkdtemp(
    dir=parent, prefix='.%s.' % os.path.basename(os.path.abspath(output_dir))
  )
  try:
    tf.saved_model.save(
      module, temporary, signatures={SIGNATURE_KEY: module.labels}
    )
    os.makedirs(
      os.path.join(temporary, os.path.dirname(SETTINGS_FILE)), exist_ok=True
    )
    with open(os.path.join(temporary, SETTINGS_FILE), 'w') as stream:
      json.dump(settings, stream, indent=2)
    os.rename(temporary, output_dir)
  except BaseException:
    shutil.rmtree(temporary, ignore_errors=True)
    raise
  return settings
