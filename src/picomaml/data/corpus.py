"""Pretraining tokens: documents packed into fixed rows, and a seeded, resumable row loader.

Sources (all yield rows of ``seq_len + 1`` tokens: inputs are ``row[:-1]``, targets
``row[1:]``):

* **documents** (``.jsonl``, ``.jsonl.gz``: one ``{"text": ...}`` object per line; ``.txt``
  (``.gz``): the whole file is one document; a directory: its such files in name order).
  Each document is tokenized, followed by ``<|endoftext|>``, and the concatenated stream
  is cut into consecutive non-overlapping rows. The tail shorter than a row is dropped
  and counted (:attr:`TokenRows.dropped_tokens`). The token stream is cached on disk as
  ``.npy`` under :func:`default_cache_dir` (``$PICOMAML_CACHE``, else
  ``~/.cache/picomaml``), keyed by the file contents, the tokenizer and the reading
  options, so the second run skips tokenization; any ``seq_len`` reuses the same cache.
* **pre-tokenized parquet** (a file or a directory of ``*.parquet`` shards with an
  ``input_ids`` list column, the layout of ``pico-lm/pretokenized-dolma``): rows of
  exactly ``seq_len + 1`` are used as they are; rows of any other length are
  concatenated in order and re-cut (tail dropped and counted).
* **Hugging Face hub** (``datasets`` streaming, only when installed and online): rows are
  read in the stream's order; :class:`HubRowStream` has the loader's interface.

Order and position (:class:`RowLoader`): the loader walks a global sequence of rows,
epoch after epoch; epoch ``e`` visits all rows in the permutation drawn from
``numpy.random.default_rng([seed, e])`` (or in file order without shuffling). The whole
position is one integer, the number of global rows consumed, so ``state_dict`` restores
it exactly, even with a different number of ranks. With ``world_size`` ranks each call
``next_rows(n)`` consumes a global batch of ``n * world_size`` rows, and rank ``r`` gets
the contiguous slice ``[r * n, (r + 1) * n)`` of it: the ranks' rows concatenated equal
what one process calling ``next_rows(n * world_size)`` gets.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from picomaml.data.tokenizer import EOS_ID
from picomaml.errors import PicomamlError
from picomaml.fileio import atomic_writer

CACHE_ENV = "PICOMAML_CACHE"
CACHE_VERSION = 1
DOC_SUFFIXES = (".jsonl", ".jsonl.gz", ".txt", ".txt.gz")
_ENCODE_CHUNK = 256


def default_cache_dir() -> Path:
    """``$PICOMAML_CACHE``, else ``$XDG_CACHE_HOME/picomaml``, else ``~/.cache/picomaml``.

    Outside the data root on purpose: the data root may be read-only and shared.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "picomaml"


# --- reading documents ---------------------------------------------------------------------


def _is_doc_file(path: Path) -> bool:
    return path.name.endswith(DOC_SUFFIXES)


def document_files(path: str | Path) -> list[Path]:
    """The document files of ``path``: itself, or a directory's files in name order."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and _is_doc_file(p))
        if not files:
            raise PicomamlError(f"{path}: no document files ({', '.join(DOC_SUFFIXES)})")
        return files
    if not path.is_file():
        raise PicomamlError(f"corpus not found: {path}")
    if not _is_doc_file(path):
        raise PicomamlError(f"{path}: expected a file ending in {', '.join(DOC_SUFFIXES)}")
    return [path]


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def read_documents(path: str | Path, text_field: str = "text") -> Iterator[str]:
    """Yield the documents of ``path`` in order; a malformed line names file and line.

    Blank lines in JSONL are skipped; every other line must be a JSON object whose
    ``text_field`` is a string.
    """
    for file in document_files(path):
        jsonl = ".jsonl" in file.name
        lineno = 0
        try:
            with _open_text(file) as fh:
                if not jsonl:
                    yield fh.read()
                    continue
                for lineno, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise PicomamlError(f"{file}:{lineno}: not valid JSON ({exc.msg})") from exc
                    if not isinstance(obj, dict) or not isinstance(obj.get(text_field), str):
                        raise PicomamlError(
                            f"{file}:{lineno}: expected a JSON object with a string "
                            f"{text_field!r} field"
                        )
                    yield obj[text_field]
        except UnicodeDecodeError as exc:
            where = f"{file}:{lineno + 1}" if jsonl else str(file)
            raise PicomamlError(f"{where}: bytes that are not UTF-8") from exc
        except (OSError, EOFError, zlib.error) as exc:
            raise PicomamlError(f"{file}: cannot read ({exc})") from exc


# --- tokenizing and packing ----------------------------------------------------------------


def tokenize_documents(tokenizer, documents: Iterable[str], eos_id: int = EOS_ID) -> np.ndarray:
    """One token stream: each document's ids followed by ``eos_id`` (uint16 when it fits)."""
    parts: list[np.ndarray] = []
    batch: list[str] = []

    def flush() -> None:
        for enc in tokenizer.encode_batch(batch, add_special_tokens=False):
            parts.append(np.asarray(enc.ids, dtype=np.int64))
            parts.append(np.asarray([eos_id], dtype=np.int64))
        batch.clear()

    for doc in documents:
        batch.append(doc)
        if len(batch) == _ENCODE_CHUNK:
            flush()
    if batch:
        flush()
    stream = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if stream.size and stream.max() < 2**16 and stream.min() >= 0:
        return stream.astype(np.uint16)
    return stream.astype(np.int32)


