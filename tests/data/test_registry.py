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


def test_codes_and_roles() -> None:
    assert len(DATASETS) == 18
    assert TARGETS == ("tl_trg", "tl_ugnayan", "ceb_gja")
    assert len(SOURCES) == 9 and len(PUD) == 6
    assert all(DATASETS[c].splits == ("train", "dev", "test") for c in SOURCES)
    assert all(DATASETS[c].splits == ("test",) for c in (*PUD, *TARGETS))
    assert get_dataset("ceb_gja").language == "Cebuano"


def test_every_file_exists(data_dir: Path) -> None:
    for ds in DATASETS.values():
        for split in ds.splits:
            assert ds.path(split, data_dir).is_file(), (ds.code, split)


def test_unknown_code_lists_valid_codes() -> None:
    with pytest.raises(PicomamlError) as err:
        get_dataset("tl_xyz")
    for code in CODES:
        assert code in str(err.value)


def test_unknown_split(data_dir: Path) -> None:
    with pytest.raises(PicomamlError, match="available: test"):
        load_split("tl_trg", "train", data_dir)


def test_load_target_and_all(data_dir: Path) -> None:
    sents, report = load_split("tl_trg", "test", data_dir)
    assert len(sents) == report.n_sentences == 128
    all_dev, rep = load_split("all", "dev", data_dir)
    per_source = [load_split(c, "dev", data_dir)[0] for c in SOURCES]
    assert len(all_dev) == sum(len(p) for p in per_source) == rep.n_sentences
    assert all_dev[0] == per_source[0][0] and all_dev[-1] == per_source[-1][-1]
    assert len(rep.files) == 9 and rep.mapped_to_o["B-OTH"] == 254


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(PicomamlError, match="data download"):
        load_split("sk_snk", "train", tmp_path)
