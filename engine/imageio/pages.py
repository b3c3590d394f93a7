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

import numpy as np

from ..errors import ImageReadError, ImageWriteError
from ..image import Image, ImageMeta, make_image
from .atomic import atomic_write
from .formats import DEFAULT_MAX_PIXELS, check_dimensions, format_from_extension, max_pixels_limit

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


def read_frame(path: Path, fmt: str, index: int, max_pixels: int) -> Image:
    """Frame ``index`` of an animated PNG / WebP (Pillow composites it as a viewer shows it)."""
    from PIL import Image as PILImage

    from . import metadata
    from .convert import to_float

    with PILImage.open(path) as image:
        check_dimensions(path, image.width, image.height, max_pixels)
        frames = max(1, int(getattr(image, "n_frames", 1)))
        if not 0 <= index < frames:
            raise ImageReadError(path, f"the file has no frame {index + 1} (it has {frames})")
        bit_depth = 8
        if fmt == "png":
            header = metadata.png_header(path.read_bytes()[:64])
            if header["bit_depth"] == 16 and header["color_type"] in (2, 6):
                raise ImageReadError(path, "16-bit colour animated PNG: its frames cannot be read without cutting "
                                           "them to 8 bits")
        image.seek(index)
        image.load()  # WebP sets a frame's duration when it is decoded
        info = dict(image.info)
        mode = image.mode
        if mode in ("I;16", "I;16B", "I;16L", "I"):
            samples = np.asarray(image).astype(np.uint16)
            bit_depth, gray, alpha = 16, True, None
        else:
            has_alpha = "A" in mode or "transparency" in info
            gray = mode in ("1", "L", "LA")
            target = ("LA" if has_alpha else "L") if gray else ("RGBA" if has_alpha else "RGB")
            samples = np.asarray(image.convert(target))
            alpha = samples[:, :, -1] if has_alpha else None
            if samples.ndim == 3:
                samples = samples[:, :, :1] if gray else samples[:, :, :3]
        colour = to_float(samples if samples.ndim == 2 else samples[:, :, 0], out_channels=3) if gray \
            else to_float(samples, [0, 1, 2])
        alpha_float = None if alpha is None else to_float(alpha)[:, :, 0]
        extra: dict[str, Any] = {"pages": frames, "page_index": index,
                                 "frame_duration_ms": info.get("duration"), "loop": info.get("loop", 0)}
        meta = ImageMeta(path=str(path), format=fmt, bit_depth=bit_depth, sample_type="uint", gray=gray,
                         palette=mode in ("P", "PA"), hdr=False, color_space="srgb",
                         icc_profile=info.get("icc_profile") or None, extra=extra)
        return make_image(colour, alpha_float, meta)


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
