"""Per-step statistics of the pretraining loop and the logging window that averages them.

A statistic is a field of :class:`StepStats`. Between two read-backs (every logging step,
plus checkpoint and dynamics steps) the fields are summed on the device, over micro-batches
and optimizer steps alike, by :class:`StatsAccumulator` (no host sync per micro-batch or per
step), then averaged over ranks with one collective and read back as a :class:`StepStats`:
the loop's one host-device sync per logging step. :class:`Window` adds the read-backs up
until the log line. To log a new statistic, add a field, ``add`` to it in the loop and name
it in :meth:`Window.flush`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from picomaml.pretrain.maml import EPISODE_METRICS


@dataclass
class StepStats:
    """Sums over micro-batches (losses, counts, episode metrics, non-finite counts) and
    optimizer steps (gradient norms) since a read-back, or over a logging window."""

    ar_loss: float = 0.0
    n_ar: float = 0.0
    meta_loss: float = 0.0
    n_meta: float = 0.0
    bad_ar: float = 0.0
    bad_meta: float = 0.0
    bad_grad: float = 0.0
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
    query_max_prob: float = 0.0
    query_entropy: float = 0.0
    logit_scale: float = 0.0
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


#: The counts of non-finite values: AR losses, query losses, gradient norms.
BAD_KEYS = ("bad_ar", "bad_meta", "bad_grad")


class StatsAccumulator:
    """Device-side sums of :class:`StepStats` fields since the last read-back.

    It also remembers, on the device, the first optimizer step whose values were not
    finite, so a read-back several steps later can still say where it started.
    """

    def __init__(self, device: torch.device) -> None:
        dtype = torch.float32 if device.type == "mps" else torch.float64
        names = stat_names()
        self._slot = {name: i for i, name in enumerate(names)}
        first = self._slot[BAD_KEYS[0]]
        assert [self._slot[k] for k in BAD_KEYS] == list(range(first, first + len(BAD_KEYS)))
        self._bad = slice(first, first + len(BAD_KEYS))
        self.values = torch.zeros(len(names), dtype=dtype, device=device)
        self._bad_seen = torch.zeros((), dtype=dtype, device=device)
        self._first_bad = torch.full((), math.inf, dtype=dtype, device=device)
        self.steps = 0

    def add(self, name: str, value: Tensor | float) -> None:
        """Add ``value`` (a device tensor stays on the device) to the sum ``name``."""
        self.values[self._slot[name]] += value

    def end_step(self, step: int) -> None:
        """Close optimizer step ``step``: if it added a non-finite count, and it is the
        first since the last reset, remember its number (on the device)."""
        bad = self.values[self._bad].sum()
        new = torch.where(bad > self._bad_seen, self._first_bad.clamp(max=step), self._first_bad)
        self._first_bad, self._bad_seen = new, bad
        self.steps += 1

    def read(self, all_reduce: Callable[[Tensor], Tensor]) -> StepStats:
        """The sums since the last reset, averaged over ranks by ``all_reduce`` (in place).

        This is where the host waits for the device: call it once per logging step.
        """
        return StepStats(*(float(v) for v in all_reduce(self.values).cpu().tolist()))

    def first_bad_step(self, all_reduce_min: Callable[[Tensor], Tensor]) -> int | None:
        """The first step with a non-finite count since the last reset, over all ranks."""
        first = float(all_reduce_min(self._first_bad.clone()).cpu())
        return int(first) if math.isfinite(first) else None

    def reset(self) -> None:
        """Start the next read-back period."""
        self.values.zero_()
        self._bad_seen.zero_()
        self._first_bad.fill_(math.inf)
        self.steps = 0


class Window:
    """Sums of the read-backs between two log lines; the progress bar's figures are the
    means since the last read-back."""

    def __init__(self, tokens: int) -> None:
        self.sums: StepStats | None = None
        self.steps = 0
        self.t0 = time.perf_counter()
        self.tokens0 = self.tokens = tokens
        self.total_ar = self.total_meta = 0
        self.last: dict[str, float] = {}

    def add(self, stats: StepStats, steps: int, tokens: int) -> None:
        """Add a read-back covering ``steps`` optimizer steps; ``tokens`` read so far."""
        self.sums = stats if self.sums is None else self.sums + stats
        self.steps += steps
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
