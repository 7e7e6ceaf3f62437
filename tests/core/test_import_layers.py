"""The data model imports nothing above it, and no import cycle runs through it.

A cycle hidden by a function-level import still breaks whoever imports the modules in another
order, so the scan counts every import that runs (module level and inside functions); only
``if TYPE_CHECKING:`` blocks are skipped, since they never run.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import aesoperator

PACKAGE = Path(aesoperator.__file__).parent

# What every other layer may build on: tasks, results, lifecycle records, errors.
DATA_MODEL = (
    "aesoperator.errors",
    "aesoperator.task",  # Task, TaskConfig, and the plan models Plan, Step
    "aesoperator.results",
    "aesoperator.execution",
    "aesoperator.skills._registry",
    "aesoperator.runtime.budget",
)
# Plain helpers the data model may use besides itself (standard library only).
HELPERS = ("aesoperator._bounds", "aesoperator._redact", "aesoperator._report_html")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str) -> set[str]:
    """The package's modules that ``name`` imports when it runs, wherever the import sits."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit_node(other)
            else:
                visit_node(child)

    def visit_node(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        else:
            visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    # A package's own ``__init__`` has run before any of its modules: not an edge.
    ancestors = {name.rsplit(".", n)[0] for n in range(1, name.count(".") + 1)}
    return {m for m in found if m in MODULES and m != name and m not in ancestors}


GRAPH = {name: _imports(name) for name in MODULES}


def _reachable(starts: tuple[str, ...]) -> set[str]:
    seen: set[str] = set()
    todo = list(starts)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(GRAPH[name])
    return seen


def _cycle_from(start: str) -> list[str] | None:
    """An import cycle reachable from ``start``, as the chain of modules, or None."""
    path: list[str] = []
    on_path: set[str] = set()
    done: set[str] = set()

    def walk(name: str) -> list[str] | None:
        if name in on_path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        path.append(name)
        on_path.add(name)
        for nxt in sorted(GRAPH[name]):
            cycle = walk(nxt)
            if cycle:
                return cycle
        path.pop()
        on_path.discard(name)
        done.add(name)
        return None

    return walk(start)


def test_the_scan_sees_the_imports() -> None:
    # Guard for the scan itself: known edges, one of them inside a function.
    assert "aesoperator.results" in GRAPH["aesoperator.execution"]
    assert "aesoperator.skills._registry" in GRAPH["aesoperator.results"]
    assert "aesoperator._redact" in GRAPH["aesoperator.task"]  # imported in a validator


@pytest.mark.parametrize("module", DATA_MODEL)
def test_no_import_cycle_through_the_data_model(module: str) -> None:
    cycle = _cycle_from(module)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_data_model_imports_nothing_above_it() -> None:
    above = _reachable(DATA_MODEL) - set(DATA_MODEL) - set(HELPERS)
    assert not above, (
        f"the data model imports {sorted(above)}; the runtime, planners, store, web and client "
        "build on the data model, never the other way round"
    )


def test_each_data_model_module_imports_first_in_a_fresh_interpreter() -> None:
    # The import order a cycle breaks: each module first, alone.
    code = (
        "import importlib, sys\n"
        "name = sys.argv[1]\n"
        "importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('aesoperator.')))\n"
    )
    allowed = {*DATA_MODEL, *HELPERS, "aesoperator.skills", "aesoperator.runtime"}
    for module in DATA_MODEL:
        out = subprocess.run(
            [sys.executable, "-c", code, module], capture_output=True, text=True, check=True
        ).stdout
        loaded = set(ast.literal_eval(out))
        assert module in loaded
        assert loaded <= allowed, f"importing {module} loads {sorted(loaded - allowed)}"
