"""Restoring the network a checkpoint was trained with, for inference."""

import tensorflow as tf

from network import builder
from network import checkpoints
from segsort import config as config_lib
from segsort import errors
from segsort import objectives

# The training modes whose checkpoints are evaluated by k-NN over
# prototypes, and those evaluated by their own class logits.
SEGSORT_MODES = objectives.modes_of_inference_kind('segsort')
SOFTMAX_MODES = objectives.modes_of_inference_kind('softmax')

# Side of the square dummy batch that creates every variable before restore.
_DUMMY_IMAGE_SIZE = 64


def restore_network(
  restore_from, allowed_modes, embedding_dim=None, argument='--restore_from'
):
  """Builds the network a checkpoint was trained with and restores it.

  Args:
    restore_from: A checkpoint prefix, or a directory (its latest checkpoint).
    allowed_modes: The training modes (`TrainConfig.mode`) the caller can use.
    embedding_dim: The --embedding_dim flag: None, or the embedding dimension
      the checkpoint must have (the checkpoint's is used either way).
    argument: How the user gave `restore_from` (a flag or a Python
      parameter), named when there is no checkpoint.

  Returns:
    network: The restored SegmentationNetwork.
    config: The checkpoint's TrainConfig.
    checkpoint_prefix: The resolved checkpoint prefix.

  Raises:
    FileNotFoundError: If there is no such checkpoint or no config.json
      beside it.
    InferenceError: Naming the checkpoint if its mode is not allowed or its
      embedding dimension is not `embedding_dim`.
    network.checkpoints.CheckpointMismatchError: Naming the checkpoint and every
      variable that is missing from it or has another shape there.
  """
  checkpoint_prefix = checkpoints.resolve_checkpoint(restore_from, argument)
  config = config_lib.load_config_for_checkpoint(checkpoint_prefix, argument)
  if config.mode not in allowed_modes:
    raise errors.InferenceError(
      'Checkpoint %s was trained in mode %r; this tool needs one of %s.'
      % (checkpoint_prefix, config.mode, list(allowed_modes))
    )
  check_embedding_dim(embedding_dim, config, checkpoint_prefix)
  network = builder.build_network_from_config(config)
  # Every variable must exist before the check and restore, else restoring
  # would be deferred and unchecked.
  network(
    tf.zeros([1, _DUMMY_IMAGE_SIZE, _DUMMY_IMAGE_SIZE, 3]), training=False
  )
  with checkpoints.reading(checkpoint_prefix):
    checkpoints.check_checkpoint_fits({'model': network}, checkpoint_prefix)
    # The optimizer, step and memory bank of training checkpoints are unused.
    tf.train.Checkpoint(model=network).restore(
      checkpoint_prefix
    ).expect_partial().assert_existing_objects_matched()
  return network, config, checkpoint_prefix


def check_embedding_dim(embedding_dim, config, checkpoint_prefix):
  """Checks an --embedding_dim flag against a checkpoint's TrainConfig.

  Args:
    embedding_dim: The flag's value, or None when not given.
    config: The checkpoint's TrainConfig.
    checkpoint_prefix: The checkpoint, for the message.

  Raises:
    InferenceError: If the flag is given and differs from the checkpoint's.
  """
  if embedding_dim not in (None, config.embedding_dim):
    raise errors.InferenceError(
      '--embedding_dim %d differs from the %d of checkpoint %s.'
      % (embedding_dim, config.embedding_dim, checkpoint_prefix)
    )
