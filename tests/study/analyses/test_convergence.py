"""Analysis 7 on hand-made training logs: t90, normalised AUC and initial slope by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from picomaml.study.analyses.convergence import analysis_convergence
from tests.study.analyses.handmade import cell, context, study


def _logged(variant: str, losses: list[float], **kw):
    log = [{"kind": "train", "step": 10 * i, "loss": x} for i, x in enumerate(losses)]
    return cell(variant, train_log=log, **kw)


def test_convergence_deltas_per_size_and_regime(tmp_path: Path) -> None:
    """vanilla 10, 5, 2, 1 and MAML 10, 1.5, 1.2, 1 at steps 0-30:
    t90 (loss <= 1.9): 30 vs 10; AUC (steps to [0, 1], loss / first, trapezoids):
    (.75 + .35 + .15) / 3 vs (.575 + .135 + .11) / 3; slope over the first two points:
    -0.5 vs -0.85. A second pair (da_ddt) with identical curves adds zero deltas."""
    cells = [
        _logged("vanilla", [10, 5, 2, 1]),
        _logged("maml", [10, 1.5, 1.2, 1]),
        _logged("vanilla", [4, 2, 1, 1], source="da_ddt"),
        _logged("maml", [4, 2, 1, 1], source="da_ddt"),
        _logged("maml", [4, 2, 1, 1], regime="full"),  # no partner
        cell("vanilla", regime="full"),  # no train losses
    ]
    a = analysis_convergence(study(tmp_path, cells), context(tmp_path))
    assert a.tables[0].rows == [
        pytest.approx({"size": "tiny", "regime": "head", "pairs": 2,
                       "delta t90 (steps)": (10 - 30 + 0) / 2,
                       "delta AUC": ((0.82 - 1.25) / 3 + 0) / 2,
                       "delta slope": (-0.85 + 0.5 + 0) / 2}),
    ]  # fmt: skip
    assert len(a.tables[0].files[0]) == 4  # both pairs' train_log.jsonl
    assert (tmp_path / "figures" / "7_convergence.png").is_file()


def test_convergence_needs_train_losses(tmp_path: Path) -> None:
    a = analysis_convergence(study(tmp_path, [cell("vanilla"), cell("maml")]), context(tmp_path))
    assert "train_log.jsonl train losses" in a.unavailable
