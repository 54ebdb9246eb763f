"""Checkpoint look-up and inspection; TF-Slim ResNet checkpoints <-> Keras backbones.

TF-Slim's ImageNet checkpoints (e.g. resnet_v1_101_2016_08_28.tar.gz,
extracted to snapshots/imagenet/trained/resnet_v1_101.ckpt) are name-based
TF1 checkpoints; the backbone's layers carry the Slim scopes
(resnet_v1.slim_variable_map), so restoring is a lookup by name. The
checkpoints this project writes are object-based (TF2): `check_checkpoint_fits`
compares one with the objects about to be restored, by variable, before
anything is assigned, so that a checkpoint of another network fails with a
list of what differs instead of a half-restored model.
"""

import contextlib
import os
import tempfile

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from network import resnet_v1

# Present in object-based (TF2) checkpoints, absent from TF-Slim's.
_OBJECT_GRAPH_KEY = '_CHECKPOINTABLE_OBJECT_GRAPH'
_VARIABLE_ATTRIBUTE = 'VARIABLE_VALUE'


class CheckpointMismatchError(ValueError):
  """A checkpoint's weights do not fit the model, or cannot be read."""


@contextlib.contextmanager
def reading(checkpoint):
  """Turns the errors of a checkpoint's missing or damaged files into one.

  TensorFlow reports a missing or truncated `.data` file as an OpError or
  IndexError deep in a restore; callers (the trainer, inference) let a
  CheckpointMismatchError reach the user as one line.

  Args:
    checkpoint: The checkpoint prefix or directory read inside, for the
      message.

  Raises:
    CheckpointMismatchError: Naming the checkpoint and TensorFlow's first
      line, for an OpError or IndexError raised inside.
  """
  try:
    yield
  except (tf.errors.OpError, IndexError) as error:
    detail = str(getattr(error, 'message', '') or error).strip() or repr(error)
    raise CheckpointMismatchError(
      'Cannot read checkpoint %s (a file of it is missing or damaged): %s'
      % (checkpoint, detail.splitlines()[0])
    ) from None


def resolve_checkpoint(restore_from, argument='--restore_from'):
  """Turns a checkpoint directory or prefix into a checkpoint prefix.

  Args:
    restore_from: A directory (its latest checkpoint is taken, as recorded
      in its 'checkpoint' file) or a checkpoint prefix such as
      'snapshots/run/ckpt-30000' or 'resnet_v1_101.ckpt'; a str or an
      os.PathLike.
    argument: How the caller's user gave `restore_from`, for the message:
      the flag of every entry point that takes a checkpoint, or a Python
      parameter such as `api.load`'s 'run'.

  Returns:
    The checkpoint prefix, a str.

  Raises:
    FileNotFoundError: If the directory holds no checkpoint or the prefix
      has no `.index` file; the message starts with "argument ARGUMENT:".
    TypeError: If `restore_from` is not a path.
  """
  if not isinstance(restore_from, (str, os.PathLike)):
    raise TypeError(
      'argument %s: expected a checkpoint path, got %r'
      % (argument, restore_from)
    )
  restore_from = os.fspath(restore_from)
  if not restore_from:
    raise FileNotFoundError('argument %s: empty checkpoint path' % argument)
  if os.path.isdir(restore_from):
    # Read here rather than by tf.train.latest_checkpoint, which logs an
    # ERROR line of its own before returning None for a missing checkpoint.
    state = tf.train.get_checkpoint_state(restore_from)
    if state is not None:
      if tf.io.gfile.exists(state.model_checkpoint_path + '.index'):
        return state.model_checkpoint_path
      raise FileNotFoundError(
        'argument %s: the "checkpoint" file of %s names %s, '
        'whose %s.index is missing'
        % (
          argument,
          restore_from,
          state.model_checkpoint_path,
          state.model_checkpoint_path,
        )
      )
    raise FileNotFoundError(
      'argument %s: no checkpoint in directory %s (no '
      '"checkpoint" file naming one)' % (argument, restore_from)
    )
  if restore_from.endswith('.index') and os.path.isfile(restore_from):
    raise FileNotFoundError(
      'argument %s: %s is a checkpoint\'s index file; give its prefix %s'
      % (argument, restore_from, restore_from[: -len('.index')])
    )
  if not os.path.isfile(restore_from + '.index'):
    raise FileNotFoundError(
      'argument %s: no checkpoint %s: neither a directory nor a '
      'checkpoint prefix (%s.index does not exist)'
      % (argument, restore_from, restore_from)
    )
  return restore_from


