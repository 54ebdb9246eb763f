"""The label policy: values out of range, and the survey of a list's labels.

Label values outside [0, num_classes) other than the ignore label are
reported, then ignored by every reader (training, validation, prototype
extraction, the list check).
"""

import logging
import threading

import numpy as np

# Out-of-range label warnings name this many files before going quiet.
_MAX_OUT_OF_RANGE_WARNINGS = 10

_LOGGER = logging.getLogger(__name__)


def out_of_range_mask(label, num_classes, ignore_label):
  """Marks label values outside [0, num_classes) other than the ignore label.

  The one definition of the values every reader ignores (training, the label
  survey, prototype extraction): they are reported, then treated as the
  ignore label (`ignore_out_of_range`).

  Args:
    label: An int array of label values.
    num_classes: The number of classes.
    ignore_label: The label value of pixels to leave out.

  Returns:
    A bool array of `label`'s shape.
  """
  return ((label < 0) | (label >= num_classes)) & (label != ignore_label)


def ignore_out_of_range(label, num_classes, ignore_label):
  """Sets the values `out_of_range_mask` marks to the ignore label.

  Args:
    label: An int array of label values.
    num_classes: The number of classes.
    ignore_label: The label value of pixels to leave out.

  Returns:
    A new array of `label`'s shape and dtype.
  """
  return np.where(
    out_of_range_mask(label, num_classes, ignore_label), ignore_label, label
  ).astype(label.dtype)


class LabelSurvey:
  """Surveys the labels of a list: class pixels and values out of range.

  Out-of-range values (outside [0, num_classes), other than the ignore label)
  are ignored by every reader; with `log_files` they are logged once per file
  for the first `_MAX_OUT_OF_RANGE_WARNINGS` files, and
  `log_out_of_range_total` counts them all. `warnings` names classes that
  never appear and labels that hold only 0 and the ignore label (binary masks
  stored as 0/255, whose foreground would all be ignored). Thread-safe: files
  may be added from several threads.

  Attributes:
    class_pixels: int64 `[num_classes]`, the labelled pixels of every class.
    out_of_range_pixels: The number of out-of-range pixels.
    out_of_range_files: The number of files holding any.
  """

  def __init__(self, data_list, num_classes, ignore_label, log_files=True):
    self._data_list = data_list
    self._num_classes = num_classes
    self._ignore_label = ignore_label
    self._log_files = log_files
    self._lock = threading.Lock()
    self._ignored_pixels = 0
    self.class_pixels = np.zeros(num_classes, np.int64)
    self.out_of_range_pixels = 0
    self.out_of_range_files = 0

  def add(self, entry, label):
    """Counts one entry's label (before out-of-range values are ignored).

    Returns:
      The label's out-of-range values, a 1-D array.
    """
    out_of_range_pixels = out_of_range_mask(
      label, self._num_classes, self._ignore_label
    )
    ignored_pixels = label == self._ignore_label
    out_of_range = label[out_of_range_pixels]
    valid = label[~(out_of_range_pixels | ignored_pixels)]
    class_pixels = np.bincount(valid.ravel(), minlength=self._num_classes)
    num_ignored = int(np.count_nonzero(ignored_pixels))
    with self._lock:
      self.class_pixels += class_pixels
      self._ignored_pixels += num_ignored
      if not out_of_range.size:
        return out_of_range
      self.out_of_range_pixels += out_of_range.size
      self.out_of_range_files += 1
      num_files = self.out_of_range_files
    if self._log_files and num_files <= _MAX_OUT_OF_RANGE_WARNINGS:
      _LOGGER.warning(
        '%s: %d label pixels of %s outside [0, %d) (values %s) are '
        'ignored (as %d)%s',
        entry.location(),
        out_of_range.size,
        entry.label_path,
        self._num_classes,
        np.unique(out_of_range)[:10].tolist(),
        self._ignore_label,
        '; further files are counted, and their number logged at the end'
        if num_files == _MAX_OUT_OF_RANGE_WARNINGS
        else '',
      )
    return out_of_range

  def no_class_problem(self):
    """Why a list whose labels hold no class pixel is of no use, or None.

    Such a list trains nothing (every pixel is left out of the loss) and
    scores nothing (every IoU is undefined).
    """
    if self.class_pixels.any():
      return None
    return (
      'no pixel of the labels of %s has a class of [0, %d): all are the '
      'ignore label %d or out of range'
      % (self._data_list, self._num_classes, self._ignore_label)
    )

  def warnings(self):
    """Describes suspicious labels of the whole list, one string each."""
    present = self.class_pixels > 0
    if (
      present[0]
      and not present[1:].any()
      and self._ignored_pixels
      and not self.out_of_range_pixels
      and self._num_classes > 1
    ):
      return [
        'The labels of %s hold only 0 and the ignore label %d: if they '
        'are binary masks stored as 0/%d, every foreground pixel is '
        'ignored; store the foreground as class 1.'
        % (self._data_list, self._ignore_label, self._ignore_label)
      ]
    missing = np.flatnonzero(~present).tolist()
    if missing and present.any():
      return [
        'No pixel of the labels of %s has class %s (of [0, %d)): the '
        'network never learns %s.'
        % (
          self._data_list,
          ', '.join(map(str, missing)),
          self._num_classes,
          'it' if len(missing) == 1 else 'them',
        )
      ]
    return []

  def log_out_of_range_total(self):
    """Logs the out-of-range pixels and files in all, and those not named."""
    if not self.out_of_range_files:
      return
    further = self.out_of_range_files - _MAX_OUT_OF_RANGE_WARNINGS
    _LOGGER.warning(
      'Ignored %d label pixels of %d files of %s holding values outside '
      '[0, %d)%s.',
      self.out_of_range_pixels,
      self.out_of_range_files,
      self._data_list,
      self._num_classes,
      ' (%d files not named above)' % further if further > 0 else '',
    )
