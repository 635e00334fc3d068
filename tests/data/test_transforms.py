"""Particle masking and name substitution: alignment, tags, and the source files untouched."""

from __future__ import annotations

import hashlib
import random

import pytest

from picomaml.data.labels import extract_spans
from picomaml.data.particles import PARTICLES, TARGET_LANGUAGE, target_particles
from picomaml.data.registry import TARGETS, get_dataset, load_split
from picomaml.data.transforms import NamePool, mask_particles, substitute_names
from picomaml.data.uner import Sentence
from picomaml.errors import PicomamlError

TL = target_particles("tl_trg")
CEB = target_particles("ceb_gja")


def sent(pairs: str) -> Sentence:
    """``"Pumunta/O si/O Maria/B-PER"`` -> a Sentence."""
    tokens, tags = zip(*(p.rsplit("/", 1) for p in pairs.split()), strict=True)
    return Sentence(list(tokens), list(tags), "s1", None)


def entity_words(s: Sentence) -> list[tuple[str, tuple[str, ...]]]:
    return [(t, tuple(s.tokens[a:b])) for t, a, b in extract_spans(s.tags)]


def test_particle_table_is_the_one_the_issue_names():
    assert PARTICLES["Tagalog"] == ("si", "ni", "kay", "sina", "nina", "kina")
    assert PARTICLES["Cebuano"] == ("si", "ni", "kang", "sila ni")
    assert set(TARGET_LANGUAGE) == set(TARGETS)
    assert target_particles("sk_snk") == []


def test_drop_removes_particles_before_spans_and_keeps_every_tag_aligned():
    s = sent(
        "Pumunta/O si/O Maria/B-PER sa/O Cebu/B-LOC kasama/O sina/O Juan/B-PER Cruz/I-PER "
        "at/O si/O ./O"
    )
    out, stats = mask_particles(s, TL, "drop")
    assert out.tokens == [
        "Pumunta",
        "Maria",
        "sa",
        "Cebu",
        "kasama",
        "Juan",
        "Cruz",
        "at",
        "si",
        ".",
    ]
    assert out.tags == ["O", "B-PER", "O", "B-LOC", "O", "B-PER", "I-PER", "O", "O", "O"]
    assert len(out.tokens) == len(out.tags)
    assert entity_words(out) == entity_words(s)  # every span keeps its words and type
    assert out.text == " ".join(out.tokens) and out.sent_id == s.sent_id
    assert dict(stats.masked) == {"si": 1, "sina": 1}  # the final "si" precedes no span
    assert dict(stats.by_type) == {"PER": 2}
    assert s.tokens[1] == "si"  # the input is not modified


def test_replace_puts_one_fixed_word_in_place():
    s = sent("Sinabi/O ni/O Jose/B-PER kay/O Ana/B-PER ./O")
    out, stats = mask_particles(s, TL, "replace", "ang")
    assert out.tokens == ["Sinabi", "ang", "Jose", "ang", "Ana", "."]
    assert out.tags == ["O", "O", "B-PER", "O", "B-PER", "O"]
    assert sum(stats.masked.values()) == 2


def test_two_word_particle_matched_whole_and_case_insensitively():
    s = sent("Miadto/O SILA/O ni/O Pedro/B-PER ug/O si/O Maria/B-PER ./O")
    out, stats = mask_particles(s, CEB, "drop")
    assert out.tokens == ["Miadto", "Pedro", "ug", "Maria", "."]
    assert dict(stats.masked) == {"sila ni": 1, "si": 1}
    out, _ = mask_particles(s, CEB, "replace", "ang")
    assert out.tokens == ["Miadto", "ang", "Pedro", "ug", "ang", "Maria", "."]
    assert out.tags == ["O", "O", "B-PER", "O", "O", "B-PER", "O"]


