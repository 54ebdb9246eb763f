#!/bin/bash
# The softmax baseline on Cityscapes: the network (PSPNet, ResNet-101), data
# and schedule of train_segsort_mgpu.sh (global batch 8 of 720x720 crops on 4
# GPUs, 150k steps on train at learning rate 3e-3, weight decay 5e-4),
# trained with pixel-wise softmax cross-entropy; single-scale inference on
# val in 720x720 windows with stride 480, and the mIoU benchmark.
#
# DATAROOT is the Cityscapes folder after tools/cityscapes_to_segcls.py.
# Switches: IS_TRAIN, IS_INFERENCE, IS_BENCHMARK.
#
# Usage, from the repository root (either works):
#   DATAROOT=/data/cityscapes NUM_GPU=4 bash bashscripts/cityscapes/train_softmax.sh
#   source bashscripts/cityscapes/train_softmax.sh

if [ -z "${BASH_VERSION:-}" ]; then  # sh: bash's syntax would fail
  echo "error: run this script with bash, not sh: bash $0" >&2
  return 1 2>/dev/null || exit 1
fi

segsort_recipe() {
  local BATCH_SIZE=8 TRAIN_INPUT_SIZE=720,720 WEIGHT_DECAY=5e-4 ITER_SIZE=1
  local NUM_STEPS=150000 LEARNING_RATE=3e-3 NUM_CLASSES=19
  local NUM_GPU=${NUM_GPU:-4}
  local INFERENCE_INPUT_SIZE=720,720 INFERENCE_STRIDES=480,480
  local INFERENCE_SPLIT=val
  local SNAPSHOT_DIR=${SNAPSHOT_DIR:-snapshots/cityscapes/softmax/softmax_mgpu_lr3e-3_it150k}
  local IMAGENET=${IMAGENET:-snapshots/imagenet/trained/resnet_v1_101.ckpt}
  local SAVE_PRED_EVERY=10000 DATAROOT=${DATAROOT:-./data/cityscapes}
  # The layout of tools/cityscapes_to_segcls.py, for the shared steps.
  local IMAGE_FOLDER=leftImg8bit LIST_DIR=${DATAROOT}
  local GT_DIR=${DATAROOT}/segcls DATA_HELP="Set DATAROOT to the Cityscapes \
folder (leftImg8bit/, gtFine/) and run tools/cityscapes_to_segcls.py on it; \
see README: 'Cityscapes'."

  source "$(dirname "${BASH_SOURCE[0]}")/../voc12/common.sh" || return 1
  segsort_arguments "${BASH_SOURCE[0]}" "$@" || return $(( $? == 2 ? 0 : 1 ))
  segsort_check_switches || return 1
  segsort_dry_run_cd
  segsort_check_inputs "${LIST_DIR}/train.txt" \
    "$([ "${IS_TRAIN:-1}" -eq 1 ] && echo "${IMAGENET}")" || return 1
  segsort_require "${LIST_DIR}/${INFERENCE_SPLIT}.txt" "${GT_DIR}" || return 1

  if [ "${IS_TRAIN:-1}" -eq 1 ]; then
    segsort_train segsort.train_softmax "${SNAPSHOT_DIR}" "${IMAGENET}" \
      "${LIST_DIR}/train.txt" "${NUM_STEPS}" "${LEARNING_RATE}" \
      --num_gpu "${NUM_GPU}" || return 1
  fi
  local results=${SNAPSHOT_DIR}/results/${INFERENCE_SPLIT}
  if [ "${IS_INFERENCE:-1}" -eq 1 ]; then
    segsort_python -m segsort.inference_softmax --data_dir "${DATAROOT}" \
      --data_list "${LIST_DIR}/${INFERENCE_SPLIT}.txt" \
      --restore_from "${SNAPSHOT_DIR}" --input_size "${INFERENCE_INPUT_SIZE}" \
      --strides "${INFERENCE_STRIDES}" --num_classes "${NUM_CLASSES}" \
      --save_dir "${results}" || return 1
  fi
  if [ "${IS_BENCHMARK:-1}" -eq 1 ]; then
    segsort_benchmark "${results}"
  fi
}

segsort_recipe "$@"
