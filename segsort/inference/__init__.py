"""The inference engine behind every inference entry point.

One module per stage, all of their public names importable from here:

    restore        the network a checkpoint was trained with
    windows        dense outputs of a whole image by sliding windows
    banks          prototype banks (load, check, digests)
    predictors     SegSort k-NN and softmax scores; multi-scale labels
    run_over_list  predicting a list of images into PNGs
    extraction     extracting the prototype bank of an annotated list
    output_dirs    resumable output directories and their settings files
    command_line   what the entry points do with their flags (the flags
                   themselves: segsort.inference_flags, without TensorFlow)

One image goes through these stages:

1. Dense network outputs by sliding windows (`DenseOutputRunner`). The image
   is zero-padded (zero is the mean colour after mean subtraction) to at least
   one window and to a multiple of the output stride; every window of the
   image goes through the network in one batched call; window offsets are
   multiples of the output stride, so each window's output cells coincide
   with cells of the image's output grid, where overlapping windows are
   averaged. The grid has `ceil(H / s)` by `ceil(W / s)` cells for an `H`x`W`
   image and output stride `s`; SegSort embeddings are normalised per window
   before averaging.
2. SegSort (`SegSortPredictor`): the embedding grid is clustered by vMF
   k-means on embedding plus (y, x) location in [0, 1) from a
   `num_clusters` grid of initial clusters; the embedding is upsampled
   bilinearly to the image's size and renormalised, as in the original
   release's inference, and every pixel joins the most similar cluster of
   its 2 x 2 surrounding cells (`eval_utils.segment_by_kmeans_on_grid`; the
   original ran all k-means iterations on every pixel, which costs
   output_stride**2 times more and made the fine grids of street scenes
   take seconds per image on a CPU), weighing its colour against the
   cluster's when `colour_weight` > 0 (this port's addition, which puts
   boundaries on the image's edges rather than midway between cells);
   every segment's
   prototype (its mean embedding direction) takes the votes of its k nearest
   prototypes of the annotated bank (`eval_utils.knn_label_votes`, chunked so
   that banks of millions fit), and the votes are painted onto the segment's
   pixels. Softmax baseline (`SoftmaxPredictor`): class probabilities of the
   logits upsampled bilinearly to the image's size.
3. Multi-scale (`predict_labels`): per-pixel scores of every scale and
   (optionally) left-right flip are resized to the image's size and summed as
   tensors; the label is the argmax (ties to the lowest class). With the
   single scale 1 and no flip, this is exactly single-scale inference, which
   therefore shares the code.

Prototype extraction (`extract_prototypes`) clusters at the resolution of
the embedding grid, as the original did at the network's output size: the
label of a grid cell is the label of the pixel at the cell's centre (nearest
neighbour). Location features are those of the image's own grid; the
original took them from the padded window grid although its embedding was
the unpadded image's, which shifted every location of a padded image.

Resumability: inference records its settings (checkpoint, prototype bank
digests, k, scales, flip, windows, k-means, colour map) in
`SAVE_DIR/settings.json`; with the same settings it skips, without decoding
them, the images whose gray and colour PNGs exist (writes are atomic, so
existing means complete), with other settings it deletes every prediction
and recomputes it. Prototype extraction caches every image's prototypes
under `SAVE_DIR/prototypes/cache/` by the same mechanism and writes the
final bank files only once all images are done, `prototype_sources.json`
last, recording the prototype count and the digest of every other bank
file, so that `load_prototype_bank` detects a bank rewritten only in part.
"""

# The k-means grid and the errors of inference, importable from here as
# before the package.
from network.segsort.common_utils import cluster_grid
from segsort.errors import InferenceError
from segsort.errors import exit_on_known_errors
from segsort.inference.banks import PROTOTYPE_ARRAY_FILES
from segsort.inference.banks import PROTOTYPE_BOXES_FILE
from segsort.inference.banks import PROTOTYPE_FEATURES_FILE
from segsort.inference.banks import PROTOTYPE_IMAGE_INDICES_FILE
from segsort.inference.banks import PROTOTYPE_LABELS_FILE
from segsort.inference.banks import PROTOTYPE_SOURCES_FILE
from segsort.inference.banks import PrototypeBank
from segsort.inference.banks import file_sha256
from segsort.inference.banks import load_prototype_bank
from segsort.inference.banks import warn_of_missing_classes
from segsort.inference_flags import FLAGS_FROM_CHECKPOINT
from segsort.inference_flags import MULTI_SCALES
from segsort.inference_flags import add_colormap_flag
from segsort.inference_flags import add_embedding_dim_flag
from segsort.inference_flags import add_knn_flags
from segsort.inference_flags import add_model_and_data_flags
from segsort.inference_flags import add_output_flags
from segsort.inference_flags import add_segment_flags
from segsort.inference_flags import parse_flags
from segsort.inference.command_line import predict_list_from_flags
from segsort.inference.command_line import restore_segsort_network_from_flags
from segsort.inference.command_line import segsort_predictor_from_flags
from segsort.inference.command_line import settings_from_checkpoint
from segsort.inference.command_line import window_and_segment_settings
from segsort.inference.extraction import extract_image_prototypes
from segsort.inference.extraction import extract_prototypes
from segsort.inference.extraction import labels_at_cell_centres
from segsort.inference.extraction import prototype_boxes
from segsort.inference.output_dirs import SETTINGS_FILE
from segsort.inference.output_dirs import prepare_output_dir
from segsort.inference.predictors import SegSortPredictor
from segsort.inference.predictors import check_colour_weight
from segsort.inference.predictors import check_integer_setting
from segsort.inference.predictors import SegmentNeighbours
from segsort.inference.predictors import SoftmaxPredictor
from segsort.inference.predictors import predict_labels
from segsort.inference.predictors import segment_embedding
from segsort.inference.restore import SEGSORT_MODES
from segsort.inference.restore import SOFTMAX_MODES
from segsort.inference.restore import check_embedding_dim
from segsort.inference.restore import restore_network
from segsort.inference.run_over_list import load_colormap
from segsort.inference.run_over_list import predict_list
from segsort.inference.windows import DenseOutputRunner
from segsort.inference.windows import dense_output_grid
from segsort.inference.windows import upsample_to_image
from segsort.inference.windows import window_offsets
