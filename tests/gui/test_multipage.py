"""A multi-page TIFF in the window: the page count is said, and every page can be shown (issue 47)."""

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
