"""One trainer for every training mode: SegSort, unsupervised SegSort, softmax.

The trainer knows nothing of a mode: its objective (segsort.objectives)
gives the inputs, the state besides the network, the loss and the
pictures.

    config = TrainConfig.from_flags(mode='segsort')
    Trainer(config).train()

A step draws `iter_size` global batches, computes the loss and gradients of
each on every replica, averages them, scales the head's gradients by 10 and
applies them with momentum SGD at the poly learning rate. The loss functions
gather prototypes across replicas and return each replica's share of the
global loss, so that the optimizer's sum over replicas is the global
gradient.

Keras' SGD folds the learning rate into the momentum (v = m*v - lr*g) where
TF1's MomentumOptimizer applied it afterwards (a = m*a + g, w -= lr*a); with
the slowly decaying poly rate the two differ negligibly.

Checkpoints (tf.train.CheckpointManager in --snapshot_dir) hold the model,
the optimizer's slots, the step and the memory bank; config.json beside them
records the run. Running again with the same --snapshot_dir resumes from the
latest checkpoint. The input pipeline is not checkpointed: an example is
decided by its position in the seeded stream alone, so a resumed run (every
worker of a multi-worker run alike) rebuilds its stream at the batch it had
reached, step * iter_size.

Defaults that differ from the original release's train_segsort.py are
listed in segsort/config.py.
"""

import contextlib
import dataclasses
import logging
import math
import os
import time

import re

import keras
import tensorflow as tf

from network import builder
from network import checkpoints
from segsort import config as config_lib
from segsort import console
from segsort import data
from segsort import errors
from segsort import objectives
from segsort import summaries

# The head (the original's "block5") learns at this multiple of the base rate.
HEAD_LEARNING_RATE_MULTIPLIER = 10.0
MAX_CHECKPOINTS_TO_KEEP = 5
CHECKPOINT_NAME = 'ckpt'
TENSORBOARD_DIR_NAME = 'tensorboard'
# Images per TensorBoard picture summary.
NUM_PICTURES = 4
# A run has diverged when its total loss exceeds this multiple of its lowest
# checked loss, or of 1 if lower: the losses are means of negative
# log-likelihoods of order 1 (at most 2 * concentration + log(segments) for
# SegSort) plus a weight decay that grows slowly in a healthy run.
DIVERGENCE_FACTOR = 100.0
# A checked loss within this multiple of the same level vouches for the
# checkpoints written before it; one above may already come from diverging
# weights (softmax on the mini network at --learning_rate 3: 23x its first
# loss at step 2, 210x at step 3).
HEALTHY_FACTOR = 10.0

# How a segsort.errors.DataError raised inside the input pipeline shows in the
# message of the tf.errors.OpError that reaches the training loop.
_DATA_ERROR_PATTERN = re.compile(r'DataError: ([^\n]*, line \d+: [^\n]*)')

_LOGGER = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainResult:
  """What a call of Trainer.train did.

  Attributes:
    step: The step reached.
    losses: The last step's loss terms (empty if no step ran).
    checkpoint: The latest checkpoint prefix, or None.
  """

  step: int
  losses: dict
  checkpoint: str | None


def poly_learning_rate(base_learning_rate, step, num_steps, power):
  """The poly policy: base * (1 - step / num_steps) ** power, never below 0."""
  progress = tf.minimum(tf.cast(step, tf.float32) / float(num_steps), 1.0)
  return base_learning_rate * tf.pow(1.0 - progress, power)


def make_strategy(config):
  """Picks the distribution strategy of a run.

  Args:
    config: A TrainConfig.

  Returns:
    MultiWorkerMirroredStrategy when TF_CONFIG is set, MirroredStrategy over
    the first `num_gpu` GPUs when `num_gpu` > 1, else the default strategy.

  Raises:
    TrainingError: If fewer than `num_gpu` GPUs are visible.
  """
  if os.environ.get('TF_CONFIG'):
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


