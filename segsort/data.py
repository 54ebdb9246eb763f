"""Input pipelines for the VOC12 / SBD / oversegmentation data layout.

A data list holds one example per line, paths relative to a data directory:

    VOC2012/JPEGImages/2007_000032.jpg VOC2012/segcls/2007_000032.png

A line has 1 column (image only, for test sets), 2 columns (image and label)
or 3 columns (image, label and oversegmentation). Labels are single-channel
PNGs of class ids (grayscale by value, palette PNGs by palette index, as VOC's
SegmentationClass files) with 255 marking pixels to ignore; an
oversegmentation is a PNG (8 or 16 bit) holding one id per segment.

Images and labels are decoded by Pillow inside `tf.numpy_function`, so that a
file that cannot be decoded, a palette PNG, or a label whose size differs from
its image is handled per file and reported with the list file, line number
and path. Augmentation runs as TensorFlow ops keyed by stateless random seeds,
so a seeded pipeline is reproducible.
"""

import collections
import dataclasses
import logging
import multiprocessing.pool
import os
import random
import threading

import numpy as np
import tensorflow as tf

from network.segsort import common_utils
from segsort import errors
from segsort import io_utils

IMG_MEAN = (122.675, 116.669, 104.008)

# Range of the random scale factor of training images (the original's).
_MIN_SCALE = 0.5
_MAX_SCALE = 2.0

# Out-of-range label warnings name this many files before going quiet.
_MAX_OUT_OF_RANGE_WARNINGS = 10

# Problems quoted in a DataError message before the rest are only counted.
_MAX_PROBLEMS_IN_MESSAGE = 20

_LOGGER = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ListEntry:
  """One line of a data list, with paths joined to the data directory.

  Attributes:
    line_number: The 1-based line number in the list file.
    image_path: The image file.
    label_path: The label PNG, or None when the line has none.
    oversegmentation_path: The oversegmentation PNG, or None when not asked
      for.
    image_id: The image's file name without extension, e.g. '2007_000032'.
    list_path: The list file the entry comes from, for error messages.
  """

  line_number: int
  image_path: str
  label_path: str | None
  oversegmentation_path: str | None
  image_id: str
  list_path: str = ''

  def location(self):
    """Returns 'LIST, line N', where the entry comes from."""
    return '%s, line %d' % (self.list_path, self.line_number)


def _parse_data_list(
  data_dir, data_list, require_labels, with_oversegmentation
):
  """Parses a data list, collecting problems instead of stopping at one.

  Returns:
    entries: A list of ListEntry for the well-formed lines whose files exist.
    problems: A list of (line number, description) pairs, each description
      naming the list file, line number and, for a missing file, its path.
    num_lines: The number of non-blank lines.

  Raises:
    DataError: If the list file itself cannot be read.
  """
  try:
    lines = io_utils.read_list_lines(data_list)
  except errors.ListFileError as error:
    raise errors.DataError(str(error)) from error
  entries, problems, num_lines = [], [], 0
  min_fields = 2 if require_labels else 1
  for line_number, line in enumerate(lines, start=1):
    fields = io_utils.split_fields(line)
    if not fields:
      continue
    num_lines += 1
    if not min_fields <= len(fields) <= 3:
      problems.append(
        (
          line_number,
          (
            '%s, line %d: expected %s fields (IMAGE LABEL [OVERSEGMENTATION]), '
            'got %d: %r'
            % (
              data_list,
              line_number,
              '2 or 3' if require_labels else '1 to 3',
              len(fields),
              line.rstrip('\n'),
            )
          ),
        )
      )
      continue
    image_path = os.path.join(data_dir, fields[0])
    image_id = os.path.splitext(os.path.basename(fields[0]))[0]
    label_path = os.path.join(data_dir, fields[1]) if len(fields) > 1 else None
    oversegmentation_path = None
    if with_oversegmentation:
      if len(fields) == 3:
        oversegmentation_path = os.path.join(data_dir, fields[2])
      else:
        oversegmentation_path = os.path.join(
          data_dir, 'VOC2012', 'hed', image_id + '.png'
        )
    entry = ListEntry(
      line_number,
      image_path,
      label_path,
      oversegmentation_path,
      image_id,
      data_list,
    )
    missing = [
      path
      for path in (image_path, label_path, oversegmentation_path)
      if path is not None and not os.path.exists(path)
    ]
    for path in missing:
      problems.append(
        (
          line_number,
          '%s: missing file %s'
          % (entry.location(), io_utils.printable_path(path)),
        )
      )
    if not missing:
      entries.append(entry)
  return entries, problems, num_lines


