"""Head-only epoch time with cached features vs recomputing the frozen backbone every batch.

Run by :data:`picomaml.bench.ner.BENCHES` as ``head_cache``. The setting is fixed so
figures compare across machines: a randomly initialised tiny-tier backbone (seeded), the first
``n_sentences`` of ``sk_snk`` train, batch 32, AdamW on the CRF head. Both variants run the
same head updates on the same batches; only where the features come from differs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from picomaml.data.tokenizer import EOS_ID, load_tokenizer
from picomaml.model import PicoDecoder, config_for
from picomaml.ner.crf import CRFTagger
from picomaml.ner.features import FeatureCache, encode_sentences, pad_batch, word_features
from picomaml.ner.head import build_tagger, load_sentences, tag_ids


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


@dataclass
class HeadCacheSetup:
    """The frozen backbone, the sentences (encoded, with their tag ids) and the batches both
    variants train on, plus the feature cache and what building it cost."""

    model: PicoDecoder
    encoded: list[list[int]]
    n_words: list[int]
    batches: list[tuple[list[int], list[list[int]]]]
    batch_size: int
    cache: FeatureCache
    build_s: float

    def variants(self) -> dict[str, Callable[[list[int]], list[torch.Tensor]]]:
        """``cached`` and ``recompute``: where each variant gets a batch's word features."""

        def recompute(idx: list[int]) -> list[torch.Tensor]:
            with torch.no_grad():
                return word_features(
                    self.model,
                    [self.encoded[i] for i in idx],
                    [self.n_words[i] for i in idx],
                    self.batch_size,
                    EOS_ID,
                )

        return {"cached": lambda idx: [self.cache[i] for i in idx], "recompute": recompute}


def prepare(
    data_root: Path,
    n_sentences: int,
    source: str,
    size: str,
    window: int,
    batch_size: int,
    seed: int,
) -> HeadCacheSetup:
    """Seeded random backbone, the first ``n_sentences`` of ``source`` train in a seeded
    order, and the feature cache (timed)."""
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
    return HeadCacheSetup(model, encoded, n_words, batches, batch_size, cache, build_s)


def train_head(
    setup: HeadCacheSetup,
    feats_for: Callable[[list[int]], list[torch.Tensor]],
    epochs: int,
    seed: int,
) -> tuple[float, CRFTagger]:
    """Mean seconds per head-only epoch over ``epochs`` epochs, and the trained head (the
    same seeded start and updates for every variant)."""
    torch.manual_seed(seed)
    tagger = build_tagger(int(setup.model.config.d_model), constraints=False)
    optimizer = torch.optim.AdamW(tagger.parameters(), lr=3e-5)
    times = [_head_epoch(tagger, optimizer, setup.batches, feats_for) for _ in range(epochs)]
    return sum(times) / len(times), tagger


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
    setup = prepare(data_root, n_sentences, source, size, window, batch_size, seed)
    results = {
        name: train_head(setup, feats_for, epochs, seed)[0]
        for name, feats_for in setup.variants().items()
    }
    return {
        "source": source,
        "n_sentences": len(setup.n_words),
        "n_words": sum(setup.n_words),
        "size": size,
        "window": window,
        "batch_size": batch_size,
        "epochs_timed": epochs,
        "torch_threads": torch.get_num_threads(),
        "cache_build_s": setup.build_s,
        "epoch_s_cached": results["cached"],
        "epoch_s_recompute": results["recompute"],
        "speedup": results["recompute"] / results["cached"],
    }
