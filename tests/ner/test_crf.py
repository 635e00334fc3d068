"""The CRF against brute-force enumeration of every tag sequence on tiny problems."""

from __future__ import annotations

import itertools

import pytest
import torch

from picomaml.ner.crf import FORBIDDEN_SCORE, CRFTagger, LinearChainCRF, iob2_constraints

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def _random_problem(seed: int, num_tags: int, length: int, batch: int = 4):
    """A CRF with non-trivial scores, emissions with NaN padding, and variable lengths (incl. 0)."""
    gen = torch.Generator().manual_seed(seed)
    crf = LinearChainCRF(num_tags).double()
    with torch.no_grad():
        for p in (crf.transitions, crf.start, crf.end):
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    emissions = torch.randn(batch, length, num_tags, generator=gen, dtype=torch.float64)
    lengths = [length, 0] + torch.randint(1, length + 1, (batch - 2,), generator=gen).tolist()
    mask = torch.arange(length).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    emissions = emissions.masked_fill(~mask.unsqueeze(-1), float("nan"))
    return crf, emissions, mask, lengths


@torch.no_grad()
def _path_score(crf: LinearChainCRF, em: torch.Tensor, path: tuple[int, ...]) -> float:
    """Score of one path by the textbook formula, using the effective (constrained) scores."""
    trans, start, end = crf._scores(em.dtype)
    s = start[path[0]] + em[0, path[0]]
    for t in range(1, len(path)):
        s = s + trans[path[t - 1], path[t]] + em[t, path[t]]
    return float(s + end[path[-1]])


def _brute(crf: LinearChainCRF, em: torch.Tensor, n: int):
    """log Z, best path, best score and marginals [n, C] of one sequence of length n >= 1."""
    c = em.shape[1]
    paths = list(itertools.product(range(c), repeat=n))
    scores = torch.tensor([_path_score(crf, em, p) for p in paths], dtype=torch.float64)
    log_z = torch.logsumexp(scores, 0)
    best = int(scores.argmax())
    probs = torch.exp(scores - log_z)
    marg = torch.zeros(n, c, dtype=torch.float64)
    for p, pr in zip(paths, probs, strict=True):
        for t, tag in enumerate(p):
            marg[t, tag] += pr
    return float(log_z), list(paths[best]), float(scores[best]), marg


CASES = [
    (seed, c, length) for seed, (c, length) in enumerate([(3, 1), (3, 4), (4, 4), (5, 3), (7, 3)])
]


@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize(("seed", "num_tags", "length"), CASES)
def test_matches_brute_force(seed: int, num_tags: int, length: int, constrained: bool) -> None:
    crf, em, mask, lengths = _random_problem(seed, num_tags, length)
    if constrained:
        # A random constraint pattern (every tag keeps at least one predecessor and the start).
        gen = torch.Generator().manual_seed(100 + seed)
        allowed = torch.rand(num_tags + 1, num_tags, generator=gen) > 0.4
        allowed[0] = True
        crf.set_constraints(allowed)
    log_z = crf.log_partition(em, mask)
    paths, best_scores = crf.viterbi(em, mask)
    decoded = crf.decode(em, mask)
    marg = crf.marginals(em, mask)
    tags = torch.randint(0, num_tags, mask.shape, generator=torch.Generator().manual_seed(seed))
    tags = tags.masked_fill(~mask, -100)
    ll = crf.log_likelihood(em, tags, mask)
    for b, n in enumerate(lengths):
        if n == 0:
            assert log_z[b] == 0 and ll[b] == 0 and best_scores[b] == 0
            assert decoded[b] == [] and bool((marg[b] == 0).all())
            continue
        bz, bpath, bscore, bmarg = _brute(crf, em[b], n)
        assert log_z[b].item() == pytest.approx(bz, abs=1e-9)
        assert decoded[b] == bpath
        assert paths[b, :n].tolist() == bpath and bool((paths[b, n:] == -1).all())
        assert best_scores[b].item() == pytest.approx(bscore, abs=1e-9)
        torch.testing.assert_close(marg[b, :n], bmarg, atol=1e-9, rtol=0)
        assert bool((marg[b, n:] == 0).all())
        gold = tuple(tags[b, :n].tolist())
        assert ll[b].item() == pytest.approx(_path_score(crf, em[b], gold) - bz, abs=1e-9)


def test_marginals_sum_to_one_and_match_autograd() -> None:
    crf, em, mask, _ = _random_problem(7, 7, 12, batch=6)
    marg = crf.marginals(em, mask)
    sums = marg.sum(-1)
    torch.testing.assert_close(sums[mask], torch.ones(int(mask.sum()), dtype=torch.float64))
    assert bool((sums[~mask] == 0).all())
    # d log Z / d emissions is the marginal: an independent check at a length brute force can't do.
    em_clean = em.nan_to_num(0.0).requires_grad_(True)
    crf.log_partition(em_clean, mask).sum().backward()
    torch.testing.assert_close(em_clean.grad, marg)