def pack_rows(stream: np.ndarray, seq_len: int) -> tuple[np.ndarray, int]:
    """Cut a token stream into ``[n_rows, seq_len + 1]`` rows; returns (rows, dropped tail)."""
    if seq_len < 1:
        raise PicomamlError(f"seq_len must be >= 1, got {seq_len}")
    width = seq_len + 1
    n_rows = len(stream) // width
    return stream[: n_rows * width].reshape(n_rows, width), int(len(stream) - n_rows * width)


@dataclass
class TokenRows:
    """Fixed-width rows of token ids with random access, and where they came from."""

    rows: np.ndarray
    source: str
    dropped_tokens: int = 0

    def __post_init__(self) -> None:
        if self.rows.ndim != 2 or self.rows.shape[0] == 0:
            raise PicomamlError(
                f"{self.source}: no complete row of {self.rows.shape[-1]} tokens "
                f"(only {self.dropped_tokens} tokens); use a smaller seq_len or more data"
            )

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.rows.shape[0])

    @property
    def seq_len(self) -> int:
        """Model sequence length (rows hold one token more)."""
        return int(self.rows.shape[1]) - 1

    @property
    def n_tokens(self) -> int:
        """Tokens in all rows."""
        return int(self.rows.size)

    def __len__(self) -> int:
        return self.n_rows


def _file_digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode("utf-8") + b"\0")
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()


def tokenizer_fingerprint(tokenizer) -> str:
    """Short hash of the tokenizer's full definition (part of every cache key)."""
    return hashlib.sha256(tokenizer.to_str().encode("utf-8")).hexdigest()[:16]


def load_document_stream(
    path: str | Path,
    tokenizer,
    text_field: str = "text",
    cache_dir: str | Path | None = None,
    max_documents: int | None = None,
    use_cache: bool = True,
) -> np.ndarray:
    """Token stream of a document corpus, from the on-disk cache when it is there."""
    files = document_files(path)
    key = hashlib.sha256(
        json.dumps(
            [
                CACHE_VERSION,
                _file_digest(files),
                tokenizer_fingerprint(tokenizer),
                text_field,
                max_documents,
                EOS_ID,
            ]
        ).encode("utf-8")
    ).hexdigest()[:24]
    cache_file = Path(cache_dir or default_cache_dir()) / "tokens" / f"{key}.npy"
    if use_cache and cache_file.is_file():
        try:
            return np.load(cache_file, mmap_mode="r")
        except (OSError, ValueError):
            cache_file.unlink(missing_ok=True)  # a corrupt cache entry is rebuilt
    docs: Iterable[str] = read_documents(path, text_field)
    if max_documents is not None:
        docs = itertools.islice(docs, max_documents)
    stream = tokenize_documents(tokenizer, docs)
    if use_cache:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            with atomic_writer(cache_file, "wb") as fh:
                np.save(fh, stream)
        except OSError as exc:
            raise PicomamlError(
                f"cannot write the token cache under {cache_file.parent} ({exc}); set "
                f"${CACHE_ENV} or data.cache_dir to a writable folder"
            ) from exc
    return stream


def load_document_rows(
    path: str | Path,
    tokenizer,
    seq_len: int,
    text_field: str = "text",
    cache_dir: str | Path | None = None,
    max_documents: int | None = None,
    use_cache: bool = True,
) -> TokenRows:
    """Documents tokenized (cached), EOS-separated and packed into rows of ``seq_len + 1``."""
    stream = load_document_stream(path, tokenizer, text_field, cache_dir, max_documents, use_cache)
    rows, dropped = pack_rows(stream, seq_len)
    return TokenRows(rows, str(path), dropped)


