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
from segsort import io_utils
from segsort.config import KMEANS_GRIDS

IMG_MEAN = (122.675, 116.669, 104.008)

# Range of the random scale factor of training images (the original's).
_MIN_SCALE = 0.5
_MAX_SCALE = 2.0

# Out-of-range label warnings name this many files before going quiet.
_MAX_OUT_OF_RANGE_WARNINGS = 10

# Problems quoted in a DataError message before the rest are only counted.
_MAX_PROBLEMS_IN_MESSAGE = 20

# Pillow modes of single-channel images: palette, 8-bit, 32-bit, 16-bit and
# 1-bit; np.asarray gives palette indices for 'P'.
_LOGGER = logging.getLogger(__name__)


class DataError(ValueError):
  """A data list or one of its files is malformed, missing or undecodable."""


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


def _parse_data_list(data_dir, data_list, require_labels,
                     with_oversegmentation):
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
    with open(data_list) as stream:
      lines = stream.readlines()
  except OSError as error:
    raise DataError(
        'Cannot read data list %s: %s' % (data_list, error)) from error
  entries, problems, num_lines = [], [], 0
  min_fields = 2 if require_labels else 1
  for line_number, line in enumerate(lines, start=1):
    fields = line.split()
    if not fields:
      continue
    num_lines += 1
    if not min_fields <= len(fields) <= 3:
      problems.append((line_number, (
          '%s, line %d: expected %s fields (IMAGE LABEL [OVERSEGMENTATION]), '
          'got %d: %r' % (data_list, line_number,
                          '2 or 3' if require_labels else '1 to 3',
                          len(fields), line.rstrip('\n')))))
      continue
    image_path = os.path.join(data_dir, fields[0])
    image_id = os.path.splitext(os.path.basename(fields[0]))[0]
    label_path = os.path.join(data_dir, fields[1]) if len(fields) > 1 else None
    oversegmentation_path = None
    if with_oversegmentation:
      if len(fields) == 3:
        oversegmentation_path = os.path.join(data_dir, fields[2])
      else:
        oversegmentation_path = os.path.join(data_dir, 'VOC2012', 'hed',
                                             image_id + '.png')
    entry = ListEntry(line_number, image_path, label_path,
                      oversegmentation_path, image_id, data_list)
    missing = [path for path in (image_path, label_path, oversegmentation_path)
               if path is not None and not os.path.exists(path)]
    for path in missing:
      problems.append(
          (line_number, '%s: missing file %s' % (entry.location(), path)))
    if not missing:
      entries.append(entry)
  return entries, problems, num_lines


def _raise_for_problems(data_list, problems):
  if not problems:
    return
  shown = [description
           for _, description in problems[:_MAX_PROBLEMS_IN_MESSAGE]]
  message = '%d problem(s) in data list %s:\n  %s' % (
      len(problems), data_list, '\n  '.join(shown))
  if len(problems) > len(shown):
    message += '\n  ... and %d more' % (len(problems) - len(shown))
  raise DataError(message)


def read_data_list(data_dir, data_list, require_labels=True,
                   with_oversegmentation=False):
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
  entries, problems, _ = _parse_data_list(data_dir, data_list,
                                          require_labels, with_oversegmentation)
  _raise_for_problems(data_list, problems)
  return entries


def load_image(path):
  """Decodes an image file into RGB (`io_utils.read_rgb_image`).

  Args:
    path: An image file (JPEG, PNG, ...).

  Returns:
    A uint8 array `[height, width, 3]`.

  Raises:
    DataError: If the file cannot be read or decoded (also when truncated).
  """
  try:
    return io_utils.read_rgb_image(path)
  except io_utils.ImageFileError as error:
    raise DataError(str(error)) from error


def load_label(path):
  """Decodes a label or oversegmentation PNG (`io_utils.read_label_image`).

  Args:
    path: A single-channel image file.

  Returns:
    An int32 array `[height, width]`.

  Raises:
    DataError: If the file cannot be decoded or has colour channels.
  """
  try:
    return io_utils.read_label_image(path)
  except io_utils.ImageFileError as error:
    raise DataError(str(error)) from error


class _OutOfRangeLog:
  """Counts and logs label values set to ignore because they are too large.

  Thread-safe: decoding runs on several tf.data threads at once.
  """

  def __init__(self, num_classes, ignore_label):
    self._num_classes = num_classes
    self._ignore_label = ignore_label
    self._lock = threading.Lock()
    self.num_pixels = 0
    self.num_files = 0

  def record(self, entry, values):
    with self._lock:
      self.num_pixels += values.size
      self.num_files += 1
      if self.num_files <= _MAX_OUT_OF_RANGE_WARNINGS:
        _LOGGER.warning(
            '%s: %d label pixels outside [0, %d) (values %s) in %s set to '
            'ignore (%d)%s', entry.location(), values.size, self._num_classes,
            np.unique(values)[:10].tolist(), entry.label_path,
            self._ignore_label,
            '; further files are counted but not logged'
            if self.num_files == _MAX_OUT_OF_RANGE_WARNINGS else '')


