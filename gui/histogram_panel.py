"""A histogram of the image shown as A or B: red, green, blue and luminance, in stops for HDR renders.

The counts come from :func:`engine.render_views.histogram` (after the viewer's exposure, so sliding the exposure
moves the curve against the display's white, marked by a line); the text under it says how much is over white
and how much is black. ``install(window)`` adds it as a dock beside the pixel inspector (View menu) and keeps it
in step with the A / B choice and the exposure; it is hidden until the user asks for it, and computes nothing
while hidden.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QComboBox, QDockWidget, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine.api import Histogram, histogram

_COLOURS = {"red": QColor(230, 70, 70, 110), "green": QColor(80, 200, 90, 110), "blue": QColor(80, 130, 240, 110),
            "luma": QColor(235, 235, 235, 220)}


class HistogramView(QWidget):
    """Paints a :class:`Histogram` (square-root counts, so that small populations stay visible)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.data: Histogram | None = None
        self.setMinimumSize(200, 110)

    def set_histogram(self, data: Histogram | None) -> None:
        self.data = data
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        area = QRectF(self.rect()).adjusted(4, 4, -4, -18)
        painter.fillRect(area, QColor(20, 22, 26))
        data = self.data
        if data is None:
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, "No image")
            return
        low, high = float(data.edges[0]), float(data.edges[-1])
        top = max(float(np.sqrt(c.max())) for c in (data.red, data.green, data.blue, data.luma)) or 1.0

        def x_of(value: float) -> float:
            return area.left() + (value - low) / (high - low) * area.width()

        centres = 0.5 * (data.edges[:-1] + data.edges[1:])
        for name in ("red", "green", "blue", "luma"):
            counts = np.sqrt(getattr(data, name).astype(np.float64)) / top
            path = QPainterPath(QPointF(x_of(centres[0]), area.bottom()))
            for centre, value in zip(centres, counts, strict=True):
                path.lineTo(QPointF(x_of(float(centre)), area.bottom() - value * area.height()))
            path.lineTo(QPointF(x_of(float(centres[-1])), area.bottom()))
            colour = _COLOURS[name]
            if name == "luma":
                painter.setPen(QPen(colour, 1.2))
                painter.setBrush(Qt.BrushStyle.NoBrush)
            else:
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(colour)
            painter.drawPath(path)
        painter.setPen(QPen(QColor(255, 210, 80), 1, Qt.PenStyle.DashLine))
        white = x_of(data.white)
        painter.drawLine(QPointF(white, area.top()), QPointF(white, area.bottom()))
        painter.setPen(QColor(160, 160, 160))
        ticks = range(int(np.ceil(low / 2) * 2), int(high) + 1, 2) if data.in_stops else (0.0, 0.25, 0.5, 0.75, 1.0)
        for tick in ticks:
            label = (f"{tick:+d}" if tick else "0 EV") if data.in_stops else f"{tick:g}"
            x = min(max(x_of(float(tick)) - 20, area.left()), area.right() - 40)  # edge labels stay inside
            painter.drawText(QRectF(x, area.bottom() + 2, 40, 14), Qt.AlignmentFlag.AlignCenter, label)


class HistogramPanel(QWidget):
    """The view, an A / B choice and a one-line summary."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = HistogramView()
        self.side = QComboBox()
        self.side.addItem("B (right)", "b")
        self.side.addItem("A (left)", "a")
        self.side.setToolTip("Which of the two compared images the histogram shows")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setToolTip("Over white: brighter than the display shows at this exposure (clipped or rolled "
                                "off by the view transform). Black: no light at all.")
        row = QHBoxLayout()
        row.addWidget(QLabel("Image"))
        row.addWidget(self.side, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.summary)
        self._source = None
        self._key = None

    def set_image(self, image, exposure: float = 0.0) -> None:
        """Show ``image``'s histogram (None: empty). Recomputed only when the image or the exposure changed."""
        key = (id(image), float(exposure)) if image is not None else None
        if key == self._key and image is self._source:
            return
        self._source, self._key = image, key
        if image is None:
            self.view.set_histogram(None)
            self.summary.setText("")
            return
        hdr = bool(image.meta.hdr)
        data = histogram(image.pixels, hdr=hdr, exposure=exposure if hdr else 0.0)
        self.view.set_histogram(data)
        scale = "stops around mid-gray (0.18 = 0 EV)" if hdr else "display values 0\u20131"
        self.summary.setText(f"{data.over:.1%} over white \u00b7 {data.under:.1%} black \u00b7 {scale}")


def install(window) -> QDockWidget:
    """Add the histogram dock to the main window (hidden at first; View menu) and keep it up to date."""
    panel = HistogramPanel()
    dock = QDockWidget("Histogram", window)
    dock.setObjectName("histogramDock")
    dock.setWidget(panel)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    inspector = getattr(window, "inspector_dock", None)
    if inspector is not None:
        window.tabifyDockWidget(inspector, dock)
        inspector.raise_()
    dock.hide()
    view_menu = next((action.menu() for action in window.menuBar().actions()
                      if action.menu() is not None and action.text().replace("&", "") == "View"), None)
    toggle = dock.toggleViewAction()
    toggle.setText("&Histogram")
    if view_menu is not None:
        view_menu.addAction(toggle)

    def refresh(*_args) -> None:
        if not dock.isVisible():
            return
        viewer = window.viewer
        image = viewer.image_a() if panel.side.currentData() == "a" else viewer.image_b()
        panel.set_image(image or viewer.image_a(), window.compare_bar.exposure())

    window.compare_bar.sourcesChanged.connect(refresh)
    window.compare_bar.exposureChanged.connect(refresh)
    panel.side.currentIndexChanged.connect(refresh)
    dock.visibilityChanged.connect(refresh)
    window.histogram_panel = panel
    return dock
