#!/bin/bash
# The softmax baseline of the paper's comparison: the same network (PSPNet,
# ResNet-101), data and two-stage schedule as train_segsort.sh, trained with
# pixel-wise softmax cross-entropy; multi-scale inference and the mIoU
# benchmark of val. Switches: IS_TRAIN_1, IS_TRAIN_2, IS_INFERENCE_MSC.
#
# Usage, from the repository root (either works):
#   DATAROOT=/data/voc bash bashscripts/voc12/train_softmax.sh
#   source bashscripts/voc12/train_softmax.sh

if [ -z "${BASH_VERSION:-}" ]; then  # sh: bash's syntax would fail
  echo "error: run this script with bash, not sh: bash $0" >&2
  return 1 2>/dev/null || exit 1
fi

segsort_recipe() {
  local BATCH_SIZE=8 TRAIN_INPUT_SIZE=336,336 WEIGHT_DECAY=5e-4 ITER_SIZE=1
  local NUM_STEPS=30000 NUM_CLASSES=21
  local INFERENCE_INPUT_SIZE=480,480 INFERENCE_STRIDES=320,320
  local SINGLE_SCALE_INPUT_SIZE=720,720 INFERENCE_SPLIT=val
  local SNAPSHOT_DIR=${SNAPSHOT_DIR:-snapshots/voc12/softmax/softmax_lr2e-3_it30000}
  local IMAGENET=${IMAGENET:-snapshots/imagenet/trained/resnet_v1_101.ckpt}
  local SAVE_PRED_EVERY=5000 DATAROOT=${DATAROOT:-./data}

  source "$(dirname "${BASH_SOURCE[0]}")/common.sh" || return 1
  segsort_arguments "${BASH_SOURCE[0]}" "$@" || return $(( $? == 2 ? 0 : 1 ))
  segsort_check_switches || return 1
  segsort_dry_run_cd
  segsort_check_inputs dataset/voc12/train+.txt \
    "$([ "${IS_TRAIN_1:-1}" -eq 1 ] && echo "${IMAGENET}")" || return 1

  local stage restore_from data_list learning_rate switch
  for stage in 1 2; do
    if [ "${stage}" -eq 1 ]; then
      restore_from=${IMAGENET} data_list=dataset/voc12/train+.txt
      learning_rate=2e-3
    else
      restore_from=${SNAPSHOT_DIR}/stage1 data_list=dataset/voc12/train.txt
      learning_rate=2e-4
    fi
    switch=IS_TRAIN_${stage}
    if [ "${!switch:-1}" -eq 1 ]; then
      segsort_train segsort.train_softmax "${SNAPSHOT_DIR}/stage${stage}" \
        "${restore_from}" "${data_list}" "${NUM_STEPS}" "${learning_rate}" \
        $([ "${stage}" -eq 2 ] && echo --not_restore_classifier) || return 1
    fi
  done
  [ "${IS_INFERENCE_MSC:-1}" -eq 1 ] || return 0
  local checkpoint=${SNAPSHOT_DIR}/stage2
  local results=${checkpoint}/results/${INFERENCE_SPLIT}
  segsort_python -m segsort.inference_softmax --data_dir "${DATAROOT}" \
    --data_list "dataset/voc12/${INFERENCE_SPLIT}.txt" \
    --restore_from "${checkpoint}" --input_size "${INFERENCE_INPUT_SIZE}" \
    --strides "${INFERENCE_STRIDES}" --num_classes "${NUM_CLASSES}" \
    --save_dir "${results}_msc" --scale_aug 0.5,0.75,1,1.25,1.5,1.75 \
    --flip_aug || return 1
  segsort_benchmark "${results}_msc"
}

segsort_recipe "$@"