def _raise_for_problems(data_list, problems):
  if not problems:
    return
  shown = [
    description for _, description in problems[:_MAX_PROBLEMS_IN_MESSAGE]
  ]
  message = '%d problem(s) in data list %s:\n  %s' % (
    len(problems),
    data_list,
    '\n  '.join(shown),
  )
  if len(problems) > len(shown):
    message += '\n  ... and %d more' % (len(problems) - len(shown))
  raise errors.DataError(message)


def read_data_list(
  data_dir, data_list, require_labels=True, with_oversegmentation=False
):
  """Reads a data list and checks that every file it names exists.

  The oversegmentation of an image is the line's third column when present,
  else `data_dir/VOC2012/hed/<image_id>.png`. It is never derived from the
  label path: the original release's `replace('segcls', 'hed')` left the
  label path of SBD images (`sbd/dataset/clsimg/...`) unchanged and so
  silently trained "unsupervised" on SBD ground truth for 9,118 of the
  10,582 train+ images.

  Args:
    data_dir: The directory list paths are relative to (with or without a
      trailing slash; absolute list paths are kept).
    data_list: The list file.
    require_labels: Whether every line must name a label; when False,
      one-column lines (image only) are allowed.
    with_oversegmentation: Whether to find each image's oversegmentation.

  Returns:
    A list of ListEntry in list order, blank lines skipped.

  Raises:
    DataError: If a line has the wrong number of fields or names a missing
      file; the message names the list file, line numbers and paths.
  """
  entries, problems, _ = _parse_data_list(
    data_dir, data_list, require_labels, with_oversegmentation
  )
  _raise_for_problems(data_list, problems)
  return entries


def load_image(path, apply_exif_orientation=False):
  """Decodes an image file into RGB (`io_utils.read_rgb_image`).

  Args:
    path: An image file (JPEG, PNG, ...).
    apply_exif_orientation: Whether to turn the image as its EXIF
      orientation asks.

  Returns:
    A uint8 array `[height, width, 3]`.

  Raises:
    DataError: If the file cannot be read or decoded (also when truncated).
  """
  try:
    return io_utils.read_rgb_image(path, apply_exif_orientation)
  except errors.ImageFileError as error:
    raise errors.DataError(str(error)) from error


def load_label(path, apply_exif_orientation=False):
  """Decodes a label or oversegmentation PNG (`io_utils.read_label_image`).

  Args:
    path: A single-channel image file.
    apply_exif_orientation: Whether to turn the ids as the file's EXIF
      orientation asks.

  Returns:
    An int32 array `[height, width]`.

  Raises:
    DataError: If the file cannot be decoded or has colour channels.
  """
  try:
    return io_utils.read_label_image(
      path, apply_exif_orientation=apply_exif_orientation
    )
  except errors.ImageFileError as error:
    raise errors.DataError(str(error)) from error


def out_of_range_mask(label, num_classes, ignore_label):
  """Marks label values outside [0, num_classes) other than the ignore label.

  The one definition of the values every reader ignores (training, the label
  survey, prototype extraction): they are reported, then treated as the
  ignore label (`ignore_out_of_range`).

  Args:
    label: An int array of label values.
    num_classes: The number of classes.
    ignore_label: The label value of pixels to leave out.

  Returns:
    A bool array of `label`'s shape.
  """
  return ((label < 0) | (label >= num_classes)) & (label != ignore_label)


def ignore_out_of_range(label, num_classes, ignore_label):
  """Sets the values `out_of_range_mask` marks to the ignore label.

  Args:
    label: An int array of label values.
    num_classes: The number of classes.
    ignore_label: The label value of pixels to leave out.

  Returns:
    A new array of `label`'s shape and dtype.
  """
  return np.where(
    out_of_range_mask(label, num_classes, ignore_label), ignore_label, label
  ).astype(label.dtype)


