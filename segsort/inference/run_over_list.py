"""Predicting every image of a list into gray/ID.png and color/ID.png."""

import logging
import os
import time
import warnings

import numpy as np

from segsort import colormap as colormap_lib
from segsort import console
from segsort import data
from segsort import errors
from segsort import io_utils
from segsort import metrics
from segsort import overlay
from segsort.inference import banks
from segsort.inference import output_dirs
from segsort.inference import predictors

_LOGGER = logging.getLogger(__name__)


def _remove_stale_scores(save_dir):
  """Removes the benchmark's default scores of a folder whose predictions
  are about to change: they would describe predictions that are gone."""
  scores = os.path.join(save_dir, metrics.SCORES_FILE_NAME)
  for path in (scores, metrics.chart_path(scores)):
    if os.path.isfile(path):
      _LOGGER.info(
        'Removing %s: it scored the predictions being replaced', path
      )
      os.remove(path)


def check_colormap_covers(colormap, num_classes, source):
  """Refuses a colour map with fewer colours than classes.

  Args:
    colormap: An array `[num_colors, 3]`.
    num_classes: The number of classes to draw.
    source: Where the map comes from, for the message: a file, a named
      map, or how it was passed.

  Raises:
    InferenceError: Naming `source`, if num_colors < num_classes.
  """
  if len(colormap) < num_classes:
    raise errors.InferenceError(
      'Colour map %s has %d colours for --num_classes %d; pass --colormap '
      'voc or a map of at least %d colours.'
      % (source, len(colormap), num_classes, num_classes)
    )


def load_colormap(spec, data_dir=None, num_classes=None):
  """Loads the colour map `[num_colors, 3]` that --colormap asks for.

  Args:
    spec: A name of `colormap.NAMED_COLORMAPS` ('voc', 'cityscapes'), a .npy
      file, or a text file of `R G B` rows; None for the data set's own
      colours (`data_dir/colormap.txt`, written by the tools that import a
      data set) when that file exists, else VOC's.
    data_dir: The data set's DATAROOT, or None.
    num_classes: When given, the classes the map must cover.

  Returns:
    A uint8 array `[num_colors, 3]`.

  Raises:
    InferenceError: Naming the file (or named map) if it cannot be read,
      has a bad shape or values, or has fewer than num_classes colours.
  """
  if spec is None and data_dir is not None:
    data_set_colormap = os.path.join(data_dir, colormap_lib.COLORMAP_FILE)
    if os.path.exists(data_set_colormap):
      spec = data_set_colormap
  if spec is None:
    spec = 'voc'
  if spec in colormap_lib.NAMED_COLORMAPS:
    colormap = colormap_lib.NAMED_COLORMAPS[spec]()
  else:
    colormap = _read_colormap_file(spec)
  if num_classes is not None:
    check_colormap_covers(colormap, num_classes, spec)
  return colormap


def _read_colormap_file(spec):
  """Reads and checks a .npy or text colour map (see load_colormap)."""
  try:
    with warnings.catch_warnings():
      # An empty text file is refused below, without NumPy's warning.
      warnings.simplefilter('ignore', UserWarning)
      colormap = (
        io_utils.load_npy(spec)
        if spec.endswith('.npy')
        else np.loadtxt(spec, ndmin=2, encoding='utf-8-sig')
      )
  except (OSError, ValueError) as error:
    # NumPy's own advice on text (usecols) fits no colour map.
    reason = (
      error
      if isinstance(error, OSError) or spec.endswith('.npy')
      else 'rows must be "R G B", three numbers in [0, 255]'
    )
    raise errors.InferenceError(
      'Cannot read colour map %s: %s' % (spec, reason)
    ) from error
  if colormap.size == 0:
    raise errors.InferenceError('Colour map %s holds no colour.' % spec)
  if colormap.dtype == bool or not (
    np.issubdtype(colormap.dtype, np.integer)
    or np.issubdtype(colormap.dtype, np.floating)
  ):
    raise errors.InferenceError(
      'Colour map %s holds %s values; expected numbers in [0, 255].'
      % (spec, colormap.dtype)
    )
  if colormap.ndim != 2 or colormap.shape[1] != 3:
    raise errors.InferenceError(
      'Colour map %s has shape %s; expected [N, 3].' % (spec, colormap.shape)
    )
  if colormap.size and not (
    np.all(np.isfinite(colormap))
    and 0 <= colormap.min() <= colormap.max() <= 255
  ):
    raise errors.InferenceError(
      'Colour map %s holds values outside [0, 255] (from %s to %s).'
      % (spec, colormap.min(), colormap.max())
    )
  return np.rint(colormap).astype(np.uint8)


