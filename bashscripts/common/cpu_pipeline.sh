# The CPU pipeline shared by the demo (bashscripts/demo/run_demo.sh) and the
# CamVid quality benchmark (bashscripts/camvid/run_cpu.sh): for every seed of
# SEEDS it trains the methods of METHODS with the same network, crop, steps
# and schedule, extracts prototypes from TRAIN_LIST, predicts VAL_LIST,
# benchmarks, and records each method's seconds; `cpu_pipeline_summarize`
# then prints one table and writes OUT/summary.json and OUT/summary.png.
#
# Sourced by the scripts above; not run on its own. With SEGSORT_DRY_RUN
# set, every command is printed instead of run. The variables below come from
# the environment or the sourcing script; those with a default here are
# shared by the demo and the benchmark (chosen on CamVid val, see the
# README's "What held SegSort back"):
#
#   DATAROOT TRAIN_LIST VAL_LIST NUM_CLASSES OUT   data and output (required)
#   NUM_STEPS WINDOW PROTOTYPE_CLUSTERS INFERENCE_CLUSTERS    (required)
#                 training steps; the inference window "height,width"
#                 (larger images are tiled); the k-means grids ("N" or
#                 "ROWS,COLUMNS") of prototype extraction and of inference
#   METHODS       any of: segsort segsort_unsup softmax (all three)
#   UNSUP_TRAIN_LIST  unsupervised SegSort's training list (TRAIN_LIST),
#                 e.g. train+unlabeled.txt of tools/import_dataset.py
#   SEEDS         training seeds (0); one seed writes OUT/<method>, several
#                 OUT/seed_<seed>/<method>
#   BACKBONE BATCH_SIZE CROP LEARNING_RATE HEAD_LEARNING_RATE_MULTIPLIER
#   WEIGHT_DECAY WARMUP_STEPS EMA_DECAY
#                 network and schedule, the same for every method
#                 (mini, 8, 112,112, 2e-2, 10, 5e-4, 0, 0)
#   EMBEDDING_DIM CONCENTRATION NUM_CLUSTERS KMEANS_GRID KMEANS_ITERATIONS
#   NUM_BANKS     SegSort training (32, 10, 5, crop, 10, 2; NUM_BANKS for
#                 supervised SegSort only)
#   SEGMENT_GROUPS  1: unsupervised SegSort groups its segments as a cut
#                 of the same contours at SEGMENT_GROUP_THRESHOLD (0.1) would
#                 (VOC2012/hed_groups/, completed on every run) and leaves a
#                 pixel's group out of its loss (--segment_groups); 0: the
#                 original loss (0)
#   RANDOM_COLOUR 1: every method's training jitters the images' colours
#                 (--random_colour); 0: the original's augmentation (0)
#   K_IN_NEAREST_NEIGHBORS   k of the k-NN vote (15)
#   COLOUR_WEIGHT weight of colour where pixels join segments at inference
#                 (10; 0 is the original's embedding and location alone)

# shellcheck source=bashscripts/voc12/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../voc12/common.sh"
segsort_dry_run_cd

: "${METHODS:=segsort segsort_unsup softmax}" "${SEEDS:=0}"
: "${BACKBONE:=mini}" "${BATCH_SIZE:=8}" "${CROP:=112,112}"
: "${LEARNING_RATE:=2e-2}" "${WEIGHT_DECAY:=5e-4}" "${WARMUP_STEPS:=0}"
: "${HEAD_LEARNING_RATE_MULTIPLIER:=10}"
: "${EMA_DECAY:=0}"
: "${EMBEDDING_DIM:=32}" "${CONCENTRATION:=10}" "${NUM_CLUSTERS:=5}"
: "${KMEANS_GRID:=crop}" "${KMEANS_ITERATIONS:=10}" "${NUM_BANKS:=2}"
: "${K_IN_NEAREST_NEIGHBORS:=15}" "${SEGMENT_GROUPS:=0}"
: "${SEGMENT_GROUP_THRESHOLD:=0.1}" "${RANDOM_COLOUR:=0}"
# Pixels join the segments of their surrounding cells by colour as well:
# with the embedding alone a boundary lies midway between cell centres,
# 4 pixels off at worst; on both benchmarks' val sets the colour put it on
# the image's edge (README: "Colour in the pixel join").
: "${COLOUR_WEIGHT:=10}"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
# One space between words, whatever separated them (tabs, newlines), so that
# every test of these lists below sees the words preflight.py checks.
METHODS=$(echo ${METHODS})
SEEDS=$(echo ${SEEDS})

