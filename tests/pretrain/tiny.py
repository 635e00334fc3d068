"""Shared helpers for the trainer tests: a corpus slice from a data root and a tiny config."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from picomaml.pretrain import trainer
from picomaml.pretrain.config import PretrainConfig, load_pretrain_config


def small_corpus(data_dir: Path, out: Path, train_chars: int = 300_000) -> tuple[Path, Path]:
    """First documents of english-mini (train ~``train_chars`` characters, valid ~40k)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, limit in (("train", train_chars), ("valid", 40_000)):
        dst = out / f"{split}.jsonl.gz"
        if not dst.exists():
            src = data_dir / "corpus" / "english-mini" / f"{split}.jsonl.gz"
            n = 0
            with (
                gzip.open(src, "rt", encoding="utf-8") as fin,
                gzip.open(dst, "wt", encoding="utf-8") as fout,
            ):
                for line in fin:
                    fout.write(line)
                    n += len(line)
                    if n >= limit:
                        break
        paths.append(dst)
    return paths[0], paths[1]


def tiny_config(corpus: tuple[Path, Path], cache: Path, *overrides: str) -> PretrainConfig:
    """d 48, 2 layers, rows of 32 tokens, 4-way 2-shot episodes: a step takes milliseconds."""
    base = [
        f"data.corpus={corpus[0]}",
        f"data.valid={corpus[1]}",
        f"data.cache_dir={cache}",
        "data.seq_len=32",
        "model.d_model=48",
        "model.n_layers=2",
        "model.n_heads=4",
        "model.n_kv_heads=2",
        "runtime.accelerator=cpu",
        "training.lr=1.0e-3",
        "training.min_lr=1.0e-4",
        "training.warmup_steps=2",
        "training.max_steps=3",
        "training.batch_size=8",
        "training.micro_batch_size=4",
        "meta.enabled=true",
        "meta.rho=0.5",
        "meta.ways=4",
        "meta.shots=2",
        "meta.queries=2",
        "meta.window=16",
        "meta.inner_steps=3",
        "meta.inner_lr=0.1",
        "meta.head_layers=2",
        "meta.head_hidden=16",
        "meta.min_word_count=4",
        "meta.max_word_frequency=0.01",
        "checkpointing.every=100",
        "dynamics.enabled=false",
        "logging.every=1",
        "logging.progress_bar=false",
    ]
    return load_pretrain_config(None, base + list(overrides))


def poison_ar_loss(monkeypatch: pytest.MonkeyPatch, at_call: int, factor: float) -> None:
    """Multiply the trainer's AR loss by ``factor`` (nan or inf) on its ``at_call``-th call
    (1-based), so a test can place a non-finite loss on a chosen micro-batch."""
    real = trainer.ar_loss
    calls = {"n": 0}

    def poisoned(model, rows):
        calls["n"] += 1
        loss = real(model, rows)
        return loss * factor if calls["n"] == at_call else loss

    monkeypatch.setattr(trainer, "ar_loss", poisoned)
