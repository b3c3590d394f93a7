"""Readable benchmark scores for the model picker.

Manifests record scores under machine keys written by the ``bench/`` scripts (``kodak24_sigma25_psnr``,
``cbox256_spp4_relmse``, ``set5_x2_psnr_y``, ``documents_val16_rmse_tile_...``). :func:`headline_scores` turns
the ones a user compares models by into short lines ("Kodak24 σ25: 31.06 dB"); keys it does not know are left
out rather than shown raw (they stay in the manifest and in bench/results/).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

Formatter = Callable[[re.Match, float], str]

#: (pattern, formatter), in display order. The first match of a pattern is shown once.
_RULES: list[tuple[str, Formatter]] = [
    # Render denoisers: first how they do on Blender scenes that no training or choice saw (bench/render_foreign.py)
    (r"foreign_spp(\d+)_ratio_oidn_aov",
     lambda m, v: f"Unseen Blender scenes, {m[1]} spp: {v:.2f}x the error of OIDN + AOVs"),
    (r"kodak24_sigma(\d+)_psnr", lambda m, v: f"Kodak24 \u03c3{m[1]}: {v:.2f} dB"),
    (r"set5_x(\d+)_psnr_y", lambda m, v: f"Set5 \u00d7{m[1]}: {v:.2f} dB"),
    (r"set5_real_x(\d+)_psnr_y", lambda m, v: f"Set5 \u00d7{m[1]}, blurred + noisy + JPEG input: {v:.2f} dB"),
    (r"cbox256_spp(4|16)_relmse", lambda m, v: f"Cornell box {m[1]} spp: relMSE {v:.4f}"),
    (r"documents_val(\d+)_rmse.*", lambda m, v: f"Dirty Documents ({m[1]} held-out pages): RMSE {v:.4f}"),
]


def headline_scores(scores: Mapping[str, object], limit: int = 4) -> list[str]:
    """Up to ``limit`` readable lines for a manifest's ``scores``."""
    lines: list[str] = []
    for pattern, fmt in _RULES:
        shown = set()
        for key, value in scores.items():
            match = re.fullmatch(pattern, key)
            if match is None or not isinstance(value, int | float) or match.groups() in shown:
                continue
            shown.add(match.groups())
            lines.append(fmt(match, float(value)))
    if not lines and isinstance(scores.get("val_psnr"), int | float):
        lines.append(f"validation PSNR {float(scores['val_psnr']):.2f} dB (training's own split)")
    return lines[:limit]
