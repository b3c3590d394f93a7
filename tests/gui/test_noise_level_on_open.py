"""Opening a photo measures its noise level and fills the denoisers' noise level with it, so a clean photo is
not smoothed at the manifest's default level (25); the user's own value wins for that photo."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import engine.imageio as imageio
import engine.noise_estimate as noise_estimate
from engine.image import ImageMeta, make_image
from gui import background
from gui.model_panel import MEASURED_NOTE, MEASURING_NOTE, UNMEASURABLE_NOTE, UNSURE_NOTE
from tests.gui.conftest import open_and_wait

WAIT_MS = 15000


def noisy_png(path: Path, sigma: float, seed: int, width: int = 96) -> Path:
    rng = np.random.default_rng(seed)
    ramp = np.tile(np.linspace(0.2, 0.8, width, dtype=np.float32), (96, 1))[:, :, None].repeat(3, 2)
    pixels = np.clip(ramp + rng.normal(0, sigma / 255, ramp.shape), 0, 1).astype(np.float32)
    return imageio.write_image(path, make_image(pixels, None, ImageMeta(format="png", bit_depth=16)))


@pytest.fixture
def slow_estimator(monkeypatch):
    """The noise estimate takes 0.5 s, so a test can act while the app is still measuring."""
    real = noise_estimate.measure_noise

    def slow(image):
        time.sleep(0.5)
        return real(image)

    monkeypatch.setattr(noise_estimate, "measure_noise", slow)


def measured(qtbot, panel) -> float:
    qtbot.waitUntil(lambda: not panel.waiting_for_noise_level() and not panel._noise_measuring, timeout=WAIT_MS)
    return panel.params()["noise_level"]


def test_each_opened_photo_gets_its_own_level_unless_the_user_set_one(qtbot, window, tmp_path):
    quiet, loud = noisy_png(tmp_path / "quiet.png", 3.0, 0), noisy_png(tmp_path / "loud.png", 30.0, 1)
    panel = window.model_panel
    open_and_wait(qtbot, window, quiet)
    assert panel.select("model", "nlm")
    assert abs(measured(qtbot, panel) - 3.0) < 1.5  # not the default of 25
    assert panel._form.noise_note.text() == MEASURED_NOTE and panel._form.noise_note.isVisibleTo(panel)
    # Another photo denoiser gets the same measured level.
    assert panel.select("model", "photo-denoise-color")
    assert abs(panel.params()["noise_level"] - 3.0) < 1.5

    # The user's own value is kept for this photo, through switching models and back, and is not called measured.
    assert panel.select("model", "nlm")
    panel._form.control("noise_level").setValue(40.0)
    assert not panel._form.noise_note.isVisibleTo(panel)
    assert panel.select("model", "photo-denoise-color") and panel.select("model", "nlm")
    assert panel.params()["noise_level"] == 40.0
    # "Estimate" puts the measured level back (from the measurement made on opening).
    assert panel._form.estimate_button.isEnabled()
    panel._form.estimate_button.click()
    assert abs(panel.params()["noise_level"] - 3.0) < 1.5 and panel._form.noise_note.text() == MEASURED_NOTE
    assert panel.select("model", "photo-denoise-color") and panel.select("model", "nlm")
    assert abs(panel.params()["noise_level"] - 3.0) < 1.5  # the measured level again, not the user's 40

    # A new photo is measured afresh.
    open_and_wait(qtbot, window, loud)
    assert panel.select("model", "nlm")
    assert abs(measured(qtbot, panel) - 30.0) < 3.0


def test_run_pressed_while_measuring_waits_for_the_level(qtbot, window, tmp_path, slow_estimator):
    photo = noisy_png(tmp_path / "photo.png", 12.0, 2)
    panel = window.model_panel
    assert panel.select("model", "nlm")
    open_and_wait(qtbot, window, photo)
    assert panel.select("model", "nlm")
    assert panel.waiting_for_noise_level() and panel._form.noise_note.text() == MEASURING_NOTE
    window.run_current()
    assert not window.runner.is_running()  # held until the level is known
    assert "Measuring the image's noise level" in window.message_label.text()
    with qtbot.waitSignal(window.resultAdded, timeout=WAIT_MS):
        pass
    qtbot.waitUntil(lambda: not window.runner.is_running(), timeout=WAIT_MS)
    level = panel.params()["noise_level"]
    assert abs(level - 12.0) < 2.0
    assert f"\u03c3{level:g}" in window.session.results[0].label

    # A Run held for one photo does not start on the next one opened meanwhile.
    window.run_current()  # the result is there; measuring is done, so this runs at once
    qtbot.waitUntil(lambda: not window.runner.is_running(), timeout=WAIT_MS)
    other = noisy_png(tmp_path / "other.png", 5.0, 5)
    first = noisy_png(tmp_path / "first.png", 25.0, 6)
    open_and_wait(qtbot, window, first)
    assert panel.select("model", "nlm")
    window.run_current()
    assert window.runs.run_when_measured
    open_and_wait(qtbot, window, other)
    qtbot.waitUntil(lambda: not panel._noise_measuring, timeout=WAIT_MS)
    background.wait_idle(5000)
    assert not window.runner.is_running() and not window.session.results


def test_hdr_renders_are_not_measured(qtbot, window, tmp_path):
    render = tmp_path / "render.exr"
    meta = ImageMeta(format="exr", bit_depth=32, sample_type="float", hdr=True, color_space="linear")
    imageio.write_image(render, make_image(np.full((16, 16, 3), 2.0, np.float32), meta=meta))
    open_and_wait(qtbot, window, render)
    panel = window.model_panel
    assert panel.select("model", "nlm")
    assert not panel.waiting_for_noise_level()
    assert panel.params()["noise_level"] == panel.current_entry().manifest.param("noise_level").default
    assert not panel._form.noise_note.isVisibleTo(panel)
    assert not panel._form.estimate_button.isEnabled()  # the estimator is for display-referred photos


def test_the_queue_measures_each_photo_unless_the_user_set_a_level(qtbot, window, tmp_path, monkeypatch):
    import engine.restore

    used: dict[int, float] = {}
    real = engine.restore.restore_job

    def recording(image, entry, params, **kwargs):
        used[image.width] = params["noise_level"]
        return real(image, entry, params, **kwargs)

    monkeypatch.setattr(engine.restore, "restore_job", recording)
    folder = tmp_path / "in"
    folder.mkdir()
    # Told apart by their widths in the recorder.
    noisy_png(folder / "a_quiet.png", 3.0, 3, width=96), noisy_png(folder / "b_loud.png", 30.0, 4, width=80)
    # Too small to measure: it gets the panel's level.
    imageio.write_image(folder / "c_tiny.png", make_image(np.full((6, 6, 3), 0.5, np.float32)))
    open_and_wait(qtbot, window, folder)
    panel = window.model_panel
    assert panel.select("model", "nlm")
    shown = measured(qtbot, panel)
    out = tmp_path / "out"
    out.mkdir()
    assert window.process_queue(out)
    qtbot.waitUntil(lambda: window.runs.batch is None and not window.runner.is_running(), timeout=WAIT_MS)
    assert abs(used[96] - 3.0) < 1.5 and abs(used[80] - 30.0) < 3.0 and used[6] == shown
    assert window.queue_panel.status(str(folder / "c_tiny.png")) == "done"

    panel._form.control("noise_level").setValue(20.0)
    used.clear()
    assert window.process_queue(out)
    qtbot.waitUntil(lambda: window.runs.batch is None and not window.runner.is_running(), timeout=WAIT_MS)
    assert used == {96: 20.0, 80: 20.0, 6: 20.0}


def test_a_photo_too_small_to_measure_keeps_the_default(qtbot, window, tmp_path, slow_estimator):
    tiny = tmp_path / "tiny.png"
    imageio.write_image(tiny, make_image(np.full((6, 6, 3), 0.5, np.float32)))
    panel = window.model_panel
    assert panel.select("model", "nlm")
    open_and_wait(qtbot, window, tiny)
    assert panel.select("model", "nlm")
    assert panel._form.noise_note.text() == MEASURING_NOTE
    qtbot.waitUntil(lambda: not panel._noise_measuring, timeout=WAIT_MS)
    assert panel.params()["noise_level"] == panel.current_entry().manifest.param("noise_level").default
    assert not panel._form.noise_note.isVisibleTo(panel)
    panel._form.estimate_button.click()
    assert panel._form.noise_note.text() == UNMEASURABLE_NOTE and panel._form.noise_note.isVisibleTo(panel)


def test_a_photo_whose_noise_cannot_be_told_says_so_instead_of_a_number(qtbot, window, tmp_path):
    """Half the photo at sigma 4, half at sigma 40: no one level is right, so none is filled in."""
    rng = np.random.default_rng(8)
    ramp = np.tile(np.linspace(0.2, 0.8, 128, dtype=np.float32), (128, 1))[:, :, None].repeat(3, 2)
    noise = rng.standard_normal(ramp.shape).astype(np.float32)
    noise[:, :64] *= 4.0 / 255
    noise[:, 64:] *= 40.0 / 255
    path = imageio.write_image(tmp_path / "mixed.png",
                               make_image(np.clip(ramp + noise, 0, 1), None, ImageMeta(format="png", bit_depth=16)))
    panel = window.model_panel
    open_and_wait(qtbot, window, path)
    assert panel.select("model", "nlm")
    qtbot.waitUntil(lambda: not panel._noise_measuring, timeout=WAIT_MS)
    assert panel.params()["noise_level"] == panel.current_entry().manifest.param("noise_level").default
    note = panel._form.noise_note
    assert note.isVisibleTo(panel) and note.text().startswith(UNSURE_NOTE.split("(")[0])
    assert "different noise levels" in note.text() and note.text() != MEASURED_NOTE
