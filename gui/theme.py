"""Dark (qdarkstyle, the default) and light themes, plus a few app-specific touches."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication

EXTRA_STYLE = """
QPushButton#runButton { font-weight: bold; padding: 5px 14px; }
QPushButton#runButton:enabled { background-color: #2f7de1; color: white; border: 1px solid #2a6fc9; }
QPushButton#runButton:enabled:hover { background-color: #3b8bf0; }
QToolBar { spacing: 4px; }
QStatusBar QLabel { padding: 0 6px; }
"""


def apply_theme(app: QApplication, theme: str) -> None:
    """Apply "dark" or "light" to the whole application."""
    if theme == "dark":
        try:
            import qdarkstyle

            app.setStyleSheet(qdarkstyle.load_stylesheet(qt_api="pyside6") + EXTRA_STYLE)
            return
        except ImportError:  # the light theme still works without it
            pass
    app.setStyle("Fusion")
    app.setStyleSheet(EXTRA_STYLE)


def icon_colour(theme: str) -> str:
    return "#dfe1e2" if theme == "dark" else "#32363a"
