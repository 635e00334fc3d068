"""First-order MAML on SMLMT episodes: the meta head and the episode loss.

The contract (what the trainer relies on)::

    loss, metrics = episode_loss(backbone, head, episode, meta_cfg,
                                 rank=0, world_size=1, all_gather=None)
    fabric.backward(loss / accumulation_steps)

* ``backbone`` has ``hidden_states(ids[B, W]) -> [B, W, d]`` (final normed states, no
  vocabulary projection). Behind a Fabric DDP/FSDP wrapper call
  ``model.mark_forward_method("hidden_states")`` after ``fabric.setup`` so the call
  goes through the strategy's forward; the MAML branch never touches the output
  projection, so DDP needs ``find_unused_parameters=True`` (or the projection tied).
* Support features are computed once, under ``torch.no_grad()``; the head is adapted
  for ``inner_steps`` plain SGD steps at ``inner_lr`` on *copies* of its parameters,
  so no support-loss gradient can reach any ``.grad``.
* Query features are computed with gradient and pass through the adapted head. The
  returned loss back-propagates into the backbone (ordinary gradient) and into the
  persistent head body (first-order MAML: the gradient at the adapted weights is
  routed to the pre-episode parameters by an identity backward). Autograd *adds* it
  to any existing ``.grad``, so accumulation windows keep head gradients. The
  per-episode output layer receives no outer gradient.
* Distributed: with ``world_size > 1`` each rank processes the contiguous shard
  ``rank`` of the support and query windows (``N*K`` and ``N*Q`` must divide by the
  world size); ``all_gather(t[n_local, d])`` must return the ranks' tensors in rank
  order, as ``[world, n_local, d]`` or ``[world * n_local, d]`` (``fabric.all_gather``
  does). Every rank then runs the identical inner loop. The local query loss is
  ``sum(CE over the shard) * world_size / (N*Q)``, so *averaging* gradients across
  ranks (what DDP does; do the same for the head, e.g. ``all_reduce`` mean of the head
  grads, since the head sits outside DDP) equals the single-process gradient.
* Dropout in the head is active in the inner loop and on the query pass, with masks
  drawn from ``episode.seed`` for the whole support/query set and then sharded, so
  the result does not depend on the world size nor on the global torch RNG. Accuracy
  metrics of the support set are measured without dropout.
* The head runs in float32 with autocast disabled, whatever the backbone precision.

``metrics`` holds floats: ``support_acc_before``, ``support_acc_after``, ``query_acc``,
``query_loss`` (mean CE of this rank's query shard), ``head_weight_mean``,
``head_weight_std`` (pre-episode body parameters) and ``head_grad_norm`` (norm of the
first-order gradient this episode adds to the head body, before any division by the
accumulation steps; 0 when called under ``torch.no_grad()`` for evaluation, which is
allowed: the inner loop enables gradients for itself).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from picomaml.errors import PicomamlError
from picomaml.pretrain.config import MetaSection
from picomaml.pretrain.smlmt import Episode

AllGather = Callable[[Tensor], Tensor]


class MetaHead(nn.Module):
    """Persistent MLP body of the SMLMT classifier (meta-learned across episodes).

    ``layers`` blocks of Linear -> ReLU -> Dropout map backbone features (``d_in``) to
    ``hidden``; the N-way output layer is not part of the module because each episode
    has its own classes (see :func:`init_output_layer`).
    """

    def __init__(
        self,
        d_in: int,
        *,
        hidden: int = 128,
        layers: int = 4,
        dropout: float = 0.1,
        init: str = "xavier",
    ) -> None:
        super().__init__()
        dims = [d_in] + [hidden] * layers
        self.body = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.d_in, self.out_dim, self.dropout = d_in, dims[-1], dropout
        for lin in self.body:
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
        )

    def body_params(self) -> list[Tensor]:
        """``[W1, b1, W2, b2, ...]``, the order used by :func:`head_forward`."""
        return [p for lin in self.body for p in (lin.weight, lin.bias)]

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


def head_forward(x: Tensor, params: list[Tensor], masks: list[Tensor] | None) -> Tensor:
    """Functional head: ``params = body_params + [W_out, b_out]`` -> logits."""
    return F.linear(body_forward(x, params[:-2], masks), params[-2], params[-1])


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
    return list(scaled.to(device).unbind(0))


def init_output_layer(
    kind: str,
    ways: int,
    body_out: Tensor | None,
    labels: Tensor,
    width: int,
    device,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Fresh N-way output layer: zeros, Xavier-random, or Proto-MAML prototypes.

    ``xavier``: ``W ~ U(-a, a)``, ``a = sqrt(6 / (width + ways))``, zero bias, drawn from
    ``seed`` (the episode's) so every rank builds the same layer. Prototypes:
    ``W_c = 2 mu_c``, ``b_c = -|mu_c|^2`` with ``mu_c`` the mean body output of class
    ``c`` (no dropout), so the initial logits are negative squared distances up to a
    per-example constant. Every option is a constant start point: no outer gradient
    flows through it.
    """
    if kind == "zeros":
        return torch.zeros(ways, width, device=device), torch.zeros(ways, device=device)
    if kind == "xavier":
        gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + 999_983)
        bound = math.sqrt(6.0 / (width + ways))
        weight = (torch.rand((ways, width), generator=gen) * 2 - 1) * bound
        return weight.to(device), torch.zeros(ways, device=device)
    if kind == "prototypes":
        assert body_out is not None
        onehot = F.one_hot(labels, ways).to(body_out.dtype)
        proto = (onehot.t() @ body_out) / onehot.sum(0).clamp_min(1).unsqueeze(1)
        return 2 * proto, -(proto * proto).sum(1)
    raise PicomamlError(f"meta.output_init: expected zeros, xavier or prototypes, got {kind!r}")


