"""Per-pixel class scores of one image view, and labels over views.

SegSort (`SegSortPredictor`): the embedding grid is clustered by vMF k-means
on embedding plus (y, x) location in [0, 1); every pixel joins the most
similar cluster of its 2 x 2 surrounding cells (weighing its colour against
the cluster's when `colour_weight` > 0); every segment's prototype
takes the votes of its k nearest prototypes of the annotated bank, and the
votes are painted onto the segment's pixels. Softmax baseline
(`SoftmaxPredictor`): class probabilities of the logits upsampled bilinearly
to the image's size. `predict_labels` sums the scores of scaled and flipped
views.
"""

import dataclasses
import logging
import numbers

import numpy as np
import tensorflow as tf

from network.segsort import common_utils
from network.segsort import eval_utils
from network.segsort import kmeans_segmentation
from segsort import errors
from segsort.inference import windows

_LOGGER = logging.getLogger(__name__)


def check_integer_setting(name, value, minimum, maximum=None):
  """Raises InferenceError unless `value` is an integer in [minimum,
  maximum] (None: unbounded).

  For settings that reach the predictors from Python rather than flags
  (segsort.api); bool is no integer here (True is no count).
  """
  if (
    not isinstance(value, numbers.Integral)
    or isinstance(value, bool)
    or value < minimum
    or (maximum is not None and value > maximum)
  ):
    raise errors.InferenceError(
      '%s must be an integer >= %d%s, got %r'
      % (
        name,
        minimum,
        '' if maximum is None else ' and <= %d' % maximum,
        value,
      )
    )


def check_colour_weight(colour_weight):
  """Raises InferenceError unless `colour_weight` is a number in [0, 1e6].

  (`kmeans_segmentation.MAX_COLOUR_WEIGHT`, beyond which float32 scores
  overflow and colour alone decides anyway.)
  """
  problem = kmeans_segmentation.colour_weight_problem(colour_weight)
  if problem:
    raise errors.InferenceError(problem)


class CoarseEmbeddingNote:
  """Warns once when an image's embedding is coarser than the k-means grid.

  The grid's cells are whole embedding cells (common_utils.
  initialize_cluster_labels), so on an embedding with fewer cells per axis
  than the grid asks for, every cell starts as its own cluster: fewer and
  larger segments than asked, silently. Images differ in size, so this is
  told per image, once per run, not refused up front.
  """

  def __init__(self, num_clusters, output_stride):
    self._grid = common_utils.cluster_grid(num_clusters)
    self._output_stride = output_stride
    self._told = False

  def check(self, embedding_shape, image_shape):
    """Logs the warning for the first image whose embedding is too coarse.

    Args:
      embedding_shape: The image's output grid (rows, columns, ...).
      image_shape: The image's (height, width, ...), for the message.
    """
    rows, columns = int(embedding_shape[0]), int(embedding_shape[1])
    if self._told or (self._grid[0] <= rows and self._grid[1] <= columns):
      return
    self._told = True
    # Named as both flags and segsort.api name the setting.
    _LOGGER.warning(
      'The k-means grid num_clusters %d,%d asks for more clusters per axis '
      'than the %dx%d embedding of a %dx%d image has cells (output stride '
      '%d): such images are cut into one segment per cell, fewer than '
      'asked. A coarser grid, or larger images, avoids it.',
      self._grid[0],
      self._grid[1],
      rows,
      columns,
      int(image_shape[0]),
      int(image_shape[1]),
      self._output_stride,
    )


