#!/usr/bin/env bash
# The whole SegSort pipeline on a CPU in minutes, with the `mini` backbone:
# generate a synthetic VOC-layout set, train supervised SegSort, unsupervised
# SegSort and the softmax baseline, extract prototypes, run k-NN inference,
# benchmark, draw an explanation, and print one table. The steps are those of
# the CamVid benchmark (bashscripts/common/cpu_pipeline.sh), with settings
# for the generated set's small images.
#
# Usage (from anywhere; `make demo` runs it):
#   bash bashscripts/demo/run_demo.sh
# Environment:
#   OUT          where everything goes (default: ./demo_output)
#   DATAROOT     use this set instead of generating one: it holds VOC2012/
#                (JPEGImages, segcls, hed) and train.txt, val.txt lists in the
#                original release's format; NUM_CLASSES must be set with it
#   NUM_CLASSES  classes including background (default 4 for the generated set)
#   NUM_STEPS    training steps per method (default 600)
#   SEEDS        training seeds (default 0); several give means and spreads
#   WINDOW       inference window "height,width" (default 120,160, the
#                generated images' size; larger images are tiled)
#   and any setting of bashscripts/common/cpu_pipeline.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Paths are relative to the folder the script is started from.
absolute() { case "$1" in /*) echo "$1" ;; *) echo "${PWD}/$1" ;; esac; }
OUT=$(absolute "${OUT:-demo_output}")
if [ -n "${DATAROOT:-}" ]; then
  DATAROOT=$(absolute "${DATAROOT}")
fi
NUM_STEPS=${NUM_STEPS:-600}
# Whole generated images fit one window; larger sets are tiled.
WINDOW=${WINDOW:-120,160}
# Segments of the training segments' size (a 5x5 grid on 112x112 crops) on
# the generated 120x160 images.
PROTOTYPE_CLUSTERS=${PROTOTYPE_CLUSTERS:-5,7}
INFERENCE_CLUSTERS=${INFERENCE_CLUSTERS:-5,7}
cd "${ROOT}"
source bashscripts/common/cpu_pipeline.sh

if [ -n "${DATAROOT:-}" ]; then
  : "${NUM_CLASSES:?set NUM_CLASSES (classes including background) with DATAROOT}"
  for required in "${DATAROOT}/train.txt" "${DATAROOT}/val.txt" \
                  "${DATAROOT}/VOC2012/hed"; do
    [ -e "${required}" ] || { echo "error: ${required} does not exist" >&2; exit 1; }
  done
  TRAIN_LIST=${DATAROOT}/train.txt
  VAL_LIST=${DATAROOT}/val.txt
  cpu_pipeline_check
  cpu_pipeline_make_out
else
  NUM_CLASSES=${NUM_CLASSES:-4}
  DATAROOT=${OUT}/data
  TRAIN_LIST=${DATAROOT}/train.txt
  VAL_LIST=${DATAROOT}/val.txt
  cpu_pipeline_check --settings_only
  cpu_pipeline_make_out
  if [ ! -e "${VAL_LIST}" ]; then
    echo "== Generating a synthetic VOC-layout set in ${DATAROOT}"
    segsort_python -m tools.make_synthetic_voc --root "${DATAROOT}" \
      --num_train 96 --num_val 24 --num_classes "${NUM_CLASSES}" --seed 0
  fi
fi

cpu_pipeline_run

if [[ " ${METHODS} " == *" segsort "* ]]; then
  echo "== Explaining one validation image"
  first_seed_run=$(cpu_pipeline_run_dir "${SEEDS%% *}")/segsort
  # (A dry run has no list to read.)
  first_image=$(sed -n '1s/ .*//p' "${VAL_LIST}" 2>/dev/null || true)
  segsort_python -m segsort.explain --data_dir "${DATAROOT}" \
    --data_list "${TRAIN_LIST}" --image "${DATAROOT}/${first_image}" \
    --restore_from "${first_seed_run}" \
    --prototype_dir "${first_seed_run}/results/train/prototypes" \
    --input_size "${WINDOW}" --strides "${WINDOW}" \
    --num_clusters "${INFERENCE_CLUSTERS}" \
    --kmeans_iterations "${KMEANS_ITERATIONS}" \
    --k_in_nearest_neighbors "${K_IN_NEAREST_NEIGHBORS}" \
    --num_classes "${NUM_CLASSES}" --save_dir "${OUT}/explain"
fi
