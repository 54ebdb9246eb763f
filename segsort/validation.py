"""Validation during training: mIoU every --eval_every steps, best checkpoint.

    python -m segsort.train_segsort ... --eval_every 1000 \
        --eval_list DATAROOT/val.txt --eval_images 100 \
        --eval_prototype_images 200

Every --eval_every steps the trainer calls `Validator.evaluate`: for SegSort
(supervised or not) it extracts the prototypes of --eval_prototype_images
annotated images of the training list, as segsort.extract_prototypes does,
and labels --eval_images images of --eval_list by k-NN (k = 15), as
segsort.inference_segsort does; the softmax baseline labels them by plain
inference. Subsets are spread evenly over their lists (0 takes every image)
and stay the same at every evaluation. Windows are training crops
(--input_size, without overlap); the k-means grid of an image is
--num_clusters x --num_clusters with --kmeans_iterations.

The mean IoU and every class's IoU go to the log and to TensorBoard
(`validation/miou`, `validation/class_iou/<class>`, `validation/seconds`),
with the evaluation's seconds and the training seconds since the previous
evaluation. The run's state at the best mIoU so far is kept in
SNAPSHOT_DIR/best/ (a checkpoint like those of SNAPSHOT_DIR, config.json, so
that `--restore_from SNAPSHOT_DIR/best` works for every inference tool, and
best.json: step, mIoU, class IoU and the evaluation subsets); a resumed run
keeps comparing against it when the subsets are the same.
"""

import dataclasses
import json
import logging
import math
import os
import time

import numpy as np
import tensorflow as tf

from network.segsort import common_utils
from network.segsort import eval_utils
from segsort import config as config_lib
from segsort import data
from segsort import errors
from segsort import inference
from segsort import io_utils
from segsort import metrics
from segsort import summaries
from segsort import trainer

BEST_DIR_NAME = 'best'
BEST_RECORD_FILE = 'best.json'
# The recipes' k of k-NN inference.
K_IN_NEAREST_NEIGHBORS = 15

_LOGGER = logging.getLogger(__name__)


def _seconds(value):
  """A duration for the log: tenths, or two digits below a tenth (a small
  validation set takes a few hundredths of a second on a fast machine)."""
  return '%.1f' % value if value >= 0.1 else '%.2g' % value


@dataclasses.dataclass
class ValidationResult:
  """One evaluation.

  Attributes:
    step: The training step evaluated.
    miou: The mean IoU in [0, 1] over the classes present in the ground
      truth or the prediction; NaN when no pixel was valid.
    class_iou: float64 `[num_classes]` IoU in [0, 1], NaN for classes
      absent from both.
    is_best: Whether this mIoU is the best so far (and was saved).
    seconds: The evaluation's wall-clock seconds, saving included.
    training_seconds: Wall-clock seconds since the previous evaluation (or
      since the Validator was made).
    num_prototypes: The prototypes extracted (0 for softmax).
  """

  step: int
  miou: float
  class_iou: np.ndarray
  is_best: bool
  seconds: float
  training_seconds: float
  num_prototypes: int


def spread_subset(entries, size):
  """`size` entries spread evenly over a list, in list order; all for 0."""
  if size == 0 or size >= len(entries):
    return list(entries)
  positions = np.unique(np.round(np.linspace(0, len(entries) - 1, size)))
  return [entries[int(position)] for position in positions]


