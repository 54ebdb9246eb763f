r"""Scores oversegmentations (VOC2012/hed/) against ground-truth labels.

Unsupervised SegSort learns that the pixels of one segment belong together,
so a segment that straddles two classes teaches it to pull them together.
This tool measures, on labelled images, how well an oversegmentation keeps
classes apart and how large its segments are, to choose
`tools.make_oversegmentation`'s settings on training data:

- achievable segmentation accuracy (ASA; Liu et al., "Entropy rate
  superpixel segmentation", CVPR 2011): the fraction of valid pixels that
  are labelled correctly when every segment takes its majority label, the
  best any labelling of the segments can do;
- boundary recall and precision: the ground-truth boundary pixels within
  `--boundary_tolerance` of a segment boundary, and the segment boundary
  pixels within it of a ground-truth boundary (as segsort.benchmark_by_mIoU
  scores boundaries);
- segments per image, and the pixel-weighted mean segment size: the size
  of the segment that a pixel drawn at random lies in.

Ground-truth boundaries are those of segsort/metrics.py: between class
ids, and the edges of ignore regions. The regions of equal label
(`make_oversegmentation --oracle_label_dir`) score an ASA and a boundary
recall of 100%.

Example:
  python -m tools.evaluate_oversegmentation --data_dir DATAROOT \
      --data_list DATAROOT/train.txt
"""

import dataclasses
import math
import os
import sys

import numpy as np

if __package__ in (None, ''):
  # Run as a script: make the repository's packages importable.
  sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  )

from segsort import console  # pylint: disable=g-import-not-at-top
from segsort import flags  # pylint: disable=g-import-not-at-top
from segsort import io_utils  # pylint: disable=g-import-not-at-top
from segsort import metrics  # pylint: disable=g-import-not-at-top
from tools import folder_jobs  # pylint: disable=g-import-not-at-top


@dataclasses.dataclass
class OversegmentationCounts:
  """Pixel and segment counts, summed over images before taking ratios.

  Attributes:
    best_labelled: Valid pixels whose segment's majority label is theirs.
    valid: Pixels whose ground truth is not the ignore label.
    pixels: All pixels.
    segments: Segments.
    squared_segment_sizes: The sum over segments of their size squared
      (pixels^2); divided by `pixels`, the pixel-weighted mean size.
    images: Images.
    boundaries: The metrics.BoundaryCounts of segment boundaries against
      ground-truth boundaries.
  """

  best_labelled: int = 0
  valid: int = 0
  pixels: int = 0
  segments: int = 0
  squared_segment_sizes: int = 0
  images: int = 0
  boundaries: metrics.BoundaryCounts = dataclasses.field(
    default_factory=metrics.BoundaryCounts
  )

  def __add__(self, other):
    return OversegmentationCounts(
      self.best_labelled + other.best_labelled,
      self.valid + other.valid,
      self.pixels + other.pixels,
      self.segments + other.segments,
      self.squared_segment_sizes + other.squared_segment_sizes,
      self.images + other.images,
      self.boundaries + other.boundaries,
    )

  def results(self):
    """The scores as a JSON-ready dict (None where a count is 0).

    Keys: achievable_segmentation_accuracy, boundary_recall and
    boundary_precision (in [0, 1]), segments_per_image,
    pixel_weighted_segment_size (pixels), num_images.
    """
    precision, recall, _ = self.boundaries.scores()
    return {
      'achievable_segmentation_accuracy': (
        self.best_labelled / self.valid if self.valid else None
      ),
      'boundary_recall': None if math.isnan(recall) else recall,
      'boundary_precision': None if math.isnan(precision) else precision,
      'segments_per_image': (
        self.segments / self.images if self.images else None
      ),
      'pixel_weighted_segment_size': (
        self.squared_segment_sizes / self.pixels if self.pixels else None
      ),
      'num_images': self.images,
    }


