"""Segmentation metrics: confusion matrix, IoU, pixel accuracy, boundary F.

Everything here is plain NumPy on label maps (`[height, width]` integer
arrays of class ids); `evaluate_prediction_dir` applies it to a directory of
predicted PNGs against a directory of ground-truth PNGs.

Conventions:
  * Pixels whose ground truth is `ignore_label` take part in no region score.
  * A class's IoU is `TP / (TP + FP + FN)` over the whole set; a class that
    neither the ground truth nor the prediction contains has no IoU (None in
    JSON) and is left out of the mean, as it carries no evidence either way.
  * Boundaries (see `boundary_match_counts`): a pixel lies on a boundary when
    one of its 4-neighbours has another label, so a contour between two
    regions is two pixels thick, one on each side. A pixel matches when a
    boundary pixel of the other map lies within `tolerance` pixels (Euclidean
    distance). Precision is taken over predicted boundary pixels where the
    ground truth is valid (an ignore region is never a false positive); recall
    over ground-truth boundary pixels, which may be matched by any predicted
    boundary pixel, also one inside an ignore region. An edge of an ignore
    region is a ground-truth boundary: PASCAL VOC outlines every object with a
    band of ignore pixels, so its contours are exactly the edges of its bands.
    Counts are summed over the set before the ratios are taken.
"""

import dataclasses
import math
import os

import numpy as np

from segsort import console
from segsort import errors
from segsort import io_utils

# The scores benchmark_by_mIoU writes beside a prediction folder unless told
# otherwise (SAVE_DIR/metrics.json for SAVE_DIR/gray), and their chart's
# suffix; inference clears them with the predictions they scored.
SCORES_FILE_NAME = 'metrics.json'
CHART_SUFFIX = '_iou.png'


def chart_path(scores_path):
  """The per-class IoU chart written beside the scores JSON `scores_path`."""
  return os.path.splitext(scores_path)[0] + CHART_SUFFIX


VOC_CLASS_NAMES = (
  'background',
  'aeroplane',
  'bicycle',
  'bird',
  'boat',
  'bottle',
  'bus',
  'car',
  'cat',
  'chair',
  'cow',
  'diningtable',
  'dog',
  'horse',
  'motorbike',
  'person',
  'pottedplant',
  'sheep',
  'sofa',
  'train',
  'tvmonitor',
)


def class_names(num_classes):
  """Names of `num_classes` classes: VOC's for 21, else 'class N'."""
  if num_classes == len(VOC_CLASS_NAMES):
    return list(VOC_CLASS_NAMES)
  return ['class %d' % class_id for class_id in range(num_classes)]


# The class-names file a data set may hold in its DATAROOT, as
# tools/camvid_to_voc.py and tools/cityscapes_to_segcls.py write it.
CLASS_NAMES_FILE = 'classes.txt'


def data_set_class_names(num_classes, path=None, data_dir=None):
  """The names that label the classes of a report or picture.

  Args:
    num_classes: The number of classes, >= 1.
    path: A class-names file (a --class_names flag), or None.
    data_dir: The data set's DATAROOT, or None; its CLASS_NAMES_FILE is read
      when `path` is None and the file exists (as --colormap defaults to the
      data set's colormap.txt).

  Returns:
    A list of `num_classes` names: the file's (`read_class_names`), else
    `class_names(num_classes)`.

  Raises:
    errors.ListFileError: As `read_class_names`, naming the file.
  """
  if path is None and data_dir is not None:
    candidate = os.path.join(data_dir, CLASS_NAMES_FILE)
    if os.path.exists(candidate):
      path = candidate
  if path is None:
    return class_names(num_classes)
  return read_class_names(path, num_classes)


def read_class_names(path, num_classes):
  """Reads a class-names file: one name per line, in class-id order.

  The `classes.txt` that tools/camvid_to_voc.py writes has this format.
  Blank lines at the end are allowed; names keep inner spaces.

  Args:
    path: A UTF-8 text file.
    num_classes: The number of names it must hold, >= 1.

  Returns:
    A list of `num_classes` non-empty strings.

  Raises:
    errors.ListFileError (a ValueError): Naming the file, and the line of an
      empty name, when it cannot be read, is not UTF-8 text, has an empty
      line between names, or does not hold `num_classes` names.
  """
  names = [
    line.strip() for line in io_utils.read_list_lines(path, 'class names')
  ]
  while names and not names[-1]:
    names.pop()
  for line_number, name in enumerate(names, start=1):
    if not name:
      raise errors.ListFileError(
        '%s, line %d: empty class name (one name per line, in class-id '
        'order)' % (path, line_number)
      )
  if len(names) != num_classes:
    raise errors.ListFileError(
      '%s holds %d class names but there are %d classes (--num_classes)'
      % (path, len(names), num_classes)
    )
  return names


