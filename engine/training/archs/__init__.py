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
from .kpcn import direct_denoiser, kpcn, kprcan, kprcn
from .rcan import RCAN
from .restormer import build_restormer


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
    # Document restoration (seed 004): transposed attention, gated-Dconv FFN; see archs/restormer.py.
    "restormer": ArchSpec(
        build_restormer,
        "Restormer: transposed (channel) attention + gated-Dconv FFN in a 4-level encoder-decoder",
        {"size": "tiny", "channels": 1, "dim": 4, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
         "heads": [1, 1, 1, 1]},
    ),
    # Render denoisers (seed 001): per-pixel kernels applied to the noisy radiance; see archs/kpcn.py.
    "kpcn": ArchSpec(kpcn, "KPCN: 5x5 conv stack predicting per-pixel kernels (render denoising, AOVs)",
                     {"features": 4, "blocks": 1}),
    "kprcn": ArchSpec(kprcn, "KPRCN: KPCN with residual blocks", {"features": 4, "blocks": 1}),
    "kprcan": ArchSpec(kprcan, "KPRCAN: KPCN with residual channel-attention blocks", {"features": 4, "blocks": 1}),
    "kp-direct": ArchSpec(direct_denoiser, "Direct-prediction render denoiser (KPRCAN body, no kernels)",
                          {"features": 4, "blocks": 1}),
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
