"""A short Python API: load a trained run once, then label images.

    from segsort import api
    segmenter = api.load('snapshots/run', 'OUT/prototypes')
    labels = segmenter.predict(image)  # uint8 RGB [H, W, 3] -> uint8 [H, W]

The network, the number of classes and the k-means settings come from the
run's config.json; the prediction is that of single-scale inference
(`segsort.inference_segsort`, `segsort.inference_softmax`) with the same
settings, which are the commands' defaults unless given to `load`. The
image mean is subtracted here. `segsort.export` writes the same model as a
SavedModel.
"""

import dataclasses

import numpy as np

from segsort import console

# Before TensorFlow loads, as the entry points do: its start-up lines
# (oneDNN, CPU features) are dropped unless SEGSORT_VERBOSE_TF=1 or the
# caller set TF_CPP_MIN_LOG_LEVEL, or imported TensorFlow first.
console.quiet_tensorflow()

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from segsort import data
from segsort import flags
from segsort import inference
from segsort import inference_flags

DEFAULT_WINDOW_SIZE = inference_flags.DEFAULT_WINDOW_SIZE
DEFAULT_STRIDES = inference_flags.DEFAULT_STRIDES
DEFAULT_K_IN_NEAREST_NEIGHBORS = inference_flags.DEFAULT_K_IN_NEAREST_NEIGHBORS
DEFAULT_COLOUR_WEIGHT = inference_flags.DEFAULT_COLOUR_WEIGHT


@dataclasses.dataclass
class Prediction:
  """A SegSort prediction with the evidence behind it.

  Attributes:
    labels: uint8 `[H, W]` class ids in `[0, num_classes)`.
    segment_ids: int32 `[H, W]` segment of every pixel, in
      `[0, num_segments)`.
    neighbours: An inference.SegmentNeighbours: every segment's k-NN votes
      float32 `[num_segments, num_classes]`, cosine similarities float32
      `[num_segments, k]` (most similar first) and prototype indices int32
      `[num_segments, k]`, rows of `Segmenter.bank`.
  """

  labels: np.ndarray
  segment_ids: np.ndarray
  neighbours: inference.SegmentNeighbours


@dataclasses.dataclass(frozen=True)
class InferenceOptions:
  """The single-scale inference settings a Segmenter predicts with.

  The defaults are those of `segsort.inference_segsort`; the k-means ones
  (None) take the run's config.json values.

  Attributes:
    window_size: (height, width) of the sliding windows, pixels >= 1,
      rounded up to a multiple of the network's output stride (60 becomes
      64 at stride 8; `Segmenter.settings` gives the size used).
    strides: (vertical, horizontal) window strides, in [1, window size].
    k_in_nearest_neighbors: The number of prototypes that vote, >= 1; more
      than the bank holds is lowered to its size, with a warning.
    num_clusters: The k-means grid of an image: n (n x n) or (rows,
      columns); None for config.num_clusters.
    kmeans_iterations: The k-means iterations, >= 0 (0 keeps the initial
      grid); None for the config's.
    colour_weight: The weight of colour when pixels join clusters, a
      number in [0, 1e6] (`inference.segment_embedding`); 0, the
      original's, leaves it out.
  """

  window_size: tuple = DEFAULT_WINDOW_SIZE
  strides: tuple = DEFAULT_STRIDES
  k_in_nearest_neighbors: int = DEFAULT_K_IN_NEAREST_NEIGHBORS
  num_clusters: object = None
  kmeans_iterations: object = None
  colour_weight: float = DEFAULT_COLOUR_WEIGHT

  def __post_init__(self):
    """Refuses nonsense by name, before any run is read.

    Raises:
      inference.InferenceError: Naming the first option that is not of
        its kind and range.
    """
    for name in ('window_size', 'strides'):
      _check_pair(name, getattr(self, name))
    inference.check_integer_setting(
      'k_in_nearest_neighbors', self.k_in_nearest_neighbors, 1
    )
    if isinstance(self.num_clusters, (tuple, list)):
      _check_pair('num_clusters', self.num_clusters)
    elif self.num_clusters is not None:
      inference.check_integer_setting('num_clusters', self.num_clusters, 1)
    if self.kmeans_iterations is not None:
      inference.check_integer_setting(
        'kmeans_iterations',
        self.kmeans_iterations,
        0,
        flags.MAX_KMEANS_ITERATIONS,
      )
    inference.check_colour_weight(self.colour_weight)


