"""Display levels: box-filtered pyramid, lazy per-tile conversion with a cache, alpha over a checkerboard."""

from __future__ import annotations

import numpy as np

from gui.display_cache import TILE, DisplayPyramid, downsample2


def to_uint8(region: np.ndarray) -> np.ndarray:
    return (np.clip(region[:, :, :3] if region.shape[2] >= 3 else np.repeat(region, 3, axis=2), 0, 1) * 255
            ).astype(np.uint8)


def test_downsample2_averages_and_handles_odd_sizes():
    a = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    assert downsample2(a)[:, :, 0].tolist() == [[2.5, 4.5], [10.5, 12.5]]
    odd = np.ones((5, 3, 3), np.float32)
    assert downsample2(odd).shape == (3, 2, 3)


def test_levels_match_zoom_and_tiles_are_converted_once():
    calls = []

    def convert(region):
        calls.append(region.shape)
        return to_uint8(region)

    pixels = np.random.default_rng(0).random((1000, 700, 3), dtype=np.float32)
    pyramid = DisplayPyramid(pixels, convert)
    assert pyramid.level_for_zoom(4.0) == 0
    assert pyramid.level_for_zoom(1.0) == 0
    assert pyramid.level_for_zoom(0.5) == 1
    assert pyramid.level_for_zoom(0.3) == 1
    assert pyramid.level_for_zoom(0.2) == 2
    assert pyramid.level_for_zoom(1e-6) == pyramid.level_count - 1
    assert pyramid.level_size(1) == (350, 500)
    # Nothing is converted until a tile is asked for, and only that tile is.
    assert calls == []
    tile = pyramid.tile(0, 1, 0)
    assert (tile.width(), tile.height()) == (TILE, 1000 - TILE)
    assert calls == [(1000 - TILE, TILE, 3)]
    pyramid.tile(0, 1, 0)
    assert len(calls) == 1, "a cached tile was converted again"
    pyramid.set_converter(convert)  # new exposure: converted again on demand
    pyramid.tile(0, 1, 0)
    assert len(calls) == 2


def test_tile_pixels_and_alpha_checkerboard():
    pixels = np.zeros((16, 16, 3), np.float32)
    pixels[:, :, 0] = 1.0
    alpha = np.zeros((16, 16), np.float32)
    alpha[:, 8:] = 1.0
    pyramid = DisplayPyramid(pixels, to_uint8, alpha)
    tile = pyramid.tile(0, 0, 0)
    opaque = tile.pixelColor(12, 3)
    assert (opaque.red(), opaque.green(), opaque.blue()) == (255, 0, 0)
    transparent = tile.pixelColor(3, 3)
    assert transparent.red() == transparent.green() == transparent.blue()  # grey checkerboard
    assert transparent.red() in (107, 148)
