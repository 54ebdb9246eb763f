#!/usr/bin/env bash
# The GPU figures of the README in one run (about 6 minutes on one GPU): the
# ResNet-101 PSPNet training step at the recipe size (batch 8, 336x336
# crops, 2 memory banks) in images/s in float32, with --mixed_precision, with
# --jit_compile and with both, each with the SegSort loss's share of the step,
# then the loss alone (forward + backward, tf.function and XLA) with its peak
# memory. Random weights; no data or checkpoint needed.
#
#     bash benchmarks/gpu_check.sh [PYTHON]     # default: .venv/bin/python
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${1:-.venv/bin/python}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
for flags in "" "--mixed_precision" "--jit_compile" \
             "--mixed_precision --jit_compile"; do
  echo "== train step ${flags:-float32}"
  # shellcheck disable=SC2086  # the flags are meant to split into words
  timeout 150 "$PYTHON" benchmarks/benchmark_train_step.py --batch_size 8 \
      --input_size 336,336 --backbone resnet_v1_101 --head pspnet \
      --is_training --steps 10 --warmup_steps 3 $flags 2>&1 |
      grep -E 'ms/step|resnet|Error' || echo "(failed or timed out)"
done
echo "== loss alone"
timeout 120 "$PYTHON" benchmarks/benchmark_segsort_loss.py --steps 20 \
    --repeats 5 2>&1 | grep -E 'ms/step|Error' || echo "(failed or timed out)"
