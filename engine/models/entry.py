"""A model the app can run: its manifest, its file (networks), where it came from, and how it runs on a tile.

Every entry binds its tile function (:meth:`ModelEntry.tile_function`): an ONNX network is loaded with ONNX
Runtime on the user's device, a built-in engine (engine/models/builtin.py) gives its own function. The restore
job calls it without knowing which kind of model it runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .manifest import ModelManifest

TileInputs = Mapping[str, np.ndarray]
#: What the restore job runs on each tile: the tile's inputs by role (H x W x C float32 in the manifest's value
#: space) -> (H * scale, W * scale, channels).
TileFunction = Callable[[TileInputs], np.ndarray]


@dataclass(frozen=True)
class BoundModel:
    """A model made ready for one job: its tile function, the device it runs on (in words) and, when known,
    what one pixel costs inside it (bytes), which sizes automatic tiles."""

    run: TileFunction
    device: str
    bytes_per_pixel: float | None = None


#: ``bind(entry, params, device, token)`` -> the entry's :class:`BoundModel` for one job.
Binder = Callable[["ModelEntry", Mapping[str, Any], str, Any], BoundModel]


@dataclass(frozen=True)
class ModelEntry:
    manifest: ModelManifest
    #: The ONNX file for engine "onnx"; None for built-in engines.
    path: Path | None
    #: "builtin" (classical), "blend" (a bundled network with a built-in peer), "bundled" (resources/models) or
    #: "user" (trained on this machine).
    source: str
    #: How the entry runs (set by the registry); None: by its manifest's engine (:data:`ENGINE_BINDERS`).
    bind: Binder | None = field(default=None, compare=False, repr=False)

    @property
    def id(self) -> str:
        return self.manifest.id

    def tile_function(self, params: Mapping[str, Any], device: str, token: Any) -> BoundModel:
        """The function the restore job runs on each tile, for the resolved ``params`` on ``device``."""
        bind = self.bind or ENGINE_BINDERS.get(self.manifest.engine)
        if bind is None:
            raise ModelError(f"model {self.id!r}: engine {self.manifest.engine!r} needs a bound entry "
                             "(built-in engines: engine.models.builtin.builtin_engine(id).entry())")
        return bind(self, params, device, token)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_model_file(entry: ModelEntry) -> None:
    """Raise ModelError unless the entry's ONNX file exists and matches the manifest's sha256."""
    if entry.path is None:
        return
    if not entry.path.is_file():
        raise ModelError(f"model {entry.id!r}: file {entry.path} is missing")
    if not entry.manifest.sha256:
        # Every exporter writes the checksum; a manifest without one could point at any file.
        raise ModelError(
            f"model {entry.id!r}: its manifest has no sha256, so {entry.path.name} cannot be verified "
            "(re-export the model, or add the file's sha256 to the manifest)"
        )
    actual = file_sha256(entry.path)
    if actual != entry.manifest.sha256:
        raise ModelError(
            f"model {entry.id!r}: {entry.path.name} fails its checksum (expected {entry.manifest.sha256[:12]}..., "
            f"found {actual[:12]}...); the file is damaged or was replaced"
        )


def bind_onnx(entry: ModelEntry, params: Mapping[str, Any], device: str, token: Any) -> BoundModel:
    """An ONNX network on ``device``: checked against its manifest's sha256, loaded with ONNX Runtime."""
    from ..runtime import load_onnx_model

    verify_model_file(entry)
    model = load_onnx_model(entry.path, device)
    extra: dict[str, np.ndarray] = {}
    if "noise_level" in entry.manifest.inputs:
        level = float(params.get("noise_level", 0.0)) / 255.0
        extra["noise_level"] = np.full((1, 1, 1, 1), level, dtype=np.float32)
    return BoundModel(lambda tile: model.run_image(tile, token, extra), str(model.device), model.bytes_per_pixel)


#: How an entry made without ``bind`` runs, by its manifest's ``engine`` (a built-in engine's entry comes from
#: ``builtin_engine(id).entry()``, which binds it).
ENGINE_BINDERS: dict[str, Binder] = {"onnx": bind_onnx}
