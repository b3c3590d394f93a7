"""The comparison viewer: split, side-by-side, flicker and difference views of two images.

Coordinates: the *canvas* is the larger of the two images; a smaller one (e.g. the input of a x2 upscale) is
stretched over it, so that both line up. ``zoom`` is screen pixels per canvas pixel and ``offset`` the screen
position of the canvas origin inside a pane; side-by-side panes share both, which keeps them synchronised.
Pixels are drawn from cached display levels (see display_cache); magnified pixels are nearest-neighbour.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QKeyEvent,
    QLinearGradient,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from engine.api import Image

from .diffmap import ERROR_KINDS, FalseColour, error_map, robust_max
from .display_cache import TILE, DisplayPyramid

MODES = {"split": "Split", "side": "Side by side", "flicker": "Flicker", "diff": "Difference"}
MAX_ZOOM = 64.0
#: Zoom factor of one mouse-wheel notch (four notches double the size).
WHEEL_STEP = 2.0 ** 0.25
DIVIDER_GRAB_PX = 8
#: Milliseconds a paint may spend converting new tiles; the rest is drawn from a thumbnail and refined in the
#: next frames, so that a new image (a live preview) never freezes the window.
PAINT_BUDGET_MS = 15.0
#: Screen pixels per image pixel from which each pixel's values are written into it.
PIXEL_VALUES_ZOOM = 40.0
PANE_GAP = 2
FLICKER_HINT = "Hold Space or click to flip between A and B"
BACKGROUND = QColor(38, 38, 40)


@dataclass
class _Shown:
    label: str
    image: Image


def display_converter(image: Image, exposure: float, tonemap: str):
    """The float -> uint8 conversion of an image's pixels under the viewer's exposure and tone map."""
    from engine.api import to_display_uint8

    hdr = bool(image.meta.hdr)

    def convert(pixels: np.ndarray) -> np.ndarray:
        return to_display_uint8(pixels, hdr=hdr, exposure=exposure, tonemap=tonemap)

    return convert


class CompareViewer(QWidget):
    """Shows images A and B in one of MODES. Emits where the cursor is, in canvas pixels."""

    #: Canvas pixel under the cursor (x, y), or (-1, -1) when outside the images.
    hovered = Signal(int, int)
    #: A left click without dragging, in canvas pixel coordinates (the kernel inspector listens).
    pixelClicked = Signal(int, int)
    zoomChanged = Signal(float)
    modeChanged = Signal(str)
    #: In flicker mode: True while B is shown.
    flickerChanged = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(200, 150)
        self._a: _Shown | None = None
        self._b: _Shown | None = None
        self._mode = "split"
        self._exposure = 0.0
        self._tonemap = "aces"
        self._error_kind = "abs"
        self._zoom = 1.0
        self._offset = QPointF(0.0, 0.0)
        self._fit = True
        self._divider = 0.5  # fraction of the width
        self._show_b = False  # flicker state
        self._drag: str | None = None  # "pan" | "divider"
        self._press_pos = QPointF()
        self._last_pos = QPointF()
        self._moved = False
        self._pyramids: dict[int, tuple[Image, DisplayPyramid, tuple[float, str]]] = {}
        #: ((A, B, kind), pyramid, vmax): the images themselves are kept so that a reused id() cannot alias.
        self._diff: tuple[tuple[Image, Image, str], DisplayPyramid, float] | None = None
        self._diff_problem = ""
        self._deadline = 0.0
        self._empty_text = "Drop images here, or File \u203a Open (Ctrl+O)"
        #: A line over the images (a shot's missing frame), or "".
        self._notice = ""
        #: What the flicker view says it answers to (Space plays a shot instead).
        self.flicker_hint = FLICKER_HINT

    # -- content -------------------------------------------------------------------------------------------
    def set_images(self, a: Image | None, b: Image | None, a_label: str = "A", b_label: str = "B") -> None:
        """Show ``a`` and ``b``. The view is kept when the canvas size is unchanged, refitted otherwise."""
        old_size = self.canvas_size()
        self._a = _Shown(a_label, a) if a is not None else None
        self._b = _Shown(b_label, b) if b is not None else None
        keep = {id(s.image) for s in (self._a, self._b) if s is not None}
        self._pyramids = {k: v for k, v in self._pyramids.items() if k in keep}
        if self.canvas_size() != old_size:
            self._fit = True
        self._relayout()
        self.update()

    def display_settings(self) -> tuple[float, str, float]:
        """(exposure, tone map, zoom): what a picture made ahead of painting (a shot's next frame) must match."""
        return self._exposure, self._tonemap, self._zoom

    def adopt_pyramid(self, image: Image, pyramid: DisplayPyramid, settings: tuple[float, str]) -> bool:
        """Paint ``image`` (shown now) from ``pyramid``, made off the GUI thread with ``settings`` (exposure, tone
        map), instead of converting it while painting; False (and nothing done) when the settings have changed."""
        shown = [s.image for s in (self._a, self._b) if s is not None]
        if tuple(settings) != (self._exposure, self._tonemap) or not any(i is image for i in shown):
            return False
        self._pyramids[id(image)] = (image, pyramid, (self._exposure, self._tonemap))
        return True

    def set_notice(self, text: str) -> None:
        """Show ``text`` in a box over the images ("" removes it): e.g. a shot frame that has no file."""
        if text != self._notice:
            self._notice = text
            self.update()

    def notice(self) -> str:
        return self._notice

    def image_a(self) -> Image | None:
        return self._a.image if self._a else None

    def image_b(self) -> Image | None:
        return self._b.image if self._b else None

    def canvas_size(self) -> tuple[int, int]:
        """(width, height) of the larger shown image, (0, 0) when empty."""
        sizes = [(s.image.width, s.image.height) for s in (self._a, self._b) if s is not None]
        if not sizes:
            return (0, 0)
        return max(sizes, key=lambda wh: wh[0] * wh[1])

    # -- view settings -------------------------------------------------------------------------------------
    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        if mode == self._mode:
            return
        self._mode = mode
        self._show_b = False
        self._relayout()
        self.update()
        self.modeChanged.emit(mode)

    def set_exposure(self, stops: float) -> None:
        self._exposure = float(stops)
        self.update()

    def exposure(self) -> float:
        return self._exposure

    def set_tonemap(self, name: str) -> None:
        self._tonemap = name
        self.update()

    def set_error_kind(self, kind: str) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        self._error_kind = kind
        self.update()

    def error_kind(self) -> str:
        return self._error_kind

    def divider(self) -> float:
        return self._divider

    def set_divider(self, fraction: float) -> None:
        self._divider = min(max(float(fraction), 0.0), 1.0)
        self.update()

    def showing_b(self) -> bool:
        """In flicker mode: whether B is the image on screen."""
        return self._show_b

    def set_flicker_b(self, show_b: bool) -> None:
        if show_b != self._show_b:
            self._show_b = show_b
            self.update()
            self.flickerChanged.emit(show_b)

    # -- zoom and pan --------------------------------------------------------------------------------------
    def zoom(self) -> float:
        return self._zoom

    def offset(self) -> QPointF:
        return QPointF(self._offset)

    def fit_zoom(self) -> float:
        cw, ch = self.canvas_size()
        pane = self._pane_rects()[0]
        if cw == 0 or pane.width() <= 0 or pane.height() <= 0:
            return 1.0
        return min(pane.width() / cw, pane.height() / ch, MAX_ZOOM)

    def min_zoom(self) -> float:
        return min(self.fit_zoom() * 0.5, 1.0)

    def zoom_fit(self) -> None:
        self._fit = True
        self._relayout()
        self.update()

    def zoom_to(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Set the zoom keeping the canvas point under ``anchor`` (pane coordinates; default: centre) fixed."""
        zoom = min(max(zoom, self.min_zoom()), MAX_ZOOM)
        pane = self._pane_rects()[0]
        if anchor is None:
            anchor = QPointF(pane.width() / 2.0, pane.height() / 2.0)
        canvas_point = (anchor - self._offset) / self._zoom
        self._zoom = zoom
        self._offset = anchor - canvas_point * zoom
        self._fit = False
        self.update()
        self.zoomChanged.emit(self._zoom)

    def zoom_1to1(self, anchor: QPointF | None = None) -> None:
        self.zoom_to(1.0, anchor)

    def zoom_in(self) -> None:
        self.zoom_to(self._zoom * 2.0)

    def zoom_out(self) -> None:
        self.zoom_to(self._zoom / 2.0)

    def pan_by(self, dx: float, dy: float) -> None:
        self._offset += QPointF(dx, dy)
        self._fit = False
        self.update()

    def canvas_point(self, pos: QPointF) -> QPointF | None:
        """The canvas position (float pixels) under widget position ``pos``; None outside the panes."""
        for pane in self._pane_rects():
            if pane.contains(pos.toPoint()):
                return (pos - QPointF(pane.topLeft()) - self._offset) / self._zoom
        return None

    def widget_point(self, canvas_x: float, canvas_y: float, pane_index: int = 0) -> QPointF:
        pane = self._pane_rects()[pane_index]
        return QPointF(pane.topLeft()) + self._offset + QPointF(canvas_x, canvas_y) * self._zoom

    # -- layout --------------------------------------------------------------------------------------------
    def _pane_rects(self) -> list[QRect]:
        full = self.rect()
        if self._mode == "side":
            half = (full.width() - PANE_GAP) // 2
            return [QRect(0, 0, half, full.height()), QRect(half + PANE_GAP, 0, full.width() - half - PANE_GAP,
                                                            full.height())]
        return [full]

    def _relayout(self) -> None:
        if not self._fit:
            return
        cw, ch = self.canvas_size()
        pane = self._pane_rects()[0]
        zoom = self.fit_zoom()
        self._zoom = zoom
        self._offset = QPointF((pane.width() - cw * zoom) / 2.0, (pane.height() - ch * zoom) / 2.0)
        self.zoomChanged.emit(self._zoom)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        self._relayout()

    # -- display data --------------------------------------------------------------------------------------
    def _pyramid(self, image: Image) -> DisplayPyramid:
        settings = (self._exposure, self._tonemap)
        entry = self._pyramids.get(id(image))
        if entry is None:
            pyramid = DisplayPyramid(image.pixels, display_converter(image, *settings), image.alpha)
            self._pyramids[id(image)] = (image, pyramid, settings)
            return pyramid
        _, pyramid, used = entry
        if used != settings:
            pyramid.set_converter(display_converter(image, *settings))
            self._pyramids[id(image)] = (image, pyramid, settings)
        return pyramid

    def diff_pyramid(self) -> tuple[DisplayPyramid, float] | None:
        """The false-colour error map of B against A and its scale maximum; None when it cannot be made."""
        if self._a is None or self._b is None:
            self._diff_problem = "The difference view needs two images."
            return None
        a, b = self._a.image, self._b.image
        key = (a, b, self._error_kind)
        if self._diff is not None:
            (da, db, dkind), pyramid, vmax = self._diff
            if da is a and db is b and dkind == self._error_kind:
                return pyramid, vmax
        if a.pixels.shape != b.pixels.shape:
            self._diff_problem = (f"The difference view needs images of the same size "
                                  f"(A is {a.width}\u00d7{a.height}, B is {b.width}\u00d7{b.height}).")
            return None
        errors = error_map(b.pixels, a.pixels, self._error_kind)
        vmax = robust_max(errors)
        pyramid = DisplayPyramid(errors, FalseColour(vmax))
        self._diff = (key, pyramid, vmax)
        self._diff_problem = ""
        return pyramid, vmax

    def diff_values(self) -> tuple[np.ndarray, float] | None:
        """The full-resolution error map shown in the difference view, and its colour-scale maximum."""
        made = self.diff_pyramid()
        if made is None:
            return None
        return made[0].level(0)[:, :, 0], made[1]

    # -- painting ------------------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        try:
            self._paint(painter)
        finally:
            painter.end()  # explicitly: a painter kept alive by a traceback would break the next paint

    def _paint(self, painter: QPainter) -> None:
        # One conversion budget for the whole frame, shared by its panes.
        self._deadline = time.perf_counter() + PAINT_BUDGET_MS / 1000.0
        painter.fillRect(self.rect(), BACKGROUND)
        if self._a is None and self._b is None:
            self._paint_empty(painter)
            return
        panes = self._pane_rects()
        if self._mode == "split":
            divider_x = round(self.width() * self._divider)
            left = QRect(0, 0, divider_x, self.height())
            right = QRect(divider_x, 0, self.width() - divider_x, self.height())
            if self._a:
                self._paint_image(painter, self._a.image, panes[0], left)
            if self._b:
                self._paint_image(painter, self._b.image, panes[0], right)
            self._paint_divider(painter, divider_x)
            self._paint_label(painter, self._a, Qt.AlignmentFlag.AlignLeft, QRect(0, 0, divider_x, self.height()))
            self._paint_label(painter, self._b, Qt.AlignmentFlag.AlignRight, right)
        elif self._mode == "side":
            for pane, shown, align in ((panes[0], self._a, Qt.AlignmentFlag.AlignLeft),
                                       (panes[1], self._b, Qt.AlignmentFlag.AlignLeft)):
                if shown:
                    self._paint_image(painter, shown.image, pane, pane)
                self._paint_label(painter, shown, align, pane)
        elif self._mode == "flicker":
            shown = self._b if (self._show_b and self._b) else self._a or self._b
            if shown:
                self._paint_image(painter, shown.image, panes[0], panes[0])
            tag = "B" if shown is self._b else "A"
            self._paint_label(painter, shown, Qt.AlignmentFlag.AlignLeft, panes[0], prefix=f"{tag} \u00b7 ")
            self._paint_hint(painter, self.flicker_hint)
        else:
            made = self.diff_pyramid()
            if made is None:
                self._paint_hint(painter, self._diff_problem, centre=True)
            else:
                pyramid, vmax = made
                self._paint_pyramid(painter, pyramid, panes[0], panes[0])
                self._paint_scale_bar(painter, vmax)
                caption = f"{ERROR_KINDS[self._error_kind]}: {self._b.label} vs {self._a.label}"
                self._paint_text_box(painter, caption, QRect(panes[0]), Qt.AlignmentFlag.AlignLeft)
        self._paint_zoom(painter)
        if self._notice:
            self._paint_text_box(painter, self._notice, self.rect().adjusted(0, self.height() // 2 - 14, 0, 0),
                                 Qt.AlignmentFlag.AlignHCenter)

    def _paint_image(self, painter: QPainter, image: Image, pane: QRect, clip: QRect) -> None:
        pyramid = self._pyramid(image)
        self._paint_pyramid(painter, pyramid, pane, clip)
        cw, _ = self.canvas_size()
        step = self._zoom * cw / image.width
        if step >= PIXEL_VALUES_ZOOM:
            self._paint_pixel_values(painter, image, pane, clip, step)

    def _paint_pixel_values(self, painter: QPainter, image: Image, pane: QRect, clip: QRect, step: float) -> None:
        """At very high zoom, write each visible pixel's values into it (as tev does)."""
        origin = QPointF(pane.topLeft()) + self._offset
        visible = QRectF(clip.intersected(pane))
        x0 = max(0, math.floor((visible.left() - origin.x()) / step))
        y0 = max(0, math.floor((visible.top() - origin.y()) / step))
        x1 = min(image.width, math.ceil((visible.right() + 1 - origin.x()) / step))
        y1 = min(image.height, math.ceil((visible.bottom() + 1 - origin.y()) / step))
        if x1 <= x0 or y1 <= y0 or (x1 - x0) * (y1 - y0) > 2000:
            return
        painter.save()
        painter.setClipRect(visible)
        font = QFont(self.font())
        font.setPixelSize(max(8, int(step / 6)))
        painter.setFont(font)
        block = image.pixels[y0:y1, x0:x1]
        bright = (np.minimum(block, 1.0) @ np.array([0.2126, 0.7152, 0.0722], np.float32)) > 0.45
        digits = 4 if image.meta.hdr else 3
        for y in range(y0, y1):
            for x in range(x0, x1):
                values = block[y - y0, x - x0]
                text = "\n".join(f"{float(v):.{digits}g}" if image.meta.hdr else f"{float(v):.3f}" for v in values)
                painter.setPen(QColor(20, 20, 20) if bright[y - y0, x - x0] else QColor(235, 235, 235))
                cell = QRectF(origin.x() + x * step, origin.y() + y * step, step, step)
                painter.drawText(cell, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()

    def _paint_pyramid(self, painter: QPainter, pyramid: DisplayPyramid, pane: QRect, clip: QRect) -> None:
        cw, _ = self.canvas_size()
        image_zoom = self._zoom * cw / pyramid.width  # screen pixels per image pixel
        level = pyramid.level_for_zoom(image_zoom)
        level_zoom = image_zoom * (2 ** level)
        lw, lh = pyramid.level_size(level)
        origin = QPointF(pane.topLeft()) + self._offset
        visible = QRectF(clip.intersected(pane))
        if visible.isEmpty():
            return
        x0 = max(0, math.floor((visible.left() - origin.x()) / level_zoom))
        y0 = max(0, math.floor((visible.top() - origin.y()) / level_zoom))
        x1 = min(lw, math.ceil((visible.right() + 1 - origin.x()) / level_zoom))
        y1 = min(lh, math.ceil((visible.bottom() + 1 - origin.y()) / level_zoom))
        if x1 <= x0 or y1 <= y0:
            return
        painter.save()
        painter.setClipRect(visible)
        tiles = [(ty, tx) for ty in range(y0 // TILE, (y1 - 1) // TILE + 1)
                 for tx in range(x0 // TILE, (x1 - 1) // TILE + 1)]
        missing = [t for t in tiles if not pyramid.has_tile(level, *t)]
        if missing and len(tiles) > 1:
            # Conversions may not fit the budget: lay a thumbnail underneath so nothing is ever blank.
            thumb, step = pyramid.thumbnail()
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.drawImage(QRectF(origin.x(), origin.y(), pyramid.width * image_zoom,
                                     pyramid.height * image_zoom), thumb,
                              QRectF(0, 0, pyramid.width / step, pyramid.height / step))
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, level_zoom < 1.0)
        deadline = self._deadline
        deferred = False
        for ty, tx in tiles:
            if not pyramid.has_tile(level, ty, tx) and len(tiles) > 1 and time.perf_counter() > deadline:
                deferred = True
                continue
            sx0, sy0 = max(x0, tx * TILE), max(y0, ty * TILE)
            sx1, sy1 = min(x1, (tx + 1) * TILE), min(y1, (ty + 1) * TILE)
            tile = pyramid.tile(level, ty, tx)
            source = QRectF(sx0 - tx * TILE, sy0 - ty * TILE, sx1 - sx0, sy1 - sy0)
            target = QRectF(origin.x() + sx0 * level_zoom, origin.y() + sy0 * level_zoom,
                            (sx1 - sx0) * level_zoom, (sy1 - sy0) * level_zoom)
            painter.drawImage(target, tile, source)
        if deferred:
            QTimer.singleShot(0, self.update)  # convert the rest in the next frame
        if level == 0 and level_zoom >= 16.0:
            self._paint_pixel_grid(painter, origin, level_zoom, x0, y0, x1, y1)
        painter.restore()

    def _paint_pixel_grid(self, painter: QPainter, origin: QPointF, step: float, x0: int, y0: int, x1: int,
                          y1: int) -> None:
        painter.setPen(QPen(QColor(0, 0, 0, 60), 1))
        for x in range(x0, x1 + 1):
            sx = origin.x() + x * step
            painter.drawLine(QPointF(sx, origin.y() + y0 * step), QPointF(sx, origin.y() + y1 * step))
        for y in range(y0, y1 + 1):
            sy = origin.y() + y * step
            painter.drawLine(QPointF(origin.x() + x0 * step, sy), QPointF(origin.x() + x1 * step, sy))

    def _paint_divider(self, painter: QPainter, x: int) -> None:
        painter.save()
        # Plain rectangles, not antialiased wide lines: those cost milliseconds per frame on tall windows.
        painter.fillRect(QRect(x - 1, 0, 3, self.height()), QColor(0, 0, 0, 110))
        painter.fillRect(QRect(x, 0, 1, self.height()), QColor(255, 255, 255, 230))
        # A round grip in the middle says "drag me".
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        centre = QPointF(x + 0.5, self.height() / 2.0)
        painter.setBrush(QColor(255, 255, 255, 235))
        painter.setPen(QPen(QColor(0, 0, 0, 140), 1))
        painter.drawEllipse(centre, 11, 11)
        painter.setPen(QPen(QColor(40, 40, 40), 2))
        for dx in (-4, 4):
            painter.drawLine(QPointF(centre.x() + dx, centre.y() - 5), QPointF(centre.x() + dx, centre.y() + 5))
        painter.restore()

    def _paint_text_box(self, painter: QPainter, text: str, area: QRect, align: Qt.AlignmentFlag,
                        bottom: bool = False) -> None:
        if not text:
            return
        painter.save()
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, font.pointSizeF() * 0.95))
        painter.setFont(font)
        metrics = painter.fontMetrics()
        width = metrics.horizontalAdvance(text) + 14
        height = metrics.height() + 8
        x = area.left() + 8 if align == Qt.AlignmentFlag.AlignLeft else area.right() - 8 - width
        if align == Qt.AlignmentFlag.AlignHCenter:
            x = area.center().x() - width / 2
        y = area.bottom() - 8 - height if bottom else area.top() + 8
        box = QRectF(x, y, width, height)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 150))
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(QColor(240, 240, 240))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()

    def _paint_label(self, painter: QPainter, shown: _Shown | None, align: Qt.AlignmentFlag, area: QRect,
                     prefix: str = "") -> None:
        if shown is not None and area.width() > 60:
            self._paint_text_box(painter, prefix + shown.label, area, align)

    def _paint_hint(self, painter: QPainter, text: str, centre: bool = False) -> None:
        if centre:
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)
        else:
            self._paint_text_box(painter, text, self.rect(), Qt.AlignmentFlag.AlignRight, bottom=True)

    def _paint_zoom(self, painter: QPainter) -> None:
        self._paint_text_box(painter, f"{self._zoom * 100:.0f}%", self.rect(), Qt.AlignmentFlag.AlignLeft,
                             bottom=True)

    def _paint_scale_bar(self, painter: QPainter, vmax: float) -> None:
        """A vertical colour bar from 0 to vmax at the right edge, as the legend of the error colours."""
        painter.save()
        lut = FalseColour(vmax).lut
        bar = QRectF(self.width() - 40, 48, 14, max(60, min(260, self.height() - 120)))
        gradient = QLinearGradient(bar.bottomLeft(), bar.topLeft())
        for i in range(0, 256, 16):
            gradient.setColorAt(i / 255.0, QColor(*[int(v) for v in lut[i]]))
        gradient.setColorAt(1.0, QColor(*[int(v) for v in lut[255]]))
        back = bar.adjusted(-62, -26, 30, 10)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 150))
        painter.drawRoundedRect(back, 4, 4)
        painter.setBrush(gradient)
        painter.setPen(QPen(QColor(220, 220, 220), 1))
        painter.drawRect(bar)
        painter.setPen(QColor(235, 235, 235))
        painter.drawText(QRectF(bar.left() - 60, bar.top() - 8, 56, 16), Qt.AlignmentFlag.AlignRight,
                         f"{vmax:.3g}")
        painter.drawText(QRectF(bar.left() - 60, bar.bottom() - 8, 56, 16), Qt.AlignmentFlag.AlignRight, "0")
        painter.drawText(QRectF(back.left(), back.top() + 4, back.width(), 16), Qt.AlignmentFlag.AlignCenter,
                         "error")
        painter.restore()

    def _paint_empty(self, painter: QPainter) -> None:
        painter.save()
        area = self.rect().adjusted(40, 40, -40, -40)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor(110, 110, 115), 2, Qt.PenStyle.DashLine))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(QRectF(area), 14, 14)
        painter.setPen(QColor(170, 170, 175))
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.3)
        painter.setFont(font)
        painter.drawText(area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._empty_text)
        painter.restore()

    # -- interaction ---------------------------------------------------------------------------------------
    def _near_divider(self, pos: QPointF) -> bool:
        return self._mode == "split" and abs(pos.x() - self.width() * self._divider) <= DIVIDER_GRAB_PX

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        self._press_pos = QPointF(pos)
        self._last_pos = QPointF(pos)
        self._moved = False
        if event.button() == Qt.MouseButton.LeftButton and self._near_divider(pos):
            self._drag = "divider"
        elif event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            self._drag = "pan"
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        if (pos - self._press_pos).manhattanLength() > 3:
            self._moved = True
        if self._drag == "divider":
            self.set_divider(pos.x() / max(1, self.width()))
        elif self._drag == "pan":
            delta = pos - self._last_pos
            self.pan_by(delta.x(), delta.y())
        else:
            shape = Qt.CursorShape.SplitHCursor if self._near_divider(pos) else Qt.CursorShape.CrossCursor
            self.setCursor(shape)
        self._last_pos = QPointF(pos)
        self._emit_hover(pos)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._drag == "pan" and not self._moved and self._mode == "flicker":
            self.set_flicker_b(not self._show_b)
        elif self._drag == "pan" and not self._moved and event.button() == Qt.MouseButton.LeftButton:
            point = self.canvas_point(event.position())
            cw, ch = self.canvas_size()
            if point is not None and 0 <= point.x() < cw and 0 <= point.y() < ch:
                self.pixelClicked.emit(int(point.x()), int(point.y()))
        self._drag = None
        self.setCursor(Qt.CursorShape.CrossCursor)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._mode == "flicker":
            return
        if self._fit:
            self.zoom_1to1(self._pane_local(event.position()))
        else:
            self.zoom_fit()

    def leaveEvent(self, event) -> None:  # noqa: N802
        self.hovered.emit(-1, -1)

    def _pane_local(self, pos: QPointF) -> QPointF:
        for pane in self._pane_rects():
            if pane.contains(pos.toPoint()):
                return pos - QPointF(pane.topLeft())
        return pos

    def _emit_hover(self, pos: QPointF) -> None:
        point = self.canvas_point(pos)
        cw, ch = self.canvas_size()
        if point is None or not (0 <= point.x() < cw and 0 <= point.y() < ch):
            self.hovered.emit(-1, -1)
        else:
            self.hovered.emit(int(point.x()), int(point.y()))

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        pixel = event.pixelDelta()
        modifiers = event.modifiers()
        if not pixel.isNull() and not modifiers & Qt.KeyboardModifier.ControlModifier:
            self.pan_by(pixel.x(), pixel.y())  # touchpad: two-finger scroll pans
        else:
            notches = event.angleDelta().y() / 120.0
            if notches:
                self.zoom_to(self._zoom * WHEEL_STEP ** notches, self._pane_local(event.position()))
        self._emit_hover(event.position())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        if key == Qt.Key.Key_Space and self._mode == "flicker":
            if not event.isAutoRepeat():
                self.set_flicker_b(not self._show_b)
            return
        step = 40.0
        arrows = {Qt.Key.Key_Left: (step, 0), Qt.Key.Key_Right: (-step, 0), Qt.Key.Key_Up: (0, step),
                  Qt.Key.Key_Down: (0, -step)}
        if key in arrows:
            self.pan_by(*arrows[key])
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and self._mode == "flicker" and not event.isAutoRepeat():
            self.set_flicker_b(not self._show_b)
            return
        super().keyReleaseEvent(event)
