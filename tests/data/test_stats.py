"""Dataset statistics: hand-computed counts, paper Table 4 and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from picomaml.cli.main import main
from picomaml.data.stats import compute_stats, split_stats
from picomaml.data.uner import Sentence


def test_hand_counts() -> None:
    sents = [
        Sentence(["a", "b", "c", "d"], ["B-PER", "I-PER", "O", "B-LOC"], "1"),
        Sentence(["e", "f"], ["B-PER", "B-PER"], "2"),
        Sentence([], [], "3"),
    ]
    st = compute_stats(sents, "x", "test")
    assert (st.sentences, st.tokens) == (3, 6)
    assert (st.types["PER"].spans, st.types["PER"].single_word) == (3, 2)
    assert st.types["LOC"].single_word_share == 1.0
    assert st.types["ORG"].spans == 0 and st.types["ORG"].single_word_share is None


def test_slovak_matches_paper_table4(data_dir: Path) -> None:
    st = split_stats("sk_snk", "train", data_dir)
    got = {t: (s.spans, round(100 * s.single_word_share, 1)) for t, s in st.types.items()}
    assert got == {"PER": (2277, 87.6), "LOC": (277, 75.1), "ORG": (153, 56.9)}
    assert (st.sentences, st.tokens) == (8483, 80628)


def test_cli_json_and_table(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data-dir", str(data_dir), "data", "stats"]
    assert main([*args, "hr_set", "--split", "dev", "--json"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)
    assert rec["split"] == "dev" and rec["sentences"] == 960
    assert rec["mapped_to_o"] == {"B-OTH": 154, "I-OTH": 163} and rec["repaired"] == 1
    assert main([*args, "tl_trg"]) == 0
    out = capsys.readouterr().out
    assert "tl_trg test: 128 sentences, 734 tokens" in out and "100.0%" in out


def test_cli_errors(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(data_dir), "data", "stats", "tl_xx"]) == 2
    assert "valid codes" in capsys.readouterr().err
    assert main(["--data-dir", str(data_dir), "data", "stats", "tl_trg", "--split", "dev"]) == 2
    assert "available: test" in capsys.readouterr().err
