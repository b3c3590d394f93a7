"""ONNX Runtime sessions: provider choice, the truth about which device runs, and cancellable runs.

``onnxruntime-gpu`` lists the CUDA provider as available even on machines without CUDA and then silently
runs on the CPU. So after creating a session we read ``session.get_providers()`` and report what really
runs, and why it fell back, instead of trusting the request.
"""

from __future__ import annotations

import hashlib
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
_SESSION_CACHE_SIZE = 6


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


@dataclass(frozen=True)
class CudaStatus:
    """What stands between this process and the CUDA provider, found without building a model."""

    #: ONNX Runtime lists the CUDA provider (onnxruntime-gpu lists it even on machines without CUDA).
    listed: bool
    #: The NVIDIA driver library loads.
    driver: bool
    #: Why the provider's own library does not load (a missing CUDA / cuDNN library); "" when it loads or was not
    #: tried.
    library_error: str = ""

    @property
    def usable(self) -> bool:
        return self.listed and self.driver and not self.library_error

    @property
    def reason(self) -> str:
        """Why inference runs on the CPU instead ("" when nothing known stands in the way)."""
        if not self.listed:
            return "this ONNX Runtime build has no CUDA provider; running on the CPU"
        if not self.driver:
            return "CUDA unavailable: no NVIDIA driver found; running on the CPU"
        if self.library_error:
            return f"the CUDA provider failed to load ({self.library_error}); running on the CPU"
        return ""


def cuda_status(ort: Any, check_library: bool = False) -> CudaStatus:
    """ONNX Runtime's provider list plus the driver check; with ``check_library`` also whether the CUDA provider's
    library and the CUDA / cuDNN libraries it needs load (what a session would find, without creating one)."""
    listed = "CUDAExecutionProvider" in ort.get_available_providers()
    driver = listed and nvidia_driver_present()
    error = ""
    if listed and driver:
        _preload_cuda_libraries(ort)
        if check_library:
            error = _cuda_provider_error(str(Path(ort.__file__).parent / "capi"))
    return CudaStatus(listed, driver, error)


@lru_cache(maxsize=2)
def _cuda_provider_error(capi_folder: str) -> str:
    import ctypes

    name = "onnxruntime_providers_cuda.dll" if sys.platform == "win32" else "libonnxruntime_providers_cuda.so"
    path = Path(capi_folder) / name
    if not path.is_file():
        return f"{name} is missing"
    try:
        ctypes.CDLL(str(path))
    except OSError as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else f"{name} does not load"
    return ""


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


