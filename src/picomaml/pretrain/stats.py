"""Per-step statistics of the pretraining loop and the logging window that averages them.

A statistic is a field of :class:`StepStats`. During a step the fields are summed on the
device (one tensor, no host sync per micro-batch) by :class:`StatsAccumulator`, averaged over
ranks with one collective, and read back as a :class:`StepStats`. To log a new statistic, add
a field, ``add`` to it in the loop and name it in :meth:`Window.flush`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from picomaml.pretrain.maml import EPISODE_METRICS


@dataclass
class StepStats:
    """Sums over one optimizer step's micro-batches (losses, counts, episode metrics), or
    over several steps (a logging window)."""

    ar_loss: float = 0.0
    n_ar: float = 0.0
    meta_loss: float = 0.0
    n_meta: float = 0.0
    bad_ar: float = 0.0
    bad_meta: float = 0.0
    support_acc_before: float = 0.0
    support_acc_after: float = 0.0
    support_loss_before: float = 0.0
    support_loss_after: float = 0.0
    query_acc: float = 0.0
    chance_acc: float = 0.0
    feature_cosine: float = 0.0
    feature_class_share: float = 0.0
    head_weight_mean: float = 0.0
    head_weight_std: float = 0.0
    head_grad_norm: float = 0.0
    ar_grad_norm: float = 0.0
    n_ar_grad: float = 0.0
    meta_grad_norm: float = 0.0
    n_meta_grad: float = 0.0
    grad_norm: float = 0.0

    def __add__(self, other: StepStats) -> StepStats:
        return StepStats(**{n: getattr(self, n) + getattr(other, n) for n in stat_names()})


#: Episode metrics returned by ``episode_loss`` and logged as means over meta micro-batches
#: (the query loss is logged as ``meta_loss``).
EPISODE_KEYS = tuple(k for k in EPISODE_METRICS if k != "query_loss")


def stat_names() -> tuple[str, ...]:
    """The fields of :class:`StepStats`, in order."""
    return tuple(f.name for f in dataclasses.fields(StepStats))


class StatsAccumulator:
    """Device-side sums of :class:`StepStats` fields during one step."""

    def __init__(self, device: torch.device) -> None:
        dtype = torch.float32 if device.type == "mps" else torch.float64
        names = stat_names()
        self._slot = {name: i for i, name in enumerate(names)}
        self.values = torch.zeros(len(names), dtype=dtype, device=device)

    def add(self, name: str, value: Tensor | float) -> None:
        """Add ``value`` (a device tensor stays on the device) to the sum ``name``."""
        self.values[self._slot[name]] += value

    def to_stats(self, values: Tensor) -> StepStats:
        """``values`` (this accumulator's tensor after reduction) as named statistics."""
        return StepStats(*(float(v) for v in values.cpu().tolist()))


class Window:
    """Sums of the reduced per-step stats between two log lines."""

    def __init__(self, tokens: int) -> None:
        self.sums: StepStats | None = None
        self.steps = 0
        self.t0 = time.perf_counter()
        self.tokens0 = self.tokens = tokens
        self.total_ar = self.total_meta = 0
        self.last: dict[str, float] = {}

    def add(self, stats: StepStats, tokens: int) -> None:
        self.sums = stats if self.sums is None else self.sums + stats
        self.steps += 1
        self.tokens = tokens
        self.total_ar += int(stats.n_ar)
        self.total_meta += int(stats.n_meta)
        if stats.n_ar:
            self.last["ar"] = stats.ar_loss / stats.n_ar
        if stats.n_meta:
            self.last["meta"] = stats.meta_loss / stats.n_meta
            self.last["query_acc"] = stats.query_acc / stats.n_meta
            self.last["chance"] = stats.chance_acc / stats.n_meta
        self.last["tok_s"] = (tokens - self.tokens0) / max(time.perf_counter() - self.t0, 1e-9)

    def postfix(self) -> str:
        parts = [f"{self.last.get('tok_s', 0):,.0f} tok/s"]
        if "ar" in self.last:
            parts.append(f"ar {self.last['ar']:.3f}")
        if "meta" in self.last:
            chance = self.last["chance"]
            parts.append(f"meta {self.last['meta']:.3f} (ln N {-math.log(chance):.3f})")
            parts.append(f"query acc {self.last['query_acc']:.0%} (chance {chance:.0%})")
        parts.append(f"AR/meta {self.total_ar}/{self.total_meta}")
        return ", ".join(parts)

    def flush(self, step: int, lr: float) -> dict[str, Any]:
        """The log record of the window (means over its micro-batches), then reset."""
        assert self.sums is not None
        s = self.sums
        n_ar, n_meta = s.n_ar, s.n_meta
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        record: dict[str, Any] = {
            "step": step,
            "kind": "train",
            "lr": lr,
            "ar_loss": s.ar_loss / n_ar if n_ar else None,
            "meta_loss": s.meta_loss / n_meta if n_meta else None,
            "ar_per_step": n_ar / self.steps,
            "meta_per_step": n_meta / self.steps,
            "grad_norm": s.grad_norm / self.steps,
            "tokens": self.tokens,
            "tokens_per_s": (self.tokens - self.tokens0) / elapsed,
        }
        for key in EPISODE_KEYS:
            record[key] = getattr(s, key) / n_meta if n_meta else None
        for branch in ("ar", "meta"):
            n = getattr(s, f"n_{branch}_grad")
            record[f"{branch}_grad_norm"] = getattr(s, f"{branch}_grad_norm") / n if n else None
        self.sums, self.steps, self.t0, self.tokens0 = None, 0, time.perf_counter(), self.tokens
        return record
