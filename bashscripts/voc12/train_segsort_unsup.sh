#!/bin/bash
# Unsupervised SegSort on PASCAL VOC 2012: 10k steps on train+ from the
# contour oversegmentations in VOC2012/hed/ (tools/make_oversegmentation.py
# makes them), then prototypes from the annotated train+ list, multi-scale
# k-NN inference and the mIoU benchmark of val.
#
# Usage, from the repository root (either works):
#   DATAROOT=/data/voc bash bashscripts/voc12/train_segsort_unsup.sh
#   source bashscripts/voc12/train_segsort_unsup.sh

if [ -z "${BASH_VERSION:-}" ]; then  # sh: bash's syntax would fail
  echo "error: run this script with bash, not sh: bash $0" >&2
  return 1 2>/dev/null || exit 1
fi

segsort_recipe() {
  local BATCH_SIZE=8 TRAIN_INPUT_SIZE=336,336 WEIGHT_DECAY=5e-4 ITER_SIZE=1
  local NUM_STEPS=10000 NUM_CLASSES=21
  local INFERENCE_INPUT_SIZE=480,480 INFERENCE_STRIDES=320,320
  local SINGLE_SCALE_INPUT_SIZE=720,720 INFERENCE_SPLIT=val
  local CONCENTRATION=10 EMBEDDING_DIM=32 NUM_CLUSTERS=5
  local KMEANS_ITERATIONS=10 K_IN_NEAREST_NEIGHBORS=15
  local SNAPSHOT_DIR=${SNAPSHOT_DIR:-snapshots/voc12/unsup_segsort/unsup_segsort_lr2e-3_it10k}
  local IMAGENET=${IMAGENET:-snapshots/imagenet/trained/resnet_v1_101.ckpt}
  local SAVE_PRED_EVERY=2000 DATAROOT=${DATAROOT:-./data}

  source "$(dirname "${BASH_SOURCE[0]}")/common.sh" || return 1
  segsort_arguments "${BASH_SOURCE[0]}" "$@" || return $(( $? == 2 ? 0 : 1 ))
  segsort_check_switches || return 1
  segsort_dry_run_cd
  segsort_check_inputs dataset/voc12/train+.txt \
    "$([ "${IS_TRAIN:-1}" -eq 1 ] && echo "${IMAGENET}")" || return 1
  segsort_require "${DATAROOT}/VOC2012/hed" || return 1

  segsort_stage segsort.train_segsort_unsup "${SNAPSHOT_DIR}" "${IMAGENET}" \
    dataset/voc12/train+.txt "${NUM_STEPS}" 2e-3 \
    "${IS_TRAIN:-1}" "${IS_PROTOTYPE:-1}" "${IS_INFERENCE:-0}" \
    "${IS_INFERENCE_MSC:-1}" "${IS_BENCHMARK:-1}" \
    --concentration "${CONCENTRATION}" --embedding_dim "${EMBEDDING_DIM}" \
    --num_banks 0
}

segsort_recipe "$@"
