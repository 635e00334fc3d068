"""Typed study-grid configuration (``configs/study/*.yaml``).

Why a dataclass and not a free-form dict: a grid of 160 fine-tuning runs is
expensive, and a misspelt key (``regime`` vs ``regimes``) silently shrinking or
changing it is the worst kind of bug. Every key is checked by
:func:`picomaml.config.load_config`; cross-field rules (known datasets, unique
backbones, sweeps that name a declared backbone) are checked here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from picomaml.config import Regime, check, from_dict, load_config
from picomaml.data.particles import TARGET_LANGUAGE, target_particles
from picomaml.data.registry import PUD, SOURCES, TARGETS
from picomaml.errors import PicomamlError
from picomaml.model.backbone import checkpoint_reference, step_template
from picomaml.model.hub import is_hub_ref, parse_hub_ref
from picomaml.ner.config import FinetuneConfig
from picomaml.study.ablation_config import AblationSpec

SOURCE_CODES: tuple[str, ...] = SOURCES
PUD_CODES: tuple[str, ...] = PUD
TARGET_CODES: tuple[str, ...] = TARGETS
#: ``source`` in an evaluation list means "the fine-tuning source's own test set".
EVAL_CHOICES: tuple[str, ...] = (*TARGET_CODES, *PUD_CODES, *SOURCE_CODES, "source")

#: Personal case particles (Appendix D.2 / Figure 8), keyed by target dataset code; the
#: lists come from the one table in :mod:`picomaml.data.particles`.
DEFAULT_PARTICLES: dict[str, list[str]] = {code: target_particles(code) for code in TARGET_LANGUAGE}


@dataclass
class BackboneSpec:
    """One pretrained backbone: a (variant, size) pair and where its weights live.

    ``path`` may be a pretraining run dir (its ``checkpoints/latest`` is used), a
    ``checkpoints/step_N`` folder, a Pico HF folder or a published checkpoint
    ``hf:OWNER/REPO[@REVISION][/SUBFOLDER]``. ``{results}`` in a path is
    replaced by the grid's results dir, so demo grids are relocatable.
    ``pretrain_config``/``pretrain_overrides`` record how to create ``path`` with
    ``picomaml pretrain``; ``picomaml demo`` runs them, ``picomaml grid`` only
    quotes them when the backbone is missing.

    ``checkpoints`` says where a checkpoint sweep finds step N when ``path`` is not a
    pretraining run dir: a template with ``{step}`` (e.g. ``hf:OWNER/REPO/checkpoints/
    step_{step}``) or a mapping from step to reference (pico-lm keeps each step as a commit
    of a branch: ``{0: hf:pico-lm/pico-decoder-tiny@<commit>, ...}``). For an ``hf:`` path
    ending in ``checkpoints/step_N`` the template is implied.
    """

    variant: str
    """Backbone variant name, e.g. vanilla or maml ([A-Za-z0-9_])."""
    size: str
    """Tier name of the backbone."""
    path: str
    """Run dir, checkpoints/step_N folder, Pico folder or hf: reference; {results} is the grid's
    results dir."""
    pretrain_config: str | None = None
    """Pretraining config that creates path (run by picomaml demo, quoted by grid)."""
    pretrain_overrides: list[str] = field(default_factory=list)
    """Overrides for pretrain_config."""
    checkpoints: str | dict[int, str] | None = None
    """Where a sweep finds step N outside a run dir: a template with {step}, or a step -> reference
    mapping."""

    def __post_init__(self) -> None:
        for name in ("variant", "size"):
            value = getattr(self, name)
            check(
                bool(value) and value.replace("_", "").isalnum(),
                name,
                "a non-empty [A-Za-z0-9_] name",
                value,
            )
        check(bool(self.path), "path", "a non-empty path", self.path)
        if is_hub_ref(self.path):
            _check_reference(self.path, "path")
        if isinstance(self.checkpoints, str):
            check(
                "{step}" in self.checkpoints,
                "checkpoints",
                "a template containing {step} or a mapping step -> reference",
                self.checkpoints,
            )
            _check_reference(self.checkpoints.replace("{step}", "0"), "checkpoints")
        elif isinstance(self.checkpoints, dict):
            check(bool(self.checkpoints), "checkpoints", "a non-empty mapping", self.checkpoints)
            for step, ref in self.checkpoints.items():
                check(step >= 0, "checkpoints", "steps >= 0", step)
                check(bool(ref), f"checkpoints.{step}", "a non-empty reference", ref)
                _check_reference(ref, f"checkpoints.{step}")

    @property
    def is_hub(self) -> bool:
        """True when the weights are a published checkpoint on the Hub (``hf:``)."""
        return is_hub_ref(self.path)

    def resolved_path(self, results_dir: Path) -> Path:
        """The backbone path with ``{results}`` substituted (local backbones only)."""
        return Path(self.path.replace("{results}", str(results_dir)))

    def reference(self, results_dir: Path) -> str:
        """What a cell passes to fine-tuning: the ``hf:`` reference as written, else the
        local path with ``{results}`` substituted."""
        return self.path if self.is_hub else str(self.resolved_path(results_dir))

    def checkpoint_template(self) -> str | dict[int, str] | None:
        """``checkpoints``, or the template implied by an ``hf:.../checkpoints/step_N`` path;
        None when steps come from a local pretraining run dir."""
        if self.checkpoints is not None or not self.is_hub:
            return self.checkpoints
        return step_template(self.path)

    def checkpoint(self, step: int, results_dir: Path) -> str:
        """The reference of pretraining step ``step`` (validated at load for explicit steps)."""
        return checkpoint_reference(
            self.resolved_path(results_dir), self.checkpoint_template(), step
        )


@dataclass
class SweepSpec:
    """Fine-tune from many pretraining checkpoints of one backbone (Section 4.1).

    ``steps: all`` means every complete ``checkpoints/step_N`` folder present in
    the backbone's run dir when the grid is expanded.
    """

    variants: list[str]
    """Backbone variants swept (each with every size must be a listed backbone)."""
    sizes: list[str]
    """Backbone sizes swept."""
    regimes: list[Regime] = field(default_factory=lambda: ["head"])
    """Fine-tuning regimes of the sweep's cells."""
    sources: list[str] = field(default_factory=lambda: ["sk_snk"])
    """Source datasets of the sweep's cells."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Fine-tuning seeds of the sweep's cells."""
    steps: list[int] | Literal["all"] = "all"
    """Checkpoint steps, or all complete step_N folders of the run dir."""

    def __post_init__(self) -> None:
        if isinstance(self.steps, list):
            check(bool(self.steps), "steps", "'all' or a non-empty list of steps", self.steps)
            check(all(s >= 0 for s in self.steps), "steps", "steps >= 0", self.steps)
            check(len(set(self.steps)) == len(self.steps), "steps", "no duplicates", self.steps)
        _check_lists(self, ("variants", "sizes", "regimes", "sources", "seeds"))
        _check_sources(self.sources)


