"""Shots in the window (gui/shot_view.py, gui/shot_run.py, gui/transport.py, gui/frame_cache.py), on tiny
sequences the tests write: opening (pattern, folder, one frame offered), the transport, playback that keeps time by
dropping late frames, the memory-bounded frame cache, and restoring a whole shot with progress, cancel and resume."""

from __future__ import annotations

import re
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

import engine.imageio as imageio
from engine.image import make_image
from gui import frame_cache
from gui.app import build_window
from gui.frame_cache import FrameCache, image_bytes
from gui.shot_run import ShotOutputDialog, check_output, default_output
from gui.shot_view import RESULT_KEY, frame_rate
from gui.transport import PlaybackClock, RateMeter, TransportBar

WAIT_MS = 20000


def frame_pixels(frame: int, h: int = 24, w: int = 40) -> np.ndarray:
    """A gradient that moves 3 px per frame, plus noise; its first pixel tells the frame number (red: hundreds,
    green: the rest, in hundredths, which 8 bits keep)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([(x + 3 * frame) % w / w, y / h, np.full_like(x, 0.5)], axis=2)
    rgb = rgb + np.random.default_rng(frame).normal(0, 0.05, rgb.shape).astype(np.float32)
    rgb[0, 0] = (frame // 100 / 100.0, frame % 100 / 100.0, 0.0)
    return np.clip(rgb, 0, 1).astype(np.float32)


def write_sequence(folder: Path, frames, name: str = "shot_{:04d}.png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for frame in frames:
        imageio.write_image(folder / name.format(frame), make_image(frame_pixels(frame)))
    return folder


def write_exr_sequence(folder: Path, frames, fps: Fraction) -> Path:
    import OpenEXR

    folder.mkdir(parents=True, exist_ok=True)
    for frame in frames:
        header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage, "framesPerSecond": fps}
        pixels = frame_pixels(frame)
        pixels[1:] *= 4.0  # HDR values (the first row's frame number kept)
        OpenEXR.File(header, {"RGB": pixels}).write(str(folder / f"render.{frame:04d}.exr"))
    return folder


def frame_of(image) -> int:
    red, green = (float(v) for v in image.pixels[0, 0, :2])
    return int(round(red * 100)) * 100 + int(round(green * 100))


def drop(win, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    win.dropEvent(QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                             Qt.KeyboardModifier.NoModifier))


def wait_frame(qtbot, win, frame: int) -> None:
    qtbot.waitUntil(lambda: win.session.original is not None and frame_of(win.session.original) == frame,
                    timeout=WAIT_MS)


def open_shot(qtbot, win, path) -> None:
    with qtbot.waitSignal(win.shots.shotOpened, timeout=WAIT_MS):
        win.open_paths([str(path)])


# == the parts without a window =================================================================================
def test_frame_cache_is_bounded_by_bytes_and_drops_the_least_recently_used():
    images = {i: make_image(np.full((10, 10, 3), i / 10, np.float32)) for i in range(5)}
    size = image_bytes(images[0])
    assert size == 10 * 10 * 3 * 4
    cache = FrameCache(budget_bytes=3 * size)
    for i in range(3):
        cache.put(("f", i), images[i])
    assert cache.get(("f", 0)) is images[0]  # 0 is now the most recent: 1 goes first
    cache.put(("f", 3), images[3])
    assert ("f", 1) not in cache and ("f", 0) in cache and ("f", 3) in cache
    assert cache.bytes_used == 3 * size and len(cache) == 3
    big = make_image(np.zeros((40, 40, 3), np.float32))
    cache.put(("big", 0), big)  # larger than the whole budget: shown, never kept
    assert ("big", 0) not in cache and len(cache) == 3
    cache.discard_path("f")
    assert len(cache) == 0 and cache.bytes_used == 0
    assert FrameCache(budget_bytes=1 << 30).frames_that_fit(100 << 20) == 10  # ten 4K float frames in 1 GiB


def test_playback_clock_keeps_time_loops_and_stops():
    clock = PlaybackClock(10, fps=24.0, loop=False)
    clock.start(2, now=100.0)
    assert clock.due(100.0) == 2
    assert clock.due(100.0 + 1 / 24) == 3
    assert clock.due(100.0 + 7 / 24) == 9
    assert clock.due(100.0 + 8 / 24) is None  # past the last frame without loop
    clock.loop = True
    assert clock.due(100.0 + 8 / 24) == 0 and clock.due(100.0 + 13 / 24) == 5
    clock.set_fps(12.0, now=100.0 + 3 / 24)  # no jump: goes on from frame 5 at the new rate
    assert clock.due(100.0 + 3 / 24) == 5 and clock.due(100.0 + 3 / 24 + 1 / 12) == 6
    meter = RateMeter(window_s=1.0)
    for i in range(13):
        meter.tick(i / 12)
    assert meter.rate() == pytest.approx(12.0)
    assert meter.rate(now=10.0) is None  # nothing shown lately


def test_transport_steps_snaps_to_frames_it_has_and_marks_done_frames(qtbot):
    bar = TransportBar(lambda name: __import__("gui.icons", fromlist=["icon"]).icon(name))
    qtbot.addWidget(bar)
    bar.set_frames([1001, 1002, 1004, 1005])
    asked = []
    bar.indexRequested.connect(asked.append)
    bar.step(+1)
    assert bar.index() == 1 and bar.frame_box.value() == 1002 and bar.position_label.text() == "2/4"
    bar.frame_box.setValue(1004)
    assert bar.index() == 2
    bar.frame_box.setValue(1003)  # not in the shot: the nearest frame it has (the lower one on a tie)
    assert bar.index() == 1 and bar.frame_box.value() == 1002
    bar.last_button.click()
    assert bar.index() == 3 and asked[-1] == 3
    bar.step(+1)  # stays on the last frame
    assert bar.index() == 3
    bar.set_done([0, 3])
    assert bar.slider.done() == frozenset({0, 3})
    bar.show_rate(15.0, 24.0)
    assert "15.0 fps" in bar.rate_label.text() and "slower" in bar.rate_label.toolTip()


def test_frame_rate_comes_from_the_exr_header(tmp_path):
    write_exr_sequence(tmp_path, [1], Fraction(25, 1))
    assert frame_rate(imageio.read_image(tmp_path / "render.0001.exr")) == 25.0
    png = write_sequence(tmp_path / "png", [1]) / "shot_0001.png"
    assert frame_rate(imageio.read_image(png)) is None


# == opening ==================================================================================================
def test_a_pattern_opens_as_a_shot_and_the_keys_move_through_it(qtbot, window, tmp_path):
    write_sequence(tmp_path / "seq", range(1, 7))
    open_shot(qtbot, window, tmp_path / "seq" / "shot_####.png")
    shots = window.shots
    assert shots.is_open() and shots.count() == 6 and shots.transport.isVisible()
    assert "shot_####.png" in window.windowTitle()
    assert "frame 1 (1/6)" in window.image_label.text()
    wait_frame(qtbot, window, 1)
    assert window.viewer.image_a() is window.session.original
    def press(key):  # the offscreen platform may deactivate the window between events: focus it again
        window.activateWindow()
        window.viewer.setFocus()
        qtbot.waitUntil(window.viewer.hasFocus, timeout=2000)
        qtbot.keyClick(window.viewer, key)

    press(Qt.Key.Key_Right)
    wait_frame(qtbot, window, 2)
    assert shots.transport.frame_box.value() == 2
    press(Qt.Key.Key_End)
    wait_frame(qtbot, window, 6)
    press(Qt.Key.Key_Left)
    wait_frame(qtbot, window, 5)
    press(Qt.Key.Key_Home)
    wait_frame(qtbot, window, 1)
    press(Qt.Key.Key_Space)
    assert shots.playing()
    qtbot.waitUntil(lambda: frame_of(window.session.original) > 2, timeout=WAIT_MS)
    press(Qt.Key.Key_Space)
    assert not shots.playing()
    # Settled on a frame: the compare bar, scores and status follow it.
    frame = shots.frame()
    qtbot.waitUntil(lambda: f"frame {frame} " in window.image_label.text(), timeout=WAIT_MS)
    assert window.compare_bar.a_combo.currentText() == f"Original (shot_{frame:04d}.png)"
    assert window.settings.recent_files()[0] == shots.shot.pattern


def test_opening_a_single_image_closes_the_shot_and_gives_the_arrow_keys_back(qtbot, window, tmp_path):
    write_sequence(tmp_path / "seq", range(1, 4))
    open_shot(qtbot, window, tmp_path / "seq" / "shot_####.png")
    lone = tmp_path / "lone.png"
    imageio.write_image(lone, make_image(frame_pixels(50)))
    with qtbot.waitSignal(window.imageOpened, timeout=WAIT_MS):
        window.open_paths([str(lone)])
    assert not window.shots.is_open() and not window.shots.transport.isVisible()
    assert not any(action.isEnabled() for action in window.shots.frame_actions)
    assert not window.shots.notice.isVisible()  # a lone file is no sequence


def test_one_frame_of_a_sequence_opens_as_that_image_and_offers_the_shot(qtbot, window, tmp_path):
    write_sequence(tmp_path / "seq", range(1001, 1006))
    frame = tmp_path / "seq" / "shot_1003.png"
    with qtbot.waitSignal(window.imageOpened, timeout=WAIT_MS):
        window.open_paths([str(frame)])
    assert not window.shots.is_open()  # the user who wants the one frame has it
    assert frame_of(window.session.original) == 1003
    qtbot.waitUntil(window.shots.notice.isVisible, timeout=WAIT_MS)
    text = window.shots.notice.label.text()
    assert "frame 1003" in text and "shot_####.png" in text and "5 frames" in text
    with qtbot.waitSignal(window.shots.shotOpened, timeout=WAIT_MS):
        window.shots.notice.open_button.click()
    assert window.shots.frame() == 1003 and not window.shots.notice.isVisible()
    wait_frame(qtbot, window, 1003)


def test_a_folder_of_exr_frames_opens_as_a_shot_and_a_folder_of_numbered_pngs_is_queued(qtbot, window, tmp_path):
    write_exr_sequence(tmp_path / "frames", range(1, 5), Fraction(24))
    with qtbot.waitSignal(window.shots.shotOpened, timeout=WAIT_MS):
        drop(window, [tmp_path / "frames"])
    assert window.shots.count() == 4
    # Frames may still be meant as separate images: the notice offers the queue, one click away.
    notice = window.shots.notice
    assert notice.isVisible() and notice.open_button.text() == "Queue as Images" and "4 frames" in notice.label.text()
    with qtbot.waitSignal(window.imageOpened, timeout=WAIT_MS):
        notice.open_button.click()
    assert not window.shots.is_open() and len(window.queue_panel.paths()) == 4
    qtbot.wait(300)
    assert not notice.isVisible()  # turned down: its frames are not offered as a shot again
    # Numbered PNGs (photos, scans) are a batch, as on the command line; the first one offers its shot.
    write_sequence(tmp_path / "scans", range(1, 4), name="page_{:03d}.png")
    with qtbot.waitSignal(window.imageOpened, timeout=WAIT_MS):
        drop(window, [tmp_path / "scans"])
    assert not window.shots.is_open() and len(window.queue_panel.paths()) == 3
    qtbot.waitUntil(notice.isVisible, timeout=WAIT_MS)
    assert notice.open_button.text() == "Open as Shot" and "page_###.png" in notice.label.text()
    with qtbot.waitSignal(window.shots.shotOpened, timeout=WAIT_MS):
        notice.open_button.click()
    assert window.shots.count() == 3


def test_command_line_pattern_opens_the_shot_with_its_exr_frame_rate_and_missing_frames(qtbot, tmp_path):
    write_exr_sequence(tmp_path, [1, 2, 4, 5], Fraction(25, 1))  # frame 3 was never rendered
    win = build_window([str(tmp_path / "render.####.exr")])
    qtbot.addWidget(win)
    win.ask_before_discarding = False
    qtbot.waitUntil(lambda: win.shots.is_open() and win.session.original is not None, timeout=WAIT_MS)
    assert win.shots.transport.fps() == 25.0
    assert win.session.original.meta.hdr
    assert win.shots.shot.missing == (3,) and win.shots.transport.slider._missing == frozenset({2})
    win.shots.go_to(2)  # frame 3: said over the frame shown, not a crash or a blank
    assert "Frame 3 is missing" in win.viewer.notice()
    win.shots.go_to(3)
    wait_frame(qtbot, win, 4)
    assert win.viewer.notice() == ""
    win.close()


def test_a_pattern_without_frames_says_so(qtbot, window, tmp_path):
    window.open_paths([str(tmp_path / "nothing_####.exr")])
    qtbot.waitUntil(lambda: window.last_error_dialog is not None, timeout=WAIT_MS)
    assert "nothing_####.exr" in window.last_error_dialog.text()


# == playback =================================================================================================
def test_playback_drops_frames_it_cannot_decode_in_time_and_keeps_time(qtbot, window, tmp_path, monkeypatch):
    write_sequence(tmp_path / "seq", range(1, 49))
    open_shot(qtbot, window, tmp_path / "seq" / "shot_####.png")
    wait_frame(qtbot, window, 1)
    real_read = imageio.read_image

    def slow_read(path, *args, **kwargs):  # a frame takes 3 frame-times to decode (a 4K EXR over a network)
        time.sleep(0.125)
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(imageio, "read_image", slow_read)
    window.shots.loader.threads = 1  # one reader: one frame in three can be decoded in time
    shown: list[int] = []
    window.shots.frameShown.connect(shown.append)
    started = time.monotonic()
    window.shots.set_playing(True)
    qtbot.wait(1500)
    elapsed = time.monotonic() - started
    window.shots.set_playing(False)
    assert len(shown) >= 4, shown
    steps = np.diff(shown)
    assert (steps > 1).mean() >= 0.6, shown  # frames were skipped, not waited for
    # The clock kept time: the last frame shown is about the one due at 24 fps (1 + 24 x elapsed), not the
    # number of frames decoded; the rate shown says the truth (about 8 frames a second reach the screen).
    assert shown[-1] >= 1 + int(elapsed * 24) - 8, (shown, elapsed)
    assert len(shown) < shown[-1] / 2


def test_playback_reads_frames_within_the_cache_budget(qtbot, window, tmp_path, monkeypatch):
    write_sequence(tmp_path / "seq", range(1, 21))
    frame = 24 * 40 * 3 * 4
    window.shots.loader.cache.budget = 4 * frame  # room for four frames
    open_shot(qtbot, window, tmp_path / "seq" / "shot_####.png")
    wait_frame(qtbot, window, 1)
    window.shots.transport.loop_button.setChecked(False)
    window.shots.set_playing(True)
    qtbot.waitUntil(lambda: not window.shots.playing(), timeout=WAIT_MS)  # stops at the last frame
    assert window.shots.index == 19
    assert window.shots.loader.cache.bytes_used <= 4 * frame and len(window.shots.loader.cache) <= 4


# == restoring the shot ===========================================================================================
def test_default_output_is_beside_the_input_and_never_the_input(tmp_path):
    from engine.api import find_shot

    write_sequence(tmp_path / "seq", range(1, 4))
    shot = find_shot(tmp_path / "seq" / "shot_####.png")
    assert default_output(shot) == str(tmp_path / "seq" / "shot_restored" / "shot_####.png")
    bare = find_shot(write_sequence(tmp_path / "frames", range(1, 4), name="{:04d}.png"))
    assert default_output(bare) == str(tmp_path / "frames_restored" / "####.png")
    problem, _ = check_output(shot, shot.pattern)
    assert problem and "replace" in problem
    problem, _ = check_output(shot, str(tmp_path / "seq" / "x_%04d.png"))
    assert problem is None


def run_shot(qtbot, win, pattern: str, *, cancel_after: int | None = None):
    """Start the shot run on the open shot with nlm into ``pattern``; wait for it to end."""
    from gui.shot_run import ShotRun

    win.model_panel.select("model", "nlm")
    run = ShotRun(win.shots)
    win.shots.shot_run = run
    records = []

    def seen(progress):
        records.append(progress)
        if cancel_after is not None and progress.stage == "restored" and progress.metrics["done"] >= cancel_after:
            win.cancel_job()

    win.runner.progress.connect(seen)
    assert run.start(win.model_panel.request(), pattern)
    qtbot.waitUntil(lambda: not win.runner.is_running(), timeout=60000)
    qtbot.wait(50)
    win.runner.progress.disconnect(seen)
    return run, records


def test_run_restores_every_frame_shows_progress_and_each_finished_frame_as_b(qtbot, window, tmp_path):
    write_sequence(tmp_path / "seq", range(1001, 1007))
    open_shot(qtbot, window, tmp_path / "seq" / "shot_####.png")
    wait_frame(qtbot, window, 1001)
    out = tmp_path / "out" / "shot_####.png"
    run, records = run_shot(qtbot, window, str(out))
    assert sorted(p.name for p in out.parent.iterdir()) == [f"shot_{f}.png" for f in range(1001, 1007)]
    messages = [r.message for r in records]
    # Progress over frames (the run controller coalesces fast updates, so not every frame's line arrives).
    assert any(re.match(r"frame 100[1-6] \([1-6]/6\)", m) for m in messages), messages
    assert records[-1].fraction == pytest.approx(1.0)
    assert "6 frames restored" in run.last_summary and "6 frames restored" in window.message_label.text()
    assert window.shots.done == set(range(6)) and window.shots.transport.slider.done() == frozenset(range(6))
    # The frame shown got its restored frame as B at once.
    qtbot.waitUntil(lambda: window.compare_bar.keys()[1] == RESULT_KEY, timeout=WAIT_MS)
    b = window.viewer.image_b()
    assert b is not None and window.session.shot_result_path.name == "shot_1001.png"
    assert not np.array_equal(b.pixels, window.session.original.pixels)  # restored, not the input again
    # Another frame: A and B follow it.
    window.shots.go_to(4)
    qtbot.waitUntil(lambda: window.session.shot_result_path is not None
                    and window.session.shot_result_path.name == "shot_1005.png", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.compare_bar.b_combo.currentText() == "Restored (shot_1005.png)",
                    timeout=WAIT_MS)
    assert frame_of(window.viewer.image_a()) == 1005
    # The input is untouched.
    assert frame_of(imageio.read_image(tmp_path / "seq" / "shot_1005.png")) == 1005


def test_cancel_keeps_finished_frames_and_a_rerun_resumes(qtbot, window, tmp_path, monkeypatch):
    write_sequence(tmp_path / "seq", range(1, 9))
    real_write = imageio.write_image

    def slow_write(*args, **kwargs):  # a frame takes a moment, as real ones do: Cancel lands mid-shot
        time.sleep(0.15)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(imageio, "write_image", slow_write)
    open_shot(qtbot, window, tmp_path / "seq" / "shot_####.png")
    wait_frame(qtbot, window, 1)
    out = tmp_path / "seq" / "shot_restored" / "shot_####.png"
    run, _ = run_shot(qtbot, window, str(out), cancel_after=2)
    kept = sorted(out.parent.iterdir())
    assert 2 <= len(kept) < 8
    assert "Cancelled" in run.last_summary and f"{len(kept)} of 8 frames" in run.last_summary
    assert len(window.shots.done) == len(kept)
    # The output dialog says what is there and that the run resumes; the rerun skips those frames.
    dialog = ShotOutputDialog(window.shots.shot, "NLM", window.shots.output_pattern, window)
    assert f"{len(kept)} of 8 frames are already restored" in dialog.status.text()
    assert dialog.run_button.isEnabled() and not dialog.overwrite()
    # smoothing over time is offered and on: the engine's default (None); unticked it is off (0)
    assert dialog.smooth_box.isChecked() and dialog.smoothing() is None
    dialog.smooth_box.setChecked(False)
    assert dialog.smoothing() == 0.0
    dialog.close()
    run, records = run_shot(qtbot, window, str(out))
    left = 8 - len(kept)
    assert f"{left} frame{'s' if left != 1 else ''} restored, {len(kept)} already done (skipped)" in run.last_summary
    assert len(list(out.parent.iterdir())) == 8


def test_run_with_the_shot_open_asks_for_the_output_and_refuses_zssr_and_chains(qtbot, window, tmp_path):
    write_sequence(tmp_path / "seq", range(1, 4))
    open_shot(qtbot, window, tmp_path / "seq" / "shot_####.png")
    wait_frame(qtbot, window, 1)
    window.model_panel.select("model", "nlm")
    window.run_current()
    dialog = window.shots.shot_run.dialog
    qtbot.waitUntil(dialog.isVisible, timeout=WAIT_MS)
    assert dialog.output_edit.text() == str(tmp_path / "seq" / "shot_restored" / "shot_####.png")
    assert "folder is created" in dialog.status.text()
    dialog.output_edit.setText(str(tmp_path / "seq" / "shot_####.png"))
    assert not dialog.run_button.isEnabled()  # the input itself
    dialog.reject()
    assert not window.runner.is_running()

    from gui.model_panel import RunRequest

    run = window.shots.shot_run
    assert "one image at a time" in run.refusal(RunRequest(title="ZSSR", task_panel=window.model_panel))
    entry = window.registry.get("nlm")
    assert "not available for shots" in run.refusal(RunRequest(title="x", entry=entry, then=entry))


@pytest.fixture(autouse=True)
def _small_cache(monkeypatch):
    """Tests never hold a gigabyte of frames."""
    monkeypatch.setattr(frame_cache, "DEFAULT_BUDGET", 64 << 20)


def test_a_failing_shot_run_says_why_and_keeps_the_frames_it_finished(qtbot, window, tmp_path, monkeypatch):
    import engine.shot
    from engine.api import EngineError, Progress

    write_sequence(tmp_path / "seq", range(1, 5))
    open_shot(qtbot, window, tmp_path / "seq" / "shot_####.png")
    wait_frame(qtbot, window, 1)
    out = tmp_path / "out" / "shot_####.png"

    def broken(request, token=None, registry=None):  # one frame written, then the model gives up
        out.parent.mkdir()
        imageio.write_image(out.parent / "shot_0001.png", make_image(frame_pixels(1)))
        yield Progress(0.25, "restored", "frame 1 (1/4) -> shot_0001.png", metrics={"frame": 1, "done": 1})
        raise EngineError("the model could not be loaded")

    monkeypatch.setattr(engine.shot, "restore_shot", broken)
    run_shot(qtbot, window, str(out))
    qtbot.waitUntil(lambda: window.last_error_dialog is not None, timeout=WAIT_MS)
    dialog = window.last_error_dialog
    assert "the model could not be loaded" in dialog.text() and "1 restored frame(s) are kept" in dialog.text()
    assert window.model_panel.progress.format() == "Failed"
    assert window.shots.done == {0} and window.model_panel.run_button.isEnabled()


def test_frames_come_with_display_tiles_made_on_the_reading_thread(qtbot, window, tmp_path):
    write_exr_sequence(tmp_path / "exr", range(1, 6), Fraction(24))
    open_shot(qtbot, window, tmp_path / "exr" / "render.####.exr")
    wait_frame(qtbot, window, 1)
    window.shots.go_to(3)  # not read yet: read, then tone mapped for the viewer's zoom on the reading thread
    wait_frame(qtbot, window, 4)
    image = window.viewer.image_a()
    path = str(tmp_path / "exr" / "render.0004.exr")
    prepared = window.shots._prepared[path]
    assert prepared[0] is image and prepared[1].cached_tile_count() >= 1  # tiles made before any paint
    assert window.viewer._pyramids[id(image)][1] is prepared[1]  # the viewer paints from them
    # Made for other display settings, they are not used.
    exposure, tonemap, _ = window.viewer.display_settings()
    assert not window.viewer.adopt_pyramid(image, prepared[1], (exposure + 1.0, tonemap))
    assert window.viewer.adopt_pyramid(image, prepared[1], (exposure, tonemap))


def test_a_frame_read_blamed_on_stray_stderr_output_is_read_again(qtbot, tmp_path, monkeypatch):
    from engine.errors import ImageReadError
    from gui.frame_cache import FrameLoader

    write_sequence(tmp_path, [1])
    path = tmp_path / "shot_0001.png"
    real_read = imageio.read_image
    calls = []

    def noisy_read(p, *args, **kwargs):  # what the EXR reader says when another thread wrote to stderr meanwhile
        calls.append(p)
        if len(calls) == 1:
            raise ImageReadError(Path(p), "damaged OpenEXR file: the library reported 'This plugin does not "
                                          "support propagateSizeHints()'")
        return real_read(p, *args, **kwargs)

    monkeypatch.setattr(imageio, "read_image", noisy_read)
    loader = FrameLoader(FrameCache(1 << 20))
    with qtbot.waitSignal(loader.loaded, timeout=WAIT_MS) as blocker:
        assert loader.request(path) is None
    assert blocker.args[0] == str(path) and frame_of(blocker.args[1]) == 1 and len(calls) == 2
    assert loader.request(path) is blocker.args[1]  # cached now


def test_the_restored_frame_keeps_its_side_across_frames_without_one(qtbot, window, tmp_path):
    write_sequence(tmp_path / "seq", range(1, 7))
    restored = tmp_path / "seq" / "shot_restored"
    restored.mkdir()
    for frame in (1, 2, 3, 5):  # an earlier run that did not restore frames 4 and 6
        imageio.write_image(restored / f"shot_{frame:04d}.png", make_image(frame_pixels(frame + 50)))
    open_shot(qtbot, window, tmp_path / "seq" / "shot_####.png")
    shots = window.shots
    assert shots.done == {0, 1, 2, 4}
    qtbot.waitUntil(lambda: window.compare_bar.keys() == ("original", RESULT_KEY), timeout=WAIT_MS)
    assert frame_of(window.viewer.image_b()) == 51
    shots.go_to(3)  # frame 4: not restored, its input on B meanwhile
    qtbot.waitUntil(lambda: window.compare_bar.keys() == ("original", "original") and frame_of(
        window.session.original) == 4, timeout=WAIT_MS)
    shots.go_to(4)  # frame 5: its restored frame is back on B
    qtbot.waitUntil(lambda: window.compare_bar.keys() == ("original", RESULT_KEY), timeout=WAIT_MS)
    assert frame_of(window.viewer.image_b()) == 55
    window.compare_bar.select(b_key="original")  # the user's own choice is kept
    shots.go_to(0)
    wait_frame(qtbot, window, 1)
    qtbot.wait(300)
    assert window.compare_bar.keys() == ("original", "original")
    window.set_mode("flicker")
    assert "Space plays the shot" in window.viewer.flicker_hint
