"""Toolbar icons: line-art SVGs in resources/icons, tinted to the theme's text colour."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QByteArray, QSize
from PySide6.QtGui import QIcon, QPixmap

from engine.api import resources_dir


def icons_dir():
    return resources_dir() / "icons"


@lru_cache(maxsize=128)
def icon(name: str, colour: str = "#dfe1e2") -> QIcon:
    """The icon ``name`` (file ``<name>.svg``) drawn in ``colour``; an empty icon when the file is missing."""
    path = icons_dir() / f"{name}.svg"
    try:
        svg = path.read_text(encoding="utf-8").replace("currentColor", colour)
    except OSError:
        return QIcon()
    result = QIcon()
    for size in (16, 24, 32, 48):
        pixmap = QPixmap(QSize(size, size))
        pixmap.loadFromData(QByteArray(svg.encode("utf-8")), "SVG")
        result.addPixmap(pixmap)
    return result


def app_icon() -> QIcon:
    path = icons_dir() / "app.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()
