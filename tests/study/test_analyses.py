"""Pure analysis computations against hand-computed values."""

from __future__ import annotations

import json
import math

import pytest

from picomaml.study import loss_curves, summary_stats, text_stats
from picomaml.study.analyses import (
    Context,
    analysis_pretraining,
    chance_verdict,
    convergence_deltas,
    pair_cells,
    pretraining_summary,
    span_stat_rows,
)
from picomaml.study.records import CellRecord, StudyData


def test_t90_falling_curve():
    # first 10, final 1 -> threshold 10 - 0.9 * 9 = 1.9; first loss <= 1.9 is 1.5 at step 30
    steps = [0, 10, 20, 30, 40]
    losses = [10.0, 5.0, 2.0, 1.5, 1.0]
    assert loss_curves.t90(steps, losses) == 30


def test_t90_exact_threshold_and_flat_and_rising():
    assert loss_curves.t90([0, 1, 2], [2.0, 1.1, 1.0]) == 1  # threshold 1.1, reached exactly
    assert loss_curves.t90([5, 6, 7], [1.0, 1.0, 1.0]) == 5
    # rising 0 -> 10: threshold 9; first loss >= 9 is at step 2
    assert loss_curves.t90([0, 1, 2, 3], [0.0, 5.0, 9.5, 10.0]) == 2
    assert loss_curves.t90([], []) is None


def test_normalised_auc_by_hand():
    # steps 0..10 -> x 0, 0.5, 1; losses/first = 1, 0.5, 0.25
    # trapezoids: 0.5*(1+0.5)/2 + 0.5*(0.5+0.25)/2 = 0.375 + 0.1875
    assert loss_curves.normalised_auc([0, 5, 10], [4.0, 2.0, 1.0]) == pytest.approx(0.5625)
    # uneven spacing: x 0, 0.2, 1; y 1, 0, 0 -> 0.2 * 0.5 = 0.1
    assert loss_curves.normalised_auc([0, 2, 10], [3.0, 0.0, 0.0]) == pytest.approx(0.1)
    assert loss_curves.normalised_auc([0], [1.0]) is None
    assert loss_curves.normalised_auc([0, 1], [0.0, 0.0]) is None


def test_initial_slope_uses_first_tenth():
    steps = list(range(0, 101, 5))  # cutoff 10 -> steps 0, 5, 10
    losses = [10.0, 9.0, 8.0] + [0.0] * 18  # later points must not matter
    assert loss_curves.initial_slope(steps, losses) == pytest.approx(-0.2)
    # fewer than two points in the window: use the first two
    assert loss_curves.initial_slope([0, 100, 200], [3.0, 1.0, 0.0]) == pytest.approx(-0.02)
    # least squares through noisy points: x 0,1,2 y 0,2,1 -> slope 0.5
    assert loss_curves.initial_slope([0, 1, 2], [0.0, 2.0, 1.0], fraction=1.0) == pytest.approx(0.5)


def test_train_curve_filters_and_sorts():
    log = [
        {"kind": "dev", "step": 5, "epoch": 0, "f1": 0.3},
        {"kind": "train", "step": 10, "epoch": 0, "loss": 1.0},
        {"kind": "train", "step": 0, "epoch": 0, "loss": 2.0},
    ]
    assert loss_curves.train_curve(log) == ([0.0, 10.0], [2.0, 1.0])


def test_t_interval_and_relative_gain():
    m, lo, hi = summary_stats.t_interval([1.0, 2.0, 3.0])
    # sd 1, t(2 df) = 4.303, half = 4.303 / sqrt(3)
    assert m == 2.0
    assert hi - m == pytest.approx(4.303 / math.sqrt(3))
    assert lo == pytest.approx(2 * m - hi)
    assert summary_stats.t_interval([1.0]) is None
    assert summary_stats.relative_gain(0.5, 0.6) == pytest.approx(0.2)
    assert summary_stats.relative_gain(0.0, 0.6) is None
    assert summary_stats.verdict(0.01, 0.2).startswith("MAML better")
    assert summary_stats.verdict(-0.2, -0.01).startswith("vanilla better")
    assert summary_stats.verdict(-0.1, 0.1) == "not distinguishable from noise"


def test_spans_conlleval_reading():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "B-ORG", "B-ORG", "I-PER"]
    assert text_stats.spans(tags) == [
        ("LOC", 3, 4),
        ("ORG", 4, 5),
        ("ORG", 5, 6),
        ("PER", 0, 2),
        ("PER", 6, 7),
    ]