def session_options(ort: Any, threads: int = 0) -> Any:
    """The app's ONNX Runtime session options, each chosen by measurement (bench/results/ort_options.md)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the CUDA fallback is reported by us, not as stderr noise
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No memory pattern: it plans one block per input shape after the first run and keeps the arena's chunks
    # as well, so every tiled restore (the same shape again) peaked at twice the first tile's memory
    # (render model, 864 x 1024 tile: 2.3 -> 4.6 GB on the second run; 2.3 GB throughout without it, at the
    # same speed within noise).
    options.enable_mem_pattern = False
    # Threads that wait for work sleep instead of spinning: on a render tile 0.73x the CPU time and 0.79x the wall
    # time with two threads on a busy 2-core machine; spinning only pays on an idle machine with cores to spare.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if not threads:
        # A Ray actor's share of the machine (engine/ray_batch.py sets it per actor process).
        from_env = os.environ.get("RESTORATION_STUDIO_ORT_THREADS", "")
        threads = int(from_env) if from_env.isdigit() else 0
    options.intra_op_num_threads = max(0, int(threads))
    options.inter_op_num_threads = 1  # the graphs are sequential chains: parallel execution is off anyway
    return options


#: Folder under the user cache folder that holds optimised graphs.
GRAPH_CACHE_FOLDER = "onnx-graphs"


def graph_cache_key(sha256: str, ort_version: str, providers: list[str]) -> str:
    """File stem of a model's optimised graph: the model file's digest, the ONNX Runtime version, the providers and
    the CPU (the optimiser picks blocked layouts for the CPU's vector width), so any change makes a new entry."""
    machine = hashlib.sha256(f"{cpu_name()}|{platform.machine()}|{','.join(providers)}".encode()).hexdigest()[:12]
    return f"{sha256[:32]}-ort{ort_version}-{machine}"


def graph_cache_folder() -> Path:
    from .paths import user_cache_dir

    return user_cache_dir() / GRAPH_CACHE_FOLDER


def _digest(path: Path) -> str:
    from .digest import file_sha256

    return file_sha256(path)


def _create_session(ort: Any, path: Path, providers: list[str], threads: int, sha256: str | None) -> tuple[Any, str]:
    """A session for ``path``, from the cached optimised graph when there is a sound one (the CPU provider only).

    Optimising a graph each time costs the render models about 0.6 CPU-s per start. The first session of a model
    file optimises it and saves the result beside a digest of the saved file, both written to temporary names and
    renamed into place, so a crash leaves no half-written entry. A later session loads the saved graph with the
    optimiser off, after checking its digest; an entry that fails the check or does not load is removed and
    rebuilt. Returns the session and what happened: "hit", "stored", "rebuilt" or "off" (no cache: GPU
    provider, or a cache folder that cannot be written).
    """
    options = session_options(ort, threads)
    if providers != ["CPUExecutionProvider"]:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers), "off"
    try:
        folder = graph_cache_folder()
        stem = graph_cache_key(sha256 or _digest(path), ort.__version__, providers)
    except OSError:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers), "off"
    cached, digest_file = folder / f"{stem}.onnx", folder / f"{stem}.sha256"
    outcome = "stored"
    if cached.is_file():
        try:
            if digest_file.read_text(encoding="ascii").strip() != _digest(cached):
                raise ValueError("digest mismatch")
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            return ort.InferenceSession(str(cached), sess_options=options, providers=providers), "hit"
        except Exception:  # damaged, truncated or tampered with: remove it and build it again
            for stale in (cached, digest_file):
                stale.unlink(missing_ok=True)
            options = session_options(ort, threads)
            outcome = "rebuilt"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{stem}.{os.getpid()}.{threading.get_ident()}.tmp.onnx"
        options.optimized_model_filepath = str(temporary)
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except OSError:
        return ort.InferenceSession(str(path), sess_options=session_options(ort, threads), providers=providers), "off"
    try:
        digest_temporary = temporary.with_suffix(".sha256")
        digest_temporary.write_text(_digest(temporary) + "\n", encoding="ascii")
        # The graph first, then its digest: a reader that finds a digest finds the graph it describes.
        os.replace(temporary, cached)
        os.replace(digest_temporary, digest_file)
        # Entries of the same model file for another ONNX Runtime version or CPU are never read again.
        for stale in folder.glob(f"{stem.split('-ort', 1)[0]}-ort*"):
            if not stale.name.startswith(stem + "."):
                stale.unlink(missing_ok=True)
    except OSError:
        outcome = "off"
    finally:
        for leftover in (temporary, temporary.with_suffix(".sha256")):
            leftover.unlink(missing_ok=True)
    return session, outcome


