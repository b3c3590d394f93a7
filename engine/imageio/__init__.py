"""Faithful image reading and writing in the engine's one convention (engine/image.py).

Public API:
- :func:`read_image` (PNG, JPEG, TIFF, BMP, WebP at 8/16 bit; OpenEXR half/float with layers; Radiance .hdr)
- :func:`write_image` (atomic; keeps bit depth, alpha, gray-ness, HDR range, ICC, EXIF and EXR layers where the
  target format can hold them; never overwrites the input unless asked)
- :func:`describe` (what ``info`` prints), :func:`sanitize_hdr` / :func:`sanitize_image` (NaN/Inf/negatives),
  :func:`is_supported`, ``SUPPORTED_READ_EXTENSIONS``, ``SUPPORTED_WRITE_EXTENSIONS``, ``DEFAULT_MAX_PIXELS``.
- :func:`folder_images` (a folder's images to restore: a render's AOV sidecars and ``NAME_ref`` references left
  out, as they are read with it or are not inputs)

Every failure raises :class:`engine.errors.ImageReadError` / :class:`ImageWriteError` naming the file and the
problem; nothing else escapes (a decoder returning None, a cv2.error, a MemoryError all become one of them).

Conversions on save (documented choices):
- linear HDR -> 8/16-bit formats: sRGB-encoded, then clipped to [0, 1]. For the viewer's look (exposure, tone
  map) apply :func:`engine.display.to_display_uint8` first, as the GUI's export does;
- display-referred -> EXR / .hdr / float TIFF: sRGB-decoded to linear;
- alpha is dropped for JPEG (no alpha channel) and gray is written as RGB where the format has no gray (WebP);
- palette images are written as RGB(A); TIFF keeps ICC but not EXIF; EXR and .hdr keep no ICC/EXIF.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageReadError, ImageWriteError
from ..image import Image, make_image
from .atomic import atomic_write
from .convert import rows_per_chunk
from .formats import (
    DEFAULT_MAX_PIXELS,
    FORMAT_EXTENSIONS,
    MAX_PIXELS_ENV,
    SUPPORTED_READ_EXTENSIONS,
    SUPPORTED_WRITE_EXTENSIONS,
    format_from_extension,
    is_supported,
    max_pixels_limit,
    normalise_format,
    output_name,
    sniff_format,
)
from .hdr import sanitize_hdr, sanitize_image

__all__ = [
    "CONSOLE_LOCK",
    "DEFAULT_MAX_PIXELS",
    "FORMAT_EXTENSIONS",
    "MAX_PIXELS_ENV",
    "SUPPORTED_READ_EXTENSIONS",
    "SUPPORTED_WRITE_EXTENSIONS",
    "output_name",
    "describe",
    "folder_images",
    "is_supported",
    "max_pixels_limit",
    "read_image",
    "sanitize_hdr",
    "sanitize_image",
    "write_image",
]


def folder_images(folder: str | os.PathLike[str]) -> tuple[list[Path], dict[Path, str]]:
    """The supported images directly inside ``folder`` (sorted, not recursive) that are inputs of their own, and
    the ones left out with why: a render's AOV sidecars and its high-sample reference
    (:func:`engine.imageio.sidecars.companion_files`), as in a shot's fine-tuning folder."""
    from .sidecars import companion_files

    found = sorted(p for p in Path(folder).iterdir() if p.is_file() and is_supported(p))
    companions = companion_files(found)
    return [p for p in found if p not in companions], companions


