"""Hand-computed cases for network.segsort.eval_utils and vis_utils."""

import numpy as np
import pytest
import tensorflow as tf

from network.segsort import common_utils
from network.segsort import eval_utils
from network.segsort import train_utils
from network.segsort import vis_utils


def test_find_majority_label_index_breaks_ties_to_the_lowest_label():
  labels = tf.constant([2, 2, 1, 3, 1, 0])
  clusters = tf.constant([0, 0, 0, 1, 1, 2])
  select, majority = eval_utils.find_majority_label_index(labels, clusters)
  # Cluster 1 has one 3 and one 1: the tie goes to 1.
  assert majority.numpy().tolist() == [2, 1, 0]
  assert select.numpy()[:, 0].tolist() == [0, 1, 4, 5]


def test_extract_trained_prototypes_uses_majority_pixels_only():
  # One cluster (initial labels all 0, one k-means cluster): majority class 1
  # (3 pixels); the class-2 pixel and the ignored pixel do not count.
  embedding = tf.constant(
    [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [-1.0, 0.0]]
  )
  location = tf.zeros([5, 2])
  labels = tf.constant([1, 1, 1, 2, 255])
  features, semantic, instance = eval_utils.extract_trained_prototypes(
    embedding, location, tf.zeros([5], tf.int32), 1, 3, labels, 1, 255
  )
  assert semantic.numpy().tolist() == [1]
  assert instance.numpy().tolist() == [0]
  # Normalised sum of (1, 0), (1, 0) and (0, 1).
  np.testing.assert_allclose(
    features.numpy(), [[2 / np.sqrt(5), 1 / np.sqrt(5)]], atol=1e-6
  )