def window_features(backbone: nn.Module, ids: Tensor, mask: Tensor, representation: str) -> Tensor:
    """One feature vector per window: mean final hidden state over its masked positions
    (``mask``), or the hidden state at the window's last position (``last``)."""
    hidden = backbone.hidden_states(ids)
    if representation == "last":
        return hidden[:, -1]
    if representation != "mask":
        raise PicomamlError(f"meta.representation: expected mask or last, got {representation!r}")
    weights = mask.to(hidden.dtype)
    weights = weights / weights.sum(1, keepdim=True).clamp_min(1)
    return torch.einsum("nw,nwd->nd", weights, hidden)


class _AtAdaptedWeights(torch.autograd.Function):
    """Value of the adapted weights, gradient routed unchanged to the initial weights.

    This is the first-order MAML approximation d(phi_T)/d(phi_0) = I, applied by autograd
    itself so the gradient accumulates into ``phi_0.grad`` like any other.
    """

    @staticmethod
    def forward(ctx, initial: Tensor, adapted: Tensor) -> Tensor:
        return adapted.detach().clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


def _shard(n: int, rank: int, world_size: int, what: str) -> slice:
    if n % world_size:
        raise PicomamlError(
            f"{what}: {n} windows cannot be split evenly over {world_size} ranks; "
            "choose meta.ways x shots/queries divisible by the world size"
        )
    size = n // world_size
    return slice(rank * size, (rank + 1) * size)


def _gather(local: Tensor, all_gather: AllGather | None, world_size: int) -> Tensor:
    if world_size == 1:
        return local
    if all_gather is None:
        raise PicomamlError("episode_loss: world_size > 1 needs an all_gather callable")
    gathered = all_gather(local.contiguous())
    return gathered.reshape(-1, local.shape[-1])


def _accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    return (logits.argmax(-1) == labels).float().mean()


