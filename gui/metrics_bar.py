"""The bar above the viewer that scores A and B against the reference: PSNR / SSIM, and relMSE for HDR.

Each (image, reference) pair is scored once, off the GUI thread, and kept while that reference is loaded.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from engine.api import Image

from . import background
from .session import Session


class MetricsBar(QLabel):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.setObjectName("metricsLabel")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setContentsMargins(8, 2, 8, 2)
        self.hide()
        #: (id(image), id(reference)) -> (image, reference, text); the images are kept so ids cannot be reused.
        self._cache: dict[tuple[int, int], tuple[Image, Image, str]] = {}
        self._running: set[tuple[int, int]] = set()
        self._keys: tuple[str | None, str | None] = (None, None)

    def forget(self) -> None:
        """Drop the scores (a new image or reference was loaded)."""
        self._cache.clear()

    def show_scores(self, a_key: str | None, b_key: str | None) -> None:
        """Score what A and B show against the reference (hidden without one); pending pairs say "computing"."""
        self._keys = (a_key, b_key)
        reference = self.session.reference
        if reference is None:
            self.hide()
            return
        parts: list[str] = []
        pending = False
        for tag, key in (("A", a_key), ("B", b_key)):
            source = self.session.source(key) if key else None
            if source is None or key == "reference" or key.startswith("layer:"):  # an AOV layer is not scored
                continue
            if key == "preview":  # changes several times a second: scored once it is a result
                parts.append(f"<b>{tag}</b> live preview")
                continue
            cache_key = (id(source.image), id(reference))
            if cache_key in self._cache:
                parts.append(f"<b>{tag}</b> {self._cache[cache_key][2]}")
            else:
                pending = True
                parts.append(f"<b>{tag}</b> computing\u2026")
                self._compute(source.image, reference, cache_key)
        if not parts:
            parts.append("choose an image other than the reference as A or B")
        self.setText("vs reference \u2014 " + " &nbsp;&nbsp;|&nbsp;&nbsp; ".join(parts))
        self.setVisible(True)
        self.setProperty("pending", pending)

    def _compute(self, image: Image, reference: Image, cache_key: tuple[int, int]) -> None:
        if cache_key in self._cache or cache_key in self._running:
            return
        self._running.add(cache_key)

        def compute() -> str:
            return metrics_text(image, reference)

        def done(text: str) -> None:
            self._running.discard(cache_key)
            if self.session.reference is reference:  # still the same reference: keep and show it
                self._cache[cache_key] = (image, reference, text)
                self.show_scores(*self._keys)

        def error(exc: Exception, details: str) -> None:
            done(f"n/a ({exc})")

        background.call_in_background(compute, done, error)

    def scores_text(self) -> str:
        return self.text() if self.isVisible() else ""


def metrics_text(image: Image, reference: Image) -> str:
    """"PSNR 31.20 dB · SSIM 0.9123" (+ relMSE for HDR) of ``image`` against ``reference``."""
    if image.pixels.shape != reference.pixels.shape:
        return f"n/a (size {image.width}\u00d7{image.height} vs reference {reference.width}\u00d7{reference.height})"
    from engine.api import metrics

    if reference.meta.hdr or image.meta.hdr:
        # Linear HDR values have no peak: score the display-like version (clip, gamma 1/2.2) as the
        # benchmark protocol does, and add relMSE, the render-denoising standard.
        def display(x):
            return np.clip(x, 0.0, 1.0) ** (1.0 / 2.2)

        return " \u00b7 ".join([
            f"PSNR {metrics.tonemapped_psnr(image.pixels, reference.pixels):.2f} dB",
            f"SSIM {metrics.ssim(display(image.pixels), display(reference.pixels)):.4f}",
            f"relMSE {metrics.relmse(image.pixels, reference.pixels):.4g}"])
    parts = [f"PSNR {metrics.psnr(image.pixels, reference.pixels):.2f} dB",
             f"SSIM {metrics.ssim(image.pixels, reference.pixels):.4f}"]
    return " \u00b7 ".join(parts)
