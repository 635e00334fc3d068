"""The paper's numbers (``study/paper_numbers.yaml``): schema, sources, and quotes."""

from __future__ import annotations

import copy

import pytest
import yaml

from picomaml.errors import PicomamlError
from picomaml.study.paper_numbers import (
    ANALYSES,
    find,
    for_analysis,
    load_paper_numbers,
    numbers_in,
    parse_paper_numbers,
)
from tests.fixtures import real_data_root

PAPER = "meta-pretraining-zero-shot-ner.md"


@pytest.fixture(scope="module")
def numbers():
    return load_paper_numbers()


def _by_id(numbers):
    return {n.id: n for n in numbers}


def test_every_entry_has_a_source_a_quote_and_a_value_or_plot_only(numbers):
    assert len(numbers) > 100
    for n in numbers:
        assert n.source and n.quote and n.quantity, n.id
        assert n.value is not None or (n.plot_only and n.source.startswith("Figure")), n.id
        assert n.analysis in ANALYSES
    assert {n.analysis for n in numbers} == set(ANALYSES)


def test_headline_numbers_including_both_sides_of_the_contradictions(numbers):
    by_id = _by_id(numbers)
    assert by_id["scale.relative_gain.tiny"].value == 38
    assert by_id["scale.relative_gain.large"].value == 6
    assert by_id["regime.head_gain_pp.abstract"].value == (2, 6)
    assert by_id["regime.full_gain_pp.abstract"].value == (1, 3)
    assert by_id["regime.head_gain_pp.section3"].value == (1, 2)
    assert by_id["regime.full_gain_pp.section3"].value == (0.5, 1.3)
    assert "contradicts" in by_id["regime.head_gain_pp.abstract"].note
    assert by_id["sweep.target_gain_from_initial.tl"].value == 0.15
    assert by_id["sweep.target_gain_from_initial.ceb"].value == 0.12
    assert by_id["sweep.source_eval_f1_plateau"].value == 0.14
    assert by_id["types.per_f1"].value == (0.6, 0.7)
    assert by_id["sources.relative_gain.sk_snk"].value == 18
    assert by_id["sources.relative_gain.hr_set"].value == 13
    assert by_id["sources.gain_pp.zh_gsdsimp"].value == -2
    spans = {n.where["tag"]: n.value for n in find(numbers, "spans") if ".count." in n.id}
    assert spans == {"PER": 2277, "LOC": 277, "ORG": 153}
    table5 = {n.id: n.value for n in for_analysis(numbers, "particles") if n.source == "Table 5"}
    assert table5["particles.recall.tagalog"] == 0.113
    assert table5["particles.oov.cebuano"] == 0.534


def test_table_2_is_complete(numbers):
    rows = [n for n in for_analysis(numbers, "convergence") if n.source == "Table 2"]
    cells = {(n.id.split(".")[1], n.where["size"], n.where["regime"]) for n in rows}
    assert len(rows) == len(cells) == 4 * 2 * 3
    t90 = {(n.where["size"], n.where["regime"]): n.value for n in rows if ".t90." in n.id}
    assert t90[("large", "full")] == t90[("tiny", "full")] == -111.1
    assert t90[("medium", "head")] == 55.6


def test_display_and_selectors(numbers):
    by_id = _by_id(numbers)
    assert by_id["particles.preceded_share.tagalog"].display() == "~11 %"
    assert by_id["regime.head_gain_pp.abstract"].display() == "2–6 pp"
    assert by_id["regime.head_gain_pp.large"].display() == "≤2.5 pp"
    assert by_id["scale.zero_shot_f1"].display() == "plot only"
    assert by_id["convergence.slope.tiny.head"].display() == "5.0e-05"
    assert [n.id for n in find(numbers, "convergence", size="tiny", regime="full")] == [
        "convergence.t90.tiny.full",
        "convergence.auc.tiny.full",
        "convergence.slope.tiny.full",
        "convergence.t90_cut_percent",  # where: size [tiny, large]
        "convergence.t90_cut_steps",
    ]


def test_quotes_are_verbatim_in_the_paper(numbers):
    root, reason = real_data_root()
    if root is None:
        pytest.skip(reason)
    path = root.parent / "paper" / PAPER
    if not path.is_file():
        pytest.skip(f"the paper is not at {path}")
    text = " ".join(path.read_text(encoding="utf-8").split())
    missing = [n.id for n in numbers if n.quote not in text]
    assert missing == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PER 2 277 87.6 %", [2277, 87.6]),
        ("Vocabulary Size 50,304", [50304]),
        ("2.5 k warm-up (by around step 1k)", [2500, 1000]),
        (r"AdamW ( $3 \times 10^{-5}$ ) and $\alpha = 10^{-3}$", [3e-5, 1e-3]),
        ("head -55.6 0.003 -0.0e-05", [55.6, 0.003, 0.0]),
        ("for another four thousand meta-updates; Eight of nine; the lone outlier", [4000, 8, 9]),
        ("by 2–6 pp and (0.10-0.15)", [2, 6, 0.10, 0.15]),
    ],
)
def test_numbers_in(text, expected):
    assert numbers_in(text) == pytest.approx(expected, rel=1e-9)


GOOD = {
    "id": "scale.x",
    "analysis": "scale",
    "quantity": "q",
    "unit": "pp",
    "value": 2,
    "source": "Section 3",
    "quote": "lifts F1 by 2 pp",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": None}, "missing source"),
        ({"quote": ""}, "missing quote"),
        ({"value": 3}, "value 3 is not written in quote"),
        ({"value": [2, 1]}, "must be [low, high]"),
        ({"value": "about two"}, "value must be a number, [low, high] or 'plot only'"),
        ({"value": "plot only"}, "a 'plot only' value needs a Figure"),
        ({"analysis": "vibes"}, "analysis must be one of"),
        ({"unit": "furlongs"}, "unit must be one of"),
        ({"relation": "≈"}, "relation must be one of"),
        ({"id": "noDots"}, "id must be dotted"),
        ({"colour": "red"}, "unknown key(s) colour"),
        ({"value": 7, "value_in_quote": False}, "value_in_quote: false needs a note"),
    ],
)
def test_schema_errors_name_the_entry_and_the_key(change, message):
    entry = {**copy.deepcopy(GOOD), **change}
    with pytest.raises(PicomamlError) as err:
        parse_paper_numbers({"schema": 1, "numbers": [GOOD, entry]}, "n.yaml")
    text = str(err.value)
    assert text.startswith("n.yaml: numbers[1]") and message in text


def test_duplicate_ids_and_bad_documents(tmp_path):
    with pytest.raises(PicomamlError, match="duplicate id scale.x"):
        parse_paper_numbers({"schema": 1, "numbers": [GOOD, GOOD]}, "n.yaml")
    with pytest.raises(PicomamlError, match="schema must be 1"):
        parse_paper_numbers({"schema": 2, "numbers": [GOOD]}, "n.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("numbers: [", encoding="utf-8")
    with pytest.raises(PicomamlError, match="bad.yaml: not valid YAML"):
        load_paper_numbers(bad)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"schema": 1, "numbers": [GOOD]}), encoding="utf-8")
    assert load_paper_numbers(good)[0].value == 2
