"""Typed configuration: nested dataclasses loaded from YAML, every key validated.

Why: a misspelt key silently falling back to a default is the commonest way a
study ends up comparing the wrong runs. Here an unknown key, a wrong type or a
bad override is an error that names the key (``section.key``) and the file.

Beyond types, every section gets the same rules without writing them twice:

* every float is finite (``.inf`` and ``.nan`` would train a NaN model and end up as
  ``Infinity`` in run.json, which is not JSON) unless its field says otherwise with
  ``field(metadata={"finite": False})``;
* an integer key named ``seed``, ending in ``_seed``, or an item of a ``seeds`` list, is a
  seed and lies in ``0 .. 2**32 - 1`` (the range NumPy accepts);
* the YAML itself is read strictly: a key given twice in one mapping is an error naming the
  key and both lines (YAML would keep the last silently), a file is at most
  :data:`MAX_CONFIG_BYTES`, and aliases may not expand the document beyond
  :data:`MAX_EXPANDED` (a "billion laughs" file is refused before it is built);
* values quoted in error messages are cut to a few hundred characters.
"""

from __future__ import annotations

import dataclasses
import math
import re
import reprlib
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from picomaml.errors import PicomamlError
from picomaml.fileio import write_text

T = TypeVar("T")

#: The paper's model tiers, smallest first, and their width ``d_model`` (every other dimension
#: is shared: :class:`picomaml.model.PicoConfig`). The one tier table: the config type
#: :data:`Size`, the CLI's ``--size`` choices and :func:`picomaml.model.config_for` read it.
TIERS: dict[str, int] = {"tiny": 96, "small": 384, "medium": 768, "large": 1536}
SIZES: tuple[str, ...] = tuple(TIERS)
#: A tier name, as the type of a config field (``size: tiny``).
Size = Literal[SIZES]  # type: ignore[valid-type]
#: Fine-tuning regimes: ``head`` freezes the backbone, ``full`` trains everything.
Regime = Literal["head", "full"]

#: Largest config file read (the presets are a few KB).
MAX_CONFIG_BYTES = 1 << 20
#: Largest document after alias expansion, in nodes plus scalar characters.
MAX_EXPANDED = 4 << 20
#: Largest seed: NumPy seeds are unsigned 32-bit integers.
MAX_SEED = 2**32 - 1
#: Characters of a value quoted in an error message.
MAX_QUOTE = 200


def quote(value: object, limit: int = MAX_QUOTE) -> str:
    """``repr(value)``, cut to ``limit`` characters (an error message stays one short line)."""
    r = reprlib.Repr()
    r.maxstring = r.maxother = MAX_QUOTE
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = 20
    r.maxlevel = 4
    text = r.repr(value)  # never expands a huge or deeply shared structure
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit:,} more)"


def check(cond: bool, key: str, expected: str, value: object) -> None:
    """Validation step of a config's ``__post_init__``: a :class:`PicomamlError` naming
    ``key`` and what was expected when ``cond`` is false."""
    if not cond:
        raise PicomamlError(f"{key}: expected {expected}, got {quote(value)}")


def is_seed_key(key: str) -> bool:
    """Whether ``key`` (``section.name`` or ``seeds[3]``) names a seed (module docstring)."""
    name = key.rsplit(".", 1)[-1]
    if name == "seed" or name.endswith("_seed"):
        return True
    return re.fullmatch(r"\w*seeds\[\d+\]", name) is not None