class LabelSurvey:
  """Surveys the labels of a list: class pixels and values out of range.

  Out-of-range values (outside [0, num_classes), other than the ignore label)
  are ignored by every reader; with `log_files` they are logged once per file
  for the first `_MAX_OUT_OF_RANGE_WARNINGS` files, and
  `log_out_of_range_total` counts them all. `warnings` names classes that never appear and labels that hold
  only 0 and the ignore label (binary masks stored as 0/255, whose foreground
  would all be ignored). Thread-safe: files may be added from several
  threads.

  Attributes:
    class_pixels: int64 `[num_classes]`, the labelled pixels of every class.
    out_of_range_pixels: The number of out-of-range pixels.
    out_of_range_files: The number of files holding any.
  """

  def __init__(self, data_list, num_classes, ignore_label, log_files=True):
    self._data_list = data_list
    self._num_classes = num_classes
    self._ignore_label = ignore_label
    self._log_files = log_files
    self._lock = threading.Lock()
    self._ignored_pixels = 0
    self.class_pixels = np.zeros(num_classes, np.int64)
    self.out_of_range_pixels = 0
    self.out_of_range_files = 0

  def add(self, entry, label):
    """Counts one entry's label (before out-of-range values are ignored).

    Returns:
      The label's out-of-range values, a 1-D array.
    """
    out_of_range_pixels = out_of_range_mask(
      label, self._num_classes, self._ignore_label
    )
    ignored_pixels = label == self._ignore_label
    out_of_range = label[out_of_range_pixels]
    valid = label[~(out_of_range_pixels | ignored_pixels)]
    class_pixels = np.bincount(valid.ravel(), minlength=self._num_classes)
    num_ignored = int(np.count_nonzero(ignored_pixels))
    with self._lock:
      self.class_pixels += class_pixels
      self._ignored_pixels += num_ignored
      if not out_of_range.size:
        return out_of_range
      self.out_of_range_pixels += out_of_range.size
      self.out_of_range_files += 1
      num_files = self.out_of_range_files
    if self._log_files and num_files <= _MAX_OUT_OF_RANGE_WARNINGS:
      _LOGGER.warning(
        '%s: %d label pixels of %s outside [0, %d) (values %s) are '
        'ignored (as %d)%s',
        entry.location(),
        out_of_range.size,
        entry.label_path,
        self._num_classes,
        np.unique(out_of_range)[:10].tolist(),
        self._ignore_label,
        '; further files are counted, and their number logged at the end'
        if num_files == _MAX_OUT_OF_RANGE_WARNINGS
        else '',
      )
    return out_of_range

  def warnings(self):
    """Describes suspicious labels of the whole list, one string each."""
    present = self.class_pixels > 0
    if (
      present[0]
      and not present[1:].any()
      and self._ignored_pixels
      and not self.out_of_range_pixels
      and self._num_classes > 1
    ):
      return [
        'The labels of %s hold only 0 and the ignore label %d: if they '
        'are binary masks stored as 0/%d, every foreground pixel is '
        'ignored; store the foreground as class 1.'
        % (self._data_list, self._ignore_label, self._ignore_label)
      ]
    missing = np.flatnonzero(~present).tolist()
    if missing and present.any():
      return [
        'No pixel of the labels of %s has class %s (of [0, %d)): the '
        'network never learns %s.'
        % (
          self._data_list,
          ', '.join(map(str, missing)),
          self._num_classes,
          'it' if len(missing) == 1 else 'them',
        )
      ]
    return []

  def log_out_of_range_total(self):
    """Logs the out-of-range pixels and files in all, and those not named."""
    if not self.out_of_range_files:
      return
    further = self.out_of_range_files - _MAX_OUT_OF_RANGE_WARNINGS
    _LOGGER.warning(
      'Ignored %d label pixels of %d files of %s holding values outside '
      '[0, %d)%s.',
      self.out_of_range_pixels,
      self.out_of_range_files,
      self._data_list,
      self._num_classes,
      ' (%d files not named above)' % further if further > 0 else '',
    )


def survey_labels(
  data_dir,
  data_list,
  num_classes,
  ignore_label,
  apply_exif_orientation=False,
  num_workers=None,
):
  """Reads every label of a list once and logs what LabelSurvey finds.

  Training reads every label once per epoch; surveying them up front warns
  of each file once, before any step, and of classes missing from the whole
  list.

  Args:
    data_dir: The directory list paths are relative to.
    data_list: The list file; lines without label are skipped.
    num_classes: The number of classes.
    ignore_label: The label value to ignore.
    apply_exif_orientation: Passed to `load_label`.
    num_workers: Decoding threads; the number of CPUs when None.

  Returns:
    The LabelSurvey.

  Raises:
    DataError: If the list is malformed or names missing files, or naming
      the list file, line number and path of a label that cannot be decoded.
  """
  entries = read_data_list(data_dir, data_list, require_labels=False)
  survey = LabelSurvey(data_list, num_classes, ignore_label)

  def add(entry):
    try:
      label = load_label(entry.label_path, apply_exif_orientation)
    except errors.DataError as error:
      raise errors.DataError('%s: %s' % (entry.location(), error)) from error
    survey.add(entry, label)

  labelled = [entry for entry in entries if entry.label_path is not None]
  with multiprocessing.pool.ThreadPool(num_workers or os.cpu_count()) as pool:
    for _ in pool.imap_unordered(add, labelled):
      pass
  survey.log_out_of_range_total()
  for warning in survey.warnings():
    _LOGGER.warning(warning)
  return survey


