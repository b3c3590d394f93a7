"""Error maps between two images (as in tev) and their false-colour rendering. Pure numpy; no Qt."""

from __future__ import annotations

import numpy as np

#: Error kinds offered in the difference view: id -> label.
ERROR_KINDS = {
    "abs": "Absolute error",
    "rel_abs": "Relative absolute error",
    "sq": "Squared error",
    "rel_sq": "Relative squared error",
}
#: Added to the reference in relative errors so that black pixels do not explode (tev uses 0.01 too).
REL_EPSILON = 0.01
COLORMAP = "inferno"


def error_map(a: np.ndarray, b: np.ndarray, kind: str = "abs") -> np.ndarray:
    """Per-pixel error of ``a`` against ``b`` (H x W x 3 each), averaged over channels: H x W float32.

    Relative errors divide by ``b`` (the compared-against image, usually the reference or the original).
    """
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}")
    diff = np.abs(a.astype(np.float32) - b.astype(np.float32))
    if kind in ("sq", "rel_sq"):
        diff = diff * diff
    if kind == "rel_abs":
        diff = diff / (np.abs(b) + REL_EPSILON)
    elif kind == "rel_sq":
        diff = diff / (b * b + REL_EPSILON)
    elif kind not in ("abs", "sq"):
        raise ValueError(f"unknown error kind {kind!r}")
    result = diff.mean(axis=2, dtype=np.float32)
    return np.nan_to_num(result, nan=0.0, posinf=0.0, neginf=0.0)


def robust_max(values: np.ndarray, percentile: float = 99.5, sample: int = 1 << 18) -> float:
    """A colour-scale maximum that ignores a few outliers (fireflies); estimated on a sample for speed."""
    flat = values.reshape(-1)
    if flat.size > sample:
        step = flat.size // sample
        flat = flat[::step]
    top = float(np.percentile(flat, percentile)) if flat.size else 0.0
    if top <= 0.0:
        top = float(flat.max()) if flat.size else 0.0
    return top if top > 0.0 else 1.0


def colormap_lut(name: str = COLORMAP) -> np.ndarray:
    """A 256 x 3 uint8 lookup table of a perceptual colour map."""
    import pyqtgraph as pg

    return np.asarray(pg.colormap.get(name).getLookupTable(nPts=256, mode="byte", alpha=False), dtype=np.uint8)


class FalseColour:
    """Maps error values in [0, vmax] through a colour map; a converter for DisplayPyramid."""

    def __init__(self, vmax: float, name: str = COLORMAP) -> None:
        self.vmax = float(vmax)
        self.lut = colormap_lut(name)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        if values.ndim == 3:
            values = values[:, :, 0]
        index = np.clip(values * (255.0 / self.vmax), 0.0, 255.0).astype(np.uint8)
        return self.lut[index]
