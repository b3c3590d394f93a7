"""Noise-level estimation for photos, so the app can propose a ``noise_level`` (8-bit units, sigma x 255).

Two classical estimators of additive white Gaussian noise:

- :func:`estimate_sigma_pca` (default): Chen, Zhu & Heng, "An Efficient Statistical Method for Image Noise
  Level Estimation", ICCV 2015. The covariance of image patches has a few large eigenvalues (image structure)
  and many small ones that, for white noise, all equal sigma^2. The noise eigenvalues are the largest tail
  subset whose mean equals its median; sigma is the square root of that mean.
- :func:`estimate_sigma_immerkaer`: Immerkaer, "Fast Noise Variance Estimation", CVIU 1996. One 3x3
  Laplacian-difference filter and a mean absolute value; fast, but texture leaks into it (over-estimates).

Measured on 40 training photographs with synthetic Gaussian noise (``bench``-free data; see
``tests/test_noise_estimate.py`` for the accuracy test), the PCA estimator is far more accurate, so it is
the default of :func:`estimate_noise_level`.

Both work on the engine's pixel convention (float32 H x W x 3 in [0, 1]) or on a gray H x W array. A
gray-origin image (three equal channels) is estimated on one channel: its colour patch covariance would be
rank-deficient and the noise in it is the same in every channel anyway.
"""

from __future__ import annotations

import numpy as np

#: Patch edge of the PCA estimator (the paper uses 7 or 8).
PCA_PATCH = 7
#: At most this many patches enter the covariance (a regular grid of them): keeps big photos fast.
PCA_MAX_PATCHES = 60000


def _channels(pixels: np.ndarray) -> np.ndarray:
    """H x W x C (the input's float precision: a 12-megapixel photo is not copied to float64), with gray-origin
    RGB reduced to one channel."""
    array = np.asarray(pixels)
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ValueError(f"expected H x W or H x W x 1/3 pixels, got shape {array.shape}")
    if array.shape[2] == 3 and np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(
        array[..., 0], array[..., 2]
    ):
        array = array[:, :, :1]
    return array


def _patch_matrix(array: np.ndarray, patch: int, max_patches: int) -> np.ndarray:
    """N x (patch * patch * C) patches on a regular grid with a stride that keeps N <= max_patches."""
    height, width, channels = array.shape
    rows, cols = height - patch + 1, width - patch + 1
    stride = max(1, int(np.ceil(np.sqrt(rows * cols / max_patches))))
    windows = np.lib.stride_tricks.sliding_window_view(array, (patch, patch), axis=(0, 1))
    windows = windows[::stride, ::stride]  # rows' x cols' x C x patch x patch
    return windows.reshape(-1, channels * patch * patch).astype(np.float64)


def estimate_sigma_pca(pixels: np.ndarray, patch: int = PCA_PATCH, max_patches: int = PCA_MAX_PATCHES) -> float:
    """Noise standard deviation in the pixels' own units (Chen et al. 2015)."""
    array = _channels(pixels)
    if min(array.shape[:2]) < patch + 2:
        raise ValueError(f"image too small to estimate noise ({array.shape[1]}x{array.shape[0]})")
    patches = _patch_matrix(array, patch, max_patches)
    patches = patches - patches.mean(axis=0, keepdims=True)
    covariance = patches.T @ patches / patches.shape[0]
    eigenvalues = np.sort(np.clip(np.linalg.eigvalsh(covariance), 0.0, None))  # ascending
    # Grow the tail from the top eigenvalue down: the first subset (largest first) whose mean equals its median
    # is the noise subspace. Scan from the whole set towards smaller tails, as in the paper's algorithm.
    count = eigenvalues.size
    for start in range(count):
        tail = eigenvalues[: count - start]
        mean = float(tail.mean())
        # Equal numbers above and below the mean <=> mean == median for a set of distinct values.
        if int(np.sum(tail > mean)) == int(np.sum(tail < mean)):
            return float(np.sqrt(mean))
    return float(np.sqrt(eigenvalues[0]))


def estimate_sigma_immerkaer(pixels: np.ndarray) -> float:
    """Noise standard deviation in the pixels' own units (Immerkaer 1996), averaged over channels."""
    array = _channels(pixels)
    if min(array.shape[:2]) < 3:
        raise ValueError(f"image too small to estimate noise ({array.shape[1]}x{array.shape[0]})")
    centre = array[1:-1, 1:-1]
    edges = array[:-2, 1:-1] + array[2:, 1:-1] + array[1:-1, :-2] + array[1:-1, 2:]
    corners = array[:-2, :-2] + array[:-2, 2:] + array[2:, :-2] + array[2:, 2:]
    response = 4.0 * centre - 2.0 * edges + corners
    height, width = array.shape[:2]
    total = np.abs(response).sum(axis=(0, 1)) / (6.0 * (width - 2) * (height - 2))
    return float(np.mean(total) * np.sqrt(np.pi / 2.0))


