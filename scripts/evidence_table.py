"""Markdown tables of the CPU-scale evidence (docs/pretraining.md) from two run dirs.

    python scripts/evidence_table.py RUNS/cpu-vanilla RUNS/cpu-maml [--control RUN] [--every 100]

Reads each run's ``metrics.jsonl`` and ``probe.json`` (``picomaml probe RUN
--all-checkpoints``) and prints: per block of ``--every`` steps the AR loss, held-out
perplexity and (MAML) the episode statistics against chance; then the probe per
checkpoint for both runs with 95% intervals and the paired MAML - vanilla difference.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

from picomaml.study import metrics_pure as mp
from picomaml.study.analyses.pretraining import class_share_baseline, probe_rows
from picomaml.study.records import load_pretrain_run


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.fmean(values) if values else None


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def dynamics_table(vanilla: Path, maml: Path, every: int) -> str:
    runs = {"vanilla": load_pretrain_run(vanilla), "maml": load_pretrain_run(maml)}
    meta = runs["maml"].config["meta"]
    ln_n = math.log(meta["ways"])
    base = class_share_baseline(meta["ways"], meta["shots"])
    lines = [
        f"| steps | AR loss vanilla | AR loss MAML | val ppl vanilla | val ppl MAML | "
        f"meta loss (ln N = {ln_n:.3f}) | query acc (chance {1 / meta['ways']:.3f}) | "
        f"support acc LOO | feature cosine | class share (noise {base:.3f}) | "
        "grad norm AR / meta |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    last = max(int(m["step"]) for m in runs["maml"].metrics or [])
    for lo in range(0, last, every):
        hi = lo + every
        block = {
            k: [m for m in (r.metrics or []) if lo < int(m["step"]) <= hi] for k, r in runs.items()
        }
        train = {k: [m for m in v if m.get("kind") == "train"] for k, v in block.items()}
        ppl = {
            k: next((m["val_perplexity"] for m in v if m.get("val_perplexity")), None)
            for k, v in block.items()
        }
        t = train["maml"]
        lines.append(
            f"| {lo + 1}-{hi} | {_fmt(_mean(train['vanilla'], 'ar_loss'), 2)} | "
            f"{_fmt(_mean(t, 'ar_loss'), 2)} | {_fmt(ppl['vanilla'], 0)} | "
            f"{_fmt(ppl['maml'], 0)} | {_fmt(_mean(t, 'meta_loss'))} | "
            f"{_fmt(_mean(t, 'query_acc'))} | {_fmt(_mean(t, 'support_acc_before'))} | "
            f"{_fmt(_mean(t, 'feature_cosine'))} | {_fmt(_mean(t, 'feature_class_share'))} | "
            f"{_fmt(_mean(train['vanilla'], 'ar_grad_norm'), 2)} / "
            f"{_fmt(_mean(t, 'meta_grad_norm'), 2)} |"
        )
    return "\n".join(lines)


def probe_table(vanilla: Path, maml: Path) -> str:
    probes = {}
    for variant, path in (("vanilla", vanilla), ("maml", maml)):
        run = load_pretrain_run(path)
        if run.probe is None:
            raise SystemExit(
                f"{path}: no probe.json (run `picomaml probe {path} --all-checkpoints`)"
            )
        probes[(variant, "tiny")] = run.probe
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


def control_table(maml: Path, control: Path) -> str:
    """MAML against a control run (e.g. ``meta.loss_weight=0``: the same LM batches, the
    episodes' gradient switched off), paired by episode, plus the control's perplexity."""
    runs = [load_pretrain_run(maml), load_pretrain_run(control)]
    if any(r.probe is None for r in runs):
        raise SystemExit("both runs need a probe.json with the same settings")
    if runs[0].probe["settings"] != runs[1].probe["settings"]:
        raise SystemExit("the two probe.json files were scored with different settings")
    ppl = {
        int(m["step"]): m["val_perplexity"]
        for m in runs[1].metrics or []
        if m.get("kind") == "dynamics" and m.get("val_perplexity")
    }
    by_step = [{c["step"]: c for c in r.probe["checkpoints"]} for r in runs]
    lines = [
        "| step | val ppl control | prototype control | MAML - control (pp) | adapted control | "
        "MAML - control (pp) |",
        "|---|---|---|---|---|---|",
    ]
    for step in sorted(set(by_step[0]) & set(by_step[1])):
        m, c = by_step[0][step], by_step[1][step]
        cells = []
        for kind in ("prototype", "adapted"):
            lo, hi = c[kind]["ci95"]
            cells.append(f"{100 * c[kind]['mean']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]")
            d = mp.t_interval(
                [a - b for a, b in zip(m[kind]["per_episode"], c[kind]["per_episode"], strict=True)]
            )
            cells.append(
                "-" if d is None else f"{100 * d[0]:+.1f} [{100 * d[1]:+.1f}, {100 * d[2]:+.1f}]"
            )
        lines.append(f"| {step} | {_fmt(ppl.get(step), 0)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vanilla", type=Path)
    parser.add_argument("maml", type=Path)
    parser.add_argument("--control", type=Path, default=None, help="a control run dir")
    parser.add_argument("--every", type=int, default=100)
    args = parser.parse_args()
    print(dynamics_table(args.vanilla, args.maml, args.every))
    print()
    print(probe_table(args.vanilla, args.maml))
    if args.control is not None:
        print()
        print(control_table(args.maml, args.control))


if __name__ == "__main__":
    main()
