"""Files that hold several images: multi-page TIFF (how archives store scanned documents), animated PNG (APNG) and
animated WebP.

:func:`engine.imageio.read_image` gives the first page, with the count in ``meta.extra["pages"]``. This module
reads any page (:func:`read_page`) and writes a multi-page file from pages produced one at a time
(:func:`write_pages`), so that restoring a 300-page scan never holds more than one page as float32.

- TIFF pages are read like a single TIFF (tifffile, OpenCV's libtiff for the codecs tifffile lacks); thumbnails
  and previews (reduced-resolution pages) are not pages of their own. Each page is written back with its own bit
  depth, alpha and ICC profile.
- APNG and WebP frames are read with Pillow, composited as a viewer shows them (so each frame is a whole image),
  with their display durations and loop count; they are written back as an animation of whole frames. 16-bit
  colour APNG frames are refused (Pillow reads them as 8-bit, which would cut their precision).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ImageReadError, ImageWriteError
from ..image import Image
from .atomic import atomic_write
from .formats import DEFAULT_MAX_PIXELS, format_from_extension, max_pixels_limit

#: Formats that can hold several pages / frames, and the extension suggested for them.
MULTI_PAGE_FORMATS = ("tiff", "png", "webp")


def page_count(image: Image) -> int:
    """How many pages (frames) the file ``image`` was read from holds (1 for an ordinary image)."""
    return max(1, int(image.meta.extra.get("pages", 1)))


def read_page(path: str | os.PathLike[str], index: int, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image:
    """Page ``index`` (0-based) of a multi-page TIFF, animated PNG or animated WebP, in the engine's convention.

    Page 0 of a TIFF equals :func:`engine.imageio.read_image`'s result. Raises ImageReadError naming the file.
    """
    from . import _check_readable, _decode
    from .formats import sniff_format

    path = Path(path)
    limit = max_pixels_limit(None) if max_pixels is None else max_pixels
    fmt = sniff_format(_check_readable(path))
    if fmt not in MULTI_PAGE_FORMATS:
        raise ImageReadError(path, "this file holds one image; it has no further pages")
    return _decode(path, fmt, limit, page=index)


def write_pages(path: str | os.PathLike[str], pages: Iterable[Image], *, overwrite: bool = True) -> Path:
    """Write the ``pages`` (produced one at a time: a generator may restore each as it is asked for) into one
    multi-page TIFF, animated PNG or animated WebP at ``path``, atomically. Each TIFF page keeps its own bit depth,
    alpha and ICC profile; an animation keeps the frame durations and loop count of its first frame's source."""
    path = Path(path)
    fmt = format_from_extension(path)
    if fmt not in MULTI_PAGE_FORMATS:
        raise ImageWriteError(path, f"{(fmt or path.suffix).upper()} holds one image; write several pages to "
                                    ".tif, .png or .webp")
    if fmt == "tiff":
        return atomic_write(path, lambda temporary: _write_tiff_pages(temporary, pages), replace_existing=overwrite)
    return atomic_write(path, lambda temporary: _write_animation(temporary, fmt, pages), replace_existing=overwrite)


def _write_tiff_pages(temporary: Path, pages: Iterable[Image]) -> None:
    import tifffile

    from .raster import check_raster_depth, default_bit_depth, encode_raster

    with tifffile.TiffWriter(temporary) as writer:
        for page in pages:
            depth = default_bit_depth(page, "tiff")
            check_raster_depth("tiff", depth, temporary)
            encode_raster(page, "tiff", depth, None, writer)


def _write_animation(temporary: Path, fmt: str, pages: Iterable[Image]) -> None:
    from PIL import Image as PILImage

    from .raster import encode_raster

    frames, durations, loop = [], [], 0
    for page in pages:
        # Each frame is encoded as a still image (keeping what the format keeps), then re-read by Pillow.
        buffer = io.BytesIO()
        encode_raster(page, fmt, 8, None, buffer)
        buffer.seek(0)
        with PILImage.open(buffer) as still:
            frame = still.convert("RGBA" if page.alpha is not None else "RGB")
        frames.append(frame)
        durations.append(int(page.meta.extra.get("frame_duration_ms") or 100))
        loop = int(page.meta.extra.get("loop") or 0) if len(frames) == 1 else loop
    if not frames:
        raise ImageWriteError(temporary, "no pages to write")
    options: dict[str, Any] = {"save_all": True, "append_images": frames[1:], "duration": durations, "loop": loop}
    if fmt == "webp":
        options.update(lossless=True, exact=True)
    else:
        # Every frame is whole, so it replaces the canvas (blend "source") and what is done with the canvas after
        # it (dispose) changes nothing on screen. Alternating the dispose op makes no two frames in a row alike to
        # Pillow, which would otherwise merge identical ones: page i of the output stays page i of the input.
        options.update(disposal=[index % 2 for index in range(len(frames))], blend=0)
    icc = frames[0].info.get("icc_profile")
    if icc:
        options["icc_profile"] = icc
    with open(temporary, "wb") as stream:
        frames[0].save(stream, format="PNG" if fmt == "png" else "WEBP", **options)
        stream.flush()
        os.fsync(stream.fileno())
