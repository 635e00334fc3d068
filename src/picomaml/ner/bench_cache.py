"""Head-only epoch time with cached features vs recomputing the frozen backbone every batch.

Registered in :data:`picomaml.ner.bench.BENCHES` as ``head_cache``. The setting is fixed so
figures compare across machines: a randomly initialised tiny-tier backbone (seeded), the first
``n_sentences`` of ``sk_snk`` train, batch 32, AdamW on the CRF head. Both variants run the
same head updates on the same batches; only where the features come from differs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from picomaml.data.paths import no_data_root_error
from picomaml.data.tokenizer import EOS_ID, load_tokenizer
from picomaml.model import PicoDecoder, config_for
from picomaml.ner.features import FeatureCache, encode_sentences, pad_batch, word_features
from picomaml.ner.tagger import build_tagger, load_sentences, tag_ids


def _head_epoch(tagger, optimizer, batches, feats_for) -> float:
    """One epoch of head updates; ``feats_for(idx)`` supplies the batch's word features."""
    start = time.perf_counter()
    for idx, tags in batches:
        x, mask, y = pad_batch(feats_for(idx), tags)
        loss = tagger.nll(x, y, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def bench_head_cache(
    data_root: Path,
    n_sentences: int = 256,
    source: str = "sk_snk",
    size: str = "tiny",
    window: int = 128,
    batch_size: int = 32,
    epochs: int = 2,
    seed: int = 0,
) -> dict:
    """Mean head-only epoch time of each variant, plus the one-off cost of building the cache
    (sentences and tokenizer from the resolved ``data_root``)."""
    torch.manual_seed(seed)
    model = PicoDecoder(config_for(size, max_seq_len=window)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    sentences, _ = load_sentences(source, "train", data_root, n_sentences)
    encoded = encode_sentences(load_tokenizer(data_root), [s.tokens for s in sentences], window)
    n_words = [len(s.tokens) for s in sentences]
    tags = tag_ids(sentences)
    order = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(seed)).tolist()
    batches = [
        (idx, [tags[i] for i in idx])
        for idx in (order[k : k + batch_size] for k in range(0, len(order), batch_size))
    ]

    t0 = time.perf_counter()
    cache = FeatureCache.build(model, encoded, n_words, batch_size)
    build_s = time.perf_counter() - t0

    def recompute(idx: list[int]) -> list[torch.Tensor]:
        with torch.no_grad():
            return word_features(
                model, [encoded[i] for i in idx], [n_words[i] for i in idx], batch_size, EOS_ID
            )

    results = {}
    for name, feats_for in (
        ("cached", lambda idx: [cache[i] for i in idx]),
        ("recompute", recompute),
    ):
        torch.manual_seed(seed)
        tagger = build_tagger(int(model.config.d_model), constraints=False)
        optimizer = torch.optim.AdamW(tagger.parameters(), lr=3e-5)
        times = [_head_epoch(tagger, optimizer, batches, feats_for) for _ in range(epochs)]
        results[name] = sum(times) / len(times)
    return {
        "source": source,
        "n_sentences": len(sentences),
        "n_words": sum(n_words),
        "size": size,
        "window": window,
        "batch_size": batch_size,
        "epochs_timed": epochs,
        "torch_threads": torch.get_num_threads(),
        "cache_build_s": build_s,
        "epoch_s_cached": results["cached"],
        "epoch_s_recompute": results["recompute"],
        "speedup": results["recompute"] / results["cached"],
    }


def head_cache_from_args(args: argparse.Namespace) -> dict:
    """``picomaml bench ner`` entry: ``--quick`` uses 64 sentences instead of 256; ``--iters``
    sets the number of timed epochs per variant (default 2). ``args.data_root``: the data root
    the CLI resolved, or None when it found none (then this benchmark stops with the
    missing-data line)."""
    quick = bool(getattr(args, "quick", False))
    root = getattr(args, "data_root", None)
    if root is None:
        raise no_data_root_error()
    return bench_head_cache(
        root,
        n_sentences=64 if quick else 256,
        epochs=max(1, getattr(args, "iters", None) or (1 if quick else 2)),
    )
