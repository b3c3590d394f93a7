"""RCAN (Zhang et al. 2018): residual groups of residual channel-attention blocks (RCAB). Channel attention
(squeeze-and-excitation: global average pool, bottleneck, sigmoid gate) re-weights feature channels, which
seed 001 found best among its render denoisers (KPRCAN). Long and short skips; pixel-shuffle tail for SR."""

from __future__ import annotations

import torch
from torch import nn

from .common import Upsampler, assemble, extra_channels, image_skip, input_roles, round_up


class ChannelAttention(nn.Module):
    def __init__(self, features: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, features // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(features, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, features, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class RCAB(nn.Module):
    def __init__(self, features: int, reduction: int, kernel_size: int = 3, res_scale: float = 1.0) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.body = nn.Sequential(
            nn.Conv2d(features, features, kernel_size, padding=pad),
            nn.ReLU(inplace=True),
            nn.Conv2d(features, features, kernel_size, padding=pad),
            ChannelAttention(features, reduction),
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class ResidualGroup(nn.Module):
    def __init__(self, features: int, blocks: int, reduction: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *[RCAB(features, reduction, kernel_size) for _ in range(blocks)],
            nn.Conv2d(features, features, kernel_size, padding=kernel_size // 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class RCAN(nn.Module):
    def __init__(
        self,
        channels: int = 3,
        features: int = 64,
        groups: int = 10,
        blocks: int = 20,
        reduction: int = 16,
        scale: int = 2,
        kernel_size: int = 3,
        noise_level_input: bool = False,
        aux_inputs: tuple[str, ...] = (),
        global_skip: bool = True,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.scale = scale
        self.input_roles = input_roles(noise_level_input, tuple(aux_inputs))
        self.alignment = 1
        # Channel attention pools globally, so the true receptive field is the whole tile; the convolutions'
        # reach is what the tiler's overlap must cover to avoid visible seams.
        self.overlap = round_up((groups * (2 * blocks + 1) + 3) * (kernel_size // 2) + 2)
        self.global_skip = global_skip
        pad = kernel_size // 2
        in_ch = channels + extra_channels(noise_level_input, tuple(aux_inputs))
        self.head = nn.Conv2d(in_ch, features, kernel_size, padding=pad)
        self.body = nn.Sequential(
            *[ResidualGroup(features, blocks, reduction, kernel_size) for _ in range(groups)],
            nn.Conv2d(features, features, kernel_size, padding=pad),
        )
        self.tail = nn.Sequential(Upsampler(scale, features), nn.Conv2d(features, channels, kernel_size, padding=pad))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        color = inputs[0]
        head = self.head(assemble(self.input_roles, inputs))
        out = self.tail(head + self.body(head))
        return out + image_skip(color, self.scale) if self.global_skip else out
