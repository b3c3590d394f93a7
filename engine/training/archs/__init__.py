"""The explicit registry of trainable architectures: ``ARCHITECTURES[name]`` is an :class:`ArchSpec`.

Importing this package imports torch (training and export code only). To add an architecture, write one
module with a plain ``nn.Module`` that follows the contract in ``common.py`` (``input_roles``, ``scale``,
``channels``, ``alignment``, ``overlap``) and add one entry below, with a tiny configuration for tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .dncnn import DnCNN
from .edsr import EDSR
from .rcan import RCAN


@dataclass(frozen=True)
class ArchSpec:
    builder: Callable[..., nn.Module]
    description: str
    #: A configuration small enough for unit tests (milliseconds per step on a CPU).
    tiny: Mapping[str, Any] = field(default_factory=dict)


ARCHITECTURES: dict[str, ArchSpec] = {
    "dncnn": ArchSpec(
        DnCNN,
        "DnCNN/FFDNet-style residual denoiser with an optional noise-level map input",
        {"features": 4, "depth": 3},
    ),
    "edsr": ArchSpec(
        EDSR, "EDSR baseline: residual blocks, long skip, pixel-shuffle tail", {"features": 4, "blocks": 1}
    ),
    "rcan": ArchSpec(
        RCAN,
        "RCAN: residual groups of channel-attention blocks",
        {"features": 4, "groups": 1, "blocks": 1, "reduction": 2},
    ),
}


def register_architecture(name: str, spec: ArchSpec) -> None:
    """For other packages' architectures (KPCN, Restormer): call from their own code, never at import time."""
    ARCHITECTURES[name] = spec


def build_model(arch: str, config: Mapping[str, Any] | None = None) -> nn.Module:
    try:
        spec = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(sorted(ARCHITECTURES))})") from None
    config = dict(config or {})
    if "aux_inputs" in config:
        config["aux_inputs"] = tuple(config["aux_inputs"])
    return spec.builder(**config)