def _check_pair(name, value):
  """Raises InferenceError unless `value` is two integers >= 1."""
  if not isinstance(value, (tuple, list)) or len(value) != 2:
    raise inference.InferenceError(
      '%s must be two integers (rows, columns), got %r' % (name, value)
    )
  for item in value:
    inference.check_integer_setting(name, item, 1)


# The options only SegSort's k-NN inference uses.
_SEGSORT_OPTIONS = (
  'k_in_nearest_neighbors',
  'num_clusters',
  'kmeans_iterations',
  'colour_weight',
)


def _check_options_fit_mode(config, options, checkpoint_prefix):
  """Raises InferenceError if a softmax run is given SegSort's options.

  Before, they were dropped without a word (and left out of the settings).
  """
  if config.mode in inference.SEGSORT_MODES:
    return
  defaults = InferenceOptions()
  given = [
    name
    for name in _SEGSORT_OPTIONS
    if getattr(options, name) != getattr(defaults, name)
  ]
  if given:
    raise inference.InferenceError(
      'Checkpoint %s is a softmax model; %s %s only to SegSort runs.'
      % (
        checkpoint_prefix,
        ', '.join(given),
        'applies' if len(given) == 1 else 'apply',
      )
    )


def _check_bank_fits_mode(config, has_bank, checkpoint_prefix):
  """Raises InferenceError unless SegSort runs come with a bank, softmax not."""
  segsort_mode = config.mode in inference.SEGSORT_MODES
  if segsort_mode and not has_bank:
    raise inference.InferenceError(
      'Checkpoint %s is a SegSort model: give the prototype_dir (--prototype_dir) '
      'of its prototypes (segsort.extract_prototypes).' % checkpoint_prefix
    )
  if not segsort_mode and has_bank:
    raise inference.InferenceError(
      'Checkpoint %s is a softmax model, which uses no prototypes; give '
      'no prototype_dir (--prototype_dir).' % checkpoint_prefix
    )


