"""``picomaml tag`` on real-world Unicode: NFC, grapheme clusters, invisible characters, widths.

Tagalog and Cebuano text is often typed or pasted in decomposed form (NFD): a letter followed
by a combining mark. The UNER files are NFC, so the tagger normalises by default, and it never
splits a grapheme cluster either way.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from picomaml.cli.main import main as cli_main
from picomaml.ner.tag_text import (
    TaggedSentence,
    display_width,
    normalize_text,
    split_words,
    tag_lines,
)

TILDE, GRAVE, ACUTE, CIRCUMFLEX = "\u0303", "\u0300", "\u0301", "\u0302"
ZWSP, ZWJ, BOM, WJ, SHY = "\u200b", "\u200d", "\ufeff", "\u2060", "\u00ad"
THUMBS_MEDIUM = "\U0001f44d\U0001f3fd"  # thumbs up + medium skin tone
WAVE_DARK = "\U0001f44b\U0001f3ff"  # waving hand + dark skin tone
FLAG_PH, FLAG_JP = "\U0001f1f5\U0001f1ed", "\U0001f1ef\U0001f1f5"  # regional-indicator pairs
TECHNOLOGIST = f"\U0001f469{ZWJ}\U0001f4bb"  # woman + ZWJ + laptop
FAMILY = ZWJ.join(["\U0001f468", "\U0001f469", "\U0001f467", "\U0001f466"])
RAINBOW_FLAG = f"\U0001f3f3\ufe0f{ZWJ}\U0001f308"  # white flag + VS16 + ZWJ + rainbow


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def test_decomposed_tagalog_diacritics_stay_one_word() -> None:
    line = f"Pumunta si Nin{TILDE}o sa Maynila{GRAVE} kahapo{CIRCUMFLEX}n."
    assert split_words(line) == [
        "Pumunta",
        "si",
        f"Nin{TILDE}o",
        "sa",
        f"Maynila{GRAVE}",
        f"kahapo{CIRCUMFLEX}n",
        ".",
    ]
    assert split_words(normalize_text(line)) == [
        "Pumunta",
        "si",
        "Niño",
        "sa",
        "Maynilà",
        "kahapôn",
        ".",
    ]


def test_cebuano_with_decomposed_and_composed_enye() -> None:
    composed = "Ang Señor Santo Niño sa Sugbo, gisaulog sa Enero."
    decomposed = nfd(composed)
    assert decomposed != composed and f"n{TILDE}" in decomposed
    words = ["Ang", "Señor", "Santo", "Niño", "sa", "Sugbo", ",", "gisaulog", "sa", "Enero", "."]
    assert split_words(composed) == words
    assert split_words(normalize_text(decomposed)) == words
    assert [normalize_text(w) for w in split_words(decomposed)] == words  # same cuts unnormalised


def test_emoji_with_modifiers_flags_and_zwj_sequences_are_one_token_each() -> None:
    line = f"Salamat {THUMBS_MEDIUM}{WAVE_DARK} {FLAG_PH}{FLAG_JP} {TECHNOLOGIST} "
    line += f"{FAMILY}{RAINBOW_FLAG}!"
    assert split_words(line) == [
        "Salamat",
        THUMBS_MEDIUM,
        WAVE_DARK,
        FLAG_PH,
        FLAG_JP,
        TECHNOLOGIST,
        FAMILY,
        RAINBOW_FLAG,
        "!",
    ]
    assert split_words(f"Cebu{FLAG_PH}") == ["Cebu", FLAG_PH]  # an emoji never joins a word


def test_cjk_words_and_punctuation() -> None:
    assert split_words("Pumunta si 王小明 sa 北京。") == [
        "Pumunta",
        "si",
        "王小明",
        "sa",
        "北京",
        "。",
    ]
    assert split_words("東京タワー、大阪") == ["東京タワー", "、", "大阪"]


def test_zero_width_characters_are_never_words() -> None:
    for invisible in (ZWSP, ZWJ, BOM, WJ, SHY):
        assert split_words(invisible) == [], ascii(invisible)
        assert split_words(f"si {invisible} Juan") == ["si", "Juan"], ascii(invisible)
    assert split_words(f"{BOM}Salamat") == ["Salamat"]
    assert split_words(f"Mari{SHY}a Ma{WJ}ria") == ["Maria", "Maria"]  # joiners vanish
    assert split_words(f"Maria{ZWSP}Santos") == ["Maria", "Santos"]  # ZWSP is a word boundary
    assert split_words(f"{ZWJ}{THUMBS_MEDIUM}") == [THUMBS_MEDIUM]
    # Inside a cluster an invisible character belongs to it (a ZWJ sequence keeps its joiner).
    assert split_words(TECHNOLOGIST) == [TECHNOLOGIST] and ZWJ in TECHNOLOGIST


def test_punctuation_is_still_split_off() -> None:
    assert split_words(f"(Nin{TILDE}o),  mag-aral! O'Brien... U.S. 3.14") == [
        "(",
        f"Nin{TILDE}o",
        ")",
        ",",
        "mag-aral",
        "!",
        "O'Brien",
        ".",
        ".",
        ".",
        "U.S",
        ".",
        "3.14",
    ]


@pytest.mark.parametrize(
    "text,width",
    [
        ("Maria", 5),
        ("Niño", 4),
        (f"Nin{TILDE}o", 4),  # a combining mark takes no cell
        ("北京", 4),
        ("ＡＢ", 4),  # fullwidth forms
        (THUMBS_MEDIUM, 2),  # one cluster, not 2 + 2
        (FLAG_PH, 2),
        (FAMILY, 2),
        (RAINBOW_FLAG, 2),
        ("\u2764\ufe0f", 2),  # text-default heart + VS16: emoji presentation
        (ACUTE, 0),
        ("", 0),
    ],
)
def test_display_width(text: str, width: int) -> None:
    assert display_width(text) == width


def _tag_column(row: str, tag: str) -> int:
    assert row.endswith("  " + tag)
    return display_width(row[: -len(tag)])


def test_text_output_aligns_the_tag_column_by_display_width() -> None:
    words = ["Pumunta", "si", "王小明", f"Nin{TILDE}o", THUMBS_MEDIUM, FAMILY, "北京", "."]
    tags = ["O", "O", "B-PER", "B-PER", "O", "O", "B-LOC", "O"]
    rows = TaggedSentence(1, words, tags).to_text().splitlines()
    assert len(rows) == len(words) + 1 and rows[-1] == "entities: (none)"
    columns = {_tag_column(row, tag) for row, tag in zip(rows, tags, strict=False)}
    assert columns == {max(display_width(w) for w in words) + 2}
    assert rows[2] == "王小明" + " " + "  B-PER"  # 6 cells, padded to the widest word (7)


class _RecordingRun:
    """Stands in for a loaded run: records the words the model would see, tags them all O."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def predict(self, sentences: list[list[str]]) -> list[list[str]]:
        self.seen.extend(sentences)
        return [["O"] * len(words) for words in sentences]


