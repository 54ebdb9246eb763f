"""Single-scale SegSort inference: k-means segments labelled by k-NN prototypes.

    python -m segsort.inference_segsort --data_dir DATAROOT \
        --data_list dataset/voc12/val.txt --restore_from snapshots/run \
        --prototype_dir OUT/prototypes --save_dir OUT/val

Writes SAVE_DIR/gray/ID.png (class ids) and SAVE_DIR/color/ID.png (and with
--save_overlay SAVE_DIR/overlay/ID.png); images already done are skipped.
The default 720x720 window holds a whole VOC image, as in the recipe's
single-scale runs. The network, and the defaults of --num_classes,
--ignore_label, --num_clusters and --kmeans_iterations, come from the
checkpoint's config.json. See segsort/inference/ for the method.
"""

from segsort import console
from segsort import errors
from segsort import inference_flags
from segsort import run_record


def build_parser(description, default_scales, default_input_size):
  parser = run_record.ArgumentParser(description=description)
  inference_flags.add_model_and_data_flags(parser, default_input_size)
  inference_flags.add_embedding_dim_flag(parser)
  inference_flags.add_segment_flags(parser)
  inference_flags.add_knn_flags(parser)
  inference_flags.add_output_flags(parser, default_scales)
  return parser


@errors.one_line_on_interrupt
def main(
  argv=None,
  description=__doc__.split('\n')[0],
  default_scales=(1.0,),
  default_input_size=inference_flags.DEFAULT_WINDOW_SIZE,
):
  console.quiet_tensorflow()
  args = inference_flags.parse_flags(
    build_parser(description, default_scales, default_input_size), argv
  )
  console.setup_logging()
  # Imported once the flags are parsed, so that --help is quick.
  from segsort import inference  # pylint: disable=g-import-not-at-top

  with inference.exit_on_known_errors():
    predictor, _, checkpoint_prefix, checkpoint_overrides = (
      inference.segsort_predictor_from_flags(args)
    )
    inference.predict_list_from_flags(
      predictor, args, checkpoint_prefix, checkpoint_overrides
    )


if __name__ == '__main__':
  main()
