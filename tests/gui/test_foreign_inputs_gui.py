"""Foreign inputs in the window (issue 47): a multi-page TIFF says its page count and shows each page; a malformed
user manifest is named and the window starts."""

from __future__ import annotations

import numpy as np

from tests.gui.conftest import open_and_wait

WAIT_MS = 10000


def test_the_window_says_how_many_pages_and_shows_each(qtbot, window, tmp_path):
    import tifffile

    path = tmp_path / "scan.tif"
    with tifffile.TiffWriter(path) as writer:
        for level in (40, 120, 200):
            writer.write(np.full((24, 32), level, np.uint8), photometric="minisblack")
    open_and_wait(qtbot, window, path)
    assert "page 1 of 3" in window.image_label.text()
    assert "3 pages" in window.message_label.text()
    assert window.act_next_page.isEnabled() and window.act_prev_page.isEnabled()
    for expected_page, level in ((2, 120), (3, 200), (3, 200)):
        window.show_page(+1)
        qtbot.waitUntil(lambda p=expected_page: f"page {p} of 3" in window.image_label.text(), timeout=WAIT_MS)
        assert np.allclose(window.session.original.pixels, level / 255)
    window.show_page(-1)
    qtbot.waitUntil(lambda: "page 2 of 3" in window.image_label.text(), timeout=WAIT_MS)


def test_a_malformed_user_manifest_is_named_and_the_window_starts(qtbot, tmp_path):
    import json

    from engine.paths import user_models_dir
    from gui.app import build_window

    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "broken.json").write_text(json.dumps({"id": "broken", "task": "photo-denoise", "file": "b.onnx",
                                                    "inputs": 5}), encoding="utf-8")
    win = build_window([])
    qtbot.addWidget(win)
    assert "broken.json" in win.message_label.text()
    assert "nlm" in win.registry and "broken" not in win.registry
