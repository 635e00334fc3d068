"""The ``picomaml_ner`` spaCy component: ``picomaml tag``'s entities, at its character offsets."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from picomaml.cli.main import main
from picomaml.data.registry import TARGETS, load_split
from picomaml.errors import PicomamlError

spacy = pytest.importorskip(
    "spacy", reason="the [spacy] extra is needed (pip install -e '.[spacy]')"
)
from picomaml.ner import spacy_ner  # noqa: E402  (registers the factory, as the entry point does)

ROOT = Path(__file__).resolve().parents[2]


def tag_offsets(run: Path, lines: list[str], monkeypatch) -> list[set[tuple[int, int, str]]]:
    """``picomaml tag --json`` on ``lines``, its entities turned into character offsets by
    finding each word in the line in turn (valid for NFC text without invisible characters)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["tag", str(run), "--json", "--device", "cpu"]) == 0
    monkeypatch.undo()
    records = {r["line"]: r for r in map(json.loads, out.getvalue().splitlines())}
    result = []
    for n, line in enumerate(lines, 1):
        record, cursor, starts, ends = records.get(n), 0, [], []
        for word in record["words"] if record else []:
            start = line.index(word, cursor)
            starts.append(start)
            cursor = start + len(word)
            ends.append(cursor)
        entities = record["entities"] if record else []
        result.append({(starts[e["start"]], ends[e["end"] - 1], e["type"]) for e in entities})
    return result


def spacy_offsets(docs) -> list[set[tuple[int, int, str]]]:
    return [{(e.start_char, e.end_char, e.label_) for e in doc.ents} for doc in docs]


def _nlp(run: Path, **config):
    nlp = spacy.blank("tl")
    nlp.add_pipe("picomaml_ner", config={"model": str(run), **config})
    return nlp


def _target_lines(root: Path) -> list[str]:
    return [s.text for code in TARGETS for s in load_split(code, "test", root)[0]]


def test_entities_equal_tag_on_the_fixture_targets(tiny_ner_run, fixture_data_root, monkeypatch):
    lines = _target_lines(fixture_data_root)
    nlp = _nlp(tiny_ner_run)
    got = spacy_offsets(nlp.pipe(lines, batch_size=5))
    want = tag_offsets(tiny_ner_run, lines, monkeypatch)
    assert sum(map(len, want)) > 10  # the test means something only with entities
    assert got == want
    stats = nlp.get_pipe("picomaml_ner").stats
    assert stats["docs"] == len(lines) and stats["unaligned"] == 0


@pytest.mark.needs_real_data
def test_entities_equal_tag_on_the_three_target_sets(tiny_ner_run, data_dir, monkeypatch):
    """All sentences of tl_trg, tl_ugnayan and ceb_gja (their ``# text`` lines)."""
    lines = _target_lines(data_dir)
    assert len(lines) == 128 + 94 + 188
    nlp = _nlp(tiny_ner_run)
    got = spacy_offsets(nlp.pipe(lines))
    assert got == tag_offsets(tiny_ner_run, lines, monkeypatch)
    stats = nlp.get_pipe("picomaml_ner").stats
    assert stats["split_tokens"] > 0  # spaCy's tokens differ from tag's words there ...
    assert stats["unaligned"] == stats["expanded"] == 0  # ... and nothing was lost


def test_pipe_batches_docs_into_one_model_call(tiny_ner_run, monkeypatch):
    nlp = _nlp(tiny_ner_run)
    loaded = nlp.get_pipe("picomaml_ner").loaded
    calls = []
    predict = loaded.predict
    monkeypatch.setattr(loaded, "predict", lambda s: calls.append(len(s)) or predict(s))
    docs = list(nlp.pipe([f"Si Maria ay taga-Cebu {i}." for i in range(10)], batch_size=4))
    assert calls == [4, 4, 2] and len(docs) == 10


def test_multi_line_docs_and_decomposed_text(tiny_ner_run, monkeypatch):
    text = "Pumunta si Nin\u0303o sa Cebu.\n\nSi Jose\u200bRizal ay U.S. citizen."
    nlp = _nlp(tiny_ner_run)
    doc = nlp(text)
    lines = text.split("\n")
    want = tag_offsets(tiny_ner_run, [normalize_like_tag(line) for line in lines], monkeypatch)
    assert doc.text == text  # spaCy's text is never changed
    offsets = [0, len(lines[0]) + 1, len(lines[0]) + 2]
    from picomaml.ner.offsets import entity_offsets
    from picomaml.ner.tag_text import tag_lines

    expected = set()
    for sentence in tag_lines(nlp.get_pipe("picomaml_ner").loaded, lines).sentences:
        line = lines[sentence.line - 1]
        for entity, span in entity_offsets(line, sentence):
            base = offsets[sentence.line - 1]
            expected.add((base + span[0], base + span[1], entity["type"]))
    assert spacy_offsets([doc])[0] == expected
    assert len(expected) == sum(map(len, want))  # same number of entities as the CLI


def normalize_like_tag(line: str) -> str:
    from picomaml.ner.tag_text import normalize_text

    return normalize_text(line).replace("\u200b", " ")


def _force(nlp, monkeypatch, tags_for):
    """Make the run predict chosen tags (to reach the alignment cases deterministically)."""
    loaded = nlp.get_pipe("picomaml_ner").loaded
    monkeypatch.setattr(loaded, "predict", lambda sents: [tags_for(words) for words in sents])


