"""Times add_segsort_loss forward + backward at the recipe's size.

Recipe: batch 8, 336x336 crops -> 42x42 embeddings of dimension 32, 5x5
initial clusters, 10 k-means iterations, 2 memory banks. Prints ms/step for a
tf.function and for the same function under XLA.

    python benchmarks/benchmark_segsort_loss.py [--steps 20]
"""

import argparse
import time

import numpy as np
import tensorflow as tf

from network.segsort import common_utils
from network.segsort import train_utils


def _parse_args():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch_size', type=int, default=8)
  parser.add_argument('--size', type=int, default=42,
                      help='Embedding height and width.')
  parser.add_argument('--embedding_dim', type=int, default=32)
  parser.add_argument('--num_clusters', type=int, default=5)
  parser.add_argument('--kmeans_iterations', type=int, default=10)
  parser.add_argument('--num_banks', type=int, default=2)
  parser.add_argument('--num_classes', type=int, default=21)
  parser.add_argument('--steps', type=int, default=20)
  parser.add_argument('--no_xla', action='store_true',
                      help='Skip the jit_compile=True measurement.')
  return parser.parse_args()


def _inputs(args):
  rng = np.random.default_rng(0)
  shape = [args.batch_size, args.size, args.size]
  embedding = tf.Variable(rng.normal(size=shape + [args.embedding_dim]),
                          dtype=tf.float32)
  # Like VOC: background plus one or two objects (rectangles) per image.
  labels = np.zeros(shape + [1], np.int32)
  for image_labels in labels:
    for _ in range(rng.integers(1, 3)):
      top, left = rng.integers(0, args.size // 2, size=2)
      bottom, right = rng.integers(args.size // 2, args.size, size=2)
      image_labels[top:bottom, left:right] = rng.integers(
          1, args.num_classes)
  labels = tf.constant(labels)
  grid = common_utils.initialize_cluster_labels(
      [args.num_clusters] * 2, [args.size, args.size])
  cluster_labels = tf.tile(grid[tf.newaxis, :, :, tf.newaxis],
                           [args.batch_size, 1, 1, 1])
  loc = tf.tile(common_utils.generate_location_features(
      [args.size, args.size], 'float')[tf.newaxis],
                [args.batch_size, 1, 1, 1])
  return embedding, labels, cluster_labels, loc


def _time_step(step, steps):
  step()
  start = time.perf_counter()
  for _ in range(steps):
    loss = step()
  float(loss)
  return (time.perf_counter() - start) / steps * 1000


def main():
  args = _parse_args()
  embedding, labels, cluster_labels, loc = _inputs(args)
  capacity = args.num_clusters ** 2 * args.batch_size
  for jit_compile in (False,) if args.no_xla else (False, True):
    bank = train_utils.MemoryBank(args.num_banks, capacity,
                                  args.embedding_dim)

    @tf.function(jit_compile=jit_compile)
    def step(bank=bank):
      with tf.GradientTape() as tape:
        loss = train_utils.add_segsort_loss(
            embedding, labels, args.embedding_dim, 255, 10.0,
            cluster_labels, args.num_clusters, args.kmeans_iterations,
            args.num_banks, loc, bank)
      gradient = tape.gradient(loss, embedding)
      return loss + 0 * tf.reduce_sum(gradient)

    milliseconds = _time_step(step, args.steps)
    print('add_segsort_loss forward+backward, batch %d, %dx%d, dim %d, '
          '%dx%d clusters, %d iterations, %d banks, jit_compile=%s: '
          '%.1f ms/step' % (args.batch_size, args.size, args.size,
                            args.embedding_dim, args.num_clusters,
                            args.num_clusters, args.kmeans_iterations,
                            args.num_banks, jit_compile, milliseconds))


if __name__ == '__main__':
  main()
