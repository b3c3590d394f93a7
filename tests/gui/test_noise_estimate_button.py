"""The noise-level control proposes the image's own noise level (issue 6, item 3)."""

import numpy as np

from engine.image import ImageMeta, make_image
from engine.models.manifest import ParamSpec
from gui import background
from gui.model_panel import ParamForm


def test_estimate_button_sets_the_measured_level(qtbot):
    rng = np.random.default_rng(0)
    clean = np.tile(np.linspace(0.2, 0.8, 128, dtype=np.float32), (128, 1))[:, :, None].repeat(3, 2)
    noisy = clean + rng.normal(0, 20 / 255, clean.shape).astype(np.float32)
    spec = ParamSpec("noise_level", "float", 5.0, 0.0, 75.0)
    form = ParamForm((spec,), {"noise_level": 5.0}, image=make_image(noisy, None, ImageMeta()))
    qtbot.addWidget(form)
    assert form.estimate_button.isEnabled()
    form.estimate_button.click()
    qtbot.waitUntil(lambda: abs(form.values()["noise_level"] - 5.0) > 1e-6, timeout=20000)
    background.wait_idle()
    assert abs(form.values()["noise_level"] - 20.0) < 2.5
    form.set_image(None)
    assert not form.estimate_button.isEnabled()
