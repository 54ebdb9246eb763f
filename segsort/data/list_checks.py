"""Reading every file of a list up front: the label survey, the list check.

Training reads each file once per epoch and stops at the first bad one;
these read the whole list once, before any step, and report every problem.
"""

import dataclasses
import logging
import multiprocessing.pool
import os

import numpy as np

from segsort import errors
from segsort import io_utils
from segsort.data import augmentation
from segsort.data import decoding
from segsort.data import labels
from segsort.data import lists

_LOGGER = logging.getLogger(__name__)


def check_training_list(
  data_dir,
  data_list,
  num_classes,
  ignore_label,
  apply_exif_orientation=False,
  num_workers=None,
  progress=None,
  unsupervised=False,
  segment_groups=False,
  input_size=None,
  random_scale=False,
):
  """Decodes every file of a training list once; surveys supervised labels.

  Training reads every file once per epoch and stops at the first that does
  not decode, possibly hours in; this pass (`check_entries_decode`) names
  every bad file of the list before step 1. The labels of a supervised list
  also feed a LabelSurvey as they are decoded, which warns of each file with
  out-of-range values once and of classes missing from the whole list.

  Args:
    data_dir: The directory list paths are relative to.
    data_list: The list file. Supervised, every line must name a label;
      unsupervised, an oversegmentation (labels are optional).
    num_classes: The number of classes.
    ignore_label: The label value to ignore.
    apply_exif_orientation: As the training pipeline's.
    num_workers: Decoding threads; the number of CPUs when None.
    progress: As `check_entries_decode`'s.
    unsupervised: Whether the list is unsupervised SegSort's.
    segment_groups: Whether, unsupervised, the segment groups of every
      oversegmentation are read as well (--segment_groups).
    input_size: The training crop (height, width), checked against the
      images (`oversized_crop_problem`); None skips the check.
    random_scale: Whether training scales the images before cropping.

  Returns:
    The LabelSurvey of a supervised list; None for an unsupervised one.

  Raises:
    DataError: If the list is malformed, naming the list file, line
      numbers and paths of every entry that does not decode (all on one
      line, as `check_entries_decode`); supervised, when no pixel of its
      labels has a class (`labels.LabelSurvey.no_class_problem`); or naming
      --input_size when it is far larger than every image.
  """
  # Labels required when supervised: the training pipeline requires them
  # too, and a line without one would otherwise pass here and stop training
  # on its own.
  entries, problems, _ = lists.parse_data_list(
    data_dir,
    data_list,
    require_labels=not unsupervised,
    with_oversegmentation=unsupervised,
    with_segment_groups=unsupervised and segment_groups,
  )
  survey = (
    None
    if unsupervised
    else labels.LabelSurvey(data_list, num_classes, ignore_label)
  )
  largest_image_size = check_entries_decode(
    entries,
    data_list,
    ignore_label=ignore_label,
    apply_exif_orientation=apply_exif_orientation,
    num_workers=num_workers,
    progress=progress,
    list_problems=problems,
    survey=survey,
    with_oversegmentation=unsupervised,
    with_segment_groups=segment_groups,
  )
  crop_problem = input_size and oversized_crop_problem(
    input_size, largest_image_size, random_scale, data_list
  )
  if crop_problem:
    raise errors.DataError(
      '--input_size %dx%d %s' % (input_size[0], input_size[1], crop_problem)
    )
  if survey is not None:
    survey.log_out_of_range_total()
    no_class_problem = survey.no_class_problem()
    if no_class_problem is not None:
      raise errors.DataError(no_class_problem + '; nothing to train')
    for warning in survey.warnings():
      _LOGGER.warning(warning)
  return survey


@dataclasses.dataclass
class DataListReport:
  """The result of check_data_list.

  Attributes:
    data_list: The list file checked.
    num_entries: The number of non-blank lines.
    problems: Descriptions of every problem found, in line order, each naming
      the list file, line number and path.
    out_of_range_pixels: The number of label pixels outside
      `[0, num_classes)` other than the ignore label, over all lines (each
      such line is also a problem).
    warnings: Descriptions of suspicious labels of the whole list
      (`labels.LabelSurvey.warnings`), which are not problems.
    largest_image_size: The largest (height, width) of the images that
      decoded, per axis; None when none did.
  """

  data_list: str
  num_entries: int
  problems: list
  out_of_range_pixels: int = 0
  warnings: list = dataclasses.field(default_factory=list)
  largest_image_size: tuple = None

  @property
  def ok(self):
    """Whether no problem was found."""
    return not self.problems