def confusion_matrix(prediction, ground_truth, num_classes, ignore_label=255):
  """Counts (ground truth, prediction) pairs of the valid pixels of one map.

  Args:
    prediction: An integer array of class ids in `[0, num_classes)`.
    ground_truth: An integer array of the same shape, class ids in
      `[0, num_classes)` or `ignore_label`.
    num_classes: The number of classes.
    ignore_label: The ground-truth id of pixels to leave out.

  Returns:
    An int64 array `[num_classes, num_classes]`: rows are ground-truth
    classes, columns predicted classes.

  Raises:
    ValueError: If the shapes differ or an id is out of range.
  """
  prediction = np.asarray(prediction, dtype=np.int64)
  ground_truth = np.asarray(ground_truth, dtype=np.int64)
  if prediction.shape != ground_truth.shape:
    raise ValueError(
      'prediction shape %s differs from ground truth shape %s.'
      % (prediction.shape, ground_truth.shape)
    )
  valid = ground_truth != ignore_label
  ground_truth = ground_truth[valid]
  prediction = prediction[valid]
  _check_range(ground_truth, num_classes, 'ground truth')
  _check_range(prediction, num_classes, 'prediction')
  return np.bincount(
    ground_truth * num_classes + prediction, minlength=num_classes * num_classes
  ).reshape(num_classes, num_classes)


def _check_range(class_ids, num_classes, what):
  if class_ids.size and (class_ids.min() < 0 or class_ids.max() >= num_classes):
    bad = class_ids[(class_ids < 0) | (class_ids >= num_classes)]
    raise ValueError(
      '%s holds class id %d, outside [0, %d).' % (what, bad[0], num_classes)
    )


def class_ious(confusion):
  """Per-class intersection over union.

  Args:
    confusion: An array `[num_classes, num_classes]` from `confusion_matrix`.

  Returns:
    A float64 array `[num_classes]`, NaN for classes absent from both the
    ground truth and the prediction.
  """
  confusion = np.asarray(confusion, dtype=np.float64)
  intersection = np.diag(confusion)
  union = confusion.sum(axis=0) + confusion.sum(axis=1) - intersection
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(union > 0, intersection / union, np.nan)


def mean_iou(confusion):
  """The mean IoU over classes present in the ground truth or prediction."""
  ious = class_ious(confusion)
  return float(np.nanmean(ious)) if np.any(~np.isnan(ious)) else math.nan


def pixel_accuracy(confusion):
  """The fraction of valid pixels predicted correctly."""
  confusion = np.asarray(confusion)
  total = confusion.sum()
  return float(np.trace(confusion) / total) if total else math.nan


def label_boundaries(labels):
  """Marks the pixels with a 4-neighbour of another label.

  Args:
    labels: An integer array `[height, width]`.

  Returns:
    A boolean array `[height, width]`.
  """
  labels = np.asarray(labels)
  boundaries = np.zeros(labels.shape, dtype=bool)
  vertical_change = labels[1:, :] != labels[:-1, :]
  horizontal_change = labels[:, 1:] != labels[:, :-1]
  boundaries[1:, :] |= vertical_change
  boundaries[:-1, :] |= vertical_change
  boundaries[:, 1:] |= horizontal_change
  boundaries[:, :-1] |= horizontal_change
  return boundaries


def _distance_to(mask):
  """Euclidean distance of every pixel to the nearest True pixel of `mask`."""
  # Imported here: scipy.ndimage takes half a second to load, which --help
  # of the tools that import this module need not wait for.
  from scipy import ndimage  # pylint: disable=g-import-not-at-top

  if not mask.any():
    return np.full(mask.shape, np.inf)
  return ndimage.distance_transform_edt(~mask)


