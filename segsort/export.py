"""Exports a trained run as a SavedModel: image in, labels out.

    python -m segsort.export --restore_from snapshots/run \
        --prototype_dir OUT/prototypes --output_dir OUT/saved_model

(`segsort-export` once installed.) The SavedModel holds the network's
weights and, for SegSort, the prototype bank; its serving signature takes a
uint8 RGB image of any size and returns its class ids, the labels of
single-scale inference (`segsort.api`, `segsort.inference_segsort`) with the
same settings:

    model = tf.saved_model.load('OUT/saved_model')
    labels = model.signatures['serving_default'](image=image)['labels']

The network, classes and k-means settings come from the run's config.json;
the window, strides and k default to those of the inference commands.
`assets.extra/segsort_export.json` in the SavedModel records the settings,
the checkpoint and the prototype bank. The SavedModel is written beside the
output directory and moved there when complete; an existing output
directory is refused.
"""

import os

from segsort import console
from segsort import errors
from segsort import flags
from segsort import inference_flags
from segsort import run_record


@errors.one_line_on_interrupt
def main(argv=None):
  console.quiet_tensorflow()
  parser = run_record.ArgumentParser(description=__doc__.split('\n')[0])
  inference_flags.add_checkpoint_flag(parser)
  inference_flags.add_knn_flags(parser, prototype_dir_required=False)
  parser.add_argument(
    '--output_dir',
    required=True,
    type=flags.output_folder,
    help='The SavedModel directory to create.',
  )
  inference_flags.add_window_flags(parser, inference_flags.DEFAULT_WINDOW_SIZE)
  inference_flags.add_segment_flags(parser)
  args = parser.parse_args(argv)
  flags.check_at_most(parser, args, 'strides', 'input_size')
  if os.path.exists(args.output_dir):
    parser.error(
      'argument --output_dir: %s exists; remove it or choose '
      'another' % args.output_dir
    )
  console.setup_logging()
  # Imported once the flags are parsed, so that --help is quick.
  from segsort import api  # pylint: disable=g-import-not-at-top
  from segsort import inference  # pylint: disable=g-import-not-at-top
  from segsort import saved_model  # pylint: disable=g-import-not-at-top

  with inference.exit_on_known_errors():
    segmenter = api.load(
      args.restore_from,
      args.prototype_dir,
      run_argument='--restore_from',
      window_size=args.input_size,
      strides=args.strides,
      k_in_nearest_neighbors=args.k_in_nearest_neighbors,
      num_clusters=args.num_clusters,
      kmeans_iterations=args.kmeans_iterations,
      colour_weight=args.colour_weight,
    )
    saved_model.export(segmenter, args.output_dir)
  print(
    'Wrote SavedModel %s (signature %r: uint8 image [H, W, 3] -> uint8 '
    'labels [H, W])' % (args.output_dir, saved_model.SIGNATURE_KEY)
  )


if __name__ == '__main__':
  main()
