"""Downscaling and upscaling for ZSSR: MATLAB-style bicubic ``imresize`` and user blur kernels.

ZSSR's results (and Set5's LR images) depend on the exact resampler, so the bicubic here reproduces MATLAB's
``imresize``: Keys cubic (a = -0.5), pixel-centre alignment ``x_in = (x_out + 0.5) / s - 0.5``, the kernel
stretched by ``1 / s`` when shrinking (antialiasing), weights normalised per output pixel and symmetric
(mirror) borders. A resize along one axis is a matrix product with an ``out x in`` weight matrix, so the same
matrices serve numpy (evaluation, alpha) and torch (training, on CPU or CUDA) and are cached per shape.

User kernels (``.npy``, ``.png``/image, ``.mat``) downscale as in the reference implementation: correlate with
the kernel, whose centre of mass is shifted onto the centre of each block of ``s`` pixels, then subsample.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EngineError


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * (
        (ax > 1) & (ax <= 2)
    )


@lru_cache(maxsize=256)
def bicubic_matrix(in_len: int, out_len: int, scale: float | None = None) -> np.ndarray:
    """The ``out_len x in_len`` MATLAB-imresize weight matrix (float64) for one axis.

    ``scale`` defaults to ``out_len / in_len``; ZSSR passes the nominal scale factor with a rounded-up output
    length, exactly as the reference does, so that sons and fathers stay aligned.
    """
    if scale is None:
        scale = out_len / in_len
    antialias = scale < 1.0
    width = 4.0 / scale if antialias else 4.0
    out_coords = np.arange(1, out_len + 1, dtype=np.float64)
    match = out_coords / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(match - width / 2.0)
    taps = int(math.ceil(width)) + 2
    fov = left[:, None] + np.arange(taps)[None, :] - 1.0  # 0-based input indices
    dist = match[:, None] - fov - 1.0
    weights = scale * cubic(scale * dist) if antialias else cubic(dist)
    sums = weights.sum(axis=1, keepdims=True)
    sums[sums == 0] = 1.0
    weights = weights / sums
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    idx = mirror[np.mod(fov.astype(np.int64), mirror.shape[0])]
    matrix = np.zeros((out_len, in_len), dtype=np.float64)
    rows = np.repeat(np.arange(out_len), taps)
    np.add.at(matrix, (rows, idx.ravel()), weights.ravel())
    matrix.flags.writeable = False
    return matrix


def scaled_shape(shape: tuple[int, int], scale: tuple[float, float]) -> tuple[int, int]:
    """Output size of a resize by ``scale`` (rounded up, as the reference and MATLAB do)."""
    return (max(1, int(math.ceil(shape[0] * scale[0] - 1e-9))), max(1, int(math.ceil(shape[1] * scale[1] - 1e-9))))


def imresize(
    image: np.ndarray, scale: tuple[float, float] | float | None = None, out_shape: tuple[int, int] | None = None
) -> np.ndarray:
    """MATLAB-style bicubic resize of an H x W (x C) float array."""
    if scale is None and out_shape is None:
        raise ValueError("give scale or out_shape")
    h, w = image.shape[:2]
    if scale is not None and not isinstance(scale, tuple):
        scale = (float(scale), float(scale))
    if out_shape is None:
        out_shape = scaled_shape((h, w), scale)  # type: ignore[arg-type]
    if scale is None:
        scale = (out_shape[0] / h, out_shape[1] / w)
    mh = bicubic_matrix(h, out_shape[0], float(scale[0]))
    mw = bicubic_matrix(w, out_shape[1], float(scale[1]))
    x = np.asarray(image, dtype=np.float64)
    out = np.tensordot(mh, x, axes=(1, 0))  # out_h x W (x C)
    out = np.moveaxis(np.tensordot(mw, out, axes=(1, 1)), 0, 1)
    return out.astype(np.float32)


# ----------------------------------------------------------------------------------------------- kernels


def normalise_kernel(kernel: np.ndarray) -> np.ndarray:
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim == 3:
        kernel = kernel.mean(axis=2)
    if kernel.ndim != 2 or kernel.size < 1 or not np.all(np.isfinite(kernel)):
        raise EngineError(f"a blur kernel must be a finite 2-D array, got shape {kernel.shape}")
    kernel = np.clip(kernel, 0.0, None)
    total = kernel.sum()
    if total <= 0:
        raise EngineError("the blur kernel sums to zero")
    return kernel / total


def load_kernel(path: str | Path) -> np.ndarray:
    """Read a user blur kernel from .npy, .mat (first 2-D numeric variable) or an image file; sums to 1."""
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"{path}: kernel file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            kernel = np.load(path, allow_pickle=False)
        elif suffix == ".mat":
            from scipy.io import loadmat

            data = loadmat(path)
            arrays = [v for k, v in data.items() if not k.startswith("__") and isinstance(v, np.ndarray)]
            arrays = [a for a in arrays if a.dtype.kind in "fiu" and a.ndim == 2]
            if not arrays:
                raise EngineError(f"{path}: no 2-D numeric variable in the .mat file")
            kernel = arrays[0]
        else:
            from PIL import Image as PILImage

            with PILImage.open(path) as handle:
                kernel = np.asarray(handle.convert("F"), dtype=np.float64)
    except EngineError:
        raise
    except Exception as error:  # corrupt files: say so in one line
        raise EngineError(f"{path}: cannot read the kernel ({error})") from error
    return normalise_kernel(kernel)


def shifted_kernel(kernel: np.ndarray, factor: tuple[float, float]) -> tuple[np.ndarray, tuple[int, int]]:
    """Shift ``kernel`` so that subsampling at block starts samples block centres.

    Returns the padded, shifted kernel and the integer origin (row, col) of its nominal centre: output pixel
    ``j`` of a downscale by ``f`` reads ``sum_a k[a] * x[j * f + a - origin]``, whose centre of mass lies at
    ``j * f + (f - 1) / 2`` — the same alignment as bicubic imresize.
    """
    from scipy import ndimage

    kernel = normalise_kernel(kernel)
    com = np.array(ndimage.center_of_mass(kernel))
    target_frac = np.array([((f - 1.0) / 2.0) % 1.0 for f in factor])
    origin = np.round(com - target_frac).astype(int)
    shift = origin + target_frac - com
    pad = int(np.ceil(np.abs(shift).max())) + 1
    padded = np.pad(kernel, pad)
    moved = ndimage.shift(padded, shift, order=1, mode="constant")
    moved = normalise_kernel(moved)
    return moved, (int(origin[0] + pad), int(origin[1] + pad))


def kernel_sample_positions(in_len: int, out_len: int, factor: float) -> np.ndarray:
    base = math.floor((factor - 1.0) / 2.0 + 1e-9)
    pos = np.round(np.arange(out_len) * factor + base).astype(np.int64)
    return np.clip(pos, 0, in_len - 1)


def kernel_downscale(image: np.ndarray, kernel: np.ndarray, factor: tuple[float, float], out_shape: tuple[int, int]):
    """Numpy twin of :meth:`TorchResampler.kernel_down` (used by evaluation and tests)."""
    from scipy import ndimage

    moved, origin = shifted_kernel(kernel, factor)
    x = np.asarray(image, dtype=np.float64)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[:, :, None]
    # scipy's correlate centres the kernel at size // 2; move that to our origin.
    off = (origin[0] - moved.shape[0] // 2, origin[1] - moved.shape[1] // 2)
    out = np.stack(
        [ndimage.correlate(x[:, :, c], moved, mode="reflect", origin=(-off[0], -off[1])) for c in range(x.shape[2])],
        axis=2,
    )
    rows = kernel_sample_positions(x.shape[0], out_shape[0], factor[0])
    cols = kernel_sample_positions(x.shape[1], out_shape[1], factor[1])
    out = out[rows][:, cols]
    return (out[:, :, 0] if squeeze else out).astype(np.float32)


# ------------------------------------------------------------------------------------------------- torch


class TorchResampler:
    """Bicubic imresize and kernel downscaling on N x C x H x W torch tensors, matrices cached per shape."""

    def __init__(self, device: Any, kernel: np.ndarray | None = None) -> None:
        self.device = device
        self.kernel = None if kernel is None else normalise_kernel(kernel)
        self._mats: dict[tuple[int, int, float], Any] = {}
        self._kernels: dict[tuple[float, float], Any] = {}

    def _matrix(self, in_len: int, out_len: int, scale: float):
        import torch

        key = (in_len, out_len, round(scale, 9))
        mat = self._mats.get(key)
        if mat is None:
            mat = torch.from_numpy(np.array(bicubic_matrix(in_len, out_len, scale), dtype=np.float32)).to(self.device)
            if len(self._mats) > 512:
                self._mats.clear()
            self._mats[key] = mat
        return mat

    def resize(self, x, scale: tuple[float, float], out_shape: tuple[int, int] | None = None):
        """Bicubic (MATLAB) resize of an N x C x H x W float tensor."""
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if out_shape is None:
            out_shape = scaled_shape((h, w), scale)
        mh = self._matrix(h, out_shape[0], scale[0])
        mw = self._matrix(w, out_shape[1], scale[1])
        return mh @ x.float() @ mw.T

    def down(self, x, factor: tuple[float, float], out_shape: tuple[int, int] | None = None):
        """Downscale by ``factor`` (> 1) with the user kernel when one is set, else bicubic."""
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if out_shape is None:
            out_shape = scaled_shape((h, w), (1.0 / factor[0], 1.0 / factor[1]))
        if self.kernel is None:
            return self.resize(x, (1.0 / factor[0], 1.0 / factor[1]), out_shape)
        return self.kernel_down(x, factor, out_shape)

    def kernel_down(self, x, factor: tuple[float, float], out_shape: tuple[int, int]):
        import torch
        import torch.nn.functional as F

        key = (round(factor[0], 9), round(factor[1], 9))
        cached = self._kernels.get(key)
        if cached is None:
            moved, origin = shifted_kernel(self.kernel, factor)
            weight = torch.from_numpy(np.ascontiguousarray(moved, dtype=np.float32)).to(self.device)
            cached = (weight, origin)
            self._kernels[key] = cached
        weight, origin = cached
        n, c, h, w = x.shape
        kh, kw = weight.shape
        # scipy-style 'reflect' (symmetric) padding so that the numpy twin and this agree exactly.
        top, left = origin
        bottom, right = kh - 1 - top, kw - 1 - left
        rows = _symmetric_index(h, top, bottom, x.device)
        cols = _symmetric_index(w, left, right, x.device)
        padded = x.float()[:, :, rows][:, :, :, cols]
        out = F.conv2d(padded.reshape(n * c, 1, padded.shape[-2], padded.shape[-1]), weight[None, None])
        out = out.reshape(n, c, h, w)
        rows_s = torch.from_numpy(kernel_sample_positions(h, out_shape[0], factor[0])).to(x.device)
        cols_s = torch.from_numpy(kernel_sample_positions(w, out_shape[1], factor[1])).to(x.device)
        return out[:, :, rows_s][:, :, :, cols_s]


def _symmetric_index(length: int, before: int, after: int, device: Any):
    import torch

    idx = np.arange(-before, length + after)
    period = 2 * length
    idx = np.mod(idx, period)
    idx = np.where(idx >= length, period - 1 - idx, idx)
    return torch.from_numpy(idx.astype(np.int64)).to(device)
