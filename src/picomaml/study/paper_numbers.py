"""The paper's own numbers, each with the table, figure or sentence that states it.

``paper_numbers.yaml`` (package data) lists every figure the paper states, so a report can
print "paper" beside "ours" per analysis. Loading checks the schema and that each value
can be read off its quote, so the file cannot drift from what the paper says; where the
paper only plots a quantity the value is the string ``"plot only"``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from picomaml.config import parse_yaml
from picomaml.errors import PicomamlError

PLOT_ONLY = "plot only"
#: ``Analysis.key`` of the report analyses with a paper counterpart, plus ``setup``.
ANALYSES = (
    "scale",
    "regime",
    "sources",
    "sweep",
    "types",
    "confidence",
    "convergence",
    "spans",
    "particles",
    "cases",
    "pretraining",
    "setup",
)
UNITS = (
    "pp",
    "percent",
    "f1",
    "fraction",
    "steps",
    "count",
    "ratio",
    "loss",
    "logprob",
    "M params",
    "hours",
    "setting",
)
RELATIONS = ("=", "~", "<", "<=", ">=")
REQUIRED = ("id", "analysis", "quantity", "unit", "value", "source", "quote")
OPTIONAL = ("relation", "where", "note", "value_in_quote")
_ID_RE = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_]+)+$")
_SUFFIX = {"pp": " pp", "percent": " %"}
_RELATION_SIGN = {"=": "", "~": "~", "<": "<", "<=": "≤", ">=": "≥"}


@dataclass(frozen=True)
class PaperNumber:
    """One figure stated by the paper. ``value`` is a number, a ``(low, high)`` range, or
    None when the paper only plots the quantity."""

    id: str
    analysis: str
    quantity: str
    unit: str
    value: float | tuple[float, float] | None
    source: str
    quote: str
    relation: str = "="
    where: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    value_in_quote: bool = True

    @property
    def plot_only(self) -> bool:
        return self.value is None

    def display(self) -> str:
        """The value as the report prints it: ``~11 %``, ``2–6 pp``, ``plot only``."""
        if self.value is None:
            return PLOT_ONLY
        if isinstance(self.value, tuple):
            text = f"{_fmt(self.value[0])}–{_fmt(self.value[1])}"
        else:
            text = _fmt(self.value)
        return f"{_RELATION_SIGN[self.relation]}{text}{_SUFFIX.get(self.unit, '')}"

    def matches(self, **selectors: Any) -> bool:
        """True when every given selector equals (or is listed in) this entry's ``where``."""
        for key, want in selectors.items():
            have = self.where.get(key)
            if isinstance(have, list) and want in have:
                continue
            if have != want:
                return False
        return True


def _fmt(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) < 1e-3:
        return f"{x:.1e}"
    return f"{x:g}"


_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
_WORD_NUMBER = re.compile(rf"\b({'|'.join(_WORDS)})(\s+thousand)?\b", re.IGNORECASE)
_LATEX_POW = re.compile(r"(\d+(?:\.\d+)?)\s*\\times\s*10\^\{(-?\d+)\}")
_BARE_POW = re.compile(r"(?<![\d.])10\^\{(-?\d+)\}")
_NUMBER = re.compile(
    r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d{1,3}(?: \d{3})+(?![\d.])|\d+)(\.\d+)?"
    r"(?:e([-+]?\d+))?(?:\s?(k)\b)?"
)


def numbers_in(text: str) -> list[float]:
    """Unsigned numbers written in ``text``: ``2 277``, ``50,304``, ``2.5 k``, ``1.0e-05``,
    ``3 \\times 10^{-4}`` (LaTeX), ``ten``, ``four thousand``. Signs are ignored: the
    paper writes minus as ``-``, ``–`` or ``$-2$``, and ``–`` also marks ranges."""
    text = _LATEX_POW.sub(r"\1e\2", text)
    text = _BARE_POW.sub(r"1e\1", text)
    out = []
    for m in _WORD_NUMBER.finditer(text):
        out.append(_WORDS[m.group(1).lower()] * (1000 if m.group(2) else 1))
    for m in _NUMBER.finditer(text):
        whole = m.group(1).replace(",", "").replace(" ", "")
        x = float(whole + (m.group(2) or ""))
        if m.group(3):
            x *= 10 ** int(m.group(3))
        if m.group(4):
            x *= 1000
        out.append(x)
    return out


def value_in_text(value: float, text: str) -> bool:
    """Whether ``abs(value)`` is one of the numbers written in ``text``."""
    return any(math.isclose(abs(value), x, rel_tol=1e-9, abs_tol=1e-12) for x in numbers_in(text))


