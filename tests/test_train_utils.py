"""Hand-computed cases, gradients, compilation and degenerate inputs of the losses."""

import math

import numpy as np
import pytest
import tensorflow as tf

from network.segsort import common_utils
from network.segsort import train_utils

E = math.e


def _vmf_loss(
  embedding,
  semantic,
  instance,
  prototype_labels,
  concentration=1.0,
  memory=None,
  memory_labels=None,
):
  return train_utils.calculate_vmf_loss(
    tf.constant(embedding, tf.float32),
    tf.constant(semantic),
    tf.constant(instance),
    tf.constant(prototype_labels),
    concentration,
    None if memory is None else tf.constant(memory, tf.float32),
    None if memory_labels is None else tf.constant(memory_labels),
  )


def test_vmf_loss_hand_computed():
  # Pixels p0 and p2 (class 0) sit in segments 0 and 2; p1 (class 1) is alone
  # in its class. Cosines are 1 to the own direction and 0 otherwise.
  loss, new_memory, new_labels = _vmf_loss(
    [[1, 0], [0, 1], [1, 0]], [0, 1, 0], [0, 1, 2], [0, 1, 0]
  )
  p0 = math.log(1 + 1 / E)  # -log(e / (e + 1))
  p1 = math.log(1 + 2 / E)  # numerator falls back to its own segment
  assert loss.numpy() == pytest.approx((2 * p0 + p1) / 3, rel=1e-6)
  assert new_memory is None and new_labels is None


def test_vmf_loss_concentration_scales_logits():
  loss, _, _ = _vmf_loss(
    [[1, 0], [0, 1]], [0, 1], [0, 1], [0, 1], concentration=10.0
  )
  # Each pixel: own segment e^10 against one other class at e^0.
  assert loss.numpy() == pytest.approx(math.log(1 + math.exp(-10)), rel=1e-5)


def test_vmf_loss_with_memory_and_empty_slots():
  # Memory: a class-0 prototype along (0, 1) and an empty slot (label -1).
  loss, new_memory, new_labels = _vmf_loss(
    [[1, 0], [0, 1], [1, 0]],
    [0, 1, 0],
    [0, 1, 2],
    [0, 1, 0],
    memory=[[0, 1], [1, 0]],
    memory_labels=[0, -1],
  )
  p0 = math.log(1 + 1 / (E + 1))
  p1 = math.log(1 + (2 + E) / E)
  assert loss.numpy() == pytest.approx((2 * p0 + p1) / 3, rel=1e-6)
  # The step's prototypes, shuffled, are returned for the bank.
  assert sorted(new_labels.numpy().tolist()) == [0, 0, 1]
  rows = sorted(map(tuple, np.round(new_memory.numpy(), 6).tolist()))
  assert rows == [(0.0, 1.0), (1.0, 0.0), (1.0, 0.0)]


def test_vmf_loss_gradient_matches_finite_differences():
  rng = np.random.default_rng(3)
  embedding = tf.constant(rng.normal(size=(5, 3)), tf.float32)
  semantic = tf.constant([0, 0, 1, 1, 2])
  instance = tf.constant([0, 1, 2, 2, 3])
  labels = tf.constant([0, 0, 1, 2])

  def loss_fn(x):
    return train_utils.calculate_vmf_loss(
      common_utils.normalize_embedding(x), semantic, instance, labels, 2.0
    )[0]

  theoretical, numerical = tf.test.compute_gradient(
    loss_fn, [embedding], delta=1e-3
  )
  np.testing.assert_allclose(theoretical[0], numerical[0], atol=2e-3)
  assert np.abs(theoretical[0]).max() > 1e-3


def test_unsupervised_loss_hand_computed_and_ignores_negative_ids():
  embedding = tf.constant([[[[1, 0], [1, 0], [0, 1], [5, 5]]]], tf.float32)
  segments = tf.constant([[[[0], [0], [1], [-1]]]])
  loss = train_utils.add_unsupervised_segsort_loss(embedding, 1.0, segments)
  assert loss.numpy() == pytest.approx(math.log(1 + 1 / E), rel=1e-6)


