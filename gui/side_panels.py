"""The History list (results made this session) and the batch Queue (files dropped together)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.api import ImageResult


class HistoryPanel(QWidget):
    """Every result of this session; choosing one shows it as B."""

    chosen = Signal(str)  # session key "result:N"
    saveRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setAlternatingRowColors(True)
        self.list.setWordWrap(True)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.itemActivated.connect(lambda item: self.chosen.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.list.itemClicked.connect(lambda item: self.chosen.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.save_button = QPushButton("Save\u2026")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._save_current)
        self.list.currentItemChanged.connect(lambda *_: self._update_save_button())
        self.empty = QLabel("Results you make appear here.")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.empty)
        layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.save_button)
        layout.addLayout(row)
        self.set_results([])

    def set_results(self, results: list[ImageResult], is_saved=None) -> None:
        """Show ``results`` (the open image's); ``is_saved(result)`` marks the saved ones."""
        self.list.clear()
        for index, result in enumerate(results):
            image = result.image
            state = " \u00b7 saved" if is_saved is not None and is_saved(result) else ""
            text = (f"#{index + 1}  {result.label}\n{image.width}\u00d7{image.height} \u00b7 {result.seconds:.1f} s"
                    f"{state}")
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, f"result:{index}")
            details = "\n".join(f"{k}: {v}" for k, v in result.details.items())
            item.setToolTip(f"{result.label}\nModel: {result.model_id}\nDevice: {result.device}\n{details}".strip())
            self.list.addItem(item)
        self.empty.setVisible(not results)
        self.list.setVisible(bool(results))
        self._update_save_button()

    def select_key(self, key: str | None) -> None:
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) == key:
                self.list.blockSignals(True)
                self.list.setCurrentRow(row)
                self.list.blockSignals(False)
                break
        self._update_save_button()  # the blocked signal would have done it

    def _update_save_button(self) -> None:
        self.save_button.setEnabled(self.list.currentItem() is not None)

    def _save_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.saveRequested.emit(item.data(Qt.ItemDataRole.UserRole))


class QueuePanel(QWidget):
    """Files dropped or opened together: open any of them, or process them all with the current model."""

    openRequested = Signal(str)
    processRequested = Signal()

    STATUS_MARKS = {"waiting": "", "running": "\u25b6 ", "done": "\u2714 ", "failed": "\u2718 ",
                    "cancelled": "\u2013 "}

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.itemActivated.connect(lambda item: self.openRequested.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.list.itemDoubleClicked.connect(
            lambda item: self.openRequested.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.process_button = QPushButton("Process all\u2026")
        self.process_button.setToolTip("Run the selected model on every queued file and save the results")
        self.process_button.clicked.connect(self.processRequested)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(lambda: self.set_paths([]))
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addWidget(self.clear_button)
        row.addStretch(1)
        row.addWidget(self.process_button)
        layout.addLayout(row)
        self._status: dict[str, str] = {}
        self._note = ""
        self.set_paths([])

    def set_paths(self, paths: list[str], note: str = "") -> None:
        self._status = {str(p): "waiting" for p in paths}
        self._note = note
        self._rebuild()

    def paths(self) -> list[str]:
        return list(self._status)

    def set_status(self, path: str, status: str, note: str = "") -> None:
        if path in self._status:
            self._status[path] = status
            self._rebuild(notes={path: note} if note else None)

    def status(self, path: str) -> str:
        return self._status.get(path, "")

    def _rebuild(self, notes: dict[str, str] | None = None) -> None:
        tips = {}
        for row in range(self.list.count()):
            item = self.list.item(row)
            tips[item.data(Qt.ItemDataRole.UserRole)] = item.toolTip()
        self.list.clear()
        for path, status in self._status.items():
            item = QListWidgetItem(self.STATUS_MARKS.get(status, "") + Path(path).name)
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip((notes or {}).get(path) or tips.get(path) or path)
            self.list.addItem(item)
        count = len(self._status)
        done = sum(1 for s in self._status.values() if s == "done")
        text = f"{count} file(s) queued, {done} done." if count else "Drop several files or a folder to queue them."
        self.summary.setText(f"{text} {self._note}".strip() if count else text)
        self.process_button.setEnabled(count > 0)
        self.clear_button.setEnabled(count > 0)
