"""The main window end to end (offscreen): opening, running, cancelling, failing, comparing, inspecting, saving."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage

import engine.imageio as imageio
from engine.image import make_image
from engine.jobs import ImageResult, Progress
from gui import background
from gui.app import build_window
from tests.gui.conftest import open_and_wait

WAIT_MS = 10000


def write_png(path: Path, seed: int = 0, size: int = 32) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.random((size, size, 3), dtype=np.float32)
    imageio.write_image(path, make_image(pixels))
    return path


@pytest.fixture
def photo(tmp_path):
    return write_png(tmp_path / "photo.png")


def drop(win, paths, modifiers=Qt.KeyboardModifier.NoModifier):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, modifiers)
    win.dropEvent(event)


def run_and_wait(qtbot, win, signal=None):
    with qtbot.waitSignal(signal or win.resultAdded, timeout=WAIT_MS):
        win.run_current()
    qtbot.waitUntil(lambda: not win.runner.is_running(), timeout=WAIT_MS)


def test_open_by_command_line_argument(qtbot, photo):
    win = build_window([str(photo)])
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.session.original is not None, timeout=WAIT_MS)
    assert win.session.original.width == 32
    assert "32\u00d732" in win.image_label.text() and "PNG 8-bit" in win.image_label.text()
    assert win.viewer.image_a() is win.session.original
    assert win.settings.recent_files()[0] == str(photo.resolve())
    assert "photo.png" in win.windowTitle()


def test_drop_one_file_several_files_and_a_folder(qtbot, window, tmp_path):
    first = write_png(tmp_path / "a.png", 1)
    with qtbot.waitSignal(window.imageOpened, timeout=WAIT_MS):
        drop(window, [first])
    assert window.session.original_path == first
    folder = tmp_path / "batch"
    folder.mkdir()
    files = [write_png(folder / f"{name}.png", i) for i, name in enumerate("xyz")]
    (folder / "notes.txt").write_text("not an image")
    with qtbot.waitSignal(window.imageOpened, timeout=WAIT_MS):
        drop(window, [folder])
    assert window.queue_panel.paths() == [str(p) for p in files]
    assert window.session.original_path == files[0]
    with qtbot.waitSignal(window.imageOpened, timeout=WAIT_MS):
        drop(window, [files[2], first])
    assert window.queue_panel.paths() == [str(files[2]), str(first)]


def test_dropping_a_shot_folder_opens_the_frames_as_a_shot_not_their_references_and_aovs(qtbot, window, tmp_path):
    from engine.image import ImageMeta

    shot = tmp_path / "shot"
    shot.mkdir()
    meta = ImageMeta(format="exr", bit_depth=32, sample_type="float", hdr=True, color_space="linear")
    rgb = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
    for name in ("frame_0000", "frame_0000_ref", "frame_0000_albedo", "frame_0001", "frame_0001_ref"):
        imageio.write_image(shot / f"{name}.exr", make_image(rgb, None, meta))
    with qtbot.waitSignal(window.shots.shotOpened, timeout=WAIT_MS):  # a folder of frames is one shot
        drop(window, [shot])
    assert window.shots.shot.frames == (0, 1) and window.shots.shot.name == "frame_####.exr"
    assert window.session.original_path == shot / "frame_0000.exr"
    assert "albedo" in window.session.original.layers  # the sidecar left out of the queue is the frame's layer


def test_corrupt_file_gives_a_clear_message(qtbot, window, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with qtbot.waitSignal(window.openFailed, timeout=WAIT_MS) as blocker:
        window.open_paths([str(bad)])
    assert "broken.png" in blocker.args[0]
    dialog = window.last_error_dialog
    assert dialog is not None and dialog.isVisible()
    assert "broken.png" in dialog.text()
    assert window.session.original is None
    dialog.close()


def test_run_a_model_to_completion_and_save_round_trip(qtbot, window, photo, tmp_path):
    open_and_wait(qtbot, window, photo)
    assert window.model_panel.select("model", "bicubic-x2")
    run_and_wait(qtbot, window)
    result = window.session.results[0]
    assert (result.image.width, result.image.height) == (64, 64)
    assert window.compare_bar.keys() == ("original", "result:0")
    assert window.viewer.image_b() is result.image
    assert window.run_label.text().startswith("Last run: ")
    assert window.history_panel.list.count() == 1
    # The new result is shown as B and selected in the history, so the history's Save button can save it
    # (it stayed greyed out: selecting the row there blocked the signal that enabled it).
    assert window.history_panel.list.currentRow() == 0 and window.history_panel.save_button.isEnabled()
    assert window.model_panel.progress.format().startswith("Done")
    # Save keeps the input's format (PNG, 8-bit) and reads back equal after 8-bit quantisation.
    target = tmp_path / "out" / "restored.png"
    target.parent.mkdir()
    assert window.save_result(target, wait=True)
    back = imageio.read_image(target)
    assert back.meta.format == "png" and back.meta.bit_depth == 8
    assert np.abs(back.pixels - result.image.pixels).max() <= 0.5 / 255 + 1e-6


def test_original_is_never_overwritten_without_confirmation(qtbot, window, photo, monkeypatch):
    open_and_wait(qtbot, window, photo)
    window.model_panel.select("model", "bicubic-x2")
    run_and_wait(qtbot, window)
    before = photo.read_bytes()
    asked = []
    monkeypatch.setattr(window, "confirm", lambda title, text: asked.append(title) or False)
    assert not window.save_result(photo, wait=True)
    assert asked and photo.read_bytes() == before
    monkeypatch.setattr(window, "confirm", lambda title, text: True)
    assert window.save_result(photo, wait=True)
    assert imageio.read_image(photo).width == 64


def slow_job(image, token, steps=400):
    for i in range(steps):
        token.raise_if_cancelled()
        time.sleep(0.01)
        yield Progress((i + 1) / steps, "work", f"step {i}", eta_s=(steps - i) * 0.01,
                       preview=image if i == 2 else None)
    return ImageResult(image, "slow", "slow", "CPU", 1.0)


def test_cancel_takes_effect_within_a_second(qtbot, window, photo, monkeypatch):
    open_and_wait(qtbot, window, photo)
    monkeypatch.setattr(window.runs, "job_factory", lambda request, measure_each=False: (slow_job, "Slow job"))
    window.run_current()
    qtbot.waitUntil(lambda: "work" in window.model_panel.progress.format(), timeout=WAIT_MS)
    assert "%" in window.model_panel.progress.format() and "left" in window.model_panel.progress.format()
    qtbot.waitUntil(lambda: window.session.preview is not None, timeout=2000)  # the live preview is shown
    assert window.compare_bar.keys()[1] == "preview" and window.viewer.image_b() is window.session.preview
    started = time.monotonic()
    with qtbot.waitSignal(window.runner.finished, timeout=1000):
        window.cancel_job()
    assert time.monotonic() - started < 1.0
    assert window.model_panel.progress.format() == "Cancelled"
    assert window.session.results == [] and window.session.preview is None
    assert window.model_panel.run_button.isEnabled()


def test_failed_job_shows_a_dialog_with_details_and_the_app_survives(qtbot, window, photo, monkeypatch):
    open_and_wait(qtbot, window, photo)

    def broken(image, token):
        yield Progress(0.5, "work")
        raise RuntimeError("the tile exploded")

    monkeypatch.setattr(window.runs, "job_factory", lambda request, measure_each=False: (broken, "Broken job"))
    with qtbot.waitSignal(window.runner.finished, timeout=WAIT_MS):
        window.run_current()
    dialog = window.last_error_dialog
    assert dialog.isVisible() and "the tile exploded" in dialog.text()
    assert "Traceback" in dialog.detailedText()
    dialog.close()
    monkeypatch.undo()
    window.model_panel.select("model", "bicubic-x2")
    run_and_wait(qtbot, window)
    assert len(window.session.results) == 1


def test_compare_modes_pixel_inspector_and_reference_metrics(qtbot, window, photo, tmp_path):
    open_and_wait(qtbot, window, photo)
    window.model_panel.select("model", "nlm")
    run_and_wait(qtbot, window)
    for mode in ("split", "side", "flicker", "diff"):
        window.set_mode(mode)
        assert window.viewer.mode() == mode and window.mode_actions[mode].isChecked()
        assert not window.viewer.grab().toImage().isNull()
    window.set_mode("split")
    # Inspector: values of A and B at the hovered pixel, 8-bit code values for 8-bit images.
    window.viewer.hovered.emit(5, 7)
    rows = dict(window.inspector.rows())
    original = window.session.original.pixels[7, 5]
    result = window.session.results[0].image.pixels[7, 5]
    assert rows["A"][0] == f"{original[0]:.4f} ({round(original[0] * 255)})"
    assert rows["B"][2].startswith(f"{result[2]:.4f}")
    assert window.inspector.position_text() == "x 5   y 7"
    # A reference adds PSNR / SSIM for A and B.
    reference = write_png(tmp_path / "ref.png", seed=0)
    with qtbot.waitSignal(window.compare_bar.sourcesChanged, timeout=WAIT_MS):
        window.load_reference(str(reference))
    qtbot.waitUntil(lambda: "computing" not in window.metrics_text() and "PSNR" in window.metrics_text(),
                    timeout=WAIT_MS)
    assert window.metrics_text().count("PSNR") == 2 and "SSIM" in window.metrics_text()
    assert "inf" in window.metrics_text()  # A is the reference's own pixels
    # Swapping A and B keeps both choices.
    window.compare_bar.swap()
    assert window.compare_bar.keys() == ("result:0", "original")


def test_export_comparison_png(qtbot, window, photo, tmp_path):
    open_and_wait(qtbot, window, photo)
    window.model_panel.select("model", "nlm")
    run_and_wait(qtbot, window)
    split = tmp_path / "split.png"
    assert window.export_comparison(split)
    assert (QImage(str(split)).width(), QImage(str(split)).height()) == (32, 32)
    window.set_mode("side")
    side = tmp_path / "side.png"
    assert window.export_comparison(side)
    picture = QImage(str(side))
    assert picture.width() > 64 and picture.height() == 32


def test_model_panel_params_aovs_and_warning(qtbot, window, tmp_path):
    render = tmp_path / "render.exr"
    pixels = np.full((16, 16, 3), 2.0, np.float32)
    from engine.image import ImageMeta

    meta = ImageMeta(format="exr", bit_depth=32, sample_type="float", hdr=True, color_space="linear")
    imageio.write_image(render, make_image(pixels, meta=meta, layers={"albedo": np.ones((16, 16, 3), np.float32)}))
    open_and_wait(qtbot, window, render)
    window.model_panel.select("model", "nlm")
    panel = window.model_panel
    assert "noise_level" in panel.params()
    assert "albedo" in panel.aovs.text()
    assert panel.warning.isVisible() and "HDR" in panel.warning.text()
    assert window.model_label.text().startswith("Model: ")


def test_the_quality_setting_runs_an_ensemble_and_is_remembered(qtbot, photo):
    win = build_window([])
    qtbot.addWidget(win)
    open_and_wait(qtbot, win, photo)
    assert win.model_panel.select("model", "bicubic-x2")
    assert win.model_panel.ensemble() == 1  # one pass unless the user asks
    box = win.model_panel.quality_box
    box.setCurrentIndex(box.findData(4))
    run_and_wait(qtbot, win)
    result = win.session.results[0]
    assert "4-pass ensemble" in result.label and result.details["ensemble"] == 4
    win.session.forget_results()  # closing would ask about the unsaved result (tests/gui/test_unsaved_results.py)
    win.close()
    again = build_window([])
    qtbot.addWidget(again)
    assert again.model_panel.ensemble() == 4
    background.wait_idle(5000)


def test_settings_persist_between_runs(qtbot, photo):
    win = build_window([])
    qtbot.addWidget(win)
    win.model_panel.tile_box.setValue(256)
    win.set_device("cpu")
    win.compare_bar.set_tonemap("reinhard")
    win.close()
    again = build_window([])
    qtbot.addWidget(again)
    assert again.model_panel.tile() == 256
    assert again.settings.device == "cpu"
    assert again.compare_bar.tonemap() == "reinhard"
    assert again.settings.theme == "dark"
    background.wait_idle(5000)


def test_a_tile_that_is_mostly_overlap_is_pointed_out(qtbot, window):
    """The tile size is one remembered setting for every model: 256 px suits a photo denoiser (16-32 px of
    overlap) but is 90% overlap for a render model (88 px on each side), which the panel says."""
    panel = window.model_panel
    panel.select("model", "render-kprcan-aov")
    panel.tile_box.setValue(256)
    assert panel.tile_note.isVisibleTo(panel) and "90% overlap" in panel.tile_note.text()
    assert "1024 px" in panel.tile_note.text()
    panel.select("model", "photo-denoise-color")  # overlap 32: 256 px tiles are 44% overlap, fine
    assert not panel.tile_note.isVisibleTo(panel)
    panel.select("model", "render-kprcan-aov")
    panel.tile_box.setValue(0)  # Auto
    assert not panel.tile_note.isVisibleTo(panel)


def test_opening_an_image_suggests_a_suitable_model(qtbot, window, photo, tmp_path):
    window.model_panel.select("model", "oidn")  # an HDR render model: unsuitable for an 8-bit photo
    open_and_wait(qtbot, window, photo)
    entry = window.model_panel.current_entry()
    assert entry.manifest.task == "photo-denoise" and not window.model_panel.warning.isVisible()
    assert entry.id == window.registry.default_for("photo-denoise").id  # the same preference as everywhere
    window.model_panel.select("model", "bicubic-x2")  # suits the photo: kept when the next one opens
    open_and_wait(qtbot, window, write_png(tmp_path / "second.png", seed=3))
    assert window.model_panel.current_entry().id == "bicubic-x2"


def test_viewer_keys_about_box_and_unsupported_files_in_a_drop(qtbot, window, photo, tmp_path):
    open_and_wait(qtbot, window, photo)
    window.viewer.setFocus()
    qtbot.waitUntil(window.viewer.hasFocus, timeout=2000)
    qtbot.keyClick(window.viewer, Qt.Key.Key_1)
    assert window.viewer.zoom() == 1.0
    qtbot.keyClick(window.viewer, Qt.Key.Key_F)
    assert window.viewer.zoom() == pytest.approx(window.viewer.fit_zoom())
    qtbot.keyClick(window.viewer, Qt.Key.Key_E)
    assert window.compare_bar.exposure() == 0.5 and window.viewer.exposure() == 0.5
    qtbot.keyClick(window.viewer, Qt.Key.Key_R)
    assert window.compare_bar.exposure() == 0.0
    qtbot.keyClick(window.viewer, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    assert window.viewer.mode() == "diff"
    about = window.about_text()
    assert "Compute device" in about and "ONNX Runtime" in about and "Qt " in about
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    other = write_png(tmp_path / "other.png", seed=5)
    with qtbot.waitSignal(window.imageOpened, timeout=WAIT_MS):
        drop(window, [notes, other, photo])
    assert window.queue_panel.paths() == [str(other), str(photo)]
    assert "1 unsupported file(s) left out" in window.queue_panel.summary.text()


def test_queue_processes_every_file_and_saves_in_their_format(qtbot, window, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    files = [write_png(folder / f"page{i}.png", seed=i, size=16) for i in range(2)]
    (folder / "broken.png").write_bytes(b"not a png at all")
    with qtbot.waitSignal(window.openFailed, timeout=WAIT_MS):  # the first file (sorted) is the broken one
        drop(window, [folder])
    window.last_error_dialog.close()
    assert window.queue_panel.status(str(folder / "broken.png")) == "failed"
    open_and_wait(qtbot, window, files[0])
    window.model_panel.select("model", "bicubic-x2")
    out = tmp_path / "out"
    out.mkdir()
    assert window.process_queue(out)
    qtbot.waitUntil(lambda: window.runs.batch is None and not window.runner.is_running(), timeout=20000)
    for source in files:
        written = imageio.read_image(out / f"{source.stem}_bicubic-x2.png")
        assert (written.width, written.height) == (32, 32)
        assert window.queue_panel.status(str(source)) == "done"
    assert window.queue_panel.status(str(folder / "broken.png")) == "failed"
    assert window.model_panel.run_button.isEnabled()


def test_gui_tests_never_write_the_users_settings(tmp_path):
    from gui.settings import AppSettings

    assert AppSettings().store.fileName().startswith(str(tmp_path))


def test_every_open_dialog_offers_the_image_types_the_loader_reads(window, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    import engine.imageio as imageio

    filters = []
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *args: (filters.append(args[3]), ([], ""))[1])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args: (filters.append(args[3]), ("", ""))[1])
    window.open_dialog()
    window.reference_dialog()
    window.shots.open_shot_dialog()
    assert len(filters) == 3 and len(set(filters)) == 1
    offered = filters[0]
    assert offered.endswith(";;All files (*)")
    assert all(f"*{ext}" in offered for ext in imageio.SUPPORTED_READ_EXTENSIONS)
    assert "*.exr" in offered and "*.dng" in offered
