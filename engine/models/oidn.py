"""Intel Open Image Denoise (PyPI ``pyoidn``) as a classical render denoiser in the model picker.

OIDN is a peer, not ours: it is offered when ``pyoidn`` is installed, colour only or with albedo and normal
buffers. The restore job hands it linear HDR already multiplied by the image-wide exposure scale (manifest
``value_transform = "linear"``), so every tile is filtered with ``inputScale = 1`` and all tiles agree (OIDN's
own per-call auto-exposure would differ from tile to tile and leave seams).

With albedo and normal it can run as Blender runs it by default (Cycles' "Accurate" prefilter): the albedo and the
normal are first denoised with OIDN's own filter, then the main filter runs with ``cleanAux``. The "fast" prefilter
hands the auxiliary buffers over as they are and lets the main filter treat them as noisy; "none" treats them as
clean without filtering them (Blender's three choices). The default, "auto", is "accurate" for Blender renders and
"fast" for others (measured: :func:`auto_prefilter`). OIDN's quality presets (high, balanced, fast) are offered.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import ClassicalEngine
from .manifest import ModelManifest, ParamSpec, TileSpec

QUALITIES = ("high", "balanced", "fast")
#: Blender's "Denoising Prefilter" choices: accurate (OIDN denoises albedo and normal first, then cleanAux), fast
#: (auxiliary buffers treated as noisy by the main filter), none (treated as clean, not filtered).
PREFILTERS = ("accurate", "fast", "none")
#: The engine's choices: "auto" is "accurate" for a Blender render, "fast" otherwise (:func:`auto_prefilter`).
PREFILTER_CHOICES = ("auto", *PREFILTERS)
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


def _quality(pyoidn: Any, quality: str) -> int:
    return {"high": pyoidn.OIDN_QUALITY_HIGH, "balanced": pyoidn.OIDN_QUALITY_BALANCED,
            "fast": pyoidn.OIDN_QUALITY_FAST}[quality]


def _execute(device: Any, images: list[tuple[str, np.ndarray]], output: np.ndarray, settings: dict[str, Any]) -> None:
    """One OIDN RT filter run: ``images`` in, ``output`` written, ``settings`` (bool / float / int) set."""
    import pyoidn

    filt = pyoidn.Filter(device, pyoidn.OIDN_FILTER_TYPE_RT)
    try:
        for name, array in images:
            filt.set_image(name, array, pyoidn.OIDN_FORMAT_FLOAT3)
        filt.set_image(pyoidn.OIDN_IMAGE_OUTPUT, output, pyoidn.OIDN_FORMAT_FLOAT3)
        for key, value in settings.items():
            if isinstance(value, bool):
                filt.set_bool(key, value)
            elif isinstance(value, float):
                filt.set_float(key, value)
            else:
                filt.set_int(key, int(value))
        filt.commit()
        filt.execute()
        error = device.get_error()
        if error:
            raise RuntimeError(f"Open Image Denoise: {error}")
    finally:
        filt.release()


def prefilter_aux(name: str, array: np.ndarray, quality: str = "high") -> np.ndarray:
    """The albedo or normal buffer denoised by OIDN's own filter (the first step of Blender's "Accurate" mode)."""
    import pyoidn

    source = np.ascontiguousarray(array[:, :, :3], dtype=np.float32)
    output = np.empty_like(source)
    with _lock:
        _execute(_cpu_device(), [(name, source)], output, {"quality": _quality(pyoidn, quality)})
    return output


def oidn_denoise(
    color: np.ndarray,
    albedo: np.ndarray | None = None,
    normal: np.ndarray | None = None,
    *,
    hdr: bool = True,
    input_scale: float | None = 1.0,
    quality: str = "high",
    prefilter: str = "fast",
) -> np.ndarray:
    """Denoise H x W x 3 linear colour (optionally with albedo [0, 1] and normal [-1, 1]) with OIDN's RT filter.

    ``prefilter`` (with auxiliary buffers): "accurate" denoises them first and runs the main filter with
    ``cleanAux`` (Blender's default, and the ``oidn-aov`` engine's), "fast" gives them as they are (this function's
    default, which callers tuned on it keep: the KPRCAN + OIDN blend), "none" gives them as they are but as clean.
    ``input_scale`` None lets OIDN expose the image itself (as Blender does on whole frames)."""
    import pyoidn

    if (normal is not None) and albedo is None:
        raise ValueError("OIDN takes a normal buffer only together with an albedo buffer")
    if prefilter not in PREFILTERS:
        raise ValueError(f"unknown OIDN prefilter {prefilter!r} (choose from {', '.join(PREFILTERS)})")
    color = np.ascontiguousarray(color[:, :, :3], dtype=np.float32)
    output = np.empty_like(color)
    images = [(pyoidn.OIDN_IMAGE_COLOR, color)]
    aux = []
    if albedo is not None:
        aux.append((pyoidn.OIDN_IMAGE_ALBEDO, np.ascontiguousarray(np.clip(albedo[:, :, :3], 0, 1), np.float32)))
    if normal is not None:
        aux.append((pyoidn.OIDN_IMAGE_NORMAL, np.ascontiguousarray(np.clip(normal[:, :, :3], -1, 1), np.float32)))
    if aux and prefilter == "accurate":
        aux = [(name, prefilter_aux(name, array, quality)) for name, array in aux]
    images += aux
    settings: dict[str, Any] = {"hdr": bool(hdr), "quality": _quality(pyoidn, quality)}
    if hdr and input_scale is not None:
        settings["inputScale"] = float(input_scale)
    if aux and prefilter in ("accurate", "none"):
        settings["cleanAux"] = True
    with _lock:
        _execute(_cpu_device(), images, output, settings)
    return output


def auto_prefilter(image: Any) -> str:
    """What "auto" means for this image: "accurate" when its albedo or normal is a Blender pass (Blender denoises
    them so: on a Cycles render, bench/blender_oidn.py, it takes our relMSE to the 2048-spp reference from 1.52x
    Blender's to 1.05x), else "fast" (on the Cornell box, 1-64 spp, "accurate" was 1.25-1.7x worse than "fast": its
    Mitsuba albedo and normal are nearly clean, and prefiltering only blurs them)."""
    roles = dict(image.meta.extra.get("aov_roles", {}))
    blender = any(str(roles.get(role, {}).get("renderer", "")).startswith("Blender") for role in ("albedo", "normal"))
    return "accurate" if blender else "fast"


def _run(with_aovs: bool):
    def run(inputs: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> np.ndarray:
        albedo = inputs.get("albedo") if with_aovs else None
        normal = inputs.get("normal") if with_aovs else None
        return oidn_denoise(inputs["color"], albedo, normal, quality=str(params.get("quality", "high")),
                            prefilter=_concrete(str(params.get("prefilter", "fast"))))

    return run


def _concrete(prefilter: str) -> str:
    # "auto" is resolved per image by the restore job (auto_prefilter); called without an image it is "fast".
    return "fast" if prefilter == "auto" else prefilter


def oidn_manifest(with_aovs: bool) -> ModelManifest:
    suffix = " + albedo + normal" if with_aovs else ", colour only"
    return ModelManifest(
        id="oidn-aov" if with_aovs else "oidn",
        task="render-denoise",
        name=f"Intel Open Image Denoise{suffix}",
        description="Intel's pretrained render denoiser (pyoidn), for comparison with our networks."
        + (" Uses the render's albedo and normal buffers; on Blender renders prefiltered with cleanAux, as Blender "
           "runs it." if with_aovs else ""),
        engine="classical",
        inputs=("color", "albedo", "normal") if with_aovs else ("color",),
        value_transform="linear",
        params=(ParamSpec("quality", "choice", "high", choices=QUALITIES, label="Quality",
                          help="OIDN filter quality: high, balanced or fast"),)
        + ((ParamSpec("prefilter", "choice", "auto", choices=PREFILTER_CHOICES, label="Prefilter",
                      help="albedo / normal: accurate (denoised first, as Blender does by default), fast (used "
                           "noisy) or none (used as clean); auto: accurate for Blender renders, else fast"),)
           if with_aovs else ()),
        tile=TileSpec(alignment=1, overlap=OIDN_OVERLAP, default=0),
        provenance={"method": "Intel Open Image Denoise RT filter via PyPI pyoidn 2.5.1.0", "weights": "Intel's"},
    )


def oidn_engines() -> list[ClassicalEngine]:
    """The two OIDN entries (colour only, with AOVs) for ``BUILTIN_ENGINES``."""
    return [ClassicalEngine(oidn_manifest(aovs), _run(aovs), requires=("pyoidn",)) for aovs in (False, True)]
