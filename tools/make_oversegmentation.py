r"""Oversegments images into VOC2012/hed/ PNGs without MATLAB.

Unsupervised SegSort trains on the segments of a contour-based
oversegmentation (the original release used HED contours and MATLAB's
gPb-owt-ucm). This tool builds a comparable hierarchy with OpenCV and SciPy:

1. A contour-strength map: scale-normalised colour gradients (CIELAB, Sobel)
   averaged over several Gaussian scales, or the structured edge detector of
   OpenCV's contrib module when a model is given (`--sed_model`).
2. Watershed basins of the contour map around its regional minima (a
   minimum spanning forest, `scipy.sparse.csgraph`).
3. Hierarchical merging: the adjacent pair of regions with the weakest mean
   boundary strength is merged repeatedly; merge heights, made monotone, form
   an ultrametric contour map, which is cut at `--threshold` (or where
   `--num_segments` regions remain). Regions smaller than `--min_size` pixels
   are then merged into their weakest-bounded neighbour.

Segment ids are numbered 0, 1, ... in order of first appearance in row-major
order and saved as an 8-bit PNG (16-bit when there are 256 or more segments).

`--groups_of HED_DIR` groups existing segments instead: every image's
segments in HED_DIR/<id>.png are merged further up the same hierarchy (same
contours, same merging) until `--threshold`, and the groups written to
HED_DIR_groups/ by default. Every segment then lies in one group, as
unsupervised SegSort's `--segment_groups` needs (the CamVid benchmark's
`SEGMENT_GROUPS=1` groups segments cut at 0.03 at 0.1; README: "Segment
groups").

For diagnosis, `--oracle_label_dir` replaces the contours by the ground
truth: every image's segments are the 4-connected regions of equal value of
its label PNG (void regions included), the best oversegmentation contours
could give. Unsupervised SegSort trained on it measures how much of its gap
to supervised SegSort comes from the contours (README: "Unsupervised
SegSort").

Examples:
  python -m tools.make_oversegmentation --data_dir DATAROOT --workers 2
  python -m tools.make_oversegmentation --data_dir DATAROOT \
      --groups_of DATAROOT/VOC2012/hed --threshold 0.1
"""

import functools
import heapq
import json
import os
import sys

import cv2
import numpy as np
from PIL import Image

if __package__ in (None, ''):
  # Run as a script: make the repository's packages importable.
  sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  )

from segsort import console  # pylint: disable=g-import-not-at-top
from segsort import errors  # pylint: disable=g-import-not-at-top
from segsort import flags  # pylint: disable=g-import-not-at-top
from segsort import io_utils  # pylint: disable=g-import-not-at-top
from segsort import metrics  # pylint: disable=g-import-not-at-top
from tools import folder_jobs  # pylint: disable=g-import-not-at-top

DEFAULT_THRESHOLD = 0.1
DEFAULT_MIN_SIZE = 64
DEFAULT_SCALES = (1.0, 2.0, 4.0)

# Peak response of a scale-normalised (x sigma) Sobel filter to a unit step
# of a Gaussian-blurred image: 8 / sqrt(2 pi). Dividing by it and by 255
# makes contour strength the colour contrast of an edge as a fraction of the
# 8-bit range, independent of scale and image.
_SOBEL_STEP_RESPONSE = 8.0 / np.sqrt(2.0 * np.pi) * 255.0


def gradient_contours(image, scales=DEFAULT_SCALES):
  """Computes a multi-scale colour-gradient contour-strength map.

  Args:
    image: A uint8 RGB array `[H, W, 3]`.
    scales: Gaussian standard deviations (pixels) to average over.

  Returns:
    A float32 array `[H, W]` in [0, 1], about the CIELAB contrast of the
    strongest edge through each pixel.
  """
  lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab).astype(np.float32)
  strength = np.zeros(image.shape[:2], np.float32)
  for sigma in scales:
    blurred = cv2.GaussianBlur(lab, (0, 0), sigma)
    gradient_y = cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3)
    gradient_x = cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3)
    magnitude = np.sqrt(np.sum(gradient_y**2 + gradient_x**2, axis=2))
    strength += magnitude * sigma
  return np.minimum(strength / (len(scales) * _SOBEL_STEP_RESPONSE), 1.0)


@functools.lru_cache(maxsize=1)
def _structured_edge_detector(model_path):
  if not hasattr(cv2, 'ximgproc'):
    raise RuntimeError(
      'A structured edge model (--sed_model) needs cv2.ximgproc, which is '
      'in opencv-contrib-python(-headless), not in the installed OpenCV %s.'
      % cv2.__version__
    )
  return cv2.ximgproc.createStructuredEdgeDetection(model_path)


def structured_edge_contours(image, model_path):
  """Computes contour strength with OpenCV's structured edge detector.

  Args:
    image: A uint8 RGB array `[H, W, 3]`.
    model_path: The detector's model (e.g. OpenCV's model.yml.gz).

  Returns:
    A float32 array `[H, W]` in [0, 1].

  Raises:
    RuntimeError: If OpenCV lacks the contrib module cv2.ximgproc.
  """
  detector = _structured_edge_detector(model_path)
  return detector.detectEdges(image.astype(np.float32) / 255.0)


