"""Nothing heavy is imported before it is needed: run in a fresh interpreter and read ``sys.modules``.

``onnx`` (about a CPU-second with ml_dtypes) and ``torch`` are training-time only; OpenCV is loaded by the codecs
that use it (PNG among them) when a file is read or written, never by importing the engine."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("onnx", "torch", "ml_dtypes", "cv2", "scipy", "PySide6", "OpenEXR")

CHILD = """
import json, sys
before = set(sys.modules)
{body}
print(json.dumps(sorted({{name.split(".")[0] for name in set(sys.modules) - before}})))
"""

RESTORE_PNG = """
import numpy as np
from engine.image import make_image
from engine.imageio import read_image, write_image
from engine.jobs import run_job
from engine.models.registry import ModelRegistry
from engine.restore import restore_job
source, target = sys.argv[2], sys.argv[3]
write_image(source, make_image(np.random.default_rng(0).random((40, 56, 3), dtype=np.float32)))
result = run_job(restore_job(read_image(source), ModelRegistry().get("photo-denoise-color-fast"),
                             {"noise_level": 15}))
write_image(target, result.image)
"""


def imported(body: str, *args: str, env: dict | None = None) -> set[str]:
    done = subprocess.run([sys.executable, "-c", CHILD.format(body=body), str(ROOT), *args], capture_output=True,
                          text=True, check=True, env=env, cwd=ROOT)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_restore_job_imports_nothing_heavy():
    assert not imported("import engine.restore, engine.runtime, engine.batch") & set(HEAVY + ("onnxruntime",))


def test_restoring_a_small_png_imports_no_onnx_torch_or_opencv(tmp_path, monkeypatch):
    import os

    env = {**os.environ, "RESTORATION_STUDIO_HOME": str(tmp_path / "home")}
    modules = imported(RESTORE_PNG, str(tmp_path / "in.png"), str(tmp_path / "out.png"), env=env)
    assert "onnxruntime" in modules  # the restore really ran a network
    assert not modules & (set(HEAVY) - {"cv2"})
    assert (tmp_path / "out.png").is_file()


def test_device_probe_imports_no_onnx():
    body = "from engine.runtime import device_summary\nprint(device_summary('auto'), file=sys.stderr)"
    assert not imported(body) & {"onnx", "torch", "ml_dtypes"}
