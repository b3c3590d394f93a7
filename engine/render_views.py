"""What a render artist inspects besides the beauty pass: its AOV layers as pictures, and a histogram.

``layer_view(image, "albedo" | "normal" | "depth")`` turns a layer into a display-referred image the viewer shows
like any other: albedo (linear reflectance) sRGB-encoded, as compositors show it; normals mapped from [-1, 1] to
[0, 1] (x -> red, y -> green, z -> blue); depth as gray, near bright and far dark between the 1st and 99th
percentile of the finite depths, with the background (no hit: 0, 1e10, inf or NaN, as renderers write it) black.

``histogram(pixels, hdr=...)`` counts red, green, blue and luminance: for HDR in stops around scene mid-gray
(0.18 at 0 EV), after the viewer's exposure, so the display's white (1.0) sits at +2.47 EV; for display-referred
images over the encoded values [0, 1]. Large images are subsampled (a regular grid of at most ~260 K pixels).

Pure numpy, shared by the window and anything else; no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .display import srgb_encode
from .image import Image, make_image

#: Rec.709 luminance weights (linear light).
LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
#: Depth at or beyond this counts as background (Blender writes 1e10 where a ray hits nothing).
DEPTH_BACKGROUND = 1e9
#: Range of the HDR histogram, in stops around 0.18.
STOPS_RANGE = (-10.0, 8.0)
_MAX_SAMPLES = 1 << 18


def layer_view(image: Image, name: str) -> Image:
    """The layer ``name`` of ``image`` as a display-referred picture (see the module docstring)."""
    if name not in image.layers:
        raise KeyError(f"the image has no {name} layer")
    layer = np.asarray(image.layers[name], dtype=np.float32)
    if layer.ndim == 2:
        layer = layer[:, :, None]
    if name == "depth":
        pixels = _depth_gray(layer[:, :, 0])
    elif name == "normal":
        pixels = np.clip(np.nan_to_num(layer[:, :, :3]) * 0.5 + 0.5, 0.0, 1.0)
    else:  # albedo and other colour layers: linear values, shown as a compositor shows them
        pixels = np.clip(srgb_encode(np.clip(np.nan_to_num(layer[:, :, :3]), 0.0, 1.0)), 0.0, 1.0)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    meta = image.meta.replace(hdr=False, color_space="srgb", format="png", bit_depth=8, sample_type="uint",
                              gray=False, extra={"layer_view": name})
    return make_image(pixels.astype(np.float32), None, meta)


def _depth_gray(depth: np.ndarray) -> np.ndarray:
    valid = np.isfinite(depth) & (depth > 0.0) & (depth < DEPTH_BACKGROUND)
    out = np.zeros(depth.shape + (1,), np.float32)
    if not valid.any():
        return out
    near, far = np.percentile(depth[valid], [1.0, 99.0])
    span = max(float(far - near), 1e-12)
    gray = 1.0 - np.clip((depth - near) / span, 0.0, 1.0)
    out[:, :, 0] = np.where(valid, gray, 0.0)
    return out


@dataclass(frozen=True)
class Histogram:
    """Counts per bin for ``red``, ``green``, ``blue`` and ``luma`` over ``edges`` (len = bins + 1)."""

    edges: np.ndarray
    red: np.ndarray
    green: np.ndarray
    blue: np.ndarray
    luma: np.ndarray
    #: True: edges are stops around 0.18 (HDR); False: display values in [0, 1].
    in_stops: bool
    #: Share of sampled pixels beyond the top edge (over the display's white for display images) and at or
    #: below the bottom one (black, or below -10 EV).
    over: float
    under: float

    @property
    def white(self) -> float:
        """Where the display's white lies on the axis (1.0 for display images, log2(1 / 0.18) stops for HDR)."""
        return float(np.log2(1.0 / 0.18)) if self.in_stops else 1.0


def histogram(pixels: np.ndarray, *, hdr: bool, exposure: float = 0.0, bins: int = 128) -> Histogram:
    """Red, green, blue and luminance histograms of ``pixels`` (H x W x 3); see the module docstring."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    step = max(1, int(np.ceil(np.sqrt(pixels.shape[0] * pixels.shape[1] / _MAX_SAMPLES))))
    sample = np.nan_to_num(pixels[::step, ::step, :3].astype(np.float32).reshape(-1, 3), nan=0.0, posinf=0.0)
    if hdr:
        sample = sample * np.float32(2.0 ** exposure)
    luma = sample @ LUMA
    channels = [sample[:, 0], sample[:, 1], sample[:, 2], luma]
    if hdr:
        low, high = STOPS_RANGE
        edges = np.linspace(low, high, bins + 1)
        with np.errstate(divide="ignore"):
            values = [np.log2(np.maximum(c, 0.0) / 0.18) for c in channels]
        over = float(np.mean(values[3] > np.log2(1.0 / 0.18))) if luma.size else 0.0
        under = float(np.mean(values[3] <= low)) if luma.size else 0.0
        values = [np.clip(v, low, high) for v in values]
    else:
        edges = np.linspace(0.0, 1.0, bins + 1)
        over = float(np.mean(luma >= 1.0)) if luma.size else 0.0
        under = float(np.mean(luma <= 0.0)) if luma.size else 0.0
        values = [np.clip(c, 0.0, 1.0) for c in channels]
    counts = [np.histogram(v, bins=edges)[0] for v in values]
    return Histogram(edges, *counts, in_stops=hdr, over=over, under=under)
