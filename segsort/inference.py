"""The inference engine behind every inference entry point.

One image goes through these stages:

1. Dense network outputs by sliding windows (`DenseOutputRunner`). The image
   is zero-padded (zero is the mean colour after mean subtraction) to at least
   one window and to a multiple of the output stride; every window of the
   image goes through the network in one batched call; window offsets are
   multiples of the output stride, so each window's output cells coincide
   with cells of the image's output grid, where overlapping windows are
   averaged. The grid has `ceil(H / s)` by `ceil(W / s)` cells for an `H`x`W`
   image and output stride `s`; SegSort embeddings are normalised per window
   before averaging.
2. SegSort (`SegSortPredictor`): the embedding grid is clustered by vMF
   k-means on embedding plus (y, x) location in [0, 1) from a
   `num_clusters` grid of initial clusters; the embedding is upsampled
   bilinearly to the image's size and renormalised, as in the original
   release's inference, and every pixel joins the most similar cluster of
   its 2 x 2 surrounding cells (`eval_utils.segment_by_kmeans_on_grid`; the
   original ran all k-means iterations on every pixel, which costs
   output_stride**2 times more and made the fine grids of street scenes
   take seconds per image on a CPU); every segment's
   prototype (its mean embedding direction) takes the votes of its k nearest
   prototypes of the annotated bank (`eval_utils.knn_label_votes`, chunked so
   that banks of millions fit), and the votes are painted onto the segment's
   pixels. Softmax baseline (`SoftmaxPredictor`): class probabilities of the
   logits upsampled bilinearly to the image's size.
3. Multi-scale (`predict_labels`): per-pixel scores of every scale and
   (optionally) left-right flip are resized to the image's size and summed as
   tensors; the label is the argmax (ties to the lowest class). With the
   single scale 1 and no flip, this is exactly single-scale inference, which
   therefore shares the code.

Prototype extraction (`extract_prototypes`) clusters at the resolution of
the embedding grid, as the original did at the network's output size: the
label of a grid cell is the label of the pixel at the cell's centre (nearest
neighbour). Location features are those of the image's own grid; the
original took them from the padded window grid although its embedding was
the unpadded image's, which shifted every location of a padded image.

Resumability: inference records its settings (checkpoint, prototype bank
digests, k, scales, flip, windows, k-means, colour map) in
`SAVE_DIR/settings.json`; with the same settings it skips, without decoding
them, the images whose gray and colour PNGs exist (writes are atomic, so
existing means complete), with other settings it deletes every prediction
and recomputes it. Prototype extraction caches every image's prototypes
under `SAVE_DIR/prototypes/cache/` by the same mechanism and writes the
final bank files only once all images are done, `prototype_sources.json`
last, recording the prototype count and the digest of every other bank
file, so that `load_prototype_bank` detects a bank rewritten only in part.
"""

import contextlib
import dataclasses
import glob
import hashlib
import json
import logging
import os
import time

import numpy as np
import tensorflow as tf

from network.segsort import common_utils
from network.segsort import eval_utils
from segsort import colormap as colormap_lib
from segsort import config as config_lib
from segsort import console
from segsort import data
from segsort import inference_flags
from segsort import io_utils
from segsort import overlay
from segsort import trainer

SEGSORT_MODES = ('segsort', 'segsort_unsup')
SOFTMAX_MODES = ('softmax',)

PROTOTYPE_FEATURES_FILE = 'prototype_features.npy'
PROTOTYPE_LABELS_FILE = 'prototype_labels.npy'
PROTOTYPE_IMAGE_INDICES_FILE = 'prototype_image_indices.npy'
PROTOTYPE_BOXES_FILE = 'prototype_boxes.npy'
PROTOTYPE_SOURCES_FILE = 'prototype_sources.json'

# The files of a bank; prototype_sources.json, written last, records the
# digest of each so that a bank rewritten only in part is detected.
PROTOTYPE_ARRAY_FILES = (PROTOTYPE_FEATURES_FILE, PROTOTYPE_LABELS_FILE,
                         PROTOTYPE_IMAGE_INDICES_FILE, PROTOTYPE_BOXES_FILE)

# The image scales of multi-scale inference, also those of a bare --scale_aug.
MULTI_SCALES = inference_flags.MULTI_SCALES

# The file recording the settings that made a directory's outputs.
SETTINGS_FILE = 'settings.json'

# Side of the square dummy batch that creates every variable before restore.
_DUMMY_IMAGE_SIZE = 64

_LOGGER = logging.getLogger(__name__)


class InferenceError(ValueError):
  """A checkpoint, prototype bank or setting that inference cannot use."""


@contextlib.contextmanager
def exit_on_known_errors():
  """Turns errors a user can fix (bad files, flags) into an exit message."""
  try:
    yield
  except (InferenceError, data.DataError, FileNotFoundError,
          trainer.CheckpointMismatchError) as error:
    raise SystemExit('error: %s' % error) from error


# ----------------------------------------------------------------------------
# Checkpoints.


