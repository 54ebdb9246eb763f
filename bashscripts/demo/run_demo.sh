#!/usr/bin/env bash
# The whole SegSort pipeline on a CPU in minutes, with the `mini` backbone:
# generate a synthetic VOC-layout set, train supervised SegSort, unsupervised
# SegSort and the softmax baseline, extract prototypes, run k-NN inference,
# benchmark, draw an explanation, and print one table.
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
#   WINDOW       inference window "height,width" (default 120,160, the
#                generated images' size; larger images are tiled)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-${ROOT}/.venv/bin/python}
[ -x "${PYTHON}" ] || PYTHON=python3
OUT=$(mkdir -p "${OUT:-demo_output}" && cd "${OUT:-demo_output}" && pwd)
NUM_STEPS=${NUM_STEPS:-600}
BATCH_SIZE=8
CROP=112,112
EMBEDDING_DIM=32
K_IN_NEAREST_NEIGHBORS=15
export PYTHONPATH=${ROOT}${PYTHONPATH:+:${PYTHONPATH}}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
cd "${ROOT}"

if [ -n "${DATAROOT:-}" ]; then
  : "${NUM_CLASSES:?set NUM_CLASSES (classes including background) with DATAROOT}"
  for required in "${DATAROOT}/train.txt" "${DATAROOT}/val.txt" \
                  "${DATAROOT}/VOC2012/hed"; do
    [ -e "${required}" ] || { echo "error: ${required} does not exist" >&2; exit 1; }
  done
else
  NUM_CLASSES=${NUM_CLASSES:-4}
  DATAROOT=${OUT}/data
  if [ ! -e "${DATAROOT}/val.txt" ]; then
    echo "== Generating a synthetic VOC-layout set in ${DATAROOT}"
    "${PYTHON}" -m tools.make_synthetic_voc --root "${DATAROOT}" \
      --num_train 96 --num_val 24 --num_classes "${NUM_CLASSES}" --seed 0
  fi
fi
TRAIN_LIST=${DATAROOT}/train.txt
VAL_LIST=${DATAROOT}/val.txt
# Whole generated images fit one window; larger sets are tiled.
WINDOW=${WINDOW:-120,160}

common_train_flags=(--backbone mini --data_dir "${DATAROOT}"
  --data_list "${TRAIN_LIST}" --batch_size "${BATCH_SIZE}"
  --input_size "${CROP}" --num_steps "${NUM_STEPS}"
  --num_classes "${NUM_CLASSES}" --save_pred_every "${NUM_STEPS}"
  --update_tb_every 100 --random_mirror --random_scale --random_crop
  --is_training --random_seed 0)
window_flags=(--data_dir "${DATAROOT}" --input_size "${WINDOW}"
  --strides "${WINDOW}" --num_classes "${NUM_CLASSES}")

# k-NN inference and benchmark of a SegSort model: prototypes from the
# annotated training list, predictions for the validation list.
evaluate_segsort() {
  local run=$1
  "${PYTHON}" -m segsort.extract_prototypes "${window_flags[@]}" \
    --data_list "${TRAIN_LIST}" --restore_from "${run}" \
    --save_dir "${run}/results/train"
  "${PYTHON}" -m segsort.inference_segsort "${window_flags[@]}" \
    --data_list "${VAL_LIST}" --restore_from "${run}" \
    --prototype_dir "${run}/results/train/prototypes" \
    --k_in_nearest_neighbors "${K_IN_NEAREST_NEIGHBORS}" \
    --save_dir "${run}/results/val"
}

benchmark() {
  "${PYTHON}" -m segsort.benchmark_by_mIoU --pred_dir "$1/results/val/gray" \
    --gt_dir "${DATAROOT}/VOC2012/segcls" --data_list "${VAL_LIST}" \
    --num_classes "${NUM_CLASSES}" --output_json "$1/results/metrics.json"
}

# Trains a SegSort variant, then evaluates it by k-NN.
# Usage: segsort_method METHOD TRAIN_MODULE NUM_BANKS
segsort_method() {
  "${PYTHON}" -m "$2" "${common_train_flags[@]}" --snapshot_dir "${OUT}/$1" \
    --learning_rate 2e-2 --embedding_dim "${EMBEDDING_DIM}" --num_banks "$3"
  evaluate_segsort "${OUT}/$1"
  benchmark "${OUT}/$1"
}

softmax_method() {
  "${PYTHON}" -m segsort.train_softmax "${common_train_flags[@]}" \
    --snapshot_dir "${OUT}/softmax" --learning_rate 2e-2
  "${PYTHON}" -m segsort.inference_softmax "${window_flags[@]}" \
    --data_list "${VAL_LIST}" --restore_from "${OUT}/softmax" \
    --save_dir "${OUT}/softmax/results/val"
  benchmark "${OUT}/softmax"
}

# Runs a command and records its seconds for METHOD.
# Usage: timed METHOD COMMAND [ARGS...]
declare -A seconds
timed() {
  local method=$1 start=${SECONDS}
  shift
  "$@"
  seconds[${method}]=$((SECONDS - start))
}

echo "== Supervised SegSort"
timed segsort segsort_method segsort segsort.train_segsort 2
echo "== Unsupervised SegSort (from the hed/ oversegmentations)"
timed segsort_unsup segsort_method segsort_unsup segsort.train_segsort_unsup 0
echo "== Softmax baseline"
timed softmax softmax_method

echo "== Explaining one validation image"
first_image=$(head -n 1 "${VAL_LIST}" | cut -d' ' -f1)
"${PYTHON}" -m segsort.explain --data_dir "${DATAROOT}" \
  --data_list "${TRAIN_LIST}" --image "${DATAROOT}/${first_image}" \
  --restore_from "${OUT}/segsort" \
  --prototype_dir "${OUT}/segsort/results/train/prototypes" \
  --input_size "${WINDOW}" --strides "${WINDOW}" \
  --num_classes "${NUM_CLASSES}" --save_dir "${OUT}/explain"

"${PYTHON}" bashscripts/demo/summarize.py --out "${OUT}" \
  --seconds segsort="${seconds[segsort]}" \
  --seconds segsort_unsup="${seconds[segsort_unsup]}" \
  --seconds softmax="${seconds[softmax]}"
