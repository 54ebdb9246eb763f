#!/bin/bash
# Supervised SegSort on Cityscapes (19 classes) over several GPUs with the
# settings the original author posted for Cityscapes (jyhjinghwang/SegSort
# issue 10; he had not run them with the released code): global batch 8 of
# 720x720 crops on 4 GPUs, 150k steps on train at learning rate 3e-3 (poly
# 0.9), weight decay 5e-4, 8x8 k-means clusters with 15 iterations for
# training and inference, 16x16 clusters for prototype extraction, k-NN
# inference on val in 720x720 windows with stride 480. Not posted, so the
# VOC recipes' values: concentration 10, embedding dimension 32, 2 memory
# banks, k=15.
#
# The training k-means grid spans each crop (KMEANS_GRID=crop), not the
# crop's source image as in the original: a 720x720 crop covers a small part
# of a 1024x2048 frame scaled by 0.5-2, and on CamVid the crop grid gained 3
# mIoU points (README: "What held SegSort back").
#
# DATAROOT is the Cityscapes folder after tools/cityscapes_to_segcls.py
# (leftImg8bit/, segcls/, train.txt, val.txt). Switches: IS_TRAIN,
# IS_PROTOTYPE, IS_INFERENCE, IS_INFERENCE_MSC (off), IS_BENCHMARK.
#
# Usage, from the repository root (either works):
#   DATAROOT=/data/cityscapes NUM_GPU=4 bash bashscripts/cityscapes/train_segsort_mgpu.sh
#   source bashscripts/cityscapes/train_segsort_mgpu.sh

if [ -z "${BASH_VERSION:-}" ]; then  # sh: bash's syntax would fail
  echo "error: run this script with bash, not sh: bash $0" >&2
  return 1 2>/dev/null || exit 1
fi

segsort_recipe() {
  local BATCH_SIZE=8 TRAIN_INPUT_SIZE=720,720 WEIGHT_DECAY=5e-4 ITER_SIZE=1
  local NUM_STEPS=150000 LEARNING_RATE=3e-3 NUM_CLASSES=19
  local NUM_GPU=${NUM_GPU:-4}
  local INFERENCE_INPUT_SIZE=720,720 INFERENCE_STRIDES=480,480
  local SINGLE_SCALE_INPUT_SIZE=720,720 INFERENCE_SPLIT=val
  local CONCENTRATION=10 NUM_BANKS=2 EMBEDDING_DIM=32 NUM_CLUSTERS=8
  local PROTOTYPE_NUM_CLUSTERS=16 KMEANS_ITERATIONS=15
  local KMEANS_GRID=${KMEANS_GRID:-crop} K_IN_NEAREST_NEIGHBORS=15
  local SNAPSHOT_DIR=${SNAPSHOT_DIR:-snapshots/cityscapes/segsort/segsort_mgpu_lr3e-3_it150k}
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

  segsort_stage segsort.train_segsort "${SNAPSHOT_DIR}" "${IMAGENET}" \
    "${LIST_DIR}/train.txt" "${NUM_STEPS}" "${LEARNING_RATE}" \
    "${IS_TRAIN:-1}" "${IS_PROTOTYPE:-1}" "${IS_INFERENCE:-1}" \
    "${IS_INFERENCE_MSC:-0}" "${IS_BENCHMARK:-1}" \
    --concentration "${CONCENTRATION}" --num_banks "${NUM_BANKS}" \
    --embedding_dim "${EMBEDDING_DIM}" --num_clusters "${NUM_CLUSTERS}" \
    --kmeans_iterations "${KMEANS_ITERATIONS}" \
    --kmeans_grid "${KMEANS_GRID}" --num_gpu "${NUM_GPU}"
}

segsort_recipe "$@"
