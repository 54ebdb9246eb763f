"""The losses on two replicas equal the losses on one replica.

TensorFlow fixes its logical devices when it first starts, so the two-replica
run happens in a fresh Python process.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

_SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from network.segsort import common_utils, train_utils

    rng = np.random.default_rng(0)
    batch, size, dim = 2, 6, 4
    embedding = rng.normal(size=(batch, size, size, dim)).astype(np.float32)
    labels = rng.integers(0, 3, size=(batch, size, size, 1)).astype(np.int32)
    labels[1, :2] = 255
    segments = rng.integers(0, 4, size=(batch, size, size, 1)).astype(np.int32)
    grid = common_utils.initialize_cluster_labels([2, 2], [size, size])
    grid = np.tile(grid.numpy()[None, :, :, None], [batch, 1, 1, 1])
    loc = common_utils.generate_location_features([size, size], 'float')
    loc = np.tile(loc.numpy()[None], [batch, 1, 1, 1])
    bank_init = rng.normal(size=(2, 64, dim)).astype(np.float32)
    bank_labels = (np.arange(128).reshape(2, 64) % 4 - 1).astype(np.int32)

    def make_bank():
      bank = train_utils.MemoryBank(2, 64, dim)
      bank.prototypes.assign(bank_init)
      bank.labels.assign(bank_labels)
      return bank

    def losses(e, l, g, p, s, bank):
      supervised = train_utils.add_segsort_loss(
          e, l, dim, 255, 10.0, g, 2, 3, 2, p, bank)
      unsupervised = train_utils.add_unsupervised_segsort_loss(e, 10.0, s)
      # Segments 0, 1 and 2, 3 of every image form two groups.
      grouped = train_utils.add_unsupervised_segsort_loss(
          e, 10.0, s, segment_groups=s // 2)
      return supervised, unsupervised, grouped

    def step(e, l, g, p, s, bank):
      with tf.GradientTape(persistent=True) as tape:
        tape.watch(e)
        supervised, unsupervised, grouped = losses(e, l, g, p, s, bank)
      return (supervised, unsupervised, grouped,
              tape.gradient(supervised, e), tape.gradient(unsupervised, e),
              tape.gradient(grouped, e))

    single_bank = make_bank()
    single = step(*[tf.constant(x) for x in
                    (embedding, labels, grid, loc, segments)], single_bank)

    strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
    with strategy.scope():
      mirrored_bank = make_bank()

    def value_fn(context):
      i = context.replica_id_in_sync_group
      return [tf.constant(x[i:i + 1]) for x in
              (embedding, labels, grid, loc, segments)]

    inputs = strategy.experimental_distribute_values_from_function(value_fn)

    @tf.function
    def distributed_step(inputs):
      return strategy.run(lambda *x: step(*x, mirrored_bank), args=inputs)

    results = distributed_step(inputs)
    local = [strategy.experimental_local_results(r) for r in results]
    names = ('supervised', 'unsupervised', 'grouped')
    results = {}
    for index, name in enumerate(names):
      gradient = index + len(names)
      results['single_' + name] = float(single[index])
      results['single_%s_gradient' % name] = single[gradient].numpy().tolist()
      results['replica_' + name] = [float(v) for v in local[index]]
      results['replica_%s_gradient' % name] = np.concatenate(
          [v.numpy() for v in local[gradient]]).tolist()
    print(json.dumps({
        **results,
        'single_bank_labels': sorted(single_bank.labels.numpy()[1].tolist()),
        'mirrored_bank_labels': sorted(
            mirrored_bank.labels.numpy()[1].tolist()),
    }))
''')


@pytest.fixture(scope='module')
def replica_results():
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  completed = subprocess.run(
    [sys.executable, '-c', _SCRIPT],
    cwd=root,
    env=environment,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert completed.returncode == 0, completed.stderr[-3000:]
  return json.loads(completed.stdout.strip().splitlines()[-1])


def test_replica_losses_sum_to_the_single_replica_loss(replica_results):
  for name in ('supervised', 'unsupervised', 'grouped'):
    assert sum(replica_results['replica_' + name]) == pytest.approx(
      replica_results['single_' + name], rel=1e-5
    )


def test_groups_change_the_unsupervised_loss(replica_results):
  assert replica_results['single_grouped'] < (
    replica_results['single_unsupervised'] - 1e-3
  )


def test_replica_gradients_equal_single_replica_gradients(replica_results):
  for name in ('supervised', 'unsupervised', 'grouped'):
    single = np.array(replica_results['single_%s_gradient' % name])
    replicas = np.array(replica_results['replica_%s_gradient' % name])
    assert np.abs(single).max() > 0
    np.testing.assert_allclose(replicas, single, rtol=1e-4, atol=1e-6)


def test_replicas_push_the_prototypes_of_the_global_batch(replica_results):
  assert (
    replica_results['mirrored_bank_labels']
    == replica_results['single_bank_labels']
  )
