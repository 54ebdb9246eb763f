"""Pictures of embeddings: projections on their principal components."""

import tensorflow as tf


def calculate_principal_components(embedding, num_components=3):
  """Projects embeddings on their leading principal components.

  Args:
    embedding: A float tensor `[num_pixels, D]`.
    num_components: The number of components kept.

  Returns:
    A float32 tensor `[num_pixels, num_components]` of projections, the
    first column along the direction of largest variance; columns beyond D
    are zero (an embedding of 1 or 2 dimensions still makes an RGB
    picture).
  """
  embedding = tf.cast(embedding, tf.float32)
  centered = embedding - tf.reduce_mean(embedding, axis=0, keepdims=True)
  covariance = tf.matmul(centered, centered, transpose_a=True)
  # eigh sorts eigenvalues ascending; the last columns carry most variance.
  _, eigenvectors = tf.linalg.eigh(covariance)
  components = tf.reverse(eigenvectors, axis=[1])[:, :num_components]
  projections = tf.matmul(centered, components)
  missing = num_components - tf.shape(projections)[1]
  return tf.pad(projections, [[0, 0], [0, tf.maximum(missing, 0)]])


def pca(embedding, num_components=3):
  """Maps every image's embedding to colours by its principal components.

  Args:
    embedding: A float tensor `[batch, height, width, D]`.
    num_components: The number of components (3 for RGB pictures).

  Returns:
    A float32 tensor `[batch, height, width, num_components]` in [0, 1], each
    image and component scaled by its own minimum and maximum.
  """
  embedding = tf.cast(embedding, tf.float32)
  shape = tf.shape(embedding)

  def project_image(image_embedding):
    projections = calculate_principal_components(
      tf.reshape(image_embedding, [-1, shape[3]]), num_components
    )
    minimum = tf.reduce_min(projections, axis=0, keepdims=True)
    maximum = tf.reduce_max(projections, axis=0, keepdims=True)
    scaled = (projections - minimum) / tf.maximum(maximum - minimum, 1e-12)
    return tf.reshape(scaled, [shape[1], shape[2], num_components])

  return tf.map_fn(
    project_image,
    embedding,
    fn_output_signature=tf.TensorSpec([None, None, num_components], tf.float32),
  )