def _decode_entry(
  entry,
  *,
  num_classes,
  ignore_label,
  with_oversegmentation,
  apply_exif_orientation=False,
):
  """Decodes and validates one entry's files.

  Returns:
    image: uint8 `[H, W, 3]`.
    label: int32 `[H, W]`, all `ignore_label` when the entry has no label;
      with `num_classes`, values outside [0, num_classes) are set to
      `ignore_label`.
    oversegmentation: int32 `[H, W]` when asked for, else None.

  Raises:
    DataError: Naming the list file, line number and path, if a file cannot
      be decoded or its size differs from the image's.
  """
  try:
    image = load_image(entry.image_path, apply_exif_orientation)
    height, width = image.shape[:2]
    if entry.label_path is None:
      label = np.full((height, width), ignore_label, np.int32)
    else:
      label = load_label(entry.label_path, apply_exif_orientation)
      _check_size(entry.label_path, label, image)
      if num_classes is not None:
        label = ignore_out_of_range(label, num_classes, ignore_label)
    oversegmentation = None
    if with_oversegmentation:
      oversegmentation = load_label(
        entry.oversegmentation_path, apply_exif_orientation
      )
      _check_size(entry.oversegmentation_path, oversegmentation, image)
  except errors.DataError as error:
    raise errors.DataError('%s: %s' % (entry.location(), error)) from error
  return image, label, oversegmentation


def _check_size(path, array, image):
  if array.shape != image.shape[:2]:
    raise errors.DataError(
      '%s is %dx%d but its image is %dx%d'
      % (path, array.shape[0], array.shape[1], image.shape[0], image.shape[1])
    )


def _decode_op(
  entries,
  *,
  num_classes,
  ignore_label,
  with_oversegmentation,
  apply_exif_orientation=False,
  with_labels=True,
):
  """Wraps _decode_entry as a TF op taking the entry's index.

  Without `with_labels`, label files are not read: every label is
  `ignore_label`.

  Returns:
    A function mapping a scalar index tensor to (image uint8 [H, W, 3], label
    int32 [H, W, 1]) or, with oversegmentation, (image, label,
    oversegmentation int32 [H, W, 1]).
  """

  def decode(index):
    entry = entries[int(index)]
    if not with_labels:
      entry = dataclasses.replace(entry, label_path=None)
    image, label, oversegmentation = _decode_entry(
      entry,
      num_classes=num_classes,
      ignore_label=ignore_label,
      with_oversegmentation=with_oversegmentation,
      apply_exif_orientation=apply_exif_orientation,
    )
    if with_oversegmentation:
      return image, label, oversegmentation
    return image, label

  output_types = [tf.uint8, tf.int32] + (
    [tf.int32] if with_oversegmentation else []
  )

  def decode_op(index):
    image, *id_maps = tf.numpy_function(
      decode, [index], output_types, stateful=False
    )
    image = tf.ensure_shape(image, [None, None, 3])
    return [image] + [
      tf.ensure_shape(id_map, [None, None])[..., tf.newaxis]
      for id_map in id_maps
    ]

  return decode_op


# Where the output positions of a resize along one axis sample the input:
# the nearest pixel, and the two bilinear pixels with the weight of `upper`.
_SourceIndices = collections.namedtuple(
  '_SourceIndices', ['nearest', 'lower', 'upper', 'fraction']
)