def _decode_problem(entry, settings):
  """Decodes one entry with `settings`: (its label, its image's (height,
  width), None) or (None, None, what stops it from decoding)."""
  try:
    image, label, _ = settings.decode(entry)
  except (errors.DataError, errors.ImageFileError) as error:
    return None, None, str(error)
  return label, image.shape[:2], None


def _largest(size, other):
  """The (height, width) of the larger of two sizes per axis; None for
  no size."""
  if other is None:
    return size
  if size is None:
    return tuple(other)
  return (max(size[0], other[0]), max(size[1], other[1]))


def oversized_crop_problem(
  crop_size, largest_image_size, random_scale, data_list
):
  """Why a training crop is too large for a list's images, or None.

  A crop is padded where it overhangs its (scaled) image. Past twice the
  largest image (scaled by the largest random scale) along an axis, more
  than half of every crop is padding on that axis: memory and time spent on
  nothing, and a typo such as 10000,10000 ran out of memory with no
  message.

  Args:
    crop_size: The training crop (height, width), pixels.
    largest_image_size: The largest image height and width of the list
      (`check_entries_decode`), or None when none decoded.
    random_scale: Whether images are scaled up to
      `augmentation.MAX_SCALE` before cropping.
    data_list: The list file, for the message.

  Returns:
    None, or the reason, to follow the flag's name and value.
  """
  if largest_image_size is None:
    return None
  scale = augmentation.MAX_SCALE if random_scale else 1.0
  scaled = [int(round(side * scale)) for side in largest_image_size]
  if crop_size[0] <= 2 * scaled[0] and crop_size[1] <= 2 * scaled[1]:
    return None
  return (
    'is more than twice the largest image of %s (%dx%d%s) along an axis: '
    'most of every crop would be padding'
    % (
      data_list,
      scaled[0],
      scaled[1],
      ', scaled by the largest random scale %g' % scale if random_scale else '',
    )
  )


def check_entries_decode(
  entries,
  data_list,
  ignore_label=255,
  apply_exif_orientation=False,
  num_workers=None,
  progress=None,
  list_problems=(),
  survey=None,
  with_oversegmentation=False,
  with_segment_groups=False,
):
  """Decodes every entry once, as the inference pipelines will.

  Inference and prototype extraction write each image's outputs as soon as
  they are computed; a bad file found in the middle of the list would stop
  them with the run half done and a TensorFlow traceback. Decoding the list
  first costs one more read of every file (seconds for a VOC val list)
  and stops before any work.

  Args:
    entries: ListEntry objects of `data_list`.
    data_list: The list file, for the message.
    ignore_label: As the pipeline's.
    apply_exif_orientation: As the pipeline's.
    num_workers: Decoding threads; the number of CPUs when None.
    progress: An optional callable wrapping an iterable with a length (e.g.
      tqdm.tqdm) to show progress.
    list_problems: The (line number, description) problems that
      `lists.parse_data_list` found in the list, given with those found
      here so that one message names them all.
    survey: An optional labels.LabelSurvey that every decoded label is
      added to, in list order, so that its callers need not read the labels
      again.
    with_oversegmentation: Whether every entry's oversegmentation is
      decoded too (unsupervised SegSort's training list).
    with_segment_groups: Whether, with oversegmentations, their segment
      groups are decoded and checked to nest as well.

  Returns:
    The largest (height, width) of the images, per axis; None for an empty
    list.

  Raises:
    DataError: One line naming the list file, line numbers and paths of the
      list's problems and of the entries that do not decode (undecodable or
      truncated files, labels of another size than their image, colour
      labels), in line order.
  """
  settings = decoding.DecodeSettings(
    None,
    ignore_label,
    with_oversegmentation,
    apply_exif_orientation,
    with_segment_groups=with_oversegmentation and with_segment_groups,
  )
  with multiprocessing.pool.ThreadPool(num_workers or os.cpu_count()) as pool:
    results = pool.imap(lambda entry: _decode_problem(entry, settings), entries)
    if progress is not None:
      results = progress(
        results, total=len(entries), desc='Checking files', unit='line'
      )
    problems = list(list_problems)
    largest_image_size = None
    # Results first: zip stops at the first exhausted iterable, and the
    # progress bar counts an item only when the next one is asked for.
    for (label, image_size, problem), entry in zip(results, entries):
      if problem is not None:
        problems.append((entry.line_number, problem))
        continue
      largest_image_size = _largest(largest_image_size, image_size)
      if survey is not None and label is not None:
        survey.add(entry, label)
  lists.raise_for_problems(
    data_list, sorted(problems, key=lambda problem: problem[0])
  )
  return largest_image_size