def regional_minima(elevation):
  """Labels the regional minima of an image.

  A regional minimum is a connected plateau whose every outside neighbour is
  higher. Comparing each pixel with its 3x3 neighbourhood alone would also
  take the inside of any plateau, e.g. a flat contour crest, for a minimum
  and grow spurious thin regions along contours.

  Args:
    elevation: An integer array `[H, W]`.

  Returns:
    An int32 array `[H, W]`, 1, 2, ... on the minima and 0 elsewhere, and the
    number of minima.
  """
  # SciPy is imported where it is used: loading it takes longer than the
  # whole --help of this tool and of those that import it.
  from scipy import ndimage  # pylint: disable=g-import-not-at-top

  height, width = elevation.shape
  neighbourhood = np.ones((3, 3), bool)
  # Pixels without a lower neighbour; 8-connected ones have equal values.
  flat = (
    ndimage.grey_erosion(elevation, footprint=neighbourhood, mode='nearest')
    == elevation
  )
  plateaus, num_plateaus = ndimage.label(flat, structure=neighbourhood)
  # A plateau drains, and is no minimum, where an equal neighbour outside
  # it has a lower neighbour.
  draining = np.zeros(num_plateaus + 1, bool)
  padded_elevation = np.pad(elevation, 1, mode='edge')
  padded_flat = np.pad(flat, 1, constant_values=True)
  for offset_y, offset_x in zip(*np.nonzero(neighbourhood)):
    if offset_y == 1 and offset_x == 1:
      continue
    window = (
      slice(offset_y, offset_y + height),
      slice(offset_x, offset_x + width),
    )
    equal_outside = ~padded_flat[window] & (
      padded_elevation[window] == elevation
    )
    draining[plateaus[flat & equal_outside]] = True
  draining[0] = True
  kept = np.flatnonzero(~draining)
  new_ids = np.zeros(num_plateaus + 1, np.int32)
  new_ids[kept] = np.arange(1, len(kept) + 1, dtype=np.int32)
  return new_ids[plateaus], len(kept)


def watershed_regions(contours):
  """Splits an image into the watershed basins of a contour map.

  Every pixel joins the regional minimum it reaches over the lowest pass,
  i.e. over the path whose highest contour value is smallest. These basins
  are the trees of a minimum spanning forest of the 4-connected pixel graph
  (edge weight: the larger contour value of its two pixels) rooted at the
  minima, computed here as a minimum spanning tree with all minima tied to
  one extra root node. (`scipy.ndimage.watershed_ift` does not give these
  basins: it hands pixels beyond a contour crest to the wrong side.)

  Args:
    contours: A float array `[H, W]` in [0, 1].

  Returns:
    An int32 array `[H, W]` of region ids in `[0, num_regions)`, and
    num_regions.
  """
  from scipy import sparse  # pylint: disable=g-import-not-at-top
  from scipy.sparse import csgraph  # pylint: disable=g-import-not-at-top

  # Minima of the 8-bit map ignore noise-level dips; the full-precision map
  # orders edges, so that flat stretches split along their middle rather
  # than by the order of tied edges.
  minima, num_regions = regional_minima(
    np.round(contours * 255).astype(np.uint8)
  )
  height, width = contours.shape
  num_pixels = height * width
  pixel = np.arange(num_pixels).reshape(height, width)
  level = contours.astype(np.float64)
  seeds = np.flatnonzero(minima)
  # Sparse graphs drop zero weights: pixel edges weigh level + 1, the root's
  # edges to the minima less than any of them.
  heads = np.concatenate(
    [
      pixel[:, :-1].ravel(),
      pixel[:-1, :].ravel(),
      np.full(len(seeds), num_pixels),
    ]
  )
  tails = np.concatenate([pixel[:, 1:].ravel(), pixel[1:, :].ravel(), seeds])
  weights = np.concatenate(
    [
      np.maximum(level[:, :-1], level[:, 1:]).ravel() + 1,
      np.maximum(level[:-1, :], level[1:, :]).ravel() + 1,
      np.full(len(seeds), 0.5),
    ]
  )
  graph = sparse.csr_matrix(
    (weights, (heads, tails)), shape=(num_pixels + 1, num_pixels + 1)
  )
  tree = csgraph.minimum_spanning_tree(graph).tocoo()
  # Without the root, the tree falls apart into one tree per minimum pixel.
  pixel_edges = (tree.row < num_pixels) & (tree.col < num_pixels)
  forest = sparse.csr_matrix(
    (
      np.ones(pixel_edges.sum()),
      (tree.row[pixel_edges], tree.col[pixel_edges]),
    ),
    shape=(num_pixels, num_pixels),
  )
  _, trees = csgraph.connected_components(forest, directed=False)
  minimum_of_tree = np.zeros(trees.max() + 1, np.int32)
  minimum_of_tree[trees[seeds]] = minima.ravel()[seeds]
  regions = minimum_of_tree[trees].reshape(height, width) - 1
  return regions, num_regions


