"""Prototype extraction: the annotated segments of a list, as a bank.

Extraction clusters at the resolution of the embedding grid, as the original
did at the network's output size: the label of a grid cell is the label of
the pixel at the cell's centre (nearest neighbour). Location features are
those of the image's own grid; the original took them from the padded window
grid although its embedding was the unpadded image's, which shifted every
location of a padded image. Every image's prototypes are cached under
SAVE_DIR/prototypes/cache/ (see `output_dirs`), and the bank files are
written only once all images are done, prototype_sources.json last.
"""

import logging
import os
import time

import numpy as np
import tensorflow as tf

from network.segsort import common_utils
from network.segsort import eval_utils
from segsort import console
from segsort import data
from segsort import errors
from segsort import io_utils
from segsort.inference import banks
from segsort.inference import output_dirs
from segsort.inference import predictors
from segsort.inference import windows

_LOGGER = logging.getLogger(__name__)


def extract_image_prototypes(
  embedding, labels, num_clusters, kmeans_iterations, ignore_label
):
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
  num_clusters = common_utils.cluster_grid(num_clusters)
  shape = tf.shape(labels)
  location_features = common_utils.generate_location_features(
    [shape[0], shape[1]], 'float'
  )
  initial_labels = common_utils.initialize_cluster_labels(
    num_clusters, [shape[0], shape[1]]
  )
  prototype_features, prototype_labels, _, cell_prototypes = (
    eval_utils.extract_trained_prototypes(
      tf.reshape(embedding, [shape[0] * shape[1], -1]),
      tf.reshape(location_features, [-1, 2]),
      tf.reshape(initial_labels, [-1]),
      common_utils.total_clusters(num_clusters),
      kmeans_iterations,
      tf.reshape(labels, [-1]),
      1,
      ignore_label,
      return_pixel_prototypes=True,
    )
  )
  return (
    prototype_features,
    prototype_labels,
    tf.reshape(cell_prototypes, shape),
  )


def prototype_boxes(cell_prototypes, num_prototypes, output_stride, image_size):
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
  rows = np.minimum(
    np.arange(0, height, output_stride) + output_stride // 2, height - 1
  )
  columns = np.minimum(
    np.arange(0, width, output_stride) + output_stride // 2, width - 1
  )
  return labels[np.ix_(rows, columns)].astype(np.int32)


