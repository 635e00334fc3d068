"""First-order MAML on SMLMT episodes: the episode loss, over the meta head of
:mod:`picomaml.pretrain.meta_head`.

The contract (what the trainer relies on)::

    loss, metrics = episode_loss(backbone, head, episode, meta_cfg,
                                 rank=0, world_size=1, all_gather=None)
    fabric.backward(loss / accumulation_steps)

* ``backbone`` has ``hidden_states(ids[B, W]) -> [B, W, d]`` (final normed states, no
  vocabulary projection). Behind a Fabric DDP/FSDP wrapper call
  ``model.mark_forward_method("hidden_states")`` after ``fabric.setup`` so the call
  goes through the strategy's forward; the MAML branch never touches the output
  projection, so DDP needs ``find_unused_parameters=True`` (or the projection tied).
  On a single device Fabric does not redirect marked methods, so the precision's
  autocast must be entered by the caller (the trainer wraps the backbone).
* ``meta.learner`` decides where the query loss sends gradient (docs/pretraining.md,
  "Episode learners"):

  - ``query_only``: support features, their centre and the initial output layer are
    computed without gradient; only the query features (and the head, first-order)
    learn. In a collapsed feature space this learner can lower the loss by rescaling
    logits without separating classes, which is why it is no longer the default.
  - ``proto_maml``: first-order Proto-MAML (Triantafillou et al. 2020). The support
    features, the centre and the prototype-initialised output layer keep their graph;
    the inner loop runs on detached copies and its update is added as a constant
    (``phi_T = phi_0 + (phi_T - phi_0).detach()``), so the query loss reaches the
    backbone through the query *and* the support windows.
  - ``protonet``: Proto-MAML with no inner loop (Snell et al. 2017): prototype logits
    on the head body's outputs, gradient through both sides.

  The head is adapted for ``inner_steps`` plain SGD steps at ``inner_lr`` on *copies*
  of its parameters, so no support-loss gradient reaches any ``.grad`` and the head's
  own parameters are never modified by an episode (the paper's snapshot/restore of phi).
* ``meta.metric`` ``cosine`` L2-normalises the body outputs and starts the output layer
  at the prototype directions; the logits are multiplied by ``meta.logit_scale``, a
  learned parameter of the head (``log_scale``) with ``meta.learn_logit_scale``.
* Query features are computed with gradient and pass through the adapted head. The
  returned loss back-propagates into the backbone (ordinary gradient) and into the
  persistent head parameters (first-order MAML: the gradient at the adapted weights is
  routed to the pre-episode parameters by an identity backward). Autograd *adds* it
  to any existing ``.grad``, so accumulation windows keep head gradients.
* The N-way output layer (``meta.output_init``): ``prototypes`` (default, Proto-MAML:
  ``W_c = 2 mu_c``, ``b_c = -|mu_c|^2`` from the support set's body outputs), ``zeros``
  or ``xavier`` build a fresh layer per episode that receives no outer gradient;
  ``persistent`` (the paper's Algorithm 1 read literally) makes it a parameter of the
  head, adapted on copies, restored and meta-learned like the body.
* Distributed: with ``world_size > 1`` each rank processes the contiguous shard
  ``rank`` of the support and query windows (``N*K`` and ``N*Q`` must divide by the
  world size); ``all_gather(t[n_local, d])`` must return the ranks' tensors in rank
  order, as ``[world, n_local, d]`` or ``[world * n_local, d]`` (``fabric.all_gather``
  does). Every rank then runs the identical inner loop. The local query loss is
  ``sum(CE over the shard) * world_size / (N*Q)``, so *averaging* gradients across
  ranks (what DDP does; do the same for the head, e.g. ``all_reduce`` mean of the head
  grads, since the head sits outside DDP) equals the single-process gradient. Learners
  with support gradient need an ``all_gather`` whose backward sums the gathered
  gradient over ranks and returns this rank's slice
  (:func:`picomaml.pretrain.launch.gather_equal` does).
* Feature preparation, before the head: with ``meta.normalize_features`` every support
  and query feature is scaled to unit RMS, then with ``meta.center_features`` the support
  set's mean feature is subtracted from all of them. Why: prototype logits are squared
  distances, so a backbone that lengthens its features (e.g. by growing its final norm's
  gain) makes them arbitrarily confident (on a real backbone the query loss exploded to
  14 nats within 200 steps), and a direction shared by every window (what a collapsed
  backbone produces) carries no class information but inflates the logits too.
  Normalising first (not after centring) keeps a collapsed set's residuals small, so the
  meta-gradient rewards spreading the features rather than amplifying their residue.
* Dropout in the head (``meta.head_dropout``) is active in the inner loop with
  ``meta.inner_dropout`` and on the query pass with ``meta.query_dropout``; masks are
  drawn from ``episode.seed``
  for the whole support/query set and then sharded, so the result does not depend on
  the world size nor on the global torch RNG. Support metrics use no dropout.
* The head runs in float32 with autocast disabled, whatever the backbone precision.

``metrics`` maps names to detached 0-dim float32 tensors on the head's device (no host
sync per episode; the trainer reduces them once per logging step). See
:data:`EPISODE_METRICS` for the names and their meaning.

No host-device sync: nothing here reads a tensor value on the host (no ``.item()``,
``.tolist()``, boolean indexing or ``nonzero``); host-made tensors (the episode's windows,
dropout masks, Xavier output layers) are copied with :func:`~picomaml.pretrain.inputs.to_device`
(pinned, non-blocking on CUDA). ``episode_inputs`` does the copies up front, so a caller
can start them for the next episode while the current one computes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from picomaml.errors import PicomamlError
from picomaml.pretrain.config import MetaSection
from picomaml.pretrain.inputs import to_device
from picomaml.pretrain.meta_head import (
    MetaHead,
    body_forward,
    dropout_masks,
    feature_collapse,
    head_forward,
    init_output_layer,
    prototype_loo_logits,
    support_gradient,
    unit_rms,
    window_features,
)
from picomaml.pretrain.smlmt import Episode

AllGather = Callable[[Tensor], Tensor]

EPISODE_METRICS: dict[str, str] = {
    "support_acc_before": "support accuracy of the initial head; leave-one-out for "
    "prototypes (each point is scored against prototypes built without it)",
    "support_acc_after": "support accuracy after the inner loop (training accuracy)",
    "support_loss_before": "support cross-entropy of the initial head (ln N = chance)",
    "support_loss_after": "support cross-entropy after the inner loop",
    "query_acc": "query accuracy of the adapted head (this rank's shard)",
    "query_loss": "mean query cross-entropy of this rank's shard (ln N = chance)",
    "chance_acc": "1 / N, the accuracy of guessing",
    "feature_cosine": "mean pairwise cosine of the support features (1 = collapsed)",
    "feature_class_share": "share of support-feature variance explained by the class "
    "(between-class / total sum of squares; (N-1)/(N*K-1) on pure noise)",
    "head_weight_mean": "mean of the persistent head parameters before the episode",
    "head_weight_std": "std of the persistent head parameters before the episode",
    "head_grad_norm": "norm of the first-order gradient the episode adds to the head "
    "(before division by the accumulation steps; 0 under torch.no_grad())",
    "query_max_prob": "mean over queries of the adapted head's largest class probability",
    "query_entropy": "mean entropy (nats) of the adapted head's query distribution "
    "(ln N = uniform)",
    "logit_scale": "the factor the logits are multiplied by (meta.logit_scale; learned "
    "with meta.learn_logit_scale)",
}
"""Every key of the ``metrics`` dict returned by :func:`episode_loss`."""


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


def prepare_features(s_feat: Tensor, q_feat: Tensor, cfg: MetaSection) -> tuple[Tensor, Tensor]:
    """Unit-RMS features (``normalize_features``), then centred on the support mean
    (``center_features``); differentiable, so the learner decides what keeps a graph."""
    if cfg.normalize_features:
        s_feat, q_feat = unit_rms(s_feat), unit_rms(q_feat)
    if cfg.center_features:
        centre = s_feat.mean(0)
        s_feat, q_feat = s_feat - centre, q_feat - centre
    return s_feat, q_feat


def inner_loop(
    fast: list[Tensor],
    s_feat: Tensor,
    s_labels: Tensor,
    cfg: MetaSection,
    *,
    seed: int,
    scale: Tensor | float,
    dropout: float,
    layers: int,
    width: int,
) -> list[Tensor]:
    """``inner_steps`` SGD steps on the support cross-entropy; returns detached weights.

    Runs on detached copies whatever the caller's grad mode, so nothing here reaches a
    ``.grad`` (first-order: the outer gradient is routed by :class:`_AtAdaptedWeights`).
    """
    fast = [w.detach() for w in fast]
    for step in range(cfg.inner_steps):
        masks = dropout_masks(seed, step, s_feat.shape[0], width, layers, dropout, s_feat.device)
        with torch.enable_grad():
            fast = [w.requires_grad_(True) for w in fast]
            logits = head_forward(s_feat, fast, masks, cfg.metric, scale)
            grads = torch.autograd.grad(F.cross_entropy(logits, s_labels), fast)
        fast = [(w - cfg.inner_lr * g).detach() for w, g in zip(fast, grads, strict=True)]
    return fast


def _support_metrics(
    s_feat: Tensor,
    s_labels: Tensor,
    initial: list[Tensor],
    adapted: list[Tensor],
    body0: Tensor,
    cfg: MetaSection,
    ways: int,
    scale: Tensor | float,
) -> dict[str, Tensor]:
    """Support accuracy and loss before (leave-one-out for prototypes) and after adapting."""
    with torch.no_grad():
        logits0 = head_forward(s_feat, initial, None, cfg.metric, scale)
        loss_before = F.cross_entropy(logits0, s_labels)
        if cfg.output_init == "prototypes":
            logits0 = prototype_loo_logits(body0, s_labels, ways, cfg.metric)
        logits_after = head_forward(s_feat, adapted, None, cfg.metric, scale)
        return {
            "support_acc_before": _accuracy(logits0, s_labels),
            "support_acc_after": _accuracy(logits_after, s_labels),
            "support_loss_before": loss_before,
            "support_loss_after": F.cross_entropy(logits_after, s_labels),
        }


def _query_metrics(logits: Tensor, q_labels: Tensor, ce: Tensor) -> dict[str, Tensor]:
    """Query accuracy, loss and calibration (largest probability, entropy)."""
    with torch.no_grad():
        logp = F.log_softmax(logits.detach(), -1)
        return {
            "query_acc": _accuracy(logits.detach(), q_labels),
            "query_loss": ce.detach() / logits.shape[0],
            "query_max_prob": logp.max(-1).values.exp().mean(),
            "query_entropy": -(logp.exp() * logp).sum(-1).mean(),
        }


def adapt_and_query(
    head: MetaHead,
    s_feat: Tensor,
    s_labels: Tensor,
    q_feat: Tensor,
    q_labels: Tensor,
    cfg: MetaSection,
    *,
    ways: int,
    seed: int,
    q_part: slice | None = None,
    n_query: int | None = None,
    world_size: int = 1,
    train: bool = True,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The episode on features: inner loop on the support set, loss on the query.

    ``s_feat[n_s, d]``/``s_labels`` are the whole support set; ``q_feat`` and
    ``q_labels`` this rank's query shard, which is ``q_part`` of ``n_query`` windows
    (defaults: the whole set). The loss is ``sum(CE) * world_size / n_query``. Whether
    gradient flows through ``s_feat`` is ``meta.learner``'s choice (the module
    docstring); ``train=False`` turns all dropout off (held-out evaluation, the probe).
    """
    support_grad = support_gradient(cfg.learner) and torch.is_grad_enabled()
    params0 = head.episode_params()
    device = s_feat.device
    n_q = n_query if n_query is not None else q_feat.shape[0]
    q_part = q_part if q_part is not None else slice(0, n_q)
    layers, width = len(head.body_params()) // 2, head.out_dim
    persistent = head.out is not None
    if persistent and head.out.out_features != ways:
        raise PicomamlError(
            f"meta.output_init=persistent: the head has {head.out.out_features} outputs, "
            f"the episode {ways} ways"
        )
    with torch.autocast(device_type=device.type, enabled=False):
        s_feat, q_feat = s_feat.float(), q_feat.float()
        if not support_grad:
            s_feat = s_feat.detach()
        with torch.no_grad():
            cosine, share = feature_collapse(s_feat, s_labels, ways)  # before centring
        s_feat, q_feat = prepare_features(s_feat, q_feat, cfg)
        scale = head.scale()
        fixed = scale.detach() if isinstance(scale, Tensor) else scale  # the inner loop's
        # The initial weights: the head's parameters plus, unless persistent, a fresh
        # output layer (prototypes keep their graph when the learner passes support
        # gradient; otherwise they are constants).
        body_init = params0[: 2 * layers]
        with torch.set_grad_enabled(support_grad):
            if not support_grad:
                body_init = [w.detach() for w in body_init]
            body0 = body_forward(s_feat, body_init, None)
            out0 = []
            if not persistent:
                layer = init_output_layer(
                    cfg.output_init, ways, body0, s_labels, width, device, seed, cfg.metric
                )
                out0 = list(layer)
        initial = params0 + out0
        fast = initial
        if cfg.learner != "protonet":
            p_inner = head.dropout if train and cfg.inner_dropout else 0.0
            fast = inner_loop(
                initial,
                s_feat,
                s_labels,
                cfg,
                seed=seed,
                scale=fixed,
                dropout=p_inner,
                layers=layers,
                width=width,
            )
        # First-order: the adapted weights' value, the gradient routed to the initial ones.
        adapted = [
            _AtAdaptedWeights.apply(w0, wt) if w0.requires_grad else wt.detach()
            for w0, wt in zip(initial, fast, strict=True)
        ]
        p_query = head.dropout if train and cfg.query_dropout else 0.0
        masks = dropout_masks(seed, cfg.inner_steps, n_q, width, layers, p_query, device)
        if masks is not None:
            masks = [m[q_part] for m in masks]
        logits = head_forward(q_feat, adapted, masks, cfg.metric, scale)
        ce = F.cross_entropy(logits, q_labels, reduction="sum")
        loss = ce * (world_size / n_q)
        before = [w.detach() for w in initial]
        metrics = _support_metrics(s_feat, s_labels, before, fast, body0.detach(), cfg, ways, fixed)

    metrics.update(_query_metrics(logits, q_labels, ce))
    metrics.update(_head_metrics(head, params0, loss, cosine, share, ways, device))
    return loss, {k: v.detach().float() for k, v in metrics.items()}