class Validator:
  """Evaluates a training network on fixed subsets and keeps the best state.

  Attributes:
    best_miou: The best mIoU of this run on these subsets, -inf before one.
    best_step: Its step, or None.
    best_dir: SNAPSHOT_DIR/best.
  """

  def __init__(self, config, network, checkpoint, strategy):
    """Reads the evaluation lists and the best record of a resumed run.

    Args:
      config: The run's TrainConfig, with eval_every > 0.
      network: The SegmentationNetwork being trained.
      checkpoint: The tf.train.Checkpoint of the run's state, written to
        best/ at a new best mIoU.
      strategy: The run's tf.distribute strategy.

    Raises:
      errors.TrainingError: Under several machines, naming --eval_every.
      segsort.errors.DataError: Naming --eval_list (or --data_list) and the
        bad line or file: unreadable, without labels, missing files, or
        (of the --eval_images evaluated) files that do not decode or whose
        sizes differ.
      segsort.errors.ListFileError: Naming DATA_DIR/classes.txt when it
        exists but does not name --num_classes classes, one per line.
    """
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
      raise errors.TrainingError(
        '--eval_every is not supported with several machines (TF_CONFIG); '
        'evaluate the checkpoints with segsort.extract_prototypes and '
        'segsort.inference_segsort instead'
      )
    self._config = config
    self._network = network
    self._segsort = config.mode in inference.SEGSORT_MODES
    self._class_names = metrics.data_set_class_names(
      config.num_classes, data_dir=config.data_dir
    )
    try:
      self._evaluation_entries = spread_subset(
        data.read_data_list(
          config.data_dir, config.eval_list, require_labels=True
        ),
        config.eval_images,
      )
      # A file that does not decode would stop the run at the first
      # evaluation, with the steps since the last checkpoint lost.
      survey = data.LabelSurvey(
        config.eval_list,
        config.num_classes,
        config.ignore_label,
        log_files=False,
      )
      data.check_entries_decode(
        self._evaluation_entries,
        config.eval_list,
        ignore_label=config.ignore_label,
        apply_exif_orientation=config.apply_exif_orientation,
        survey=survey,
      )
      if not survey.class_pixels.any():
        # Every evaluation would score NaN, and no best/ would be kept.
        raise errors.DataError(
          'no pixel of the labels of the %d evaluated images of %s has a '
          'class of [0, --num_classes %d); all are --ignore_label %d or out '
          'of range'
          % (
            len(self._evaluation_entries),
            config.eval_list,
            config.num_classes,
            config.ignore_label,
          )
        )
    except errors.DataError as error:
      # Named by the flag, as the other flag errors are.
      raise errors.DataError('--eval_list: %s' % error) from error
    self._prototype_entries = []
    if self._segsort:
      # Unsupervised runs may train on lines without labels; prototypes come
      # from the annotated ones.
      annotated = [
        entry
        for entry in data.read_data_list(
          config.data_dir, config.data_list, require_labels=False
        )
        if entry.label_path is not None
      ]
      if not annotated:
        raise errors.DataError(
          '--eval_every needs annotated images in --data_list %s for the '
          'prototypes; it has no line IMAGE LABEL' % config.data_list
        )
      self._prototype_entries = spread_subset(
        annotated, config.eval_prototype_images
      )
      self._runner = inference.DenseOutputRunner(
        network, config.input_size, config.input_size, normalize_windows=True
      )
      self._image_prototypes = tf.function(
        lambda embedding, labels: inference.extract_image_prototypes(
          embedding,
          labels,
          config.num_clusters,
          config.kmeans_iterations,
          config.ignore_label,
        ),
        reduce_retracing=True,
      )
    else:
      self._predictor = inference.SoftmaxPredictor(
        network,
        window_size=config.input_size,
        strides=config.input_size,
        num_classes=config.num_classes,
      )
    self.best_dir = os.path.join(config.snapshot_dir, BEST_DIR_NAME)
    self._best_manager = tf.train.CheckpointManager(
      checkpoint,
      self.best_dir,
      max_to_keep=1,
      checkpoint_name=trainer.CHECKPOINT_NAME,
    )
    self.best_miou, self.best_step = self._read_best_record()
    self._clock = time.perf_counter()

  def _subsets(self):
    """What makes mIoUs comparable, as recorded in best.json."""
    config = self._config
    return {
      'eval_list': os.path.abspath(config.eval_list),
      'eval_images': [entry.image_id for entry in self._evaluation_entries],
      'prototype_images': [entry.image_id for entry in self._prototype_entries],
    }

  def _read_best_record(self):
    """The best mIoU and step of a resumed run on the same subsets."""
    path = os.path.join(self.best_dir, BEST_RECORD_FILE)
    latest = self._best_manager.latest_checkpoint
    if not os.path.exists(path) or latest is None:
      return -math.inf, None
    try:
      with open(path) as stream:
        record = json.load(stream)
    except (OSError, ValueError):
      record = None
    if (
      not isinstance(record, dict)
      or record.get('checkpoint') != os.path.basename(latest)
      or record.get('subsets') != self._subsets()
    ):
      _LOGGER.warning(
        '%s does not describe %s on these evaluation subsets; the next '
        'evaluation replaces the best checkpoint.',
        path,
        latest,
      )
      return -math.inf, None
    return record['miou'], record['step']

  def _labelled_images(self, entries):
    """Reads entries as the run's training reads them, in order.

    Yields:
      image: float32 `[H, W, 3]`, RGB minus the mean (a tensor).
      label: int32 `[H, W]` (a NumPy array); values outside
        `[0, num_classes)` are the ignore label, as in training.
    """
    config = self._config
    examples = data.entries_dataset(
      entries,
      ignore_label=config.ignore_label,
      num_classes=config.num_classes,
      apply_exif_orientation=config.apply_exif_orientation,
    )
    for example in examples:
      yield example['image'], example['label'][..., 0].numpy()

  def extract_bank(self):
    """Extracts the prototypes of the prototype subset (SegSort runs).

    As segsort.extract_prototypes, with the validator's windows and k-means
    settings, in memory.

    Returns:
      An inference.PrototypeBank: features float32 `[P, D]` unit vectors,
      labels int32 `[P]` in `[0, num_classes)`.

    Raises:
      segsort.errors.DataError: If no image of the subset has a labelled
        pixel, or naming a file that cannot be decoded.
    """
    config = self._config
    features, labels = [], []
    for image, label in self._labelled_images(self._prototype_entries):
      cell_labels = inference.labels_at_cell_centres(
        label, self._runner.output_stride
      )
      if not np.any(cell_labels != config.ignore_label):
        continue
      embedding = self._runner.output_grid(image)
      image_features, image_labels, _ = self._image_prototypes(
        common_utils.normalize_embedding(embedding), tf.constant(cell_labels)
      )
      features.append(image_features.numpy())
      labels.append(image_labels.numpy())
    if not features:
      raise errors.DataError(
        'No labelled pixel in the %d images of --data_list %s chosen for '
        'the prototypes of validation'
        % (len(self._prototype_entries), config.data_list)
      )
    return inference.PrototypeBank(
      np.concatenate(features), np.concatenate(labels).astype(np.int32)
    )

  def segsort_labeller(self, bank):
    """Labels images by k-NN of a bank, as inference.SegSortPredictor does.

    The same computation as `inference.predict_labels` of a SegSortPredictor
    with the validator's settings, on the validator's own window runner, so
    that the network is not traced again at every evaluation (only the
    k-means and k-NN function of each new bank is).

    Args:
      bank: An inference.PrototypeBank.

    Returns:
      A function from a float32 mean-subtracted image `[H, W, 3]` to its
      uint8 class ids `[H, W]`.
    """
    config = self._config
    features, labels = tf.constant(bank.features), tf.constant(bank.labels)
    runner = self._runner

    @tf.function(reduce_retracing=True)
    def pixel_votes(grid_embedding, pixel_embedding):
      segment_ids, segment_prototypes = inference.segment_embedding(
        grid_embedding,
        pixel_embedding,
        config.num_clusters,
        config.kmeans_iterations,
        runner.output_stride,
      )
      votes = eval_utils.knn_label_votes(
        segment_prototypes,
        features,
        labels,
        K_IN_NEAREST_NEIGHBORS,
        config.num_classes,
      )
      return tf.gather(votes, segment_ids)

    def label(image):
      grid = common_utils.normalize_embedding(runner.output_grid(image))
      pixel_embedding = common_utils.normalize_embedding(
        runner.upsample_to_image(grid, image.shape[:2])
      )
      return (
        tf.argmax(
          pixel_votes(grid, pixel_embedding), axis=-1, output_type=tf.int32
        )
        .numpy()
        .astype(np.uint8)
      )

    return label

  def _make_labeller(self):
    """This evaluation's labeller (SegSort: of freshly made prototypes)."""
    if not self._segsort:
      return (lambda image: inference.predict_labels(self._predictor, image), 0)
    bank = self.extract_bank()
    return self.segsort_labeller(bank), len(bank.labels)

  def evaluate(self, step):
    """Evaluates the network now; logs, writes summaries, keeps the best.

    Summaries go to the default tf.summary writer (the trainer's).

    Args:
      step: The training step reached.

    Returns:
      A ValidationResult.

    Raises:
      segsort.errors.DataError: Naming a file that cannot be decoded.
    """
    config = self._config
    start = time.perf_counter()
    training_seconds = start - self._clock
    label, num_prototypes = self._make_labeller()
    confusion = np.zeros((config.num_classes, config.num_classes), np.int64)
    for image, ground_truth in self._labelled_images(self._evaluation_entries):
      confusion += metrics.confusion_matrix(
        label(image),
        ground_truth,
        config.num_classes,
        config.ignore_label,
      )
    class_iou = metrics.class_ious(confusion)
    miou = metrics.mean_iou(confusion)
    is_best = not math.isnan(miou) and miou > self.best_miou
    if is_best:
      self._save_best(step, miou, class_iou)
    seconds = time.perf_counter() - start
    result = ValidationResult(
      step, miou, class_iou, is_best, seconds, training_seconds, num_prototypes
    )
    self._report(result)
    self._clock = time.perf_counter()
    return result

  def _save_best(self, step, miou, class_iou):
    """Writes the run's state to best/, then config.json and best.json."""
    prefix = self._best_manager.save(checkpoint_number=step)
    config_lib.save_config(self._config, self.best_dir)
    # Written last: it vouches for the checkpoint it names.
    io_utils.save_json(
      os.path.join(self.best_dir, BEST_RECORD_FILE),
      {
        'step': step,
        'miou': miou,
        'class_iou': [None if math.isnan(iou) else iou for iou in class_iou],
        'class_names': self._class_names,
        'checkpoint': os.path.basename(prefix),
        'subsets': self._subsets(),
      },
    )
    self.best_miou, self.best_step = miou, step

  def _report(self, result):
    names = self._class_names
    # A softmax run labels without prototypes.
    images = '%d evaluation images' % len(self._evaluation_entries)
    if self._prototype_entries:
      images = '%d prototypes of %d images, %s' % (
        result.num_prototypes,
        len(self._prototype_entries),
        images,
      )
    _LOGGER.info(
      'validation at step %d: mIoU %.2f%% (%s), class IoU: %s; %s s '
      '(%s), %s s of training since the last evaluation',
      result.step,
      100 * result.miou,
      'best, saved to %s' % self.best_dir
      if result.is_best
      else 'best %.2f%% at step %s' % (100 * self.best_miou, self.best_step),
      ', '.join(
        '%s %s' % (name, 'n/a' if math.isnan(iou) else '%.1f' % (100 * iou))
        for name, iou in zip(names, result.class_iou)
      ),
      _seconds(result.seconds),
      images,
      _seconds(result.training_seconds),
    )
    if not math.isnan(result.miou):
      summaries.write_scalar('validation/miou', result.miou, result.step)
    for name, iou in zip(names, result.class_iou):
      if not math.isnan(iou):
        summaries.write_scalar(
          'validation/class_iou/' + name.replace(' ', '_'), iou, result.step
        )
    summaries.write_scalar('validation/seconds', result.seconds, result.step)
