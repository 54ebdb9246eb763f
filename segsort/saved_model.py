"""The SavedModel of a trained run: network and prototype bank inside, uint8
image of any size in, class ids out.

`export(segmenter, output_dir)` writes it; `segsort.export` is its command.
The serving signature runs the code of `inference.DenseOutputRunner` and the
predictors, traced for images of any size.
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
from segsort import io_utils

SIGNATURE_KEY = 'serving_default'
SETTINGS_FILE = os.path.join('assets.extra', 'segsort_export.json')


class SegmenterModule(tf.Module):
  """The tf.Module saved by `export`: a network, a bank, one serving function.

  `labels` runs the predictors' code (`inference.dense_output_grid`,
  `inference.upsample_to_image`, `inference.segment_embedding` and the k-NN
  votes, or the softmax), traced with every size a tensor so that one graph
  serves images of any size, and takes the argmax with ties to the lowest
  class.
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
      self._colour_weight = settings['colour_weight']

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
    # A loaded signature does not check the shape it declares: a grayscale
    # [H, W] image would otherwise fail deep inside with broadcast errors.
    image = tf.ensure_shape(image, [None, None, 3])
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    # An empty image failed deep inside ("Integer division by zero").
    with tf.control_dependencies(
      [
        tf.debugging.assert_positive(
          tf.stack([height, width]), message='image must be at least 1x1'
        )
      ]
    ):
      image = tf.identity(image)
    image = tf.cast(image, tf.float32) - tf.constant(data.IMG_MEAN)
    grid = inference.dense_output_grid(
      lambda windows: self.network(windows, training=False),
      image,
      self._window_size,
      self._strides,
      self._output_stride,
      normalize_windows=self._segsort,
    )
    if self._segsort:
      grid = common_utils.normalize_embedding(grid)
      pixel_embedding = common_utils.normalize_embedding(
        inference.upsample_to_image(grid, height, width, self._output_stride)
      )
      segment_ids, segment_prototypes = inference.segment_embedding(
        grid,
        pixel_embedding,
        self._num_clusters,
        self._kmeans_iterations,
        self._output_stride,
        image=image,
        colour_weight=self._colour_weight,
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
        inference.upsample_to_image(grid, height, width, self._output_stride),
        axis=-1,
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
    io_utils.give_usual_mode(temporary)
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
