"""Softmax baseline inference: argmax of logits upsampled to the image.

    python -m segsort.inference_softmax --data_dir DATAROOT \
        --data_list dataset/voc12/val.txt --restore_from snapshots/softmax \
        --save_dir OUT/val_softmax [--scale_aug 0.5,0.75,1,1.25,1.5,1.75 --flip_aug]

Logits of sliding windows are averaged, upsampled bilinearly to the image's
size and turned into probabilities; with several scales or flips the
probabilities are summed before the argmax. Writes SAVE_DIR/gray/ID.png and
SAVE_DIR/color/ID.png (and with --save_overlay SAVE_DIR/overlay/ID.png);
images already done are skipped. Windows default to
720x720, a whole VOC image, as for single-scale SegSort.
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
    parser, default_input_size=inference_flags.DEFAULT_WINDOW_SIZE
  )
  inference_flags.add_output_flags(parser, default_scales=(1.0,))
  args = inference_flags.parse_flags(parser, argv)
  console.setup_logging()
  # Imported once the flags are parsed, so that --help is quick.
  from segsort import inference  # pylint: disable=g-import-not-at-top

  with inference.exit_on_known_errors():
    network, config, checkpoint_prefix = inference.restore_network(
      args.restore_from, inference.SOFTMAX_MODES
    )
    # Checked before settings_from_checkpoint, which would first warn that
    # it uses the flag's value.
    if args.num_classes not in (None, config.num_classes):
      raise errors.InferenceError(
        'Checkpoint %s predicts %d classes, not --num_classes %d.'
        % (checkpoint_prefix, config.num_classes, args.num_classes)
      )
    checkpoint_overrides = inference.settings_from_checkpoint(
      args, config, checkpoint_prefix
    )
    predictor = inference.SoftmaxPredictor(
      network,
      window_size=args.input_size,
      strides=args.strides,
      num_classes=args.num_classes,
    )
    inference.predict_list_from_flags(
      predictor, args, checkpoint_prefix, checkpoint_overrides
    )


if __name__ == '__main__':
  main()
