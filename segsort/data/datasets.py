"""The tf.data pipelines: augmented training batches, and given entries.

Files are decoded inside `tf.numpy_function` (segsort.data.decoding), so
that a file that cannot be decoded fails the example that reads it with the
list file, line number and path.
"""

import dataclasses
import random

import numpy as np
import tensorflow as tf

from network.segsort import common_utils
from segsort.data import augmentation
from segsort.data import decoding
from segsort.data import lists


def _decode_op(entries, settings, with_labels=True):
  """Wraps decoding with `settings` (a DecodeSettings) as a TF op taking the
  entry's index.

  Without `with_labels`, label files are not read: every label is
  `settings.ignore_label`.

  Returns:
    A function mapping a scalar index tensor to (image uint8 [H, W, 3], label
    int32 [H, W, 1]) or, with oversegmentation, (image, label,
    oversegmentation int32 [H, W, 1], or [H, W, 2] with segment groups).
  """

  def decode(index):
    entry = entries[int(index)]
    if not with_labels:
      entry = dataclasses.replace(entry, label_path=None)
    image, label, oversegmentation = settings.decode(entry)
    # Id maps as [H, W, channels]; groups are the oversegmentation's second.
    if settings.with_oversegmentation:
      return image, np.atleast_3d(label), np.atleast_3d(oversegmentation)
    return image, np.atleast_3d(label)

  output_types = [tf.uint8, tf.int32] + (
    [tf.int32] if settings.with_oversegmentation else []
  )
  id_map_channels = [1] + (
    [2 if settings.with_segment_groups else 1]
    if settings.with_oversegmentation
    else []
  )

  def decode_op(index):
    image, *id_maps = tf.numpy_function(
      decode, [index], output_types, stateful=False
    )
    return [tf.ensure_shape(image, [None, None, 3])] + [
      tf.ensure_shape(id_map, [None, None, channels])
      for id_map, channels in zip(id_maps, id_map_channels)
    ]

  return decode_op


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
  random_colour=False,
  ignore_label=255,
  num_classes=None,
  num_clusters=5,
  kmeans_grid='image',
  unsupervised=False,
  segment_groups=False,
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
  `augmentation.augment_example`) with random draws keyed by (seed, position
  in the stream), and the list is reshuffled every epoch by a permutation
  keyed by (seed, epoch). With a seed and `deterministic=True`, two runs
  therefore give identical batches; with `deterministic=False` examples may
  come out of order for speed, but each keeps its own augmentation. Because
  nothing but the position in the stream decides an example, a pipeline
  built with `start_batch=k` continues exactly where a fresh one would be
  after k batches (e.g. when training resumes from a checkpoint at step k)
  without reading the skipped examples.

  Args:
    data_dir: The directory list paths are relative to.
    data_list: The list file.
    input_size: (height, width) of the crops.
    batch_size: The number of examples per batch.
    random_scale: Whether to scale by a factor uniform in [0.5, 2.0].
    random_mirror: Whether to mirror left-right at random.
    random_crop: Whether to crop at random positions (else centre crops).
    random_colour: Whether to jitter every image's colours
      (`augmentation.jitter_colour`; this port's addition).
    ignore_label: The label of pixels to ignore (padding, void).
    num_classes: When given, label values outside `[0, num_classes)` other
      than `ignore_label` are set to `ignore_label`
      (`list_checks.check_training_list` reports them).
    num_clusters: The grid of initial clusters, an integer n (an n x n grid)
      or (clusters along y, clusters along x).
    kmeans_grid: 'image' or 'crop' (see `augmentation.augment_example`).
    unsupervised: Whether to add each image's oversegmentation; labels are
      then optional (all `ignore_label` where the list has none).
    segment_groups: Whether, when unsupervised, the oversegmentation also
      holds each pixel's segment group (`lists.segment_groups_path`) as a
      second channel.
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
    'oversegmentation' int32 `[B, H, W, 1]`, or `[B, H, W, 2]` with
    `segment_groups` (segment ids, then group ids; B static when
    drop_remainder);
    only those of `outputs` when given.

  Raises:
    DataError: If the list is malformed or names missing files. Files that
      cannot be decoded, or labels of another size than their image, raise
      tf.errors.InvalidArgumentError naming the list file, line and path when
      the example is read.
  """
  entries = lists.read_data_list(
    data_dir,
    data_list,
    require_labels=not unsupervised,
    with_oversegmentation=unsupervised,
    with_segment_groups=unsupervised and segment_groups,
  )
  augment_settings = augmentation.AugmentSettings(
    (int(input_size[0]), int(input_size[1])),
    common_utils.cluster_grid(num_clusters),
    kmeans_grid,
    random_scale,
    random_mirror,
    random_crop,
    random_colour,
    ignore_label,
    outputs,
  )
  base_seed = _random_base_seed() if seed is None else int(seed)
  shuffle_key = tf.constant([base_seed, 0], tf.int64)
  augment_key = tf.constant([base_seed, 1], tf.int64)
  num_entries = len(entries)
  decode = _decode_op(
    entries,
    decoding.DecodeSettings(
      num_classes,
      ignore_label,
      unsupervised,
      apply_exif_orientation,
      with_segment_groups=unsupervised and segment_groups,
    ),
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
    return augment_settings.augment(
      image,
      label,
      tf.random.experimental.stateless_fold_in(augment_key, position),
      oversegmentation[0] if unsupervised else None,
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
  num_classes=None,
  apply_exif_orientation=False,
):
  """Builds the unbatched, full-size, in-order pipeline of given entries.

  Args:
    entries: ListEntry objects (e.g. the unfinished ones of a list).
    with_oversegmentation: Whether to add each image's oversegmentation.
    ignore_label: The label of every pixel of an image without label.
    num_classes: When given, label values outside `[0, num_classes)` other
      than `ignore_label` are set to `ignore_label`, as in training.
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
    decoding.DecodeSettings(
      num_classes, ignore_label, with_oversegmentation, apply_exif_orientation
    ),
  )

  def load_example(index):
    image, label, *oversegmentation = decode(index)
    example = {
      'image': tf.cast(image, tf.float32) - tf.constant(augmentation.IMG_MEAN),
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