def extract_prototypes(
  network,
  checkpoint_prefix,
  *,
  data_dir,
  data_list,
  save_dir,
  window_size,
  strides,
  num_classes,
  ignore_label,
  num_clusters,
  kmeans_iterations,
  apply_exif_orientation=False,
  checkpoint_overrides=None,
):
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
    checkpoint_overrides: A JSON-ready dict of the flags given with values
      other than the checkpoint's training settings
      (`command_line.settings_from_checkpoint`), recorded with the settings
      when not empty.

  Returns:
    The number of prototypes P.

  Raises:
    DataError: Before anything is written, naming the list file, line and
      path of an empty or malformed list, a missing file or one that does
      not decode (`data.check_entries_decode`).
    InferenceError: If no image yields a prototype.
  """
  runner = windows.DenseOutputRunner(
    network, window_size, strides, normalize_windows=True
  )
  prototype_dir = os.path.join(save_dir, banks.PROTOTYPE_DIR_NAME)
  cache_dir = os.path.join(prototype_dir, 'cache')
  settings = {
    'checkpoint': banks.checkpoint_identity(checkpoint_prefix),
    'data_dir': os.path.abspath(data_dir),
    'window_size': list(runner.window_size),
    'strides': list(runner.strides),
    'num_classes': num_classes,
    'ignore_label': ignore_label,
    'num_clusters': list(common_utils.cluster_grid(num_clusters)),
    'kmeans_iterations': kmeans_iterations,
    'apply_exif_orientation': bool(apply_exif_orientation),
  }
  if checkpoint_overrides:
    settings['flags_overriding_checkpoint'] = checkpoint_overrides

  def cache_path(entry):
    return os.path.join(cache_dir, entry.image_id + '.npz')

  # Read, and the images not cached decoded once, before the cache is made
  # (or cleared, when made with other settings): a bad list or file leaves
  # nothing changed.
  entries, list_problems, _ = data.parse_data_list(
    data_dir, data_list, require_labels=True, with_oversegmentation=False
  )
  cache_is_current = output_dirs.outputs_are_current(
    os.path.join(cache_dir, output_dirs.SETTINGS_FILE), settings
  )
  # What stays cached once the cache is prepared below: nothing when it
  # was made with other settings.
  to_extract = [
    entry
    for entry in entries
    if not (
      cache_is_current
      and io_utils.output_is_newer(
        [cache_path(entry)], [entry.image_path, entry.label_path]
      )
    )
  ]
  extracted_ids = {entry.image_id for entry in to_extract}
  survey = data.LabelSurvey(data_list, num_classes, ignore_label)
  data.check_entries_decode(
    to_extract,
    data_list,
    ignore_label=ignore_label,
    apply_exif_orientation=apply_exif_orientation,
    progress=console.progress,
    list_problems=list_problems,
    survey=survey,
  )
  survey.log_out_of_range_total()
  if len(to_extract) == len(entries) and not survey.class_pixels.any():
    _raise_no_prototype(data_list)
  output_dirs.prepare_output_dir(
    os.path.join(cache_dir, output_dirs.SETTINGS_FILE),
    settings,
    [os.path.join(cache_dir, '*.npz')],
    'Prototypes cached in',
  )
  image_prototypes = tf.function(
    lambda embedding, labels: extract_image_prototypes(
      embedding, labels, num_clusters, kmeans_iterations, ignore_label
    ),
    reduce_retracing=True,
  )
  examples = iter(
    data.entries_dataset(
      to_extract,
      ignore_label=ignore_label,
      apply_exif_orientation=apply_exif_orientation,
    )
  )
  coarse_embedding_note = predictors.CoarseEmbeddingNote(
    num_clusters, runner.output_stride
  )
  features, labels, image_indices, boxes = [], [], [], []
  num_done = 0
  num_skipped = len(entries) - len(to_extract)
  start = time.time()
  with console.progress(
    total=len(to_extract), desc='Extracting prototypes', unit='image'
  ) as progress:
    for image_index, entry in enumerate(entries):
      if entry.image_id not in extracted_ids:
        with np.load(cache_path(entry)) as cached:
          image_features, image_labels, image_boxes = (
            cached['features'],
            cached['labels'],
            cached['boxes'],
          )
      else:
        image_features, image_labels, image_boxes = _extract_one(
          runner,
          image_prototypes,
          coarse_embedding_note,
          next(examples),
          num_classes,
          ignore_label,
        )
        with io_utils.atomic_path(cache_path(entry)) as temporary:
          np.savez(
            temporary,
            features=image_features,
            labels=image_labels,
            boxes=image_boxes,
          )
        num_done += 1
        progress.update()
      features.append(image_features)
      labels.append(image_labels)
      boxes.append(image_boxes)
      image_indices.append(np.full(len(image_labels), image_index, np.int32))
  output_dirs.log_run_summary(
    'Extracted prototypes', num_done, num_skipped, time.time() - start
  )
  features = np.concatenate(features).astype(np.float32)
  num_prototypes = len(features)
  if num_prototypes == 0:
    # Labelled pixels off every cell centre, which the check above allows.
    _raise_no_prototype(data_list)
  labels = np.concatenate(labels).astype(np.int32)
  banks.warn_of_missing_classes(
    labels,
    num_classes,
    'The prototype bank of %s (%s)' % (data_list, prototype_dir),
  )
  arrays = {
    banks.PROTOTYPE_FEATURES_FILE: features,
    banks.PROTOTYPE_LABELS_FILE: labels,
    banks.PROTOTYPE_IMAGE_INDICES_FILE: np.concatenate(image_indices),
    banks.PROTOTYPE_BOXES_FILE: np.concatenate(boxes).astype(np.int32),
  }
  for name, array in arrays.items():
    io_utils.save_npy(os.path.join(prototype_dir, name), array)
  # Written last: it records the count and digests of the files above, so
  # that a bank whose rewrite was interrupted fails load_prototype_bank.
  io_utils.save_json(
    os.path.join(prototype_dir, banks.PROTOTYPE_SOURCES_FILE),
    dict(
      settings,
      data_list=os.path.abspath(data_list),
      num_prototypes=num_prototypes,
      embedding_dim=int(features.shape[1]),
      sha256={
        name: banks.file_sha256(os.path.join(prototype_dir, name))
        for name in arrays
      },
      box_format='y0 x0 y1 x1, image pixels, end exclusive',
      images=[
        {
          'image_id': entry.image_id,
          'image_path': os.path.relpath(entry.image_path, data_dir),
        }
        for entry in entries
      ],
    ),
  )
  _LOGGER.info(
    'Wrote %d prototypes of %d images to %s',
    num_prototypes,
    len(entries),
    prototype_dir,
  )
  return num_prototypes


def _raise_no_prototype(data_list):
  raise errors.InferenceError(
    'No labelled pixel in the images of %s: no prototype to write.' % data_list
  )


def _extract_one(
  runner,
  image_prototypes,
  coarse_embedding_note,
  example,
  num_classes,
  ignore_label,
):
  """Prototypes of one image: (features [P, D], labels [P], boxes [P, 4])."""
  image = example['image']
  label = example['label'][..., 0].numpy()
  label = data.ignore_out_of_range(label, num_classes, ignore_label)
  embedding = runner.output_grid(image)
  coarse_embedding_note.check(embedding.shape, image.shape)
  cell_labels = labels_at_cell_centres(label, runner.output_stride)
  if not np.any(cell_labels != ignore_label):
    return (
      np.zeros((0, embedding.shape[-1]), np.float32),
      np.zeros((0,), np.int32),
      np.zeros((0, 4), np.int32),
    )
  features, labels, cell_prototypes = image_prototypes(
    common_utils.normalize_embedding(embedding), tf.constant(cell_labels)
  )
  boxes = prototype_boxes(
    cell_prototypes.numpy(),
    int(labels.shape[0]),
    runner.output_stride,
    label.shape,
  )
  return features.numpy(), labels.numpy(), boxes
