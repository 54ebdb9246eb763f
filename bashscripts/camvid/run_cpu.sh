#!/usr/bin/env bash
# The CPU quality benchmark on CamVid: supervised SegSort, unsupervised
# SegSort and the softmax baseline trained with the same network, crop, steps
# and schedule, evaluated on val (mIoU, per-class IoU, boundary F), over one
# or several training seeds.
#
# Usage (from anywhere):
#   bash bashscripts/camvid/run_cpu.sh
#   SEEDS="0 1 2" OUT=camvid_runs bash bashscripts/camvid/run_cpu.sh
# Environment:
#   DATAROOT   CamVid in the VOC layout with train.txt and val.txt
#              (tools/camvid_to_voc.py writes it; default ./data/camvid);
#              VOC2012/hed/ is made when missing. Every setting and every
#              file of train.txt and val.txt is checked before any work.
#   OUT        where everything goes (default ./camvid_output)
#   TRAIN_LIST, VAL_LIST
#              the annotated lists that train (and give prototypes) and
#              that are scored (default DATAROOT/train.txt, DATAROOT/val.txt)
#   SEEDS      training seeds (default 0); several give each method's mean
#              and spread
#   NUM_STEPS  training steps per method (default below)
#   NUM_CLASSES  classes of DATAROOT's labels (default 11, CamVid's)
#   OVERSEGMENTATION_THRESHOLD
#              make_oversegmentation's --threshold when VOC2012/hed/ is made
#              (default below; an existing hed/ is used as it is, and one
#              recorded at another threshold than a value set here is
#              refused)
#   SEGMENT_GROUPS, SEGMENT_GROUP_THRESHOLD
#              1: unsupervised SegSort groups its segments as a cut of the
#              same contours at SEGMENT_GROUP_THRESHOLD (default 0.1) would
#              (VOC2012/hed_groups/, completed on every run) and leaves a pixel's
#              group out of its loss; 0 (default): the original loss
#   and any setting of bashscripts/common/cpu_pipeline.sh (BACKBONE, CROP,
#   LEARNING_RATE, NUM_CLUSTERS, PROTOTYPE_CLUSTERS, INFERENCE_CLUSTERS, ...)
# Outputs: OUT/summary.json (bashscripts/common/summarize.py's schema), its
# chart OUT/summary.png and,
# per seed and method, checkpoints, config.json, TensorBoard logs,
# prototypes, predictions and metrics.json.
if [ -z "${BASH_VERSION:-}" ]; then  # sh: `set -o pipefail` would fail
  echo "error: run this script with bash, not sh: bash $0" >&2
  exit 1
fi
set -euo pipefail
# The variables set but empty, before the defaults below replace them:
# preflight.py refuses an empty setting (NUM_STEPS=$STEPS with STEPS unset).
SEGSORT_EMPTY_VARIABLES=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=$/\1/p' | paste -sd ' ' -)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=bashscripts/voc12/common.sh
source "${ROOT}/bashscripts/voc12/common.sh"
segsort_arguments "${BASH_SOURCE[0]}" "$@" || exit $(( $? == 2 ? 0 : 1 ))
# Paths are relative to the folder the script is started from.
if [[ " ${SEGSORT_EMPTY_VARIABLES} " == *" DATAROOT "* ]]; then
  # Checked here, as the folder is checked before the other settings.
  echo "error: DATAROOT set but empty: give it a value, or unset it for" \
       "its default" >&2
  exit 1
fi
DATAROOT=$(segsort_absolute "${DATAROOT:-data/camvid}")
OUT=$(segsort_absolute "${OUT:-camvid_output}")
if [ -n "${UNSUP_TRAIN_LIST:-}" ]; then
  UNSUP_TRAIN_LIST=$(segsort_absolute "${UNSUP_TRAIN_LIST}")
fi
if [ ! -d "${DATAROOT}" ]; then
  if [ -e "${DATAROOT}" ]; then
    echo "error: DATAROOT=${DATAROOT} is a file, not a CamVid folder" >&2
  else
    echo "error: DATAROOT=${DATAROOT} does not exist; write it with" \
         "tools/camvid_to_voc.py (README: \"Quality on real photographs:" \
         "the CamVid CPU benchmark\")" >&2
  fi
  exit 1
fi
TRAIN_LIST=$(segsort_absolute "${TRAIN_LIST:-${DATAROOT}/train.txt}")
VAL_LIST=$(segsort_absolute "${VAL_LIST:-${DATAROOT}/val.txt}")
# SegNet's release has a train.txt too, of other lines: its folders tell it
# from the VOC layout before the list check would fail on every line.
if [ -d "${DATAROOT}/trainannot" ] && [ ! -d "${DATAROOT}/VOC2012" ]; then
  echo "error: DATAROOT=${DATAROOT} is SegNet's CamVid release, not the VOC" \
       "layout: convert it first with python -m tools.camvid_to_voc" \
       "--camvid_dir $(printf '%q' "${DATAROOT}") --output_dir data/camvid" >&2
  exit 1
fi
if [ ! -e "${TRAIN_LIST}" ] && [ ! -d "${DATAROOT}/VOC2012" ]; then
  echo "error: DATAROOT=${DATAROOT} holds neither train.txt nor VOC2012/:" \
       "not a CamVid folder in the VOC layout (README: \"Quality on real" \
       "photographs: the CamVid CPU benchmark\" writes one with" \
       "tools/camvid_to_voc.py)" >&2
  exit 1
