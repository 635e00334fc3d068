"""Ablation statistics against hand computation, and the verdict rule."""

from __future__ import annotations

import numpy as np
import pytest

from picomaml.study import ablation_stats as st


def test_type_counts_f1_and_recall_by_hand():
    gold = [["B-PER", "O", "B-LOC"], ["B-PER", "I-PER"], ["O"]]
    pred = [["B-PER", "O", "O"], ["B-PER", "O"], ["B-PER"]]
    per = st.type_counts(gold, pred, ["PER"])
    # sentence 1: PER hit; 2: gold PER(0,1) vs pred PER(0,0) miss; 3: a false PER
    assert per.tolist() == [[1, 1, 1], [0, 1, 1], [0, 1, 0]]
    assert st.recall(per) == pytest.approx(1 / 2)
    assert st.f1(per) == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    both = st.type_counts(gold, pred, ["LOC", "ORG"])
    assert both.tolist() == [[0, 0, 1], [0, 0, 0], [0, 0, 0]]
    assert st.f1(both) == 0.0


def test_contrast_point_interval_and_identical_systems():
    a = np.array([[1, 1, 1]] * 20 + [[0, 1, 1]] * 20)  # F1 0.5
    b = np.array([[1, 1, 1]] * 30 + [[0, 1, 1]] * 10)  # F1 0.75
    c = st.contrast([b, a], [1, -1], n_resamples=500, seed=0)
    assert c.value == pytest.approx(0.25)
    assert c.lo <= 0.25 <= c.hi and c.lo > 0  # b beats a on every resample
    same = st.contrast([a, a], [1, -1], 200, 0)
    assert (same.value, same.lo, same.hi) == (0.0, 0.0, 0.0)
    assert st.contrast([b, a], [1, -1], 500, 0) == c  # seeded
    assert c.text() == f"+25.0 [{100 * c.lo:+.1f}, {100 * c.hi:+.1f}]"
    with pytest.raises(ValueError, match="different sentence counts"):
        st.contrast([a, a[:3]], [1, -1], 10, 0)


def test_verdict_rule():
    assert st.verdict(st.Contrast(0.05, 0.01, 0.09))[0] == st.SUPPORTED
    assert st.verdict(st.Contrast(-0.05, -0.09, -0.01))[0] == st.NOT_SUPPORTED
    small = st.verdict(st.Contrast(0.001, -0.004, 0.006))
    assert small[0] == st.NOT_SUPPORTED and "inside +-1 pp" in small[1]
    wide = st.verdict(st.Contrast(0.01, -0.05, 0.07))
    assert wide[0] == st.CANNOT_TELL and "includes zero" in wide[1]
    assert st.verdict(st.Contrast(0.5, 0.4, 0.6), "PER F1 is 1%")[0] == st.CANNOT_TELL
    assert st.verdict(None)[0] == st.CANNOT_TELL
    assert st.t_verdict([0.1, 0.12, 0.11, 0.09, 0.1])[0] == st.SUPPORTED
    assert st.t_verdict([0.1])[0] == st.CANNOT_TELL
