"""Frames of an animated PNG or WebP, read with Pillow and composited as a viewer shows them.

Shared by the still-image reader (engine/imageio/raster.py: an animation's first frame) and the page reader
(engine/imageio/pages.py: every frame), so that frame 1 is the same picture whichever way it is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageReadError
from ..image import Image, ImageMeta, make_image
from .formats import check_dimensions


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
