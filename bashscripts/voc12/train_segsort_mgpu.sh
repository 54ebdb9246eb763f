#!/bin/bash
# Supervised SegSort on PASCAL VOC 2012 over several GPUs (MirroredStrategy;
# set TF_CONFIG on each machine for MultiWorkerMirroredStrategy): global
# batch 16 of 480x480 crops, stage 1 100k steps on train+, stage 2 30k steps
# on train, k=21 nearest neighbours, multi-scale inference for stage 2.
# The original ran on 5 GPUs: 4 split the batch and a 5th computed the loss.
# Here every GPU computes its share of the loss, so the same batch needs 4
# (NUM_GPU must divide the batch of 16).
#
# Usage, from the repository root (either works):
#   DATAROOT=/data/voc NUM_GPU=4 bash bashscripts/voc12/train_segsort_mgpu.sh
#   source bashscripts/voc12/train_segsort_mgpu.sh

if [ -z "${BASH_VERSION:-}" ]; then  # sh: bash's syntax would fail
  echo "error: run this script with bash, not sh: bash $0" >&2
  return 1 2>/dev/null || exit 1
fi

segsort_recipe() {
  local BATCH_SIZE=16 TRAIN_INPUT_SIZE=480,480 WEIGHT_DECAY=5e-4 ITER_SIZE=1
  local NUM_STEPS_1=100000 NUM_STEPS_2=30000 NUM_CLASSES=21
  local NUM_GPU=${NUM_GPU:-4}
  local INFERENCE_INPUT_SIZE=480,480 INFERENCE_STRIDES=320,320
  local SINGLE_SCALE_INPUT_SIZE=720,720 INFERENCE_SPLIT=val
  local CONCENTRATION=10 NUM_BANKS=2 EMBEDDING_DIM=32 NUM_CLUSTERS=5
  local KMEANS_ITERATIONS=10 K_IN_NEAREST_NEIGHBORS=21
  local SNAPSHOT_DIR=${SNAPSHOT_DIR:-snapshots/voc12/segsort/segsort_mgpu_lr2e-3_it100k}
  local IMAGENET=${IMAGENET:-snapshots/imagenet/trained/resnet_v1_101.ckpt}
  local SAVE_PRED_EVERY=10000 DATAROOT=${DATAROOT:-./data}

  source "$(dirname "${BASH_SOURCE[0]}")/common.sh" || return 1
  segsort_arguments "${BASH_SOURCE[0]}" "$@" || return $(( $? == 2 ? 0 : 1 ))
  segsort_check_switches || return 1
  segsort_dry_run_cd
  segsort_check_inputs dataset/voc12/train+.txt \
    "$([ "${IS_TRAIN_1:-1}" -eq 1 ] && echo "${IMAGENET}")" || return 1
  local flags=(--concentration "${CONCENTRATION}" --num_banks "${NUM_BANKS}"
    --embedding_dim "${EMBEDDING_DIM}" --num_clusters "${NUM_CLUSTERS}"
    --kmeans_iterations "${KMEANS_ITERATIONS}" --num_gpu "${NUM_GPU}")

  segsort_stage segsort.train_segsort "${SNAPSHOT_DIR}/stage1" "${IMAGENET}" \
    dataset/voc12/train+.txt "${NUM_STEPS_1}" 2e-3 \
    "${IS_TRAIN_1:-1}" "${IS_PROTOTYPE_1:-1}" "${IS_INFERENCE_1:-1}" \
    "${IS_INFERENCE_MSC_1:-0}" "${IS_BENCHMARK_1:-1}" "${flags[@]}" \
    || return 1
  segsort_stage segsort.train_segsort "${SNAPSHOT_DIR}/stage2" \
    "${SNAPSHOT_DIR}/stage1" dataset/voc12/train.txt "${NUM_STEPS_2}" 2e-3 \
    "${IS_TRAIN_2:-1}" "${IS_PROTOTYPE_2:-1}" "${IS_INFERENCE_2:-0}" \
    "${IS_INFERENCE_MSC_2:-1}" "${IS_BENCHMARK_2:-1}" "${flags[@]}"
}

segsort_recipe "$@"
