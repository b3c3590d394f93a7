import shutil

import numpy as np
import onnxruntime as ort
import pytest

from engine.errors import EngineError, JobCancelled
from engine.jobs import CancelToken
from engine.runtime import OnnxModel, device_summary, probe_device
from tests.onnx_factory import conv_stack

no_gpu = pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA GPU")


@no_gpu
def test_cpu_fallback_is_reported_not_hidden(tmp_path):
    model = OnnxModel(conv_stack(tmp_path / "m.onnx"), "auto")
    assert model.device.kind == "cpu"
    assert model.session.get_providers()[0] == "CPUExecutionProvider"
    if "CUDAExecutionProvider" in ort.get_available_providers():
        # onnxruntime-gpu lists CUDA even here; we must say that it did not load.
        assert "CUDA" in model.device.fallback_reason
        assert "CUDA" in device_summary("auto")


@no_gpu
def test_explicit_cuda_request_fails_clearly(tmp_path):
    with pytest.raises(EngineError, match="CUDA"):
        OnnxModel(conv_stack(tmp_path / "m.onnx"), "cuda")


def test_cpu_request_has_no_fallback_note(tmp_path):
    assert probe_device("cpu").fallback_reason == ""
    assert probe_device("cpu").description.startswith("CPU (")


def test_cancelled_token_stops_a_run(tmp_path):
    model = OnnxModel(conv_stack(tmp_path / "m.onnx"), "cpu")
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        model.run({"color": np.zeros((1, 3, 8, 8), np.float32)}, token)


def test_unloadable_model_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(EngineError, match="bad.onnx"):
        OnnxModel(bad, "cpu")


def test_cancel_terminates_a_running_inference_call(tmp_path):
    import threading
    import time

    model = OnnxModel(conv_stack(tmp_path / "slow.onnx", layers=8, width=32), "cpu")
    image = np.zeros((1, 3, 768, 768), np.float32)
    started = time.perf_counter()
    model.run({"color": image})
    full = time.perf_counter() - started
    token = CancelToken()
    threading.Timer(0.05, token.cancel).start()
    started = time.perf_counter()
    with pytest.raises(JobCancelled):
        model.run({"color": image}, token)
    assert time.perf_counter() - started < max(0.5, 0.6 * full)


def _graph_files(folder):
    return sorted(p.name for p in folder.glob("*") if not p.name.startswith("."))


def test_optimised_graph_is_cached_per_model_and_reused(tmp_path):
    from engine.runtime import graph_cache_folder

    path = conv_stack(tmp_path / "m.onnx")
    image = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
    first = OnnxModel(path, "cpu")
    assert first.graph_cache == "stored"
    files = _graph_files(graph_cache_folder())
    assert len(files) == 2 and {f.rsplit(".", 1)[1] for f in files} == {"onnx", "sha256"}
    second = OnnxModel(path, "cpu")
    assert second.graph_cache == "hit"
    np.testing.assert_allclose(second.run({"color": image})[0], first.run({"color": image})[0], atol=1e-6)
    # An entry of the same file for another ONNX Runtime version is removed when a new one is stored.
    stale = graph_cache_folder() / (files[0].split("-ort", 1)[0] + "-ort0.0.1-000000000000.onnx")
    stale.write_bytes(b"old")
    for name in files:
        (graph_cache_folder() / name).unlink()
    assert OnnxModel(path, "cpu").graph_cache == "stored"
    assert not stale.exists() and len(_graph_files(graph_cache_folder())) == 2
    # Another model file (other weights) gets its own entry.
    assert OnnxModel(conv_stack(tmp_path / "other.onnx", width=8), "cpu").graph_cache == "stored"
    assert len(_graph_files(graph_cache_folder())) == 4


@pytest.mark.parametrize("damage", ["garbage", "truncated", "digest"])
def test_damaged_cache_entry_is_rebuilt(tmp_path, damage):
    from engine.runtime import graph_cache_folder

    path = conv_stack(tmp_path / "m.onnx")
    image = np.random.default_rng(1).random((1, 3, 16, 16), dtype=np.float32)
    expected = OnnxModel(path, "cpu").run({"color": image})[0]
    graph = next(graph_cache_folder().glob("*.onnx"))
    if damage == "garbage":
        graph.write_bytes(b"\x00not a graph" * 10)
    elif damage == "truncated":
        graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
    else:
        graph.with_suffix(".sha256").write_text("0" * 64, encoding="ascii")
    rebuilt = OnnxModel(path, "cpu")
    assert rebuilt.graph_cache == "rebuilt"
    np.testing.assert_allclose(rebuilt.run({"color": image})[0], expected, atol=1e-6)
    assert OnnxModel(path, "cpu").graph_cache == "hit"  # the rebuilt entry is sound again


def test_graph_cache_key_changes_with_runtime_version_and_providers():
    from engine.runtime import graph_cache_key

    digest = "ab" * 32
    keys = {graph_cache_key(digest, "1.31.1", ["CPUExecutionProvider"]),
            graph_cache_key(digest, "1.32.0", ["CPUExecutionProvider"]),
            graph_cache_key(digest, "1.31.1", ["CUDAExecutionProvider", "CPUExecutionProvider"]),
            graph_cache_key("cd" * 32, "1.31.1", ["CPUExecutionProvider"])}
    assert len(keys) == 4


def test_unwritable_cache_folder_still_gives_a_session(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RESTORATION_STUDIO_HOME", str(blocker))  # the cache folder would be below a file
    model = OnnxModel(conv_stack(tmp_path / "m.onnx"), "cpu")
    assert model.graph_cache == "off"
    assert model.run({"color": np.zeros((1, 3, 8, 8), np.float32)})[0].shape == (1, 3, 8, 8)


def test_sessions_do_not_spin(tmp_path):
    from engine.runtime import session_options

    options = session_options(ort, threads=1)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 1


def test_cuda_status_reasons():
    from engine.runtime import CudaStatus

    assert "no CUDA provider" in CudaStatus(False, False).reason
    assert "driver" in CudaStatus(True, False).reason
    status = CudaStatus(True, True, "libcublasLt.so.13: cannot open shared object file")
    assert not status.usable and "libcublasLt" in status.reason
    assert CudaStatus(True, True).usable and CudaStatus(True, True).reason == ""


def _resident_bytes():
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.mark.skipif(not shutil.os.path.exists("/proc/self/status"), reason="reads /proc")
def test_release_memory_hands_the_tile_working_set_back(tmp_path):
    model = OnnxModel(conv_stack(tmp_path / "m.onnx", layers=6, width=32), "cpu")
    # ONNX Runtime keeps the arena's first region; a small run first makes the big tile's memory later regions.
    model.run({"color": np.zeros((1, 3, 64, 64), np.float32)})
    model.run({"color": np.zeros((1, 3, 768, 768), np.float32)})
    grown = _resident_bytes()
    model.release_memory()
    assert grown - _resident_bytes() > 100 << 20  # a 768 px tile's feature maps: 75 MB each at 32 channels
    assert model.run({"color": np.ones((1, 3, 16, 16), np.float32)})[0].shape == (1, 3, 16, 16)  # still works
