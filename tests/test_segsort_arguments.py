"""network.segsort used as a library: wrong arguments are named, odd dtypes work.

Each case is one a user importing the loss and the k-NN inference into
their own code met: before, a deep graph error that named no argument, or
a silent wrong result.
"""

import numpy as np
import pytest
import tensorflow as tf

from network.segsort import common_utils
from network.segsort import eval_utils
from network.segsort import train_utils

BATCH, SIZE, DIM = 2, 8, 4


def _batch():
  rng = np.random.default_rng(0)
  embedding = tf.constant(rng.normal(size=(BATCH, SIZE, SIZE, DIM)), tf.float32)
  labels = tf.constant(rng.integers(0, 3, size=(BATCH, SIZE, SIZE, 1)))
  grid = common_utils.initialize_cluster_labels([2, 2], [SIZE, SIZE])
  cluster_labels = tf.tile(grid[tf.newaxis, :, :, tf.newaxis], [BATCH, 1, 1, 1])
  loc = tf.tile(
    common_utils.generate_location_features([SIZE, SIZE], 'float')[tf.newaxis],
    [BATCH, 1, 1, 1],
  )
  return {
    'embedding': embedding,
    'labels': labels,
    'cluster_labels': cluster_labels,
    'loc_features': loc,
  }


def _loss(num_banks=0, memory_bank=None, **changed):
  inputs = {**_batch(), **changed}
  return train_utils.add_segsort_loss(
    inputs['embedding'],
    inputs['labels'],
    DIM,
    255,
    10.0,
    inputs['cluster_labels'],
    2,
    3,
    num_banks,
    inputs['loc_features'],
    memory_bank,
  )


@pytest.mark.parametrize(
  'changed, message',
  [
    # Labels at the image's resolution, not the embedding's: the most
    # likely mistake ("Dimensions must be equal, but are 16384 and 256").
    (
      {'labels': tf.zeros([BATCH, 4 * SIZE, 4 * SIZE, 1], tf.int32)},
      r"labels must be \[2, 8, 8, 1\] \(semantic labels at the embedding's "
      r'resolution\), as the embedding \[2, 8, 8, 4\]; got shape '
      r'\[2, 32, 32, 1\]',
    ),
    (
      {'cluster_labels': tf.zeros([1, SIZE, SIZE, 1], tf.int32)},
      r'cluster_labels must be \[2, 8, 8, 1\] .* got shape \[1, 8, 8, 1\]',
    ),
    (
      {'loc_features': tf.zeros([SIZE, SIZE, 2])},
      r'loc_features must be \[2, 8, 8, 2\] .* got shape \[8, 8, 2\]',
    ),
    # Pixel indices outweigh a unit embedding: k-means cut by position.
    (
      {
        'loc_features': tf.tile(
          common_utils.generate_location_features([SIZE, SIZE])[tf.newaxis],
          [BATCH, 1, 1, 1],
        )
      },
      r'loc_features must be float \(y, x\) in \[0, 1\] .*got int32',
    ),
    (
      {'embedding': tf.zeros([SIZE, SIZE, DIM])},
      r'embedding must be \[batch, height, width, D\], got shape \[8, 8, 4\]',
    ),
  ],
)
def test_the_supervised_loss_names_an_argument_of_the_wrong_shape(
  changed, message
):
  with pytest.raises(ValueError, match=message):
    _loss(**changed)


def test_labels_without_their_channel_are_accepted():
  inputs = _batch()
  assert _loss(labels=inputs['labels'][..., 0]).numpy() == pytest.approx(
    _loss().numpy()
  )


