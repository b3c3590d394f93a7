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

JPEG files need more: compression quantises the noise's high frequencies away (and 4:2:0 files halve the colour
resolution), so both estimators read about 1 whatever the noise. :func:`estimate_jpeg_noise` measures the
noise the file still holds by simulation: the energy of the file's 8x8 DCT blocks in smooth regions is matched
against the same blocks of a noise-free proxy of the image with known noise added and compressed with the file's
own quantisation tables and chroma subsampling. Two readings of those blocks: a narrow one (a low quantile of the
very smoothest 3%, which texture touches least: it decides where the noise is weak, corrected by a regression
fitted on training photos, :data:`JPEG_CALIBRATION`) and a wide one (the mean of the smoothest 10%, steadier where
the noise is strong). That simulation (:func:`simulate_jpeg_noise`) now measures gray JPEGs and cross-checks
colour ones, which a small network reads (:func:`network_jpeg_noise`, ``resources/estimators/jpeg-noise.onnx``,
trained by engine/training/noise_level_net.py on noisy JPEGs made from training photos): fewer files off by more
than 15% and half the mean error (bench/results/noise_estimate_files*.md). :func:`measure_noise` picks the method
from the file and says how sure it is (:class:`NoiseEstimate`); ``noise_level_for`` (what the app and the CLI
use) gives no number when it cannot tell.

Both work on the engine's pixel convention (float32 H x W x 3 in [0, 1]) or on a gray H x W array. A
gray-origin image (three equal channels) is estimated on one channel: its colour patch covariance would be
rank-deficient and the noise in it is the same in every channel anyway.
"""

from __future__ import annotations

import functools
import io
import os
from dataclasses import dataclass, replace
from typing import Any

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


# ----------------------------------------------------------------------------------------------- JPEG files

#: The remaining noise is measured in 8-bit units against these levels of added noise (interpolated between).
JPEG_SIGMA_GRID = (0.0, 1.0, 2.0, 3.0, 4.5, 6.5, 9.0, 12.0, 16.0, 21.0, 27.0, 35.0, 45.0, 58.0, 75.0, 90.0)
#: Luma DCT bands (u + v ranges) whose smooth-block energy is matched. The lowest frequencies are left out: the
#: noise-free proxy keeps part of the low-frequency noise. Two bands give two estimates; their agreement is
#: one of the confidence signals (texture or non-white noise makes them differ).
JPEG_BANDS = ((3, 4), (5, 6))
#: Share of the blocks (the smoothest, judged on a blurred copy) whose energy is matched, and the quantile of
#: their energies that is matched: a low quantile of the very smoothest blocks is what texture touches least
#: (measured on training photos, lab/bench/jpeg_calibration.py: the spread of the sigma found at sigma 5 fell
#: from 0.37 to 0.15 in log units against the mean energy of the smoothest 10%).
JPEG_SMOOTH_SHARE = 0.03
JPEG_QUANTILE = 0.3
JPEG_MIN_BLOCKS = 64
#: The wide reading (the mean energy of the smoothest 10%, as matched before the narrow one) is the steadier
#: where noise is strong: it takes over between these sigmas (8-bit units). This blend was chosen after seeing
#: bench/noise_estimate_files.py's photos with the narrow reading alone (within 15% at sigma 25-50, quality >= 80:
#: 104/120 narrow, 117/120 wide), so that bench is not blind to this one choice; the thresholds were not tuned.
JPEG_WIDE_SHARE = 0.1
JPEG_WIDE_FROM, JPEG_WIDE_ABOVE = 10.0, 20.0


def _wide_weight(narrow_sigma: float) -> float:
    """How much of the wide reading the sigma takes, from the narrow reading's sigma (0 below ``JPEG_WIDE_FROM``,
    1 above ``JPEG_WIDE_ABOVE``): texture can make the wide reading high at any noise, not the narrow one."""
    position = np.log(max(narrow_sigma, 1e-6) / JPEG_WIDE_FROM) / np.log(JPEG_WIDE_ABOVE / JPEG_WIDE_FROM)
    return float(np.clip(position, 0.0, 1.0))


def _blended_sigma(narrow_sigma: float, wide_sigma: float) -> float:
    """The narrow reading where the noise is weak, the wide one where it is strong, geometrically blended between;
    the wide one alone where the narrow one could not measure (NaN)."""
    if np.isnan(narrow_sigma):
        return wide_sigma
    weight = _wide_weight(narrow_sigma)
    return narrow_sigma ** (1 - weight) * wide_sigma ** weight
#: At most this many pixels enter the simulation: a big photo is measured on tiles aligned with its JPEG grid.
JPEG_MAX_PIXELS = 1 << 18


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    matrix = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 16) * np.sqrt(2 / 8)
    matrix[0] /= np.sqrt(2)
    return matrix


_DCT = _dct_matrix()
#: The 2-D 8x8 DCT as one 64 x 64 matrix on row-major flattened blocks (coefficient u * 8 + v).
_DCT2 = np.kron(_DCT, _DCT)
_FREQUENCY = np.add.outer(np.arange(8), np.arange(8)).reshape(-1)


def _blocks(plane: np.ndarray) -> np.ndarray:
    """The 8x8 blocks of an H x W x C array (cropped to multiples of 8), flattened: rows x cols x C x 64."""
    height, width = plane.shape[0] // 8 * 8, plane.shape[1] // 8 * 8
    blocks = plane[:height, :width].reshape(height // 8, 8, width // 8, 8, -1).transpose(0, 2, 4, 1, 3)
    return blocks.reshape(height // 8, width // 8, -1, 64)


def _unblock(blocks: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_blocks`."""
    rows, cols, channels = blocks.shape[:3]
    return blocks.reshape(rows, cols, channels, 8, 8).transpose(0, 3, 1, 4, 2).reshape(rows * 8, cols * 8, channels)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """JPEG's Y (ITU-R BT.601) in 8-bit units, H x W x 1."""
    if rgb.shape[2] == 1:
        return 255.0 * rgb
    return 255.0 * (0.299 * rgb[..., :1] + 0.587 * rgb[..., 1:2] + 0.114 * rgb[..., 2:3])


