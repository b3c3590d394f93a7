"""The base of built-in engines: restoration algorithms (and peers' networks) without weights of ours, offered
in the same picker as our networks.

Each engine is a manifest (``engine="classical"``) plus a tile function with the same contract as an ONNX
model: it receives the tile's inputs by role, each H x W x C float32 in the manifest's value space, plus
the resolved parameters, and returns (H * scale, W * scale, channels). The restore job tiles and blends
them exactly like networks, so they are interchangeable everywhere (GUI, command line, benchmarks).

An engine that loads something per job (``render-kprcan-oidn`` runs a bundled network on the user's device)
gives ``bind`` instead of ``run``: it is called once per job with the parameters, device and cancel token.
The list of engines the app offers is engine/models/builtin.py.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .entry import BoundModel, ModelEntry, TileFunction, TileInputs
from .manifest import ModelManifest

__all__ = ["ClassicalEngine", "ClassicalFunction", "TileFunction", "TileInputs"]

ClassicalFunction = Callable[[TileInputs, Mapping[str, Any]], np.ndarray]


@dataclass(frozen=True)
class ClassicalEngine:
    manifest: ModelManifest
    #: The tile function (None when ``bind`` makes it).
    run: ClassicalFunction | None
    #: Python modules the engine needs; it is hidden from the picker when one is missing.
    requires: tuple[str, ...] = ()
    #: For engines that load something per job (a network on the user's device): ``bind(params, device, token)``
    #: returns the tile function and a description of where it runs.
    bind: Callable[[Mapping[str, Any], str, Any], tuple[TileFunction, str]] | None = None
    #: Further condition for being offered (files it needs), checked with ``requires``.
    present: Callable[[], bool] | None = None
    #: The registry's source for it: "builtin" (no weights of ours) or "blend" (a bundled network of ours,
    #: or one the user trained, combined with a built-in peer).
    source: str = "builtin"

    def available(self) -> bool:
        if not all(importlib.util.find_spec(name) is not None for name in self.requires):
            return False
        return self.present is None or self.present()

    def tile_function(self, params: Mapping[str, Any], device: str, token: Any) -> tuple[TileFunction, str]:
        """The function the restore job runs on each tile, and the device it runs on, in words."""
        if self.bind is not None:
            return self.bind(params, device, token)
        from ..runtime import cpu_description

        run = self.run
        return (lambda tile: run(tile, params)), cpu_description()

    def bind_entry(self, entry: ModelEntry, params: Mapping[str, Any], device: str, token: Any,
                   session: Mapping[str, Any] | None = None) -> BoundModel:
        """:meth:`tile_function` as a :class:`~engine.models.entry.Binder` for the engine's registry entry."""
        run, where = self.tile_function(params, device, token)
        return BoundModel(run, where)

    def entry(self) -> ModelEntry:
        """The engine's registry entry, bound to its tile function."""
        return ModelEntry(self.manifest, None, self.source, bind=self.bind_entry)
