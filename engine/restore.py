"""The restore job: run one model (ONNX network or classical engine) over an image, tiled, cancellable.

    job = restore_job(image, registry.get("nlm"), {"noise_level": 20}, token=CancelToken())
    result = run_job(job, print)          # an ImageResult; result.image keeps meta, alpha and layers

Steps: check the model suits the image -> convert into the model's value space (one exposure scale shared
by all tiles for HDR) -> tiles with overlap, padded to the model's alignment -> feathered blend -> back to
the image's space -> alpha carried (resized for super-resolution) -> an Image with the input's metadata, so
saving keeps format, bit depth, alpha, HDR range and metadata.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Generator, Mapping

import numpy as np

from .errors import EngineError
from .image import Image, luma
from .jobs import CancelToken, EtaClock, ImageResult, Progress
from .models.manifest import ModelManifest
from .models.registry import ModelEntry, verify_model_file
from .tiling import run_tiled
from .transforms import auto_exposure_scale, from_model_space, prepare_aov, to_model_space

#: Tile edge used when neither the user nor the manifest gives one.
FALLBACK_TILE = 512
#: Images up to this many pixels run as one tile when the tile size is automatic (0).
WHOLE_IMAGE_LIMIT = 1024 * 1024


def choose_tile_size(image: Image, manifest: ModelManifest, requested: int | None = None) -> int:
    """Tile edge in input pixels: the user's choice, else the manifest's, else whole-image up to a limit.

    0 (from the user or manifest) means "automatic": the whole image when it has at most
    ``WHOLE_IMAGE_LIMIT`` pixels, otherwise ``FALLBACK_TILE``, so peak memory follows the tile, not the image.
    """
    size = manifest.tile.default if requested is None else requested
    if size and size > 0:
        return int(size)
    if image.width * image.height <= WHOLE_IMAGE_LIMIT:
        return 0
    return FALLBACK_TILE


def suitability_warning(image: Image, manifest: ModelManifest) -> str | None:
    """A short warning when the image does not suit the model (shown by the GUI, printed by the CLI)."""
    missing = [name for name in ("albedo", "normal", "depth") if name in manifest.inputs and name not in image.layers]
    if missing:
        return (
            f"{manifest.display_name} needs {' and '.join(missing)} buffers, which this image does not have; "
            "choose a colour-only model or load the render's AOVs."
        )
    if manifest.hdr and not image.meta.hdr:
        return (
            f"{manifest.display_name} is made for linear HDR renders; this is a {image.meta.bit_depth}-bit "
            "display image, so results may be poor."
        )
    if not manifest.hdr and image.meta.hdr:
        return (
            f"{manifest.display_name} is made for display-referred images; this HDR image is processed "
            "sRGB-encoded and values above 1.0 may be clipped."
        )
    return None


def _model_inputs(image: Image, manifest: ModelManifest, scale_hdr: float) -> dict[str, np.ndarray]:
    pixels = image.pixels
    if image.meta.hdr:
        pixels = np.nan_to_num(pixels, nan=0.0, posinf=0.0, neginf=0.0)
    color = to_model_space(pixels, manifest.value_transform, image.meta.hdr, scale_hdr)
    if manifest.channels == 1:
        color = luma(color)[:, :, None].astype(np.float32)
    inputs = {"color": np.ascontiguousarray(color, dtype=np.float32)}
    depth_max = None
    if "depth" in image.layers:
        depth = image.layers["depth"]
        finite = depth[np.isfinite(depth)]
        depth_max = float(finite.max()) if finite.size else 1.0
    for name in ("albedo", "normal", "depth"):
        if name in manifest.inputs:
            if name not in image.layers:
                raise EngineError(suitability_warning(image, manifest) or f"missing {name} buffer")
            layer = image.layers[name]
            if name in ("albedo", "normal") and layer.shape[2] == 1:
                layer = np.repeat(layer, 3, axis=2)
            inputs[name] = prepare_aov(name, layer[:, :, :1] if name == "depth" else layer[:, :, :3], depth_max)
    return inputs


def _tile_runner(
    entry: ModelEntry, params: Mapping[str, Any], device: str, token: CancelToken
) -> tuple[Callable[[Mapping[str, np.ndarray]], np.ndarray], str]:
    """The per-tile function for this model and the device description it really runs on."""
    manifest = entry.manifest
    if manifest.engine == "classical":
        from .models.classical import classical_engine
        from .runtime import cpu_description

        engine = classical_engine(manifest.id)
        return (lambda tile: engine.run(tile, params)), cpu_description()

    from .runtime import load_onnx_model

    verify_model_file(entry)
    model = load_onnx_model(entry.path, device)
    extra: dict[str, np.ndarray] = {}
    if "noise_level" in manifest.inputs:
        level = float(params.get("noise_level", 0.0)) / 255.0
        extra["noise_level"] = np.full((1, 1, 1, 1), level, dtype=np.float32)

    def run(tile: Mapping[str, np.ndarray]) -> np.ndarray:
        feeds = {name: np.ascontiguousarray(array.transpose(2, 0, 1)[None]) for name, array in tile.items()}
        feeds.update(extra)
        output = model.run(feeds, token)[0]
        return np.ascontiguousarray(output[0].transpose(1, 2, 0))

    return run, str(model.device)


def _resize_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    import cv2

    height, width = alpha.shape
    resized = cv2.resize(alpha, (width * scale, height * scale), interpolation=cv2.INTER_CUBIC)
    return np.clip(resized, 0.0, 1.0)


def restore_job(
    image: Image,
    entry: ModelEntry,
    params: Mapping[str, Any] | None = None,
    *,
    tile: int | None = None,
    device: str = "auto",
    token: CancelToken | None = None,
) -> Generator[Progress, None, ImageResult]:
    """Restore ``image`` with the model of ``entry``. Yields per-tile progress; returns an ImageResult."""
    token = token or CancelToken()
    manifest = entry.manifest
    values = manifest.resolve_params(params or {})
    started = time.perf_counter()
    yield Progress(0.0, "prepare", f"Preparing {manifest.display_name}")

    scale_hdr = auto_exposure_scale(image.pixels) if manifest.hdr and image.meta.hdr else 1.0
    inputs = _model_inputs(image, manifest, scale_hdr)
    token.raise_if_cancelled()
    run_tile, device_used = _tile_runner(entry, values, device, token)

    tile_size = choose_tile_size(image, manifest, tile)
    tiles = run_tiled(
        inputs,
        run_tile,
        scale=manifest.scale,
        out_channels=manifest.channels,
        tile=tile_size,
        overlap=manifest.tile.overlap,
        alignment=manifest.tile.alignment,
        token=token,
    )
    clock = EtaClock()
    stage = manifest.task.replace("-", " ")
    while True:
        try:
            done, total = next(tiles)
        except StopIteration as finished:
            output = finished.value
            break
        fraction = done / total
        yield Progress(fraction, stage, f"tile {done} of {total}", clock.eta(fraction), {"tile": done, "tiles": total})

    output = from_model_space(output, manifest.value_transform, image.meta.hdr, scale_hdr)
    if not image.meta.hdr:
        output = np.clip(output, 0.0, 1.0)
    alpha = image.alpha
    if alpha is not None and manifest.scale != 1:
        alpha = _resize_alpha(alpha, manifest.scale)
    # A gray-model result on a colour image stays gray; on a gray-origin image make_image expands it again.
    result_image = image.with_pixels(output, alpha=alpha)
    seconds = time.perf_counter() - started
    label = manifest.display_name
    if "noise_level" in values:
        label += f" σ{values['noise_level']:g}"
    yield Progress(1.0, "done", f"{label} in {seconds:.2f} s")
    return ImageResult(
        image=result_image,
        label=label,
        model_id=manifest.id,
        device=device_used,
        seconds=seconds,
        details={"params": dict(values), "tile": tile_size, "exposure_scale": scale_hdr},
    )
