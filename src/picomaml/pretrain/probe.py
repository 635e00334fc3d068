"""The few-shot probe: does a backbone adapt quickly to new SMLMT tasks?

This is the direct measure of what meta-pretraining claims to buy: *transfer* to new
tasks, not memory of the training ones. Held-out episodes are drawn from a held-out
corpus file (the valid split, never training rows) with a fixed seed, so every backbone
is scored on exactly the same episodes. By default (version 2) three rules keep it a
transfer measure:

* ``words="held-out"``: the classes are only words of the held-out share
  (``heldout_share``, by :func:`~picomaml.pretrain.smlmt.is_held_out`) that pretraining
  never uses as an SMLMT class;
* ``max_word_frequency`` is the training rule (the CLI reads it from the probed run's
  config), not a wider one;
* ``separate_documents``: a class's query windows come from other documents than its
  support windows, so recognising a document does not solve a query.

``representation="before_mask"`` reads the state just before the masked word, which
never saw ``[MASK]`` (a vanilla backbone never trained that row). Version 1 (every word,
frequency 5e-3, documents shared, ``mask``) is ``--words all --max-word-frequency 5e-3
--documents any`` on the CLI. Two figures are reported per backbone:

* ``prototype``: nearest-prototype accuracy on the backbone's own window features, no
  training at all (query windows are assigned to the closest support class mean);
* ``adapted``: query accuracy after the paper's inner loop (``inner_steps`` SGD steps at
  ``inner_lr``) with a freshly initialised head. The head is built from a fixed seed,
  so every backbone of the same width gets the same head; dropout is off, so the
  figure is deterministic.

Each comes with a 95% interval over episodes (normal approximation) and the chance
level 1/N; the mean pairwise cosine of the support features (1 = collapsed) is recorded
too, so runs without episodes (vanilla, LM-only) get the same collapse measure.
Per-episode accuracies are kept so that two backbones can be compared episode by
episode (the report's probe analysis does).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from picomaml import layout
from picomaml.data.corpus import load_rows
from picomaml.data.tokenizer import EOS_ID, MASK_ID
from picomaml.errors import PicomamlError
from picomaml.fileio import read_json, write_json
from picomaml.model import load_pico
from picomaml.pretrain.config import MetaSection
from picomaml.pretrain.inputs import build_sampler
from picomaml.pretrain.maml import adapt_and_query
from picomaml.pretrain.meta_head import MetaHead, class_means, window_features
from picomaml.pretrain.smlmt import Episode, SMLMTSampler, WordSet, decode_vocab, document_ids
from picomaml.seeding import seed_everything

PROBE_VERSION = 2
DEFAULT_CORPUS = "corpus/english-mini/valid.jsonl.gz"
TRAIN_CORPUS = "corpus/english-mini/train.jsonl.gz"
_TRAINING = MetaSection()


@dataclass(frozen=True)
class ProbeSettings:
    """Everything that defines the probe's episodes and its head (recorded in the JSON)."""

    ways: int = 32
    shots: int = 4
    queries: int = 4
    episodes: int = 200
    window: int = 128
    row_tokens: int = 1024
    seed: int = 0
    representation: str = "mask"
    inner_steps: int = 10
    inner_lr: float = 1e-3
    output_init: str = "prototypes"
    head_layers: int = 4
    head_hidden: int = 128
    head_seed: int = 1234
    min_word_count: int = 8
    max_word_frequency: float = _TRAINING.max_word_frequency
    words: WordSet = "held-out"
    heldout_share: float = _TRAINING.heldout_share
    separate_documents: bool = True
    pool_tokens: int | None = None

    def meta(self) -> MetaSection:
        """The ``meta`` section the inner loop runs with (dropout off: a deterministic probe)."""
        return MetaSection(
            enabled=True,
            learner="proto_maml",  # the inner loop runs (no gradient here: same as query_only)
            heldout_share=self.heldout_share,
            ways=self.ways,
            shots=self.shots,
            queries=self.queries,
            window=self.window,
            inner_steps=self.inner_steps,
            inner_lr=self.inner_lr,
            head_layers=self.head_layers,
            head_hidden=self.head_hidden,
            head_dropout=0.0,
            output_init=self.output_init,  # type: ignore[arg-type]
            representation=self.representation,  # type: ignore[arg-type]
            min_word_count=max(self.min_word_count, self.shots + self.queries),
            max_word_frequency=self.max_word_frequency,
            pool_tokens=self.pool_tokens,
        )


def nearest_prototype_accuracy(
    s_feat: Tensor, s_labels: Tensor, q_feat: Tensor, q_labels: Tensor, ways: int
) -> float:
    """Share of query points whose nearest support class mean (Euclidean) is their class."""
    proto, _ = class_means(s_feat.float(), s_labels, ways)
    pred = torch.cdist(q_feat.float(), proto).argmin(1)
    return float((pred == q_labels).float().mean())


