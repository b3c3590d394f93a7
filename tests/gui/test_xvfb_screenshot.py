"""Starts the app in a real X11 window under Xvfb, writes a screenshot in split mode and checks it is not blank."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.xvfb, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed (apt-get install xvfb xauth)")
def test_screenshot_of_a_real_window_is_not_blank(tmp_path):
    import engine.imageio as imageio
    from engine.image import make_image

    # A colourful gradient, so that a broken viewer (blank or black) is easy to tell from a working one.
    y, x = np.mgrid[0:96, 0:128].astype(np.float32)
    pixels = np.stack([x / 127, y / 95, 1 - x / 127], axis=2)
    image_path = tmp_path / "gradient.png"
    imageio.write_image(image_path, make_image(pixels))
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", RESTORATION_STUDIO_HOME=str(tmp_path / "home"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    code = ("import sys; from gui.app import main; "
            f"sys.exit(main([{str(image_path)!r}], screenshot={str(out)!r}))")
    done = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, "-c", code],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.is_file()
    assert "Traceback" not in done.stderr, done.stderr  # e.g. a background call outliving the app at exit

    from PySide6.QtGui import QImage

    shot = QImage(str(out)).convertToFormat(QImage.Format.Format_RGB888)
    assert shot.width() >= 1000 and shot.height() >= 700
    array = np.frombuffer(shot.constBits(), np.uint8).reshape(shot.height(), shot.bytesPerLine())
    rgb = array[:, : shot.width() * 3].reshape(shot.height(), shot.width(), 3)
    assert rgb.std() > 20, "the screenshot is (nearly) one flat colour"
    assert len(np.unique(rgb.reshape(-1, 3)[::7], axis=0)) > 500, "too few colours: the image is not shown"
    # The gradient is on screen: strongly red and strongly blue pixels both appear (left and right of it).
    red = (rgb[..., 0] > 180) & (rgb[..., 2] < 90)
    blue = (rgb[..., 2] > 180) & (rgb[..., 0] < 90)
    assert red.sum() > 1000 and blue.sum() > 1000
