"""The pixel inspector: the values of every compared image under the cursor (floats for HDR)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.api import Image

COLUMNS = ("", "R", "G", "B", "\u03b1")


def pixel_of(image: Image, canvas_x: int, canvas_y: int, canvas_size: tuple[int, int]) -> tuple[int, int]:
    """The pixel of ``image`` under a canvas pixel (images smaller than the canvas are stretched over it)."""
    cw, ch = canvas_size
    x = min(image.width - 1, int(canvas_x * image.width / max(1, cw)))
    y = min(image.height - 1, int(canvas_y * image.height / max(1, ch)))
    return x, y


def format_value(value: float, image: Image) -> str:
    """Floats for HDR and 16-bit data; 8-bit data also shows its integer code value."""
    if image.meta.hdr:
        return f"{value:.5g}"
    if image.meta.bit_depth == 8:
        return f"{value:.4f} ({round(value * 255)})"
    return f"{value:.5f}"


class PixelInspector(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._position = QLabel("Move the cursor over the image")
        self._table = QTableWidget(0, len(COLUMNS))
        self._table.setHorizontalHeaderLabels(COLUMNS)
        self._table.verticalHeader().setVisible(False)
        self._table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self._table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self._table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self._table.setFont(mono)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._position)
        layout.addWidget(self._table)
        self._rows: list[tuple[str, list[str]]] = []

    def clear(self) -> None:
        self._position.setText("Move the cursor over the image")
        self._table.setRowCount(0)
        self._rows = []

    def show_pixel(self, canvas_x: int, canvas_y: int, canvas_size: tuple[int, int],
                   sources: list[tuple[str, Image]], extra: list[tuple[str, float]] = ()) -> None:
        """Show the values of each ``(name, image)`` at a canvas pixel; ``extra`` adds scalar rows (error)."""
        if canvas_x < 0 or not sources:
            self.clear()
            return
        self._position.setText(f"x {canvas_x}   y {canvas_y}")
        rows: list[tuple[str, list[str], QColor | None]] = []
        for name, image in sources:
            x, y = pixel_of(image, canvas_x, canvas_y, canvas_size)
            rgb = image.pixels[y, x]
            cells = [format_value(float(v), image) for v in rgb]
            cells.append(format_value(float(image.alpha[y, x]), image) if image.alpha is not None else "\u2013")
            label = name if (x, y) == (canvas_x, canvas_y) else f"{name} @{x},{y}"
            swatch = QColor.fromRgbF(*[min(1.0, max(0.0, float(v))) for v in rgb])
            rows.append((label, cells, swatch))
        for name, value in extra:
            rows.append((name, [f"{value:.5g}", "", "", ""], None))
        self._table.setRowCount(len(rows))
        bold = QFont(self._table.font())
        bold.setBold(True)
        for row, (label, cells, swatch) in enumerate(rows):
            head = QTableWidgetItem(label)
            head.setFont(bold)
            if swatch is not None:
                head.setData(Qt.ItemDataRole.DecorationRole, swatch)
            self._table.setItem(row, 0, head)
            for column, text in enumerate(cells, start=1):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self._table.setItem(row, column, item)
        self._rows = [(label, cells) for label, cells, _ in rows]

    def rows(self) -> list[tuple[str, list[str]]]:
        """What is shown, as text (tests and copy)."""
        return list(self._rows)

    def position_text(self) -> str:
        return self._position.text()