def _resize_indices(positions, in_size, out_size):
  """Source pixels of output positions of a resize from in_size to out_size.

  Follows `tf.image.resize` (half-pixel centres) exactly, so that sampling
  only the pixels a crop needs equals resizing the whole image and cropping.

  Args:
    positions: An int32 tensor of output positions in `[0, out_size)`.
    in_size: A scalar int32 tensor, the input size along this axis.
    out_size: A scalar int32 tensor, the output size along this axis.

  Returns:
    A _SourceIndices of int32 indices and float32 fractions, one per
    position.
  """
  scale = tf.cast(in_size, tf.float32) / tf.cast(out_size, tf.float32)
  centres = (tf.cast(positions, tf.float32) + 0.5) * scale
  nearest = tf.clip_by_value(
    tf.cast(tf.floor(centres), tf.int32), 0, in_size - 1
  )
  source = centres - 0.5
  source_floor = tf.floor(source)
  lower = tf.maximum(tf.cast(source_floor, tf.int32), 0)
  upper = tf.minimum(tf.cast(tf.math.ceil(source), tf.int32), in_size - 1)
  return _SourceIndices(nearest, lower, upper, source - source_floor)


def _gather_bilinear(image, rows, columns):
  """Bilinearly samples `image` [H, W, C] at rows x columns (_SourceIndices)."""
  top = tf.cast(tf.gather(image, rows.lower, axis=0), tf.float32)
  bottom = tf.cast(tf.gather(image, rows.upper, axis=0), tf.float32)
  image_rows = top + (bottom - top) * rows.fraction[:, tf.newaxis, tf.newaxis]
  left = tf.gather(image_rows, columns.lower, axis=1)
  right = tf.gather(image_rows, columns.upper, axis=1)
  return left + (right - left) * columns.fraction[tf.newaxis, :, tf.newaxis]


def _gather_nearest(array, rows, columns):
  """Samples `array` [H, W, ...] at the nearest pixels of rows x columns."""
  return tf.gather(
    tf.gather(array, rows.nearest, axis=0), columns.nearest, axis=1
  )


# The keys of a training example, as augment_example gives them.
TRAINING_KEYS = (
  'image',
  'label',
  'cluster_label',
  'loc_feature',
  'oversegmentation',
)


