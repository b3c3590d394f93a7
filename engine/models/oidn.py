"""Intel Open Image Denoise (PyPI ``pyoidn``) as a classical render denoiser in the model picker.

OIDN is a peer, not ours: it is offered when ``pyoidn`` is installed, colour only or with albedo and normal
buffers. The restore job hands it linear HDR already multiplied by the image-wide exposure scale (manifest
``value_transform = "linear"``), so every tile is filtered with ``inputScale = 1`` and all tiles agree (OIDN's
own per-call auto-exposure would differ from tile to tile and leave seams).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import ClassicalEngine
from .manifest import ModelManifest, ParamSpec, TileSpec

QUALITIES = ("high", "balanced", "fast")
#: OIDN's filters reach far (a U-Net over several downsamplings): this much context keeps tiles seamless.
OIDN_OVERLAP = 64

_lock = threading.Lock()
_device: Any = None


def _cpu_device() -> Any:
    """One committed OIDN CPU device per process, created on first use (never at import)."""
    global _device
    import pyoidn

    if _device is None:
        device = pyoidn.Device(pyoidn.OIDN_DEVICE_TYPE_CPU)
        device.commit()
        error = device.get_error()
        if error:
            raise RuntimeError(f"Open Image Denoise: {error}")
        _device = device
    return _device


def oidn_denoise(
    color: np.ndarray,
    albedo: np.ndarray | None = None,
    normal: np.ndarray | None = None,
    *,
    hdr: bool = True,
    input_scale: float = 1.0,
    quality: str = "high",
) -> np.ndarray:
    """Denoise H x W x 3 linear colour (optionally with albedo [0, 1] and normal [-1, 1]) with OIDN's RT filter."""
    import pyoidn

    if (normal is not None) and albedo is None:
        raise ValueError("OIDN takes a normal buffer only together with an albedo buffer")
    color = np.ascontiguousarray(color[:, :, :3], dtype=np.float32)
    output = np.empty_like(color)
    images = [(pyoidn.OIDN_IMAGE_COLOR, color)]
    if albedo is not None:
        images.append((pyoidn.OIDN_IMAGE_ALBEDO, np.ascontiguousarray(np.clip(albedo[:, :, :3], 0, 1), np.float32)))
    if normal is not None:
        images.append((pyoidn.OIDN_IMAGE_NORMAL, np.ascontiguousarray(np.clip(normal[:, :, :3], -1, 1), np.float32)))
    with _lock:
        device = _cpu_device()
        filt = pyoidn.Filter(device, pyoidn.OIDN_FILTER_TYPE_RT)
        try:
            for name, array in images:
                filt.set_image(name, array, pyoidn.OIDN_FORMAT_FLOAT3)
            filt.set_image(pyoidn.OIDN_IMAGE_OUTPUT, output, pyoidn.OIDN_FORMAT_FLOAT3)
            filt.set_bool("hdr", bool(hdr))
            if hdr:
                filt.set_float("inputScale", float(input_scale))
            filt.set_int("quality", {"high": pyoidn.OIDN_QUALITY_HIGH, "balanced": pyoidn.OIDN_QUALITY_BALANCED,
                                     "fast": pyoidn.OIDN_QUALITY_FAST}[quality])
            filt.commit()
            filt.execute()
            error = device.get_error()
            if error:
                raise RuntimeError(f"Open Image Denoise: {error}")
        finally:
            filt.release()
    return output


def _run(with_aovs: bool):
    def run(inputs: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> np.ndarray:
        albedo = inputs.get("albedo") if with_aovs else None
        normal = inputs.get("normal") if with_aovs else None
        return oidn_denoise(inputs["color"], albedo, normal, quality=str(params.get("quality", "high")))

    return run


def oidn_manifest(with_aovs: bool) -> ModelManifest:
    suffix = " + albedo + normal" if with_aovs else ", colour only"
    return ModelManifest(
        id="oidn-aov" if with_aovs else "oidn",
        task="render-denoise",
        name=f"Intel Open Image Denoise{suffix}",
        description="Intel's pretrained render denoiser (pyoidn), for comparison with our networks."
        + (" Uses the render's albedo and normal buffers." if with_aovs else ""),
        engine="classical",
        inputs=("color", "albedo", "normal") if with_aovs else ("color",),
        value_transform="linear",
        params=(ParamSpec("quality", "choice", "high", choices=QUALITIES, label="Quality",
                          help="OIDN filter quality: high, balanced or fast"),),
        tile=TileSpec(alignment=1, overlap=OIDN_OVERLAP, default=0),
        provenance={"method": "Intel Open Image Denoise RT filter via PyPI pyoidn 2.5.1.0", "weights": "Intel's"},
    )


def oidn_engines() -> list[ClassicalEngine]:
    """The two OIDN entries (colour only, with AOVs) for ``BUILTIN_ENGINES``."""
    return [ClassicalEngine(oidn_manifest(aovs), _run(aovs), requires=("pyoidn",)) for aovs in (False, True)]
