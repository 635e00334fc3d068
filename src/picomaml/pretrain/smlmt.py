"""Subset-Masked Language Modelling Tasks (SMLMT; Bansal et al., EMNLP 2020).

An episode picks N vocabulary words (the ways); for each it takes K support and Q
query windows around occurrences of that word in a pool of corpus tokens, replaces
every occurrence of the word inside each window by ``[MASK]``, and labels the word
with its position in a random permutation of 0..N-1. Solving the episode means
recognising which hidden word a context calls for, from a few examples only.

Everything here is pure (no I/O) and driven by an explicit ``numpy.random.Generator``
so every rank of a distributed run builds the same episode from a shared seed.

Guarantees (asserted on every episode): each label 0..N-1 has exactly K support and
Q query examples (no label collapse); a class's K+Q windows come from distinct
corpus positions and do not overlap whenever the word has enough occurrences to
allow it; the chosen word's id never remains inside its own windows. With
``separate_documents`` a class's query windows never come from a document that holds
one of its support windows (so a query cannot be solved by recognising the document).

Two rules keep a held-out measure honest (the probe uses both): :func:`word_split`
assigns every word, by a stable hash of its lower-cased text, to the training classes
or to the held-out share that pretraining never uses as a class; and documents are
found from the ``<|endoftext|>`` tokens that separate them in the packed stream.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from picomaml.errors import PicomamlError

_PUNCT = set(string.punctuation)


def decode_vocab(tokenizer) -> list[str]:
    """Text of every token id on its own (``decode([i])``), for :func:`candidate_words`.

    Byte-level BPE stores a leading space as the marker ``Ġ``; decoding turns it back
    into ``' '`` and turns lone non-ASCII bytes into ``'\ufffd'``, so the alphabetic test
    below sees real characters rather than the byte-to-unicode stand-ins.
    """
    size = tokenizer.get_vocab_size()
    return list(tokenizer.decode_batch([[i] for i in range(size)]))


def candidate_words(
    decoded: Sequence[str], *, allow_digits: bool = False, allow_punct: bool = False
) -> np.ndarray:
    """Ids of word-initial tokens (text ``' ' + word``) whose word is alphabetic.

    Special tokens decode to text without the leading space and are never candidates;
    digits and punctuation inside the word are rejected unless allowed. A word must
    contain at least one letter, so e.g. ``' 1999'`` stays out even with digits allowed.
    """
    ids = []
    for i, text in enumerate(decoded):
        if len(text) < 2 or text[0] != " ":
            continue
        word = text[1:]
        ok = all(
            ch.isalpha() or (allow_digits and ch.isdigit()) or (allow_punct and ch in _PUNCT)
            for ch in word
        )
        if ok and any(ch.isalpha() for ch in word):
            ids.append(i)
    return np.asarray(ids, dtype=np.int64)


WordSet = Literal["training", "held-out", "all"]
WORD_SETS: tuple[str, ...] = ("training", "held-out", "all")
_HASH_BUCKETS = 1_000_000


def is_held_out(word: str, share: float) -> bool:
    """Whether ``word`` belongs to the held-out share of the vocabulary.

    Why a hash: the split must be the same on every machine and for every tokenizer
    version, without a stored list. The word is stripped and lower-cased first, so
    ``' John'`` and ``' john'`` fall on the same side (a probe on one must not be a
    training class under the other spelling).
    """
    key = word.strip().lower().encode("utf-8")
    bucket = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % _HASH_BUCKETS
    return bucket < share * _HASH_BUCKETS


def word_split(ids: np.ndarray, decoded: Sequence[str], share: float, words: WordSet) -> np.ndarray:
    """The ``ids`` whose words are in ``words``: the ``training`` classes, the
    ``held-out`` share (never a pretraining class), or ``all`` of them."""
    if words not in WORD_SETS:
        raise PicomamlError(f"words: expected one of {', '.join(WORD_SETS)}, got {words!r}")
    if not 0.0 <= share < 1.0:
        raise PicomamlError(f"held-out share: expected a fraction in [0, 1), got {share!r}")
    ids = np.asarray(ids, dtype=np.int64)
    if words == "all":
        return ids
    held = np.fromiter((is_held_out(decoded[i], share) for i in ids), dtype=bool, count=len(ids))
    return ids[held] if words == "held-out" else ids[~held]


def document_ids(rows: np.ndarray, eos_id: int) -> np.ndarray:
    """Document number of every position of ``rows`` (flattened in order).

    A document ends with its ``eos_id`` token, which still belongs to it; packed rows are
    consecutive pieces of one stream, so a document may continue into the next row.
    """
    flat = np.asarray(rows).reshape(-1)
    ends = (flat == eos_id).astype(np.int64)
    return np.concatenate([[0], np.cumsum(ends)[:-1]])


def continuation_tokens(decoded: Sequence[str]) -> np.ndarray:
    """Ids of tokens that continue a word (text starting with a letter, no leading space).

    An occurrence of a candidate followed by one of these is only the start of a longer
    word (``' John'`` + ``'son'``), so it is not used as an episode example.
    """
    ids = [i for i, t in enumerate(decoded) if t and t[0] != " " and t[0].isalpha()]
    return np.asarray(ids, dtype=np.int64)


@dataclass(frozen=True)
class Episode:
    """One N-way K-shot SMLMT task; arrays are NumPy so the sampler stays device-free.

    ``*_ids`` are token windows ``[n, W]`` with the class word replaced by the mask id,
    ``*_mask`` marks those positions, ``*_labels`` are the class labels, ``*_places``
    are the windows' ``(row, start)`` in the pool, ``words[c]`` is the token id hidden
    behind label ``c`` and ``seed`` drives the head's dropout masks.
    """

    support_ids: np.ndarray
    support_mask: np.ndarray
    support_labels: np.ndarray
    query_ids: np.ndarray
    query_mask: np.ndarray
    query_labels: np.ndarray
    words: np.ndarray
    seed: int
    support_places: np.ndarray
    query_places: np.ndarray

    @property
    def ways(self) -> int:
        return int(self.words.shape[0])

    @property
    def shots(self) -> int:
        return int(self.support_labels.shape[0]) // self.ways

    @property
    def queries(self) -> int:
        return int(self.query_labels.shape[0]) // self.ways

    @property
    def n_tokens(self) -> int:
        """Tokens the backbone reads for this episode (support + query windows)."""
        return int(self.support_ids.size + self.query_ids.size)


class SMLMTSampler:
    """Index a token pool once, then draw episodes from it.

    ``tokens`` is a 2-D array of packed rows (windows never cross a row boundary, since
    consecutive rows need not be adjacent text) or a flat 1-D array (one long row).
    ``candidates`` are token ids allowed as class words (see :func:`candidate_words`);
    of those, the words whose count in the pool lies in
    ``[min_count, max_frequency * pool_size]`` are eligible. With ``continuations``
    (see :func:`continuation_tokens`) an occurrence followed by a continuation token is
    not a whole word: it is neither counted nor used as a window centre (it is still
    masked when it falls inside a window of that word, so the word never shows).
    """

    def __init__(
        self,
        tokens: np.ndarray,
        candidates: np.ndarray,
        *,
        ways: int,
        shots: int,
        queries: int,
        window: int,
        mask_id: int,
        min_count: int | None = None,
        max_frequency: float = 1.0,
        continuations: np.ndarray | None = None,
        documents: np.ndarray | None = None,
    ) -> None:
        rows = np.asarray(tokens)
        if rows.ndim == 1:
            rows = rows[None, :]
        if rows.ndim != 2 or rows.size == 0:
            raise PicomamlError(
                f"SMLMT token pool: expected a non-empty 1-D or 2-D array, got {rows.shape}"
            )
        if not np.issubdtype(rows.dtype, np.integer):
            raise PicomamlError(f"SMLMT token pool: expected integer token ids, got {rows.dtype}")
        if ways < 2 or shots < 1 or queries < 1:
            raise PicomamlError(
                f"SMLMT: need ways >= 2, shots >= 1, queries >= 1 (got {ways}, {shots}, {queries})"
            )
        if not 1 <= window <= rows.shape[1]:
            raise PicomamlError(
                f"meta.window={window} must be between 1 and the pool row length {rows.shape[1]}"
            )
        self.rows = rows
        self.ways, self.shots, self.queries, self.window = ways, shots, queries, window
        self.mask_id = int(mask_id)
        per_word = shots + queries
        min_count = per_word if min_count is None else max(int(min_count), per_word)

        flat = rows.reshape(-1).astype(np.int64, copy=False)
        if (flat < 0).any():
            raise PicomamlError("SMLMT token pool: negative token ids")
        whole = np.ones(flat.shape[0], dtype=bool)
        if continuations is not None and len(continuations):
            cont = np.zeros(max(int(flat.max()), int(np.max(continuations))) + 1, dtype=bool)
            cont[np.asarray(continuations, dtype=np.int64)] = True
            whole[:-1] = ~cont[flat[1:]]
            whole[rows.shape[1] - 1 :: rows.shape[1]] = True  # next token unknown at row end
        counts = np.bincount(flat[whole], minlength=int(flat.max()) + 1)
        cand = np.unique(np.asarray(candidates, dtype=np.int64))
        cand = cand[(cand >= 0) & (cand < counts.shape[0])]
        cand = cand[cand != self.mask_id]
        c = counts[cand]
        keep = (c >= min_count) & (c <= max_frequency * flat.shape[0])
        words = cand[keep]
        # Occurrence index: positions of every eligible word, grouped by word.
        positions = np.flatnonzero(np.isin(flat, words) & whole)
        positions = positions[np.argsort(flat[positions], kind="stable")]
        # A word also needs shots + queries *distinct* windows: occurrences near a row
        # edge share a clipped window start, so a count alone can promise too many.
        word_of = np.searchsorted(words, flat[positions])
        row, col = np.divmod(positions, rows.shape[1])
        start = np.clip(col - window // 2, 0, rows.shape[1] - window)
        pairs = np.unique(np.stack([word_of, row * rows.shape[1] + start], 1), axis=0)
        distinct = np.bincount(pairs[:, 0], minlength=words.shape[0])
        enough = distinct >= per_word
        self.documents = None
        if documents is not None:
            self.documents = np.asarray(documents, dtype=np.int64).reshape(-1)
            if self.documents.shape[0] != flat.shape[0]:
                raise PicomamlError(
                    f"SMLMT: {self.documents.shape[0]} document ids for {flat.shape[0]} tokens"
                )
            place = row * rows.shape[1] + start
            enough &= self._splittable(word_of, self.documents[positions], place, words.size)
        self.words = words[enough]
        self.counts = c[keep][enough]
        if self.words.shape[0] < ways:
            docs = ", support and query in different documents" if documents is not None else ""
            raise PicomamlError(
                f"SMLMT: only {self.words.shape[0]} candidate words occur between "
                f"{min_count} and {max_frequency:g} x {flat.shape[0]} times (in at least "
                f"{per_word} distinct windows{docs}) in the token pool; an episode needs "
                f"{ways} (use a larger pool, fewer ways or wider bounds)"
            )
        self._positions = positions[enough[word_of]]
        self._offsets = np.concatenate([[0], np.cumsum(self.counts)])

    def _splittable(
        self, word_of: np.ndarray, doc_of: np.ndarray, place: np.ndarray, n_words: int
    ) -> np.ndarray:
        """Per word: can its documents be split into a support side with ``shots`` and a
        query side with ``queries`` distinct windows? (:meth:`_document_split` finds one.)"""
        triples = np.unique(np.stack([word_of, doc_of, place], 1), axis=0)
        ok = np.zeros(n_words, dtype=bool)
        bounds = np.flatnonzero(np.diff(triples[:, 0])) + 1
        for group in np.split(triples, bounds):
            if group.size:
                docs, counts = np.unique(group[:, 1], return_counts=True)
                big = np.argsort(-counts, kind="stable")  # the order of the fallback
                ok[group[0, 0]] = self._split_docs(docs[big], counts[big]) is not None
        return ok

    def _split_docs(self, docs: np.ndarray, counts: np.ndarray) -> np.ndarray | None:
        """Query documents: a prefix of ``docs`` (in the given order) holding ``queries``
        windows whose complement holds ``shots``, tried in both directions; ``None`` if
        this order allows neither. An eligible word's documents, largest first, always
        allow one (that is how eligibility is decided)."""
        total = int(counts.sum())
        cum = np.cumsum(counts)
        for first, second in ((self.queries, self.shots), (self.shots, self.queries)):
            cut = int(np.searchsorted(cum, first)) + 1  # shortest prefix with >= first
            if cut <= len(docs) and total - int(cum[cut - 1]) >= second:
                prefix = docs[:cut]
                return prefix if first == self.queries else docs[cut:]
        return None

    def _document_split(self, occ: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Which of ``occ`` may serve as queries (the rest are support candidates)."""
        width = self.rows.shape[1]
        row, col = np.divmod(occ, width)
        places = row * width + np.clip(col - self.window // 2, 0, width - self.window)
        docs = self.documents[occ]
        pairs = np.unique(np.stack([docs, places], 1), axis=0)
        uniq, counts = np.unique(pairs[:, 0], return_counts=True)
        order = rng.permutation(uniq.shape[0])
        query_docs = self._split_docs(uniq[order], counts[order])
        if query_docs is None:  # the random order failed: largest documents first
            big = np.argsort(-counts, kind="stable")
            query_docs = self._split_docs(uniq[big], counts[big])
        assert query_docs is not None, "eligible words always have a document split"
        return np.isin(docs, query_docs)

    def occurrences(self, word_index: int) -> np.ndarray:
        """Flat pool positions of eligible word number ``word_index`` (sorted)."""
        return self._positions[self._offsets[word_index] : self._offsets[word_index + 1]]

    def _window_start(self, col: int) -> int:
        """Window start column: the occurrence centred, clipped to the row."""
        return int(min(max(col - self.window // 2, 0), self.rows.shape[1] - self.window))

    def _places(self, word_index: int, rng: np.random.Generator) -> list[tuple[int, int]]:
        """K+Q distinct (row, start) windows for a word, non-overlapping where possible;
        the first K are the support windows."""
        occ = self.occurrences(word_index)
        if self.documents is None:
            return self._pick(occ, self.shots + self.queries, [], word_index, rng)
        as_query = self._document_split(occ, rng)
        support = self._pick(occ[~as_query], self.shots, [], word_index, rng)
        return support + self._pick(occ[as_query], self.queries, support, word_index, rng)

    def _pick(
        self,
        occ: np.ndarray,
        need: int,
        taken: list[tuple[int, int]],
        word_index: int,
        rng: np.random.Generator,
    ) -> list[tuple[int, int]]:
        """``need`` distinct windows around ``occ`` not in ``taken``, spread out if possible."""
        width = self.rows.shape[1]
        chosen: list[tuple[int, int]] = []
        rejected: list[tuple[int, int]] = []
        for pos in occ[rng.permutation(occ.shape[0])]:
            row, col = divmod(int(pos), width)
            place = (row, self._window_start(col))
            if place in taken:
                continue
            if all(r != row or abs(s - place[1]) >= self.window for r, s in chosen):
                chosen.append(place)
                if len(chosen) == need:
                    return chosen
            else:
                rejected.append(place)
        for place in rejected:  # overlapping but still distinct windows
            if place not in chosen:
                chosen.append(place)
                if len(chosen) == need:
                    return chosen
        word = int(self.words[word_index])
        raise PicomamlError(
            f"SMLMT: word id {word} has only {len(chosen)} distinct windows of length "
            f"{self.window} in the pool; an episode needs {need} here"
        )

    def sample(self, rng: np.random.Generator) -> Episode:
        """Draw one episode; the same generator state always gives the same episode."""
        n, k, q, w = self.ways, self.shots, self.queries, self.window
        picks = rng.choice(self.words.shape[0], size=n, replace=False)
        labels_of = rng.permutation(n)  # class i (word picks[i]) gets label labels_of[i]
        words = np.empty(n, dtype=np.int64)
        s_ids, s_lab, q_ids, q_lab, s_pl, q_pl = [], [], [], [], [], []
        for i, word_index in enumerate(picks):
            word = int(self.words[word_index])
            words[labels_of[i]] = word
            places = self._places(int(word_index), rng)
            for j, (row, start) in enumerate(places):
                win = self.rows[row, start : start + w].astype(np.int64)
                (s_ids if j < k else q_ids).append(win)
                (s_lab if j < k else q_lab).append(labels_of[i])
                (s_pl if j < k else q_pl).append((row, start))
        support = self._mask(np.stack(s_ids), words, np.asarray(s_lab))
        query = self._mask(np.stack(q_ids), words, np.asarray(q_lab))
        s_order, q_order = rng.permutation(n * k), rng.permutation(n * q)
        seed = int(rng.integers(0, 2**31 - 1))
        episode = Episode(
            support_ids=support[0][s_order],
            support_mask=support[1][s_order],
            support_labels=np.asarray(s_lab, dtype=np.int64)[s_order],
            query_ids=query[0][q_order],
            query_mask=query[1][q_order],
            query_labels=np.asarray(q_lab, dtype=np.int64)[q_order],
            words=words,
            seed=seed,
            support_places=np.asarray(s_pl, dtype=np.int64)[s_order],
            query_places=np.asarray(q_pl, dtype=np.int64)[q_order],
        )
        check_episode(episode, k, q, self.mask_id)
        return episode

    def _mask(
        self, ids: np.ndarray, words: np.ndarray, labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        mask = ids == words[labels][:, None]
        out = ids.copy()
        out[mask] = self.mask_id
        return out, mask


def check_episode(episode: Episode, shots: int, queries: int, mask_id: int | None = None) -> None:
    """Check the episode's invariants; raises ``AssertionError`` (also under ``python -O``).

    Balanced labels (every label 0..N-1 has exactly ``shots`` support and ``queries``
    query examples), at least one masked position per window, the class word never
    left visible in its own windows, and (if given) ``mask_id`` at every masked position.
    """
    n = episode.ways
    for name, labels, per_class in (
        ("support", episode.support_labels, shots),
        ("query", episode.query_labels, queries),
    ):
        count = np.bincount(labels, minlength=n)
        if count.shape[0] != n or not (count == per_class).all():
            raise AssertionError(f"{name} labels per class {count.tolist()}, expected {per_class}")
    for ids, mask, labels in (
        (episode.support_ids, episode.support_mask, episode.support_labels),
        (episode.query_ids, episode.query_mask, episode.query_labels),
    ):
        if not mask.any(axis=1).all():
            raise AssertionError("a window without a masked position")
        if (ids == episode.words[labels][:, None]).any():
            raise AssertionError("class word left unmasked in its window")
        if mask_id is not None and not (ids[mask] == mask_id).all():
            raise AssertionError("masked position without the mask id")


__all__ = [
    "Episode",
    "SMLMTSampler",
    "candidate_words",
    "check_episode",
    "continuation_tokens",
    "decode_vocab",
]
