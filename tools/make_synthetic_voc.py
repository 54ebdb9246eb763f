r"""Generates a small VOC2012-layout data set that takes learning to segment.

Every image shows one to three objects on a cluttered background. An object's
class decides three things at once, each varying within the class:

* its shape (class 1 ellipse, 2 rectangle, 3 triangle, 4 diamond, 5 ring,
  6 cross, 7 star), drawn at a random size, aspect and rotation;
* its colour: a hue of its own (classes spread evenly around the colour
  circle, jittered by +-12 degrees), strong saturation, random brightness;
* its texture (class 1 stripes, 2 dots, 3 noise, 4 checkerboard, 5 waves,
  6 stripes, 7 dots) at a random scale and orientation.

Class 0 is the background: a low-saturation base colour with smooth
brightness variation and low-contrast blobs of the object shapes, some
faintly striped, so that neither shape nor edges alone tell objects from
clutter. Objects may occlude
each other. As in VOC, a void band (label 255) a few pixels wide covers every
boundary between different labels.

Output, under ROOT:

    VOC2012/JPEGImages/<split>_NNNNNN.jpg
    VOC2012/segcls/<split>_NNNNNN.png     class ids, 255 = void
    VOC2012/hed/<split>_NNNNNN.png        tools/make_oversegmentation.py
    train.txt, val.txt, train+.txt (= train), in ROOT unless --lists_dir

Example:
  python -m tools.make_synthetic_voc --root /tmp/synthetic_voc --num_train 64
"""

import argparse
import functools
import os
import sys

import cv2
import numpy as np

if __package__ in (None, ''):
  # Run as a script: make the repository's packages importable.
  sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  )

from segsort import console  # pylint: disable=g-import-not-at-top
from segsort import flags  # pylint: disable=g-import-not-at-top
from segsort import io_utils  # pylint: disable=g-import-not-at-top
from tools import folder_jobs  # pylint: disable=g-import-not-at-top
from tools import make_lists  # pylint: disable=g-import-not-at-top
from tools import make_oversegmentation  # pylint: disable=g-import-not-at-top

SHAPES = (
  'ellipse',
  'rectangle',
  'triangle',
  'diamond',
  'ring',
  'cross',
  'star',
)
TEXTURES = (
  'stripes',
  'dots',
  'noise',
  'checkerboard',
  'waves',
  'stripes',
  'dots',
)
MAX_NUM_CLASSES = len(SHAPES) + 1
IGNORE_LABEL = 255
DEFAULT_SIZE = (120, 160)
_SPLIT_CODES = {'train': 0, 'val': 1}
_HUE_JITTER_DEGREES = 12.0


def class_names(num_classes):
  """Returns the class names: 'background', then the shapes."""
  return ['background'] + list(SHAPES[: num_classes - 1])


def _hsv_to_rgb(hue_degrees, saturation, value):
  """Converts float HSV images or colours (degrees, [0, 1], [0, 1]) to RGB."""
  hsv = np.stack(np.broadcast_arrays(hue_degrees, saturation, value), axis=-1)
  return cv2.cvtColor(
    hsv.astype(np.float32).reshape(-1, 1, 3), cv2.COLOR_HSV2RGB
  ).reshape(hsv.shape)


def _texture(name, shape, rng):
  """Returns a texture pattern in [-1, 1] of `shape` (height, width)."""
  height, width = shape
  y, x = np.mgrid[0:height, 0:width].astype(np.float32)
  angle = rng.uniform(0, np.pi)
  along = x * np.cos(angle) + y * np.sin(angle)
  across = -x * np.sin(angle) + y * np.cos(angle)
  period = rng.uniform(5, 9)
  if name == 'stripes':
    return np.sign(np.sin(2 * np.pi * along / period))
  if name == 'dots':
    phase = np.stack([along, across]) % period - period / 2
    radius = period * rng.uniform(0.2, 0.3)
    return np.where(np.hypot(phase[0], phase[1]) < radius, -1.0, 0.4)
  if name == 'noise':
    return np.clip(rng.normal(0, 0.6, shape), -1, 1)
  if name == 'checkerboard':
    cells = np.floor(along / period) + np.floor(across / period)
    return np.where(cells % 2 == 0, 1.0, -1.0)
  if name == 'waves':
    return np.sin(2 * np.pi * (along + 2 * np.sin(across / period)) / period)
  raise ValueError('Unknown texture %r' % name)


