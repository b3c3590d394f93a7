"""Writing render sets as EXR files with the channel names Mitsuba uses (as in ``bench/renders/cbox256``).

Colour and albedo are ``R, G, B``, the shading normal ``X, Y, Z``, depth ``T`` and a shot's motion ``X, Y`` (the
engine's backward flow, engine/motion.py); one file per buffer
(``<name>_spp00004_color.exr``, ``..._albedo.exr``...), or all of them as layers of one file
(``albedo.R``, ``normal.X``, ``depth.T``...) for a self-contained sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

#: Channel names of each buffer, in array order.
CHANNELS = {"color": ("R", "G", "B"), "albedo": ("R", "G", "B"), "normal": ("X", "Y", "Z"), "depth": ("T",),
            "motion": ("X", "Y")}


def _channel_arrays(buffer: str, array: np.ndarray, prefix: str, half: bool) -> dict[str, np.ndarray]:
    names = CHANNELS[buffer]
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] != len(names):
        raise ValueError(f"{buffer}: expected {len(names)} channels, got {array.shape[2]}")
    dtype = np.float16 if half else np.float32
    if half:
        # Half floats overflow to inf above 65504; clamp so that fireflies stay finite.
        array = np.clip(array, -65504.0, 65504.0)
    return {prefix + name: np.ascontiguousarray(array[:, :, i], dtype=dtype) for i, name in enumerate(names)}


def write_buffer(path: Path, buffer: str, array: np.ndarray, half: bool = False) -> None:
    """Write one buffer (``color``, ``albedo``, ``normal`` or ``depth``) as its own EXR file."""
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, _channel_arrays(buffer, array, "", half)) as exr:
        exr.write(str(path))


def write_layered(path: Path, buffers: Mapping[str, np.ndarray], half: bool = True) -> None:
    """Write colour as the main ``R, G, B`` channels and the other buffers as named layers of one EXR."""
    import OpenEXR

    channels: dict[str, np.ndarray] = {}
    for buffer, array in buffers.items():
        channels.update(_channel_arrays(buffer, array, "" if buffer == "color" else f"{buffer}.", half))
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, channels) as exr:
        exr.write(str(path))
