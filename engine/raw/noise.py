"""The shot / read noise of a raw file, measured on its own Bayer mosaic.

Sensor noise is Poisson-Gaussian: a photosite of normalised value x (0 black, 1 white) has variance
``shot * x + read`` (``shot``: the gain of photon noise, which grows with ISO; ``read``: the signal-independent
variance of the read-out electronics). Both are measured as Foi et al. 2008 ("Practical Poissonian-Gaussian noise
modeling and fitting for single-image raw-data") do, simplified:

1. per colour plane of the packed mosaic, the diagonal Haar detail ``(a - b - c + d) / 2`` of each 2x2 block of
   the plane (pure noise of the photosites' own variance where the scene is flat or a plane; texture adds to it)
   and the block's mean;
2. the blocks sorted by mean into bins of equal count; in each bin the variance is taken from a low quantile of
   the squared details over small windows (the flattest parts of that brightness, where texture adds least), then
   corrected for the quantile;
3. a line ``var = shot * mean + read`` fitted to the bins: a robust start (Theil-Sen), then weighted least squares
   (both kept >= 0) leaving out bins far above the line (texture) and, near black, far below it (clipping there
   shrinks the variance); windows near white (saturation) never count.

An ISO-to-noise curve would need calibration data per camera model that this project does not have; the ISO is
reported beside the measurement instead (``info``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

#: Windows (in Haar details) over which local variance is averaged, largest first (a small image uses smaller
#: windows to have enough of them), the quantile taken per brightness bin, and the bins.
WINDOWS = (8, 4, 2)
QUANTILE = 0.05
BINS = 16
#: Fewest windows per bin for a fit.
MIN_PER_BIN = 20


@dataclass(frozen=True)
class NoiseProfile:
    """Poisson-Gaussian noise in normalised raw units: variance ``shot * x + read``."""

    shot: float
    read: float
    #: How many brightness bins the fit used (few: a dark, bright or busy image; the figures are less sure).
    bins: int

    def sigma_at(self, level: float) -> float:
        """Noise standard deviation at normalised level ``level`` (e.g. 0.18, mid-grey)."""
        return float(np.sqrt(self.shot * level + self.read))

    def as_dict(self) -> dict[str, float]:
        return {"shot": self.shot, "read": self.read, "sigma_at_0.18": self.sigma_at(0.18),
                "snr_at_0.18": 0.18 / max(self.sigma_at(0.18), 1e-12), "bins": self.bins}


@functools.lru_cache(maxsize=8)
def _chi2_quantile_factor(quantile: float, dof: int, rng_seed: int = 0) -> float:
    """E-independent correction: the ``quantile`` of (mean of ``dof`` squared unit normals), by simulation."""
    rng = np.random.default_rng(rng_seed)
    samples = (rng.standard_normal((200_000, dof)) ** 2).mean(axis=1)
    return float(np.quantile(samples, quantile))


def _plane_stats(plane: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(window means, window mean squared Haar details) of one H x W plane."""
    h, w = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    p = plane[:h, :w].astype(np.float64)
    a, b, c, d = p[0::2, 0::2], p[0::2, 1::2], p[1::2, 0::2], p[1::2, 1::2]
    detail = (a - b - c + d) / 2.0
    mean = (a + b + c + d) / 4.0
    hh, ww = detail.shape[0] // window * window, detail.shape[1] // window * window

    def windows(x: np.ndarray) -> np.ndarray:
        return x[:hh, :ww].reshape(hh // window, window, ww // window, window).mean(axis=(1, 3)).ravel()

    return windows(mean), windows(detail**2)


def estimate_noise(planes: np.ndarray) -> NoiseProfile | None:
    """The :class:`NoiseProfile` of a packed mosaic (4 x H x W normalised planes); None when the image is too small,
    too dark or too bright to tell."""
    for window in WINDOWS:
        stats = [_plane_stats(plane, window) for plane in planes]
        mean = np.concatenate([m for m, _ in stats])
        var = np.concatenate([v for _, v in stats])
        usable = (mean > 0.002) & (mean < 0.9)
        mean, var = mean[usable], var[usable]
        if mean.size >= BINS * MIN_PER_BIN:
            break
    else:
        return None
    factor = _chi2_quantile_factor(QUANTILE, window * window)
    order = np.argsort(mean)
    xs, ys, ws = [], [], []
    for chunk in np.array_split(order, BINS):
        xs.append(float(np.mean(mean[chunk])))
        ys.append(float(np.quantile(var[chunk], QUANTILE)) / factor)
        ws.append(len(chunk))
    x, y, counts = np.array(xs), np.array(ys), np.array(ws, float)
    shot, read = _theil_sen(x, y)  # robust start: busy texture inflates some bins' variance
    keep = np.ones_like(x, bool)
    for _ in range(4):
        # Leave out bins far above the line (texture) and, near black where the sensor's clipping shrinks the
        # variance, bins far below it; then fit again, each bin weighed by its expected spread.
        fitted = np.maximum(shot * x + read, 1e-12)
        near_black = x < 10.0 * np.sqrt(fitted)
        candidate = (y < 2.0 * fitted) & ~(near_black & (y < 0.5 * fitted))
        if candidate.sum() < 3:
            break
        keep = candidate
        shot, read = _fit(x[keep], y[keep], counts[keep], fitted[keep])
    return NoiseProfile(float(shot), float(read), int(keep.sum()))


def _theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The median of the pairwise slopes and the median intercept (robust to a minority of outlying bins)."""
    i, j = np.triu_indices(len(x), 1)
    dx = x[j] - x[i]
    valid = dx > 1e-9
    shot = max(float(np.median((y[j] - y[i])[valid] / dx[valid])), 0.0) if valid.any() else 0.0
    return shot, max(float(np.median(y - shot * x)), 0.0)


def _fit(x: np.ndarray, y: np.ndarray, counts: np.ndarray, expected: np.ndarray | None = None) -> tuple[float, float]:
    """Weighted least squares for ``y = shot * x + read`` (both >= 0). A variance estimate's spread grows with the
    variance itself, so each bin weighs ``count / expected**2`` (``expected``: the previous fit; y at first)."""
    expected = np.maximum(y if expected is None else expected, 1e-12)
    weights = counts / expected**2
    design = np.stack([x, np.ones_like(x)], axis=1)
    root = np.sqrt(weights)
    (shot, read), *_ = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)
    if shot < 0:
        return 0.0, float(max(np.average(y, weights=weights), 0.0))
    if read < 0:
        return float(np.sum(weights * x * y) / np.sum(weights * x * x)), 0.0
    return float(shot), float(read)
