"""The one in-memory image convention of Restoration Studio.

Pixels are float32, H x W x 3, RGB:
- display-referred images (PNG, JPEG, TIFF, ...) hold values in [0, 1], sRGB-encoded as in the file;
- scene-referred HDR images (EXR, Radiance .hdr) hold linear values in [0, inf).

Gray files are expanded to three equal channels and remembered as gray (``meta.gray``), so models and the
viewer see one layout while saving writes gray again. Alpha is kept apart from the colour (H x W, [0, 1]) so
that restoration never touches it by accident; super-resolution resizes it with the image. Everything needed
to save faithfully (format, bit depth, ICC profile, EXIF, extra EXR layers) travels in ``meta`` and
``layers``.

Images are immutable: the arrays are made read-only, so an ``Image`` can cross threads safely.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

#: Canonical names of the auxiliary render buffers (AOVs) that render denoisers use.
AOV_NAMES = ("albedo", "normal", "depth")


@dataclass(frozen=True)
class ImageMeta:
    """What the loader saw in the file, and what a faithful save needs to restore."""

    path: str | None = None
    #: Container format: "png", "jpeg", "tiff", "bmp", "webp", "hdr", "exr".
    format: str = "png"
    #: Bits per sample in the file: 8 or 16 for integer formats, 16 (half) or 32 (float) for EXR/HDR.
    bit_depth: int = 8
    #: "uint", "half" or "float".
    sample_type: str = "uint"
    #: True when the file was gray (or gray + alpha).
    gray: bool = False
    #: True when the file was a palette (indexed) image; it is saved as RGB(A) unless asked otherwise.
    palette: bool = False
    #: True for scene-referred linear HDR data (EXR, .hdr). Such pixels are never clipped to [0, 1].
    hdr: bool = False
    #: "srgb" for display-referred files, "linear" for HDR.
    color_space: str = "srgb"
    icc_profile: bytes | None = None
    exif: bytes | None = None
    #: Other format-specific items worth keeping (PNG text chunks, DPI, EXR header attributes, JPEG quality).
    extra: Mapping[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> ImageMeta:
        return dataclasses.replace(self, **changes)


def _frozen(array: np.ndarray | None) -> np.ndarray | None:
    if array is None:
        return None
    array = np.asarray(array)
    if array.flags.writeable:
        array = array.view()
        array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class Image:
    """An image in the engine's convention. Construct with :func:`make_image` to get checks and freezing."""

    #: float32, H x W x 3, RGB.
    pixels: np.ndarray
    #: float32, H x W in [0, 1], or None when the file had no alpha.
    alpha: np.ndarray | None
    meta: ImageMeta
    #: Extra layers by name, each float32 H x W x C (C = 1 or 3). AOVs use the canonical names in AOV_NAMES
    #: ("albedo", "normal", "depth"); other EXR layers keep their names so that saving writes them back.
    layers: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def has_alpha(self) -> bool:
        return self.alpha is not None

    @property
    def aovs(self) -> Mapping[str, np.ndarray]:
        """The auxiliary buffers this image carries (albedo, normal, depth), by canonical name."""
        return {name: self.layers[name] for name in AOV_NAMES if name in self.layers}

    def with_pixels(self, pixels: np.ndarray, alpha: np.ndarray | None | str = "keep", **meta_changes: Any) -> Image:
        """A new image with other pixels (e.g. a restoration result), keeping meta and layers.

        ``alpha="keep"`` keeps the current alpha (it must match the new size); pass an array or None to replace
        it. Layers are dropped when the size changes (they no longer line up with the pixels).
        """
        new_alpha = self.alpha if isinstance(alpha, str) and alpha == "keep" else alpha
        layers = self.layers if pixels.shape[:2] == self.pixels.shape[:2] else {}
        meta = self.meta.replace(**meta_changes) if meta_changes else self.meta
        return make_image(pixels, new_alpha, meta, layers)


def make_image(
    pixels: np.ndarray,
    alpha: np.ndarray | None = None,
    meta: ImageMeta | None = None,
    layers: Mapping[str, np.ndarray] | None = None,
) -> Image:
    """Build an :class:`Image`, checking the convention and making every array read-only.

    ``pixels`` may be H x W (gray) or H x W x 1 / 3; it is converted to float32 H x W x 3.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise ValueError(f"pixels must be H x W x 1 or 3, got shape {pixels.shape}")
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ValueError(f"image has no pixels: shape {pixels.shape}")
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    if alpha is not None:
        alpha = np.asarray(alpha, dtype=np.float32)
        if alpha.ndim == 3 and alpha.shape[2] == 1:
            alpha = alpha[:, :, 0]
        if alpha.shape != pixels.shape[:2]:
            raise ValueError(f"alpha shape {alpha.shape} does not match pixels {pixels.shape[:2]}")
        alpha = np.ascontiguousarray(alpha)
    frozen_layers = {}
    for name, layer in (layers or {}).items():
        layer = np.asarray(layer, dtype=np.float32)
        if layer.ndim == 2:
            layer = layer[:, :, None]
        if layer.shape[:2] != pixels.shape[:2]:
            raise ValueError(f"layer {name!r} shape {layer.shape} does not match pixels {pixels.shape[:2]}")
        frozen_layers[name] = _frozen(np.ascontiguousarray(layer))
    return Image(
        pixels=_frozen(pixels),
        alpha=_frozen(alpha),
        meta=meta or ImageMeta(),
        layers=MappingProxyType(frozen_layers),
    )


def luma(pixels: np.ndarray) -> np.ndarray:
    """Rec. 709 luma of H x W x 3 pixels (used when a gray result is needed from RGB)."""
    return pixels[..., 0] * 0.2126 + pixels[..., 1] * 0.7152 + pixels[..., 2] * 0.0722