def test_unsupervised_loss_separates_images_with_equal_ids():
  embedding = tf.constant([[[[1, 0]]], [[[0, 1]]]], tf.float32)
  segments = tf.zeros([2, 1, 1, 1], tf.int32)
  loss = train_utils.add_unsupervised_segsort_loss(embedding, 1.0, segments)
  assert loss.numpy() == pytest.approx(math.log(1 + 1 / E), rel=1e-6)


def test_unsupervised_loss_rejects_memory_banks():
  with pytest.raises(ValueError, match='num_banks'):
    train_utils.add_unsupervised_segsort_loss(
      tf.ones([1, 1, 1, 2]), 1.0, tf.zeros([1, 1, 1, 1], tf.int32), 2
    )


def _grouped_unsupervised_loss_reference(
  embedding, segments, groups, concentration
):
  """NumPy: every valid pixel against its own segment's prototype and the
  prototypes of the batch's segments outside its group."""
  batch_size, dim = embedding.shape[0], embedding.shape[-1]
  vectors = embedding.reshape(batch_size, -1, dim)
  vectors = vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)
  segments = segments.reshape(batch_size, -1)
  groups = groups.reshape(batch_size, -1)
  keys = sorted(
    {(b, s) for b in range(batch_size) for s in segments[b] if s >= 0}
  )
  prototypes = {}
  group_of = {}
  for b, s in keys:
    mean = vectors[b][segments[b] == s].mean(axis=0)
    prototypes[b, s] = mean / np.linalg.norm(mean)
    group_of[b, s] = groups[b][segments[b] == s][0]
  losses = []
  for b in range(batch_size):
    for pixel, s in enumerate(segments[b]):
      if s < 0:
        continue
      logits = {
        key: concentration * vectors[b][pixel] @ prototype
        for key, prototype in prototypes.items()
      }
      others = [
        logit
        for key, logit in logits.items()
        if key != (b, s) and (key[0] != b or group_of[key] != group_of[b, s])
      ]
      losses.append(
        np.log1p(np.sum(np.exp(np.array(others) - logits[b, s])))
        if others
        else 0.0
      )
  return np.mean(losses)


def test_unsupervised_loss_leaves_the_pixels_group_out():
  # Segments 0 and 1 of image 0 share group 5: they no longer push each
  # other apart; segment 2 (group 7) and image 1's segment (group 5, but of
  # another image) still do.
  embedding = tf.constant(
    [[[[1, 0], [0, 1], [1, 1]]], [[[-1, 0], [-1, 0], [-1, 0]]]], tf.float32
  )
  segments = tf.constant([[[[0], [1], [2]]], [[[0], [0], [0]]]])
  groups = tf.constant([[[[5], [5], [7]]], [[[5], [5], [5]]]])
  loss = train_utils.add_unsupervised_segsort_loss(
    embedding, 1.0, segments, segment_groups=groups
  )
  expected = _grouped_unsupervised_loss_reference(
    embedding.numpy(), segments.numpy(), groups.numpy(), 1.0
  )
  assert loss.numpy() == pytest.approx(expected, rel=1e-5)
  ungrouped = train_utils.add_unsupervised_segsort_loss(
    embedding, 1.0, segments
  )
  assert loss.numpy() < ungrouped.numpy() - 0.01


