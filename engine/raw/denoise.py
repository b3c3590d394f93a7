"""Denoising a camera raw file before demosaicing: the restore job of a ``raw-denoise`` model.

    job = restore_job(read_image("photo.dng"), registry.get("raw-denoise-bayer"))   # engine/restore.py hands over

Steps: the file's Bayer mosaic (LibRaw's visible area), normalised per colour by its black levels and white level
-> packed to 4 planes R, G1, G2, B whatever the CFA pattern (mosaic.py) -> its shot / read noise measured on the
mosaic (noise.py) -> the noise map ``sqrt(shot * x + read)`` -> the network over tiles of the planes (engine/
tiling.py, as every model runs) -> unpacked, back to raw units, written into LibRaw's raw buffer -> developed with
the same defaults as viewing (files.py): camera white balance, AHD, sRGB, 16 bit, no auto-brightening.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EngineError
from ..imageio.camera_raw import cfa_pattern, develop, open_raw
from ..jobs import CancelToken, ImageResult, Progress, relay
from .mosaic import Packing, noise_map, pack, unpack
from .noise import NoiseProfile, estimate_noise

#: Packed-plane tile edge when the caller gives none (a 512 x 512 tile is a 1024 x 1024 photosite area).
DEFAULT_TILE = 512


@dataclass
class Mosaic:
    """A raw file's mosaic, normalised (0 black, 1 white) and packed, with what is needed to write it back."""

    planes: np.ndarray
    packing: Packing
    pattern: str
    black: np.ndarray  # per photosite of the visible area (H x W), raw units
    white: float


def read_mosaic(raw: Any, path: str | Path = "") -> Mosaic:
    """The normalised, packed mosaic of an open raw file; EngineError for sensors that are not 2x2 Bayer."""
    pattern = cfa_pattern(raw)
    if pattern is None:
        raise EngineError(f"{Path(path).name or 'this raw file'}: its sensor is not a 2x2 Bayer mosaic (X-Trans, "
                          "Foveon or an already demosaiced DNG); raw denoising needs one: use a photo denoiser")
    visible = raw.raw_image_visible
    colours = raw.raw_colors_visible
    black = np.asarray(raw.black_level_per_channel, np.float32)[colours]
    white = float(raw.white_level)
    mosaic = (visible.astype(np.float32) - black) / np.maximum(white - black, 1.0)
    planes, packing = pack(mosaic, pattern)
    return Mosaic(planes, packing, pattern, black, white)


def write_mosaic(raw: Any, mosaic: Mosaic, planes: np.ndarray) -> None:
    """Put denoised planes back into LibRaw's raw buffer (raw units), so that developing uses them."""
    normalised = unpack(planes, mosaic.packing)
    values = normalised * (mosaic.white - mosaic.black) + mosaic.black
    raw.raw_image_visible[:] = np.clip(np.rint(values), 0, np.iinfo(raw.raw_image_visible.dtype).max)


def measure_noise(path: str | Path) -> tuple[NoiseProfile | None, str | None]:
    """The noise profile measured on a raw file's mosaic (None when it cannot tell), and its CFA pattern."""
    with open_raw(path) as raw:
        if cfa_pattern(raw) is None:
            return None, None
        mosaic = read_mosaic(raw, path)
    return estimate_noise(mosaic.planes), mosaic.pattern


def denoise_planes(planes: np.ndarray, profile: NoiseProfile, run_tile: Any, manifest: Any, *, tile: int | None = None,
                   token: CancelToken | None = None) -> Generator[tuple[int, int], None, np.ndarray]:
    """Run a raw denoiser (``run_tile``: its bound tile function) over packed planes (4 x H x W) with the noise map
    of ``profile``, in tiles; yields (tiles done, total) and returns the denoised 4 x H x W planes."""
    from ..tiling import run_tiled

    sigma = noise_map(planes, profile.shot, profile.read)
    inputs = {"color": planes.transpose(1, 2, 0), "noise_map": sigma.transpose(1, 2, 0)}
    output = yield from run_tiled(inputs, run_tile, scale=1, out_channels=4, tile=int(tile or DEFAULT_TILE),
                                  overlap=manifest.tile.overlap, alignment=manifest.tile.alignment, token=token)
    return np.ascontiguousarray(output.transpose(2, 0, 1))


def raw_restore_job(
    image: Any,
    entry: Any,
    params: Mapping[str, Any] | None = None,
    *,
    tile: int | None = None,
    device: str = "auto",
    token: CancelToken | None = None,
    threads: int = 0,
    worker: int = 0,
) -> Generator[Progress, None, ImageResult]:
    """Denoise the raw file ``image`` was read from with the raw-denoise model ``entry``; the result is that file
    developed from the denoised mosaic, with ``image``'s metadata (EXIF) so that saving keeps it."""
    token = token or CancelToken()
    manifest = entry.manifest
    source = image.meta.path
    if image.meta.format != "raw" or not source:
        raise EngineError(f"{manifest.display_name} denoises camera raw files (DNG, CR2, NEF, ARW...); this image "
                          f"is {image.meta.format.upper()}: use a photo denoiser")
    started = time.perf_counter()
    yield Progress(0.0, "prepare", "Reading the raw mosaic")
    with open_raw(source) as raw:
        mosaic = read_mosaic(raw, source)
        profile = estimate_noise(mosaic.planes)
        if profile is None:
            raise EngineError(f"{Path(source).name}: too small, dark or bright to measure its noise")
        token.raise_if_cancelled()
        yield Progress(0.0, "load model", f"Loading {manifest.display_name}")
        bound = entry.tile_function(dict(params or {}), device, token, session={"threads": threads, "worker": worker})

        def tile_progress(step: tuple[int, int]) -> Progress:
            done, total = step
            return Progress(0.9 * done / max(total, 1), "raw denoise", f"tile {done} of {total}")

        tiles = denoise_planes(mosaic.planes, profile, bound.run, manifest, tile=tile, token=token)
        output = yield from relay(tiles, tile_progress)
        write_mosaic(raw, mosaic, output)
        token.raise_if_cancelled()
        yield Progress(0.9, "develop", "Developing the denoised mosaic")
        developed = develop(raw)
    pixels = developed.astype(np.float32) / np.float32(65535.0)
    seconds = time.perf_counter() - started
    label = f"{manifest.display_name} (shot {profile.shot:.2e}, read {profile.read:.2e})"
    yield Progress(1.0, "done", f"{label} in {seconds:.2f} s")
    return ImageResult(
        image=image.with_pixels(pixels),
        label=label,
        model_id=manifest.id,
        device=bound.device,
        seconds=seconds,
        details={"params": dict(params or {}), "noise": profile.as_dict(), "cfa": mosaic.pattern},
    )
