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
from .imageio.hdr import sanitize_hdr, value_report
from .jobs import CancelToken, EtaClock, ImageResult, Progress, relay
from .models.entry import ModelEntry, for_input
from .models.manifest import ModelManifest
from .models.suggest import suitability_warning
from .motion import TEMPORAL_INPUTS
from .oom import is_out_of_memory
from .tiling import plan_axis, run_tiled
from .transforms import auto_exposure_scale, from_model_space, prepare_aov, to_model_space

#: Tile edge used when neither the user nor the manifest gives one.
FALLBACK_TILE = 512
#: Images up to this many pixels run as one tile when the tile size is automatic (0).
WHOLE_IMAGE_LIMIT = 2048 * 2048
#: Share of the available memory that one tile's inference may use...
MEMORY_FRACTION = 0.25
#: ... and at most this much, however much memory is free: past about a megapixel a bigger tile barely gains speed
#: (the overlap's share shrinks slowly), while the whole restore must stay within 2.5 GB for a 4k render with AOVs
#: or a 100 MP photo (bench/huge.py).
TILE_MEMORY_CAP = 1 << 30
#: Bytes per output pixel assumed for a model whose manifest has no measured figure (models exported before the
#: figure existed): above every shipped model's measured figure (the render model with AOVs: 2,903 per pixel;
#: sr-x2: 4,417 per input pixel, 1,104 per output pixel), so such tiles err on the small side.
FALLBACK_BYTES_PER_PIXEL = 4096.0
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


def tile_memory_budget() -> int:
    """Bytes one tile's inference may take: a share of the available memory, capped (see TILE_MEMORY_CAP)."""
    return int(min(available_memory_bytes() * MEMORY_FRACTION, TILE_MEMORY_CAP))


def model_bytes_per_pixel(manifest: ModelManifest) -> float:
    """The manifest's measured memory per input pixel of a tile, or a conservative figure when it has none."""
    return float(manifest.tile.bytes_per_pixel) or FALLBACK_BYTES_PER_PIXEL * manifest.scale**2


def largest_tile(manifest: ModelManifest, bytes_per_pixel: float | None = None, budget: int | None = None) -> int:
    """The largest tile edge whose inference fits ``budget`` bytes (default :func:`tile_memory_budget`), aligned,
    and never below :func:`smallest_tile`; at most the edge of ``WHOLE_IMAGE_LIMIT``."""
    per_pixel = bytes_per_pixel or model_bytes_per_pixel(manifest)
    budget = tile_memory_budget() if budget is None else budget
    pixels = min(WHOLE_IMAGE_LIMIT, max(0.0, budget - manifest.tile.bytes_base) / per_pixel)
    edge = int(pixels**0.5)
    edge -= edge % max(1, manifest.tile.alignment)
    return max(edge, smallest_tile(manifest))


def choose_tile_size(
    image: Image, manifest: ModelManifest, requested: int | None = None, bytes_per_pixel: float | None = None,
    budget: int | None = None,
) -> int:
    """Tile edge in input pixels (0 = the whole image in one tile).

    The user's choice wins. Otherwise the manifest's default, made smaller when its inference would take more
    than the memory budget (a share of the available memory, capped: :func:`tile_memory_budget`) at the model's
    measured ``bytes_per_pixel`` (manifest ``tile.bytes_per_pixel``). When the default is 0 ("automatic") the
    whole image is one tile if it fits the budget, else tiles of the largest edge that does; so peak memory
    follows the tile, not the image.
    """
    if requested is not None and requested > 0:
        # A tile too small to hold the overlap on both sides cannot be blended: use the smallest sensible one.
        return int(requested) if requested >= 2 * manifest.tile.overlap + 4 else smallest_tile(manifest)
    largest = largest_tile(manifest, bytes_per_pixel, budget)
    size = manifest.tile.default if requested is None else 0
    if size and size > 0:
        size = min(int(size), largest)
        return size if size >= 2 * manifest.tile.overlap + 4 else smallest_tile(manifest)
    if image.width <= largest and image.height <= largest:
        return 0
    return largest


def smallest_tile(manifest: ModelManifest) -> int:
    """The smallest tile worth using with this model: its overlap on both sides plus a 48-pixel core (tiles near
    ``2 * overlap`` would be almost all overlap, thousands of them), at least ``MIN_RETRY_TILE``, aligned."""
    size = max(MIN_RETRY_TILE, 2 * manifest.tile.overlap + 48)
    return size + (-size) % max(1, manifest.tile.alignment)


class ModelInput:
    """One model input over the whole image, converted crop by crop as the tiler cuts it: ``input[rows, cols]`` is
    ``convert(source[rows, cols])``. The restore job never holds a model-space copy of the image (a 100 MP photo's
    would be 1.2 GB); converting the overlaps twice costs little beside the network."""

    def __init__(self, source: np.ndarray, convert: Callable[[np.ndarray], np.ndarray], channels: int) -> None:
        self.source = source
        self.convert = convert
        self.shape = (*source.shape[:2], channels)

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.convert(self.source[key])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self.convert(self.source)
        return whole if dtype is None else whole.astype(dtype, copy=False)