class Segmenter:
  """A restored network (and prototype bank) that labels RGB images.

  Attributes:
    config: The run's TrainConfig (config.json).
    checkpoint_prefix: The restored checkpoint.
    network: The restored SegmentationNetwork.
    bank: The inference.PrototypeBank of SegSort runs; None for softmax.
    settings: The inference settings, a JSON-ready dict (window_size,
      strides, num_classes and, for SegSort, k_in_nearest_neighbors,
      num_clusters, kmeans_iterations, colour_weight, prototype_bank).
  """

  def __init__(
    self, network, config, checkpoint_prefix, bank=None, options=None
  ):
    """Binds a restored network to its bank; `load` is the usual way in.

    Args:
      network: A restored SegmentationNetwork (`inference.restore_network`).
      config: Its TrainConfig.
      checkpoint_prefix: Its checkpoint.
      bank: An inference.PrototypeBank for SegSort modes; None for softmax.
      options: The InferenceOptions; None for the defaults.

    Raises:
      inference.InferenceError: If a SegSort config comes without a bank, a
        softmax config with one or with SegSort's options (k, k-means,
        colour), or an option is out of its range.
    """
    _check_bank_fits_mode(config, bank is not None, checkpoint_prefix)
    options = options or InferenceOptions()
    _check_options_fit_mode(config, options, checkpoint_prefix)
    self.config = config
    self.checkpoint_prefix = checkpoint_prefix
    self.network = network
    self.bank = bank
    window_and_classes = {
      'window_size': options.window_size,
      'strides': options.strides,
      'num_classes': config.num_classes,
    }
    if bank is None:
      self._predictor = inference.SoftmaxPredictor(
        network, **window_and_classes
      )
    else:
      self._predictor = inference.SegSortPredictor(
        network,
        bank,
        k_in_nearest_neighbors=options.k_in_nearest_neighbors,
        num_clusters=(
          config.num_clusters
          if options.num_clusters is None
          else options.num_clusters
        ),
        kmeans_iterations=(
          config.kmeans_iterations
          if options.kmeans_iterations is None
          else options.kmeans_iterations
        ),
        colour_weight=options.colour_weight,
        **window_and_classes,
      )
    self.settings = self._predictor.settings()

  @property
  def num_classes(self):
    return self.config.num_classes

  def predict(self, image, with_segments=False):
    """Labels an RGB image (single scale, as the inference commands do).

    Args:
      image: A uint8 array `[H, W, 3]` of RGB values in [0, 255], any
        H, W >= 1, without the mean subtracted (e.g. a decoded JPEG).
      with_segments: Also return the segments and their nearest prototypes
        (SegSort only).

    Returns:
      A uint8 array `[H, W]` of class ids in `[0, num_classes)`; with
      `with_segments`, a Prediction holding it.

    Raises:
      ValueError: If the image is not a uint8 `[H, W, 3]` array, or
        `with_segments` is asked of a softmax model.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
      raise ValueError(
        'image must be a uint8 array [height, width, 3] of RGB '
        'values; got a %s array of shape %s' % (image.dtype, image.shape)
      )
    if min(image.shape) < 1:
      raise ValueError(
        'image must be a uint8 array [height, width, 3] with height and '
        'width >= 1; got shape %s' % (image.shape,)
      )
    mean_subtracted = tf.constant(image, tf.float32) - tf.constant(
      data.IMG_MEAN
    )
    if not with_segments:
      return inference.predict_labels(self._predictor, mean_subtracted)
    if self.bank is None:
      raise ValueError(
        'with_segments needs a SegSort model; %s is a softmax '
        'model' % self.checkpoint_prefix
      )
    neighbours = self._predictor.neighbours(mean_subtracted)
    # The argmax of every segment's votes, ties to the lowest class, as in
    # inference.predict_labels.
    segment_labels = np.argmax(neighbours.votes, axis=1).astype(np.uint8)
    return Prediction(
      labels=segment_labels[neighbours.segment_ids],
      segment_ids=neighbours.segment_ids,
      neighbours=neighbours,
    )


def load(run, prototype_dir=None, *, run_argument='run', **settings):
  """Restores a trained run for prediction, everything else from config.json.

  Args:
    run: A run's snapshot directory (its latest checkpoint) or a checkpoint
      prefix, with the run's config.json beside it.
    prototype_dir: The prototypes of a SegSort run (SAVE_DIR/prototypes of
      segsort.extract_prototypes); None for a softmax run.
    run_argument: What a missing run is called in the message: this
      parameter's name, or the flag of a command built on this function.
    **settings: Fields of InferenceOptions (window_size, strides,
      k_in_nearest_neighbors, num_clusters, kmeans_iterations,
      colour_weight) that replace its defaults.

  Returns:
    A Segmenter.

  Raises:
    FileNotFoundError: If there is no checkpoint or config.json.
    inference.InferenceError: Naming the file of a bad prototype bank, a
      bank missing (SegSort) or superfluous (softmax), or SegSort's options
      given for a softmax run.
    network.checkpoints.CheckpointMismatchError: If the checkpoint does not fit its
      config.json's network.
  """
  options = InferenceOptions(**settings)
  network, config, checkpoint_prefix = inference.restore_network(
    run,
    inference.SEGSORT_MODES + inference.SOFTMAX_MODES,
    argument=run_argument,
  )
  # Checked before the bank is read, which may take a while.
  _check_bank_fits_mode(config, prototype_dir is not None, checkpoint_prefix)
  _check_options_fit_mode(config, options, checkpoint_prefix)
  bank = None
  if prototype_dir is not None:
    bank = inference.load_prototype_bank(
      prototype_dir,
      config.embedding_dim,
      config.num_classes,
      checkpoint_prefix=checkpoint_prefix,
    )
  return Segmenter(network, config, checkpoint_prefix, bank, options)