def test_cluster_labels_outside_their_grid_are_refused():
  # A 3x3 grid's labels under num_clusters 2: labels 4-8 were offset into
  # the next image's clusters, joining segments across images.
  grid = common_utils.initialize_cluster_labels([3, 3], [SIZE, SIZE])
  with pytest.raises(
    tf.errors.InvalidArgumentError,
    match=r'cluster_labels must lie in \[0, 4\), the num_clusters 2x2 grid',
  ):
    _loss(
      cluster_labels=tf.tile(grid[tf.newaxis, :, :, None], [BATCH, 1, 1, 1])
    )
  # In tf.function too.
  with pytest.raises(tf.errors.InvalidArgumentError, match='must lie in'):
    tf.function(_loss)(
      cluster_labels=tf.tile(grid[tf.newaxis, :, :, None], [BATCH, 1, 1, 1])
    )


def test_memory_banks_without_a_memory_bank_are_refused():
  # The original made its banks inside the loss; a ported call trained
  # without them, silently.
  with pytest.raises(ValueError, match=r'num_banks=2 needs a memory_bank'):
    _loss(num_banks=2)


@pytest.mark.parametrize(
  'embedding, cluster_labels, message',
  [
    (
      tf.zeros([SIZE, SIZE, DIM]),
      tf.zeros([BATCH, SIZE, SIZE, 1], tf.int32),
      r'embedding must be \[batch, height, width, D\]',
    ),
    (
      tf.zeros([BATCH, SIZE, SIZE, DIM]),
      tf.zeros([BATCH, 2 * SIZE, 2 * SIZE, 1], tf.int32),
      r'cluster_labels must be \[2, 8, 8, 1\] \(segment ids at the '
      r"embedding's resolution\)",
    ),
  ],
)
def test_the_unsupervised_loss_names_an_argument_of_the_wrong_shape(
  embedding, cluster_labels, message
):
  with pytest.raises(ValueError, match=message):
    train_utils.add_unsupervised_segsort_loss(embedding, 10.0, cluster_labels)


@pytest.mark.parametrize('dtype', [tf.float16, tf.bfloat16])
def test_normalisation_in_16_bits_keeps_zero_and_small_vectors(dtype):
  # float16's epsilon underflowed: NaN for zero vectors, inf for small ones.
  zero = common_utils.normalize_embedding(tf.zeros([2, 4], dtype))
  small = common_utils.normalize_embedding(
    tf.fill([1, 4], tf.constant(1e-4, dtype))
  )
  assert zero.dtype == dtype
  np.testing.assert_array_equal(tf.cast(zero, tf.float32).numpy(), 0.0)
  np.testing.assert_allclose(tf.cast(small, tf.float32).numpy(), 0.5)
  prototypes = common_utils.calculate_prototypes_from_labels(
    tf.ones([4, 3], dtype), [0, 0, 2, 2], 4
  )
  np.testing.assert_array_equal(tf.cast(prototypes[1], tf.float32).numpy(), 0.0)


@pytest.mark.parametrize('dtype', [tf.float16, tf.bfloat16, tf.float64])
def test_test_time_segmentations_take_any_float_dtype(dtype):
  embedding = common_utils.normalize_embedding(_batch()['embedding'])
  reference = eval_utils.segment_by_kmeans_without_labels(embedding, [2, 2], 3)
  segments, prototypes = eval_utils.segment_by_kmeans_without_labels(
    tf.cast(embedding, dtype), [2, 2], 3
  )
  assert prototypes.dtype == tf.float32
  assert segments.shape == reference[0].shape
  grid = embedding[0]
  pixels = tf.image.resize(grid[tf.newaxis], [4 * SIZE, 4 * SIZE])[0]
  segment_ids, prototypes = eval_utils.segment_by_kmeans_on_grid(
    tf.cast(grid, dtype), tf.cast(pixels, dtype), [2, 2], 3, 4
  )
  assert segment_ids.shape == (4 * SIZE, 4 * SIZE)
  assert prototypes.dtype == tf.float32


def test_a_grid_that_is_not_the_pixels_grid_is_refused():
  grid = tf.zeros([8, 8, DIM])
  with pytest.raises(
    ValueError,
    match=r'grid_embedding has 8 rows but pixel_embedding 100: at '
    r'output_stride 8, 100 pixels make 13 cells',
  ):
    eval_utils.segment_by_kmeans_on_grid(
      grid, tf.zeros([100, 100, DIM]), [2, 2], 3, 8
    )


