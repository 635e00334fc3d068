"""Typed configuration: nested dataclasses loaded from YAML, every key validated.

Why: a misspelt key silently falling back to a default is the commonest way a
study ends up comparing the wrong runs. Here an unknown key, a wrong type or a
bad override is an error that names the key (``section.key``) and the file.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from picomaml.errors import PicomamlError
from picomaml.fileio import write_text

T = TypeVar("T")

#: The paper's model tiers (``picomaml.model.TIERS`` gives their widths).
Size = Literal["tiny", "small", "medium", "large"]
SIZES: tuple[str, ...] = typing.get_args(Size)
#: Fine-tuning regimes: ``head`` freezes the backbone, ``full`` trains everything.
Regime = Literal["head", "full"]


def check(cond: bool, key: str, expected: str, value: object) -> None:
    """Validation step of a config's ``__post_init__``: a :class:`PicomamlError` naming
    ``key`` and what was expected when ``cond`` is false."""
    if not cond:
        raise PicomamlError(f"{key}: expected {expected}, got {value!r}")


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float (YAML 1.2), not as the string "1e-3".

    Why: PyYAML follows YAML 1.1, where an exponent without a dot is a string, so
    ``lr: 1e-3`` or the override ``meta.inner_lr=1e-3`` would be rejected as "not a number".
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """Parse YAML text with the float rule above; every config reader goes through this."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert where lossless (int -> float)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except PicomamlError as exc:
                errors.append(str(exc))
        raise PicomamlError(f"{key}: {value!r} does not match {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise PicomamlError(f"{key}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise PicomamlError(f"{key}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise PicomamlError(f"{key}: expected a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {_coerce(k, kt, key): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise PicomamlError(f"{key}: expected a mapping for section {_type_name(tp)}")
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is bool:
        if not isinstance(value, bool):
            raise PicomamlError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PicomamlError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PicomamlError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise PicomamlError(f"{key}: expected a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise PicomamlError(f"{key}: expected a path, got {value!r}")
        return Path(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types are errors."""
    if not isinstance(data, dict):
        raise PicomamlError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise PicomamlError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; "
            f"valid keys here: {', '.join(prefix + k for k in fields)}"
        )
    kwargs = {name: _coerce(value, hints[name], prefix + name) for name, value in data.items()}
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise PicomamlError(
            f"missing required config key(s): {', '.join(prefix + m for m in missing)}"
        )
    try:
        return cls(**kwargs)
    except PicomamlError as exc:
        # Checks name their key relative to their section; nested sections get the path.
        if prefix and not str(exc).startswith(prefix):
            raise PicomamlError(f"{prefix}{exc}") from exc
        raise
    except (ValueError, TypeError) as exc:
        raise PicomamlError(f"{prefix or 'config'}: {exc}") from exc


def to_dict(obj: Any) -> Any:
    """Plain YAML-able dict of a (nested) dataclass config."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def yaml_problem(exc: yaml.YAMLError) -> tuple[str, str]:
    """Where (``:line:column``, or empty) and what a YAML error is, each on one line
    (PyYAML's own message spans several lines and quotes the text)."""
    mark = getattr(exc, "problem_mark", None)
    where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    what = ", ".join(p for p in parts if p) or str(exc)
    return where, " ".join(what.split())


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (value parsed as YAML) to a raw config dict."""
    out = dict(data)
    for item in overrides:
        if "=" not in item:
            raise PicomamlError(f"override {item!r}: expected section.key=value")
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        if not all(parts):
            raise PicomamlError(f"override {item!r}: empty key component")
        node = out
        for part in parts[:-1]:
            child = node.get(part, {})
            if not isinstance(child, dict):
                raise PicomamlError(f"override {item!r}: {part} is not a section")
            node[part] = dict(child)
            node = node[part]
        try:
            node[parts[-1]] = parse_yaml(raw)
        except yaml.YAMLError as exc:
            what = yaml_problem(exc)[1]
            raise PicomamlError(f"override {item!r}: value is not valid YAML ({what})") from exc
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise PicomamlError(f"config file not found: {path}")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        where, what = yaml_problem(exc)
        raise PicomamlError(f"{path}{where}: not valid YAML ({what})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PicomamlError(f"{path}: expected a mapping at the top level")
    return data


def load_config(cls: type[T], path: str | Path | None, overrides: list[str] | None = None) -> T:
    """Load ``cls`` from a YAML file (or defaults) plus overrides; errors name the file."""
    data = load_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides or [])
    try:
        return from_dict(cls, data)
    except PicomamlError as exc:
        where = f"{path}: " if path is not None else ""
        raise PicomamlError(f"{where}{exc}") from exc


def save_config(obj: Any, path: str | Path) -> None:
    """Write a config as YAML so every run directory records what it actually used."""
    write_text(path, yaml.safe_dump(to_dict(obj), sort_keys=False))
