"""TensorBoard summaries of training: scalars and pictures.

Written with tf.summary.scalar and tf.summary.image, which the tensorboard
package (a dependency) provides.
"""

import tensorflow as tf

from network.segsort import common_utils
from network.segsort import vis_utils
from segsort import colormap
from segsort import data

# Images per TensorBoard picture summary.
NUM_PICTURES = 4


def _colorize(label_ids):
  """Paints integer ids `[B, h, w, 1]` (or `[B, h, w]`) in VOC's colours."""
  if label_ids.shape.rank == 4:
    label_ids = label_ids[..., 0]
  colors = tf.constant(colormap.voc_colormap(256))
  return tf.gather(colors, tf.math.floormod(tf.cast(label_ids, tf.int32), 256))


def resize_nearest(tensor, size):
  """Resizes a per-pixel tensor `[B, H, W, C]` to `size` by nearest neighbour.

  Used for pictures here and for labels in segsort.objectives' losses.
  """
  return tf.image.resize(tensor, size, method='nearest')


def batch_pictures(batch):
  """Draws what a training batch holds, whatever the objective.

  Args:
    batch: A dict of a training batch (see segsort.data), not distributed.

  Returns:
    A dict from picture name to a uint8 tensor `[B, H, W, 3]` at the input's
    size: 'input' (mean added back), 'ground_truth' (VOC colours) and, when
    the batch has oversegmentations, 'oversegmentation'.
  """
  images = batch['image']
  pictures = {
    'input': tf.cast(
      tf.clip_by_value(images + tf.constant(data.IMG_MEAN), 0.0, 255.0),
      tf.uint8,
    ),
    'ground_truth': _colorize(batch['label']),
  }
  if 'oversegmentation' in batch:
    # Padding (-1) is drawn as void, like ignored labels.
    segments = batch['oversegmentation']
    pictures['oversegmentation'] = _colorize(
      tf.where(segments < 0, 255, tf.math.floormod(segments, 255))
    )
  return pictures


def _network_outputs(network, images):
  # Inference mode (moving BatchNorm statistics): the pictures show the model
  # that is being saved.
  return tf.cast(network(images, training=False), tf.float32)


def embedding_pictures(network, batch, num_clusters, kmeans_iterations):
  """Draws a batch and how an embedding network segments it.

  Args:
    network: The SegmentationNetwork being trained, embedding pixels.
    batch: A dict of a training batch (see segsort.data), not distributed.
    num_clusters: The k-means grid, (clusters along y, along x).
    kmeans_iterations: The number of k-means iterations.

  Returns:
    `batch_pictures`' dict, with 'embedding_pca' (the embedding's first
    three principal components as colours) and 'kmeans_segments' (k-means on
    the embedding and pixel location), uint8 `[B, H, W, 3]`.
  """
  pictures = batch_pictures(batch)
  size = tf.shape(batch['image'])[1:3]
  embedding = common_utils.normalize_embedding(
    _network_outputs(network, batch['image'])
  )
  pictures['embedding_pca'] = resize_nearest(
    tf.cast(vis_utils.pca(embedding) * 255.0, tf.uint8), size
  )
  locations = resize_nearest(batch['loc_feature'], tf.shape(embedding)[1:3])
  segments = common_utils.kmeans(
    common_utils.normalize_embedding(
      tf.concat([embedding, locations], axis=-1)
    ),
    num_clusters,
    kmeans_iterations,
  )
  # Cluster 0 would be black in VOC's colour map, like the background.
  pictures['kmeans_segments'] = resize_nearest(_colorize(segments + 1), size)
  return pictures


def prediction_pictures(network, batch):
  """Draws a batch and a classifier network's predictions.

  Args:
    network: The SegmentationNetwork being trained, with class logits.
    batch: A dict of a training batch (see segsort.data), not distributed.

  Returns:
    `batch_pictures`' dict, with 'prediction' (the argmax class in VOC's
    colours), uint8 `[B, H, W, 3]`.
  """
  pictures = batch_pictures(batch)
  prediction = tf.argmax(
    _network_outputs(network, batch['image']), axis=-1, output_type=tf.int32
  )
  pictures['prediction'] = resize_nearest(
    _colorize(prediction), tf.shape(batch['image'])[1:3]
  )
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
    tf.summary.image(
      'images/' + name, picture, step=step, max_outputs=max_outputs
    )


def write_training_summaries(
  step, losses, loss_name, learning_rate, images_per_second, pictures
):
  """Writes the scalars and pictures of a summary step of training.

  Args:
    step: The training step.
    losses: A dict of floats: 'task_loss', 'weight_decay' and 'total_loss'.
    loss_name: The TensorBoard name of the task loss (the objective's).
    learning_rate: The base learning rate the step used.
    images_per_second: The training speed since the last summary step.
    pictures: A dict from name to a uint8 tensor `[B, H, W, 3]`.
  """
  names = {
    'task_loss': loss_name,
    'weight_decay': 'weight_decay',
    'total_loss': 'total_loss',
  }
  for name, value in losses.items():
    write_scalar('loss/' + names[name], value, step)
  write_scalar('learning_rate', learning_rate, step)
  write_scalar('images_per_second', images_per_second, step)
  write_pictures(pictures, step, max_outputs=NUM_PICTURES)
