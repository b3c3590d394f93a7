"""The explicit registry of trainable architectures: ``ARCHITECTURES[name]`` is an :class:`ArchSpec`.

Importing this package imports torch (training and export code only). To add an architecture, write one
module with a plain ``nn.Module`` that follows the contract in ``common.py`` (``input_roles``, ``scale``,
``channels``, ``alignment``, ``overlap``) and add one entry below: an :class:`ArchSpec` (spec.py) with a tiny
configuration for tests and, if it needs them, the hooks for growing, companion exports and partial training.
The trainer and the exporter use only the spec, never the architecture's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from .dncnn import DnCNN
from .edsr import EDSR
from .kpcn import SPECS as KPCN_SPECS
from .kpcn_temporal import freeze_frame_model, kprcan_temporal
from .rawunet import RawUNet
from .rcan import RCAN
from .restormer import build_restormer
from .spec import ArchSpec

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
    # Raw (Bayer mosaic) denoising: packed RGGB planes + a Poisson-Gaussian noise map; see archs/rawunet.py.
    "raw-unet": ArchSpec(
        RawUNet, "U-Net on the packed Bayer mosaic with a Poisson-Gaussian noise map (Brooks et al. 2019)",
        {"features": 4, "blocks": 1},
    ),
    # Document restoration (seed 004): transposed attention, gated-Dconv FFN; see archs/restormer.py.
    "restormer": ArchSpec(
        build_restormer,
        "Restormer: transposed (channel) attention + gated-Dconv FFN in a 4-level encoder-decoder",
        {"size": "tiny", "channels": 1, "dim": 4, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
         "heads": [1, 1, 1, 1]},
    ),
    # Render denoisers (seed 001): per-pixel kernels applied to the noisy radiance; see archs/kpcn/.
    **KPCN_SPECS,
    # Temporal render denoiser (issue 44): the per-frame KPRCAN plus a kernel on the warped previous output, one
    # softmax over both; see archs/kpcn_temporal.py (trained by engine/training/temporal.py).
    "kprcan-temporal": ArchSpec(
        kprcan_temporal,
        "KPRCAN with a history kernel on the warped previous output (one softmax over both): shots",
        {"features": 4, "blocks": 1, "guide": ["albedo", "normal", "color"], "refine": True},
        parts={"temporal": freeze_frame_model},
    ),
}


def register_architecture(name: str, spec: ArchSpec) -> None:
    """For other packages' architectures (KPCN, Restormer): call from their own code, never at import time."""
    ARCHITECTURES[name] = spec


def arch_spec(arch: str) -> ArchSpec:
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(sorted(ARCHITECTURES))})") from None


def build_model(arch: str, config: Mapping[str, Any] | None = None) -> nn.Module:
    spec = arch_spec(arch)
    config = dict(config or {})
    if "aux_inputs" in config:
        config["aux_inputs"] = tuple(config["aux_inputs"])
    return spec.builder(**config)