def test_extract_trained_prototypes_two_clusters():
  embedding = tf.constant([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3)
  location = tf.zeros([6, 2])
  labels = tf.constant([0, 0, 0, 4, 4, 255])
  initial = tf.constant([0, 0, 0, 1, 1, 1])
  features, semantic, _ = eval_utils.extract_trained_prototypes(
    embedding, location, initial, 2, 2, labels, 1, 255
  )
  assert semantic.numpy().tolist() == [0, 4]
  np.testing.assert_allclose(features.numpy(), [[1, 0], [0, 1]], atol=1e-6)


def test_nearest_prototypes_in_chunks_equals_one_chunk():
  rng = np.random.default_rng(1)
  bank = tf.math.l2_normalize(
    tf.constant(rng.normal(size=(1000, 8)), tf.float32), -1
  )
  queries = tf.math.l2_normalize(
    tf.constant(rng.normal(size=(7, 8)), tf.float32), -1
  )
  whole = eval_utils.nearest_prototypes(queries, bank, 5, chunk_size=1000)
  chunked = eval_utils.nearest_prototypes(queries, bank, 5, chunk_size=64)
  np.testing.assert_array_equal(whole[1], chunked[1])
  expected = np.argsort(-(queries.numpy() @ bank.numpy().T), axis=1)[:, :5]
  np.testing.assert_array_equal(whole[1], expected)


def test_nearest_prototypes_small_bank_and_empty_bank():
  bank = tf.constant([[1.0, 0.0], [0.0, 1.0]])
  similarities, indices = eval_utils.nearest_prototypes(
    tf.constant([[0.6, 0.8]]), bank, 15
  )
  assert indices.numpy().tolist() == [[1, 0]]
  np.testing.assert_allclose(similarities.numpy(), [[0.8, 0.6]])
  try:
    eval_utils.nearest_prototypes(
      tf.constant([[1.0, 0.0]]), tf.zeros([0, 2]), 3
    )
  except ValueError as error:
    assert 'empty' in str(error)
  else:
    raise AssertionError('expected ValueError')


def test_k_nearest_neighbors_majority_and_ties():
  labels = tf.constant([0, 1, 1, 2])
  predictions = eval_utils.k_nearest_neighbors(
    tf.constant([[1, 2, 0], [3, 0, 1], [3, 3, 0]]), labels
  )
  assert predictions.numpy().tolist() == [1, 0, 2]


def test_knn_label_votes():
  bank = tf.constant([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
  votes = eval_utils.knn_label_votes(
    tf.constant([[1.0, 0.0]]), bank, tf.constant([2, 0, 2]), 2, 3
  )
  assert votes.numpy().tolist() == [[1.0, 0.0, 1.0]]


def test_predict_all_labels_on_two_halves():
  left = np.tile([1.0, 0.0], (4, 2, 1))
  right = np.tile([0.0, 1.0], (4, 2, 1))
  embedding = tf.constant(
    np.concatenate([left, right], 1)[np.newaxis], tf.float32
  )
  bank = tf.constant([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
  panoptic, semantic, instance, clusters = eval_utils.predict_all_labels(
    embedding,
    [1, 2],
    3,
    bank,
    tf.constant([5, 5, 7]),
    tf.constant([0, 0, 1]),
    1,
    1000,
    [7],
  )
  assert semantic.numpy()[0].tolist() == [[5, 5, 7, 7]] * 4
  assert instance.numpy()[0].tolist() == [[0, 0, 1, 1]] * 4
  assert panoptic.numpy()[0, 0].tolist() == [5000, 5000, 7001, 7001]
  assert len(np.unique(clusters.numpy())) == 2


def test_pca_orders_components_by_variance_and_scales_to_unit_range():
  rng = np.random.default_rng(0)
  # Large variance along axis 2, small along axis 0, none along axis 1.
  values = np.zeros((1, 10, 10, 3), np.float32)
  values[..., 2] = rng.normal(size=(1, 10, 10)) * 10
  values[..., 0] = rng.normal(size=(1, 10, 10)) * 0.1
  pictures = vis_utils.pca(tf.constant(values)).numpy()
  assert pictures.shape == (1, 10, 10, 3)
  assert pictures.min() >= 0 and pictures.max() <= 1
  first = pictures[0, ..., 0].ravel()
  correlation = np.corrcoef(first, values[0, ..., 2].ravel())[0, 1]
  assert abs(correlation) > 0.999
  projections = vis_utils.calculate_principal_components(
    tf.constant(values.reshape(-1, 3)), 2
  ).numpy()
  assert projections.shape == (100, 2)
  assert projections[:, 0].var() > 100 * projections[:, 1].var()


@pytest.mark.parametrize('embedding_dim', [1, 2])
def test_pca_of_fewer_dimensions_than_colours_pads_with_zero(embedding_dim):
  # Training's embedding picture crashed at its first summary step for
  # --embedding_dim 1 or 2 ("Input to reshape is a tensor with 64 values").
  values = np.random.default_rng(0).normal(size=(2, 4, 5, embedding_dim))
  pictures = vis_utils.pca(tf.constant(values, tf.float32)).numpy()
  assert pictures.shape == (2, 4, 5, 3)
  np.testing.assert_array_equal(pictures[..., embedding_dim:], 0.0)
  assert pictures[..., 0].max() == pytest.approx(1.0)


def test_label_votes_count_the_labels_of_given_neighbours():
  votes = eval_utils.label_votes(
    tf.constant([[0, 2], [1, 1]]), tf.constant([2, 0, 2]), 3
  )
  assert votes.numpy().tolist() == [[0.0, 0.0, 2.0], [2.0, 0.0, 0.0]]


def _two_region_grid():
  """A 4x6-cell grid: embedding e0 left of column 3, e1 from it."""
  grid = np.zeros((4, 6, 3), np.float32)
  grid[:, :3, 0] = 1.0
  grid[:, 3:, 1] = 1.0
  return grid


def test_segment_by_kmeans_on_grid_keeps_pixel_boundaries():
  grid = _two_region_grid()
  pixels = common_utils.normalize_embedding(
    tf.image.resize(grid[np.newaxis], [16, 24], method='bilinear')[0]
  )
  segment_ids, prototypes = eval_utils.segment_by_kmeans_on_grid(
    tf.constant(grid), pixels, [1, 2], 5, output_stride=4
  )
  expected = np.zeros((16, 24), np.int32)
  # Cells 0-2 cover pixels 0-11; the bilinear blend crosses at pixel 12.
  expected[:, 12:] = 1
  np.testing.assert_array_equal(segment_ids.numpy(), expected)
  # Each prototype is the mean direction of its pixels' upsampled embedding.
  expected_prototypes = np.stack(
    [
      tf.math.l2_normalize(tf.reduce_sum(pixels[:, :12], [0, 1])),
      tf.math.l2_normalize(tf.reduce_sum(pixels[:, 12:], [0, 1])),
    ]
  )
  np.testing.assert_allclose(prototypes.numpy(), expected_prototypes, atol=1e-6)


def _segment_two_regions_with_colour_edge_at(edge_column, colour_weight):
  """Segments the two-region grid of an image whose colour changes at a
  pixel column other than the embedding's boundary (12)."""
  grid = _two_region_grid()
  pixels = common_utils.normalize_embedding(
    tf.image.resize(grid[np.newaxis], [16, 24], method='bilinear')[0]
  )
  colour = np.zeros((16, 24, 3), np.float32)
  colour[:, edge_column:] = 1.0
  segment_ids, _ = eval_utils.segment_by_kmeans_on_grid(
    tf.constant(grid),
    pixels,
    [1, 2],
    5,
    output_stride=4,
    pixel_colour=tf.constant(colour),
    colour_weight=colour_weight,
  )
  return segment_ids.numpy()


def test_segment_by_kmeans_on_grid_moves_boundaries_onto_colour_edges():
  for edge_column in (10, 14):
    # Without colour, the boundary stays midway between the cell centres.
    assert (
      _segment_two_regions_with_colour_edge_at(edge_column, 0.0)[0].tolist()
      == [0] * 12 + [1] * 12
    )
    # With it, each pixel within the blend joins the segment of its colour.
    assert _segment_two_regions_with_colour_edge_at(edge_column, 10.0)[
      0
    ].tolist() == [0] * edge_column + [1] * (24 - edge_column)


def test_segment_by_kmeans_on_grid_colour_cannot_reach_beyond_neighbours():
  # A colour edge far inside a region does not cut it: only the clusters
  # of a pixel's surrounding cells compete, however strong the colour.
  segment_ids = _segment_two_regions_with_colour_edge_at(3, 1000.0)
  assert segment_ids.max() == 1
  assert (segment_ids[:, 12:] == 1).all()


@pytest.mark.parametrize(
  'colour_weight, colour, message',
  [
    (-1.0, True, 'colour_weight must be a number >= 0 and <= 1000000'),
    (float('nan'), True, 'colour_weight must be a number >= 0'),
    (float('inf'), True, 'colour_weight must be a number >= 0'),
    (1e39, True, 'colour_weight must be a number >= 0'),
    (1.0, False, 'colour_weight > 0 needs pixel_colour'),
  ],
)
def test_segment_by_kmeans_on_grid_refuses_bad_colour_settings(
  colour_weight, colour, message
):
  grid = _two_region_grid()
  with pytest.raises(ValueError, match=message):
    eval_utils.segment_by_kmeans_on_grid(
      tf.constant(grid),
      tf.zeros([16, 24, 3]),
      [1, 2],
      5,
      output_stride=4,
      pixel_colour=tf.zeros([16, 24, 3]) if colour else None,
      colour_weight=colour_weight,
    )


def test_segment_by_kmeans_on_grid_joins_only_surrounding_clusters():
  # One cluster per grid column (a 1x6 initial grid on identical
  # embeddings: location alone separates them); the pixels of the image's
  # first 4 columns lie between cell centres 0 and 1 or before centre 0,
  # so they may only join clusters 0 or 1.
  grid = np.zeros((2, 6, 3), np.float32)
  grid[..., 0] = 1.0
  pixels = tf.ones([8, 24, 3]) / np.sqrt(3.0)
  segment_ids, _ = eval_utils.segment_by_kmeans_on_grid(
    tf.constant(grid),
    common_utils.normalize_embedding(pixels),
    [1, 6],
    0,
    output_stride=4,
  )
  segment_ids = segment_ids.numpy()
  assert set(np.unique(segment_ids[:, :4])) <= {0, 1}
  assert segment_ids.max() <= 5
  # Segments follow columns: each pixel column takes one segment, in order.
  assert (np.diff(segment_ids[0]) >= 0).all()
  assert (segment_ids == segment_ids[:1]).all()


def test_the_two_segmentations_keep_the_original_s_name():
  # Both modules' segment_by_kmeans, under names that say how they differ.
  assert (
    eval_utils.segment_by_kmeans is eval_utils.segment_by_kmeans_without_labels
  )
  assert (
    train_utils.segment_by_kmeans is train_utils.segment_by_kmeans_and_labels
  )
