"""AOV layers as pictures and the histogram (issue 46, item 7), engine side."""

import numpy as np
import pytest

from engine.display import srgb_encode
from engine.image import ImageMeta, make_image
from engine.render_views import histogram, layer_view

HDR = ImageMeta(format="exr", bit_depth=32, sample_type="float", hdr=True, color_space="linear")


def render_with_layers():
    h, w = 6, 8
    albedo = np.full((h, w, 3), 0.5, np.float32)
    normal = np.zeros((h, w, 3), np.float32)
    normal[..., 2] = 1.0
    normal[:, :4, 0] = -1.0
    depth = np.tile(np.linspace(1.0, 10.0, w, dtype=np.float32), (h, 1))[:, :, None]
    depth[0, :] = 1e10  # background rows, as Blender writes them
    depth[1, 0] = np.nan
    depth[1, 1] = 0.0
    return make_image(np.ones((h, w, 3), np.float32) * 3, None, HDR,
                      {"albedo": albedo, "normal": normal, "depth": depth})


def test_layers_become_display_pictures():
    image = render_with_layers()
    albedo = layer_view(image, "albedo")
    assert not albedo.meta.hdr and albedo.pixels.shape == (6, 8, 3)
    np.testing.assert_allclose(albedo.pixels, srgb_encode(np.float32(0.5)), atol=1e-6)
    normal = layer_view(image, "normal").pixels
    np.testing.assert_allclose(normal[0, 0], [0.0, 0.5, 1.0])  # (-1, 0, 1) -> x red 0, y green mid, z blue 1
    np.testing.assert_allclose(normal[0, 7], [0.5, 0.5, 1.0])
    depth = layer_view(image, "depth").pixels[..., 0]
    assert (depth[0] == 0).all() and depth[1, 0] == 0 and depth[1, 1] == 0  # no hit: black
    row = depth[3]
    assert row[0] == pytest.approx(1.0, abs=0.02) and row[-1] == pytest.approx(0.0, abs=0.02)
    assert np.all(np.diff(row) <= 0)  # near bright, far dark
    with pytest.raises(KeyError):
        layer_view(make_image(np.zeros((2, 2, 3))), "albedo")


def test_hdr_histogram_is_in_stops_around_mid_gray_and_follows_exposure():
    pixels = np.concatenate([np.full((50, 10, 3), 0.18), np.full((50, 10, 3), 0.72), np.zeros((50, 5, 3))],
                            axis=1).astype(np.float32)
    data = histogram(pixels, hdr=True, bins=180)  # 0.1 stop per bin over -10..+8
    assert data.in_stops and data.white == pytest.approx(np.log2(1 / 0.18))
    peaks = sorted(float(0.5 * (data.edges[i] + data.edges[i + 1])) for i in np.argsort(data.luma)[-2:])
    assert peaks[0] == pytest.approx(0.0, abs=0.1) and peaks[1] == pytest.approx(2.0, abs=0.1)
    assert data.under == pytest.approx(0.2) and data.over == 0.0
    brighter = histogram(pixels, hdr=True, bins=180, exposure=1.0)
    assert brighter.over == pytest.approx(0.4)  # 0.72 at +1 EV is 1.44: over the display's white
    assert int(data.red.sum()) == pixels.shape[0] * pixels.shape[1]


def test_display_histogram_counts_values_and_subsamples_big_images():
    rng = np.random.default_rng(0)
    pixels = rng.random((1200, 1000, 3)).astype(np.float32)
    pixels[:, :100] = 1.0
    data = histogram(pixels, hdr=False, bins=10)
    assert not data.in_stops and data.white == 1.0
    assert data.over == pytest.approx(0.1, abs=0.01)
    total = int(data.green.sum())
    assert total <= (1 << 18) * 1.1  # a grid of samples, not all 1.2 M pixels
    assert np.all(np.abs(data.green[:-1] / total - 0.09) < 0.01)  # uniform noise: flat, the white column on top
