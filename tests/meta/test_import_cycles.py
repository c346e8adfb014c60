"""No import cycles in core: every ``import portal.*`` is read with ``ast``, lazy ones too.

An import inside a function counts like one at the top of the module: a cycle hidden behind a
function-level import still ties the modules together, and breaks the day someone moves the
import up. Imports under ``if TYPE_CHECKING:`` are left out (they never run).

The events and tasks packages must be acyclic; cycles elsewhere in core are reported (and held to
the known list below, so a new one fails and a fixed one is noticed).
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest

CORE = Path(__file__).parents[2] / "core"
PACKAGE = CORE / "portal"
STRICT_PREFIXES = ("portal.events", "portal.tasks")
"""Packages in which no module may take part in a cycle, whoever else is in it."""


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool, modules: Collection[str]) -> Iterator[str]:
    """Every module ``tree`` imports, at any depth, except under ``if TYPE_CHECKING:``.

    ``from package import name`` depends on ``package.name`` when that is one of ``modules``, else
    on the package itself (the packages above an imported module are not counted: their
    ``__init__`` only has to have started, which Python allows).
    """
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                yield f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """Module to the ``portal.*`` modules it imports (a module's package is not an edge of its own)."""
    files = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = {
            name
            for name in _imports(tree, module, path.name == "__init__.py", files)
            if name in files and name != module
        }
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    def visit(root: str) -> None:
        nonlocal counter
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def path_within(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle through the component's first module, for the failure message."""
    members = set(component)
    start = component[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    route = [node]
                    while route[-1] != start:
                        route.append(parents[route[-1]])
                    return [start, *reversed(route[:-1]), start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    return component


KNOWN_CYCLES: list[list[str]] = []
"""Cycles in core outside events and tasks that are known and not yet untangled."""


def test_the_graph_sees_lazy_imports() -> None:
    graph = import_graph()
    assert "portal.events.bus" in graph and "portal.platform" in graph
    tree = ast.parse("def f():\n    from portal.events import wake\n    import portal.tasks.runtime\n")
    assert set(_imports(tree, "portal.x", False, {"portal.events.wake"})) >= {
        "portal.events.wake",
        "portal.tasks.runtime",
    }
    guarded = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import portal.platform\n")
    assert "portal.platform" not in set(_imports(guarded, "portal.x", False, ()))
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_cycle_touches_events_or_tasks() -> None:
    graph = import_graph()
    involved = [
        " -> ".join(path_within(graph, component))
        for component in cycles(graph)
        if any(module.startswith(STRICT_PREFIXES) for module in component)
    ]
    assert not involved, "import cycles through portal.events / portal.tasks:\n" + "\n".join(involved)


def test_no_other_cycle_in_core() -> None:
    graph = import_graph()
    found = cycles(graph)
    if found != KNOWN_CYCLES:
        new = [" -> ".join(path_within(graph, c)) for c in found if c not in KNOWN_CYCLES]
        gone = [" , ".join(c) for c in KNOWN_CYCLES if c not in found]
        pytest.fail(
            "import cycles in core changed.\nnew:\n" + "\n".join(new) + "\nno longer there:\n" + "\n".join(gone)
        )