def _check_readable(path: Path) -> bytes:
    """The file's first bytes, after turning every way of not being a readable file into a clear error."""
    try:
        if not path.exists():
            raise ImageReadError(path, "no such file")
        if path.is_dir():
            raise ImageReadError(path, "this is a folder, not an image file")
        with open(path, "rb") as stream:
            head = stream.read(64)
    except ImageReadError:
        raise
    except PermissionError as error:
        raise ImageReadError(path, "permission denied") from error
    except OSError as error:
        problem = "permission denied" if error.errno in (errno.EACCES, errno.EPERM) else (error.strerror or str(error))
        raise ImageReadError(path, problem) from error
    if not head:
        raise ImageReadError(path, "the file is empty")
    return head


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
               load_sidecars: bool = True) -> Image:
    """Read an image file into the engine's convention (see engine/image.py).

    The format comes from the file's content (its first bytes), not its extension. Dimensions are checked from the
    header before decoding: images above ``max_pixels`` are refused (pass None to use the
    ``RESTORATION_STUDIO_MAX_PIXELS`` environment variable, else ``DEFAULT_MAX_PIXELS``; the default argument is
    also overridden by that variable when set). ``load_sidecars`` attaches ``NAME_albedo.exr``-style AOV files
    found beside an HDR render as layers.
    """
    path = Path(path)
    head = _check_readable(path)
    if max_pixels is None or (max_pixels == DEFAULT_MAX_PIXELS and os.environ.get(MAX_PIXELS_ENV)):
        max_pixels = max_pixels_limit(None)
    fmt = "raw" if format_from_extension(path) == "raw" else sniff_format(head)
    if fmt is None:
        named = format_from_extension(path)
        if named is None:
            supported = " ".join(sorted({e.lstrip(".") for e in SUPPORTED_READ_EXTENSIONS}))
            raise ImageReadError(path, f"unsupported file format (supported: {supported})")
        raise ImageReadError(path, f"not a valid {named.upper()} file (corrupt, or another format under this name)")
    image = _decode(path, fmt, max_pixels)
    if load_sidecars and image.meta.hdr:
        from .sidecars import attach_sidecars

        image = attach_sidecars(image, path, lambda p: read_image(p, max_pixels=max_pixels, load_sidecars=False))
    return image


#: Warning categories about the code, not the file being read (a library's first import may raise them).
_NOT_ABOUT_THE_FILE = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, FutureWarning, ResourceWarning)
#: Held while a decode captures what libraries print (the capture swaps the process-wide sys.stdout and file
#: descriptors 1 and 2): decodes take turns, and a thread that prints while another may be decoding (``restore
#: --workers``) holds it too, or its line would vanish into that file's ``decoder_warnings``.
CONSOLE_LOCK = threading.Lock()


@contextlib.contextmanager
def _library_messages() -> Iterator[list[str]]:
    """Collect what a decoder library says while it runs, instead of letting it reach stdout (where it would
    break ``info --json``): text printed through Python's sys.stdout (the OpenEXR binding prints "Warning:
    Exception raised reading pixel data..." there), Python warnings, and tifffile's log warnings."""
    import logging

    messages: list[str] = []
    printed = io.StringIO()

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = _Collect(logging.WARNING)
    logger = logging.getLogger("tifffile")
    with CONSOLE_LOCK, warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed), \
            _native_output() as native:
        warnings.simplefilter("always")
        logger.addHandler(handler)
        propagate, logger.propagate = logger.propagate, False
        try:
            yield messages
        finally:
            logger.removeHandler(handler)
            logger.propagate = propagate
            sys.stdout.flush()
            native_text = native()
            text = printed.getvalue() + "\n" + native_text
            messages[:0] = [line.strip() for line in text.splitlines() if line.strip()]
            messages.extend(str(w.message) for w in caught if not issubclass(w.category, _NOT_ABOUT_THE_FILE))


@contextlib.contextmanager
def _native_output() -> Iterator[Callable[[], str]]:
    """Send what compiled libraries write to file descriptors 1 and 2 (OpenEXR's core prints "Corrupt tile..."
    there) into a temporary file; yields a function that restores both and returns the text."""
    try:
        sys.stderr.flush()
        saved = (os.dup(1), os.dup(2))
    except (OSError, ValueError):  # no real descriptors (an embedded interpreter): nothing to capture
        yield lambda: ""
        return
    sink = tempfile.TemporaryFile()
    restored = False

    def restore() -> str:
        nonlocal restored
        if not restored:
            restored = True
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        sink.seek(0)
        return sink.read(65536).decode("utf-8", "replace")

    try:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        yield restore
    finally:
        restore()
        sink.close()


#: Lines other parts of the process write to the shared stdout / stderr while a decode runs (the capture is
#: process-wide): Qt's warnings ("QPainter::begin: ...", "qt.qpa.xcb: ..."), which are not about the file.
_ELSEWHERE = re.compile(r"^(Q[A-Za-z0-9]+::|qt\.[a-z0-9_.]+:|QObject|QThread|QBasicTimer|QSocketNotifier)")