def segment_embedding(
  grid_embedding,
  pixel_embedding,
  num_clusters,
  kmeans_iterations,
  output_stride,
  image=None,
  colour_weight=0.0,
):
  """Cuts one image into segments by vMF k-means with location.

  `eval_utils.segment_by_kmeans_on_grid`: k-means on the output grid, then
  every pixel joins the nearest cluster of its 2 x 2 surrounding cells,
  with its colour weighed in when `colour_weight` > 0.

  Args:
    grid_embedding: A float32 tensor `[h, w, D]` of unit vectors.
    pixel_embedding: A float32 tensor `[H, W, D]` of unit vectors, the grid
      upsampled to the image.
    num_clusters: The initial grid: n (n x n) or (along y, along x).
    kmeans_iterations: The number of k-means iterations.
    output_stride: Pixels per grid cell.
    image: A float32 tensor `[H, W, 3]` of RGB values in [0, 255], with or
      without the mean subtracted; needed when `colour_weight` > 0.
    colour_weight: A float in [0, 1e6], the weight of the squared distance
      of colours in [0, 1] (RGB / 255) against the cosine similarity.

  Returns:
    segment_ids: An int32 tensor `[H, W]` in `[0, num_segments)`, numbered
      in order of first appearance (no empty segment).
    segment_prototypes: A float32 tensor `[num_segments, D]`.
  """
  return eval_utils.segment_by_kmeans_on_grid(
    grid_embedding,
    pixel_embedding,
    common_utils.cluster_grid(num_clusters),
    kmeans_iterations,
    output_stride,
    # Colour is read only when it weighs.
    pixel_colour=image / 255.0 if colour_weight and image is not None else None,
    colour_weight=colour_weight,
  )


@dataclasses.dataclass
class SegmentNeighbours:
  """One image's segments and their nearest prototypes (for explanations).

  Attributes:
    segment_ids: int32 `[H, W]`.
    votes: float32 `[num_segments, num_classes]` k-NN label counts.
    similarities: float32 `[num_segments, k]` cosines, most similar first.
    prototype_indices: int32 `[num_segments, k]` rows of the bank.
  """

  segment_ids: np.ndarray
  votes: np.ndarray
  similarities: np.ndarray
  prototype_indices: np.ndarray


def warn_of_other_windows(bank_sources, runner):
  """Warns when a bank's prototypes were extracted with other windows.

  An image's embedding depends on the windows it is cut into: a window
  larger than the image pads it, and the head's pooling sees the padding.
  Segments embedded with other windows than the prototypes meet them in
  another space: on CamVid val, one unsupervised model gave 31.04% mIoU
  with the extraction's 360x480 windows and 9.24% with the commands'
  default 720x720 (README: "Windows: predict with the extraction's").

  Args:
    bank_sources: The bank's prototype_sources.json record, or None (a
      bank of the original release, which records no windows).
    runner: The predictor's windows.DenseOutputRunner.
  """
  if not bank_sources or 'window_size' not in bank_sources:
    return
  extracted = (
    tuple(bank_sources['window_size']),
    tuple(bank_sources.get('strides', ())),
  )
  used = (runner.window_size, runner.strides)
  if extracted == used:
    return
  _LOGGER.warning(
    'The prototypes were extracted with %dx%d windows (strides %s), these '
    'predictions use %dx%d (strides %s): an embedding depends on its '
    'windows (a window larger than the image pads it), so segments and '
    'prototypes may lie in other spaces (on CamVid val one model fell from '
    '31.0%% to 9.2%% mIoU so); to predict with the extraction\'s windows, '
    'give --input_size %d,%d --strides %s (window_size and strides in '
    'segsort.api).',
    *extracted[0],
    ','.join(map(str, extracted[1])),
    *used[0],
    ','.join(map(str, used[1])),
    *extracted[0],
    ','.join(map(str, extracted[1])),
  )


