"""Huge PNGs are written strip by strip (engine/imageio/raster.py, ``_encode_png_strips``): the same pixels and
metadata as the whole-image encoder, read back by two independent decoders."""

import numpy as np
import pytest

from engine.image import ImageMeta, make_image
from engine.imageio import raster, read_image, write_image


@pytest.fixture
def strips(monkeypatch):
    monkeypatch.setattr(raster, "PNG_STRIP_PIXELS", 0)  # every PNG takes the strip path
    monkeypatch.setattr("engine.imageio.convert._CHUNK_PIXELS", 700)  # several strips even for small images


def picture(seed=0, height=37, width=53, gray=False, alpha=False):
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 1, width, dtype=np.float32)[None, :, None] * np.linspace(0.2, 1, height)[:, None, None]
    pixels = np.clip(base + rng.normal(0, 0.08, (height, width, 1 if gray else 3)), 0, 1).astype(np.float32)
    a = rng.random((height, width)).astype(np.float32) if alpha else None
    return pixels, a


@pytest.mark.parametrize("gray", [False, True])
@pytest.mark.parametrize("alpha", [False, True])
@pytest.mark.parametrize("bits", [8, 16])
def test_strip_png_reads_back_exactly(strips, tmp_path, gray, alpha, bits):
    from PIL import Image as PILImage

    pixels, a = picture(gray=gray, alpha=alpha)
    meta = ImageMeta(format="png", bit_depth=bits, gray=gray, extra={"dpi": (300.0, 300.0),
                                                                      "png_text": {"Comment": "strips"}})
    image = make_image(pixels, a, meta)
    path = write_image(tmp_path / "out.png", image)
    back = read_image(path)
    step = 255 if bits == 8 else 65535
    expected = np.rint(np.clip(image.pixels, 0, 1) * step) / step
    np.testing.assert_allclose(back.pixels, expected, atol=1e-6)
    if alpha:
        np.testing.assert_allclose(back.alpha, np.rint(a * step) / step, atol=1e-6)
    assert back.meta.bit_depth == bits and back.meta.gray == gray
    with PILImage.open(path) as decoded:  # a second decoder agrees, and sees the metadata chunks
        decoded.load()
        assert decoded.size == (53, 37)
        assert decoded.info.get("Comment") == "strips"
        assert round(decoded.info["dpi"][0]) == 300


def test_strip_and_whole_image_encoders_give_the_same_pixels(tmp_path, monkeypatch):
    pixels, a = picture(seed=3, alpha=True)
    image = make_image(pixels, a, ImageMeta(format="png"))
    whole = read_image(write_image(tmp_path / "whole.png", image))
    monkeypatch.setattr(raster, "PNG_STRIP_PIXELS", 0)
    strip = read_image(write_image(tmp_path / "strip.png", image))
    np.testing.assert_array_equal(strip.pixels, whole.pixels)
    np.testing.assert_array_equal(strip.alpha, whole.alpha)
