"""Explains a SegSort prediction by the training segments it retrieved.

    python -m segsort.explain --restore_from snapshots/run \
        --prototype_dir OUT/prototypes --data_dir DATAROOT \
        --image_id 2007_000033 --save_dir OUT/explain

The image is segmented as in single-scale inference; for each of its
--num_segments largest segments the figure shows the segment and the
training segments of its nearest prototypes (crops of the training images at
the prototypes' boxes) with their labels and cosine similarities, i.e. the
evidence of the k-NN vote (the paper's interpretability claim). Writes
SAVE_DIR/ID.png and SAVE_DIR/ID.json (the same facts as numbers, with the
inference settings).
"""

import os

import cv2
import numpy as np

from segsort import colormap as colormap_lib
from segsort import console
from segsort import errors
from segsort import flags
from segsort import inference_flags
from segsort import io_utils
from segsort import metrics
from segsort import run_record

# TensorFlow and the modules that load it (segsort.data, segsort.inference)
# are imported where they are used, so that --help does not load them.

_CAPTION_HEIGHT = 28
_BACKGROUND_GREY = 40
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.33
# Pixels outside the shown segment are darkened to this fraction.
_DIMMING = 0.25


def _fit_tile(image, tile_size):
  """Resizes an RGB image to fit a square tile, letterboxed, keeping aspect."""
  height, width = image.shape[:2]
  scale = tile_size / max(height, width)
  resized = cv2.resize(
    image,
    (max(1, round(width * scale)), max(1, round(height * scale))),
    interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST,
  )
  tile = np.full((tile_size, tile_size, 3), _BACKGROUND_GREY, np.uint8)
  top = (tile_size - resized.shape[0]) // 2
  left = (tile_size - resized.shape[1]) // 2
  tile[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
  return tile


def _captioned(tile, lines):
  """Appends a caption strip of up to two text lines under a tile."""
  caption = np.zeros((_CAPTION_HEIGHT, tile.shape[1], 3), np.uint8)
  for line_index, line in enumerate(lines[:2]):
    cv2.putText(
      caption,
      line,
      (2, 11 + 13 * line_index),
      _FONT,
      _FONT_SCALE,
      (255, 255, 255),
      1,
      cv2.LINE_AA,
    )
  return np.concatenate([tile, caption], axis=0)


def _row(tiles, num_columns):
  """Concatenates captioned tiles left to right, padded to num_columns."""
  blank = np.zeros_like(tiles[0])
  return np.concatenate(tiles + [blank] * (num_columns - len(tiles)), axis=1)


class _TrainingImages:
  """Loads (and keeps) the training images that prototypes come from."""

  def __init__(self, bank, data_dir):
    self._bank = bank
    self._data_dir = data_dir
    self._images = {}

  def segment_crop(self, prototype_index):
    """Returns (crop RGB, image id) of a prototype's training segment."""
    source = self._bank.sources['images'][
      int(self._bank.image_indices[prototype_index])
    ]
    path = os.path.join(self._data_dir, source['image_path'])
    # pylint: disable=g-import-not-at-top
    from segsort import data

    # pylint: enable=g-import-not-at-top
    if path not in self._images:
      if not os.path.exists(path):
        raise errors.InferenceError(
          'Training image %s of prototype %d is missing; pass the --data_dir '
          'that prototypes were extracted from.' % (path, prototype_index)
        )
      # Boxes are in the pixels the extraction read.
      self._images[path] = data.load_image(
        path, self._bank.sources.get('apply_exif_orientation', False)
      )
    y0, x0, y1, x1 = self._bank.boxes[prototype_index]
    height, width = self._images[path].shape[:2]
    if y1 > height or x1 > width:
      # An image replaced since extraction: its crop would be empty or wrong.
      raise errors.InferenceError(
        'Training image %s of prototype %d is %dx%d, smaller than its '
        'segment (rows %d-%d, columns %d-%d) when the prototypes were '
        'extracted; extract them again from the images as they are now.'
        % (path, prototype_index, height, width, y0, y1, x0, x1)
      )
    return self._images[path][y0:y1, x0:x1], source['image_id']


def explain_image(
  predictor,
  bank,
  image_rgb,
  image_id,
  *,
  data_dir,
  num_segments=6,
  num_neighbours_shown=5,
  tile_size=112,
  colormap=None,
  class_names=None,
):
  """Builds the explanation figure and its facts for one image.

  Args:
    predictor: A SegSortPredictor over `bank`; its num_classes names the
      classes.
    bank: A PrototypeBank loaded with sources.
    image_rgb: A uint8 RGB array `[H, W, 3]`.
    image_id: The image's name, for captions.
    data_dir: The directory the bank's image paths are relative to.
    num_segments: How many of the largest segments to explain.
    num_neighbours_shown: How many nearest training segments to show each.
    tile_size: The side of every picture tile in pixels.
    colormap: A uint8 colour map `[num_colors, 3]`; VOC's when None.
    class_names: The `predictor.num_classes` names of the captions and
      facts; `metrics.class_names`' when None.

  Returns:
    figure: A uint8 RGB array.
    facts: A JSON-ready dict of the segments, votes and neighbours.
  """
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from segsort import data

  # pylint: enable=g-import-not-at-top
  if colormap is None:
    colormap = colormap_lib.voc_colormap()
  names = class_names or metrics.class_names(predictor.num_classes)
  image = tf.constant(image_rgb, tf.float32) - tf.constant(data.IMG_MEAN)
  neighbours = predictor.neighbours(image)
  segment_labels = np.argmax(neighbours.votes, axis=1)
  prediction = segment_labels[neighbours.segment_ids]
  segment_sizes = np.bincount(
    neighbours.segment_ids.ravel(), minlength=len(segment_labels)
  )
  largest = np.argsort(-segment_sizes, kind='stable')[:num_segments]
  training_images = _TrainingImages(bank, data_dir)

  rng = np.random.default_rng(0)
  segment_colours = rng.integers(0, 256, (len(segment_labels), 3), np.uint8)
  segments_overlay = (
    0.5 * image_rgb + 0.5 * segment_colours[neighbours.segment_ids]
  ).astype(np.uint8)
  num_columns = max(3, 1 + num_neighbours_shown)
  rows = [
    _row(
      [
        _captioned(_fit_tile(image_rgb, tile_size), [image_id]),
        _captioned(
          _fit_tile(segments_overlay, tile_size),
          ['%d segments' % len(segment_labels)],
        ),
        _captioned(
          _fit_tile(colormap_lib.colorize(prediction, colormap), tile_size),
          ['prediction'],
        ),
      ],
      num_columns,
    )
  ]
  facts = {
    'image_id': image_id,
    'num_segments': len(segment_labels),
    'segments': [],
  }
  for rank, segment in enumerate(largest):
    mask = neighbours.segment_ids == segment
    highlighted = np.where(
      mask[..., np.newaxis], image_rgb, image_rgb * _DIMMING
    ).astype(np.uint8)
    label = int(segment_labels[segment])
    votes = neighbours.votes[segment]
    tiles = [
      _captioned(
        _fit_tile(highlighted, tile_size),
        [
          'segment %d: %s' % (rank + 1, names[label]),
          '%d/%d votes' % (votes[label], votes.sum()),
        ],
      )
    ]
    segment_facts = {
      'segment': int(segment),
      'num_pixels': int(segment_sizes[segment]),
      'predicted_label': label,
      'predicted_name': names[label],
      'votes': votes.astype(int).tolist(),
      'neighbours': [],
    }
    for prototype_index, similarity in zip(
      neighbours.prototype_indices[segment], neighbours.similarities[segment]
    ):
      prototype_label = int(bank.labels[prototype_index])
      crop, source_id = training_images.segment_crop(prototype_index)
      segment_facts['neighbours'].append(
        {
          'prototype': int(prototype_index),
          'label': prototype_label,
          'name': names[prototype_label],
          'similarity': float(similarity),
          'image_id': source_id,
          'box': bank.boxes[prototype_index].astype(int).tolist(),
        }
      )
      if len(tiles) <= num_neighbours_shown:
        tiles.append(
          _captioned(
            _fit_tile(crop, tile_size),
            ['%s %.3f' % (names[prototype_label], similarity), source_id],
          )
        )
    rows.append(_row(tiles, num_columns))
    facts['segments'].append(segment_facts)
  return np.concatenate(rows, axis=0), facts


# The figure's integer flags: name, smallest value, default, help.
_FIGURE_FLAGS = (
  ('num_segments', 1, 6, 'Explain this many of the largest segments.'),
  (
    'num_neighbours_shown',
    0,
    5,
    "How many of each segment's nearest training segments to show "
    '(at most --k_in_nearest_neighbors; 0 shows the segments alone).',
  ),
  ('tile_size', 16, 112, 'Side of every picture tile in pixels.'),
)


def _find_image(args):
  # pylint: disable=g-import-not-at-top
  from segsort import data

  # pylint: enable=g-import-not-at-top
  if args.image:
    return args.image, os.path.splitext(os.path.basename(args.image))[0]
  if args.data_list:
    for entry in data.read_data_list(
      args.data_dir, args.data_list, require_labels=False
    ):
      if entry.image_id == args.image_id:
        return entry.image_path, entry.image_id
    raise errors.InferenceError(
      'Image id %s is not in %s.' % (args.image_id, args.data_list)
    )
  path = os.path.join(
    args.data_dir, 'VOC2012', 'JPEGImages', args.image_id + '.jpg'
  )
  if not os.path.exists(path):
    raise errors.InferenceError(
      '--image_id %s: no --data_list given and no image %s; give the list '
      'that names it, or --image' % (args.image_id, path)
    )
  return path, args.image_id


@errors.one_line_on_interrupt
def main(argv=None):
  console.quiet_tensorflow()
  parser = run_record.ArgumentParser(description=__doc__.split('\n')[0])
  which = parser.add_mutually_exclusive_group(required=True)
  which.add_argument('--image', help='Path of the image to explain.')
  which.add_argument(
    '--image_id',
    help='Id of the image to explain: the image of its line in --data_list '
    'when that is given (an id not in the list is refused), else '
    'DATA_DIR/VOC2012/JPEGImages/ID.jpg.',
  )
  # --data_dir is also the root of the training images the prototypes come
  # from; the window defaults to single-scale inference's.
  inference_flags.add_model_and_data_flags(
    parser,
    default_input_size=inference_flags.DEFAULT_WINDOW_SIZE,
    data_list_required=False,
  )
  inference_flags.add_embedding_dim_flag(parser)
  inference_flags.add_segment_flags(parser)
  inference_flags.add_knn_flags(parser)
  inference_flags.add_colormap_flag(parser)
  inference_flags.add_class_names_flag(parser, data_dir_default=True)
  for name, minimum, default, help_text in _FIGURE_FLAGS:
    parser.add_argument(
      '--' + name,
      type=flags.integer(minimum),
      default=default,
      help=help_text,
    )
  args = inference_flags.parse_flags(parser, argv)
  # Only the k that vote are retrieved: the default shows as many as there
  # are (the demo's K_IN_NEAREST_NEIGHBORS may be below it), more asked for
  # is refused.
  if args.num_neighbours_shown == parser.get_default('num_neighbours_shown'):
    args.num_neighbours_shown = min(
      args.num_neighbours_shown, args.k_in_nearest_neighbors
    )
  flags.check_at_most(
    parser, args, 'num_neighbours_shown', 'k_in_nearest_neighbors'
  )
  console.setup_logging()
  # pylint: disable=g-import-not-at-top
  from segsort import data
  from segsort import inference

  # pylint: enable=g-import-not-at-top
  with errors.exit_on_known_errors():
    predictor, bank, _, _ = inference.segsort_predictor_from_flags(
      args, with_sources=True
    )
    class_names = metrics.data_set_class_names(
      predictor.num_classes, args.class_names, args.data_dir
    )
    image_path, image_id = _find_image(args)
  figure_path = os.path.join(args.save_dir, image_id + '.png')
  facts_path = os.path.join(args.save_dir, image_id + '.json')
  for path in (figure_path, facts_path):
    # Before any work: a folder in the way would fail after it, and a PNG
    # explained into its own folder would be replaced by its figure.
    flags.check_derived_output(parser, '--save_dir', path)
    if os.path.exists(path) and os.path.samefile(path, image_path):
      parser.error(
        'argument --save_dir: %s is the image explained, which its figure '
        'would replace; choose another --save_dir' % path
      )
  with errors.exit_on_known_errors():
    figure, facts = explain_image(
      predictor,
      bank,
      data.load_image(image_path, args.apply_exif_orientation),
      image_id,
      data_dir=args.data_dir,
      num_segments=args.num_segments,
      num_neighbours_shown=args.num_neighbours_shown,
      tile_size=args.tile_size,
      colormap=inference.load_colormap(
        args.colormap, args.data_dir, args.num_classes
      ),
      class_names=class_names,
    )
  facts['image_path'] = image_path
  # The figure depends on them (k, grid, colour weight, bank): recorded so
  # that an explanation can be matched to the predictions it explains.
  facts['settings'] = predictor.settings()
  io_utils.save_png(figure_path, figure)
  io_utils.save_json(facts_path, facts)
  print('Wrote %s and its facts (.json)' % figure_path)


if __name__ == '__main__':
  main()
