"""Edge-case image files that are valid and must load, generated on demand (the malformed ones: bench/malformed.py).

``build_edge_corpus(folder)`` writes every case and returns :class:`EdgeCase` records: reading ``path`` must give
an image of ``size`` (height, width) for which ``check(image)`` holds (it asserts what the case is about).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.malformed import _png_chunk, valid_bytes


@dataclass(frozen=True)
class EdgeCase:
    path: Path
    size: tuple[int, int]
    check: Callable[[object], None]


def _nothing(image) -> None:
    pass


def _constant(value: float, tolerance: float = 1 / 255) -> Callable[[object], None]:
    def check(image) -> None:
        assert np.allclose(image.pixels, value, atol=tolerance), (float(image.pixels.min()), float(image.pixels.max()))

    return check


def _encode(ext: str, pixels: np.ndarray) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(ext, pixels)
    assert ok, ext
    return encoded.tobytes()


def _exr(channels: dict[str, np.ndarray]) -> bytes:
    import tempfile

    import OpenEXR

    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "x.exr"
        OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, channels).write(str(target))
        return target.read_bytes()


def _png_gray_alpha16(samples: np.ndarray) -> bytes:
    """PNG colour type 4 (gray + alpha) at 16 bits, written by hand: few encoders produce it."""
    height, width, _ = samples.shape
    raw = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 4, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(raw))
            + _png_chunk(b"IEND", b""))


def _gray_alpha16_check(samples: np.ndarray) -> Callable[[object], None]:
    def check(image) -> None:
        assert image.meta.gray and image.meta.bit_depth == 16 and image.alpha is not None
        np.testing.assert_allclose(image.pixels[:, :, 0] * 65535, samples[:, :, 0], atol=0.5)
        np.testing.assert_allclose(image.pixels[:, :, 0], image.pixels[:, :, 2])
        np.testing.assert_allclose(image.alpha * 65535, samples[:, :, 1], atol=0.5)

    return check


def _tiff(pages: list[np.ndarray], **options) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as writer:
        for page in pages:
            writer.write(page, **options)
    return buffer.getvalue()


def _pil(mode: str, size: tuple[int, int], colour, fmt: str, **options) -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new(mode, size, colour).save(buffer, fmt, **options)
    return buffer.getvalue()


def _palette_png() -> bytes:
    from PIL import Image as PILImage

    picture = PILImage.new("P", (6, 4), 0)
    picture.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    picture.paste(1, (3, 0, 6, 4))  # right half: palette entry 1 (green)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", transparency=bytes([0, 255]))  # entry 0 (red) fully transparent
    return buffer.getvalue()


def _palette_check(image) -> None:
    assert image.meta.palette and image.alpha is not None
    assert np.all(image.alpha[:, :3] == 0.0) and np.all(image.alpha[:, 3:] == 1.0)
    np.testing.assert_allclose(image.pixels[0, 0], [1, 0, 0])
    np.testing.assert_allclose(image.pixels[0, 5], [0, 1, 0])


def _nonfinite_check(image) -> None:
    from engine.imageio import describe, sanitize_image

    info = describe(image)
    # -inf counts as both infinite and negative.
    assert image.meta.hdr and (info["nan_count"], info["inf_count"], info["negative_count"]) == (2, 2, 4), info
    cleaned, _report = sanitize_image(image)
    assert np.isfinite(cleaned.pixels).all() and cleaned.pixels.min() >= 0.0


def _layers(*names: str, gray: bool | None = None) -> Callable[[object], None]:
    def check(image) -> None:
        assert set(names) <= set(image.layers), sorted(image.layers)
        if gray is not None:
            assert image.meta.gray == gray

    return check


def build_edge_corpus(folder: Path) -> list[EdgeCase]:
    """Write the edge-case files into ``folder``; return what each must load as."""
    folder.mkdir(parents=True, exist_ok=True)
    grey = np.full((1, 1, 3), 128, np.uint8)
    cases: dict[str, tuple[bytes, tuple[int, int], Callable[[object], None]]] = {}
    # Tiny and extreme aspect ratios (the longest side each encoder can write).
    for ext, longest in ((".png", 100_000), (".tif", 100_000), (".bmp", 100_000), (".jpg", 60_000), (".webp", 16_383)):
        name = ext.lstrip(".")
        cases[f"one_pixel{ext}"] = (_encode(ext, grey), (1, 1), _constant(128 / 255, 2 / 255))
        cases[f"row_1x{longest}{ext}"] = (_encode(ext, np.repeat(grey, longest, axis=1)), (1, longest),
                                          _constant(128 / 255, 3 / 255))
        if name in ("png", "tif"):
            cases[f"column_{longest}x1{ext}"] = (_encode(ext, np.repeat(grey, longest, axis=0)), (longest, 1),
                                                 _constant(128 / 255))
    half = np.full((1, 1), 0.5, np.float32)
    cases["one_pixel.exr"] = (_exr({"R": half, "G": half, "B": half}), (1, 1), _constant(0.5, 0))
    row = np.full((1, 100_000), 0.5, np.float32)
    cases["row_1x100000.exr"] = (_exr({"R": row, "G": row, "B": row}), (1, 100_000), _constant(0.5, 0))
    cases["one_pixel.hdr"] = (_encode(".hdr", np.full((1, 1, 3), 0.5, np.float32)), (1, 1), _constant(0.5, 0.01))
    cases["row_1x100000.hdr"] = (_encode(".hdr", np.full((1, 100_000, 3), 0.5, np.float32)), (1, 100_000),
                                 _constant(0.5, 0.01))
    # Uncommon sample layouts.
    samples = np.stack([np.arange(40).reshape(5, 8) * 1600, np.full((5, 8), 40_000)], axis=2).astype(np.uint16)
    cases["gray_alpha_16bit.png"] = (_png_gray_alpha16(samples), (5, 8), _gray_alpha16_check(samples))
    cases["gray_alpha_16bit.tif"] = (_tiff([samples], photometric="minisblack", extrasamples=["unassalpha"]),
                                     (5, 8), _gray_alpha16_check(samples))
    cases["cmyk.jpg"] = (_pil("CMYK", (16, 8), (0, 255, 255, 0), "JPEG", quality=95), (8, 16), _constant_rgb(1, 0, 0))
    cases["palette_transparency.png"] = (_palette_png(), (4, 6), _palette_check)
    cases["multi_page.tif"] = (
        _tiff([np.full((8, 6, 3), 200, np.uint8), np.full((4, 4), 9, np.uint16), np.zeros((3, 3, 3), np.uint8)],
              photometric=None),
        (8, 6),
        _first_page_check,
    )
    # EXR: values a path tracer really writes, and channel names no convention predicts.
    values = np.linspace(0.0, 4.0, 20, dtype=np.float32).reshape(4, 5)
    red = values.copy()
    red[0, 0], red[1, 1] = np.nan, np.inf
    green = values.copy()
    green[2, 2], green[3, 3] = np.nan, -np.inf
    blue = values.copy()
    blue[0, 4], blue[1, 4], blue[2, 4] = -1.0, -0.5, -1e-3
    cases["nan_inf_negative.exr"] = (_exr({"R": red, "G": green, "B": blue}), (4, 5), _nonfinite_check)
    cases["only_Y.exr"] = (_exr({"Y": values}), (4, 5), _layers(gray=True))
    cases["only_alpha.exr"] = (_exr({"A": values}), (4, 5), _nothing)
    cases["lowercase_rgb.exr"] = (_exr({"r": values, "g": values, "b": values}), (4, 5), _layers(gray=False))
    cases["layer_only.exr"] = (_exr({"diffuse.R": values, "diffuse.G": values, "diffuse.B": values}), (4, 5),
                               _nothing)
    cases["xyz.exr"] = (_exr({"X": values, "Y": values, "Z": values}), (4, 5), _nothing)
    cases["unicode_and_spaces.exr"] = (
        _exr({"R": values, "G": values, "B": values, "깊이": values, "my layer.R": values, "a.b.c.d": values}),
        (4, 5),
        _layers("깊이", "my layer"),
    )
    cases["forty_channels.exr"] = (_exr({f"c{i}": values for i in range(40)}), (4, 5), _nothing)
    # Right content, wrong extension: the content decides.
    for source, ext in (("png", "jpg"), ("jpeg", "png"), ("exr", "tif"), ("hdr", "exr"), ("tiff", "bmp"),
                        ("webp", "png"), ("bmp", "webp")):
        cases[f"{source}_named.{ext}"] = (valid_bytes(source, (6, 7)), (6, 7), _format_check(source))
    result = []
    for name, (data, size, check) in cases.items():
        path = folder / name
        path.write_bytes(data)
        result.append(EdgeCase(path, size, check))
    return result


def _constant_rgb(r: float, g: float, b: float) -> Callable[[object], None]:
    def check(image) -> None:
        np.testing.assert_allclose(image.pixels.reshape(-1, 3).mean(axis=0), [r, g, b], atol=0.03)

    return check


def _first_page_check(image) -> None:
    from engine.imageio import describe

    assert np.allclose(image.pixels, 200 / 255)
    assert describe(image)["pages"] == 3


def _format_check(fmt: str) -> Callable[[object], None]:
    def check(image) -> None:
        assert image.meta.format == fmt, image.meta.format

    return check
