"""The restore job: run one model (ONNX network or classical engine) over an image, tiled, cancellable.

    job = restore_job(image, registry.get("nlm"), {"noise_level": 20}, token=CancelToken())
    result = run_job(job, print)          # an ImageResult; result.image keeps meta, alpha and layers

Steps: check the model suits the image -> convert into the model's value space (one exposure scale shared
by all tiles for HDR) -> tiles with overlap, padded to the model's alignment (each run 1, 4 or 8 times on
rotated / mirrored copies and averaged, when an ensemble is asked for) -> feathered blend -> back to
the image's space -> alpha carried (resized for super-resolution) -> an Image with the input's metadata, so
saving keeps format, bit depth, alpha, HDR range and metadata.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from typing import Any

import numpy as np

from .ensemble import describe, passes
from .errors import DeviceOutOfMemory, EngineError
from .image import Image, luma
from .imageio.hdr import sanitize_hdr
from .jobs import CancelToken, EtaClock, ImageResult, Progress
from .models.entry import ModelEntry
from .models.manifest import ModelManifest
from .models.suggest import suitability_warning
from .oom import is_out_of_memory
from .tiling import run_tiled
from .transforms import auto_exposure_scale, from_model_space, prepare_aov, to_model_space

#: Tile edge used when neither the user nor the manifest gives one.
FALLBACK_TILE = 512
#: Images up to this many pixels run as one tile when the tile size is automatic (0).
WHOLE_IMAGE_LIMIT = 2048 * 2048
#: Share of the available memory that one tile's inference may use.
MEMORY_FRACTION = 0.25
#: The smallest tile edge an out-of-memory retry goes down to (besides the model's overlap needs).
MIN_RETRY_TILE = 64


def available_memory_bytes() -> int:
    """Memory the system can give without swapping (MemAvailable on Linux; a safe guess elsewhere)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 4 << 30


def choose_tile_size(
    image: Image, manifest: ModelManifest, requested: int | None = None, bytes_per_pixel: float | None = None
) -> int:
    """Tile edge in input pixels (0 = the whole image in one tile).

    The user's choice wins, then the manifest's default. When both say 0 ("automatic"), the tile is sized
    to memory: a quarter of the available memory divided by what one pixel costs inside the model
    (``bytes_per_pixel``, e.g. from the widest layer), capped at ``WHOLE_IMAGE_LIMIT`` pixels, so peak memory
    follows the tile, not the image.
    """
    size = manifest.tile.default if requested is None else requested
    if size and size > 0:
        # A tile too small to hold the overlap on both sides cannot be blended: use the smallest sensible one.
        return int(size) if size >= 2 * manifest.tile.overlap + 4 else smallest_tile(manifest)
    pixel_budget = WHOLE_IMAGE_LIMIT
    if bytes_per_pixel:
        pixel_budget = min(pixel_budget, int(available_memory_bytes() * MEMORY_FRACTION / bytes_per_pixel))
    if image.width * image.height * manifest.scale**2 <= pixel_budget:
        return 0
    edge = int(pixel_budget**0.5) // manifest.scale
    alignment = max(1, manifest.tile.alignment)
    return max(edge - edge % alignment, 2 * manifest.tile.overlap + 64)


def smallest_tile(manifest: ModelManifest) -> int:
    """The smallest tile worth using with this model: its overlap on both sides plus a 48-pixel core (tiles near
    ``2 * overlap`` would be almost all overlap, thousands of them), at least ``MIN_RETRY_TILE``, aligned."""
    size = max(MIN_RETRY_TILE, 2 * manifest.tile.overlap + 48)
    return size + (-size) % max(1, manifest.tile.alignment)


