"""First-order MAML episode: hand-computed gradients, zero leakage, accumulation, sharding."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from picomaml.model import PicoConfig, PicoDecoder
from picomaml.pretrain.config import MetaSection
from picomaml.pretrain.maml import EPISODE_METRICS, adapt_and_query, episode_inputs, episode_loss
from picomaml.pretrain.meta_head import (
    MetaHead,
    body_forward,
    dropout_masks,
    feature_collapse,
    init_output_layer,
    prototype_loo_logits,
    unit_rms,
    window_features,
)
from picomaml.pretrain.smlmt import Episode, SMLMTSampler

VOCAB, MASK, D = 64, 63, 16


def _backbone() -> PicoDecoder:
    """The real decoder at tiny dims (2 layers, d=16, a 64-token vocabulary)."""
    torch.manual_seed(0)
    cfg = PicoConfig(
        d_model=D, n_layers=2, n_heads=2, n_kv_heads=1, vocab_size=VOCAB, max_seq_len=16
    )
    return PicoDecoder(cfg)


def _episode(seed: int = 0, ways: int = 4, shots: int = 2, queries: int = 2) -> Episode:
    rng = np.random.default_rng(123)
    pool = rng.integers(0, 40, size=(60, 16))
    sampler = SMLMTSampler(
        pool, np.arange(40), ways=ways, shots=shots, queries=queries, window=8, mask_id=MASK
    )
    return sampler.sample(np.random.default_rng(seed))


def _cfg(**kw) -> MetaSection:
    """The query_only learner: these tests check the first-order inner loop itself (the
    other learners are tested against their references in test_learners.py)."""
    base = dict(
        ways=4, shots=2, queries=2, window=8, inner_steps=3, inner_lr=0.5, min_word_count=4,
        inner_dropout=True, query_dropout=True, learner="query_only",
    )  # fmt: skip
    base.update(kw)
    return MetaSection(**base)


def _head(dropout: float = 0.0) -> MetaHead:
    torch.manual_seed(1)
    return MetaHead(D, hidden=8, layers=2, dropout=dropout)


def _grads(*modules: nn.Module) -> list[torch.Tensor]:
    """Gradients of all parameters, zeros where autograd left none (unused output layer)."""
    params = [p for m in modules for p in m.parameters()]
    return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params]


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a)


def _manual_logits(x: torch.Tensor, p: list[torch.Tensor]) -> torch.Tensor:
    h = torch.relu(x @ p[0].T + p[1])
    h = torch.relu(h @ p[2].T + p[3])
    return h @ p[4].T + p[5]


def _reference(backbone: nn.Module, head: MetaHead, ep: Episode, cfg: MetaSection):
    """First-order MAML by hand: SGD on copies, query grad at the adapted weights."""
    with torch.no_grad():
        s = window_features(backbone, _t(ep.support_ids), _t(ep.support_mask), "mask")
    phi = [w.detach().clone() for w in head.body_params()]
    phi += [torch.zeros(ep.ways, 8), torch.zeros(ep.ways)]
    for _ in range(cfg.inner_steps):
        phi = [w.requires_grad_(True) for w in phi]
        g = torch.autograd.grad(F.cross_entropy(_manual_logits(s, phi), _t(ep.support_labels)), phi)
        phi = [(w - cfg.inner_lr * gi).detach() for w, gi in zip(phi, g, strict=True)]
    phi = [w.requires_grad_(True) for w in phi]
    q = window_features(backbone, _t(ep.query_ids), _t(ep.query_mask), "mask")
    loss = F.cross_entropy(_manual_logits(q, phi), _t(ep.query_labels))
    loss.backward()
    return loss.detach(), [w.grad for w in phi[:4]]


def test_gradients_equal_hand_computed_first_order_update() -> None:
    ep, cfg = _episode(), _cfg(output_init="zeros", center_features=False, normalize_features=False)
    backbone, head = _backbone(), _head()
    ref_backbone, ref_head = copy.deepcopy(backbone), copy.deepcopy(head)
    before = [w.detach().clone() for w in head.parameters()]

    loss, metrics = episode_loss(backbone, head, ep, cfg)
    assert all(w.grad is None for w in head.parameters())  # inner loop never touches .grad
    assert all(torch.equal(a, b) for a, b in zip(before, head.parameters(), strict=True))
    loss.backward()

    ref_loss, ref_head_grads = _reference(ref_backbone, ref_head, ep, cfg)
    torch.testing.assert_close(loss.detach(), ref_loss)
    for got, want in zip(head.body_params(), ref_head_grads, strict=True):
        torch.testing.assert_close(got.grad, want)
    assert any(g.abs().sum() > 0 for g in ref_head_grads)
    for (name, got), want in zip(
        backbone.named_parameters(), ref_backbone.parameters(), strict=True
    ):
        if want.grad is None:
            assert got.grad is None or not got.grad.any(), name
        else:
            torch.testing.assert_close(got.grad, want.grad, msg=name)
    norm = torch.sqrt(sum((w.grad**2).sum() for w in head.body_params()))
    assert metrics["head_grad_norm"] == pytest.approx(float(norm), rel=1e-5)
    assert metrics["support_acc_before"] == pytest.approx(1 / ep.ways)  # zero output layer
    assert set(metrics) >= {"support_acc_after", "query_acc", "query_loss", "head_weight_std"}
    assert metrics["query_loss"] == pytest.approx(float(ref_loss), rel=1e-6)


def test_no_support_leakage_into_outer_gradient() -> None:
    """Support and query windows use disjoint token ids: support-only embedding rows
    must get exactly zero gradient although the inner loop trained on them."""
    ep = _episode()
    s_ids = ep.support_ids % 20  # ids 0..19 (mask id kept separately below)
    q_ids = 20 + ep.query_ids % 20  # ids 20..39
    s_ids[ep.support_mask] = MASK
    q_ids[ep.query_mask] = MASK
    ep = Episode(
        s_ids, ep.support_mask, ep.support_labels, q_ids, ep.query_mask, ep.query_labels,
        ep.words, ep.seed, ep.support_places, ep.query_places,
    )  # fmt: skip
    backbone, head = _backbone(), _head()
    loss, metrics = episode_loss(backbone, head, ep, _cfg(inner_steps=5))
    loss.backward()
    grad = backbone.embedding_proj.weight.grad
    assert torch.count_nonzero(grad[:20]) == 0
    assert torch.count_nonzero(grad[20:40]) > 0
    assert metrics["support_acc_after"] >= metrics["support_acc_before"]


def test_existing_grad_is_accumulated_not_overwritten() -> None:
    ep, cfg = _episode(), _cfg()
    backbone, head = _backbone(), _head()
    loss, _ = episode_loss(copy.deepcopy(backbone), copy.deepcopy(head), ep, cfg)
    fresh_b, fresh_h = copy.deepcopy(backbone), copy.deepcopy(head)
    loss, _ = episode_loss(fresh_b, fresh_h, ep, cfg)
    loss.backward()

    torch.manual_seed(5)
    for w in list(backbone.parameters()) + list(head.parameters()):
        w.grad = torch.randn_like(w)
    prior = [w.grad.clone() for w in list(backbone.parameters()) + list(head.parameters())]
    loss, _ = episode_loss(backbone, head, ep, cfg)
    loss.backward()
    fresh = list(fresh_b.parameters()) + list(fresh_h.parameters())
    now = list(backbone.parameters()) + list(head.parameters())
    for w, p, f in zip(now, prior, fresh, strict=True):
        expected = p + (f.grad if f.grad is not None else 0)
        torch.testing.assert_close(w.grad, expected)


def test_determinism_with_dropout() -> None:
    ep, cfg = _episode(), _cfg()
    runs = []
    for _ in range(2):
        backbone, head = _backbone(), _head(dropout=0.3)
        torch.manual_seed(99)  # the global RNG must not matter
        loss, metrics = episode_loss(backbone, head, ep, cfg)
        loss.backward()
        runs.append((loss.detach(), [w.grad.clone() for w in head.parameters()], metrics))
        torch.rand(7)
    assert torch.equal(runs[0][0], runs[1][0])
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
    assert runs[0][2] == runs[1][2]
    other = _episode(seed=1)
    loss2, _ = episode_loss(_backbone(), _head(dropout=0.3), other, cfg)
    assert not torch.equal(loss2.detach(), runs[0][0])


@pytest.mark.parametrize("output_init", ["zeros", "xavier", "prototypes"])
def test_sharded_ranks_average_to_single_process(output_init: str) -> None:
    """Two simulated ranks (each its shard, features all-gathered) average to one process."""
    ep, cfg = _episode(), _cfg(output_init=output_init)
    backbone, head = _backbone(), _head(dropout=0.2)
    loss, single_metrics = episode_loss(backbone, head, ep, cfg)
    loss.backward()
    single = _grads(backbone, head)

    b2, h2 = _backbone(), _head(dropout=0.2)
    with torch.no_grad():
        full = window_features(b2, _t(ep.support_ids), _t(ep.support_mask), "mask").float()

    def fake_all_gather(local: torch.Tensor) -> torch.Tensor:
        assert any(torch.allclose(local, part) for part in full.chunk(2))
        return full.reshape(2, -1, full.shape[-1])

    total = None
    for rank in range(2):
        for w in list(b2.parameters()) + list(h2.parameters()):
            w.grad = None
        loss, metrics = episode_loss(
            b2, h2, ep, cfg, rank=rank, world_size=2, all_gather=fake_all_gather
        )
        assert metrics["support_acc_after"] == single_metrics["support_acc_after"]
        loss.backward()
        grads = _grads(b2, h2)
        total = grads if total is None else [a + b for a, b in zip(total, grads, strict=True)]
    for a, b in zip(total, single, strict=True):
        torch.testing.assert_close(a / 2, b)


def test_uneven_shards_are_an_error() -> None:
    from picomaml.errors import PicomamlError

    with pytest.raises(PicomamlError, match="ranks"):
        episode_loss(
            _backbone(), _head(), _episode(), _cfg(), rank=0, world_size=3, all_gather=lambda t: t
        )


def test_prepared_inputs_give_the_same_episode() -> None:
    """``episode_inputs`` (what the trainer prepares one micro-batch ahead) changes nothing."""
    from picomaml.errors import PicomamlError

    ep, cfg = _episode(), _cfg(output_init="xavier")
    results = []
    for prepared in (False, True):
        backbone, head = _backbone(), _head(dropout=0.2)
        source = episode_inputs(ep, "cpu", rank=1, world_size=2) if prepared else ep
        loss, metrics = episode_loss(
            backbone, head, source, cfg, rank=1, world_size=2, all_gather=lambda t: t.repeat(2, 1)
        )
        loss.backward()
        results.append((loss.detach(), metrics, _grads(backbone, head)))
    (loss_a, metrics_a, grads_a), (loss_b, metrics_b, grads_b) = results
    assert torch.equal(loss_a, loss_b) and metrics_a.keys() == metrics_b.keys()
    assert all(torch.equal(metrics_a[k], metrics_b[k]) for k in metrics_a)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b, strict=True))
    inputs = episode_inputs(ep, "cpu", rank=1, world_size=2)
    assert inputs.support_ids.shape[0] == len(ep.support_labels) // 2
    assert torch.equal(inputs.query_labels, _t(ep.query_labels[len(ep.query_labels) // 2 :]))
    with pytest.raises(PicomamlError, match="prepared for rank 1 of 2, called for rank 0 of 2"):
        episode_loss(_backbone(), _head(), inputs, cfg, rank=0, world_size=2)


def test_prototype_init_is_nearest_centroid() -> None:
    torch.manual_seed(0)
    z = torch.randn(30, 5)
    labels = torch.arange(30) % 3
    w, b = init_output_layer("prototypes", 3, z, labels, 5, "cpu")
    centroids = torch.stack([z[labels == c].mean(0) for c in range(3)])
    nearest = torch.cdist(z, centroids).argmin(1)
    assert torch.equal((z @ w.T + b).argmax(1), nearest)
    zw, zb = init_output_layer("zeros", 3, None, labels, 5, "cpu")
    assert not zw.any() and not zb.any()
    xw, xb = init_output_layer("xavier", 3, None, labels, 5, "cpu", seed=4)
    assert torch.equal(xw, init_output_layer("xavier", 3, None, labels, 5, "cpu", seed=4)[0])
    assert xw.abs().max() <= (6 / 8) ** 0.5 and xw.std() > 0.1 and not xb.any()


def test_dropout_masks_are_seeded_and_scaled() -> None:
    a = dropout_masks(3, 0, 100, 8, 2, 0.25, torch.device("cpu"))
    b = dropout_masks(3, 0, 100, 8, 2, 0.25, torch.device("cpu"))
    c = dropout_masks(3, 1, 100, 8, 2, 0.25, torch.device("cpu"))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    scale = torch.tensor(1 / 0.75, dtype=torch.float32).item()
    assert set(torch.unique(a[0]).tolist()) <= {0.0, scale}
    assert dropout_masks(3, 0, 100, 8, 2, 0.0, torch.device("cpu")) is None


def test_last_representation() -> None:
    backbone = _backbone()
    ids = torch.randint(0, 40, (3, 8))
    mask = torch.zeros(3, 8, dtype=torch.bool)
    mask[:, 2] = True
    mask[0, 5] = True
    hidden = backbone.hidden_states(ids)
    torch.testing.assert_close(window_features(backbone, ids, mask, "last"), hidden[:, -1])
    feats = window_features(backbone, ids, mask, "mask")
    torch.testing.assert_close(feats[0], (hidden[0, 2] + hidden[0, 5]) / 2)
    torch.testing.assert_close(feats[1], hidden[1, 2])


def test_evaluation_under_no_grad() -> None:
    """Held-out episodes can be scored without a graph: the inner loop still adapts."""
    ep, cfg = _episode(), _cfg(inner_steps=20)
    backbone, head = _backbone(), _head()
    with torch.no_grad():
        loss, metrics = episode_loss(backbone, head, ep, cfg)
    assert not loss.requires_grad and metrics["head_grad_norm"] == 0.0
    assert metrics["support_acc_after"] > metrics["support_acc_before"]


def test_leave_one_out_prototype_logits_by_hand() -> None:
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 4.0], [5.0, 5.0]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    logits = prototype_loo_logits(z, labels, 3)
    # Point 0 (class 0): own prototype without it is (2, 0); others are (10, 2) and (5, 5).
    mus = {0: torch.tensor([2.0, 0.0]), 1: torch.tensor([10.0, 2.0]), 2: torch.tensor([5.0, 5.0])}
    for c, mu in mus.items():
        assert logits[0, c] == pytest.approx(float(2 * z[0] @ mu - mu @ mu))
    # Point 3 (class 1): own prototype without it is (10, 0).
    own = torch.tensor([10.0, 0.0])
    assert logits[3, 1] == pytest.approx(float(2 * z[3] @ own - own @ own))
    # Class 2 has one example: nothing is left to build its prototype from.
    assert logits[4, 2] == -math.inf
    # Leave-one-out never beats the self-included nearest centroid on pure noise.
    torch.manual_seed(3)
    noise, lab = torch.randn(32, 16), torch.arange(32) % 8
    w, b = init_output_layer("prototypes", 8, noise, lab, 16, "cpu")
    inside = ((noise @ w.T + b).argmax(1) == lab).float().mean()
    loo = (prototype_loo_logits(noise, lab, 8).argmax(1) == lab).float().mean()
    assert inside > 0.6 and loo < 0.4


def test_support_acc_before_is_leave_one_out_for_prototypes() -> None:
    ep = _episode(ways=4, shots=3, queries=2)
    cfg = _cfg(shots=3, min_word_count=5, output_init="prototypes", inner_steps=0)
    backbone, head = _backbone(), _head()
    _, metrics = episode_loss(backbone, head, ep, cfg)
    with torch.no_grad():
        s = window_features(backbone, _t(ep.support_ids), _t(ep.support_mask), "mask")
        z = unit_rms(s)
        body = body_forward(z - z.mean(0), head.body_params(), None)  # the default preparation
    want = prototype_loo_logits(body, _t(ep.support_labels), 4).argmax(1) == _t(ep.support_labels)
    assert float(metrics["support_acc_before"]) == pytest.approx(float(want.float().mean()))
    assert float(metrics["chance_acc"]) == pytest.approx(0.25)
    assert set(metrics) == set(EPISODE_METRICS)


def test_feature_collapse_by_hand() -> None:
    same = torch.ones(6, 3)
    cosine, _ = feature_collapse(same + 1e-9 * torch.randn(6, 3), torch.arange(6) % 3, 3)
    assert float(cosine) == pytest.approx(1.0)
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    cosine, share = feature_collapse(x, torch.tensor([0, 0, 1, 1]), 2)
    # Pairs: (0,1) -1, (2,3) -1, four orthogonal pairs 0 -> mean -2/6.
    assert float(cosine) == pytest.approx(-1 / 3)
    assert float(share) == pytest.approx(0.0)  # both class means are the origin
    x = torch.tensor([[1.0, 0.0], [1.0, 0.2], [-1.0, 0.0], [-1.0, 0.2]])
    _, share = feature_collapse(x, torch.tensor([0, 0, 1, 1]), 2)
    # Total SS: 4 * 1 + 4 * 0.01 = 4.04; between-class SS: 4 * 1.
    assert float(share) == pytest.approx(4 / 4.04)


def test_after_mask_representation() -> None:
    backbone = _backbone()
    ids = torch.randint(0, 40, (3, 8))
    mask = torch.zeros(3, 8, dtype=torch.bool)
    mask[0, 2] = mask[0, 5] = True  # positions 3..7 follow the first mask
    mask[1, 6] = True  # only position 7 follows
    mask[2, 7] = True  # nothing follows: the last position is used
    hidden = backbone.hidden_states(ids)
    feats = window_features(backbone, ids, mask, "after_mask")
    torch.testing.assert_close(feats[0], hidden[0, 3:].mean(0))
    torch.testing.assert_close(feats[1], hidden[1, 7])
    torch.testing.assert_close(feats[2], hidden[2, 7])


def test_persistent_output_layer_is_restored_and_meta_learned() -> None:
    ep, cfg = _episode(), _cfg(output_init="persistent", inner_steps=5)
    backbone = _backbone()
    torch.manual_seed(1)
    head = MetaHead.from_config(D, replace(cfg, head_hidden=8, head_layers=2, head_dropout=0.0))
    assert head.out is not None and head.out.out_features == ep.ways
    before = [p.detach().clone() for p in head.parameters()]
    loss, metrics = episode_loss(backbone, head, ep, cfg)
    # The inner loop adapted copies: the head's own values are untouched after the episode.
    assert all(torch.equal(a, b) for a, b in zip(before, head.parameters(), strict=True))
    assert float(metrics["support_loss_after"]) < float(metrics["support_loss_before"])
    loss.backward()
    assert head.out.weight.grad is not None and head.out.weight.grad.abs().sum() > 0
    optimizer = torch.optim.SGD(head.parameters(), lr=0.1)
    optimizer.step()
    assert not torch.equal(head.out.weight, before[-2])  # the output layer is meta-learned
    # The per-episode inits give the output layer no parameter at all.
    assert MetaHead.from_config(D, _cfg()).out is None


def test_centering_ignores_a_direction_shared_by_every_window() -> None:
    """A constant added to every feature (a collapsed backbone's shared direction) changes
    neither the loss nor the head's gradient when features are centred."""
    torch.manual_seed(0)
    s, q = torch.randn(8, D), torch.randn(8, D)
    s_lab, q_lab = torch.arange(4).repeat(2), torch.arange(4).repeat(2)
    shift = 50 * torch.randn(D)
    results = []
    for offset in (torch.zeros(D), shift):
        head = _head()
        cfg = _cfg(normalize_features=False)  # centring alone
        loss, _ = adapt_and_query(head, s + offset, s_lab, q + offset, q_lab, cfg, ways=4, seed=3)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in head.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-4, atol=1e-4)
    for a, b in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    raw, _ = adapt_and_query(
        _head(),
        s + shift,
        s_lab,
        q + shift,
        q_lab,
        _cfg(center_features=False),
        ways=4,
        seed=3,
    )
    assert abs(float(raw.detach()) - float(results[0][0])) > 0.1


