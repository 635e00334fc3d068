"""Entity scores and bootstrap counts against seqeval itself, on UNER files (fixture and real)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

from picomaml.errors import PicomamlError
from picomaml.ner.metrics import (
    GOLD,
    PRED,
    TP,
    bootstrap_f1_ci,
    bootstrap_indices,
    entity_counts,
    entity_scores,
    paired_bootstrap,
    prf_from_counts,
    sentence_entities,
)

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
FILES = [
    "UNER_Tagalog-TRG/tl_trg-ud-test.iob2",
    "UNER_Cebuano-GJA/ceb_gja-ud-test.iob2",
    "UNER_English-EWT/en_ewt-ud-dev.iob2",
]
#: Fixture files with the reader's odd cases (tests/fixtures/make_fixtures.py ODD_CASES).
FIXTURE_ODD_FILES = [
    "UNER_Danish-DDT/da_ddt-ud-train.iob2",
    "UNER_Croatian-SET/hr_set-ud-train.iob2",
]


def _read_tags(path: Path, limit: int | None = None) -> list[list[str]]:
    """Tag column of a UNER file (tags outside the label set -> O), independent of data/uner.py."""
    sents, cur = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if cur:
                sents.append(cur)
                cur = []
        elif not line.startswith("#"):
            tag = line.split("\t")[2]
            cur.append(tag if tag in LABELS else "O")
    if cur:
        sents.append(cur)
    return sents[:limit]


def _perturb(gold: list[list[str]], rate: float, seed: int) -> list[list[str]]:
    """Random tag replacements (incl. I-X after O, type clashes) and B/I swaps."""
    rng = random.Random(seed)
    out = []
    for sent in gold:
        new = list(sent)
        for j, tag in enumerate(new):
            u = rng.random()
            if u < rate:
                new[j] = rng.choice(LABELS)
            elif u < 1.5 * rate and tag != "O":
                new[j] = ("I-" if tag[0] == "B" else "B-") + tag[2:]
        out.append(new)
    return out


@pytest.fixture(scope="module")
def real_sets(data_dir: Path) -> dict[str, list[list[str]]]:
    return {f: _read_tags(data_dir / "uner" / f, limit=600) for f in FILES}


@pytest.fixture(scope="module")
def fixture_sets(fixture_data_root: Path) -> dict[str, list[list[str]]]:
    return {f: _read_tags(fixture_data_root / "uner" / f) for f in FILES + FIXTURE_ODD_FILES}


def _check_against_seqeval(sets: dict[str, list[list[str]]], mode: str) -> None:
    """Our counts, micro and per-type scores equal seqeval's on perturbed copies of ``sets``."""
    kw = {"mode": "strict", "scheme": IOB2} if mode == "strict" else {}
    for name, gold in sets.items():
        for seed, rate in [(0, 0.05), (1, 0.2), (2, 0.6)]:
            pred = _perturb(gold, rate, seed)
            ref_f1 = f1_score(gold, pred, average="micro", zero_division=0, **kw)
            ref_p = precision_score(gold, pred, average="micro", zero_division=0, **kw)
            ref_r = recall_score(gold, pred, average="micro", zero_division=0, **kw)
            scores = entity_scores(gold, pred, mode)
            assert scores["micro"]["f1"] == pytest.approx(ref_f1, abs=1e-12), name
            assert scores["micro"]["precision"] == pytest.approx(ref_p, abs=1e-12)
            assert scores["micro"]["recall"] == pytest.approx(ref_r, abs=1e-12)
            types, counts = entity_counts(gold, pred, mode)
            total = counts.sum(axis=(0, 1))
            p, r, f = prf_from_counts(total[TP], total[PRED], total[GOLD])
            assert (p, r, f) == pytest.approx((ref_p, ref_r, ref_f1), abs=1e-12)
            assert bootstrap_f1_ci(gold, pred, 5, mode=mode)["f1"] == pytest.approx(ref_f1)
            per_type = f1_score(gold, pred, average=None, zero_division=0, **kw)
            seen = sorted({t for t in types if counts[:, types.index(t), 1:].sum() > 0})
            for t, ref in zip(seen, per_type, strict=True):
                k = types.index(t)
                tot = counts[:, k].sum(axis=0)
                assert prf_from_counts(tot[TP], tot[PRED], tot[GOLD])[2] == pytest.approx(ref)
                assert scores["per_type"][t]["f1"] == pytest.approx(ref, abs=1e-12)
                assert scores["per_type"][t]["support"] == tot[GOLD]


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_counts_and_scores_equal_seqeval_on_fixture_files(fixture_sets, mode) -> None:
    """Few sentences, but the odd cases: orphan I- tags (da_ddt), a B-OTH span then I-PER."""
    _check_against_seqeval(fixture_sets, mode)


@pytest.mark.needs_real_data
@pytest.mark.parametrize("mode", ["default", "strict"])
def test_counts_and_scores_equal_seqeval_on_real_data(real_sets, mode) -> None:
    _check_against_seqeval(real_sets, mode)


