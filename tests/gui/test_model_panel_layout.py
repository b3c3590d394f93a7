"""Issue 46, items 3 and 6: the model panel puts the task first, then a short list with the suggested model first
(the rest under "More models"), then the parameters; it fits 1280 x 720; "Then upscale" runs a chain."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

import engine.imageio as imageio
from engine.image import make_image
from engine.models.suggest import rank
from gui.model_panel import SHORT_LIST
from tests.gui.conftest import open_and_wait
from tests.gui.test_main_window import WAIT_MS, write_png


def _top_items(panel):
    return [panel.tree.topLevelItem(i) for i in range(panel.tree.topLevelItemCount())]


def test_task_first_then_suggested_model_first_and_the_rest_under_more(qtbot, window, tmp_path):
    panel = window.model_panel
    tasks = [panel.task_combo.itemData(i) for i in range(panel.task_combo.count())]
    assert tasks[:4] == ["render-denoise", "photo-denoise", "document", "super-resolution"]
    open_and_wait(qtbot, window, write_png(tmp_path / "photo.png", size=48))
    assert panel.current_task() == "photo-denoise"
    suggestion = window.registry.suggest(window.session.original)
    first = _top_items(panel)[0]
    assert first.text(0).startswith("\u2605") and suggestion.entry.manifest.display_name in first.text(0)
    assert panel.current_entry().id == suggestion.entry.id  # and it is the selected one
    assert "Suggested" in first.toolTip(0)
    photo_models = rank(window.registry.models(), "photo-denoise")
    more = _top_items(panel)[-1]
    assert more.text(0) == f"More models ({len(photo_models) - SHORT_LIST})"
    assert more.childCount() == len(photo_models) - SHORT_LIST and not more.isExpanded()
    # Choosing a model of another task switches the task; choosing a task shows its list.
    assert panel.select("model", "bicubic-x2")
    assert panel.current_task() == "super-resolution" and panel.current_entry().id == "bicubic-x2"
    panel.task_combo.setCurrentIndex(panel.task_combo.findData("document"))
    assert panel.current_entry().manifest.task == "document"


def test_the_description_is_never_blank_after_switching_models(qtbot, window, tmp_path):
    panel = window.model_panel
    open_and_wait(qtbot, window, write_png(tmp_path / "photo.png", size=48))
    ids = [e.id for e in window.registry.models()] + ["bicubic-x2"]
    if panel.task_combo.findData("zssr") >= 0:
        ids.insert(3, "zssr")
    for ident in ids:
        assert panel.select("panel" if ident == "zssr" else "model", ident), ident
        qtbot.wait(10)
        if ident != "zssr":
            assert panel.description.text() == window.registry.get(ident).manifest.description
            assert panel.description.isVisible() and panel.description.text().strip()


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_the_window_fits_the_screen_in_every_mode(qtbot, window, tmp_path, size):
    render = tmp_path / "shot.exr"
    pixels = np.random.default_rng(0).random((64, 96, 3), dtype=np.float32) * 4
    imageio.write_image(render, make_image(pixels))
    window.resize(*size)
    open_and_wait(qtbot, window, render)
    window.load_reference(str(render))  # the scores line is at its longest with a reference
    qtbot.waitUntil(lambda: window.session.reference is not None, timeout=WAIT_MS)
    for mode in ("split", "side", "flicker", "diff"):
        window.set_mode(mode)
        QApplication.processEvents()
        assert window.minimumSizeHint().width() <= 1280, mode
        assert window.width() <= size[0], mode
    # The Run button and the settings that matter are in view without scrolling.
    panel = window.model_panel
    for widget in (panel.task_combo, panel.run_button, panel.quality_box, panel.progress):
        assert widget.isVisible() and not widget.visibleRegion().isEmpty(), widget
    if size[0] >= 1920:
        assert window.compare_bar.words_shown()  # "Split", "Side by side", ... with their icons


def test_zssr_gets_the_room_and_its_loss_plot_is_shown_when_it_runs(qtbot, window, tmp_path):
    panel = window.model_panel
    if panel.task_combo.findData("zssr") < 0:
        pytest.skip("ZSSR is not installed")
    window.resize(1280, 720)
    open_and_wait(qtbot, window, write_png(tmp_path / "photo.png", size=48))
    assert panel.select("panel", "zssr")
    assert not panel.tree.isVisible()  # one panel: no list to choose from
    panel.set_running(True)
    QApplication.processEvents()
    plot = panel.current_task_panel().loss_plot
    assert not plot.visibleRegion().isEmpty()
    panel.set_running(False)


def test_then_upscale_runs_the_denoiser_and_the_upscaler_as_one_run(qtbot, window, tmp_path):
    panel = window.model_panel
    open_and_wait(qtbot, window, write_png(tmp_path / "photo.png", size=24))
    assert panel.select("model", "nlm")
    assert panel.then_combo.isVisible()
    assert panel.set_then("bicubic-x2")
    request = panel.request()
    assert request.then.id == "bicubic-x2" and "\u2192" in request.title
    with qtbot.waitSignal(window.resultAdded, timeout=30000):
        window.run_current()
    qtbot.waitUntil(lambda: not window.runner.is_running(), timeout=WAIT_MS)
    result = window.session.results[0]
    assert result.model_id == "nlm+bicubic-x2" and (result.image.width, result.image.height) == (48, 48)
    assert [step["model_id"] for step in result.details["steps"]] == ["nlm", "bicubic-x2"]
    assert window.suggested_name("result:0").name == "photo_nlm_then_bicubic-x2.png"
    # An upscaler is not offered another upscale.
    assert panel.select("model", "bicubic-x4")
    assert not panel.then_combo.isVisible() and panel.request().then is None
