"""Pretraining corpus: reading, packing, cache, seeded order, exact resume, ranks, parquet."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from picomaml.data.corpus import (
    HubRowStream,
    RowLoader,
    TokenRows,
    default_cache_dir,
    eval_batches,
    load_document_rows,
    load_rows,
    pack_rows,
    read_documents,
    tokenize_documents,
)
from picomaml.data.tokenizer import EOS_ID
from picomaml.errors import PicomamlError

N_DOCS = 200


@pytest.fixture(scope="module")
def train_file(fixture_data_root: Path) -> Path:
    """The fixture corpus: 468 documents, 71k tokens (tests/fixtures/make_fixtures.py)."""
    return fixture_data_root / "corpus" / "english-mini" / "train.jsonl.gz"


@pytest.fixture(scope="module")
def packed(train_file: Path, tokenizer, tmp_path_factory) -> TokenRows:
    cache = tmp_path_factory.mktemp("cache")
    return load_document_rows(train_file, tokenizer, 128, cache_dir=cache, max_documents=N_DOCS)


def _rows(n: int, width: int = 5) -> TokenRows:
    return TokenRows(np.arange(n * width, dtype=np.int32).reshape(n, width), "synthetic")


def test_read_documents(train_file: Path) -> None:
    docs = list(zip(range(3), read_documents(train_file), strict=False))
    assert len(docs) == 3 and all(isinstance(d, str) and d for _, d in docs)


def test_tokenize_and_pack_by_hand(tokenizer) -> None:
    docs = ["Hello world.", "Si Juan ay nasa Maynila."]
    stream = tokenize_documents(tokenizer, docs)
    want = []
    for d in docs:
        want += tokenizer.encode(d, add_special_tokens=False).ids + [EOS_ID]
    assert stream.tolist() == want
    rows, dropped = pack_rows(stream, 3)
    assert rows.shape == (len(want) // 4, 4) and dropped == len(want) % 4
    assert rows.reshape(-1).tolist() == want[: rows.size]


def test_packing_corpus_and_cache(packed: TokenRows, train_file: Path, tokenizer) -> None:
    assert packed.seq_len == 128 and packed.rows.shape[1] == 129
    flat = np.asarray(packed.rows).reshape(-1)
    eos = int((flat == EOS_ID).sum())
    assert N_DOCS - 2 <= eos <= N_DOCS  # one EOS per document; the tail row may lose some
    first = tokenizer.encode(next(read_documents(train_file)), add_special_tokens=False).ids
    assert flat[: len(first)].tolist() == first[: flat.size]


def test_cache_is_reused(train_file: Path, tokenizer, tmp_path: Path, monkeypatch) -> None:
    a = load_document_rows(train_file, tokenizer, 64, cache_dir=tmp_path, max_documents=20)
    (cached,) = (tmp_path / "tokens").glob("*.npy")

    def boom(*args, **kwargs):
        raise AssertionError("tokenized again despite the cache")

    monkeypatch.setattr("picomaml.data.corpus.tokenize_documents", boom)
    b = load_document_rows(train_file, tokenizer, 32, cache_dir=tmp_path, max_documents=20)
    assert np.array_equal(np.asarray(a.rows).reshape(-1)[:96], np.asarray(b.rows).reshape(-1)[:96])
    assert cached.is_file()


def test_default_cache_dir(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PICOMAML_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("PICOMAML_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "picomaml"


@pytest.mark.parametrize(
    ("lines", "needle", "line"),
    [
        (['{"text": "a"}', "{oops"], "not valid JSON", 2),
        (['{"text": "a"}', "", '{"body": "b"}'], "'text' field", 3),
        (['["text"]'], "'text' field", 1),
        (['{"text": 3}'], "'text' field", 1),
    ],
)
def test_bad_jsonl_names_line(tmp_path: Path, lines: list[str], needle: str, line: int) -> None:
    path = tmp_path / "c.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    with pytest.raises(PicomamlError, match=needle) as err:
        list(read_documents(path))
    assert f"{path}:{line}:" in str(err.value)


def test_bad_files(tmp_path: Path) -> None:
    broken = tmp_path / "b.jsonl.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(PicomamlError, match="cannot read"):
        list(read_documents(broken))
    latin = tmp_path / "l.jsonl"
    latin.write_bytes(b'{"text": "ok"}\n{"text": "S\xe3o"}\n')
    with pytest.raises(PicomamlError, match="not UTF-8"):
        list(read_documents(latin))
    with pytest.raises(PicomamlError, match="not found"):
        list(read_documents(tmp_path / "none.jsonl"))
    (tmp_path / "t.txt").write_text("one document\n\nstill the same", "utf-8")
    assert list(read_documents(tmp_path / "t.txt")) == ["one document\n\nstill the same"]


def test_too_little_data(tokenizer, tmp_path: Path) -> None:
    (tmp_path / "tiny.txt").write_text("hi", "utf-8")
    with pytest.raises(PicomamlError, match="no complete row"):
        load_document_rows(tmp_path / "tiny.txt", tokenizer, 512, cache_dir=tmp_path)


def test_epochs_are_seeded_permutations() -> None:
    rows = _rows(10)
    loader = RowLoader(rows, seed=3)
    seen = loader.next_rows(25)[:, 0] // 5
    assert sorted(seen[:10].tolist()) == list(range(10)) == sorted(seen[10:20].tolist())
    assert seen[:10].tolist() != seen[10:20].tolist()  # a new permutation each epoch
    again = RowLoader(rows, seed=3).next_rows(25)
    assert torch.equal(again[:, 0] // 5, seen)
    other = RowLoader(rows, seed=4).next_rows(10)[:, 0] // 5
    assert other.tolist() != seen[:10].tolist()
    plain = RowLoader(rows, shuffle=False).next_rows(12)[:, 0] // 5
    assert plain.tolist() == [*range(10), 0, 1]
    assert loader.epoch == 2


def test_exact_resume(packed: TokenRows) -> None:
    a = RowLoader(packed, seed=1)
    for _ in range(3):
        a.next_rows(4)
    state = a.state_dict()
    want = [a.next_rows(4) for _ in range(40)]  # runs through several epochs
    b = RowLoader(packed, seed=1)
    b.load_state_dict(json.loads(json.dumps(state)))
    got = [b.next_rows(4) for _ in range(40)]
    assert all(torch.equal(x, y) for x, y in zip(want, got, strict=True))
    assert got[0].dtype == torch.long and got[0].shape == (4, 129)


def test_resume_refuses_other_corpus(packed: TokenRows) -> None:
    state = RowLoader(packed, seed=1).state_dict()
    with pytest.raises(PicomamlError, match="seed"):
        RowLoader(packed, seed=2).load_state_dict(state)
    with pytest.raises(PicomamlError, match="n_rows"):
        RowLoader(_rows(7, 129), seed=1).load_state_dict(state)


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_split_the_global_batch(world_size: int) -> None:
    rows = _rows(11)
    single = RowLoader(rows, seed=5)
    ranks = [RowLoader(rows, seed=5, rank=r, world_size=world_size) for r in range(world_size)]
    for _ in range(9):
        whole = single.next_rows(2 * world_size)
        parts = [loader.next_rows(2) for loader in ranks]
        assert torch.equal(torch.cat(parts), whole)
    # the position is global: a single process resumes where the ranks stopped
    resumed = RowLoader(rows, seed=5)
    resumed.load_state_dict(ranks[0].state_dict())
    assert torch.equal(resumed.next_rows(3), single.next_rows(3))


def test_eval_batches_cover_every_row_once() -> None:
    rows = _rows(11)
    assert torch.cat(list(eval_batches(rows, 4))).tolist() == rows.rows.tolist()
    per_rank = [list(eval_batches(rows, 2, r, 3)) for r in range(3)]
    got = sorted(int(x) for parts in per_rank for b in parts for x in b[:, 0])
    assert got == rows.rows[:, 0].tolist()
    assert torch.equal(per_rank[1][0], torch.from_numpy(rows.rows[2:4]).long())


def _write_shards(folder: Path, n_shards: int, rows_per: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 50280, size=(n_shards * rows_per, width), dtype=np.int64)
    folder.mkdir(parents=True, exist_ok=True)
    for s in range(n_shards):
        part = data[s * rows_per : (s + 1) * rows_per]
        table = pa.table({"input_ids": pa.array(part.tolist(), pa.list_(pa.int32()))})
        pq.write_table(table, folder / f"train-{s:05d}.parquet")
    return data


def test_parquet_shards(tmp_path: Path) -> None:
    data = _write_shards(tmp_path / "dolma", 2, 3, 2049)
    rows = load_rows(tmp_path / "dolma", 2048)
    assert rows.n_rows == 6 and rows.dropped_tokens == 0
    assert np.array_equal(rows.rows, data)
    loader = RowLoader(rows, seed=0)
    batch = loader.next_rows(4)
    assert batch.shape == (4, 2049) and batch.dtype == torch.long
    assert {tuple(r[:3].tolist()) for r in batch} <= {tuple(r[:3]) for r in data.tolist()}
    single = load_rows(tmp_path / "dolma" / "train-00001.parquet", 2048)
    assert np.array_equal(single.rows, data[3:])
    # another seq_len re-cuts the stream in order and counts the tail
    short = load_rows(tmp_path / "dolma", 1000)
    assert short.rows.shape == (12, 1001) and short.dropped_tokens == 6 * 2049 - 12 * 1001
    assert np.array_equal(short.rows.reshape(-1), data.reshape(-1)[: 12 * 1001])


def test_parquet_errors(tmp_path: Path) -> None:
    pq.write_table(pa.table({"ids": [[1, 2, 3]]}), tmp_path / "x.parquet")
    with pytest.raises(PicomamlError, match="no 'input_ids' column"):
        load_rows(tmp_path / "x.parquet", 2)
    pq.write_table(pa.table({"input_ids": [1, 2]}), tmp_path / "y.parquet")
    with pytest.raises(PicomamlError, match="expected a list"):
        load_rows(tmp_path / "y.parquet", 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PicomamlError, match="no \\*.parquet"):
        load_rows(tmp_path / "empty", 2, kind="parquet")


@pytest.mark.skipif(importlib.util.find_spec("datasets") is not None, reason="datasets installed")
def test_hub_without_datasets_is_clear() -> None:
    with pytest.raises(PicomamlError, match="datasets"):
        HubRowStream("pico-lm/pretokenized-dolma", 2048)


def test_cli_corpus(fixture_data_root: Path, tmp_path: Path, capsys) -> None:
    from picomaml.cli.main import main

    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": f"Document {i}."}) + "\n" for i in range(30)))
    args = ["--data-dir", str(fixture_data_root), "data", "corpus", str(path), "--seq-len", "7"]
    assert main([*args, "--cache-dir", str(tmp_path / "c"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    # every "Document i." is 3 tokens + EOS: 120 tokens -> 15 rows of 8, nothing dropped
    assert (info["rows"], info["tokens"], info["dropped_tokens"]) == (15, 120, 0)
    assert info["seq_len"] == 7 and list((tmp_path / "c" / "tokens").glob("*.npy"))


class _FakeStream:
    """Stands in for a streamed ``datasets.IterableDataset``: rows in order, ``skip(n)``."""

    def __init__(self, rows: list[list[int]], start: int = 0) -> None:
        self.rows, self.start = rows, start

    def skip(self, n: int) -> _FakeStream:
        return _FakeStream(self.rows, self.start + n)

    def __iter__(self):
        return ({"input_ids": r} for r in self.rows[self.start :])


def test_hub_stream_ranks_and_resume(monkeypatch) -> None:
    import sys
    import types

    rows = [[i] * 5 for i in range(40)]
    fake = types.ModuleType("datasets")
    fake.load_dataset = lambda name, split, streaming: _FakeStream(rows)
    monkeypatch.setitem(sys.modules, "datasets", fake)
    single = HubRowStream("x/y", 4)
    ranks = [HubRowStream("x/y", 4, rank=r, world_size=2) for r in range(2)]
    for _ in range(3):
        assert torch.equal(torch.cat([s.next_rows(3) for s in ranks]), single.next_rows(6))
    resumed = HubRowStream("x/y", 4)
    resumed.load_state_dict(ranks[1].state_dict())
    assert torch.equal(resumed.next_rows(2), single.next_rows(2))
    assert resumed.next_rows(1)[0, 0] == 20
    with pytest.raises(PicomamlError, match="expected seq_len"):
        HubRowStream("x/y", 8).next_rows(1)
    with pytest.raises(PicomamlError, match="ended"):
        HubRowStream("x/y", 4).next_rows(41)
