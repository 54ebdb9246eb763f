"""SegSort inference: prototypes of annotated images and k-NN labelling.

The test-time segments are `kmeans_segmentation`'s; its functions stay
importable from here under the original release's names (`__all__`).

Segments and prototypes vary in number from image to image, so these
functions run eagerly or in `tf.function`, not under XLA
(`jit_compile=True`), except `nearest_prototypes`, `knn_label_votes` and
`label_votes`. Embeddings holding NaN or infinity are refused
(InvalidArgumentError) rather than labelled.
"""

import tensorflow as tf

from network.segsort import checks
from network.segsort import common_utils
from network.segsort.kmeans_segmentation import segment_by_kmeans_on_grid
from network.segsort.kmeans_segmentation import (
  segment_by_kmeans_without_labels,
)

__all__ = [
  'extract_trained_prototypes',
  'find_majority_label_index',
  'k_nearest_neighbors',
  'knn_label_votes',
  'label_votes',
  'nearest_prototypes',
  'predict_all_labels',
  'predict_semantic_instance_labels',
  'segment_by_kmeans',
  'segment_by_kmeans_on_grid',
  'segment_by_kmeans_without_labels',
]


def find_majority_label_index(labels, cluster_labels):
  """Finds every cluster's majority label and the pixels that carry it.

  Args:
    labels: A non-negative integer tensor `[num_pixels]`.
    cluster_labels: An integer tensor `[num_pixels]` in `[0, num_clusters)`.

  Returns:
    select_pixels: An int64 tensor `[num_selected, 1]`, indices of the pixels
      whose label is their cluster's majority label.
    majority_labels: An int32 tensor `[num_clusters]`; ties go to the lowest
      label.
  """
  labels = tf.cast(labels, tf.int32)
  cluster_labels = tf.cast(cluster_labels, tf.int32)
  # The maxima of no pixels are the lowest int32: no labels, no clusters.
  label_counts = tf.math.unsorted_segment_sum(
    tf.one_hot(labels, tf.maximum(tf.reduce_max(labels) + 1, 1)),
    cluster_labels,
    tf.maximum(tf.reduce_max(cluster_labels) + 1, 0),
  )
  # argmax returns the first maximum, i.e. the lowest label of a tie.
  majority_labels = tf.argmax(label_counts, axis=1, output_type=tf.int32)
  select_pixels = tf.where(
    tf.equal(tf.gather(majority_labels, cluster_labels), labels)
  )
  return select_pixels, majority_labels


