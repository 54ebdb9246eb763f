"""Input pipelines for the VOC12 / SBD / oversegmentation data layout.

A data list holds one example per line, paths relative to a data directory:

    VOC2012/JPEGImages/2007_000032.jpg VOC2012/segcls/2007_000032.png

A line has 1 column (image only, for test sets), 2 columns (image and label)
or 3 columns (image, label and oversegmentation). Labels are single-channel
PNGs of class ids (grayscale by value, palette PNGs by palette index, as VOC's
SegmentationClass files) with 255 marking pixels to ignore; an
oversegmentation is a PNG (8 or 16 bit) holding one id per segment, and its
segment groups (unsupervised SegSort's `--segment_groups`) a PNG of the same
name in the sibling folder named with `_groups` (`segment_groups_path`).

Images and labels are decoded by Pillow inside `tf.numpy_function`, so that a
file that cannot be decoded, a palette PNG, or a label whose size differs from
its image is handled per file and reported with the list file, line number
and path. Augmentation runs as TensorFlow ops keyed by stateless random seeds,
so a seeded pipeline is reproducible.

One module per idea, all of their public names importable from here:

    lists          data lists: parsing, ListEntry, read_data_list
    labels         the label policy (values out of range) and LabelSurvey
    decoding       the files of an entry -> checked arrays
    list_checks    every file of a list read up front: check_training_list,
                   check_data_list, check_entries_decode,
                   oversized_crop_problem
    augmentation   scale, mirror, pad and crop (augment_example), and
                   colour jitter (jitter_colour)
    datasets       the tf.data pipelines: build_training_dataset,
                   entries_dataset
"""

from segsort.data.augmentation import IMG_MEAN
from segsort.data.augmentation import TRAINING_KEYS
from segsort.data.augmentation import augment_example
from segsort.data.augmentation import jitter_colour
from segsort.data.datasets import build_training_dataset
from segsort.data.datasets import entries_dataset
from segsort.data.decoding import check_segments_nest_in_groups
from segsort.data.decoding import decode_entry
from segsort.data.decoding import load_image
from segsort.data.decoding import load_label

# Private, yet re-exported: tests count the warnings against it.
from segsort.data.labels import _MAX_OUT_OF_RANGE_WARNINGS
from segsort.data.labels import LabelSurvey
from segsort.data.labels import ignore_out_of_range
from segsort.data.labels import out_of_range_mask
from segsort.data.list_checks import DataListReport
from segsort.data.list_checks import check_data_list
from segsort.data.list_checks import check_entries_decode
from segsort.data.list_checks import check_training_list
from segsort.data.list_checks import oversized_crop_problem
from segsort.data.lists import ListEntry
from segsort.data.lists import parse_data_list
from segsort.data.lists import read_data_list
from segsort.data.lists import segment_groups_path
