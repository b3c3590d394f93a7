"""A corpus of malformed image files, generated on demand (nothing is stored in the repository).

``build_corpus(folder)`` writes every case and returns ``[(path, expected words)]``: reading each file must raise
``ImageReadError`` whose message names the file and contains one of the expected words.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_with_header(width: int, height: int, idat: bytes | None = None) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def valid_bytes(fmt: str, size: tuple[int, int] = (48, 64), seed: int = 0) -> bytes:
    """A small valid file of the given format (png, jpeg, tiff, bmp, webp, exr, hdr) with noisy content."""
    import cv2

    rng = np.random.default_rng(seed)
    height, width = size
    if fmt == "exr":
        import tempfile

        import OpenEXR

        data = rng.random((height, width)).astype(np.float32)
        channels = {"R": data, "G": data * 0.5, "B": data * 0.25}

        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "x.exr"
            OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, channels).write(str(target))
            return target.read_bytes()
    if fmt == "hdr":
        ok, encoded = cv2.imencode(".hdr", (rng.random((height, width, 3)) * 4).astype(np.float32))
        return encoded.tobytes()
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if fmt == "tiff":
        import tifffile

        buffer = io.BytesIO()
        tifffile.imwrite(buffer, pixels, photometric="rgb")
        return buffer.getvalue()
    ext = {"png": ".png", "jpeg": ".jpg", "bmp": ".bmp", "webp": ".webp"}[fmt]
    ok, encoded = cv2.imencode(ext, pixels)
    assert ok
    return encoded.tobytes()


def _jpeg_with_size(width: int, height: int) -> bytes:
    """A valid small JPEG whose SOF0 marker claims another size."""
    data = bytearray(valid_bytes("jpeg", (16, 16)))
    index = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, index + 5, height, width)
    return bytes(data)


def _bmp_with_size(width: int, height: int) -> bytes:
    data = bytearray(valid_bytes("bmp", (8, 8)))
    struct.pack_into("<ii", data, 18, width, height)
    return bytes(data)


def _tiff_with_size(width: int, height: int) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((4, 4, 3), dtype=np.uint8), photometric="rgb")
    data = bytearray(buffer.getvalue())
    # Patch the ImageWidth (256) and ImageLength (257) entries of the first IFD (little-endian, tifffile default).
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for entry in range(count):
        offset = ifd + 2 + entry * 12
        tag, kind = struct.unpack_from("<HH", data, offset)
        if tag in (256, 257):
            value = width if tag == 256 else height
            if kind == 3:
                struct.pack_into("<HH", data, offset + 2, 4, 1)  # widen SHORT to LONG
            struct.pack_into("<I", data, offset + 8, value)
    return bytes(data)


def _exr_with_size(width: int, height: int) -> bytes:
    data = bytearray(valid_bytes("exr", (4, 4)))
    index = data.find(b"dataWindow\x00box2i\x00")
    start = index + len(b"dataWindow\x00box2i\x00") + 4
    struct.pack_into("<iiii", data, start, 0, 0, width - 1, height - 1)
    index = data.find(b"displayWindow\x00box2i\x00")
    start = index + len(b"displayWindow\x00box2i\x00") + 4
    struct.pack_into("<iiii", data, start, 0, 0, width - 1, height - 1)
    return bytes(data)


def _hdr_with_size(width: int, height: int) -> bytes:
    return b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n" + f"-Y {height} +X {width}\n".encode() + b"\x02\x02" * 8


def _webp_with_size(width: int, height: int) -> bytes:
    """A valid lossless (VP8L) WebP whose header claims another size (WebP allows up to 16384 x 16384)."""
    data = bytearray(valid_bytes("webp", (8, 8)))
    assert data[12:16] == b"VP8L" and data[20] == 0x2F
    (bits,) = struct.unpack_from("<I", data, 21)
    bits = (bits & ~((1 << 28) - 1)) | (width - 1) | ((height - 1) << 14)
    struct.pack_into("<I", data, 21, bits)
    return bytes(data)


def _png_chunk_bomb() -> bytes:
    """A small valid PNG whose IDAT chunk claims 4 GB (OpenCV allocated all of it before failing)."""
    data = bytearray(valid_bytes("png", (12, 10)))
    index = data.find(b"IDAT")
    struct.pack_into(">I", data, index - 4, 0xFF000000)
    return bytes(data)


def _png_bad_crc() -> bytes:
    data = bytearray(valid_bytes("png"))
    index = data.find(b"IDAT")
    data[index + 10] ^= 0xFF  # corrupt compressed pixel data: CRC no longer matches
    return bytes(data)


def build_corpus(folder: Path) -> list[tuple[Path, tuple[str, ...]]]:
    """Write the malformed files into ``folder``; return (path, words one of which the error must contain)."""
    folder.mkdir(parents=True, exist_ok=True)
    corrupt = ("corrupt", "truncated", "not a valid")
    too_big = ("too large", "absurd")
    cases: dict[str, tuple[bytes, tuple[str, ...]]] = {
        "empty.png": (b"", ("empty",)),
        "empty.exr": (b"", ("empty",)),
        "text.png": (b"this is not an image at all\n", ("not a valid",)),
        "text.jpg": (b"GIF89a\x01\x00\x01\x00", ("not a valid",)),
        "random.xyz": (bytes(range(256)) * 4, ("unsupported",)),
        "noextension": (b"\x00\x01\x02\x03" * 16, ("unsupported",)),
        "signature_only.png": (b"\x89PNG\r\n\x1a\n", corrupt),
        "header_only.png": (_png_with_header(64, 48)[:33], corrupt),
        "zero_width.png": (_png_with_header(0, 48), ("empty", "corrupt")),
        "bomb.png": (_png_with_header(100_000, 100_000), too_big),
        "absurd.png": (_png_with_header(2**31 - 1, 2**31 - 1), too_big + corrupt),
        "bad_crc.png": (_png_bad_crc(), corrupt),
        "garbage_after_soi.jpg": (b"\xff\xd8\xff" + bytes(range(200)), corrupt),
        "bomb.jpg": (_jpeg_with_size(60_000, 60_000), too_big),
        "zero.jpg": (_jpeg_with_size(0, 16), ("empty", "corrupt")),
        "bomb.bmp": (_bmp_with_size(50_000, 50_000), too_big),
        "zero.bmp": (_bmp_with_size(0, 0), ("empty", "corrupt")),
        "bomb.tif": (_tiff_with_size(100_000, 100_000), too_big),
        "bomb.exr": (_exr_with_size(100_000, 100_000), too_big),
        "bomb.hdr": (_hdr_with_size(100_000, 100_000), too_big),
        "zero.hdr": (_hdr_with_size(0, 10), ("empty",)),
        "no_resolution.hdr": (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n", corrupt),
        "header_garbage.exr": (b"\x76\x2f\x31\x01" + bytes(range(100)), corrupt),
        "riff_not_webp.webp": (b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8, corrupt),
        # Headers claiming 65535 x 65535 (the largest PNG/JPEG/BMP readers commonly accept): refused before decoding.
        "bomb65535.png": (_png_with_header(65535, 65535), too_big),
        "bomb65535.jpg": (_jpeg_with_size(65535, 65535), too_big),
        "bomb65535.bmp": (_bmp_with_size(65535, 65535), too_big),
        "bomb65535.tif": (_tiff_with_size(65535, 65535), too_big),
        "bomb65535.exr": (_exr_with_size(65535, 65535), too_big),
        "bomb65535.hdr": (_hdr_with_size(65535, 65535), too_big),
        "bomb16384.webp": (_webp_with_size(16384, 16384), too_big),
        "chunk_bomb.png": (_png_chunk_bomb(), corrupt),
        # Damaged files under another format's extension: the content decides, and it is still corrupt.
        "truncated_png_named.jpg": (valid_bytes("png")[:60], corrupt),
        "truncated_exr_named.png": (valid_bytes("exr")[:300], corrupt),
        "truncated_jpeg_named.tif": (valid_bytes("jpeg")[:40], corrupt),
    }
    for fmt, ext in (("png", "png"), ("jpeg", "jpg"), ("tiff", "tif"), ("bmp", "bmp"), ("webp", "webp"),
                     ("exr", "exr"), ("hdr", "hdr")):
        data = valid_bytes(fmt)
        cases[f"truncated_half.{ext}"] = (data[: len(data) // 2], corrupt)
        cases[f"truncated_header.{ext}"] = (data[:20], corrupt)
    result = []
    for name, (data, words) in cases.items():
        path = folder / name
        path.write_bytes(data)
        result.append((path, words))
    return result