@pytest.mark.parametrize("constrained", [False, True])
def test_gradients_finite(constrained: bool) -> None:
    torch.manual_seed(0)
    tagger = CRFTagger(8, len(LABELS), iob2_constraints(LABELS) if constrained else None)
    feats = torch.randn(3, 5, 8, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    # Row 0 breaks IOB2 (I-LOC after O, I-ORG first in row 1): gradients must still be finite.
    tags = torch.tensor([[0, 4, 4, 1, 2], [6, 0, -100, -100, -100], [-100] * 5])
    loss = tagger.nll(feats, tags, mask)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [feats.grad] + [p.grad for p in tagger.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    if constrained:
        assert loss.item() > -FORBIDDEN_SCORE / 2  # the broken gold path is (nearly) impossible


def test_nan_at_padding_does_not_leak_into_gradients() -> None:
    crf, em, mask, _ = _random_problem(4, 5, 6)
    em = em.requires_grad_(True)  # NaN at every padded position
    tags = torch.zeros(mask.shape, dtype=torch.long)
    crf.nll(em, tags, mask).backward()
    assert bool(torch.isfinite(em.grad).all()) and bool((em.grad[~mask] == 0).all())
    assert all(bool(torch.isfinite(p.grad).all()) for p in crf.parameters())


def test_large_scores_stay_finite() -> None:
    crf, em, mask, _ = _random_problem(11, 5, 6)
    em = (em * 300).float()
    crf = crf.float()
    log_z = crf.log_partition(em, mask)
    _, best = crf.viterbi(em, mask)
    marg = crf.marginals(em, mask)
    assert bool(torch.isfinite(log_z).all()) and bool(torch.isfinite(marg).all())
    assert bool((log_z >= best - 1e-3).all())  # Z sums over the best path too
    # Probabilities, even here: exp(alpha + beta - log Z) gave up to 1.00024 for these scores.
    assert bool((marg >= 0).all()) and bool((marg <= 1).all())
    torch.testing.assert_close(marg.sum(-1)[mask], torch.ones(int(mask.sum())), atol=1e-6, rtol=0)


def test_half_precision_emissions_are_upcast() -> None:
    crf, em, mask, _ = _random_problem(12, 4, 5)
    crf = crf.float()
    em = em.nan_to_num(0.0)
    ref = crf.log_partition(em.float(), mask)
    out = crf.log_partition(em.bfloat16(), mask)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, atol=0.1, rtol=0.02)


def test_tagger_state_dict_round_trip() -> None:
    torch.manual_seed(0)
    a, b = CRFTagger(6, len(LABELS)), CRFTagger(6, len(LABELS))
    assert set(a.state_dict()) == {
        "emission.weight",
        "emission.bias",
        "crf.transitions",
        "crf.start",
        "crf.end",
    }
    b.load_state_dict(a.state_dict())
    feats, mask = torch.randn(2, 5, 6), torch.ones(2, 5, dtype=torch.bool)
    assert a.decode(feats, mask) == b.decode(feats, mask)
    assert a(feats).shape == (2, 5, len(LABELS))


def test_all_padding_batch() -> None:
    crf = LinearChainCRF(3)
    em = torch.randn(2, 4, 3, requires_grad=True)
    mask = torch.zeros(2, 4, dtype=torch.bool)
    tags = torch.zeros(2, 4, dtype=torch.long)
    loss = crf.nll(em, tags, mask)
    loss.backward()
    assert loss.item() == 0 and not torch.isnan(em.grad).any()
    assert crf.decode(em, mask) == [[], []]
    assert crf.marginals(em, mask).abs().sum() == 0
    empty = torch.zeros(2, 0, 3)
    assert crf.log_partition(empty, torch.zeros(2, 0, dtype=torch.bool)).tolist() == [0.0, 0.0]
    assert crf.decode(empty, torch.zeros(2, 0, dtype=torch.bool)) == [[], []]


def test_nll_mean_skips_empty_rows() -> None:
    crf, em, mask, lengths = _random_problem(3, 4, 4)
    tags = torch.zeros(mask.shape, dtype=torch.long)
    per_seq = crf.nll(em, tags, mask, reduction="none")
    n_nonempty = sum(n > 0 for n in lengths)
    assert crf.nll(em, tags, mask).item() == pytest.approx(per_seq.sum().item() / n_nonempty)
    assert crf.nll(em, tags, mask, reduction="sum").item() == pytest.approx(per_seq.sum().item())


def test_iob2_constraints_table() -> None:
    allowed = iob2_constraints(LABELS)
    idx = {lab: i for i, lab in enumerate(LABELS)}
    assert allowed.shape == (len(LABELS) + 1, len(LABELS))
    assert not allowed[idx["O"], idx["I-PER"]]
    assert not allowed[idx["B-LOC"], idx["I-PER"]]
    assert allowed[idx["B-PER"], idx["I-PER"]] and allowed[idx["I-PER"], idx["I-PER"]]
    assert allowed[idx["I-ORG"], idx["B-PER"]] and allowed[idx["I-ORG"], idx["O"]]
    start = allowed[-1]
    assert [LABELS[j] for j in range(len(LABELS)) if not start[j]] == ["I-PER", "I-LOC", "I-ORG"]
    with pytest.raises(ValueError, match="PER"):
        iob2_constraints(["O", "PER"])


def test_constrained_decode_is_valid_iob2() -> None:
    torch.manual_seed(1)
    crf = LinearChainCRF(len(LABELS), iob2_constraints(LABELS))
    with torch.no_grad():
        crf.transitions[:, 2] += 5.0  # make I-PER attractive everywhere, incl. after O
        crf.start[2] += 5.0
    em = torch.randn(16, 10, len(LABELS)) * 3
    mask = torch.ones(16, 10, dtype=torch.bool)
    unconstrained = LinearChainCRF(len(LABELS))
    unconstrained.load_state_dict(crf.state_dict())
    assert any(_iob2_violations(p) for p in unconstrained.decode(em, mask))  # test has teeth
    for path in crf.decode(em, mask):
        assert _iob2_violations(path) == []


def _iob2_violations(path: list[int]) -> list[int]:
    bad, prev = [], "O"
    for t, tag in enumerate(LABELS[i] for i in path):
        if tag.startswith("I-") and prev not in (f"B-{tag[2:]}", tag):
            bad.append(t)
        prev = tag
    return bad


def test_constraints_are_not_saved_and_can_be_switched() -> None:
    crf = LinearChainCRF(len(LABELS), iob2_constraints(LABELS))
    assert crf.constrained and "allowed" not in crf.state_dict()
    crf.set_constraints(None)
    assert not crf.constrained
    crf.set_constraints(iob2_constraints(LABELS)[:-1])  # [C, C] form: starts unconstrained
    assert crf.constrained and bool(crf.allowed[-1].all())
    with pytest.raises(ValueError, match="shape"):
        crf.set_constraints(torch.ones(3, 3, dtype=torch.bool))


def test_bad_shapes_are_rejected() -> None:
    crf = LinearChainCRF(3)
    em = torch.randn(2, 3, 3)
    with pytest.raises(ValueError, match="left-aligned"):
        crf.log_partition(em, torch.tensor([[0, 1, 1], [1, 1, 1]], dtype=torch.bool))
    with pytest.raises(ValueError, match="tags"):
        crf.log_partition(torch.randn(2, 3, 4), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        crf.log_likelihood(em, torch.full((2, 3), 3), torch.ones(2, 3, dtype=torch.bool))


def test_tagger_learns_a_decodable_tagging() -> None:
    """End-to-end learnability: NLL training + Viterbi recover spans that the features and the
    transitions determine (a name word after a name word is I-, else B-), F1 near 1."""
    from seqeval.metrics import f1_score

    from picomaml.data.labels import LABELS

    gen = torch.Generator().manual_seed(0)
    n_types, d, batch, length = 12, 16, 64, 10
    table = torch.randn(n_types, d, generator=gen)
    kinds = {0: "PER", 1: "PER", 2: "LOC", 3: "ORG"}  # word types 4.. are O

    def sample():
        words = torch.randint(0, n_types, (batch, length), generator=gen)
        tags = []
        for row in words.tolist():
            out = []
            for i, w in enumerate(row):
                kind = kinds.get(w)
                inside = i > 0 and kind is not None and kinds.get(row[i - 1]) == kind
                out.append("O" if kind is None else f"{'I' if inside else 'B'}-{kind}")
            tags.append(out)
        ids = torch.tensor([[LABELS.index(t) for t in row] for row in tags])
        feats = table[words] + 0.1 * torch.randn(batch, length, d, generator=gen)
        return feats, ids, tags

    torch.manual_seed(0)
    tagger = CRFTagger(d, len(LABELS))
    optimizer = torch.optim.AdamW(tagger.parameters(), lr=0.05)
    mask = torch.ones(batch, length, dtype=torch.bool)
    for _ in range(150):
        feats, ids, _ = sample()
        optimizer.zero_grad()
        tagger.nll(feats, ids, mask).backward()
        optimizer.step()
    feats, _, gold = sample()
    with torch.no_grad():
        pred = [[LABELS[i] for i in path] for path in tagger.decode(feats, mask)]
    assert f1_score(gold, pred) > 0.95
