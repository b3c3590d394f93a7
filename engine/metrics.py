"""Image quality metrics, computed in float64 (sums over millions of pixels need it).

The benchmark protocols (../shared/bench/PROTOCOL.md) are implemented exactly by :func:`psnr_y_sr` (Set5),
:func:`relmse` and :func:`tonemapped_psnr` (Monte Carlo renders); :func:`psnr` with uint8-rounded inputs gives the
Kodak24 protocol and :func:`rmse` the Dirty Documents one (pooled over images: see :func:`pooled_rmse`).
The trainer validates with :func:`masked_psnr` (target points that are NaN/Inf left out, a 100 dB ceiling).
The app, the training code, the tests and every benchmark score with these functions (one implementation each).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return a, b


def mse(a: np.ndarray, b: np.ndarray) -> float:
    a, b = _pair(a, b)
    return float(np.mean((a - b) ** 2))


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return math.sqrt(mse(a, b))


def pooled_rmse(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """RMSE over all pixels of all pairs together (the Kaggle Dirty Documents metric)."""
    total, count = 0.0, 0
    for a, b in pairs:
        a, b = _pair(a, b)
        total += float(np.sum((a - b) ** 2))
        count += a.size
    if count == 0:
        raise ValueError("no pixels")
    return math.sqrt(total / count)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """``10 log10(peak^2 / MSE)`` over all samples; ``inf`` for identical inputs."""
    error = mse(a, b)
    return math.inf if error == 0 else 10.0 * math.log10(peak * peak / error)


def masked_psnr(a: np.ndarray, b: np.ndarray, valid: np.ndarray | None = None) -> float:
    """PSNR (peak 1) over the samples where ``valid`` (a boolean mask shaped as ``a``) is True, or over all; a
    finite 100 dB ceiling for (near-)identical inputs (MSE <= 1e-10), so that scores stay comparable and storable.
    The trainer's validation score (display-space values in [0, 1], target points that are NaN/Inf masked out)."""
    diff = (np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2
    error = float(diff[valid].mean()) if valid is not None else float(diff.mean())
    return 100.0 if error <= 1e-10 else 10.0 * math.log10(1.0 / error)


def _gaussian_filter(x: np.ndarray, sigma: float, size: int) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(x, (size, size), sigma, borderType=cv2.BORDER_REFLECT)


def ssim(a: np.ndarray, b: np.ndarray, *, peak: float = 1.0, sigma: float = 1.5, window: int = 11) -> float:
    """Structural similarity (Wang et al. 2004) with an 11 x 11 Gaussian window (sigma 1.5), K1=0.01, K2=0.03.

    Colour images: the mean of the per-channel SSIMs (as scikit-image's ``channel_axis``). Local statistics use
    population (not sample) covariances; the mean is taken over the valid interior (borders of ``window // 2``
    cropped), which matches ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=peak)``.
    """
    a, b = _pair(a, b)
    if a.ndim == 3:
        return float(np.mean([ssim(a[:, :, c], b[:, :, c], peak=peak, sigma=sigma, window=window)
                              for c in range(a.shape[2])]))
    if min(a.shape) < window:
        raise ValueError(f"SSIM needs images at least {window} x {window}, got {a.shape}")
    c1 = (0.01 * peak) ** 2
    c2 = (0.03 * peak) ** 2
    mu_a = _gaussian_filter(a, sigma, window)
    mu_b = _gaussian_filter(b, sigma, window)
    var_a = _gaussian_filter(a * a, sigma, window) - mu_a * mu_a
    var_b = _gaussian_filter(b * b, sigma, window) - mu_b * mu_b
    cov = _gaussian_filter(a * b, sigma, window) - mu_a * mu_b
    numerator = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    denominator = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    pad = window // 2
    return float(np.mean((numerator / denominator)[pad:-pad, pad:-pad]))


def relative_squared_error(x: np.ndarray, ref: np.ndarray, eps: float = 0.01) -> np.ndarray:
    """``(x - r)^2 / (r^2 + eps)`` of every value (float64): relMSE before its mean, for error maps."""
    x, ref = _pair(x, ref)
    return (x - ref) ** 2 / (ref * ref + eps)


def relmse(x: np.ndarray, ref: np.ndarray, eps: float = 0.01) -> float:
    """Relative MSE of a linear HDR render: mean over pixels and channels of ``(x - r)^2 / (r^2 + eps)``."""
    return float(np.mean(relative_squared_error(x, ref, eps)))


def temporal_relmse(outputs, references, eps: float = 0.01) -> float:
    """Flicker of a restored sequence against its reference sequence (linear HDR frames of one shot, in order).

    For every pair of consecutive frames t - 1, t (t >= 1), the change the method made,
    ``d_out = out[t] - out[t-1]``, is compared with the reference's, ``d_ref = ref[t] - ref[t-1]``, normalised like
    :func:`relmse` by the reference's magnitude over the two frames, ``m = (ref[t] + ref[t-1]) / 2``::

        temporal relMSE = mean over t = 1..N-1 of  mean over pixels, channels of  (d_out - d_ref)^2 / (m^2 + eps)

    Since ``d_out - d_ref = e[t] - e[t-1]`` with ``e = out - ref``, it is the frame-to-frame change of the error:
    0 for an error that stays put (a steady bias does not flicker), about twice the relMSE for errors that are
    independent from frame to frame (a per-frame denoiser of independent noise), more where they alternate.
    Unwarped: the frames' real change is in ``d_ref`` and cancels. Needs at least two frames."""
    outputs, references = list(outputs), list(references)
    if len(outputs) != len(references):
        raise ValueError(f"{len(outputs)} outputs for {len(references)} reference frames")
    if len(outputs) < 2:
        raise ValueError("the temporal error needs at least two frames")
    scores = []
    for t in range(1, len(outputs)):
        out_now, ref_now = _pair(outputs[t], references[t])
        out_before, ref_before = _pair(outputs[t - 1], references[t - 1])
        if out_now.shape != out_before.shape:
            raise ValueError(f"frames {t - 1} and {t} differ in shape: {out_before.shape} vs {out_now.shape}")
        magnitude = (ref_now + ref_before) / 2
        change = (out_now - out_before) - (ref_now - ref_before)
        scores.append(float(np.mean(change * change / (magnitude * magnitude + eps))))
    return float(np.mean(scores))


def shot_scores(outputs, references, eps: float = 0.01) -> dict[str, float]:
    """A restored shot's two figures, as every shot benchmark and the temporal trainer's validation report them:
    ``relmse``, the :func:`relmse` of each frame against its reference averaged over the frames, and ``flicker``,
    the :func:`temporal_relmse` of the sequence."""
    outputs, references = list(outputs), list(references)
    per_frame = [relmse(out, ref, eps) for out, ref in zip(outputs, references, strict=True)]
    return {"relmse": float(np.mean(per_frame)), "flicker": temporal_relmse(outputs, references, eps)}


def tonemapped_psnr(x: np.ndarray, ref: np.ndarray) -> float:
    """PSNR of two linear HDR images after clipping to [0, 1] and gamma 1/2.2 (peak 1), per the protocol."""
    x, ref = _pair(x, ref)
    gamma = 1.0 / 2.2
    return psnr(np.clip(x, 0.0, 1.0) ** gamma, np.clip(ref, 0.0, 1.0) ** gamma, peak=1.0)


def rgb_to_y_bt601(image_uint8: np.ndarray) -> np.ndarray:
    """Y of ITU-R BT.601 in [16, 235] exactly as MATLAB ``rgb2ycbcr`` gives it for uint8 input: rounded to integers.

    The rounding matters: with it, MATLAB bicubic on Set5 scores the published 33.65 / 30.39 / 28.42 dB; without
    it 33.68 / 30.41 / 28.43 (checked in tests/test_metrics.py). Gray (H x W or H x W x 1) images are used as
    they are.
    """
    image = np.asarray(image_uint8)
    if image.ndim == 2:
        return image.astype(np.float64)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0].astype(np.float64)
    rgb = image[:, :, :3].astype(np.float64) / 255.0
    y = 16.0 + 65.481 * rgb[:, :, 0] + 128.553 * rgb[:, :, 1] + 24.966 * rgb[:, :, 2]
    return np.rint(y)


def psnr_y_sr(output_uint8: np.ndarray, hr_uint8: np.ndarray, scale: int) -> float:
    """Super-resolution PSNR (Set5 protocol): uint8 inputs, Y of BT.601, ``scale`` pixels cropped off each border.

    Both inputs must be uint8 already (round the model output first); a float input is refused rather than
    silently truncated.
    """
    for name, array in (("output", output_uint8), ("hr", hr_uint8)):
        if np.asarray(array).dtype != np.uint8:
            raise ValueError(f"psnr_y_sr expects uint8 images; {name} is {np.asarray(array).dtype}")
    y_out = rgb_to_y_bt601(output_uint8)
    y_hr = rgb_to_y_bt601(hr_uint8)
    if y_out.shape != y_hr.shape:
        raise ValueError(f"shapes differ: {y_out.shape} vs {y_hr.shape}")
    if scale > 0:
        y_out = y_out[scale:-scale, scale:-scale]
        y_hr = y_hr[scale:-scale, scale:-scale]
    return psnr(y_out, y_hr, peak=255.0)
