"""Times a training step and its SegSort loss at a chosen size.

The step is the trainer's: forward, add_segsort_loss (k-means, prototypes,
memory banks), backward and the SGD update, on one synthetic batch that
stays in memory (no input pipeline). The loss alone is add_segsort_loss
forward + backward on an embedding of the network's output size. Prints
ms/step for each and the loss's share of the step.

Recipe size (slow on a CPU):
    python benchmarks/benchmark_train_step.py --batch_size 8 \
        --input_size 336,336 --backbone resnet_v1_101 --head pspnet
A quick CPU run:
    python benchmarks/benchmark_train_step.py --backbone mini \
        --batch_size 2 --input_size 160,160 --steps 5
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

from segsort import config as config_lib  # pylint: disable=g-import-not-at-top
from segsort import console  # pylint: disable=g-import-not-at-top
from segsort import flags  # pylint: disable=g-import-not-at-top


def _parse_args(argv):
  parser = argparse.ArgumentParser(
    description=__doc__.splitlines()[0],
    formatter_class=argparse.ArgumentDefaultsHelpFormatter,
  )
  parser.add_argument(
    '--backbone',
    default='resnet_v1_101',
    choices=config_lib.BACKBONES,
    help='Backbone network.',
  )
  parser.add_argument(
    '--head',
    default='pspnet',
    choices=config_lib.HEADS,
    help='Segmentation head.',
  )
  parser.add_argument(
    '--output_stride',
    type=flags.integer(1),
    default=8,
    choices=config_lib.OUTPUT_STRIDES,
    help='Output stride of the backbone.',
  )
  parser.add_argument(
    '--batch_size', type=flags.integer(1), default=8, help='Images in one step.'
  )
  parser.add_argument(
    '--input_size',
    type=flags.size_pair,
    default=(336, 336),
    help='"height,width" of crops.',
  )
  parser.add_argument(
    '--num_classes',
    type=flags.integer(1),
    default=21,
    help='Classes drawn in the synthetic labels.',
  )
  parser.add_argument(
    '--num_banks',
    type=flags.integer(0),
    default=2,
    help='Memory banks of past batches in the SegSort loss.',
  )
  parser.add_argument(
    '--steps',
    type=flags.integer(1),
    default=10,
    help='Timed steps (after --warmup_steps).',
  )
  parser.add_argument(
    '--warmup_steps',
    type=flags.integer(0),
    default=2,
    help='Untimed steps: tracing, compilation, autotuning.',
  )
  parser.add_argument(
    '--is_training',
    action='store_true',
    help='BatchNorm in training mode (stage 1).',
  )
  parser.add_argument(
    '--mixed_precision',
    action='store_true',
    help='Compute in float16 with float32 weights.',
  )
  parser.add_argument(
    '--jit_compile',
    action='store_true',
    help='Compile the whole step with XLA.',
  )
  return parser.parse_args(argv)


if __name__ == '__main__':
  # The flags are checked (and --help answered) before TensorFlow loads;
  # main() parses them again.
  _parse_args(sys.argv[1:])
  console.quiet_tensorflow()

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from network.segsort import common_utils  # pylint: disable=g-import-not-at-top,wrong-import-position
from network.segsort import train_utils  # pylint: disable=g-import-not-at-top,wrong-import-position
from segsort import summaries  # pylint: disable=g-import-not-at-top,wrong-import-position
from segsort import trainer as trainer_lib  # pylint: disable=g-import-not-at-top,wrong-import-position


def synthetic_batch(batch_size, input_size, num_classes, num_clusters, seed=0):
  """A batch shaped like the input pipeline's, with rectangles as objects.

  Returns:
    A dict of 'image', 'label', 'cluster_label' and 'loc_feature' tensors
    (see segsort.data.build_training_dataset).
  """
  rng = np.random.default_rng(seed)
  height, width = input_size
  labels = np.zeros([batch_size, height, width, 1], np.int32)
  for image_labels in labels:
    for _ in range(rng.integers(1, 4)):
      top, bottom = np.sort(rng.integers(0, height, size=2))
      left, right = np.sort(rng.integers(0, width, size=2))
      image_labels[top : bottom + 1, left : right + 1] = rng.integers(
        1, num_classes
      )
  grid = common_utils.initialize_cluster_labels(num_clusters, [height, width])
  locations = common_utils.generate_location_features([height, width], 'float')
  return {
    'image': tf.constant(
      rng.normal(0, 60, [batch_size, height, width, 3]), tf.float32
    ),
    'label': tf.constant(labels),
    'cluster_label': tf.tile(
      grid[tf.newaxis, :, :, tf.newaxis], [batch_size, 1, 1, 1]
    ),
    'loc_feature': tf.tile(locations[tf.newaxis], [batch_size, 1, 1, 1]),
  }


def time_train_steps(trainer, warmup_steps, steps):
  """Returns seconds per training step after warming up."""
  trainer.train(until_step=warmup_steps)
  start = time.perf_counter()
  trainer.train(until_step=warmup_steps + steps)
  return (time.perf_counter() - start) / steps


def time_loss(config, batch, output_size, memory_bank, warmup_steps, steps):
  """Returns seconds per add_segsort_loss forward + backward."""
  rng = np.random.default_rng(1)
  embedding = tf.Variable(
    rng.normal(
      size=[
        config.batch_size,
        output_size[0],
        output_size[1],
        config.embedding_dim,
      ]
    ),
    dtype=tf.float32,
  )
  shrunk = {
    name: summaries.resize_nearest(batch[name], output_size)
    for name in ('label', 'cluster_label', 'loc_feature')
  }

  @tf.function(jit_compile=config.jit_compile)
  def loss_step():
    with tf.GradientTape() as tape:
      loss = train_utils.add_segsort_loss(
        embedding,
        shrunk['label'],
        config.embedding_dim,
        config.ignore_label,
        config.concentration,
        shrunk['cluster_label'],
        config.num_clusters,
        config.kmeans_iterations,
        config.num_banks,
        shrunk['loc_feature'],
        memory_bank,
      )
    return loss, tape.gradient(loss, embedding)

  for _ in range(warmup_steps):
    loss_step()[1].numpy()
  start = time.perf_counter()
  for _ in range(steps):
    loss_step()[1].numpy()
  return (time.perf_counter() - start) / steps


def main(argv=None):
  args = _parse_args(argv)
  with tempfile.TemporaryDirectory() as snapshot_dir:
    config = config_lib.TrainConfig(
      mode='segsort',
      backbone=args.backbone,
      head=args.head,
      output_stride=args.output_stride,
      batch_size=args.batch_size,
      input_size=args.input_size,
      num_classes=args.num_classes,
      num_banks=args.num_banks,
      is_training=args.is_training,
      mixed_precision=args.mixed_precision,
      jit_compile=args.jit_compile,
      learning_rate=1e-4,
      num_steps=args.warmup_steps + args.steps + 1,
      save_pred_every=10**9,
      update_tb_every=10**9,
      snapshot_dir=snapshot_dir,
    )
    batch = synthetic_batch(
      args.batch_size, args.input_size, args.num_classes, config.num_clusters
    )
    trainer = trainer_lib.Trainer(
      config, dataset=tf.data.Dataset.from_tensors(batch).repeat()
    )
    step_seconds = time_train_steps(trainer, args.warmup_steps, args.steps)
    output_size = trainer.network(batch['image'][:1]).shape[1:3]
    loss_seconds = time_loss(
      config,
      batch,
      output_size,
      trainer.objective.memory_bank,
      args.warmup_steps,
      args.steps,
    )
  device = 'GPU' if tf.config.list_logical_devices('GPU') else 'CPU'
  print(
    '%s %s, batch %d, %dx%d crops -> %dx%d embeddings, %s%s%s'
    % (
      args.backbone,
      args.head,
      args.batch_size,
      args.input_size[0],
      args.input_size[1],
      output_size[0],
      output_size[1],
      device,
      ', mixed precision' if args.mixed_precision else '',
      ', XLA' if args.jit_compile else '',
    )
  )
  print(
    'train step (forward + backward + update): %8.1f ms/step, %.1f '
    'images/s' % (step_seconds * 1e3, args.batch_size / step_seconds)
  )
  print(
    'add_segsort_loss (forward + backward):    %8.1f ms/step, %.1f%% of '
    'the step' % (loss_seconds * 1e3, 100 * loss_seconds / step_seconds)
  )


if __name__ == '__main__':
  main()
