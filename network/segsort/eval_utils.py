"""SegSort inference: prototypes of annotated images and k-NN labelling."""

import tensorflow as tf

from network.segsort import common_utils


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
  label_counts = tf.math.unsorted_segment_sum(
      tf.one_hot(labels, tf.reduce_max(labels) + 1),
      cluster_labels, tf.reduce_max(cluster_labels) + 1)
  # argmax returns the first maximum, i.e. the lowest label of a tie.
  majority_labels = tf.argmax(label_counts, axis=1, output_type=tf.int32)
  select_pixels = tf.where(
      tf.equal(tf.gather(majority_labels, cluster_labels), labels))
  return select_pixels, majority_labels


def extract_trained_prototypes(embedding,
                               location_features,
                               cluster_labels,
                               num_clusters,
                               kmeans_iterations,
                               panoptic_labels,
                               panoptic_label_divisor,
                               ignore_label,
                               evaluate_semantic_or_panoptic='semantic'):
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

  Returns:
    prototype_features: A float tensor `[num_prototypes, D]` of unit vectors.
    prototype_semantic_labels: An int32 tensor `[num_prototypes]`.
    prototype_instance_labels: An int32 tensor `[num_prototypes]`: the
      majority panoptic label's index in 'panoptic' mode, zeros otherwise.
  """
  panoptic_labels = tf.cast(panoptic_labels, tf.int32)
  valid_indices = tf.where(
      tf.not_equal(panoptic_labels // panoptic_label_divisor, ignore_label))
  panoptic_labels = tf.gather_nd(panoptic_labels, valid_indices)
  cluster_labels = tf.gather_nd(tf.cast(cluster_labels, tf.int32),
                                valid_indices)
  embedding = common_utils.normalize_embedding(
      tf.gather_nd(tf.cast(embedding, tf.float32), valid_indices))
  location_features = tf.gather_nd(tf.cast(location_features, tf.float32),
                                   valid_indices)

  embedding_with_location = common_utils.normalize_embedding(
      tf.concat([embedding, location_features], 1))
  cluster_labels = common_utils.kmeans_with_initial_labels(
      embedding_with_location, cluster_labels, num_clusters,
      kmeans_iterations)
  _, cluster_labels = tf.unique(cluster_labels)

  if evaluate_semantic_or_panoptic == 'panoptic':
    panoptic_values, unique_panoptic_labels = tf.unique(panoptic_labels)
    select_pixels, majority_labels = find_majority_label_index(
        unique_panoptic_labels, cluster_labels)
    prototype_semantic_labels = (tf.gather(panoptic_values, majority_labels) //
                                 panoptic_label_divisor)
    prototype_instance_labels = majority_labels
  elif evaluate_semantic_or_panoptic == 'semantic':
    select_pixels, majority_labels = find_majority_label_index(
        panoptic_labels // panoptic_label_divisor, cluster_labels)
    prototype_semantic_labels = majority_labels
    prototype_instance_labels = tf.zeros_like(majority_labels)
  else:
    raise ValueError("evaluate_semantic_or_panoptic must be 'semantic' or "
                     "'panoptic', got %r." % (evaluate_semantic_or_panoptic,))

  prototype_features = common_utils.calculate_prototypes_from_labels(
      tf.gather_nd(embedding, select_pixels),
      tf.gather_nd(cluster_labels, select_pixels),
      tf.size(majority_labels))
  return (prototype_features, prototype_semantic_labels,
          prototype_instance_labels)


def nearest_prototypes(queries, prototype_features, k, chunk_size=65536):
  """Finds the k most similar prototypes of every query, a chunk at a time.

  Only one `[num_queries, chunk_size]` block of similarities exists at a time,
  so that banks of millions of prototypes fit in memory.

  Args:
    queries: A float tensor `[num_queries, D]` of unit vectors.
    prototype_features: A float tensor `[num_prototypes, D]` of unit vectors,
      with a static first dimension.
    k: The number of neighbours (at most `num_prototypes` are returned).
    chunk_size: The number of prototypes compared at a time.

  Returns:
    similarities: A float tensor `[num_queries, min(k, num_prototypes)]` of
      cosines, most similar first.
    indices: An int32 tensor of the same shape, rows of `prototype_features`.
  """
  queries = tf.cast(queries, tf.float32)
  prototype_features = tf.cast(prototype_features, tf.float32)
  num_prototypes = prototype_features.shape[0]
  if num_prototypes is None:
    raise ValueError('prototype_features needs a static number of rows.')
  if num_prototypes == 0:
    raise ValueError('The prototype bank is empty.')
  k = min(k, num_prototypes)
  best_similarities = best_indices = None
  for start in range(0, num_prototypes, chunk_size):
    chunk = prototype_features[start:start + chunk_size]
    similarities = tf.matmul(queries, chunk, transpose_b=True)
    chunk_similarities, chunk_indices = tf.math.top_k(
        similarities, k=min(k, chunk.shape[0]))
    chunk_indices += start
    if best_similarities is not None:
      chunk_similarities = tf.concat([best_similarities, chunk_similarities],
                                     1)
      chunk_indices = tf.concat([best_indices, chunk_indices], 1)
    best_similarities, order = tf.math.top_k(chunk_similarities, k=k)
    best_indices = tf.gather(chunk_indices, order, batch_dims=1)
  return best_similarities, best_indices


def k_nearest_neighbors(k_predictions, prototype_labels):
  """Takes the majority label of every query's k nearest prototypes.

  Args:
    k_predictions: An integer tensor `[num_queries, k]` of prototype indices.
    prototype_labels: An integer tensor `[num_prototypes]` of non-negative
      labels.

  Returns:
    An int32 tensor `[num_queries]`; ties go to the lowest label.
  """
  neighbour_labels = tf.gather(tf.cast(prototype_labels, tf.int32),
                               k_predictions)
  votes = tf.reduce_sum(
      tf.one_hot(neighbour_labels, tf.reduce_max(neighbour_labels) + 1),
      axis=1)
  return tf.argmax(votes, axis=1, output_type=tf.int32)


def knn_label_votes(test_prototypes, prototype_features, prototype_labels, k,
                    num_classes, chunk_size=65536):
  """Counts the labels of every test prototype's k nearest prototypes.

  Args:
    test_prototypes: A float tensor `[num_queries, D]` of unit vectors.
    prototype_features: A float tensor `[num_prototypes, D]` of unit vectors.
    prototype_labels: An integer tensor `[num_prototypes]` in
      `[0, num_classes)`.
    k: The number of neighbours.
    num_classes: The number of labels.
    chunk_size: The number of prototypes compared at a time.

  Returns:
    A float32 tensor `[num_queries, num_classes]` of votes summing to
    `min(k, num_prototypes)` per row.
  """
  _, indices = nearest_prototypes(test_prototypes, prototype_features, k,
                                  chunk_size)
  neighbour_labels = tf.gather(tf.cast(prototype_labels, tf.int32), indices)
  return tf.reduce_sum(tf.one_hot(neighbour_labels, num_classes), axis=1)


def predict_semantic_instance_labels(cluster_labels,
                                     test_prototypes,
                                     prototype_features,
                                     prototype_semantic_labels,
                                     prototype_instance_labels,
                                     k=1):
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
      cluster_labels)
  if prototype_instance_labels is None:
    return semantic_predictions, None
  _, segment_instances = tf.unique(
      k_nearest_neighbors(k_predictions, prototype_instance_labels))
  return semantic_predictions, tf.gather(segment_instances, cluster_labels)


def predict_all_labels(embedding,
                       num_clusters,
                       kmeans_iterations,
                       prototype_features,
                       prototype_semantic_labels,
                       prototype_instance_labels,
                       k_in_nearest_neighbors,
                       panoptic_label_divisor,
                       class_has_instances_list):
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
  """
  embedding = common_utils.normalize_embedding(tf.cast(embedding, tf.float32))
  shape = tf.shape(embedding)
  batch_size, height, width = shape[0], shape[1], shape[2]
  location_features = common_utils.generate_location_features(
      [height, width], 'float')
  location_features = tf.tile(location_features[tf.newaxis],
                              [batch_size, 1, 1, 1])
  embedding_with_location = common_utils.normalize_embedding(
      tf.concat([embedding, location_features], 3))
  cluster_labels = common_utils.kmeans(embedding_with_location, num_clusters,
                                       kmeans_iterations)
  num_total_clusters = num_clusters[0] * num_clusters[1]
  cluster_labels += (tf.range(batch_size)[:, tf.newaxis, tf.newaxis] *
                     num_total_clusters)
  _, flat_cluster_labels = tf.unique(tf.reshape(cluster_labels, [-1]))
  cluster_labels = tf.reshape(flat_cluster_labels, shape[:3])
  test_prototypes = common_utils.calculate_prototypes_from_labels(
      embedding, cluster_labels)

  semantic_predictions, instance_predictions = (
      predict_semantic_instance_labels(
          cluster_labels, test_prototypes, prototype_features,
          prototype_semantic_labels, prototype_instance_labels,
          k_in_nearest_neighbors))
  has_instances = tf.reduce_any(
      tf.equal(semantic_predictions[..., tf.newaxis],
               tf.reshape(tf.cast(class_has_instances_list, tf.int32),
                          [1, 1, 1, -1])), axis=3)
  instance_predictions = tf.where(has_instances, instance_predictions,
                                  tf.zeros_like(instance_predictions))
  panoptic_predictions = (semantic_predictions * panoptic_label_divisor +
                          instance_predictions)
  return (panoptic_predictions, semantic_predictions, instance_predictions,
          cluster_labels)