def predict_list(
  predictor,
  *,
  checkpoint_prefix,
  data_dir,
  data_list,
  save_dir,
  scales=(1.0,),
  flip=False,
  colormap=None,
  apply_exif_orientation=False,
  checkpoint_overrides=None,
  save_overlay=False,
):
  """Predicts every image of a list and writes gray/ID.png and color/ID.png.

  The run's settings (checkpoint, prototype bank, predictor settings, scales,
  flip, colour map, data_dir) are written to SAVE_DIR/settings.json. When
  they equal the recorded ones, images whose two PNGs exist already are
  skipped (their files were written atomically, so they are complete) and
  not decoded again; otherwise every prediction of save_dir is deleted and
  recomputed.

  Args:
    predictor: A SegSortPredictor or SoftmaxPredictor.
    checkpoint_prefix: The resolved checkpoint of the predictor's network.
    data_dir: The directory list paths are relative to.
    data_list: A list of images (a label column is allowed and not read).
    save_dir: The output directory.
    scales: Image scale factors.
    flip: Whether to add left-right flips.
    colormap: A uint8 array `[num_colors, 3]` covering the classes; VOC's
      when None.
    apply_exif_orientation: Whether to turn images as their EXIF orientation
      asks (predictions then have the turned size).
    checkpoint_overrides: A JSON-ready dict of the flags given with values
      other than the checkpoint's training settings
      (`command_line.settings_from_checkpoint`), recorded in the settings
      when not empty.
    save_overlay: Whether to write overlay/ID.png too (segsort.overlay: the
      image blended with the colour labels, segment boundaries in white);
      images without one are then not skipped.

  Returns:
    The number of images predicted (not skipped).

  Raises:
    DataError: Before any output, naming the list file, line and path of an
      empty or malformed list, a missing file or one to predict that does
      not decode (`data.check_entries_decode`).
    InferenceError: If the colour map has fewer colours than classes.
  """
  if colormap is None:
    colormap = colormap_lib.voc_colormap()
  check_colormap_covers(
    colormap, predictor.num_classes, 'given to predict_list'
  )
  # Predictions need no label: a missing or mismatched one must not stop
  # them (a test list may carry labels of another resolution).
  entries, list_problems, _ = data.parse_data_list(
    data_dir,
    data_list,
    require_labels=False,
    with_oversegmentation=False,
    use_labels=False,
  )
  gray_dir = os.path.join(save_dir, 'gray')
  color_dir = os.path.join(save_dir, 'color')
  overlay_dir = os.path.join(save_dir, 'overlay')

  def output_paths(entry):
    return (
      os.path.join(gray_dir, entry.image_id + '.png'),
      os.path.join(color_dir, entry.image_id + '.png'),
    ) + (
      (os.path.join(overlay_dir, entry.image_id + '.png'),)
      if save_overlay
      else ()
    )

  def predicted(entry):
    return io_utils.output_is_newer(output_paths(entry), [entry.image_path])

  settings = dict(
    predictor.settings(),
    checkpoint=banks.checkpoint_identity(checkpoint_prefix),
    data_dir=os.path.abspath(data_dir),
    scales=[float(scale) for scale in scales],
    flip=bool(flip),
    colormap=np.asarray(colormap[: predictor.num_classes]).tolist(),
    apply_exif_orientation=bool(apply_exif_orientation),
  )
  if checkpoint_overrides:
    settings['flags_overriding_checkpoint'] = checkpoint_overrides
  # Images already predicted (with these settings) were decoded then; the
  # rest are decoded once now, so that a bad file stops the run before any
  # output is written or cleared.
  outputs_are_current = output_dirs.outputs_are_current(
    os.path.join(save_dir, output_dirs.SETTINGS_FILE), settings
  )
  to_predict = [
    entry for entry in entries if not (outputs_are_current and predicted(entry))
  ]
  data.check_entries_decode(
    to_predict,
    data_list,
    apply_exif_orientation=apply_exif_orientation,
    progress=console.progress,
    list_problems=list_problems,
  )
  output_dirs.prepare_output_dir(
    os.path.join(save_dir, output_dirs.SETTINGS_FILE),
    settings,
    [
      os.path.join(gray_dir, '*.png'),
      os.path.join(color_dir, '*.png'),
      os.path.join(overlay_dir, '*.png'),
    ],
    'Predictions in',
  )
  if to_predict:
    _remove_stale_scores(save_dir)

  num_skipped = len(entries) - len(to_predict)
  num_done = 0
  start = time.time()
  for entry, example in console.progress(
    zip(
      to_predict,
      data.entries_dataset(
        to_predict,
        apply_exif_orientation=apply_exif_orientation,
      ),
    ),
    total=len(to_predict),
    desc='Predicting',
    unit='image',
  ):
    gray_path, color_path, *overlay_path = output_paths(entry)
    labels = predictors.predict_labels(
      predictor, example['image'], scales, flip
    )
    io_utils.save_png(gray_path, labels)
    io_utils.save_png(color_path, colormap_lib.colorize(labels, colormap))
    if save_overlay:
      image = np.clip(
        np.rint(example['image'].numpy() + data.IMG_MEAN), 0, 255
      ).astype(np.uint8)
      io_utils.save_png(
        overlay_path[0],
        overlay.draw_overlay(
          image,
          labels,
          colormap,
          overlay.overlay_segments(
            predictor, example['image'], labels, scales, flip
          ),
        ),
      )
    num_done += 1
  output_dirs.log_run_summary(
    'Predicted', num_done, num_skipped, time.time() - start
  )
  return num_done
