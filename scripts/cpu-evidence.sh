#!/usr/bin/env bash
# The CPU-scale evidence of docs/pretraining.md, end to end (about 4 hours on 2 quiet cores).
# For each seed: pretrain cpu-vanilla, cpu-maml (the default learner) and its control
# (cpu-maml with meta.loss_weight=0: the same LM batches and episodes, the meta-gradient
# off; checkpoints every 100 steps with their state kept, for the continuation), one thread
# each, two at a time; probe every checkpoint of the three on the same held-out episodes
# (held-out words, the run's frequency rule, separate documents): `mask` features
# (probe.json) and `before_mask` features (probe-before.json); then the diagnostic
# continuation of seed 0 (control's step 500 -> 200 steps with rho=1 and with rho=0);
# the training-split probe at step 1000 (probe-train.json); then print the tables.
#   scripts/cpu-evidence.sh [RUNS_DIR] [SEEDS...]     (default runs/cpu-evidence, seeds 0 1)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs/cpu-evidence}
shift || true
seeds=("${@:-0 1}")
read -r -a seeds <<< "${seeds[*]}"
bin=.venv/bin
mkdir -p "$runs"
probe=(--ways 8 --shots 4 --queries 4 --window 64 --episodes 300)
pretrain() {  # NAME CONFIG [OVERRIDES...]
  local name=$1 config=$2
  shift 2
  OMP_NUM_THREADS=1 "$bin/picomaml" pretrain --config "configs/pretrain/$config.yaml" \
    --run-dir "$runs/$name" --resume logging.progress_bar=false "$@" > "$runs/$name.log" 2>&1
}
probe_run() {  # NAME: every checkpoint, mask and before_mask features
  local name=$1
  OMP_NUM_THREADS=1 "$bin/picomaml" probe "$runs/$name" "${probe[@]}" --all-checkpoints \
    > "$runs/probe-$name.log" 2>&1
  OMP_NUM_THREADS=1 "$bin/picomaml" probe "$runs/$name" "${probe[@]}" --all-checkpoints \
    --representation before_mask --out "$runs/$name/probe-before.json" \
    >> "$runs/probe-$name.log" 2>&1
  OMP_NUM_THREADS=1 "$bin/picomaml" probe "$runs/$name/checkpoints/step_1000" "${probe[@]}" \
    --split train --words training --out "$runs/$name/probe-train.json" \
    >> "$runs/probe-$name.log" 2>&1
}
control=(meta.loss_weight=0 checkpointing.every=100 checkpointing.keep_state_last=null)
for seed in "${seeds[@]}"; do
  pretrain "vanilla-s$seed" cpu-vanilla "training.seed=$seed" &
  pretrain "maml-s$seed" cpu-maml "training.seed=$seed" &
  wait
  pretrain "control-s$seed" cpu-maml "training.seed=$seed" "${control[@]}" &
  probe_run "vanilla-s$seed" &
  wait
  probe_run "maml-s$seed" &
  probe_run "control-s$seed" &
  wait
done
# Diagnostic continuation (seed 0): from the control's step 500 (uncollapsed features),
# 200 steps of meta only (rho=1, the default learner) and of LM only (rho=0).
seed=${seeds[0]}
branch() {  # NAME RHO
  OMP_NUM_THREADS=1 "$bin/picomaml" pretrain --config configs/pretrain/cpu-maml.yaml \
    --run-dir "$runs/$1" --init-from "$runs/control-s$seed/checkpoints/step_500" \
    --stop-at-step 700 --resume logging.progress_bar=false "training.seed=$seed" \
    checkpointing.every=100 "meta.rho=$2" > "$runs/$1.log" 2>&1
  OMP_NUM_THREADS=1 "$bin/picomaml" probe "$runs/$1" "${probe[@]}" --all-checkpoints \
    > "$runs/probe-$1.log" 2>&1
}
branch "continue-meta-s$seed" 1.0 &
branch "continue-lm-s$seed" 0.0 &
wait
for seed in "${seeds[@]}"; do
  echo "## seed $seed, step 1000"
  "$bin/python" scripts/evidence_table.py learners "$runs/maml-s$seed" "$runs/vanilla-s$seed" \
    --control "$runs/control-s$seed" --at 1000 --train-probe probe-train.json
  "$bin/python" scripts/evidence_table.py learners "$runs/maml-s$seed" "$runs/vanilla-s$seed" \
    --control "$runs/control-s$seed" --at 1000 --probe probe-before.json
  for probe_file in probe.json probe-before.json; do
    echo "## seed $seed, $probe_file"
    "$bin/python" scripts/evidence_table.py "$runs/vanilla-s$seed" "$runs/maml-s$seed" \
      --control "$runs/control-s$seed" --probe "$probe_file"
  done
done
seed=${seeds[0]}
echo "## continuation, seed $seed"
"$bin/python" scripts/evidence_table.py learners "$runs/continue-meta-s$seed" \
  "$runs/continue-lm-s$seed" --control "$runs/control-s$seed" --at 700
