"""PNG, JPEG, TIFF, BMP and WebP: 8 and 16 bit, gray, gray + alpha, RGB, RGBA and palette images.

Who does what, and why:
- the header (size, mode, ICC profile, EXIF, DPI) is read with Pillow, or tifffile for TIFF, before any pixel is
  decoded, so that bombs are refused cheaply;
- PNG, BMP and WebP pixels are decoded by OpenCV, which keeps 16-bit samples (Pillow reduces 16-bit RGB to 8);
- JPEG pixels are decoded by Pillow, which reports truncated files (OpenCV fills them with gray silently);
- TIFF pixels are decoded by tifffile (16-bit gray + alpha, float, planar data) with OpenCV's libtiff as the
  fallback for compressions tifffile cannot decode without extra codecs (LZW, JPEG, PackBits) and palettes.
Writing uses OpenCV for PNG pixels (plus metadata chunks), Pillow for JPEG and WebP (they take ICC/EXIF), and
tifffile for TIFF (16 bit with alpha and ICC).
"""

from __future__ import annotations

import functools
import io
import re
import struct
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import ImageReadError, ImageWriteError
from ..image import Image, ImageMeta, make_image
from . import metadata
from .convert import channels_equal, linearise, rows_per_chunk, to_float, to_uint
from .formats import MAX_PIXELS_ENV, check_dimensions
from .hdr import value_report


def _cv2() -> Any:
    import cv2

    return cv2


def _pillow(max_pixels: int) -> Any:
    from PIL import Image as PILImage

    # Pillow refuses images above twice its own limit (~179 MP) even when ours is higher; our check runs first,
    # so lift Pillow's limit to ours. This only ever raises it.
    if PILImage.MAX_IMAGE_PIXELS is not None and PILImage.MAX_IMAGE_PIXELS < max_pixels:
        PILImage.MAX_IMAGE_PIXELS = max_pixels
    return PILImage


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as stream:
        return stream.read()


# --- reading ----------------------------------------------------------------------------------------------------


def read_raster(path: Path, fmt: str, max_pixels: int) -> Image:
    if fmt == "tiff":
        return read_tiff_page(path, max_pixels)
    data = _read_bytes(path)
    header = _pillow_header(path, data, fmt, max_pixels)
    if fmt in ("png", "webp") and (header["frames"] > 1 or (fmt == "png" and _has_actl(data))):
        # An animation: its first frame as engine/imageio/pages.py reads every frame (Pillow, composited as a
        # viewer shows it), so that page 1 is the same picture whichever way it is read.
        from .frames import read_frame

        try:
            return read_frame(path, fmt, 0, max_pixels)
        except ImageReadError:
            if fmt != "png":
                raise  # a 16-bit colour APNG: its first frame is read below, as OpenCV decodes PNGs
    header["pillow_decoded"] = fmt == "jpeg" or (fmt == "bmp" and _bmp_needs_pillow(data))
    if header["pillow_decoded"]:
        samples = _decode_with_pillow(path, data, max_pixels, keep_alpha=fmt != "jpeg")
    else:
        samples = _decode_with_opencv(path, data, fmt)
    return _assemble(path, fmt, samples, header)


def _has_actl(data: bytes) -> bool:
    """True for an animated PNG (an acTL chunk before the image data), even one Pillow counts one frame in (an
    invalid animation: Pillow shows its default image, as the APNG specification asks; OpenCV showed another)."""
    idat = data.find(b"IDAT")
    actl = data.find(b"acTL")
    return actl != -1 and (idat == -1 or actl < idat)


def _bmp_needs_pillow(data: bytes) -> bool:
    """True for the BMP layouts OpenCV 4.14 decodes wrongly (found with Pillow's test images: OS/2 headers,
    V2/V3 bit-field headers and some palette files came out gray, with a red channel of 0, or scrambled): every
    layout except plain 24 / 32-bit BI_RGB with a Windows header, which OpenCV reads right and with its alpha."""
    if len(data) < 34:
        return False
    header_size = struct.unpack_from("<I", data, 14)[0]
    bits, compression = struct.unpack_from("<HI", data, 28)
    return not (header_size in (40, 108, 124) and bits in (24, 32) and compression == 0)


