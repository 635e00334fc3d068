"""The ``picomaml_ner`` spaCy component: a fine-tuned run's entities as ``doc.ents``.

::

    nlp = spacy.blank("tl")
    nlp.add_pipe("picomaml_ner", config={"model": RUN_DIR})
    doc = nlp("Pumunta si Maria sa Cebu.")

spaCy finds the factory through the ``spacy_factories`` entry point of the installed
package (pyproject.toml), so no import is needed. Tagging goes through the same library
calls as ``picomaml tag`` (:func:`picomaml.ner.tag_text.tag_lines`): each line of a doc is one
sentence, normalised and split into words the same way, and ``nlp.pipe`` tags a whole
batch of docs with one call. Entities come back as character offsets in the doc's text
(:mod:`picomaml.ner.offsets`), so they equal ``tag``'s whatever spaCy's tokenizer did.

Tokenisation mismatches: where an entity boundary falls inside a spaCy token (spaCy keeps
``U.S.`` whole, ``tag`` reads ``U.S`` + ``.``), ``on_misaligned="split"`` (default) splits
that token at the boundary so the span has ``tag``'s exact offsets; ``"expand"`` widens the
span to whole tokens (offsets then differ, and the span is reported); ``"skip"`` leaves it
out. Every entity not set with ``tag``'s offsets is reported: a warning on the
``picomaml.spacy`` logger, a record in ``doc._.picomaml_unaligned`` and a count in the
component's ``stats``. Nothing is dropped silently.

Serialisation: ``nlp.to_disk`` stores a *reference* to the run, not a copy (a head-regime
run's backbone lives outside its run dir, and backbones are large): the path (absolute)
and a fingerprint of the run's ``run.json`` and CRF head. ``spacy.load`` reloads the run
from the path in the pipeline's config and refuses a run whose fingerprint changed. Give
an absolute path, or re-point it with
``spacy.load(DIR, config={"components.picomaml_ner.model": RUN_DIR})``.

Only ``spacy`` is imported here at module level (the entry point imports this module every
time spaCy builds a pipeline); torch and the model load with the component.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import minibatch

from picomaml import layout
from picomaml.data.labels import LABELS
from picomaml.errors import PicomamlError
from picomaml.fileio import write_json

FACTORY = "picomaml_ner"
MODES = ("split", "expand", "skip")
REFERENCE_FILE = "picomaml_ner.json"
log = logging.getLogger("picomaml.spacy")

if not Doc.has_extension("picomaml_unaligned"):
    Doc.set_extension("picomaml_unaligned", default=None)


def _fingerprint(run_dir: Path) -> str:
    """SHA-256 over the run's run.json and CRF head: what identifies a trained run."""

    h = hashlib.sha256()
    for name in (layout.RUN_JSON, layout.CRF_HEAD):
        h.update(name.encode() + b"\0" + (run_dir / name).read_bytes())
    return h.hexdigest()


def _lines(text: str) -> list[tuple[int, str]]:
    """``(offset, line)`` for each line as ``picomaml tag`` splits text (``str.splitlines``)."""
    out, offset = [], 0
    for piece in text.splitlines(keepends=True):
        out.append((offset, piece.splitlines()[0]))
        offset += len(piece)
    return out