def _polygon(shape_name, centre, radius, aspect, angle, rng):
  """Returns a polygonal shape's outline, int32 points `[N, 2]` of (x, y)."""
  if shape_name == 'rectangle':
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
  elif shape_name == 'diamond':
    corners = [(0, -1), (1, 0), (0, 1), (-1, 0)]
  elif shape_name == 'triangle':
    turns = (
      np.pi / 2 + np.array([0, 2, 4]) * np.pi / 3 + rng.uniform(-0.3, 0.3, 3)
    )
    corners = np.stack([np.cos(turns), -np.sin(turns)], 1)
  elif shape_name == 'cross':
    arm = 0.35
    corners = [
      (-arm, -1),
      (arm, -1),
      (arm, -arm),
      (1, -arm),
      (1, arm),
      (arm, arm),
      (arm, 1),
      (-arm, 1),
      (-arm, arm),
      (-1, arm),
      (-1, -arm),
      (-arm, -arm),
    ]
  elif shape_name == 'star':
    turns = np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
    corners = np.stack([radii * np.cos(turns), -radii * np.sin(turns)], 1)
  else:
    raise ValueError('Unknown polygon %r' % shape_name)
  corners = np.asarray(corners, np.float64) * [radius * aspect, radius]
  rotation = np.array(
    [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
  )
  return np.round(corners @ rotation.T + centre).astype(np.int32)


def _shape_mask(shape_name, size, rng):
  """Draws one object's mask at a random place, size, aspect and rotation."""
  height, width = size
  mask = np.zeros(size, np.uint8)
  radius = rng.uniform(0.15, 0.32) * min(height, width)
  centre = (rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height)
  aspect = rng.uniform(0.7, 1.4)
  angle = rng.uniform(0, np.pi)
  if shape_name in ('ellipse', 'ring'):
    axes = (int(round(radius * aspect)), int(round(radius)))
    centre_int = (int(round(centre[0])), int(round(centre[1])))
    cv2.ellipse(mask, centre_int, axes, np.degrees(angle), 0, 360, 1, -1)
    if shape_name == 'ring':
      hole = tuple(max(1, int(round(axis * 0.5))) for axis in axes)
      cv2.ellipse(mask, centre_int, hole, np.degrees(angle), 0, 360, 0, -1)
  else:
    cv2.fillPoly(
      mask, [_polygon(shape_name, centre, radius, aspect, angle, rng)], 1
    )
  return mask.astype(bool)


def _smooth_field(size, rng, cells=4):
  """A smooth random field in about [-1, 1] (bicubic upsampled noise)."""
  coarse = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
  return cv2.resize(coarse, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)


def _background(size, rng):
  """Paints clutter: a dull base colour, shading and low-contrast blobs."""
  hue = rng.uniform(0, 360)
  saturation = rng.uniform(0.0, 0.25)
  value = np.clip(
    rng.uniform(0.35, 0.75) + 0.12 * _smooth_field(size, rng), 0, 1
  )
  hue_map = np.full(size, hue, np.float32)
  saturation_map = np.full(size, saturation, np.float32)
  for _ in range(rng.integers(3, 8)):
    blob = _shape_mask(SHAPES[rng.integers(len(SHAPES))], size, rng)
    shade = rng.uniform(-0.12, 0.12)
    if rng.random() < 0.3:
      shade = shade + 0.04 * _texture('stripes', size, rng)
    value = np.where(blob, np.clip(value + shade, 0, 1), value)
    hue_map[blob] = (hue + rng.uniform(-40, 40)) % 360
    saturation_map[blob] = rng.uniform(0.0, 0.25)
  return _hsv_to_rgb(hue_map, saturation_map, value)


def _void_band(label, width):
  """Marks pixels within about width/2 of a boundary between labels."""
  kernel = np.ones((width, width), np.uint8)
  return cv2.dilate(label, kernel) != cv2.erode(label, kernel)


def render_example(size, num_classes, rng):
  """Renders one image and its label map.

  Args:
    size: (height, width).
    num_classes: The number of classes including background, in
      [2, MAX_NUM_CLASSES].
    rng: A numpy Generator.

  Returns:
    A uint8 RGB image `[H, W, 3]` and a uint8 label map `[H, W]`.
  """
  image = _background(size, rng)
  label = np.zeros(size, np.uint8)
  for _ in range(rng.integers(1, 4)):
    class_id = int(rng.integers(1, num_classes))
    mask = _shape_mask(SHAPES[class_id - 1], size, rng)
    hue = (
      (class_id - 1) * 360.0 / (num_classes - 1)
      + rng.uniform(-_HUE_JITTER_DEGREES, _HUE_JITTER_DEGREES)
    ) % 360
    value = np.clip(
      rng.uniform(0.55, 0.9)
      + rng.uniform(0.12, 0.2) * _texture(TEXTURES[class_id - 1], size, rng),
      0,
      1,
    )
    colour = _hsv_to_rgb(hue, rng.uniform(0.55, 0.95), value)
    image[mask] = colour[mask]
    label[mask] = class_id
  void_width = max(2, int(round(0.015 * min(size))))
  label[_void_band(label, void_width)] = IGNORE_LABEL
  image = cv2.GaussianBlur(image, (0, 0), 0.7)
  return np.round(image * 255).clip(0, 255).astype(np.uint8), label


def _write_example(job, root, size, num_classes, seed, with_oversegmentation):
  split, index, image_id = job
  rng = np.random.default_rng([seed, _SPLIT_CODES[split], index])
  image, label = render_example(size, num_classes, rng)
  voc = os.path.join(root, 'VOC2012')
  encoded, jpeg = cv2.imencode(
    '.jpg',
    cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
    [cv2.IMWRITE_JPEG_QUALITY, 92],
  )
  if not encoded:
    raise RuntimeError('Cannot encode %s as JPEG' % image_id)
  with io_utils.atomic_path(
    os.path.join(voc, 'JPEGImages', image_id + '.jpg')
  ) as temporary:
    jpeg.tofile(temporary)
  io_utils.save_png(os.path.join(voc, 'segcls', image_id + '.png'), label)
  if with_oversegmentation:
    # Oversegment the decoded JPEG, as the tool would from the files.
    decoded = cv2.cvtColor(
      cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    make_oversegmentation.save_segments(
      os.path.join(voc, 'hed', image_id + '.png'),
      make_oversegmentation.oversegment(decoded),
    )


def parse_size(text):
  """Parses 'H' (square) or 'HxW' of positive integers (argparse type)."""
  try:
    return flags.size_pair(text.lower().replace('x', ','))
  except argparse.ArgumentTypeError as error:
    raise argparse.ArgumentTypeError(
      "expected 'H' or 'HxW' of positive integers, got %r" % (text,)
    ) from error


def make_synthetic_voc(
  root,
  num_train=16,
  num_val=8,
  size=DEFAULT_SIZE,
  num_classes=4,
  seed=0,
  *,
  with_oversegmentation=True,
  lists_dir=None,
  workers=1,
  progress=False,
):
  """Writes a synthetic VOC-layout data set and its list files.

  The same arguments always give the same files.

  Args:
    root: The DATAROOT to write into (created if needed).
    num_train: The number of training images.
    num_val: The number of validation images.
    size: (height, width), or an integer for square images.
    num_classes: Classes including background, 2 to MAX_NUM_CLASSES.
    seed: The random seed.
    with_oversegmentation: Whether to write VOC2012/hed/ oversegmentations.
    lists_dir: Where to write the list files; `root` when None.
    workers: Parallel processes (1 renders in this process).
    progress: Whether to show a progress bar.

  Returns:
    A dict from list name ('train', 'val', 'train+') to list file path.
    List paths are relative to `root`.

  Raises:
    ValueError: If num_classes is out of range.
  """
  if not 2 <= num_classes <= MAX_NUM_CLASSES:
    raise ValueError(
      'num_classes must be in [2, %d], got %d' % (MAX_NUM_CLASSES, num_classes)
    )
  if isinstance(size, int):
    size = (size, size)
  size = (int(size[0]), int(size[1]))
  lists_dir = root if lists_dir is None else lists_dir
  jobs = [
    (split, index, '%s_%06d' % (split, index))
    for split, count in (('train', num_train), ('val', num_val))
    for index in range(count)
  ]
  write = functools.partial(
    _write_example,
    root=root,
    size=size,
    num_classes=num_classes,
    seed=seed,
    with_oversegmentation=with_oversegmentation,
  )
  folder_jobs.run_jobs(
    write, jobs, workers, progress, desc='Writing', unit='image'
  )
  hed = os.path.join(root, 'VOC2012', 'hed')
  if with_oversegmentation:
    # As the tool records them, so that it reuses these segments.
    make_oversegmentation.record_settings(
      hed, make_oversegmentation.contour_settings()
    )
  else:
    # Segments of an earlier set's images would pass for these images'.
    for path in [
      os.path.join(hed, image_id + '.png') for _, _, image_id in jobs
    ] + [os.path.join(hed, make_oversegmentation.SETTINGS_FILE)]:
      if os.path.exists(path):
        os.remove(path)
  list_lines = {'train': [], 'val': []}
  for split, _, image_id in jobs:
    list_lines[split].append(
      'VOC2012/JPEGImages/%s.jpg VOC2012/segcls/%s.png\n' % (image_id, image_id)
    )
  list_lines['train+'] = list_lines['train']
  return make_lists.write_lists(list_lines, lists_dir)


def main(argv=None):
  parser = flags.ArgumentParser(
    description=__doc__,
    formatter_class=flags.DescriptionAndDefaultsHelpFormatter,
  )
  parser.add_argument('--root', required=True, help='DATAROOT to write.')
  parser.add_argument(
    '--num_train',
    type=flags.integer(1),
    default=16,
    help='Number of training images.',
  )
  parser.add_argument(
    '--num_val',
    type=flags.integer(1),
    default=8,
    help='Number of validation images.',
  )
  parser.add_argument(
    '--size',
    type=parse_size,
    default='%dx%d' % DEFAULT_SIZE,
    help="Image size, 'H' or 'HxW'.",
  )
  parser.add_argument(
    '--num_classes',
    type=flags.integer(2, MAX_NUM_CLASSES),
    default=4,
    help='Classes including background (2 to %d).' % MAX_NUM_CLASSES,
  )
  parser.add_argument(
    '--seed',
    type=flags.integer(0),
    default=0,
    help='Random seed: the same seed writes the same set.',
  )
  parser.add_argument(
    '--lists_dir', help='Where to write list files (default: ROOT).'
  )
  parser.add_argument(
    '--no_oversegmentation', action='store_true', help='Skip VOC2012/hed/.'
  )
  parser.add_argument(
    '--workers',
    type=flags.integer(1),
    default=os.cpu_count(),
    help='Parallel worker processes that render the images.',
  )
  args = parser.parse_args(argv)
  console.setup_logging()
  list_paths = make_synthetic_voc(
    args.root,
    args.num_train,
    args.num_val,
    args.size,
    args.num_classes,
    args.seed,
    with_oversegmentation=not args.no_oversegmentation,
    lists_dir=args.lists_dir,
    workers=args.workers,
    progress=True,
  )
  for name, path in sorted(list_paths.items()):
    print('%s list: %s' % (name, path))
  return 0


if __name__ == '__main__':
  sys.exit(main())
