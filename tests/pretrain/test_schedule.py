"""Warm-up + cosine schedule at its key steps, and through LambdaLR as the trainer uses it."""

from __future__ import annotations

import math

import pytest
import torch

from picomaml.pretrain.config import TrainingSection
from picomaml.pretrain.schedule import build_scheduler, lr_factor


def test_key_steps_cosine() -> None:
    kw = {"warmup_steps": 10, "max_steps": 110, "min_ratio": 0.1, "kind": "cosine"}
    assert lr_factor(0, **kw) == pytest.approx(0.1)  # first step: 1/warmup, never 0
    assert lr_factor(4, **kw) == pytest.approx(0.5)
    assert lr_factor(9, **kw) == pytest.approx(1.0)  # peak at the last warm-up step
    assert lr_factor(10, **kw) == pytest.approx(1.0)
    assert lr_factor(60, **kw) == pytest.approx(0.55)  # half-way: (1 + min) / 2
    assert lr_factor(35, **kw) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor(110, **kw) == pytest.approx(0.1)
    assert lr_factor(500, **kw) == pytest.approx(0.1)  # stays at the floor


def test_linear_constant_and_no_warmup() -> None:
    assert lr_factor(60, warmup_steps=10, max_steps=110, min_ratio=0.0, kind="linear") == 0.5
    assert lr_factor(99, warmup_steps=10, max_steps=110, kind="constant") == 1.0
    assert lr_factor(0, warmup_steps=0, max_steps=10, min_ratio=0.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor(50, warmup_steps=10, max_steps=110, kind="step")


def test_scheduler_drives_the_optimizer_lr() -> None:
    training = TrainingSection(lr=3e-4, min_lr=3e-5, warmup_steps=4, max_steps=12)
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=training.lr)
    sched = build_scheduler(opt, training)
    seen = []
    for _ in range(14):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen[0] == pytest.approx(3e-4 / 4)
    assert seen[3] == pytest.approx(3e-4)
    assert seen[8] == pytest.approx((3e-4 + 3e-5) / 2)
    assert seen[12] == pytest.approx(3e-5)
    assert all(a >= b for a, b in zip(seen[4:], seen[5:], strict=False))