def _head_metrics(
    head: MetaHead,
    params0: list[Tensor],
    loss: Tensor,
    cosine: Tensor,
    share: Tensor,
    ways: int,
    device: torch.device,
) -> dict[str, Tensor]:
    """Head statistics, the feature collapse figures and the chance level."""
    zero = torch.zeros((), device=device)
    wanted = [p for p in params0 if p.requires_grad]
    grads = (
        torch.autograd.grad(loss, wanted, retain_graph=True, allow_unused=True)
        if wanted and loss.requires_grad
        else []
    )
    with torch.no_grad():
        flat = torch.cat([w.reshape(-1) for w in params0]) if params0 else zero.reshape(1)
        grad_sq = sum((g * g).sum() for g in grads if g is not None) if grads else zero
        return {
            "chance_acc": torch.full((), 1.0 / ways, device=device),
            "feature_cosine": cosine,
            "feature_class_share": share,
            "head_weight_mean": flat.mean(),
            "head_weight_std": flat.std() if flat.numel() > 1 else zero,
            "head_grad_norm": torch.sqrt(torch.as_tensor(grad_sq, device=device)),
            "logit_scale": (
                head.log_scale.detach().float().exp()
                if head.log_scale is not None
                else torch.full((), head.fixed_scale, device=device)
            ),
        }


