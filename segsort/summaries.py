"""TensorBoard summaries of training: scalars and pictures.

Written with tf.summary.scalar and tf.summary.image, which the tensorboard
package (a dependency) provides.
"""

import tensorflow as tf

from network.segsort import common_utils
from network.segsort import vis_utils
from segsort import colormap
from segsort import data


def _colorize(label_ids):
  """Paints integer ids `[B, h, w, 1]` (or `[B, h, w]`) in VOC's colours."""
  if label_ids.shape.rank == 4:
    label_ids = label_ids[..., 0]
  colors = tf.constant(colormap.voc_colormap(256))
  return tf.gather(colors, tf.math.floormod(tf.cast(label_ids, tf.int32), 256))


def resize_nearest(tensor, size):
  """Resizes a per-pixel tensor `[B, H, W, C]` to `size` by nearest neighbour.

  Used for pictures here and for labels in segsort.trainer's losses.
  """
  return tf.image.resize(tensor, size, method='nearest')


def training_pictures(network, batch, mode, num_clusters, kmeans_iterations):
  """Draws what a training batch looks like to the network.

  The network runs in inference mode (moving BatchNorm statistics), so the
  pictures show the model that is being saved.

  Args:
    network: The SegmentationNetwork being trained.
    batch: A dict of a training batch (see segsort.data), not distributed.
    mode: The training mode (see segsort.config.MODES).
    num_clusters: The k-means grid size per image axis.
    kmeans_iterations: The number of k-means iterations.

  Returns:
    A dict from picture name to a uint8 tensor `[B, H, W, 3]` at the input's
    size: 'input' (mean added back), 'ground_truth' (VOC colours),
    'oversegmentation' (unsupervised mode), and either 'embedding_pca' (first
    three principal components) and 'kmeans_segments' (k-means on the
    embedding and pixel location), or 'prediction' (softmax mode).
  """
  images = batch['image']
  size = tf.shape(images)[1:3]
  outputs = tf.cast(network(images, training=False), tf.float32)
  output_size = tf.shape(outputs)[1:3]
  pictures = {
      'input': tf.cast(tf.clip_by_value(
          images + tf.constant(data.IMG_MEAN), 0.0, 255.0), tf.uint8),
      'ground_truth': _colorize(batch['label']),
  }
  if 'oversegmentation' in batch:
    # Padding (-1) is drawn as void, like ignored labels.
    segments = batch['oversegmentation']
    pictures['oversegmentation'] = _colorize(
        tf.where(segments < 0, 255, tf.math.floormod(segments, 255)))
  if mode == 'softmax':
    prediction = tf.argmax(outputs, axis=-1, output_type=tf.int32)
    pictures['prediction'] = resize_nearest(_colorize(prediction), size)
    return pictures
  embedding = common_utils.normalize_embedding(outputs)
  pictures['embedding_pca'] = resize_nearest(
      tf.cast(vis_utils.pca(embedding) * 255.0, tf.uint8), size)
  locations = resize_nearest(batch['loc_feature'], output_size)
  segments = common_utils.kmeans(
      common_utils.normalize_embedding(
          tf.concat([embedding, locations], axis=-1)),
      [num_clusters, num_clusters], kmeans_iterations)
  # Cluster 0 would be black in VOC's colour map, like the background.
  pictures['kmeans_segments'] = resize_nearest(_colorize(segments + 1), size)
  return pictures


def write_scalar(name, value, step):
  """Writes a scalar summary (tf.summary.scalar) as float32."""
  tf.summary.scalar(name, tf.cast(value, tf.float32), step=step)


def write_pictures(pictures, step, max_outputs=4):
  """Writes pictures as TensorBoard image summaries under 'images/'.

  Args:
    pictures: A dict from name to a uint8 tensor `[B, H, W, 3]`.
    step: The training step.
    max_outputs: The number of images kept per name.
  """
  for name, picture in pictures.items():
    tf.summary.image('images/' + name, picture, step=step,
                     max_outputs=max_outputs)
