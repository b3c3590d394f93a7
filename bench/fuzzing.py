"""Byte-level mutation of valid image files, shared by the hypothesis test and bench/fuzz_loader.py.

A mutation is a list of operations ``(kind, where, value, length)``: ``where`` is a fraction of the file's length
(so one operation list applies to any seed), ``value`` a byte, ``length`` a run length. The kinds cover what damaged
and hostile files do: flipped bits, overwritten bytes, cut files, inserted or deleted runs, repeated chunks, and
"interesting" integers written over header fields (0, 1, 0x7F..., 0xFF...).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

KINDS = ("flip", "set", "truncate", "insert", "delete", "repeat", "int16", "int32")
#: Header values that make parsers misbehave (sizes of 0 and 1, sign boundaries, all ones).
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)

Operation = tuple[str, float, int, int]


def mutate(data: bytes, operations: Sequence[Operation]) -> bytes:
    """Apply ``operations`` to ``data`` in order; always returns bytes (possibly empty)."""
    buffer = bytearray(data)
    for kind, where, value, length in operations:
        size = len(buffer)
        position = min(int(where * size), max(size - 1, 0))
        if kind == "flip" and size:
            buffer[position] ^= 1 << (value % 8)
        elif kind == "set" and size:
            buffer[position] = value & 0xFF
        elif kind == "truncate":
            del buffer[position:]
        elif kind == "insert":
            buffer[position:position] = bytes([value & 0xFF]) * length
        elif kind == "delete":
            del buffer[position : position + length]
        elif kind == "repeat" and size:
            buffer[position:position] = buffer[position : position + length]
        elif kind in ("int16", "int32") and size:
            number = INTERESTING[value % len(INTERESTING)]
            width = 2 if kind == "int16" else 4
            order = ">" if value & 0x80 else "<"
            packed = struct.pack(order + ("H" if width == 2 else "I"), number & (0xFFFF if width == 2 else 0xFFFFFFFF))
            buffer[position : position + width] = packed
    return bytes(buffer)


def repair_png_checksums(data: bytes) -> bytes:
    """Recompute every PNG chunk's CRC, so that mutations reach libpng's parsing instead of its checksum test."""
    if not data.startswith(b"\x89PNG"):
        return data
    buffer = bytearray(data)
    offset = 8
    while offset + 12 <= len(buffer):
        (length,) = struct.unpack_from(">I", buffer, offset)
        end = offset + 8 + length
        if end + 4 > len(buffer):
            break
        struct.pack_into(">I", buffer, end, zlib.crc32(bytes(buffer[offset + 4 : end])) & 0xFFFFFFFF)
        offset = end + 4
    return bytes(buffer)


def random_operations(rng: np.random.Generator, max_operations: int = 6) -> list[Operation]:
    """Random operations for the bench (the test draws them with hypothesis instead)."""
    count = int(rng.integers(1, max_operations + 1))
    return [
        (str(rng.choice(KINDS)), float(rng.random() ** 2), int(rng.integers(0, 256)), int(rng.integers(1, 65)))
        for _ in range(count)
    ]  # where**2 puts most damage in headers, where parsers make their decisions


@lru_cache(maxsize=1)
def seeds() -> dict[str, bytes]:
    """Valid files to mutate, named with the extension they are saved under: every format and the odd layouts."""
    from bench.edge_corpus import _exr, _palette_png, _pil, _png_gray_alpha16, _tiff
    from bench.malformed import valid_bytes

    result = {f"seed.{ext}": valid_bytes(fmt, (12, 10)) for fmt, ext in (
        ("png", "png"), ("jpeg", "jpg"), ("tiff", "tif"), ("bmp", "bmp"), ("webp", "webp"), ("exr", "exr"),
        ("hdr", "hdr"))}
    values = np.linspace(0.0, 3.0, 48, dtype=np.float32).reshape(6, 8)
    result["layers.exr"] = _exr({"R": values, "G": values, "B": values, "A": values, "albedo.R": values,
                                 "albedo.G": values, "albedo.B": values, "Z": values})
    samples = np.stack([np.arange(48).reshape(6, 8) * 1000, np.full((6, 8), 30_000)], axis=2).astype(np.uint16)
    result["gray_alpha16.png"] = _png_gray_alpha16(samples)
    result["palette.png"] = _palette_png()
    result["cmyk.jpg"] = _pil("CMYK", (10, 6), (0, 200, 255, 10), "JPEG")
    result["multipage.tif"] = _tiff([np.full((6, 5, 3), 9, np.uint8), np.full((4, 4), 9, np.uint16)], photometric=None)
    rgba16 = np.random.default_rng(3).integers(0, 65536, (6, 7, 4)).astype(np.uint16)
    result["rgba16.tif"] = _tiff([rgba16], photometric="rgb", extrasamples=["unassalpha"])
    return result


#: The pixel limit while fuzzing: a mutated header may claim any size, and refusing early is what is tested.
FUZZ_MAX_PIXELS = 4_000_000


def load_outcome(path) -> str:
    """Read ``path``: "loaded" (a well-formed engine image) or "refused" (an ImageReadError naming the file).

    Anything else escapes: an AssertionError for a malformed result, or the unexpected exception itself.
    """
    from engine.errors import ImageReadError
    from engine.imageio import read_image

    try:
        image = read_image(path, max_pixels=FUZZ_MAX_PIXELS)
    except ImageReadError as error:
        assert str(path) in str(error) and error.problem, str(error)
        return "refused"
    pixels = image.pixels
    assert pixels.dtype == np.float32 and pixels.ndim == 3 and pixels.shape[2] == 3, pixels.shape
    assert 0 < pixels.shape[0] * pixels.shape[1] <= FUZZ_MAX_PIXELS
    if image.alpha is not None:
        assert image.alpha.shape == pixels.shape[:2]
    for layer in image.layers.values():
        assert layer.shape[:2] == pixels.shape[:2]
    return "loaded"
