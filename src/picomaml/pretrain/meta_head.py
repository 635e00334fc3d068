"""The meta head of an SMLMT episode and the math around it: the persistent head
(:class:`MetaHead`: body, optional persistent output layer, learned logit scale), the
per-episode output layer, prototypes, dropout masks and the window features read from the
backbone. :mod:`picomaml.pretrain.maml` runs the episode with them (its docstring is the
contract); nothing here knows about ranks or the inner loop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from picomaml.errors import PicomamlError
from picomaml.pretrain.config import MetaSection
from picomaml.pretrain.inputs import to_device

OUTPUT_INITS = ("prototypes", "zeros", "xavier", "persistent")
REPRESENTATIONS = ("mask", "last", "after_mask", "before_mask")
LEARNERS = ("query_only", "proto_maml", "protonet")
METRICS = ("euclidean", "cosine")


def support_gradient(learner: str) -> bool:
    """Whether ``learner`` back-propagates the query loss through the support windows."""
    if learner not in LEARNERS:
        raise PicomamlError(f"meta.learner: expected one of {', '.join(LEARNERS)}, got {learner!r}")
    return learner != "query_only"


class MetaHead(nn.Module):
    """The SMLMT classifier's persistent parameters (meta-learned across episodes).

    ``layers`` blocks of Linear -> ReLU -> Dropout map backbone features (``d_in``) to
    ``hidden``. With ``ways`` set (``meta.output_init: persistent``) the N-way output
    layer is a parameter too (``self.out``); otherwise each episode builds its own
    (see :func:`init_output_layer`), because each episode has its own classes. With
    ``learn_scale`` the logit scale is the parameter ``log_scale`` (log of the factor,
    so it stays positive), started at ``scale``.
    """

    def __init__(
        self,
        d_in: int,
        *,
        hidden: int = 128,
        layers: int = 4,
        dropout: float = 0.1,
        init: str = "xavier",
        ways: int | None = None,
        scale: float = 1.0,
        learn_scale: bool = False,
    ) -> None:
        super().__init__()
        self.fixed_scale = float(scale)
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale))) if learn_scale else None
        dims = [d_in] + [hidden] * layers
        self.body = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.d_in, self.out_dim, self.dropout = d_in, dims[-1], dropout
        self.out = nn.Linear(self.out_dim, ways) if ways is not None else None
        for lin in [*self.body, *([self.out] if self.out is not None else [])]:
            if init == "xavier":
                nn.init.xavier_uniform_(lin.weight)
            elif init == "kaiming":
                nn.init.kaiming_uniform_(lin.weight, nonlinearity="relu")
            elif init == "normal":
                nn.init.normal_(lin.weight, std=0.02)
            else:
                raise PicomamlError(
                    f"meta.head_init: expected xavier, kaiming or normal, got {init!r}"
                )
            nn.init.zeros_(lin.bias)

    @classmethod
    def from_config(cls, d_in: int, meta: MetaSection) -> MetaHead:
        """The head described by the ``meta`` config section for a ``d_in``-wide backbone."""
        return cls(
            d_in,
            hidden=meta.head_hidden,
            layers=meta.head_layers,
            dropout=meta.head_dropout,
            init=meta.head_init,
            ways=meta.ways if meta.output_init == "persistent" else None,
            scale=meta.scale(),
            learn_scale=meta.learn_logit_scale,
        )

    def scale(self) -> Tensor | float:
        """The logit scale: ``exp(log_scale)`` (with gradient) or the fixed value (a
        Python float, so no host-made tensor is copied per episode)."""
        if self.log_scale is not None:
            return self.log_scale.float().exp()
        return self.fixed_scale

    def body_params(self) -> list[Tensor]:
        """``[W1, b1, W2, b2, ...]``, the order used by :func:`head_forward`."""
        return [p for lin in self.body for p in (lin.weight, lin.bias)]

    def episode_params(self) -> list[Tensor]:
        """The parameters an episode adapts and meta-learns: the body, plus the output
        layer when it is persistent."""
        out = [self.out.weight, self.out.bias] if self.out is not None else []
        return self.body_params() + out

    def forward(self, features: Tensor) -> Tensor:
        """Body output for ``features`` (module-mode dropout); used outside episodes."""
        x = features
        for lin in self.body:
            x = F.dropout(F.relu(lin(x)), self.dropout, self.training)
        return x


def body_forward(x: Tensor, body: list[Tensor], masks: list[Tensor] | None) -> Tensor:
    """Functional body: Linear -> ReLU -> (pre-scaled dropout ``masks``) per block."""
    for i in range(len(body) // 2):
        x = F.relu(F.linear(x, body[2 * i], body[2 * i + 1]))
        if masks is not None:
            x = x * masks[i]
    return x


def head_forward(
    x: Tensor,
    params: list[Tensor],
    masks: list[Tensor] | None,
    metric: str = "euclidean",
    scale: Tensor | float = 1.0,
) -> Tensor:
    """Functional head: ``params = body_params + [W_out, b_out]`` -> ``scale *`` logits.

    ``metric="cosine"``: the body output is L2-normalised before the output layer.
    """
    z = body_forward(x, params[:-2], masks)
    if metric == "cosine":
        z = F.normalize(z, dim=-1)
    return scale * F.linear(z, params[-2], params[-1])


def dropout_masks(
    seed: int, stream: int, n: int, width: int, layers: int, p: float, device: torch.device
) -> list[Tensor] | None:
    """Inverted-dropout multipliers ``[n, width]`` per layer, a pure function of the seed.

    ``stream`` separates the inner steps (0..T-1) from the query pass (T), so each gets
    fresh masks; drawing for the whole set and sharding afterwards keeps single- and
    multi-process runs identical.
    """
    if p <= 0 or layers == 0:
        return None
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + stream)
    keep = torch.rand((layers, n, width), generator=gen) >= p
    scaled = keep.to(torch.float32) / (1.0 - p)
    return list(to_device(scaled, device).unbind(0))


def class_means(x: Tensor, labels: Tensor, ways: int) -> tuple[Tensor, Tensor]:
    """Per-class means ``[N, d]`` of ``x`` and the class counts ``[N]``."""
    onehot = F.one_hot(labels, ways).to(x.dtype)
    counts = onehot.sum(0)
    return (onehot.t() @ x) / counts.clamp_min(1).unsqueeze(1), counts


def init_output_layer(
    kind: str,
    ways: int,
    body_out: Tensor | None,
    labels: Tensor,
    width: int,
    device,
    seed: int = 0,
    metric: str = "euclidean",
) -> tuple[Tensor, Tensor]:
    """Fresh N-way output layer: zeros, Xavier-random, or Proto-MAML prototypes.

    ``xavier``: ``W ~ U(-a, a)``, ``a = sqrt(6 / (width + ways))``, zero bias, drawn from
    ``seed`` (the episode's) so every rank builds the same layer. Prototypes:
    ``W_c = 2 mu_c``, ``b_c = -|mu_c|^2`` with ``mu_c`` the mean body output of class
    ``c`` (no dropout), so the initial logits are negative squared distances up to a
    per-example constant. With ``metric="cosine"`` the prototypes are the class means
    of the unit body outputs, normalised (``W_c = mu_c / |mu_c|``, ``b = 0``), so the
    initial logits are cosines. The prototypes keep the graph of ``body_out``: the
    caller decides whether gradient flows through them (``persistent`` output layers
    live in :class:`MetaHead` instead).
    """
    if kind == "zeros":
        return torch.zeros(ways, width, device=device), torch.zeros(ways, device=device)
    if kind == "xavier":
        gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + 999_983)
        bound = math.sqrt(6.0 / (width + ways))
        weight = (torch.rand((ways, width), generator=gen) * 2 - 1) * bound
        return to_device(weight, device), torch.zeros(ways, device=device)
    if kind == "prototypes":
        if body_out is None:
            raise PicomamlError("init_output_layer: prototypes need the support body outputs")
        if metric == "cosine":
            proto, _ = class_means(F.normalize(body_out, dim=-1), labels, ways)
            return F.normalize(proto, dim=-1), torch.zeros(ways, device=device)
        proto, _ = class_means(body_out, labels, ways)
        return 2 * proto, -(proto * proto).sum(1)
    raise PicomamlError(
        f"meta.output_init: expected one of {', '.join(OUTPUT_INITS)}, got {kind!r}"
    )


def prototype_loo_logits(z: Tensor, labels: Tensor, ways: int, metric: str = "euclidean") -> Tensor:
    """Prototype logits with each point left out of its own class mean.

    Euclidean: ``2 mu.z - |mu|^2``; cosine: ``cos(z, mu)`` of the unit outputs' means.
    Why: with the point inside its own prototype, nearest-prototype accuracy on the
    support set is inflated (0.81 on pure noise at 8 ways, 4 shots); leaving it out
    gives the honest estimate. A class whose only example is the point itself has no
    prototype left, so its own-class logit is ``-inf``.
    """
    if metric == "cosine":
        z = F.normalize(z, dim=-1)
    mu, counts = class_means(z, labels, ways)
    n_own = counts[labels].unsqueeze(1)
    loo = (mu[labels] * n_own - z) / (n_own - 1).clamp_min(1)
    if metric == "cosine":
        logits = z @ F.normalize(mu, dim=-1).t()
        own = (z * F.normalize(loo, dim=-1)).sum(1)
    else:
        logits = 2 * z @ mu.t() - (mu * mu).sum(1)
        own = 2 * (z * loo).sum(1) - (loo * loo).sum(1)
    own = torch.where(n_own.squeeze(1) > 1, own, torch.full_like(own, -math.inf))
    return logits.scatter(1, labels.unsqueeze(1), own.unsqueeze(1))


def feature_collapse(x: Tensor, labels: Tensor, ways: int) -> tuple[Tensor, Tensor]:
    """``(mean pairwise cosine, share of variance explained by class)`` of features ``x``.

    Why: when every window's feature points the same way (cosine near 1) no head can
    separate the classes, and an episode sits at ln N whatever the inner loop does.
    The class share is between-class / total sum of squares; on pure noise it is
    ``(N-1)/(n-1)`` for ``n`` points, not 0.
    """
    n = x.shape[0]
    unit = F.normalize(x, dim=1)
    total = unit.sum(0)
    cosine = ((total * total).sum() - n) / max(n * (n - 1), 1)
    centred = x - x.mean(0)
    mu, counts = class_means(centred, labels, ways)
    between = (counts * (mu * mu).sum(1)).sum()
    share = between / (centred * centred).sum().clamp_min(1e-30)
    return cosine, share


def unit_rms(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Each row scaled to root-mean-square 1 (the direction kept, the length dropped)."""
    return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + eps)


