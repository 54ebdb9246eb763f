"""Prototype banks: the annotated segments k-NN inference votes with.

A bank is the directory `extract_prototypes` writes: prototype_features.npy
and prototype_labels.npy (the original release's files), the image and box
of every prototype, and prototype_sources.json, written last, which records
the prototype count and the digest of every other file so that a bank
rewritten only in part is detected.
"""

import dataclasses
import hashlib
import json
import logging
import os

import numpy as np

from segsort import errors
from segsort import io_utils

# The bank's folder inside extract_prototypes' --save_dir.
PROTOTYPE_DIR_NAME = 'prototypes'
PROTOTYPE_FEATURES_FILE = 'prototype_features.npy'
PROTOTYPE_LABELS_FILE = 'prototype_labels.npy'
PROTOTYPE_IMAGE_INDICES_FILE = 'prototype_image_indices.npy'
PROTOTYPE_BOXES_FILE = 'prototype_boxes.npy'
PROTOTYPE_SOURCES_FILE = 'prototype_sources.json'

# The files of a bank; prototype_sources.json, written last, records the
# digest of each so that a bank rewritten only in part is detected.
PROTOTYPE_ARRAY_FILES = (
  PROTOTYPE_FEATURES_FILE,
  PROTOTYPE_LABELS_FILE,
  PROTOTYPE_IMAGE_INDICES_FILE,
  PROTOTYPE_BOXES_FILE,
)

_LOGGER = logging.getLogger(__name__)


@dataclasses.dataclass
class PrototypeBank:
  """Prototypes of annotated segments.

  Attributes:
    features: float32 `[P, D]` unit vectors.
    labels: int32 `[P]` class ids.
    image_indices: int32 `[P]`, each prototype's image in `sources['images']`,
      or None when not loaded.
    boxes: int32 `[P, 4]` (y0, x0, y1, x1) in the source image's pixels, end
      exclusive, or None when not loaded.
    sources: The parsed prototype_sources.json, or None when the bank has
      none (a bank of the original release).
    identity: What identifies the bank's contents (the SHA-256 of its
      files), recorded with the predictions made from it.
  """

  features: np.ndarray
  labels: np.ndarray
  image_indices: np.ndarray | None = None
  boxes: np.ndarray | None = None
  sources: dict | None = None
  identity: dict | None = None


def _load_npy(path, what):
  if not os.path.exists(path):
    raise errors.InferenceError(
      'Missing %s file %s; run segsort.extract_prototypes first.' % (what, path)
    )
  try:
    return io_utils.load_npy(path)
  except (OSError, ValueError) as error:
    raise errors.InferenceError(
      'Cannot read %s file %s: %s; run segsort.extract_prototypes again'
      % (what, path, error)
    ) from error