def fresh_head(d_in: int, settings: ProbeSettings) -> MetaHead:
    """The probe's head: the same weights for every backbone of width ``d_in``."""
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(settings.head_seed)
        head = MetaHead.from_config(d_in, settings.meta())
    finally:
        torch.random.set_rng_state(state)
    return head


def score_episode(
    backbone: nn.Module, head: MetaHead, episode: Episode, settings: ProbeSettings
) -> tuple[float, float, float]:
    """``(prototype accuracy, adapted accuracy, support feature cosine)`` of one episode;
    no parameter changes."""
    device = next(backbone.parameters()).device
    meta = settings.meta()

    def t(a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    with torch.no_grad():
        ids = t(np.concatenate([episode.support_ids, episode.query_ids]))
        mask = t(np.concatenate([episode.support_mask, episode.query_mask]))
        feats = window_features(backbone, ids, mask, settings.representation).float()
        n_s = episode.support_ids.shape[0]
        s_feat, q_feat = feats[:n_s], feats[n_s:]
        s_lab, q_lab = t(episode.support_labels), t(episode.query_labels)
        proto = nearest_prototype_accuracy(s_feat, s_lab, q_feat, q_lab, episode.ways)
        _, metrics = adapt_and_query(
            head,
            s_feat,
            s_lab,
            q_feat,
            q_lab,
            meta,
            ways=episode.ways,
            seed=episode.seed,
            train=False,
        )
    return proto, float(metrics["query_acc"]), float(metrics["feature_cosine"])


def interval(values: list[float] | np.ndarray) -> dict[str, Any]:
    """Mean and 95% interval (normal approximation over episodes) of per-episode values."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    half = 1.96 * float(x.std(ddof=1)) / math.sqrt(len(x)) if len(x) > 1 else float("nan")
    return {"mean": mean, "ci95": [mean - half, mean + half], "n": int(len(x))}


class ProbeEpisodes:
    """The fixed list of held-out episodes (built once, scored for every backbone)."""

    def __init__(self, rows: np.ndarray, decoded_vocab: list[str], mask_id: int, s: ProbeSettings):
        self.settings = s
        try:
            sampler: SMLMTSampler = build_sampler(
                s.meta(),
                rows,
                decoded_vocab,
                mask_id,
                words=s.words,
                separate_documents=s.separate_documents,
            )
        except PicomamlError as exc:
            raise PicomamlError(f"probe: {exc}") from exc
        rng = np.random.default_rng([s.seed, 0x9B0BE])
        self.episodes = [sampler.sample(rng) for _ in range(s.episodes)]
        self.n_words = int(sampler.words.shape[0])
        docs = document_ids(sampler.rows, EOS_ID)
        self.shared_document = float(
            np.mean([query_document_overlap(e, docs, sampler.rows.shape[1]) for e in self.episodes])
        )

    @classmethod
    def from_tokenizer(cls, rows: np.ndarray, tokenizer: Any, mask_id: int, s: ProbeSettings):
        """Episodes over ``rows`` with candidate words taken from ``tokenizer``'s vocabulary."""
        return cls(rows, decode_vocab(tokenizer), mask_id, s)


def probe_backbone(
    backbone: nn.Module, episodes: ProbeEpisodes, *, progress: Any = None
) -> dict[str, Any]:
    """Score ``backbone`` on every episode; per-episode accuracies and their intervals."""
    s = episodes.settings
    d_model = backbone.hidden_states(
        torch.zeros(1, 2, dtype=torch.long, device=next(backbone.parameters()).device)
    ).shape[-1]
    head = fresh_head(d_model, s).to(next(backbone.parameters()).device)
    was_training = backbone.training
    backbone.eval()
    proto, adapted, cosine = [], [], []
    try:
        for episode in episodes.episodes:
            p, a, c = score_episode(backbone, head, episode, s)
            proto.append(p)
            adapted.append(a)
            cosine.append(c)
            if progress is not None:
                progress.update(1)
    finally:
        backbone.train(was_training)
    return {
        "prototype": {**interval(proto), "per_episode": proto},
        "adapted": {**interval(adapted), "per_episode": adapted},
        "feature_cosine": float(np.mean(cosine)),
    }


def window_documents(
    places: np.ndarray, mask: np.ndarray, docs: np.ndarray, width: int
) -> np.ndarray:
    """The document of each window: that of its masked position nearest the centre."""
    w = mask.shape[1]
    dist = np.where(mask, np.abs(np.arange(w) - w // 2)[None, :], w + 1)
    pos = places[:, 0] * width + places[:, 1] + dist.argmin(1)
    return docs[pos]


def query_document_overlap(episode: Episode, docs: np.ndarray, width: int) -> float:
    """Share of query windows whose document also holds a support window of their class
    (0 under the document rule; how much a query could be solved by the document)."""
    s_doc = window_documents(episode.support_places, episode.support_mask, docs, width)
    q_doc = window_documents(episode.query_places, episode.query_mask, docs, width)
    shared = [
        q_doc[i] in set(s_doc[episode.support_labels == episode.query_labels[i]])
        for i in range(q_doc.shape[0])
    ]
    return float(np.mean(shared))


def probe_record(
    settings: ProbeSettings, corpus: str, n_words: int, shared_document: float | None = None
) -> dict[str, Any]:
    """The header of a probe JSON file (what the entries in ``checkpoints`` were scored on):
    every setting, the number of eligible words and the measured share of queries that
    share a document with their class's support."""
    return {
        "kind": "probe",
        "version": PROBE_VERSION,
        "settings": asdict(settings),
        "corpus": corpus,
        "eligible_words": n_words,
        "query_shares_document": shared_document,
        "chance": 1.0 / settings.ways,
        "checkpoints": [],
    }


def with_overrides(settings: ProbeSettings, **kw: Any) -> ProbeSettings:
    """``settings`` with the non-``None`` keyword values replaced."""
    return replace(settings, **{k: v for k, v in kw.items() if v is not None})


def default_probe_path(run_dir: Path) -> Path:
    """Where ``picomaml probe`` writes for a pretraining run dir."""
    return run_dir / layout.PROBE


def _merge_existing(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    """An earlier probe file with the same settings keeps its other checkpoints' entries."""
    if not path.is_file():
        return header
    old = read_json(path)
    same = all(old.get(k) == header[k] for k in ("kind", "version", "settings", "corpus"))
    return {**header, "checkpoints": old.get("checkpoints", [])} if same else header


@dataclass(frozen=True)
class ProbeTarget:
    """One checkpoint to probe: its weights' folder, its pretraining step, and the name the
    record keeps (a local folder's path, or a Hub reference pinned to its commit, which
    reads the same on every machine, unlike the cache path)."""

    folder: Path
    step: int | None
    name: str

    @classmethod
    def local(cls, folder: Path) -> ProbeTarget:
        """A local Pico folder; the step comes from a ``step_N`` folder name."""
        return cls(folder, layout.parse_step(folder.name), str(folder))


def run_probe(
    targets: list[ProbeTarget],
    *,
    settings: ProbeSettings,
    corpus: Path,
    corpus_name: str,
    tokenizer: Any,
    variant: str | None = None,
    out: Path | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Probe each checkpoint in ``targets`` on the episodes of ``corpus`` (a held-out file).

    The record is written to ``out`` after every checkpoint (so a long sweep can be
    interrupted); entries of other checkpoints already in ``out`` with the same settings
    are kept, and a checkpoint scored again replaces its entry. Returns the record.
    """
    rows = load_rows(corpus, max(settings.row_tokens, settings.window), "auto", tokenizer)
    episodes = ProbeEpisodes.from_tokenizer(np.asarray(rows.rows), tokenizer, MASK_ID, settings)
    record = probe_record(settings, corpus_name, episodes.n_words, episodes.shared_document)
    if out is not None:
        record = _merge_existing(out, record)
    for target in targets:
        seed_everything(settings.seed)
        backbone = load_pico(target.folder)
        desc = f"probe {layout.step_name(target.step)}" if target.step is not None else "probe"
        with tqdm(total=settings.episodes, desc=desc, unit="ep", leave=False) as bar:
            result = probe_backbone(backbone, episodes, progress=bar)
        entry = {"step": target.step, "backbone": target.name, "variant": variant}
        kept = [e for e in record["checkpoints"] if e.get("backbone") != target.name]
        record["checkpoints"] = sorted(
            [*kept, {**entry, **result}], key=lambda e: (e["step"] is None, e["step"] or 0)
        )
        p, a = result["prototype"], result["adapted"]
        say(
            f"probe {target.name}: prototype {100 * p['mean']:.1f}% "
            f"[{100 * p['ci95'][0]:.1f}, {100 * p['ci95'][1]:.1f}], adapted "
            f"{100 * a['mean']:.1f}% [{100 * a['ci95'][0]:.1f}, {100 * a['ci95'][1]:.1f}] "
            f"(chance {100 * record['chance']:.1f}%, {settings.episodes} episodes)"
        )
        if out is not None:
            write_json(out, record)
    return record


__all__ = [
    "DEFAULT_CORPUS",
    "TRAIN_CORPUS",
    "ProbeEpisodes",
    "ProbeSettings",
    "ProbeTarget",
    "default_probe_path",
    "fresh_head",
    "interval",
    "nearest_prototype_accuracy",
    "probe_backbone",
    "probe_record",
    "query_document_overlap",
    "run_probe",
    "score_episode",
    "with_overrides",
]