@dataclass(frozen=True)
class EpisodeInputs:
    """One rank's share of an episode, as tensors on its device (see :func:`episode_inputs`).

    ``support_ids``/``support_mask``: this rank's shard of the support windows;
    ``support_labels``: the whole support set's labels (every rank runs the same inner
    loop); ``query_*``: this rank's shard ``q_part`` of the ``n_query`` query windows.
    """

    support_ids: Tensor
    support_mask: Tensor
    support_labels: Tensor
    query_ids: Tensor
    query_mask: Tensor
    query_labels: Tensor
    ways: int
    seed: int
    n_query: int
    q_part: slice
    rank: int
    world_size: int


def episode_inputs(
    episode: Episode, device: torch.device | str, *, rank: int = 0, world_size: int = 1
) -> EpisodeInputs:
    """Copy this rank's share of ``episode`` to ``device`` (pinned and non-blocking on CUDA).

    Why separate from :func:`episode_loss`: the trainer calls it for the next episode
    while the current micro-batch runs, so the copies overlap the computation.
    """
    n_s, n_q = len(episode.support_labels), len(episode.query_labels)
    s_part = _shard(n_s, rank, world_size, "support set")
    q_part = _shard(n_q, rank, world_size, "query set")
    return EpisodeInputs(
        support_ids=to_device(episode.support_ids[s_part], device),
        support_mask=to_device(episode.support_mask[s_part], device),
        support_labels=to_device(episode.support_labels, device),
        query_ids=to_device(episode.query_ids[q_part], device),
        query_mask=to_device(episode.query_mask[q_part], device),
        query_labels=to_device(episode.query_labels[q_part], device),
        ways=episode.ways,
        seed=episode.seed,
        n_query=n_q,
        q_part=q_part,
        rank=rank,
        world_size=world_size,
    )