fi
# CamVid's 11; another set in the VOC layout names its own (checked against
# DATAROOT/classes.txt when it has one).
NUM_CLASSES=${NUM_CLASSES:-11}
# Chosen on CamVid val (README: "What held SegSort back"): k-means grids of
# the training segments' size (about 23 pixels: 16x21 on 360x480 frames).
# 2000 steps: one seed of the three methods fits 20 minutes on 2 cores, and
# SegSort stays above 45 mIoU (README: "One seed in 20 minutes").
NUM_STEPS=${NUM_STEPS:-2000}
# Finer than make_oversegmentation's default: segments that straddle fewer
# class boundaries (achievable segmentation accuracy on train 94.7% against
# 86.0%, tools/evaluate_oversegmentation.py) lift unsupervised SegSort
# (README: "Unsupervised SegSort: the contours hold it back").
OVERSEGMENTATION_THRESHOLD_SET=${OVERSEGMENTATION_THRESHOLD:+1}
OVERSEGMENTATION_THRESHOLD=${OVERSEGMENTATION_THRESHOLD:-0.03}
# A linear warm-up over the first 5% of the steps: from random weights, the
# full rate's first updates (the head's at 10x) set each seed off differently;
# with it, supervised SegSort's and softmax's mIoU spreads over 3 seeds fell
# to 2 points or less, while unsupervised SegSort's rose (README: "Warm-up:
# the benchmark as an instrument"). 100 of the default 2000; 5% of another
# NUM_STEPS (a short trial run too), which preflight checks before this is
# used.
if [[ -z "${WARMUP_STEPS:-}" ]]; then
  # Spaces around the number allowed, as preflight allows them.
  # At most 18 digits: bash's 64-bit arithmetic wraps around beyond
  # (preflight refuses such a NUM_STEPS by name).
  if [[ "${NUM_STEPS}" =~ ^[[:space:]]*([0-9]{1,18})[[:space:]]*$ ]]; then
    WARMUP_STEPS=$(( 10#${BASH_REMATCH[1]} / 20 ))
  else
    WARMUP_STEPS=100
  fi
fi
# Segment groups (unsupervised SegSort's --segment_groups, README: "Segment
# groups") are an option: over 5 seeds on val they moved unsupervised
# SegSort by less than the seeds do, so the original loss stays the default.
SEGMENT_GROUPS=${SEGMENT_GROUPS:-0}
# Colour jitter (--random_colour, README: "Colour jitter") is an option too:
# unsupervised SegSort gained nothing beyond the seeds' noise over 5 seeds,
# and the supervised methods lost 7 (SegSort) and 14 (softmax) points.
RANDOM_COLOUR=${RANDOM_COLOUR:-0}
# So is the weight average (--ema_decay, README: "Weight averaging"): at
# 0.995 over 3 seeds it lifted softmax by 1.75 mIoU but widened its spread,
# and left both SegSort methods unchanged (-0.15 and -0.07 on average); the
# cpu_pipeline.sh default, 0, stands.
# 160x160 crops cut into a 7x7 grid: segments of the 5x5-on-112x112 size
# (about 23 pixels), with twice the context per crop; on val this lifted
# SegSort by about 7 mIoU and softmax by about 4 at the same steps
# (README: "Larger crops"), for about twice the time per step.
CROP=${CROP:-160,160}
NUM_CLUSTERS=${NUM_CLUSTERS:-7}
WINDOW=${WINDOW:-360,480}
PROTOTYPE_CLUSTERS=${PROTOTYPE_CLUSTERS:-16,21}
INFERENCE_CLUSTERS=${INFERENCE_CLUSTERS:-16,21}
# Fewer votes than the original's 15: the prototype bank holds each class in
# proportion to its area, so 15 votes drown signs, fences and cyclists in
# their large neighbours; with 5, on val, both SegSort methods gain at the
# same trained models, unsupervised SegSort at every seed (README: "How many
# neighbours vote").
K_IN_NEAREST_NEIGHBORS=${K_IN_NEAREST_NEIGHBORS:-5}
cd "${ROOT}"
source bashscripts/common/cpu_pipeline.sh

for required in "${TRAIN_LIST}" "${VAL_LIST}" "${DATAROOT}/VOC2012/JPEGImages"; do
  [ -e "${required}" ] || { echo "error: ${required} does not exist" >&2; exit 1; }
done
cpu_pipeline_check "OVERSEGMENTATION_THRESHOLD=${OVERSEGMENTATION_THRESHOLD}" \
  ${OVERSEGMENTATION_THRESHOLD_SET:+--oversegmentation_threshold_given}
cpu_pipeline_make_out
if [[ " ${METHODS} " == *" segsort_unsup "* ]]; then
  # An existing folder is used as it is (preflight refuses a threshold set
  # for one cut at another).
  if [ ! -d "${DATAROOT}/VOC2012/hed" ]; then
    segsort_say "== Oversegmenting ${DATAROOT} into VOC2012/hed"
    segsort_python -m tools.make_oversegmentation --data_dir "${DATAROOT}" \
      --threshold "${OVERSEGMENTATION_THRESHOLD}" --workers 2
  fi
fi
cpu_pipeline_run
