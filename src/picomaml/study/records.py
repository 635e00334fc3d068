"""Load a study results directory once into plain records.

Every analysis reads these records, never the files, so a report costs one pass
over the directory and every number can name the file it came from
(:attr:`CellRecord.rel` + the file name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from picomaml import layout
from picomaml.config import parse_yaml
from picomaml.data.registry import TARGETS
from picomaml.errors import PicomamlError
from picomaml.fileio import read_json, read_json_object, read_jsonl
from picomaml.layout import pretrain_run_dir


@dataclass
class Sentence:
    """One evaluated sentence: words, gold and predicted tags, p(gold tag) per word."""

    tokens: list[str]
    gold: list[str]
    pred: list[str]
    p_gold: list[float] | None = None
    sent_id: str = ""


@dataclass
class CellRecord:
    """Everything the analyses need from one finished cell."""

    cell_id: str
    rel: str  # path relative to the results dir, e.g. "cells/maml-tiny-head-sk_snk-s0"
    kind: str  # "main" or "sweep"
    variant: str
    size: str
    regime: str
    source: str
    seed: int
    step: int | None
    run: dict[str, Any]
    datasets: dict[str, dict[str, Any]]
    train_log: list[dict[str, Any]] = field(default_factory=list)
    finetune_cfg: dict[str, Any] = field(default_factory=dict)
    sentences: dict[str, list[Sentence]] = field(default_factory=dict)
    has_confidence: dict[str, bool] = field(default_factory=dict)
    sampling: dict[str, Any] | None = None  # sampling.json of a balanced cell
    target: str | None = None  # few-shot cells: the target, k and draw
    k: int | None = None
    draw: int | None = None

    def file(self, name: str) -> str:
        """Citation path of a file of this cell."""
        return f"{self.rel}/{name}"

    def f1(self, dataset: str, mode: str = "default") -> float | None:
        """Entity-level micro-F1 (fraction) on ``dataset``, or None when not evaluated."""
        d = self.datasets.get(dataset)
        if not d:
            return None
        return float(d[mode]["micro"]["f1"])

    def type_f1(self, dataset: str, etype: str, mode: str = "default") -> float | None:
        """Per-type F1 on ``dataset`` (None when absent)."""
        d = self.datasets.get(dataset)
        if not d:
            return None
        t = d[mode].get("per_type", {}).get(etype)
        return None if t is None else float(t["f1"])


@dataclass
class PretrainRun:
    """A backbone's pretraining run dir: its resolved config and its ``metrics.jsonl``
    records (``None`` when the run logged none)."""

    run_dir: Path
    config: dict[str, Any]
    metrics: list[dict[str, Any]] | None
    probe: dict[str, Any] | None = None

    @property
    def config_file(self) -> Path:
        """``RUN_DIR/config.yaml`` (cited by the report)."""
        return self.run_dir / layout.PRETRAIN_CONFIG

    @property
    def metrics_file(self) -> Path:
        """``RUN_DIR/metrics.jsonl`` (cited by the report)."""
        return self.run_dir / layout.METRICS

    @property
    def probe_file(self) -> Path:
        """``RUN_DIR/probe.json``, written by ``picomaml probe`` (cited by the report)."""
        return self.run_dir / layout.PROBE


def load_pretrain_run(run_dir: Path) -> PretrainRun:
    """Read a pretraining run dir's config and metrics log."""
    metrics, probe = run_dir / layout.METRICS, run_dir / layout.PROBE
    return PretrainRun(
        run_dir,
        read_yaml_mapping(run_dir / layout.PRETRAIN_CONFIG),
        read_jsonl(metrics) if metrics.is_file() else None,
        read_json(probe) if probe.is_file() else None,
    )


@dataclass
class StudyData:
    """A loaded results directory."""

    results_dir: Path
    grid: dict[str, Any]
    cells: list[CellRecord]
    failed: list[dict[str, Any]]
    incomplete: list[str]
    warnings: list[str] = field(default_factory=list)
    derived: dict[str, Any] = field(default_factory=dict)  # derived/index.json
    _pretrain: dict[Path, PretrainRun] = field(default_factory=dict, repr=False)

    def pretrain_run(self, cell: CellRecord) -> PretrainRun | None:
        """The pretraining run behind ``cell``'s backbone (read once), or ``None`` when the
        backbone is not a pretraining run dir or one of its step folders."""
        run_dir = pretrain_run_dir(str(cell.run.get("backbone", "")))
        if run_dir is None:
            return None
        if run_dir not in self._pretrain:
            self._pretrain[run_dir] = load_pretrain_run(run_dir)
        return self._pretrain[run_dir]

    def main(self) -> list[CellRecord]:
        """Cells of the main grid (final backbone weights)."""
        return [c for c in self.cells if c.kind == "main"]

    def sweep(self) -> list[CellRecord]:
        """Cells of checkpoint sweeps."""
        return [c for c in self.cells if c.kind == "sweep"]

    def of_kind(self, kind: str) -> list[CellRecord]:
        """Cells of one kind (``balanced``, ``fewshot``, ...)."""
        return [c for c in self.cells if c.kind == kind]


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """A YAML file as a mapping (``{}`` when empty); invalid YAML names the file."""
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PicomamlError(f"{path}: not valid YAML ({exc})") from exc
    return data if isinstance(data, dict) else {}