def is_slim_checkpoint(checkpoint_prefix):
  """Tells a name-based TF-Slim checkpoint (True) from an object-based TF2 one (False)."""
  reader = tf.train.load_checkpoint(checkpoint_prefix)
  return _OBJECT_GRAPH_KEY not in reader.get_variable_to_shape_map()


def _variables_by_object_path(checkpoint_prefix, roots):
  """Lists an object-based checkpoint's variables by their object path.

  A variable reachable along several paths (layers shared between models)
  is listed under each, so that two checkpoints of the same objects list the
  same paths whatever else they hold.

  Args:
    checkpoint_prefix: A TF2 checkpoint prefix.
    roots: Names of the root's children to look into, e.g. {'model'}.

  Returns:
    A dict from path (e.g. 'model/backbone/_operations/2/_kernel') to
    (variable name, shape as a list).
  """
  reader = tf.train.load_checkpoint(checkpoint_prefix)
  shapes = reader.get_variable_to_shape_map()
  graph = trackable_object_graph_pb2.TrackableObjectGraph()
  graph.ParseFromString(reader.get_tensor(_OBJECT_GRAPH_KEY))
  variables = {}
  pending = [
    (child.node_id, child.local_name, frozenset([0]))
    for child in graph.nodes[0].children
    if child.local_name in roots
  ]
  while pending:
    node_id, path, ancestors = pending.pop()
    node = graph.nodes[node_id]
    for attribute in node.attributes:
      if attribute.name == _VARIABLE_ATTRIBUTE:
        variables[path] = (
          attribute.full_name,
          list(shapes[attribute.checkpoint_key]),
        )
    ancestors = ancestors | {node_id}
    pending.extend(
      (child.node_id, path + '/' + child.local_name, ancestors)
      for child in node.children
      if child.node_id not in ancestors
    )
  return variables


def _fit_problems(expected, found, what):
  """Describes the variables a model expects that a checkpoint lacks or shapes otherwise.

  Args:
    expected: A dict from key to (variable name, shape as a list), the model's.
    found: A dict from key to shape as a list, the checkpoint's.
    what: What the variables are called in the messages, e.g. 'variable(s)'.

  Returns:
    A list of up to two one-line messages, the missing variables' and the
    mismatched ones', each naming every such variable; empty when the
    checkpoint fits.
  """
  missing = sorted(
    {name for key, (name, _) in expected.items() if key not in found}
  )
  mismatched = sorted(
    {
      '%s: checkpoint %s vs model %s' % (name, found[key], shape)
      for key, (name, shape) in expected.items()
      if key in found and found[key] != shape
    }
  )
  problems = []
  if missing:
    problems.append(
      '%d %s missing from the checkpoint: %s'
      % (len(missing), what, ', '.join(missing))
    )
  if mismatched:
    problems.append(
      '%d %s with a different shape: %s'
      % (len(mismatched), what, ', '.join(mismatched))
    )
  return problems


def check_checkpoint_fits(objects, checkpoint_prefix):
  """Checks, before anything is assigned, that a checkpoint fits objects.

  Args:
    objects: A dict of trackable objects as given to tf.train.Checkpoint,
      e.g. {'model': network}.
    checkpoint_prefix: A TF2 checkpoint prefix.

  Raises:
    CheckpointMismatchError: Listing, by variable name, every variable of
      `objects` missing from the checkpoint or of another shape there.
  """
  with tempfile.TemporaryDirectory() as directory:
    expected_prefix = tf.train.Checkpoint(**objects).write(
      os.path.join(directory, 'expected')
    )
    expected = _variables_by_object_path(expected_prefix, set(objects))
  found = {
    path: shape
    for path, (_, shape) in _variables_by_object_path(
      checkpoint_prefix, set(objects)
    ).items()
  }
  problems = _fit_problems(expected, found, 'variable(s)')
  if problems:
    raise CheckpointMismatchError(
      'Checkpoint %s does not fit the %s being restored (was it written for '
      'another --backbone/--head/--embedding_dim/--num_classes?): %s'
      % (checkpoint_prefix, '/'.join(sorted(objects)), '; '.join(problems))
    )


