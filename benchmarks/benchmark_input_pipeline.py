r"""Measures the training input pipeline's throughput (images per second).

By default a VOC-like set of 64 images of VOC's usual size (375x500 JPEGs)
is generated with tools/make_synthetic_voc.py in a temporary folder, and the
pipeline is timed at the original recipe's settings: 336x336 crops, batches
of 8, random scale, mirror and crop. Pass --data_dir and --data_list to time
a real data set instead.

Example:
  python benchmarks/benchmark_input_pipeline.py
"""

import argparse
import os
import sys
import tempfile
import time

if __package__ in (None, ''):
  # Run as a script: make the repository's packages importable.
  sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  )

from segsort import console  # pylint: disable=g-import-not-at-top
from segsort import flags  # pylint: disable=g-import-not-at-top

# segsort.data (TensorFlow) and tools.make_synthetic_voc are imported once
# the flags are parsed, so that --help is quick.


def measure(
  data_dir,
  data_list,
  crop_size,
  batch_size,
  num_batches,
  warmup_batches,
  unsupervised,
):
  """Times the training pipeline after a warm-up.

  Returns:
    Images per second of wall time, and CPU seconds (all threads) per image;
    the latter does not depend on what else the machine is running.
  """
  from segsort import data  # pylint: disable=g-import-not-at-top

  dataset = data.build_training_dataset(
    data_dir,
    data_list,
    crop_size,
    batch_size,
    unsupervised=unsupervised,
    num_classes=21,
    seed=0,
  )
  batches = iter(dataset)
  for _ in range(warmup_batches):
    next(batches)
  start, start_cpu = time.perf_counter(), time.process_time()
  for _ in range(num_batches):
    next(batches)
  num_images = num_batches * batch_size
  return (
    num_images / (time.perf_counter() - start),
    (time.process_time() - start_cpu) / num_images,
  )


def main(argv=None):
  console.quiet_tensorflow()
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--data_dir', help='DATAROOT (default: generate one).')
  parser.add_argument('--data_list', help='List file, with --data_dir.')
  parser.add_argument(
    '--num_images',
    type=flags.integer(1),
    default=64,
    help='Images to generate.',
  )
  parser.add_argument(
    '--image_size', default='375x500', help="Generated images' size, 'HxW'."
  )
  parser.add_argument(
    '--crop_size',
    type=flags.integer(1),
    default=336,
    help='Side of the square training crops, pixels.',
  )
  parser.add_argument(
    '--batch_size',
    type=flags.integer(1),
    default=8,
    help='Images in one batch.',
  )
  parser.add_argument(
    '--batches', type=flags.integer(1), default=100, help='Batches to time.'
  )
  parser.add_argument(
    '--warmup_batches',
    type=flags.integer(0),
    default=5,
    help='Untimed batches first.',
  )
  parser.add_argument(
    '--unsupervised', action='store_true', help='Also read oversegmentations.'
  )
  args = parser.parse_args(argv)
  from tools import make_synthetic_voc  # pylint: disable=g-import-not-at-top

  def run(data_dir, data_list):
    images_per_second, cpu_seconds_per_image = measure(
      data_dir,
      data_list,
      (args.crop_size, args.crop_size),
      args.batch_size,
      args.batches,
      args.warmup_batches,
      args.unsupervised,
    )
    print(
      '%.1f images/s (%dx%d crops, batch %d, %d CPUs, %s)'
      % (
        images_per_second,
        args.crop_size,
        args.crop_size,
        args.batch_size,
        os.cpu_count(),
        'unsupervised' if args.unsupervised else 'supervised',
      )
    )
    print(
      '%.1f ms of CPU time per image: at most %.0f images/s on %d idle '
      'CPUs'
      % (
        1000 * cpu_seconds_per_image,
        os.cpu_count() / cpu_seconds_per_image,
        os.cpu_count(),
      )
    )

  if args.data_dir:
    run(args.data_dir, args.data_list)
    return 0
  with tempfile.TemporaryDirectory() as root:
    print(
      'Generating %d %s images in %s' % (args.num_images, args.image_size, root)
    )
    lists = make_synthetic_voc.make_synthetic_voc(
      root,
      num_train=args.num_images,
      num_val=0,
      size=make_synthetic_voc.parse_size(args.image_size),
      with_oversegmentation=args.unsupervised,
      workers=os.cpu_count(),
    )
    run(root, lists['train'])
  return 0


if __name__ == '__main__':
  sys.exit(main())
