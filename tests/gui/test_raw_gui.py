"""A camera raw file in the window: dropped in, developed, the raw denoiser suggested (the rule the command line
follows), run, and saved as a 16-bit TIFF beside it with its EXIF."""

from __future__ import annotations

import numpy as np

import engine.imageio as imageio
from engine.imageio.exif_tags import read_file_tags
from gui.app import build_window
from tests.gui.test_main_window import drop, run_and_wait
from tests.raw_dng import box_filter_model, raw_values, scene, write_dng


def test_a_dropped_raw_file_is_denoised_by_the_raw_model_and_saved_as_tiff(qtbot, tmp_path):
    from engine.paths import user_models_dir

    box_filter_model(user_models_dir(), "raw-test-box")  # before the window reads its models
    rng = np.random.default_rng(0)
    values = raw_values(scene(96, 128), "BGGR", 512, 16383) + rng.normal(0, 150, (96, 128))
    path = write_dng(tmp_path / "shot.dng", np.clip(np.rint(values), 0, 65535), pattern="BGGR")
    assert "*.dng" in " ".join(f"*{e}" for e in imageio.SUPPORTED_READ_EXTENSIONS)  # File > Open's filter
    win = build_window([])
    qtbot.addWidget(win)
    win.ask_before_discarding = False
    with qtbot.waitSignal(win.imageOpened, timeout=10000):
        drop(win, [path])
    assert win.session.original.meta.format == "raw"
    assert "RAW 16-bit" in win.image_label.text()
    chosen = win.model_panel.current_entry()
    assert chosen.manifest.task == "raw-denoise"  # the bundled raw model (bundled before the user's)
    run_and_wait(qtbot, win)
    result = win.session.results[0]
    assert result.image.pixels.shape == win.session.original.pixels.shape
    assert not np.array_equal(result.image.pixels, win.session.original.pixels)
    suggested = win.suggested_name(win.current_result_key())
    assert suggested.name == f"shot_{chosen.id}.tif"
    assert win.save_result(suggested, wait=True)
    assert imageio.read_image(suggested).meta.bit_depth == 16
    assert read_file_tags(suggested)["Exif.Image.Model"] == "T-100"
    win.runner.cancel()
    win.runner.wait(5)
