"""The engine never imports Qt, and inference never imports torch (DESIGN.md's layering rules)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules_loaded_after(code: str) -> set[str]:
    script = code + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_every_engine_module_loads_no_qt():
    code = (
        "import pkgutil, importlib, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    importlib.import_module(m.name)\n"
    )
    loaded = _modules_loaded_after(code)
    qt = sorted(m for m in loaded if m.split(".")[0] in {"PySide6", "shiboken6", "qdarkstyle", "pyqtgraph", "gui"})
    assert not qt, f"engine imports Qt: {qt}"


def test_inference_path_loads_no_torch():
    code = (
        "import engine.imageio, engine.restore, engine.runtime, engine.models.registry, engine.cli\n"
        "engine.cli.build_parser()\n"
    )
    loaded = _modules_loaded_after(code)
    assert "torch" not in loaded


def test_cli_models_command_runs_without_torch():
    code = "import contextlib, io, main\nwith contextlib.redirect_stdout(io.StringIO()):\n    main.main(['models'])\n"
    assert "torch" not in _modules_loaded_after(code)
