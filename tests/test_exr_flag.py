"""OpenCV's OpenEXR switch is set in one place, engine/__init__.py, which every engine module runs first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAG = "OPENCV_IO_ENABLE_OPENEXR"


def test_only_the_engine_package_sets_the_flag():
    setters = sorted(str(path.relative_to(ROOT)) for folder in ("engine", "gui", "bench", "scripts", "tests")
                     for path in (ROOT / folder).rglob("*.py")
                     if f'setdefault("{FLAG}"' in path.read_text(encoding="utf-8"))
    assert setters == ["engine/__init__.py"]


def test_cv2_reads_exr_through_any_engine_module(tmp_path):
    """In a fresh interpreter without the variable: importing an engine module is enough for cv2 to read EXR
    (OpenCV refuses EXR files unless the flag is set before its first EXR call)."""
    code = (
        "import sys, numpy as np\n"
        "import engine.imageio.raster\n"
        "import cv2\n"
        f"path = {str(tmp_path / 'flag.exr')!r}\n"
        "assert cv2.imwrite(path, np.full((4, 4, 3), 2.5, np.float32))\n"
        "back = cv2.imread(path, cv2.IMREAD_UNCHANGED)\n"
        "assert back is not None and float(back.max()) == 2.5\n"
    )
    env = {key: value for key, value in os.environ.items() if key != FLAG}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
