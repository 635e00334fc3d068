#!/usr/bin/env bash
# The CPU-scale evidence of docs/pretraining.md, end to end (about 1.5 hours on 2 cores):
# pretrain cpu-vanilla and cpu-maml side by side (one thread each), probe every
# checkpoint of both on the same held-out episodes, print the tables.
#   scripts/cpu-evidence.sh [RUNS_DIR]     (default runs/cpu-evidence)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs/cpu-evidence}
bin=.venv/bin
mkdir -p "$runs"
probe=(--ways 8 --shots 4 --queries 4 --window 64 --episodes 100 --all-checkpoints)
for v in vanilla maml; do
  OMP_NUM_THREADS=1 "$bin/picomaml" pretrain --config "configs/pretrain/cpu-$v.yaml" \
    --run-dir "$runs/cpu-$v" --resume logging.progress_bar=false > "$runs/cpu-$v.log" 2>&1 &
done
wait
for v in vanilla maml; do
  OMP_NUM_THREADS=1 "$bin/picomaml" probe "$runs/cpu-$v" "${probe[@]}" > "$runs/probe-$v.log" 2>&1 &
done
wait
"$bin/python" scripts/evidence_table.py "$runs/cpu-vanilla" "$runs/cpu-maml"