class PicomamlNER:
    """Sets ``doc.ents`` from a fine-tuned picomaml run (module docstring)."""

    def __init__(
        self,
        nlp: Language,
        name: str,
        model: str,
        device: str = "cpu",
        normalize: bool = True,
        batch_size: int = 64,
        on_misaligned: str = "split",
    ) -> None:
        from picomaml.ner.evaluate import load_run  # lazy: torch loads with the component

        if on_misaligned not in MODES:
            raise PicomamlError(
                f"{name}: on_misaligned must be one of {', '.join(MODES)}, got {on_misaligned!r}"
            )
        self.name = name
        self.run_dir = Path(model).expanduser().resolve()
        self.loaded = load_run(self.run_dir, device=device)
        self.normalize = normalize
        self.batch_size = batch_size
        self.on_misaligned = on_misaligned
        self.stats = {"docs": 0, "entities": 0, "split_tokens": 0, "expanded": 0, "unaligned": 0}

    @property
    def labels(self) -> tuple[str, ...]:
        """Entity types the run can predict (PER, LOC, ORG)."""

        return tuple(sorted({label[2:] for label in LABELS if label != "O"}))

    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc], batch_size=1))

    def pipe(self, stream: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
        """Tag docs ``batch_size`` at a time, each batch with one call to the model."""
        for batch in minibatch(stream, size=batch_size or self.batch_size):
            yield from self._tag_batch(list(batch))

    def _tag_batch(self, docs: list[Doc]) -> list[Doc]:
        from picomaml.ner.offsets import entity_offsets  # lazy: torch loads with the component
        from picomaml.ner.tag_text import tag_lines  # lazy: as above

        where = [
            (d, offset, line) for d, doc in enumerate(docs) for offset, line in _lines(doc.text)
        ]
        result = tag_lines(self.loaded, [line for _, _, line in where], normalize=self.normalize)
        found: list[list[tuple[dict, tuple[int, int] | None]]] = [[] for _ in docs]
        for sentence in result.sentences:
            d, offset, line = where[sentence.line - 1]
            for entity, span in entity_offsets(line, sentence, self.normalize):
                shifted = None if span is None else (offset + span[0], offset + span[1])
                found[d].append((entity, shifted))
        for doc, entities in zip(docs, found, strict=True):
            self._set_entities(doc, entities)
        return docs

    def _report(
        self, doc: Doc, entity: dict, span: tuple[int, int] | None, why: str, kind: str
    ) -> None:
        """Record an entity not set with ``tag``'s offsets (``kind``: unaligned, expanded)."""
        record = {"label": entity["type"], "text": entity["text"], "kind": kind, "reason": why}
        if span is not None:
            record.update(start_char=span[0], end_char=span[1])
        doc._.picomaml_unaligned.append(record)
        self.stats[kind] += 1
        log.warning("%s: entity %s %r %s", self.name, entity["type"], entity["text"], why)

    def _set_entities(self, doc: Doc, entities: list[tuple[dict, tuple[int, int] | None]]) -> None:
        doc._.picomaml_unaligned = []
        self.stats["docs"] += 1
        if self.on_misaligned == "split":
            self._split_at(doc, [b for _, span in entities if span for b in span])
        spans = []
        taken: set[int] = set()
        for entity, span in entities:
            if span is None:
                self._report(doc, entity, None, "its words were not found in the text", "unaligned")
                continue
            got = doc.char_span(span[0], span[1], label=entity["type"])
            if got is None and self.on_misaligned == "expand":
                got = doc.char_span(span[0], span[1], label=entity["type"], alignment_mode="expand")
                if got is not None:
                    self._report(
                        doc,
                        entity,
                        span,
                        f"expanded to spaCy tokens [{got.start_char}:{got.end_char}]",
                        "expanded",
                    )
            if got is None:
                self._report(
                    doc, entity, span, "its boundaries fall inside spaCy tokens", "unaligned"
                )
                continue
            tokens = set(range(got.start, got.end))
            if tokens & taken:
                self._report(doc, entity, span, "it overlaps another entity's tokens", "unaligned")
                continue
            taken |= tokens
            spans.append(got)
        self.stats["entities"] += len(spans)
        doc.ents = spans

    def _split_at(self, doc: Doc, boundaries: list[int]) -> None:
        """Split the spaCy tokens that have an entity boundary strictly inside their text."""
        cuts: dict[int, set[int]] = {}
        for char in boundaries:
            for token in doc:
                if token.idx < char < token.idx + len(token.text):
                    cuts.setdefault(token.i, set()).add(char - token.idx)
        if not cuts:
            return
        with doc.retokenize() as retokenizer:
            for i, points in cuts.items():
                token = doc[i]
                edges = [0, *sorted(points), len(token.text)]
                orths = [token.text[a:b] for a, b in zip(edges, edges[1:], strict=False)]
                retokenizer.split(token, orths, heads=[(token, 0)] * len(orths))
        self.stats["split_tokens"] += len(cuts)

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        """Write the reference to the run (path and fingerprint; module docstring)."""

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        reference = {"run_dir": str(self.run_dir), "fingerprint": _fingerprint(self.run_dir)}
        write_json(path / REFERENCE_FILE, reference)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> PicomamlNER:
        """Check that the run loaded from the config is the run that was saved."""
        file = Path(path) / REFERENCE_FILE
        if not file.is_file():
            raise PicomamlError(f"{file}: missing (not a saved picomaml_ner component)")
        saved = json.loads(file.read_text(encoding="utf-8"))
        if saved.get("fingerprint") != _fingerprint(self.run_dir):
            raise PicomamlError(
                f"{self.name}: the run {self.run_dir} is not the one this pipeline was saved "
                f"with ({saved.get('run_dir')}): its run.json or CRF head changed"
            )
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        """The reference as bytes (``nlp.to_bytes``)."""
        payload: dict[str, Any] = {"run_dir": str(self.run_dir)}
        payload["fingerprint"] = _fingerprint(self.run_dir)
        return json.dumps(payload).encode("utf-8")

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> PicomamlNER:
        """Check the reference from :meth:`to_bytes` against the loaded run."""
        saved = json.loads(data.decode("utf-8"))
        if saved.get("fingerprint") != _fingerprint(self.run_dir):
            raise PicomamlError(f"{self.name}: the run {self.run_dir} changed since it was saved")
        return self


@Language.factory(
    FACTORY,
    default_config={
        "model": None,
        "device": "cpu",
        "normalize": True,
        "batch_size": 64,
        "on_misaligned": "split",
    },
    assigns=["doc.ents", "doc._.picomaml_unaligned"],
)
def make_picomaml_ner(
    nlp: Language,
    name: str,
    model: str | None,
    device: str,
    normalize: bool,
    batch_size: int,
    on_misaligned: str,
) -> PicomamlNER:
    """The ``picomaml_ner`` factory; ``model`` is a fine-tuning RUN_DIR (required)."""
    if not model:
        raise PicomamlError(
            f'{name}: config "model" must name a fine-tuned run dir, e.g. '
            'nlp.add_pipe("picomaml_ner", config={"model": "runs/ft/maml-tiny-head-sk_snk"})'
        )
    return PicomamlNER(nlp, name, model, device, normalize, batch_size, on_misaligned)
