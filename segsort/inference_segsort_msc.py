"""Multi-scale SegSort inference: k-NN votes summed over scales and flips.

    python -m segsort.inference_segsort_msc --data_dir DATAROOT \
        --data_list dataset/voc12/val.txt --restore_from snapshots/run \
        --prototype_dir OUT/prototypes --save_dir OUT/val_msc --flip_aug

Every scale (default 0.5,0.75,1,1.25,1.5,1.75) and, with --flip_aug, its
left-right flip is segmented on its own; each segment's k-NN class votes are
painted onto its pixels, resized to the image and summed; a pixel takes the
class of most votes. The flags are those of segsort.inference_segsort, with
480x480 windows by default.
"""

from segsort import errors
from segsort import inference_flags
from segsort import inference_segsort

DEFAULT_SCALES = inference_flags.MULTI_SCALES


@errors.one_line_on_interrupt
def main(argv=None):
  inference_segsort.main(
    argv,
    description=__doc__.split('\n')[0],
    default_scales=DEFAULT_SCALES,
    default_input_size=(480, 480),
  )


if __name__ == '__main__':
  main()