def file_sha256(path):
  """The hexadecimal SHA-256 digest of a file's bytes."""
  digest = hashlib.sha256()
  with open(path, 'rb') as stream:
    for block in iter(lambda: stream.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def checkpoint_identity(checkpoint_prefix):
  """What identifies a checkpoint's weights, wherever its run folder lies.

  Its name and the SHA-256 of its `.index` file, which records every
  tensor's shape, place and CRC-32C of its bytes: outputs recorded with it
  are reused after their run folder is moved, and redone after a run is
  trained again in the same folder (its path alone told neither).

  Args:
    checkpoint_prefix: A checkpoint prefix, e.g. 'run/ckpt-2000'.

  Returns:
    A JSON-ready dict: 'name' (the prefix's base name) and 'index_sha256'
    (None when the index file is missing).
  """
  index_path = checkpoint_prefix + '.index'
  return {
    'name': os.path.basename(checkpoint_prefix),
    'index_sha256': (
      file_sha256(index_path) if os.path.exists(index_path) else None
    ),
  }


def _load_sources(sources_path):
  try:
    with open(sources_path) as stream:
      sources = json.load(stream)
  except (OSError, ValueError) as error:
    raise errors.InferenceError(
      'Cannot read prototype sources file %s: %s' % (sources_path, error)
    ) from error
  if not isinstance(sources, dict):
    raise errors.InferenceError(
      'Prototype sources file %s holds no JSON object.' % sources_path
    )
  return sources


def load_prototype_bank(
  prototype_dir,
  embedding_dim,
  num_classes,
  with_sources=False,
  checkpoint_prefix=None,
):
  """Loads and checks a bank written by `extract_prototypes`.

  prototype_sources.json, when present (banks of the original release have
  only the features and labels), is always read: its prototype count and the
  digests it records of the other files must match them, so that a bank
  whose rewrite was interrupted (prototype_sources.json is written last) is
  detected.

  Args:
    prototype_dir: The directory holding the prototype files.
    embedding_dim: The embedding dimension of the model that will query it.
    num_classes: The number of classes; labels must lie in [0, num_classes).
    with_sources: Whether to load every prototype's image and box as well.
    checkpoint_prefix: The resolved checkpoint that will query the bank; a
      warning is logged when the bank was extracted with another one.

  Returns:
    A PrototypeBank.

  Raises:
    InferenceError: Naming the file that is missing, empty or inconsistent.
  """
  prototype_dir = os.fspath(prototype_dir)
  features_path = os.path.join(prototype_dir, PROTOTYPE_FEATURES_FILE)
  labels_path = os.path.join(prototype_dir, PROTOTYPE_LABELS_FILE)
  sources_path = os.path.join(prototype_dir, PROTOTYPE_SOURCES_FILE)
  nested = os.path.join(prototype_dir, PROTOTYPE_DIR_NAME)
  if not os.path.exists(features_path) and os.path.exists(
    os.path.join(nested, PROTOTYPE_FEATURES_FILE)
  ):
    # extract_prototypes writes SAVE_DIR/prototypes: its --save_dir given.
    raise errors.InferenceError(
      'No prototype bank in %s, but its prototypes/ folder holds one: give '
      '%s (segsort.extract_prototypes writes SAVE_DIR/prototypes)'
      % (prototype_dir, nested)
    )
  features = _load_npy(features_path, 'prototype features')
  labels = _load_npy(labels_path, 'prototype labels')
  if features.ndim != 2:
    raise errors.InferenceError(
      '%s has shape %s; expected [prototypes, '
      'dimensions].' % (features_path, features.shape)
    )
  if features.shape[0] == 0:
    raise errors.InferenceError(
      '%s holds an empty prototype bank; extract '
      'prototypes from a list with labels.' % features_path
    )
  if features.shape[1] != embedding_dim:
    raise errors.InferenceError(
      '%s holds %d-dimensional prototypes but the model embeds in %d '
      'dimensions; extract prototypes with this model.'
      % (features_path, features.shape[1], embedding_dim)
    )
  if labels.shape != features.shape[:1]:
    raise errors.InferenceError(
      '%s has shape %s; %s has %d prototypes.'
      % (labels_path, labels.shape, features_path, features.shape[0])
    )
  # NumPy would cast other kinds silently (NaN labels to a huge negative
  # id, 0.5 to 0) or fail deep in the k-NN search.
  if not np.issubdtype(features.dtype, np.floating):
    raise errors.InferenceError(
      '%s holds %s values; expected floating-point features.'
      % (features_path, features.dtype)
    )
  if not np.all(np.isfinite(features)):
    raise errors.InferenceError(
      '%s holds NaN or infinite features; run segsort.extract_prototypes '
      'again.' % features_path
    )
  if not np.issubdtype(labels.dtype, np.integer):
    raise errors.InferenceError(
      '%s holds %s values; expected integer class ids.'
      % (labels_path, labels.dtype)
    )
  if labels.min() < 0 or labels.max() >= num_classes:
    raise errors.InferenceError(
      '%s holds labels in [%d, %d]; expected [0, '
      '%d).' % (labels_path, labels.min(), labels.max(), num_classes)
    )
  bank = PrototypeBank(features.astype(np.float32), labels.astype(np.int32))
  warn_of_missing_classes(
    bank.labels, num_classes, 'The prototype bank %s' % prototype_dir
  )
  # By content alone, so that predictions made from a bank are reused
  # after the folder holding both is moved.
  bank.identity = {
    'sha256': {
      name: file_sha256(os.path.join(prototype_dir, name))
      for name in (PROTOTYPE_FEATURES_FILE, PROTOTYPE_LABELS_FILE)
    },
  }
  if os.path.exists(sources_path):
    bank.sources = _load_sources(sources_path)
    _check_sources(bank, prototype_dir, sources_path)
    extracted_with = bank.sources.get('checkpoint')
    if checkpoint_prefix is not None and extracted_with != checkpoint_identity(
      checkpoint_prefix
    ):
      _LOGGER.warning(
        'The prototypes of %s were extracted with checkpoint %s, not with '
        '%s which will query them; extract them with this checkpoint '
        'unless that is intended.',
        prototype_dir,
        # Banks extracted before 2026-12-02 recorded the checkpoint's path.
        extracted_with.get('name')
        if isinstance(extracted_with, dict)
        else extracted_with,
        os.path.abspath(checkpoint_prefix),
      )
  if not with_sources:
    return bank
  if bank.sources is None:
    raise errors.InferenceError(
      'Missing prototype sources file %s; rerun '
      'segsort.extract_prototypes.' % sources_path
    )
  indices_path = os.path.join(prototype_dir, PROTOTYPE_IMAGE_INDICES_FILE)
  boxes_path = os.path.join(prototype_dir, PROTOTYPE_BOXES_FILE)
  bank.image_indices = _load_npy(indices_path, 'prototype image indices')
  bank.boxes = _load_npy(boxes_path, 'prototype boxes')
  if bank.image_indices.shape != labels.shape or bank.boxes.shape != (
    labels.shape[0],
    4,
  ):
    raise errors.InferenceError(
      '%s (shape %s) or %s (shape %s) does not match the %d prototypes of '
      '%s.'
      % (
        indices_path,
        bank.image_indices.shape,
        boxes_path,
        bank.boxes.shape,
        labels.shape[0],
        features_path,
      )
    )
  return bank


def warn_of_missing_classes(labels, num_classes, bank_name):
  """Warns when a bank's labels leave out classes, which k-NN never predicts.

  Args:
    labels: The bank's prototype labels.
    num_classes: The number of classes.
    bank_name: Names the bank (and the list it comes from) in the warning.
  """
  missing = np.setdiff1d(np.arange(num_classes), labels)
  if missing.size:
    _LOGGER.warning(
      '%s holds no prototype of class %s (of [0, %d)): k-NN inference '
      'never predicts %s.',
      bank_name,
      ', '.join(map(str, missing)),
      num_classes,
      'it' if missing.size == 1 else 'them',
    )


def _check_sources(bank, prototype_dir, sources_path):
  """Checks prototype_sources.json against the bank's arrays and files."""
  num_prototypes = len(bank.labels)
  if bank.sources.get('num_prototypes') != num_prototypes:
    raise errors.InferenceError(
      '%s describes %s prototypes but %s and %s hold %d: the bank is '
      'inconsistent (an interrupted extraction?); rerun '
      'segsort.extract_prototypes.'
      % (
        sources_path,
        bank.sources.get('num_prototypes'),
        os.path.join(prototype_dir, PROTOTYPE_FEATURES_FILE),
        os.path.join(prototype_dir, PROTOTYPE_LABELS_FILE),
        num_prototypes,
      )
    )
  recorded = bank.sources.get('sha256', {})
  for name, digest in recorded.items():
    path = os.path.join(prototype_dir, name)
    actual = bank.identity['sha256'].get(name) or (
      file_sha256(path) if os.path.exists(path) else None
    )
    if actual != digest:
      raise errors.InferenceError(
        '%s %s; %s records the file of another extraction: the bank is '
        'inconsistent (an interrupted extraction?); rerun '
        'segsort.extract_prototypes.'
        % (
          path,
          'is missing' if actual is None else 'has changed',
          sources_path,
        )
      )