def _from_elsewhere(message: str) -> bool:
    return bool(_ELSEWHERE.match(message))


def _decode(path: Path, fmt: str, max_pixels: int, page: int | None = None) -> Image:
    """Decode with the library messages collected: a damaged EXR the OpenEXR library warns about is refused
    (its pixels are not what the file meant); other decoders' warnings are kept in ``meta.extra`` as
    ``decoder_warnings`` (``info`` shows them, ``restore`` repeats them on stderr)."""
    messages: list[str] = []
    try:
        with _library_messages() as messages:
            image = _decode_quietly(path, fmt, max_pixels, page)
    except ImageReadError as error:
        if fmt == "exr" and messages and "corrupt" not in error.problem:
            raise ImageReadError(path, f"{error.problem}; the OpenEXR library reported: {messages[0]}") from error
        raise
    messages = [m for m in messages if not _from_elsewhere(m)]
    if messages and fmt == "exr":
        raise ImageReadError(path, f"damaged OpenEXR file: the library reported {messages[0]!r}")
    if messages:
        extra = dict(image.meta.extra, decoder_warnings=list(dict.fromkeys(messages))[:10])
        image = make_image(image.pixels, image.alpha, replace(image.meta, extra=extra), image.layers)
    return image


def _decode_quietly(path: Path, fmt: str, max_pixels: int, page: int | None = None) -> Image:
    """The decoder for ``fmt``; ``page`` (multi-page TIFF, animated PNG / WebP) reads that page of the file."""
    try:
        if page is not None:
            from .frames import read_frame
            from .raster import read_tiff_page

            return read_tiff_page(path, max_pixels, page) if fmt == "tiff" else read_frame(path, fmt, page, max_pixels)
        if fmt == "exr":
            from .exr import read_exr

            return read_exr(path, max_pixels)
        if fmt == "hdr":
            from .hdr import read_hdr

            return read_hdr(path, max_pixels)
        if fmt == "raw":
            from .camera_raw import read_raw

            return read_raw(path, max_pixels)
        from .raster import read_raster

        return read_raster(path, fmt, max_pixels)
    except ImageReadError:
        raise
    except MemoryError as error:
        raise ImageReadError(path, "not enough memory to decode this image") from error
    except PermissionError as error:
        raise ImageReadError(path, "permission denied") from error
    except Exception as error:  # any decoder failure is a property of the file, reported as such
        raise ImageReadError(path, f"corrupt {fmt.upper()} file ({type(error).__name__}: {error})") from error


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def write_image(
    path: str | os.PathLike[str],
    image: Image,
    *,
    format: str | None = None,
    bit_depth: int | None = None,
    allow_overwrite_input: bool = False,
    jpeg_quality: int | None = None,
    overwrite: bool = True,
) -> Path:
    """Write ``image`` to ``path`` atomically and return the path.

    ``format`` defaults to the extension's. ``bit_depth`` defaults to the image's own where the format has it
    (8/16 for PNG and TIFF, 32-bit float TIFF for float data, half/float for EXR). ``jpeg_quality`` (1-100) sets
    JPEG quality (default: the source's if known, else 95) and makes WebP lossy (WebP is lossless without it).
    Refuses to replace the file the image was read from (or its sidecars) unless ``allow_overwrite_input``.
    ``overwrite=False`` refuses to replace any existing file, checked atomically as the file is published (see
    :func:`engine.imageio.atomic.claim_output` to refuse before a long job).
    """
    path = Path(path)
    try:
        fmt = normalise_format(format) if format else format_from_extension(path)
    except ValueError as error:
        raise ImageWriteError(path, str(error)) from error
    if fmt is None:
        supported = " ".join(sorted({e.lstrip(".") for e in SUPPORTED_WRITE_EXTENSIONS}))
        raise ImageWriteError(path, f"unknown output format for extension {path.suffix!r} (use one of: {supported})")
    if fmt == "raw":
        raise ImageWriteError(path, f"camera raw files ({path.suffix}) are read, never written: save a developed "
                                    "photo as .tif (16 bit, EXIF kept) or another image format")
    if jpeg_quality is not None and not 1 <= int(jpeg_quality) <= 100:
        raise ImageWriteError(path, f"JPEG quality must be 1 to 100, got {jpeg_quality}")
    if not allow_overwrite_input:
        sources = [image.meta.path] + list(dict(image.meta.extra.get("sidecars", {})).values())
        for source in sources:
            if source and _same_file(path, Path(source)):
                raise ImageWriteError(path, "refusing to overwrite the input file (ask explicitly to replace it)")
    if fmt == "exr":
        from .exr import write_exr

        return atomic_write(path, lambda temporary: write_exr(temporary, image, bit_depth, path),
                            replace_existing=overwrite)
    if fmt == "hdr":
        if bit_depth not in (None, 32):
            raise ImageWriteError(path, "Radiance .hdr stores 32-bit (RGBE) floats only")
        from .convert import linearise
        from .hdr import encode_hdr

        def produce_hdr(temporary: Path) -> None:
            pixels = image.pixels if image.meta.hdr else linearise(image.pixels)
            temporary.write_bytes(encode_hdr(pixels))

        return atomic_write(path, produce_hdr, replace_existing=overwrite)
    from .raster import check_raster_depth, default_bit_depth, encode_raster

    depth = int(bit_depth) if bit_depth else default_bit_depth(image, fmt)
    check_raster_depth(fmt, depth, path)

    def produce(temporary: Path) -> None:
        with open(temporary, "wb") as stream:
            encode_raster(image, fmt, depth, jpeg_quality, stream)
            stream.flush()
            os.fsync(stream.fileno())

    return atomic_write(path, produce, replace_existing=overwrite)


