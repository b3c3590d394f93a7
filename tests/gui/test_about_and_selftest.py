"""Help > About (version, licence notices of the bundled libraries) and ``main.py --selftest`` / IMAGE start-up."""

from __future__ import annotations

import json

import pytest

import main as app_main
from engine import __version__
from engine.paths import resources_dir
from gui.about_dialog import licence_notices
from gui.app import build_window
from tests.gui.test_main_window import WAIT_MS, write_png

#: Libraries whose notices the packaged app must carry (the issue names them), with the licence each is under.
REQUIRED = {
    "Qt": "LGPL-3.0", "PySide6_Essentials": "LGPL-3.0", "onnxruntime-gpu": "MIT", "opencv-python-headless": "Apache",
    "numpy": "BSD", "torch": "BSD", "QDarkStyle": "MIT", "Intel Open Image Denoise": "Apache-2.0", "Python": "PSF",
}


def test_licence_index_names_every_required_library_with_its_text():
    folder = resources_dir() / "licenses"
    entries = {e["name"]: e for e in json.loads((folder / "index.json").read_text(encoding="utf-8"))}
    for name, licence in REQUIRED.items():
        assert name in entries, f"no licence notice for {name}"
        assert licence in entries[name]["licence"], (name, entries[name]["licence"])
        text = (folder / entries[name]["file"]).read_text(encoding="utf-8")
        assert len(text) > 500, f"{name}: notice too short"
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in (folder / entries["Qt"]["file"]).read_text(encoding="utf-8")
    assert "bm3d" not in {n.lower() for n in entries}  # never redistributed (its licence forbids it)


def test_help_about_shows_version_and_licence_notices(qtbot, window):
    about_action = next(a for m in window.menuBar().actions() if m.text() == "&Help"
                        for a in m.menu().actions() if "About" in a.text())
    about_action.trigger()
    dialog = window.about_dialog
    qtbot.waitExposed(dialog)
    assert __version__ in dialog.about_label.text() and "Compute device" in dialog.about_label.text()
    assert dialog.tabs.tabText(1) == "Third-party licences"
    assert dialog.licence_list.count() == len(licence_notices()) >= 20
    assert dialog.select_notice("Qt")
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in dialog.licence_text.toPlainText()
    assert dialog.select_notice("onnxruntime-gpu") or dialog.select_notice("onnxruntime")
    assert "MIT License" in dialog.licence_text.toPlainText()
    assert not dialog.select_notice("no-such-library")
    dialog.close()


def test_selftest_passes_headless_and_reports_the_model(capsys):
    assert app_main.main(["--selftest"]) == 0
    out = capsys.readouterr().out
    assert "selftest passed" in out and "render-kprcan-aov" in out and "relMSE" in out


def test_selftest_fails_clearly_when_the_result_is_wrong(tmp_path, capsys, monkeypatch):
    """With the noisy input as its own reference, any change moves away from it: the improvement check fails."""
    import engine.selftest as selftest
    from engine.imageio import read_image, write_image

    sample = read_image(resources_dir() / "samples" / "sample_render.exr")
    copy = tmp_path / "sample.exr"
    write_image(copy, sample)
    write_image(tmp_path / "sample_ref.exr", sample)
    original = selftest.run_selftest
    monkeypatch.setattr(selftest, "run_selftest", lambda **kw: original(copy, **kw))
    assert app_main.main(["--selftest"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("selftest FAILED: the result is not closer to the reference")


def test_an_image_given_on_the_command_line_opens(qtbot, tmp_path):
    """``main.py IMAGE`` (what a file manager runs on double-click) opens IMAGE in the window."""
    photo = write_png(tmp_path / "double-clicked.png")
    win = build_window([str(photo)])
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.windowTitle().startswith("double-clicked.png")
                    or "double-clicked.png" in win.windowTitle(), timeout=WAIT_MS)
    assert win.settings.recent_files()[0] == str(photo)


def test_a_file_open_event_opens_the_image(qtbot, tmp_path):
    """macOS hands double-clicked files to the running app as a QFileOpenEvent, not on the command line."""
    from PySide6.QtGui import QFileOpenEvent
    from PySide6.QtWidgets import QApplication

    photo = write_png(tmp_path / "from-finder.png")
    win = build_window([])
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.imageOpened, timeout=WAIT_MS):
        QApplication.sendEvent(QApplication.instance(), QFileOpenEvent(str(photo)))
    assert win.settings.recent_files()[0] == str(photo)


def test_screenshot_without_an_image_is_a_usage_error_before_any_window(tmp_path, monkeypatch, capsys):
    """``--screenshot OUT`` needs an IMAGE: exit code 2 and one line, before a window is built (the unclosed window's
    background calls used to outlive the app and print a traceback at exit)."""
    import gui.app

    monkeypatch.setattr(gui.app, "build_window", lambda *args, **kwargs: pytest.fail("a window was built"))
    assert gui.app.main([], screenshot=str(tmp_path / "x.png")) == 2
    assert "needs an IMAGE" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