def episode_loss(
    backbone: nn.Module,
    head: MetaHead,
    episode: Episode | EpisodeInputs,
    cfg: MetaSection,
    *,
    rank: int = 0,
    world_size: int = 1,
    all_gather: AllGather | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Query loss of one first-order MAML episode; see the module docstring for the contract.

    ``episode`` is an :class:`~picomaml.pretrain.smlmt.Episode` (copied here) or the
    :class:`EpisodeInputs` that :func:`episode_inputs` made for this ``rank``.
    """
    if isinstance(episode, EpisodeInputs):
        if (episode.rank, episode.world_size) != (rank, world_size):
            raise PicomamlError(
                f"episode_loss: inputs prepared for rank {episode.rank} of "
                f"{episode.world_size}, called for rank {rank} of {world_size}"
            )
        inputs = episode
    else:
        params = head.episode_params()
        device = params[0].device if params else next(backbone.parameters()).device
        inputs = episode_inputs(episode, device, rank=rank, world_size=world_size)

    with torch.set_grad_enabled(support_gradient(cfg.learner) and torch.is_grad_enabled()):
        s_local = window_features(
            backbone, inputs.support_ids, inputs.support_mask, cfg.representation
        )
        s_feat = _gather(s_local.float(), all_gather, world_size)
    q_feat = window_features(backbone, inputs.query_ids, inputs.query_mask, cfg.representation)
    return adapt_and_query(
        head,
        s_feat,
        inputs.support_labels,
        q_feat,
        inputs.query_labels,
        cfg,
        ways=inputs.ways,
        seed=inputs.seed,
        q_part=inputs.q_part,
        n_query=inputs.n_query,
        world_size=world_size,
    )


__all__ = [
    "EPISODE_METRICS",
    "EpisodeInputs",
    "adapt_and_query",
    "episode_inputs",
    "episode_loss",
    "inner_loop",
    "prepare_features",
]
