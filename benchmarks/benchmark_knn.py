"""Times the k-NN vote of test segments against a large prototype bank.

Default: a bank of 265k random unit prototypes of dimension 32 (about the
size of VOC train+ at 25 prototypes per image), 25 test segments per image,
k = 15, 21 classes. Times eval_utils.knn_label_votes inside a tf.function, as
segsort.inference calls it, and prints the median ms/image (network and
k-means excluded).

    python benchmarks/benchmark_knn.py [--images 200] [--chunk_size 65536]
"""

import argparse
import os
import sys
import time

if __package__ in (None, ''):
  # Run as a script: make the repository's packages importable.
  sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  )

from segsort import console  # pylint: disable=g-import-not-at-top
from segsort import flags  # pylint: disable=g-import-not-at-top


def _parse_args():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
    '--num_prototypes',
    type=flags.integer(1),
    default=265000,
    help='Prototypes in the bank.',
  )
  parser.add_argument(
    '--embedding_dim',
    type=flags.integer(1),
    default=32,
    help='Embedding channels.',
  )
  parser.add_argument(
    '--num_segments',
    type=flags.integer(1),
    default=25,
    help='Test segments (queries) per image.',
  )
  parser.add_argument(
    '--k',
    type=flags.integer(1),
    default=15,
    help='Nearest prototypes that vote.',
  )
  parser.add_argument(
    '--num_classes',
    type=flags.integer(1),
    default=21,
    help='Classes of the prototype labels.',
  )
  parser.add_argument(
    '--chunk_size',
    type=flags.integer(1),
    default=65536,
    help='Prototypes scored at a time.',
  )
  parser.add_argument(
    '--images', type=flags.integer(1), default=200, help='Timed images.'
  )
  parser.add_argument(
    '--warmup', type=flags.integer(0), default=5, help='Untimed images first.'
  )
  return parser.parse_args()


if __name__ == '__main__':
  # The flags are checked (and --help answered) before TensorFlow loads;
  # main() parses them again.
  _parse_args()
  console.quiet_tensorflow()

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from network.segsort import eval_utils  # pylint: disable=g-import-not-at-top,wrong-import-position


def _unit_rows(rng, rows, columns):
  vectors = rng.normal(size=(rows, columns)).astype(np.float32)
  return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main():
  args = _parse_args()
  rng = np.random.default_rng(0)
  bank_features = tf.constant(
    _unit_rows(rng, args.num_prototypes, args.embedding_dim)
  )
  bank_labels = tf.constant(
    rng.integers(0, args.num_classes, args.num_prototypes, dtype=np.int32)
  )
  queries = [
    tf.constant(_unit_rows(rng, args.num_segments, args.embedding_dim))
    for _ in range(args.warmup + args.images)
  ]

  @tf.function
  def votes(test_prototypes):
    return eval_utils.knn_label_votes(
      test_prototypes,
      bank_features,
      bank_labels,
      args.k,
      args.num_classes,
      args.chunk_size,
    )

  for image_queries in queries[: args.warmup]:
    votes(image_queries).numpy()
  milliseconds = []
  for image_queries in queries[args.warmup :]:
    start = time.perf_counter()
    votes(image_queries).numpy()
    milliseconds.append(1000 * (time.perf_counter() - start))
  # The median resists other processes sharing the machine; the mean not.
  print(
    'k-NN votes: %.2f ms/image median, %.2f mean (%d prototypes x %d '
    'dims, %d segments, k=%d, chunk %d, %d images, %d CPU cores, %s)'
    % (
      np.median(milliseconds),
      np.mean(milliseconds),
      args.num_prototypes,
      args.embedding_dim,
      args.num_segments,
      args.k,
      args.chunk_size,
      args.images,
      os.cpu_count(),
      'GPU' if tf.config.list_physical_devices('GPU') else 'CPU',
    )
  )


if __name__ == '__main__':
  main()
