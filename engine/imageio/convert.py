"""Sample conversions between file integers and the engine's float32 convention, done in row chunks.

Chunking keeps a 40-megapixel conversion to the input and output arrays plus a few MB of temporaries, instead of
several float copies of the whole image.
"""

from __future__ import annotations

import numpy as np

from ..display import srgb_decode, srgb_encode

_CHUNK_PIXELS = 1 << 18


def rows_per_chunk(width: int) -> int:
    """Rows of a ``width``-pixel image that make one conversion chunk."""
    return max(1, _CHUNK_PIXELS // max(1, width))


def channels_equal(pixels: np.ndarray) -> bool:
    """True when R, G and B are identical everywhere (a gray image that a restoration kept gray)."""
    rows = rows_per_chunk(pixels.shape[1])
    for top in range(0, pixels.shape[0], rows):
        part = pixels[top : top + rows]
        if not (np.array_equal(part[:, :, 0], part[:, :, 1]) and np.array_equal(part[:, :, 0], part[:, :, 2])):
            return False
    return True


def max_value(dtype: np.dtype) -> float:
    """Full-scale value of an integer sample type (255, 65535, ...), 1.0 for floats."""
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0


def to_float(samples: np.ndarray, channels: list[int] | None = None, *, out_channels: int | None = None) -> np.ndarray:
    """File samples (H x W [x C]) -> float32 H x W x K in [0, 1] for integers (floats are copied unchanged).

    ``channels`` picks and orders source channels (e.g. ``[2, 1, 0]`` for OpenCV's BGR); a 2-D source is one
    channel, broadcast to ``out_channels`` (3 for gray shown as RGB) when given.
    """
    if samples.ndim == 2:
        view = samples[:, :, None]
    elif channels is not None:
        view = samples[:, :, channels] if not _is_reversed_prefix(channels) else samples[:, :, channels[0] :: -1]
    else:
        view = samples
    count = out_channels or view.shape[2]
    out = np.empty((samples.shape[0], samples.shape[1], count), dtype=np.float32)
    scale = np.float32(max_value(samples.dtype))
    rows = rows_per_chunk(samples.shape[1])
    for top in range(0, samples.shape[0], rows):
        part = view[top : top + rows]
        if scale == 1.0:
            out[top : top + rows] = part
        else:
            np.divide(part, scale, out=out[top : top + rows], dtype=np.float32)
    return out


def _is_reversed_prefix(channels: list[int]) -> bool:
    # [2, 1, 0] can be a strided view instead of a fancy-indexed copy.
    return len(channels) > 1 and channels == list(range(channels[0], -1, -1))


def to_uint(
    pixels: np.ndarray,
    bits: int,
    *,
    encode_srgb: bool = False,
    reverse_channels: bool = False,
) -> np.ndarray:
    """float32 H x W [x C] -> uint8/uint16, clipped to [0, 1] (after sRGB encoding when ``encode_srgb``).

    NaN becomes 0. ``reverse_channels`` writes RGB(A) as BGR(A) for OpenCV encoders.
    """
    dtype = np.uint8 if bits == 8 else np.uint16
    scale = np.float32(255.0 if bits == 8 else 65535.0)
    out = np.empty(pixels.shape, dtype=dtype)
    rows = rows_per_chunk(pixels.shape[1])
    for top in range(0, pixels.shape[0], rows):
        part = np.asarray(pixels[top : top + rows], dtype=np.float32)
        scaled = srgb_encode(part) if encode_srgb else part.copy()
        np.nan_to_num(scaled, copy=False, nan=0.0)
        np.clip(scaled, 0.0, 1.0, out=scaled)
        np.multiply(scaled, scale, out=scaled)
        np.rint(scaled, out=scaled)
        out[top : top + rows] = scaled[:, :, ::-1] if reverse_channels and scaled.ndim == 3 else scaled
    return out


def linearise(pixels: np.ndarray) -> np.ndarray:
    """sRGB-encoded display pixels -> linear float32, in chunks (used when a display image is saved as HDR)."""
    out = np.empty(pixels.shape, dtype=np.float32)
    rows = rows_per_chunk(pixels.shape[1])
    for top in range(0, pixels.shape[0], rows):
        out[top : top + rows] = srgb_decode(pixels[top : top + rows])
    return out
