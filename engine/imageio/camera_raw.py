"""Camera raw files (RAW_EXTENSIONS in formats.py) through LibRaw (the ``rawpy`` package): what is in them and how they
are developed.

Developing (for viewing, ``info``, and as the input of RGB models) uses LibRaw with these defaults, chosen to show
the photograph as shot, without surprises:

- the camera's white balance (as shot); daylight when the file has none;
- AHD demosaicing (LibRaw's default);
- sRGB primaries and the sRGB transfer curve (not dcraw's BT.709 curve), 16 bits per sample;
- no auto-brightening: the exposure is the one the photographer chose (a raw developed this way is often darker
  than the camera's JPEG, which adds a tone curve: raise it in an editor);
- highlights clipped at the sensor's white level (no reconstruction), and the camera's orientation applied.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageReadError
from .formats import RAW_EXTENSIONS


def is_raw_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in RAW_EXTENSIONS


@contextlib.contextmanager
def open_raw(path: str | Path) -> Iterator[Any]:
    """A ``rawpy.RawPy`` for ``path``; LibRaw's refusals become :class:`ImageReadError`."""
    import rawpy

    try:
        raw = rawpy.imread(str(path))
    except (rawpy.LibRawFileUnsupportedError, rawpy.LibRawDataError, rawpy.LibRawIOError) as error:
        raise ImageReadError(path, f"not a camera raw file LibRaw can read ({type(error).__name__})") from error
    except rawpy.LibRawError as error:
        raise ImageReadError(path, f"corrupt camera raw file ({type(error).__name__}: {error})") from error
    try:
        yield raw
    finally:
        raw.close()


def cfa_pattern(raw: Any) -> str | None:
    """The 2x2 Bayer pattern as LibRaw reports it ("RGGB", "BGGR", "GRBG", "GBRG"); None for other sensors
    (Fujifilm X-Trans, Foveon, linear DNGs)."""
    pattern = getattr(raw, "raw_pattern", None)
    if pattern is None or np.asarray(pattern).shape != (2, 2):
        return None
    desc = raw.color_desc.decode("ascii", "replace")
    letters = "".join(desc[int(i)] if int(i) < len(desc) else "?" for i in np.asarray(pattern).ravel())
    return letters if letters in ("RGGB", "BGGR", "GRBG", "GBRG") else None


@dataclass(frozen=True)
class RawInfo:
    """What a photographer (and the raw denoiser) needs to know about a raw file."""

    make: str
    model: str
    lens: str
    iso: float
    exposure_time: float
    aperture: float
    focal_length: float
    timestamp: str | None
    #: "RGGB"... for a 2x2 Bayer sensor; None for X-Trans, Foveon and linear (demosaiced) raws.
    cfa: str | None
    #: Per-channel black levels and the white (saturation) level, in raw units.
    black_levels: tuple[float, ...]
    white_level: int
    #: The sensor's visible area (photosites), and LibRaw's flip (0 none, 3 180 degrees, 5 / 6 quarter turns).
    width: int
    height: int
    flip: int
    #: Exiv2's tags of the file (empty where exiv2 cannot read it).
    tags: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def camera(self) -> str:
        make, model = self.make.strip(), self.model.strip()
        if make and model.lower().startswith(make.split()[0].lower()):
            return model
        return f"{make} {model}".strip() or "unknown camera"

    @property
    def black_level(self) -> float:
        return float(np.mean(self.black_levels)) if self.black_levels else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "camera": self.camera, "lens": self.lens or None, "iso": round(self.iso) or None,
            "exposure_time": float(f"{self.exposure_time:.4g}") or None, "aperture": round(self.aperture, 1) or None,
            "focal_length": round(self.focal_length, 1) or None, "timestamp": self.timestamp, "cfa": self.cfa,
            "black_levels": list(self.black_levels), "white_level": self.white_level,
            "sensor_size": [self.width, self.height], "flip": self.flip,
        }


def raw_info(raw: Any, path: str | Path) -> RawInfo:
    """The :class:`RawInfo` of an open raw file (``path`` for the EXIF tags exiv2 reads)."""
    from .exif_tags import read_file_tags

    tags = read_file_tags(path)
    other, lens, sizes = raw.other, raw.lens, raw.sizes
    stamp = other.timestamp
    timestamp = stamp.isoformat(sep=" ") if isinstance(stamp, _dt.datetime) and stamp.year > 1970 else None
    lens_name = (lens.model or "").strip() or tags.get("Exif.Photo.LensModel", "")
    make = tags.get("Exif.Image.Make", "")
    model = tags.get("Exif.Image.Model", "") or tags.get("Exif.Image.UniqueCameraModel", "")
    return RawInfo(
        make=make, model=model, lens=lens_name, iso=float(other.iso_speed), exposure_time=float(other.shutter_speed),
        aperture=float(other.aperture), focal_length=float(other.focal_length), timestamp=timestamp,
        cfa=cfa_pattern(raw), black_levels=tuple(float(v) for v in raw.black_level_per_channel),
        white_level=int(raw.white_level), width=int(sizes.width), height=int(sizes.height), flip=int(sizes.flip),
        tags=tags,
    )


