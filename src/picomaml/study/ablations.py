"""The ablations as grid cells: which extra cells they add and what each cell trains and
scores on.

* Particle masking and name substitution add no cell: every main-grid cell is also scored
  on the derived target sets (keys ``<target>.particles``, ``<target>.names-frequent``,
  ``<target>.names-unseen``).
* Balanced resampling adds ``balanced-<main cell id>`` beside each main cell of the chosen
  regimes and sources, fine-tuned with ``sampling: balanced``.
* Few-shot curves add, per backbone, regime, source and seed, one ``k = 0`` cell
  (``fewshot-<base>-k00``, scored on the evaluation half of every target of the regime's
  curves) and one cell per target, ``k > 0`` and draw (``fewshot-<base>-<target>-kNN-dD``,
  trained on the source plus the draw, scored on that target's evaluation half).

The derived files come from :func:`picomaml.study.derived.prepare_derived`, which the grid
runs before any cell; :func:`cell_plan` reads its ``derived/index.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from picomaml import layout
from picomaml.errors import PicomamlError
from picomaml.study.cell import Cell
from picomaml.study.config import GridConfig
from picomaml.study.derived import read_index

BALANCED = "balanced"
FEWSHOT = "fewshot"
ABLATION_KINDS: tuple[str, ...] = (BALANCED, FEWSHOT)


def ablation_cells(cfg: GridConfig, results_dir: Path) -> list[Cell]:
    """The cells the ablations add, in a fixed order (after the main grid and sweeps)."""
    cells: list[Cell] = []
    ab = cfg.ablations
    if ab.balance is not None:
        regimes = ab.balance.regimes or cfg.regimes
        sources = ab.balance.sources or cfg.sources
        for b in cfg.backbones:
            ref = b.reference(results_dir)
            for regime in cfg.regimes:
                for source in cfg.sources:
                    if regime not in regimes or source not in sources:
                        continue
                    for seed in cfg.seeds:
                        cells.append(Cell(BALANCED, b.variant, b.size, regime, source, seed, ref))
    if ab.fewshot is not None:
        fs = ab.fewshot
        curves = fs.curve_targets(cfg.regimes)
        for b in cfg.backbones:
            ref = b.reference(results_dir)
            for regime, targets in curves.items():
                for source in fs.sources or cfg.sources:
                    for seed in cfg.seeds:
                        base = (FEWSHOT, b.variant, b.size, regime, source, seed, ref)
                        if 0 in fs.ks:
                            cells.append(Cell(*base, k=0))
                        for target in targets:
                            for k in fs.ks:
                                if k == 0:
                                    continue
                                for d in range(fs.draws):
                                    cells.append(Cell(*base, target=target, k=k, draw=d))
    return cells


@dataclass
class CellPlan:
    """What one cell adds to the grid-wide settings: fine-tuning keys, the registry datasets
    to score (None: the grid's ``evaluate.datasets``) and derived test sets (key -> file)."""

    finetune: dict[str, Any] = field(default_factory=dict)
    datasets: list[str] | None = None
    derived: dict[str, Path] = field(default_factory=dict)


def _index(results_dir: Path) -> dict[str, Any]:
    index = read_index(results_dir)
    if not index:
        raise PicomamlError(
            f"{results_dir / layout.DERIVED_INDEX} is missing: the grid writes the ablations' "
            "derived sets before its first cell (run `picomaml grid`)"
        )
    return index


def cell_plan(cell: Cell, cfg: GridConfig, results_dir: Path) -> CellPlan:
    """The plan of ``cell``; main cells of a grid without evaluation-side ablations and
    sweep cells get the empty plan (the grid's settings unchanged)."""
    ab = cfg.ablations
    if cell.kind == "main" and (ab.particles is not None or ab.names is not None):
        index = _index(results_dir)
        derived: dict[str, Path] = {}
        for entry in index.get("particles", {}).get("sets", {}).values():
            derived[entry["key"]] = results_dir / entry["file"]
        for by_target in index.get("names", {}).get("sets", {}).values():
            for entry in by_target.values():
                derived[entry["key"]] = results_dir / entry["file"]
        return CellPlan(derived=derived)
    if cell.kind == BALANCED:
        return CellPlan(finetune={"sampling": "balanced"})
    if cell.kind == FEWSHOT:
        assert ab.fewshot is not None
        targets_info = _index(results_dir).get("fewshot", {}).get("targets", {})
        finetune = dict(ab.fewshot.finetune)
        if cfg.finetune.get("feature_cache_dir") is None:
            finetune.setdefault("feature_cache_dir", str(results_dir / layout.FEATURE_CACHE_DIR))
        if cell.k:
            draws = targets_info[cell.target]["draws"]
            finetune["extra_train"] = str(results_dir / draws[str(cell.k)][str(cell.draw)])
            targets = [cell.target]
        else:
            targets = ab.fewshot.curve_targets(cfg.regimes)[cell.regime]
        derived = {
            targets_info[t]["eval"]["key"]: results_dir / targets_info[t]["eval"]["file"]
            for t in targets
        }
        return CellPlan(finetune=finetune, datasets=[], derived=derived)
    return CellPlan()
