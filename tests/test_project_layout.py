"""The project's layout rules that a newcomer relies on: it is an installed package (no script edits sys.path),
the benches never import the tests, and the GUI reaches the engine through one module, engine/api.py."""

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("engine", "gui", "bench", "lab", "scripts", "tests")


def _python_files(*folders: str) -> list[Path]:
    files = [ROOT / "main.py"] if "main" in folders or not folders else []
    for folder in folders or FOLDERS:
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every module ``path`` imports (absolute names; relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((module, node.lineno))
            found += [(f"{module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _edits_sys_path(node: ast.AST) -> bool:
    """sys.path.insert/append/extend/remove(...), or an assignment to sys.path, anywhere (code strings too)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        target = node.func.value
        return (isinstance(target, ast.Attribute) and target.attr == "path" and isinstance(target.value, ast.Name)
                and target.value.id == "sys" and node.func.attr in ("insert", "append", "extend", "remove"))
    if isinstance(node, (ast.Assign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(t, ast.Attribute) and t.attr == "path" and isinstance(t.value, ast.Name)
                   and t.value.id == "sys" for t in targets)
    return False


def test_no_file_edits_sys_path():
    problems = []
    for path in _python_files():
        if path == Path(__file__).resolve():
            continue  # its own examples below
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, str(path))
        problems += [f"{path.relative_to(ROOT)}:{n.lineno}" for n in ast.walk(tree) if _edits_sys_path(n)]
        # child-process code kept in strings
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "sys.path" in node.value:
                try:
                    inner = ast.parse(node.value)
                except SyntaxError:
                    continue
                problems += [f"{path.relative_to(ROOT)}:{node.lineno} (code string)"
                             for n in ast.walk(inner) if _edits_sys_path(n)]
    assert not problems, "sys.path edited (the project is installed by scripts/setup.sh):\n" + "\n".join(problems)


def test_the_scanner_sees_an_edit():
    assert any(_edits_sys_path(n) for n in ast.walk(ast.parse("import sys\nsys.path.insert(0, '.')")))
    assert any(_edits_sys_path(n) for n in ast.walk(ast.parse("import sys\nsys.path = ['x']")))
    assert not any(_edits_sys_path(n) for n in ast.walk(ast.parse("import os\nos.path.join('a')")))


def test_benches_and_the_lab_never_import_the_tests():
    problems = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                for path in _python_files("bench", "lab") for name, line in _imports(path)
                if name == "tests" or name.startswith("tests.")]
    assert not problems, "\n".join(problems)


def test_the_project_is_an_installable_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {"engine", "engine.*", "gui", "bench"} <= set(include)
    assert "main" in project["tool"]["setuptools"]["py-modules"]
    assert "pip install -q --no-deps --no-build-isolation -e ." in (ROOT / "scripts" / "setup.sh").read_text()


def test_the_gui_reaches_the_engine_through_engine_api_only():
    problems = []
    for path in _python_files("gui"):
        for name, line in _imports(path):
            top = name.split(".")
            if top[0] == "engine" and name not in ("engine", "engine.api") and not name.startswith("engine.api."):
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not problems, "gui/ must import engine names from engine/api.py:\n" + "\n".join(problems)


def test_engine_api_gives_every_name_it_lists():
    from engine import api

    for name in api.__all__:
        assert getattr(api, name) is not None, name
    # the functions that do the work load on first use
    assert api.read_image.__module__.startswith("engine.imageio")
    assert callable(api.restore_job) and callable(api.metrics.psnr)


def test_engine_api_loads_neither_training_nor_zssr_until_used():
    """The lite bundle has no torch, training or ZSSR: the window's front door must open without them."""
    import subprocess
    import sys

    code = ("import sys, engine.api, gui.main_window; "
            "print(sorted(m for m in sys.modules if m.startswith(('engine.training', 'engine.zssr', 'torch'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_every_lazily_loaded_engine_module_is_spelled_as_an_import_for_the_bundler():
    """engine/api.py loads its working modules on first use, by name; PyInstaller only bundles what it sees
    imported, so each of those modules must also appear in the file's TYPE_CHECKING imports (a module missing
    there made the frozen window fail with ModuleNotFoundError)."""
    from engine import api

    tree = ast.parse((ROOT / "engine" / "api.py").read_text())
    spelled = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for child in ast.walk(node):
                if isinstance(child, ast.ImportFrom):
                    package = "engine" + ("." + child.module if child.module else "")
                    spelled.update(f"{package}.{alias.name}" for alias in child.names)
    lazy = {module for module, _ in api._LAZY.values()}
    assert lazy <= spelled, sorted(lazy - spelled)
