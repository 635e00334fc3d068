"""The layering rules a contributor can rely on, read from the source with ``ast``: no file
over 600 lines, no function over 100, no import circle between picomaml's modules, and a
function-local import only with a reason (on its line: lazy loading or an optional
dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "picomaml"
PY_FILES = sorted(
    p for d in ("src", "tests", "scripts") for p in (ROOT / d).rglob("*.py") if p.is_file()
)
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 100


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_rules_see_the_whole_tree() -> None:
    """Guards the other tests against an empty glob (which would pass them all)."""
    assert len(PY_FILES) > 200
    assert SRC / "pretrain" / "trainer.py" in PY_FILES


def test_no_file_over_600_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in PY_FILES
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES
    }
    assert long == {}


def test_no_function_over_100_lines() -> None:
    long = {}
    for path in PY_FILES:
        for node in ast.walk(_tree(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = n
    assert long == {}


def _module_level_imports(
    tree: ast.Module, module: str, is_package: bool, modules: set[str]
) -> set[str]:
    """picomaml modules imported when ``module`` is imported: statements outside functions
    and outside ``if TYPE_CHECKING:``; ``from pkg import name`` counts ``pkg.name`` when
    that is a module (of ``modules``), else ``pkg``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = module.split(".")
                    anchor = anchor if is_package else anchor[:-1]
                    anchor = anchor[: len(anchor) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                names = {f"{base}.{a.name}" for a in child.names}
                found.update(names & modules or {base})
                found.update({base} if names - modules else set())
            visit(child)

    visit(tree)
    return found


def _import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        imported = _module_level_imports(_tree(path), name, path.name == "__init__.py", set(files))
        graph[name] = {m for m in imported if m in files and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path of module names, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := dfs(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := dfs(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_circles() -> None:
    graph = _import_graph()
    # The graph is real: the trainer's imports are seen.
    assert {"picomaml.pretrain.maml", "picomaml.model.loss"} <= graph["picomaml.pretrain.trainer"]
    assert _cycle(graph) is None


def _local_imports(path: Path) -> list[tuple[int, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child.lineno, lines[child.lineno - 1]))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(_tree(path), False)
    return found


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ("    import datasets  # optional (hub extra)", True),
        ("    from x import y  # lazy: torch loads with the component", True),
        ("    from picomaml.data.paths import no_data_root_error", False),
        ("    import torch  # noqa: F401", False),
    ],
)
def test_a_reason_is_a_comment_beyond_noqa(line: str, ok: bool) -> None:
    assert _has_reason(line) is ok


def _has_reason(line: str) -> bool:
    comment = line.partition("#")[2]
    return "optional" in comment or "lazy" in comment


def test_function_local_imports_say_why() -> None:
    """Allowed: an optional dependency or a lazily loaded heavy stack, said on the line."""
    bare = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in sorted(SRC.rglob("*.py"))
        for n, line in _local_imports(p)
        if not _has_reason(line)
    ]
    assert bare == []
