"""Tiled inference with feathered blending that equals the untiled result.

Why it equals the untiled result: a tile's output is exact wherever the pixel lies at least ``overlap``
pixels (the model's receptive radius) from a tile edge that is not an image edge. Adjacent tiles overlap by
``2 * overlap + feather`` pixels, and blending weights are zero within ``overlap`` of an inner edge and ramp
linearly over ``feather`` pixels in the middle. The weights of all tiles form a partition of unity (they sum
to exactly 1 everywhere), so each output pixel is a convex combination of exact values — and no image-sized
weight buffer is needed: peak memory beyond the output is one tile's worth.

For models whose receptive field exceeds the declared overlap (e.g. global attention), the feather hides
the small differences instead of leaving a seam.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass

import numpy as np

from .ensemble import apply, passes, undo
from .jobs import CancelToken

#: Pixels over which two tiles cross-fade (beyond the receptive-field overlap on each side).
DEFAULT_FEATHER = 16


@dataclass(frozen=True)
class Span:
    """One tile along one axis: the input range [start, stop) and the blending ramps at its two ends."""

    start: int
    stop: int
    #: Ramp-up interval [a, b) in input coordinates (None at the image start).
    ramp_in: tuple[int, int] | None
    #: Ramp-down interval [a, b) (None at the image end).
    ramp_out: tuple[int, int] | None


def plan_axis(length: int, tile: int, overlap: int, feather: int = DEFAULT_FEATHER) -> list[Span]:
    """Split ``length`` pixels into tiles of at most ``tile`` pixels whose neighbours overlap enough."""
    if tile <= 0 or tile >= length:
        return [Span(0, length, None, None)]
    # Neighbouring ramps must not overlap, which needs an actual stride >= feather; spreading the tiles
    # evenly guarantees a stride >= (tile - 2 * overlap - feather) / 2, hence tile >= 2 * overlap + 3 * feather.
    feather = min(feather, (tile - 2 * overlap) // 3)
    if feather < 1:
        raise ValueError(f"tile size {tile} is too small for an overlap of {overlap} (need > {2 * overlap + 3})")
    stride = tile - (2 * overlap + feather)
    count = math.ceil((length - tile) / stride) + 1
    # The fewest tiles of at most ``tile`` pixels, each as short as that count allows: 1920 px at tile 1024 and
    # overlap 88 is three tiles of 768, not three of 1024 mostly overlapping (the model's work is 25% less).
    shortest = math.ceil((length + (count - 1) * (2 * overlap + feather)) / count)
    if (length - shortest) / (count - 1) >= feather:  # ramps of one tile still apart (always, bar rounding)
        tile = min(tile, shortest)
    starts = [round(i * (length - tile) / (count - 1)) for i in range(count)]
    spans = []
    for index, start in enumerate(starts):
        stop = start + tile
        ramp_in = None
        if index > 0:
            a = start + overlap
            ramp_in = (a, a + feather)
        ramp_out = None
        if index + 1 < len(starts):
            a = starts[index + 1] + overlap
            ramp_out = (a, a + feather)
        spans.append(Span(start, stop, ramp_in, ramp_out))
    return spans


def _ramp(coords: np.ndarray, interval: tuple[int, int], scale: int) -> np.ndarray:
    """Weight rising from 0 to 1 across ``interval`` (input px), evaluated at output-pixel centres."""
    a, b = interval[0] * scale, interval[1] * scale
    return np.clip((coords + 0.5 - a) / max(b - a, 1), 0.0, 1.0).astype(np.float32)


def axis_weights(span: Span, scale: int) -> np.ndarray:
    coords = np.arange(span.start * scale, span.stop * scale, dtype=np.float32)
    weights = np.ones_like(coords)
    if span.ramp_in is not None:
        weights *= _ramp(coords, span.ramp_in, scale)
    if span.ramp_out is not None:
        weights *= 1.0 - _ramp(coords, span.ramp_out, scale)
    return weights


def pad_to_multiple(array: np.ndarray, alignment: int) -> tuple[np.ndarray, int, int]:
    """Reflect-pad H x W x C so both sides are multiples of ``alignment``; returns the pads added."""
    height, width = array.shape[:2]
    pad_h = (-height) % alignment
    pad_w = (-width) % alignment
    if pad_h == 0 and pad_w == 0:
        return array, 0, 0
    mode = "reflect" if height > pad_h and width > pad_w else "edge"
    return np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode), pad_h, pad_w


TileFunction = Callable[[Mapping[str, np.ndarray]], np.ndarray]


def run_tiled(
    inputs: Mapping[str, np.ndarray],
    run_tile: TileFunction,
    *,
    scale: int = 1,
    out_channels: int = 3,
    tile: int = 512,
    overlap: int = 16,
    alignment: int = 1,
    feather: int = DEFAULT_FEATHER,
    ensemble: int = 1,
    token: CancelToken | None = None,
    out: np.ndarray | None = None,
) -> Generator[tuple[int, int], None, np.ndarray]:
    """Run ``run_tile`` over tiles of the spatial ``inputs`` (each H x W x C) and blend the outputs.

    ``run_tile`` receives the tile of every input (padded to ``alignment``) and returns
    (h * scale, w * scale, out_channels). ``ensemble``: 1, or 4 / 8 passes per tile on rotated and mirrored
    copies, averaged (engine/ensemble.py). Yields (passes done, passes total); returns the blended output.

    An input is anything with ``shape`` and 2-D slicing that gives an H x W x C array (the restore job passes
    views that convert each crop into the model's value space when it is cut, instead of image-sized copies).
    Tiles are blended in a band one row of tiles high; the rows no later tile reaches are then copied into
    ``out`` (allocated when None). So ``out`` may be an input's own buffer (scale 1, same channels): each row is
    overwritten only after the last tile that reads it has run, and the restore needs no second image-sized
    buffer.
    """
    symmetries = passes(ensemble)
    first = next(iter(inputs.values()))
    height, width = first.shape[:2]
    rows = plan_axis(height, tile, overlap, feather)
    cols = plan_axis(width, tile, overlap, feather)
    total = len(rows) * len(cols) * len(symmetries)
    output = out if out is not None else np.empty((height * scale, width * scale, out_channels), dtype=np.float32)
    if output.shape != (height * scale, width * scale, out_channels):
        raise ValueError(f"out has shape {output.shape}, expected {(height * scale, width * scale, out_channels)}")
    done = 0
    # The band being blended: output rows from input row ``band_start`` on (what earlier tiles left for later ones
    # to finish, then this row of tiles).
    band_start = 0
    band = np.zeros((0, width * scale, out_channels), dtype=np.float32)
    for row_index, row in enumerate(rows):
        grown = np.zeros(((row.stop - band_start) * scale, width * scale, out_channels), dtype=np.float32)
        grown[: band.shape[0]] = band
        band = grown
        weight_y = axis_weights(row, scale)[:, None, None]
        for col in cols:
            crops = {}
            pads = (0, 0)
            for name, array in inputs.items():
                crop = array[row.start : row.stop, col.start : col.stop]
                crop, pad_h, pad_w = pad_to_multiple(crop, alignment)
                crops[name] = crop
                pads = (pad_h, pad_w)
            expected = ((crop.shape[0]) * scale, (crop.shape[1]) * scale)
            weight = axis_weights(col, scale)[None, :, None] * weight_y / len(symmetries)
            target = band[(row.start - band_start) * scale : (row.stop - band_start) * scale,
                          col.start * scale : col.stop * scale]
            for index, symmetry in enumerate(symmetries):
                if token is not None:
                    token.raise_if_cancelled()
                # Turned copies are made contiguous: classical engines (OpenCV, OIDN) take no negative strides.
                turned = crops if index == 0 else {name: np.ascontiguousarray(apply(symmetry, crop))
                                                   for name, crop in crops.items()}
                result = undo(symmetry, run_tile(turned))
                if result.shape[:2] != expected:
                    raise ValueError(f"tile output {result.shape[:2]} does not match the expected {expected}")
                result = result[: result.shape[0] - pads[0] * scale, : result.shape[1] - pads[1] * scale]
                target += result * weight
                done += 1
                yield done, total
            del crops, turned, target
        # Rows above the next row of tiles are final, and no later tile reads them: move them out of the band.
        final = rows[row_index + 1].start if row_index + 1 < len(rows) else height
        output[band_start * scale : final * scale] = band[: (final - band_start) * scale]
        band = band[(final - band_start) * scale :]
        band_start = final
    return output
