"""Markdown tables of the CPU-scale evidence (docs/pretraining.md) from pretraining run dirs.

    python scripts/evidence_table.py VANILLA MAML [--control RUN] [--every 100] [--probe F]
    python scripts/evidence_table.py learners RUN... --control RUN [--at 500] [--probe F]
        [--train-probe F]

The first form reads each run's ``metrics.jsonl`` and probe file (``--probe``, default
``probe.json``, written by ``picomaml probe RUN --all-checkpoints [--out RUN/F]``) and
prints: per block of ``--every`` steps the AR loss, held-out perplexity and (MAML) the
episode statistics; the probe per checkpoint for both runs with 95% intervals and the
paired MAML - vanilla difference; with ``--control``, MAML - control.

``learners`` prints one row per run (the learner screening): the episode statistics over
the ``--every`` steps up to ``--at``, validation perplexity at ``--at``, the training-split
probe (``--train-probe``: the same training-word episodes scored for every backbone) and
the held-out probe's paired difference against the control, prototype and adapted. The
same form gives the two-seed summary at step 1000 and the diagnostic continuation (runs
with ``meta.rho`` 1 or 0 are labelled meta only / LM only).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from picomaml.fileio import read_json
from picomaml.study import summary_stats as mp
from picomaml.study.analyses.pretraining import class_share_baseline, probe_rows
from picomaml.study.records import PretrainRun, load_pretrain_run

KINDS = ("prototype", "adapted")


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.fmean(values) if values else None


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _probe(run_dir: Path, name: str) -> dict[str, Any]:
    path = run_dir / name
    if not path.is_file():
        sys.exit(f"{path}: no probe file (run `picomaml probe {run_dir} --out {path} ...`)")
    return read_json(path)


def _entry(probe: dict[str, Any], step: int) -> dict[str, Any] | None:
    return next((c for c in probe["checkpoints"] if c.get("step") == step), None)


def paired(a: dict[str, Any], b: dict[str, Any], kind: str) -> str:
    """``a - b`` in pp with the 95% interval, paired by episode (same probe episodes)."""
    diffs = [x - y for x, y in zip(a[kind]["per_episode"], b[kind]["per_episode"], strict=True)]
    d = mp.t_interval(diffs)
    return "-" if d is None else f"{100 * d[0]:+.1f} [{100 * d[1]:+.1f}, {100 * d[2]:+.1f}]"


def _same_settings(probes: list[dict[str, Any]], what: str) -> None:
    if any(p["settings"] != probes[0]["settings"] for p in probes):
        sys.exit(f"the {what} probe files were scored with different settings")


def _window(run: PretrainRun, lo: int, hi: int) -> tuple[list[dict], float | None]:
    rows = [m for m in run.metrics or [] if lo < int(m["step"]) <= hi]
    ppl = next((m["val_perplexity"] for m in rows[::-1] if m.get("val_perplexity")), None)
    return [m for m in rows if m.get("kind") == "train"], ppl


def _label(run: PretrainRun) -> str:
    meta = run.config.get("meta", {})
    if not meta.get("enabled"):
        return "vanilla"
    if not meta.get("rho"):
        return "LM only (rho 0)"
    if not meta.get("loss_weight"):
        return "control (loss_weight 0)"
    label = str(meta.get("learner", "query_only"))
    if meta.get("rho") == 1:
        label += " meta only (rho 1)"
    if meta.get("metric") == "cosine":
        label += " cosine"
    if meta.get("learn_logit_scale"):
        label += " + learned scale"
    return label


def learners_table(
    runs: list[Path], control: Path, at: int, every: int, probe: str, train_probe: str | None
) -> str:
    loaded = [load_pretrain_run(r) for r in [control, *runs]]
    held = [_probe(r.run_dir, probe) for r in loaded]
    _same_settings(held, "held-out")
    # A run without a training-split probe file gets "-" in that column, not an exit.
    trains = (
        [
            _probe(r.run_dir, train_probe) if (r.run_dir / train_probe).is_file() else None
            for r in loaded
        ]
        if train_probe
        else None
    )
    if trains:
        _same_settings([t for t in trains if t is not None], "training-split")
    base = _entry(held[0], at)
    if base is None:
        sys.exit(f"{control}/{probe}: step {at} was not probed")
    head = (
        "| learner | meta loss | query acc | feature cosine | class share | AR loss | "
        f"val ppl @{at} | train-split probe, prototype (%) | held-out probe prototype / "
        "adapted (%) | minus control, prototype (pp) | minus control, adapted (pp) |"
    )
    lines = [head, "|" + "---|" * 11]
    for i, run in enumerate(loaded):
        rows, ppl = _window(run, at - every, at)
        entry = _entry(held[i], at)
        train = _entry(trains[i], at) if trains and trains[i] is not None else None
        cells = [
            _label(run),
            *(
                _fmt(_mean(rows, k))
                for k in ("meta_loss", "query_acc", "feature_cosine", "feature_class_share")
            ),
            _fmt(_mean(rows, "ar_loss"), 2),
            _fmt(ppl, 0),
            "-" if train is None else f"{100 * train['prototype']['mean']:.1f}",
            "-" if entry is None else " / ".join(f"{100 * entry[k]['mean']:.1f}" for k in KINDS),
        ]
        for kind in KINDS:
            cells.append("-" if entry is None or i == 0 else paired(entry, base, kind))
        lines.append("| " + " | ".join(cells) + " |")
    ways, settings = loaded[0].config["meta"]["ways"], held[0]["settings"]
    return "\n".join(lines) + (
        f"\n\nSteps {at - every + 1}-{at}; chance {1 / ways:.3f} (ln N = {math.log(ways):.3f}); "
        f"probe: {settings['episodes']} episodes, {held[0]['eligible_words']} eligible words, "
        f"words={settings['words']}, representation={settings['representation']}."
    )


def dynamics_table(vanilla: Path, maml: Path, every: int) -> str:
    runs = {"vanilla": load_pretrain_run(vanilla), "maml": load_pretrain_run(maml)}
    meta = runs["maml"].config["meta"]
    ln_n = math.log(meta["ways"])
    base = class_share_baseline(meta["ways"], meta["shots"])
    lines = [
        f"| steps | AR loss vanilla | AR loss MAML | val ppl vanilla | val ppl MAML | "
        f"meta loss (ln N = {ln_n:.3f}) | query acc (chance {1 / meta['ways']:.3f}) | "
        f"support acc LOO | feature cosine | class share (noise {base:.3f}) | "
        "query max prob | [MASK] norm | grad norm AR / meta |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    last = max(int(m["step"]) for m in runs["maml"].metrics or [])
    for lo in range(0, last, every):
        hi = lo + every
        (tv, pv), (t, pm) = _window(runs["vanilla"], lo, hi), _window(runs["maml"], lo, hi)
        lines.append(
            f"| {lo + 1}-{hi} | {_fmt(_mean(tv, 'ar_loss'), 2)} | {_fmt(_mean(t, 'ar_loss'), 2)} | "
            f"{_fmt(pv, 0)} | {_fmt(pm, 0)} | {_fmt(_mean(t, 'meta_loss'))} | "
            f"{_fmt(_mean(t, 'query_acc'))} | {_fmt(_mean(t, 'support_acc_before'))} | "
            f"{_fmt(_mean(t, 'feature_cosine'))} | {_fmt(_mean(t, 'feature_class_share'))} | "
            f"{_fmt(_mean(t, 'query_max_prob'))} | {_fmt(_mean(t, 'mask_embedding_norm'), 2)} | "
            f"{_fmt(_mean(tv, 'ar_grad_norm'), 2)} / {_fmt(_mean(t, 'meta_grad_norm'), 2)} |"
        )
    return "\n".join(lines)


def probe_table(vanilla: Path, maml: Path, probe: str) -> str:
    probes = {
        ("vanilla", "tiny"): _probe(vanilla, probe),
        ("maml", "tiny"): _probe(maml, probe),
    }
    _same_settings(list(probes.values()), "vanilla and MAML")
    rows, diffs = probe_rows(probes)
    by = {(r["variant"], r["step"]): r for r in rows}
    diff_by = {d["step"]: d for d in diffs}
    lines = [
        "| step | prototype vanilla | prototype MAML | MAML - vanilla (pp) | adapted vanilla | "
        "adapted MAML | MAML - vanilla (pp) |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(r: dict | None, kind: str) -> str:
        if r is None:
            return "-"
        lo, hi = r[f"{kind} CI low (%)"], r[f"{kind} CI high (%)"]
        return f"{r[f'{kind} acc (%)']:.1f} [{lo:.1f}, {hi:.1f}]"

    def delta(d: dict | None, kind: str) -> str:
        if d is None or f"{kind} MAML - vanilla (pp)" not in d:
            return "-"
        return (
            f"{d[f'{kind} MAML - vanilla (pp)']:+.1f} [{d[f'{kind} CI low (pp)']:+.1f}, "
            f"{d[f'{kind} CI high (pp)']:+.1f}]"
        )

    for step in sorted({s for _, s in by if s is not None}):
        v, m, d = by.get(("vanilla", step)), by.get(("maml", step)), diff_by.get(step)
        lines.append(
            f"| {step} | {cell(v, 'prototype')} | {cell(m, 'prototype')} | "
            f"{delta(d, 'prototype')} | {cell(v, 'adapted')} | {cell(m, 'adapted')} | "
            f"{delta(d, 'adapted')} |"
        )
    chance = next(iter(probes.values()))["chance"]
    return "\n".join(lines) + f"\n\nChance: {100 * chance:.1f}%."


def control_table(maml: Path, control: Path, probe: str) -> str:
    """MAML against a control run (``meta.loss_weight=0``: the same LM batches, the
    episodes' gradient switched off), paired by episode, plus the control's perplexity
    and both runs' feature cosine over the 100 steps up to each checkpoint."""
    runs = [load_pretrain_run(maml), load_pretrain_run(control)]
    probes = [_probe(maml, probe), _probe(control, probe)]
    _same_settings(probes, "MAML and control")
    by_step = [{c["step"]: c for c in p["checkpoints"]} for p in probes]
    lines = [
        "| step | val ppl control | cosine MAML / control | prototype control | "
        "MAML - control (pp) | adapted control | MAML - control (pp) |",
        "|---|---|---|---|---|---|---|",
    ]
    for step in sorted(set(by_step[0]) & set(by_step[1])):
        m, c = by_step[0][step], by_step[1][step]
        (tm, _), (tc, ppl) = _window(runs[0], step - 100, step), _window(runs[1], step - 100, step)
        cells = [
            _fmt(ppl, 0),
            f"{_fmt(_mean(tm, 'feature_cosine'))} / {_fmt(_mean(tc, 'feature_cosine'))}",
        ]
        for kind in KINDS:
            lo, hi = c[kind]["ci95"]
            cells.append(f"{100 * c[kind]['mean']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]")
            cells.append(paired(m, c, kind))
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "learners":
        parser = argparse.ArgumentParser(description="the learner screening table")
        parser.add_argument("runs", type=Path, nargs="+")
        parser.add_argument("--control", type=Path, required=True)
        parser.add_argument("--at", type=int, default=500)
        parser.add_argument("--every", type=int, default=100)
        parser.add_argument("--probe", default="probe.json")
        parser.add_argument("--train-probe", default=None)
        args = parser.parse_args(sys.argv[2:])
        print(
            learners_table(
                args.runs, args.control, args.at, args.every, args.probe, args.train_probe
            )
        )
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vanilla", type=Path)
    parser.add_argument("maml", type=Path)
    parser.add_argument("--control", type=Path, default=None, help="a control run dir")
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--probe", default="probe.json", help="probe file in each run dir")
    args = parser.parse_args()
    print(dynamics_table(args.vanilla, args.maml, args.every))
    print()
    print(probe_table(args.vanilla, args.maml, args.probe))
    if args.control is not None:
        print()
        print(control_table(args.maml, args.control, args.probe))


if __name__ == "__main__":
    main()
