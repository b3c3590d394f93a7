"""The image-specific network of ZSSR: ``depth`` 3x3 convolutions, ReLU between, residual over the input.

The input is the (bicubic) interpolated LR image at the output size; the net learns the residual to the HR
father. As in the reference: convolutions without biases, weights drawn from a normal of variance
``init_variance / fan_in``, which keeps the initial residual near zero so training starts from the
interpolation. (With biases and this small init, Adam's first bias steps outweigh the tiny activations and
drove every ReLU dead: the net then never left the bicubic result.)
"""

from __future__ import annotations

import math
from typing import Any


def build_net(channels: int, width: int = 64, depth: int = 8, init_variance: float = 0.1) -> Any:
    import torch
    from torch import nn

    class ZssrNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            sizes = [channels] + [width] * (depth - 1) + [channels]
            pairs = zip(sizes[:-1], sizes[1:], strict=True)
            self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1, bias=False) for a, b in pairs)
            for conv in self.convs:
                fan_in = conv.in_channels * 9
                nn.init.normal_(conv.weight, 0.0, math.sqrt(init_variance / fan_in))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = x
            last = len(self.convs) - 1
            for i, conv in enumerate(self.convs):
                y = conv(y)
                if i < last:
                    y = torch.relu(y)
            return x + y.to(x.dtype)

    return ZssrNet()


def flops_per_pixel(channels: int, width: int = 64, depth: int = 8) -> int:
    """Multiply-adds x 2 of one forward pass per output pixel (convolutions only)."""
    sizes = [channels] + [width] * (depth - 1) + [channels]
    return sum(2 * 9 * a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