def oversegmentation_counts(
  segments, ground_truth, ignore_label=255, boundary_tolerance=2.0
):
  """Counts how one oversegmentation fits its ground truth.

  Args:
    segments: An integer array `[height, width]` of segment ids (any
      values; a segment is the pixels of one id, connected or not).
    ground_truth: An integer array `[height, width]` of class ids or
      `ignore_label`.
    ignore_label: The ground-truth id of pixels to leave out of the ASA and
      the boundary counts.
    boundary_tolerance: See metrics.tolerance_in_pixels.

  Returns:
    An OversegmentationCounts of one image.

  Raises:
    ValueError: If the two arrays differ in shape, or the ground truth holds
      a negative id.
  """
  segments = np.asarray(segments)
  ground_truth = np.asarray(ground_truth).astype(np.int64)
  if ground_truth.size and ground_truth.min() < 0:
    # Class ids are never negative; keying pairs by them would mix segments.
    raise ValueError(
      'the ground truth holds negative ids (down to %d)' % ground_truth.min()
    )
  if segments.shape != ground_truth.shape:
    raise ValueError(
      'segments are %s but the ground truth is %s'
      % (
        'x'.join(map(str, segments.shape)),
        'x'.join(map(str, ground_truth.shape)),
      )
    )
  _, segment_index = np.unique(segments, return_inverse=True)
  segment_index = segment_index.reshape(-1)
  sizes = np.bincount(segment_index)
  valid = ground_truth.reshape(-1) != ignore_label
  # Pixels per (segment, class) pair present, keyed segment * classes +
  # class (sparse: labels may be 16-bit).
  valid_labels = ground_truth.reshape(-1)[valid]
  num_keys = int(valid_labels.max()) + 1 if valid_labels.size else 1
  keys, pair_counts = np.unique(
    segment_index[valid] * num_keys + valid_labels, return_counts=True
  )
  majority = np.zeros(len(sizes), np.int64)
  np.maximum.at(majority, keys // num_keys, pair_counts)
  return OversegmentationCounts(
    best_labelled=int(majority.sum()),
    valid=int(np.count_nonzero(valid)),
    pixels=int(segments.size),
    segments=len(sizes),
    squared_segment_sizes=int(np.sum(sizes.astype(np.int64) ** 2)),
    images=1,
    boundaries=metrics.boundary_match_counts(
      segments, ground_truth, boundary_tolerance, ignore_label
    ),
  )


def evaluate_segment_dir(
  segment_dir,
  gt_dir,
  image_ids,
  ignore_label=255,
  boundary_tolerance=2.0,
  progress=True,
  locations=None,
):
  """Scores the `ID.png` oversegmentations of a folder against their labels.

  Args:
    segment_dir: A folder of `ID.png` segment-id maps (8 or 16 bit).
    gt_dir: A folder of `ID.png` ground-truth class-id maps.
    image_ids: The ids to score, a non-empty list.
    ignore_label: The ground-truth id of pixels to leave out.
    boundary_tolerance: See metrics.tolerance_in_pixels.
    progress: Whether to show progress (segsort.console.progress).
    locations: An optional dict from image id to where the id was given
      (`metrics.list_image_locations`), which starts the messages about its
      files.

  Returns:
    `OversegmentationCounts.results()` over all the images, with the
    ignore_label and boundary_tolerance they were scored with.

  Raises:
    ValueError: Naming, on one line, every missing file before any is read,
      else every undecodable or mismatched one (metrics.score_label_pairs).
  """
  counts = []
  metrics.score_label_pairs(
    [
      (
        os.path.join(segment_dir, image_id + '.png'),
        os.path.join(gt_dir, image_id + '.png'),
      )
      for image_id in image_ids
    ],
    lambda segments, ground_truth: counts.append(
      oversegmentation_counts(
        segments, ground_truth, ignore_label, boundary_tolerance
      )
    ),
    progress,
    kinds=('oversegmentation', 'ground-truth label'),
    locations=metrics.pair_locations(image_ids, locations),
  )
  results = sum(counts, OversegmentationCounts()).results()
  results.update(
    ignore_label=ignore_label, boundary_tolerance=boundary_tolerance
  )
  return results


def format_report(results):
  """The scores as lines of text, percentages where they are fractions.

  A score without evidence (None: no valid pixel, or no ground-truth
  boundary) reads 'n/a'; the boundary tolerance is named when the results
  hold it (`evaluate_segment_dir`'s do).
  """

  def percent(value):
    return 'n/a' if value is None else '%.2f%%' % (100 * value)

  def number(value, precision):
    return 'n/a' if value is None else '%.*f' % (precision, value)

  return '\n'.join(
    [
      'achievable segmentation accuracy: %s'
      % percent(results['achievable_segmentation_accuracy']),
      'boundary recall: %s precision: %s%s'
      % (
        percent(results['boundary_recall']),
        percent(results['boundary_precision']),
        ' (tolerance %s)'
        % metrics.describe_tolerance(results['boundary_tolerance'])
        if 'boundary_tolerance' in results
        else '',
      ),
      'segments per image: %s' % number(results['segments_per_image'], 1),
      'pixel-weighted mean segment size: %s pixels'
      % number(results['pixel_weighted_segment_size'], 0),
      'images: %d' % results['num_images'],
    ]
  )


def parse_args(argv=None):
  parser = flags.ArgumentParser(
    description=__doc__,
    formatter_class=flags.DescriptionAndDefaultsHelpFormatter,
  )
  parser.add_argument(
    '--data_dir',
    default='.',
    help='DATAROOT; the folders default to DATAROOT/VOC2012/hed and '
    'DATAROOT/VOC2012/segcls.',
  )
  parser.add_argument(
    '--segment_dir', help='Folder of ID.png oversegmentations.'
  )
  parser.add_argument(
    '--gt_dir', help='Folder of ID.png ground-truth class-id maps.'
  )
  parser.add_argument(
    '--data_list',
    help='Score only the images of this list (first column); '
    'default: every PNG of the segment folder.',
  )
  parser.add_argument(
    '--ignore_label',
    type=flags.integer(0),
    default=255,
    help='Ground-truth id of pixels to leave out.',
  )
  flags.add_boundary_tolerance_flag(parser)
  parser.add_argument(
    '--output_json',
    type=flags.output_file,
    help="Also write the scores as JSON here; '-' for stdout.",
  )
  args = parser.parse_args(argv)
  args.segment_dir = folder_jobs.folder_flag(
    parser,
    args,
    'segment_dir',
    os.path.join(args.data_dir, 'VOC2012', 'hed'),
  )
  args.gt_dir = folder_jobs.folder_flag(
    parser, args, 'gt_dir', os.path.join(args.data_dir, 'VOC2012', 'segcls')
  )
  return args


def _note_third_columns(data_list, segment_dir):
  """Notes list lines whose own oversegmentation (third column) is not the
  one scored: the list gives only the ids."""
  count = sum(
    len(io_utils.split_fields(line)) == 3
    for line in io_utils.read_list_lines(data_list)
  )
  if count:
    print(
      'note: %d line(s) of %s name an oversegmentation (third column); the '
      'ID.png of %s is scored instead' % (count, data_list, segment_dir)
    )


def main(argv=None):
  args = parse_args(argv)
  console.setup_logging()
  try:
    locations = None
    if args.data_list:
      # Messages about a listed image's files name its line.
      locations = metrics.list_image_locations(args.data_list)
      image_ids = list(locations)
      _note_third_columns(args.data_list, args.segment_dir)
    else:
      image_ids = metrics.png_ids(args.segment_dir, 'oversegmentation')
    results = evaluate_segment_dir(
      args.segment_dir,
      args.gt_dir,
      image_ids,
      args.ignore_label,
      args.boundary_tolerance,
      locations=locations,
    )
  except (OSError, ValueError) as error:
    raise SystemExit('error: %s' % error) from error
  if io_utils.print_scores(format_report(results), results, args.output_json):
    return 0
  if args.output_json:
    io_utils.save_json(args.output_json, results)
    print('Scores written to %s' % args.output_json)
  return 0


if __name__ == '__main__':
  sys.exit(main())
