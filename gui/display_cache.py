"""Cached, downsampled display levels of an image, converted to 8-bit tiles only when they become visible.

Painting never converts the full image: the viewer asks for the tiles of the level that matches the zoom
(level k is the image box-filtered down by 2**k), and each tile is tone mapped once per (exposure, tone map)
and kept in a small LRU cache. Changing the exposure converts only what is on screen.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np
from PySide6.QtGui import QImage

#: Edge of a display tile in level pixels.
TILE = 512
#: Levels stop once the longer edge is at most this many pixels.
SMALLEST_LEVEL = 128
#: Longer edge of the stand-in shown while tiles are being converted.
THUMBNAIL = 256
#: Tiles kept per pyramid (512 x 512 x 4 bytes = 1 MiB each).
MAX_CACHED_TILES = 96

#: Converts float pixels (h x w x C) of a level region to uint8 RGB (h x w x 3).
Converter = Callable[[np.ndarray], np.ndarray]


def downsample2(array: np.ndarray) -> np.ndarray:
    """Halve both dimensions with a 2 x 2 box filter (odd edges repeat their last row/column)."""
    h, w = array.shape[:2]
    if h % 2 or w % 2:
        pad = [(0, h % 2), (0, w % 2)] + [(0, 0)] * (array.ndim - 2)
        array = np.pad(array, pad, mode="edge")
    # Four strided views summed: several times faster than reshape + mean on large images.
    total = array[0::2, 0::2] + array[1::2, 0::2]
    total += array[0::2, 1::2]
    total += array[1::2, 1::2]
    total *= np.float32(0.25)
    return total.astype(np.float32, copy=False)


def checkerboard(h: int, w: int, y0: int, x0: int, square: int = 8) -> np.ndarray:
    """A light/dark grey checkerboard (h x w x 1) in image coordinates, shown behind transparent pixels."""
    ys = (np.arange(y0, y0 + h) // square)[:, None]
    xs = (np.arange(x0, x0 + w) // square)[None, :]
    return np.where((ys + xs) % 2 == 0, 0.42, 0.58).astype(np.float32)[:, :, None]


def uint8_to_qimage(rgb: np.ndarray) -> QImage:
    """An h x w x 3 uint8 array as a QImage in the painter's native 32-bit format (drawn without conversion)."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).convertToFormat(QImage.Format.Format_RGB32)


class DisplayPyramid:
    """Display levels of one float array (an image's pixels, or an error map) with a tile cache.

    ``array`` is H x W x C float32 (C = 3, or 1 for maps); ``alpha`` (H x W) is composited over a checkerboard.
    ``converter`` maps float values to uint8 RGB; replace it with :meth:`set_converter` (clears the cache).
    """

    def __init__(self, array: np.ndarray, converter: Converter, alpha: np.ndarray | None = None) -> None:
        if array.ndim == 2:
            array = array[:, :, None]
        self.height, self.width = int(array.shape[0]), int(array.shape[1])
        self._levels: list[np.ndarray] = [array]
        self._alphas: list[np.ndarray | None] = [alpha]
        self._converter = converter
        self._tiles: OrderedDict[tuple[int, int, int], QImage] = OrderedDict()
        levels = 1
        h, w = self.height, self.width
        while max(h, w) > SMALLEST_LEVEL:
            h, w = (h + 1) // 2, (w + 1) // 2
            levels += 1
        self.level_count = levels

    def set_converter(self, converter: Converter) -> None:
        self._converter = converter
        self._tiles.clear()

    def level_for_zoom(self, zoom: float) -> int:
        """The coarsest level that still has at least one level pixel per screen pixel at ``zoom``."""
        if zoom >= 1.0:
            return 0
        level = int(np.floor(np.log2(1.0 / zoom)))
        return int(min(max(level, 0), self.level_count - 1))

    def level(self, index: int) -> np.ndarray:
        while len(self._levels) <= index:  # built on first use, each from the previous one
            self._levels.append(downsample2(self._levels[-1]))
            previous_alpha = self._alphas[-1]
            self._alphas.append(None if previous_alpha is None else downsample2(previous_alpha))
        return self._levels[index]

    def level_size(self, index: int) -> tuple[int, int]:
        """(width, height) of a level."""
        h, w = self.level(index).shape[:2]
        return int(w), int(h)

    def tile(self, index: int, ty: int, tx: int) -> QImage:
        """The 8-bit tile (ty, tx) of level ``index`` (at most TILE x TILE pixels)."""
        key = (index, ty, tx)
        cached = self._tiles.get(key)
        if cached is not None:
            self._tiles.move_to_end(key)
            return cached
        level = self.level(index)
        y0, x0 = ty * TILE, tx * TILE
        region = level[y0:y0 + TILE, x0:x0 + TILE]
        rgb = self._converter(region)
        alpha = self._alphas[index]
        if alpha is not None:
            a = alpha[y0:y0 + TILE, x0:x0 + TILE, None]
            checker = checkerboard(region.shape[0], region.shape[1], y0, x0) * 255.0
            rgb = (rgb.astype(np.float32) * a + checker * (1.0 - a) + 0.5).astype(np.uint8)
        image = uint8_to_qimage(rgb)
        self._tiles[key] = image
        if len(self._tiles) > MAX_CACHED_TILES:
            self._tiles.popitem(last=False)
        return image

    def has_tile(self, index: int, ty: int, tx: int) -> bool:
        return (index, ty, tx) in self._tiles

    def thumbnail(self) -> tuple[QImage, int]:
        """A quick stand-in for tiles not converted yet: the image subsampled to at most one tile, and its step.

        Subsampling (not averaging) keeps it cheap for images that change often (live previews).
        """
        key = (-1, 0, 0)
        step = 1
        while max(self.height, self.width) / step > THUMBNAIL:
            step *= 2
        cached = self._tiles.get(key)
        if cached is None:
            region = self._levels[0][::step, ::step]
            rgb = self._converter(region)
            alpha = self._alphas[0]
            if alpha is not None:
                a = alpha[::step, ::step, None]
                checker = checkerboard(region.shape[0], region.shape[1], 0, 0) * 255.0
                rgb = (rgb.astype(np.float32) * a + checker * (1.0 - a) + 0.5).astype(np.uint8)
            cached = uint8_to_qimage(rgb)
            self._tiles[key] = cached
        return cached, step

    def cached_tile_count(self) -> int:
        return len(self._tiles)
