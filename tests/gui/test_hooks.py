"""Plug-in points for other parts of the app: task panels (ZSSR) and the training dialog."""

from __future__ import annotations

import sys
import threading
import types

import numpy as np
from PySide6.QtWidgets import QDialog, QLabel, QVBoxLayout, QWidget

import engine.imageio as imageio
from engine.image import make_image
from engine.jobs import ImageResult, Progress
from gui import background, task_panels
from gui.app import build_window


class FakePanel(QWidget):
    title = "Fake trainer (train on this image)"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel("fake")
        QVBoxLayout(self).addWidget(self.label)
        self.progress_seen = []
        self.built_in_thread = None
        self.finished_calls = 0

    def make_job(self, image, token):
        self.built_in_thread = threading.current_thread()
        self.label.setText("starting")  # touches a widget: must happen in the GUI thread

        def job():
            for i in range(5):
                token.raise_if_cancelled()
                preview = image.with_pixels(np.clip(image.pixels * (i + 1) / 5, 0, 1))
                yield Progress((i + 1) / 5, "train", metrics={"iteration": i, "loss": 1.0 / (i + 1)}, preview=preview)
            return ImageResult(preview, "Fake x1", "fake", "CPU", 0.1)

        return job()

    def on_progress(self, progress):
        self.progress_seen.append(progress.metrics.get("iteration"))

    def job_finished(self):
        self.finished_calls += 1


def test_task_panel_joins_its_task_and_runs_in_the_window(qtbot, tmp_path, monkeypatch):
    module = types.ModuleType("gui.fake_panel")
    module.FakePanel = FakePanel
    monkeypatch.setitem(sys.modules, "gui.fake_panel", module)
    monkeypatch.setattr(task_panels, "KNOWN_PANELS", (
        ("fake", "super-resolution", "gui.fake_panel", "FakePanel", "unused title", "A fake panel for tests."),
        ("missing", "super-resolution", "gui.not_there", "Nope", "Missing", "Not installed."),
    ))
    specs = task_panels.available_task_panels()
    assert [s.key for s in specs] == ["fake"] and specs[0].title == FakePanel.title

    path = tmp_path / "in.png"
    imageio.write_image(path, make_image(np.full((16, 16, 3), 0.5, np.float32)))
    win = build_window([str(path)])
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.session.original is not None, timeout=10000)
    assert win.model_panel.select("panel", "fake")
    panel = win.model_panel.current_task_panel()
    assert isinstance(panel, FakePanel) and win.model_panel.stack.currentWidget() is panel
    assert win.model_label.text() == f"Model: {FakePanel.title}"
    with qtbot.waitSignal(win.resultAdded, timeout=10000):
        win.run_current()
    qtbot.waitUntil(lambda: not win.runner.is_running(), timeout=5000)
    assert panel.built_in_thread is threading.main_thread()
    assert panel.progress_seen and panel.progress_seen[-1] == 4
    # The worker clears its running flag before its finished signal reaches the GUI thread: wait for that.
    qtbot.waitUntil(lambda: panel.finished_calls == 1, timeout=5000)
    assert win.session.results[0].label == "Fake x1"
    background.wait_idle(5000)


def test_train_dialog_menu_action_refreshes_the_models(qtbot, monkeypatch):
    opened = []

    class FakeTrainDialog(QDialog):
        def __init__(self, parent, registry, **suggested):
            super().__init__(parent)
            opened.append(registry)

    module = types.ModuleType("gui.train_dialog")
    module.TrainDialog = FakeTrainDialog
    monkeypatch.setitem(sys.modules, "gui.train_dialog", module)
    win = build_window([])
    qtbot.addWidget(win)
    assert win.act_train is not None and "Train" in win.act_train.text()
    refreshed = []
    monkeypatch.setattr(win.model_panel, "refresh", lambda: refreshed.append(True))
    win.act_train.trigger()
    assert opened == [win.registry]
    dialog = win.findChild(FakeTrainDialog)
    dialog.accept()
    qtbot.waitUntil(lambda: bool(refreshed), timeout=2000)
    background.wait_idle(5000)
