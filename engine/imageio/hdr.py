"""Radiance .hdr (RGBE) files, and the checks every linear HDR image gets: NaN, infinity, negative values.

Policy for bad HDR values (renders produce them: a NaN from a degenerate BSDF sample, an Inf firefly):
- reading keeps them, so that ``info`` and the viewer show the file as it is, and counts them in
  ``meta.extra`` ("nonfinite_count", "nan_count", "inf_count", "negative_count");
- restoration calls :func:`sanitize_hdr` first: NaN and +/-Inf become 0 and negative colour values become 0.
  Zero rather than a clamp to the largest finite value because one Inf pixel would otherwise set the
  normalisation scale of every tile. Auxiliary layers are only made finite: normals are legitimately negative.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageReadError
from ..image import Image, ImageMeta, make_image
from .formats import check_dimensions

_CHUNK_PIXELS = 1 << 18
_RESOLUTION = re.compile(rb"^([-+])Y\s+(\d+)\s+([-+])X\s+(\d+)\s*$")


def value_report(pixels: np.ndarray, *, negatives: bool = True) -> dict[str, int]:
    """Counts of NaN, infinite and (optionally) negative samples, computed in row chunks."""
    nan = inf = negative = 0
    rows = max(1, _CHUNK_PIXELS // max(1, pixels.shape[1] if pixels.ndim > 1 else 1))
    for top in range(0, pixels.shape[0], rows):
        part = pixels[top : top + rows]
        nan += int(np.count_nonzero(np.isnan(part)))
        inf += int(np.count_nonzero(np.isinf(part)))
        if negatives:
            negative += int(np.count_nonzero(part < 0))
    report = {"nan_count": nan, "inf_count": inf, "nonfinite_count": nan + inf}
    if negatives:
        report["negative_count"] = negative
    return report


def sanitize_hdr(pixels: np.ndarray, *, clamp_negative: bool = True) -> tuple[np.ndarray, dict[str, int]]:
    """Make linear HDR pixels safe to process: NaN/Inf -> 0, negatives -> 0 (unless ``clamp_negative=False``).

    Returns a new float32 array (the input is never modified, and may be read-only) and a report with the counts
    of each kind of value replaced; when nothing needed fixing the report's counts are all 0.
    """
    report = value_report(pixels, negatives=clamp_negative)
    out = np.array(pixels, dtype=np.float32, copy=True)
    if report["nonfinite_count"] or report.get("negative_count"):
        rows = max(1, _CHUNK_PIXELS // max(1, out.shape[1] if out.ndim > 1 else 1))
        for top in range(0, out.shape[0], rows):
            part = out[top : top + rows]
            np.nan_to_num(part, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            if clamp_negative:
                np.maximum(part, 0.0, out=part)
    return out, report


def sanitize_image(image: Image) -> tuple[Image, dict[str, Any]]:
    """:func:`sanitize_hdr` on the colour, and NaN/Inf -> 0 on the alpha and every layer (signs kept)."""
    pixels, report = sanitize_hdr(image.pixels)
    alpha = image.alpha
    if alpha is not None and not np.isfinite(alpha).all():
        alpha = np.nan_to_num(alpha, nan=0.0, posinf=1.0, neginf=0.0)
        report["alpha_fixed"] = True
    layers = {}
    for name, layer in image.layers.items():
        if np.isfinite(layer).all():
            layers[name] = layer
        else:
            fixed, layer_report = sanitize_hdr(layer, clamp_negative=False)
            layers[name] = fixed
            report[f"layer_{name}_nonfinite_count"] = layer_report["nonfinite_count"]
    return make_image(pixels, alpha, image.meta, layers), report


def radiance_size(path: Path) -> tuple[int, int]:
    """(width, height) from a Radiance header, read without decoding the pixels."""
    width, height, _flip_rows, _flip_columns, _line = _radiance_layout(path)
    return width, height


def _radiance_layout(path: Path) -> tuple[int, int, bool, bool, bytes]:
    """Width, height, whether rows / columns are stored flipped, and the resolution line as found in the file.

    The standard layout is ``-Y H +X W`` (top row first); ``+Y`` stores the bottom row first (a valid bottom-up
    file) and ``-X`` mirrors each row. Column-major layouts (``+X W -Y H``) are refused as unsupported."""
    with open(path, "rb") as stream:
        head = stream.read(65536)
    lines = head.split(b"\n")
    if not lines or not lines[0].startswith(b"#?"):
        raise ImageReadError(path, "not a Radiance HDR file (no #? signature)")
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == b"":  # the blank line ends the header; the next line is the resolution
            if index + 1 >= len(lines):
                break
            resolution = lines[index + 1]
            match = _RESOLUTION.match(resolution.strip())
            if not match:
                raise ImageReadError(path, "corrupt Radiance HDR header (unsupported or missing resolution line)")
            return int(match.group(4)), int(match.group(2)), match.group(1) == b"+", match.group(3) == b"-", \
                resolution
    raise ImageReadError(path, "truncated Radiance HDR header")


def read_hdr(path: Path, max_pixels: int) -> Image:
    import cv2

    width, height, flip_rows, flip_columns, resolution = _radiance_layout(path)
    check_dimensions(path, width, height, max_pixels)
    data = np.fromfile(path, dtype=np.uint8)
    if flip_rows or flip_columns:
        # OpenCV reads only the standard "-Y H +X W" layout: decode the scanlines as stored, then put them in place.
        raw = data.tobytes()
        at = raw.index(b"\n" + resolution + b"\n") + 1
        standard = f"-Y {height} +X {width}".encode("ascii")
        data = np.frombuffer(raw[:at] + standard + raw[at + len(resolution):], dtype=np.uint8)
    samples = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if samples is None or samples.ndim != 3 or samples.shape[:2] != (height, width):
        raise ImageReadError(path, "corrupt or truncated Radiance HDR data: the decoder could not read the pixels")
    if flip_rows:
        samples = samples[::-1]
    if flip_columns:
        samples = samples[:, ::-1]
    pixels = np.ascontiguousarray(samples[:, :, 2::-1], dtype=np.float32)
    extra: dict[str, Any] = dict(value_report(pixels))
    meta = ImageMeta(
        path=str(path), format="hdr", bit_depth=32, sample_type="float", hdr=True, color_space="linear", extra=extra
    )
    return make_image(pixels, None, meta)


def encode_hdr(pixels: np.ndarray) -> bytes:
    """Linear float32 RGB -> Radiance RGBE bytes (run-length encoded). RGBE cannot hold negatives: they become 0."""
    import cv2

    bgr = np.ascontiguousarray(np.nan_to_num(pixels[:, :, ::-1], nan=0.0, posinf=0.0, neginf=0.0), dtype=np.float32)
    np.maximum(bgr, 0.0, out=bgr)
    ok, encoded = cv2.imencode(".hdr", bgr)
    if not ok:
        raise ValueError("OpenCV's Radiance encoder failed")
    return encoded.tobytes()