def _check_entry(entry, survey, settings):
  """Decodes one entry with `settings` (a decoding.DecodeSettings without
  num_classes, so that the survey sees out-of-range values); returns (its
  problems, each a description, and its image's (height, width) or None)."""
  label, image_size, problem = _decode_problem(entry, settings)
  if problem is not None:
    return [problem], None
  try:
    orientation = io_utils.read_exif_orientation(entry.image_path)
  except (errors.DataError, errors.ImageFileError) as error:
    return [str(error)], image_size
  problems = []
  if orientation != 1 and not settings.apply_exif_orientation:
    problems.append(
      '%s: %s'
      % (
        entry.location(),
        io_utils.describe_orientation(entry.image_path, orientation),
      )
    )
  if survey is not None and entry.label_path is not None:
    out_of_range = survey.add(entry, label)
    if out_of_range.size:
      problems.append(
        '%s: %d pixels of %s outside [0, %d) and not %d (values %s)'
        % (
          entry.location(),
          out_of_range.size,
          entry.label_path,
          len(survey.class_pixels),
          settings.ignore_label,
          np.unique(out_of_range)[:10].tolist(),
        )
      )
  return problems, image_size


def check_data_list(
  data_dir,
  data_list,
  num_classes=None,
  ignore_label=255,
  with_oversegmentation=False,
  *,
  with_segment_groups=False,
  require_labels=True,
  apply_exif_orientation=False,
  num_workers=None,
  progress=None,
):
  """Validates every line of a data list up front.

  Checks that lines are well formed, that files exist and decode (as every
  reader decodes them), that labels (and oversegmentations) are
  single-channel and of their image's size, that images need no EXIF
  orientation unless it is applied, and, with `num_classes`, that label
  values lie in `[0, num_classes)` or equal `ignore_label`, and which
  classes the list's labels hold (see `labels.LabelSurvey.warnings`); with
  `require_labels`, a list whose labels hold no class pixel is a problem
  too.

  Args:
    data_dir: The directory list paths are relative to.
    data_list: The list file.
    num_classes: The number of classes, or None to skip the value checks.
    ignore_label: The label value to ignore.
    with_oversegmentation: Whether to check oversegmentations too.
    with_segment_groups: Whether to check, with the oversegmentations, their
      segment groups (`lists.segment_groups_path`): present, of the image's
      size, every segment in one group.
    require_labels: Whether every line must name a label.
    apply_exif_orientation: Whether images are read turned as their EXIF
      orientation asks (`--apply_exif_orientation`).
    num_workers: Decoding threads; the number of CPUs when None.
    progress: An optional callable wrapping an iterable with a length (e.g.
      tqdm.tqdm) to show progress.

  Returns:
    A DataListReport.

  Raises:
    DataError: If the list file itself cannot be read.
  """
  entries, problems, num_lines = lists.parse_data_list(
    data_dir,
    data_list,
    require_labels,
    with_oversegmentation,
    with_segment_groups=with_segment_groups,
  )
  survey = (
    labels.LabelSurvey(data_list, num_classes, ignore_label, log_files=False)
    if num_classes is not None
    else None
  )
  settings = decoding.DecodeSettings(
    None,
    ignore_label,
    with_oversegmentation,
    apply_exif_orientation,
    with_segment_groups=with_oversegmentation and with_segment_groups,
  )
  with multiprocessing.pool.ThreadPool(num_workers or os.cpu_count()) as pool:
    results = pool.imap(
      lambda entry: _check_entry(entry, survey, settings), entries
    )
    if progress is not None:
      results = progress(
        results, total=len(entries), desc='Checking', unit='line'
      )
    largest_image_size = None
    for entry, (entry_problems, image_size) in zip(entries, results):
      problems.extend(
        (entry.line_number, problem) for problem in entry_problems
      )
      largest_image_size = _largest(largest_image_size, image_size)
  problems.sort(key=lambda problem: problem[0])
  # Only for a list without other problems: one whose files are missing
  # holds no class pixel either.
  if require_labels and survey is not None and not problems:
    no_class_problem = survey.no_class_problem()
    if no_class_problem is not None:
      problems.append((num_lines + 1, no_class_problem))
  return DataListReport(
    data_list,
    num_lines,
    [description for _, description in problems],
    survey.out_of_range_pixels if survey is not None else 0,
    survey.warnings() if survey is not None else [],
    largest_image_size,
  )