class OnnxModel:
    """One ONNX Runtime session for one model file, with input names read once.

    ``threads``: intra-op threads for this session (0: ONNX Runtime's choice, one per physical core); several
    sessions working at once (:mod:`engine.batch`) each get their share. ``sha256``: the file's digest when the
    caller already knows it (the registry checks it before loading), so the optimised-graph cache need not
    hash the file again.
    """

    def __init__(self, path: Path, device: str = "auto", *, threads: int = 0, sha256: str | None = None) -> None:
        import onnxruntime as ort

        if device not in DEVICES:
            raise EngineError(f"unknown device {device!r} (use auto, cpu or cuda)")
        self.path = Path(path)
        # The CUDA fallback is reported by us (DeviceInfo), not as a page of stderr noise from the default logger.
        ort.set_default_logger_severity(3)
        wants_cuda = device in ("auto", "cuda")
        cuda = cuda_status(ort)
        providers = ["CPUExecutionProvider"]
        if wants_cuda and cuda.listed and cuda.driver:
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        try:
            self.session, self.graph_cache = _create_session(ort, self.path, providers, threads, sha256)
        except Exception as error:
            raise EngineError(f"{self.path.name}: ONNX Runtime cannot load this model ({error})") from None
        active = self.session.get_providers()
        if active and active[0] == "CUDAExecutionProvider":
            self.device = DeviceInfo("cuda", f"CUDA: {_gpu_name()}")
        else:
            reason = ""
            if device == "cuda" or (device == "auto" and cuda.listed):
                reason = cuda.reason or (
                    "the CUDA provider failed to load (CUDA 13 / cuDNN 9 missing); running on the CPU")
            if device == "cuda":
                raise EngineError(f"CUDA was requested but is not usable here: {reason}")
            self.device = DeviceInfo("cpu", cpu_description(), reason)
        self.threads = threads
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

    def release_memory(self, alignment: int = 1) -> None:
        """Hand the memory arena's free chunks back to the system (after an image's last tile): one tiny run with
        arena shrinkage on. The arena otherwise keeps a tile's working set (1 GB for a render model's largest tiles)
        while the result is written; the next image's first tile grows it again."""
        import onnxruntime as ort

        size = 32 + (-32) % max(1, alignment)
        try:
            feeds = {}
            for tensor in self.session.get_inputs():
                channels = tensor.shape[1] if len(tensor.shape) == 4 and isinstance(tensor.shape[1], int) else 3
                shape = (1, 1, 1, 1) if tensor.name == "noise_level" else (1, channels, size, size)
                feeds[tensor.name] = np.zeros(shape, np.float32)
            options = ort.RunOptions()
            options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
            self.session.run(self.output_names, feeds, options)
        except Exception:  # a model with other input needs: its memory stays in the arena, as before
            pass

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


_cache: OrderedDict[tuple[str, float, str, int, int], OnnxModel] = OrderedDict()
_cache_lock = threading.Lock()


def load_onnx_model(
    path: Path, device: str = "auto", *, threads: int = 0, sha256: str | None = None, slot: int = 0
) -> OnnxModel:
    """A cached :class:`OnnxModel` (sessions are expensive to create; a few stay warm). ``slot``: batch workers
    (engine/inflight.py) each ask for their own number, so each runs its own session."""
    path = Path(path)
    key = (str(path.resolve()), path.stat().st_mtime if path.exists() else 0.0, device, threads, slot)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    model = OnnxModel(path, device, threads=threads, sha256=sha256)
    with _cache_lock:
        _cache[key] = model
        while len(_cache) > _SESSION_CACHE_SIZE:
            _cache.popitem(last=False)
    return model


@lru_cache(maxsize=4)
def probe_device(preference: str = "auto") -> DeviceInfo:
    """What an ONNX model would run on with this preference, from ONNX Runtime's provider list, the NVIDIA driver
    and whether the CUDA provider's library loads (no model is built: this runs while the window opens)."""
    import onnxruntime as ort

    cuda = cuda_status(ort, check_library=preference != "cpu")
    if preference != "cpu" and cuda.usable:
        return DeviceInfo("cuda", f"CUDA: {_gpu_name()}")
    reason = cuda.reason if preference == "cuda" or (preference == "auto" and cuda.listed) else ""
    return DeviceInfo("cpu", cpu_description(), reason)


def device_summary(preference: str = "auto") -> str:
    """One line for the status bar and About box: the device really used for inference."""
    return str(probe_device(preference))