def check_seed(value: int, key: str) -> int:
    """``value`` when it is a usable seed (``0 .. 2**32 - 1``), else an error naming ``key``."""
    check(0 <= value <= MAX_SEED, key, f"a seed in 0..{MAX_SEED}", value)
    return value


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float (YAML 1.2), not as the string "1e-3",
    refuses duplicate keys and caps alias expansion.

    Why: PyYAML follows YAML 1.1, where an exponent without a dot is a string, so
    ``lr: 1e-3`` or the override ``meta.inner_lr=1e-3`` would be rejected as "not a number".
    """

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return self.construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue  # explicit keys may override ones merged in with "<<"
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: SafeLoader's own error follows
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {quote(key)} (first on line {first}, again on line "
                        f"{line}; YAML would silently keep the last)",
                        key_node.start_mark,
                    )
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand it beyond :data:`MAX_EXPANDED` (or loop).

    An alias is the same node object as its anchor, so sizes are memoised per node: the
    expanded size is computed in time linear in the *written* document.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            if isinstance(node, yaml.ScalarNode):
                size = 1 + len(node.value)
            else:
                children = (
                    [c for pair in node.value for c in pair]
                    if isinstance(node, yaml.MappingNode)
                    else node.value
                )
                size = 1 + sum(sizes[id(c)] for c in children)
            sizes[key] = size
            if size > MAX_EXPANDED:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"aliases expand the document beyond {MAX_EXPANDED:,} nodes and characters "
                    "(an alias bomb?)",
                    node.start_mark,
                )
            continue
        if key in sizes:
            continue
        if key in active:
            raise yaml.constructor.ConstructorError(
                None, None, "an alias refers to a node that contains it", node.start_mark
            )
        active.add(key)
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            stack.extend((c, False) for pair in node.value for c in pair if id(c) not in sizes)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((c, False) for c in node.value if id(c) not in sizes)


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
    """Parse YAML text with the rules above; every config reader goes through this.

    Text longer than :data:`MAX_CONFIG_BYTES` is a :class:`PicomamlError`; bad YAML, a
    duplicate key or an alias bomb a :class:`yaml.YAMLError` (callers name the file)."""
    if len(text) > MAX_CONFIG_BYTES:
        raise PicomamlError(
            f"YAML text of {len(text):,} characters; a config is at most {MAX_CONFIG_BYTES:,}"
        )
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str, finite: bool = True) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert where lossless (int -> float).

    ``finite``: floats must be finite (the default; a field's ``metadata={"finite": False}``
    lifts it). Integer seeds must lie in ``0 .. MAX_SEED`` (:func:`is_seed_key`)."""
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
                return _coerce(value, arg, key, finite)
            except PicomamlError as exc:
                errors.append(exc)
        if len(errors) == 1:  # ``X | None``: X's own message says what was expected
            raise errors[0]
        raise PicomamlError(f"{key}: {quote(value)} does not match {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise PicomamlError(f"{key}: expected one of {list(args)}, got {quote(value)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise PicomamlError(f"{key}: expected a list, got {quote(value)}")
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{key}[{i}]", finite) for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise PicomamlError(f"{key}: expected a mapping, got {quote(value)}")
        kt, vt = args if args else (Any, Any)
        return {
            _coerce(k, kt, key, finite): _coerce(v, vt, f"{key}.{k}", finite)
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise PicomamlError(f"{key}: expected a mapping for section {_type_name(tp)}")
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is bool:
        if not isinstance(value, bool):
            raise PicomamlError(f"{key}: expected true or false, got {quote(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PicomamlError(f"{key}: expected an integer, got {quote(value)}")
        return check_seed(value, key) if is_seed_key(key) else value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PicomamlError(f"{key}: expected a number, got {quote(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf if value > 0 else -math.inf
        if finite and not math.isfinite(number):
            raise PicomamlError(f"{key}: expected a finite number, got {quote(value)}")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise PicomamlError(f"{key}: expected a string, got {quote(value)}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise PicomamlError(f"{key}: expected a path, got {quote(value)}")
        return Path(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types are errors."""
    if not isinstance(data, dict):
        raise PicomamlError(f"{prefix or 'config'}: expected a mapping, got {quote(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise PicomamlError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; "
            f"valid keys here: {', '.join(prefix + k for k in fields)}"
        )
    kwargs = {
        name: _coerce(value, hints[name], prefix + name, fields[name].metadata.get("finite", True))
        for name, value in data.items()
    }
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
        shown = quote(item)
        if "=" not in item:
            raise PicomamlError(f"override {shown}: expected section.key=value")
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        if not all(parts):
            raise PicomamlError(f"override {shown}: empty key component")
        node = out
        for part in parts[:-1]:
            child = node.get(part, {})
            if not isinstance(child, dict):
                raise PicomamlError(f"override {shown}: {part} is not a section")
            node[part] = dict(child)
            node = node[part]
        try:
            node[parts[-1]] = parse_yaml(raw)
        except PicomamlError as exc:
            raise PicomamlError(f"override {shown}: {exc}") from exc
        except yaml.YAMLError as exc:
            what = yaml_problem(exc)[1]
            raise PicomamlError(f"override {shown}: value is not valid YAML ({what})") from exc
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise PicomamlError(f"config file not found: {path}")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise PicomamlError(f"{path}: {size:,} bytes; a config is at most {MAX_CONFIG_BYTES:,}")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise PicomamlError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except PicomamlError as exc:
        raise PicomamlError(f"{path}: {exc}") from exc
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
