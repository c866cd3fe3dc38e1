"""Who may import whom: the layer (storyflow), the CLI (storyflow_cli) and the local cloud (storyflow_local).

* `storyflow` (the Lambda layer) imports neither of the others, not even inside a function.
* `storyflow_cli.client` (the HTTP client) and everything it imports never reach `storyflow_local` or typer;
  no `storyflow_cli` module imports `storyflow_local` by name (the CLI mounts `storyflow local` at run time).
* No module-level import cycle across the three packages.
* Every module imports.
"""

from __future__ import annotations

import ast
import importlib
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "storyflow": ROOT / "src" / "storyflow",
    "storyflow_cli": ROOT / "packages" / "storyflow_cli",
    "storyflow_local": ROOT / "packages" / "storyflow_local",
}


def _module_name(package: str, path: Path) -> str:
    parts = path.relative_to(PACKAGES[package]).with_suffix("").parts
    return ".".join((package, *parts[:-1])) if parts[-1] == "__init__" else ".".join((package, *parts))


@lru_cache(maxsize=1)
def _sources() -> dict[str, tuple[Path, ast.Module]]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" not in path.parts:
                found[_module_name(package, path)] = (path, ast.parse(path.read_text(), str(path)))
    return found


def _is_package(module: str) -> bool:
    path, _ = _sources()[module]
    return path.name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if _is_package(module) else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The modules an import statement loads (for `from pkg import name`: pkg.name when it is a module)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    source = _resolve(module, node)
    known = _sources()
    names = {f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in known}
    return names or {source}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: not in functions, not under `if TYPE_CHECKING`."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            found += _module_level(node.body) + _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            found += _module_level(node.body) + _module_level(node.orelse) + _module_level(node.finalbody)
            for handler in node.handlers:
                found += _module_level(handler.body)
        elif isinstance(node, ast.With):
            found += _module_level(node.body)
    return found


def imports(module: str, *, anywhere: bool) -> set[str]:
    _, tree = _sources()[module]
    nodes = (
        [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
        if anywhere
        else _module_level(tree.body)
    )
    return set().union(*(_targets(module, node) for node in nodes)) if nodes else set()


def _top(name: str) -> str:
    return name.partition(".")[0]


def _reachable(start: str) -> set[str]:
    """Every module `start` can import (any depth, lazy imports included) within the three packages,
    plus the external top-level packages they import."""
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        if module in _sources():
            todo += imports(module, anywhere=True)
    return seen


def test_the_layer_imports_neither_the_cli_nor_the_local_cloud() -> None:
    offenders = {
        module: sorted(
            t for t in imports(module, anywhere=True) if _top(t) in {"storyflow_cli", "storyflow_local"}
        )
        for module in _sources()
        if _top(module) == "storyflow"
    }
    assert not {m: t for m, t in offenders.items() if t}


def test_the_cli_client_never_reaches_the_local_cloud_or_typer() -> None:
    reached = _reachable("storyflow_cli.client")
    assert "storyflow_cli.api_client" in reached  # the walk follows the client's own modules
    assert not {m for m in reached if _top(m) in {"storyflow_local", "typer"}}
    assert "storyflow_cli.commands" not in reached


def test_no_cli_module_names_the_local_cloud() -> None:
    offenders = {
        module: sorted(t for t in imports(module, anywhere=True) if _top(t) == "storyflow_local")
        for module in _sources()
        if _top(module) == "storyflow_cli"
    }
    assert not {m: t for m, t in offenders.items() if t}


def _cycles() -> list[list[str]]:
    """Strongly connected components (Tarjan) of the module-level import graph with more than one module,
    ignoring a package's own `__init__` importing its submodules (Python loads the package first)."""
    graph: dict[str, set[str]] = {}
    for module in _sources():
        graph[module] = {
            t
            for t in imports(module, anywhere=False)
            if t in _sources() and t != module and not (_is_package(module) and t.startswith(module + "."))
        }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in graph[node]:
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_no_module_level_import_cycle() -> None:
    assert _cycles() == []


@pytest.mark.parametrize("module", sorted(m for m in _sources() if not m.endswith("__main__")))
def test_every_module_imports(module: str) -> None:
    importlib.import_module(module)
