"""Times add_segsort_loss forward + backward at the recipe's size.

Recipe: batch 8, 336x336 crops -> 42x42 embeddings of dimension 32, VOC-like
labels (background plus one or two objects of 21 classes), 5x5 initial
clusters, 10 k-means iterations, 2 memory banks (full, as after the first
steps). Prints, for a tf.function and for the same function under XLA, the
median ms/step over --repeats rounds of --steps steps (the two alternate
round by round, and their ratio is printed round by round), and the peak
memory of a step beyond what was allocated before it (TensorFlow's allocator
statistics; on a CPU they need its BFC allocator, which this script turns
on).

    python benchmarks/benchmark_segsort_loss.py [--steps 10] [--repeats 5]
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
    '--batch_size', type=flags.integer(1), default=8, help='Images in one step.'
  )
  parser.add_argument(
    '--size',
    type=flags.integer(1),
    default=42,
    help='Embedding height and width.',
  )
  parser.add_argument(
    '--embedding_dim',
    type=flags.integer(1),
    default=32,
    help='Embedding channels.',
  )
  parser.add_argument(
    '--num_clusters',
    type=flags.integer(1),
    default=5,
    help='k-means grid n (n x n) of each image.',
  )
  parser.add_argument(
    '--kmeans_iterations',
    type=flags.integer(0),
    default=10,
    help='k-means iterations.',
  )
  parser.add_argument(
    '--num_banks',
    type=flags.integer(0),
    default=2,
    help='Memory banks of past batches.',
  )
  parser.add_argument(
    '--num_classes',
    type=flags.integer(1),
    default=21,
    help='Classes drawn in the synthetic labels.',
  )
  parser.add_argument(
    '--steps', type=flags.integer(1), default=10, help='Steps per timed round.'
  )
  parser.add_argument(
    '--repeats',
    type=flags.integer(1),
    default=5,
    help='Timed rounds; the median round is printed.',
  )
  parser.add_argument(
    '--no_xla',
    action='store_true',
    help='Skip the jit_compile=True measurement.',
  )
  return parser.parse_args()


if __name__ == '__main__':
  # The flags are checked (and --help answered) before TensorFlow loads;
  # main() parses them again.
  _parse_args()
  console.quiet_tensorflow()

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

# Before TensorFlow starts: the CPU allocator that keeps statistics.
os.environ.setdefault('TF_CPU_ALLOCATOR_USE_BFC', 'true')

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from network.segsort import common_utils  # pylint: disable=g-import-not-at-top,wrong-import-position
from network.segsort import train_utils  # pylint: disable=g-import-not-at-top,wrong-import-position


def _inputs(args):
  rng = np.random.default_rng(0)
  shape = [args.batch_size, args.size, args.size]
  embedding = tf.Variable(
    rng.normal(size=shape + [args.embedding_dim]), dtype=tf.float32
  )
  # Like VOC: background plus one or two objects (rectangles) per image.
  labels = np.zeros(shape + [1], np.int32)
  for image_labels in labels:
    for _ in range(rng.integers(1, 3)):
      top, left = rng.integers(0, args.size // 2, size=2)
      bottom, right = rng.integers(args.size // 2, args.size, size=2)
      image_labels[top:bottom, left:right] = rng.integers(1, args.num_classes)
  labels = tf.constant(labels)
  grid = common_utils.initialize_cluster_labels(
    [args.num_clusters] * 2, [args.size, args.size]
  )
  cluster_labels = tf.tile(
    grid[tf.newaxis, :, :, tf.newaxis], [args.batch_size, 1, 1, 1]
  )
  loc = tf.tile(
    common_utils.generate_location_features([args.size, args.size], 'float')[
      tf.newaxis
    ],
    [args.batch_size, 1, 1, 1],
  )
  return embedding, labels, cluster_labels, loc


def _measure_peak_memory(run_step):
  """Runs `run_step` and returns the peak memory it added, in MiB."""
  device = 'GPU:0' if tf.config.list_logical_devices('GPU') else 'CPU:0'
  tf.config.experimental.reset_memory_stats(device)
  before = tf.config.experimental.get_memory_info(device)['current']
  run_step()
  peak = tf.config.experimental.get_memory_info(device)['peak']
  return (peak - before) / 2**20


def _time_rounds(steps_by_name, steps, repeats):
  """Times the steps in alternating rounds.

  Rounds alternate between the steps, so that a load which comes and goes
  on a shared machine weighs on each alike and their ratio stays fair.

  Returns:
    {name: [milliseconds per step of each round]}.
  """
  rounds = {name: [] for name in steps_by_name}
  for _ in range(repeats):
    for name, step in steps_by_name.items():
      start = time.perf_counter()
      for _ in range(steps):
        loss = step()
      float(loss)
      rounds[name].append((time.perf_counter() - start) / steps * 1000)
  return rounds


def _build_step(args, inputs, jit_compile):
  """The loss forward + backward as a tf.function, compiled, banks filled."""
  embedding, labels, cluster_labels, loc = inputs
  capacity = args.num_clusters**2 * args.batch_size
  bank = train_utils.MemoryBank(args.num_banks, capacity, args.embedding_dim)

  @tf.function(jit_compile=jit_compile)
  def step():
    with tf.GradientTape() as tape:
      loss = train_utils.add_segsort_loss(
        embedding,
        labels,
        args.embedding_dim,
        255,
        10.0,
        cluster_labels,
        args.num_clusters,
        args.kmeans_iterations,
        args.num_banks,
        loc,
        bank,
      )
    gradient = tape.gradient(loss, embedding)
    return loss + 0 * tf.reduce_sum(gradient)

  # Compiles, and fills the banks as a running training would have.
  for _ in range(max(args.num_banks, 1)):
    float(step())
  return step


def main():
  args = _parse_args()
  inputs = _inputs(args)
  names = ['tf.function'] + ([] if args.no_xla else ['XLA (jit_compile=True)'])
  steps_by_name = {
    name: _build_step(args, inputs, jit_compile=name != 'tf.function')
    for name in names
  }
  peak_mib = {
    name: _measure_peak_memory(lambda step=step: float(step()))
    for name, step in steps_by_name.items()
  }
  rounds = _time_rounds(steps_by_name, args.steps, args.repeats)
  for name in names:
    print(
      'add_segsort_loss forward+backward, batch %d, %dx%d, dim %d, '
      '%dx%d clusters, %d iterations, %d banks, %s: %.1f ms/step '
      '(median of %d rounds of %d steps; min %.1f, max %.1f), peak '
      'memory %.0f MiB'
      % (
        args.batch_size,
        args.size,
        args.size,
        args.embedding_dim,
        args.num_clusters,
        args.num_clusters,
        args.kmeans_iterations,
        args.num_banks,
        name,
        np.median(rounds[name]),
        args.repeats,
        args.steps,
        min(rounds[name]),
        max(rounds[name]),
        peak_mib[name],
      ),
      flush=True,
    )
  if len(names) == 2:
    ratios = np.divide(rounds[names[1]], rounds[names[0]])
    print(
      'XLA / tf.function, round by round (rounds alternate): median %.2f '
      '(%.2f-%.2f)' % (np.median(ratios), ratios.min(), ratios.max())
    )


if __name__ == '__main__':
  main()