def test_span_statistics():
    seqs = [["B-PER", "O", "B-PER", "I-PER"], ["B-LOC", "O", "B-PER"], ["O"]]
    stats = text_stats.span_statistics(seqs)
    assert stats["PER"] == {"spans": 3, "single": 2, "single_share": pytest.approx(2 / 3)}
    assert stats["LOC"]["single_share"] == 1.0
    assert stats["ORG"] == {"spans": 0, "single": 0, "single_share": 0.0}
    rows = span_stat_rows({"x": seqs})
    assert rows[0] == {
        "dataset": "x",
        "type": "PER",
        "spans": 3,
        "single-word (%)": pytest.approx(200 / 3),
    }
    assert rows[2]["single-word (%)"] is None


def test_particle_spans_and_recall():
    tokens = ["Pumunta", "SI", "Maria", "sa", "Cebu", "kasama", "Juan", "Cruz", "ni", "Jose"]
    tags = ["O", "O", "B-PER", "O", "B-LOC", "O", "B-PER", "I-PER", "O", "B-PER"]
    flagged = text_stats.particle_spans(tokens, tags, ["si", "ni", "kay"])
    assert flagged == [(("PER", 2, 3), True), (("PER", 6, 8), False), (("PER", 9, 10), True)]
    # a span at the sentence start has no preceding word
    assert text_stats.particle_spans(["Maria"], ["B-PER"], ["si"]) == [(("PER", 0, 1), False)]
    gold = [s for s, _ in flagged]
    assert text_stats.span_recall(gold, [("PER", 2, 3), ("PER", 6, 7)]) == pytest.approx(1 / 3)
    assert text_stats.span_recall([], []) is None


def test_split_share_oov_topwords_confidence():
    assert text_stats.split_share([1, 2, 3, 1]) == 0.5
    assert text_stats.split_share([]) is None
    # types {maria, sa, cebu}; vocab has "sa" -> 2/3 unseen (case-insensitive)
    assert text_stats.oov_rate(["Maria", "sa", "Cebu", "maria"], {"sa"}) == pytest.approx(2 / 3)
    sents = [
        (["a", "Maria", "b", "Maria"], ["O", "B-PER", "O", "B-PER"]),
        (["b", "Cebu"], ["O", "B-LOC"]),
    ]
    assert text_stats.top_words(sents, 1, entity=True) == ["Maria"]
    assert text_stats.top_words(sents, 5, entity=False) == ["b", "a"]
    conf = text_stats.mean_word_confidence(
        [(["Maria", "Maria", "x"], ["B-PER", "O", "O"], [0.8, 0.1, 0.5])], ["Maria", "y"], True
    )
    assert conf == {"Maria": 0.8, "y": None}


def test_log_p_deltas():
    d = text_stats.log_p_deltas([0.5, 0.25, 0.0], [0.5, 0.5, 1.0])
    assert d[0] == 0.0
    assert d[1] == pytest.approx(math.log(2))
    assert d[2] == pytest.approx(-math.log(1e-12))


def _rec(variant, size, regime, source, seed, losses, kind="main", step=None):
    log = [{"kind": "train", "step": 10 * i, "epoch": 0, "loss": x} for i, x in enumerate(losses)]
    return CellRecord(
        cell_id=f"{variant}-{size}-{regime}-{source}-s{seed}",
        rel="cells/x",
        kind=kind,
        variant=variant,
        size=size,
        regime=regime,
        source=source,
        seed=seed,
        step=step,
        run={},
        datasets={},
        train_log=log,
    )


def test_pairing_and_convergence_deltas():
    cells = [
        _rec("vanilla", "tiny", "head", "sk_snk", 0, [10, 5, 2, 1]),  # t90 at 30
        _rec("maml", "tiny", "head", "sk_snk", 0, [10, 1.5, 1.2, 1]),  # t90 at 10
        _rec("vanilla", "tiny", "head", "da_ddt", 0, [4, 2, 1, 1]),  # t90 at 20
        _rec("maml", "tiny", "head", "da_ddt", 0, [4, 2, 1, 1]),
        _rec("maml", "tiny", "full", "da_ddt", 0, [4, 2, 1, 1]),  # unpaired: ignored
    ]
    pairs = pair_cells(cells, "vanilla", "maml")
    assert [(b.source, t.source) for b, t in pairs] == [("da_ddt", "da_ddt"), ("sk_snk", "sk_snk")]
    rows = convergence_deltas(pairs)
    assert len(rows) == 1 and rows[0]["pairs"] == 2
    assert rows[0]["delta t90 (steps)"] == pytest.approx((10 - 30 + 0) / 2)
    auc_v = loss_curves.normalised_auc([0, 10, 20, 30], [10, 5, 2, 1])
    auc_m = loss_curves.normalised_auc([0, 10, 20, 30], [10, 1.5, 1.2, 1])
    assert rows[0]["delta AUC"] == pytest.approx((auc_m - auc_v) / 2)