class SegSortPredictor:
  """Per-pixel k-NN class votes of one image view."""

  def __init__(
    self,
    network,
    bank,
    *,
    window_size,
    strides,
    k_in_nearest_neighbors,
    num_classes,
    num_clusters,
    kmeans_iterations,
    colour_weight=0.0,
  ):
    """Binds a network to a prototype bank.

    Args:
      network: A restored SegSort SegmentationNetwork.
      bank: A PrototypeBank.
      window_size: (height, width) of the sliding windows.
      strides: (vertical, horizontal) window strides.
      k_in_nearest_neighbors: The number of neighbours that vote, >= 1; a
        k above the bank's size is lowered to it (with a warning), and
        `settings` records the k used.
      num_classes: The number of classes.
      num_clusters: The k-means grid: n (n x n) or (along y, along x).
      kmeans_iterations: The number of k-means iterations, >= 0 (0 keeps
        the initial grid).
      colour_weight: The weight of colour when pixels join clusters, a
        number in [0, 1e6] (`segment_embedding`); 0, the original's, leaves
        colour out.

    Raises:
      InferenceError: If k is not an integer >= 1, the k-means iterations
        not one >= 0, the colour weight not a number in [0, 1e6], or the
        window does not fit (windows.DenseOutputRunner).
    """
    # The flags refuse these already; the Python API comes here directly.
    # Zero iterations keep the initial grid, as in training.
    check_integer_setting('k_in_nearest_neighbors', k_in_nearest_neighbors, 1)
    check_integer_setting('kmeans_iterations', kmeans_iterations, 0)
    check_colour_weight(colour_weight)
    num_prototypes = len(bank.features)
    if k_in_nearest_neighbors > num_prototypes:
      _LOGGER.warning(
        'k_in_nearest_neighbors %d is more than the %d prototypes of the '
        'bank; every segment is voted on by all %d.',
        k_in_nearest_neighbors,
        num_prototypes,
        num_prototypes,
      )
      k_in_nearest_neighbors = num_prototypes
    self.num_classes = num_classes
    self._runner = windows.DenseOutputRunner(
      network, window_size, strides, normalize_windows=True
    )
    warn_of_other_windows(bank.sources, self._runner)
    self._bank_features = tf.constant(bank.features)
    self._bank_labels = tf.constant(bank.labels)
    self._k = k_in_nearest_neighbors
    self._num_clusters = common_utils.cluster_grid(num_clusters)
    self._coarse_embedding_note = CoarseEmbeddingNote(
      num_clusters, self._runner.output_stride
    )
    self._kmeans_iterations = kmeans_iterations
    # + 0.0 records -0.0 as 0.0.
    self._colour_weight = float(colour_weight) + 0.0
    self._bank_identity = bank.identity
    self._pixel_votes = tf.function(
      self._compute_pixel_votes, reduce_retracing=True
    )
    self._neighbours = tf.function(
      self._compute_neighbours, reduce_retracing=True
    )

  def settings(self):
    """What determines this predictor's outputs, as a JSON-ready dict."""
    return {
      'method': 'segsort',
      'segmentation': 'kmeans_on_grid',
      'window_size': list(self._runner.window_size),
      'strides': list(self._runner.strides),
      'num_classes': self.num_classes,
      'k_in_nearest_neighbors': self._k,
      'num_clusters': list(self._num_clusters),
      'kmeans_iterations': self._kmeans_iterations,
      'colour_weight': self._colour_weight,
      'prototype_bank': self._bank_identity,
    }

  def embeddings(self, image):
    """The unit embeddings of a mean-subtracted image `[H, W, 3]`.

    Returns:
      grid_embedding: A float32 tensor `[ceil(H / s), ceil(W / s), D]`.
      pixel_embedding: A float32 tensor `[H, W, D]`, the grid upsampled.
    """
    grid = common_utils.normalize_embedding(self._runner.output_grid(image))
    self._coarse_embedding_note.check(grid.shape, image.shape)
    return grid, common_utils.normalize_embedding(
      self._runner.upsample_to_image(grid, image.shape[:2])
    )

  def _segment(self, image, grid_embedding, pixel_embedding):
    return segment_embedding(
      grid_embedding,
      pixel_embedding,
      self._num_clusters,
      self._kmeans_iterations,
      self._runner.output_stride,
      image=image,
      colour_weight=self._colour_weight,
    )

  def _compute_pixel_votes(self, image, grid_embedding, pixel_embedding):
    segment_ids, segment_prototypes = self._segment(
      image, grid_embedding, pixel_embedding
    )
    votes = eval_utils.knn_label_votes(
      segment_prototypes,
      self._bank_features,
      self._bank_labels,
      self._k,
      self.num_classes,
    )
    return tf.gather(votes, segment_ids)

  def _compute_neighbours(self, image, grid_embedding, pixel_embedding):
    segment_ids, segment_prototypes = self._segment(
      image, grid_embedding, pixel_embedding
    )
    similarities, indices = eval_utils.nearest_prototypes(
      segment_prototypes, self._bank_features, self._k
    )
    votes = eval_utils.label_votes(indices, self._bank_labels, self.num_classes)
    return segment_ids, votes, similarities, indices

  def class_scores(self, image):
    """k-NN votes of every pixel's segment.

    Args:
      image: A float32 tensor `[H, W, 3]`, mean-subtracted.

    Returns:
      A float32 tensor `[H, W, num_classes]`, each pixel's votes summing to k
      (or the bank size when smaller).
    """
    return self._pixel_votes(image, *self.embeddings(image))

  def neighbours(self, image):
    """Segments an image and finds every segment's k nearest prototypes.

    Args:
      image: A float32 tensor `[H, W, 3]`, mean-subtracted.

    Returns:
      A SegmentNeighbours.
    """
    outputs = self._neighbours(image, *self.embeddings(image))
    return SegmentNeighbours(*(output.numpy() for output in outputs))


