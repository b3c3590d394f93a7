"""Issue 46, item 1: results are kept per image while the app runs, and quitting asks before unsaved ones go."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QMessageBox

import engine.imageio as imageio
from tests.gui.conftest import open_and_wait
from tests.gui.test_main_window import run_and_wait, write_png


def _result_on(qtbot, window, path):
    window.ask_before_discarding = True  # as in the app (the test fixture turns it off)
    open_and_wait(qtbot, window, path)
    assert window.model_panel.select("model", "bicubic-x2")
    run_and_wait(qtbot, window)


def test_opening_another_image_and_coming_back_shows_its_results(qtbot, window, tmp_path):
    first, second = write_png(tmp_path / "first.png", 1), write_png(tmp_path / "second.png", 2)
    _result_on(qtbot, window, first)
    made = window.session.results[0]
    open_and_wait(qtbot, window, second)
    assert window.session.results == [] and window.history_panel.list.count() == 0
    # A new image does not show the previous one's outcome.
    assert not window.model_panel.progress.format().startswith("Done")
    assert window.run_label.text() == "Last run: \u2013"
    assert [item.result for item in window.session.unsaved()] == [made]
    open_and_wait(qtbot, window, first)
    assert window.session.results == [made] and window.history_panel.list.count() == 1
    assert window.compare_bar.keys() == ("original", "result:0")  # shown again as B
    assert window.viewer.image_b() is made.image
    assert "earlier result(s) are in the History" in window.message_label.text()


def test_quit_with_unsaved_results_can_be_cancelled(qtbot, window, tmp_path, _no_blocking_message_boxes):
    _result_on(qtbot, window, write_png(tmp_path / "a.png", 3))
    window.close()  # the conftest answers Cancel
    assert window.isVisible()
    assert any("Unsaved results" in asked and "1 result(s)" in asked for asked in _no_blocking_message_boxes)
    window.ask_before_discarding = False


def test_quit_discard_closes_without_writing(qtbot, window, tmp_path, monkeypatch):
    _result_on(qtbot, window, write_png(tmp_path / "a.png", 3))
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Discard))
    before = sorted(p.name for p in tmp_path.iterdir())
    window.close()
    assert not window.isVisible()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_quit_save_all_writes_every_images_results_beside_them(qtbot, window, tmp_path, monkeypatch):
    first, second = write_png(tmp_path / "first.png", 1), write_png(tmp_path / "second.png", 2)
    (tmp_path / "second_bicubic-x2.png").write_bytes(b"not to be replaced")
    _result_on(qtbot, window, first)
    _result_on(qtbot, window, second)
    saved_one = tmp_path / "saved_by_hand.png"
    assert window.save_result(saved_one, wait=True)  # saved already: not written again, not asked about
    assert window.history_panel.list.item(0).text().endswith("saved")
    run_and_wait(qtbot, window)  # a second, unsaved result of the second image
    assert len(window.session.unsaved()) == 2
    asked = []

    def answer(parent, title, text, *args, **kwargs):
        asked.append(text)
        return QMessageBox.StandardButton.SaveAll

    monkeypatch.setattr(QMessageBox, "warning", staticmethod(answer))
    window.close()
    assert not window.isVisible()
    assert "2 result(s) of 2 images" in asked[0]
    assert (tmp_path / "second_bicubic-x2.png").read_bytes() == b"not to be replaced"
    written_first = imageio.read_image(tmp_path / "first_bicubic-x2.png")
    written_second = imageio.read_image(tmp_path / "second_bicubic-x2-2.png")
    assert (written_first.width, written_second.width) == (64, 64)
    assert np.abs(written_second.pixels - window.session.results[1].image.pixels).max() <= 0.5 / 255 + 1e-6
    assert window.session.unsaved() == []