def test_particles_inside_spans_elsewhere_or_before_other_types_stay():
    inside = sent("Ang/O Si/B-PER Maria/I-PER ./O")
    assert mask_particles(inside, TL, "drop")[0].tokens == inside.tokens
    first = sent("si/O Maria/B-PER")
    assert mask_particles(first, TL, "drop")[0].tokens == ["Maria"]
    loc = sent("kay/O Maynila/B-LOC ./O")
    assert mask_particles(loc, TL, "drop", types=["PER"])[0].tokens == loc.tokens
    assert mask_particles(loc, TL, "drop")[0].tokens == ["Maynila", "."]


def test_bad_mode_and_replacement_are_errors_naming_the_setting():
    with pytest.raises(PicomamlError, match="particles mode.*'mask'"):
        mask_particles(sent("si/O Maria/B-PER"), TL, "mask")
    with pytest.raises(PicomamlError, match="particles replacement"):
        mask_particles(sent("si/O Maria/B-PER"), TL, "replace", "two words")


POOL = NamePool("test", ("Amihan", "Bayani"), ("Dimaano", "de la Cruz"))


def test_names_replace_per_spans_with_b_and_i_tags():
    s = sent("Si/O Jose/B-PER Rizal/I-PER ay/O taga/O Calamba/B-LOC at/O si/O Maria/B-PER ./O")
    rng = random.Random(0)
    out, n = substitute_names(s, POOL, rng)
    assert n == 2
    assert len(out.tokens) == len(out.tags)
    spans = extract_spans(out.tags)
    per = [out.tokens[a:b] for t, a, b in spans if t == "PER"]
    assert [p[0] in POOL.given for p in per] == [True, True]
    assert len(per[1]) == 1  # a one-word span gets one given name
    assert per[0][-1] in ("Dimaano", "Cruz")  # a two-word span ends with a surname
    for t, a, b in spans:
        assert out.tags[a] == f"B-{t}" and all(x == f"I-{t}" for x in out.tags[a + 1 : b])
    assert ("LOC", ("Calamba",)) in entity_words(out)  # other spans untouched
    assert [w for w, g in zip(out.tokens, out.tags, strict=True) if g == "O"] == [
        w for w, g in zip(s.tokens, s.tags, strict=True) if g == "O"
    ]
    again, _ = substitute_names(s, POOL, random.Random(0))
    assert again == out  # the same seed gives the same draw


def test_multi_word_pool_entry_gives_a_longer_span_still_aligned():
    pool = NamePool("x", ("Amihan",), ("de la Cruz",))
    out, _ = substitute_names(sent("ni/O Jose/B-PER Rizal/I-PER ./O"), pool, random.Random(1))
    assert out.tokens == ["ni", "Amihan", "de", "la", "Cruz", "."]
    assert out.tags == ["O", "B-PER", "I-PER", "I-PER", "I-PER", "O"]


def test_an_empty_name_pool_is_an_error():
    with pytest.raises(PicomamlError, match="at least one given name and one surname"):
        NamePool("unseen", (), ("Dimaano",))


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_transforms_over_fixture_targets_keep_words_and_leave_files_alone(fixture_data_root):
    files = {c: get_dataset(c).path("test", fixture_data_root) for c in TARGETS}
    before = {c: _digest(p) for c, p in files.items()}
    masked_total = 0
    for code in TARGETS:
        sentences, _ = load_split(code, "test", fixture_data_root)
        rng = random.Random(f"x|{code}")
        for s in sentences:
            for mode in ("drop", "replace"):
                out, stats = mask_particles(s, target_particles(code), mode, "ang")
                assert len(out.tokens) == len(out.tags)
                assert entity_words(out) == entity_words(s)
                removed = sum(len(p.split()) - (mode == "replace") for p in stats.masked.elements())
                assert len(s.tokens) - len(out.tokens) == removed
                masked_total += sum(stats.masked.values())
            named, n = substitute_names(s, POOL, rng)
            assert len(named.tokens) == len(named.tags)
            assert n == sum(1 for t, _, _ in extract_spans(s.tags) if t == "PER")
            assert [t for t, _, _ in extract_spans(named.tags)] == [
                t for t, _, _ in extract_spans(s.tags)
            ]
    assert masked_total > 0  # the fixtures do have "si Maria"
    assert {c: _digest(p) for c, p in files.items()} == before
