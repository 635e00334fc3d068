"""Dataset registry: codes, roles, split loading and `all`."""

from __future__ import annotations

from pathlib import Path

import pytest

from picomaml.data.registry import (
    CODES,
    DATASETS,
    PUD,
    SOURCES,
    TARGETS,
    get_dataset,
    load_split,
)
from picomaml.errors import PicomamlError
from tests.fixtures import make_fixtures


def test_codes_and_roles() -> None:
    assert len(DATASETS) == 18
    assert TARGETS == ("tl_trg", "tl_ugnayan", "ceb_gja")
    assert len(SOURCES) == 9 and len(PUD) == 6
    assert all(DATASETS[c].splits == ("train", "dev", "test") for c in SOURCES)
    assert all(DATASETS[c].splits == ("test",) for c in (*PUD, *TARGETS))
    assert get_dataset("ceb_gja").language == "Cebuano"


@pytest.mark.needs_real_data
def test_every_file_exists(data_dir: Path) -> None:
    """The real root is complete (the fixture root's completeness is in tests/test_fixtures.py)."""
    for ds in DATASETS.values():
        for split in ds.splits:
            assert ds.path(split, data_dir).is_file(), (ds.code, split)


def test_unknown_code_lists_valid_codes() -> None:
    with pytest.raises(PicomamlError) as err:
        get_dataset("tl_xyz")
    for code in CODES:
        assert code in str(err.value)


def test_unknown_split(fixture_data_root: Path) -> None:
    with pytest.raises(PicomamlError, match="available: test"):
        load_split("tl_trg", "train", fixture_data_root)


def test_load_target_and_all(fixture_data_root: Path) -> None:
    root = fixture_data_root
    sents, report = load_split("tl_trg", "test", root)
    assert len(sents) == report.n_sentences == make_fixtures.N_SENTENCES["test"]
    # `all` concatenates the 9 sources in order and adds up their read reports; the train
    # split holds the fixture's odd cases (make_fixtures.ODD_CASES): en_ewt 2 B-O, 3 B-OTH,
    # 2 I-OTH; hr_set a B-OTH I-OTH span and an orphan I-PER; da_ddt 2 orphan I-LOC.
    all_train, rep = load_split("all", "train", root)
    per_source = [load_split(c, "train", root) for c in SOURCES]
    assert len(all_train) == sum(len(s) for s, _ in per_source) == rep.n_sentences
    assert all_train[0] == per_source[0][0][0] and all_train[-1] == per_source[-1][0][-1]
    assert len(rep.files) == 9
    assert rep.mapped_to_o == {"B-O": 2, "B-OTH": 4, "I-OTH": 3} and rep.n_repaired == 3
    assert rep.n_tokens == sum(r.n_tokens for _, r in per_source)


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(PicomamlError, match="data download"):
        load_split("sk_snk", "train", tmp_path)
