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
