"""The import graph of each package, read from the source with ``ast`` (nothing is imported).

- No cycle between the modules of one package, counting the imports made at module level
  (imports under ``if TYPE_CHECKING:`` are for annotations only and do not count).
- An import inside a function says why on its own line (a ``#`` comment: a heavy optional
  dependency, a child process, a module that imports this one...): an unexplained one is usually
  a cycle held together by hand.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["eoffice", "meetings", "storage", "web"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(package: str) -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    """Full names a statement imports: ``from a import b`` yields ``a`` and ``a.b`` (b may be a module)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        anchor = parts if is_package else parts[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    yield base
    for alias in node.names:
        yield f"{base}.{alias.name}"


class _Imports(ast.NodeVisitor):
    def __init__(self) -> None:
        self.top: list[ast.Import | ast.ImportFrom] = []
        self.inner: list[ast.Import | ast.ImportFrom] = []
        self._depth = 0

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def _function(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        (self.inner if self._depth else self.top).append(node)

    visit_ImportFrom = visit_Import


def _parse(path: Path) -> _Imports:
    visitor = _Imports()
    visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return visitor


def graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports at module level."""
    mods = modules(package)
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets: set[str] = set()
        for node in _parse(path).top:
            for full in _imported(node, name, path.name == "__init__.py"):
                if full in mods and full != name:
                    targets.add(full)
        edges[name] = targets
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def unexplained_inner_imports(package: str) -> list[str]:
    out = []
    for _name, path in modules(package).items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in _parse(path).inner:
            if "#" not in lines[node.lineno - 1]:
                out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return out


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package: str) -> None:
    cycle = find_cycle(graph(package))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("package", PACKAGES)
def test_function_level_imports_say_why(package: str) -> None:
    missing = unexplained_inner_imports(package)
    assert not missing, "imports inside functions without a comment saying why:\n" + "\n".join(missing)


def test_the_checks_see_a_cycle_and_an_unexplained_import(tmp_path: Path) -> None:
    assert find_cycle({"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}}) == ["p.a", "p.b", "p.c", "p.a"]
    assert find_cycle({"p.a": {"p.b"}, "p.b": set()}) is None
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import p.b\n"
              "def f():\n    import p.c\n    import p.d  # heavy\n")
    found = _parse(_write(tmp_path, source))
    assert [ast.unparse(n) for n in found.top] == ["from typing import TYPE_CHECKING"]
    assert [ast.unparse(n) for n in found.inner] == ["import p.c", "import p.d"]


def _write(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "m.py"
    path.write_text(source, encoding="utf-8")
    return path
