"""What the pretraining loop reads: packed training rows (local or streamed), the SMLMT token
pool and the episode sampler over it (:func:`build_sampler`, shared with the probe and the
benchmarks), the dynamics probe batch, the held-out rows and the tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import Tensor

from picomaml.data import corpus
from picomaml.data.tokenizer import EOS_ID, load_tokenizer
from picomaml.pretrain.config import DynamicsSection, MetaSection, PretrainConfig
from picomaml.pretrain.smlmt import (
    SMLMTSampler,
    WordSet,
    candidate_words,
    continuation_tokens,
    document_ids,
    word_split,
)


@dataclass
class TrainingData:
    """Training rows, the SMLMT token pool, the held-out rows and the tokenizer."""

    loader: corpus.RowLoader | corpus.HubRowStream
    pool: np.ndarray | None
    train_probe: Tensor
    valid: corpus.TokenRows | None
    tokenizer: Tokenizer = field(repr=False)

    def local_rows(self) -> corpus.TokenRows | None:
        """The training rows when they are local (``None`` when streaming)."""
        return getattr(self.loader, "rows", None)


def to_device(data: np.ndarray | Tensor, device: torch.device | str) -> Tensor:
    """``data`` on ``device``, without making the host wait for the device.

    On CUDA the host copy is pinned first, so the copy is a real asynchronous DMA that
    overlaps the kernels already queued (a ``.to(device)`` from pageable memory blocks
    the host until the device has finished everything before it). The caching host
    allocator keeps the pinned buffer alive until the copy is done. Elsewhere it is a
    plain ``.to(device)`` (no-op on CPU).
    """
    tensor = data if isinstance(data, Tensor) else torch.from_numpy(np.ascontiguousarray(data))
    device = torch.device(device)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def corpus_passes(cfg: PretrainConfig, n_rows: int) -> float:
    """Upper bound on passes over a local corpus of ``n_rows`` rows (every micro-batch AR).

    Why: a preset pointed at a small corpus cycles over it silently; saying how often
    each row repeats lets a user see that before spending GPU hours.
    """
    return cfg.training.max_steps * cfg.training.batch_size / max(1, n_rows)


def load_training_data(
    cfg: PretrainConfig, data_root: Path | None, rank: int, world: int
) -> TrainingData:
    """Read (or stream) the corpus as ``cfg.data`` says; this rank's shard of the rows.

    ``data_root``: the resolved data root that relative corpus paths live under (and that
    may hold a tokenizer override); ``None``: no data root, so corpus paths are taken as
    given and the tokenizer is the shipped copy.
    """
    tokenizer = load_tokenizer(data_root)
    d = cfg.data
    probe_n = cfg.dynamics.eval_batch_size

    def rows_of(path: str | Path, kind: str) -> corpus.TokenRows:
        return corpus.load_rows(path, d.seq_len, kind, tokenizer, d.text_field, d.cache_dir)

    valid_path = d.valid_path(data_root)
    valid_kind = "auto" if d.kind == "hub" else d.kind  # a hub run's valid split is local
    valid = rows_of(valid_path, valid_kind) if valid_path is not None else None
    if d.kind == "hub":
        loader = corpus.HubRowStream(d.corpus, d.seq_len, rank=rank, world_size=world)
        # The stream's first rows serve as the SMLMT pool and the dynamics probe batch.
        pool_rows = -(-(cfg.meta.pool_tokens or 4_000_000) // (d.seq_len + 1))
        n = max(pool_rows, probe_n) if cfg.meta.enabled else probe_n
        head_rows = corpus.HubRowStream(d.corpus, d.seq_len).next_rows(n).numpy()
        probe = torch.from_numpy(head_rows[:probe_n])
        return TrainingData(loader, head_rows, probe, valid, tokenizer)

    train = rows_of(d.corpus_path(data_root), d.kind)
    if d.max_train_tokens is not None:
        keep = max(1, d.max_train_tokens // (d.seq_len + 1))
        train.rows = train.rows[:keep]
    loader = corpus.RowLoader(
        train, seed=cfg.training.seed, shuffle=True, rank=rank, world_size=world
    )
    probe = torch.from_numpy(np.asarray(train.rows[:probe_n], dtype=np.int64))
    return TrainingData(loader, train.rows, probe, valid, tokenizer)


def valid_batches(valid: corpus.TokenRows | None, dyn: DynamicsSection) -> list[Tensor]:
    """Fixed held-out batches (file order) for perplexity: the same at every step."""
    if valid is None:
        return []
    n = min(valid.n_rows, dyn.eval_batches * dyn.eval_batch_size)
    rows = torch.from_numpy(np.asarray(valid.rows[:n], dtype=np.int64))
    return list(rows.split(dyn.eval_batch_size))


def build_sampler(
    meta: MetaSection,
    tokens: np.ndarray,
    decoded_vocab: Sequence[str],
    mask_id: int,
    *,
    words: WordSet = "training",
    separate_documents: bool = False,
) -> SMLMTSampler:
    """SMLMT sampler for ``meta`` over ``tokens`` (packed rows or a flat array).

    Only the first ``meta.pool_tokens`` tokens (whole rows) are indexed, which bounds
    memory and start-up time on a large corpus; ``decoded_vocab`` comes from
    :func:`picomaml.pretrain.smlmt.decode_vocab`. ``words``: which side of the
    ``meta.heldout_share`` split may be a class (pretraining: ``training``; the probe:
    ``held-out``). ``separate_documents``: support and query of a class come from
    different documents (``<|endoftext|>``-separated).
    """
    pool = np.asarray(tokens)
    if meta.pool_tokens is not None:
        if pool.ndim == 2:
            n_rows = max(1, -(-meta.pool_tokens // pool.shape[1]))
            pool = pool[:n_rows]
        else:
            pool = pool[: meta.pool_tokens]
    candidates = candidate_words(
        decoded_vocab, allow_digits=meta.allow_digits, allow_punct=meta.allow_punct
    )
    candidates = word_split(candidates, decoded_vocab, meta.heldout_share, words)
    return SMLMTSampler(
        pool,
        candidates,
        ways=meta.ways,
        shots=meta.shots,
        queries=meta.queries,
        window=meta.window,
        mask_id=mask_id,
        min_count=meta.min_word_count,
        max_frequency=meta.max_word_frequency,
        continuations=continuation_tokens(decoded_vocab) if meta.whole_words else None,
        documents=document_ids(pool, EOS_ID) if separate_documents else None,
    )