def augment_example(
  image,
  label,
  crop_size,
  seed,
  *,
  oversegmentation=None,
  num_clusters=(5, 5),
  kmeans_grid='image',
  random_scale=True,
  random_mirror=True,
  random_crop=True,
  ignore_label=255,
  outputs=None,
):
  """Scales, mirrors, pads and crops one example, as the original release.

  The steps are: scale by a factor uniform in [0.5, 2.0] (bilinear for the
  image, nearest neighbour for the rest), mirror left-right with probability
  1/2, pad bottom and right to at least the crop size, and crop at a random
  (or the central) position. Only the pixels inside the crop are computed:
  the crop window is mapped back to source pixels, which gives the same
  result as transforming the whole image and cropping, at a fraction of the
  cost.

  With `kmeans_grid='image'` (the original release), cluster labels (a
  `num_clusters` grid) and location features are those of the original
  image, so they follow its pixels through every step; a crop much smaller
  than its scaled image then starts k-means from only the few cells it
  overlaps. With `kmeans_grid='crop'` they are laid on the crop itself, as
  inference lays them on each window, so that training segments have the
  size of the segments that inference and prototype extraction make.

  Args:
    image: A uint8 tensor `[H, W, 3]`.
    label: An int32 tensor `[H, W, 1]`.
    crop_size: (crop_height, crop_width), Python integers.
    seed: An int64 tensor `[2]`, the stateless random seed of this example.
    oversegmentation: An optional int32 tensor `[H, W, 1]`.
    num_clusters: (clusters along y, clusters along x) of the grid.
    kmeans_grid: 'image' or 'crop', what the grid and the location features
      span (see above).
    random_scale: Whether to scale randomly.
    random_mirror: Whether to mirror randomly.
    random_crop: Whether to crop at a random position (else the centre).
    ignore_label: The label of padded pixels.
    outputs: The keys to compute (of TRAINING_KEYS; 'image' always is), or
      None for all; others are left out of the result.

  Returns:
    A dict of tensors of static shape `[crop_height, crop_width, C]`: 'image'
    float32 (RGB minus IMG_MEAN, 0 in padding), 'label' int32 (ignore_label
    in padding), 'cluster_label' int32 (0 in padding), 'loc_feature'
    float32 (y / H, x / W of the source pixel, 0 in padding) and, when
    given, 'oversegmentation' int32 (-1 in padding).
  """
  outputs = set(TRAINING_KEYS if outputs is None else outputs) | {'image'}
  crop_height, crop_width = crop_size
  scale_seed, mirror_seed, row_seed, column_seed = tf.unstack(
    tf.random.experimental.stateless_split(seed, 4)
  )
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  if random_scale:
    scale = tf.random.stateless_uniform([], scale_seed, _MIN_SCALE, _MAX_SCALE)
    scaled_height = tf.maximum(
      tf.cast(tf.cast(height, tf.float32) * scale, tf.int32), 1
    )
    scaled_width = tf.maximum(
      tf.cast(tf.cast(width, tf.float32) * scale, tf.int32), 1
    )
  else:
    scaled_height, scaled_width = height, width
  padded_height = tf.maximum(scaled_height, crop_height)
  padded_width = tf.maximum(scaled_width, crop_width)
  if random_crop:
    top = tf.random.stateless_uniform(
      [], row_seed, 0, padded_height - crop_height + 1, dtype=tf.int32
    )
    left = tf.random.stateless_uniform(
      [], column_seed, 0, padded_width - crop_width + 1, dtype=tf.int32
    )
  else:
    top = (padded_height - crop_height) // 2
    left = (padded_width - crop_width) // 2
  # Rows and columns of the crop that fall on the scaled image, not padding.
  valid_height = tf.minimum(crop_height, scaled_height - top)
  valid_width = tf.minimum(crop_width, scaled_width - left)
  scaled_rows = top + tf.range(valid_height)
  scaled_columns = left + tf.range(valid_width)
  if random_mirror:
    mirror = tf.random.stateless_uniform([], mirror_seed) < 0.5
    scaled_columns = tf.where(
      mirror, scaled_width - 1 - scaled_columns, scaled_columns
    )
  rows = _resize_indices(scaled_rows, height, scaled_height)
  columns = _resize_indices(scaled_columns, width, scaled_width)
  paddings = [
    [0, crop_height - valid_height],
    [0, crop_width - valid_width],
    [0, 0],
  ]

  def pad(tensor, value):
    padded = tf.pad(tensor, paddings, constant_values=value)
    padded.set_shape([crop_height, crop_width, tensor.shape[-1]])
    return padded

  image = _gather_bilinear(image, rows, columns) - tf.constant(IMG_MEAN)
  example = {'image': pad(image, 0.0)}
  if 'label' in outputs:
    example['label'] = pad(_gather_nearest(label, rows, columns), ignore_label)
  if kmeans_grid == 'crop':
    if 'cluster_label' in outputs:
      example['cluster_label'] = common_utils.initialize_cluster_labels(
        num_clusters, crop_size
      )[..., tf.newaxis]
    if 'loc_feature' in outputs:
      example['loc_feature'] = common_utils.generate_location_features(
        crop_size, 'float'
      )
    outputs = outputs - {'cluster_label', 'loc_feature'}
  if 'cluster_label' in outputs:
    cluster_grid = common_utils.initialize_cluster_labels(
      num_clusters, [height, width]
    )
    example['cluster_label'] = pad(
      _gather_nearest(cluster_grid, rows, columns)[..., tf.newaxis], 0
    )
  if 'loc_feature' in outputs:
    location = tf.stack(
      tf.meshgrid(
        tf.cast(rows.nearest, tf.float32) / tf.cast(height, tf.float32),
        tf.cast(columns.nearest, tf.float32) / tf.cast(width, tf.float32),
        indexing='ij',
      ),
      axis=2,
    )
    example['loc_feature'] = pad(location, 0.0)
  if oversegmentation is not None and 'oversegmentation' in outputs:
    example['oversegmentation'] = pad(
      _gather_nearest(oversegmentation, rows, columns), -1
    )
  return example


def _random_base_seed():
  return random.SystemRandom().randrange(2**31)