def window_features(backbone: nn.Module, ids: Tensor, mask: Tensor, representation: str) -> Tensor:
    """One feature vector per window, read from the final hidden states ``[n, W, d]``.

    ``mask``: mean over the masked positions. ``last``: the window's last position.
    ``after_mask``: mean over the positions after the first masked one (they see the
    masked slot and its right context; the mask position itself sees only the left
    context and a constant input token), or the last position when nothing follows.
    ``before_mask``: the position just before the first masked one, whose state never
    saw the ``[MASK]`` token (a causal model's prediction of the hidden word), so a
    backbone whose ``[MASK]`` row was never trained is not penalised; position 0 when
    the window starts with the mask.
    """
    hidden = backbone.hidden_states(ids)
    if representation == "last":
        return hidden[:, -1]
    if representation == "before_mask":
        first = mask.to(torch.int64).argmax(1)
        index = (first - 1).clamp_min(0)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]
    if representation == "mask":
        weights = mask.to(hidden.dtype)
    elif representation == "after_mask":
        seen = mask.cumsum(1) > 0
        after = seen & ~(mask & (mask.cumsum(1) == 1))
        after[:, -1] |= ~after.any(1)
        weights = after.to(hidden.dtype)
    else:
        raise PicomamlError(
            f"meta.representation: expected one of {', '.join(REPRESENTATIONS)}, "
            f"got {representation!r}"
        )
    weights = weights / weights.sum(1, keepdim=True).clamp_min(1)
    return torch.einsum("nw,nwd->nd", weights, hidden)


__all__ = [
    "LEARNERS",
    "METRICS",
    "MetaHead",
    "OUTPUT_INITS",
    "REPRESENTATIONS",
    "body_forward",
    "class_means",
    "dropout_masks",
    "feature_collapse",
    "head_forward",
    "init_output_layer",
    "prototype_loo_logits",
    "support_gradient",
    "unit_rms",
    "window_features",
]
