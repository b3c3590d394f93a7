"""What opening images needs besides the window: the engine's image I/O (loaded on first use), a folder's images
expanded, and the status bar's one-line description of an opened image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.api import Image


def imageio_module():
    from engine.api import imageio

    return imageio


def image_file_filter() -> str:
    """The open dialogs' file-type filter: every extension the loader reads, then all files."""
    patterns = " ".join(f"*{ext}" for ext in sorted(imageio_module().SUPPORTED_READ_EXTENSIONS))
    return f"Images ({patterns});;All files (*)"


def describe_image(image: Image) -> str:
    """Status bar text: size, format and depth, HDR or not, alpha, value range."""
    meta = image.meta
    depth = {"half": "16-bit half", "float": "32-bit float"}.get(meta.sample_type, f"{meta.bit_depth}-bit")
    parts = [f"{image.width}\u00d7{image.height}", f"{meta.format.upper()} {depth}",
             "HDR" if meta.hdr else ("gray" if meta.gray else "RGB")]
    if image.alpha is not None:
        parts.append("alpha")
    if image.aovs:
        parts.append("+" + "/".join(image.aovs))
    pages = int(meta.extra.get("pages", 1))
    if pages > 1:
        parts.append(f"page {int(meta.extra.get('page_index', 0)) + 1} of {pages}")
    pixels = image.pixels
    step = max(1, int(np.sqrt(pixels.shape[0] * pixels.shape[1] / 4_000_000)))  # sample huge images
    sample = pixels[::step, ::step]
    parts.append(f"{float(np.nanmin(sample)):.4g}\u2013{float(np.nanmax(sample)):.4g}")
    return " \u00b7 ".join(parts)


def expand_paths(paths: list[str]) -> tuple[list[str], int]:
    """Files as given, folders replaced by the supported images inside them (sorted, not recursive) without a
    render's AOV sidecars and references (read with it, or not inputs); and how many of those were left out."""
    imageio = imageio_module()
    out: list[str] = []
    companions = 0
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found, left_out = imageio.folder_images(path)
            out.extend(str(p) for p in found)
            companions += len(left_out)
        else:
            out.append(str(path))
    return out, companions
