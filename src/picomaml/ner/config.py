"""Typed fine-tuning configuration (``configs/finetune/*.yaml``, ``finetune.yaml`` in a run dir).

Flat on purpose: the study grid builds one of these per cell from a few grid-wide keys plus
``backbone``/``source``/``regime``/``seed`` (see ``picomaml.study.grid``), and a CLI override is
then just ``key=value``. Every key is validated by :func:`picomaml.config.load_config`;
inconsistent values raise :class:`PicomamlError` naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from picomaml.config import Regime, Size, apply_overrides, from_dict, load_yaml
from picomaml.config import check as _check
from picomaml.errors import PicomamlError


@dataclass
class LearningRates:
    """AdamW learning rate per regime (the paper uses 3e-5 for both)."""

    head: float = 3e-5
    """AdamW learning rate of the head regime (frozen backbone)."""
    full: float = 3e-5
    """AdamW learning rate of the full regime (backbone fine-tuned too)."""

    def __post_init__(self) -> None:
        for name in ("head", "full"):
            value = getattr(self, name)
            _check(value > 0, f"lr.{name}", "a positive number", value)


@dataclass
class FinetuneConfig:
    """One fine-tuning run: which backbone, which source language, which regime.

    ``size`` is what the run *claims* the backbone to be; when set, a backbone of another
    shape is an error instead of a silently mislabelled result. ``max_train_sentences`` and
    ``max_dev_sentences`` take the first N sentences (0 = all) for demos and tests; they are
    recorded in ``finetune.yaml`` and ``run.json`` so a truncated run is never mistaken for a
    full one. ``window`` is the subword window fed to the backbone (``None`` = the
    backbone's ``max_seq_len``); longer sentences are split into overlapping windows.
    ``eval_every`` is in optimizer steps; 0 means once at the end of every epoch.
    ``patience`` counts evaluations without improvement of source dev micro-F1.
    ``sampling: balanced`` resamples the training sentences so PER, LOC and ORG spans are as
    equal as the data allows, keeping their number (so the number of updates); seeded by
    ``seed`` and recorded in ``sampling.json``. ``extra_train`` names an IOB2 file whose
    sentences are added to the training data (few-shot target sentences).
    """

    backbone: str
    """Backbone folder, run dir, step_N folder or hf: reference (required)."""
    source: str = "sk_snk"
    """UNER source dataset code to fine-tune on, or all."""
    regime: Regime = "head"
    """head: train the CRF head on frozen features; full: fine-tune the backbone too."""
    seed: int = 0
    """Seed of the head, data order and dropout."""
    size: Size | None = None
    """The tier the backbone must be (null: unchecked); a mismatch is an error, not a mislabelled
    result."""
    lr: LearningRates = field(default_factory=LearningRates)
    """Learning rate per regime."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    epochs: int = 10
    """Passes over the training sentences (at most; early stopping may end sooner)."""
    patience: int = 3
    """Evaluations without a better source dev micro-F1 before stopping."""
    batch_size: int = 32
    """Sentences per optimizer step."""
    eval_every: int = 0
    """Optimizer steps between dev evaluations; 0: at the end of every epoch."""
    log_every: int = 10
    """Optimizer steps between log lines."""
    grad_clip: float = 1.0
    """Max gradient L2 norm; 0: off."""
    dropout: float = 0.0
    """Dropout on the features before the CRF head."""
    max_train_sentences: int = 0
    """Use the first N training sentences (0: all); recorded, for demos and tests."""
    max_dev_sentences: int = 0
    """Use the first N dev sentences (0: all); recorded, for demos and tests."""
    constraints: bool = False
    """Forbid invalid IOB2 transitions in the CRF (O -> I-X)."""
    dev_split: Literal["dev", "test"] = "dev"
    """Split used for early stopping."""
    window: int | None = None
    """Subword window fed to the backbone (null: its max_seq_len); longer sentences are split with
    overlap."""
    feature_batch_size: int = 32
    """Windows per forward pass when extracting features."""
    feature_cache_dir: str | None = None
    """Cache of frozen-backbone features (head regime); null: none."""
    device: str = "auto"
    """cpu, cuda, cuda:N or auto."""
    sampling: Literal["natural", "balanced"] = "natural"
    """natural, or balanced: resample so PER, LOC and ORG spans are as equal as the data allows."""
    extra_train: str | None = None
    """IOB2 file whose sentences are added to the training data (few-shot target sentences); null:
    none."""

    def __post_init__(self) -> None:
        _check(bool(self.backbone), "backbone", "a path to a backbone", self.backbone)
        _check(bool(self.source), "source", "a UNER dataset code or 'all'", self.source)
        _check(self.seed >= 0, "seed", "an integer >= 0", self.seed)
        _check(self.weight_decay >= 0, "weight_decay", "a number >= 0", self.weight_decay)
        _check(self.epochs >= 1, "epochs", "an integer >= 1", self.epochs)
        _check(self.patience >= 1, "patience", "an integer >= 1", self.patience)
        _check(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        _check(
            self.eval_every >= 0, "eval_every", "an integer >= 0 (0 = every epoch)", self.eval_every
        )
        _check(self.log_every >= 1, "log_every", "an integer >= 1", self.log_every)
        _check(self.grad_clip >= 0, "grad_clip", "a number >= 0 (0 = off)", self.grad_clip)
        _check(0 <= self.dropout < 1, "dropout", "a number in [0, 1)", self.dropout)
        for name in ("max_train_sentences", "max_dev_sentences"):
            value = getattr(self, name)
            _check(value >= 0, name, "an integer >= 0 (0 = all)", value)
        _check(
            self.window is None or self.window >= 8,
            "window",
            "null (the backbone's max_seq_len) or an integer >= 8",
            self.window,
        )
        _check(
            self.feature_batch_size >= 1,
            "feature_batch_size",
            "an integer >= 1",
            self.feature_batch_size,
        )
        _check(
            self.extra_train is None or bool(self.extra_train),
            "extra_train",
            "null or the path of an IOB2 file",
            self.extra_train,
        )
        _check(
            self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda", "mps"),
            "device",
            "'auto', 'cpu', 'cuda[:N]' or 'mps'",
            self.device,
        )

    @property
    def learning_rate(self) -> float:
        """The learning rate of this run's regime."""
        return self.lr.head if self.regime == "head" else self.lr.full


def load_finetune_config(
    path: str | Path | None,
    overrides: list[str] | None = None,
    fields: dict[str, object] | None = None,
) -> FinetuneConfig:
    """Load a fine-tuning config: YAML file (optional), ``key=value`` overrides, then
    ``fields`` taken literally (CLI flags: a path is never parsed as YAML). Errors name the
    file when there is one."""
    data = load_yaml(path) if path is not None else {}
    data = apply_overrides(data, list(overrides or []))
    data.update({k: v for k, v in (fields or {}).items() if v is not None})
    try:
        return from_dict(FinetuneConfig, data)
    except PicomamlError as exc:
        raise PicomamlError(f"{path}: {exc}" if path is not None else str(exc)) from exc
