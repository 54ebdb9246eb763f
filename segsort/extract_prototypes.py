"""Extracts the prototypes of annotated images for k-NN inference.

    python -m segsort.extract_prototypes --data_dir DATAROOT \
        --data_list dataset/voc12/train.txt --restore_from snapshots/run \
        --save_dir OUT

Every image is embedded by sliding windows, clustered by vMF k-means with
location at the embedding's resolution, and every cluster gives the
prototype of its majority label. Writes SAVE_DIR/prototypes/
prototype_features.npy [P, D], prototype_labels.npy [P] and, for
segsort.explain, prototype_image_indices.npy, prototype_boxes.npy and
prototype_sources.json. A rerun reuses the per-image cache. Unsupervised
checkpoints are evaluated the same way, from an annotated list. The
k-means grid defaults to the one the checkpoint's run set for prototypes
(--prototype_num_clusters of training, e.g. finer than inference's, as the
original's street-scene settings: 16x16 for prototypes, 8x8 for inference),
else to its --num_clusters; --num_classes, --ignore_label and
--kmeans_iterations default to the checkpoint's too. See
segsort/inference/ for details.
"""

from segsort import console
from segsort import errors
from segsort import inference_flags
from segsort import run_record


@errors.one_line_on_interrupt
def main(argv=None):
  console.quiet_tensorflow()
  parser = run_record.ArgumentParser(description=__doc__.split('\n')[0])
  inference_flags.add_model_and_data_flags(
    parser,
    data_list_help='List file of the annotated images the prototypes come '
    'from (IMAGE LABEL a line).',
  )
  inference_flags.add_segment_flags(parser, for_prototypes=True)
  inference_flags.add_embedding_dim_flag(parser)
  args = inference_flags.parse_flags(parser, argv)
  console.setup_logging()
  # Imported once the flags are parsed, so that --help is quick.
  from segsort import inference  # pylint: disable=g-import-not-at-top

  with inference.exit_on_known_errors():
    network, _, checkpoint_prefix, checkpoint_overrides = (
      inference.restore_segsort_network_from_flags(args)
    )
    inference.extract_prototypes(
      network,
      checkpoint_prefix,
      data_dir=args.data_dir,
      data_list=args.data_list,
      save_dir=args.save_dir,
      ignore_label=args.ignore_label,
      apply_exif_orientation=args.apply_exif_orientation,
      checkpoint_overrides=checkpoint_overrides,
      **inference.window_and_segment_settings(args),
    )


if __name__ == '__main__':
  main()