def extract_trained_prototypes(
  embedding,
  location_features,
  cluster_labels,
  num_clusters,
  kmeans_iterations,
  panoptic_labels,
  panoptic_label_divisor,
  ignore_label,
  evaluate_semantic_or_panoptic='semantic',
  return_pixel_prototypes=False,
):
  """Extracts the prototypes of one annotated image.

  Valid pixels are clustered by vMF k-means on the embedding with location;
  each cluster takes its majority label, and its prototype averages only the
  pixels that carry that label.

  Args:
    embedding: A float tensor `[num_pixels, D]`.
    location_features: A float tensor `[num_pixels, 2]`, (y, x) in [0, 1] of
      the image itself.
    cluster_labels: An integer tensor `[num_pixels]`, the initial grid.
    num_clusters: An integer, the total number of clusters (e.g. 25).
    kmeans_iterations: The number of k-means iterations.
    panoptic_labels: An integer tensor `[num_pixels]`, semantic label times
      `panoptic_label_divisor` plus instance id (the semantic label itself
      when the divisor is 1).
    panoptic_label_divisor: An integer separating semantic and instance ids.
    ignore_label: The semantic label of pixels to leave out.
    evaluate_semantic_or_panoptic: 'semantic' (majority semantic label) or
      'panoptic' (majority panoptic label).
    return_pixel_prototypes: Whether to return as well which prototype every
      pixel formed (e.g. for the prototypes' bounding boxes).

  Returns:
    prototype_features: A float tensor `[num_prototypes, D]` of unit vectors.
    prototype_semantic_labels: An int32 tensor `[num_prototypes]`.
    prototype_instance_labels: An int32 tensor `[num_prototypes]`: the
      majority panoptic label's index in 'panoptic' mode, zeros otherwise.
    pixel_prototypes: Only with `return_pixel_prototypes`: an int32 tensor
      `[num_pixels]`, the prototype each pixel is a member of, -1 for pixels
      that are ignored or not of their cluster's majority label.
    An image without a valid pixel has no prototype (`num_prototypes` 0).

  Raises:
    ValueError: If a tensor is not of the rank above.
    tf.errors.InvalidArgumentError: If the embedding holds NaN or infinity.
  """
  checks.check_rank('embedding', embedding, 2, '[num_pixels, D]')
  checks.check_rank(
    'location_features', location_features, 2, '[num_pixels, 2]'
  )
  checks.check_rank('cluster_labels', cluster_labels, 1, '[num_pixels]')
  checks.check_rank('panoptic_labels', panoptic_labels, 1, '[num_pixels]')
  embedding = checks.assert_finite(embedding, 'embedding')
  panoptic_labels = tf.cast(panoptic_labels, tf.int32)
  num_pixels = tf.shape(panoptic_labels)[0]
  valid_indices = tf.where(
    tf.not_equal(panoptic_labels // panoptic_label_divisor, ignore_label)
  )
  panoptic_labels = tf.gather_nd(panoptic_labels, valid_indices)
  cluster_labels = tf.gather_nd(
    tf.cast(cluster_labels, tf.int32), valid_indices
  )
  embedding = common_utils.normalize_embedding(
    tf.gather_nd(tf.cast(embedding, tf.float32), valid_indices)
  )
  location_features = tf.gather_nd(
    tf.cast(location_features, tf.float32), valid_indices
  )

  embedding_with_location = common_utils.normalize_embedding(
    tf.concat([embedding, location_features], 1)
  )
  cluster_labels = common_utils.kmeans_with_initial_labels(
    embedding_with_location, cluster_labels, num_clusters, kmeans_iterations
  )
  _, cluster_labels = tf.unique(cluster_labels)

  if evaluate_semantic_or_panoptic == 'panoptic':
    panoptic_values, unique_panoptic_labels = tf.unique(panoptic_labels)
    select_pixels, majority_labels = find_majority_label_index(
      unique_panoptic_labels, cluster_labels
    )
    prototype_semantic_labels = (
      tf.gather(panoptic_values, majority_labels) // panoptic_label_divisor
    )
    prototype_instance_labels = majority_labels
  elif evaluate_semantic_or_panoptic == 'semantic':
    select_pixels, majority_labels = find_majority_label_index(
      panoptic_labels // panoptic_label_divisor, cluster_labels
    )
    prototype_semantic_labels = majority_labels
    prototype_instance_labels = tf.zeros_like(majority_labels)
  else:
    raise ValueError(
      "evaluate_semantic_or_panoptic must be 'semantic' or "
      "'panoptic', got %r." % (evaluate_semantic_or_panoptic,)
    )

  prototype_features = common_utils.calculate_prototypes_from_labels(
    tf.gather_nd(embedding, select_pixels),
    tf.gather_nd(cluster_labels, select_pixels),
    tf.size(majority_labels),
  )
  outputs = (
    prototype_features,
    prototype_semantic_labels,
    prototype_instance_labels,
  )
  if return_pixel_prototypes:
    member_indices = tf.gather_nd(valid_indices, select_pixels)
    # scatter_nd fills unlisted pixels with 0, hence the shift by one.
    pixel_prototypes = (
      tf.scatter_nd(
        member_indices,
        tf.gather_nd(cluster_labels, select_pixels) + 1,
        [num_pixels],
      )
      - 1
    )
    outputs += (pixel_prototypes,)
  return outputs


def nearest_prototypes(
  queries, prototype_features, k, chunk_size=65536, block_size=64
):
  """Finds the k most similar prototypes of every query, exactly and fast.

  The bank is scanned a chunk at a time, so that only one `[chunk_size,
  num_queries]` block of similarities exists at once and banks of millions
  of prototypes fit in memory. Each chunk keeps only the maximum of every
  `block_size` consecutive prototypes; the k blocks of largest maximum hold
  every one of the k nearest prototypes, which a second, small search over
  those blocks' members finds. (A full top-k over every chunk cost four times
  as much on CPUs.)

  Args:
    queries: A float tensor `[num_queries, D]` of unit vectors.
    prototype_features: A float tensor `[num_prototypes, D]` of unit vectors,
      with a static first dimension.
    k: The number of neighbours (at most `num_prototypes` are returned).
    chunk_size: The number of prototypes compared at a time (rounded up to a
      multiple of `block_size`).
    block_size: The number of prototypes summarised by one maximum.

  Returns:
    similarities: A float tensor `[num_queries, min(k, num_prototypes)]` of
      cosines, most similar first.
    indices: An int32 tensor of the same shape, rows of `prototype_features`;
      among equal similarities the lower index comes first.

  Raises:
    ValueError: If the bank is empty or its size is not static, or `k`,
      `chunk_size` or `block_size` is not an integer >= 1.
  """
  checks.check_positive_integer('k', k)
  checks.check_positive_integer('chunk_size', chunk_size)
  checks.check_positive_integer('block_size', block_size)
  queries = tf.cast(queries, tf.float32)
  prototype_features = tf.cast(prototype_features, tf.float32)
  num_prototypes = prototype_features.shape[0]
  if num_prototypes is None:
    raise ValueError('prototype_features needs a static number of rows.')
  if num_prototypes == 0:
    raise ValueError('The prototype bank is empty.')
  k = min(k, num_prototypes)
  num_queries = tf.shape(queries)[0]
  chunk_size = -(-chunk_size // block_size) * block_size
  negative_infinity = float('-inf')

  block_maxima = []
  for start in range(0, num_prototypes, chunk_size):
    chunk = prototype_features[start : start + chunk_size]
    # [chunk, queries] is the faster product layout on CPUs.
    similarities = tf.matmul(chunk, queries, transpose_b=True)
    chunk_blocks = -(-chunk.shape[0] // block_size)
    similarities = tf.pad(
      similarities,
      [[0, chunk_blocks * block_size - chunk.shape[0]], [0, 0]],
      constant_values=negative_infinity,
    )
    block_maxima.append(
      tf.reduce_max(
        tf.reshape(similarities, [chunk_blocks, block_size, -1]), axis=1
      )
    )
  block_maxima = tf.transpose(tf.concat(block_maxima, 0))
  num_blocks = -(-num_prototypes // block_size)
  _, best_blocks = tf.math.top_k(block_maxima, k=min(k, num_blocks))
  # Ascending candidates make top_k prefer the lower index among ties.
  best_blocks = tf.sort(best_blocks, axis=1)
  candidates = tf.reshape(
    best_blocks[:, :, tf.newaxis] * block_size + tf.range(block_size),
    [num_queries, -1],
  )
  in_bank = candidates < num_prototypes
  candidates = tf.minimum(candidates, num_prototypes - 1)
  similarities = tf.einsum(
    'qd,qcd->qc', queries, tf.gather(prototype_features, candidates)
  )
  similarities = tf.where(in_bank, similarities, negative_infinity)
  best_similarities, order = tf.math.top_k(similarities, k=k)
  return best_similarities, tf.gather(candidates, order, batch_dims=1)


def k_nearest_neighbors(k_predictions, prototype_labels):
  """Takes the majority label of every query's k nearest prototypes.

  Args:
    k_predictions: An integer tensor `[num_queries, k]` of prototype indices.
    prototype_labels: An integer tensor `[num_prototypes]` of non-negative
      labels.

  Returns:
    An int32 tensor `[num_queries]`; ties go to the lowest label.
  """
  neighbour_labels = tf.gather(
    tf.cast(prototype_labels, tf.int32), k_predictions
  )
  votes = tf.reduce_sum(
    tf.one_hot(neighbour_labels, tf.reduce_max(neighbour_labels) + 1), axis=1
  )
  return tf.argmax(votes, axis=1, output_type=tf.int32)


def knn_label_votes(
  test_prototypes,
  prototype_features,
  prototype_labels,
  k,
  num_classes,
  chunk_size=65536,
):
  """Counts the labels of every test prototype's k nearest prototypes.

  Args:
    test_prototypes: A float tensor `[num_queries, D]` of unit vectors.
    prototype_features: A float tensor `[num_prototypes, D]` of unit vectors.
    prototype_labels: An integer tensor `[num_prototypes]` in
      `[0, num_classes)`; a neighbour labelled outside it casts no vote.
    k: The number of neighbours.
    num_classes: The number of labels.
    chunk_size: The number of prototypes compared at a time.

  Returns:
    A float32 tensor `[num_queries, num_classes]` of votes summing to
    `min(k, num_prototypes)` per row when every label is in range.
  """
  _, indices = nearest_prototypes(
    test_prototypes, prototype_features, k, chunk_size
  )
  return label_votes(indices, prototype_labels, num_classes)


def label_votes(neighbour_indices, prototype_labels, num_classes):
  """Counts the labels of every query's neighbours.

  Args:
    neighbour_indices: An integer tensor `[num_queries, k]` of rows of the
      prototype bank (e.g. from `nearest_prototypes`).
    prototype_labels: An integer tensor `[num_prototypes]` in
      `[0, num_classes)`; a neighbour labelled outside it casts no vote.
    num_classes: The number of labels.

  Returns:
    A float32 tensor `[num_queries, num_classes]` of votes summing to `k` per
    row when every label is in range.
  """
  neighbour_labels = tf.gather(
    tf.cast(prototype_labels, tf.int32), neighbour_indices
  )
  return tf.reduce_sum(tf.one_hot(neighbour_labels, num_classes), axis=1)


def predict_semantic_instance_labels(
  cluster_labels,
  test_prototypes,
  prototype_features,
  prototype_semantic_labels,
  prototype_instance_labels,
  k=1,
):
  """Labels every pixel by k-NN of its segment's prototype.

  Args:
    cluster_labels: An integer tensor of any shape (e.g. `[batch, h, w]`), the
      segment of every pixel in `[0, num_segments)`.
    test_prototypes: A float tensor `[num_segments, D]`.
    prototype_features: A float tensor `[num_prototypes, D]` (static rows).
    prototype_semantic_labels: An integer tensor `[num_prototypes]`.
    prototype_instance_labels: An integer tensor `[num_prototypes]` or None.
    k: The number of neighbours.

  Returns:
    semantic_predictions: An int32 tensor shaped like `cluster_labels`.
    instance_predictions: An int32 tensor shaped like `cluster_labels`, with
      instance ids renumbered from 0, or None.
  """
  _, k_predictions = nearest_prototypes(test_prototypes, prototype_features, k)
  semantic_predictions = tf.gather(
    k_nearest_neighbors(k_predictions, prototype_semantic_labels),
    cluster_labels,
  )
  if prototype_instance_labels is None:
    return semantic_predictions, None
  _, segment_instances = tf.unique(
    k_nearest_neighbors(k_predictions, prototype_instance_labels)
  )
  return semantic_predictions, tf.gather(segment_instances, cluster_labels)


# The original release's name.
segment_by_kmeans = segment_by_kmeans_without_labels


def predict_all_labels(
  embedding,
  num_clusters,
  kmeans_iterations,
  prototype_features,
  prototype_semantic_labels,
  prototype_instance_labels,
  k_in_nearest_neighbors,
  panoptic_label_divisor,
  class_has_instances_list,
):
  """Segments images by k-means and labels every segment by k-NN.

  Args:
    embedding: A float tensor `[batch, height, width, D]`.
    num_clusters: A list of 2 integers, the initial grid's clusters along y
      and x.
    kmeans_iterations: The number of k-means iterations.
    prototype_features: A float tensor `[num_prototypes, D]` (static rows).
    prototype_semantic_labels: An integer tensor `[num_prototypes]`.
    prototype_instance_labels: An integer tensor `[num_prototypes]`.
    k_in_nearest_neighbors: The number of neighbours.
    panoptic_label_divisor: An integer separating semantic and instance ids.
    class_has_instances_list: A list of the classes that have instances.

  Returns:
    panoptic_predictions: An int32 tensor `[batch, height, width]`.
    semantic_predictions: An int32 tensor `[batch, height, width]`.
    instance_predictions: An int32 tensor `[batch, height, width]`, 0 for
      classes without instances.
    cluster_labels: An int32 tensor `[batch, height, width]`, the segments,
      numbered across the batch.

  Raises:
    ValueError: If `embedding` is not `[batch, height, width, D]`, or
      `k_in_nearest_neighbors` not an integer >= 1.
    tf.errors.InvalidArgumentError: If the embedding holds NaN or infinity.
  """
  checks.check_embedding(embedding)
  checks.check_positive_integer(
    'k_in_nearest_neighbors', k_in_nearest_neighbors
  )
  embedding = common_utils.normalize_embedding(
    checks.assert_finite(tf.cast(embedding, tf.float32), 'embedding')
  )
  cluster_labels, test_prototypes = segment_by_kmeans_without_labels(
    embedding, num_clusters, kmeans_iterations
  )

  semantic_predictions, instance_predictions = predict_semantic_instance_labels(
    cluster_labels,
    test_prototypes,
    prototype_features,
    prototype_semantic_labels,
    prototype_instance_labels,
    k_in_nearest_neighbors,
  )
  has_instances = tf.reduce_any(
    tf.equal(
      semantic_predictions[..., tf.newaxis],
      tf.reshape(tf.cast(class_has_instances_list, tf.int32), [1, 1, 1, -1]),
    ),
    axis=3,
  )
  instance_predictions = tf.where(
    has_instances, instance_predictions, tf.zeros_like(instance_predictions)
  )
  panoptic_predictions = (
    semantic_predictions * panoptic_label_divisor + instance_predictions
  )
  return (
    panoptic_predictions,
    semantic_predictions,
    instance_predictions,
    cluster_labels,
  )