def test_tag_lines_normalises_unless_asked_not_to() -> None:
    lines = [f"Nin{TILDE}o sa Sugbo", f"{ZWSP}{BOM}", "Salamat"]
    run = _RecordingRun()
    result = tag_lines(run, lines)
    assert run.seen == [["Niño", "sa", "Sugbo"], ["Salamat"]]
    assert result.skipped_lines == [2]
    run = _RecordingRun()
    tag_lines(run, lines, normalize=False)
    assert run.seen == [[f"Nin{TILDE}o", "sa", "Sugbo"], ["Salamat"]]


def _json_words(capsys: pytest.CaptureFixture[str]) -> list[list[str]]:
    return [json.loads(x)["words"] for x in capsys.readouterr().out.splitlines()]


def test_tag_cli_normalises_and_no_normalize_keeps_the_form(
    tiny_ner_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = f"Si Nin{TILDE}o {THUMBS_MEDIUM} {ZWSP} taga-Sugbo {FLAG_PH}."
    assert cli_main(["tag", str(tiny_ner_run), "--json", line]) == 0
    assert _json_words(capsys) == [["Si", "Niño", THUMBS_MEDIUM, "taga-Sugbo", FLAG_PH, "."]]
    assert cli_main(["tag", str(tiny_ner_run), "--json", line, "--no-normalize"]) == 0
    assert _json_words(capsys) == [
        ["Si", f"Nin{TILDE}o", THUMBS_MEDIUM, "taga-Sugbo", FLAG_PH, "."]
    ]


def test_tag_cli_text_columns_align(tiny_ner_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    words = ["Pumunta", "si", "王小明", "sa", "北京", FAMILY, f"Nin{TILDE}o"]
    assert cli_main(["tag", str(tiny_ner_run), " ".join(words), "--no-normalize"]) == 0
    rows = capsys.readouterr().out.splitlines()[: len(words)]
    assert [row.split("  ")[0].rstrip() for row in rows] == words
    columns = {display_width(row[: row.rindex(" ") + 1]) for row in rows}
    assert columns == {7 + 2}  # "Pumunta" is the widest word (7 cells)


def test_tag_cli_invisible_only_input_is_an_error(
    tiny_ner_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["tag", str(tiny_ner_run), f"{ZWSP}{ZWJ}{BOM}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no text to tag" in err


def test_tag_needs_no_data_root(
    tiny_ner_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Tagging reads only the run and the shipped tokenizer, so it works on a bare machine."""
    monkeypatch.delenv("PICOMAML_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # no ../shared/data, no ./data
    assert cli_main(["tag", str(tiny_ner_run), "--json", "Salamat"]) == 0
    assert _json_words(capsys) == [["Salamat"]]
