"""The render denoisers' kernel stage run as fused native code on the CPU: the same result as their whole ONNX
graph in a third of the time.

A kernel-predicting render model (engine/training/archs/kpcn) is a small convolutional network that predicts, for
every pixel, 75 kernel logits and a few guide strengths, followed by a kernel stage: each tap's logit loses its
strength-weighted squared distance to the pixel in albedo, normal and colour, a softmax turns the logits into
weights and the weights average the (box-prefiltered) colour around the pixel; a 5x5 refinement does the same once
more on the result. In the ONNX graph the kernel stage is about 3,000 Slice / Sub / Mul / Concat nodes, each a pass
over the whole tile through memory: two thirds of ONNX Runtime's time on a CPU (profiled at 512 px, 2 threads,
against 24% for every convolution together).

Here the network's convolutions still run in ONNX Runtime (``<id>.features.onnx``: the tail's outputs, and
``<id>.refine.onnx``: the refinement's two 3x3 convolutions), and the kernel stage is one C function
(engine/native/guided_kernels.c, built by ``pip install -e .``) that visits each row once with its buffers in
cache, called through ctypes on bands of rows in parallel. The files and the stage's layout are named in the
manifest's ``provenance.pipeline`` (written by the exporter, engine/training/archs/kpcn/companion.py);
``engine.models.entry.load_network`` runs the whole graph instead for a model without them, on a machine where the
extension was not built, or on a CUDA device.
tests/test_kernel_pipeline.py checks that both give the same output.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import EngineError

#: Environment switch: "graph" runs every render model's whole ONNX graph even where the fused stage applies (for
#: benchmarks that compare the two, and as a way out should the native stage misbehave on some machine).
STAGE_ENV = "RESTORATION_STUDIO_KERNEL_STAGE"
#: Rows per band handed to one thread: small enough to share the work evenly, large enough to cost nothing.
BAND_ROWS = 16

_library: Any = None
_library_lock = threading.Lock()


def _load_library() -> Any:
    """The extension's ``guided_kernels`` through ctypes, or None when it was not built."""
    global _library
    with _library_lock:
        if _library is None:
            try:
                from .native import _guided_kernels  # type: ignore[attr-defined]

                function = ctypes.CDLL(_guided_kernels.__file__).guided_kernels
            except (ImportError, OSError, AttributeError):
                _library = False
            else:
                int_p, float_p = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_float)
                i = ctypes.c_int
                function.argtypes = [i, i, i, i, i, i, int_p, i, i, int_p, float_p, i, float_p, float_p, float_p,
                                     ctypes.c_ssize_t, i, float_p, ctypes.c_ssize_t, ctypes.c_float, float_p, float_p]
                function.restype = ctypes.c_int
                _library = function
        return _library or None


def native_available() -> bool:
    """Whether the fused kernel stage was built on this machine (a C compiler at install time)."""
    return _load_library() is not None


_executors: dict[int, ThreadPoolExecutor] = {}


def _executor(threads: int) -> ThreadPoolExecutor:
    with _library_lock:
        if threads not in _executors:
            _executors[threads] = ThreadPoolExecutor(threads, thread_name_prefix="kernel-stage")
        return _executors[threads]


def _pointer(array: np.ndarray, kind: Any) -> Any:
    return array.ctypes.data_as(ctypes.POINTER(kind))


def _planes_in_place(array: np.ndarray) -> np.ndarray:
    """``array`` (S, C, H, W) float32 as it is where each channel's plane is contiguous and the channels follow
    each other (any stride between the S blocks: a slice of channels of a larger array), else a contiguous copy."""
    array = np.asarray(array)
    if array.dtype == np.float32 and array.ndim == 4:
        item = array.itemsize
        _, channels, height, width = array.shape
        if array.strides[1:] == (height * width * item, width * item, item) and array.strides[0] % item == 0:
            return array
    return np.ascontiguousarray(array, dtype=np.float32)


