"""Data safety: saves are atomic even when the process is killed, inputs are never touched, models are verified,
and nothing is ever unpickled (inference loads ONNX only; torch checkpoints load with weights_only=True)."""

from __future__ import annotations

import ast
import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ImageWriteError, ModelError
from engine.image import ImageMeta, make_image
from engine.imageio import read_image, write_image
from engine.jobs import run_job
from engine.models.registry import ModelRegistry, verify_model_file
from engine.restore import restore_job
from tests.onnx_factory import install

ROOT = Path(__file__).resolve().parent.parent

# The child writes one large image over and over onto the same target until it is killed.
WRITER = """
import sys
import numpy as np
from engine.image import ImageMeta, make_image
from engine.imageio import write_image
target, fmt, side = sys.argv[2], sys.argv[3], int(sys.argv[4])
pixels = np.random.default_rng(5).random((side, side, 3), dtype=np.float32)
meta = ImageMeta(format=fmt, bit_depth=32 if fmt == "exr" else 16, hdr=fmt == "exr",
                 color_space="linear" if fmt == "exr" else "srgb")
image = make_image(pixels, None, meta)
print("ready", flush=True)
while True:
    write_image(target, image)
"""


def _expected_pixels(side: int) -> np.ndarray:
    return np.random.default_rng(5).random((side, side, 3), dtype=np.float32)


def _partials(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if ".part." in name]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fmt, rounds", [("png", 3), ("exr", 2), ("tif", 1)])
def test_a_kill_in_the_middle_of_a_save_leaves_the_old_file_or_the_complete_new_one(tmp_path, fmt, rounds):
    side = 1200
    target = tmp_path / f"out.{fmt}"
    old = make_image(np.full((8, 8, 3), 0.25, np.float32), None,
                     ImageMeta(format="exr", bit_depth=32, hdr=True, color_space="linear") if fmt == "exr" else None)
    rng = np.random.default_rng(len(fmt))
    killed_mid_write = 0
    outcomes = []
    for _ in range(rounds):
        write_image(target, old)
        old_bytes = target.read_bytes()
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(ROOT), str(target), fmt.replace("tif", "tiff"),
                                  str(side)], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + 30
            while not _partials(tmp_path) and time.monotonic() < deadline:  # wait until a save is under way
                time.sleep(0.002)
            time.sleep(float(rng.random()) * 0.3)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait()
            child.stdout.close()
        killed_mid_write += bool(_partials(tmp_path))
        data = target.read_bytes()
        if data == old_bytes:
            outcomes.append("old")
        else:
            image = read_image(target)  # complete, or this raises
            np.testing.assert_allclose(image.pixels, _expected_pixels(side), atol=1 / 65535 if fmt != "exr" else 0)
            outcomes.append("new")
    assert killed_mid_write >= 1, outcomes  # the kill really interrupted an encoder at least once
    write_image(target, old)  # the next save removes what the killed writer left
    assert _partials(tmp_path) == [] and sorted(os.listdir(tmp_path)) == [target.name]


def test_a_partial_file_of_a_live_writer_is_left_alone(tmp_path):
    target = tmp_path / "shared.png"
    alive = tmp_path / f".shared.{os.getppid()}.abc123.part.png"  # our parent process: certainly alive
    other_file = tmp_path / f".shared.v2.{os.getppid()}.abc123.part.png"  # "shared.v2.png"'s, also alive
    alive.write_bytes(b"x")
    other_file.write_bytes(b"x")
    write_image(target, make_image(np.zeros((4, 4, 3), np.float32)))
    assert alive.exists() and other_file.exists()  # (dead writers' files are swept: tests/test_foreign_inputs.py)


@pytest.mark.parametrize("ext, module, function", [
    ("png", "engine.imageio.raster", "encode_raster"),
    ("tif", "engine.imageio.raster", "encode_raster"),
    ("exr", "engine.imageio.exr", "write_exr"),
])
def test_an_encoder_failing_half_way_keeps_the_old_file_and_leaves_no_litter(tmp_path, monkeypatch, ext, module,
                                                                             function):
    import importlib

    target = tmp_path / f"out.{ext}"
    image = make_image(np.full((6, 6, 3), 0.5, np.float32))
    write_image(target, image)
    before = target.read_bytes()

    def half_then_disk_full(*args):
        destination = args[-1] if function == "encode_raster" else args[0]
        if hasattr(destination, "write"):
            destination.write(b"\x89PNG partial")
        else:
            Path(destination).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(importlib.import_module(module), function, half_then_disk_full)
    with pytest.raises(ImageWriteError, match="no space left"):
        write_image(target, image.with_pixels(np.zeros((6, 6, 3), np.float32)))
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == [target.name]


def _fingerprints(folder: Path) -> dict[str, tuple[str, int, int, int]]:
    result = {}
    for path in sorted(folder.iterdir()):
        stat = path.stat()
        result[path.name] = (hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_mtime_ns, stat.st_size,
                             stat.st_mode)
    return result


