"""Name pools: the file format, the frequent-name rule, the shipped pools and the commands."""

from __future__ import annotations

from collections import Counter

import pytest

from picomaml.cli.main import main
from picomaml.data.names import (
    SHIPPED_POOLS,
    casefolded,
    frequent_names,
    name_candidates,
    parse_pool,
    pool_occurrences,
    read_pool,
    shipped_pool,
    word_counts,
)
from picomaml.data.uner import Sentence
from picomaml.errors import PicomamlError


def test_pool_format_and_its_errors(tmp_path):
    pool = parse_pool("# c\ngiven\tAmihan\t3\n\nsurname\tde  la Cruz\n", "p", "f.tsv")
    assert pool.given == ("Amihan",) and pool.surnames == ("de la Cruz",)
    with pytest.raises(PicomamlError, match=r"f.tsv:2: expected 'given\|surname"):
        parse_pool("given\tA\nfirst\tB\n", "p", "f.tsv")
    with pytest.raises(PicomamlError, match="f.tsv: the name pool is empty"):
        parse_pool("# only comments\n", "p", "f.tsv")
    with pytest.raises(PicomamlError, match="f.tsv: name pool p: expected at least one given"):
        parse_pool("surname\tDimaano\n", "p", "f.tsv")
    with pytest.raises(PicomamlError, match="name pool file not found"):
        read_pool(tmp_path / "missing.tsv", "p")


def test_frequent_names_rule():
    s = [
        Sentence(["John", "Smith", "met", "Kay", "Lee", "in", "New", "York"],
                 ["B-PER", "I-PER", "O", "B-PER", "I-PER", "O", "B-LOC", "I-LOC"], "1"),
        Sentence(["Will", "Moore", "and", "Ann", "York"],
                 ["B-PER", "I-PER", "O", "B-PER", "I-PER"], "2"),
        Sentence(["York", "is", "big"], ["B-LOC", "O", "O"], "3"),
    ]  # fmt: skip
    cands = name_candidates(s)
    assert cands.given == Counter({"John": 1, "Kay": 1, "Will": 1, "Ann": 1})
    assert cands.surnames == Counter({"Smith": 1, "Lee": 1, "Moore": 1, "York": 1})
    corpus = word_counts(
        ["John John John Smith Smith will will will Will Kay Kay Kay Lee Lee Moore Moore",
         "York York York Ann Ann"]
    )  # fmt: skip
    got = frequent_names(cands, corpus, top=5, min_count=2)
    # Will: mostly lowercase in the corpus; Kay: a Tagalog particle; York: tagged PER in
    # 1 of its 3 annotated occurrences; Ann and Moore pass with 2.
    assert got == [
        ("given", "John", 3),
        ("given", "Ann", 2),
        ("surname", "Lee", 2),
        ("surname", "Moore", 2),
        ("surname", "Smith", 2),
    ]
    assert frequent_names(cands, corpus, top=1, min_count=3) == [("given", "John", 3)]


def test_shipped_pools_are_the_same_size_and_disjoint():
    frequent = read_pool(shipped_pool("frequent"), "frequent")
    unseen = read_pool(shipped_pool("unseen"), "unseen")
    assert set(SHIPPED_POOLS) == {"frequent", "unseen"}
    for pool in (frequent, unseen):
        assert len(pool.given) == len(pool.surnames) == 30
    assert not {*frequent.given, *frequent.surnames} & {*unseen.given, *unseen.surnames}
    header = shipped_pool("unseen").read_text(encoding="utf-8")
    assert "compiled by the picomaml maintainers" in header.lower()
    assert "picomaml data names check" in header


def test_pool_occurrences_counts_any_case_and_the_rarest_word():
    pool = parse_pool("given\tAna\nsurname\tde la Cruz\n", "p", "f")
    counts = casefolded(word_counts(["ANA ana De la la Cruz"]))
    assert pool_occurrences(pool, counts) == [("given", "Ana", 2), ("surname", "de la Cruz", 1)]


def test_commands_on_the_fixture_root(tmp_path, capsys, fixture_data_root):
    root = ["--data-dir", str(fixture_data_root)]
    bad = tmp_path / "pool.tsv"
    bad.write_text("given\tJohn\nsurname\tDimaano\n")
    assert main(["data", "names", "check", str(bad), "--absent", *root]) == 2
    err = capsys.readouterr().err
    assert "1 name(s) occur in the corpus or the UNER sources: John" in err
    assert main(["data", "names", "check", str(shipped_pool("unseen")), "--absent", *root]) == 0
    assert "all 60 names absent" in capsys.readouterr().out
    # The fixture corpus is word salad: no English name passes the frequency filter.
    out = tmp_path / "frequent.tsv"
    assert main(["data", "names", "frequent", "--out", str(out), *root]) == 2
    assert "passed the filters" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.needs_real_data
def test_shipped_pools_are_what_the_commands_say(tmp_path, capsys, data_dir):
    """The frequent pool is exactly what `data names frequent` writes from english-mini, and
    every unseen name is absent from the corpus and the UNER sources."""
    out = tmp_path / "frequent.tsv"
    assert main(["data", "names", "frequent", "--out", str(out), "--data-dir", str(data_dir)]) == 0
    assert out.read_bytes() == shipped_pool("frequent").read_bytes()
    pool = str(shipped_pool("unseen"))
    assert main(["data", "names", "check", pool, "--absent", "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()