def model_inputs(
    image: Image, manifest: ModelManifest, scale_hdr: float, box: tuple[int, int, int, int] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """The model's inputs by role, and how many bad HDR samples (NaN/Inf/negative) were replaced by 0.

    ``box`` (top, bottom, left, right) prepares only that crop, with the image-wide exposure scale and depth
    range, so that its values are those of the whole image's inputs there (the kernel inspector's crops)."""
    top, bottom, left, right = box or (0, image.height, 0, image.width)
    pixels, report = image.pixels[top:bottom, left:right], {}
    if image.meta.hdr:
        pixels, report = sanitize_hdr(pixels)
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
            layer = image.layers[name][top:bottom, left:right]
            if name in ("albedo", "normal") and layer.shape[2] == 1:
                layer = np.repeat(layer, 3, axis=2)
            inputs[name] = prepare_aov(name, layer[:, :, :1] if name == "depth" else layer[:, :, :3], depth_max)
    return inputs, report


def _tile_runner(
    entry: ModelEntry, params: Mapping[str, Any], device: str, token: CancelToken
) -> tuple[Callable[[Mapping[str, np.ndarray]], np.ndarray], str, float | None]:
    """The per-tile function, the device it really runs on, and the model's memory cost per pixel (None when
    unknown): whatever the model is, its entry binds it (:meth:`ModelEntry.tile_function`)."""
    bound = entry.tile_function(params, device, token)
    return bound.run, bound.device, bound.bytes_per_pixel


def _resize_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    import cv2

    height, width = alpha.shape
    resized = cv2.resize(alpha, (width * scale, height * scale), interpolation=cv2.INTER_CUBIC)
    return np.clip(resized, 0.0, 1.0)


def keep_transparent(output: np.ndarray, image: Image) -> None:
    """Fully transparent pixels of a premultiplied HDR image (EXR's convention: Blender's Film > Transparent) keep
    the colour the file had there (normally 0): a denoiser would otherwise spread colour into them. In place."""
    transparent = image.alpha <= 0.0
    if transparent.any() and output.shape[:2] == transparent.shape:
        output[transparent] = image.pixels[transparent][:, : output.shape[2]]


def smaller_tile(tile_size: int, image: Image, manifest: ModelManifest) -> int | None:
    """The next tile edge to try after running out of memory with ``tile_size`` (0 = whole image): half of it,
    kept aligned and large enough for the model's overlap; None when it cannot get smaller."""
    current = tile_size if tile_size > 0 else max(image.width, image.height)
    alignment = max(1, manifest.tile.alignment)
    floor = smallest_tile(manifest)
    half = current // 2
    half -= half % alignment
    candidate = max(half, floor)
    return candidate if candidate < current else None


def _tile_text(tile_size: int) -> str:
    return "the whole image as one tile" if tile_size <= 0 else f"tiles of {tile_size} px"


def _tiled_progress(
    inputs: Mapping[str, np.ndarray],
    run_tile: Callable[[Mapping[str, np.ndarray]], np.ndarray],
    manifest: ModelManifest,
    tile_size: int,
    token: CancelToken,
    stage: str,
    note: str = "",
    ensemble: int = 1,
) -> Generator[Progress, None, np.ndarray]:
    """Run the tiles, yielding one Progress per tile and pass (``note`` appended to each message); returns the
    output."""
    tiles = run_tiled(
        inputs,
        run_tile,
        scale=manifest.scale,
        out_channels=manifest.channels,
        tile=tile_size,
        overlap=manifest.tile.overlap,
        alignment=manifest.tile.alignment,
        ensemble=ensemble,
        token=token,
    )
    clock = EtaClock()
    try:
        while True:
            try:
                done, total = next(tiles)
            except StopIteration as finished:
                return finished.value
            fraction = done / total
            tile_index, tile_count = -(-done // ensemble), total // ensemble
            metrics = {"tile": tile_index, "tiles": tile_count, "tile_size": tile_size}
            text = f"tile {tile_index} of {tile_count}"
            if ensemble > 1:
                metrics["pass"] = (done - 1) % ensemble + 1
                text += f", pass {metrics['pass']} of {ensemble}"
            yield Progress(fraction, stage, text + note, clock.eta(fraction), metrics)
    finally:
        tiles.close()  # a failed attempt frees its output buffer before the next one allocates


def restore_job(
    image: Image,
    entry: ModelEntry,
    params: Mapping[str, Any] | None = None,
    *,
    tile: int | None = None,
    device: str = "auto",
    ensemble: int = 1,
    token: CancelToken | None = None,
) -> Generator[Progress, None, ImageResult]:
    """Restore ``image`` with the model of ``entry``. Yields per-tile progress; returns an ImageResult.

    ``ensemble``: 1, or the mean of 4 / 8 passes on mirrored and rotated copies (engine/ensemble.py): a little
    better, 4 / 8 times the work."""
    token = token or CancelToken()
    try:
        passes(ensemble)
    except ValueError as error:
        raise EngineError(str(error)) from None
    manifest = entry.manifest
    values = manifest.resolve_params(params or {})
    if values.get("prefilter") == "auto":  # OIDN's prefilter follows the render's source (models/oidn.py)
        from .models.oidn import auto_prefilter

        values = {**values, "prefilter": auto_prefilter(image)}
    started = time.perf_counter()
    yield Progress(0.0, "prepare", f"Preparing {manifest.display_name}")

    scale_hdr = auto_exposure_scale(image.pixels) if manifest.hdr and image.meta.hdr else 1.0
    inputs, bad_values = model_inputs(image, manifest, scale_hdr)
    replaced = bad_values.get("nonfinite_count", 0) + bad_values.get("negative_count", 0)
    if replaced:
        yield Progress(0.0, "prepare", f"{replaced} NaN/Inf/negative HDR samples set to 0 before restoring")
    token.raise_if_cancelled()
    # Loading a network (and its GPU provider) can take seconds: the stage is named, so nothing looks stuck.
    yield Progress(0.0, "load model", f"Loading {manifest.display_name}")
    run_tile, device_used, bytes_per_pixel = _tile_runner(entry, values, device, token)

    tile_size = choose_tile_size(image, manifest, tile, bytes_per_pixel)
    stage = manifest.task.replace("-", " ")
    oom_retries: list[int] = []
    while True:
        try:
            # After a retry every tile's message says so: a one-off record could be throttled away by the GUI.
            note = f" ({tile_size} px tiles after running out of memory)" if oom_retries else ""
            output = yield from _tiled_progress(inputs, run_tile, manifest, tile_size, token, stage, note, ensemble)
            break
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            smaller = smaller_tile(tile_size, image, manifest)
            if smaller is None:
                edge = tile_size or max(image.width, image.height)
                raise DeviceOutOfMemory(
                    f"{manifest.display_name}: out of memory even with tiles of {edge} px ({error})"
                ) from None
            oom_retries.append(smaller)
            yield Progress(
                0.0,
                stage,
                f"out of memory with {_tile_text(tile_size)}; retrying with tiles of {smaller} px",
                metrics={"tile_size": smaller, "oom_retries": len(oom_retries)},
            )
            tile_size = smaller

    del inputs, run_tile  # the model-space copy of the image is not needed any more (3 GiB for a 16k render)
    output = from_model_space(output, manifest.value_transform, image.meta.hdr, scale_hdr)
    if not image.meta.hdr:
        np.clip(output, 0.0, 1.0, out=output)  # in place: a copy would cost an image-sized buffer
    if image.meta.gray and output.shape[2] == 3:
        # A colour model drifts the channels of a gray image apart slightly; the result must stay gray.
        output = output.mean(axis=2, keepdims=True)
    alpha = image.alpha
    if alpha is not None and manifest.scale == 1 and image.meta.hdr:
        keep_transparent(output, image)
    if alpha is not None and manifest.scale != 1:
        alpha = _resize_alpha(alpha, manifest.scale)
    # A gray-model result on a colour image stays gray; on a gray-origin image make_image expands it again.
    result_image = image.with_pixels(output, alpha=alpha)
    seconds = time.perf_counter() - started
    label = manifest.display_name
    if "noise_level" in values:
        label += f" σ{values['noise_level']:g}"
    if ensemble > 1:
        label += f" ({describe(ensemble)})"
    yield Progress(1.0, "done", f"{label} in {seconds:.2f} s")
    return ImageResult(
        image=result_image,
        label=label,
        model_id=manifest.id,
        device=device_used,
        seconds=seconds,
        details={
            "params": dict(values),
            "tile": tile_size,
            "exposure_scale": scale_hdr,
            **({"ensemble": ensemble} if ensemble > 1 else {}),
            **({"oom_retries": oom_retries} if oom_retries else {}),
            **bad_values,
        },
    )
