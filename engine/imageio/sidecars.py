"""Sidecar AOV buffers: albedo / normal / depth saved as separate files beside a render.

For a render ``NAME.exr`` the candidates are ``NAME.albedo.exr``, ``NAME_albedo.exr`` (and the same for
``normal`` and ``depth``); when the render itself is named as one buffer of a set (``NAME_color.exr``,
``NAME.color.exr``, also ``beauty``/``rgb``/``noisy``), its siblings ``NAME_albedo.exr``... are used, as in
``cbox_256_spp00004_color.exr`` + ``cbox_256_spp00004_albedo.exr``. Both ``.exr`` and the render's own extension
are looked for. A sidecar of another size, or one that cannot be read, is skipped and reported in
``meta.extra["sidecar_problems"]``; the files used are listed in ``meta.extra["sidecars"]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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
#: Words that mark a file as the clean reference of another, anywhere in its name between ``_ . - `` or spaces:
#: ``NAME_ref``, ``NAME.ref``, ``cbox_256_ref_spp04096_color``, ``gt_NAME``, ``NAME-clean``...
REFERENCE_WORDS = frozenset({"ref", "reference", "gt", "groundtruth", "ground-truth", "clean", "cleaned", "target"})
_WORD_SPLIT = re.compile(r"[._\- ]+")
_SPP = re.compile(r"^(?:spp(\d+)|(\d+)spp)$")


@dataclass(frozen=True)
class NameParts:
    """What a file's name says about it: the words that name the shot or photo (``key``), whether it is marked as
    a reference, and its sample count (``spp0016`` -> 16) when it names one."""

    key: tuple[str, ...]
    is_reference: bool
    spp: int | None


def name_parts(path: Path) -> NameParts:
    words = [word for word in _WORD_SPLIT.split(Path(path).stem.lower()) if word]
    key, is_reference, spp = [], False, None
    for word in words:
        match = _SPP.match(word)
        if match:
            spp = int(match.group(1) or match.group(2))
        elif word in REFERENCE_WORDS:
            is_reference = True
        elif word not in _COLOR_SUFFIXES:  # NAME_color.exr and NAME_ref_color.exr name the same picture
            key.append(word)
    return NameParts(tuple(key), is_reference, spp)


def pick_reference(path: Path, others: Iterable[Path], higher_spp: bool = True) -> Path | None:
    """The reference of ``path`` among ``others`` (files beside it), or None; the one rule used everywhere.

    A reference has the same name words as ``path`` once reference words and sample counts are left out, and is
    either marked as one (``NAME_ref``, ``NAME.ref``, ``NAME_reference``, ``NAME_gt``, ``NAME_clean``, ``ref`` or
    ``gt`` anywhere in the name) or, with ``higher_spp``, the same render with more samples (``cbox_spp04096``
    for ``cbox_spp0016``). Marked files come first, then the most samples. A file marked as a reference has
    none itself. AOV buffers (``NAME_albedo``...) keep their buffer's word, so they never match a colour file.
    """
    path = Path(path)
    mine = name_parts(path)
    if mine.is_reference or not mine.key:
        return None
    best: tuple[tuple, Path] | None = None
    for other in others:
        other = Path(other)
        if other == path or other.parent != path.parent:
            continue
        parts = name_parts(other)
        if parts.key != mine.key:
            continue
        more_samples = parts.spp is not None and mine.spp is not None and parts.spp > mine.spp
        if not (parts.is_reference or (higher_spp and more_samples)):
            continue
        rank = (parts.is_reference, parts.spp or 0, other.suffix.lower() == path.suffix.lower(), other.name)
        if best is None or rank > best[0]:
            best = (rank, other)
    return None if best is None else best[1]


def find_reference(path: Path) -> Path | None:
    """The clean reference beside the image at ``path`` (:func:`pick_reference` over the images in its folder)."""
    from .formats import is_supported

    path = Path(path)
    try:
        others = [p for p in path.parent.iterdir() if p.is_file() and is_supported(p)]
    except OSError:
        return None
    return pick_reference(path, others)


def companion_files(paths: list[Path]) -> dict[Path, str]:
    """The files among ``paths`` that belong to another one there rather than being images to restore: its AOV
    sidecars (read with it as layers) and its reference (``NAME_ref.exr`` beside ``NAME.exr``, any name
    :func:`pick_reference` takes for one, higher sample counts aside: those are renders of their own), each with
    why ("albedo of frame_0001.exr", "reference of frame_0001.exr"). Used when a folder is expanded. Only HDR
    files count: a photo named ``NAME_clean.png`` beside ``NAME.png`` is an image of its own."""
    present = {Path(p) for p in paths if Path(p).suffix.lower() in HDR_SUFFIXES}
    companions: dict[Path, str] = {}
    for path in sorted(present):
        for aov, file in find_sidecars(path).items():
            if file in present:
                companions.setdefault(file, f"{aov} of {path.name}")
        reference = pick_reference(path, present, higher_spp=False)
        if reference is not None:
            companions.setdefault(reference, f"reference of {path.name}")
    return companions
