"""The ``ablations:`` section of a study grid: the four factors Section 4.2 of the paper
leaves open, each a study axis.

* ``particles``: score the main-grid cells on copies of the target sets without the
  personal case particles before entity spans (``mode: drop``) or with one fixed token in
  their place (``mode: replace``).
* ``names``: score them on copies whose PER spans hold names from a pool of names
  frequent in the pretraining corpus and from a pool of names absent from it.
* ``balance``: fine-tune extra cells with ``sampling: balanced`` beside the natural main
  cells.
* ``fewshot``: fine-tune on the source plus ``k`` sentences drawn from one half of a target
  set, score on the other half.

A section left out (or ``null``) is off; ``{}`` turns it on with the defaults. Every key is
validated when the grid is loaded; an error names the key (``ablations.particles.mode``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from picomaml.config import Regime, check, from_dict
from picomaml.data.labels import ENTITY_TYPES
from picomaml.data.names import SHIPPED_POOLS, read_pool, shipped_pool
from picomaml.data.particles import target_particles
from picomaml.data.registry import SOURCES, TARGETS
from picomaml.data.transforms import NamePool
from picomaml.errors import PicomamlError

#: Keys of ``ablations.fewshot.finetune`` the grid sets itself.
FEWSHOT_RESERVED = ("backbone", "source", "regime", "seed", "extra_train", "sampling")


def _check_targets(targets: list[str], key: str = "targets") -> None:
    check(bool(targets), key, "a non-empty list of target datasets", targets)
    bad = [t for t in targets if t not in TARGETS]
    if bad:
        raise PicomamlError(f"{key}: unknown target(s) {bad}; valid: {list(TARGETS)}")
    check(len(set(targets)) == len(targets), key, "a list without duplicates", targets)


def _check_sources(sources: list[str] | None) -> None:
    if sources is None:
        return
    check(bool(sources), "sources", "null (the grid's) or a non-empty list", sources)
    bad = [s for s in sources if s not in (*SOURCES, "all")]
    if bad:
        raise PicomamlError(f"sources: unknown source(s) {bad}; valid: {[*SOURCES, 'all']}")


@dataclass
class ParticleAblation:
    """Particle masking (evaluation side); the particles come from
    :mod:`picomaml.data.particles` (``analysis.particles`` overrides them per target)."""

    mode: Literal["drop", "replace"] = "drop"
    """drop the particle before each entity span, or replace it with replacement."""
    replacement: str = "ang"
    """Token that replaces the particle with mode replace."""
    targets: list[str] = field(default_factory=lambda: list(TARGETS))
    """Target sets copied without their particles."""
    types: list[str] = field(default_factory=lambda: list(ENTITY_TYPES))
    """Entity types whose preceding particle is masked."""

    def __post_init__(self) -> None:
        _check_targets(self.targets)
        check(
            len(self.replacement.split()) == 1 and self.replacement == self.replacement.strip(),
            "replacement",
            "one word without spaces",
            self.replacement,
        )
        clash = [t for t in self.targets if self.replacement.lower() in target_particles(t)]
        check(not clash, "replacement", f"a word that is no particle of {clash}", self.replacement)
        bad = [t for t in self.types if t not in ENTITY_TYPES]
        check(bool(self.types) and not bad, "types", f"a list of {list(ENTITY_TYPES)}", self.types)


@dataclass
class NameAblation:
    """Controlled name substitution (evaluation side). ``frequent``/``unseen``: pool files
    (null = the pool shipped with picomaml); ``seed`` fixes the draw, which every backbone
    shares."""

    frequent: str | None = None
    """Pool file of names frequent in the pretraining corpus; null: the shipped pool."""
    unseen: str | None = None
    """Pool file of names absent from the pretraining corpus; null: the shipped pool."""
    seed: int = 0
    """Seed of the name draw, shared by every backbone."""
    targets: list[str] = field(default_factory=lambda: list(TARGETS))
    """Target sets whose PER spans are substituted."""

    def __post_init__(self) -> None:
        _check_targets(self.targets)
        check(self.seed >= 0, "seed", "an integer >= 0", self.seed)
        for name in SHIPPED_POOLS:
            try:
                self.pool(name)
            except PicomamlError as exc:
                raise PicomamlError(f"{name}: {exc}") from exc

    def pool_path(self, name: str) -> Path:
        """The pool file of ``name`` (``frequent`` or ``unseen``)."""
        given = getattr(self, name)
        return shipped_pool(name) if given is None else Path(given)

    def pool(self, name: str) -> NamePool:
        """The pool ``name``, read and checked (an empty pool is an error naming the file)."""
        return read_pool(self.pool_path(name), name)


@dataclass
class BalanceAblation:
    """Balanced resampling (fine-tuning side): a ``balanced`` cell beside every natural main
    cell of these regimes and sources (null = the grid's)."""

    regimes: list[Regime] | None = None
    """Regimes given a balanced cell; null: the grid's."""
    sources: list[str] | None = None
    """Sources given a balanced cell; null: the grid's."""

    def __post_init__(self) -> None:
        if self.regimes is not None:
            check(bool(self.regimes), "regimes", "null or a non-empty list", self.regimes)
        _check_sources(self.sources)


@dataclass
class FewshotCurve:
    """Which fine-tuning regimes draw curves for which targets."""

    regimes: list[Regime]
    """Fine-tuning regimes that draw these curves."""
    targets: list[str] = field(default_factory=lambda: list(TARGETS))
    """Target sets with a curve."""

    def __post_init__(self) -> None:
        check(bool(self.regimes), "regimes", "a non-empty list", self.regimes)
        check(len(set(self.regimes)) == len(self.regimes), "regimes", "no duplicates", self.regimes)
        _check_targets(self.targets)


@dataclass
class FewshotAblation:
    """Few-shot target curves (fine-tuning side).

    ``ks``: target sentences added to the fine-tuning data; ``draws``: seeded draws per
    ``k`` (nested: a draw's larger ``k`` extends its smaller one); ``split_seed`` fixes the
    evaluation half of each target, which no draw touches; ``cap``: a ``k`` above what the
    other half holds is cut to it (and the report says so) instead of being an error;
    ``curves`` (null = the grid's regimes x every target; a list of :class:`FewshotCurve`);
    ``finetune``: fine-tuning keys for these cells only (e.g. a smaller source slice).
    """

    ks: list[int] = field(default_factory=lambda: [0, 5, 10, 25, 50])
    """Target sentences added to the fine-tuning data, one curve point each."""
    draws: int = 5
    """Seeded draws per k (nested: a larger k extends a smaller one); at least 2."""
    seed: int = 0
    """Seed of the draws."""
    split_seed: int = 0
    """Seed that fixes each target's evaluation half, which no draw touches."""
    cap: bool = True
    """Cut a k above what the other half holds (and say so) instead of failing."""
    sources: list[str] | None = None
    """Sources of the few-shot cells; null: the grid's."""
    curves: Any = None  # list[FewshotCurve] | None, built in __post_init__
    """Which regimes draw curves for which targets; null: the grid's regimes x every target."""
    finetune: dict[str, Any] = field(default_factory=dict)
    """Fine-tuning keys for these cells only."""

    def __post_init__(self) -> None:
        check(bool(self.ks), "ks", "a non-empty list of integers >= 0", self.ks)
        check(all(k >= 0 for k in self.ks), "ks", "integers >= 0", self.ks)
        check(len(set(self.ks)) == len(self.ks), "ks", "a list without duplicates", self.ks)
        check(self.draws >= 2, "draws", "an integer >= 2 (a band needs two draws)", self.draws)
        check(self.seed >= 0, "seed", "an integer >= 0", self.seed)
        check(self.split_seed >= 0, "split_seed", "an integer >= 0", self.split_seed)
        _check_sources(self.sources)
        if self.curves is not None:
            check(
                isinstance(self.curves, list) and bool(self.curves),
                "curves",
                "null or a non-empty list of {regimes, targets}",
                self.curves,
            )
            self.curves = [
                _section(FewshotCurve, c, f"curves[{i}]") for i, c in enumerate(self.curves)
            ]
        reserved = sorted(set(FEWSHOT_RESERVED) & set(self.finetune))
        if reserved:
            raise PicomamlError(f"finetune: {reserved} are set per cell by the grid; remove them")

    def curve_targets(self, grid_regimes: list[str]) -> dict[str, list[str]]:
        """Regime -> the targets it draws curves for, in target order."""
        curves = self.curves or [FewshotCurve(list(grid_regimes))]  # type: ignore[arg-type]
        out: dict[str, list[str]] = {}
        for curve in curves:
            for regime in curve.regimes:
                have = out.setdefault(regime, [])
                have += [t for t in curve.targets if t not in have]
        return {r: [t for t in TARGETS if t in ts] for r, ts in out.items()}

    def targets(self, grid_regimes: list[str]) -> list[str]:
        """Every target of any curve, in target order."""
        wanted = {t for ts in self.curve_targets(grid_regimes).values() for t in ts}
        return [t for t in TARGETS if t in wanted]


def _section(cls: type, value: Any, key: str) -> Any:
    """A nested section built here rather than by the generic loader, so an error inside an
    optional section names its key and says what was wrong (``particles.mode: expected
    one of ['drop', 'replace'], got 'mask'``) instead of a type mismatch of the union."""
    if value is None or isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise PicomamlError(f"{key}: expected a mapping (or null), got {value!r}")
    return from_dict(cls, value, prefix=f"{key}.")


@dataclass
class AblationSpec:
    """The four ablations; each is off unless its section is present (``{}``: defaults).

    The fields hold :class:`ParticleAblation`, :class:`NameAblation`,
    :class:`BalanceAblation` and :class:`FewshotAblation` (or None), built in
    ``__post_init__``.
    """

    particles: Any = None
    """Particle masking (evaluation side); null: off."""
    names: Any = None
    """Controlled name substitution (evaluation side); null: off."""
    balance: Any = None
    """Balanced resampling (fine-tuning side); null: off."""
    fewshot: Any = None
    """Few-shot target curves (fine-tuning side); null: off."""

    def __post_init__(self) -> None:
        self.particles = _section(ParticleAblation, self.particles, "particles")
        self.names = _section(NameAblation, self.names, "names")
        self.balance = _section(BalanceAblation, self.balance, "balance")
        self.fewshot = _section(FewshotAblation, self.fewshot, "fewshot")

    @property
    def any(self) -> bool:
        """Whether any ablation is on."""
        return any(x is not None for x in (self.particles, self.names, self.balance, self.fewshot))