def model_inputs(
    image: Image, manifest: ModelManifest, scale_hdr: float, box: tuple[int, int, int, int] | None = None,
    *, lazy: bool = False,
) -> tuple[dict[str, Any], dict[str, int]]:
    """The model's inputs by role, and how many bad HDR samples (NaN/Inf/negative) were replaced by 0.

    ``box`` (top, bottom, left, right) prepares only that crop, with the image-wide exposure scale and depth
    range, so that its values are those of the whole image's inputs there (the kernel inspector's crops).
    ``lazy``: :class:`ModelInput` views that convert each crop when it is cut, instead of arrays."""
    top, bottom, left, right = box or (0, image.height, 0, image.width)
    pixels, report = image.pixels[top:bottom, left:right], {}
    hdr, transform, gray = image.meta.hdr, manifest.value_transform, manifest.channels == 1
    if hdr:
        report = value_report(pixels)
    needs_sanitizing = bool(report.get("nonfinite_count") or report.get("negative_count"))

    def color(crop: np.ndarray) -> np.ndarray:
        if needs_sanitizing:
            crop, _ = sanitize_hdr(crop)
        values = to_model_space(crop, transform, hdr, scale_hdr)
        if gray:
            values = luma(values)[:, :, None]
        return np.asarray(values, dtype=np.float32)

    inputs: dict[str, Any] = {"color": ModelInput(pixels, color, manifest.channels)}
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
            channels = 1 if name == "depth" else 3

            def aov(crop: np.ndarray, name: str = name, channels: int = channels) -> np.ndarray:
                if channels == 3 and crop.shape[2] == 1:
                    crop = np.repeat(crop, 3, axis=2)
                return prepare_aov(name, crop[:, :, :channels], depth_max)

            inputs[name] = ModelInput(layer, aov, channels)
    temporal = [name for name in TEMPORAL_INPUTS if name in manifest.inputs]
    if temporal:
        # Frame t - 1's data (engine/shot.py fills it as layers); a lone image gets the first frame's rule.
        from .motion import temporal_layers

        have = all(name in image.layers for name in TEMPORAL_INPUTS)
        sources = image.layers if have else temporal_layers(image)

        def previous(crop: np.ndarray) -> np.ndarray:
            if hdr:
                crop, _ = sanitize_hdr(crop)
            values = to_model_space(crop, transform, hdr, scale_hdr)
            return np.asarray(luma(values)[:, :, None] if gray else values, dtype=np.float32)

        for name in temporal:
            layer = sources[name][top:bottom, left:right]
            if name == "previous_valid":
                inputs[name] = ModelInput(layer, lambda crop: np.asarray(crop[:, :, :1], np.float32), 1)
            else:
                inputs[name] = ModelInput(layer, previous, manifest.channels)
    if not lazy:
        inputs = {name: np.ascontiguousarray(value[:, :], dtype=np.float32) for name, value in inputs.items()}
    return inputs, report


def _tile_runner(
    entry: ModelEntry, params: Mapping[str, Any], device: str, token: CancelToken, threads: int = 0, worker: int = 0
) -> tuple[Callable[[Mapping[str, np.ndarray]], np.ndarray], str, float | None]:
    """The per-tile function, the device it really runs on, and the model's memory cost per pixel (None for a
    built-in engine): whatever the model is, its entry binds it (:meth:`ModelEntry.tile_function`). ``threads``:
    an ONNX session's intra-op threads, 0 for all cores; ``worker``: whose session (see engine/inflight.py)."""
    bound = entry.tile_function(params, device, token, session={"threads": threads, "worker": worker})
    if bound.bytes_per_pixel is not None:
        return bound.run, bound.device, bound.bytes_per_pixel
    return bound.run, bound.device, model_bytes_per_pixel(entry.manifest) if entry.path is not None else None


