"""EDSR (Lim et al. 2017): head convolution, a body of residual blocks without batch normalisation, a long
skip over the body, and a pixel-shuffle tail for super-resolution (scale 1 makes it a direct-prediction
restoration network). ``res_scale`` (0.1 in the paper's large model) keeps deep bodies stable."""

from __future__ import annotations

import torch
from torch import nn

from .common import Upsampler, assemble, extra_channels, image_skip, input_roles, round_up


class ResBlock(nn.Module):
    def __init__(self, features: int, res_scale: float = 1.0, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.body = nn.Sequential(
            nn.Conv2d(features, features, kernel_size, padding=pad),
            nn.ReLU(inplace=True),
            nn.Conv2d(features, features, kernel_size, padding=pad),
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class EDSR(nn.Module):
    def __init__(
        self,
        channels: int = 3,
        features: int = 64,
        blocks: int = 16,
        scale: int = 2,
        res_scale: float = 1.0,
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
        self.overlap = round_up((2 * blocks + 3) * (kernel_size // 2) + 2)
        self.global_skip = global_skip
        pad = kernel_size // 2
        in_ch = channels + extra_channels(noise_level_input, tuple(aux_inputs))
        self.head = nn.Conv2d(in_ch, features, kernel_size, padding=pad)
        self.body = nn.Sequential(
            *[ResBlock(features, res_scale, kernel_size) for _ in range(blocks)],
            nn.Conv2d(features, features, kernel_size, padding=pad),
        )
        self.tail = nn.Sequential(Upsampler(scale, features), nn.Conv2d(features, channels, kernel_size, padding=pad))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        color = inputs[0]
        head = self.head(assemble(self.input_roles, inputs))
        out = self.tail(head + self.body(head))
        return out + image_skip(color, self.scale) if self.global_skip else out
