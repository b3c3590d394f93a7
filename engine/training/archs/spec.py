"""What an architecture tells the trainer and the exporter about itself (as spandrel's architectures do), so that
neither names an architecture: one :class:`ArchSpec` per entry of ``ARCHITECTURES`` (archs/__init__.py).

Every model an architecture builds is a plain ``nn.Module`` with its ONNX contract as attributes (common.py:
``input_roles``, ``scale``, ``channels``, ``alignment``, ``overlap``). The hooks are optional:

- ``grows_into(config, weights, arch)`` / ``grow(model, state_dict, old_config)``: a recipe whose ``init`` is a
  smaller model of the same architecture trains a grown one (the shipped render models were made this way);
- ``companions(model, out_dir, model_id)``: files exported beside ``<id>.onnx`` (e.g. ``<id>.kernels.onnx`` for the
  kernel inspector); returns the provenance entries the manifest records about them (None: remove the entry);
- ``parts``: parts a recipe may train alone (``[train] train_only``), each a function freezing everything else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn


@dataclass(frozen=True)
class ArchSpec:
    builder: Callable[..., nn.Module]
    description: str
    #: A configuration small enough for unit tests (milliseconds per step on a CPU).
    tiny: Mapping[str, Any] = field(default_factory=dict)
    grows_into: Callable[[Mapping[str, Any], Mapping[str, Any], str], bool] | None = None
    grow: Callable[[nn.Module, dict, dict], None] | None = None
    companions: Callable[[nn.Module, Path, str], Mapping[str, Any]] | None = None
    parts: Mapping[str, Callable[[nn.Module], None]] = field(default_factory=dict)

    def can_grow(self, arch: str, config: Mapping[str, Any], weights: Mapping[str, Any]) -> bool:
        """True when ``weights`` (arch, config, state_dict) can be grown into a model of ``config``."""
        return self.grow is not None and self.grows_into is not None and self.grows_into(config, weights, arch)
