"""UNER reader: real files against the published .stats, and malformed input."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from picomaml.data.labels import LABELS, extract_spans
from picomaml.data.uner import read_iob2
from picomaml.errors import PicomamlError

GOOD = (
    "# newdoc id = d1\n"
    "# sent_id = s1\n"
    "# text = Juan went to Manila\n"
    "1\tJuan\tB-PER\t-\t-\n"
    "2\twent\tO\t-\t-\n"
    "3\tto\tO\n"
    "4\tManila\tB-LOC\t-\t-\n"
    "\n"
    "# sent_id = s2\n"
    "1\tSi\tO\n"
    "2\tMaria\tI-PER\n"
    "3\tat\tB-OTH\n"
    "4\tX\tI-OTH\n"
    "5\tY\tB-O\n"
)


def _write(tmp_path: Path, content: str | bytes, name: str = "x.iob2") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


@pytest.mark.needs_real_data
def test_stats_files_match(data_dir: Path) -> None:
    """Sentence, token and span counts equal UNER's own .stats for every file that has one.

    The real files' .stats come from UNER, not from us; the fixture twin is in
    tests/test_fixtures.py (.stats written by the fixture generator).
    """
    checked = 0
    for stats in sorted((data_dir / "uner").glob("*/*.stats")):
        if stats.name == "en_ewt-ud-train.stats":
            continue  # describes the final release; the offline file is the earlier one
        want = json.loads(stats.read_text("utf-8"))
        sents, report = read_iob2(stats.with_suffix(".iob2"))
        assert report.n_sentences == len(sents) == want["num_sentences"], stats.name
        assert report.n_tokens == want["num_tokens"], stats.name
        got = Counter(t for s in sents for t, _, _ in extract_spans(s.tags))
        assert dict(got) == want["label_distribution"], stats.name
        checked += 1
    assert checked >= 20


@pytest.mark.needs_real_data
def test_real_file_remaps_are_counted(data_dir: Path) -> None:
    sents, report = read_iob2(data_dir / "uner/UNER_English-EWT/en_ewt-ud-train.iob2")
    assert len(sents) == 12543
    assert report.mapped_to_o == {"B-O": 540, "B-OTH": 888, "I-OTH": 227}
    assert all(t in LABELS for s in sents for t in s.tags)
    assert sents[0].sent_id and sents[0].text


def test_remap_and_repair(tmp_path: Path) -> None:
    sents, report = read_iob2(_write(tmp_path, GOOD))
    assert [s.sent_id for s in sents] == ["s1", "s2"]
    assert sents[0].text == "Juan went to Manila"
    assert sents[1].text is None
    assert sents[0].tags == ["B-PER", "O", "O", "B-LOC"]
    assert sents[1].tags == ["O", "B-PER", "O", "O", "O"]
    assert report.n_repaired == 1
    assert report.mapped_to_o == {"B-O": 1, "B-OTH": 1, "I-OTH": 1}
    assert report.n_mapped_to_o == 3
    assert (report.n_sentences, report.n_tokens) == (2, 9)


def test_crlf_and_bom_are_tolerated(tmp_path: Path) -> None:
    plain, _ = read_iob2(_write(tmp_path, GOOD, "a.iob2"))
    data = b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode("utf-8")
    sents, report = read_iob2(_write(tmp_path, data, "b.iob2"))
    assert sents == plain
    assert report.bom_files and report.crlf_files


@pytest.mark.parametrize(
    ("content", "line", "needle"),
    [
        ("1\tJuan\tB-PER\n2\tx\n", 2, "columns"),
        ("1\tJuan\n", 1, "columns"),
        ("1\tJuan\tO\t-\t-\textra\n", 1, "columns"),
        ("1\tJuan\tO\none\tx\tO\n", 2, "not an integer"),
        ("1\tJuan\tO\n²\tx\tO\n", 2, "not an integer"),
        ("1\tJuan\tO\n3\tx\tO\n", 2, "out of order"),
        ("1\tJuan\t\n", 1, "missing tag"),
        ("1\tJuan\tPER\n", 1, "not IOB2"),
        ("1\tJuan\tO\n\n# sent_id = 2\n\n", 3, "no token lines"),
        ("1\t \tO\n", 1, "empty token"),
    ],
)
def test_malformed_names_file_and_line(
    tmp_path: Path, content: str, line: int, needle: str
) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(PicomamlError, match=needle) as err:
        read_iob2(path)
    assert f"{path}:{line}:" in str(err.value)


def test_non_utf8_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path, b"1\tJuan\tO\n2\tS\xe3o\tO\n")
    with pytest.raises(PicomamlError, match="not UTF-8") as err:
        read_iob2(path)
    assert f"{path}:2:" in str(err.value)


@pytest.mark.parametrize("content", ["", "\n\n", "\r\n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(PicomamlError, match="no sentences") as err:
        read_iob2(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PicomamlError, match="cannot read"):
        read_iob2(tmp_path / "nope.iob2")
