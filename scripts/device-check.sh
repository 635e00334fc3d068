#!/usr/bin/env bash
# One prepared GPU check for a single H100/H200-class GPU, at most 8 minutes.
#
#   scripts/device-check.sh [--dry-run] [--data-dir DIR] [--presets "cpu-vanilla cpu-maml"]
#                           [--preset-overrides "training.max_steps=N ..."]
#
# Steps, each under its own time limit inside an overall deadline of 450 s (with the
# kill grace and the summary, inside 8 minutes):
#   1. environment (GPU name, driver, torch);
#   2. `picomaml bench pretrain` for tiny, small, medium and large in bf16 with 32-way
#      episodes, eager then compiled (tokens/s, MFU, peak memory per micro-batch);
#   3. a short GPU run of each CPU-scale preset (configs/pretrain/<name>.yaml), at most
#      80 s each, on CUDA in bf16-mixed, plus --preset-overrides "k=v ..." (a missing
#      preset is skipped with a note);
#   4. `picomaml probe` on each preset run, when the command exists.
# Everything lands in ONE file, $OUT/device-check.json (default OUT: results/device-check),
# plus the console log $OUT/device-check.log. A failed or timed-out step is recorded
# with its exit code and log tail; the script goes on.
#
# --dry-run runs the same steps on CPU at toy sizes (tiny tier only, 2-way episodes of
# 128-token rows, compile with the tracing-only "eager" backend, 2 optimizer steps of
# a 2-layer model) to check the plumbing in well under a minute on a free machine.
# Needs: bash, coreutils `timeout`, a Python with picomaml's dependencies
# ($PYTHON, else .venv/bin/python, else python3); picomaml is run from src/.
set -uo pipefail

DRY_RUN=0
DATA_DIR="${PICOMAML_DATA:-}"
PRESETS="cpu-vanilla cpu-maml"
PRESET_OVERRIDES=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --data-dir) DATA_DIR="$2"; shift ;;
        --presets) PRESETS="$2"; shift ;;
        --preset-overrides) PRESET_OVERRIDES="$2"; shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "device-check: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 2
if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3; fi
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT="${OUT:-$ROOT/results/device-check}"
mkdir -p "$OUT" || exit 2
WORK="$(mktemp -d "${TMPDIR:-/tmp}/device-check.XXXXXX")" || exit 2
LOG="$OUT/device-check.log"
STEPS="$WORK/steps.tsv"
: > "$LOG"
: > "$STEPS"
START=$(date +%s)
DEADLINE=450
GLOBAL=()
[ -n "$DATA_DIR" ] && GLOBAL=(--data-dir "$DATA_DIR")

say() { echo "[device-check +$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }

# run_step NAME BUDGET_S RESULT_FILE CMD...: run CMD under min(BUDGET, time left) and
# record name, status, exit code, seconds and the file holding its JSON result.
run_step() {
    local name="$1" budget="$2" result="$3"
    shift 3
    local left=$(( DEADLINE - ($(date +%s) - START) ))
    local limit=$(( budget < left ? budget : left ))
    if [ "$limit" -lt 5 ]; then
        say "$name: skipped, the overall time budget is spent"
        printf '%s\tskipped\t\t0\t%s\t%s\n' "$name" "$result" "time budget spent" >> "$STEPS"
        return
    fi
    say "$name (limit ${limit}s): $*"
    local t0 rc status
    t0=$(date +%s)
    timeout -k 5 "$limit" "$@" > "$WORK/$name.log" 2>&1
    rc=$?
    local secs=$(( $(date +%s) - t0 ))
    tail -n 40 "$WORK/$name.log" >> "$LOG"
    case $rc in
        0) status=ok ;;
        124|137) status=timeout ;;
        *) status=failed ;;
    esac
    say "$name: $status (exit $rc, ${secs}s)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$secs" "$result" "$WORK/$name.log" \
        >> "$STEPS"
}

skip_step() {
    say "$1: skipped ($2)"
    printf '%s\tskipped\t\t0\t\t%s\n' "$1" "$2" >> "$STEPS"
}

PICOMAML=("$PY" -m picomaml "${GLOBAL[@]}")

if [ "$DRY_RUN" = 1 ]; then
    SIZES="tiny"
    BENCH=(--device cpu --ways 2 --seq-len 128 --warmup 0 --iters 1 --no-memory)
    COMPILE_BACKEND=eager
    BENCH_BUDGET=(60 60 60 60)
    COMPILE_BUDGET=(60 60 60 60)
    PRESET_BUDGET=60
    PROBE_BUDGET=60
    PRESET_ARGS=(--accelerator cpu --precision 32-true training.max_steps=2
        training.warmup_steps=0 training.batch_size=4 training.micro_batch_size=2
        checkpointing.every=2 dynamics.enabled=false logging.progress_bar=false
        model.n_layers=2 data.max_train_tokens=20000 meta.pool_tokens=20000
        meta.min_word_count=8)
    PROBE_ARGS=(--episodes 2)
    DEADLINE=600
