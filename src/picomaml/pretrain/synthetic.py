"""Does the episode learn? The MAML head on synthetic, informative features.

Why: on a real backbone an episode can sit at ln N for two different reasons, features
that carry no class signal or a head that cannot learn from them. Here the features
are known to be informative, so a head configuration that stays at ln N is dead by
construction. This is the measurement behind the ``meta.output_init`` default
(docs/pretraining.md) and behind ``tests/test_maml_learns.py``.

Features: every word ``w`` of a fixed vocabulary has a random direction ``u_w``; a window
of word ``w`` has the feature ``a*u_w + b*noise + s*c`` with ``a^2 = snr/(1+snr)``,
``b^2 = 1/(1+snr)`` (per-dimension RMS 1 without the shared part) and ``c`` one random
direction shared by every window (``shared`` > 0 imitates the collapsed features of an
early backbone). Training episodes draw their words from the first ``train_fraction``
of the vocabulary and held-out episodes from the rest, so the held-out query loss
measures adaptation to new classes, which is what the meta-learner is for. Only the
head is trained (AdamW on its persistent parameters, the query loss of one episode per
outer step, gradient-norm clipping as in pretraining), the paper's inner loop unchanged.
Held-out episodes are scored without dropout.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from picomaml.pretrain.config import MetaSection
from picomaml.pretrain.maml import adapt_and_query
from picomaml.pretrain.meta_head import MetaHead, class_means, support_gradient


@dataclass(frozen=True)
class SyntheticTask:
    """The feature distribution and the training budget of :func:`run_synthetic`."""

    d: int = 96
    vocab: int = 1000
    snr: float = 0.2
    shared: float = 0.0
    train_fraction: float = 0.8
    episodes: int = 200
    eval_episodes: int = 64
    eval_every: int = 50
    lr: float = 1e-3
    grad_clip: float | None = 1.0
    seed: int = 0


class _Features:
    """Word directions and the draw of one episode's features (seeded, device-free)."""

    def __init__(self, task: SyntheticTask) -> None:
        gen = torch.Generator().manual_seed(task.seed)
        self.task = task
        self.directions = torch.randn(task.vocab, task.d, generator=gen)
        self.shared = torch.randn(task.d, generator=gen)
        self.n_train = int(task.vocab * task.train_fraction)

    def episode(
        self, gen: torch.Generator, ways: int, shots: int, queries: int, held_out: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        lo, hi = (self.n_train, self.task.vocab) if held_out else (0, self.n_train)
        words = lo + torch.randperm(hi - lo, generator=gen)[:ways]
        a = math.sqrt(self.task.snr / (1 + self.task.snr))
        b = math.sqrt(1 / (1 + self.task.snr))

        def draw(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
            labels = torch.arange(ways).repeat_interleave(per_class)
            noise = torch.randn(labels.shape[0], self.task.d, generator=gen)
            x = a * self.directions[words[labels]] + b * noise + self.task.shared * self.shared
            order = torch.randperm(labels.shape[0], generator=gen)
            return x[order], labels[order]

        s, s_lab = draw(shots)
        q, q_lab = draw(queries)
        return s, s_lab, q, q_lab


def _evaluate(
    head: MetaHead, feats: _Features, meta: MetaSection, episodes: list[tuple]
) -> dict[str, float]:
    keys = ("query_loss", "query_acc", "support_acc_before", "support_acc_after")
    sums = dict.fromkeys(keys, 0.0)
    with torch.no_grad():
        for i, (s, s_lab, q, q_lab) in enumerate(episodes):
            _, m = adapt_and_query(
                head, s, s_lab, q, q_lab, meta, ways=meta.ways, seed=10**6 + i, train=False
            )
            for k in keys:
                sums[k] += float(m[k])
    return {k: v / len(episodes) for k, v in sums.items()}


def run_synthetic(meta: MetaSection, task: SyntheticTask) -> dict[str, Any]:
    """Meta-train a fresh head for ``task.episodes`` outer steps; held-out curve + summary.

    Returns ``{"curve": [{"episode", "query_loss", "query_acc", ...}], "initial",
    "final", "chance_loss", "feature_grad_norm", "seconds"}``; the held-out episodes are
    the same for every configuration of a given ``task`` (so inits compare fairly).
    """
    torch.manual_seed(task.seed)
    feats = _Features(task)
    head = MetaHead.from_config(task.d, meta)
    optimizer = torch.optim.AdamW(head.parameters(), lr=task.lr, weight_decay=0.0)
    eval_gen = torch.Generator().manual_seed(task.seed + 1)
    held_out = [
        feats.episode(eval_gen, meta.ways, meta.shots, meta.queries, held_out=True)
        for _ in range(task.eval_episodes)
    ]
    train_gen = torch.Generator().manual_seed(task.seed + 2)
    curve = [{"episode": 0, **_evaluate(head, feats, meta, held_out)}]
    feature_grad = 0.0
    start = time.perf_counter()
    for step in range(1, task.episodes + 1):
        s, s_lab, q, q_lab = feats.episode(
            train_gen, meta.ways, meta.shots, meta.queries, held_out=False
        )
        q = q.requires_grad_(True)
        loss, _ = adapt_and_query(head, s, s_lab, q, q_lab, meta, ways=meta.ways, seed=step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        feature_grad += float(q.grad.norm()) if q.grad is not None else 0.0
        if task.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(head.parameters(), task.grad_clip)
        optimizer.step()
        if step % task.eval_every == 0 or step == task.episodes:
            curve.append({"episode": step, **_evaluate(head, feats, meta, held_out)})
    return {
        "task": asdict(task),
        "meta": {
            k: getattr(meta, k)
            for k in (
                "ways",
                "shots",
                "queries",
                "inner_steps",
                "inner_lr",
                "head_layers",
                "head_hidden",
                "head_dropout",
                "inner_dropout",
                "query_dropout",
                "center_features",
                "normalize_features",
                "output_init",
            )
        },
        "curve": curve,
        "initial": curve[0],
        "final": curve[-1],
        "chance_loss": math.log(meta.ways),
        "chance_acc": 1.0 / meta.ways,
        "feature_grad_norm": feature_grad / task.episodes,
        "seconds": time.perf_counter() - start,
    }


PAPER = {
    "learner": "query_only",
    "inner_dropout": True,
    "query_dropout": True,
    "center_features": False,
    "normalize_features": False,
}
QUERY_ONLY = {"learner": "query_only"}
#: Named episode configurations compared by ``picomaml bench meta`` (overrides of the
#: ``meta`` section): the paper's heads; the query-only Proto-MAML learner (the default
#: before issue 19) with one change at a time; the support-gradient learners. On fixed
#: synthetic features the learners differ only in the head's gradient (no backbone to
#: reach); ``run_collapsed_backbone`` is where they differ in kind.
VARIANTS: dict[str, dict[str, Any]] = {
    "paper-zeros": {**PAPER, "output_init": "zeros"},
    "paper-xavier": {**PAPER, "output_init": "xavier"},
    "persistent": {**PAPER, "output_init": "persistent"},
    "prototypes-paper-dropout": {**PAPER, "output_init": "prototypes"},
    "query-only": QUERY_ONLY,
    "query-only+inner-dropout": {**QUERY_ONLY, "inner_dropout": True},
    "query-only+query-dropout": {**QUERY_ONLY, "query_dropout": True},
    "query-only-no-centring": {**QUERY_ONLY, "center_features": False},
    "query-only-no-normalizing": {**QUERY_ONLY, "normalize_features": False},
    "proto-maml": {"learner": "proto_maml"},
    "default": {},
}


def compare_variants(
    meta: MetaSection, task: SyntheticTask, names: list[str]
) -> dict[str, dict[str, Any]]:
    """:func:`run_synthetic` for each named variant of :data:`VARIANTS`, same task."""
    return {name: run_synthetic(replace(meta, **VARIANTS[name]), task) for name in names}


def summary_line(name: str, result: dict[str, Any]) -> str:
    """One table row: held-out query loss and accuracy at the start and the end."""
    a, b = result["initial"], result["final"]
    return (
        f"| {name} | {a['query_loss']:.3f} | {b['query_loss']:.3f} | {a['query_acc']:.3f} | "
        f"{b['query_acc']:.3f} | {result['chance_loss']:.3f} |"
    )


class CollapsedBackbone(nn.Module):
    """A learnable stand-in for an early backbone: ``f(x) = x @ W + c`` with ``W`` small
    and ``c``, a direction shared by every window, large, so features start collapsed
    (mean pairwise cosine above 0.99) while the inputs ``x`` carry the class signal.

    Why: it isolates the question of issue 19 (can the meta-gradient *undo* a collapse?)
    from everything else a real decoder does; a learner passes only if its gradient
    spreads the features apart.
    """

    def __init__(self, d_in: int, d: int, *, weight_std: float, shared: float, seed: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(d_in, d, generator=gen) * weight_std)
        self.shared = nn.Parameter(torch.randn(d, generator=gen) * shared)

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.weight + self.shared


def _backbone_eval(
    backbone: CollapsedBackbone, head: MetaHead, meta: MetaSection, episodes: list[tuple]
) -> dict[str, float]:
    sums = {"query_acc": 0.0, "prototype_acc": 0.0, "feature_cosine": 0.0}
    with torch.no_grad():
        for i, (s, s_lab, q, q_lab) in enumerate(episodes):
            fs, fq = backbone(s), backbone(q)
            _, m = adapt_and_query(
                head, fs, s_lab, fq, q_lab, meta, ways=meta.ways, seed=10**6 + i, train=False
            )
            proto, _ = class_means(fs, s_lab, meta.ways)
            pred = torch.cdist(fq, proto).argmin(1)
            sums["query_acc"] += float(m["query_acc"])
            sums["feature_cosine"] += float(m["feature_cosine"])
            sums["prototype_acc"] += float((pred == q_lab).float().mean())
    return {k: v / len(episodes) for k, v in sums.items()}


class _NuisanceInputs:
    """Backbone inputs whose class signal a backbone must *learn* to read: word directions
    live in the first ``task.d`` dimensions, with unit noise; ``nuisance_dims`` more
    dimensions carry only noise of scale ``nuisance``. A random projection mixes the two,
    so prototypes on its output are poor until the backbone learns to drop the nuisance."""

    def __init__(self, task: SyntheticTask, nuisance_dims: int, nuisance: float) -> None:
        self.base = _Features(replace(task, shared=0.0))
        self.nuisance_dims, self.nuisance = nuisance_dims, nuisance

    def episode(self, gen: torch.Generator, ways: int, shots: int, queries: int, held_out: bool):
        s, s_lab, q, q_lab = self.base.episode(gen, ways, shots, queries, held_out)

        def pad(x: Tensor) -> Tensor:
            extra = torch.randn(x.shape[0], self.nuisance_dims, generator=gen) * self.nuisance
            return torch.cat([x, extra], 1)

        return pad(s), s_lab, pad(q), q_lab


def run_collapsed_backbone(
    meta: MetaSection,
    task: SyntheticTask,
    *,
    weight_std: float = 0.02,
    shared: float = 3.0,
    nuisance_dims: int = 96,
    nuisance: float = 3.0,
) -> dict[str, Any]:
    """Meta-train :class:`CollapsedBackbone` and a head together with ``meta``'s learner.

    Inputs are :class:`_NuisanceInputs` (``task.d`` signal + ``nuisance_dims`` noise
    dimensions); the backbone maps them to ``task.d`` features. Held-out episodes (words
    never trained on) are scored at the start and every ``task.eval_every`` steps: the
    adapted head's query accuracy, nearest-prototype accuracy on the raw features and
    their mean pairwise cosine. ``task.shared`` is not used (the shared direction is
    the backbone's learnable ``c``, of scale ``shared``).
    """
    torch.manual_seed(task.seed)
    feats = _NuisanceInputs(task, nuisance_dims, nuisance)
    d_in = task.d + nuisance_dims
    backbone = CollapsedBackbone(
        d_in, task.d, weight_std=weight_std, shared=shared, seed=task.seed + 3
    )
    head = MetaHead.from_config(task.d, meta)
    params = [*backbone.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=task.lr, weight_decay=0.0)
    eval_gen = torch.Generator().manual_seed(task.seed + 1)
    held_out = [
        feats.episode(eval_gen, meta.ways, meta.shots, meta.queries, held_out=True)
        for _ in range(task.eval_episodes)
    ]
    train_gen = torch.Generator().manual_seed(task.seed + 2)
    curve = [{"episode": 0, **_backbone_eval(backbone, head, meta, held_out)}]
    for step in range(1, task.episodes + 1):
        s, s_lab, q, q_lab = feats.episode(
            train_gen, meta.ways, meta.shots, meta.queries, held_out=False
        )
        fs = backbone(s) if support_gradient(meta.learner) else backbone(s).detach()
        loss, _ = adapt_and_query(
            head, fs, s_lab, backbone(q), q_lab, meta, ways=meta.ways, seed=step
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if task.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, task.grad_clip)
        optimizer.step()
        if step % task.eval_every == 0 or step == task.episodes:
            curve.append({"episode": step, **_backbone_eval(backbone, head, meta, held_out)})
    return {"curve": curve, "initial": curve[0], "final": curve[-1], "chance_acc": 1 / meta.ways}


__all__ = [
    "VARIANTS",
    "CollapsedBackbone",
    "SyntheticTask",
    "compare_variants",
    "run_collapsed_backbone",
    "run_synthetic",
    "summary_line",
]