def restore_network(restore_from, allowed_modes, embedding_dim=None):
  """Builds the network a checkpoint was trained with and restores it.

  Args:
    restore_from: A checkpoint prefix, or a directory (its latest checkpoint).
    allowed_modes: The training modes (`TrainConfig.mode`) the caller can use.
    embedding_dim: The --embedding_dim flag: None, or the embedding dimension
      the checkpoint must have (the checkpoint's is used either way).

  Returns:
    network: The restored SegmentationNetwork.
    config: The checkpoint's TrainConfig.
    checkpoint_prefix: The resolved checkpoint prefix.

  Raises:
    FileNotFoundError: If there is no such checkpoint or no config.json
      beside it.
    InferenceError: Naming the checkpoint if its mode is not allowed or its
      embedding dimension is not `embedding_dim`.
    trainer.CheckpointMismatchError: Naming the checkpoint and every
      variable that is missing from it or has another shape there.
  """
  checkpoint_prefix = config_lib.resolve_checkpoint(restore_from)
  config = config_lib.load_config_for_checkpoint(checkpoint_prefix)
  if config.mode not in allowed_modes:
    raise InferenceError(
        'Checkpoint %s was trained in mode %r; this tool needs one of %s.'
        % (checkpoint_prefix, config.mode, list(allowed_modes)))
  check_embedding_dim(embedding_dim, config, checkpoint_prefix)
  network = config_lib.build_network_from_config(config)
  # Every variable must exist before the check and restore, else restoring
  # would be deferred and unchecked.
  network(tf.zeros([1, _DUMMY_IMAGE_SIZE, _DUMMY_IMAGE_SIZE, 3]),
          training=False)
  trainer.check_checkpoint_fits({'model': network}, checkpoint_prefix)
  # The optimizer, step and memory bank of training checkpoints are unused.
  tf.train.Checkpoint(model=network).restore(
      checkpoint_prefix).expect_partial().assert_existing_objects_matched()
  return network, config, checkpoint_prefix


def check_embedding_dim(embedding_dim, config, checkpoint_prefix):
  """Checks an --embedding_dim flag against a checkpoint's TrainConfig.

  Args:
    embedding_dim: The flag's value, or None when not given.
    config: The checkpoint's TrainConfig.
    checkpoint_prefix: The checkpoint, for the message.

  Raises:
    InferenceError: If the flag is given and differs from the checkpoint's.
  """
  if embedding_dim not in (None, config.embedding_dim):
    raise InferenceError(
        '--embedding_dim %d differs from the %d of checkpoint %s.'
        % (embedding_dim, config.embedding_dim, checkpoint_prefix))