def _clipped_noise_std(levels: np.ndarray, sigma: float) -> float:
    """Standard deviation of ``clip(level + sigma * n, 0, 1)`` around its mean, pooled over ``levels``."""
    z = np.linspace(-4.0, 4.0, 81)
    weights = np.exp(-0.5 * z * z)
    weights /= weights.sum()
    values = np.clip(levels[:, None] + sigma * z[None, :], 0.0, 1.0)
    mean = values @ weights
    variance = (values * values) @ weights - mean * mean
    return float(np.sqrt(max(float(variance.mean()), 0.0)))


def _box_means(array: np.ndarray, kernel: int, count: int) -> np.ndarray:
    """About ``count`` kernel x kernel box means (per channel, float64) on a regular grid of window positions:
    only the sampled windows are summed, so a large photo costs no more than a small one."""
    height, width, channels = array.shape
    rows, cols = height - kernel + 1, width - kernel + 1
    stride = max(1, int(np.ceil(np.sqrt(rows * cols * channels / count))))
    windows = np.lib.stride_tricks.sliding_window_view(array, (kernel, kernel), axis=(0, 1))[::stride, ::stride]
    return windows.astype(np.float64).mean(axis=(-2, -1)).reshape(-1)


def correct_for_clipping(pixels: np.ndarray, sigma_observed: float) -> float:
    """The true sigma of Gaussian noise that was clipped to [0, 1] (as in any 8-bit photo).

    Clipping removes part of the noise near black and white, so estimators see less than was added (about 17%
    less at sigma 75 on ordinary photos). Knowing the local means (a 7x7 box mean, which averages most of the
    noise away), the observed level is a monotone function of the true one; it is inverted by bisection.
    Images with values outside [0, 1] were not clipped and are returned unchanged.
    """
    array = _channels(pixels)
    if sigma_observed <= 0.0 or array.min() < 0.0 or array.max() > 1.0:
        return sigma_observed
    levels = _box_means(array, kernel=7, count=4000)
    low, high = sigma_observed, 3.0 * sigma_observed + 1e-3
    if _clipped_noise_std(levels, low) >= sigma_observed * 0.999:
        return sigma_observed  # clipping did not matter (no saturated regions, low noise)
    for _ in range(30):
        middle = 0.5 * (low + high)
        if _clipped_noise_std(levels, middle) < sigma_observed:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


METHODS = {"pca": estimate_sigma_pca, "immerkaer": estimate_sigma_immerkaer}


def estimate_noise_level(pixels: np.ndarray, method: str = "pca") -> float:
    """Estimated Gaussian noise level of a display-referred image, in 8-bit units (sigma x 255).

    ``pixels``: the engine convention (float32 H x W x 3 in [0, 1]) or gray H x W.
    """
    try:
        estimator = METHODS[method]
    except KeyError:
        raise ValueError(f"unknown noise estimator {method!r} (known: {', '.join(METHODS)})") from None
    return 255.0 * correct_for_clipping(pixels, estimator(pixels))


def noise_level_for(image) -> float | None:
    """The ``noise_level`` the app proposes for an opened image (GUI and CLI alike): its PCA estimate in 8-bit
    units, rounded to 0.1. None for HDR images (the estimator assumes display-referred values in [0, 1]) and
    for images too small to measure."""
    if image.meta.hdr:
        return None
    try:
        return round(estimate_noise_level(image.pixels), 1)
    except ValueError:
        return None


def wants_noise_level(manifest) -> bool:
    """True when a model takes a numeric ``noise_level`` parameter that an estimate can fill."""
    return any(spec.name == "noise_level" and spec.type == "float" for spec in manifest.params)


def with_estimated_noise_level(image, manifest, params: dict, replace: bool = False) -> tuple[dict, float | None]:
    """``params`` with this image's estimated ``noise_level`` (clamped to the parameter's range) when the model
    takes one and ``params`` has none, or has only a fallback (``replace``: the value stays when the image cannot
    be measured); returns the params and the level estimated (None: nothing estimated). Used where each image of
    a batch should get its own level: the CLI, and the app's queue."""
    if not wants_noise_level(manifest) or ("noise_level" in params and not replace):
        return params, None
    level = noise_level_for(image)
    if level is None:
        return params, None
    level = manifest.param("noise_level").clamp(level)
    return {**params, "noise_level": level}, level