@dataclass
class EvaluateSpec:
    """Which test sets every cell is scored on (Appendix D: all 18)."""

    datasets: list[str] = field(
        default_factory=lambda: [*TARGET_CODES, *PUD_CODES, "source"],
    )
    """Test sets every cell is scored on (targets, PUD sets, source sets, or source for the cell's
    own)."""

    def __post_init__(self) -> None:
        bad = [d for d in self.datasets if d not in EVAL_CHOICES]
        if bad:
            raise PicomamlError(
                f"datasets: unknown evaluation dataset(s) {bad}; valid: {list(EVAL_CHOICES)}"
            )
        check(bool(self.datasets), "datasets", "a non-empty list", self.datasets)


@dataclass
class CaseStudySpec:
    """Which vanilla/MAML pair the case studies compare (Appendix B); None = first found."""

    size: str | None = None
    """Size of the compared pair; null: the first found."""
    regime: Regime | None = "head"
    """Regime of the compared pair; null: the first found."""
    source: str | None = "sk_snk"
    """Source of the compared pair; null: the first found."""
    seed: int | None = None
    """Seed of the compared pair; null: the first found."""
    n_sentences: int = 3
    """Sentences shown per case study."""


@dataclass
class AnalysisSpec:
    """Knobs of the report's analyses; defaults follow the paper."""

    particles: dict[str, list[str]] = field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_PARTICLES.items()}
    )
    """Personal case particles per target dataset code (default: picomaml.data.particles)."""
    top_words: int = 10
    """Words listed in the per-word tables."""
    sweep_source: str = "sk_snk"
    """Source whose checkpoint sweep the sweep analyses read."""
    case_study: CaseStudySpec = field(default_factory=CaseStudySpec)
    """Which vanilla/MAML pair the case studies compare."""
    n_resamples: int = 1000
    """Bootstrap resamples of every interval (at least 10)."""
    bootstrap_seed: int = 0
    """Seed of the bootstrap."""
    baseline_variant: str = "vanilla"
    """Variant every contrast starts from."""
    treatment_variant: str = "maml"
    """Variant compared against the baseline."""

    def __post_init__(self) -> None:
        check(self.top_words >= 1, "top_words", "an integer >= 1", self.top_words)
        check(self.n_resamples >= 10, "n_resamples", "an integer >= 10", self.n_resamples)
        bad = [k for k in self.particles if k not in TARGET_CODES]
        if bad:
            raise PicomamlError(f"particles: unknown target(s) {bad}; valid: {list(TARGET_CODES)}")
        _check_sources([self.sweep_source], "sweep_source")