def _band_energies(rgb: np.ndarray, chosen: np.ndarray | None = None) -> np.ndarray:
    """Per 8x8 luma block (all, or the ``chosen`` ones), the mean squared DCT coefficient in each of
    ``JPEG_BANDS``: blocks x bands."""
    blocks = _blocks(_luma(rgb)).reshape(-1, 64).astype(np.float64)
    if chosen is not None:
        blocks = blocks[chosen]
    energies = []
    for low, high in JPEG_BANDS:
        rows = _DCT2[(_FREQUENCY >= low) & (_FREQUENCY <= high)]
        energies.append(np.mean((blocks @ rows.T) ** 2, axis=1))
    return np.stack(energies, axis=-1)


def _dct_threshold_denoise(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """A noise-free proxy of ``pixels`` (H x W x C in [0, 1]): hard thresholding at 2 sigma of 8x8 DCT blocks on
    four grids offset from JPEG's (so its blocking is not kept), averaged. Simple and fast; it keeps the texture
    above the noise, which decides how much noise JPEG lets through. (A 3 sigma threshold measured closer to the
    truth than 1, 1.5 or 2 sigma on the tests' images.)"""
    threshold = 3.0 * sigma
    total = np.zeros(pixels.shape, np.float64)
    count = np.zeros(pixels.shape[:2], np.float64)
    for dy, dx in ((2, 2), (6, 6), (2, 6), (6, 2)):
        part = pixels[dy:, dx:]
        height, width = part.shape[0] // 8 * 8, part.shape[1] // 8 * 8
        if height == 0 or width == 0:
            continue
        coefficients = _blocks(part.astype(np.float64)) @ _DCT2.T
        keep = np.abs(coefficients) > threshold
        keep[..., 0] = True
        total[dy : dy + height, dx : dx + width] += _unblock((coefficients * keep) @ _DCT2)
        count[dy : dy + height, dx : dx + width] += 1
    proxy = pixels.astype(np.float64).copy()
    covered = count > 0
    proxy[covered] = total[covered] / count[covered][:, None]
    return np.clip(proxy, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class JpegSettings:
    """How a JPEG file was compressed: enough to compress another image the same way (Pillow's save options)."""

    #: Pillow ``qtables``: the file's quantisation tables (or None with ``quality`` to use libjpeg's).
    qtables: tuple[tuple[int, ...], ...] | None = None
    quality: int | None = None
    #: Pillow's subsampling code: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0.
    subsampling: int = 2

    def compress(self, pixels: np.ndarray) -> np.ndarray:
        """``pixels`` (H x W x 1 or 3 in [0, 1]) through an 8-bit JPEG with these settings, decoded."""
        from PIL import Image as PILImage

        samples = np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
        picture = PILImage.fromarray(samples[:, :, 0] if samples.shape[2] == 1 else samples)
        options: dict = {"subsampling": self.subsampling} if samples.shape[2] == 3 else {}
        if self.qtables is not None:
            options["qtables"] = [list(table) for table in self.qtables]
        else:
            options["quality"] = int(self.quality or 95)
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", **options)
        with PILImage.open(buffer) as decoded:
            array = np.asarray(decoded, dtype=np.float32) / 255.0
        return array[:, :, None] if array.ndim == 2 else array

    @classmethod
    def of_image(cls, image) -> JpegSettings | None:
        """The settings of an opened JPEG: its own tables (read again from the file's header), else libjpeg's
        at the quality the loader estimated. None when neither is known."""
        extra = image.meta.extra or {}
        subsampling = extra.get("jpeg_subsampling")
        subsampling = 2 if subsampling is None else int(subsampling)
        if image.meta.path:
            try:
                from PIL import Image as PILImage
                from PIL import JpegImagePlugin

                with PILImage.open(image.meta.path) as source:
                    tables = getattr(source, "quantization", None)
                    if tables:
                        sampling = JpegImagePlugin.get_sampling(source)
                        return cls(
                            qtables=tuple(tuple(tables[key]) for key in sorted(tables)),
                            subsampling=subsampling if sampling < 0 else sampling,
                        )
            except (OSError, ValueError, SyntaxError):
                pass
        if extra.get("jpeg_quality"):
            return cls(quality=int(extra["jpeg_quality"]), subsampling=subsampling)
        return None


def settings_tables(settings: JpegSettings) -> list[list[int]]:
    """The quantisation tables ``settings`` compress with, as Pillow reports a file's (``quantization``, by key)."""
    if settings.qtables is not None:
        return [list(table) for table in settings.qtables]
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("RGB", (16, 16)).save(buffer, format="JPEG", quality=int(settings.quality or 95),
                                       subsampling=settings.subsampling)
    with PILImage.open(buffer) as probe:
        return [list(probe.quantization[key]) for key in sorted(probe.quantization)]


#: Frequency bands (u + v ranges) of the quantisation tables summarised for the JPEG noise network.
JPEG_TABLE_BANDS = ((0, 2), (3, 5), (6, 14))


def jpeg_table_features(tables: list, subsampling: int) -> np.ndarray:
    """What the JPEG noise network knows of the compression: the log mean quantisation step of the luma and the
    chroma table in three frequency bands, and the subsampling one-hot (4:4:4, 4:2:2, 4:2:0). 9 float32 values."""
    features = []
    for index in (0, 1):
        table = np.asarray(tables[min(index, len(tables) - 1)], np.float64)
        for low, high in JPEG_TABLE_BANDS:
            features.append(float(np.log(np.mean(table[(_FREQUENCY >= low) & (_FREQUENCY <= high)]))))
    features += [1.0 if subsampling == code else 0.0 for code in (0, 1, 2)]
    return np.asarray(features, np.float32)


def jpeg_network_input(pixels: np.ndarray) -> np.ndarray:
    """Decoded RGB pixels (H x W x 3 in [0, 1]) as the JPEG noise network takes them: 3 x H x W float32, JPEG's
    YCbCr (BT.601, full range) in 8-bit units, Y centred on 0."""
    rgb = 255.0 * np.asarray(pixels, np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.stack([0.299 * r + 0.587 * g + 0.114 * b - 128.0,
                     -0.168736 * r - 0.331264 * g + 0.5 * b,
                     0.5 * r - 0.418688 * g - 0.081312 * b]).astype(np.float32)


def _jpeg_tiles(array: np.ndarray, max_pixels: int) -> np.ndarray:
    """The image, or for a big one a mosaic of 256 x 256 tiles spread over it, each on the file's 16-pixel JPEG
    grid, so that every 8x8 block of the mosaic is one of the file's blocks."""
    height, width = array.shape[0] // 16 * 16, array.shape[1] // 16 * 16
    array = array[:height, :width]
    if height * width <= max_pixels:
        return array
    tile = 256
    count = max(1, max_pixels // (tile * tile))
    rows = int(np.ceil(np.sqrt(count * height / width)))
    cols = int(np.ceil(count / rows))
    tops = np.linspace(0, height - tile, rows).astype(int) // 16 * 16
    lefts = np.linspace(0, width - tile, cols).astype(int) // 16 * 16
    return np.concatenate(
        [np.concatenate([array[t : t + tile, l : l + tile] for l in lefts], axis=1) for t in tops], axis=0
    )


@dataclass(frozen=True)
class NoiseEstimate:
    """A measured noise level and how far to trust it."""

    #: Noise standard deviation in 8-bit units: for a JPEG, the noise the file still holds (see
    #: :attr:`denoiser_level` for what a denoiser is told); None when it cannot tell.
    level: float | None
    #: 0 (a guess) to 1 (sure). The app fills a measured level in only at or above ``CONFIDENT``.
    confidence: float
    #: "pca" (Chen et al., uncompressed files) or "jpeg" (simulation with the file's compression).
    method: str
    #: Why the estimate is unsure or missing ("" when it is sure).
    reason: str = ""
    #: For a JPEG: the sigma of the (white, Gaussian) noise before compression that explains the file.
    sigma_before_compression: float | None = None

    @property
    def confident(self) -> bool:
        return self.level is not None and self.confidence >= CONFIDENT

    @property
    def denoiser_level(self) -> float | None:
        """The level to tell a denoiser: for a JPEG the sigma before compression, not the (smaller) noise left.
        The noise JPEG leaves is low-frequency, which a model trained on white noise of that std under-removes:
        measured with photo-denoise-color on two Kodak24 crops, sigma 25, quality 90, 4:2:0, told the noise left
        (16.5) 26.6 / 26.8 dB, told the sigma before compression (21.9) 29.6 / 30.8 dB."""
        return self.sigma_before_compression if self.sigma_before_compression is not None else self.level


#: Below this confidence the app does not fill a measured level in, and says why instead.
CONFIDENT = 0.5


def _agreement(a: float, b: float, floor: float, tolerance: float = 0.4) -> float:
    """1 when two estimates agree, falling to 0 as they differ by ``tolerance`` (of their mean plus ``floor``)."""
    spread = abs(a - b) / (0.5 * (a + b) + floor)
    return float(np.clip(1.0 - spread / tolerance, 0.0, 1.0))


@dataclass(frozen=True)
class JpegMeasurement:
    """What :func:`measure_jpeg` finds in a decoded JPEG, before calibration (8-bit units)."""

    #: Added sigma explaining each of ``JPEG_BANDS`` (pass 2, on the detail-keeping proxy).
    band_sigmas: tuple[float, ...]
    #: The first pass's sigma (on the blurred proxy; high where smooth blocks hold fine detail).
    first_sigma: float
    #: Share of the noise that survives the file's compression, simulated on the proxy.
    share: float
    #: All 8x8 blocks of the measured area.
    blocks: int
    #: The wide reading's sigma (all bands).
    wide_sigma: float
    #: The share of the luma noise that survives: what quantisation removes, apart from 4:2:0's colour.
    luma_share: float
    #: True where the narrow reading cannot measure (its blocks' coefficients quantised to zero); ``band_sigmas``
    #: are then the wide reading's.
    narrow_degenerate: bool
    #: How textured the image is: the median energy in ``JPEG_BANDS`` of its blocks, blurred (8-bit DCT units²).
    texture: float

    @property
    def narrow_sigma(self) -> float:
        return float(np.mean(self.band_sigmas))

    @property
    def wide_weight(self) -> float:
        return 1.0 if self.narrow_degenerate else _wide_weight(self.narrow_sigma)

    @property
    def sigma(self) -> float:
        """The sigma before compression: :func:`_blended_sigma` of the two readings."""
        return self.wide_sigma if self.narrow_degenerate else _blended_sigma(self.narrow_sigma, self.wide_sigma)

    @property
    def level(self) -> float:
        return self.sigma * self.share


def _luma_steps(settings: JpegSettings) -> np.ndarray:
    """The luma quantisation table (64 steps, natural order) that ``settings`` compress with."""
    return np.asarray(settings_tables(settings)[0], np.float64)


def calibration_features(measured: JpegMeasurement, settings: JpegSettings) -> list[float]:
    """What :data:`JPEG_CALIBRATION` corrects the raw level from (see lab/bench/jpeg_calibration.py)."""
    sigma = measured.narrow_sigma + 1.0
    steps = _luma_steps(settings)
    bands = [float(np.mean(steps[(_FREQUENCY >= low) & (_FREQUENCY <= high)]))
             for low, high in ((1, 2), (3, 4), (5, 6))]
    low, high = measured.band_sigmas[0] + 1.0, measured.band_sigmas[-1] + 1.0
    return [
        np.log(sigma),
        np.log((measured.first_sigma + 1.0) / sigma),
        np.log(max(measured.share, 1e-3)),
        np.log(low / high),
        *(np.log(step / sigma) for step in bands),
        1.0 if settings.subsampling == 2 else 0.0,
        np.log(measured.texture + 1.0) - 2.0 * np.log(sigma),
    ]


def _block_statistic(energies: np.ndarray) -> np.ndarray:
    """What is matched of the chosen blocks' energies (blocks x bands): their ``JPEG_QUANTILE`` per band."""
    return np.quantile(energies, JPEG_QUANTILE, axis=0)


#: Ridge regression of log(noise held / simulated level) on :func:`calibration_features` (last: the intercept),
#: fitted by ``lab/bench/jpeg_calibration.py fit`` on 70 training photographs (SunHays80 from the 11th; the first
#: 10 are ``bench/noise_estimate_files.py``'s), sigma 3-55, quality 75-98, 4:2:0 and 4:4:4.
JPEG_CALIBRATION = (-0.0424, 0.0012, -0.1407, -0.6090, 0.0101, -0.0235, -0.0077, -0.0472, -0.0055, 0.0587)
#: The correction is at most this factor either way (it was fitted on corrections well inside it).
JPEG_CALIBRATION_LIMIT = 2.0


def calibration_factor(measured: JpegMeasurement, settings: JpegSettings) -> float:
    """The factor :data:`JPEG_CALIBRATION` puts on the simulated level."""
    coefficients = np.asarray(JPEG_CALIBRATION)
    value = float(np.dot(calibration_features(measured, settings), coefficients[:-1]) + coefficients[-1])
    limit = np.log(JPEG_CALIBRATION_LIMIT)
    return float(np.exp(np.clip(value, -limit, limit)))


def measure_jpeg(pixels: np.ndarray, settings: JpegSettings, max_pixels: int = JPEG_MAX_PIXELS) -> JpegMeasurement:
    """The raw simulation behind :func:`estimate_jpeg_noise` (see there)."""
    array = _channels(pixels).astype(np.float32)
    tiles = _jpeg_tiles(array, max_pixels)
    if min(tiles.shape[:2]) < 64:
        raise ValueError(f"image too small to estimate noise ({array.shape[1]}x{array.shape[0]})")
    grid = np.asarray(JPEG_SIGMA_GRID)
    noise = np.random.default_rng(0).standard_normal(tiles.shape).astype(np.float32)
    import cv2

    # The smooth blocks, judged on a blurred copy. The blur does not take all the noise out, so the choice favours
    # blocks whose noise happens to be weak: each simulated file chooses its own smoothest blocks the same way, so
    # that this bias is on both sides of the match (without it, sigma read 10-15% low at sigma 25).
    def blur(image: np.ndarray) -> np.ndarray:
        result = cv2.GaussianBlur(image, (0, 0), 1.5)
        return result[:, :, None] if result.ndim == 2 else result

    def smoothest(image: np.ndarray) -> np.ndarray:
        """A mask of the ``JPEG_SMOOTH_SHARE`` smoothest blocks (at least ``JPEG_MIN_BLOCKS``)."""
        smoothness = _band_energies(blur(image)).sum(axis=1)
        count = min(smoothness.size, max(JPEG_MIN_BLOCKS, int(np.ceil(JPEG_SMOOTH_SHARE * smoothness.size))))
        mask = np.zeros(smoothness.size, bool)
        mask[np.argpartition(smoothness, count - 1)[:count]] = True
        return mask

    blurred = blur(tiles)
    smoothness = _band_energies(blurred).sum(axis=1)
    file_energies = _band_energies(tiles)
    observed = _block_statistic(file_energies[smoothest(tiles)])
    # The wide reading: the mean energy of the smoothest JPEG_WIDE_SHARE of the blocks, the same blocks in the
    # file and in every simulation. Steadier than the narrow one where the noise is strong.
    wide = smoothness <= np.quantile(smoothness, JPEG_WIDE_SHARE)
    observed_wide = file_energies[wide].mean(axis=0)

    def match(proxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The added noise (per band) whose compressed smooth blocks hold the file's energy: the narrow and the
        wide reading."""
        narrow_energies, wide_energies = [], []
        for level in grid:
            compressed = settings.compress(np.clip(proxy + (level / 255.0) * noise, 0.0, 1.0))
            energies = _band_energies(compressed)
            narrow_energies.append(_block_statistic(energies[smoothest(compressed)]))
            wide_energies.append(energies[wide].mean(axis=0))

        def invert(target: np.ndarray, table: list) -> np.ndarray:
            # Energy rises with sigma; the running maximum guards interpolation against tiny non-monotone steps.
            table = np.asarray(table)
            return np.array([np.interp(target[b], np.maximum.accumulate(table[:, b]), grid)
                             for b in range(len(JPEG_BANDS))])

        # Where compression zeroed most of the smoothest blocks' coefficients (quality 70 and below), their quantile
        # hardly moves over the low levels: a file whose energy falls within 5% of the noise-free proxy's is
        # matched by any of them, so the narrow reading says nothing and is marked with NaN. (Not an exact
        # comparison: the 8-bit rounding of both sides makes them differ in the last digits.)
        narrow = invert(observed, narrow_energies)
        table = np.maximum.accumulate(np.asarray(narrow_energies), axis=0)
        ambiguous = [observed[b] <= table[table[:, b] <= 1.05 * table[0, b], b].max() for b in range(len(JPEG_BANDS))]
        if any(ambiguous):
            narrow[:] = np.nan
        return narrow, invert(observed_wide, wide_energies)

    # The share of the noise the file keeps, on a proxy: ``std(jpeg(proxy + noise) - jpeg(proxy)) / std(noise)``,
    # in all channels and in luma alone (what quantisation leaves, without what 4:2:0 takes from the colour).
    def surviving_shares(proxy: np.ndarray, level: float) -> tuple[float, float]:
        if level <= 0:
            return 1.0, 1.0
        noisy = np.clip(proxy + (level / 255.0) * noise, 0.0, 1.0)
        after = settings.compress(noisy) - settings.compress(proxy)
        before = noisy - proxy
        shares = []
        for kept, added in ((after, before), (_luma(after), _luma(before))):
            spread = float(added.std())
            shares.append(float(kept.std()) / spread if spread > 0 else 1.0)
        return shares[0], shares[1]

    # Pass 1, on the blurred proxy: a first sigma (too high where the smooth blocks still hold fine detail,
    # which the blur took out of the proxy but not out of the file).
    narrow, wide_sigmas = match(blurred)
    first = _blended_sigma(float(np.mean(narrow)), float(np.mean(wide_sigmas)))
    # Pass 2, on the file denoised at about the level it holds: a proxy that keeps the image's detail above the
    # noise, so detail counts on both sides of the match, and decides how much noise JPEG lets through.
    proxy = _dct_threshold_denoise(tiles, first * surviving_shares(blurred, first)[0] / 255.0)
    narrow_first = narrow
    narrow, wide_sigmas = match(proxy)
    degenerate = bool(np.isnan(narrow_first).any() or np.isnan(narrow).any())
    if degenerate:  # the wide reading decides alone
        narrow = np.asarray(wide_sigmas, dtype=float)
    measured = JpegMeasurement(tuple(float(s) for s in narrow), first, 1.0, int(smoothness.size),
                               wide_sigma=float(np.mean(wide_sigmas)), luma_share=1.0, narrow_degenerate=degenerate,
                               texture=float(np.median(smoothness)))
    share, luma_share = surviving_shares(proxy, measured.sigma)
    return replace(measured, share=share, luma_share=luma_share)


#: The reason given when compression took most of the noise: the simulation says it, and the network's estimate
#: takes its word for it (same confidence cap).
JPEG_MOSTLY_REMOVED = "compression removed much of the noise, so the level left is approximate"


def simulate_jpeg_noise(pixels: np.ndarray, settings: JpegSettings, max_pixels: int = JPEG_MAX_PIXELS) -> NoiseEstimate:
    """The noise a decoded JPEG still holds, in 8-bit units, with its confidence, by simulation (no network: gray
    JPEGs, and where the network's file is missing; its readings also judge the network's confidence).

    The file's noise is taken as white Gaussian noise of some sigma added before compression (and clipped to
    [0, 1], as cameras do). A noise-free proxy of the image (DCT thresholding) is given each level of
    ``JPEG_SIGMA_GRID`` and compressed with ``settings``; the level whose smooth 8x8 luma blocks hold as much
    energy in ``JPEG_BANDS`` as the file's is sigma. What the file holds is sigma times the share of the noise
    that survives the same compression of the proxy, ``std(jpeg(proxy + noise) - jpeg(proxy)) / std(noise)``:
    the quantity the issue's tests measure as ``std(jpeg(noisy) - jpeg(clean))``.
    """
    measured = measure_jpeg(pixels, settings, max_pixels)
    sigmas, sigma = measured.band_sigmas, measured.sigma
    # The simulation's systematic errors (texture left in the smoothest blocks, a proxy smoother than the image),
    # corrected from what it measured: one factor for the level and for the sigma before compression.
    # Fitted on the narrow reading, so it applies as far as the narrow reading counts.
    correction = calibration_factor(measured, settings) ** (1 - measured.wide_weight)
    level = measured.level * correction
    grid = JPEG_SIGMA_GRID

    # The two bands differ by 10-20% on noisy synthetic and real photos alike (measured), by far more where fine
    # detail passes for noise.
    confidence, reasons = _agreement(float(sigmas[0]), float(sigmas[1]), 2.0, tolerance=0.6), []
    if confidence < 0.7:
        reasons.append("its fine detail and its noise do not tell apart")
    if sigma > 3.0 and measured.luma_share < 0.9:
        # Quantisation removed much of the noise: what is left depends on detail the proxy only approximates
        # (measured on the tests' image: 17-25% low at sigma 5, quality 80, luma share 0.81-0.82; at 0.96 and above
        # within 10%). The luma share, because 4:2:0 alone takes a third of the colour noise at any quality.
        # Still a usable, small level.
        confidence = min(confidence, 0.6)
        reasons.append(JPEG_MOSTLY_REMOVED)
    if sigma >= grid[-1] * 0.98:
        confidence, reasons = 0.0, ["more noise than the estimator measures"]
    if measured.blocks < 640:
        # A small image: its few smooth blocks say little.
        confidence = min(confidence, measured.blocks / 640)
        reasons.append("too few smooth areas")
    return NoiseEstimate(level, confidence, "jpeg", "; ".join(reasons), sigma_before_compression=sigma * correction)


# ------------------------------------------------------------------------------------ JPEG files: the network

#: The network that reads a JPEG's noise (trained by engine/training/noise_level_net.py; how: the .json beside it).
JPEG_NETWORK_FILE = ("estimators", "jpeg-noise.onnx")
#: At most this many pixels are read by it: a bigger photo is read on tiles of ``JPEG_NETWORK_TILE`` spread over it.
JPEG_NETWORK_MAX_PIXELS = 1 << 22
JPEG_NETWORK_TILE = 512
#: Blocks the network needs (its windows: 16 px, then three 3x3 convolutions at block resolution).
JPEG_NETWORK_MIN_SIDE = 64


@functools.lru_cache(maxsize=1)
def _jpeg_network() -> Any:
    """The ONNX Runtime session of the network (CPU; it is small), or None without its file."""
    from .paths import resources_dir

    path = resources_dir().joinpath(*JPEG_NETWORK_FILE)
    if not path.is_file():
        return None
    import onnxruntime as ort

    from .runtime import session_options

    return ort.InferenceSession(str(path), sess_options=session_options(ort, min(4, os.cpu_count() or 1)),
                                providers=["CPUExecutionProvider"])


def jpeg_network_available() -> bool:
    return _jpeg_network() is not None


def _network_tiles(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """(top, left, rows, cols) of the parts the network reads: the whole image (cropped to the 16 px grid) when it
    is small enough, else tiles of ``JPEG_NETWORK_TILE`` on the file's grid spread evenly over it."""
    height, width = height // 16 * 16, width // 16 * 16
    if height * width <= JPEG_NETWORK_MAX_PIXELS:
        return [(0, 0, height, width)]
    tile = JPEG_NETWORK_TILE
    rows_of_tiles = max(1, min(height // tile, int(np.sqrt(JPEG_NETWORK_MAX_PIXELS / tile**2 * height / width))))
    cols_of_tiles = max(1, min(width // tile, JPEG_NETWORK_MAX_PIXELS // tile**2 // rows_of_tiles))
    tops = np.linspace(0, height - min(tile, height), rows_of_tiles).astype(int) // 16 * 16
    lefts = np.linspace(0, width - min(tile, width), cols_of_tiles).astype(int) // 16 * 16
    return [(int(t), int(l), min(tile, height), min(tile, width)) for t in tops for l in lefts]


def _pooled_levels(blocks: np.ndarray) -> tuple[float, float]:
    """(held, before) in 8-bit units from the network's per-block rows (blocks x 3: log ratio held / before, log
    before, weight logit), as engine/training/noise_level_net.py ``pooled`` makes them: the sigma before
    compression by the softmax of the weights, the held level as a uniform mean of squares over the blocks."""
    weights = np.exp(blocks[:, 2] - blocks[:, 2].max())
    before = float(np.exp((weights / weights.sum()) @ blocks[:, 1]))
    return before * float(np.sqrt(np.mean(np.exp(2.0 * blocks[:, 0])))), before


@dataclass(frozen=True)
class NetworkReading:
    """What the JPEG noise network reads in a decoded colour JPEG (8-bit units)."""

    #: The noise the file holds, and the sigma of the noise before compression.
    held: float
    before: float
    #: Per quadrant of the image: (its share of the pooling weight, the sigma read on it alone).
    quadrants: tuple[tuple[float, float], ...]
    #: Blocks read.
    blocks: int


def network_jpeg_noise(pixels: np.ndarray, settings: JpegSettings) -> NetworkReading | None:
    """The network's reading of a decoded colour JPEG (H x W x 3 in [0, 1]). None without the network's file, for a
    gray image (three equal channels: the network was trained on colour) or one too small."""
    session = _jpeg_network()
    array = _channels(pixels)
    if session is None or array.shape[2] != 3 or min(array.shape[:2]) < JPEG_NETWORK_MIN_SIDE:
        return None
    tables = jpeg_table_features(settings_tables(settings), settings.subsampling)[None]
    height, width = array.shape[:2]
    parts = []
    for top, left, rows, cols in _network_tiles(height, width):
        maps = session.run(None, {"pixels": jpeg_network_input(array[top: top + rows, left: left + cols])[None],
                                  "tables": tables})[0][0]  # 3 x r x c
        # Each map position reads the 64 px from (top + 8 i, left + 8 j); its centre:
        y = top + 8 * np.arange(maps.shape[1]) + 32
        x = left + 8 * np.arange(maps.shape[2]) + 32
        quadrant = 2 * (y[:, None] >= height / 2) + (x[None, :] >= width / 2)
        parts.append((maps.reshape(3, -1).T, quadrant.reshape(-1)))
    blocks = np.concatenate([p[0] for p in parts]).astype(np.float64)
    where = np.concatenate([p[1] for p in parts])
    held, before = _pooled_levels(blocks)
    weights = np.exp(blocks[:, 2] - blocks[:, 2].max())
    quadrants = tuple((float(weights[where == q].sum() / weights.sum()), _pooled_levels(blocks[where == q])[1])
                      for q in range(4) if np.any(where == q))
    return NetworkReading(held, before, quadrants, int(blocks.shape[0]))


#: Quadrants carrying at least this share of the network's pooling weight must agree on the sigma.
JPEG_QUADRANT_SHARE = 0.1
#: A quadrant may read less than the whole (quantisation took the noise of flat areas, which the network then does
#: not weigh), not more than this factor: visible noise it does not weigh is noise unlike the rest.
JPEG_QUADRANT_ABOVE = 1.6
#: ... and by more than this many levels: on clean photos (sigma read 1.6-2.2) a textured quadrant the network does not
#: weigh reads 3-5.3 (BSDS500 JPEGs at quality 95, which no estimator choice had seen before this one).
JPEG_QUADRANT_SLACK = 3.0
#: The network and the simulation disagreeing on the sigma by more than this factor and ``JPEG_METHODS_SLACK`` levels
#: (both read little noise on a clean photo, and differently): fine detail passes for noise.
JPEG_METHODS_APART = 1.6
JPEG_METHODS_SLACK = 2.0
#: The network was trained up to sigma 70.
JPEG_NETWORK_TOP = 75.0


def estimate_jpeg_noise(pixels: np.ndarray, settings: JpegSettings, max_pixels: int = JPEG_MAX_PIXELS) -> NoiseEstimate:
    """The noise a decoded JPEG still holds (8-bit units), with its confidence and the sigma before compression.

    Colour JPEGs are read by the network (:func:`network_jpeg_noise`; on photos it does not train on, within 15% of
    the noise the file holds in 220 and 208 of 240 files at quality >= 80 against the simulation's 207 and 203:
    bench/results/noise_estimate_files*.md, README). Its confidence: the quadrants of the image that it reads must agree
    (and none it does not weigh may read much more), and the simulation (:func:`simulate_jpeg_noise`) must find
    about the same sigma (a texture finer than any noise reads as noise to the network alone). Gray JPEGs, and
    any JPEG where the network's file is missing, are measured by the simulation alone.
    """
    simulated = simulate_jpeg_noise(pixels, settings, max_pixels)
    read = network_jpeg_noise(pixels, settings)
    if read is None:
        return simulated
    confidence, reasons = 1.0, []
    weighed = [sigma for share, sigma in read.quadrants if share >= JPEG_QUADRANT_SHARE]
    if len(read.quadrants) >= 2:
        apart = _agreement(min(weighed), max(weighed), 1.0, tolerance=0.6)
        highest = max(sigma for _, sigma in read.quadrants)
        if highest > JPEG_QUADRANT_ABOVE * read.before + JPEG_QUADRANT_SLACK:
            apart = min(apart, 0.3)
        if apart < 0.7:
            reasons.append("its parts show different noise levels")
        confidence = min(confidence, apart)
    other = simulated.sigma_before_compression
    if other is not None and (max(other, read.before)
                              > JPEG_METHODS_APART * min(other, read.before) + JPEG_METHODS_SLACK):
        confidence = min(confidence, 0.3)
        reasons.append("its fine detail and its noise do not tell apart")
    if JPEG_MOSTLY_REMOVED in simulated.reason:
        confidence = min(confidence, 0.6)
        reasons.append(JPEG_MOSTLY_REMOVED)
    if read.before >= JPEG_NETWORK_TOP:
        confidence, reasons = 0.0, ["more noise than the estimator measures"]
    if read.blocks < 400:
        confidence = min(confidence, read.blocks / 400)
        reasons.append("too few blocks to read")
    return NoiseEstimate(read.held, confidence, "jpeg", "; ".join(reasons), sigma_before_compression=read.before)


# ----------------------------------------------------------------------------------------------- one answer


def _pca_estimate(pixels: np.ndarray) -> NoiseEstimate:
    """Chen et al. on the whole image, its confidence from the agreement of its four quadrants."""
    array = _channels(pixels)
    level = estimate_noise_level(array)
    height, width = array.shape[:2]
    confidence, reasons = 1.0, []
    if min(height, width) >= 2 * 48:
        halves = [array[: height // 2, : width // 2], array[: height // 2, width // 2 :],
                  array[height // 2 :, : width // 2], array[height // 2 :, width // 2 :]]
        quadrants = sorted(
            255.0 * correct_for_clipping(part, estimate_sigma_pca(part, max_patches=PCA_MAX_PATCHES // 4))
            for part in halves
        )
        # The middle two quadrants against each other: one odd quadrant (a saturated sky) is allowed.
        confidence = _agreement(quadrants[1], quadrants[2], 2.0)
        if confidence < 0.7:
            reasons.append("its parts show different noise levels")
    return NoiseEstimate(level, confidence, "pca", "; ".join(reasons))


def measure_noise(image) -> NoiseEstimate:
    """The noise level of an opened image (``engine.image.Image``), with the method chosen from its file: a
    JPEG is measured with its own compression settings, anything else (PNG, TIFF, 8 or 16 bits) with Chen et
    al.'s estimator and the clipping correction. HDR images and images too small give no level."""
    if image.meta.hdr:
        return NoiseEstimate(None, 0.0, "none", "an HDR image (the estimator is for display-referred photos)")
    try:
        if image.meta.format == "jpeg":
            settings = JpegSettings.of_image(image)
            if settings is None:
                return NoiseEstimate(None, 0.0, "jpeg", "the JPEG's compression settings are unknown")
            return estimate_jpeg_noise(image.pixels, settings)
        return _pca_estimate(image.pixels)
    except ValueError as error:
        return NoiseEstimate(None, 0.0, "none", str(error))


def noise_level_for(image) -> float | None:
    """The ``noise_level`` the app proposes for an opened image (GUI and CLI alike): its measured
    :attr:`NoiseEstimate.denoiser_level` in 8-bit units, rounded to 0.1. None when there is no sure measurement
    (HDR, too small, or :func:`measure_noise` is unsure): a wrong level is worse than the user's own."""
    estimate = measure_noise(image)
    return round(estimate.denoiser_level, 1) if estimate.confident else None


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
