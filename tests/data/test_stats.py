"""Dataset statistics: hand-computed counts, paper Table 4 and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from picomaml.cli.main import main
from picomaml.data.stats import compute_stats, split_stats
from picomaml.data.uner import Sentence
from tests.fixtures import make_fixtures

TL_TRG_STATS = "uner/UNER_Tagalog-TRG/tl_trg-ud-test.stats"


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


@pytest.mark.needs_real_data
def test_slovak_matches_paper_table4(data_dir: Path) -> None:
    st = split_stats("sk_snk", "train", data_dir)
    got = {t: (s.spans, round(100 * s.single_word_share, 1)) for t, s in st.types.items()}
    assert got == {"PER": (2277, 87.6), "LOC": (277, 75.1), "ORG": (153, 56.9)}
    assert (st.sentences, st.tokens) == (8483, 80628)


def test_cli_json_and_table(fixture_data_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On the fixture root, whose counts the generator wrote into UNER-style .stats files."""
    args = ["--data-dir", str(fixture_data_root), "data", "stats"]
    assert main([*args, "hr_set", "--split", "train", "--json"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)
    assert rec["split"] == "train" and rec["sentences"] == make_fixtures.N_SENTENCES["train"]
    # the odd case of hr_set train: a B-OTH I-OTH span, then an orphan I-PER (repaired)
    assert rec["mapped_to_o"] == {"B-OTH": 1, "I-OTH": 1} and rec["repaired"] == 1
    assert main([*args, "tl_trg"]) == 0
    out = capsys.readouterr().out.splitlines()
    want = json.loads((fixture_data_root / TL_TRG_STATS).read_text("utf-8"))
    assert out[0] == f"tl_trg test: {want['num_sentences']} sentences, {want['num_tokens']} tokens"
    rows = {line.split()[0]: line.split()[1:] for line in out[2:5]}
    assert {t: int(r[0]) for t, r in rows.items()} == want["label_distribution"]
    # Tagalog LOC and ORG names in the fixture lexicon are single words.
    assert rows["LOC"][1] == rows["ORG"][1] == "100.0%"


def test_cli_errors(fixture_data_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(fixture_data_root)
    assert main(["--data-dir", root, "data", "stats", "tl_xx"]) == 2
    assert "valid codes" in capsys.readouterr().err
    assert main(["--data-dir", root, "data", "stats", "tl_trg", "--split", "dev"]) == 2
    assert "available: test" in capsys.readouterr().err
