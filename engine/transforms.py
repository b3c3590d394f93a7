"""Value transforms between an image's own space and a model's value space (manifest ``value_transform``).

Training and inference must agree on these, so both call this module:

- ``srgb``: display-referred [0, 1], sRGB-encoded as in an 8/16-bit file. A linear HDR image is encoded
  with the sRGB curve first (values above 1 stay above 1; the model may clip them).
- ``linear``: scene-referred linear values, multiplied by the image-wide exposure scale.
- ``log1p``: ``log(1 + scale * x)`` where ``scale`` is the image-wide exposure scale
  (:func:`auto_exposure_scale`). One scale is computed per image and shared by every tile, so tiles have
  no seams (the OIDN lesson).

AOV conventions: albedo as is (clipped to [0, 1]); normal as is ([-1, 1]); depth divided by its image-wide
maximum finite value, so it lies in [0, 1].
"""

from __future__ import annotations

import numpy as np

#: Key value of the auto-exposure: the log-average luminance is mapped to this (as OIDN does).
EXPOSURE_KEY = 0.18


def auto_exposure_scale(linear: np.ndarray, max_samples: int = 1 << 18) -> float:
    """Image-wide exposure scale for HDR data: ``key / geometric mean of luminance`` on a subsample."""
    height, width = linear.shape[:2]
    step = max(1, int(np.sqrt(height * width / max_samples)))
    sample = np.asarray(linear[::step, ::step, :3], dtype=np.float32)
    lum = sample[..., 0] * 0.2126 + sample[..., 1] * 0.7152 + sample[..., 2] * 0.0722
    lum = lum[np.isfinite(lum) & (lum > 1e-8)]
    if lum.size == 0:
        return 1.0
    log_average = float(np.exp(np.mean(np.log(lum))))
    return float(np.clip(EXPOSURE_KEY / log_average, 1e-4, 1e4))


def to_model_space(pixels: np.ndarray, transform: str, image_is_hdr: bool, scale: float = 1.0) -> np.ndarray:
    """Convert float32 pixels in the image's own space into the model's value space."""
    from .display import srgb_decode, srgb_encode

    if transform == "srgb":
        if image_is_hdr:
            return srgb_encode(np.maximum(pixels, 0.0)).astype(np.float32, copy=False)
        return pixels
    if transform not in ("linear", "log1p"):
        raise ValueError(f"unknown value transform {transform!r}")
    linear = pixels if image_is_hdr else srgb_decode(pixels)
    # One new array, then in place: on a 16k x 16k render every temporary costs 3 GiB.
    values = np.maximum(linear, 0.0) if linear is pixels else np.maximum(linear, 0.0, out=linear)
    values = values.astype(np.float32, copy=False)
    values *= np.float32(scale)
    if transform == "log1p":
        np.log1p(values, out=values)
    return values


def from_model_space(
    values: np.ndarray, transform: str, image_is_hdr: bool, scale: float = 1.0, *, in_place: bool = False
) -> np.ndarray:
    """Inverse of :func:`to_model_space`; ``in_place``: ``values`` (float32) may be overwritten with the result."""
    from .display import srgb_decode, srgb_encode

    if transform == "srgb":
        if image_is_hdr:
            return srgb_decode(np.maximum(values, 0.0)).astype(np.float32, copy=False)
        return values
    if transform not in ("linear", "log1p"):
        raise ValueError(f"unknown value transform {transform!r}")
    if in_place and values.dtype == np.float32 and values.flags.writeable:
        linear = np.maximum(values, 0.0, out=values)
    else:
        linear = np.maximum(values, 0.0).astype(np.float32, copy=False)  # one new array, then in place
    if transform == "log1p":
        np.expm1(linear, out=linear)
    linear /= np.float32(scale)
    if image_is_hdr:
        return linear
    return srgb_encode(np.clip(linear, 0.0, 1.0, out=linear)).astype(np.float32, copy=False)


def prepare_aov(name: str, layer: np.ndarray, depth_max: float | None = None) -> np.ndarray:
    """Bring an AOV buffer into the convention models were trained with (see module docstring)."""
    # One copy (the image's own layer stays as it is), then everything in place: on a 1080p frame this took 0.19 s
    # for albedo and normal as nan_to_num and a clipped copy, the most of any step around the network.
    layer = np.array(layer, dtype=np.float32, copy=True)
    broken = ~np.isfinite(layer)
    if broken.any():
        layer[broken] = 0.0
    if name == "albedo":
        return np.clip(layer, 0.0, 1.0, out=layer)
    if name == "normal":
        return np.clip(layer, -1.0, 1.0, out=layer)
    if name == "depth":
        if depth_max is None:
            depth_max = float(layer.max()) if layer.size else 1.0
        return np.clip(layer / max(depth_max, 1e-8), 0.0, 1.0)
    return layer