@dataclass
class GridConfig:
    """A study grid: backbones x regimes x sources x seeds (+ checkpoint sweeps).

    ``finetune`` holds keys of the NER fine-tuning config applied to every cell
    (the cell itself sets backbone, source, regime and seed); they are validated
    against that config class when the grid is loaded.
    """

    name: str
    """Grid name ([A-Za-z0-9_-])."""
    backbones: list[BackboneSpec]
    """The pretrained backbones, one per (variant, size)."""
    regimes: list[Regime] = field(default_factory=lambda: ["head", "full"])
    """Fine-tuning regimes of the main cells."""
    sources: list[str] = field(default_factory=lambda: [*SOURCE_CODES, "all"])
    """Source datasets of the main cells (UNER codes or all)."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Fine-tuning seeds of the main cells."""
    finetune: dict[str, Any] = field(default_factory=dict)
    """Fine-tuning keys applied to every cell (validated against the fine-tuning config)."""
    evaluate: EvaluateSpec = field(default_factory=EvaluateSpec)
    """Which test sets every cell is scored on."""
    sweeps: list[SweepSpec] = field(default_factory=list)
    """Checkpoint sweeps: cells fine-tuned from many pretraining steps."""
    analysis: AnalysisSpec = field(default_factory=AnalysisSpec)
    """Knobs of the report's analyses."""
    ablations: AblationSpec = field(default_factory=AblationSpec)
    """The ablations of Section 4.2; each off unless present."""
    description: str = ""
    """Free text shown in the report."""

    def __post_init__(self) -> None:
        check(
            bool(self.name) and self.name.replace("-", "").replace("_", "").isalnum(),
            "name",
            "a simple name ([A-Za-z0-9_-])",
            self.name,
        )
        check(bool(self.backbones), "backbones", "at least one backbone", self.backbones)
        keys = [(b.variant, b.size) for b in self.backbones]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        check(not dupes, "backbones", f"unique (variant, size) pairs, not twice {dupes}", keys)
        _check_lists(self, ("regimes", "sources", "seeds"))
        _check_sources(self.sources)
        for i, sweep in enumerate(self.sweeps):
            for v in sweep.variants:
                for s in sweep.sizes:
                    if (v, s) not in keys:
                        raise PicomamlError(
                            f"sweeps[{i}]: no backbone declared for variant={v} size={s}"
                        )
                    _check_sweep_steps(sweep, self.backbone(v, s), f"sweeps[{i}]")
        reserved = {"backbone", "source", "regime", "seed"} & set(self.finetune)
        if reserved:
            raise PicomamlError(
                f"finetune: {sorted(reserved)} are set per cell by the grid; remove them"
            )
        _check_ablations(self)

    def backbone(self, variant: str, size: str) -> BackboneSpec:
        """The backbone entry for (variant, size)."""
        for b in self.backbones:
            if b.variant == variant and b.size == size:
                return b
        raise KeyError((variant, size))