def guided_kernels(logits: np.ndarray, ref_tap: int, strengths: np.ndarray, group: list[int], guides: np.ndarray,
                   centres: np.ndarray, signals: np.ndarray, size: int, dilations: list[int], pad: int,
                   cap: float, threads: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """The fused kernel stage (see engine/native/guided_kernels.c for the formula and layouts): ``logits`` (K, H, W)
    with K = scales x size^2; ``strengths`` (groups x scales, H, W); ``guides`` (scales, Cg, H + 2 pad, W + 2 pad)
    and ``signals`` (scales, Cs, H + 2 pad, W + 2 pad), edge-replicated; ``centres`` (scales, Cg, H, W), or
    (Cg, H, W) when every scale compares with the same values; ``group[c]``: the strength group of guide channel
    c. ``signals`` may be a view of some of the guides' channels (each plane contiguous: no copy is made).
    Returns (Cs, H, W) float32 (in ``out`` when given, a C-contiguous float32 array of that shape)."""
    function = _load_library()
    if function is None:
        raise EngineError("the fused kernel stage is not built on this machine (pip install -e . with a C compiler)")
    scales = len(dilations)
    taps, height, width = logits.shape
    if taps != scales * size * size or pad < max(dilations) * (size // 2):
        raise ValueError("kernel stage: logits or padding do not match the kernel layout")
    arrays = [np.ascontiguousarray(a, dtype=np.float32) for a in (logits, strengths, guides, centres)]
    logits, strengths, guides, centres = arrays
    signals = _planes_in_place(signals)
    guide_channels, signal_channels = guides.shape[1], signals.shape[1]
    shared_centre = centres.ndim == 3
    expected = {"guides": (guides.shape, (scales, guide_channels, height + 2 * pad, width + 2 * pad)),
                "centres": (centres.shape, ((guide_channels, height, width) if shared_centre
                                            else (scales, guide_channels, height, width))),
                "signals": (signals.shape, (scales, signal_channels, height + 2 * pad, width + 2 * pad)),
                "strengths": (strengths.shape, ((max(group) + 1) * scales, height, width))}
    for name, (got, want) in expected.items():
        if tuple(got) != want:
            raise ValueError(f"kernel stage: {name} has shape {tuple(got)}, expected {want}")
    out = np.empty((signal_channels, height, width), np.float32) if out is None else out
    dilation_array = (ctypes.c_int * scales)(*dilations)
    group_array = (ctypes.c_int * guide_channels)(*group)
    f = ctypes.c_float
    centre_stride = 0 if shared_centre else guide_channels * height * width
    signal_stride = signals.strides[0] // signals.itemsize
    pointers = [_pointer(a, f) for a in (logits, strengths, guides, centres, signals, out)]

    def band(y0: int) -> None:
        scratch = np.empty((2 + signal_channels) * width, np.float32)
        status = function(height, width, y0, min(height, y0 + BAND_ROWS), scales, size, dilation_array, pad,
                          guide_channels, group_array, pointers[0], ref_tap, pointers[1], pointers[2], pointers[3],
                          centre_stride, signal_channels, pointers[4], signal_stride, cap, pointers[5],
                          _pointer(scratch, f))
        if status != 0:
            raise ValueError("kernel stage: too many channels for the native stage")

    starts = range(0, height, BAND_ROWS)
    threads = threads if threads > 0 else max(1, os.cpu_count() or 1)
    if threads == 1 or len(starts) == 1:
        for y0 in starts:
            band(y0)
    else:  # ctypes releases the GIL for the call: the bands run in parallel
        list(_executor(threads).map(band, starts))
    return out


def _buffer(buffers: dict | None, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A float32 array of ``shape``, kept in ``buffers`` for the next tile of the same size: a fresh 100 MB array
    per tile costs its page faults again (0.07-0.5 s against 0.05 s reused, at 1,024 px)."""
    if buffers is None:
        return np.empty(shape, np.float32)
    key = (name, shape)
    if key not in buffers:
        for old in [k for k in buffers if k[0] == name]:  # one size per name: a new tile size replaces it
            del buffers[old]
        buffers[key] = np.empty(shape, np.float32)
    return buffers[key]


def _padded_scales(planes: np.ndarray, sizes: tuple[int, ...], pad: int, out: np.ndarray | None = None
                   ) -> np.ndarray:
    """(len(sizes), C, H + 2 pad, W + 2 pad): the (C, H, W) ``planes`` box-filtered at each size (1: as they are;
    edges replicated, the model's prefilter) and edge-padded by ``pad``, each plane written once in place (OpenCV;
    numpy's pad and stack copied every plane twice more)."""
    import cv2

    channels, height, width = planes.shape
    if out is None:
        out = np.empty((len(sizes), channels, height + 2 * pad, width + 2 * pad), np.float32)
    box = np.empty((height, width), np.float32)
    for scale, size in enumerate(sizes):
        for channel, plane in enumerate(planes):
            source = plane
            if size > 1:
                cv2.boxFilter(plane, -1, (size, size), dst=box, normalize=True, borderType=cv2.BORDER_REPLICATE)
                source = box
            cv2.copyMakeBorder(source, pad, pad, pad, pad, cv2.BORDER_REPLICATE, dst=out[scale, channel])
    return out


@dataclass(frozen=True)
class PipelineLayout:
    """What the kernel stage needs to know of a model (its manifest's ``provenance.pipeline``)."""

    taps: int
    dilations: tuple[int, ...]
    prefilters: tuple[int, ...]
    guide: tuple[str, ...]
    guide_centre: str
    softmax_cap: float
    ref_tap: int
    refine_guides: tuple[str, ...] | None
    refine_taps: int

    @classmethod
    def from_provenance(cls, data: Mapping[str, Any]) -> PipelineLayout:
        try:
            refine = data.get("refine_stage")
            return cls(int(data["taps"]), tuple(int(d) for d in data["dilations"]),
                       tuple(int(p) for p in data["prefilters"]), tuple(str(g) for g in data["guide"]),
                       str(data["guide_centre"]), float(data["softmax_cap"]), int(data["ref_tap"]),
                       tuple(str(g) for g in refine["guides"]) if refine else None,
                       int(refine["taps"]) if refine else 0)
        except (KeyError, TypeError, ValueError) as error:
            raise EngineError(f"the model's kernel-stage layout is incomplete ({error})") from None


def _groups(planes: list[np.ndarray]) -> list[int]:
    """The strength group (the guide) of each channel of the guides ``planes`` (C, H, W) concatenated."""
    return [g for g, array in enumerate(planes) for _ in range(array.shape[0])]


def kernel_stage(layout: PipelineLayout, inputs: Mapping[str, np.ndarray], logits: np.ndarray,
                 strengths: np.ndarray, refine: Any = None, threads: int = 0, buffers: dict | None = None
                 ) -> np.ndarray:
    """The model's output (3, H, W) in log1p space from its inputs by role ((C, H, W) each, ``color`` in log1p)
    and its features graph's outputs: the first kernels' ``logits`` (K, H, W) and guide ``strengths``.
    ``refine(guides)``: the refinement graph on its (C, H, W) guides -> its logits and strengths (required when
    the layout has a refinement). ``buffers``: a dict the caller keeps from tile to tile, for the stage's large
    arrays."""
    color = inputs["color"]
    scales = len(layout.dilations)
    parts = [inputs[name] for name in layout.guide]
    raw = np.concatenate(parts, axis=0)
    channels, height, width = raw.shape
    pad = max(layout.dilations) * (layout.taps // 2)
    padded = (height + 2 * pad, width + 2 * pad)
    guides = _padded_scales(raw, layout.prefilters[:scales], pad, _buffer(buffers, "guides", (scales, channels,
                                                                                             *padded)))
    centres = raw
    if "color" in layout.guide:  # the colour's prefiltered copies are the guides' colour channels (a view)
        at = sum(part.shape[0] for part in parts[: layout.guide.index("color")])
        signals = guides[:, at : at + 3]
        if layout.guide_centre == "box":  # each scale compares with the box mean around the pixel at that scale
            centres = np.repeat(raw[None], scales, axis=0)
            centres[:, at : at + 3] = guides[:, at : at + 3, pad:-pad, pad:-pad]
    else:
        signals = _padded_scales(color, layout.prefilters[:scales], pad,
                                 _buffer(buffers, "signals", (scales, color.shape[0], *padded)))
    filtered = guided_kernels(logits, layout.ref_tap, strengths, _groups(parts), guides, centres, signals,
                              layout.taps, list(layout.dilations), pad, layout.softmax_cap, threads,
                              _buffer(buffers, "filtered", color.shape))
    if not layout.refine_guides:
        return filtered if buffers is None else filtered.copy()
    if refine is None:
        raise EngineError("the model's layout has a refinement but no refinement graph was given")
    refine_parts = [filtered if name == "color" else inputs[name] for name in layout.refine_guides]
    refine_guides = np.concatenate(refine_parts)
    refine_logits, refine_strengths = refine(refine_guides)
    linear = np.expm1(np.maximum(filtered, 0.0))
    pad = layout.refine_taps // 2
    padded = (height + 2 * pad, width + 2 * pad)
    refined = guided_kernels(
        refine_logits, layout.refine_taps**2 // 2, refine_strengths, _groups(refine_parts),
        _padded_scales(refine_guides, (1,), pad, _buffer(buffers, "refine_guides", (1, len(refine_guides), *padded))),
        refine_guides, _padded_scales(linear, (1,), pad, _buffer(buffers, "linear", (1, len(linear), *padded))),
        layout.refine_taps, [1], pad, layout.softmax_cap, threads)
    return np.log1p(np.maximum(refined, 0.0))


class KernelPipelineModel:
    """A render model run as its convolutions in ONNX Runtime plus the fused kernel stage, with the interface of
    :class:`engine.runtime.OnnxModel` that the restore job uses (``run_image``, ``release_memory``, ``device``)."""

    def __init__(self, features: Any, refine: Any, layout: PipelineLayout, roles: tuple[str, ...],
                 threads: int = 0, bytes_per_pixel: float | None = None) -> None:
        self.features, self.refine, self.layout, self.roles = features, refine, layout, roles
        self.device = features.device
        self.threads = threads
        self.path = features.path
        #: Memory per tile pixel, measured at export (engine/training/tile_memory.py): less than the whole graph's,
        #: so the restore job may choose larger tiles. None where not measured.
        self.bytes_per_pixel = bytes_per_pixel
        self._buffers: dict = {}  # the kernel stage's large arrays, reused from tile to tile (one job at a time)

    def run_image(self, tile: Mapping[str, np.ndarray], token: Any = None,
                  extra: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        inputs = {name: np.ascontiguousarray(tile[name].transpose(2, 0, 1), dtype=np.float32) for name in self.roles}
        logits, strengths, rows = (a[0] for a in self.features.run({n: inputs[n][None] for n in self.roles}, token))
        if token is not None:
            token.raise_if_cancelled()

        def refine(guides: np.ndarray) -> list[np.ndarray]:
            return [a[0] for a in self.refine.run({"guides": guides[None], "rows": rows[None]}, token)]

        result = kernel_stage(self.layout, inputs, logits, strengths, refine if self.refine is not None else None,
                              self.threads, self._buffers)
        return np.ascontiguousarray(result.transpose(1, 2, 0))

    def release_memory(self, alignment: int = 1) -> None:
        self._buffers.clear()
        self.features.release_memory(alignment)


def pipeline_files(provenance: Mapping[str, Any]) -> dict[str, Any] | None:
    """The manifest's ``provenance.pipeline`` when it names a features graph, else None."""
    data = provenance.get("pipeline")
    return data if isinstance(data, Mapping) and isinstance(data.get("features"), str) else None