def _decode_entry(entry, *, num_classes, ignore_label, with_oversegmentation,
                  out_of_range_log=None):
  """Decodes and validates one entry's files.

  Returns:
    image: uint8 `[H, W, 3]`.
    label: int32 `[H, W]`, all `ignore_label` when the entry has no label.
    oversegmentation: int32 `[H, W]` when asked for, else None.

  Raises:
    DataError: Naming the list file, line number and path, if a file cannot
      be decoded or its size differs from the image's.
  """
  try:
    image = load_image(entry.image_path)
    height, width = image.shape[:2]
    if entry.label_path is None:
      label = np.full((height, width), ignore_label, np.int32)
    else:
      label = load_label(entry.label_path)
      _check_size(entry.label_path, label, image)
      if num_classes is not None:
        out_of_range = (label >= num_classes) & (label != ignore_label)
        if out_of_range.any():
          if out_of_range_log is not None:
            out_of_range_log.record(entry, label[out_of_range])
          label[out_of_range] = ignore_label
    oversegmentation = None
    if with_oversegmentation:
      oversegmentation = load_label(entry.oversegmentation_path)
      _check_size(entry.oversegmentation_path, oversegmentation, image)
  except DataError as error:
    raise DataError('%s: %s' % (entry.location(), error)) from error
  return image, label, oversegmentation


def _check_size(path, array, image):
  if array.shape != image.shape[:2]:
    raise DataError('%s is %dx%d but its image is %dx%d' % (
        path, array.shape[0], array.shape[1], image.shape[0], image.shape[1]))


def _decode_op(entries, *, num_classes, ignore_label, with_oversegmentation,
               out_of_range_log=None, with_labels=True):
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
        entry, num_classes=num_classes,
        ignore_label=ignore_label,
        with_oversegmentation=with_oversegmentation,
        out_of_range_log=out_of_range_log)
    if with_oversegmentation:
      return image, label, oversegmentation
    return image, label

  output_types = [tf.uint8, tf.int32] + (
      [tf.int32] if with_oversegmentation else [])

  def decode_op(index):
    image, *id_maps = tf.numpy_function(decode, [index], output_types,
                                        stateful=False)
    image = tf.ensure_shape(image, [None, None, 3])
    return [image] + [tf.ensure_shape(id_map, [None, None])[..., tf.newaxis]
                      for id_map in id_maps]

  return decode_op


# Where the output positions of a resize along one axis sample the input:
# the nearest pixel, and the two bilinear pixels with the weight of `upper`.
_SourceIndices = collections.namedtuple(
    '_SourceIndices', ['nearest', 'lower', 'upper', 'fraction'])


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
      tf.cast(tf.floor(centres), tf.int32), 0, in_size - 1)
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
  return tf.gather(tf.gather(array, rows.nearest, axis=0), columns.nearest,
                   axis=1)


# The keys of a training example, as augment_example gives them.
TRAINING_KEYS = ('image', 'label', 'cluster_label', 'loc_feature',
                 'oversegmentation')