def _check_ablations(cfg: GridConfig) -> None:
    """Rules between ``ablations`` and the rest of the grid."""
    ab = cfg.ablations
    if ab.balance is not None:
        if cfg.finetune.get("sampling", "natural") != "natural":
            raise PicomamlError(
                "ablations.balance: compares balanced cells with the natural main cells, so "
                f"finetune.sampling must stay natural (got {cfg.finetune['sampling']!r})"
            )
        for key, values, allowed in (
            ("regimes", ab.balance.regimes, cfg.regimes),
            ("sources", ab.balance.sources, cfg.sources),
        ):
            extra = [v for v in values or [] if v not in allowed]
            if extra:
                raise PicomamlError(
                    f"ablations.balance.{key}: {extra} are not in the grid's {key} {allowed} "
                    "(each balanced cell is compared with the main cell beside it)"
                )


def _check_reference(ref: str, key: str) -> None:
    """An ``hf:`` reference must parse (the network is not asked at load time)."""
    if is_hub_ref(ref):
        try:
            parse_hub_ref(ref)
        except PicomamlError as exc:
            raise PicomamlError(f"{key}: {exc}") from exc


def _check_lists(obj: Any, names: tuple[str, ...]) -> None:
    for name in names:
        values = getattr(obj, name)
        check(bool(values), name, "a non-empty list", values)
        check(len(set(values)) == len(values), name, "a list without duplicates", values)


def _check_sweep_steps(sweep: SweepSpec, spec: BackboneSpec, where: str) -> None:
    """A sweep over a backbone that is not a local run dir needs steps known without the
    network, so every shard expands the same cells."""
    template = spec.checkpoint_template()
    name = f"variant={spec.variant} size={spec.size}"
    if template is None:
        if spec.is_hub:
            raise PicomamlError(
                f"{where}: backbone {name} is {spec.path}, which names no checkpoints/step_N "
                "folder; give the backbone a `checkpoints:` template with {step} or a mapping "
                f"step -> reference (`picomaml model list-checkpoints {spec.path}` lists them)"
            )
        return
    if isinstance(template, dict):
        if sweep.steps != "all":
            missing = [s for s in sweep.steps if s not in template]
            if missing:
                raise PicomamlError(
                    f"{where}: steps {missing} have no entry in the `checkpoints:` of backbone "
                    f"{name} (it has {sorted(template)})"
                )
        return
    if sweep.steps == "all":
        raise PicomamlError(
            f"{where}: `steps: all` over backbone {name} ({template}) would ask the Hub which "
            "steps exist, so shards could expand differently; list the steps (`picomaml model "
            "list-checkpoints` shows them)"
        )


def _check_sources(sources: list[str], key: str = "sources") -> None:
    bad = [s for s in sources if s not in (*SOURCE_CODES, "all")]
    if bad:
        raise PicomamlError(f"{key}: unknown source(s) {bad}; valid: {[*SOURCE_CODES, 'all']}")


def build_finetune_config(
    overrides: dict[str, Any], *, backbone: str, source: str, regime: str, seed: int
) -> FinetuneConfig:
    """The NER fine-tuning config of one cell: grid-wide keys plus the cell's own."""
    data = dict(overrides)
    data.update(backbone=backbone, source=source, regime=regime, seed=seed)
    return from_dict(FinetuneConfig, data)


def validate_finetune_keys(finetune: dict[str, Any], where: str = "finetune") -> None:
    """Check the grid's ``finetune`` overrides against the NER fine-tuning config class.

    Done at load time so a typo fails before 160 cells start, not inside each one.
    """
    try:
        build_finetune_config(finetune, backbone="BACKBONE", source="sk_snk", regime="head", seed=0)
    except PicomamlError as exc:
        raise PicomamlError(f"{where}: {exc}") from exc


def load_grid(path: str | Path, overrides: list[str] | None = None) -> GridConfig:
    """Load and fully validate a grid YAML (including the ``finetune`` section)."""
    cfg = load_config(GridConfig, path, overrides)
    validate_finetune_keys(cfg.finetune, where=f"{path}: finetune")
    if cfg.ablations.fewshot is not None:
        merged = {**cfg.finetune, **cfg.ablations.fewshot.finetune}
        validate_finetune_keys(merged, where=f"{path}: ablations.fewshot.finetune")
    return cfg


def grid_fields() -> list[str]:
    """Top-level keys of a grid file (for docs and error messages)."""
    return [f.name for f in dataclasses.fields(GridConfig)]
