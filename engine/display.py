"""The HDR display transform, as pure numpy functions shared by the GUI viewer and by export.

Order for scene-referred (linear HDR) pixels: exposure in stops -> tone map to [0, 1] -> sRGB encoding -> 8 bit.
Display-referred pixels (PNG, JPEG, ...) are already sRGB-encoded: at 0 stops they are shown as they are; any
other exposure is applied in linear light (decode, scale, clip, encode) so that +1 stop means twice the light.

View transforms: ``clamp``, ``reinhard`` and ``aces`` (a fit of the ACES 1.x curve, numpy) are computed here;
the OpenColorIO views of :data:`OCIO_VIEWS` (ACES 2.0 and ACES 1.3 as the Academy defines them) come from OCIO's
built-in configs, pinned to a config version so a picture looks the same on every machine. Blender's AgX and
Filmic are not in OCIO's built-in configs (they live in Blender's own config, which is not shipped here), so they
are not offered. An OCIO view takes exposed linear Rec.709 values and gives display-encoded sRGB values.

Every function accepts any float array whose last axis is the colour (H x W x 3, or N x 3) and never modifies
its input. Large images are processed in row chunks by :func:`to_display_uint8` so that the viewer needs no
float temporaries the size of the whole image.
"""

from __future__ import annotations

import functools

import numpy as np

#: OpenColorIO views: key -> (built-in config, display, view, label). The source is the configs' "Linear Rec.709
#: (sRGB)": the linear sRGB primaries renders and the app use.
OCIO_VIEWS: dict[str, tuple[str, str, str, str]] = {
    "aces2": ("ocio://studio-config-v5.0.0_aces-v2.1_ocio-v2.6", "sRGB - Display",
              "ACES 2.0 - SDR 100 nits (Rec.709)", "ACES 2.0 (OCIO)"),
    "aces13": ("ocio://studio-config-v2.2.0_aces-v1.3_ocio-v2.4", "sRGB - Display", "ACES 1.0 - SDR Video",
               "ACES 1.3 (OCIO)"),
}
_OCIO_SOURCE = "Linear Rec.709 (sRGB)"


def ocio_available() -> bool:
    """Whether OpenColorIO is installed (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("PyOpenColorIO") is not None


#: Tone maps offered to users, in menu order (the OpenColorIO views when OpenColorIO is installed).
TONEMAPS: tuple[str, ...] = ("clamp", "reinhard", "aces") + (tuple(OCIO_VIEWS) if ocio_available() else ())
_LABELS = {"clamp": "Clamp", "reinhard": "Reinhard", "aces": "ACES (fit)"}


def tonemap_label(name: str) -> str:
    """What menus call the view transform ``name``."""
    return OCIO_VIEWS[name][3] if name in OCIO_VIEWS else _LABELS.get(name, name.capitalize())


@functools.cache
def _ocio_processor(name: str):
    import PyOpenColorIO as ocio

    config_uri, display, view, _ = OCIO_VIEWS[name]
    config = ocio.Config.CreateFromFile(config_uri)
    transform = ocio.DisplayViewTransform(src=_OCIO_SOURCE, display=display, view=view)
    return config.getProcessor(transform).getDefaultCPUProcessor()


def ocio_view(linear: np.ndarray, name: str) -> np.ndarray:
    """Linear Rec.709 scene values -> display-encoded sRGB values in [0, 1] through the OpenColorIO view ``name``
    (a new float32 array; NaN and negative values count as 0)."""
    x = np.nan_to_num(_as_float32(linear), nan=0.0, posinf=np.float32(65504.0), neginf=0.0)
    x = np.ascontiguousarray(np.maximum(x, np.float32(0.0)), dtype=np.float32)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    _ocio_processor(name).applyRGB(x)
    return np.clip(x, np.float32(0.0), np.float32(1.0))

# Stephen Hill's fit of the ACES reference rendering + sRGB output transforms (BakingLab, MIT licence):
# linear sRGB -> ACES-ish working space, the RRT+ODT curve, back to linear sRGB.
_ACES_INPUT = np.array(
    [[0.59719, 0.35458, 0.04823], [0.07600, 0.90834, 0.01566], [0.02840, 0.13383, 0.83777]], dtype=np.float32
)
_ACES_OUTPUT = np.array(
    [[1.60475, -0.53108, -0.07367], [-0.10208, 1.10813, -0.00605], [-0.00327, -0.07276, 1.07602]], dtype=np.float32
)
# 256 K pixels per chunk keeps each float temporary near 3 MB.
_CHUNK_PIXELS = 1 << 18


def _as_float32(pixels: np.ndarray) -> np.ndarray:
    return np.asarray(pixels, dtype=np.float32)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB-encoded values (IEC 61966-2-1). Values outside [0, 1] are extended, not clipped."""
    linear = _as_float32(linear)
    magnitude = np.abs(linear)
    curve = np.float32(1.055) * np.power(magnitude, np.float32(1 / 2.4)) - np.float32(0.055)
    encoded = np.where(magnitude <= np.float32(0.0031308), magnitude * np.float32(12.92), curve)
    return np.copysign(encoded, linear).astype(np.float32, copy=False)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """sRGB-encoded values -> linear light (inverse of :func:`srgb_encode`)."""
    encoded = _as_float32(encoded)
    magnitude = np.abs(encoded)
    curve = np.power((magnitude + np.float32(0.055)) / np.float32(1.055), np.float32(2.4))
    linear = np.where(magnitude <= np.float32(0.04045), magnitude / np.float32(12.92), curve)
    return np.copysign(linear, encoded).astype(np.float32, copy=False)