def _pillow_header(path: Path, data: bytes, fmt: str, max_pixels: int) -> dict[str, Any]:
    pil = _pillow(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pil.open(io.BytesIO(data)) as image:
                width, height = image.size
                check_dimensions(path, width, height, max_pixels)
                info = dict(image.info)
                header = {"mode": image.mode, "width": width, "height": height, "info": info, "head": data[:64],
                          "frames": _frame_count(image)}
                if fmt == "jpeg":
                    header["subsampling"] = _jpeg_subsampling(image)
                    header["quality"] = estimate_jpeg_quality(getattr(image, "quantization", None))
                return header
    except ImageReadError:
        raise
    except pil.DecompressionBombError as error:
        # Pillow checks the size inside open(), before we see it; report it in our own words.
        match = re.search(r"\((\d+) pixels\)", str(error))
        claimed = f"{int(match.group(1)) / 1e6:.1f} megapixels " if match else ""
        raise ImageReadError(
            path,
            f"image too large: {claimed}exceeds the limit of {max_pixels / 1e6:.1f} megapixels (possible "
            f"decompression bomb; raise it with {MAX_PIXELS_ENV})",
        ) from error
    except pil.UnidentifiedImageError as error:
        raise ImageReadError(path, f"corrupt {fmt.upper()} header (unrecognised data)") from error
    except Exception as error:
        raise ImageReadError(path, f"corrupt {fmt.upper()} header ({error})") from error


def _frame_count(image: Any) -> int:
    """Frames of an animated PNG / WebP as Pillow counts them (1 for a still image, or when it cannot tell)."""
    try:
        return max(1, int(getattr(image, "n_frames", 1)))
    except Exception:
        return 1


@functools.cache
def _libjpeg_luma_tables() -> dict[int, tuple[int, ...]]:
    """The luminance quantisation table that libjpeg (through Pillow) writes at each quality 1..100."""
    from PIL import Image as PILImage

    tables = {}
    tiny = PILImage.new("L", (8, 8))
    for quality in range(1, 101):
        buffer = io.BytesIO()
        tiny.save(buffer, format="JPEG", quality=quality)
        with PILImage.open(buffer) as encoded:
            tables[quality] = tuple(encoded.quantization[0])
    return tables


def estimate_jpeg_quality(quantization: dict[int, Any] | None) -> int | None:
    """The libjpeg quality whose luminance table is closest to the file's (so a re-save keeps its size/look).

    None when the file has no tables or they are far from any libjpeg quality (custom tables).
    """
    if not quantization or 0 not in quantization or len(quantization[0]) != 64:
        return None
    table = np.asarray(quantization[0], dtype=np.float64)
    best_quality, best_error = None, np.inf
    for quality, reference in _libjpeg_luma_tables().items():
        error = float(np.mean(np.abs(table - np.asarray(reference)) / np.asarray(reference)))
        if error < best_error:
            best_quality, best_error = quality, error
    return best_quality if best_error < 0.15 else None


def _jpeg_subsampling(image: Any) -> int | None:
    try:
        from PIL import JpegImagePlugin

        value = JpegImagePlugin.get_sampling(image)
        return value if value >= 0 else None
    except Exception:
        return None


def _decode_with_pillow(path: Path, data: bytes, max_pixels: int, keep_alpha: bool = False) -> np.ndarray:
    """Samples as Pillow decodes them: L or RGB (RGBA / LA when ``keep_alpha`` and the image has alpha)."""
    pil = _pillow(max_pixels)
    kind = "JPEG" if data[:2] == b"\xff\xd8" else "image"
    try:
        with pil.open(io.BytesIO(data)) as image:
            image.load()
            has_alpha = keep_alpha and ("A" in image.mode or "transparency" in image.info)
            if image.mode == "1":
                image = image.convert("L")
            if has_alpha:
                image = image.convert("LA" if image.mode in ("L", "LA") else "RGBA")
            elif image.mode not in ("L", "RGB"):
                image = image.convert("RGB")
            return np.asarray(image)
    except OSError as error:
        problem = "truncated file" if "truncated" in str(error) else f"corrupt data ({error})"
        raise ImageReadError(path, f"{problem}: the {kind} data could not be decoded completely") from error


def _check_png_chunks(path: Path, data: bytes) -> None:
    """Refuse a PNG whose chunk lengths run past the end of the file, before OpenCV sees it.

    OpenCV 4.14 allocates whatever a chunk claims: a 440-byte file whose IDAT claimed 4 GB made imdecode take
    4 GiB of memory and 10 s before failing (found by bench/fuzz_loader.py).
    """
    offset = 8
    while offset + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        kind = data[offset + 4 : offset + 8].decode("latin-1")
        if length > 0x7FFFFFFF or offset + 12 + length > len(data):
            raise ImageReadError(
                path, f"corrupt or truncated PNG file: chunk {kind!r} claims {length} bytes past the end of the file"
            )
        if kind == "IEND":
            return
        offset += 12 + length


def _decode_with_opencv(path: Path, data: bytes, fmt: str) -> np.ndarray:
    cv2 = _cv2()
    if fmt == "png":
        _check_png_chunks(path, data)
    # imdecode rather than imread: it reads any path (non-ASCII names on Windows) the same way.
    samples = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if samples is None or samples.size == 0:
        raise ImageReadError(path, f"corrupt or truncated {fmt.upper()} data: the decoder could not read the pixels")
    return samples


def _assemble(path: Path, fmt: str, samples: np.ndarray, header: dict[str, Any]) -> Image:
    """OpenCV/Pillow samples + header -> Image. OpenCV gives BGR(A); Pillow (JPEG) gives RGB or L."""
    info = header["info"]
    mode = header["mode"]
    extra: dict[str, Any] = {}
    from_pillow = bool(header.get("pillow_decoded"))
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    palette = mode in ("P", "PA")
    if fmt == "png":
        png = metadata.png_header(header["head"])
        gray = png["color_type"] in (0, 4)
        palette = png["color_type"] == 3
        has_alpha = channels == 4 and (png["color_type"] in (4, 6) or "transparency" in info)
        if png["bit_depth"] < 8:
            extra["png_bit_depth"] = png["bit_depth"]
    else:
        gray = mode in ("1", "L", "LA", "I;16", "I;16B", "I;16L", "I") or channels == 1
        has_alpha = channels in (2, 4) and ("A" in mode or "transparency" in info)
    if samples.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(path, f"unsupported sample type {samples.dtype} in a {fmt.upper()} file")
    bit_depth = 16 if samples.dtype == np.uint16 else 8

    exif = metadata.normalise_exif(info.get("exif"))
    orientation = metadata.exif_orientation(exif)
    if orientation != 1:
        samples = metadata.apply_orientation(samples, orientation)
        exif = metadata.exif_with_orientation_reset(exif)
        extra["exif_orientation_applied"] = orientation

    pixels, alpha = _split(samples, gray=gray, has_alpha=has_alpha, bgr=not from_pillow)
    if fmt == "jpeg" and header.get("subsampling") is not None:
        extra["jpeg_subsampling"] = header["subsampling"]
    if fmt == "jpeg" and header.get("quality") is not None:
        extra["jpeg_quality"] = header["quality"]
    if header.get("frames", 1) > 1:
        extra["pages"] = header["frames"]  # an animated PNG / WebP; engine/imageio/pages.py reads every frame
    if "dpi" in info:
        try:
            extra["dpi"] = (float(info["dpi"][0]), float(info["dpi"][1]))
        except (TypeError, ValueError, IndexError):
            pass
    text = {k: v for k, v in info.items() if isinstance(k, str) and isinstance(v, str) and fmt == "png"}
    if text:
        extra["png_text"] = text
    xmp = info.get("xmp") or text.get(metadata.PNG_XMP_KEYWORD)
    if xmp:
        extra["xmp"] = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
    meta = ImageMeta(
        path=str(path),
        format=fmt,
        bit_depth=bit_depth,
        sample_type="uint",
        gray=gray,
        palette=palette,
        hdr=False,
        color_space="srgb",
        icc_profile=info.get("icc_profile") or None,
        exif=exif,
        extra=extra,
    )
    return make_image(pixels, alpha, meta)


def _split(samples: np.ndarray, *, gray: bool, has_alpha: bool, bgr: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Samples -> (float32 H x W x 3 colour, float32 H x W alpha or None), converting once, chunk by chunk."""
    if samples.ndim == 2:
        return to_float(samples, out_channels=3), None
    channels = samples.shape[2]
    if gray:
        colour = to_float(samples[:, :, 0], out_channels=3)
    elif channels == 2:  # gray + alpha from a decoder that keeps it as two channels
        colour = to_float(samples[:, :, 0], out_channels=3)
    else:
        colour = to_float(samples, [2, 1, 0] if bgr else [0, 1, 2])
    alpha = None
    if has_alpha and channels in (2, 4):
        alpha = to_float(samples[:, :, channels - 1])[:, :, 0]
    return colour, alpha


def tiff_pages(tif: Any) -> list[Any]:
    """The pages of an open TIFF that are images of their own: every page in the file's chain except
    reduced-resolution copies (thumbnails, previews: NewSubfileType bit 0)."""
    # By index up to len(): len() stops at an IFD chain that loops back on itself, iterating would not (a file
    # whose last page points to its first made `restore` spin forever; found with Pillow's test images).
    pages = (tif.pages[index] for index in range(len(tif.pages)))
    return [page for page in pages if not int(getattr(page, "subfiletype", 0) or 0) & 1]


def read_tiff_page(path: Path, max_pixels: int, index: int = 0) -> Image:
    """Page ``index`` (counted as :func:`tiff_pages` does) of a TIFF file; ``meta.extra["pages"]`` holds the count
    when there are several."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if index == 0:
                page = tif.pages.first
            else:
                pages = tiff_pages(tif)
                if not 0 <= index < len(pages):
                    raise ImageReadError(path, f"the file has no page {index + 1} (it has {len(pages)})")
                page = pages[index]
            shape = dict(zip(page.axes, page.shape, strict=False))
            width, height = int(shape.get("X", 0)), int(shape.get("Y", 0))
            check_dimensions(path, width, height, max_pixels)
            photometric = int(page.photometric)
            samples_per_pixel = int(page.samplesperpixel)
            extra_samples = tuple(int(v) for v in (page.extrasamples or ()))
            icc = page.iccprofile or None
            exif_tags = _tiff_exif(page)
            compression = int(page.compression)
            colormap = page.colormap if photometric == 3 else None
            bits_per_sample = int(page.bitspersample)
            planar = int(page.planarconfig) == 2
            page_axes = page.axes
            orientation_tag = page.tags.get("Orientation")
            orientation = int(orientation_tag.value) if orientation_tag is not None else 1
            try:
                # One page is read; the count is kept so that `info`, `restore` and the GUI can use the others.
                page_count = len(tiff_pages(tif))
            except Exception:  # a damaged later IFD does not spoil the first page
                page_count = 1
            try:
                samples = page.asarray()
            except (KeyError, ValueError, NotImplementedError):
                samples = None  # a codec tifffile lacks (LZW, JPEG...): libtiff through OpenCV reads it
    except ImageReadError:
        raise
    except Exception as error:
        raise ImageReadError(path, f"corrupt or truncated TIFF file ({error})") from error

    extra: dict[str, Any] = {"tiff_compression": compression}
    if page_count > 1:
        extra["pages"] = page_count
        extra["page_index"] = index
    if exif_tags:
        extra["tiff_exif"] = exif_tags
    gray = photometric in (0, 1)  # MINISWHITE, MINISBLACK
    palette = photometric == 3
    if samples is not None and palette and colormap is not None:
        samples = _apply_colormap(samples.reshape(height, width), colormap)
        photometric, samples_per_pixel = 2, 3 + (samples_per_pixel - 1)
        bits_per_sample = samples.dtype.itemsize * 8
    if samples is not None and photometric in (0, 1, 2):
        if "S" in page_axes and page_axes.index("S") < page_axes.index("Y") and not palette:
            samples = np.moveaxis(samples, page_axes.index("S"), -1)  # planar -> interleaved
        samples = samples.reshape(height, width, -1)
        samples = _full_range(samples, bits_per_sample)
        if photometric == 0 and samples.dtype.kind in "ui":
            samples = np.iinfo(samples.dtype).max - samples
        base = 1 if gray else 3
        has_alpha = samples_per_pixel > base and bool(extra_samples)
        kind = samples.dtype
        if kind == np.uint8 or kind == np.uint16:
            colour = to_float(samples[:, :, 0], out_channels=3) if gray else to_float(samples, [0, 1, 2])
            alpha = to_float(samples[:, :, base])[:, :, 0] if has_alpha else None
            meta_kind: tuple[int, str, bool] = (8 if kind == np.uint8 else 16, "uint", False)
        elif kind.kind == "f":
            floats = samples.astype(np.float32, copy=False)
            colour = np.repeat(floats[:, :, :1], 3, axis=2) if gray else floats[:, :, :3]
            alpha = floats[:, :, base] if has_alpha else None
            meta_kind = (32 if kind.itemsize >= 4 else 16, "float" if kind.itemsize >= 4 else "half", True)
        else:
            raise ImageReadError(path, f"unsupported TIFF sample type {kind}")
    else:
        if planar and bits_per_sample > 8 and samples_per_pixel > 1:
            # OpenCV's libtiff path returned different, wrong pixels on each read of such files (Pillow's
            # tiff_strip_planar_16bit_RGB.tiff); tifffile decodes them when the imagecodecs package is installed.
            raise ImageReadError(path, f"planar {bits_per_sample}-bit TIFF with a compression this installation "
                                       "cannot decode reliably (install the 'imagecodecs' package)")
        decoded = _decode_tiff_page_with_opencv(path, index)
        channels = 1 if decoded.ndim == 2 else decoded.shape[2]
        gray = gray or channels == 1
        has_alpha = channels == 4 and bool(extra_samples)
        if decoded.dtype not in (np.uint8, np.uint16):
            raise ImageReadError(path, f"unsupported TIFF sample type {decoded.dtype}")
        colour, alpha = _split(decoded, gray=gray, has_alpha=has_alpha, bgr=True)
        meta_kind = (16 if decoded.dtype == np.uint16 else 8, "uint", False)
    bit_depth, sample_type, hdr = meta_kind
    if orientation in range(2, 9):
        # The TIFF Orientation tag, as viewers apply it (a fax or scanner page stored sideways stands upright).
        colour = np.ascontiguousarray(metadata.apply_orientation(colour, orientation))
        alpha = None if alpha is None else np.ascontiguousarray(metadata.apply_orientation(alpha, orientation))
        extra["exif_orientation_applied"] = orientation
    if alpha is not None and 1 in extra_samples:
        # Associated (premultiplied) alpha: the engine's convention, and what the file is written back with, is
        # straight alpha, so divide it out (keeping it would darken every soft edge once more on saving).
        colour = np.divide(colour, alpha[:, :, None], out=np.zeros_like(colour), where=alpha[:, :, None] > 0)
        if not hdr:
            np.clip(colour, 0.0, 1.0, out=colour)
        extra["tiff_associated_alpha"] = True
    if hdr:
        extra.update(value_report(colour))
    meta = ImageMeta(
        path=str(path),
        format="tiff",
        bit_depth=bit_depth,
        sample_type=sample_type,
        gray=gray,
        palette=palette,
        hdr=hdr,
        color_space="linear" if hdr else "srgb",
        icc_profile=icc,
        exif=None,
        extra=extra,
    )
    return make_image(colour, alpha, meta)


def _apply_colormap(indices: np.ndarray, colormap: np.ndarray) -> np.ndarray:
    """Palette indices (H x W) -> RGB samples through the TIFF colour map (3 x 2**bits, 16-bit entries): 8-bit
    when every entry is an 8-bit value scaled by 257, as writers store them, else 16-bit."""
    table = np.asarray(colormap, dtype=np.uint16).T  # (entries, 3)
    index = np.clip(indices.astype(np.intp), 0, len(table) - 1)
    rgb = table[index]
    if table.max() < 256:  # some writers store 8-bit entries without scaling them
        return rgb.astype(np.uint8)
    return (rgb // 257).astype(np.uint8) if np.all(table % 257 == 0) else rgb


def _full_range(samples: np.ndarray, bits: int) -> np.ndarray:
    """Samples of an odd bit depth (1-bit bilevel, 4-bit, 12-bit...) spread over the 8 or 16 bits they are
    stored in, so that white is white (a 12-bit scan read as raw 0..4095 in 16 bits would look nearly black)."""
    if samples.dtype == bool:
        return samples.astype(np.uint8) * np.uint8(255)
    if samples.dtype.kind != "u" or bits in (8, 16, 32, 64) or bits <= 0:
        return samples
    target = np.uint8 if bits < 8 else np.uint16
    top = (1 << bits) - 1
    scaled = np.round(samples.astype(np.float64) * (np.iinfo(target).max / top))
    return scaled.astype(target)


def _decode_tiff_page_with_opencv(path: Path, index: int) -> np.ndarray:
    if index == 0:
        return _decode_with_opencv(path, _read_bytes(path), "tiff")
    cv2 = _cv2()
    ok, pages = cv2.imdecodemulti(np.frombuffer(_read_bytes(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if not ok or index >= len(pages) or pages[index] is None or pages[index].size == 0:
        raise ImageReadError(path, f"corrupt or truncated TIFF data: page {index + 1} could not be decoded")
    return pages[index]


def _tiff_exif(page: Any) -> dict[str, Any]:
    """The EXIF sub-IFD as {tag name: value} (kept for ``describe``; TIFF EXIF is not written back)."""
    try:
        exif = page.tags.get("ExifTag")
        return dict(exif.value) if exif is not None and isinstance(exif.value, dict) else {}
    except Exception:
        return {}


# --- writing ----------------------------------------------------------------------------------------------------


def default_bit_depth(image: Image, fmt: str) -> int:
    """The bit depth a format writes by default: the image's own where the format has it."""
    meta = image.meta
    if fmt in ("png", "tiff"):
        if meta.sample_type != "uint":
            return 32 if fmt == "tiff" else 16  # float data: float TIFF, or 16-bit PNG keeps the most precision
        return 16 if meta.bit_depth == 16 else 8
    return 8


def check_raster_depth(fmt: str, bit_depth: int, path: Path) -> None:
    allowed = {"png": (8, 16), "tiff": (8, 16, 32), "jpeg": (8,), "bmp": (8,), "webp": (8,)}[fmt]
    if bit_depth not in allowed:
        raise ImageWriteError(path, f"{fmt.upper()} cannot store {bit_depth}-bit samples (choose {allowed})")


def encode_raster(image: Image, fmt: str, bit_depth: int, jpeg_quality: int | None, stream: BinaryIO) -> None:
    """Encode an image as PNG/JPEG/TIFF/BMP/WebP into ``stream``, keeping what the format can hold.

    Encoders write straight to the stream (the temporary file) so that no whole encoded copy sits in memory.
    """
    meta = image.meta
    gray = meta.gray and channels_equal(image.pixels)
    colour = image.pixels[:, :, 0] if gray else image.pixels
    if fmt == "tiff" and bit_depth == 32:
        return _encode_tiff_float(image, colour, gray, stream)
    # Linear HDR data is sRGB-encoded and clipped to [0, 1] for integer formats; the GUI's export applies the
    # display transform (exposure + tone map) before calling this when the user wants the viewer's look.
    encode_srgb = meta.hdr
    if fmt == "png" and image.width * image.height > PNG_STRIP_PIXELS:
        return _encode_png_strips(image, gray, bit_depth, encode_srgb, stream)
    samples = to_uint(colour, bit_depth, encode_srgb=encode_srgb)
    alpha = to_uint(image.alpha, bit_depth) if image.alpha is not None and fmt != "jpeg" else None
    if fmt == "png":
        return _encode_png(image, samples, alpha, gray, stream)
    if fmt == "tiff":
        return _encode_tiff(image, samples, alpha, gray, stream)
    if fmt == "bmp":
        return _encode_bmp(samples, alpha, gray, stream)
    return _encode_pillow(image, fmt, samples, alpha, gray, jpeg_quality, stream)


def _interleave(samples: np.ndarray, alpha: np.ndarray | None, *, bgr: bool) -> np.ndarray:
    if samples.ndim == 2:
        return samples if alpha is None else np.dstack((samples, alpha))
    colour = samples[:, :, ::-1] if bgr else samples
    return np.ascontiguousarray(colour) if alpha is None else np.dstack((colour, alpha))


def _encode_png(image: Image, samples: np.ndarray, alpha: np.ndarray | None, gray: bool, stream: BinaryIO) -> None:
    meta = image.meta
    if gray and alpha is not None:
        data = metadata.encode_png(np.dstack((samples, alpha)), color_type=4)
    else:
        cv2 = _cv2()
        ok, encoded = cv2.imencode(".png", _interleave(samples, alpha, bgr=True), [cv2.IMWRITE_PNG_COMPRESSION, 4])
        if not ok:
            raise ValueError("OpenCV's PNG encoder failed")
        data = memoryview(encoded).cast("B")
    metadata.write_png_with_chunks(stream, data, _png_metadata_chunks(meta))


def _png_metadata_chunks(meta: ImageMeta) -> list[bytes]:
    text = dict(meta.extra.get("png_text", {})) if meta.format == "png" else {}
    if meta.extra.get("xmp") and metadata.PNG_XMP_KEYWORD not in text:
        text[metadata.PNG_XMP_KEYWORD] = bytes(meta.extra["xmp"]).decode("utf-8", "replace")
    return list(metadata.metadata_chunks(meta.icc_profile, meta.exif, meta.extra.get("dpi"), text))


#: PNGs above this many pixels are encoded strip by strip (:func:`_encode_png_strips`); smaller ones by OpenCV,
#: which is faster but holds the whole image as integers, an interleaved copy and the whole encoded file (for a
#: 100 MP photo, about 1.1 GB on top of the float32 image: the restore's peak).
PNG_STRIP_PIXELS = 16_000_000
_PNG_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # samples per pixel -> gray, gray + alpha, RGB, RGBA


def _encode_png_strips(image: Image, gray: bool, bit_depth: int, encode_srgb: bool, stream: BinaryIO) -> None:
    """Write a PNG converting and compressing a strip of rows at a time: memory beyond the image is one strip.

    Each row gets the filter (None, Sub, Up, Average, Paeth) whose output has the smallest sum of absolute values,
    libpng's heuristic; zlib level 4, as the OpenCV path uses."""
    import zlib

    colour = image.pixels[:, :, :1] if gray else image.pixels
    alpha = image.alpha
    height, width = colour.shape[:2]
    samples_per_pixel = colour.shape[2] + (alpha is not None)
    pixel_bytes = samples_per_pixel * (2 if bit_depth == 16 else 1)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, _PNG_COLOR_TYPES[samples_per_pixel], 0, 0, 0)
    stream.write(metadata.PNG_SIGNATURE + metadata.png_chunk(b"IHDR", header))
    for chunk in _png_metadata_chunks(image.meta):
        stream.write(chunk)
    compressor = zlib.compressobj(4)
    previous = np.zeros(width * pixel_bytes, np.uint8)
    for top in range(0, height, rows_per_chunk(width)):
        stop = min(height, top + rows_per_chunk(width))
        strip = to_uint(colour[top:stop], bit_depth, encode_srgb=encode_srgb)
        if alpha is not None:
            strip = np.concatenate((strip, to_uint(alpha[top:stop], bit_depth)[:, :, None]), axis=2)
        raw = np.ascontiguousarray(strip.astype(">u2" if bit_depth == 16 else np.uint8, copy=False))
        raw = raw.reshape(stop - top, -1).view(np.uint8)
        data = compressor.compress(_png_filter(raw, previous, pixel_bytes).tobytes())
        previous = raw[-1].copy()
        if data:
            stream.write(metadata.png_chunk(b"IDAT", data))
    stream.write(metadata.png_chunk(b"IDAT", compressor.flush()))
    stream.write(metadata.png_chunk(b"IEND", b""))


def _png_filter(raw: np.ndarray, previous: np.ndarray, pixel_bytes: int) -> np.ndarray:
    """Rows of bytes (``previous``: the row above the first) -> rows prefixed with their filter type, each row with
    the filter whose output has the smallest sum of absolute values (as signed bytes)."""
    rows, length = raw.shape
    current = raw.astype(np.int16)
    up = np.empty_like(current)
    up[0] = previous
    up[1:] = current[:-1]
    left = np.zeros_like(current)
    left[:, pixel_bytes:] = current[:, :-pixel_bytes]
    up_left = np.zeros_like(current)
    up_left[:, pixel_bytes:] = up[:, :-pixel_bytes]
    estimate = left + up - up_left
    distance_left, distance_up, distance_corner = (np.abs(estimate - left), np.abs(estimate - up),
                                                   np.abs(estimate - up_left))
    paeth = np.where((distance_left <= distance_up) & (distance_left <= distance_corner), left,
                     np.where(distance_up <= distance_corner, up, up_left))
    candidates = np.stack([current, current - left, current - up, current - ((left + up) >> 1), current - paeth])
    candidates &= 0xFF
    cost = np.minimum(candidates, 256 - candidates).sum(axis=2)  # |value| as a signed byte, per row
    best = np.argmin(cost, axis=0)
    out = np.empty((rows, length + 1), np.uint8)
    out[:, 0] = best
    out[:, 1:] = candidates[best, np.arange(rows)]
    return out


def _encode_bmp(samples: np.ndarray, alpha: np.ndarray | None, gray: bool, stream: BinaryIO) -> None:
    cv2 = _cv2()
    if gray and alpha is not None:  # BMP has no gray + alpha: write BGRA
        samples = np.dstack((samples, samples, samples))
    ok, encoded = cv2.imencode(".bmp", _interleave(samples, alpha, bgr=True))
    if not ok:
        raise ValueError("OpenCV's BMP encoder failed")
    stream.write(memoryview(encoded).cast("B"))


def _encode_pillow(
    image: Image,
    fmt: str,
    samples: np.ndarray,
    alpha: np.ndarray | None,
    gray: bool,
    quality: int | None,
    stream: BinaryIO,
) -> None:
    from PIL import Image as PILImage

    meta = image.meta
    if fmt == "webp" and gray:  # WebP stores RGB only
        samples = np.dstack((samples, samples, samples))
        gray = False
    array = samples if alpha is None else np.dstack((samples if samples.ndim == 3 else samples[:, :, None], alpha))
    mode = ("L" if gray else "RGB") + ("A" if alpha is not None else "")
    pil_image = PILImage.fromarray(np.ascontiguousarray(array), mode=mode)
    options: dict[str, Any] = {}
    if meta.icc_profile:
        options["icc_profile"] = meta.icc_profile
    if meta.exif:
        options["exif"] = meta.exif
    if meta.extra.get("dpi"):
        options["dpi"] = tuple(meta.extra["dpi"])
    if meta.extra.get("xmp"):
        options["xmp"] = bytes(meta.extra["xmp"])
    if fmt == "jpeg":
        options["quality"] = int(quality or meta.extra.get("jpeg_quality") or 95)
        if meta.extra.get("jpeg_subsampling") is not None:
            options["subsampling"] = int(meta.extra["jpeg_subsampling"])
        elif options["quality"] >= 90:
            options["subsampling"] = 0  # 4:4:4: at high quality, full-resolution colour is worth its bytes
    else:
        if quality is None:
            options["lossless"] = True
            options["exact"] = True  # keep the colour under fully transparent pixels
        else:
            options["quality"] = int(quality)
    pil_image.save(stream, format="JPEG" if fmt == "jpeg" else "WEBP", **options)


def _encode_tiff(image: Image, samples: np.ndarray, alpha: np.ndarray | None, gray: bool, stream: BinaryIO) -> None:
    array = samples if alpha is None else np.dstack((samples if samples.ndim == 3 else samples[:, :, None], alpha))
    _tiff_write_with_exif(image, array, gray, alpha is not None, stream)


def _tiff_write_with_exif(image: Image, array: np.ndarray, gray: bool, has_alpha: bool, stream: BinaryIO) -> None:
    """One TIFF page, with the image's EXIF (camera, lens, exposure, dates...) when it has some: tifffile cannot
    write an EXIF IFD, so libexiv2 (exif_tags.py) adds it to the encoded file."""
    if not image.meta.exif:
        _tiff_write(image, array, gray, has_alpha, stream)
        return
    from .exif_tags import tiff_with_exif

    buffer = io.BytesIO()
    _tiff_write(image, array, gray, has_alpha, buffer)
    stream.write(tiff_with_exif(buffer.getvalue(), image.meta.exif))


def _encode_tiff_float(image: Image, colour: np.ndarray, gray: bool, stream: BinaryIO) -> None:
    # Float TIFF holds linear values: display-referred images are linearised, like for EXR.
    values = colour if image.meta.hdr else linearise(colour)
    array = values if image.alpha is None else np.dstack((values if values.ndim == 3 else values[:, :, None],
                                                          image.alpha))
    _tiff_write_with_exif(image, np.asarray(array, dtype=np.float32), gray, image.alpha is not None, stream)


def _tiff_write(image: Image, array: np.ndarray, gray: bool, has_alpha: bool, stream: Any) -> None:
    """Write one TIFF page into ``stream``: a file, or an open ``tifffile.TiffWriter`` (each call adds a page)."""
    import tifffile

    write = stream.write if isinstance(stream, tifffile.TiffWriter) else functools.partial(tifffile.imwrite, stream)
    write(
        array,
        photometric="minisblack" if gray else "rgb",
        extrasamples=["unassalpha"] if has_alpha else None,
        planarconfig="contig",
        compression="zlib",
        iccprofile=image.meta.icc_profile,
        resolution=tuple(image.meta.extra["dpi"]) if image.meta.extra.get("dpi") else None,
        resolutionunit="inch" if image.meta.extra.get("dpi") else None,
    )