@dataclasses.dataclass
class BoundaryCounts:
  """Boundary pixel counts, summed over images before taking ratios.

  Attributes:
    matched_predicted: Predicted boundary pixels (at valid ground truth)
      within the tolerance of a ground-truth boundary pixel.
    predicted: Predicted boundary pixels at valid ground truth.
    matched_ground_truth: Ground-truth boundary pixels within the tolerance of
      a predicted boundary pixel.
    ground_truth: Ground-truth boundary pixels.
  """

  matched_predicted: int = 0
  predicted: int = 0
  matched_ground_truth: int = 0
  ground_truth: int = 0

  def __add__(self, other):
    return BoundaryCounts(
      *(
        a + b
        for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))
      )
    )

  def scores(self):
    """Returns (precision, recall, F-score).

    Precision (recall) is NaN without predicted (ground-truth) boundary
    pixels; the F-score is 0 when either is 0, else NaN when either is NaN.
    """
    precision = (
      self.matched_predicted / self.predicted if self.predicted else math.nan
    )
    recall = (
      self.matched_ground_truth / self.ground_truth
      if self.ground_truth
      else math.nan
    )
    if precision == 0 or recall == 0:
      f_score = 0.0
    elif math.isnan(precision) or math.isnan(recall):
      f_score = math.nan
    else:
      f_score = 2 * precision * recall / (precision + recall)
    return precision, recall, f_score


def describe_tolerance(tolerance):
  """A boundary tolerance in its unit, as tolerance_in_pixels reads it."""
  if 0 < tolerance < 1:
    return '%g of the image diagonal' % tolerance
  return '%g pixels' % tolerance


def tolerance_in_pixels(tolerance, shape):
  """Converts a boundary tolerance to pixels.

  Args:
    tolerance: Pixels when 0 or at least 1; a value in (0, 1) is a fraction
      of the image diagonal (e.g. 0.0075, the BSDS benchmark's).
    shape: The image's (height, width).

  Returns:
    The tolerance in pixels.
  """
  if 0 < tolerance < 1:
    return tolerance * math.hypot(shape[0], shape[1])
  return float(tolerance)


def boundary_match_counts(
  prediction, ground_truth, tolerance=2.0, ignore_label=255
):
  """Counts matched boundary pixels of one prediction (see module docstring).

  Args:
    prediction: An integer array `[height, width]` of class ids.
    ground_truth: An integer array `[height, width]` of class ids or
      `ignore_label`.
    tolerance: See `tolerance_in_pixels`.
    ignore_label: The ground-truth id of pixels to leave out.

  Returns:
    A `BoundaryCounts`.
  """
  prediction = np.asarray(prediction)
  ground_truth = np.asarray(ground_truth)
  tolerance = tolerance_in_pixels(tolerance, ground_truth.shape)
  valid = ground_truth != ignore_label
  predicted_boundaries = label_boundaries(prediction)
  ground_truth_boundaries = label_boundaries(ground_truth) & valid
  counted_predictions = predicted_boundaries & valid
  distance_to_ground_truth = _distance_to(ground_truth_boundaries)
  distance_to_prediction = _distance_to(predicted_boundaries)
  return BoundaryCounts(
    matched_predicted=int(
      np.count_nonzero(
        counted_predictions & (distance_to_ground_truth <= tolerance)
      )
    ),
    predicted=int(np.count_nonzero(counted_predictions)),
    matched_ground_truth=int(
      np.count_nonzero(
        ground_truth_boundaries & (distance_to_prediction <= tolerance)
      )
    ),
    ground_truth=int(np.count_nonzero(ground_truth_boundaries)),
  )


class SegmentationEvaluator:
  """Accumulates region and boundary scores over a set of label maps."""

  def __init__(self, num_classes, ignore_label=255, boundary_tolerance=2.0):
    """Starts with empty counts.

    Args:
      num_classes: The number of classes.
      ignore_label: The ground-truth id of pixels to leave out.
      boundary_tolerance: See `tolerance_in_pixels`.
    """
    self.num_classes = num_classes
    self.ignore_label = ignore_label
    self.boundary_tolerance = boundary_tolerance
    self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    self.boundary_counts = BoundaryCounts()
    self.num_images = 0

  def add(self, prediction, ground_truth):
    """Adds one (prediction, ground truth) pair of `[height, width]` maps."""
    self.confusion += confusion_matrix(
      prediction, ground_truth, self.num_classes, self.ignore_label
    )
    self.boundary_counts += boundary_match_counts(
      prediction, ground_truth, self.boundary_tolerance, self.ignore_label
    )
    self.num_images += 1

  def results(self, names=None):
    """Returns every score as a JSON-ready dict (NaN written as None).

    Args:
      names: The class names in class-id order; None for `class_names`'.
    """
    precision, recall, f_score = self.boundary_counts.scores()
    return {
      'num_images': self.num_images,
      'num_classes': self.num_classes,
      'class_names': list(names or class_names(self.num_classes)),
      'class_iou': [_json_number(iou) for iou in class_ious(self.confusion)],
      'mean_iou': _json_number(mean_iou(self.confusion)),
      'pixel_accuracy': _json_number(pixel_accuracy(self.confusion)),
      'boundary_tolerance': self.boundary_tolerance,
      'boundary_precision': _json_number(precision),
      'boundary_recall': _json_number(recall),
      'boundary_f_score': _json_number(f_score),
      'boundary_counts': dataclasses.asdict(self.boundary_counts),
      'confusion_matrix': self.confusion.tolist(),
    }


