"""The distribution strategy of a run and this process's place in it."""

import dataclasses
import json
import os

import keras
import tensorflow as tf

from segsort import errors


def make_strategy(config):
  """Picks the distribution strategy of a run.

  Args:
    config: A TrainConfig.

  Returns:
    MultiWorkerMirroredStrategy when TF_CONFIG is set, MirroredStrategy over
    the first `num_gpu` GPUs when `num_gpu` > 1, else the default strategy.

  Raises:
    TrainingError: If TF_CONFIG is not a cluster with this task in it, or
      if fewer than `num_gpu` GPUs are visible.
  """
  if os.environ.get('TF_CONFIG'):
    check_tf_config(os.environ['TF_CONFIG'])
    return tf.distribute.MultiWorkerMirroredStrategy()
  if config.num_gpu > 1:
    gpus = tf.config.list_logical_devices('GPU')
    if len(gpus) < config.num_gpu:
      raise errors.TrainingError(
        '--num_gpu %d, but %d GPU(s) are visible' % (config.num_gpu, len(gpus))
      )
    return tf.distribute.MirroredStrategy(
      [gpu.name for gpu in gpus[: config.num_gpu]]
    )
  return tf.distribute.get_strategy()


def check_tf_config(text):
  """Checks a TF_CONFIG value before TensorFlow reads it.

  TensorFlow's own errors for a malformed one are tracebacks from inside
  the strategy (a JSONDecodeError, 'The task_id 5 exceeds ...').

  Args:
    text: The value, JSON: {"cluster": {JOB: [ADDRESS, ...], ...},
      "task": {"type": JOB, "index": I}}.

  Raises:
    TrainingError: One line naming TF_CONFIG and what is wrong.
  """
  try:
    tf_config = json.loads(text)
  except ValueError as error:
    raise errors.TrainingError('TF_CONFIG is not JSON: %s' % error) from error
  usage = (
    '{"cluster": {"worker": ["HOST:PORT", ...]}, "task": {"type": "worker", '
    '"index": I}}'
  )
  if not isinstance(tf_config, dict) or not all(
    isinstance(tf_config.get(key), dict) for key in ('cluster', 'task')
  ):
    raise errors.TrainingError(
      'TF_CONFIG needs a "cluster" and a "task", as %s; got %s'
      % (usage, text[:200])
    )
  cluster, task = tf_config['cluster'], tf_config['task']
  addresses = cluster.get(task.get('type'))
  index = task.get('index', 0)
  if (
    not isinstance(addresses, list)
    or isinstance(index, bool)
    or not isinstance(index, int)
    or not 0 <= index < len(addresses)
  ):
    raise errors.TrainingError(
      'TF_CONFIG: task %s is not in its cluster (%s)'
      % (
        json.dumps(task),
        ', '.join(
          '%s: %d' % (job, len(jobs) if isinstance(jobs, list) else 0)
          for job, jobs in cluster.items()
        )
        or 'no job',
      )
    )


@dataclasses.dataclass(frozen=True)
class Placement:
  """Where this process stands in a run.

  Attributes:
    num_replicas: The replicas of all workers together.
    worker_index: This worker's index; the chief's is 0.
    num_workers: The number of workers.
  """

  num_replicas: int
  worker_index: int
  num_workers: int

  @property
  def is_chief(self):
    """Whether this worker writes the run's files."""
    return self.worker_index == 0


def _worker_index(strategy):
  """Returns (this worker's index, number of workers); chief is index 0."""
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return 0, 1
  resolver = strategy.cluster_resolver
  cluster = resolver.cluster_spec().as_dict()
  has_chief = 'chief' in cluster
  num_workers = len(cluster.get('worker', [])) + int(has_chief)
  if resolver.task_type == 'chief':
    return 0, num_workers
  return resolver.task_id + int(has_chief), num_workers


def placement_of(strategy, batch_size):
  """The Placement of this process under a strategy.

  Raises:
    TrainingError: If the global batch does not split evenly over the
      replicas.
  """
  num_replicas = strategy.num_replicas_in_sync
  if batch_size % num_replicas:
    raise errors.TrainingError(
      '--batch_size %d cannot be split evenly over %d replicas'
      % (batch_size, num_replicas)
    )
  return Placement(num_replicas, *_worker_index(strategy))


def _all_layers(layer):
  """Yields a layer and, recursively, every layer inside it, once each."""
  seen = set()
  pending = [layer]
  while pending:
    current = pending.pop()
    if id(current) in seen:
      continue
    seen.add(id(current))
    yield current
    pending.extend(getattr(current, 'layers', []))


def synchronize_batch_norm(network):
  """Makes every BatchNorm layer compute batch statistics over all replicas."""
  for layer in _all_layers(network):
    if isinstance(layer, keras.layers.BatchNormalization):
      layer.synchronized = True


def _distribute(strategy, batch):
  """Splits a batch of this worker into its replicas' shares."""
  num_local = len(strategy.extended.worker_devices)
  shares = {name: tf.split(tensor, num_local) for name, tensor in batch.items()}
  return strategy.experimental_distribute_values_from_function(
    lambda context: {
      name: split[context.replica_id_in_sync_group % num_local]
      for name, split in shares.items()
    }
  )


def run_on_replicas(strategy, replica_function, batches):
  """Runs a function on every replica's share of batches; sums its results.

  The distribution logic of both the training step and the trainer's
  `losses_and_gradients`.

  Args:
    strategy: The tf.distribute strategy.
    replica_function: Called on each replica with the list of its shares
      of `batches`; returns a nest of tensors.
    batches: A list of dicts, each a batch of this worker.

  Returns:
    The nest of `replica_function`'s results, summed over all replicas.
  """
  if strategy.num_replicas_in_sync > 1:
    batches = [_distribute(strategy, batch) for batch in batches]
  results = strategy.run(replica_function, args=(batches,))
  return tf.nest.map_structure(
    lambda value: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None),
    results,
  )
