"""The window selects the model the command line would use for the same file (engine/models/suggest.py)."""

from __future__ import annotations

from engine.imageio import read_image
from engine.models.suggest import suggest_model
from tests.gui.conftest import open_and_wait
from tests.test_suggest import render


def test_window_and_command_line_pick_the_same_model(qtbot, window, tmp_path):
    for buffers, expected in ((False, "render-kprcan-color"), (True, "render-kprcan-aov")):
        path = render(tmp_path / f"render-{buffers}.exr", buffers)
        window.model_panel.select("model", "photo-denoise-color")  # unsuitable for a render: replaced
        open_and_wait(qtbot, window, path)
        chosen = window.model_panel.current_entry().id
        assert chosen == expected == suggest_model(read_image(path), entries=window.registry.models()).entry.id
        assert not window.model_panel.warning.isVisible()