def build_training_dataset(
  data_dir,
  data_list,
  input_size,
  batch_size,
  *,
  random_scale=True,
  random_mirror=True,
  random_crop=True,
  ignore_label=255,
  num_classes=None,
  num_clusters=5,
  kmeans_grid='image',
  unsupervised=False,
  seed=None,
  deterministic=False,
  shuffle=True,
  repeat=True,
  drop_remainder=True,
  start_batch=0,
  outputs=None,
  apply_exif_orientation=False,
):
  """Builds the batched, augmented training input pipeline.

  Every example is decoded, scaled, mirrored, padded and cropped (see
  `augment_example`) with random draws keyed by (seed, position in the
  stream), and the list is reshuffled every epoch by a permutation keyed by
  (seed, epoch). With a seed and `deterministic=True`, two runs therefore
  give identical batches; with `deterministic=False` examples may come out of
  order for speed, but each keeps its own augmentation. Because nothing but
  the position in the stream decides an example, a pipeline built with
  `start_batch=k` continues exactly where a fresh one would be after k
  batches (e.g. when training resumes from a checkpoint at step k) without
  reading the skipped examples.

  Args:
    data_dir: The directory list paths are relative to.
    data_list: The list file.
    input_size: (height, width) of the crops.
    batch_size: The number of examples per batch.
    random_scale: Whether to scale by a factor uniform in [0.5, 2.0].
    random_mirror: Whether to mirror left-right at random.
    random_crop: Whether to crop at random positions (else centre crops).
    ignore_label: The label of pixels to ignore (padding, void).
    num_classes: When given, label values outside `[0, num_classes)` other
      than `ignore_label` are set to `ignore_label` (`survey_labels` reports
      them).
    num_clusters: The grid of initial clusters, an integer n (an n x n grid)
      or (clusters along y, clusters along x).
    kmeans_grid: 'image' or 'crop' (see `augment_example`).
    unsupervised: Whether to add each image's oversegmentation; labels are
      then optional (all `ignore_label` where the list has none).
    seed: An integer seed for shuffling and augmentation; random when None.
    deterministic: Whether to keep the output order fixed.
    shuffle: Whether to shuffle the list every epoch.
    repeat: Whether to repeat the list forever.
    drop_remainder: Whether to drop a last, smaller batch.
    start_batch: The number of batches of the stream to skip.
    outputs: The keys to give (see below; 'image' always is), or None for
      all, so that a mode computes only what it uses; without 'label',
      label files are not read. The batches' values do not depend on it.
    apply_exif_orientation: Whether to turn every file as its EXIF
      orientation asks (see `io_utils.read_rgb_image`).

  Returns:
    A tf.data.Dataset of dicts: 'image' float32 `[B, H, W, 3]`, 'label'
    int32 `[B, H, W, 1]`, 'cluster_label' int32 `[B, H, W, 1]`,
    'loc_feature' float32 `[B, H, W, 2]` and, when unsupervised,
    'oversegmentation' int32 `[B, H, W, 1]` (B static when drop_remainder);
    only those of `outputs` when given.

  Raises:
    DataError: If the list is malformed or names missing files. Files that
      cannot be decoded, or labels of another size than their image, raise
      tf.errors.InvalidArgumentError naming the list file, line and path when
      the example is read.
  """
  entries = read_data_list(
    data_dir,
    data_list,
    require_labels=not unsupervised,
    with_oversegmentation=unsupervised,
  )
  if not entries:
    raise errors.DataError('Data list %s is empty' % data_list)
  num_clusters = common_utils.cluster_grid(num_clusters)
  crop_size = (int(input_size[0]), int(input_size[1]))
  base_seed = _random_base_seed() if seed is None else int(seed)
  shuffle_key = tf.constant([base_seed, 0], tf.int64)
  augment_key = tf.constant([base_seed, 1], tf.int64)
  num_entries = len(entries)
  decode = _decode_op(
    entries,
    num_classes=num_classes,
    ignore_label=ignore_label,
    with_oversegmentation=unsupervised,
    apply_exif_orientation=apply_exif_orientation,
    with_labels=outputs is None or 'label' in outputs,
  )

  def epoch_order(epoch):
    order = tf.range(num_entries, dtype=tf.int64)
    if shuffle:
      order = tf.random.experimental.stateless_shuffle(
        order, tf.random.experimental.stateless_fold_in(shuffle_key, epoch)
      )
    return tf.data.Dataset.from_tensor_slices(order)

  def load_example(position, index):
    image, label, *oversegmentation = decode(index)
    return augment_example(
      image,
      label,
      crop_size,
      tf.random.experimental.stateless_fold_in(augment_key, position),
      oversegmentation=oversegmentation[0] if unsupervised else None,
      num_clusters=num_clusters,
      kmeans_grid=kmeans_grid,
      random_scale=random_scale,
      random_mirror=random_mirror,
      random_crop=random_crop,
      ignore_label=ignore_label,
      outputs=outputs,
    )

  first_position = start_batch * batch_size
  first_epoch, first_offset = divmod(first_position, num_entries)
  epochs = (
    tf.data.Dataset.counter(start=first_epoch)
    if repeat
    else tf.data.Dataset.range(first_epoch, 1)
  )
  dataset = (
    epochs.flat_map(epoch_order)
    .skip(first_offset)
    .enumerate(start=first_position)
  )
  dataset = dataset.map(
    load_example,
    num_parallel_calls=tf.data.AUTOTUNE,
    deterministic=deterministic,
  )
  dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
  return dataset.prefetch(tf.data.AUTOTUNE)


