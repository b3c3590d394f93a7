"""Geometric self-ensemble: run a model on rotated and mirrored copies of a tile and average the results.

A network is not exactly equivariant to flips and 90-degree rotations, and its errors on the copies are partly
independent, so their mean (taken back to the original orientation) is a better estimate than any one of them:
the "+" of EDSR+ and ZSSR's final step, and what our render denoisers were trained to accept (random flips and
rotations, normals in random frames). It costs one pass per copy.

    members = passes(8)                       # the 8 symmetries of the square
    out = sum(undo(run(apply(t, tile)), t) for t in members) / len(members)

``tiling.run_tiled`` does this per tile (its ``ensemble`` argument), so memory stays one tile's worth and progress
counts each pass. Averaging happens in the model's value space (log1p for render denoisers, sRGB for photos), where the
model's own outputs live. Normals are left as they are: the render models read them as directions that vary
across the image (their training rotates them at random), which a mirrored image keeps.

Measured (bench/ensemble.py, bench/results/ensemble.md): 8 passes cost 6.5-8.3x the time; they gave the SR models
+0.12-0.18 dB on Set5, the photo denoisers +0.06-0.12 dB, render-kprcan-aov 3.9% / 1.3% lower relMSE at 4 / 16 spp
on the held-out render scenes, and OIDN + AOVs 8.8% / 8.5%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Pass counts the app offers: one pass; the 4 mirror images; the 8 symmetries of the square.
PASS_COUNTS = (1, 4, 8)


@dataclass(frozen=True)
class Symmetry:
    """``rotations`` quarter turns (counter-clockwise, ``np.rot90``), then a left-right mirror if ``mirror``."""

    rotations: int = 0
    mirror: bool = False


#: Four that keep a tile's shape (mirrors and the half turn) first, so passes(4) needs no transposed tiles.
_ORDER = (
    Symmetry(0, False),
    Symmetry(0, True),
    Symmetry(2, True),  # = an up-down mirror
    Symmetry(2, False),
    Symmetry(1, False),
    Symmetry(1, True),
    Symmetry(3, False),
    Symmetry(3, True),
)


def passes(count: int) -> tuple[Symmetry, ...]:
    """The symmetries of a ``count``-pass ensemble (1, 4 or 8); ValueError for another count."""
    if count not in PASS_COUNTS:
        raise ValueError(f"an ensemble has 1, 4 or 8 passes, not {count}")
    return _ORDER[:count]


def apply(symmetry: Symmetry, array: np.ndarray) -> np.ndarray:
    """``array`` (H x W x C) rotated and mirrored (a view, no copy)."""
    out = np.rot90(array, symmetry.rotations, axes=(0, 1)) if symmetry.rotations else array
    return out[:, ::-1] if symmetry.mirror else out


def undo(symmetry: Symmetry, array: np.ndarray) -> np.ndarray:
    """The inverse of ``apply``: a model output brought back to the tile's own orientation (a view)."""
    out = array[:, ::-1] if symmetry.mirror else array
    return np.rot90(out, -symmetry.rotations, axes=(0, 1)) if symmetry.rotations else out


def describe(count: int) -> str:
    """How a result made with ``count`` passes is labelled ("" for one pass)."""
    return "" if count == 1 else f"{count}-pass ensemble"