def develop(raw: Any) -> np.ndarray:
    """Develop an open raw file with this module's defaults (module docstring): H x W x 3 uint16 sRGB."""
    import rawpy

    wb = raw.camera_whitebalance
    has_camera_wb = wb is not None and any(float(v) > 0 for v in list(wb)[:3])
    return raw.postprocess(
        use_camera_wb=has_camera_wb,
        use_auto_wb=False,
        no_auto_bright=True,
        output_bps=16,
        output_color=rawpy.ColorSpace.sRGB,
        gamma=(2.4, 12.92),  # the sRGB curve (dcraw's default is BT.709's)
        demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD,
        highlight_mode=rawpy.HighlightMode.Clip,
    )


def exif_for_developed(info: RawInfo) -> bytes | None:
    """The ``Exif\\0\\0`` payload for an image developed from the raw: its photographic tags (camera, lens,
    exposure, dates, GPS), completed from LibRaw's own reading where exiv2 found none (CR3, RAF...), with the
    orientation reset to 1 (developing applied it)."""
    from .exif_tags import photographic_tags, tags_to_exif

    tags = photographic_tags(info.tags)
    tags["Exif.Image.Orientation"] = "1"
    if info.make and "Exif.Image.Make" not in tags:
        tags["Exif.Image.Make"] = info.make
    if info.model and "Exif.Image.Model" not in tags:
        tags["Exif.Image.Model"] = info.model
    if info.iso and "Exif.Photo.ISOSpeedRatings" not in tags:
        tags["Exif.Photo.ISOSpeedRatings"] = str(int(round(info.iso)))
    if info.exposure_time and "Exif.Photo.ExposureTime" not in tags:
        tags["Exif.Photo.ExposureTime"] = (f"1/{round(1 / info.exposure_time)}" if info.exposure_time < 1
                                           else f"{round(info.exposure_time * 10)}/10")
    if info.aperture and "Exif.Photo.FNumber" not in tags:
        tags["Exif.Photo.FNumber"] = f"{round(info.aperture * 10)}/10"
    if info.focal_length and "Exif.Photo.FocalLength" not in tags:
        tags["Exif.Photo.FocalLength"] = f"{round(info.focal_length * 10)}/10"
    if info.lens and "Exif.Photo.LensModel" not in tags:
        tags["Exif.Photo.LensModel"] = info.lens
    if info.timestamp and "Exif.Photo.DateTimeOriginal" not in tags:
        tags["Exif.Photo.DateTimeOriginal"] = info.timestamp.replace("-", ":")[:19]
    try:
        return tags_to_exif(tags)
    except Exception:  # a tag exiv2 refuses must not make the photograph unreadable
        return None


def read_raw(path: str | Path, max_pixels: int):
    """A raw file as an engine :class:`~engine.image.Image`: developed with this module's defaults, 16-bit sRGB,
    ``meta.format`` "raw", ``meta.exif`` the photographic EXIF, ``meta.extra["raw"]`` the :class:`RawInfo`."""
    from ..image import ImageMeta, make_image
    from .formats import check_dimensions

    with open_raw(path) as raw:
        sizes = raw.sizes
        check_dimensions(path, int(sizes.width), int(sizes.height), max_pixels)
        info = raw_info(raw, path)
        try:
            rgb = develop(raw)
        except Exception as error:  # LibRaw failing on the pixels: a damaged file
            raise ImageReadError(path, f"corrupt camera raw file ({type(error).__name__}: {error})") from error
    pixels = rgb.astype(np.float32) / np.float32(65535.0)
    meta = ImageMeta(path=str(path), format="raw", bit_depth=16, sample_type="uint", gray=False, hdr=False,
                     color_space="srgb", exif=exif_for_developed(info),
                     extra={"raw": info.as_dict(), "raw_developed": "LibRaw: camera white balance, AHD, sRGB, "
                            "no auto-brightening"})
    return make_image(pixels, None, meta)
