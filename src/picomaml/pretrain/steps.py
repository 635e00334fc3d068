"""The two micro-batch losses of hybrid pretraining, shared by the trainer and the bench.

* :func:`ar_loss`: next-token cross-entropy on packed rows.
* :func:`picomaml.pretrain.maml.episode_loss`: the first-order MAML episode.

Plus :func:`build_sampler`, which turns the ``meta`` config section and a token pool
into an :class:`~picomaml.pretrain.smlmt.SMLMTSampler`, so the trainer and the bench
build episodes the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor, nn

from picomaml.data.tokenizer import EOS_ID
from picomaml.pretrain.config import MetaSection
from picomaml.pretrain.smlmt import (
    SMLMTSampler,
    WordSet,
    candidate_words,
    continuation_tokens,
    document_ids,
    word_split,
)


def ar_loss(model: nn.Module, rows: Tensor) -> Tensor:
    """Mean next-token cross-entropy of packed ``rows[B, L+1]``.

    Inputs are ``rows[:, :-1]`` and targets ``rows[:, 1:]`` (so every row of ``L+1``
    tokens yields ``L`` predictions). ``model(ids, targets=...)`` returns the loss
    (:meth:`picomaml.model.PicoDecoder.forward`): it is computed chunk by chunk, so the
    ``[B*L, V]`` logits are never held at once, with the softmax in float32 whatever the
    compute dtype, because a bf16 log-softmax over 50k classes loses precision.
    """
    if rows.dim() != 2 or rows.shape[1] < 2:
        raise ValueError(f"ar_loss: expected rows [B, L+1] with L >= 1, got {tuple(rows.shape)}")
    return model(rows[:, :-1], targets=rows[:, 1:])


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


__all__ = ["ar_loss", "build_sampler"]