def _json_number(value):
  return None if math.isnan(value) else float(value)


def format_report(results):
  """Formats `SegmentationEvaluator.results()` like the original benchmark."""

  def percent(value):
    return 'n/a' if value is None else '%.4f%%' % (100 * value)

  lines = [
    'class %2d %-12s IOU: %s'
    % (class_id, '' if name == 'class %d' % class_id else name, percent(iou))
    for class_id, (name, iou) in enumerate(
      zip(results['class_names'], results['class_iou'])
    )
  ]
  lines += [
    'mean IOU: %s' % percent(results['mean_iou']),
    'pixel accuracy: %s' % percent(results['pixel_accuracy']),
    'boundary precision: %s recall: %s F-score: %s (tolerance %s)'
    % (
      percent(results['boundary_precision']),
      percent(results['boundary_recall']),
      percent(results['boundary_f_score']),
      describe_tolerance(results['boundary_tolerance']),
    ),
    'images: %d' % results['num_images'],
  ]
  return '\n'.join(lines)


def list_image_ids(data_list):
  """Image ids (file names without extension) of a list file's first column.

  Raises:
    ValueError: As `list_image_locations`.
  """
  return list(list_image_locations(data_list))


def list_image_locations(data_list):
  """The ids of a list file's first column, each with its line.

  Returns:
    A dict, in list order, from image id (file name without extension) to
    its line, 'DATA_LIST, line N', for the messages about its files.

  Raises:
    ValueError: Naming the list when it cannot be read or holds no image,
      and naming the lines of more than three fields (IMAGE [LABEL
      [OVERSEGMENTATION]]) or of an image named twice, which would be
      scored twice.
  """
  first_line = {}
  problems = []
  for number, line in enumerate(io_utils.read_list_lines(data_list), 1):
    fields = io_utils.split_fields(line)
    if not fields:
      continue
    comment_problem = io_utils.comment_line_problem(fields)
    if comment_problem:
      problems.append('line %d %s' % (number, comment_problem))
      continue
    if len(fields) > 3:
      problems.append(
        'line %d has %d fields; expected IMAGE [LABEL [OVERSEGMENTATION]]'
        % (number, len(fields))
      )
      continue
    image_id = os.path.splitext(os.path.basename(fields[0]))[0]
    if image_id in first_line:
      problems.append(
        'line %d names image %s again (first on line %d)'
        % (number, io_utils.printable_path(image_id), first_line[image_id])
      )
      continue
    first_line[image_id] = number
  if problems:
    raise ValueError('%s: %s' % (data_list, errors.join_problems(problems)))
  if not first_line:
    raise ValueError('%s lists no image.' % data_list)
  return {
    image_id: '%s, line %d' % (data_list, number)
    for image_id, number in first_line.items()
  }


def png_ids(folder, what):
  """The sorted ids (names without `.png`) of a folder's PNG files.

  Args:
    folder: A folder of `ID.png` files; hidden files are left out.
    what: What the PNGs are, for the message, e.g. 'prediction'.

  Raises:
    ValueError: Naming the folder when it holds no PNG, or PNGs whose
      extension is not the lower-case `.png` their ground truth is named by
      (they would be left out of the scores silently).
  """
  names = [name for name in os.listdir(folder) if not name.startswith('.')]
  other_case = sorted(
    name
    for name in names
    if name.lower().endswith('.png') and not name.endswith('.png')
  )
  if other_case:
    raise ValueError(
      '%s holds %d %s file(s) whose extension is not .png (%s%s); rename '
      'them ID.png, as their ground truth is found by that name'
      % (
        folder,
        len(other_case),
        what,
        ', '.join(other_case[:3]),
        ', ...' if len(other_case) > 3 else '',
      )
    )
  image_ids = sorted(
    os.path.splitext(name)[0] for name in names if name.endswith('.png')
  )
  if not image_ids:
    raise ValueError('%s holds no PNG %s.' % (folder, what))
  return image_ids


