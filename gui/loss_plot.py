"""A small live plot of training curves (loss, PSNR...) for the ZSSR panel and the training dialog."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

#: Colours of successive series (readable on dark and light backgrounds).
SERIES_COLOURS = ("#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ba68c8", "#fff176")


class LossPlot(QWidget):
    """Plots named series of (x, y) points as they arrive. ``log_y`` shows y on a log scale (losses)."""

    def __init__(self, parent: QWidget | None = None, *, log_y: bool = True, x_label: str = "step",
                 y_label: str = "loss", markers: bool = False) -> None:
        """``markers``: draw each point as a dot as well (sparse series such as validation scores, whose first
        point is otherwise invisible: a line needs two)."""
        super().__init__(parent)
        self._log_y = log_y
        self._markers = markers
        self._plot = pg.PlotWidget(background=None)
        self._plot.setMinimumHeight(120)
        self._plot.showGrid(x=True, y=True, alpha=0.25)
        self._plot.setLabel("bottom", x_label)
        self._plot.setLabel("left", y_label)
        self._plot.addLegend(offset=(-10, 10))
        self._plot.setLogMode(x=False, y=log_y)
        for axis in ("left", "bottom"):
            # an SI multiplier on a log axis read "loss (x0.001)" beside ticks of 2·10¹
            self._plot.getPlotItem().getAxis(axis).enableAutoSIPrefix(False)
        self._plot.setMenuEnabled(False)
        self._data: dict[str, tuple[list[float], list[float]]] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._plot)
        # Until the first point, the axes have no scale to show: say what will appear instead of made-up ticks.
        self.placeholder = QLabel(f"The {y_label.split(' (')[0]} appears here as training runs", self)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet("color: gray; background: transparent")
        self._set_empty(True)

    def _set_empty(self, empty: bool) -> None:
        self.placeholder.setVisible(empty)
        for axis in ("left", "bottom"):
            self._plot.getPlotItem().getAxis(axis).setStyle(showValues=not empty)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self.placeholder.setGeometry(self.rect())

    @property
    def log_y(self) -> bool:
        return self._log_y

    def set_log_y(self, enabled: bool) -> None:
        self._log_y = enabled
        self._plot.setLogMode(x=False, y=enabled)
        for name in self._curves:
            self._redraw(name)

    def add_point(self, series: str, x: float, y: float) -> None:
        """Append a point to ``series`` (created on first use). Non-finite values are skipped."""
        if not (math.isfinite(x) and math.isfinite(y)):
            return
        if self._log_y and y <= 0:
            return  # a log axis cannot show it
        if series not in self._curves:
            colour = SERIES_COLOURS[len(self._curves) % len(SERIES_COLOURS)]
            dots = dict(symbol="o", symbolSize=6, symbolBrush=colour, symbolPen=None) if self._markers else {}
            self._curves[series] = self._plot.plot([], [], name=series, pen=pg.mkPen(colour, width=2), **dots)
            self._data[series] = ([], [])
        if not any(xs for xs, _ in self._data.values()):
            self._set_empty(False)  # the first point
        xs, ys = self._data[series]
        xs.append(float(x))
        ys.append(float(y))
        self._redraw(series)

    def series(self, name: str) -> tuple[list[float], list[float]]:
        """The points of a series so far (copies)."""
        xs, ys = self._data.get(name, ([], []))
        return list(xs), list(ys)

    def series_names(self) -> list[str]:
        return list(self._curves)

    def clear(self) -> None:
        self._plot.clear()
        legend = self._plot.plotItem.legend
        if legend is not None:
            legend.clear()
        self._curves.clear()
        self._data.clear()
        self._set_empty(True)

    def _redraw(self, name: str) -> None:
        xs, ys = self._data[name]
        self._curves[name].setData(xs, ys)
