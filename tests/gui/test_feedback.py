"""Issue 46, item 4: progress moves from the first second, "Stop and keep result" shows the kept result at once,
and no stale text stays (the previous image's outcome, the kernel inspector's prompt and kernel)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from engine.jobs import ImageResult, Progress
from gui import background
from tests.gui.conftest import open_and_wait
from tests.gui.test_main_window import WAIT_MS, write_png


@pytest.fixture
def photo(tmp_path):
    return write_png(tmp_path / "photo.png")


def test_a_job_that_says_nothing_for_seconds_still_shows_time_moving(qtbot, window, photo, monkeypatch):
    open_and_wait(qtbot, window, photo)
    release = threading.Event()

    def quiet(image, token):
        yield Progress(0.0, "load model", "Loading the network")
        release.wait(10)  # a model loading: no progress for a while
        return ImageResult(image, "quiet", "quiet", "CPU", 1.0)

    monkeypatch.setattr(window.runs, "job_factory", lambda request, measure_each=False: (quiet, "Quiet"))
    qtbot.waitUntil(lambda: not window.model_panel.waiting_for_noise_level(), timeout=WAIT_MS)
    window.run_current()
    # Words from the start, not a busy bar without them.
    assert window.model_panel.progress.maximum() > 0
    assert window.model_panel.progress.format().startswith(("Starting", "load model"))
    qtbot.waitUntil(lambda: "load model" in window.model_panel.progress.format(), timeout=WAIT_MS)
    first = window.model_panel.progress.format()
    assert first.startswith("load model") and first.endswith(" s")
    qtbot.waitUntil(lambda: window.model_panel.progress.format() != first, timeout=2500)  # the seconds count
    assert window.model_panel.progress.format().startswith("load model \u00b7 0%")
    with qtbot.waitSignal(window.runner.finished, timeout=WAIT_MS):
        release.set()
    assert window.model_panel.progress.format().startswith("Done")


def test_restore_names_its_stages_before_the_first_tile(photo):
    from engine.imageio import read_image
    from engine.models.registry import ModelRegistry
    from engine.restore import restore_job

    entry = ModelRegistry().get("bicubic-x2")
    stages = []
    job = restore_job(read_image(photo), entry, tile=16)
    try:
        while True:
            stages.append(next(job))
    except StopIteration:
        pass
    names = [p.stage for p in stages]
    assert names[:2] == ["prepare", "load model"]
    tiles = [p for p in stages if "tiles" in p.metrics]
    count = tiles[0].metrics["tiles"]
    assert count >= 4 and tiles[0].message == f"tile 1 of {count}" and len(tiles) == count


def test_stop_and_keep_shows_the_kept_result_at_once(qtbot, window, photo, monkeypatch):
    open_and_wait(qtbot, window, photo)
    finishing = threading.Event()

    def trains_until_stopped(image, token):
        preview = image.with_pixels(np.full_like(image.pixels, 0.25))
        while not token.stop_requested:
            token.raise_if_cancelled()
            time.sleep(0.02)
            yield Progress(0.3, "train x2", "iteration", preview=preview)
        yield Progress(0.97, "ensemble x2", "8-way ensemble and back-projection")
        finishing.wait(10)  # the slow finish of a stopped ZSSR run
        return ImageResult(image.with_pixels(np.full_like(image.pixels, 0.5)), "kept", "zssr", "CPU", 1.0)

    monkeypatch.setattr(window.runs, "job_factory", lambda request, measure_each=False: (trains_until_stopped,
                                                                                          "Trains"))
    window.run_current()
    qtbot.waitUntil(lambda: window.session.preview is not None, timeout=WAIT_MS)
    window.runs.request_stop()
    # At once, not when the job has finished: the result so far is B, and it is named as the kept one.
    assert window.compare_bar.keys()[1] == "preview" and window.viewer.image_b() is window.session.preview
    assert window.session.source("preview").label.startswith("Kept result")
    assert window.runner.is_running()
    qtbot.waitUntil(lambda: window.model_panel.progress.format().startswith("Finishing the kept result"),
                    timeout=2000)
    with qtbot.waitSignal(window.resultAdded, timeout=WAIT_MS):
        finishing.set()
    assert window.viewer.image_b() is window.session.results[0].image
    assert window.session.preview is None and not window.session.preview_kept


def test_kernel_inspector_prompt_follows_the_selected_model(qtbot, window):
    from engine.kernel_inspector import has_kernels

    kernel_models = [e for e in window.registry.models("render-denoise") if has_kernels(e.manifest)]
    if not kernel_models:
        pytest.skip("no shipped kernel-prediction model")
    entry = kernel_models[0]
    assert window.model_panel.select("model", "bicubic-x2")
    assert "Select a kernel-prediction" in window.kernel_panel.status.text()
    assert window.model_panel.select("model", entry.id)
    text = window.kernel_panel.status.text()
    assert "Select a kernel-prediction" not in text and entry.manifest.display_name in text
    # An inspection of the previous model that arrives late is not shown as the new model's kernel.
    generation = window._kernel_generation
    window.model_panel.select("model", "bicubic-x2")
    assert window._kernel_generation > generation
    assert window.kernel_panel.with_aovs.pixmap() is None or window.kernel_panel.with_aovs.pixmap().isNull()
    background.wait_idle(2000)


def test_the_time_left_settles_instead_of_jumping(qtbot, window):
    panel = window.model_panel
    panel.set_running(True)
    try:
        panel.show_progress(Progress(0.05, "denoise", "tile 1 of 20", eta_s=100.0))  # the warm-up tile
        assert "1 min 40 s left" in panel.progress.format()
        panel.show_progress(Progress(0.10, "denoise", "tile 2 of 20", eta_s=10.0))
        first_jump = panel._last_progress.eta_s
        assert 30.0 < first_jump < 75.0  # moved towards the new estimate, not all the way
        for tile in range(3, 15):
            panel.show_progress(Progress(tile / 20, "denoise", f"tile {tile} of 20", eta_s=10.0))
        assert panel._last_progress.eta_s < 12.0  # settled on the steady estimate
        # A new stage starts its own estimate.
        panel.show_progress(Progress(0.9, "ensemble", "pass 1", eta_s=3.0))
        assert panel._last_progress.eta_s == 3.0
    finally:
        panel.set_running(False)