# ----------------------------------------------------------------------------
# Sliding windows.


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
  offsets = {min(position // output_stride * output_stride, last)
             for position in range(0, last, stride)}
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
    self.window_size = tuple(_round_up(int(length), self.output_stride)
                             for length in window_size)
    self.strides = tuple(int(stride) for stride in strides)
    for stride, length in zip(self.strides, self.window_size):
      if not 1 <= stride <= length:
        raise InferenceError(
            'Window strides %s must lie in [1, window size %s] so that '
            'windows cover the image.' % (self.strides, self.window_size))
    self._normalize_windows = normalize_windows
    self._network = network
    self._predict_windows = tf.function(self._call_network,
                                        reduce_retracing=True)

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
    padded = tf.pad(image, [[0, padded_height - height],
                            [0, padded_width - width], [0, 0]])
    corners = [(y, x)
               for y in window_offsets(padded_height, window_height,
                                       self.strides[0], stride)
               for x in window_offsets(padded_width, window_width,
                                       self.strides[1], stride)]
    windows = tf.stack([padded[y:y + window_height, x:x + window_width]
                        for y, x in corners])
    outputs = self._predict_windows(windows)
    cells = (window_height // stride, window_width // stride)
    if tuple(outputs.shape[1:3]) != cells:
      raise InferenceError(
          'The network maps %dx%d windows to %dx%d outputs; output stride %d '
          'implies %dx%d.' % (window_height, window_width, outputs.shape[1],
                              outputs.shape[2], stride, cells[0], cells[1]))
    if self._normalize_windows:
      outputs = common_utils.normalize_embedding(outputs)
    padded_cells = (padded_height // stride, padded_width // stride)
    window_counts = np.zeros(padded_cells, np.float32)
    placed_outputs = []
    for output, (y, x) in zip(tf.unstack(outputs), corners):
      top, left = y // stride, x // stride
      window_counts[top:top + cells[0], left:left + cells[1]] += 1
      placed_outputs.append(tf.pad(output, [
          [top, padded_cells[0] - top - cells[0]],
          [left, padded_cells[1] - left - cells[1]], [0, 0]]))
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
        method='bilinear')[0]
    return upsampled[:image_size[0], :image_size[1]]


# ----------------------------------------------------------------------------
# Prototype banks.


@dataclasses.dataclass
class PrototypeBank:
  """Prototypes of annotated segments.

  Attributes:
    features: float32 `[P, D]` unit vectors.
    labels: int32 `[P]` class ids.
    image_indices: int32 `[P]`, each prototype's image in `sources['images']`,
      or None when not loaded.
    boxes: int32 `[P, 4]` (y0, x0, y1, x1) in the source image's pixels, end
      exclusive, or None when not loaded.
    sources: The parsed prototype_sources.json, or None when the bank has
      none (a bank of the original release).
    identity: What identifies the bank's contents (its directory and the
      SHA-256 of its files), recorded with the predictions made from it.
  """
  features: np.ndarray
  labels: np.ndarray
  image_indices: np.ndarray | None = None
  boxes: np.ndarray | None = None
  sources: dict | None = None
  identity: dict | None = None


def _load_npy(path, what):
  if not os.path.exists(path):
    raise InferenceError('Missing %s file %s; run segsort.extract_prototypes '
                         'first.' % (what, path))
  try:
    return np.load(path)
  except (OSError, ValueError) as error:
    raise InferenceError('Cannot read %s file %s: %s'
                         % (what, path, error)) from error


def file_sha256(path):
  """The hexadecimal SHA-256 digest of a file's bytes."""
  digest = hashlib.sha256()
  with open(path, 'rb') as stream:
    for block in iter(lambda: stream.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def _load_sources(sources_path):
  try:
    with open(sources_path) as stream:
      sources = json.load(stream)
  except (OSError, ValueError) as error:
    raise InferenceError('Cannot read prototype sources file %s: %s'
                         % (sources_path, error)) from error
  if not isinstance(sources, dict):
    raise InferenceError('Prototype sources file %s holds no JSON object.'
                         % sources_path)
  return sources


def load_prototype_bank(prototype_dir, embedding_dim, num_classes,
                        with_sources=False, checkpoint_prefix=None):
  """Loads and checks a bank written by `extract_prototypes`.

  prototype_sources.json, when present (banks of the original release have
  only the features and labels), is always read: its prototype count and the
  digests it records of the other files must match them, so that a bank
  whose rewrite was interrupted (prototype_sources.json is written last) is
  detected.

  Args:
    prototype_dir: The directory holding the prototype files.
    embedding_dim: The embedding dimension of the model that will query it.
    num_classes: The number of classes; labels must lie in [0, num_classes).
    with_sources: Whether to load every prototype's image and box as well.
    checkpoint_prefix: The resolved checkpoint that will query the bank; a
      warning is logged when the bank was extracted with another one.

  Returns:
    A PrototypeBank.

  Raises:
    InferenceError: Naming the file that is missing, empty or inconsistent.
  """
  features_path = os.path.join(prototype_dir, PROTOTYPE_FEATURES_FILE)
  labels_path = os.path.join(prototype_dir, PROTOTYPE_LABELS_FILE)
  sources_path = os.path.join(prototype_dir, PROTOTYPE_SOURCES_FILE)
  features = _load_npy(features_path, 'prototype features')
  labels = _load_npy(labels_path, 'prototype labels')
  if features.ndim != 2:
    raise InferenceError('%s has shape %s; expected [prototypes, dimensions].'
                         % (features_path, features.shape))
  if features.shape[0] == 0:
    raise InferenceError('%s holds an empty prototype bank; extract '
                         'prototypes from a list with labels.' % features_path)
  if features.shape[1] != embedding_dim:
    raise InferenceError(
        '%s holds %d-dimensional prototypes but the model embeds in %d '
        'dimensions; extract prototypes with this model.'
        % (features_path, features.shape[1], embedding_dim))
  if labels.shape != features.shape[:1]:
    raise InferenceError('%s has shape %s; %s has %d prototypes.'
                         % (labels_path, labels.shape, features_path,
                            features.shape[0]))
  if labels.min() < 0 or labels.max() >= num_classes:
    raise InferenceError('%s holds labels in [%d, %d]; expected [0, %d).'
                         % (labels_path, labels.min(), labels.max(),
                            num_classes))
  bank = PrototypeBank(features.astype(np.float32), labels.astype(np.int32))
  warn_of_missing_classes(bank.labels, num_classes,
                          'The prototype bank %s' % prototype_dir)
  bank.identity = {
      'prototype_dir': os.path.abspath(prototype_dir),
      'sha256': {name: file_sha256(os.path.join(prototype_dir, name))
                 for name in (PROTOTYPE_FEATURES_FILE, PROTOTYPE_LABELS_FILE)},
  }
  if os.path.exists(sources_path):
    bank.sources = _load_sources(sources_path)
    _check_sources(bank, prototype_dir, sources_path)
    if (checkpoint_prefix is not None and
        bank.sources.get('checkpoint') != os.path.abspath(checkpoint_prefix)):
      _LOGGER.warning(
          'The prototypes of %s were extracted with checkpoint %s, not with '
          '%s which will query them; extract them with this checkpoint '
          'unless that is intended.', prototype_dir,
          bank.sources.get('checkpoint'), os.path.abspath(checkpoint_prefix))
  if not with_sources:
    return bank
  if bank.sources is None:
    raise InferenceError('Missing prototype sources file %s; rerun '
                         'segsort.extract_prototypes.' % sources_path)
  indices_path = os.path.join(prototype_dir, PROTOTYPE_IMAGE_INDICES_FILE)
  boxes_path = os.path.join(prototype_dir, PROTOTYPE_BOXES_FILE)
  bank.image_indices = _load_npy(indices_path, 'prototype image indices')
  bank.boxes = _load_npy(boxes_path, 'prototype boxes')
  if (bank.image_indices.shape != labels.shape or
      bank.boxes.shape != (labels.shape[0], 4)):
    raise InferenceError('%s (shape %s) or %s (shape %s) does not match the '
                         '%d prototypes of %s.'
                         % (indices_path, bank.image_indices.shape, boxes_path,
                            bank.boxes.shape, labels.shape[0], features_path))
  return bank


def warn_of_missing_classes(labels, num_classes, bank_name):
  """Warns when a bank's labels leave out classes, which k-NN never predicts.

  Args:
    labels: The bank's prototype labels.
    num_classes: The number of classes.
    bank_name: Names the bank (and the list it comes from) in the warning.
  """
  missing = np.setdiff1d(np.arange(num_classes), labels)
  if missing.size:
    _LOGGER.warning(
        '%s holds no prototype of class %s (of [0, %d)): k-NN inference '
        'never predicts %s.', bank_name, ', '.join(map(str, missing)),
        num_classes, 'it' if missing.size == 1 else 'them')


def _check_sources(bank, prototype_dir, sources_path):
  """Checks prototype_sources.json against the bank's arrays and files."""
  num_prototypes = len(bank.labels)
  if bank.sources.get('num_prototypes') != num_prototypes:
    raise InferenceError(
        '%s describes %s prototypes but %s and %s hold %d: the bank is '
        'inconsistent (an interrupted extraction?); rerun '
        'segsort.extract_prototypes.'
        % (sources_path, bank.sources.get('num_prototypes'),
           os.path.join(prototype_dir, PROTOTYPE_FEATURES_FILE),
           os.path.join(prototype_dir, PROTOTYPE_LABELS_FILE), num_prototypes))
  recorded = bank.sources.get('sha256', {})
  for name, digest in recorded.items():
    path = os.path.join(prototype_dir, name)
    actual = (bank.identity['sha256'].get(name) or
              (file_sha256(path) if os.path.exists(path) else None))
    if actual != digest:
      raise InferenceError(
          '%s %s; %s records the file of another extraction: the bank is '
          'inconsistent (an interrupted extraction?); rerun '
          'segsort.extract_prototypes.'
          % (path, 'is missing' if actual is None else 'has changed',
             sources_path))


# ----------------------------------------------------------------------------
# Segmentation.


def cluster_grid(num_clusters):
  """A k-means grid as (clusters along y, along x) from an int n or a pair."""
  if isinstance(num_clusters, int):
    return (num_clusters, num_clusters)
  return tuple(int(count) for count in num_clusters)


def segment_embedding(grid_embedding, pixel_embedding, num_clusters,
                      kmeans_iterations, output_stride):
  """Cuts one image into segments by vMF k-means with location.

  `eval_utils.segment_by_kmeans_on_grid`: k-means on the output grid, then
  every pixel joins the nearest cluster of its 2 x 2 surrounding cells.

  Args:
    grid_embedding: A float32 tensor `[h, w, D]` of unit vectors.
    pixel_embedding: A float32 tensor `[H, W, D]` of unit vectors, the grid
      upsampled to the image.
    num_clusters: The initial grid: n (n x n) or (along y, along x).
    kmeans_iterations: The number of k-means iterations.
    output_stride: Pixels per grid cell.

  Returns:
    segment_ids: An int32 tensor `[H, W]` in `[0, num_segments)`, numbered
      in order of first appearance (no empty segment).
    segment_prototypes: A float32 tensor `[num_segments, D]`.
  """
  return eval_utils.segment_by_kmeans_on_grid(
      grid_embedding, pixel_embedding, list(cluster_grid(num_clusters)),
      kmeans_iterations, output_stride)


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


class SegSortPredictor:
  """Per-pixel k-NN class votes of one image view."""

  def __init__(self, network, bank, *, window_size, strides,
               k_in_nearest_neighbors, num_classes, num_clusters,
               kmeans_iterations):
    """Binds a network to a prototype bank.

    Args:
      network: A restored SegSort SegmentationNetwork.
      bank: A PrototypeBank.
      window_size: (height, width) of the sliding windows.
      strides: (vertical, horizontal) window strides.
      k_in_nearest_neighbors: The number of neighbours that vote.
      num_classes: The number of classes.
      num_clusters: The k-means grid: n (n x n) or (along y, along x).
      kmeans_iterations: The number of k-means iterations.
    """
    self.num_classes = num_classes
    self._runner = DenseOutputRunner(network, window_size, strides,
                                     normalize_windows=True)
    self._bank_features = tf.constant(bank.features)
    self._bank_labels = tf.constant(bank.labels)
    self._k = k_in_nearest_neighbors
    self._num_clusters = cluster_grid(num_clusters)
    self._kmeans_iterations = kmeans_iterations
    self._bank_identity = bank.identity
    self._pixel_votes = tf.function(self._compute_pixel_votes,
                                    reduce_retracing=True)
    self._neighbours = tf.function(self._compute_neighbours,
                                   reduce_retracing=True)

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
        'prototype_bank': self._bank_identity,
    }

  def embeddings(self, image):
    """The unit embeddings of a mean-subtracted image `[H, W, 3]`.

    Returns:
      grid_embedding: A float32 tensor `[ceil(H / s), ceil(W / s), D]`.
      pixel_embedding: A float32 tensor `[H, W, D]`, the grid upsampled.
    """
    grid = common_utils.normalize_embedding(self._runner.output_grid(image))
    return grid, common_utils.normalize_embedding(
        self._runner.upsample_to_image(grid, image.shape[:2]))

  def _segment(self, grid_embedding, pixel_embedding):
    return segment_embedding(grid_embedding, pixel_embedding,
                             self._num_clusters, self._kmeans_iterations,
                             self._runner.output_stride)

  def _compute_pixel_votes(self, grid_embedding, pixel_embedding):
    segment_ids, segment_prototypes = self._segment(grid_embedding,
                                                    pixel_embedding)
    votes = eval_utils.knn_label_votes(
        segment_prototypes, self._bank_features, self._bank_labels, self._k,
        self.num_classes)
    return tf.gather(votes, segment_ids)

  def _compute_neighbours(self, grid_embedding, pixel_embedding):
    segment_ids, segment_prototypes = self._segment(grid_embedding,
                                                    pixel_embedding)
    similarities, indices = eval_utils.nearest_prototypes(
        segment_prototypes, self._bank_features, self._k)
    votes = eval_utils.label_votes(indices, self._bank_labels,
                                   self.num_classes)
    return segment_ids, votes, similarities, indices

  def class_scores(self, image):
    """k-NN votes of every pixel's segment.

    Args:
      image: A float32 tensor `[H, W, 3]`, mean-subtracted.

    Returns:
      A float32 tensor `[H, W, num_classes]`, each pixel's votes summing to k
      (or the bank size when smaller).
    """
    return self._pixel_votes(*self.embeddings(image))

  def neighbours(self, image):
    """Segments an image and finds every segment's k nearest prototypes.

    Args:
      image: A float32 tensor `[H, W, 3]`, mean-subtracted.

    Returns:
      A SegmentNeighbours.
    """
    outputs = self._neighbours(*self.embeddings(image))
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
    self._runner = DenseOutputRunner(network, window_size, strides,
                                     normalize_windows=False)

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
    logits = self._runner.upsample_to_image(self._runner.output_grid(image),
                                            image.shape[:2])
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
      scaled_size = [max(1, round(height * scale)), max(1, round(width * scale))]
      scaled_image = tf.image.resize(image[tf.newaxis], scaled_size,
                                     method='bilinear')[0]
    for flipped in ((False, True) if flip else (False,)):
      view = tf.reverse(scaled_image, axis=[1]) if flipped else scaled_image
      scores = predictor.class_scores(view)
      if flipped:
        scores = tf.reverse(scores, axis=[1])
      if scale != 1:
        scores = tf.image.resize(scores[tf.newaxis], [height, width],
                                 method='bilinear')[0]
      score_sum += scores
  return tf.argmax(score_sum, axis=-1, output_type=tf.int32).numpy().astype(
      np.uint8)


# ----------------------------------------------------------------------------
# Running over a list.


def load_colormap(spec, data_dir=None):
  """Loads the colour map `[num_colors, 3]` that --colormap asks for.

  Args:
    spec: A name of `colormap.NAMED_COLORMAPS` ('voc', 'cityscapes'), a .npy
      file, or a text file of `R G B` rows; None for the data set's own
      colours (`data_dir/colormap.txt`, written by the tools that import a
      data set) when that file exists, else VOC's.
    data_dir: The data set's DATAROOT, or None.

  Returns:
    A uint8 array `[num_colors, 3]`.

  Raises:
    InferenceError: Naming the file if it cannot be read or has a bad shape.
  """
  if spec is None and data_dir is not None:
    data_set_colormap = os.path.join(data_dir, colormap_lib.COLORMAP_FILE)
    if os.path.exists(data_set_colormap):
      spec = data_set_colormap
  if spec is None:
    return colormap_lib.voc_colormap()
  if spec in colormap_lib.NAMED_COLORMAPS:
    return colormap_lib.NAMED_COLORMAPS[spec]()
  try:
    colormap = np.load(spec) if spec.endswith('.npy') else np.loadtxt(
        spec, ndmin=2)
  except (OSError, ValueError) as error:
    raise InferenceError('Cannot read colour map %s: %s'
                         % (spec, error)) from error
  if colormap.ndim != 2 or colormap.shape[1] != 3:
    raise InferenceError('Colour map %s has shape %s; expected [N, 3].'
                         % (spec, colormap.shape))
  return np.clip(colormap, 0, 255).astype(np.uint8)


def _print_summary(what, num_done, num_skipped, seconds):
  rate = num_done / seconds if seconds > 0 else 0.0
  print('%s: %d images in %.1f s (%.2f images/s), %d skipped as already done.'
        % (what, num_done, seconds, rate, num_skipped))


def predict_list(predictor, *, checkpoint_prefix, data_dir, data_list,
                 save_dir, scales=(1.0,), flip=False, colormap=None,
                 ignore_label=255, apply_exif_orientation=False,
                 save_overlay=False):
  """Predicts every image of a list and writes gray/ID.png and color/ID.png.

  The run's settings (checkpoint, prototype bank, predictor settings, scales,
  flip, colour map, data_dir) are written to SAVE_DIR/settings.json. When
  they equal the recorded ones, images whose two PNGs exist already are
  skipped (their files were written atomically, so they are complete) and
  not even decoded; otherwise every prediction of save_dir is deleted and
  recomputed.

  Args:
    predictor: A SegSortPredictor or SoftmaxPredictor.
    checkpoint_prefix: The resolved checkpoint of the predictor's network.
    data_dir: The directory list paths are relative to.
    data_list: A list of images (labels optional and unused).
    save_dir: The output directory.
    scales: Image scale factors.
    flip: Whether to add left-right flips.
    colormap: A uint8 array `[num_colors, 3]` covering the classes; VOC's
      when None.
    ignore_label: Passed to the input pipeline (labels are not used).
    apply_exif_orientation: Whether to turn images as their EXIF orientation
      asks (predictions then have the turned size).
    save_overlay: Whether to write overlay/ID.png too (segsort.overlay: the
      image blended with the colour labels, segment boundaries in white);
      images without one are then not skipped.

  Returns:
    The number of images predicted (not skipped).

  Raises:
    InferenceError: If the colour map has fewer colours than classes.
  """
  if colormap is None:
    colormap = colormap_lib.voc_colormap()
  if len(colormap) < predictor.num_classes:
    raise InferenceError(
        'The colour map (--colormap, else DATA_DIR/%s) has %d colours for '
        '--num_classes %d; pass --colormap voc or a map of at least %d '
        'colours.' % (colormap_lib.COLORMAP_FILE, len(colormap),
                      predictor.num_classes, predictor.num_classes))
  entries = data.read_data_list(data_dir, data_list, require_labels=False)
  _check_unique_ids(entries)
  gray_dir = os.path.join(save_dir, 'gray')
  color_dir = os.path.join(save_dir, 'color')
  overlay_dir = os.path.join(save_dir, 'overlay')
  settings = dict(
      predictor.settings(),
      checkpoint=os.path.abspath(checkpoint_prefix),
      data_dir=os.path.abspath(data_dir),
      scales=[float(scale) for scale in scales], flip=bool(flip),
      colormap=np.asarray(colormap[:predictor.num_classes]).tolist(),
      apply_exif_orientation=bool(apply_exif_orientation))
  prepare_output_dir(os.path.join(save_dir, SETTINGS_FILE), settings,
                     [os.path.join(gray_dir, '*.png'),
                      os.path.join(color_dir, '*.png'),
                      os.path.join(overlay_dir, '*.png')],
                     'Predictions in')

  def output_paths(entry):
    return (os.path.join(gray_dir, entry.image_id + '.png'),
            os.path.join(color_dir, entry.image_id + '.png')) + (
                (os.path.join(overlay_dir, entry.image_id + '.png'),)
                if save_overlay else ())

  to_predict = [entry for entry in entries
                if not all(os.path.exists(path)
                           for path in output_paths(entry))]
  num_skipped = len(entries) - len(to_predict)
  num_done = 0
  start = time.time()
  for entry, example in console.progress(
      zip(to_predict, data.entries_dataset(
          to_predict, ignore_label=ignore_label,
          apply_exif_orientation=apply_exif_orientation)),
      total=len(to_predict), desc='Predicting', unit='image'):
    gray_path, color_path, *overlay_path = output_paths(entry)
    labels = predict_labels(predictor, example['image'], scales, flip)
    io_utils.save_png(gray_path, labels)
    io_utils.save_png(color_path, colormap_lib.colorize(labels, colormap))
    if save_overlay:
      image = np.clip(np.rint(example['image'].numpy() + data.IMG_MEAN), 0,
                      255).astype(np.uint8)
      io_utils.save_png(overlay_path[0], overlay.draw_overlay(
          image, labels, colormap, overlay.overlay_segments(
              predictor, example['image'], labels, scales, flip)))
    num_done += 1
  _print_summary('Predicted', num_done, num_skipped, time.time() - start)
  return num_done


def _check_unique_ids(entries):
  first_entry_of_id = {}
  for entry in entries:
    previous = first_entry_of_id.setdefault(entry.image_id, entry)
    if previous is not entry:
      raise data.DataError(
          '%s and %s both name image id %s; outputs are named by image id.'
          % (previous.location(), entry.location(), entry.image_id))


# ----------------------------------------------------------------------------
# Prototype extraction.


def extract_image_prototypes(embedding, labels, num_clusters,
                             kmeans_iterations, ignore_label):
  """Extracts the prototypes of one annotated image and their members.

  `eval_utils.extract_trained_prototypes` (k-means over valid cells with
  location, majority label per cluster, prototype from the cells carrying it)
  on the image's grid of cells, with the location features and initial grid
  of that grid.

  Args:
    embedding: A float32 tensor `[h, w, D]` of unit vectors.
    labels: An int32 tensor `[h, w]`, with at least one cell not
      `ignore_label`.
    num_clusters: The initial grid: n (n x n) or (along y, along x).
    kmeans_iterations: The number of k-means iterations.
    ignore_label: The label of cells to leave out.

  Returns:
    prototype_features: A float32 tensor `[P, D]`.
    prototype_labels: An int32 tensor `[P]`.
    cell_prototypes: An int32 tensor `[h, w]`, each cell's prototype or -1.
  """
  num_clusters = cluster_grid(num_clusters)
  shape = tf.shape(labels)
  location_features = common_utils.generate_location_features(
      [shape[0], shape[1]], 'float')
  initial_labels = common_utils.initialize_cluster_labels(
      list(num_clusters), [shape[0], shape[1]])
  prototype_features, prototype_labels, _, cell_prototypes = (
      eval_utils.extract_trained_prototypes(
          tf.reshape(embedding, [shape[0] * shape[1], -1]),
          tf.reshape(location_features, [-1, 2]),
          tf.reshape(initial_labels, [-1]),
          num_clusters[0] * num_clusters[1], kmeans_iterations,
          tf.reshape(labels, [-1]), 1, ignore_label,
          return_pixel_prototypes=True))
  return (prototype_features, prototype_labels,
          tf.reshape(cell_prototypes, shape))


def prototype_boxes(cell_prototypes, num_prototypes, output_stride,
                    image_size):
  """Bounding boxes of prototypes in image pixels.

  Args:
    cell_prototypes: An int array `[h, w]` of prototype ids or -1.
    num_prototypes: The number of prototypes P.
    output_stride: Pixels per cell along each axis.
    image_size: (H, W) of the image.

  Returns:
    An int32 array `[P, 4]`: (y0, x0, y1, x1), end exclusive, clipped to the
    image.
  """
  rows, columns = np.nonzero(cell_prototypes >= 0)
  owners = cell_prototypes[rows, columns]
  boxes = np.empty((num_prototypes, 4), np.int64)
  boxes[:, :2] = np.iinfo(np.int64).max
  boxes[:, 2:] = -1
  np.minimum.at(boxes[:, 0], owners, rows)
  np.minimum.at(boxes[:, 1], owners, columns)
  np.maximum.at(boxes[:, 2], owners, rows)
  np.maximum.at(boxes[:, 3], owners, columns)
  boxes[:, :2] *= output_stride
  boxes[:, 2:] = (boxes[:, 2:] + 1) * output_stride
  boxes[:, 2] = np.minimum(boxes[:, 2], image_size[0])
  boxes[:, 3] = np.minimum(boxes[:, 3], image_size[1])
  return boxes.astype(np.int32)


def labels_at_cell_centres(labels, output_stride):
  """Samples a label map at the centre pixel of every output-grid cell.

  Args:
    labels: An int array `[H, W]`.
    output_stride: Pixels per cell along each axis.

  Returns:
    An int32 array `[ceil(H / s), ceil(W / s)]`.
  """
  height, width = labels.shape
  rows = np.minimum(np.arange(0, height, output_stride) + output_stride // 2,
                    height - 1)
  columns = np.minimum(np.arange(0, width, output_stride) + output_stride // 2,
                       width - 1)
  return labels[np.ix_(rows, columns)].astype(np.int32)


def _describe_changes(old, new):
  """Names the settings that differ between two settings dicts."""
  if old is None:
    return 'no settings recorded'
  changed = sorted(key for key in set(old) | set(new)
                   if old.get(key) != new.get(key))
  return '; '.join('%s: %s -> %s' % (key, json.dumps(old.get(key))[:200],
                                     json.dumps(new.get(key))[:200])
                   for key in changed)


def prepare_output_dir(settings_path, settings, output_patterns, what):
  """Deletes outputs made with other settings, then records the settings.

  Outputs of a directory are reused only when its settings file holds the
  same settings; when it holds others, or none, or cannot be read, the
  change is printed and every file matching `output_patterns` is deleted,
  so that all of them are recomputed.

  Args:
    settings_path: The JSON settings file of the outputs.
    settings: A JSON-ready dict of everything the outputs depend on.
    output_patterns: glob patterns of the output files.
    what: Names the outputs in the message, e.g. 'Prototype cache'.
  """
  settings = json.loads(json.dumps(settings))
  recorded = None
  if os.path.exists(settings_path):
    try:
      with open(settings_path) as stream:
        recorded = json.load(stream)
    except (OSError, ValueError):
      recorded = None
  if recorded == settings:
    return
  stale_files = sorted(path for pattern in output_patterns
                       for path in glob.glob(pattern))
  if stale_files:
    print('%s %s were made with other settings (%s); clearing %d files.'
          % (what, os.path.dirname(os.path.abspath(settings_path)),
             _describe_changes(recorded, settings), len(stale_files)))
    for path in stale_files:
      os.remove(path)
  io_utils.save_json(settings_path, settings)


def extract_prototypes(network, checkpoint_prefix, *, data_dir, data_list,
                       save_dir, window_size, strides, num_classes,
                       ignore_label, num_clusters, kmeans_iterations,
                       apply_exif_orientation=False):
  """Extracts the prototypes of every annotated image of a list.

  Writes to `save_dir/prototypes/`: prototype_features.npy float32 `[P, D]`,
  prototype_labels.npy int32 `[P]` (the original release's files), and, so
  that a prediction can be explained by the segments it retrieved,
  prototype_image_indices.npy int32 `[P]` (index into the images of
  prototype_sources.json) and prototype_boxes.npy int32 `[P, 4]` ((y0, x0,
  y1, x1) in image pixels, end exclusive). prototype_sources.json, written
  last, lists the images (id and path relative to data_dir) with the
  settings. See the module docstring for resolution and resumability. Time
  and memory grow linearly with the number of images: per-image arrays are
  concatenated once at the end (the original re-concatenated the whole bank
  after every image).

  Args:
    network: A restored SegSort SegmentationNetwork.
    checkpoint_prefix: Its checkpoint, recorded with the cache and sources.
    data_dir: The directory list paths are relative to.
    data_list: A list of images with labels.
    save_dir: The output directory.
    window_size: (height, width) of the sliding windows.
    strides: (vertical, horizontal) window strides.
    num_classes: The number of classes; label values outside
      `[0, num_classes)` (other than `ignore_label`) are ignored, with a
      warning per file and a count, as in training.
    ignore_label: The label of pixels to leave out.
    num_clusters: The k-means grid: n (n x n) or (along y, along x).
    kmeans_iterations: The number of k-means iterations.
    apply_exif_orientation: Whether to turn images and labels as their EXIF
      orientation asks (recorded, so that segsort.explain reads the images
      the same way).

  Returns:
    The number of prototypes P.

  Raises:
    InferenceError: If no image yields a prototype.
  """
  runner = DenseOutputRunner(network, window_size, strides,
                             normalize_windows=True)
  prototype_dir = os.path.join(save_dir, 'prototypes')
  cache_dir = os.path.join(prototype_dir, 'cache')
  settings = {
      'checkpoint': os.path.abspath(checkpoint_prefix),
      'data_dir': os.path.abspath(data_dir),
      'window_size': list(runner.window_size),
      'strides': list(runner.strides),
      'num_classes': num_classes,
      'ignore_label': ignore_label,
      'num_clusters': list(cluster_grid(num_clusters)),
      'kmeans_iterations': kmeans_iterations,
      'apply_exif_orientation': bool(apply_exif_orientation),
  }
  prepare_output_dir(os.path.join(cache_dir, SETTINGS_FILE), settings,
                     [os.path.join(cache_dir, '*.npz')], 'Prototypes cached in')
  image_prototypes = tf.function(
      lambda embedding, labels: extract_image_prototypes(
          embedding, labels, num_clusters, kmeans_iterations, ignore_label),
      reduce_retracing=True)
  entries = data.read_data_list(data_dir, data_list, require_labels=True)
  _check_unique_ids(entries)

  def cache_path(entry):
    return os.path.join(cache_dir, entry.image_id + '.npz')

  to_extract = [entry for entry in entries
                if not os.path.exists(cache_path(entry))]
  examples = iter(data.entries_dataset(
      to_extract, ignore_label=ignore_label,
      apply_exif_orientation=apply_exif_orientation))
  survey = data.LabelSurvey(data_list, num_classes, ignore_label)
  features, labels, image_indices, boxes = [], [], [], []
  num_done = 0
  num_skipped = len(entries) - len(to_extract)
  start = time.time()
  with console.progress(total=len(to_extract), desc='Extracting prototypes',
                        unit='image') as progress:
    for image_index, entry in enumerate(entries):
      if os.path.exists(cache_path(entry)):
        with np.load(cache_path(entry)) as cached:
          image_features, image_labels, image_boxes = (
              cached['features'], cached['labels'], cached['boxes'])
      else:
        image_features, image_labels, image_boxes = _extract_one(
            runner, image_prototypes, entry, next(examples), survey,
            num_classes, ignore_label)
        with io_utils.atomic_path(cache_path(entry)) as temporary:
          np.savez(temporary, features=image_features, labels=image_labels,
                   boxes=image_boxes)
        num_done += 1
        progress.update()
      features.append(image_features)
      labels.append(image_labels)
      boxes.append(image_boxes)
      image_indices.append(np.full(len(image_labels), image_index, np.int32))
  _print_summary('Extracted prototypes', num_done, num_skipped,
                 time.time() - start)
  survey.log_out_of_range_total()
  features = np.concatenate(features).astype(np.float32)
  num_prototypes = len(features)
  if num_prototypes == 0:
    raise InferenceError('No labelled pixel in the images of %s: no '
                         'prototype to write.' % data_list)
  labels = np.concatenate(labels).astype(np.int32)
  warn_of_missing_classes(labels, num_classes, 'The prototype bank of %s (%s)'
                          % (data_list, prototype_dir))
  arrays = {
      PROTOTYPE_FEATURES_FILE: features,
      PROTOTYPE_LABELS_FILE: labels,
      PROTOTYPE_IMAGE_INDICES_FILE: np.concatenate(image_indices),
      PROTOTYPE_BOXES_FILE: np.concatenate(boxes).astype(np.int32),
  }
  for name, array in arrays.items():
    io_utils.save_npy(os.path.join(prototype_dir, name), array)
  # Written last: it records the count and digests of the files above, so
  # that a bank whose rewrite was interrupted fails load_prototype_bank.
  io_utils.save_json(
      os.path.join(prototype_dir, PROTOTYPE_SOURCES_FILE),
      dict(settings,
           data_list=os.path.abspath(data_list),
           num_prototypes=num_prototypes,
           embedding_dim=int(features.shape[1]),
           sha256={name: file_sha256(os.path.join(prototype_dir, name))
                   for name in arrays},
           box_format='y0 x0 y1 x1, image pixels, end exclusive',
           images=[{'image_id': entry.image_id,
                    'image_path': os.path.relpath(entry.image_path, data_dir)}
                   for entry in entries]))
  print('Wrote %d prototypes of %d images to %s'
        % (num_prototypes, len(entries), prototype_dir))
  return num_prototypes


def _extract_one(runner, image_prototypes, entry, example, survey,
                 num_classes, ignore_label):
  """Prototypes of one image: (features [P, D], labels [P], boxes [P, 4])."""
  image = example['image']
  label = example['label'][..., 0].numpy()
  survey.add(entry, label)
  label = np.where(data.out_of_range_mask(label, num_classes, ignore_label),
                   ignore_label, label)
  embedding = runner.output_grid(image)
  cell_labels = labels_at_cell_centres(label, runner.output_stride)
  if not np.any(cell_labels != ignore_label):
    return (np.zeros((0, embedding.shape[-1]), np.float32),
            np.zeros((0,), np.int32), np.zeros((0, 4), np.int32))
  features, labels, cell_prototypes = image_prototypes(
      common_utils.normalize_embedding(embedding), tf.constant(cell_labels))
  boxes = prototype_boxes(cell_prototypes.numpy(), int(labels.shape[0]),
                          runner.output_stride, label.shape)
  return features.numpy(), labels.numpy(), boxes


def predict_list_from_flags(predictor, args, checkpoint_prefix):
  """Runs `predict_list` as the inference flags ask.

  Args:
    predictor: A SegSortPredictor or SoftmaxPredictor.
    args: Parsed flags of `add_model_and_data_flags` and `add_output_flags`.
    checkpoint_prefix: The resolved checkpoint of the predictor's network.

  Returns:
    The number of images predicted (not skipped).
  """
  return predict_list(
      predictor, checkpoint_prefix=checkpoint_prefix, data_dir=args.data_dir,
      data_list=args.data_list, save_dir=args.save_dir, scales=args.scale_aug,
      flip=args.flip_aug,
      colormap=load_colormap(args.colormap, args.data_dir),
      ignore_label=args.ignore_label,
      apply_exif_orientation=args.apply_exif_orientation,
      save_overlay=args.save_overlay)
