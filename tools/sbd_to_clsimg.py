r"""Converts SBD's class annotations (cls/*.mat) into grayscale PNGs (clsimg/).

The Semantic Boundaries Dataset stores each image's class segmentation as a
MATLAB struct `GTcls` whose field `Segmentation` holds class ids (0 =
background, 1..20 = VOC classes). train+ lists read them as
`sbd/dataset/clsimg/<id>.png`; this tool writes those PNGs with SciPy instead
of MATLAB.

Example:
  python -m tools.sbd_to_clsimg --data_dir DATAROOT
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
from segsort import flags  # pylint: disable=g-import-not-at-top
from segsort import io_utils  # pylint: disable=g-import-not-at-top
from tools import folder_jobs  # pylint: disable=g-import-not-at-top

# Background and the 20 VOC classes.
NUM_SBD_CLASSES = 21
VOID_LABEL = 255


def read_sbd_segmentation(mat_path):
  """Reads the class segmentation of an SBD cls/*.mat file.

  Args:
    mat_path: The .mat file.

  Returns:
    A uint8 array `[H, W]` of class ids.

  Raises:
    ValueError: Naming the file if it is no MATLAB file, has no
      GTcls.Segmentation, or that is not a non-empty 2-D array of class
      ids 0-20 (or 255, void).
  """
  # Imported where it is used, so that --help is quick.
  import scipy.io  # pylint: disable=g-import-not-at-top

  try:
    # Not squeezed: a segmentation of one row or column stays 2-D.
    contents = scipy.io.loadmat(mat_path, struct_as_record=False)
  # SciPy's MAT reader has no one error for a corrupt file: it raises
  # MatReadError, zlib.error, ValueError, TypeError, ... by where the damage
  # lies, so any failure to parse is this file's.
  except Exception as error:  # pylint: disable=broad-except
    raise ValueError('Cannot read %s: %s' % (mat_path, error)) from error
  try:
    segmentation = np.asarray(contents['GTcls'].flat[0].Segmentation)
  except (KeyError, AttributeError, IndexError) as error:
    raise ValueError('%s has no GTcls.Segmentation' % mat_path) from error
  if segmentation.ndim != 2 or not segmentation.size:
    raise ValueError(
      '%s: GTcls.Segmentation must be a non-empty 2-D array, got shape %s'
      % (mat_path, segmentation.shape)
    )
  if segmentation.dtype == bool or not np.issubdtype(
    segmentation.dtype, np.integer
  ):
    # Casting would silently round fractions and turn NaN into 0.
    raise ValueError(
      '%s: GTcls.Segmentation holds %s values; expected integer class ids'
      % (mat_path, segmentation.dtype)
    )
  values = np.unique(segmentation)
  # SBD's ids are VOC's 0-20; 255 (VOC's void) is kept for files marked
  # by hand. Anything else is a corrupt or foreign file, which training
  # would only warn of, as pixels ignored.
  foreign = values[
    ((values < 0) | (values > NUM_SBD_CLASSES - 1)) & (values != VOID_LABEL)
  ]
  if foreign.size:
    raise ValueError(
      '%s: GTcls.Segmentation must hold class ids 0-%d (or %d, void), got '
      '%s'
      % (
        mat_path,
        NUM_SBD_CLASSES - 1,
        VOID_LABEL,
        ', '.join(map(str, foreign[:10].tolist()))
        + (' and %d more' % (foreign.size - 10) if foreign.size > 10 else ''),
      )
    )
  return segmentation.astype(np.uint8)


def _convert(paths):
  mat_path, png_path = paths
  io_utils.save_png(png_path, read_sbd_segmentation(mat_path))


def main(argv=None):
  parser = flags.ArgumentParser(
    description=__doc__,
    formatter_class=flags.DescriptionAndDefaultsHelpFormatter,
  )
  parser.add_argument(
    '--data_dir',
    default='.',
    help='DATAROOT; folders default to DATAROOT/sbd/dataset/{cls,clsimg}.',
  )
  parser.add_argument('--cls_dir', help='Folder of SBD cls/*.mat files.')
  parser.add_argument(
    '--output_dir', type=flags.output_folder, help='Folder of output PNGs.'
  )
  folder_jobs.add_job_flags(parser)
  args = parser.parse_args(argv)
  console.setup_logging()

  sbd_dir = os.path.join(args.data_dir, 'sbd', 'dataset')
  cls_dir = folder_jobs.folder_flag(
    parser, args, 'cls_dir', os.path.join(sbd_dir, 'cls')
  )
  output_dir = folder_jobs.folder_flag(
    parser, args, 'output_dir', os.path.join(sbd_dir, 'clsimg'), output=True
  )
  jobs = [
    (
      os.path.join(cls_dir, name),
      os.path.join(output_dir, os.path.splitext(name)[0] + '.png'),
    )
    for name in folder_jobs.input_files(parser, cls_dir, '.mat')
  ]
  folder_jobs.run_file_jobs(
    _convert,
    jobs,
    args.overwrite,
    args.workers,
    output_dir,
    '%d .mat files, %d to convert into %s',
    # Read twice (reading is most of the work), so that every bad file
    # is named before any output.
    check=read_sbd_segmentation,
  )
  return 0


if __name__ == '__main__':
  sys.exit(main())