def _bank():
  return tf.constant([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])


def test_embeddings_holding_nan_are_refused_at_inference():
  # One NaN value gave its segment the labels of the bank's first rows and
  # moved the other segments, silently.
  embedding = _batch()['embedding'].numpy()
  embedding[0, 3, 3, 0] = np.nan
  with pytest.raises(
    tf.errors.InvalidArgumentError, match='embedding holds NaN or infinity'
  ):
    eval_utils.predict_all_labels(
      tf.constant(embedding), [2, 2], 3, _bank(), [0, 1], [0, 0], 1, 1, []
    )
  grid = tf.constant(embedding[0])
  with pytest.raises(
    tf.errors.InvalidArgumentError, match='grid_embedding holds NaN'
  ):
    eval_utils.segment_by_kmeans_on_grid(grid, grid, [2, 2], 3, 1)
  with pytest.raises(tf.errors.InvalidArgumentError, match='embedding holds'):
    eval_utils.extract_trained_prototypes(
      tf.reshape(grid, [-1, DIM]),
      tf.zeros([SIZE * SIZE, 2]),
      tf.zeros([SIZE * SIZE], tf.int32),
      1,
      3,
      tf.zeros([SIZE * SIZE], tf.int32),
      1,
      255,
    )


@pytest.mark.parametrize('k', [0, -1, 2.5, True])
def test_a_k_that_is_no_positive_integer_is_named(k):
  # k=0 said "OneHot: depth must be non-negative, got: -2147483647".
  with pytest.raises(ValueError, match=r'k_in_nearest_neighbors must be an'):
    eval_utils.predict_all_labels(
      _batch()['embedding'], [2, 2], 3, _bank(), [0, 1], [0, 0], k, 1, []
    )
  with pytest.raises(ValueError, match=r'^k must be an integer >= 1'):
    eval_utils.nearest_prototypes(_bank(), _bank(), k)


def test_an_image_without_valid_pixels_has_no_prototype():
  num_pixels = SIZE * SIZE
  features, labels, instances, pixel_prototypes = (
    eval_utils.extract_trained_prototypes(
      tf.ones([num_pixels, DIM]),
      tf.zeros([num_pixels, 2]),
      tf.zeros([num_pixels], tf.int32),
      4,
      3,
      tf.fill([num_pixels], 255),
      1,
      255,
      return_pixel_prototypes=True,
    )
  )
  assert features.shape == (0, DIM)
  assert labels.shape == instances.shape == (0,)
  np.testing.assert_array_equal(pixel_prototypes.numpy(), -1)


def test_prototype_extraction_names_an_embedding_of_image_shape():
  with pytest.raises(
    ValueError, match=r'embedding must be \[num_pixels, D\], got shape'
  ):
    eval_utils.extract_trained_prototypes(
      tf.ones([SIZE, SIZE, DIM]),
      tf.zeros([SIZE * SIZE, 2]),
      tf.zeros([SIZE * SIZE], tf.int32),
      4,
      3,
      tf.zeros([SIZE * SIZE], tf.int32),
      1,
      255,
    )


@pytest.mark.parametrize(
  'num_clusters, grid',
  [
    (np.int64(5), (5, 5)),
    (np.array([3, 4]), (3, 4)),
    ([2, np.int32(3)], (2, 3)),
  ],
)
def test_a_grid_of_numpy_integers_is_a_grid(num_clusters, grid):
  assert common_utils.cluster_grid(num_clusters) == grid


@pytest.mark.parametrize('num_clusters', [True, 5.0, (1, True), '55', (2,)])
def test_a_grid_of_no_integers_is_refused(num_clusters):
  # True was the grid (True, True); 5.0 was "not iterable".
  with pytest.raises(ValueError, match='A k-means grid is n or'):
    common_utils.cluster_grid(num_clusters)