def test_modes_differ_on_broken_iob2() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["O", "I-PER", "O", "B-LOC"]]  # orphan I-PER: a span in default mode, none in strict
    assert sentence_entities(pred[0], "default") == {("PER", 1, 1), ("LOC", 3, 3)}
    assert sentence_entities(pred[0], "strict") == {("LOC", 3, 3)}
    d, s = entity_scores(gold, pred, "default"), entity_scores(gold, pred, "strict")
    assert d["micro"]["precision"] == 0.5 and s["micro"]["precision"] == 1.0
    assert d["micro"]["recall"] == s["micro"]["recall"] == 0.5
    assert d["per_type"]["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # Hand computation of the default-mode F1: P = 1/2, R = 1/2 -> F1 = 1/2; strict: 2/3.
    assert d["micro"]["f1"] == pytest.approx(0.5) and s["micro"]["f1"] == pytest.approx(2 / 3)


def test_zero_entity_edge_cases_match_seqeval() -> None:
    empty = [["O", "O"], []]
    for mode in ("default", "strict"):
        s = entity_scores(empty, empty, mode)
        assert s["micro"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        assert bootstrap_f1_ci(empty, empty, 20, mode=mode)["f1_ci95"] == [0.0, 0.0]
    pred = [["B-ORG", "O"], []]
    assert entity_scores(empty, pred)["micro"]["f1"] == 0.0
    assert entity_scores(pred, empty)["per_type"]["ORG"]["support"] == 1
    assert bootstrap_f1_ci([], [], 10)["f1"] == 0.0


def _check_bootstrap_replay(gold: list[list[str]]) -> None:
    """The interval is the quantiles of seqeval's F1 over the same resampled index rows."""
    pred = _perturb(gold, 0.3, 5)
    res = bootstrap_f1_ci(gold, pred, n_resamples=30, seed=3)
    (idx,) = list(bootstrap_indices(len(gold), 30, 3))
    ref = sorted(
        f1_score([gold[i] for i in row], [pred[i] for i in row], zero_division=0) for row in idx
    )
    lo, hi = np.quantile(ref, [0.025, 0.975])
    assert res["f1_ci95"] == pytest.approx([lo, hi], abs=1e-12)
    assert res == bootstrap_f1_ci(gold, pred, n_resamples=30, seed=3)  # deterministic
    assert res != bootstrap_f1_ci(gold, pred, n_resamples=30, seed=4)


def test_bootstrap_replays_exactly_with_seqeval_on_fixture_files(fixture_sets) -> None:
    _check_bootstrap_replay([sent for gold in fixture_sets.values() for sent in gold])


@pytest.mark.needs_real_data
def test_bootstrap_replays_exactly_with_seqeval(real_sets) -> None:
    _check_bootstrap_replay(real_sets[FILES[0]])


@pytest.mark.needs_real_data
def test_bootstrap_interval_shape(real_sets) -> None:
    gold = real_sets[FILES[2]]
    pred = _perturb(gold, 0.2, 0)
    res = bootstrap_f1_ci(gold, pred)
    lo, hi = res["f1_ci95"]
    assert res["n_resamples"] == 1000 and res["seed"] == 0
    assert 0 <= lo < res["f1"] < hi <= 1
    assert hi - lo < 0.2
    assert list(bootstrap_f1_ci(gold, pred, 50, alpha=0.1)) == [
        "n_resamples",
        "seed",
        "mode",
        "f1",
        "f1_ci90",
    ]
    assert sum(len(c) for c in bootstrap_indices(7, 1000, 0)) == 1000


@pytest.mark.needs_real_data
def test_paired_bootstrap(real_sets) -> None:
    gold = real_sets[FILES[2]]
    worse, better = _perturb(gold, 0.4, 1), _perturb(gold, 0.05, 2)
    res = paired_bootstrap(gold, worse, better, n_resamples=300, seed=0)
    assert res["delta"] == pytest.approx(res["f1_b"] - res["f1_a"]) and res["delta"] > 0.2
    assert res["delta_ci95"][0] > 0 and res["p_value"] == 0.0
    same = paired_bootstrap(gold, worse, worse, n_resamples=50)
    assert same["delta"] == 0 and same["delta_ci95"] == [0.0, 0.0] and same["p_value"] == 1.0
    assert paired_bootstrap(gold, better, worse, n_resamples=300)["p_value"] == 1.0


def test_bad_input_is_named() -> None:
    with pytest.raises(PicomamlError, match="sentence 1 has 2 gold tags but 1"):
        entity_scores([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(PicomamlError, match="'PER' at sentence 0, word 1"):
        entity_scores([["O", "PER"]], [["O", "O"]])
    with pytest.raises(PicomamlError, match="2 gold sentences but 1"):
        bootstrap_f1_ci([["O"], ["O"]], [["O"]])
    with pytest.raises(PicomamlError, match="mode"):
        entity_scores([["O"]], [["O"]], "lenient")  # type: ignore[arg-type]
    with pytest.raises(PicomamlError, match="n_resamples"):
        bootstrap_f1_ci([["O"]], [["O"]], n_resamples=0)