class SoftmaxPredictor:
  """Per-pixel class probabilities of the softmax baseline for one view."""

  def __init__(self, network, *, window_size, strides, num_classes):
    """Wraps a restored softmax network.

    Args:
      network: A SegmentationNetwork with `num_classes` outputs.
      window_size: (height, width) of the sliding windows.
      strides: (vertical, horizontal) window strides.
      num_classes: The number of classes.
    """
    self.num_classes = num_classes
    self._runner = windows.DenseOutputRunner(
      network, window_size, strides, normalize_windows=False
    )

  def settings(self):
    """What determines this predictor's outputs, as a JSON-ready dict."""
    return {
      'method': 'softmax',
      'window_size': list(self._runner.window_size),
      'strides': list(self._runner.strides),
      'num_classes': self.num_classes,
    }

  def class_scores(self, image):
    """Softmax of the logits upsampled to the image, `[H, W, num_classes]`."""
    logits = self._runner.upsample_to_image(
      self._runner.output_grid(image), image.shape[:2]
    )
    return tf.nn.softmax(logits, axis=-1)


def predict_labels(predictor, image, scales=(1.0,), flip=False):
  """Labels an image by the summed scores of its scaled (and flipped) views.

  Args:
    predictor: A SegSortPredictor or SoftmaxPredictor.
    image: A float32 tensor `[H, W, 3]`, mean-subtracted.
    scales: Image scale factors.
    flip: Whether to add the left-right flip of every scale.

  Returns:
    A uint8 array `[H, W]` of class ids; ties go to the lowest class.
  """
  height, width = int(image.shape[0]), int(image.shape[1])
  score_sum = tf.zeros([height, width, predictor.num_classes])
  for scale in scales:
    if scale == 1:
      scaled_image = image
    else:
      scaled_size = [
        max(1, round(height * scale)),
        max(1, round(width * scale)),
      ]
      scaled_image = tf.image.resize(
        image[tf.newaxis], scaled_size, method='bilinear'
      )[0]
    for flipped in (False, True) if flip else (False,):
      view = tf.reverse(scaled_image, axis=[1]) if flipped else scaled_image
      scores = predictor.class_scores(view)
      if flipped:
        scores = tf.reverse(scores, axis=[1])
      if scale != 1:
        scores = tf.image.resize(
          scores[tf.newaxis], [height, width], method='bilinear'
        )[0]
      score_sum += scores
  return (
    tf.argmax(score_sum, axis=-1, output_type=tf.int32).numpy().astype(np.uint8)
  )
