"""A training view of rendered sets: ``input/`` and ``target/`` folders that pair by name.

The trainer's paired datasets (engine/training/datasets.py) match ``X_color.exr`` in ``input/`` with ``X_ref.exr``
in ``target/`` and find ``X_albedo.exr`` / ``X_normal.exr`` / ``X_depth.exr`` beside the input. For every
complete scene of a set and every noisy sample count this writes::

    PAIRS/input/scene_010000_spp00004_color.exr    -> link to the set's file
    PAIRS/input/scene_010000_spp00004_albedo.exr   -> link
    PAIRS/input/scene_010000_spp00004_normal.exr   (copy with R, G, B channel names)
    PAIRS/input/scene_010000_spp00004_depth.exr    (copy with a Y channel)
    PAIRS/target/scene_010000_spp00004_ref.exr     -> link to the reference

Normals and depth are rewritten because the trainer reads files with OpenCV, which only understands R/G/B and
Y channels (Mitsuba names them X/Y/Z and T). Every file appears atomically (rewritten AOVs through
``imageio.atomic_write``, links made under a temporary name and renamed), so runs rendering different seeds into
one pairs folder side by side do not trip over each other.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import EngineError
from ..imageio.atomic import atomic_write


def _read_channels(path: Path, names: Sequence[str]) -> np.ndarray:
    import OpenEXR

    with OpenEXR.File(str(path), separate_channels=True) as exr:
        channels = exr.channels()
        return np.stack([np.asarray(channels[n].pixels, dtype=np.float32) for n in names], axis=-1)


def _write_plain(path: Path, array: np.ndarray) -> None:
    import OpenEXR

    names = ("R", "G", "B") if array.shape[2] == 3 else ("Y",)
    channels = {n: np.ascontiguousarray(array[:, :, i], dtype=np.float16) for i, n in enumerate(names)}
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, channels) as exr:
        atomic_write(path, lambda temporary: exr.write(str(temporary)))


def _link(source: Path, link: Path) -> None:
    """(Re)point ``link`` at ``source`` atomically: a symlink under a name of this process and thread, renamed."""
    temporary = link.with_name(f".{link.stem}.{os.getpid()}.{threading.get_ident()}{link.suffix}")
    temporary.unlink(missing_ok=True)
    os.symlink(source.resolve(), temporary)
    os.replace(temporary, link)


def write_pairs(set_dir: Path, pairs_dir: Path, spp: Sequence[int] | None = None) -> int:
    """Write the training view of every complete scene of ``set_dir``; returns the number of pairs."""
    set_dir, pairs_dir = Path(set_dir), Path(pairs_dir)
    scenes = sorted(p.parent for p in set_dir.glob("*/scene.json"))
    if not scenes:
        raise EngineError(f"{set_dir} holds no complete rendered scene (no */scene.json)")
    (pairs_dir / "input").mkdir(parents=True, exist_ok=True)
    (pairs_dir / "target").mkdir(parents=True, exist_ok=True)
    count = 0
    for folder in scenes:
        info = json.loads((folder / "scene.json").read_text(encoding="utf-8"))
        name = info["name"]
        reference = folder / f"{name}_ref_spp{info['ref_spp']:05d}_color.exr"
        for n in info["spp"]:
            if spp and n not in spp:
                continue
            key = f"{name}_spp{n:05d}"
            target = pairs_dir / "target" / f"{key}_ref.exr"
            _link(folder / f"{key}_color.exr", pairs_dir / "input" / f"{key}_color.exr")
            _link(folder / f"{key}_albedo.exr", pairs_dir / "input" / f"{key}_albedo.exr")
            normal = pairs_dir / "input" / f"{key}_normal.exr"
            if not normal.exists():
                _write_plain(normal, _read_channels(folder / f"{key}_normal.exr", ("X", "Y", "Z")))
            depth = pairs_dir / "input" / f"{key}_depth.exr"
            if not depth.exists():
                _write_plain(depth, _read_channels(folder / f"{key}_depth.exr", ("T",)))
            _link(reference, target)
            count += 1
    return count