def test_boundary_inside_a_spacy_token_splits_it_or_is_reported(tiny_ner_run, monkeypatch, caplog):
    text = "Galing siya sa U.S."
    # tag's words: Galing siya sa U.S . ; spaCy keeps "U.S." whole
    tags_for = lambda words: ["B-LOC" if w == "U.S" else "O" for w in words]  # noqa: E731
    split = _nlp(tiny_ner_run)
    _force(split, monkeypatch, tags_for)
    doc = split(text)
    assert [(e.text, e.start_char, e.end_char) for e in doc.ents] == [("U.S", 15, 18)]
    assert (
        doc._.picomaml_unaligned == [] and split.get_pipe("picomaml_ner").stats["split_tokens"] == 1
    )

    expand = _nlp(tiny_ner_run, on_misaligned="expand")
    _force(expand, monkeypatch, tags_for)
    doc = expand(text)
    assert [(e.text, e.start_char, e.end_char) for e in doc.ents] == [("U.S.", 15, 19)]
    assert doc._.picomaml_unaligned[0]["kind"] == "expanded"

    skip = _nlp(tiny_ner_run, on_misaligned="skip")
    _force(skip, monkeypatch, tags_for)
    with caplog.at_level(logging.WARNING, logger="picomaml.spacy"):
        doc = skip(text)
    assert doc.ents == ()
    [record] = doc._.picomaml_unaligned
    assert record["kind"] == "unaligned" and (record["start_char"], record["end_char"]) == (15, 18)
    assert skip.get_pipe("picomaml_ner").stats["unaligned"] == 1
    assert "U.S" in caplog.text  # reported, never silent


def test_to_disk_references_the_run_and_spacy_load_checks_it(tiny_ner_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_ner_run, run)
    nlp = _nlp(run)
    text = "Pumunta si Maria sa Cebu."
    before = spacy_offsets([nlp(text)])
    nlp.to_disk(tmp_path / "pipeline")
    saved = json.loads((tmp_path / "pipeline" / "picomaml_ner" / "picomaml_ner.json").read_text())
    assert saved["run_dir"] == str(run.resolve())  # referenced, not copied
    assert not list((tmp_path / "pipeline").rglob("*.safetensors"))
    loaded = spacy.load(tmp_path / "pipeline")
    assert spacy_offsets([loaded(text)]) == before
    (run / "run.json").write_text((run / "run.json").read_text().replace('"seed": 0', '"seed": 1'))
    with pytest.raises(PicomamlError, match="not the one this pipeline was saved with"):
        spacy.load(tmp_path / "pipeline")


def test_missing_model_is_a_clear_error():
    with pytest.raises(PicomamlError, match='config "model" must name a fine-tuned run dir'):
        spacy.blank("tl").add_pipe("picomaml_ner")
    with pytest.raises(PicomamlError, match="on_misaligned must be one of"):
        spacy.blank("tl").add_pipe("picomaml_ner", config={"model": ".", "on_misaligned": "x"})


def test_entry_point_declares_the_factory():
    """spaCy finds factories through this entry point without an import (it is live once
    the package is (re)installed)."""
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    target = project["project"]["entry-points"]["spacy_factories"]["picomaml_ner"]
    module, _, attribute = target.partition(":")
    assert (
        module == spacy_ner.__name__
        and getattr(spacy_ner, attribute) is spacy_ner.make_picomaml_ner
    )
    assert "picomaml_ner" in spacy.blank("tl").factory_names


#: Run in a fresh interpreter that never imports picomaml: spaCy must find the factory through
#: the entry point alone (spaCy 3 loads every entry-point factory when a Language is built).
_FRESH = """
import json, sys
import spacy
before = [m for m in sys.modules if m.startswith("picomaml")]
nlp = spacy.blank("tl")
nlp.add_pipe("picomaml_ner", config={"model": sys.argv[1]})
doc = nlp(sys.argv[2])
ents = [[e.start_char, e.end_char, e.label_] for e in doc.ents]
print(json.dumps({"before": before, "ents": ents, "pipe": nlp.pipe_names}))
"""


def test_entry_point_finds_the_factory_without_importing_picomaml(tiny_ner_run, fixture_data_root):
    """Needs the package's metadata installed (``pip install -e .``), as after a user's install."""
    from importlib.metadata import entry_points

    if "picomaml_ner" not in {e.name for e in entry_points(group="spacy_factories")}:
        pytest.skip("picomaml's entry points are not installed here (pip install -e .)")
    text = " ".join(_target_lines(fixture_data_root)[:4])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in [str(ROOT / "src"), os.environ.get("PYTHONPATH")] if p
        ),
    }
    done = subprocess.run(
        [sys.executable, "-c", _FRESH, str(tiny_ner_run), text],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    fresh = json.loads(done.stdout.splitlines()[-1])
    assert fresh["before"] == []  # nothing of picomaml was imported before spaCy looked it up
    assert fresh["pipe"] == ["picomaml_ner"]
    want = spacy_offsets([_nlp(tiny_ner_run)(text)])[0]
    assert want  # the comparison means something only with entities
    assert {tuple(e) for e in fresh["ents"]} == want
