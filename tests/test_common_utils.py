"""Hand-computed cases for network.segsort.common_utils."""

import numpy as np
import pytest
import tensorflow as tf

from network.segsort import common_utils


def test_normalize_embedding_is_safe_for_zero_vectors():
  embedding = tf.constant([[3.0, 4.0], [0.0, 0.0]])
  np.testing.assert_allclose(
    common_utils.normalize_embedding(embedding).numpy(),
    [[0.6, 0.8], [0.0, 0.0]],
    atol=1e-7,
  )


def test_calculate_prototypes_from_labels_gives_zero_for_empty_labels():
  embedding = tf.constant([[2.0, 0.0], [1.0, 0.0], [0.0, 5.0]])
  prototypes = common_utils.calculate_prototypes_from_labels(
    embedding, tf.constant([0, 0, 1]), 3
  )
  np.testing.assert_allclose(
    prototypes.numpy(), [[1, 0], [0, 1], [0, 0]], atol=1e-7
  )


def test_calculate_prototypes_from_labels_infers_the_count():
  prototypes = common_utils.calculate_prototypes_from_labels(
    tf.constant([[[1.0, 1.0]], [[0.0, 2.0]]]), tf.constant([[1], [1]])
  )
  # Sum of (1, 1) and (0, 2) is (1, 3); normalised: (1, 3) / sqrt(10).
  np.testing.assert_allclose(
    prototypes.numpy(), [[0, 0], [1 / np.sqrt(10), 3 / np.sqrt(10)]], atol=1e-6
  )


def test_find_nearest_prototypes_with_and_without_mask():
  embedding = tf.constant([[1.0, 0.0], [0.0, 1.0]])
  prototypes = tf.constant([[0.6, 0.8], [1.0, 0.0]])
  assert common_utils.find_nearest_prototypes(
    embedding, prototypes
  ).numpy().tolist() == [1, 0]
  assert common_utils.find_nearest_prototypes(
    embedding, prototypes, tf.constant([True, False])
  ).numpy().tolist() == [0, 0]


def test_kmeans_with_initial_labels_converges_to_two_groups():
  b = np.array([0.994, 0.110])
  d = np.array([0.110, 0.994])
  embedding = tf.constant(np.stack([[1, 0], b, [0, 1], d]), tf.float32)
  labels = common_utils.kmeans_with_initial_labels(
    embedding, tf.constant([0, 0, 0, 1]), 2, 3
  )
  assert labels.numpy().tolist() == [0, 0, 1, 1]


def test_kmeans_never_moves_pixels_to_an_empty_cluster():
  # Cluster 0 is empty; its (zero) prototype has cosine 0, larger than the
  # third pixel's cosine with cluster 1 (-0.124).
  embedding = tf.constant([[1.0, 0.0], [1.0, 0.0], [-0.6, 0.8]])
  labels = common_utils.kmeans_with_initial_labels(
    embedding, tf.constant([1, 1, 1]), 2, 2
  )
  assert labels.numpy().tolist() == [1, 1, 1]


def test_batched_kmeans_keeps_images_apart_and_respects_valid_mask():
  # Image 0 would merge into one cluster; image 1 splits. Invalid pixels keep
  # their initial label and do not pull prototypes.
  embedding = tf.constant(
    [
      [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]],
      [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]],
    ]
  )
  initial = tf.constant([[0, 1, 0, 1], [0, 0, 1, 1]])
  valid = tf.constant([[True, True, True, True], [True, True, True, False]])
  labels = common_utils.kmeans_with_initial_labels(
    embedding, initial, 2, 5, valid
  )
  # Image 0: both prototypes start at (0.707, 0.707); argmax ties pick 0.
  # Image 1: prototypes (0.707, 0.707) and (1, 0) separate the two
  # directions; the invalid last pixel keeps its label 1.
  assert labels.numpy().tolist() == [[0, 0, 0, 0], [1, 0, 1, 1]]


def test_kmeans_from_grid_on_two_halves():
  left = np.tile([1.0, 0.0], (4, 2, 1))
  right = np.tile([0.0, 1.0], (4, 2, 1))
  embedding = tf.constant(
    np.concatenate([left, right], 1)[np.newaxis], tf.float32
  )
  labels = common_utils.kmeans(embedding, [1, 2], 3)
  expected = [[0, 0, 1, 1]] * 4
  assert labels.numpy()[0].tolist() == expected


def test_initialize_cluster_labels_grid():
  labels = common_utils.initialize_cluster_labels([2, 2], [3, 4])
  assert labels.numpy().tolist() == [[0, 0, 2, 2], [0, 0, 2, 2], [1, 1, 3, 3]]


def test_a_grid_is_rows_and_columns_or_the_original_s_clusters_per_axis():
  assert common_utils.cluster_grid(5) == (5, 5)
  assert common_utils.cluster_grid([4, 6]) == (4, 6)
  assert common_utils.total_clusters((4, 6)) == 24
  assert common_utils.total_clusters(5) == 25
  np.testing.assert_array_equal(
    common_utils.initialize_cluster_labels(2, [3, 4]),
    common_utils.initialize_cluster_labels([2, 2], [3, 4]),
  )
  with pytest.raises(ValueError, match='rows, columns'):
    common_utils.cluster_grid((3, 0))


def test_initialize_cluster_labels_stays_in_range_for_small_images():
  labels = common_utils.initialize_cluster_labels([5, 5], [3, 7]).numpy()
  assert labels.min() == 0 and labels.max() < 25
  assert labels.tolist()[0] == [0, 0, 3, 3, 6, 6, 9]


def test_generate_location_features():
  features = common_utils.generate_location_features([2, 4], 'float').numpy()
  np.testing.assert_allclose(features[..., 0], [[0] * 4, [0.5] * 4])
  np.testing.assert_allclose(features[..., 1], [[0, 0.25, 0.5, 0.75]] * 2)
  integer = common_utils.generate_location_features([2, 3], 'int').numpy()
  assert integer[1, 2].tolist() == [1, 2]


def test_generate_location_features_rejects_unknown_type():
  try:
    common_utils.generate_location_features([2, 2], 'double')
  except ValueError as error:
    assert 'double' in str(error)
  else:
    raise AssertionError('expected ValueError')


def test_prepare_prototype_labels():
  unique_instance_labels, prototype_labels = (
    common_utils.prepare_prototype_labels(
      tf.constant([1, 2, 1, 1]), tf.constant([0, 0, 0, 3]), 256
    )
  )
  assert unique_instance_labels.numpy().tolist() == [0, 1, 0, 2]
  assert prototype_labels.numpy().tolist() == [1, 2, 1]
