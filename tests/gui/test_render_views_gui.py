"""Issue 46, item 7 in the window: a render's AOV layers can be viewed as A or B, a histogram follows the shown
image and the exposure, and the OpenColorIO ACES views are offered beside the built-in tone maps."""

from __future__ import annotations

import numpy as np
import pytest

import engine.imageio as imageio
from engine.display import TONEMAPS
from engine.image import ImageMeta, make_image
from tests.gui.conftest import open_and_wait


def write_render(path):
    rng = np.random.default_rng(0)
    h, w = 24, 32
    normal = np.zeros((h, w, 3), np.float32)
    normal[..., 2] = 1.0
    layers = {"albedo": rng.random((h, w, 3)).astype(np.float32), "normal": normal,
              "depth": np.tile(np.linspace(1, 5, w, dtype=np.float32), (h, 1))[:, :, None]}
    meta = ImageMeta(format="exr", bit_depth=32, sample_type="float", hdr=True, color_space="linear")
    return imageio.write_image(path, make_image((rng.random((h, w, 3)) * 4).astype(np.float32), None, meta, layers))


def test_aov_layers_are_sources_to_view(qtbot, window, tmp_path):
    open_and_wait(qtbot, window, write_render(tmp_path / "shot.exr"))
    keys = [window.compare_bar.a_combo.itemData(i) for i in range(window.compare_bar.a_combo.count())]
    assert {"layer:albedo", "layer:normal", "layer:depth"} <= set(keys)
    window.compare_bar.set_sources(window.session.sources(), "layer:normal", "original")
    shown = window.viewer.image_a()
    assert shown is window.session.source("layer:normal").image
    np.testing.assert_allclose(shown.pixels[0, 0], [0.5, 0.5, 1.0])
    assert window.session.source("layer:normal").image is shown  # made once, not on every look-up
    # With a reference loaded, a layer is not scored against it (a normal map has no PSNR to the beauty).
    window.set_reference(window.session.original, tmp_path / "shot.exr")
    window.compare_bar.set_sources(window.session.sources(), "layer:normal", "layer:depth")
    text = window.metrics_bar.text()
    assert "PSNR" not in text and "choose an image other than the reference" in text


def test_histogram_dock_follows_the_image_and_the_exposure(qtbot, window, tmp_path):
    open_and_wait(qtbot, window, write_render(tmp_path / "shot.exr"))
    dock, panel = window.histogram_dock, window.histogram_panel
    assert not dock.isVisible()
    assert panel.view.data is None  # nothing computed while hidden
    dock.show()
    qtbot.waitUntil(lambda: panel.view.data is not None, timeout=5000)
    assert panel.view.data.in_stops and "over white" in panel.summary.text()
    over = panel.view.data.over
    window.compare_bar.set_exposure(3.0)
    qtbot.waitUntil(lambda: panel.view.data.over > over, timeout=5000)
    window.compare_bar.set_sources(window.session.sources(), "original", "layer:albedo")
    qtbot.waitUntil(lambda: not panel.view.data.in_stops, timeout=5000)  # B is the albedo picture now
    assert any(a.text().replace("&", "") == "Histogram" for menu in window.menuBar().actions() if menu.menu()
               for a in menu.menu().actions())
    picture = panel.view.grab()
    assert not picture.isNull()


@pytest.mark.skipif("aces2" not in TONEMAPS, reason="OpenColorIO is not installed")
def test_ocio_views_are_offered_and_change_the_picture(qtbot, window, tmp_path):
    open_and_wait(qtbot, window, write_render(tmp_path / "shot.exr"))
    combo = window.compare_bar.tonemap_combo
    labels = [combo.itemText(i) for i in range(combo.count())]
    assert "ACES 2.0 (OCIO)" in labels and "ACES 1.3 (OCIO)" in labels
    assert window.tonemap_actions["aces2"].text() == "ACES 2.0 (OCIO)"  # View > Tone Map says the same
    from gui.viewer import display_converter

    image = window.session.original
    fit = display_converter(image, 0.0, "aces")(np.asarray(image.pixels))
    window.compare_bar.set_tonemap("aces2")
    assert window.viewer._tonemap == "aces2"
    ocio = display_converter(image, 0.0, "aces2")(np.asarray(image.pixels))
    assert ocio.shape == fit.shape and np.abs(ocio.astype(int) - fit.astype(int)).mean() > 1
