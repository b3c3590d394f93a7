"""Sidecar AOV buffers: albedo / normal / depth saved as separate files beside a render.

For a render ``NAME.exr`` the candidates are ``NAME.albedo.exr``, ``NAME_albedo.exr`` (and the same for
``normal`` and ``depth``); when the render itself is named as one buffer of a set (``NAME_color.exr``,
``NAME.color.exr``, also ``beauty``/``rgb``/``noisy``), its siblings ``NAME_albedo.exr``... are used, as in
``cbox_256_spp00004_color.exr`` + ``cbox_256_spp00004_albedo.exr``. Both ``.exr`` and the render's own extension
are looked for. A sidecar of another size, or one that cannot be read, is skipped and reported in
``meta.extra["sidecar_problems"]``; the files used are listed in ``meta.extra["sidecars"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import ImageReadError
from ..image import AOV_NAMES, Image, make_image
from .aov import clean_depth

#: The render formats that carry AOVs and references (sidecars beside an 8-bit photo are not looked for).
HDR_SUFFIXES = (".exr", ".hdr", ".pfm")
_COLOR_SUFFIXES = ("color", "colour", "beauty", "rgb", "noisy", "combined")
_ALIASES = {"albedo": ("albedo",), "normal": ("normal", "normals", "nrm"), "depth": ("depth", "z")}


def _bases(path: Path) -> list[str]:
    stem = path.stem
    bases = [stem]
    for separator in ("_", "."):
        for suffix in _COLOR_SUFFIXES:
            tail = f"{separator}{suffix}"
            if stem.lower().endswith(tail) and len(stem) > len(tail):
                bases.append(stem[: -len(tail)])
    return bases


def candidates(path: Path, aov: str) -> list[Path]:
    """Files that may hold ``aov`` for the render at ``path``, in order of preference."""
    path = Path(path)
    extensions = [".exr"] + ([path.suffix] if path.suffix.lower() != ".exr" else [])
    found = []
    for base in _bases(path):
        for alias in _ALIASES[aov]:
            for separator in (".", "_"):
                for extension in extensions:
                    candidate = path.with_name(f"{base}{separator}{alias}{extension}")
                    if candidate != path and candidate not in found:
                        found.append(candidate)
    return found


def find_sidecars(path: Path) -> dict[str, Path]:
    """{aov: file} for the sidecars that exist beside ``path``."""
    result = {}
    for aov in AOV_NAMES:
        for candidate in candidates(path, aov):
            if candidate.is_file():
                result[aov] = candidate
                break
    return result


def _as_aov(aov: str, image: Image) -> np.ndarray:
    """A sidecar file's content as the layer's array: 3 channels for albedo/normal, 1 for depth."""
    if aov == "depth":  # an "infinite" background (Blender's 1e10) becomes 0, as in the models' training data
        return clean_depth(np.array(image.pixels[:, :, :1]))[0]
    return np.array(image.pixels)


def attach_sidecars(image: Image, path: Path, read: Callable[[Path], Image]) -> Image:
    """The image with the sidecar AOVs it does not carry yet added as layers (the file's own layers win)."""
    found = {aov: file for aov, file in find_sidecars(path).items() if aov not in image.layers}
    if not found:
        return image
    layers = dict(image.layers)
    used: dict[str, str] = {}
    problems: dict[str, str] = {}
    for aov, file in found.items():
        try:
            sidecar = read(file)
        except ImageReadError as error:
            problems[aov] = f"{file.name}: {error.problem}"
            continue
        if (sidecar.height, sidecar.width) != (image.height, image.width):
            problems[aov] = f"{file.name}: size {sidecar.width} x {sidecar.height} differs from the image"
            continue
        layers[aov] = _as_aov(aov, sidecar)
        used[aov] = str(file)
    extra = dict(image.meta.extra)
    if used:
        extra["sidecars"] = used
        roles = dict(extra.get("aov_roles", {}))
        for aov, file in used.items():
            roles[aov] = {"layer": Path(file).name, "channels": [], "renderer": "", "note": "sidecar file",
                          "sidecar": True}
        extra["aov_roles"] = roles
    if problems:
        extra["sidecar_problems"] = problems
    return make_image(image.pixels, image.alpha, image.meta.replace(extra=extra), layers)


#: How a high-sample reference beside its render may be named (``frame_0012.exr`` + ``frame_0012_ref.exr``): a
#: shot's fine-tuning folder (``engine/training/datasets.find_pairs``) holds both.
REFERENCE_SUFFIXES = ("_reference", "_ref", "_gt", "_clean", "_target")


def companion_files(paths: list[Path]) -> dict[Path, str]:
    """The files among ``paths`` that belong to another one there rather than being images to restore: its AOV
    sidecars (read with it as layers) and its reference (``NAME_ref.exr`` beside ``NAME.exr``), each with why
    ("albedo of frame_0001.exr", "reference of frame_0001.exr"). Used when a folder is expanded. Only HDR files
    count: a photo named ``NAME_clean.png`` beside ``NAME.png`` is an image of its own."""
    present = {Path(p) for p in paths if Path(p).suffix.lower() in HDR_SUFFIXES}
    companions: dict[Path, str] = {}
    for path in sorted(present):
        for aov, file in find_sidecars(path).items():
            if file in present:
                companions.setdefault(file, f"{aov} of {path.name}")
        for base in _bases(path):
            for suffix in REFERENCE_SUFFIXES:
                for extension in dict.fromkeys((path.suffix, ".exr")):
                    reference = path.with_name(f"{base}{suffix}{extension}")
                    if reference in present and reference != path:
                        companions.setdefault(reference, f"reference of {path.name}")
    return companions