def test_unsupervised_loss_with_groups_matches_reference_and_gradient():
  rng = np.random.default_rng(7)
  embedding = tf.constant(rng.normal(size=(2, 4, 5, 3)), tf.float32)
  segments = rng.integers(0, 6, size=(2, 4, 5, 1)).astype(np.int32)
  segments[0, 0, :2] = -1  # padding
  groups = (segments // 2).astype(np.int32)  # segments nest in groups
  groups[segments < 0] = -1
  segments, groups = tf.constant(segments), tf.constant(groups)

  def loss_fn(x):
    return train_utils.add_unsupervised_segsort_loss(
      x, 2.0, segments, segment_groups=groups
    )

  expected = _grouped_unsupervised_loss_reference(
    embedding.numpy(), segments.numpy(), groups.numpy(), 2.0
  )
  assert loss_fn(embedding).numpy() == pytest.approx(expected, rel=1e-5)
  theoretical, numerical = tf.test.compute_gradient(
    loss_fn, [embedding], delta=1e-3
  )
  np.testing.assert_allclose(theoretical[0], numerical[0], atol=2e-3)
  assert np.abs(theoretical[0]).max() > 1e-3


def test_unsupervised_loss_with_one_group_per_segment_is_unchanged():
  rng = np.random.default_rng(8)
  embedding = tf.constant(rng.normal(size=(2, 3, 4, 3)), tf.float32)
  segments = tf.constant(rng.integers(0, 5, size=(2, 3, 4, 1)), tf.int32)
  grouped = train_utils.add_unsupervised_segsort_loss(
    embedding, 3.0, segments, segment_groups=segments * 10
  )
  plain = train_utils.add_unsupervised_segsort_loss(embedding, 3.0, segments)
  assert grouped.numpy() == pytest.approx(plain.numpy(), rel=1e-6)


def _batch(batch_size=2, size=8, dim=4, seed=0, num_classes=3):
  rng = np.random.default_rng(seed)
  embedding = tf.constant(
    rng.normal(size=(batch_size, size, size, dim)), tf.float32
  )
  labels = rng.integers(0, num_classes, size=(batch_size, size, size, 1))
  grid = common_utils.initialize_cluster_labels([2, 2], [size, size])
  cluster_labels = tf.tile(
    grid[tf.newaxis, :, :, tf.newaxis], [batch_size, 1, 1, 1]
  )
  loc = tf.tile(
    common_utils.generate_location_features([size, size], 'float')[tf.newaxis],
    [batch_size, 1, 1, 1],
  )
  return embedding, tf.constant(labels, tf.int32), cluster_labels, loc


def _segsort_loss(
  embedding, labels, cluster_labels, loc, memory_bank=None, num_banks=0
):
  return train_utils.add_segsort_loss(
    embedding,
    labels,
    embedding.shape[-1],
    255,
    10.0,
    cluster_labels,
    2,
    3,
    num_banks,
    loc,
    memory_bank,
  )


def test_segsort_loss_single_segment_per_class_matches_hand_computation():
  # Two pixels of different classes in one 1x2 image, one cluster: each
  # segment is alone in its class, so the loss is log(1 + e^(k(c - 1))).
  embedding = tf.constant([[[[1.0, 0.0], [0.6, 0.8]]]])
  labels = tf.constant([[[[0], [1]]]])
  zeros = tf.zeros([1, 1, 2, 1], tf.int32)
  loc = tf.zeros([1, 1, 2, 2])
  loss = train_utils.add_segsort_loss(
    embedding, labels, 2, 255, 1.0, zeros, 1, 2, 0, loc
  )
  assert loss.numpy() == pytest.approx(
    math.log(1 + math.exp(0.6 - 1)), rel=1e-6
  )


def test_segsort_loss_eager_function_and_xla_agree():
  embedding, labels, cluster_labels, loc = _batch()
  eager = _segsort_loss(embedding, labels, cluster_labels, loc).numpy()
  traced = tf.function(_segsort_loss)(
    embedding, labels, cluster_labels, loc
  ).numpy()
  compiled = tf.function(_segsort_loss, jit_compile=True)(
    embedding, labels, cluster_labels, loc
  ).numpy()
  assert np.isfinite(eager) and eager > 0
  assert traced == pytest.approx(eager, rel=1e-5)
  assert compiled == pytest.approx(eager, rel=1e-5)


def test_segsort_loss_with_memory_bank_agrees_across_modes():
  embedding, labels, cluster_labels, loc = _batch(seed=4)
  results = []
  for mode in ('eager', 'function', 'xla'):
    bank = train_utils.MemoryBank(2, 8, 4)
    bank.prototypes.assign(
      tf.math.l2_normalize(
        tf.reshape(tf.range(64, dtype=tf.float32) % 7 - 3.0, [2, 8, 4]), -1
      )
    )
    bank.labels.assign(tf.reshape(tf.range(16) % 4 - 1, [2, 8]))

    def step(e, bank=bank):
      return _segsort_loss(e, labels, cluster_labels, loc, bank, 2)

    if mode == 'function':
      step = tf.function(step)
    elif mode == 'xla':
      step = tf.function(step, jit_compile=True)
    results.append(step(embedding).numpy())
    # The newest bank now holds this step's prototypes, the oldest moved up.
    assert (bank.labels.numpy()[1] >= 0).sum() > 0
  np.testing.assert_allclose(results, results[0], rtol=1e-5)


def test_kmeans_agrees_across_modes():
  embedding = common_utils.normalize_embedding(_batch(dim=3)[0])
  eager = common_utils.kmeans(embedding, [2, 2], 5)
  traced = tf.function(common_utils.kmeans, reduce_retracing=True)(
    embedding, [2, 2], 5
  )
  compiled = tf.function(
    lambda e: common_utils.kmeans(e, [2, 2], 5), jit_compile=True
  )(embedding)
  np.testing.assert_array_equal(eager, traced)
  np.testing.assert_array_equal(eager, compiled)


def test_segsort_loss_gradient_matches_finite_differences():
  embedding, labels, cluster_labels, loc = _batch(
    batch_size=1, size=4, dim=3, seed=7
  )

  def loss_fn(x):
    return train_utils.add_segsort_loss(
      x, labels, 3, 255, 1.0, cluster_labels, 2, 0, 0, loc
    )

  theoretical, numerical = tf.test.compute_gradient(
    loss_fn, [embedding], delta=1e-3
  )
  np.testing.assert_allclose(theoretical[0], numerical[0], atol=2e-3)


def test_all_ignore_batch_gives_zero_loss_and_zero_gradients():
  embedding, _, cluster_labels, loc = _batch()
  labels = tf.fill([2, 8, 8, 1], 255)
  with tf.GradientTape() as tape:
    tape.watch(embedding)
    loss = _segsort_loss(embedding, labels, cluster_labels, loc)
  gradient = tape.gradient(loss, embedding)
  assert loss.numpy() == 0.0
  assert gradient is None or not np.any(gradient.numpy())


def test_all_ignore_image_adds_nothing():
  embedding, labels, cluster_labels, loc = _batch(seed=2)
  alone = _segsort_loss(embedding[:1], labels[:1], cluster_labels[:1], loc[:1])
  ignored = tf.concat([labels[:1], tf.fill([1, 8, 8, 1], 255)], 0)
  with tf.GradientTape() as tape:
    tape.watch(embedding)
    together = _segsort_loss(embedding, ignored, cluster_labels, loc)
  gradient = tape.gradient(together, embedding).numpy()
  assert together.numpy() == pytest.approx(alone.numpy(), rel=1e-6)
  assert not np.any(gradient[1])
  assert np.all(np.isfinite(gradient))


def test_zero_embeddings_and_single_class_stay_finite():
  embedding = tf.zeros([1, 4, 4, 3])
  labels = tf.zeros([1, 4, 4, 1], tf.int32)
  cluster_labels = tf.zeros([1, 4, 4, 1], tf.int32)
  loc = tf.zeros([1, 4, 4, 2])
  with tf.GradientTape() as tape:
    tape.watch(embedding)
    loss = train_utils.add_segsort_loss(
      embedding, labels, 3, 255, 10.0, cluster_labels, 2, 3, 0, loc
    )
  gradient = tape.gradient(loss, embedding)
  # One segment alone in its class and no other class: probability 1.
  assert loss.numpy() == 0.0
  assert gradient is None or np.all(np.isfinite(gradient.numpy()))


def test_large_concentration_does_not_overflow():
  embedding, labels, cluster_labels, loc = _batch(seed=5)
  loss = train_utils.add_segsort_loss(
    embedding, labels, 4, 255, 500.0, cluster_labels, 2, 3, 0, loc
  )
  assert np.isfinite(loss.numpy())


def test_embedding_dim_mismatch_is_reported():
  embedding, labels, cluster_labels, loc = _batch()
  with pytest.raises((ValueError, tf.errors.InvalidArgumentError)):
    train_utils.add_segsort_loss(
      embedding, labels, 32, 255, 10.0, cluster_labels, 2, 3, 0, loc
    )


def test_memory_bank_is_fifo_and_pads_or_truncates():
  bank = train_utils.MemoryBank(2, 3, 2)
  first = tf.constant([[1.0, 0.0], [0.0, 1.0]])
  bank.push(first, tf.constant([4, 5]))
  second = tf.constant([[1.0, 0.0]] * 4)
  bank.push(second, tf.constant([6, 7, 8, 9]))
  prototypes, labels = bank.read()
  assert labels.numpy().tolist() == [4, 5, -1, 6, 7, 8]
  np.testing.assert_array_equal(
    prototypes.numpy()[:3], [[1, 0], [0, 1], [0, 0]]
  )
  bank.push(first[:1], tf.constant([1]))
  assert bank.read()[1].numpy().tolist() == [6, 7, 8, 1, -1, -1]


def test_memory_bank_checkpoint_round_trip(tmp_path):
  bank = train_utils.MemoryBank(2, 2, 3)
  bank.push(tf.constant([[1.0, 2.0, 3.0]]), tf.constant([7]))
  path = tf.train.Checkpoint(memory_bank=bank).save(str(tmp_path / 'ckpt'))
  restored = train_utils.MemoryBank(2, 2, 3)
  tf.train.Checkpoint(memory_bank=restored).restore(path).assert_consumed()
  np.testing.assert_array_equal(
    restored.prototypes.numpy(), bank.prototypes.numpy()
  )
  assert restored.read()[1].numpy().tolist() == [-1, -1, 7, -1]


def test_memory_bank_receives_no_gradient():
  embedding, labels, cluster_labels, loc = _batch(seed=6)
  bank = train_utils.MemoryBank(1, 8, 4)
  bank.push(tf.ones([8, 4]), tf.range(8) % 3)
  with tf.GradientTape() as tape:
    loss = _segsort_loss(embedding, labels, cluster_labels, loc, bank, 1)
  assert tape.gradient(loss, bank.prototypes) is None


def test_memory_bank_order_is_seeded_by_its_push_count():
  embedding, labels, cluster_labels, loc = _batch(seed=8)
  pushed = []
  for _ in range(2):
    bank = train_utils.MemoryBank(1, 4, 4)
    bank.num_pushes.assign(5)
    _segsort_loss(embedding, labels, cluster_labels, loc, bank, 1)
    pushed.append(bank.prototypes.numpy())
    assert bank.num_pushes.numpy() == 6
  # The same push count keeps the same prototypes, whatever ran before.
  np.testing.assert_array_equal(pushed[0], pushed[1])
  bank = train_utils.MemoryBank(1, 4, 4)
  _segsort_loss(embedding, labels, cluster_labels, loc, bank, 1)
  assert not np.array_equal(bank.prototypes.numpy(), pushed[0])


def _numpy_segsort_loss(embedding, semantic, instance, concentration):
  """The loss of DESIGN.md's math, in NumPy, for pixels kept (instance >= 0)."""
  keep = instance >= 0
  embedding, semantic, instance = (
    embedding[keep],
    semantic[keep],
    instance[keep],
  )
  segments = np.unique(instance)
  prototypes = np.stack([embedding[instance == s].sum(0) for s in segments])
  prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True)
  labels = np.array([semantic[instance == s][0] for s in segments])
  similarity = np.exp(
    concentration
    * embedding.astype(np.float64)
    @ prototypes.T.astype(np.float64)
  )
  losses = []
  for pixel in range(len(embedding)):
    own = segments == instance[pixel]
    same = (labels == semantic[pixel]) & ~own
    numerator = (
      similarity[pixel, same].sum()
      if same.any()
      else similarity[pixel, own].sum()
    )
    other = similarity[pixel, labels != semantic[pixel]].sum()
    losses.append(-np.log(numerator / (numerator + other)))
  return np.mean(losses)


