"""Pieces shared by the architectures: how role-named inputs become one tensor, and the skip connections.

Every architecture module is a plain ``nn.Module`` (no I/O) that states its ONNX contract as attributes:
``input_roles`` (the order of ``forward``'s arguments, named as in engine/models/manifest.py), ``scale``,
``channels``, ``alignment`` (H and W must be multiples of it) and ``overlap`` (context pixels a tile needs).
``noise_level`` arrives as (N, 1, 1, 1) in [0, 1] units and is broadcast to a constant map channel.
"""

from __future__ import annotations

import torch
from torch import nn

#: Channels of each auxiliary render buffer (AOV) when an architecture takes them as extra inputs.
AOV_CHANNELS = {"albedo": 3, "normal": 3, "depth": 1}


def input_roles(noise_level_input: bool, aux_inputs: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [name for name in aux_inputs if name not in AOV_CHANNELS]
    if unknown:
        raise ValueError(f"unknown auxiliary inputs {unknown} (known: {', '.join(AOV_CHANNELS)})")
    return ("color",) + (("noise_level",) if noise_level_input else ()) + tuple(aux_inputs)


def extra_channels(noise_level_input: bool, aux_inputs: tuple[str, ...]) -> int:
    return int(noise_level_input) + sum(AOV_CHANNELS[name] for name in aux_inputs)


def assemble(roles: tuple[str, ...], inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Concatenate the inputs along channels, the noise level broadcast to a map of the colour's size."""
    if len(inputs) != len(roles):
        raise TypeError(f"expected inputs {roles}, got {len(inputs)} tensors")
    color = inputs[0]
    parts = [color]
    for role, tensor in zip(roles[1:], inputs[1:], strict=True):
        if role == "noise_level":
            # Multiplying by ones (rather than expand) keeps H and W symbolic in the ONNX graph.
            parts.append(tensor.reshape(-1, 1, 1, 1).to(color) * torch.ones_like(color[:, :1]))
        else:
            parts.append(tensor.to(color))
    return torch.cat(parts, dim=1) if len(parts) > 1 else color


def round_up(value: int, multiple: int = 8) -> int:
    return -(-value // multiple) * multiple


class Upsampler(nn.Sequential):
    """Sub-pixel convolution upsampling (EDSR/RCAN): x2 and x4 as stages of x2, x3 in one stage."""

    def __init__(self, scale: int, features: int) -> None:
        layers: list[nn.Module] = []
        if scale in (2, 4, 8):
            for _ in range({2: 1, 4: 2, 8: 3}[scale]):
                layers += [nn.Conv2d(features, 4 * features, 3, padding=1), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [nn.Conv2d(features, 9 * features, 3, padding=1), nn.PixelShuffle(3)]
        elif scale != 1:
            raise ValueError(f"unsupported scale {scale} (1, 2, 3, 4 or 8)")
        super().__init__(*layers)


def image_skip(color: torch.Tensor, scale: int) -> torch.Tensor:
    """The input brought to the output size (bicubic): the network then only learns the residual detail over
    bicubic, so even a short CPU training starts from the bicubic baseline instead of below it. ONNX Resize
    (cubic) matches torch here within 1e-5 (checked by every export's parity check)."""
    if scale == 1:
        return color
    return nn.functional.interpolate(color, scale_factor=scale, mode="bicubic", align_corners=False)