def _is_multi_worker(strategy):
  return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _worker_index(strategy):
  """Returns (this worker's index, number of workers); chief is index 0."""
  if not _is_multi_worker(strategy):
    return 0, 1
  resolver = strategy.cluster_resolver
  cluster = resolver.cluster_spec().as_dict()
  has_chief = 'chief' in cluster
  num_workers = len(cluster.get('worker', [])) + int(has_chief)
  if resolver.task_type == 'chief':
    return 0, num_workers
  return resolver.task_id + int(has_chief), num_workers


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


def _synchronize_batch_norm(network):
  """Makes every BatchNorm layer compute batch statistics over all replicas."""
  for layer in _all_layers(network):
    if isinstance(layer, keras.layers.BatchNormalization):
      layer.synchronized = True


@contextlib.contextmanager
def _dtype_policy(name):
  """Sets Keras' global dtype policy for the layers built inside."""
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(name)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


class Trainer:
  """Trains one network by the mode of its config, on one or many replicas.

  Attributes:
    config: The TrainConfig.
    strategy: The tf.distribute strategy.
    network: The SegmentationNetwork.
    optimizer: The Keras SGD optimizer (in a LossScaleOptimizer with
      --mixed_precision).
    step: The int64 variable counting applied steps.
    objective: The segsort.objectives.Objective of the config's mode.
    checkpoint: The tf.train.Checkpoint of the run's state.
    checkpoint_manager: The tf.train.CheckpointManager in --snapshot_dir.
    restored_from: How the weights were initialised: 'resumed:<prefix>',
      'slim:<prefix>', 'checkpoint:<prefix>' or 'scratch'.
  """

  def __init__(self, config, strategy=None, dataset=None):
    """Builds the model, optimizer and input, and restores or resumes.

    Args:
      config: A TrainConfig.
      strategy: A tf.distribute strategy; `make_strategy(config)` when None.
      dataset: Optional tf.data.Dataset of global batches (dicts as
        segsort.data.build_training_dataset gives) to train on instead of
        the config's data list, e.g. for benchmarks.

    Raises:
      ConfigMismatchError: If --snapshot_dir holds a run of another config.
      CheckpointMismatchError: If a checkpoint does not fit the model.
      TrainingError: For settings this machine cannot run.
      DataError: If the data list is malformed.
    """
    if not config.snapshot_dir:
      raise errors.TrainingError(
        '--snapshot_dir is required: checkpoints, '
        'config.json and TensorBoard logs go there'
      )
    self.config = config
    self.objective = objectives.for_config(config)
    # A multi-worker strategy must exist before other TensorFlow work.
    self.strategy = strategy or make_strategy(config)
    if config.deterministic:
      tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.random_seed)
    self._num_replicas = self.strategy.num_replicas_in_sync
    self._worker_index, self._num_workers = _worker_index(self.strategy)
    self._is_chief = self._worker_index == 0
    if config.batch_size % self._num_replicas:
      raise errors.TrainingError(
        '--batch_size %d cannot be split evenly over %d replicas'
        % (config.batch_size, self._num_replicas)
      )
    self._check_snapshot_config()

    with self.strategy.scope():
      with _dtype_policy(
        'mixed_float16' if config.mixed_precision else 'float32'
      ):
        self.network = builder.build_network_from_config(
          config, use_global_status=config.use_global_status
        )
      if config.sync_batch_norm:
        _synchronize_batch_norm(self.network)
      self.step = tf.Variable(
        0,
        dtype=tf.int64,
        trainable=False,
        name='step',
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
      )
      self._objective_state = self.objective.build_state()
      self.optimizer = keras.optimizers.SGD(
        learning_rate=self.current_learning_rate, momentum=config.momentum
      )
      if config.mixed_precision:
        self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
      self._trainable_variables = self.network.trainable_variables
      self.optimizer.build(self._trainable_variables)
    head = {id(variable) for variable in self.network.head_variables}
    self._gradient_multipliers = [
      HEAD_LEARNING_RATE_MULTIPLIER if id(variable) in head else 1.0
      for variable in self._trainable_variables
    ]
    # The original regularised the weights of every convolution.
    self._conv_kernels = [
      variable
      for variable in self._trainable_variables
      if variable.path.endswith('kernel')
    ]

    self._build_checkpoint()
    self.restored_from = self._restore()
    if dataset is None:
      if self._is_chief and self.objective.surveys_labels:
        # Warns once, before any step, of labels the pipeline would ignore
        # every epoch and of classes the list never holds.
        data.survey_labels(
          config.data_dir,
          config.data_list,
          config.num_classes,
          config.ignore_label,
          config.apply_exif_orientation,
        )
      # The pictures show the first batch of the stream, with every key.
      self._picture_batch = (
        self._take_picture_batch(self._build_dataset())
        if self._is_chief
        else None
      )
      # Resumes the stream where the restored step left it.
      dataset = self._build_dataset(
        start_batch=int(self.step.numpy()) * config.iter_size,
        outputs=self.objective.inputs,
      )
    else:
      self._picture_batch = self._take_picture_batch(dataset)
    self._iterator = iter(dataset)
    self._network_outputs = self._make_network_outputs()
    self._train_step = self._make_train_step()
    float_variables = [
      variable
      for variable in self.network.variables
      if variable.dtype.startswith('float')
    ]
    self._weights_are_finite = tf.function(
      lambda: tf.reduce_all(
        [
          tf.reduce_all(tf.math.is_finite(variable))
          for variable in float_variables
        ]
      )
    )
    self._compute_global_losses_and_gradients = None
    self._draw_pictures = tf.function(
      lambda batch: self.objective.pictures(self.network, batch)
    )
    self._validator = None
    if config.eval_every:
      from segsort import validation  # pylint: disable=g-import-not-at-top

      self._validator = validation.Validator(
        config, self.network, self.checkpoint, self.strategy
      )
    # Written once the run is set up, so that a run that could not start
    # does not claim the directory.
    if self._is_chief:
      config_lib.save_config(config, config.snapshot_dir)

  def current_learning_rate(self):
    """The base learning rate of the current step (poly policy)."""
    config = self.config
    return poly_learning_rate(
      config.learning_rate, self.step, config.num_steps, config.power
    )

  # --- Set-up -------------------------------------------------------------

  def _check_snapshot_config(self):
    """Refuses a snapshot directory with checkpoints of another config."""
    config = self.config
    path = os.path.join(config.snapshot_dir, config_lib.CONFIG_FILE_NAME)
    if (
      os.path.exists(path)
      and tf.train.latest_checkpoint(config.snapshot_dir) is not None
    ):
      saved = config_lib.load_config(path)
      differences = config_lib.config_differences(saved, config)
      if differences and not config.overwrite_config:
        raise errors.ConfigMismatchError(
          '%s holds a run with another configuration; differing fields '
          '(saved -> now):\n  %s\nUse a new --snapshot_dir, or pass '
          '--overwrite_config to replace its config.json and resume its '
          'latest checkpoint with these settings.'
          % (
            config.snapshot_dir,
            '\n  '.join(
              '%s: %r -> %r' % difference for difference in differences
            ),
          )
        )

  def _build_dataset(self, start_batch=0, outputs=None):
    """Builds this worker's input pipeline of its share of global batches.

    A single worker reads global batches in a fixed order given the seed,
    however many GPUs it has, so runs on 1 and N GPUs see the same data.
    Several workers read differently seeded streams, each advancing by one of
    its batches per global batch.

    Args:
      start_batch: The number of this worker's batches to skip: the global
        batches consumed, step * iter_size, when resuming.
      outputs: The batch keys to compute (see
        segsort.data.build_training_dataset), or None for all.
    """
    config = self.config
    return data.build_training_dataset(
      config.data_dir,
      config.data_list,
      config.input_size,
      config.batch_size // self._num_workers,
      random_scale=config.random_scale,
      random_mirror=config.random_mirror,
      random_crop=config.random_crop,
      ignore_label=config.ignore_label,
      num_classes=config.num_classes,
      num_clusters=config.num_clusters,
      kmeans_grid=config.kmeans_grid,
      unsupervised=self.objective.needs_oversegmentation,
      seed=config.random_seed + self._worker_index,
      deterministic=True,
      start_batch=start_batch,
      outputs=outputs,
      apply_exif_orientation=config.apply_exif_orientation,
    )

  def _take_picture_batch(self, dataset):
    """The first images of the stream, pictured at every summary step."""
    if not self._is_chief:
      return None
    batch = next(iter(dataset.take(1)))
    return {name: tensor[:NUM_PICTURES] for name, tensor in batch.items()}

  def _build_checkpoint(self):
    objects = dict(
      self._objective_state,
      model=self.network,
      optimizer=self.optimizer,
      step=self.step,
    )
    # No input pipeline: a resumed run rebuilds it from the step.
    self.checkpoint = tf.train.Checkpoint(**objects)
    directory = self.config.snapshot_dir
    if not self._is_chief:
      # Every worker takes part in saving; only the chief's files are kept.
      directory = os.path.join(directory, '.worker_%d' % self._worker_index)
    self.checkpoint_manager = tf.train.CheckpointManager(
      self.checkpoint,
      directory,
      max_to_keep=MAX_CHECKPOINTS_TO_KEEP,
      checkpoint_name=CHECKPOINT_NAME,
    )

  def _restore(self):
    """Resumes the run, or initialises weights from --restore_from.

    Returns:
      How the weights were initialised (see the `restored_from` attribute).
    """
    config = self.config
    latest = tf.train.latest_checkpoint(config.snapshot_dir)
    if latest is not None:
      if config.restore_from:
        _LOGGER.info(
          'Resuming %s; --restore_from %s is ignored',
          latest,
          config.restore_from,
        )
      fitted = dict(self._objective_state, model=self.network)
      checkpoints.check_checkpoint_fits(fitted, latest)
      self.checkpoint.restore(latest).assert_existing_objects_matched()
      _LOGGER.info('Resumed %s at step %d', latest, int(self.step.numpy()))
      return 'resumed:' + latest
    if not config.restore_from:
      _LOGGER.warning('No --restore_from: training from random weights')
      return 'scratch'
    prefix = checkpoints.resolve_checkpoint(config.restore_from)
    if checkpoints.is_slim_checkpoint(prefix):
      try:
        names = checkpoints.load_slim_resnet(self.network.backbone, prefix)
      except ValueError as error:
        raise checkpoints.CheckpointMismatchError(str(error)) from error
      _LOGGER.info(
        'Restored %d backbone weights from TF-Slim checkpoint %s',
        len(names),
        prefix,
      )
      return 'slim:' + prefix
    self._restore_weights(prefix)
    return 'checkpoint:' + prefix

  def _restore_weights(self, prefix):
    """Restores the model (and objective's state) of one of our checkpoints.

    The optimizer and step are not restored: a new stage starts at step 0
    with its own learning rate.
    """
    if self.config.not_restore_classifier:
      model = tf.Module()
      model.backbone = self.network.backbone
    else:
      model = self.network
    objects = {'model': model}
    checkpoints.check_checkpoint_fits(objects, prefix)
    for name, state in self._objective_state.items():
      try:
        checkpoints.check_checkpoint_fits({name: state}, prefix)
        objects[name] = state
      except checkpoints.CheckpointMismatchError:
        _LOGGER.warning(
          'Checkpoint %s has no %s of this run\'s size; it starts empty',
          prefix,
          name,
        )
    tf.train.Checkpoint(**objects).restore(prefix).expect_partial()
    _LOGGER.info('Restored %s from %s', '/'.join(sorted(objects)), prefix)

  # --- The step -----------------------------------------------------------

  def _losses_and_gradients(self, batch):
    """Computes one replica's loss terms and gradients on one batch.

    Returns:
      losses: A dict of float32 scalars: 'task_loss', 'weight_decay' and
        'total_loss', each this replica's share of the global value.
      gradients: A list aligned with the trainable variables, of the
        (loss-scaled, with --mixed_precision) total loss.
    """
    config = self.config
    with tf.GradientTape() as tape:
      outputs = self._network_outputs(batch['image'])
      task_loss = self.objective.loss(outputs, batch)
      # Every replica adds its share, so that the sum counts it once.
      weight_decay = (
        config.weight_decay
        * tf.add_n(
          [
            tf.nn.l2_loss(tf.cast(kernel, tf.float32))
            for kernel in self._conv_kernels
          ]
        )
        / self._num_replicas
      )
      total_loss = task_loss + weight_decay
      scaled_loss = (
        self.optimizer.scale_loss(total_loss)
        if config.mixed_precision
        else total_loss
      )
    gradients = tape.gradient(scaled_loss, self._trainable_variables)
    losses = {
      'task_loss': task_loss,
      'weight_decay': weight_decay,
      'total_loss': total_loss,
    }
    return losses, gradients

  def _replica_step(self, micro_batches):
    """Accumulates gradients over micro-batches and applies them.

    Returns:
      losses: The loss terms averaged over the micro-batches.
      non_finite: 1.0 if the loss (or, without loss scaling, a gradient) is
        NaN or infinite, else 0.0.
    """
    compute = self._losses_and_gradients
    losses, gradients = compute(micro_batches[0])
    for batch in micro_batches[1:]:
      # One micro-batch at a time: their activations never coexist.
      with tf.control_dependencies(gradients):
        batch_losses, batch_gradients = compute(batch)
      losses = {name: losses[name] + batch_losses[name] for name in losses}
      gradients = [
        total + new for total, new in zip(gradients, batch_gradients)
      ]
    scale = len(micro_batches)
    losses = {name: value / scale for name, value in losses.items()}
    gradients = [
      gradient * (multiplier / scale)
      for gradient, multiplier in zip(gradients, self._gradient_multipliers)
    ]
    finite = tf.math.is_finite(losses['total_loss'])
    if self.config.mixed_precision:
      # The loss-scale optimizer skips the update (and lowers its scale) when
      # a gradient is not finite, by this same test; such a step must not
      # advance the step, and with it the learning-rate schedule.
      applied = tf.reduce_all(
        [tf.reduce_all(tf.math.is_finite(gradient)) for gradient in gradients]
      )
    else:
      finite = tf.logical_and(
        finite, tf.math.is_finite(tf.linalg.global_norm(gradients))
      )
      applied = True
    self.optimizer.apply_gradients(zip(gradients, self._trainable_variables))
    self.step.assign_add(tf.cast(applied, tf.int64))
    return losses, 1.0 - tf.cast(finite, tf.float32)

  def _distribute(self, batch):
    """Splits a batch of this worker into its replicas' shares."""
    num_local = len(self.strategy.extended.worker_devices)
    shares = {
      name: tf.split(tensor, num_local) for name, tensor in batch.items()
    }
    return self.strategy.experimental_distribute_values_from_function(
      lambda context: {
        name: split[context.replica_id_in_sync_group % num_local]
        for name, split in shares.items()
      }
    )

  def _run_on_replicas(self, replica_function, batches):
    """Runs a function on every replica's share of batches; sums its results.

    The distribution logic of both `train_step` and `losses_and_gradients`.

    Args:
      replica_function: Called on each replica with the list of its shares
        of `batches`; returns a nest of tensors.
      batches: A list of dicts, each a batch of this worker.

    Returns:
      The nest of `replica_function`'s results, summed over all replicas.
    """
    if self._num_replicas > 1:
      batches = [self._distribute(batch) for batch in batches]
    results = self.strategy.run(replica_function, args=(batches,))
    return tf.nest.map_structure(
      lambda value: self.strategy.reduce(
        tf.distribute.ReduceOp.SUM, value, axis=None
      ),
      results,
    )

  def _compile_replica_step(self):
    """Whether --jit_compile compiles the whole replica step with XLA."""
    return (
      self.config.jit_compile
      and not self.config.sync_batch_norm
      and self._num_replicas == 1
    )

  def _make_network_outputs(self):
    """The function from images to the network's float32 outputs."""
    config = self.config

    def network_outputs(images):
      return tf.cast(
        self.network(images, training=config.is_training), tf.float32
      )

    if (
      config.jit_compile
      and not config.sync_batch_norm
      and not self._compile_replica_step()
    ):
      # A compiled function cannot hold MirroredStrategy's collectives (the
      # losses' gathers, the gradients' all-reduce) on this TensorFlow: only
      # the network is compiled.
      return tf.function(network_outputs, jit_compile=True)
    return network_outputs

  def _make_train_step(self):
    """Builds the tf.function of one training step."""
    config = self.config
    replica_step = self._replica_step
    if self._compile_replica_step():
      # One XLA program for the network, the loss, the gradients and the
      # update: the losses have static shapes (network/segsort).
      replica_step = tf.function(self._replica_step, jit_compile=True)

    @tf.function
    def train_step(iterator):
      micro_batches = [next(iterator) for _ in range(config.iter_size)]
      return self._run_on_replicas(replica_step, micro_batches)

    return train_step

  def losses_and_gradients(self, batch):
    """Computes the global loss terms and gradients of a global batch.

    Nothing is updated except what the forward pass updates (BatchNorm
    statistics in training mode, the memory bank).

    Args:
      batch: A dict of a global batch, not distributed.

    Returns:
      losses: A dict of float32 scalars (see `_losses_and_gradients`).
      gradients: A list of tensors aligned with the trainable variables, of
        the global total loss (before the head's 10x; times the loss scale
        with --mixed_precision).
    """

    if self._compute_global_losses_and_gradients is None:

      @tf.function
      def compute(batch):
        return self._run_on_replicas(
          lambda batches: self._losses_and_gradients(batches[0]), [batch]
        )

      self._compute_global_losses_and_gradients = compute
    return self._compute_global_losses_and_gradients(batch)

  # --- The loop -----------------------------------------------------------

  def _save(self, step):
    """Saves a checkpoint of the state after `step` steps.

    Raises:
      NonFiniteLossError: If a weight is NaN or infinite (a finite
        step can still overflow the weights); nothing is saved then.
    """
    if not bool(self._weights_are_finite()):
      self._stop_diverged(errors.NonFiniteLossError, step, 'weights not finite')
    path = self.checkpoint_manager.save(checkpoint_number=step)
    if not self._is_chief:
      tf.io.gfile.rmtree(self.checkpoint_manager.directory)
      return tf.train.latest_checkpoint(self.config.snapshot_dir)
    _LOGGER.info('Saved %s', path)
    return path

  def _check_divergence(self, step, losses):
    """Stops the run if a checked loss grew by orders of magnitude.

    The loss of step k is that of the weights after step k - 1, so a loss
    within HEALTHY_FACTOR of the run's level vouches for the checkpoints
    written before step k.

    Raises:
      DivergenceError: If the total loss exceeds DIVERGENCE_FACTOR times
        its lowest checked value of this run (or 1 if lower).
    """
    loss = losses['total_loss']
    level = max(min(self._lowest_loss, loss), 1.0)
    if loss > DIVERGENCE_FACTOR * level:
      self._stop_diverged(
        errors.DivergenceError,
        step,
        'total loss %g, over %g times its lowest level of '
        'this run, %g' % (loss, DIVERGENCE_FACTOR, self._lowest_loss),
      )
    if loss <= HEALTHY_FACTOR * level:
      self._vouched_step = step
    self._lowest_loss = min(self._lowest_loss, loss)

  def _stop_diverged(self, error_class, step, what):
    """Keeps only vouched checkpoints as the latest and raises with advice.

    Checkpoints written from the step of the last passed check on hold
    weights (and momentum) that may already be diverging: they stay on disk
    but are dropped from the directory's checkpoint list, so that resuming
    starts from the last vouched one, or from scratch if there is none.

    Raises:
      error_class: Always, with advice that works when followed literally.
    """
    config = self.config
    manager = self.checkpoint_manager
    vouched = [
      prefix
      for prefix in manager.checkpoints
      if int(prefix.rsplit('-', 1)[1]) < self._vouched_step
    ]
    dropped = manager.checkpoints[len(vouched) :]
    if dropped and self._is_chief:
      state_path = os.path.join(config.snapshot_dir, 'checkpoint')
      if vouched:
        tf.compat.v1.train.update_checkpoint_state(
          config.snapshot_dir, vouched[-1], all_model_checkpoint_paths=vouched
        )
      else:
        os.remove(state_path)
    learning_rate = min(
      config.learning_rate / 10.0,
      config_lib.MODE_DEFAULTS['learning_rate'][config.mode],
    )
    message = 'Training diverged at step %d (%s); stopped without saving.' % (
      step,
      what,
    )
    if dropped:
      message += (
        ' Checkpoints written since the last healthy check (%s) '
        'stay on disk but are no longer listed in %s.'
        % (
          ', '.join(os.path.basename(prefix) for prefix in dropped),
          config.snapshot_dir,
        )
      )
    message += (
      ' To go on, run the same command with --learning_rate %g '
      '--overwrite_config: it %s. If it diverges again, check the '
      'data (tools.check_list).'
      % (
        learning_rate,
        'resumes from %s, the last checkpoint of a healthy loss' % vouched[-1]
        if vouched
        else 'starts again from the first step',
      )
    )
    raise error_class(message, step)

  def _write_summaries(self, step, losses, learning_rate, images_per_second):
    names = {
      'task_loss': self.objective.loss_name,
      'weight_decay': 'weight_decay',
      'total_loss': 'total_loss',
    }
    for name, value in losses.items():
      summaries.write_scalar('loss/' + names[name], value, step)
    summaries.write_scalar('learning_rate', learning_rate, step)
    summaries.write_scalar('images_per_second', images_per_second, step)
    summaries.write_pictures(
      self._draw_pictures(self._picture_batch), step, max_outputs=NUM_PICTURES
    )

  def train(self, until_step=None):
    """Trains to config.num_steps (or `until_step`), saving on the way.

    Args:
      until_step: Stop after this step instead, with a checkpoint, e.g. to
        split a run over jobs of limited duration.

    Returns:
      A TrainResult.

    Raises:
      DivergenceError: If a checked loss grows by orders of magnitude
        (errors.NonFiniteLossError: if a loss, gradient or weight becomes NaN or
        infinite); nothing is saved then, and checkpoints that may hold
        diverging weights are no longer the latest (see `_stop_diverged`).
    """
    config = self.config
    step = int(self.step.numpy())
    # The lowest checked loss, and the step whose check vouches for the
    # checkpoints before it: those of earlier runs, until the first check.
    self._lowest_loss = math.inf
    self._vouched_step = step
    end = min(config.num_steps, until_step or config.num_steps)
    latest = self.checkpoint_manager.latest_checkpoint
    if step >= end:
      _LOGGER.info('Step %d reached already; nothing to train', step)
      return TrainResult(step, {}, latest)
    images_per_step = config.batch_size * config.iter_size
    if self._is_chief:
      writer = tf.summary.create_file_writer(
        os.path.join(config.snapshot_dir, TENSORBOARD_DIR_NAME)
      )
    else:
      writer = tf.summary.create_noop_writer()
    losses = {}
    first_step = step + 1
    with (
      writer.as_default(),
      console.progress(
        total=config.num_steps,
        initial=step,
        desc='Training',
        unit='step',
        disable=not self._is_chief,
      ) as progress,
    ):
      interval_start, interval_steps = time.perf_counter(), 0
      while step < end:
        step_losses, non_finite = self._train_step(self._iterator)
        step += 1
        interval_steps += 1
        # The one value fetched every step: a single scalar, so that a NaN
        # stops the run at the step that made it.
        if float(non_finite):
          self._stop_diverged(
            errors.NonFiniteLossError,
            step,
            'loss or gradients not finite: %s'
            % ', '.join(
              '%s %g' % (name, float(value))
              for name, value in step_losses.items()
            ),
          )
        if config.mixed_precision and int(self.step.numpy()) < step:
          # The loss-scale optimizer skipped the update (its scale was too
          # large): the step is tried again, at a smaller scale.
          step -= 1
          continue
        progress.update()
        saving = step % config.save_pred_every == 0 or step == end
        # The losses are fetched from the device only here: at the first
        # step (the level that divergence is measured against), on summary
        # steps and before every save, so that no diverged model is saved.
        if step == first_step or saving or step % config.update_tb_every == 0:
          losses = {name: float(value) for name, value in step_losses.items()}
          self._check_divergence(step, losses)
        if step % config.update_tb_every == 0 or step == end:
          # The rate the step used, computed on the host.
          learning_rate = float(
            poly_learning_rate(
              config.learning_rate, step - 1, config.num_steps, config.power
            )
          )
          progress.set_postfix(
            loss='%.4f' % losses['total_loss'],
            lr='%.3g' % learning_rate,
            refresh=False,
          )
        if step % config.update_tb_every == 0:
          images_per_second = (
            interval_steps
            * images_per_step
            / (time.perf_counter() - interval_start)
          )
          _LOGGER.info(
            'step %d: %s, lr %.4g, %.1f images/s',
            step,
            ', '.join('%s %.4f' % item for item in losses.items()),
            learning_rate,
            images_per_second,
          )
          if self._is_chief:
            self._write_summaries(
              step, losses, learning_rate, images_per_second
            )
            # Flushed now, so that a run killed later keeps them.
            writer.flush()
          interval_start, interval_steps = time.perf_counter(), 0
        if saving:
          latest = self._save(step)
        if self._validator and step % config.eval_every == 0:
          # Left out of the images/s of the interval.
          interval_start += self._validator.evaluate(step).seconds
    writer.flush()
    if self._vouched_step < step:
      _LOGGER.warning(
        'The last loss, %g, is over %g times the lowest of this run, %g: '
        'the run may be diverging (see its TensorBoard losses); if so, '
        'rerun with a lower --learning_rate.',
        losses['total_loss'],
        HEALTHY_FACTOR,
        self._lowest_loss,
      )
    return TrainResult(step, losses, latest)


def run(config):
  """Trains by a config, as the entry points do.

  Returns:
    A TrainResult.
  """
  console.setup_logging()
  return Trainer(config).train()


def main(config):
  """Trains as the entry points do; known errors exit with a message.

  Args:
    config: A TrainConfig, e.g. of TrainConfig.from_flags (the entry points
      parse their flags before importing this module and TensorFlow).
  """
  try:
    with errors.exit_on_known_errors():
      run(config)
  except tf.errors.OpError as error:
    # A file found bad only when read (e.g. a truncated JPEG) fails inside
    # the input pipeline; its DataError names the list, line and path.
    found = _DATA_ERROR_PATTERN.search(error.message or '')
    if found is None:
      raise
    raise SystemExit(
      'error: bad data file, stopped without saving (the '
      'checkpoints written are intact; fix or remove the '
      'file, then resume): %s' % found.group(1).strip()
    ) from error
