"""Classical engines: restoration algorithms without weights, in the same picker as the networks.

Each engine is a manifest (``engine="classical"``) plus a tile function with the same contract as an ONNX
model: it receives the tile's inputs by role, each H x W x C float32 in the manifest's value space, plus
the resolved parameters, and returns (H * scale, W * scale, channels). The restore job tiles and blends
them exactly like networks, so they are interchangeable everywhere (GUI, command line, benchmarks).

To add one: write the function, build a :class:`ClassicalEngine`, append it to ``CLASSICAL_ENGINES``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from ..documents.classical import document_engines
from .manifest import ModelManifest, ParamSpec, TileSpec
from .oidn import oidn_engines

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")

TileInputs = Mapping[str, np.ndarray]
ClassicalFunction = Callable[[TileInputs, Mapping[str, Any]], np.ndarray]


@dataclass(frozen=True)
class ClassicalEngine:
    manifest: ModelManifest
    run: ClassicalFunction
    #: Python modules the engine needs; it is hidden from the picker when one is missing.
    requires: tuple[str, ...] = ()

    def available(self) -> bool:
        return all(importlib.util.find_spec(name) is not None for name in self.requires)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return (np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _nlm_denoise(inputs: TileInputs, params: Mapping[str, Any]) -> np.ndarray:
    """OpenCV non-local means (Buades et al.) on 8-bit data; strength follows the noise level."""
    import cv2

    color = inputs["color"]
    strength = float(params["noise_level"])
    # h ~ 0.6-0.8 sigma is where OpenCV's NLM peaks in PSNR on Gaussian noise (measured on synthetic noise).
    h = max(0.1, 0.7 * strength)
    if color.shape[2] == 1:
        out = cv2.fastNlMeansDenoising(_to_uint8(color[:, :, 0]), None, h, 7, 21)[:, :, None]
    else:
        bgr = cv2.cvtColor(_to_uint8(color), cv2.COLOR_RGB2BGR)
        out = cv2.cvtColor(cv2.fastNlMeansDenoisingColored(bgr, None, h, h, 7, 21), cv2.COLOR_BGR2RGB)
    return out.astype(np.float32) / 255.0


def _resize_function(scale: int, interpolation_name: str) -> ClassicalFunction:
    def run(inputs: TileInputs, params: Mapping[str, Any]) -> np.ndarray:
        import cv2

        color = inputs["color"]
        height, width = color.shape[:2]
        interpolation = getattr(cv2, interpolation_name)
        out = cv2.resize(color, (width * scale, height * scale), interpolation=interpolation)
        return out.reshape(height * scale, width * scale, color.shape[2])

    return run


def _noise_param(default: float) -> ParamSpec:
    return ParamSpec(
        name="noise_level",
        type="float",
        default=default,
        min=0.0,
        max=100.0,
        label="Noise level",
        help="Standard deviation of the noise in 8-bit units (sigma x 255).",
    )


def _resize_engine(scale: int, method: str, interpolation_name: str, overlap: int) -> ClassicalEngine:
    return ClassicalEngine(
        ModelManifest(
            id=f"{method.lower()}-x{scale}",
            task="super-resolution",
            name=f"{method} x{scale} (classical)",
            description=f"{method} interpolation by {scale}x (OpenCV). A baseline to compare networks with.",
            engine="classical",
            scale=scale,
            tile=TileSpec(alignment=1, overlap=overlap, default=1024),
            provenance={"method": f"OpenCV cv2.resize {interpolation_name}"},
        ),
        _resize_function(scale, interpolation_name),
        requires=("cv2",),
    )


CLASSICAL_ENGINES: list[ClassicalEngine] = [
    ClassicalEngine(
        ModelManifest(
            id="nlm",
            task="photo-denoise",
            name="Non-local means (classical)",
            description="OpenCV fast non-local means. Fast, no training; blurs fine texture at high noise.",
            engine="classical",
            params=(_noise_param(15.0),),
            tile=TileSpec(alignment=1, overlap=16, default=1024),
            provenance={"method": "OpenCV fastNlMeansDenoisingColored, template 7, search 21"},
        ),
        _nlm_denoise,
        requires=("cv2",),
    ),
    _resize_engine(2, "Lanczos", "INTER_LANCZOS4", 8),
    _resize_engine(4, "Lanczos", "INTER_LANCZOS4", 8),
    _resize_engine(2, "Bicubic", "INTER_CUBIC", 4),
    _resize_engine(4, "Bicubic", "INTER_CUBIC", 4),
    # Intel Open Image Denoise (render denoising peer), colour only and with AOVs; shown when pyoidn is installed.
    *oidn_engines(),
    *document_engines(),
]


def classical_engine(model_id: str) -> ClassicalEngine:
    for engine in CLASSICAL_ENGINES:
        if engine.manifest.id == model_id:
            return engine
    raise KeyError(model_id)
