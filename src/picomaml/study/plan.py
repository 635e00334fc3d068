"""``picomaml grid CONFIG --dry-run``: what a grid would run, checked without running it.

The grid file is loaded and validated as for a real run (every key, the fine-tuning keys,
the name pools), the cells are expanded, ``hf:`` references are parsed but never fetched,
and, when a data root is found, every derived set is computed in memory (particle counts,
few-shot pools and caps, and the error a bad ``k`` gives) without writing anything. So a
config for the published checkpoints can be checked on a machine without the Hub.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from picomaml.model.hub import is_hub_ref
from picomaml.study.config import GridConfig
from picomaml.study.derived import prepare_derived
from picomaml.study.grid import expand_cells


def describe(cfg: GridConfig, results_dir: Path, data_root: Path | None) -> list[str]:
    """Lines describing the grid's cells, backbones and ablations (raises what a real run
    would raise before its first cell)."""
    cells = expand_cells(cfg, results_dir)
    kinds = Counter(c.kind for c in cells)
    lines = [
        f"grid {cfg.name}: {len(cells)} cells ("
        + ", ".join(f"{n} {k}" for k, n in kinds.items())
        + f"), results dir {results_dir}"
    ]
    for b in cfg.backbones:
        ref = b.reference(results_dir)
        if is_hub_ref(ref):
            state = "published checkpoint (parsed; fetched by a real run)"
        elif Path(ref).exists():
            state = "found"
        else:
            how = (
                f"; `picomaml demo` pretrains it from {b.pretrain_config}"
                if b.pretrain_config
                else ""
            )
            state = f"not found yet{how}"
        lines.append(f"  backbone {b.variant}-{b.size}: {ref} ({state})")
    ab = cfg.ablations
    if ab.particles is not None:
        p = ab.particles
        how = f"replace by {p.replacement!r}" if p.mode == "replace" else "drop"
        lines.append(f"  particles: {how} before {p.types} spans of {p.targets}")
    if ab.names is not None:
        for name in ("frequent", "unseen"):
            pool = ab.names.pool(name)
            lines.append(
                f"  names {name}: {len(pool.given)} given names, {len(pool.surnames)} surnames "
                f"({ab.names.pool_path(name)})"
            )
    if ab.balance is not None:
        lines.append(f"  balance: {kinds.get('balanced', 0)} balanced cells")
    if ab.fewshot is not None:
        fs = ab.fewshot
        lines.append(
            f"  fewshot: k {fs.ks}, {fs.draws} draws, curves "
            f"{fs.curve_targets(cfg.regimes)}, {kinds.get('fewshot', 0)} cells"
        )
    if data_root is None:
        if ab.particles or ab.names or ab.fewshot:
            lines.append("  derived sets not checked: no data root (pass --data-dir)")
        return lines
    index = prepare_derived(cfg, results_dir, data_root, write=False) or {}
    for code, entry in index.get("particles", {}).get("sets", {}).items():
        masked = sum(entry["changes"]["masked"].values())
        lines.append(f"  particles {code}: {masked} particles masked")
    for code, info in index.get("fewshot", {}).get("targets", {}).items():
        capped = f", k {info['capped']} capped to {info['pool']}" if info["capped"] else ""
        lines.append(
            f"  fewshot {code}: evaluation half {info['eval']['sentences']} sentences "
            f"({info['eval']['spans']['PER']} PER), pool {info['pool']}{capped}"
        )
    return lines
