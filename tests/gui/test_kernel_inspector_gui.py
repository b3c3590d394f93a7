"""Clicking a pixel with a kernel-prediction render model selected shows its kernel (issue 7, item 4)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "samples" / "sample_render.exr"


def test_click_shows_the_predicted_kernel(qtbot):
    from engine.kernel_inspector import has_kernels
    from engine.models.registry import ModelRegistry
    from gui import background
    from gui.app import build_window

    registry = ModelRegistry()
    entries = [
        e for e in registry.models("render-denoise") if has_kernels(e.manifest) and "albedo" in e.manifest.inputs
    ]
    if not entries or not SAMPLE.exists():
        pytest.skip("no shipped kernel-prediction model with AOVs")
    window = build_window([str(SAMPLE)])
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.session.original is not None, timeout=10000)
    window.model_panel.select("model", entries[0].id)
    window.viewer.pixelClicked.emit(100, 80)
    qtbot.waitUntil(lambda: "AOV influence" in window.kernel_panel.status.text(), timeout=20000)
    background.wait_idle()
    assert window.kernel_panel.with_aovs.pixmap() is not None
    assert not window.kernel_panel.with_aovs.pixmap().isNull()
    window.close()