# Refuses an OUT that is not a folder, then checks every setting (and that
# the runs already in OUT were trained with them: a rerun resumes them), then
# (unless given --settings_only) every line and file of TRAIN_LIST,
# VAL_LIST and unsupervised SegSort's list (with its oversegmentations when
# VOC2012/hed/ exists), before any work (preflight.py); exits naming every
# problem on one line. Further arguments go to preflight.py (NAME=VALUE
# settings, --generated_set).
# Usage: cpu_pipeline_check [--settings_only] [ARGUMENT ...]
cpu_pipeline_check() {
  local lists=()
  if [ -L "${OUT}" ] && [ ! -e "${OUT}" ]; then
    echo "error: OUT=${OUT} is a broken symbolic link" >&2
    return 1
  fi
  if [ -e "${OUT}" ] && [ ! -d "${OUT}" ]; then
    echo "error: OUT=${OUT} is a file, not a folder to write into" >&2
    return 1
  fi
  if [ "${1:-}" = --settings_only ]; then
    shift
  else
    lists=(--train_list "${TRAIN_LIST}" --val_list "${VAL_LIST}")
    if [[ " ${METHODS} " == *" segsort_unsup "* ]]; then
      lists+=(--unsup_train_list "${UNSUP_TRAIN_LIST:-${TRAIN_LIST}}")
      if [ -d "${DATAROOT}/VOC2012/hed" ]; then
        lists+=(--with_oversegmentation)
      fi
    fi
  fi
  segsort_python "$(dirname "${BASH_SOURCE[0]}")/preflight.py" \
    --data_dir "${DATAROOT}" --out "${OUT}" --trains_on "${TRAIN_LIST}" \
    --empty_variables "${SEGSORT_EMPTY_VARIABLES:-}" \
    --unsup_trains_on "${UNSUP_TRAIN_LIST:-${TRAIN_LIST}}" "${lists[@]}" \
    "SEEDS=${SEEDS}" "METHODS=${METHODS}" "NUM_CLASSES=${NUM_CLASSES}" \
    "NUM_STEPS=${NUM_STEPS}" "BACKBONE=${BACKBONE}" \
    "BATCH_SIZE=${BATCH_SIZE}" "CROP=${CROP}" \
    "LEARNING_RATE=${LEARNING_RATE}" "WEIGHT_DECAY=${WEIGHT_DECAY}" \
    "HEAD_LEARNING_RATE_MULTIPLIER=${HEAD_LEARNING_RATE_MULTIPLIER}" \
    "WARMUP_STEPS=${WARMUP_STEPS}" "EMA_DECAY=${EMA_DECAY}" \
    "EMBEDDING_DIM=${EMBEDDING_DIM}" "CONCENTRATION=${CONCENTRATION}" \
    "NUM_CLUSTERS=${NUM_CLUSTERS}" "KMEANS_GRID=${KMEANS_GRID}" \
    "KMEANS_ITERATIONS=${KMEANS_ITERATIONS}" "NUM_BANKS=${NUM_BANKS}" \
    "SEGMENT_GROUPS=${SEGMENT_GROUPS}" "RANDOM_COLOUR=${RANDOM_COLOUR}" \
    "WINDOW=${WINDOW}" "PROTOTYPE_CLUSTERS=${PROTOTYPE_CLUSTERS}" \
    "INFERENCE_CLUSTERS=${INFERENCE_CLUSTERS}" \
    "K_IN_NEAREST_NEIGHBORS=${K_IN_NEAREST_NEIGHBORS}" \
    "COLOUR_WEIGHT=${COLOUR_WEIGHT}" \
    "SEGMENT_GROUP_THRESHOLD=${SEGMENT_GROUP_THRESHOLD}" "$@"
}