def apply_exposure(pixels: np.ndarray, stops: float) -> np.ndarray:
    """Scale linear values by ``2 ** stops`` (a new array; identity copy at 0 stops)."""
    return _as_float32(pixels) * np.float32(2.0 ** float(stops))


def tonemap(pixels: np.ndarray, method: str) -> np.ndarray:
    """Map linear HDR values to linear display values in [0, 1].

    - ``clamp``: clip to [0, 1] (what an 8-bit export without tone mapping does);
    - ``reinhard``: ``x / (1 + x)`` per channel (never clips; compresses highlights strongly);
    - ``aces``: Stephen Hill's fit of the ACES filmic curve (RRT + sRGB ODT), with its gamut matrices;
      it rolls highlights off softly, desaturates them like film, and puts scene mid-gray (0.18) near 0.11.

    - an OpenColorIO view of :data:`OCIO_VIEWS` (its display encoding undone).

    NaN and negative inputs map to 0.
    """
    if method not in TONEMAPS:
        raise ValueError(f"unknown tone map {method!r}; choose one of {', '.join(TONEMAPS)}")
    if method in OCIO_VIEWS:
        return srgb_decode(ocio_view(pixels, method))
    x = np.nan_to_num(_as_float32(pixels), nan=0.0, posinf=np.float32(3.0e38), neginf=0.0)
    x = np.maximum(x, np.float32(0.0))
    if method == "clamp":
        return np.minimum(x, np.float32(1.0))
    if method == "reinhard":
        return x / (np.float32(1.0) + x)
    v = x @ _ACES_INPUT.T
    # The fit is a ratio of quadratics: far beyond the display range it tends to 1/0.983729; cap the input so
    # that squaring huge values cannot overflow float32.
    v = np.minimum(v, np.float32(1.0e15))
    a = v * (v + np.float32(0.0245786)) - np.float32(0.000090537)
    b = v * (np.float32(0.983729) * v + np.float32(0.4329510)) + np.float32(0.238081)
    v = (a / b) @ _ACES_OUTPUT.T
    return np.clip(v, np.float32(0.0), np.float32(1.0))


def _quantize_uint8(encoded: np.ndarray) -> np.ndarray:
    scaled = np.clip(np.nan_to_num(encoded, nan=0.0), 0.0, 1.0) * np.float32(255.0)
    return np.rint(scaled).astype(np.uint8)


def _display_chunk(chunk: np.ndarray, hdr: bool, exposure: float, method: str) -> np.ndarray:
    if hdr:
        linear = apply_exposure(chunk, exposure) if exposure else chunk
        if method in OCIO_VIEWS:
            return _quantize_uint8(ocio_view(linear, method))
        return _quantize_uint8(srgb_encode(tonemap(linear, method)))
    if not exposure:
        return _quantize_uint8(chunk)
    linear = apply_exposure(srgb_decode(np.clip(chunk, 0.0, 1.0)), exposure)
    return _quantize_uint8(srgb_encode(np.clip(linear, 0.0, 1.0)))


def to_display_uint8(pixels: np.ndarray, *, hdr: bool, exposure: float = 0.0, tonemap: str = "aces") -> np.ndarray:
    """What the screen shows: uint8 H x W x 3 sRGB.

    ``hdr=True``: pixels are linear scene values; exposure, then the tone map ``tonemap``, then sRGB encoding
    (an OpenColorIO view does both).
    ``hdr=False``: pixels are sRGB-encoded [0, 1]; the tone map is not used (values are clipped), and exposure
    applies in linear light (identity at 0 stops). Gray (H x W) input gives H x W x 3 output.
    """
    method = tonemap
    if method not in TONEMAPS:
        raise ValueError(f"unknown tone map {method!r}; choose one of {', '.join(TONEMAPS)}")
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise ValueError(f"expected H x W x 3 pixels, got shape {pixels.shape}")
    height, width = pixels.shape[:2]
    out = np.empty((height, width, 3), dtype=np.uint8)
    rows = max(1, _CHUNK_PIXELS // max(1, width))
    for top in range(0, height, rows):
        chunk = pixels[top : top + rows].astype(np.float32, copy=False)
        out[top : top + rows] = _display_chunk(chunk, hdr, float(exposure), method)
    return out
