"""GUI tests run offscreen, with a private settings store and user folder."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("pytestqt")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("RESTORATION_STUDIO_HOME", str(home))
    from PySide6.QtCore import QSettings

    # QSettings goes to an INI file under the temp dir, so tests never touch the user's settings. The app's
    # QSettings(organisation, application) uses the native format, whose path must be moved too (setting only
    # the INI path let every GUI test write to ~/.config/RestorationStudio).
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for kind in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(kind, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    yield home


@pytest.fixture(autouse=True)
def _no_blocking_message_boxes(monkeypatch):
    """A blocking QMessageBox would hang a test run; answer 'Cancel' and remember what was asked."""
    from PySide6.QtWidgets import QMessageBox

    asked: list[str] = []

    def answer(parent, title, text, *args, **kwargs):
        asked.append(f"{title}: {text}")
        return QMessageBox.StandardButton.Cancel

    for name in ("warning", "question", "critical", "information"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(answer))
    yield asked


@pytest.fixture
def window(qtbot):
    """The main window, shown offscreen; its job and background calls are finished afterwards."""
    from gui import background
    from gui.app import build_window

    win = build_window([])
    qtbot.addWidget(win)
    qtbot.waitExposed(win)
    win.ask_before_discarding = False  # a test's results are not the user's: closing must not ask about them
    yield win
    win.runner.cancel()
    win.runner.wait(5)
    background.wait_idle(5000)


def open_and_wait(qtbot, win, path, timeout_ms: int = 10000) -> None:
    """Open ``path`` in the window and wait until it is shown."""
    with qtbot.waitSignal(win.imageOpened, timeout=timeout_ms):
        win.open_paths([str(path)])