else
    SIZES="tiny small medium large"
    BENCH=(--device cuda --ways 32 --warmup 2 --iters 5)
    COMPILE_BACKEND=inductor
    BENCH_BUDGET=(25 25 25 30)   # eager: tiny small medium large
    COMPILE_BUDGET=(40 40 40 40) # compiled: compile time dominates
    PRESET_BUDGET=80
    PROBE_BUDGET=15
    PRESET_ARGS=(--accelerator cuda --precision bf16-mixed logging.progress_bar=false)
    PROBE_ARGS=()
fi

run_step env 15 "$WORK/env.json" "$PY" -c "
import json, platform, subprocess, torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
try:
    smi = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version,memory.total',
                          '--format=csv,noheader'], capture_output=True, text=True,
                         timeout=10).stdout.strip()
except (OSError, subprocess.SubprocessError):
    smi = None
json.dump({'python': platform.python_version(), 'torch': torch.__version__,
           'cuda': torch.version.cuda, 'gpu': gpu, 'nvidia_smi': smi,
           'cpus': __import__('os').cpu_count()}, open('$WORK/env.json', 'w'), indent=1)
print(gpu or 'no GPU visible to torch')
"

i=0
for size in $SIZES; do
    run_step "bench-$size-eager" "${BENCH_BUDGET[$i]}" "$WORK/bench-$size-eager.json" \
        "${PICOMAML[@]}" bench pretrain --size "$size" "${BENCH[@]}" --compile off \
        --out "$WORK/bench-$size-eager.json"
    i=$((i + 1))
done
i=0
for size in $SIZES; do
    run_step "bench-$size-compiled" "${COMPILE_BUDGET[$i]}" "$WORK/bench-$size-compiled.json" \
        "${PICOMAML[@]}" bench pretrain --size "$size" "${BENCH[@]}" --compile on \
        --compile-backend "$COMPILE_BACKEND" --out "$WORK/bench-$size-compiled.json"
    i=$((i + 1))
done

for preset in $PRESETS; do
    config="configs/pretrain/$preset.yaml"
    if [ ! -f "$config" ]; then
        skip_step "pretrain-$preset" "no $config in this checkout"
        continue
    fi
    run_step "pretrain-$preset" "$PRESET_BUDGET" "$WORK/runs/$preset/metrics.jsonl" \
        "${PICOMAML[@]}" pretrain --config "$config" --run-dir "$WORK/runs/$preset" \
        "${PRESET_ARGS[@]}" $PRESET_OVERRIDES
done

if "${PICOMAML[@]}" probe --help > /dev/null 2>&1; then
    for preset in $PRESETS; do
        if [ ! -f "$WORK/runs/$preset/checkpoints/latest" ]; then
            skip_step "probe-$preset" "no checkpoint from pretrain-$preset"
            continue
        fi
        run_step "probe-$preset" "$PROBE_BUDGET" "$WORK/probe-$preset.json" \
            "${PICOMAML[@]}" probe "$WORK/runs/$preset" "${PROBE_ARGS[@]}" \
            --out "$WORK/probe-$preset.json"
    done
else
    for preset in $PRESETS; do skip_step "probe-$preset" "this picomaml has no probe command"; done
fi

# One JSON: each step's status, exit code, seconds, its JSON result embedded (or the last
# records of a metrics.jsonl), and the tail of its log when it did not succeed.
"$PY" - "$STEPS" "$OUT/device-check.json" "$DRY_RUN" "$(( $(date +%s) - START ))" <<'PYEOF'
import datetime
import json
import sys
from pathlib import Path

steps_file, out, dry, total = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
steps = []
for line in Path(steps_file).read_text().splitlines():
    name, status, rc, secs, result, extra = (line.split("\t") + [""] * 6)[:6]
    step = {"name": name, "status": status, "exit_code": int(rc) if rc else None,
            "seconds": int(secs)}
    path = Path(result) if result else None
    if path is not None and path.is_file():
        if path.suffix == ".jsonl":
            records = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            step["result"] = {"metrics_records": len(records), "last": records[-3:]}
        else:
            step["result"] = json.loads(path.read_text())
    if status == "skipped":
        step["note"] = extra
    elif status != "ok" and extra and Path(extra).is_file():
        step["log_tail"] = Path(extra).read_text(errors="replace").splitlines()[-20:]
    steps.append(step)
summary = {
    "kind": "picomaml device check",
    "dry_run": dry,
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "seconds": int(total),
    "steps": steps,
}
out.write_text(json.dumps(summary, indent=1) + "\n")
failed = [s["name"] for s in steps if s["status"] in ("failed", "timeout")]
print(f"wrote {out}: {len(steps)} steps, {len(failed)} failed or timed out"
      + (f" ({', '.join(failed)})" if failed else ""))
PYEOF
rc=$?
rm -rf "$WORK"
exit $rc
