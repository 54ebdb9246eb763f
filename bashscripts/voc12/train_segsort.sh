#!/bin/bash
# Supervised SegSort (PSPNet, ResNet-101) on PASCAL VOC 2012, one GPU:
# stage 1 on train+ (30k steps, lr 2e-3), stage 2 on train (30k steps,
# lr 2e-4), each followed by prototype extraction, k-NN inference and the
# mIoU benchmark of val. As in the original recipe, stage 2 restores only the
# backbone of stage 1 (--not_restore_classifier): its head starts afresh.
#
# Usage, from the repository root (either works):
#   DATAROOT=/data/voc bash bashscripts/voc12/train_segsort.sh
#   source bashscripts/voc12/train_segsort.sh
# Skip steps with the IS_* switches, e.g. IS_TRAIN_1=0 IS_TRAIN_2=0.

if [ -z "${BASH_VERSION:-}" ]; then  # sh: bash's syntax would fail
  echo "error: run this script with bash, not sh: bash $0" >&2
  return 1 2>/dev/null || exit 1
fi

segsort_recipe() {
  local BATCH_SIZE=8 TRAIN_INPUT_SIZE=336,336 WEIGHT_DECAY=5e-4 ITER_SIZE=1
  local NUM_STEPS=30000 NUM_CLASSES=21
  local INFERENCE_INPUT_SIZE=480,480 INFERENCE_STRIDES=320,320
  local SINGLE_SCALE_INPUT_SIZE=720,720 INFERENCE_SPLIT=val
  local CONCENTRATION=10 NUM_BANKS=2 EMBEDDING_DIM=32 NUM_CLUSTERS=5
  local KMEANS_ITERATIONS=10 K_IN_NEAREST_NEIGHBORS=15
  local SNAPSHOT_DIR=${SNAPSHOT_DIR:-snapshots/voc12/segsort/segsort_lr2e-3_it30000}
  local IMAGENET=${IMAGENET:-snapshots/imagenet/trained/resnet_v1_101.ckpt}
  local SAVE_PRED_EVERY=5000 DATAROOT=${DATAROOT:-./data}

  source "$(dirname "${BASH_SOURCE[0]}")/common.sh" || return 1
  segsort_arguments "${BASH_SOURCE[0]}" "$@" || return $(( $? == 2 ? 0 : 1 ))
  segsort_check_switches || return 1
  segsort_dry_run_cd
  segsort_check_inputs dataset/voc12/train+.txt \
    "$([ "${IS_TRAIN_1:-1}" -eq 1 ] && echo "${IMAGENET}")" || return 1
  local flags=(--concentration "${CONCENTRATION}" --num_banks "${NUM_BANKS}"
    --embedding_dim "${EMBEDDING_DIM}" --num_clusters "${NUM_CLUSTERS}"
    --kmeans_iterations "${KMEANS_ITERATIONS}")

  segsort_stage segsort.train_segsort "${SNAPSHOT_DIR}/stage1" "${IMAGENET}" \
    dataset/voc12/train+.txt "${NUM_STEPS}" 2e-3 \
    "${IS_TRAIN_1:-1}" "${IS_PROTOTYPE_1:-1}" "${IS_INFERENCE_1:-1}" \
    "${IS_INFERENCE_MSC_1:-0}" "${IS_BENCHMARK_1:-1}" "${flags[@]}" \
    || return 1
  segsort_stage segsort.train_segsort "${SNAPSHOT_DIR}/stage2" \
    "${SNAPSHOT_DIR}/stage1" dataset/voc12/train.txt "${NUM_STEPS}" 2e-4 \
    "${IS_TRAIN_2:-1}" "${IS_PROTOTYPE_2:-1}" "${IS_INFERENCE_2:-1}" \
    "${IS_INFERENCE_MSC_2:-1}" "${IS_BENCHMARK_2:-1}" "${flags[@]}" \
    --not_restore_classifier
}

segsort_recipe "$@"