# Makes OUT (a path given relative to the folder the script was started
# from, already made absolute) once cpu_pipeline_check has passed.
# Usage: cpu_pipeline_make_out
cpu_pipeline_make_out() {
  [ -n "${SEGSORT_DRY_RUN:-}" ] || mkdir -p "${OUT}"
}

# The folder of one seed's runs.
cpu_pipeline_run_dir() {
  if [ "$(echo ${SEEDS} | wc -w)" -eq 1 ]; then
    echo "${OUT}"
  else
    echo "${OUT}/seed_$1"
  fi
}

# Usage: cpu_pipeline_train METHOD SNAPSHOT_DIR SEED
cpu_pipeline_train() {
  local method=$1 snapshot_dir=$2 seed=$3 data_list=${TRAIN_LIST}
  if [ "${method}" = segsort_unsup ]; then
    data_list=${UNSUP_TRAIN_LIST:-${TRAIN_LIST}}
  fi
  local flags=(--backbone "${BACKBONE}" --data_dir "${DATAROOT}"
    --data_list "${data_list}" --batch_size "${BATCH_SIZE}"
    --input_size "${CROP}" --num_steps "${NUM_STEPS}"
    --learning_rate "${LEARNING_RATE}"
    --head_learning_rate_multiplier "${HEAD_LEARNING_RATE_MULTIPLIER}"
    --weight_decay "${WEIGHT_DECAY}"
    --warmup_steps "${WARMUP_STEPS}" --ema_decay "${EMA_DECAY}"
    --num_classes "${NUM_CLASSES}" --save_pred_every "${NUM_STEPS}"
    --update_tb_every 100 --random_mirror --random_scale --random_crop
    --is_training --random_seed "${seed}" --snapshot_dir "${snapshot_dir}")
  if [ "${RANDOM_COLOUR}" = 1 ]; then
    flags+=(--random_colour)
  fi
  local segsort_flags=(--embedding_dim "${EMBEDDING_DIM}"
    --concentration "${CONCENTRATION}")
  case "${method}" in
    segsort)
      segsort_python -m segsort.train_segsort "${flags[@]}" \
        "${segsort_flags[@]}" --num_clusters "${NUM_CLUSTERS}" \
        --kmeans_grid "${KMEANS_GRID}" \
        --kmeans_iterations "${KMEANS_ITERATIONS}" --num_banks "${NUM_BANKS}" ;;
    segsort_unsup)
      if [ "${SEGMENT_GROUPS}" = 1 ]; then
        segsort_flags+=(--segment_groups)
      fi
      segsort_python -m segsort.train_segsort_unsup "${flags[@]}" \
        "${segsort_flags[@]}" --num_banks 0 ;;
    softmax)
      segsort_python -m segsort.train_softmax "${flags[@]}" ;;
    *)
      echo "error: unknown method ${method} in METHODS" >&2
      return 1 ;;
  esac
}

