"""The committed fixture data root: reproducible from its generator, read like the real one."""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from picomaml.cli.main import main
from picomaml.data.corpus import load_rows
from picomaml.data.labels import extract_spans
from picomaml.data.registry import ALL, DATASETS, dataset_splits, load_split
from picomaml.data.uner import read_iob2
from tests.fixtures import make_fixtures, real_data_root


def test_committed_files_are_what_the_generator_writes(fixture_data_root: Path) -> None:
    expected = {**make_fixtures.uner_files(), **make_fixtures.corpus_files()}
    for rel, data in expected.items():
        got = (fixture_data_root / rel).read_bytes()
        if rel.endswith(".gz"):  # compressed bytes may differ between zlib builds
            got, data = gzip.decompress(got), gzip.decompress(data)
        assert got == data, f"{rel} differs: rerun python tests/fixtures/make_fixtures.py"
    table = pq.read_table(fixture_data_root / make_fixtures.PARQUET)
    assert table.column("input_ids").to_pylist() == make_fixtures.parquet_rows()
    on_disk = {
        p.relative_to(fixture_data_root).as_posix()
        for p in fixture_data_root.rglob("*")
        if p.is_file()
    }
    assert on_disk == set(expected) | {make_fixtures.PARQUET}


def test_fixtures_stay_small(fixture_data_root: Path) -> None:
    total = sum(p.stat().st_size for p in fixture_data_root.rglob("*") if p.is_file())
    assert total < 300_000  # 249 kB today; keep well under 1 MB


def test_every_split_reads_and_matches_its_stats(fixture_data_root: Path) -> None:
    for ds in DATASETS.values():
        for split in ds.splits:
            path = ds.path(split, fixture_data_root)
            want = json.loads(path.with_suffix(".stats").read_text("utf-8"))
            sents, report = read_iob2(path)
            assert report.n_sentences == len(sents) == want["num_sentences"], path.name
            assert report.n_tokens == want["num_tokens"], path.name
            got = Counter(t for s in sents for t, _, _ in extract_spans(s.tags))
            assert dict(sorted(got.items())) == want["label_distribution"], path.name
    for split in dataset_splits(ALL):
        sents, report = load_split(ALL, split, fixture_data_root)
        assert len(report.files) == 9 and len(sents) == 9 * make_fixtures.N_SENTENCES[split]


def _report(root: Path, code: str, split: str):
    return load_split(code, split, root)[1]


def test_odd_cases_are_read_as_documented(fixture_data_root: Path) -> None:
    root = fixture_data_root
    assert _report(root, "en_ewt", "train").mapped_to_o == {"B-O": 2, "B-OTH": 3, "I-OTH": 2}
    for code, split in (("hr_set", "train"), ("sr_set", "test")):
        rep = _report(root, code, split)
        assert rep.mapped_to_o == {"B-OTH": 1, "I-OTH": 1} and rep.n_repaired == 1
    assert _report(root, "da_ddt", "train").n_repaired == 2
    assert _report(root, "da_ddt", "test").n_repaired == 1
    assert _report(root, "pt_bosque", "dev").crlf_files
    assert not _report(root, "pt_bosque", "test").crlf_files
    assert _report(root, "sv_talbanken", "test").bom_files
    sents, _ = load_split("sk_snk", "dev", root)
    assert max(len(s) for s in sents) > 90
    sents, _ = load_split("tl_trg", "test", root)
    assert sents[0].sent_id == "tl_trg-test-0001" and sents[0].text
    lines = DATASETS["tl_trg"].path("test", root).read_text("utf-8").splitlines()
    assert "# a comment line without a key" in lines
    assert {len(line.split("\t")) for line in lines if "\t" in line} == {3, 4, 5}


def test_cli_stats_on_the_fixture_root(fixture_data_root: Path, capsys) -> None:
    assert main(["--data-dir", str(fixture_data_root), "data", "stats", "all", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["split"] for r in rows] == ["train", "dev", "test"]


def test_corpus_and_parquet_shard_load(fixture_data_root: Path, tokenizer, tmp_path: Path) -> None:
    corpus = fixture_data_root / "corpus" / "english-mini"
    rows = load_rows(corpus / "train.jsonl.gz", 128, tokenizer=tokenizer, cache_dir=tmp_path)
    assert rows.n_rows > 500  # enough for a tiny SMLMT pool and a few hundred steps
    valid = load_rows(corpus / "valid.jsonl.gz", 128, tokenizer=tokenizer, cache_dir=tmp_path)
    assert valid.n_rows >= 32
    shard = load_rows(fixture_data_root / make_fixtures.PARQUET, 2048)
    assert shard.rows.shape == (make_fixtures.PARQUET_ROWS, 2049) and shard.dropped_tokens == 0
    assert np.array_equal(shard.rows.reshape(-1), rows.rows.reshape(-1)[: shard.rows.size])


def test_real_root_helper(tmp_path: Path, monkeypatch, fixture_data_root: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PICOMAML_DATA", raising=False)
    root, reason = real_data_root()
    assert root is None and "needs the real data root" in reason and "../shared/data" in reason
    monkeypatch.setenv("PICOMAML_DATA", str(tmp_path / "nope"))
    root, reason = real_data_root()
    assert root is None and "does not exist" in reason
    monkeypatch.setenv("PICOMAML_DATA", os.fspath(fixture_data_root))
    assert real_data_root() == (fixture_data_root, "")


@pytest.mark.needs_real_data
def test_needs_real_data_marker_sees_a_real_root() -> None:
    root, _ = real_data_root()
    assert root is not None and (root / "uner").is_dir()
