"""File formats: extensions, content sniffing, and the size limits checked before any pixel is decoded."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ImageReadError

#: Refuse images above this many pixels unless the caller (or ``RESTORATION_STUDIO_MAX_PIXELS``) allows more.
#: 200 megapixels of float32 RGB already take 2.4 GB in memory.
DEFAULT_MAX_PIXELS = 200_000_000
MAX_PIXELS_ENV = "RESTORATION_STUDIO_MAX_PIXELS"
#: No real image is wider or taller than this; a header claiming more is corrupt or hostile.
MAX_SIDE = 1 << 20

#: Camera raw extensions, read (developed) through LibRaw by camera_raw.py, never written.
RAW_EXTENSIONS: tuple[str, ...] = (
    ".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2", ".rwl",
    ".pef", ".srw", ".3fr", ".fff", ".iiq", ".mos", ".mef", ".mrw", ".kdc", ".dcr", ".erf", ".x3f", ".gpr",
)
#: Extension (lower case, with dot) -> container format name used in ImageMeta.format.
EXTENSION_FORMATS: dict[str, str] = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".jpe": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".bmp": "bmp",
    ".dib": "bmp",
    ".webp": "webp",
    ".exr": "exr",
    ".hdr": "hdr",
    ".pic": "hdr",
    # Camera raw files, read (developed) through LibRaw; never written. The extension decides: most raws are
    # TIFF containers whose first image is a thumbnail (camera_raw.py).
    **{extension: "raw" for extension in RAW_EXTENSIONS},
}
#: The extension written for each format when a caller names a format but no extension.
FORMAT_EXTENSIONS: dict[str, str] = {
    "png": ".png",
    "jpeg": ".jpg",
    "tiff": ".tif",
    "bmp": ".bmp",
    "webp": ".webp",
    "exr": ".exr",
    "hdr": ".hdr",
}
FORMAT_ALIASES = {"jpg": "jpeg", "tif": "tiff", "rgbe": "hdr", "radiance": "hdr", "openexr": "exr"}

SUPPORTED_READ_EXTENSIONS: tuple[str, ...] = tuple(EXTENSION_FORMATS)
SUPPORTED_WRITE_EXTENSIONS: tuple[str, ...] = tuple(e for e, f in EXTENSION_FORMATS.items() if f != "raw")

#: Formats whose pixels are scene-referred linear floats.
HDR_FORMATS = frozenset({"exr", "hdr"})


def format_from_extension(path: str | os.PathLike[str]) -> str | None:
    return EXTENSION_FORMATS.get(Path(path).suffix.lower())


def output_name(path: str | os.PathLike[str]) -> Path:
    """The name a result of ``path`` is saved under by default: the same, except that a camera raw file (never
    written) gives a 16-bit TIFF, ``photo.dng`` -> ``photo.tif``."""
    path = Path(path)
    return path.with_suffix(FORMAT_EXTENSIONS["tiff"]) if format_from_extension(path) == "raw" else path


def normalise_format(name: str) -> str:
    """``"JPG"`` -> ``"jpeg"``; raises ValueError for a format this module cannot handle."""
    key = name.lower().lstrip(".")
    key = FORMAT_ALIASES.get(key, key)
    if key not in FORMAT_EXTENSIONS:
        raise ValueError(f"unsupported image format {name!r} (supported: {', '.join(sorted(FORMAT_EXTENSIONS))})")
    return key


def is_supported(path: str | os.PathLike[str]) -> bool:
    """True when the file's extension is one the reader handles (the content is checked only on reading)."""
    return format_from_extension(path) is not None


def sniff_format(head: bytes) -> str | None:
    """The format named by a file's first bytes, or None when they match no supported format."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"\x76\x2f\x31\x01"):
        return "exr"
    if head.startswith(b"#?RADIANCE") or head.startswith(b"#?RGBE"):
        return "hdr"
    return None


def max_pixels_limit(max_pixels: int | None = None) -> int:
    """The pixel limit in force: the caller's value, else the environment override, else the default."""
    if max_pixels is not None:
        return int(max_pixels)
    override = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if override:
        try:
            value = int(float(override))
        except ValueError:
            value = 0
        if value > 0:
            return value
    return DEFAULT_MAX_PIXELS


def check_dimensions(path: object, width: int, height: int, max_pixels: int) -> None:
    """Refuse zero, absurd or bomb-sized dimensions read from a header, before decoding."""
    if width <= 0 or height <= 0:
        raise ImageReadError(path, f"the file declares an empty image ({width} x {height} pixels)")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageReadError(path, f"the file declares absurd dimensions ({width} x {height} pixels); it is corrupt")
    if width * height > max_pixels:
        raise ImageReadError(
            path,
            f"image too large: {width} x {height} = {width * height / 1e6:.1f} megapixels exceeds the limit of "
            f"{max_pixels / 1e6:.1f} megapixels (possible decompression bomb; raise it with {MAX_PIXELS_ENV})",
        )