# Predicts VAL_LIST: k-NN over prototypes of the annotated TRAIN_LIST for
# the SegSort methods, the network's own classes for softmax.
# Usage: cpu_pipeline_predict METHOD RUN_DIR
cpu_pipeline_predict() {
  local method=$1 run=$2
  local window_flags=(--data_dir "${DATAROOT}" --input_size "${WINDOW}"
    --strides "${WINDOW}" --num_classes "${NUM_CLASSES}"
    --restore_from "${run}")
  if [ "${method}" = softmax ]; then
    segsort_python -m segsort.inference_softmax "${window_flags[@]}" \
      --data_list "${VAL_LIST}" --save_dir "${run}/results/val"
    return
  fi
  segsort_python -m segsort.extract_prototypes "${window_flags[@]}" \
    --data_list "${TRAIN_LIST}" --num_clusters "${PROTOTYPE_CLUSTERS}" \
    --kmeans_iterations "${KMEANS_ITERATIONS}" \
    --save_dir "${run}/results/train" || return 1
  segsort_python -m segsort.inference_segsort "${window_flags[@]}" \
    --data_list "${VAL_LIST}" --num_clusters "${INFERENCE_CLUSTERS}" \
    --kmeans_iterations "${KMEANS_ITERATIONS}" \
    --prototype_dir "${run}/results/train/prototypes" \
    --k_in_nearest_neighbors "${K_IN_NEAREST_NEIGHBORS}" \
    --colour_weight "${COLOUR_WEIGHT}" --save_dir "${run}/results/val"
}

# Usage: cpu_pipeline_benchmark RUN_DIR
cpu_pipeline_benchmark() {
  GT_DIR="${DATAROOT}/VOC2012/segcls" segsort_score "$1/results/val/gray" \
    "${VAL_LIST}" "$1/results/metrics.json"
}

# Trains, predicts and benchmarks every method of METHODS with one seed,
# writing each method's seconds to RUN_DIR/METHOD/results/seconds.
# Usage: cpu_pipeline_run_seed SEED
cpu_pipeline_run_seed() {
  local seed=$1 run_dir method start trained_before
  run_dir=$(cpu_pipeline_run_dir "${seed}")
  for method in ${METHODS}; do
    segsort_say "== ${method}, seed ${seed}: ${run_dir}/${method}"
    start=${SECONDS}
    # A run trained before keeps the seconds it was measured in: a rerun
    # that skips done work would record only the skipping.
    trained_before=$([ -e "${run_dir}/${method}/checkpoint" ] && echo 1 || true)
    cpu_pipeline_train "${method}" "${run_dir}/${method}" "${seed}" &&
      cpu_pipeline_predict "${method}" "${run_dir}/${method}" &&
      cpu_pipeline_benchmark "${run_dir}/${method}" || return 1
    # A run resumed after its training (e.g. after a failed prediction)
    # records nothing: its training time is unknown.
    if [ -z "${SEGSORT_DRY_RUN:-}" ] && [ -z "${trained_before}" ]; then
      echo $((SECONDS - start)) > "${run_dir}/${method}/results/seconds"
    fi
  done
}

# Runs every seed of SEEDS, then summarises.
cpu_pipeline_run() {
  local seed
  if [ "${SEGMENT_GROUPS}" = 1 ] && [[ " ${METHODS} " == *" segsort_unsup "* ]]; then
    # Run every time: it makes the groups the training list still lacks
    # (e.g. of another UNSUP_TRAIN_LIST), and refuses a folder made with
    # another threshold, naming both; the trainer checks that they nest.
    segsort_say "== Grouping the segments of VOC2012/hed into VOC2012/hed_groups"
    segsort_python -m tools.make_oversegmentation --data_dir "${DATAROOT}" \
      --groups_of "${DATAROOT}/VOC2012/hed" \
      --threshold "${SEGMENT_GROUP_THRESHOLD}" \
      --data_list "${UNSUP_TRAIN_LIST:-${TRAIN_LIST}}" --workers 2 || return 1
  fi
  for seed in ${SEEDS}; do
    cpu_pipeline_run_seed "${seed}" || return 1
  done
  cpu_pipeline_summarize
}

# Prints the table and writes OUT/summary.json and summary.png over every
# seed's runs.
cpu_pipeline_summarize() {
  local seed run_dirs=()
  for seed in ${SEEDS}; do
    run_dirs+=("$(cpu_pipeline_run_dir "${seed}")")
  done
  segsort_python "$(dirname "${BASH_SOURCE[0]}")/summarize.py" \
    --out "${OUT}" --methods ${METHODS} --runs "${run_dirs[@]}"
}