def _loss_and_gradient_in_every_mode(loss_fn, embedding):
  """Returns {mode: (loss, gradient)} for eager, tf.function and XLA."""

  def step(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      loss = loss_fn(x)
    return loss, tape.gradient(loss, x)

  results = {}
  for mode, run in (
    ('eager', step),
    ('function', tf.function(step)),
    ('xla', tf.function(step, jit_compile=True)),
  ):
    loss, gradient = run(embedding)
    results[mode] = (loss.numpy(), gradient.numpy())
  return results


def _assert_modes_agree(results):
  eager_loss, eager_gradient = results['eager']
  assert np.isfinite(eager_loss) and np.all(np.isfinite(eager_gradient))
  for mode in ('function', 'xla'):
    loss, gradient = results[mode]
    assert loss == pytest.approx(eager_loss, rel=1e-5, abs=1e-6), mode
    np.testing.assert_allclose(
      gradient,
      eager_gradient,
      rtol=1e-5,
      atol=1e-5 * np.abs(eager_gradient).max(),
    )


def test_a_non_square_grid_gives_one_segment_per_cluster_and_label():
  # Labels constant per image and one k-means iteration of a 2 x 3 grid on
  # a 12 x 12 image: each image keeps its 6 clusters, one label each.
  embedding = tf.math.l2_normalize(
    tf.random.stateless_normal([2, 12, 12, 8], seed=[3, 4]), -1
  )
  labels = tf.constant([1, 2], tf.int32)[:, None, None, None] * tf.ones(
    [2, 12, 12, 1], tf.int32
  )
  grid = common_utils.initialize_cluster_labels((2, 3), [12, 12])
  cluster_labels = tf.tile(grid[tf.newaxis, :, :, tf.newaxis], [2, 1, 1, 1])
  loc = tf.tile(
    common_utils.generate_location_features([12, 12], 'float')[tf.newaxis],
    [2, 1, 1, 1],
  )
  _, _, instance, prototype_labels = train_utils.segment_by_kmeans_and_labels(
    embedding, labels, 255, cluster_labels, (2, 3), 0, loc
  )
  assert len(np.unique(instance.numpy())) == 12
  assert sorted(prototype_labels.numpy()[:12].tolist()) == [1] * 6 + [2] * 6
  loss = train_utils.add_segsort_loss(
    embedding, labels, 8, 255, 10.0, cluster_labels, (2, 3), 0, 0, loc
  )
  assert np.isfinite(float(loss))


def _issue_12_batch():
  # Issue 12's input: 2 images of 15x13 embeddings of dimension 8, 4 classes
  # in 3x3 blocks, the first 2 rows of image 0 ignored, a 3x3 grid.
  rng = np.random.default_rng(12)
  embedding = tf.constant(rng.normal(size=(2, 15, 13, 8)), tf.float32)
  rows, columns = np.meshgrid(np.arange(15), np.arange(13), indexing='ij')
  blocks = (rows // 3 * 5 + columns // 3) % 4
  labels = np.tile(blocks[np.newaxis, :, :, np.newaxis], [2, 1, 1, 1])
  labels[0, :2] = 255
  grid = common_utils.initialize_cluster_labels([3, 3], [15, 13])
  cluster_labels = tf.tile(grid[tf.newaxis, :, :, tf.newaxis], [2, 1, 1, 1])
  loc = tf.tile(
    common_utils.generate_location_features([15, 13], 'float')[tf.newaxis],
    [2, 1, 1, 1],
  )
  return embedding, tf.constant(labels, tf.int32), cluster_labels, loc


def test_issue_12_ignored_rows_agree_across_modes_and_with_numpy():
  embedding, labels, cluster_labels, loc = _issue_12_batch()

  def loss_fn(x):
    return train_utils.add_segsort_loss(
      x, labels, 8, 255, 10.0, cluster_labels, 3, 10, 0, loc
    )

  results = _loss_and_gradient_in_every_mode(loss_fn, embedding)
  _assert_modes_agree(results)
  pixels, semantic, instance, _ = train_utils.segment_by_kmeans_and_labels(
    common_utils.normalize_embedding(embedding),
    labels,
    255,
    cluster_labels,
    3,
    10,
    loc,
  )
  # Segments are counted by the pixels kept alone (XLA once found one more);
  # the original's name and grid spelling (3 per axis) give the same.
  compiled_segments = tf.function(
    lambda e: train_utils.segment_by_kmeans(
      e, labels, 255, cluster_labels, (3, 3), 10, loc
    )[3],
    jit_compile=True,
  )(common_utils.normalize_embedding(embedding))
  assert np.sum(compiled_segments.numpy() >= 0) == len(
    np.unique(instance.numpy()[instance.numpy() >= 0])
  )
  expected = _numpy_segsort_loss(
    pixels.numpy(), semantic.numpy(), instance.numpy(), 10.0
  )
  assert results['xla'][0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
  'case',
  [
    'ignored_pixels',
    'all_ignore_image',
    'many_classes',
    'memory_bank',
    'large_concentration',
    'unsupervised',
  ],
)
def test_losses_and_gradients_agree_across_modes(case):
  rng = np.random.default_rng(21)
  embedding, labels, cluster_labels, loc = _batch(
    batch_size=3, size=9, dim=5, seed=21
  )
  labels = labels.numpy()
  concentration = 500.0 if case == 'large_concentration' else 10.0
  if case in ('ignored_pixels', 'memory_bank', 'large_concentration'):
    labels[rng.random(labels.shape) < 0.3] = 255
  elif case == 'all_ignore_image':
    labels[1] = 255
  elif case == 'many_classes':
    labels = rng.integers(0, 20, size=labels.shape)
  labels = tf.constant(labels, tf.int32)
  segments = tf.constant(rng.integers(-1, 6, size=(3, 9, 9, 1)), tf.int32)
  bank_prototypes = tf.math.l2_normalize(rng.normal(size=(2, 12, 5)), -1)
  bank_labels = tf.constant(np.arange(24).reshape(2, 12) % 4 - 1, tf.int32)

  def loss_fn(x):
    if case == 'unsupervised':
      return train_utils.add_unsupervised_segsort_loss(x, 10.0, segments)
    bank = None
    if case == 'memory_bank':
      bank = train_utils.MemoryBank(2, 12, 5)
      bank.prototypes.assign(tf.cast(bank_prototypes, tf.float32))
      bank.labels.assign(bank_labels)
    return train_utils.add_segsort_loss(
      x,
      labels,
      5,
      255,
      concentration,
      cluster_labels,
      2,
      3,
      2 if bank else 0,
      loc,
      bank,
    )

  if case == 'memory_bank':
    # Variables cannot be created inside a traced function.
    bank = train_utils.MemoryBank(2, 12, 5)
    results = {}
    for mode, wrap in (
      ('eager', lambda f: f),
      ('function', tf.function),
      ('xla', lambda f: tf.function(f, jit_compile=True)),
    ):
      bank.prototypes.assign(tf.cast(bank_prototypes, tf.float32))
      bank.labels.assign(bank_labels)
      bank.num_pushes.assign(0)

      def step(x, bank=bank):
        with tf.GradientTape() as tape:
          tape.watch(x)
          loss = train_utils.add_segsort_loss(
            x, labels, 5, 255, concentration, cluster_labels, 2, 3, 2, loc, bank
          )
        return loss, tape.gradient(loss, x)

      loss, gradient = wrap(step)(embedding)
      results[mode] = (loss.numpy(), gradient.numpy())
      pushed = bank.read()
      results[mode + '_bank'] = (pushed[0].numpy(), pushed[1].numpy())
    for mode in ('function', 'xla'):
      np.testing.assert_array_equal(
        results[mode + '_bank'][1], results['eager_bank'][1]
      )
      np.testing.assert_allclose(
        results[mode + '_bank'][0], results['eager_bank'][0], atol=1e-6
      )
  else:
    results = _loss_and_gradient_in_every_mode(loss_fn, embedding)
  _assert_modes_agree(results)
  if case == 'all_ignore_image':
    assert not np.any(results['xla'][1][1])