def _finite_range(pixels: np.ndarray) -> tuple[float | None, float | None]:
    finite_min, finite_max = None, None
    rows = rows_per_chunk(pixels.shape[1])
    for top in range(0, pixels.shape[0], rows):
        part = pixels[top : top + rows]
        values = part[np.isfinite(part)]
        if values.size:
            low, high = float(values.min()), float(values.max())
            finite_min = low if finite_min is None else min(finite_min, low)
            finite_max = high if finite_max is None else max(finite_max, high)
    return finite_min, finite_max


def describe(image: Image) -> dict[str, Any]:
    """What the loader sees, as plain JSON-ready values (the ``info`` command prints this)."""
    meta = image.meta
    low, high = _finite_range(image.pixels)
    channels = (1 if meta.gray else 3) + (1 if image.alpha is not None else 0)
    extra = dict(meta.extra)
    info: dict[str, Any] = {
        "path": meta.path,
        "format": meta.format,
        "width": image.width,
        "height": image.height,
        "channels": channels,
        "bit_depth": meta.bit_depth,
        "sample_type": meta.sample_type,
        "gray": meta.gray,
        "alpha": image.alpha is not None,
        "palette": meta.palette,
        "hdr": meta.hdr,
        "color_space": meta.color_space,
        "min": low,
        "max": high,
        "layers": {name: int(layer.shape[2]) for name, layer in image.layers.items()},
        "aovs": [name for name in image.aovs],
        "icc_profile": len(meta.icc_profile) if meta.icc_profile else None,
        "exif": len(meta.exif) if meta.exif else None,
    }
    for key in ("nonfinite_count", "nan_count", "inf_count", "negative_count"):
        if key in extra:
            info[key] = int(extra[key])
    if "sidecars" in extra:
        info["sidecars"] = {k: os.path.basename(v) for k, v in dict(extra["sidecars"]).items()}
    if "sidecar_problems" in extra:
        info["sidecar_problems"] = dict(extra["sidecar_problems"])
    if "exif_orientation_applied" in extra:
        info["exif_orientation_applied"] = int(extra["exif_orientation_applied"])
    if "pages" in extra:  # multi-page TIFF, animated PNG / WebP: this is the first; `restore` does them all
        info["pages"] = int(extra["pages"])
    if "decoder_warnings" in extra:
        info["decoder_warnings"] = list(extra["decoder_warnings"])
    if "exr_compression" in extra:
        info["compression"] = extra["exr_compression"]
    if "raw" in extra:  # a camera raw file: what LibRaw read, and how it was developed for viewing
        info.update(dict(extra["raw"]))
        info["developed"] = extra.get("raw_developed")
    return info