def read_predictions(path: Path) -> list[Sentence]:
    """Parse ``predictions/{code}.iob2`` (``index\\ttoken\\tgold\\tpred``, blank line between)."""
    sentences: list[Sentence] = []
    cur = Sentence([], [], [])
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line.strip():
                if cur.tokens:
                    sentences.append(cur)
                cur = Sentence([], [], [])
                continue
            if line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 4:
                raise PicomamlError(
                    f"{path}:{lineno}: expected 4 tab-separated columns "
                    f"(index, token, gold, pred), got {len(parts)}"
                )
            cur.tokens.append(parts[1])
            cur.gold.append(parts[2])
            cur.pred.append(parts[3])
    if cur.tokens:
        sentences.append(cur)
    return sentences


def read_confidence(path: Path) -> list[Sentence]:
    """Parse ``confidence/{code}.jsonl`` into sentences with p(gold) per word."""
    out = []
    for i, row in enumerate(read_jsonl(path), 1):
        try:
            s = Sentence(
                list(row["tokens"]),
                list(row["gold"]),
                list(row["pred"]),
                [float(p) for p in row["p_gold"]],
                str(row.get("sent_id", "")),
            )
        except KeyError as exc:
            raise PicomamlError(f"{path}: sentence {i} lacks key {exc}") from exc
        if not len(s.tokens) == len(s.gold) == len(s.pred) == len(s.p_gold or []):
            raise PicomamlError(f"{path}: sentence {i}: tokens/gold/pred/p_gold lengths differ")
        out.append(s)
    return out


def _cell_meta(cell_dir: Path, run: dict[str, Any]) -> dict[str, Any]:
    meta_path = cell_dir / layout.CELL_JSON
    meta = read_json_object(meta_path) if meta_path.is_file() else {}
    step = meta.get("step")
    if step is None:
        step = run.get("pretrain_step")
    return {
        "kind": meta.get("kind", "main"),
        "variant": meta.get("variant") or run.get("variant") or "unknown",
        "size": meta.get("size") or run.get("size") or "unknown",
        "regime": meta.get("regime") or run.get("regime"),
        "source": meta.get("source") or run.get("source"),
        "seed": int(meta.get("seed", run.get("seed", 0))),
        "step": None if step is None else int(step),
        "target": meta.get("target"),
        "k": meta.get("k"),
        "draw": meta.get("draw"),
    }


def load_cell(cell_dir: Path, rel: str, datasets: tuple[str, ...] = TARGETS) -> CellRecord:
    """Read one finished cell (``results.json`` must exist)."""
    results = read_json_object(cell_dir / layout.RESULTS_JSON)
    if "run" not in results or "datasets" not in results:
        raise PicomamlError(f"{cell_dir / layout.RESULTS_JSON}: expected keys 'run' and 'datasets'")
    run = results["run"]
    meta = _cell_meta(cell_dir, run)
    rec = CellRecord(
        cell_id=cell_dir.name,
        rel=rel,
        run=run,
        datasets=results["datasets"],
        **meta,
    )
    log = cell_dir / layout.TRAIN_LOG
    if log.is_file():
        rec.train_log = read_jsonl(log)
    ft = cell_dir / layout.FINETUNE_YAML
    if ft.is_file():
        rec.finetune_cfg = parse_yaml(ft.read_text(encoding="utf-8")) or {}
    sampling = cell_dir / layout.SAMPLING_JSON
    if sampling.is_file():
        rec.sampling = read_json(sampling)
    derived = [k for k, v in rec.datasets.items() if isinstance(v, dict) and v.get("derived")]
    for code in [*datasets, *derived]:
        conf = cell_dir / layout.confidence_file(code)
        pred = cell_dir / layout.predictions_file(code)
        if conf.is_file():
            rec.sentences[code] = read_confidence(conf)
            rec.has_confidence[code] = True
        elif pred.is_file():
            rec.sentences[code] = read_predictions(pred)
            rec.has_confidence[code] = False
    return rec


def load_study(results_dir: str | Path) -> StudyData:
    """Load every cell under ``RESULTS_DIR/cells`` (finished, failed, or incomplete)."""
    results_dir = Path(results_dir)
    cells_dir = results_dir / layout.CELLS_DIR
    if not cells_dir.is_dir():
        raise PicomamlError(
            f"{results_dir}: no cells/ folder; run `picomaml grid CONFIG --results {results_dir}`"
        )
    grid_path = results_dir / layout.GRID_YAML
    grid = parse_yaml(grid_path.read_text(encoding="utf-8")) if grid_path.is_file() else {}
    cells, failed, incomplete, warnings = [], [], [], []
    for cell_dir in sorted(p for p in cells_dir.iterdir() if p.is_dir()):
        rel = f"{layout.CELLS_DIR}/{cell_dir.name}"
        if (cell_dir / layout.RESULTS_JSON).is_file():
            cell = load_cell(cell_dir, rel)
            cells.append(cell)
            actual = cell.run.get("variant")
            if actual is not None and actual != cell.variant:
                warnings.append(
                    f"`{rel}` is labelled variant '{cell.variant}' by the grid, but its "
                    f"backbone's pretraining config says '{actual}' (`{rel}/run.json`)"
                )
        elif (cell_dir / layout.ERROR_JSON).is_file():
            err = read_json_object(cell_dir / layout.ERROR_JSON)
            failed.append({"cell_id": cell_dir.name, "message": err.get("message", ""), "rel": rel})
        else:
            incomplete.append(cell_dir.name)
    index = results_dir / layout.DERIVED_INDEX
    derived = read_json(index) if index.is_file() else {}
    return StudyData(results_dir, grid or {}, cells, failed, incomplete, warnings, derived)