def entries_dataset(
  entries,
  *,
  with_oversegmentation=False,
  ignore_label=255,
  apply_exif_orientation=False,
):
  """Builds the unbatched, full-size, in-order pipeline of given entries.

  Args:
    entries: ListEntry objects (e.g. the unfinished ones of a list).
    with_oversegmentation: Whether to add each image's oversegmentation.
    ignore_label: The label of every pixel of an image without label.
    apply_exif_orientation: Whether to turn every file as its EXIF
      orientation asks.

  Returns:
    A tf.data.Dataset of dicts in the entries' order: 'image' float32
    `[H, W, 3]` (RGB minus IMG_MEAN), 'label' int32 `[H, W, 1]`, 'index'
    int32 (the position in `entries`) and, when asked for, 'oversegmentation'
    int32 `[H, W, 1]`.
  """
  decode = _decode_op(
    entries,
    num_classes=None,
    ignore_label=ignore_label,
    with_oversegmentation=with_oversegmentation,
    apply_exif_orientation=apply_exif_orientation,
  )

  def load_example(index):
    image, label, *oversegmentation = decode(index)
    example = {
      'image': tf.cast(image, tf.float32) - tf.constant(IMG_MEAN),
      'label': label,
      'index': tf.cast(index, tf.int32),
    }
    if with_oversegmentation:
      example['oversegmentation'] = oversegmentation[0]
    return example

  dataset = tf.data.Dataset.range(len(entries)).map(
    load_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
  )
  return dataset.prefetch(tf.data.AUTOTUNE)


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
      (`LabelSurvey.warnings`), which are not problems.
  """

  data_list: str
  num_entries: int
  problems: list
  out_of_range_pixels: int = 0
  warnings: list = dataclasses.field(default_factory=list)

  @property
  def ok(self):
    """Whether no problem was found."""
    return not self.problems


def _check_entry(
  entry, survey, ignore_label, with_oversegmentation, apply_exif_orientation
):
  """Decodes one entry; returns its problems, each a description."""
  try:
    _, label, _ = _decode_entry(
      entry,
      num_classes=None,
      ignore_label=ignore_label,
      with_oversegmentation=with_oversegmentation,
      apply_exif_orientation=apply_exif_orientation,
    )
    orientation = io_utils.read_exif_orientation(entry.image_path)
  except (errors.DataError, errors.ImageFileError) as error:
    return [str(error)]
  problems = []
  if orientation != 1 and not apply_exif_orientation:
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
          ignore_label,
          np.unique(out_of_range)[:10].tolist(),
        )
      )
  return problems


def check_data_list(
  data_dir,
  data_list,
  num_classes=None,
  ignore_label=255,
  with_oversegmentation=False,
  *,
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
  classes the list's labels hold (see `LabelSurvey.warnings`).

  Args:
    data_dir: The directory list paths are relative to.
    data_list: The list file.
    num_classes: The number of classes, or None to skip the value checks.
    ignore_label: The label value to ignore.
    with_oversegmentation: Whether to check oversegmentations too.
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
  entries, problems, num_lines = _parse_data_list(
    data_dir, data_list, require_labels, with_oversegmentation
  )
  survey = (
    LabelSurvey(data_list, num_classes, ignore_label, log_files=False)
    if num_classes is not None
    else None
  )
  with multiprocessing.pool.ThreadPool(num_workers or os.cpu_count()) as pool:
    results = pool.imap(
      lambda entry: _check_entry(
        entry,
        survey,
        ignore_label,
        with_oversegmentation,
        apply_exif_orientation,
      ),
      entries,
    )
    if progress is not None:
      results = progress(results, total=len(entries))
    for entry, entry_problems in zip(entries, results):
      problems.extend(
        (entry.line_number, problem) for problem in entry_problems
      )
  problems.sort(key=lambda problem: problem[0])
  return DataListReport(
    data_list,
    num_lines,
    [description for _, description in problems],
    survey.out_of_range_pixels if survey is not None else 0,
    survey.warnings() if survey is not None else [],
  )