@pytest.mark.needs_real_data
def test_span_statistics_reproduce_paper_table_4(data_dir):
    """Appendix D.1: sk_snk train has PER 2,277 (87.6% single-word), LOC 277 (75.1%),
    ORG 153 (56.9%)."""
    from picomaml.data.registry import load_split

    sentences, _ = load_split("sk_snk", "train", data_dir)
    stats = text_stats.span_statistics([s.tags for s in sentences])
    assert [stats[t]["spans"] for t in ("PER", "LOC", "ORG")] == [2277, 277, 153]
    shares = [round(100 * stats[t]["single_share"], 1) for t in ("PER", "LOC", "ORG")]
    assert shares == [87.6, 75.1, 56.9]


def test_pretraining_summary_and_chance_verdict(tmp_path):
    """End-of-run means use the last 20% of logged values; a query loss at ln N is flagged."""
    metrics = [
        {
            "kind": "train",
            "step": s,
            "ar_loss": 10.0 - s,
            "meta_loss": 2.0794,
            "ar_per_step": 1,
            "meta_per_step": 1,
            "support_acc_before": 0.125,
            "support_acc_after": 0.25,
            "query_acc": 0.125,
        }
        for s in range(1, 11)
    ] + [{"kind": "dynamics", "step": 10, "val_perplexity": 900.0}]
    summary = pretraining_summary(metrics, ways=8)
    assert summary["steps"] == 10 and summary["meta share (%)"] == 50.0
    assert summary["AR loss"] == pytest.approx((1.0 + 0.0) / 2)  # steps 9, 10
    assert summary["chance loss ln N"] == pytest.approx(math.log(8))
    assert summary["val perplexity"] == 900.0 and summary["support acc after (%)"] == 25.0
    vanilla = pretraining_summary([{"kind": "train", "step": 1, "ar_loss": 3.0}], ways=None)
    assert vanilla["meta loss"] is None and vanilla["chance loss ln N"] is None

    run = tmp_path / "pretrain"
    run.mkdir()
    (run / "config.yaml").write_text("meta:\n  enabled: true\n  ways: 8\n", encoding="utf-8")
    (run / "metrics.jsonl").write_text(
        "\n".join(json.dumps(m) for m in metrics) + "\n", encoding="utf-8"
    )
    cell = CellRecord(
        "c",
        "cells/c",
        "main",
        "maml",
        "tiny",
        "head",
        "sk_snk",
        0,
        None,
        {"backbone": str(run)},
        {},
    )
    data = StudyData(tmp_path, {}, [cell], [], [])
    a = analysis_pretraining(data, Context(tmp_path))
    assert a.unavailable is None and a.tables[0].rows[0]["variant"] == "maml"
    assert "no better than chance" in a.text[0]
    assert (tmp_path / "figures" / "12_pretraining.png").is_file()
    cell.run = {"backbone": str(tmp_path / "elsewhere")}
    assert analysis_pretraining(data, Context(tmp_path)).unavailable is not None


def test_chance_verdict_names_the_collapse_of_a_short_run():
    """At ln N: a short run with collapsed features is told why; otherwise the generic
    verdict; below ln N by 0.05 or more: learned."""
    row = {"chance loss ln N": math.log(8), "meta loss": 2.075, "steps": 100}
    short = chance_verdict({**row, "feature cosine": 0.9995})
    assert "still collapsed (support cosine 1.000)" in short and "100 steps" in short
    assert "no better than chance" in chance_verdict({**row, "feature cosine": 0.83})
    assert "no better than chance" in chance_verdict({**row, "steps": 900, "feature cosine": 1.0})
    assert "learned" in chance_verdict({**row, "meta loss": 2.0})