def test_inputs_are_never_modified(tmp_path, capsys):
    from engine.cli import main as cli_main

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    write_image(inputs / "photo.png", make_image(rng.random((24, 20, 3), dtype=np.float32),
                                                 rng.random((24, 20), dtype=np.float32), ImageMeta(bit_depth=16)))
    write_image(inputs / "scan.tif", make_image(rng.random((16, 16, 1), dtype=np.float32), None,
                                                ImageMeta(bit_depth=8, gray=True)))
    hdr = ImageMeta(format="exr", bit_depth=32, hdr=True, color_space="linear")
    write_image(inputs / "render.exr", make_image(rng.random((16, 16, 3), dtype=np.float32) * 4, None, hdr))
    write_image(inputs / "render_albedo.exr", make_image(rng.random((16, 16, 3), dtype=np.float32), None, hdr))
    before = _fingerprints(inputs)
    time.sleep(0.01)  # a rewrite would change the nanosecond mtime

    models = tmp_path / "models"
    install(models, "tiny-denoise", build={"layers": 2})
    registry = ModelRegistry([(models, "bundled")])
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    for name in ("photo.png", "scan.tif", "render.exr"):
        image = read_image(inputs / name)
        result = run_job(restore_job(image, registry.get("tiny-denoise"))).image
        write_image(outputs / name, result)
        with pytest.raises(ImageWriteError, match="overwrite the input"):
            write_image(inputs / name, result)  # saving over the original needs an explicit choice
        if name == "render.exr":
            with pytest.raises(ImageWriteError, match="overwrite the input"):
                write_image(inputs / "render_albedo.exr", result)  # sidecars are inputs too
    assert cli_main(["restore", str(inputs), "-o", str(tmp_path / "batch"), "--model", "nlm"]) == 0
    assert cli_main(["restore", str(inputs / "photo.png"), "-o", str(inputs / "photo.png"), "--model", "nlm"]) == 1
    assert "overwrite the input" in capsys.readouterr().err
    assert _fingerprints(inputs) == before


def test_every_shipped_model_has_a_matching_sha256():
    registry = ModelRegistry([(ROOT / "resources" / "models", "bundled")], include_classical=False)
    entries = registry.models()
    assert len(entries) >= 5
    for entry in entries:
        assert len(entry.manifest.sha256) == 64, entry.id
        verify_model_file(entry)


def test_damaged_or_unverifiable_models_are_refused(tmp_path):
    folder = tmp_path / "models"
    install(folder, "flipped", build={"layers": 2})
    install(folder, "unsigned", build={"layers": 2})
    manifest = json.loads((folder / "unsigned.json").read_text(encoding="utf-8"))
    del manifest["sha256"]
    (folder / "unsigned.json").write_text(json.dumps(manifest), encoding="utf-8")
    data = bytearray((folder / "flipped.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight
    (folder / "flipped.onnx").write_bytes(bytes(data))
    registry = ModelRegistry([(folder, "bundled")])
    image = make_image(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ModelError, match="fails its checksum"):
        run_job(restore_job(image, registry.get("flipped")))
    with pytest.raises(ModelError, match="no sha256"):
        run_job(restore_job(image, registry.get("unsigned")))


# -- nothing is unpickled ------------------------------------------------------------------------------------------

SOURCE_FOLDERS = ("engine", "gui", "bench", "lab", "scripts")


def _python_files() -> list[Path]:
    files = [ROOT / "main.py"]
    for folder in SOURCE_FOLDERS:
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def test_no_code_path_can_unpickle():
    """torch.load always with weights_only=True, np.load never with allow_pickle=True, no pickle/joblib/dill."""
    problems = []
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call):
                name = _dotted(node.func)
                keywords = {k.arg: k.value for k in node.keywords}
                constant = {k: v.value for k, v in keywords.items() if isinstance(v, ast.Constant)}
                if name == "torch.load" and constant.get("weights_only") is not True:
                    problems.append(f"{where}: torch.load without weights_only=True")
                if name in ("np.load", "numpy.load") and constant.get("allow_pickle", False) is not False:
                    problems.append(f"{where}: np.load with allow_pickle")
                if name in ("pickle.load", "pickle.loads", "pickle.Unpickler", "joblib.load", "dill.load",
                            "torch.jit.load", "cloudpickle.load", "pd.read_pickle"):
                    problems.append(f"{where}: {name}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(m.split(".")[0] in ("pickle", "cPickle", "dill", "joblib", "cloudpickle") for m in modules):
                    problems.append(f"{where}: imports a pickle library")
    assert not problems, "\n".join(problems)


INFERENCE_CHILD = """
import pickle, sys
def refuse(*args, **kwargs):
    raise AssertionError("something tried to unpickle")
pickle.load = pickle.loads = refuse
pickle.Unpickler = refuse
import numpy as np
from engine.image import make_image
from engine.imageio import read_image, write_image
from engine.jobs import run_job
from engine.models.registry import ModelRegistry
from engine.restore import restore_job
from pathlib import Path
folder = Path(sys.argv[2])
registry = ModelRegistry([(folder, "bundled")])
write_image(folder / "in.png", make_image(np.full((16, 16, 3), 0.5, np.float32)))
result = run_job(restore_job(read_image(folder / "in.png"), registry.get("tiny")))
write_image(folder / "out.png", result.image)
print("torch" in sys.modules, "onnxruntime" in sys.modules)
"""


def test_inference_loads_onnx_only_without_torch_or_unpickling(tmp_path):
    install(tmp_path, "tiny", build={"layers": 2})
    completed = subprocess.run([sys.executable, "-c", INFERENCE_CHILD, str(ROOT), str(tmp_path)],
                               capture_output=True, text=True, timeout=120,
                               env={**os.environ, "RESTORATION_STUDIO_HOME": str(tmp_path / "home")})
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "False True"  # ran with ONNX Runtime, never imported torch


def test_a_malicious_checkpoint_is_refused_without_running_its_code(tmp_path):
    torch = pytest.importorskip("torch")
    from engine.training.export import load_weights

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.pt"
    torch.save({"arch": "edsr", "config": {}, "state_dict": {}, "extra": Payload()}, str(evil))
    with pytest.raises(ModelError, match="cannot read weights"):
        load_weights(evil)
    assert not marker.exists()
    honest = tmp_path / "honest.pt"
    torch.save({"arch": "edsr", "config": {"features": 4}, "state_dict": {"w": torch.ones(2)}}, str(honest))
    assert load_weights(honest)["config"] == {"features": 4}
