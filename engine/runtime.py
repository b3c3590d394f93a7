"""ONNX Runtime sessions: provider choice, the truth about which device runs, and cancellable runs.

``onnxruntime-gpu`` lists the CUDA provider as available even on machines without CUDA and then silently
runs on the CPU. So after creating a session we read ``session.get_providers()`` and report what really
runs, and why it fell back, instead of trusting the request.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DeviceOutOfMemory, EngineError, JobCancelled
from .jobs import CancelToken
from .oom import is_out_of_memory

DEVICES = ("auto", "cpu", "cuda")
_SESSION_CACHE_SIZE = 4


@lru_cache(maxsize=1)
def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def cpu_description() -> str:
    return f"CPU ({cpu_name()}, {os.cpu_count() or 1} threads)"


def _gpu_name() -> str:
    """Best-effort GPU name for the status bar; only called once CUDA really runs."""
    try:
        import subprocess

        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=5
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    return "NVIDIA GPU"


def _preload_cuda_libraries(ort: Any) -> None:
    """Let onnxruntime-gpu find CUDA/cuDNN shipped in pip wheels (e.g. torch's nvidia-* packages)."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except Exception:  # missing libraries: the session then falls back and we report it
            pass


@lru_cache(maxsize=1)
def nvidia_driver_present() -> bool:
    """Whether the NVIDIA driver library loads. Without it, trying the CUDA provider only costs seconds and
    prints pages of errors, so we do not try."""
    import ctypes

    names = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


@dataclass(frozen=True)
class DeviceInfo:
    #: "cuda" or "cpu": what really runs.
    kind: str
    #: Human-readable, e.g. "CUDA: NVIDIA H100" or "CPU (AMD EPYC 9R14, 2 threads)".
    description: str
    #: Why the preferred device was not used ("" when it was).
    fallback_reason: str = ""

    def __str__(self) -> str:
        return self.description + (f" — {self.fallback_reason}" if self.fallback_reason else "")


class OnnxModel:
    """One ONNX Runtime session for one model file, with input names read once."""

    def __init__(self, path: Path, device: str = "auto") -> None:
        import onnxruntime as ort

        if device not in DEVICES:
            raise EngineError(f"unknown device {device!r} (use auto, cpu or cuda)")
        self.path = Path(path)
        # The CUDA fallback is reported by us (DeviceInfo), not as a page of stderr noise from the default logger.
        ort.set_default_logger_severity(3)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # the CUDA fallback is reported by us, not as stderr noise
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No memory pattern: it plans one block per input shape after the first run and keeps the arena's chunks
        # as well, so every tiled restore (the same shape again) peaked at twice the first tile's memory
        # (render model, 864 x 1024 tile: 2.3 -> 4.6 GB on the second run; 2.3 GB throughout without it, at the
        # same speed within noise).
        options.enable_mem_pattern = False
        threads = os.environ.get("RESTORATION_STUDIO_ORT_THREADS")  # set per Ray actor (engine/ray_batch.py)
        if threads and threads.isdigit() and int(threads) > 0:
            options.intra_op_num_threads = int(threads)
        wants_cuda = device in ("auto", "cuda")
        cuda_listed = "CUDAExecutionProvider" in ort.get_available_providers()
        driver = nvidia_driver_present()
        providers = ["CPUExecutionProvider"]
        if wants_cuda and cuda_listed and driver:
            _preload_cuda_libraries(ort)
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as error:
            raise EngineError(f"{self.path.name}: ONNX Runtime cannot load this model ({error})") from None
        active = self.session.get_providers()
        if active and active[0] == "CUDAExecutionProvider":
            self.device = DeviceInfo("cuda", f"CUDA: {_gpu_name()}")
        else:
            reason = ""
            if device == "cuda" or (device == "auto" and cuda_listed):
                if not cuda_listed:
                    reason = "this ONNX Runtime build has no CUDA provider; running on the CPU"
                elif not driver:
                    reason = "CUDA unavailable: no NVIDIA driver found; running on the CPU"
                else:
                    reason = "the CUDA provider failed to load (CUDA 13 / cuDNN 9 missing); running on the CPU"
            if device == "cuda":
                raise EngineError(f"CUDA was requested but is not usable here: {reason}")
            self.device = DeviceInfo("cpu", cpu_description(), reason)
        self.bytes_per_pixel = _bytes_per_pixel(self.path)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run_image(self, tile: Mapping[str, np.ndarray], token: CancelToken | None = None,
                  extra: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The first output for one image: ``tile`` holds H x W x C arrays by input role (fed as 1 x C x H x W
        float32), ``extra`` any inputs fed as they are (``noise_level``); returns H' x W' x C'."""
        feeds = {name: np.ascontiguousarray(array.transpose(2, 0, 1)[None], dtype=np.float32)
                 for name, array in tile.items()}
        feeds.update(extra or {})
        return np.ascontiguousarray(self.run(feeds, token)[0][0].transpose(1, 2, 0))

    def run(self, feeds: Mapping[str, np.ndarray], token: CancelToken | None = None) -> list[np.ndarray]:
        """Run once; a cancel from another thread terminates the call (raises JobCancelled)."""
        import onnxruntime as ort

        missing = [name for name in self.input_names if name not in feeds]
        if missing:
            raise EngineError(f"{self.path.name}: inputs {missing} not provided")
        run_options = ort.RunOptions()
        unregister = None
        if token is not None:
            token.raise_if_cancelled()

            def terminate() -> None:
                run_options.terminate = True

            unregister = token.on_cancel(terminate)
        try:
            return self.session.run(self.output_names, {k: feeds[k] for k in self.input_names}, run_options)
        except Exception as error:
            if token is not None and token.cancelled:
                raise JobCancelled() from None
            if is_out_of_memory(error):
                first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                message = f"{self.path.name}: out of memory on {self.device.kind} ({first_line})"
                raise DeviceOutOfMemory(message) from None
            raise EngineError(f"{self.path.name}: inference failed ({error})") from None
        finally:
            if unregister is not None:
                unregister()


#: Feature maps of the widest layer that ONNX Runtime keeps alive at once (input, output, workspace...),
#: measured generously on conv nets so that automatic tiles do not run out of memory.
_LIVE_TENSORS = 6


def _bytes_per_pixel(path: Path) -> float:
    """Rough memory cost of one input pixel inside the model: widest conv layer x live tensors x float32."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return 64 * _LIVE_TENSORS * 4.0
    widest = 3
    for tensor in model.graph.initializer:
        if len(tensor.dims) == 4:  # conv weights: (out, in, kh, kw)
            widest = max(widest, int(tensor.dims[0]), int(tensor.dims[1]))
    return float(widest * _LIVE_TENSORS * 4)


_cache: OrderedDict[tuple[str, float, str], OnnxModel] = OrderedDict()
_cache_lock = threading.Lock()


def load_onnx_model(path: Path, device: str = "auto") -> OnnxModel:
    """A cached :class:`OnnxModel` (sessions are expensive to create; a few stay warm)."""
    path = Path(path)
    key = (str(path.resolve()), path.stat().st_mtime if path.exists() else 0.0, device)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    model = OnnxModel(path, device)
    with _cache_lock:
        _cache[key] = model
        while len(_cache) > _SESSION_CACHE_SIZE:
            _cache.popitem(last=False)
    return model


@lru_cache(maxsize=4)
def probe_device(preference: str = "auto") -> DeviceInfo:
    """What an ONNX model would really run on with this preference (uses a tiny built-in graph)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "probe.onnx"
        onnx.save(model, str(path))
        try:
            return OnnxModel(path, "auto" if preference == "cuda" else preference).device
        except EngineError as error:
            return DeviceInfo("cpu", cpu_description(), str(error))


def device_summary(preference: str = "auto") -> str:
    """One line for the status bar and About box: the device really used for inference."""
    return str(probe_device(preference))