def test_collapse_statistic_reads_the_raw_features() -> None:
    """Centring happens after the statistic: a collapsed set must read as collapsed."""
    torch.manual_seed(0)
    s = torch.randn(8, D) * 0.01 + 5.0
    labels = torch.arange(4).repeat(2)
    _, metrics = adapt_and_query(_head(), s, labels, s.clone(), labels, _cfg(), ways=4, seed=0)
    assert float(metrics["feature_cosine"]) > 0.99


def test_normalizing_makes_the_episode_blind_to_feature_length() -> None:
    """Scaled-up features (a backbone growing its final norm's gain) change nothing."""
    torch.manual_seed(0)
    s, q = torch.randn(8, D), torch.randn(8, D)
    labels = torch.arange(4).repeat(2)
    losses = []
    for scale in (1.0, 30.0):
        loss, _ = adapt_and_query(_head(), scale * s, labels, scale * q, labels, _cfg(), ways=4,
                                  seed=1)  # fmt: skip
        losses.append(float(loss.detach()))
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    raw = [
        float(adapt_and_query(_head(), k * s, labels, k * q, labels,
                              _cfg(normalize_features=False), ways=4, seed=1)[0].detach())
        for k in (1.0, 30.0)
    ]  # fmt: skip
    assert raw[1] > 2 * raw[0]
    torch.testing.assert_close(unit_rms(3 * s).square().mean(1), torch.ones(8), rtol=1e-4, atol=0)