def _open_checkpoint(checkpoint_path):
  """Returns a CheckpointReader for a checkpoint prefix or a directory holding one."""
  try:
    return tf.train.load_checkpoint(checkpoint_path)
  except (ValueError, tf.errors.OpError) as error:
    raise ValueError(
      'Cannot read a TF checkpoint at %r: %s' % (checkpoint_path, error)
    ) from error


def load_slim_resnet(backbone, checkpoint_path, slim_root_scope=None):
  """Restores every backbone weight from a TF-Slim ResNet v1 checkpoint.

  Checkpoint entries the backbone has no variable for (resnet_v1_101/logits/*,
  global_step, optimizer slots) are ignored. Nothing is assigned unless every
  backbone variable is present with the right shape.

  Args:
    backbone: keras.Model from network.resnet_v1 (SegmentationNetwork.backbone).
    checkpoint_path: Checkpoint prefix (e.g. '.../resnet_v1_101.ckpt') or a
      directory with a 'checkpoint' file.
    slim_root_scope: Root scope of the names in the checkpoint; defaults to
      the backbone's name (e.g. 'resnet_v1_101').

  Returns:
    Sorted list of the TF-Slim names restored (one per backbone variable).

  Raises:
    ValueError: If the checkpoint cannot be read, or if backbone weights are
      missing from it or have a different shape there; the message lists
      every such name.
  """
  reader = _open_checkpoint(checkpoint_path)
  checkpoint_shapes = reader.get_variable_to_shape_map()
  variables = resnet_v1.slim_variable_map(backbone, slim_root_scope)

  problems = _fit_problems(
    {
      name: (name, list(variable.shape)) for name, variable in variables.items()
    },
    {name: list(shape) for name, shape in checkpoint_shapes.items()},
    'backbone weights',
  )
  if problems:
    raise ValueError(
      'Cannot restore %r from %r: %s'
      % (backbone.name, checkpoint_path, '; '.join(problems))
    )

  for name, variable in variables.items():
    variable.assign(reader.get_tensor(name).astype(np.float32))
  return sorted(variables)


def save_slim_resnet(backbone, checkpoint_path, slim_root_scope=None):
  """Writes the backbone's weights as a TF-Slim-named checkpoint.

  The inverse of load_slim_resnet, e.g. to ship a backbone trained here in
  the ImageNet checkpoints' format. The files appear complete or not at all:
  they are written under a temporary prefix and renamed.

  Args:
    backbone: keras.Model from network.resnet_v1.
    checkpoint_path: Checkpoint prefix to write (files `<prefix>.index` and
      `<prefix>.data-00000-of-00001`).
    slim_root_scope: Root scope of the names; defaults to the backbone's name.

  Returns:
    Sorted list of the TF-Slim names written.
  """
  variables = resnet_v1.slim_variable_map(backbone, slim_root_scope)
  names = sorted(variables)
  directory = os.path.dirname(os.path.abspath(checkpoint_path))
  os.makedirs(directory, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=directory) as temporary_directory:
    temporary_prefix = os.path.join(temporary_directory, 'checkpoint')
    tf.raw_ops.SaveV2(
      prefix=temporary_prefix,
      tensor_names=names,
      shape_and_slices=[''] * len(names),
      tensors=[tf.convert_to_tensor(variables[name]) for name in names],
    )
    # The index goes last: a reader that finds it finds the data too.
    for file_name in sorted(
      os.listdir(temporary_directory), key=lambda f: f.endswith('.index')
    ):
      suffix = file_name[len('checkpoint') :]
      os.replace(
        os.path.join(temporary_directory, file_name), checkpoint_path + suffix
      )
  return names