def evaluate_prediction_dir(
  pred_dir,
  gt_dir,
  num_classes,
  ignore_label=255,
  image_ids=None,
  boundary_tolerance=2.0,
  names=None,
  progress=False,
  locations=None,
):
  """Scores the predicted PNGs of a directory against ground-truth PNGs.

  Args:
    pred_dir: A directory of `ID.png` class-id maps.
    gt_dir: A directory of `ID.png` ground-truth class-id maps.
    num_classes: The number of classes.
    ignore_label: The ground-truth id of pixels to leave out.
    image_ids: The ids to score; every PNG of `pred_dir` when None.
    boundary_tolerance: See `tolerance_in_pixels`.
    names: The class names in class-id order (`read_class_names`); None
      for `class_names`'.
    progress: Whether to show progress (segsort.console.progress).
    locations: An optional dict from image id to where the id was given
      (`list_image_locations`), which starts the messages about its files.

  Returns:
    `SegmentationEvaluator.results()`.

  Raises:
    ValueError: When there is no image to score, or naming every missing
      prediction or ground truth, or every file whose decoding, size or ids
      are wrong (`score_label_pairs`).
  """
  if image_ids is None:
    image_ids = png_ids(pred_dir, 'prediction')
  evaluator = SegmentationEvaluator(
    num_classes, ignore_label, boundary_tolerance
  )
  score_label_pairs(
    [
      (
        os.path.join(pred_dir, image_id + '.png'),
        os.path.join(gt_dir, image_id + '.png'),
      )
      for image_id in image_ids
    ],
    evaluator.add,
    progress,
    locations=pair_locations(image_ids, locations),
  )
  return evaluator.results(names)


def pair_locations(image_ids, locations):
  """`score_label_pairs`' locations of the pairs of `image_ids`, given a
  dict from id to location (or None)."""
  if locations is None:
    return None
  return [locations.get(image_id) for image_id in image_ids]


def score_label_pairs(
  pairs,
  score,
  progress=False,
  kinds=('label image', 'label image'),
  locations=None,
):
  """Reads pairs of label PNGs and scores each, naming every bad file at once.

  Args:
    pairs: A list of `(path, reference_path)` label-image paths, e.g. a
      prediction and its ground truth.
    score: A function of the two `[height, width]` int64 arrays of a pair
      (same shape), e.g. `SegmentationEvaluator.add`; it may refuse a pair
      with a ValueError.
    progress: Whether to show progress (segsort.console.progress).
    kinds: What the two files of a pair are, for the messages.
    locations: None, or for every pair where it was given (e.g. 'LIST,
      line 3') or None; it starts each message about the pair's files.

  Raises:
    ValueError: Naming, on one line, the first errors.MAX_PROBLEMS_SHOWN problems
      and a count of the rest: every missing file, before any is read; else,
      after reading them all, every file that does not decode as a
      single-channel image, every pair of two sizes, and every pair that
      `score` refuses.
  """
  locations = locations or [None] * len(pairs)

  def located(location, problem):
    return problem if location is None else '%s: %s' % (location, problem)

  missing = [
    located(
      location,
      '%s %s'
      % (
        io_utils.printable_path(path),
        'is not a file' if os.path.exists(path) else 'does not exist',
      ),
    )
    for pair, location in zip(pairs, locations)
    for path in pair
    if not os.path.isfile(path)
  ]
  if missing:
    raise ValueError(
      '%d missing file(s): %s' % (len(missing), errors.join_problems(missing))
    )
  problems = []
  with console.progress(
    list(zip(pairs, locations)),
    desc='Scoring',
    unit='image',
    disable=not progress,
  ) as bar:
    for (path, reference_path), location in bar:
      try:
        labels = io_utils.read_label_image(path, np.int64, what=kinds[0])
        reference = io_utils.read_label_image(
          reference_path, np.int64, what=kinds[1]
        )
      except errors.ImageFileError as error:
        problems.append(located(location, str(error)))
        continue
      if labels.shape != reference.shape:
        problems.append(
          located(
            location,
            '%s is %dx%d but %s is %dx%d'
            % ((path,) + labels.shape + (reference_path,) + reference.shape),
          )
        )
        continue
      try:
        score(labels, reference)
      except ValueError as error:
        problems.append(
          located(location, '%s vs %s: %s' % (path, reference_path, error))
        )
  if problems:
    raise ValueError(
      '%d bad file(s): %s' % (len(problems), errors.join_problems(problems))
    )