def parquet_files(path: str | Path) -> list[Path]:
    """A parquet file, or a directory's ``*.parquet`` shards in name order."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise PicomamlError(f"{path}: no *.parquet shards")
        return files
    if not path.is_file():
        raise PicomamlError(f"parquet corpus not found: {path}")
    return [path]


def load_parquet_rows(path: str | Path, seq_len: int, column: str = "input_ids") -> TokenRows:
    """Rows of pre-tokenized parquet shards (read fully into memory, shard by shard)."""
    import pyarrow as pa  # lazy: slow to import; `data`, `report` and JSONL runs never need it
    import pyarrow.parquet as pq  # lazy: as above

    pieces: list[np.ndarray] = []
    for file in parquet_files(path):
        try:
            table = pq.read_table(file, columns=[column])
        except (pa.ArrowInvalid, OSError) as exc:
            msg = str(exc)
            if column in msg or "No match for FieldRef" in msg:
                raise PicomamlError(f"{file}: no {column!r} column") from exc
            raise PicomamlError(f"{file}: cannot read parquet ({exc})") from exc
        col = table.column(column).combine_chunks()
        if not pa.types.is_list(col.type) and not pa.types.is_large_list(col.type):
            raise PicomamlError(f"{file}: column {column!r} is {col.type}, expected a list of ids")
        if col.null_count:
            raise PicomamlError(f"{file}: column {column!r} has {col.null_count} null rows")
        values = col.flatten().to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        pieces.append(values)
    stream = np.concatenate(pieces)
    if stream.size and (stream.min() < 0 or stream.max() >= 2**31 - 1):
        raise PicomamlError(f"{path}: token ids out of range")
    rows, dropped = pack_rows(stream, seq_len)
    return TokenRows(rows, str(path), dropped)


# --- order, position, sharding -------------------------------------------------------------


def _check_rank(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise PicomamlError(f"rank {rank} is not in [0, world_size={world_size})")


class RowLoader:
    """Seeded epoch-wise permutation of rows; ``next_rows`` advances an exact position."""

    def __init__(
        self,
        rows: TokenRows,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        _check_rank(rank, world_size)
        self.rows = rows
        self.seed = int(seed)
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.consumed = 0
        self._perm_epoch = -1
        self._perm: np.ndarray | None = None

    @property
    def epoch(self) -> int:
        """Epoch of the next row to be read."""
        return self.consumed // self.rows.n_rows

    def _order(self, epoch: int) -> np.ndarray:
        if self._perm_epoch != epoch:
            n = self.rows.n_rows
            self._perm = (
                np.random.default_rng([self.seed, epoch]).permutation(n)
                if self.shuffle
                else np.arange(n)
            )
            self._perm_epoch = epoch
        assert self._perm is not None
        return self._perm

    def global_indices(self, start: int, count: int) -> np.ndarray:
        """Row indices at global positions ``[start, start + count)`` (across epochs)."""
        n = self.rows.n_rows
        out = np.empty(count, dtype=np.int64)
        pos = 0
        while pos < count:
            epoch, offset = divmod(start + pos, n)
            take = min(count - pos, n - offset)
            out[pos : pos + take] = self._order(epoch)[offset : offset + take]
            pos += take
        return out

    def next_rows(self, n: int) -> torch.Tensor:
        """This rank's ``n`` rows of the next global batch, as ``LongTensor[n, seq_len + 1]``."""
        if n < 1:
            raise PicomamlError(f"batch size must be >= 1, got {n}")
        idx = self.global_indices(self.consumed + self.rank * n, n)
        self.consumed += n * self.world_size
        return torch.from_numpy(self.rows.rows[idx].astype(np.int64))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly here (independent of rank and world size)."""
        return {
            "consumed": self.consumed,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "n_rows": self.rows.n_rows,
            "seq_len": self.rows.seq_len,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position; a different corpus, seq_len, seed or order is an error."""
        for key in ("seed", "shuffle", "n_rows", "seq_len"):
            mine = self.state_dict()[key]
            if key in state and state[key] != mine:
                raise PicomamlError(
                    f"data loader state: {key} is {state[key]!r} in the checkpoint but "
                    f"{mine!r} now; resuming would read different rows"
                )
        if "consumed" not in state:
            raise PicomamlError("data loader state has no 'consumed' position")
        self.consumed = int(state["consumed"])


