"""The HDR display transform (engine.display)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.display import TONEMAPS, apply_exposure, srgb_decode, srgb_encode, to_display_uint8, tonemap


def test_srgb_round_trip_and_reference_points():
    values = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(srgb_decode(srgb_encode(values)), values, atol=1e-6)
    np.testing.assert_allclose(srgb_encode(np.array([0.0, 0.0031308, 0.18, 1.0])),
                               [0.0, 0.04045, 0.461356, 1.0], atol=1e-5)
    assert srgb_encode(np.array([4.0]))[0] > 1.0  # extended, not clipped


def test_exposure_is_a_power_of_two():
    pixels = np.full((2, 2, 3), 0.25, np.float32)
    np.testing.assert_allclose(apply_exposure(pixels, 2), 1.0)
    np.testing.assert_allclose(apply_exposure(pixels, -1), 0.125)


@pytest.mark.parametrize("method", TONEMAPS)
def test_tonemaps_map_everything_into_the_display_range_monotonically(method):
    ramp = np.concatenate([[np.nan, -1.0, np.inf], np.geomspace(1e-4, 1e4, 200)]).astype(np.float32)
    pixels = np.repeat(ramp[:, None], 3, axis=1)
    mapped = tonemap(pixels, method)
    assert mapped.dtype == np.float32 and np.isfinite(mapped).all()
    assert mapped.min() >= 0.0 and mapped.max() <= 1.0
    # NaN and negatives show as black (OCIO's ACES 1.3 output lifts black by 1.5e-9: 0 on any display)
    assert mapped[0, 0] < 1e-6 and mapped[1, 0] < 1e-6
    gray = mapped[3:, 1]
    assert np.all(np.diff(gray) >= -1e-6)


def test_tonemap_reference_values():
    assert tonemap(np.array([[1.0, 1.0, 1.0]]), "reinhard")[0, 0] == pytest.approx(0.5)
    assert tonemap(np.array([[3.0, 0.5, 0.0]]), "clamp").tolist() == [[1.0, 0.5, 0.0]]
    aces = tonemap(np.array([[0.18, 0.18, 0.18], [100.0, 100.0, 100.0]]), "aces")
    assert aces[0, 0] == pytest.approx(0.1056, abs=2e-3)  # Hill's fit puts mid-gray near 0.11
    assert aces[1].min() > 0.98  # highlights roll off to white
    with pytest.raises(ValueError):
        tonemap(np.zeros((1, 3)), "filmic-by-guessing")


def test_display_of_ldr_is_identity_at_zero_stops():
    levels = np.arange(256, dtype=np.float32).reshape(16, 16) / 255
    pixels = np.dstack([levels, levels.T, levels[::-1]])
    shown = to_display_uint8(pixels, hdr=False)
    assert shown.dtype == np.uint8 and shown.shape == (16, 16, 3)
    np.testing.assert_array_equal(shown, np.rint(pixels * 255))
    brighter = to_display_uint8(pixels, hdr=False, exposure=1.0)
    expected = np.rint(np.clip(srgb_encode(np.clip(srgb_decode(pixels) * 2, 0, 1)), 0, 1) * 255)
    np.testing.assert_array_equal(brighter, expected)


def test_display_of_hdr_and_gray_input():
    pixels = np.array([[[0.0, 0.18, 1.0], [16.0, np.nan, -2.0]]], dtype=np.float32)
    clamp = to_display_uint8(pixels, hdr=True, tonemap="clamp")
    assert clamp.tolist() == [[[0, 118, 255], [255, 0, 0]]]
    lifted = to_display_uint8(pixels, hdr=True, exposure=-4.0, tonemap="clamp")
    assert lifted[0, 1, 0] == 255  # 16 * 2^-4 = 1
    gray = to_display_uint8(np.full((3, 4), 0.5, np.float32), hdr=False)
    assert gray.shape == (3, 4, 3) and (gray == 128).all()


def test_large_images_are_converted_in_chunks_with_the_same_result():
    rng = np.random.default_rng(0)
    pixels = (rng.random((1100, 1000, 3)) * 4).astype(np.float32)  # more than one chunk of rows
    whole = to_display_uint8(pixels, hdr=True)
    expected = np.rint(np.clip(srgb_encode(tonemap(pixels, "aces")), 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(whole, expected)


@pytest.mark.skipif("aces2" not in TONEMAPS, reason="OpenColorIO is not installed")
def test_ocio_views_are_opencolorios_own():
    """The ACES views are OCIO's built-in configs (not a curve written here): compared with OCIO called directly,
    and with the ACES 2.0 figures anyone can check (scene mid-gray 0.18 shows at sRGB code ~0.35)."""
    import PyOpenColorIO as ocio

    from engine.display import OCIO_VIEWS, ocio_view, tonemap_label

    rng = np.random.default_rng(0)
    pixels = (rng.random((8, 8, 3)) * 8).astype(np.float32)
    for name in ("aces2", "aces13"):
        uri, display, view, label = OCIO_VIEWS[name]
        config = ocio.Config.CreateFromFile(uri)
        processor = config.getProcessor(ocio.DisplayViewTransform(src="Linear Rec.709 (sRGB)", display=display,
                                                                  view=view)).getDefaultCPUProcessor()
        direct = pixels.copy()
        processor.applyRGB(direct)
        np.testing.assert_allclose(ocio_view(pixels, name), np.clip(direct, 0, 1), atol=1e-6)
        assert tonemap_label(name) == label and "OCIO" in label
    gray = ocio_view(np.full((1, 1, 3), 0.18, np.float32), "aces2")[0, 0]
    assert gray == pytest.approx(0.349, abs=0.01)
    shown = to_display_uint8(np.full((2, 2, 3), 0.18, np.float32), hdr=True, tonemap="aces2")
    assert abs(int(shown[0, 0, 0]) - 89) <= 2
    # The two ACES versions differ (ACES 2.0 keeps more highlight colour); neither is the numpy fit.
    bright = np.array([[[8.0, 1.0, 0.2]]], np.float32)
    views = {name: to_display_uint8(bright, hdr=True, tonemap=name)[0, 0] for name in ("aces", "aces2", "aces13")}
    assert len({tuple(v) for v in views.values()}) == 3

