"""The run's config.json: writing and reading it, comparing configs.

A run's config.json beside its checkpoints holds every TrainConfig field and
the software of the run; inference reads it back for the network and the
settings the run was trained with, and a resumed run compares it with its
flags.
"""

import json
import os

from segsort import errors
from segsort import io_utils
from segsort import run_record

CONFIG_FILE_NAME = 'config.json'
# The key of config.json that records the software of the run (see
# segsort.run_record.environment); not a TrainConfig field.
ENVIRONMENT_KEY = 'environment'

# Fields that may change between a run and its resumption: they affect how
# often things are logged or saved, where the first weights came from, where
# the run directory lies (a moved or copied run resumes), or how the same
# global batch is computed, not what is trained.
RESUMABLE_FIELD_CHANGES = frozenset(
  {
    'snapshot_dir',
    'save_pred_every',
    'update_tb_every',
    'restore_from',
    'not_restore_classifier',
    'num_gpu',
    'jit_compile',
    'overwrite_config',
    'prototype_num_clusters',
    'eval_every',
    'eval_list',
    'eval_images',
    'eval_prototype_images',
  }
)

# Fields holding paths, compared by the file they name, not their spelling.
PATH_FIELDS = ('data_dir', 'data_list', 'restore_from', 'snapshot_dir')


def _normalized_path(path):
  return os.path.normpath(os.path.abspath(path)) if path else path


def setting_differences(old, new, ignored=(), comparable=None):
  """Lists the settings in which two dicts of settings differ.

  The one comparison of recorded settings with current ones: a snapshot's
  config.json with the flags (`config_differences`), an output directory's
  settings file with a rerun's (segsort.inference.output_dirs).

  Args:
    old: A dict of settings, e.g. the recorded ones.
    new: A dict of settings; a key missing from one of the two reads None.
    ignored: Keys not compared.
    comparable: None, or a function (key, value) -> what is compared in
      place of the value (e.g. a normalised path).

  Returns:
    A list of (key, old value, new value), sorted by key.
  """

  def compared(key, values):
    value = values.get(key)
    return comparable(key, value) if comparable else value

  return [
    (key, old.get(key), new.get(key))
    for key in sorted(set(old) | set(new))
    if key not in ignored and compared(key, old) != compared(key, new)
  ]


def config_differences(saved, current, ignored=RESUMABLE_FIELD_CHANGES):
  """Lists the fields in which two configs differ.

  Paths are compared by the file they name (absolute, without '.', '..',
  trailing slashes or symbolic links), so that 'data/', '/home/me/data'
  and a link to it are the same directory, and a link since pointed at
  other data is not.

  Args:
    saved: A TrainConfig (e.g. a snapshot directory's).
    current: A TrainConfig.
    ignored: Field names not compared.

  Returns:
    A sorted list of (field name, saved value, current value).
  """

  def comparable(name, value):
    return os.path.realpath(value) if name in PATH_FIELDS and value else value

  return setting_differences(
    saved.to_dict(), current.to_dict(), ignored, comparable
  )


def save_config(config, snapshot_dir):
  """Writes `snapshot_dir/config.json` atomically.

  The file holds every TrainConfig field, with paths made absolute (so that
  it can be replayed from any directory with --config), and under
  "environment" the software of the run (segsort.run_record.environment:
  Python, TensorFlow, Keras and NumPy versions, the git commit).

  Returns:
    The path written.
  """
  path = os.path.join(snapshot_dir, CONFIG_FILE_NAME)
  values = config.to_dict()
  for name in PATH_FIELDS:
    values[name] = _normalized_path(values[name])
  values[ENVIRONMENT_KEY] = run_record.environment()
  io_utils.save_json(path, values)
  return path


def load_config(path_or_dir):
  """Reads a config.json (or the one in a directory), less its environment.

  Raises:
    FileNotFoundError: If there is no such file.
    errors.ConfigFileError: If the file is not a valid config (a
      ValueError).
  """
  # Imported here: segsort.config, which TrainConfig belongs to, imports
  # this module.
  from segsort import config as config_lib

  path = path_or_dir
  if os.path.isdir(path):
    path = os.path.join(path, CONFIG_FILE_NAME)
  if not os.path.isfile(path):
    raise FileNotFoundError('No training config at %s' % path)
  try:
    with open(path) as stream:
      values = json.load(stream)
    if not isinstance(values, dict):
      raise ValueError('expected a JSON object, got %s' % type(values).__name__)
    if 'mode' not in values:
      # Every config.json the trainer writes names it; without it, all the
      # other fields would silently take their defaults.
      raise ValueError("no 'mode' field: not a config.json of this port")
    values.pop(ENVIRONMENT_KEY, None)
    return config_lib.TrainConfig.from_dict(values)
  except (ValueError, TypeError) as error:
    raise errors.ConfigFileError(
      'Invalid training config %s: %s' % (path, error)
    ) from error


def load_config_for_checkpoint(checkpoint_prefix, argument=None):
  """Reads the config.json of the run that wrote a checkpoint.

  Args:
    checkpoint_prefix: A prefix from `network.checkpoints.resolve_checkpoint`.
    argument: How the user gave the checkpoint (a flag such as
      '--restore_from', or a Python parameter), which starts the message;
      None for none.

  Raises:
    FileNotFoundError: If the checkpoint's directory has no config.json
      (e.g. an ImageNet checkpoint, or a run of an older version).
  """
  directory = os.path.dirname(os.path.abspath(checkpoint_prefix))
  path = os.path.join(directory, CONFIG_FILE_NAME)
  if not os.path.isfile(path):
    raise FileNotFoundError(
      '%sno %s beside checkpoint %s: it was not written by this port\'s '
      'trainer, so its network is unknown'
      % (
        'argument %s: ' % argument if argument else '',
        CONFIG_FILE_NAME,
        checkpoint_prefix,
      )
    )
  return load_config(path)