def eval_batches(
    rows: TokenRows, batch_size: int, rank: int = 0, world_size: int = 1
) -> Iterator[torch.Tensor]:
    """Every row once, in file order (held-out perplexity).

    Global batches of ``batch_size * world_size`` rows are split contiguously across
    ranks like :meth:`RowLoader.next_rows`; in the last global batch a rank may get
    fewer rows or none (then nothing is yielded for it).
    """
    _check_rank(rank, world_size)
    step = batch_size * world_size
    for start in range(0, rows.n_rows, step):
        lo = min(start + rank * batch_size, rows.n_rows)
        hi = min(lo + batch_size, start + step, rows.n_rows)
        if hi > lo:
            yield torch.from_numpy(rows.rows[lo:hi].astype(np.int64))


class HubRowStream:
    """Rows streamed from a Hugging Face dataset in its own order (``datasets`` streaming).

    The position is the number of global rows consumed; restoring skips that many rows
    of the stream. Each rank reads the whole global batch and keeps its slice, so the
    split matches :class:`RowLoader`. Rows must already have ``seq_len + 1`` tokens.
    """

    def __init__(
        self,
        name: str,
        seq_len: int,
        split: str = "train",
        column: str = "input_ids",
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        _check_rank(rank, world_size)
        try:
            import datasets  # noqa: F401  # optional (hub extra): asked for only when streaming
        except ImportError as exc:
            raise PicomamlError(
                f"streaming {name!r} from the Hugging Face hub needs the 'datasets' package "
                "(pip install 'picomaml[hub]'), or download shards and use data.kind=parquet"
            ) from exc
        self.name, self.split, self.column = name, split, column
        self.seq_len = seq_len
        self.rank, self.world_size = rank, world_size
        self.consumed = 0
        self._it: Iterator[dict[str, Any]] | None = None

    def _iterator(self) -> Iterator[dict[str, Any]]:
        if self._it is None:
            import datasets  # optional (hub extra), checked above

            try:
                ds = datasets.load_dataset(self.name, split=self.split, streaming=True)
            except Exception as exc:  # network, auth, unknown name: all user-fixable
                raise PicomamlError(f"cannot stream {self.name!r} ({exc})") from exc
            self._it = iter(ds.skip(self.consumed) if self.consumed else ds)
        return self._it

    def next_rows(self, n: int) -> torch.Tensor:
        """This rank's ``n`` rows of the next global batch."""
        it = self._iterator()
        mine: list[list[int]] = []
        for k in range(n * self.world_size):
            try:
                row = next(it)[self.column]
            except StopIteration:
                raise PicomamlError(
                    f"{self.name}: stream ended after {self.consumed + k} rows"
                ) from None
            if len(row) != self.seq_len + 1:
                raise PicomamlError(
                    f"{self.name}: row {self.consumed + k} has {len(row)} tokens, "
                    f"expected seq_len + 1 = {self.seq_len + 1}"
                )
            if self.rank * n <= k < (self.rank + 1) * n:
                mine.append(row)
        self.consumed += n * self.world_size
        return torch.tensor(mine, dtype=torch.long)

    def state_dict(self) -> dict[str, Any]:
        """The stream position."""
        return {"consumed": self.consumed, "name": self.name, "split": self.split}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the position (the stream is reopened and skips ahead on next use)."""
        if state.get("name", self.name) != self.name:
            raise PicomamlError(f"data loader state is for {state['name']!r}, not {self.name!r}")
        self.consumed = int(state["consumed"])
        self._it = None


def load_rows(
    path: str | Path,
    seq_len: int,
    kind: str = "auto",
    tokenizer=None,
    text_field: str = "text",
    cache_dir: str | Path | None = None,
    max_documents: int | None = None,
) -> TokenRows:
    """Rows of a local corpus; ``kind`` is ``auto``, ``jsonl``, ``text`` or ``parquet``.

    ``auto`` picks parquet for a ``.parquet`` file or a directory holding shards, and
    documents otherwise. Documents need ``tokenizer`` (the OLMo tokenizer).
    """
    p = Path(path)
    if kind == "auto":
        is_parquet = p.suffix == ".parquet" or (p.is_dir() and any(p.glob("*.parquet")))
        kind = "parquet" if is_parquet else "jsonl"
    if kind == "parquet":
        return load_parquet_rows(p, seq_len)
    if kind in ("jsonl", "text"):
        if tokenizer is None:
            raise PicomamlError(f"{p}: reading documents needs a tokenizer")
        return load_document_rows(p, tokenizer, seq_len, text_field, cache_dir, max_documents)
    raise PicomamlError(f"unknown corpus kind {kind!r}; expected auto, jsonl, text or parquet")