def _reusable_buffer(image: Image, manifest: ModelManifest) -> np.ndarray | None:
    """The image's own pixel buffer, writable, when the model's output fits it (scale 1, three channels)."""
    pixels = image.pixels
    if manifest.scale != 1 or manifest.channels != 3 or pixels.dtype != np.float32 or pixels.shape[2] != 3:
        return None
    if not pixels.flags.c_contiguous:
        return None
    buffer = pixels.view()
    try:
        buffer.flags.writeable = True  # Image freezes a view; the array under it is the reader's own
    except ValueError:
        return None
    return buffer


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
    out: np.ndarray | None = None,
    written: list[int] | None = None,
) -> Generator[Progress, None, np.ndarray]:
    """Run the tiles, yielding one Progress per tile and pass (``note`` appended to each message); returns the
    output (in ``out`` when given; ``written[0]`` then counts the tiles done once the first row of tiles was
    moved into it, 0 before)."""
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
        out=out,
    )
    first_row = len(plan_axis(next(iter(inputs.values())).shape[1], tile_size, manifest.tile.overlap)) * ensemble
    clock = EtaClock()

    def progress(step: tuple[int, int]) -> Progress:
        done, total = step
        if out is not None and written is not None and done >= first_row:
            written[0] = done
        fraction = done / total
        tile_index, tile_count = -(-done // ensemble), total // ensemble
        metrics = {"tile": tile_index, "tiles": tile_count, "tile_size": tile_size}
        text = f"tile {tile_index} of {tile_count}"
        if ensemble > 1:
            metrics["pass"] = (done - 1) % ensemble + 1
            text += f", pass {metrics['pass']} of {ensemble}"
        return Progress(fraction, stage, text + note, clock.eta(fraction), metrics)

    # relay closes the tile run however this ends: a failed attempt frees its output buffer before the next allocates
    return (yield from relay(tiles, progress))


def restore_job(
    image: Image,
    entry: ModelEntry,
    params: Mapping[str, Any] | None = None,
    *,
    tile: int | None = None,
    device: str = "auto",
    ensemble: int = 1,
    token: CancelToken | None = None,
    threads: int = 0,
    release_input: bool = False,
    worker: int = 0,
) -> Generator[Progress, None, ImageResult]:
    """Restore ``image`` with the model of ``entry``. Yields per-tile progress; returns an ImageResult.

    ``ensemble``: 1, or the mean of 4 / 8 passes on mirrored and rotated copies (engine/ensemble.py): a little
    better, 4 / 8 times the work. ``threads``: the ONNX session's intra-op threads (0: all cores); ``worker``: a
    batch worker's number, so that each worker runs its own session (engine/inflight.py).
    ``release_input``: the caller will not use ``image`` again (the command line), so the result may be written
    into its pixel buffer (same size and channels): no second image-sized buffer (1.2 GB for a 100 MP photo)."""
    token = token or CancelToken()
    if entry.manifest.task == "raw-denoise":  # the raw file's Bayer mosaic, before demosaicing; one pass (a
        # mirrored or rotated mosaic has another CFA pattern, so there is no self-ensemble)
        from .raw.denoise import raw_restore_job

        return (yield from raw_restore_job(image, entry, params, tile=tile, device=device, token=token,
                                           threads=threads, worker=worker))
    try:
        passes(ensemble)
    except ValueError as error:
        raise EngineError(str(error)) from None
    chosen = for_input(entry, image)  # its weights for clipped input, where it has them and the image is clipped
    clipped_weights, entry = chosen is not entry, chosen
    manifest = entry.manifest
    values = manifest.resolve_params(params or {})
    if values.get("prefilter") == "auto":  # OIDN's prefilter follows the render's source (models/oidn.py)
        from .models.oidn import auto_prefilter

        values = {**values, "prefilter": auto_prefilter(image)}
    started = time.perf_counter()
    yield Progress(0.0, "prepare", f"Preparing {manifest.display_name}")

    scale_hdr = auto_exposure_scale(image.pixels) if manifest.hdr and image.meta.hdr else 1.0
    inputs, bad_values = model_inputs(image, manifest, scale_hdr, lazy=True)
    replaced = bad_values.get("nonfinite_count", 0) + bad_values.get("negative_count", 0)
    if replaced:
        yield Progress(0.0, "prepare", f"{replaced} NaN/Inf/negative HDR samples set to 0 before restoring")
    token.raise_if_cancelled()
    # Loading a network (and its GPU provider) can take seconds: the stage is named, so nothing looks stuck.
    yield Progress(0.0, "load model", f"Loading {manifest.display_name}"
                   + (" (its weights for clipped input: every value of this image is in [0, 1])"
                      if clipped_weights else ""))
    run_tile, device_used, bytes_per_pixel = _tile_runner(entry, values, device, token, threads, worker)
    out = _reusable_buffer(image, manifest) if release_input else None

    tile_size = choose_tile_size(image, manifest, tile, bytes_per_pixel)
    stage = manifest.task.replace("-", " ")
    oom_retries: list[int] = []
    written = [0]  # output rows already moved into ``out``
    while True:
        try:
            # After a retry every tile's message says so: a one-off record could be throttled away by the GUI.
            note = f" ({tile_size} px tiles after running out of memory)" if oom_retries else ""
            output = yield from _tiled_progress(inputs, run_tile, manifest, tile_size, token, stage, note, ensemble,
                                                out, written)
            break
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            if written[0]:
                # Rows of the input were already replaced by results: a retry would read them as input.
                raise DeviceOutOfMemory(f"{manifest.display_name}: out of memory part-way ({error})") from None
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

    del inputs, run_tile
    if manifest.engine == "onnx" and not device_used.startswith("CUDA"):
        from .models.entry import load_network

        # The session stays warm for the next image, without its last tile's working set.
        load_network(entry, device, threads=threads, slot=worker).release_memory(manifest.tile.alignment)
    output = from_model_space(output, manifest.value_transform, image.meta.hdr, scale_hdr, in_place=True)
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
    if clipped_weights:
        label += ", weights for clipped input"
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
