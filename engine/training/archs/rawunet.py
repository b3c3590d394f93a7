"""A small U-Net for raw (Bayer) denoising, after Brooks et al. 2019: the packed mosaic (4 planes R, G1, G2, B
at half size, engine/raw/mosaic.py) and its Poisson-Gaussian noise-level map (4 planes, the standard deviation
per photosite) in, the denoised planes out (a residual over the noisy input).

Three levels (full, 1/2, 1/4 of the packed size) with residual blocks; skip connections are added, not
concatenated, to keep it cheap enough to train on a CPU. ONNX contract: ``input_roles`` ("color", "noise_map"),
``channels`` 4, ``scale`` 1, ``alignment`` 4 (two 2x downsamplings), ``overlap`` in packed pixels.
"""

from __future__ import annotations

import torch
from torch import nn

from .edsr import ResBlock


class RawUNet(nn.Module):
    def __init__(self, features: int = 32, blocks: int = 1) -> None:
        super().__init__()
        self.input_roles = ("color", "noise_map")
        self.channels, self.scale, self.alignment = 4, 1, 4
        f = features
        # Receptive field: 3x3 convs at three scales; 32 packed pixels (64 photosites) of context covers it.
        self.overlap = 32

        def stage(width: int) -> nn.Sequential:
            return nn.Sequential(*[ResBlock(width) for _ in range(blocks)])

        self.head = nn.Conv2d(8, f, 3, padding=1)
        self.enc0 = stage(f)
        self.down1 = nn.Sequential(nn.Conv2d(f, 2 * f, 2, stride=2), nn.ReLU(inplace=True))
        self.enc1 = stage(2 * f)
        self.down2 = nn.Sequential(nn.Conv2d(2 * f, 4 * f, 2, stride=2), nn.ReLU(inplace=True))
        self.bottom = nn.Sequential(stage(4 * f), stage(4 * f))
        self.up2 = nn.Sequential(nn.Conv2d(4 * f, 8 * f, 1), nn.PixelShuffle(2))
        self.dec1 = stage(2 * f)
        self.up1 = nn.Sequential(nn.Conv2d(2 * f, 4 * f, 1), nn.PixelShuffle(2))
        self.dec0 = stage(f)
        self.tail = nn.Conv2d(f, 4, 3, padding=1)

    def forward(self, color: torch.Tensor, noise_map: torch.Tensor) -> torch.Tensor:
        x0 = self.enc0(self.head(torch.cat([color, noise_map.to(color)], dim=1)))
        x1 = self.enc1(self.down1(x0))
        x2 = self.bottom(self.down2(x1))
        y1 = self.dec1(self.up2(x2) + x1)
        y0 = self.dec0(self.up1(y1) + x0)
        return color + self.tail(y0)
