"""EXIF as named tags (exiv2's keys, e.g. ``Exif.Photo.ISOSpeedRatings``), through the ``pyexiv2`` package
(libexiv2): reading a camera raw file's EXIF, making the ``Exif\\0\\0`` payload that ``ImageMeta.exif`` holds from
tags, and writing EXIF into a TIFF (tifffile, which writes our TIFF pixels, cannot write an EXIF IFD).

Only what describes the photograph travels: camera, lens, exposure, dates, GPS, authorship; never the raw file's
structure (strip offsets, CFA tags, sizes, DNG colour tags), thumbnails or maker notes (their offsets point into
the original file).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

#: Tags of the IFD0 kept besides the Exif.Photo and GPS ones.
_IMAGE_TAGS = ("Make", "Model", "DateTime", "Artist", "Copyright", "Orientation")
#: Exif.Photo tags left out: pointers, maker notes, sizes of the original, and the raw-structure ones.
_PHOTO_SKIP = ("MakerNote", "InteroperabilityTag", "PixelXDimension", "PixelYDimension", "ComponentsConfiguration",
               "CompressedBitsPerPixel")


def photographic_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags worth keeping in a developed or restored image (see the module docstring)."""
    kept = {}
    for key, value in tags.items():
        group, _, name = key.partition(".")[2].partition(".")
        if (group == "Image" and name in _IMAGE_TAGS) or group == "GPSInfo" or (
                group == "Photo" and name not in _PHOTO_SKIP):
            if isinstance(value, str) and "\x00" not in value:
                kept[key] = value
    return kept


def read_file_tags(path: str | Path) -> dict[str, str]:
    """A file's EXIF tags as exiv2 reads them ({} when it cannot): TIFF-based raws (DNG, NEF, CR2, ARW, ORF,
    RW2, PEF, SRW), RAF, CR3, JPEG, TIFF..."""
    try:
        import pyexiv2

        with pyexiv2.Image(str(path)) as image:
            return dict(image.read_exif())
    except Exception:  # no EXIF, a format this exiv2 build does not parse, or no libexiv2 (a broken install)
        return {}


def _carrier_jpeg() -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("L", (1, 1)).save(buffer, format="JPEG")
    return buffer.getvalue()


def tags_to_exif(tags: Mapping[str, str]) -> bytes | None:
    """The ``Exif\\0\\0`` payload (as JPEG's APP1 holds it) carrying ``tags``; None when there are none."""
    if not tags:
        return None
    import pyexiv2
    from PIL import Image as PILImage

    with pyexiv2.ImageData(_carrier_jpeg()) as carrier:
        carrier.modify_exif(dict(tags))
        data = carrier.get_bytes()
    exif = PILImage.open(io.BytesIO(data)).info.get("exif")
    from .metadata import normalise_exif

    return normalise_exif(exif)


def exif_to_tags(exif: bytes) -> dict[str, str]:
    """The tags of an ``Exif\\0\\0`` payload ({} when it cannot be parsed)."""
    from PIL import Image as PILImage

    try:
        import pyexiv2

        buffer = io.BytesIO()
        PILImage.new("L", (1, 1)).save(buffer, format="JPEG", exif=exif)
        with pyexiv2.ImageData(buffer.getvalue()) as carrier:
            return dict(carrier.read_exif())
    except Exception:
        return {}


def tiff_with_exif(tiff: bytes, exif: bytes) -> bytes:
    """TIFF file bytes with the photographic tags of ``exif`` added (its own structure tags are kept)."""
    tags = photographic_tags(exif_to_tags(exif))
    if not tags:
        return tiff
    import pyexiv2

    with pyexiv2.ImageData(tiff) as image:
        image.modify_exif(tags)
        return image.get_bytes()
