"""Single-scale SegSort inference: k-means segments labelled by k-NN prototypes.

    python -m segsort.inference_segsort --data_dir DATAROOT \
        --data_list dataset/voc12/val.txt --restore_from snapshots/run \
        --prototype_dir OUT/prototypes --save_dir OUT/val

Writes SAVE_DIR/gray/ID.png (class ids) and SAVE_DIR/color/ID.png (and with
--save_overlay SAVE_DIR/overlay/ID.png); images already done are skipped.
The default 720x720 window holds a whole VOC image, as in the recipe's
single-scale runs. The network comes from the checkpoint's config.json. See segsort/inference.py for the method.
"""

import argparse

from segsort import console
from segsort import inference_flags
from segsort import run_record


def build_parser(description, default_scales, default_input_size):
  parser = run_record.ArgumentParser(
      description=description,
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  inference_flags.add_model_and_data_flags(parser, default_input_size)
  inference_flags.add_embedding_dim_flag(parser)
  inference_flags.add_segment_flags(parser)
  inference_flags.add_knn_flags(parser)
  inference_flags.add_output_flags(parser, default_scales)
  return parser


def main(argv=None, description=__doc__.split('\n')[0],
         default_scales=(1.0,),
         default_input_size=inference_flags.DEFAULT_WINDOW_SIZE):
  console.quiet_tensorflow()
  args = inference_flags.parse_flags(
      build_parser(description, default_scales, default_input_size), argv)
  console.setup_logging()
  # Imported once the flags are parsed, so that --help is quick.
  from segsort import inference  # pylint: disable=g-import-not-at-top
  with inference.exit_on_known_errors():
    network, config, checkpoint_prefix = inference.restore_network(
        args.restore_from, inference.SEGSORT_MODES, args.embedding_dim)
    bank = inference.load_prototype_bank(
        args.prototype_dir, config.embedding_dim, args.num_classes,
        checkpoint_prefix=checkpoint_prefix)
    predictor = inference.SegSortPredictor(
        network, bank, window_size=args.input_size, strides=args.strides,
        k_in_nearest_neighbors=args.k_in_nearest_neighbors,
        num_classes=args.num_classes, num_clusters=args.num_clusters,
        kmeans_iterations=args.kmeans_iterations)
    inference.predict_list_from_flags(predictor, args, checkpoint_prefix)


if __name__ == '__main__':
  main()
