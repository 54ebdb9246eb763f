# Shared steps of the recipes (VOC12, Cityscapes). Sourced by them; not run
# on its own.
#
# The data set's places default to VOC12's; a recipe of another data set
# sets them: IMAGE_FOLDER (the image folder inside DATAROOT checked before
# training), LIST_DIR (the folder of INFERENCE_SPLIT.txt), GT_DIR (the
# ground truth class-id PNGs of the benchmark) and DATA_HELP (what to do when
# the data is missing). PROTOTYPE_NUM_CLUSTERS (the k-means grid of
# prototype extraction) defaults to NUM_CLUSTERS.
#
# Every function returns non-zero on failure instead of exiting, so that the
# recipes work both with `bash recipe.sh` and with `source recipe.sh`
# (the original release's README sourced them) without closing the shell.

# SEGSORT_DRY_RUN=0 is off, as 0 is for the pipeline's other switches.
if [ "${SEGSORT_DRY_RUN:-}" = 0 ]; then
  SEGSORT_DRY_RUN=
fi

# Refuses an IS_* step switch that is not 0 or 1 (empty: the default).
# `[ yes -eq 1 ]` only prints a bash warning and is false, so the step
# would be skipped while the recipe went on with the next ones.
segsort_check_switches() {
  local name bad=()
  for name in $(compgen -v IS_); do
    # The recipes' own switches only (the environment may hold others).
    [[ "${name}" =~ ^IS_(TRAIN|PROTOTYPE|INFERENCE|INFERENCE_MSC|BENCHMARK)(_[12])?$ ]] \
      || continue
    case "${!name}" in
      '' | 0 | 1) ;;
      *) bad+=("${name}=${!name}") ;;
    esac
  done
  if (( ${#bad[@]} )); then
    local joined
    joined=$(printf '%s, ' "${bad[@]}")
    echo "error: ${joined%, }: a step switch is 0 (skip the step) or 1" \
         "(run it)" >&2
    return 1
  fi
}

# The scripts take their settings from the environment only: -h or --help
# prints SCRIPT's header comment (returns 2, for the caller to stop with
# success), and any other argument is refused (returns 1), since an ignored
# `--num_steps 5` would start the whole run.
# Usage: segsort_arguments SCRIPT [ARGUMENT ...] ||
#          exit $(( $? == 2 ? 0 : 1 ))   (return ... in a recipe)
segsort_arguments() {
  local script=$1
  shift
  (( $# )) || return 0
  case "$1" in
    -h | --help)
      # The comment lines after the shebang, without their '# '.
      sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "${script}"
      return 2 ;;
  esac
  echo "error: $(basename "${script}") takes no arguments (got $(printf '%q ' "$@"| sed 's/ $//')):" \
       "its settings are environment variables (NAME=VALUE bash" \
       "${script#"${PWD}/"}); --help lists them" >&2
  return 1
}

# A path as absolute, relative ones taken from the current folder.
segsort_absolute() {
  case "$1" in /*) echo "$1" ;; *) echo "${PWD}/$1" ;; esac
}

# The interpreter: the project's .venv when it exists, else $PYTHON or
# python3. With SEGSORT_DRY_RUN set, prints each command instead (one per
# line) and runs nothing; the tests check the recipes' flags this way.
segsort_python() {
  local root interpreter
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  interpreter=${PYTHON:-python3}
  if [ -x "${root}/.venv/bin/python" ]; then
    interpreter=${root}/.venv/bin/python
  fi
  if [ -n "${SEGSORT_DRY_RUN:-}" ]; then
    # Quoted, and with the interpreter that would run it, so that every
    # line can be pasted into a shell.
    printf '%q' "${interpreter}"
    printf ' %q' "$@"
    echo
    return 0
  fi
  "${interpreter}" "$@"
}

# In a dry run, prints the `cd` into the current folder first: the commands
# name modules, lists and snapshots relative to the repository root, where
# the scripts run them; with it the printed lines paste anywhere.
segsort_dry_run_cd() {
  if [ -n "${SEGSORT_DRY_RUN:-}" ]; then
    # Pasted lines run one after another whatever the one before did.
    echo "# These commands stop at the first failure, as the script does," \
         "when saved to a file and run with bash -e FILE"
    echo "cd $(printf '%q' "${PWD}")"
  fi
}

# Prints a line of progress; in a dry run as a shell comment, so that the
# printed lines can be pasted whole.
segsort_say() {
  if [ -n "${SEGSORT_DRY_RUN:-}" ]; then
    echo "# $*"
  else
    echo "$*"
  fi
}

# Fails with a message unless every given path exists.
segsort_require() {
  local path
  local voc_help="Set DATAROOT to the folder holding VOC2012/ (and sbd/);"
  voc_help+=" see README: 'Preparing the data'."
  for path in "$@"; do
    if [ ! -e "${path}" ]; then
      echo "error: ${path} does not exist." >&2
      case "${path}" in
        *imagenet*)
          echo "  Download TF-Slim's resnet_v1_101_2016_08_28.tar.gz and" \
               "extract it to snapshots/imagenet/trained/ (README:" \
               "'ImageNet weights')." >&2 ;;
        *)
          echo "  ${DATA_HELP:-${voc_help}}" >&2 ;;
      esac
      return 1
    fi
  done
}

# Checks the data set and the ImageNet checkpoint before hours of training.
# Usage: segsort_check_inputs DATA_LIST [IMAGENET_CHECKPOINT]
segsort_check_inputs() {
  segsort_require "${DATAROOT}/${IMAGE_FOLDER:-VOC2012/JPEGImages}" "$1" \
    || return 1
  if [ -n "${2:-}" ]; then
    segsort_require "${2}.index" || return 1
  fi
}

# Trains one stage. Usage: segsort_train MODULE SNAPSHOT_DIR RESTORE_FROM
#   DATA_LIST NUM_STEPS LEARNING_RATE [extra flags...]
segsort_train() {
  local module=$1 snapshot_dir=$2 restore_from=$3 data_list=$4
  local num_steps=$5 learning_rate=$6
  shift 6
  segsort_python -m "${module}" \
    --snapshot_dir "${snapshot_dir}" \
    --restore_from "${restore_from}" \
    --data_list "${data_list}" \
    --data_dir "${DATAROOT}" \
    --batch_size "${BATCH_SIZE}" \
    --save_pred_every "${SAVE_PRED_EVERY:-1000}" \
    --update_tb_every 50 \
    --input_size "${TRAIN_INPUT_SIZE}" \
    --learning_rate "${learning_rate}" \
    --weight_decay "${WEIGHT_DECAY}" \
    --iter_size "${ITER_SIZE}" \
    --num_classes "${NUM_CLASSES}" \
    --num_steps "${num_steps}" \
    --random_mirror --random_scale --random_crop \
    --is_training \
    "$@"
}

# Extracts the prototypes of an annotated list.
# Usage: segsort_prototypes CHECKPOINT DATA_LIST SAVE_DIR
segsort_prototypes() {
  segsort_python -m segsort.extract_prototypes \
    --data_dir "${DATAROOT}" \
    --data_list "$2" \
    --restore_from "$1" \
    --input_size "${INFERENCE_INPUT_SIZE}" \
    --strides "${INFERENCE_STRIDES}" \
    --num_classes "${NUM_CLASSES}" \
    --ignore_label 255 \
    --num_clusters "${PROTOTYPE_NUM_CLUSTERS:-${NUM_CLUSTERS}}" \
    --kmeans_iterations "${KMEANS_ITERATIONS}" \
    --save_dir "$3"
}

# k-NN inference. Usage: segsort_inference MODULE CHECKPOINT PROTOTYPE_DIR
#   SAVE_DIR INPUT_SIZE [extra flags...]
segsort_inference() {
  local module=$1 checkpoint=$2 prototype_dir=$3 save_dir=$4 input_size=$5
  shift 5
  segsort_python -m "${module}" \
    --data_dir "${DATAROOT}" \
    --data_list "${LIST_DIR:-dataset/voc12}/${INFERENCE_SPLIT}.txt" \
    --input_size "${input_size}" \
    --strides "${INFERENCE_STRIDES}" \
    --restore_from "${checkpoint}" \
    --num_classes "${NUM_CLASSES}" \
    --ignore_label 255 \
    --num_clusters "${NUM_CLUSTERS}" \
    --kmeans_iterations "${KMEANS_ITERATIONS}" \
    --k_in_nearest_neighbors "${K_IN_NEAREST_NEIGHBORS}" \
    --prototype_dir "${prototype_dir}" \
    --save_dir "${save_dir}" \
    "$@"
}

# mIoU, per-class IoU (named by DATAROOT/classes.txt when there is one),
# pixel accuracy and boundary F-score of the class-id PNGs of a directory.
# Usage: segsort_score GRAY_DIR DATA_LIST OUTPUT_JSON
segsort_score() {
  local names=()
  if [ -e "${DATAROOT}/classes.txt" ]; then
    names=(--class_names "${DATAROOT}/classes.txt")
  fi
  segsort_python -m segsort.benchmark_by_mIoU \
    --pred_dir "$1" \
    --gt_dir "${GT_DIR:-${DATAROOT}/VOC2012/segcls}" \
    --data_list "$2" \
    --num_classes "${NUM_CLASSES}" \
    --output_json "$3" \
    "${names[@]}"
}

# The scores of a recipe's predictions. Usage: segsort_benchmark PRED_DIR
segsort_benchmark() {
  segsort_score "$1/gray" "${LIST_DIR:-dataset/voc12}/${INFERENCE_SPLIT}.txt" \
    "$1/metrics.json"
}

# One stage: train, extract prototypes, infer (single-scale and/or MSC) and
# benchmark, each step when its switch is 1.
# Usage: segsort_stage TRAIN_MODULE STAGE_DIR RESTORE_FROM DATA_LIST NUM_STEPS
#   LEARNING_RATE IS_TRAIN IS_PROTOTYPE IS_INFERENCE IS_INFERENCE_MSC
#   IS_BENCHMARK [extra training flags...]
segsort_stage() {
  local module=$1 stage_dir=$2 restore_from=$3 data_list=$4 num_steps=$5
  local learning_rate=$6 is_train=$7 is_prototype=$8 is_inference=$9
  local is_inference_msc=${10} is_benchmark=${11}
  shift 11
  local list_name prototypes predictions
  list_name=$(basename "${data_list}" .txt)
  prototypes=${stage_dir}/results/${list_name}/prototypes
  predictions=${stage_dir}/results/${INFERENCE_SPLIT}
  if [ "${is_train}" -eq 1 ]; then
    segsort_train "${module}" "${stage_dir}" "${restore_from}" \
      "${data_list}" "${num_steps}" "${learning_rate}" "$@" || return 1
  fi
  if [ "${is_prototype}" -eq 1 ]; then
    segsort_prototypes "${stage_dir}" "${data_list}" \
      "${stage_dir}/results/${list_name}" || return 1
  fi
  if [ "${is_inference}" -eq 1 ]; then
    segsort_inference segsort.inference_segsort "${stage_dir}" \
      "${prototypes}" "${predictions}" "${SINGLE_SCALE_INPUT_SIZE}" \
      || return 1
  fi
  if [ "${is_inference_msc}" -eq 1 ]; then
    predictions=${predictions}_msc
    segsort_inference segsort.inference_segsort_msc "${stage_dir}" \
      "${prototypes}" "${predictions}" "${INFERENCE_INPUT_SIZE}" \
      --flip_aug || return 1
  fi
  if [ "${is_benchmark}" -eq 1 ]; then
    segsort_benchmark "${predictions}" || return 1
  fi
}
