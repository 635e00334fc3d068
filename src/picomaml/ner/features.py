"""Word-level features for the CRF head (which backbone: :mod:`picomaml.model.backbone`).

A word's feature is the backbone's final (normed) hidden state at the word's *first* subword.
Sentences longer than the subword window are split by :mod:`picomaml.data.align` into
overlapping windows; each word is scored in exactly one window (the one giving it the most
left context), so no word is ever dropped. Windows are right-padded and batched: the decoder
is causal, so padding on the right cannot change the states of real positions.

For the head-only regime the backbone is frozen, so features are computed once under
``no_grad`` and reused every epoch (:class:`FeatureCache`), optionally on disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer
from torch import Tensor

from picomaml.data.align import WordAlignment, align_sentences, make_windows
from picomaml.errors import PicomamlError
from picomaml.fileio import write_with
from picomaml.layout import PICO_WEIGHTS

# --- words -> windows ----------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """One backbone input: subword ``ids`` and, for each word scored here, the position of its
    first subword (``positions``) and its index in the sentence (``words``)."""

    ids: tuple[int, ...]
    positions: tuple[int, ...]
    words: tuple[int, ...]


def encode_sentence(tokenizer: Tokenizer, words: Sequence[str], window: int) -> list[Window]:
    """Subword windows of one sentence; every word is scored in exactly one window.

    An empty sentence has no window (its feature matrix is ``[0, d]``).
    """
    return encode_sentences(tokenizer, [words], window)[0]


def _windows(aligned: WordAlignment, n_words: int, window: int) -> list[Window]:
    out = [
        Window(tuple(w.input_ids), tuple(w.first_positions), tuple(w.word_indices))
        for w in make_windows(aligned, window)
    ]
    scored = sorted(i for w in out for i in w.words)
    if scored != list(range(n_words)):
        raise PicomamlError(
            f"internal: windows of a {n_words}-word sentence score words {scored[:10]}..."
        )
    return out


def encode_sentences(
    tokenizer: Tokenizer, sentences: Sequence[Sequence[str]], window: int
) -> list[list[Window]]:
    """:func:`encode_sentence` for many sentences (one tokenizer call for all)."""
    aligned = align_sentences(tokenizer, [list(words) for words in sentences])
    return [_windows(a, len(words), window) for a, words in zip(aligned, sentences, strict=True)]


# --- features ------------------------------------------------------------------------------


def word_features(
    model: torch.nn.Module,
    encoded: Sequence[Sequence[Window]],
    n_words: Sequence[int],
    batch_size: int = 32,
    pad_id: int = 0,
    progress: Callable[[int], object] | None = None,
) -> list[Tensor]:
    """First-subword hidden states per word: one ``[n_words, d]`` tensor per sentence.

    Windows of all sentences are batched together (longest first, to waste little padding)
    and right-padded. Differentiable when grad is enabled (the full regime), so callers wrap
    it in ``torch.no_grad()`` when they only need values. ``progress`` is called with the
    number of windows of each batch done (a progress bar's ``update``).
    """
    device = next(model.parameters()).device
    d_model = int(model.config.d_model)
    flat = [(s, w) for s, windows in enumerate(encoded) for w in windows]
    order = sorted(range(len(flat)), key=lambda k: -len(flat[k][1].ids))
    pieces: list[list[tuple[Tensor, Tensor]]] = [[] for _ in encoded]
    for start in range(0, len(order), batch_size):
        chunk = [flat[k] for k in order[start : start + batch_size]]
        length = max(len(w.ids) for _, w in chunk)
        ids = torch.full((len(chunk), length), pad_id, dtype=torch.long)
        for row, (_, w) in enumerate(chunk):
            ids[row, : len(w.ids)] = torch.tensor(w.ids, dtype=torch.long)
        hidden = model.hidden_states(ids.to(device))
        for row, (s, w) in enumerate(chunk):
            pos = torch.tensor(w.positions, dtype=torch.long, device=device)
            pieces[s].append((torch.tensor(w.words, dtype=torch.long), hidden[row, pos]))
        if progress is not None:
            progress(len(chunk))
    out = []
    for s, parts in enumerate(pieces):
        if not parts:
            out.append(torch.zeros(n_words[s], d_model, device=device))
            continue
        idx = torch.cat([p[0] for p in parts])
        feats = torch.cat([p[1] for p in parts])
        out.append(feats[torch.argsort(idx).to(device)])
    return out


class FeatureCache:
    """Frozen-backbone features of a fixed list of sentences, kept as one tensor + offsets.

    ``cache[i]`` is a ``[n_words_i, d]`` view; building it costs one backbone pass.
    """

    def __init__(self, flat: Tensor, lengths: Sequence[int]) -> None:
        if flat.dim() != 2 or flat.shape[0] != sum(lengths):
            raise ValueError(f"flat features {tuple(flat.shape)} do not match {sum(lengths)} words")
        self.flat = flat
        self.lengths = [int(n) for n in lengths]
        self.offsets = [0]
        for n in self.lengths:
            self.offsets.append(self.offsets[-1] + n)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> Tensor:
        return self.flat[self.offsets[i] : self.offsets[i + 1]]

    def as_list(self) -> list[Tensor]:
        """All sentences' feature matrices (views, no copy)."""
        return [self[i] for i in range(len(self))]

    @classmethod
    def concat(cls, caches: Sequence[FeatureCache]) -> FeatureCache:
        """The caches' sentences one after the other (a cached part plus a fresh one)."""
        return cls(torch.cat([c.flat for c in caches]), [n for c in caches for n in c.lengths])

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        model: torch.nn.Module,
        encoded: Sequence[Sequence[Window]],
        n_words: Sequence[int],
        batch_size: int = 32,
        path: Path | None = None,
        progress: Callable[[int], object] | None = None,
    ) -> FeatureCache:
        """Compute (or load from ``path`` when it exists) the features; store them on CPU.

        ``progress`` as in :func:`word_features`."""
        if path is not None and path.is_file():
            data = torch.load(path, map_location="cpu", weights_only=True)
            cache = cls(data["flat"], data["lengths"].tolist())
            if cache.lengths != [int(n) for n in n_words]:
                raise PicomamlError(f"feature cache {path} does not match the sentences; delete it")
            return cache
        was_training = model.training
        model.eval()
        feats = word_features(model, encoded, n_words, batch_size, progress=progress)
        model.train(was_training)
        d_model = int(model.config.d_model)
        flat = torch.cat(feats).float().cpu() if feats else torch.zeros(0, d_model)
        cache = cls(flat, n_words)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            payload = {"flat": flat, "lengths": torch.tensor(cache.lengths)}
            write_with(path, lambda tmp: torch.save(payload, tmp))
        return cache


