"""The kernel inspector: which filter a kernel-predicting render denoiser applies at one pixel, and how much
the albedo/normal buffers shaped it.

    inspection = inspect_kernel(entry, image, x=120, y=80)
    inspection.kernel            # (S, S) float32, sums to 1: weight of each neighbour of (x, y) in the output
    inspection.kernel_without_aovs   # the same with the AOVs replaced by flat buffers (their mean)
    inspection.aov_influence     # 0 (AOVs changed nothing) .. 1 (disjoint kernels): half the L1 distance

Runs the model's companion ``<id>.kernels.onnx`` (written by engine/training/archs/kpcn/companion.py, named in the
manifest's provenance) on a window around the pixel only, so a click costs milliseconds. The inputs are
prepared as the restore job does (one image-wide exposure scale, log1p, AOV conventions of
engine/transforms.py), so the kernel is the one the restore applies. The kernel acts on the model's log1p
colour; neighbours outside the image are clamped to the edge, as the model pads. A guided model's kernel already
includes its guide terms; "without AOVs" flattens albedo, normal and depth, so their guide terms vanish while the
colour guide stays. A model with a refinement filters the first pass's
result once more with a 5x5 kernel; the inspector shows the two composed (each refinement tap's weight times the
first-pass kernel of that neighbour, 4 px wider): the footprint of both passes. The composition is exact where
the first pass's log-space averages are (nearly) linear, which is where its kernel is smooth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import EngineError
from .image import Image
from .models.manifest import ModelManifest
from .models.registry import ModelEntry, verified_companion
from .restore import model_inputs
from .transforms import auto_exposure_scale


@dataclass(frozen=True)
class KernelInspection:
    x: int
    y: int
    #: (S, S) weights centred on the pixel, summing to 1 (S = 2 * radius + 1).
    kernel: np.ndarray
    #: The kernel predicted with flat albedo/normal/depth (None for a colour-only model).
    kernel_without_aovs: np.ndarray | None
    #: Half the L1 distance between the two kernels: 0 = AOVs irrelevant here, 1 = they decided everything.
    aov_influence: float
    radius: int
    #: 2 when the kernel composes a refinement pass with the first (see the module docstring).
    passes: int = 1


def has_kernels(manifest: ModelManifest) -> bool:
    """True when the model ships a kernel model the inspector can use."""
    return bool(manifest.provenance.get("kernel_model")) and manifest.task == "render-denoise"


def dense_kernel(weights: np.ndarray, layout: list, prefilters: list) -> np.ndarray:
    """Spread K tap weights (signal index, dy, dx; each signal box-prefiltered) onto one dense S x S kernel."""
    reach = max(max(abs(dy), abs(dx)) + prefilters[s] // 2 for s, dy, dx in layout)
    size = 2 * reach + 1
    kernel = np.zeros((size, size), np.float64)
    for weight, (s, dy, dx) in zip(weights, layout, strict=True):
        half = prefilters[s] // 2
        box = prefilters[s] ** 2
        kernel[reach + dy - half : reach + dy + half + 1, reach + dx - half : reach + dx + half + 1] += weight / box
    return kernel.astype(np.float32)


def composed_kernel(weights: np.ndarray, layout: list, prefilters: list, refine_taps: list, y: int,
                    x: int) -> np.ndarray:
    """The footprint of a first pass and its 5x5 refinement at pixel (y, x) of ``weights`` (K + 25, H, W: the
    first pass's K weights, then the refinement's): the sum over refinement taps of their weight times the
    first-pass kernel of that neighbour (clamped to the window's edge, as the model pads), placed at its offset."""
    first = len(layout)
    height, width = weights.shape[1:]
    reach = max(max(abs(dy), abs(dx)) + prefilters[s] // 2 for s, dy, dx in layout)
    outer = reach + max(max(abs(dy), abs(dx)) for dy, dx in refine_taps)
    kernel = np.zeros((2 * outer + 1, 2 * outer + 1), np.float64)
    for weight, (dy, dx) in zip(weights[first:, y, x], refine_taps, strict=True):
        qy, qx = int(np.clip(y + dy, 0, height - 1)), int(np.clip(x + dx, 0, width - 1))
        top, left = outer + qy - y - reach, outer + qx - x - reach
        dense = dense_kernel(weights[:first, qy, qx], layout, prefilters)
        kernel[top : top + 2 * reach + 1, left : left + 2 * reach + 1] += float(weight) * dense
    return kernel.astype(np.float32)


def _window(length: int, centre: int, half: int, align: int) -> tuple[int, int]:
    size = min(length, 2 * half + align)
    size -= size % align
    start = int(np.clip(centre - size // 2, 0, max(0, length - size)))
    return start, start + size


def _feeds(image: Image, manifest: ModelManifest, box: tuple[int, int, int, int], flat_aovs: bool) -> dict:
    """The kernel model's inputs on a crop, prepared exactly as the restore job prepares the whole image's;
    ``flat_aovs`` replaces each AOV by its mean over the crop (the kernel "without the AOVs' say")."""
    scale = auto_exposure_scale(image.pixels) if manifest.hdr and image.meta.hdr else 1.0  # as restore_job
    feeds, _ = model_inputs(image, manifest, scale, box)
    if flat_aovs:
        for name in ("albedo", "normal", "depth"):
            if name in feeds:
                crop = feeds[name]
                feeds[name] = np.broadcast_to(crop.reshape(-1, crop.shape[2]).mean(axis=0), crop.shape)
    return {k: np.ascontiguousarray(v.transpose(2, 0, 1)[None], dtype=np.float32) for k, v in feeds.items()}


def inspect_kernel(entry: ModelEntry, image: Image, x: int, y: int, device: str = "cpu") -> KernelInspection:
    """The kernel the model applies at pixel (x, y) of ``image``, with and without the AOVs' say."""
    from .runtime import load_onnx_model

    manifest = entry.manifest
    if not has_kernels(manifest) or entry.path is None:
        raise EngineError(f"{manifest.display_name} has no kernel model to inspect")
    if not (0 <= x < image.width and 0 <= y < image.height):
        raise EngineError(f"pixel ({x}, {y}) is outside the {image.width} x {image.height} image")
    provenance = manifest.provenance
    # Confined to the model's folder and checked against its sha256, like the model's own file.
    path = verified_companion(entry, provenance["kernel_model"], provenance.get("kernel_model_sha256"))
    layout, prefilters = provenance["kernel_layout"], provenance["kernel_prefilters"]
    align = max(1, manifest.tile.alignment)
    top, bottom = _window(image.height, y, manifest.tile.overlap + 8, align)
    left, right = _window(image.width, x, manifest.tile.overlap + 8, align)
    if (bottom - top) < align or (right - left) < align:
        raise EngineError("the image is too small to inspect")
    model = load_onnx_model(path, device)

    refine_taps = provenance.get("kernel_refine_taps")

    def kernel_at(flat: bool) -> np.ndarray:
        weights = model.run(_feeds(image, manifest, (top, bottom, left, right), flat))[0]
        if refine_taps:
            return composed_kernel(weights[0], layout, prefilters, refine_taps, y - top, x - left)
        return dense_kernel(weights[0, :, y - top, x - left], layout, prefilters)

    kernel = kernel_at(False)
    aov_names = [n for n in manifest.inputs if n in ("albedo", "normal", "depth")]
    without = kernel_at(True) if aov_names else None
    influence = float(0.5 * np.abs(kernel - without).sum()) if without is not None else 0.0
    return KernelInspection(x, y, kernel, without, influence, kernel.shape[0] // 2, 2 if refine_taps else 1)
