"""Training-patch statistics and mining (seed 000: "Training Patch Analysis and Mining Skills").

The seed's guideline for restoration networks: extract patches with a stride at least the patch size (no
overlap, so the budget is not spent on near-duplicates), keep the top fraction by mean gradient magnitude (flat
patches teach a restoration network little), and skip geometric augmentation (it changed PSNR by < 0.5 dB).
The statistics it studied are all here: mean gradient magnitude, standard deviation, high-frequency power, and
optionally the current loss of a model on the patch (its "uncertainty").

A patch is a :class:`PatchRef` (image index, top, left, size); extraction never copies pixels until asked,
so a mined set of tens of thousands of patches costs a few megabytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

STATISTICS = ("gradient", "std", "hf_power")


@dataclass(frozen=True)
class PatchRef:
    image: int
    top: int
    left: int
    size: int

    def crop(self, pixels: np.ndarray, scale: int = 1) -> np.ndarray:
        """The patch from ``pixels`` (at ``scale`` times the reference resolution, for SR targets)."""
        s = scale
        return pixels[self.top * s : (self.top + self.size) * s, self.left * s : (self.left + self.size) * s]


def _gray(patch: np.ndarray) -> np.ndarray:
    patch = np.asarray(patch, dtype=np.float32)
    if patch.ndim == 3:
        if patch.shape[2] == 3:
            return patch[..., 0] * 0.299 + patch[..., 1] * 0.587 + patch[..., 2] * 0.114
        return patch.mean(axis=2)
    return patch


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """Per-pixel gradient magnitude of the luma (central differences, replicated borders)."""
    gray = _gray(image)
    gy, gx = np.gradient(gray)
    return np.sqrt(gx * gx + gy * gy)


def mean_gradient(patch: np.ndarray) -> float:
    return float(gradient_magnitude(patch).mean())


def high_frequency_power(patch: np.ndarray, cutoff: float = 0.25) -> float:
    """Mean spectral power above ``cutoff`` (fraction of the Nyquist radius) of the mean-removed luma."""
    gray = _gray(patch)
    gray = gray - gray.mean()
    spectrum = np.abs(np.fft.fft2(gray)) ** 2 / gray.size
    fy = np.fft.fftfreq(gray.shape[0])[:, None]
    fx = np.fft.fftfreq(gray.shape[1])[None, :]
    radius = np.sqrt(fx * fx + fy * fy) / 0.5
    high = radius > cutoff
    return float(spectrum[high].mean()) if high.any() else 0.0


def patch_statistics(patch: np.ndarray) -> dict[str, float]:
    """The seed's per-patch statistics (the loss-based one needs a model: see :func:`loss_scores`)."""
    return {
        "gradient": mean_gradient(patch),
        "std": float(_gray(patch).std()),
        "hf_power": high_frequency_power(patch),
    }


def grid_positions(height: int, width: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners of ``size`` patches on a regular grid with ``stride`` inside an H x W image."""
    if size > height or size > width:
        return []
    tops = range(0, height - size + 1, stride)
    lefts = range(0, width - size + 1, stride)
    return [(t, left) for t in tops for left in lefts]


def extract_grid(
    shapes: Sequence[tuple[int, int]], size: int, stride: int, allow_overlap: bool = False
) -> list[PatchRef]:
    """All grid patches of every image (``shapes`` are (H, W)). ``stride < size`` overlaps patches, which the
    seed found wasteful; it is only allowed as an explicit baseline (``allow_overlap=True``)."""
    if stride < size and not allow_overlap:
        raise ValueError(f"stride {stride} < patch size {size}: overlapping patches (pass allow_overlap=True)")
    refs = []
    for index, (height, width) in enumerate(shapes):
        refs.extend(PatchRef(index, t, left, size) for t, left in grid_positions(height, width, size, stride))
    return refs


def score_patches(images: Sequence[np.ndarray], refs: Sequence[PatchRef], statistic: str = "gradient") -> np.ndarray:
    """One score per patch (higher = more informative). Gradient scores reuse a per-image gradient map."""
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r} (known: {', '.join(STATISTICS)})")
    scores = np.empty(len(refs), dtype=np.float64)
    if statistic == "gradient":
        maps: dict[int, np.ndarray] = {}
        for i, ref in enumerate(refs):
            if ref.image not in maps:
                maps = {ref.image: gradient_magnitude(images[ref.image])}  # refs come grouped by image
            scores[i] = float(ref.crop(maps[ref.image]).mean())
        return scores
    for i, ref in enumerate(refs):
        scores[i] = patch_statistics(ref.crop(images[ref.image]))[statistic]
    return scores


def loss_scores(
    images: Sequence[np.ndarray], refs: Sequence[PatchRef], loss_of: Callable[[np.ndarray], float]
) -> np.ndarray:
    """The seed's "uncertainty" statistic: the current loss of a model on each patch (``loss_of(patch)``)."""
    return np.array([loss_of(ref.crop(images[ref.image])) for ref in refs], dtype=np.float64)


def select_top(refs: Sequence[PatchRef], scores: np.ndarray, fraction: float) -> list[PatchRef]:
    """The top ``fraction`` of ``refs`` by score (at least one), in descending score order."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if not refs:
        return []
    count = max(1, int(round(len(refs) * fraction)))
    order = np.argsort(-np.asarray(scores), kind="stable")[:count]
    return [refs[i] for i in order]


def mine_patches(
    images: Sequence[np.ndarray],
    size: int,
    stride: int | None = None,
    fraction: float = 0.5,
    statistic: str = "gradient",
    budget: int | None = None,
) -> list[PatchRef]:
    """Seed 000's mining: non-overlapping grid (``stride`` defaults to ``size``), top ``fraction`` by
    ``statistic``; ``budget`` (if given) caps the count, keeping the highest-scoring patches."""
    stride = size if stride is None else stride
    refs = extract_grid([images[i].shape[:2] for i in range(len(images))], size, stride)
    selected = select_top(refs, score_patches(images, refs, statistic), fraction)
    return selected[:budget] if budget is not None else selected


def random_patches(
    shapes: Sequence[tuple[int, int]], size: int, count: int, rng: np.random.Generator
) -> list[PatchRef]:
    """Baseline: ``count`` patches at uniformly random positions (images chosen in proportion to their area)."""
    usable = [(i, h, w) for i, (h, w) in enumerate(shapes) if h >= size and w >= size]
    if not usable:
        return []
    areas = np.array([(h - size + 1) * (w - size + 1) for _, h, w in usable], dtype=np.float64)
    picks = rng.choice(len(usable), size=count, p=areas / areas.sum())
    refs = []
    for pick in picks:
        index, height, width = usable[pick]
        refs.append(
            PatchRef(index, int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1)), size)
        )
    return refs


def overlapping_patches(shapes: Sequence[tuple[int, int]], size: int, stride: int) -> list[PatchRef]:
    """Baseline: the dense overlapping grid that common training pipelines use (e.g. 96 px patches, stride 40)."""
    return extract_grid(shapes, size, stride, allow_overlap=True)
