r"""Converts VOC2012 SegmentationClass palette PNGs into grayscale segcls/ PNGs.

VOC's class annotations are palette ('P' mode) PNGs: each pixel stores a
palette index, which is the class id (255 = void border), and the palette
only paints it. Decoders that expand palettes (TensorFlow's decode_png, most
image viewers) see colours instead of ids; the grayscale copies written here
hold the ids themselves. Already-grayscale files are copied unchanged.

Example:
  python -m tools.voc_to_segcls --data_dir DATAROOT
"""

import os
import sys

import numpy as np

if __package__ in (None, ''):
  # Run as a script: make the repository's packages importable.
  sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  )

from segsort import console  # pylint: disable=g-import-not-at-top
from segsort import errors  # pylint: disable=g-import-not-at-top
from segsort import flags  # pylint: disable=g-import-not-at-top
from segsort import io_utils  # pylint: disable=g-import-not-at-top
from tools import folder_jobs  # pylint: disable=g-import-not-at-top


def read_class_ids(png_path):
  """Reads the class ids of a palette (or grayscale) label PNG.

  Args:
    png_path: A PNG file.

  Returns:
    A uint8 array `[H, W]`: palette indices of a palette PNG, values of a
    grayscale one.

  Raises:
    ValueError: Naming the file if it has colour channels (its ids are lost)
      or ids that do not fit the 8 bits of the output.
  """
  ids = io_utils.read_label_image(png_path, np.int64)
  if ids.size and (ids.min() < 0 or ids.max() > 255):
    raise errors.ImageFileError(
      '%s holds ids in [%d, %d]; 8-bit outputs hold [0, 255].'
      % (png_path, ids.min(), ids.max())
    )
  return ids.astype(np.uint8)


def _convert(paths):
  input_path, output_path = paths
  io_utils.save_png(output_path, read_class_ids(input_path))


def main(argv=None):
  parser = flags.ArgumentParser(
    description=__doc__,
    formatter_class=flags.DescriptionAndDefaultsHelpFormatter,
  )
  parser.add_argument(
    '--data_dir',
    default='.',
    help='DATAROOT; folders default to DATAROOT/VOC2012/'
    'SegmentationClass and DATAROOT/VOC2012/segcls.',
  )
  parser.add_argument('--input_dir', help='Folder of palette PNGs.')
  parser.add_argument(
    '--output_dir', type=flags.output_folder, help='Folder of output PNGs.'
  )
  folder_jobs.add_job_flags(parser)
  args = parser.parse_args(argv)
  console.setup_logging()

  voc_dir = os.path.join(args.data_dir, 'VOC2012')
  input_dir = folder_jobs.folder_flag(
    parser, args, 'input_dir', os.path.join(voc_dir, 'SegmentationClass')
  )
  output_dir = folder_jobs.folder_flag(
    parser, args, 'output_dir', os.path.join(voc_dir, 'segcls'), output=True
  )
  jobs = [
    (os.path.join(input_dir, name), os.path.join(output_dir, name))
    for name in folder_jobs.input_files(parser, input_dir, '.png')
  ]
  folder_jobs.run_file_jobs(
    _convert,
    jobs,
    args.overwrite,
    args.workers,
    output_dir,
    '%d PNGs, %d to convert into %s',
    # Read twice (reading is most of the work), so that every bad file
    # is named before any output.
    check=read_class_ids,
  )
  return 0


if __name__ == '__main__':
  sys.exit(main())
