"""Metadata that a faithful save must carry: ICC profiles, EXIF, PNG chunks, EXIF orientation.

Convention: ``ImageMeta.exif`` holds the EXIF payload as Pillow and JPEG's APP1 segment use it, starting with
``b"Exif\\x00\\x00"`` followed by the TIFF-structured data. PNG's eXIf chunk and TIFF hold the data without that
prefix; :func:`exif_payload` strips it.

PNG metadata is written by inserting chunks into the encoder's output (iCCP, eXIf, pHYs, tEXt) right after IHDR,
so that OpenCV's fast 8/16-bit encoder can be used for the pixels. :func:`encode_png` writes the one layout
OpenCV cannot: gray + alpha.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from typing import BinaryIO

import numpy as np

EXIF_PREFIX = b"Exif\x00\x00"
ORIENTATION_TAG = 0x0112
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The iTXt keyword under which PNG files carry XMP metadata.
PNG_XMP_KEYWORD = "XML:com.adobe.xmp"


def normalise_exif(data: bytes | None) -> bytes | None:
    """EXIF bytes from any container -> ``b"Exif\\0\\0" + TIFF data``; None for empty or implausible data."""
    if not data:
        return None
    data = bytes(data)
    if data.startswith(EXIF_PREFIX):
        body = data[len(EXIF_PREFIX) :]
    else:
        body = data
    if body[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    return EXIF_PREFIX + body


def exif_payload(exif: bytes) -> bytes:
    """The TIFF-structured EXIF data without the ``Exif\\0\\0`` prefix (PNG eXIf, WebP EXIF chunk)."""
    return exif[len(EXIF_PREFIX) :] if exif.startswith(EXIF_PREFIX) else exif


def exif_orientation(exif: bytes | None) -> int:
    """The EXIF orientation (1..8), 1 when absent or unreadable."""
    if not exif:
        return 1
    from PIL import Image as PILImage

    try:
        value = PILImage.Exif()
        value.load(exif)
        orientation = int(value.get(ORIENTATION_TAG, 1))
    except Exception:  # a broken EXIF block must not make the image unreadable
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def exif_with_orientation_reset(exif: bytes) -> bytes:
    """The same EXIF with orientation 1: the pixels were turned upright on reading."""
    from PIL import Image as PILImage

    try:
        value = PILImage.Exif()
        value.load(exif)
        value[ORIENTATION_TAG] = 1
        return normalise_exif(value.tobytes()) or exif
    except Exception:
        return exif


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn H x W [x C] samples upright according to an EXIF orientation (views, no copies)."""
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return np.swapaxes(array, 0, 1)
    if orientation == 6:
        return np.swapaxes(array, 0, 1)[:, ::-1]
    if orientation == 7:
        return np.swapaxes(array, 0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.swapaxes(array, 0, 1)[::-1]
    return array


# --- PNG chunks -----------------------------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC over type + data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header(data: bytes) -> dict[str, int]:
    """Width, height, bit depth, colour type and interlace from a PNG's IHDR (first 33 bytes suffice)."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 29:
        raise ValueError("no PNG IHDR chunk")
    width, height, bit_depth, color_type, _compression, _filter, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return {"width": width, "height": height, "bit_depth": bit_depth, "color_type": color_type, "interlace": interlace}


def metadata_chunks(
    icc_profile: bytes | None,
    exif: bytes | None,
    dpi: tuple[float, float] | None = None,
    text: dict[str, str] | None = None,
) -> list[bytes]:
    """The ancillary chunks that carry an image's metadata, in the order PNG wants them (before IDAT)."""
    chunks = []
    if icc_profile:
        # iCCP: profile name (Latin-1, 1-79 bytes), NUL, compression method 0, zlib stream.
        chunks.append(png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile)))
    if dpi and dpi[0] > 0 and dpi[1] > 0:
        per_metre = (round(dpi[0] / 0.0254), round(dpi[1] / 0.0254))
        chunks.append(png_chunk(b"pHYs", struct.pack(">IIB", per_metre[0], per_metre[1], 1)))
    if exif:
        chunks.append(png_chunk(b"eXIf", exif_payload(exif)))
    for key, value in (text or {}).items():
        keyword = key.encode("latin-1", "replace")[:79]
        if keyword:
            chunks.append(png_chunk(b"iTXt", keyword + b"\x00\x00\x00\x00\x00" + value.encode("utf-8")))
    return chunks


def write_png_with_chunks(stream: BinaryIO, png: bytes | memoryview, chunks: Iterable[bytes]) -> None:
    """Write an encoded PNG with extra chunks inserted right after IHDR (where every reader accepts
    iCCP/eXIf/pHYs/iTXt), piece by piece so that the encoded data is not copied."""
    png = memoryview(png)
    (ihdr_length,) = struct.unpack(">I", png[8:12])
    end_of_ihdr = 8 + 12 + ihdr_length
    stream.write(png[:end_of_ihdr])
    for chunk in chunks:
        stream.write(chunk)
    stream.write(png[end_of_ihdr:])


def encode_png(samples: np.ndarray, color_type: int, compression: int = 6) -> bytes:
    """Encode uint8/uint16 samples as a PNG of the given colour type (used for gray + alpha, type 4).

    Every row uses the "Up" filter, computed for all rows at once with numpy; it compresses smooth images almost
    as well as adaptive filtering and keeps this writer simple.
    """
    height, width = samples.shape[:2]
    bit_depth = 16 if samples.dtype == np.uint16 else 8
    raw = samples.astype(">u2" if bit_depth == 16 else np.uint8, copy=False).reshape(height, -1).view(np.uint8)
    filtered = np.empty((height, raw.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = 2  # filter type "Up"
    filtered[0, 1:] = raw[0]
    np.subtract(raw[1:], raw[:-1], out=filtered[1:, 1:])  # uint8 arithmetic wraps modulo 256, as PNG wants
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(filtered.tobytes(), compression)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