def episode_loss(
    backbone: nn.Module,
    head: MetaHead,
    episode: Episode,
    cfg: MetaSection,
    *,
    rank: int = 0,
    world_size: int = 1,
    all_gather: AllGather | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Query loss of one first-order MAML episode; see the module docstring for the contract."""
    params0 = head.body_params()
    device = params0[0].device if params0 else next(backbone.parameters()).device
    ways, n_s, n_q = episode.ways, len(episode.support_labels), len(episode.query_labels)
    s_part = _shard(n_s, rank, world_size, "support set")
    q_part = _shard(n_q, rank, world_size, "query set")

    def to_dev(a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device, non_blocking=True)

    s_labels, q_labels = to_dev(episode.support_labels), to_dev(episode.query_labels)
    with torch.no_grad():
        s_local = window_features(
            backbone,
            to_dev(episode.support_ids[s_part]),
            to_dev(episode.support_mask[s_part]),
            cfg.representation,
        )
        s_feat = _gather(s_local.float(), all_gather, world_size)
    q_feat = window_features(
        backbone,
        to_dev(episode.query_ids[q_part]),
        to_dev(episode.query_mask[q_part]),
        cfg.representation,
    )

    layers, width, p = len(params0) // 2, head.out_dim, head.dropout
    with torch.autocast(device_type=device.type, enabled=False):
        fast = [w.detach().clone() for w in params0]
        with torch.no_grad():
            body0 = body_forward(s_feat, fast, None)
            out = init_output_layer(
                cfg.output_init, ways, body0, s_labels, width, device, episode.seed
            )
            fast += [out[0].detach().clone(), out[1].detach().clone()]
            acc_before = _accuracy(head_forward(s_feat, fast, None), s_labels)
        for step in range(cfg.inner_steps):
            masks = dropout_masks(episode.seed, step, n_s, width, layers, p, device)
            with torch.enable_grad():
                fast = [w.detach().requires_grad_(True) for w in fast]
                logits = head_forward(s_feat, fast, masks)
                grads = torch.autograd.grad(F.cross_entropy(logits, s_labels), fast)
            fast = [(w - cfg.inner_lr * g).detach() for w, g in zip(fast, grads, strict=True)]
        with torch.no_grad():
            acc_after = _accuracy(head_forward(s_feat, fast, None), s_labels)

        adapted = [
            _AtAdaptedWeights.apply(w0, wt) for w0, wt in zip(params0, fast[:-2], strict=True)
        ]
        masks = dropout_masks(episode.seed, cfg.inner_steps, n_q, width, layers, p, device)
        if masks is not None:
            masks = [m[q_part] for m in masks]
        logits = head_forward(q_feat.float(), adapted + fast[-2:], masks)
        ce = F.cross_entropy(logits, q_labels[q_part], reduction="sum")
        loss = ce * (world_size / n_q)

    zero = torch.zeros((), device=device)
    head_grads = (
        torch.autograd.grad(loss, adapted, retain_graph=True)
        if adapted and loss.requires_grad
        else []
    )
    with torch.no_grad():
        flat = torch.cat([w.reshape(-1) for w in params0]) if params0 else zero.reshape(1)
        grad_sq = sum((g * g).sum() for g in head_grads) if head_grads else zero
        stats = torch.stack(
            [
                acc_before,
                acc_after,
                _accuracy(logits.detach(), q_labels[q_part]),
                ce.detach() / (n_q // world_size),
                flat.mean(),
                flat.std() if flat.numel() > 1 else zero,
                torch.sqrt(grad_sq),
            ]
        ).tolist()
    names = (
        "support_acc_before",
        "support_acc_after",
        "query_acc",
        "query_loss",
        "head_weight_mean",
        "head_weight_std",
        "head_grad_norm",
    )
    return loss, {k: float(v) for k, v in zip(names, stats, strict=True)}


__all__ = [
    "MetaHead",
    "body_forward",
    "dropout_masks",
    "episode_loss",
    "head_forward",
    "init_output_layer",
    "window_features",
]