def _check(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise PicomamlError(f"{where}: {msg}")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _entry(raw: Any, where: str) -> PaperNumber:
    _check(isinstance(raw, dict), where, f"expected a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(REQUIRED) - set(OPTIONAL))
    _check(not unknown, where, f"unknown key(s) {', '.join(unknown)}")
    missing = [k for k in REQUIRED if k not in raw or raw[k] in (None, "")]
    _check(not missing, where, f"missing {', '.join(missing)}")
    for key in ("id", "analysis", "quantity", "unit", "source", "quote"):
        _check(isinstance(raw[key], str), where, f"{key} must be a string")
    where = f"{where} ({raw['id']})"
    _check(bool(_ID_RE.match(raw["id"])), where, "id must be dotted, e.g. scale.relative_gain")
    _check(raw["analysis"] in ANALYSES, where, f"analysis must be one of {', '.join(ANALYSES)}")
    _check(raw["unit"] in UNITS, where, f"unit must be one of {', '.join(UNITS)}")
    relation = raw.get("relation", "=")
    _check(relation in RELATIONS, where, f"relation must be one of {', '.join(RELATIONS)}")
    value = raw["value"]
    parsed: float | tuple[float, float] | None
    if value == PLOT_ONLY:
        parsed = None
        _check(raw["source"].startswith("Figure"), where, "a 'plot only' value needs a Figure")
    elif _number(value):
        parsed = float(value)
    elif isinstance(value, list) and len(value) == 2 and all(_number(v) for v in value):
        _check(value[0] <= value[1], where, f"range {value} must be [low, high]")
        parsed = (float(value[0]), float(value[1]))
    else:
        raise PicomamlError(
            f"{where}: value must be a number, [low, high] or {PLOT_ONLY!r}, got {value!r}"
        )
    in_quote = raw.get("value_in_quote", True)
    _check(isinstance(in_quote, bool), where, "value_in_quote must be true or false")
    if parsed is not None and in_quote:
        for v in parsed if isinstance(parsed, tuple) else (parsed,):
            _check(value_in_text(v, raw["quote"]), where, f"value {v:g} is not written in quote")
    if not in_quote:
        _check(bool(raw.get("note")), where, "value_in_quote: false needs a note saying why")
    sel = raw.get("where", {}) or {}
    _check(isinstance(sel, dict), where, "where must be a mapping")
    note = raw.get("note", "") or ""
    _check(isinstance(note, str), where, "note must be a string")
    return PaperNumber(
        id=raw["id"],
        analysis=raw["analysis"],
        quantity=raw["quantity"],
        unit=raw["unit"],
        value=parsed,
        source=raw["source"],
        quote=" ".join(raw["quote"].split()),
        relation=relation,
        where=dict(sel),
        note=" ".join(note.split()),
        value_in_quote=in_quote,
    )


def parse_paper_numbers(data: Any, origin: str) -> list[PaperNumber]:
    """Validate the parsed YAML document; errors name the entry and the key."""
    _check(isinstance(data, dict), origin, "expected a mapping with schema and numbers")
    _check(data.get("schema") == 1, origin, f"schema must be 1, got {data.get('schema')!r}")
    raw = data.get("numbers")
    _check(isinstance(raw, list) and bool(raw), origin, "numbers must be a non-empty list")
    out = [_entry(item, f"{origin}: numbers[{i}]") for i, item in enumerate(raw)]
    seen: set[str] = set()
    for n in out:
        _check(n.id not in seen, origin, f"duplicate id {n.id}")
        seen.add(n.id)
    return out


def load_paper_numbers(path: str | Path | None = None) -> list[PaperNumber]:
    """The paper's numbers from ``path`` (default: the packaged ``paper_numbers.yaml``)."""
    if path is None:
        source = resources.files("picomaml.study").joinpath("paper_numbers.yaml")
        origin = "paper_numbers.yaml"
        text = source.read_text(encoding="utf-8")
    else:
        origin = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise PicomamlError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise PicomamlError(f"{origin}: not valid YAML ({exc})") from exc
    return parse_paper_numbers(data, origin)


def for_analysis(numbers: Iterable[PaperNumber], analysis: str) -> list[PaperNumber]:
    """The entries of one analysis, in file order."""
    return [n for n in numbers if n.analysis == analysis]


def find(numbers: Sequence[PaperNumber], analysis: str, **selectors: Any) -> list[PaperNumber]:
    """Entries of ``analysis`` whose ``where`` matches every selector."""
    return [n for n in numbers if n.analysis == analysis and n.matches(**selectors)]
