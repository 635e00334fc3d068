"""docs/config.md, generated from the config dataclasses: every section and key of the
pretraining, fine-tuning and grid YAML files with its type, default, allowed values and
one line of meaning.

The meaning is the field's attribute docstring (a string literal on the line after the
field, read from the source with :mod:`ast`), so it lives beside the key it explains and
this reference cannot drift from the code: ``tests/test_config_docs.py`` fails when
docs/config.md differs from :func:`render` or when a field has no docstring.
Regenerate with ``python scripts/gen_config_docs.py``.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal

from picomaml.ner.config import FinetuneConfig
from picomaml.pretrain.config import PretrainConfig
from picomaml.study.ablation_config import (
    AblationSpec,
    BalanceAblation,
    FewshotAblation,
    FewshotCurve,
    NameAblation,
    ParticleAblation,
)
from picomaml.study.config import BackboneSpec, GridConfig, SweepSpec

#: The YAML files documented, each with its root dataclass and where it is described.
ROOTS: tuple[tuple[str, type, str], ...] = (
    ("Pretraining (`picomaml pretrain --config`)", PretrainConfig, "docs/pretraining-run.md"),
    ("Fine-tuning (`picomaml finetune --config`)", FinetuneConfig, "docs/ner.md"),
    ("Study grid (`picomaml grid`, `picomaml demo`)", GridConfig, "docs/study.md"),
)

#: Sections typed ``Any`` in their dataclass because their loader builds them by hand
#: (to name the key in an error), or lists of sections: the dataclass each one holds.
NESTED: dict[tuple[type, str], type] = {
    (GridConfig, "backbones"): BackboneSpec,
    (GridConfig, "sweeps"): SweepSpec,
    (AblationSpec, "particles"): ParticleAblation,
    (AblationSpec, "names"): NameAblation,
    (AblationSpec, "balance"): BalanceAblation,
    (AblationSpec, "fewshot"): FewshotAblation,
    (FewshotAblation, "curves"): FewshotCurve,
}

#: The entries of :data:`NESTED` that are lists of sections.
LISTS = {(GridConfig, "backbones"), (GridConfig, "sweeps"), (FewshotAblation, "curves")}


@functools.cache
def field_docstrings(cls: type) -> dict[str, str]:
    """The attribute docstring of each field of ``cls``, as one line (read once per class)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _nested(owner: type, f: dataclasses.Field, hint: Any) -> type | None:
    """The dataclass a field holds as a section, if any."""
    if (owner, f.name) in NESTED:
        return NESTED[(owner, f.name)]
    return hint if dataclasses.is_dataclass(hint) else None


def _allowed(hint: Any) -> list[Any]:
    """Every ``Literal`` value inside ``hint`` (``bool | Literal["auto"]`` -> ``["auto"]``)."""
    if typing.get_origin(hint) is Literal:
        return list(typing.get_args(hint))
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [v for arg in typing.get_args(hint) for v in _allowed(arg)]
    return []


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value!r}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def missing_descriptions() -> list[str]:
    """``section.key`` of every documented field without a docstring."""
    return [
        f"{prefix}{name}"
        for _, root, _ in ROOTS
        for prefix, cls, _ in _sections(root, "")
        for name in (f.name for f in dataclasses.fields(cls))
        if name not in field_docstrings(cls)
    ]


def _sections(cls: type, prefix: str) -> Iterator[tuple[str, type, str]]:
    """(key prefix, dataclass, class summary) for ``cls`` and every section under it."""
    yield prefix, cls, (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        sub = _nested(cls, f, hints[f.name])
        if sub is not None:
            many = "[]" if (cls, f.name) in LISTS else ""
            yield from _sections(sub, f"{prefix}{f.name}{many}.")


def _table(cls: type, prefix: str) -> list[str]:
    hints, docs = typing.get_type_hints(cls), field_docstrings(cls)
    rows = ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        sub = _nested(cls, f, hints[f.name])
        default = _default(f)
        if sub is None:
            kind = f"`{f.type}`"
        elif dataclasses.is_dataclass(hints[f.name]):
            kind, default = f"section `{sub.__name__}`", "below"
        else:
            kind = f"list of `{sub.__name__}`" if (cls, f.name) in LISTS else f"`{sub.__name__}`"
        allowed = ", ".join(f"`{v}`" for v in _allowed(hints[f.name])) or ""
        rows.append(
            f"| `{prefix}{f.name}` | {_cell(kind)} | {_cell(default)} | {_cell(allowed)} "
            f"| {_cell(docs.get(f.name, ''))} |"
        )
    return rows


def render() -> str:
    """The whole of docs/config.md."""
    out = [
        "# Configuration reference",
        "",
        "Generated from the config dataclasses by `python scripts/gen_config_docs.py`; do not",
        "edit by hand (`tests/test_config_docs.py` fails when this file is out of date). Every",
        "key is also a `section.key=value` override on the command line. `null` in YAML is",
        "Python's `None`; a *section* is a nested mapping, documented in the table below it.",
        "",
    ]
    for title, root, guide in ROOTS:
        out += [f"## {title}", "", f"Root: `{root.__name__}`; guide: {guide}.", ""]
        for prefix, cls, summary in _sections(root, ""):
            if prefix:
                out += [f"### `{prefix[:-1]}` (`{cls.__name__}`)", ""]
            out += [summary, "", *_table(cls, prefix), ""]
    return "\n".join(out).rstrip() + "\n"


__all__ = ["field_docstrings", "missing_descriptions", "render"]
