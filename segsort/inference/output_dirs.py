"""Resumable output directories: the settings that made them.

A directory of outputs records the settings that made them in its settings
file; a rerun with the same settings reuses the outputs that exist (they
were written atomically, so existing means complete) and were written after
their inputs (an edited label or image is done again), one with other
settings deletes them all so that they are recomputed.
"""

import glob
import json
import logging
import os

from segsort import config as config_lib
from segsort import io_utils

# The file recording the settings that made a directory's outputs.
SETTINGS_FILE = io_utils.SETTINGS_FILE

_LOGGER = logging.getLogger(__name__)


def log_run_summary(what, num_done, num_skipped, seconds):
  """Logs how many images a run did, how fast, and how many it skipped."""
  rate = num_done / seconds if seconds > 0 else 0.0
  _LOGGER.info(
    '%s: %d images in %.1f s (%.2f images/s), %d skipped as already done.',
    what,
    num_done,
    seconds,
    rate,
    num_skipped,
  )


def _describe_changes(old, new):
  """Names the settings that differ between two settings dicts."""
  if old is None:
    return 'no settings recorded'
  return '; '.join(
    '%s: %s -> %s'
    % (key, json.dumps(old_value)[:200], json.dumps(new_value)[:200])
    for key, old_value, new_value in config_lib.setting_differences(old, new)
  )


def _recorded_settings(settings_path):
  """The settings a settings file holds; None if missing or unreadable."""
  try:
    with open(settings_path) as stream:
      return json.load(stream)
  except (OSError, ValueError):
    return None


def outputs_are_current(settings_path, settings):
  """Whether outputs recorded at `settings_path` were made with `settings`.

  When False, `prepare_output_dir` will delete them: callers that check
  their inputs first must then check every input, not only those without
  an output.

  Args:
    settings_path: The JSON settings file of the outputs.
    settings: A JSON-ready dict of everything the outputs depend on.
  """
  return _recorded_settings(settings_path) == json.loads(json.dumps(settings))


def prepare_output_dir(settings_path, settings, output_patterns, what):
  """Deletes outputs made with other settings, then records the settings.

  Outputs of a directory are reused only when its settings file holds the
  same settings; when it holds others, or none, or cannot be read, the
  change is logged and every file matching `output_patterns` is deleted,
  so that all of them are recomputed.

  Args:
    settings_path: The JSON settings file of the outputs.
    settings: A JSON-ready dict of everything the outputs depend on.
    output_patterns: glob patterns of the output files.
    what: Names the outputs in the message, e.g. 'Prototype cache'.
  """
  settings = json.loads(json.dumps(settings))
  recorded = _recorded_settings(settings_path)
  if recorded == settings:
    return
  stale_files = sorted(
    path for pattern in output_patterns for path in glob.glob(pattern)
  )
  if stale_files:
    _LOGGER.warning(
      '%s %s were made with other settings (%s); clearing %d files.',
      what,
      os.path.dirname(os.path.abspath(settings_path)),
      _describe_changes(recorded, settings),
      len(stale_files),
    )
    for path in stale_files:
      os.remove(path)
  io_utils.save_json(settings_path, settings)
