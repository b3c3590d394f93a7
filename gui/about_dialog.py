"""Help > About: the app's version and environment, and the licence notices of the libraries it bundles.

The notices come from ``resources/licenses/`` (written by ``scripts/collect_licenses.py`` from the installed
wheels: ``index.json`` lists them, one text file each). Libraries that only the full bundle carries (torch and
its dependencies) are listed only where torch is installed.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.api import resources_dir

from .icons import app_icon


@dataclass(frozen=True)
class LicenceNotice:
    name: str
    version: str
    licence: str
    homepage: str
    path: Path

    def text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except OSError:
            return f"The notice file {self.path.name} is missing from this installation."


def licence_notices(folder: Path | None = None) -> list[LicenceNotice]:
    """The bundled libraries' notices, by name; empty when the index is missing."""
    folder = folder or resources_dir() / "licenses"
    try:
        entries = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    has_torch = importlib.util.find_spec("torch") is not None
    return [
        LicenceNotice(e["name"], e["version"], e["licence"], e.get("homepage", ""), folder / e["file"])
        for e in entries
        if has_torch or e.get("bundles") != "full"
    ]


class AboutDialog(QDialog):
    """Two tabs: "About" (``about_html``) and "Third-party licences" (a list and the selected notice's text)."""

    def __init__(self, about_html: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Restoration Studio")
        self.resize(760, 560)
        self.tabs = QTabWidget()

        about = QWidget()
        row = QHBoxLayout(about)
        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(96, 96))
        logo.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.about_label = QLabel(about_html)
        self.about_label.setWordWrap(True)
        self.about_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.about_label.setOpenExternalLinks(True)
        self.about_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        row.addWidget(logo)
        row.addWidget(self.about_label, 1)
        self.tabs.addTab(about, "About")

        self.notices = licence_notices()
        licences = QWidget()
        layout = QHBoxLayout(licences)
        self.licence_list = QListWidget()
        self.licence_list.addItems([f"{n.name} {n.version} \u2014 {n.licence}" for n in self.notices])
        self.licence_list.setMaximumWidth(300)
        self.licence_text = QPlainTextEdit()
        self.licence_text.setReadOnly(True)
        self.licence_text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.licence_list.currentRowChanged.connect(self._show_notice)
        layout.addWidget(self.licence_list)
        layout.addWidget(self.licence_text, 1)
        self.tabs.addTab(licences, "Third-party licences")
        if self.notices:
            self.licence_list.setCurrentRow(0)
        else:
            self.licence_text.setPlainText("The licence notices are missing from this installation.")

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        box = QVBoxLayout(self)
        box.addWidget(self.tabs)
        box.addWidget(buttons)

    def _show_notice(self, row: int) -> None:
        if 0 <= row < len(self.notices):
            self.licence_text.setPlainText(self.notices[row].text())

    def select_notice(self, name: str) -> bool:
        """Show the notice of library ``name`` (case-insensitive); False when it is not listed."""
        for row, notice in enumerate(self.notices):
            if notice.name.lower() == name.lower():
                self.tabs.setCurrentIndex(1)
                self.licence_list.setCurrentRow(row)
                return True
        return False


def about_html(app_title: str, device_text: str) -> str:
    """Help > About's first tab: version, build flavour, compute device and the main libraries' versions."""
    import platform
    import sys
    from importlib import metadata

    import numpy as np
    from PySide6 import QtCore

    from engine.api import __version__

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    ort = version("onnxruntime-gpu")
    if ort == "not installed":
        ort = version("onnxruntime")
    flavour = "full" if importlib.util.find_spec("torch") is not None else "lite: no ZSSR or training"
    return (f"<h3>{app_title} {__version__}</h3><p>Restores HDR renders, photos and scanned documents on your "
            f"own machine.</p><p><b>Build:</b> {flavour}{' (packaged)' if getattr(sys, 'frozen', False) else ''}"
            f"</p><p><b>Compute device:</b> {device_text}</p>"
            f"<p>Python {platform.python_version()} \u00b7 Qt {QtCore.qVersion()} \u00b7 PySide6 "
            f"{version('PySide6-Essentials')}<br>NumPy {np.__version__} \u00b7 ONNX Runtime {ort} \u00b7 "
            f"OpenCV {version('opencv-python-headless')} \u00b7 PyTorch {version('torch')}<br>"
            f"{platform.system()} {platform.release()} ({sys.platform})</p>")