def cache_key(folder: Path, sentences: Sequence[Sequence[str]], window: int) -> str:
    """A name for an on-disk feature cache: backbone file identity + words + window."""
    weights = folder / PICO_WEIGHTS
    stat = weights.stat()
    h = hashlib.sha256()
    h.update(f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{window}".encode())
    for words in sentences:
        h.update("\x1f".join(words).encode("utf-8"))
        h.update(b"\x1e")
    return h.hexdigest()[:24]


def pad_batch(
    features: Sequence[Tensor], tags: Sequence[Sequence[int]] | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Stack per-sentence features into ``[B, T, d]`` with a left-aligned mask and tags ``[B, T]``.

    Tags at padding are 0 (the CRF ignores them); without ``tags`` the tag tensor is all 0.
    """
    if not features:
        raise ValueError("pad_batch: empty batch")
    d_model = features[0].shape[1]
    length = max(1, max(f.shape[0] for f in features))
    device = features[0].device
    out = features[0].new_zeros(len(features), length, d_model)
    mask = torch.zeros(len(features), length, dtype=torch.bool, device=device)
    tag_t = torch.zeros(len(features), length, dtype=torch.long, device=device)
    for b, f in enumerate(features):
        n = f.shape[0]
        out[b, :n] = f
        mask[b, :n] = True
        if tags is not None:
            if len(tags[b]) != n:
                raise ValueError(
                    f"pad_batch: sentence {b} has {n} features but {len(tags[b])} tags"
                )
            tag_t[b, :n] = torch.tensor(list(tags[b]), dtype=torch.long)
    return out, mask, tag_t
