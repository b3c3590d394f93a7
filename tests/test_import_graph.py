"""engine/ has no import cycle (issue 41): built from the source with ``ast``, and every engine.models module
imports on its own in a fresh interpreter (a cycle shows there as a partially initialised module)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"


def module_name(path: Path, top: Path = ROOT) -> str:
    parts = list(path.relative_to(top).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(node: ast.AST):
    """Every import statement in ``node``, those inside functions too (a lazy import is still a dependency;
    it only hides a cycle until the function runs), except under ``if TYPE_CHECKING`` (never run)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child):
            yield from (n for block in child.orelse for n in _imports(ast.Module(body=[block], type_ignores=[])))
        else:
            yield from _imports(child)


def import_graph(root: Path = ENGINE) -> dict[str, set[str]]:
    """Module -> the engine modules it imports, at import time or in a function (``from pkg import name``
    counts as the submodule ``pkg.name`` when that is a module, else as ``pkg``)."""
    files = {module_name(path, root.parent): path for path in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                           for alias in node.names]
            for target in targets:
                # importing a.b.c runs a and a.b first
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    prefix = ".".join(parts[:i])
                    if prefix in files and prefix != name:
                        edges.add(prefix)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            # A package's __init__ importing its own submodules is how packages work, not a cycle.
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_engine_import_graph_has_no_cycle():
    graph = import_graph()
    assert "engine.models.registry" in graph and "engine.models.builtin" in graph["engine.models.registry"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_the_cycle_engine_models_had(tmp_path):
    """The shape before issue 41: classical was both the base class and the list of engines; the engines
    imported the base class inside functions, which hid the cycle from Python but not from the graph."""
    package = tmp_path / "engine" / "models"
    package.mkdir(parents=True)
    (tmp_path / "engine" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "classical.py").write_text("from .hybrid import hybrid_engines\nclass ClassicalEngine: ...\n")
    (package / "hybrid.py").write_text("from .oidn import oidn_denoise\n")
    (package / "oidn.py").write_text("def oidn_engines():\n    from .classical import ClassicalEngine\n")
    (package / "registry.py").write_text("import os\ndef refresh():\n    from .classical import ClassicalEngine\n")
    cycle = find_cycle(import_graph(tmp_path / "engine"))
    assert cycle is not None and set(cycle) == {"engine.models.classical", "engine.models.hybrid",
                                                "engine.models.oidn"}


@pytest.mark.parametrize("module", sorted(m for m in import_graph() if m.startswith("engine.models")))
def test_each_models_module_imports_alone(module):
    result = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