def region_boundaries(regions, contours):
  """Measures the boundary between every pair of adjacent regions.

  A boundary is made of the 4-connected pixel pairs that straddle it; each
  pair contributes the larger contour strength of its two pixels.

  Args:
    regions: An int array `[H, W]` of region ids.
    contours: A float array `[H, W]`, the contour strength.

  Returns:
    pairs: An int64 array `[num_pairs, 2]` of adjacent ids (smaller first).
    strength_sums: A float64 array `[num_pairs]`, summed boundary strength.
    lengths: An int64 array `[num_pairs]`, boundary pixel pairs.
  """
  firsts, seconds, strengths = [], [], []
  for axis in (0, 1):
    size = regions.shape[axis]
    head = np.take(regions, np.arange(size - 1), axis=axis)
    tail = np.take(regions, np.arange(1, size), axis=axis)
    crossing = head != tail
    firsts.append(head[crossing])
    seconds.append(tail[crossing])
    strengths.append(
      np.maximum(
        np.take(contours, np.arange(size - 1), axis=axis)[crossing],
        np.take(contours, np.arange(1, size), axis=axis)[crossing],
      )
    )
  first = np.concatenate(firsts).astype(np.int64)
  second = np.concatenate(seconds).astype(np.int64)
  strength = np.concatenate(strengths).astype(np.float64)
  num_regions = int(regions.max()) + 1
  keys = np.minimum(first, second) * num_regions + np.maximum(first, second)
  unique_keys, pair_index = np.unique(keys, return_inverse=True)
  pairs = np.stack([unique_keys // num_regions, unique_keys % num_regions], 1)
  strength_sums = np.bincount(
    pair_index, weights=strength, minlength=len(unique_keys)
  )
  lengths = np.bincount(pair_index, minlength=len(unique_keys))
  return pairs, strength_sums, lengths


class _RegionGraph:
  """Region adjacency graph with boundary sums, merged in place."""

  def __init__(self, num_regions, sizes, pairs, strength_sums, lengths):
    self.parent = np.arange(num_regions)
    self.sizes = {region: int(size) for region, size in enumerate(sizes)}
    self.neighbours = {region: {} for region in range(num_regions)}
    self.heap = []
    for (first, second), strength_sum, length in zip(
      pairs.tolist(), strength_sums.tolist(), lengths.tolist()
    ):
      self.neighbours[first][second] = [strength_sum, length]
      self.neighbours[second][first] = self.neighbours[first][second]
      heapq.heappush(self.heap, (strength_sum / length, first, second))

  def boundary(self, first, second):
    strength_sum, length = self.neighbours[first][second]
    return strength_sum / length

  def pop_weakest(self):
    """Returns (strength, first, second) of the weakest boundary, or None."""
    while self.heap:
      strength, first, second = heapq.heappop(self.heap)
      # Entries of merged-away regions or of boundaries that grew since are
      # stale.
      if (
        second in self.neighbours.get(first, ())
        and self.boundary(first, second) == strength
      ):
        return strength, first, second
    return None

  def merge(self, first, second):
    """Merges two adjacent regions; returns the id the union keeps."""
    if len(self.neighbours[first]) < len(self.neighbours[second]):
      first, second = second, first
    kept = self.neighbours[first]
    del kept[second]
    for neighbour, boundary in self.neighbours.pop(second).items():
      if neighbour == first:
        continue
      del self.neighbours[neighbour][second]
      if neighbour in kept:
        kept[neighbour][0] += boundary[0]
        kept[neighbour][1] += boundary[1]
      else:
        kept[neighbour] = boundary
        self.neighbours[neighbour][first] = boundary
      heapq.heappush(
        self.heap,
        (
          self.boundary(first, neighbour),
          min(first, neighbour),
          max(first, neighbour),
        ),
      )
    self.sizes[first] += self.sizes.pop(second)
    self.parent[second] = first
    return first

  def labels(self):
    """Returns the final region of every initial region."""
    roots = self.parent.copy()
    while True:
      next_roots = roots[roots]
      if np.array_equal(next_roots, roots):
        return roots
      roots = next_roots


def merge_hierarchy(
  regions,
  num_regions,
  contours,
  threshold=DEFAULT_THRESHOLD,
  num_segments=None,
  min_size=DEFAULT_MIN_SIZE,
):
  """Merges regions by boundary strength and cuts the hierarchy.

  Args:
    regions: An int array `[H, W]` of ids in `[0, num_regions)`.
    num_regions: The number of regions.
    contours: A float array `[H, W]`, the contour strength.
    threshold: Boundaries with mean strength (ultrametric height) up to this
      are removed.
    num_segments: When given, merging goes on until this many segments
      remain, whatever the threshold.
    min_size: Segments smaller than this many pixels are then merged into the
      neighbour with the weakest boundary.

  Returns:
    An int array `[H, W]` of merged region ids (not renumbered), and the list
    of (height, first, second) merges in order, heights non-decreasing.
  """
  sizes = np.bincount(regions.ravel(), minlength=num_regions)
  graph = _RegionGraph(
    num_regions, sizes, *region_boundaries(regions, contours)
  )
  merges, height, remaining = [], 0.0, num_regions
  while num_segments is None or remaining > num_segments:
    weakest = graph.pop_weakest()
    if weakest is None:
      break
    strength, first, second = weakest
    if num_segments is None and strength > threshold:
      break
    height = max(height, strength)
    merges.append((height, first, second))
    graph.merge(first, second)
    remaining -= 1
  small = [
    (size, region) for region, size in graph.sizes.items() if size < min_size
  ]
  heapq.heapify(small)
  while small:
    size, region = heapq.heappop(small)
    if graph.sizes.get(region) != size or not graph.neighbours[region]:
      continue
    neighbour = min(
      graph.neighbours[region], key=lambda other: graph.boundary(region, other)
    )
    height = max(height, graph.boundary(region, neighbour))
    merges.append((height, region, neighbour))
    kept = graph.merge(region, neighbour)
    if graph.sizes[kept] < min_size:
      heapq.heappush(small, (graph.sizes[kept], kept))
  return graph.labels()[regions], merges


def number_by_first_appearance(segments):
  """Renumbers ids 0, 1, ... in order of first appearance, row-major.

  Args:
    segments: An int array `[H, W]`.

  Returns:
    An int32 array `[H, W]`.
  """
  _, first_index, inverse = np.unique(
    segments.ravel(), return_index=True, return_inverse=True
  )
  rank = np.empty(len(first_index), np.int32)
  rank[np.argsort(first_index)] = np.arange(len(first_index), dtype=np.int32)
  return rank[inverse].reshape(segments.shape)


def contour_map(image, scales=DEFAULT_SCALES, sed_model=None):
  """The contour strength `oversegment` and `group_segments` merge by.

  Args:
    image: A uint8 RGB array `[H, W, 3]`.
    scales: Gaussian scales of the gradient contour map.
    sed_model: An optional structured edge detection model file, used
      instead of gradients (needs cv2.ximgproc).

  Returns:
    A float32 array `[H, W]` in [0, 1].
  """
  image = np.ascontiguousarray(image, dtype=np.uint8)
  if sed_model:
    return structured_edge_contours(image, sed_model)
  return gradient_contours(image, scales)


def oversegment(
  image,
  threshold=DEFAULT_THRESHOLD,
  num_segments=None,
  min_size=DEFAULT_MIN_SIZE,
  scales=DEFAULT_SCALES,
  sed_model=None,
):
  """Oversegments an image by a contour-based region hierarchy.

  Args:
    image: A uint8 RGB array `[H, W, 3]`.
    threshold: The ultrametric height (mean boundary contour strength, about
      the CIELAB contrast / 255) below which regions are merged; larger gives
      fewer segments.
    num_segments: When given, the number of segments to stop merging at,
      instead of the threshold (fewer may remain after min_size merging).
    min_size: The smallest segment, in pixels.
    scales: Gaussian scales of the gradient contour map.
    sed_model: An optional structured edge detection model file, used
      instead of gradients (needs cv2.ximgproc).

  Returns:
    An int32 array `[H, W]` of segment ids `0, 1, ...` numbered in order of
    first appearance (row-major).
  """
  contours = contour_map(image, scales, sed_model)
  regions, num_regions = watershed_regions(contours)
  segments, _ = merge_hierarchy(
    regions,
    num_regions,
    contours,
    threshold=threshold,
    num_segments=num_segments,
    min_size=min_size,
  )
  return number_by_first_appearance(segments)


def group_segments(
  image,
  segments,
  threshold=DEFAULT_THRESHOLD,
  num_segments=None,
  scales=DEFAULT_SCALES,
  sed_model=None,
):
  """Groups an oversegmentation's segments higher up its region hierarchy.

  The segments are merged as `oversegment` merges watershed basins (the
  weakest mean boundary first, on the same contour map), so segments cut
  from these contours at a lower threshold are grouped exactly as a cut at
  `threshold` would join them, small segments aside.

  Args:
    image: A uint8 RGB array `[H, W, 3]`.
    segments: An int array `[H, W]` of non-negative segment ids.
    threshold: The ultrametric height below which segments are grouped.
    num_segments: When given, the number of groups to stop at instead.
    scales: Gaussian scales of the gradient contour map.
    sed_model: An optional structured edge detection model file.

  Returns:
    An int32 array `[H, W]` of group ids `0, 1, ...` numbered in order of
    first appearance (row-major); every segment lies in one group.
  """
  contours = contour_map(image, scales, sed_model)
  segments = np.asarray(segments, np.int64)
  groups, _ = merge_hierarchy(
    segments,
    int(segments.max()) + 1,
    contours,
    threshold=threshold,
    num_segments=num_segments,
    # Groups keep every segment: a small one is grouped by its boundaries.
    min_size=1,
  )
  return number_by_first_appearance(groups)


def save_segments(path, segments):
  """Writes segment ids as an 8-bit PNG, or 16-bit from 256 segments on."""
  dtype = np.uint8 if segments.max() < 256 else np.uint16
  with io_utils.atomic_path(path) as temporary:
    Image.fromarray(segments.astype(dtype)).save(temporary, format='PNG')


def _oversegment_file(paths, options, apply_exif_orientation=False):
  image_path, output_path = paths
  save_segments(
    output_path,
    oversegment(
      io_utils.read_rgb_image(image_path, apply_exif_orientation), **options
    ),
  )


def _check_segments_fit_image(paths):
  """Raises ImageFileError unless the segments decode at the image's size."""
  image_path, segments_path = paths
  if not os.path.lexists(segments_path):
    # Named as missing, not as a file that cannot be decoded.
    raise errors.ImageFileError('missing file %s' % segments_path)
  io_utils.check_fits_image(
    io_utils.read_label_image(segments_path, what='oversegmentation'),
    segments_path,
    image_path,
  )


def _group_segments_file(paths, options, apply_exif_orientation=False):
  (image_path, segments_path), output_path = paths
  save_segments(
    output_path,
    group_segments(
      io_utils.read_rgb_image(image_path, apply_exif_orientation),
      io_utils.read_label_image(
        segments_path,
        apply_exif_orientation=apply_exif_orientation,
        what='oversegmentation',
      ),
      **options,
    ),
  )


def label_components(label):
  """The oracle oversegmentation of a label map: its regions of equal value.

  Args:
    label: An int array `[H, W]` of label values (void included).

  Returns:
    An int32 array `[H, W]` of segment ids, one per 4-connected region of
    equal value, numbered by first appearance (row-major).
  """
  # pylint: disable=g-import-not-at-top
  from scipy import ndimage

  # pylint: enable=g-import-not-at-top
  segments = np.zeros(label.shape, np.int64)
  num_segments = 0
  for value in np.unique(label):
    regions, num_regions = ndimage.label(label == value)
    inside = regions > 0
    segments[inside] = regions[inside] + num_segments
    num_segments += num_regions
  return number_by_first_appearance(segments)


def _check_label_fits_image(paths):
  """Raises ImageFileError unless the label decodes at its image's size."""
  label_path, image_path = paths
  io_utils.check_fits_image(
    io_utils.read_label_image(label_path), label_path, image_path
  )


def _label_components_file(paths):
  (label_path, _), output_path = paths
  save_segments(
    output_path, label_components(io_utils.read_label_image(label_path))
  )


# Written into the output folder: the settings its oversegmentations were
# made with, so that a rerun with others does not keep old segments unnoticed.
SETTINGS_FILE = '.make_oversegmentation.json'
# Present while an --overwrite replaces oversegmentations of other settings,
# which until it completes may be left beside the new ones; the data lists'
# readers refuse such a folder.
OVERWRITE_MARK_FILE = io_utils.OVERSEGMENTATION_OVERWRITE_MARK_FILE


# The settings that name input folders or files. SETTINGS_FILE holds those
# within the DATAROOT relative to the output folder, so that a DATAROOT
# moved or copied whole keeps its record (`_portable_folders`); they are
# compared resolved (`_resolved_folders`), so that records of absolute paths
# (as this tool wrote them before) still match.
_FOLDER_SETTINGS = ('groups_of', 'oracle_label_dir', 'sed_model')


def _resolved_folders(settings, output_dir):
  """`settings` with its folders as real absolute paths (None stays None)."""
  if settings is None:
    return None
  return {
    name: os.path.realpath(os.path.join(output_dir, value))
    if name in _FOLDER_SETTINGS and value
    else value
    for name, value in settings.items()
  }


def _portable_folders(settings, output_dir):
  """`settings` as recorded: its folders within the DATAROOT of
  `output_dir` (DATAROOT/VOC2012/hed: two levels up) relative to
  `output_dir`, so that they move with it; others absolute, as they stay."""
  output_dir = os.path.realpath(output_dir)
  data_root = os.path.dirname(os.path.dirname(output_dir))

  def recorded(value):
    inside = data_root != os.path.dirname(data_root) and (
      os.path.commonpath([value, data_root]) == data_root
    )
    return os.path.relpath(value, output_dir) if inside else value

  return {
    name: recorded(value) if name in _FOLDER_SETTINGS and value else value
    for name, value in settings.items()
  }


def contour_settings(
  threshold=DEFAULT_THRESHOLD,
  num_segments=None,
  min_size=DEFAULT_MIN_SIZE,
  sed_model=None,
  apply_exif_orientation=False,
):
  """The settings of contour oversegmentations as SETTINGS_FILE records
  them (`oversegment`'s arguments; `threshold` is unused with
  `num_segments`)."""
  return {
    'threshold': None if num_segments else threshold,
    'num_segments': num_segments,
    'min_size': min_size,
    'sed_model': sed_model and os.path.abspath(sed_model),
    'apply_exif_orientation': apply_exif_orientation,
  }


def _settings(args, output_dir):
  """The flags that decide the segments, folders resolved (see
  `_resolved_folders`); SETTINGS_FILE records them portable."""
  if args.oracle_label_dir:
    return _resolved_folders(
      {'oracle_label_dir': os.path.abspath(args.oracle_label_dir)}, output_dir
    )
  settings = contour_settings(
    args.threshold,
    args.num_segments,
    args.min_size,
    args.sed_model,
    args.apply_exif_orientation,
  )
  if args.groups_of:
    # Groups keep every segment: --min_size does not apply.
    del settings['min_size']
    settings = {
      'groups_of': os.path.abspath(args.groups_of),
      **settings,
      # So that groups of segments since remade with other settings are
      # refused as groups of other settings, not kept.
      'segments': _resolved_folders(
        read_settings_record(args.groups_of), args.groups_of
      ),
    }
  return _resolved_folders(settings, output_dir)


def read_settings_record(folder):
  """The settings recorded in folder/SETTINGS_FILE, or None without one.

  A dict of `record_settings`: the contours' `threshold` (None when cut
  into `num_segments`), `min_size`, ..., and for groups `groups_of` and
  the `segments`' own record.

  Raises:
    SystemExit: Naming the file when it cannot be read.
  """
  path = os.path.join(folder, SETTINGS_FILE)
  try:
    with open(path) as stream:
      return json.load(stream)
  except FileNotFoundError:
    return None
  except (OSError, ValueError) as error:
    raise SystemExit('error: cannot read %s: %s' % (path, error)) from error


def _describe_settings(settings):
  return ' '.join(
    '--%s' % name
    if value is True
    else '(of segments made with %s)' % _describe_settings(value)
    if isinstance(value, dict)
    else '--%s %s' % (name, value)
    for name, value in settings.items()
    if value not in (None, False)
  )


def _check_earlier_settings(output_dir, settings, overwrite, output_names):
  """Refuses to mix oversegmentations of other settings into output_dir.

  Args:
    output_dir: The output folder.
    settings: This run's settings (`_settings`).
    overwrite: Whether this run remakes the outputs that exist.
    output_names: The PNG names this run makes (or, resuming, may make).

  Returns:
    (note, replacing, redo): a note when the folder holds oversegmentations
    of unknown settings (made before SETTINGS_FILE existed), which are
    kept, else None; whether this run replaces oversegmentations of other
    (or unknown) settings, so that an interruption must be marked
    (OVERWRITE_MARK_FILE); and whether to remake an existing output, a
    function of its path: when this run finishes an interrupted --overwrite
    of its own settings, only the outputs older than the mark.

  Raises:
    SystemExit: Naming both settings when the folder's differ; when an
      earlier --overwrite was interrupted and this run does not overwrite;
      when overwriting part of the folder would leave oversegmentations of
      other settings beside this run's.
  """
  existing = folder_jobs.files_with_extension(output_dir, '.png')
  if not existing:
    return None, False, lambda path: overwrite
  mark = os.path.join(output_dir, OVERWRITE_MARK_FILE)
  interrupted = os.path.exists(mark)
  if interrupted and not overwrite:
    raise SystemExit(
      'error: an --overwrite into %s was interrupted, so some of its '
      'oversegmentations may be of the earlier settings; run it again with '
      '--overwrite' % output_dir
    )
  try:
    recorded = _resolved_folders(read_settings_record(output_dir), output_dir)
  except SystemExit:
    if not overwrite:
      raise
    recorded = None  # Replaced by this run's record.
  if overwrite:
    replacing = interrupted or recorded != settings
    others = sorted(set(existing) - set(output_names))
    if replacing and others:
      if interrupted:
        kept = 'an interrupted --overwrite (of two settings)'
      elif recorded is None:
        kept = 'unknown settings'
      else:
        kept = 'other settings (%s)' % _describe_settings(recorded)
      raise SystemExit(
        'error: --overwrite would remake %d of the %d oversegmentations in '
        '%s and keep %d of %s (e.g. %s) beside them; remake all of them '
        '(without --data_list; remove those whose image is gone) or write '
        'into another --output_dir'
        % (
          len(existing) - len(others),
          len(existing),
          output_dir,
          len(others),
          kept,
          others[0],
        )
      )
    if interrupted and recorded == settings:
      # Finishing it: what it wrote after its mark has these settings.
      started = os.stat(mark).st_mtime_ns
      return None, True, lambda path: os.stat(path).st_mtime_ns < started
    return None, replacing, lambda path: True
  if recorded is None:
    return (
      (
        'note: the %d oversegmentations in %s were made with settings not '
        'recorded; they are kept (--overwrite remakes them)'
        % (len(existing), output_dir)
      ),
      False,
      lambda path: False,
    )
  if recorded != settings:
    raise SystemExit(
      'error: %s holds oversegmentations made with %s, not %s; pass '
      '--overwrite to remake them all, or write into another --output_dir'
      % (
        output_dir,
        _describe_settings(recorded),
        _describe_settings(settings),
      )
    )
  return None, False, lambda path: False


def record_settings(output_dir, settings, replacing=False):
  """Writes SETTINGS_FILE, the record of the settings that made the
  oversegmentations of `output_dir` (`contour_settings`, or `_settings`).

  Args:
    output_dir: The folder of the oversegmentations.
    settings: Their settings, folders resolved.
    replacing: Whether this run replaces oversegmentations of other
      settings: the folder is then marked (OVERWRITE_MARK_FILE) until the
      run completes.
  """
  mark = os.path.join(output_dir, OVERWRITE_MARK_FILE)
  if replacing and not os.path.exists(mark):
    # Its time tells a resumed run which outputs are already remade: just
    # after the newest earlier output's, so that on a file system of coarse
    # times no earlier output passes for remade (a remade one may pass for
    # earlier, and is remade again).
    with open(mark, 'w'):
      pass
    newest = max(
      os.stat(os.path.join(output_dir, name)).st_mtime_ns
      for name in folder_jobs.files_with_extension(output_dir, '.png')
    )
    os.utime(mark, ns=(newest + 1, newest + 1))
  # In the flags' order, which the refusal above names them in.
  io_utils.save_json(
    os.path.join(output_dir, SETTINGS_FILE),
    _portable_folders(settings, output_dir),
    sort_keys=False,
  )


def main(argv=None):
  parser = flags.ArgumentParser(
    description=__doc__,
    formatter_class=flags.DescriptionAndDefaultsHelpFormatter,
  )
  parser.add_argument(
    '--data_dir',
    default='.',
    help='DATAROOT; image and output folders default to '
    'DATAROOT/VOC2012/JPEGImages and DATAROOT/VOC2012/hed.',
  )
  parser.add_argument('--image_dir', help='Folder of input images.')
  parser.add_argument(
    '--output_dir', type=flags.output_folder, help='Folder of output PNGs.'
  )
  parser.add_argument(
    '--data_list', help='Only oversegment the images of this list file.'
  )
  parser.add_argument(
    '--threshold',
    type=flags.real(0, 1),
    help='Merge boundaries weaker than this (0..1; default %s).'
    % DEFAULT_THRESHOLD,
  )
  parser.add_argument(
    '--num_segments',
    type=flags.integer(1),
    help='Merge until this many segments remain instead.',
  )
  parser.add_argument(
    '--min_size',
    type=flags.integer(1),
    help='Smallest segment in pixels (default %d).' % DEFAULT_MIN_SIZE,
  )
  parser.add_argument(
    '--apply_exif_orientation',
    action='store_true',
    help='Turn images as their EXIF orientation asks (as '
    'training with this flag reads them).',
  )
  parser.add_argument(
    '--sed_model',
    type=flags.existing_file,
    help='OpenCV structured edge model (model.yml.gz); '
    'needs opencv-contrib-python.',
  )
  parser.add_argument(
    '--groups_of',
    metavar='HED_DIR',
    help='Group the segments of HED_DIR/<id>.png (e.g. '
    'DATAROOT/VOC2012/hed) up to --threshold instead of oversegmenting; '
    'written to HED_DIR_groups unless --output_dir is given (unsupervised '
    'SegSort\'s --segment_groups reads them there).',
  )
  parser.add_argument(
    '--oracle_label_dir',
    help='For diagnosis: segment every image into the regions of equal '
    'value of LABEL_DIR/<id>.png (e.g. DATAROOT/VOC2012/segcls) instead '
    'of by contours.',
  )
  folder_jobs.add_job_flags(
    parser, items='images', workers_help='Parallel processes.'
  )
  args = parser.parse_args(argv)
  if args.threshold is not None and args.num_segments is not None:
    parser.error(
      'argument --num_segments: give --threshold or --num_segments, not both'
    )
  # A flag that the chosen mode would ignore is refused rather than dropped.
  ignored_by_mode = (
    (
      '--oracle_label_dir',
      args.oracle_label_dir,
      (
        'groups_of',
        'threshold',
        'num_segments',
        'min_size',
        'sed_model',
        'apply_exif_orientation',
      ),
    ),
    ('--groups_of', args.groups_of, ('min_size',)),
  )
  for mode_flag, mode_given, ignored in ignored_by_mode:
    for name in ignored:
      if mode_given and getattr(args, name) not in (None, False):
        parser.error(
          'argument --%s: not with %s, which does not use it'
          % (name, mode_flag)
        )
  if args.threshold is None:
    args.threshold = DEFAULT_THRESHOLD
  if args.min_size is None:
    args.min_size = DEFAULT_MIN_SIZE
  console.setup_logging()

  image_dir = args.image_dir or os.path.join(
    args.data_dir, 'VOC2012', 'JPEGImages'
  )
  if args.groups_of:
    flags.check_folders_exist(parser, args, 'groups_of')
    if os.path.exists(os.path.join(args.groups_of, OVERWRITE_MARK_FILE)):
      parser.error(
        'argument --groups_of: an --overwrite into %s was interrupted; '
        'finish it before grouping its segments' % args.groups_of
      )
  output_dir = args.output_dir or (
    os.path.normpath(args.groups_of) + '_groups'
    if args.groups_of
    else os.path.join(args.data_dir, 'VOC2012', 'hed')
  )
  # --output_dir is checked when parsed; its default only now.
  flags.check_derived_output(parser, '--data_dir', output_dir, folder=True)
  if args.image_dir:
    flags.check_folders_exist(parser, args, 'image_dir')
  if args.oracle_label_dir:
    flags.check_folders_exist(parser, args, 'oracle_label_dir')
  # Writing into an input folder would replace the segments being grouped,
  # or put PNGs beside the images that every later run reads as images.
  for flag, input_dir in (
    ('--image_dir', image_dir),
    ('--groups_of', args.groups_of),
    ('--oracle_label_dir', args.oracle_label_dir),
  ):
    if input_dir and os.path.realpath(input_dir) == os.path.realpath(
      output_dir
    ):
      parser.error(
        'argument --output_dir: %s is the input folder of %s; write into '
        'another folder' % (output_dir, flag)
      )
  if not os.path.isdir(image_dir):
    parser.error(
      'argument --data_dir: no image folder %s (or give --image_dir)'
      % image_dir
    )
  if args.sed_model:
    try:  # Fails early, before any image, without contrib or on a bad model.
      _structured_edge_detector(args.sed_model)
    except (RuntimeError, cv2.error) as error:
      parser.error('argument --sed_model: %s' % ' '.join(str(error).split()))
  names = sorted(
    name
    for name in os.listdir(image_dir)
    if name.lower().endswith(io_utils.IMAGE_EXTENSIONS)
  )
  if args.data_list:
    try:
      wanted = metrics.list_image_ids(args.data_list)
    except ValueError as error:
      raise SystemExit('error: %s' % error) from error
    found = {os.path.splitext(name)[0] for name in names}
    absent = [image_id for image_id in wanted if image_id not in found]
    if absent:
      raise SystemExit(
        'error: %d image(s) of %s are not in %s: %s'
        % (
          len(absent),
          args.data_list,
          image_dir,
          errors.join_problems(absent, folder_jobs.MAX_REFUSALS_SHOWN),
        )
      )
    wanted = set(wanted)
    names = [name for name in names if os.path.splitext(name)[0] in wanted]
  if not names:
    raise SystemExit(
      'error: %s holds no image (%s)'
      % (image_dir, ', '.join(io_utils.IMAGE_EXTENSIONS))
    )
  image_ids = [os.path.splitext(name)[0] for name in names]
  first_name_of_id = {}
  for name, image_id in zip(names, image_ids):
    first = first_name_of_id.setdefault(image_id, name)
    if first != name:
      # Both would write hed/<id>.png.
      raise SystemExit(
        'error: image id %s is named twice in %s: %s and %s'
        % (image_id, image_dir, first, name)
      )
  settings = _settings(args, output_dir)
  segments_threshold = (settings.get('segments') or {}).get('threshold')
  if (
    args.groups_of
    and segments_threshold is not None
    and not args.num_segments
    and args.threshold <= segments_threshold
  ):
    print(
      'warning: --threshold %s is not above the %s that the segments of %s '
      'were cut at, so every group is one segment'
      % (args.threshold, segments_threshold, args.groups_of)
    )
  reuse_note, replacing, redo = _check_earlier_settings(
    output_dir,
    settings,
    args.overwrite,
    [image_id + '.png' for image_id in image_ids],
  )
  if reuse_note:
    print(reuse_note)
  # Recorded before the first segment, so that an interrupted run is resumed
  # only with its own settings; not over segments of unknown settings.
  record = (
    None
    if reuse_note
    else functools.partial(record_settings, output_dir, settings, replacing)
  )
  # One job per image: its inputs, and the segments (or groups) it writes.
  if args.oracle_label_dir:
    convert = _label_components_file
    summary = '%d images, %d to segment by their labels into %s'
    check = _check_label_fits_image

    def inputs(name, image_id):
      return (
        os.path.join(args.oracle_label_dir, image_id + '.png'),
        os.path.join(image_dir, name),
      )

  else:
    options = dict(
      threshold=args.threshold,
      num_segments=args.num_segments,
      sed_model=args.sed_model,
    )
    if args.groups_of:
      convert = _group_segments_file
      summary = '%d images, %d to group into %s'
      check = _check_segments_fit_image

      def inputs(name, image_id):
        return (
          os.path.join(image_dir, name),
          os.path.join(args.groups_of, image_id + '.png'),
        )

    else:
      convert = _oversegment_file
      options['min_size'] = args.min_size
      summary = '%d images, %d to oversegment into %s'
      # Reading an image costs little beside oversegmenting it.
      check = functools.partial(
        io_utils.read_rgb_image,
        apply_exif_orientation=args.apply_exif_orientation,
      )

      def inputs(name, image_id):
        del image_id  # The image alone is read.
        return os.path.join(image_dir, name)

    convert = functools.partial(
      convert,
      options=options,
      apply_exif_orientation=args.apply_exif_orientation,
    )
  folder_jobs.run_file_jobs(
    convert,
    [
      (inputs(name, image_id), os.path.join(output_dir, image_id + '.png'))
      for name, image_id in zip(names, image_ids)
    ],
    redo,
    args.workers,
    output_dir,
    summary,
    check=check,
    unit='image',
    before_writing=record,
    # Segments of unknown settings are kept, even when older than their
    # image: this run's settings would not match them.
    remake_outdated=reuse_note is None,
  )
  if replacing:
    os.remove(os.path.join(output_dir, OVERWRITE_MARK_FILE))
  if args.groups_of:
    _warn_if_nothing_grouped(args.groups_of, output_dir, image_ids)
  elif not args.oracle_label_dir:
    _warn_of_whole_images(output_dir, image_ids)
  return 0


def _warn_if_nothing_grouped(segments_dir, groups_dir, image_ids):
  """Warns when no image has fewer groups than segments.

  Segments cut at or above the grouping threshold, or by contours of
  unknown settings (a user's own HED maps, say), can make every group one
  segment; unsupervised SegSort's --segment_groups would then train the
  original loss while its run says otherwise.
  """
  for image_id in image_ids:
    name = image_id + '.png'
    segments = io_utils.read_label_image(
      os.path.join(segments_dir, name), what='oversegmentation'
    )
    groups = io_utils.read_label_image(
      os.path.join(groups_dir, name), what='segment groups'
    )
    if len(np.unique(groups)) < len(np.unique(segments)):
      return
  print(
    'warning: no segments were merged in any of the %d images of %s: every '
    'group is one segment (a higher --threshold merges them)'
    % (len(image_ids), groups_dir)
  )


def _warn_of_whole_images(segments_dir, image_ids):
  """Warns when every image is one segment.

  A --threshold of 1 or a --min_size beyond the images' pixels made every
  image one segment without a word; unsupervised SegSort would then have
  nothing to tell apart.
  """
  for image_id in image_ids:
    try:
      segments = io_utils.read_label_image(
        os.path.join(segments_dir, image_id + '.png'), what='oversegmentation'
      )
    except errors.ImageFileError:
      # A kept file this run did not make: the readers name it.
      return
    if segments.size and segments.min() != segments.max():
      return
  print(
    'warning: each of the %d images of %s is one segment: lower --threshold '
    'or --min_size' % (len(image_ids), segments_dir)
  )


if __name__ == '__main__':
  sys.exit(main())
