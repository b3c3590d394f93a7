"""The packed Bayer mosaic: what a raw denoiser takes, and how any 2x2 CFA pattern is brought to RGGB.

A Bayer mosaic (H x W, one colour per photosite) becomes 4 half-size planes in the order R, G1, G2, B (G1 on the
red rows, G2 on the blue rows): the layout Brooks et al. 2019 and most raw denoisers use. A camera whose pattern
starts elsewhere (BGGR, GRBG, GBRG) is first shifted to start at a red photosite by borrowing one row and / or
column of the same colours from inside the image ("Bayer pattern unification", Liu et al. 2019), so that one
network trained on RGGB serves all four; :func:`unpack` removes what was borrowed.

Values are normalised raw: ``(value - black) / (white - black)``, 0 = black level, 1 = saturation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Offsets (row, column) of the red photosite in each 2x2 pattern, named as LibRaw names them ("RGGB"...).
RED_OFFSET = {"RGGB": (0, 0), "GRBG": (0, 1), "GBRG": (1, 0), "BGGR": (1, 1)}


@dataclass(frozen=True)
class Packing:
    """How a mosaic was packed: the rows / columns borrowed at each side, to be removed when unpacking."""

    top: int
    left: int
    bottom: int
    right: int
    height: int
    width: int


def pack(mosaic: np.ndarray, pattern: str = "RGGB") -> tuple[np.ndarray, Packing]:
    """An H x W Bayer mosaic of ``pattern`` -> (4 x H' x W' float32 planes R, G1, G2, B; the packing)."""
    if pattern not in RED_OFFSET:
        raise ValueError(f"not a 2x2 Bayer pattern: {pattern!r} (known: {', '.join(RED_OFFSET)})")
    mosaic = np.asarray(mosaic, dtype=np.float32)
    if mosaic.ndim != 2 or min(mosaic.shape) < 2:
        raise ValueError(f"expected an H x W mosaic of at least 2 x 2, got shape {mosaic.shape}")
    height, width = mosaic.shape
    top, left = RED_OFFSET[pattern]
    # Borrowed rows and columns repeat the colours they stand for: row 1 has the colours of row -1, etc.
    if top:
        mosaic = np.concatenate([mosaic[1:2], mosaic], axis=0)
    if left:
        mosaic = np.concatenate([mosaic[:, 1:2], mosaic], axis=1)
    bottom, right = mosaic.shape[0] % 2, mosaic.shape[1] % 2
    if bottom:
        mosaic = np.concatenate([mosaic, mosaic[-2:-1]], axis=0)
    if right:
        mosaic = np.concatenate([mosaic, mosaic[:, -2:-1]], axis=1)
    planes = np.stack([mosaic[0::2, 0::2], mosaic[0::2, 1::2], mosaic[1::2, 0::2], mosaic[1::2, 1::2]])
    return np.ascontiguousarray(planes), Packing(top, left, bottom, right, height, width)


def unpack(planes: np.ndarray, packing: Packing) -> np.ndarray:
    """The inverse of :func:`pack`: 4 x H' x W' planes -> the H x W mosaic in the camera's own pattern."""
    _, h, w = planes.shape
    mosaic = np.empty((2 * h, 2 * w), dtype=planes.dtype)
    mosaic[0::2, 0::2], mosaic[0::2, 1::2] = planes[0], planes[1]
    mosaic[1::2, 0::2], mosaic[1::2, 1::2] = planes[2], planes[3]
    mosaic = mosaic[packing.top : 2 * h - packing.bottom, packing.left : 2 * w - packing.right]
    return np.ascontiguousarray(mosaic[: packing.height, : packing.width])


def noise_map(noisy_planes: np.ndarray, shot: float, read: float) -> np.ndarray:
    """Per-photosite noise standard deviation of the Poisson-Gaussian model, ``sqrt(shot * x + read)``, from the
    noisy values themselves (what is known at inference; Brooks et al. 2019 do the same). ``shot`` is the gain of
    the signal-dependent variance and ``read`` the constant variance, both in normalised raw units."""
    signal = np.clip(noisy_planes, 0.0, 1.0)
    return np.sqrt(shot * signal + read).astype(np.float32)