def augment_example(image, label, crop_size, seed, *, oversegmentation=None,
                    num_clusters=(5, 5), kmeans_grid='image',
                    random_scale=True, random_mirror=True, random_crop=True,
                    ignore_label=255, outputs=None):
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
      tf.random.experimental.stateless_split(seed, 4))
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  if random_scale:
    scale = tf.random.stateless_uniform([], scale_seed, _MIN_SCALE, _MAX_SCALE)
    scaled_height = tf.maximum(
        tf.cast(tf.cast(height, tf.float32) * scale, tf.int32), 1)
    scaled_width = tf.maximum(
        tf.cast(tf.cast(width, tf.float32) * scale, tf.int32), 1)
  else:
    scaled_height, scaled_width = height, width
  padded_height = tf.maximum(scaled_height, crop_height)
  padded_width = tf.maximum(scaled_width, crop_width)
  if random_crop:
    top = tf.random.stateless_uniform(
        [], row_seed, 0, padded_height - crop_height + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform(
        [], column_seed, 0, padded_width - crop_width + 1, dtype=tf.int32)
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
    scaled_columns = tf.where(mirror, scaled_width - 1 - scaled_columns,
                              scaled_columns)
  rows = _resize_indices(scaled_rows, height, scaled_height)
  columns = _resize_indices(scaled_columns, width, scaled_width)
  paddings = [[0, crop_height - valid_height], [0, crop_width - valid_width],
              [0, 0]]

  def pad(tensor, value):
    padded = tf.pad(tensor, paddings, constant_values=value)
    padded.set_shape([crop_height, crop_width, tensor.shape[-1]])
    return padded

  image = _gather_bilinear(image, rows, columns) - tf.constant(IMG_MEAN)
  example = {'image': pad(image, 0.0)}
  if 'label' in outputs:
    example['label'] = pad(_gather_nearest(label, rows, columns),
                           ignore_label)
  if kmeans_grid == 'crop':
    if 'cluster_label' in outputs:
      example['cluster_label'] = common_utils.initialize_cluster_labels(
          list(num_clusters), crop_size)[..., tf.newaxis]
    if 'loc_feature' in outputs:
      example['loc_feature'] = common_utils.generate_location_features(
          crop_size, 'float')
    outputs = outputs - {'cluster_label', 'loc_feature'}
  if 'cluster_label' in outputs:
    cluster_grid = common_utils.initialize_cluster_labels(
        list(num_clusters), [height, width])
    example['cluster_label'] = pad(
        _gather_nearest(cluster_grid, rows, columns)[..., tf.newaxis], 0)
  if 'loc_feature' in outputs:
    location = tf.stack(tf.meshgrid(
        tf.cast(rows.nearest, tf.float32) / tf.cast(height, tf.float32),
        tf.cast(columns.nearest, tf.float32) / tf.cast(width, tf.float32),
        indexing='ij'), axis=2)
    example['loc_feature'] = pad(location, 0.0)
  if oversegmentation is not None and 'oversegmentation' in outputs:
    example['oversegmentation'] = pad(
        _gather_nearest(oversegmentation, rows, columns), -1)
  return example


def _random_base_seed():
  return random.SystemRandom().randrange(2**31)


def build_training_dataset(data_dir, data_list, input_size, batch_size, *,
                           random_scale=True, random_mirror=True,
                           random_crop=True, ignore_label=255,
                           num_classes=None, num_clusters=5,
                           kmeans_grid='image', unsupervised=False, seed=None, deterministic=False,
                           shuffle=True, repeat=True, drop_remainder=True,
                           start_batch=0, outputs=None):
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
    num_classes: When given, label values `>= num_classes` other than
      `ignore_label` are set to `ignore_label` and logged.
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
  entries = read_data_list(data_dir, data_list, require_labels=not unsupervised,
                           with_oversegmentation=unsupervised)
  if not entries:
    raise DataError('Data list %s is empty' % data_list)
  if isinstance(num_clusters, int):
    num_clusters = (num_clusters, num_clusters)
  crop_size = (int(input_size[0]), int(input_size[1]))
  base_seed = _random_base_seed() if seed is None else int(seed)
  shuffle_key = tf.constant([base_seed, 0], tf.int64)
  augment_key = tf.constant([base_seed, 1], tf.int64)
  num_entries = len(entries)
  decode = _decode_op(
      entries, num_classes=num_classes, ignore_label=ignore_label,
      with_oversegmentation=unsupervised,
      out_of_range_log=(_OutOfRangeLog(num_classes, ignore_label)
                        if num_classes is not None else None),
      with_labels=outputs is None or 'label' in outputs)

  def epoch_order(epoch):
    order = tf.range(num_entries, dtype=tf.int64)
    if shuffle:
      order = tf.random.experimental.stateless_shuffle(
          order, tf.random.experimental.stateless_fold_in(shuffle_key, epoch))
    return tf.data.Dataset.from_tensor_slices(order)

  def load_example(position, index):
    image, label, *oversegmentation = decode(index)
    return augment_example(
        image, label, crop_size,
        tf.random.experimental.stateless_fold_in(augment_key, position),
        oversegmentation=oversegmentation[0] if unsupervised else None,
        num_clusters=num_clusters, kmeans_grid=kmeans_grid,
        random_scale=random_scale,
        random_mirror=random_mirror, random_crop=random_crop,
        ignore_label=ignore_label, outputs=outputs)

  first_position = start_batch * batch_size
  first_epoch, first_offset = divmod(first_position, num_entries)
  epochs = (tf.data.Dataset.counter(start=first_epoch) if repeat
            else tf.data.Dataset.range(first_epoch, 1))
  dataset = epochs.flat_map(epoch_order).skip(first_offset).enumerate(
      start=first_position)
  dataset = dataset.map(load_example, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=deterministic)
  dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
  return dataset.prefetch(tf.data.AUTOTUNE)


def build_inference_dataset(data_dir, data_list, *, require_labels=False,
                            with_oversegmentation=False, ignore_label=255):
  """Builds the unbatched, full-size, in-order evaluation input pipeline.

  Args:
    data_dir: The directory list paths are relative to.
    data_list: The list file; one-column lines (images only) are allowed
      unless `require_labels`.
    require_labels: Whether every line must name a label.
    with_oversegmentation: Whether to add each image's oversegmentation.
    ignore_label: The label of every pixel of an image without label.

  Returns:
    entries: The list of ListEntry.
    dataset: `entries_dataset(entries, ...)`.

  Raises:
    DataError: If the list is malformed or names missing files.
  """
  entries = read_data_list(data_dir, data_list, require_labels=require_labels,
                           with_oversegmentation=with_oversegmentation)
  return entries, entries_dataset(
      entries, with_oversegmentation=with_oversegmentation,
      ignore_label=ignore_label)


def entries_dataset(entries, *, with_oversegmentation=False,
                    ignore_label=255):
  """Builds the unbatched, full-size, in-order pipeline of given entries.

  Args:
    entries: ListEntry objects (e.g. the unfinished ones of a list).
    with_oversegmentation: Whether to add each image's oversegmentation.
    ignore_label: The label of every pixel of an image without label.

  Returns:
    A tf.data.Dataset of dicts in the entries' order: 'image' float32
    `[H, W, 3]` (RGB minus IMG_MEAN), 'label' int32 `[H, W, 1]`, 'index'
    int32 (the position in `entries`) and, when asked for, 'oversegmentation'
    int32 `[H, W, 1]`.
  """
  decode = _decode_op(entries, num_classes=None, ignore_label=ignore_label,
                      with_oversegmentation=with_oversegmentation)

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
      load_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return dataset.prefetch(tf.data.AUTOTUNE)


@dataclasses.dataclass
class DataListReport:
  """The result of check_data_list.

  Attributes:
    data_list: The list file checked.
    num_entries: The number of non-blank lines.
    problems: Descriptions of every problem found, in line order, each naming
      the list file, line number and path.
    out_of_range_pixels: The number of label pixels `>= num_classes` other
      than the ignore label, over all lines (each such line is also a
      problem).
  """
  data_list: str
  num_entries: int
  problems: list
  out_of_range_pixels: int = 0

  @property
  def ok(self):
    """Whether no problem was found."""
    return not self.problems


def _check_entry(entry, num_classes, ignore_label, with_oversegmentation):
  """Decodes one entry; returns (problem or None, out-of-range pixels)."""
  try:
    _, label, _ = _decode_entry(
        entry, num_classes=None, ignore_label=ignore_label,
        with_oversegmentation=with_oversegmentation)
  except DataError as error:
    return str(error), 0
  if num_classes is None or entry.label_path is None:
    return None, 0
  out_of_range = label[(label >= num_classes) & (label != ignore_label)]
  if not out_of_range.size:
    return None, 0
  return ('%s: %d pixels of %s outside [0, %d) and not %d (values %s)' % (
      entry.location(), out_of_range.size, entry.label_path, num_classes,
      ignore_label, np.unique(out_of_range)[:10].tolist()),
          out_of_range.size)


def check_data_list(data_dir, data_list, num_classes=None, ignore_label=255,
                    with_oversegmentation=False, *, require_labels=True,
                    num_workers=None, progress=None):
  """Validates every line of a data list up front.

  Checks that lines are well formed, that files exist and decode, that
  labels (and oversegmentations) are single-channel and of their image's
  size, and, with `num_classes`, that label values lie in
  `[0, num_classes)` or equal `ignore_label`.

  Args:
    data_dir: The directory list paths are relative to.
    data_list: The list file.
    num_classes: The number of classes, or None to skip the value check.
    ignore_label: The label value to ignore.
    with_oversegmentation: Whether to check oversegmentations too.
    require_labels: Whether every line must name a label.
    num_workers: Decoding threads; the number of CPUs when None.
    progress: An optional callable wrapping an iterable with a length (e.g.
      tqdm.tqdm) to show progress.

  Returns:
    A DataListReport.

  Raises:
    DataError: If the list file itself cannot be read.
  """
  entries, problems, num_lines = _parse_data_list(
      data_dir, data_list, require_labels, with_oversegmentation)
  out_of_range_pixels = 0
  with multiprocessing.pool.ThreadPool(num_workers or os.cpu_count()) as pool:
    results = pool.imap(
        lambda entry: _check_entry(entry, num_classes, ignore_label,
                                   with_oversegmentation), entries)
    if progress is not None:
      results = progress(results, total=len(entries))
    for entry, (problem, num_pixels) in zip(entries, results):
      if problem is not None:
        problems.append((entry.line_number, problem))
      out_of_range_pixels += num_pixels
  problems.sort(key=lambda problem: problem[0])
  return DataListReport(data_list, num_lines,
                        [description for _, description in problems],
                        out_of_range_pixels)
