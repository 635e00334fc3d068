#!/usr/bin/env bash
# The CPU-scale evidence of docs/pretraining.md, end to end (about 1.5 hours on 2 cores):
# pretrain cpu-vanilla, cpu-maml and a control (cpu-maml with meta.loss_weight=0: the same
# LM batches, the episodes' gradient switched off) side by side, one thread each; probe
# every checkpoint of all three on the same held-out episodes; print the tables.
#   scripts/cpu-evidence.sh [RUNS_DIR]     (default runs/cpu-evidence)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs/cpu-evidence}
bin=.venv/bin
mkdir -p "$runs"
probe=(--ways 8 --shots 4 --queries 4 --window 64 --episodes 300 --all-checkpoints)
pretrain() {  # NAME CONFIG [OVERRIDES...]
  local name=$1 config=$2
  shift 2
  OMP_NUM_THREADS=1 "$bin/picomaml" pretrain --config "configs/pretrain/$config.yaml" \
    --run-dir "$runs/$name" --resume logging.progress_bar=false "$@" > "$runs/$name.log" 2>&1
}
pretrain cpu-vanilla cpu-vanilla &
pretrain cpu-maml cpu-maml &
pretrain cpu-maml-w0 cpu-maml meta.loss_weight=0 &
wait
for name in cpu-vanilla cpu-maml cpu-maml-w0; do
  OMP_NUM_THREADS=1 "$bin/picomaml" probe "$runs/$name" "${probe[@]}" > "$runs/probe-$name.log" 2>&1 &
done
wait
"$bin/python" scripts/evidence_table.py "$runs/cpu-vanilla" "$runs/cpu-maml" --control "$runs/cpu-maml-w0"
