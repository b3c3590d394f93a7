"""Kernel operations of the kernel-prediction render denoisers: applying per-pixel kernels, the softmax over
their taps, the cross-bilateral guide penalty, box sums and the pixel-shuffled tail.

Each is written twice where that matters: PyTorch's path for training (``unfold``, whose backward is one
``fold``) and the ONNX graph's (plain Slice / Mul / Add / Conv, which ONNX Runtime runs fast); the two compute the
same values (tests/test_render_kpcn.py checks them against each other). Nothing here knows the model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: How the ONNX graph gathers a kernel's taps. "slices" (default, the form of the shipped models): one Slice, Mul
#: and Add per tap (366 Slice and 317 Mul nodes in render-kprcan-aov). "conv": one depthwise convolution with
#: one-hot weights per kernel scale gives every tap of every channel at once (im2col as a Conv), then one Mul and
#: one grouped 1x1 convolution take the weighted sum (3,222 -> 874 nodes; the same outputs within 1.6e-6). Measured
#: 2026-12-07 on the shared 2-core CPU: ONNX Runtime's profiler puts its kernel time at 0.76x on a real 1024 px
#: tile, but through the app's restore job a 1080p frame takes the same time (12.9 / 12.8 s slices, 13.2 / 13.6 s
#: conv, interleaved, load 2.3; peak RSS 1.89 -> 1.84 GB): ONNX Runtime runs a grouped convolution with several
#: outputs per group as im2col + GEMM, so the copies come back and the one-hot weights waste 25x the MACs. Kept
#: as an option (tests/test_render_kpcn.py checks both against unfold). On the CPU the app no longer runs this part
#: of the graph at all: engine/kernel_pipeline.py applies the kernels in native code (0.3x the whole graph's time).
ONNX_TAPS = "slices"


class BoxSum(nn.Module):
    """Sum over a size x size window as two depthwise convolutions (size x 1, then 1 x size): the same size as
    the input with zeros outside (``same``), or only where the window fits.

    Ten times faster on a CPU than ``avg_pool2d`` forward and backward (which loops over the window), with the
    same values. The ones are a buffer, not saved in checkpoints, so that both ONNX exporters see a constant.
    """

    def __init__(self, channels: int, size: int, same: bool = True) -> None:
        super().__init__()
        self.channels = channels
        self.padding = size // 2 if same else 0
        self.register_buffer("column", torch.ones(channels, 1, size, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.column, padding=(self.padding, 0), groups=self.channels)
        return F.conv2d(x, self.column.transpose(2, 3), padding=(0, self.padding), groups=self.channels)



def shift_taps(size: int, dilation: int) -> list[tuple[int, int]]:
    """(dy, dx) offsets of a size x size kernel with ``dilation``, row-major (the order of the weights)."""
    radius = size // 2
    return [(dy * dilation, dx * dilation) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]


def grid_layout(grids: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The taps ``(signal index, dy, dx)`` of square kernels ``(signal index, size, dilation)``, in weight order."""
    return [(index, dy, dx) for index, size, dilation in grids for dy, dx in shift_taps(size, dilation)]


def _unfolded(signal: torch.Tensor, size: int, dilation: int) -> torch.Tensor:
    """Every pixel's size x size dilated neighbourhood, (N, C, size^2, H, W) in ``shift_taps`` order; edges
    replicated (PyTorch's path: ``unfold``, whose backward is one ``fold``)."""
    n, channels, height, width = signal.shape
    reach = dilation * (size // 2)
    padded = F.pad(signal, (reach,) * 4, mode="replicate")
    return F.unfold(padded, size, dilation=dilation).view(n, channels, size * size, height, width)


def _shifted(padded: torch.Tensor, reach: int, dy: int, dx: int) -> torch.Tensor:
    """The tap (dy, dx) of every pixel, from a signal replicate-padded by ``reach`` (the ONNX graph's path: a
    plain Slice)."""
    height, width = padded.shape[-2] - 2 * reach, padded.shape[-1] - 2 * reach
    return padded[:, :, reach + dy : reach + dy + height, reach + dx : reach + dx + width]


def apply_kernels(
    signals: list[torch.Tensor], weights: torch.Tensor, grids: list[tuple[int, int, int]]
) -> torch.Tensor:
    """Per-pixel filtering: ``signals[s]`` is (N, C, H, W); ``grids`` lists square kernels ``(signal index, size,
    dilation)`` whose taps (``grid_layout``) are the K weight channels of ``weights`` (N, K, H, W), in order.
    Edges are replicated.

    In PyTorch the taps are gathered with ``unfold``: its backward is one ``fold``, where a sum of shifted
    slices allocates and zero-fills a padded gradient per tap (a third of a CPU training step went to that). The
    ONNX graph uses the sum of shifted slices, which exports to plain Slice/Mul/Add; both compute the same sums.
    """
    if torch.onnx.is_in_onnx_export():
        if ONNX_TAPS == "conv":
            return _apply_conv(signals, weights, grids)
        return _apply_slices(signals, weights, grid_layout(grids))
    return _apply_unfold(signals, weights, grids)


def _one_hot_taps(channels: int, size: int) -> torch.Tensor:
    """Depthwise convolution weights (channels * size^2, 1, size, size) whose output channel ``c * size^2 + k``
    copies channel c's tap k (``shift_taps`` order): im2col as one Conv. Built in numpy so that the ONNX exporter
    sees a constant, not the ops that would make it."""
    taps = size * size
    bank = np.zeros((channels * taps, 1, size, size), np.float32)
    for c in range(channels):
        for k in range(taps):
            bank[c * taps + k, 0, k // size, k % size] = 1.0
    return torch.from_numpy(bank)


def _gathered(signal: torch.Tensor, size: int, dilation: int) -> torch.Tensor:
    """Every pixel's size x size dilated neighbourhood, (N, C, size^2, H, W) in ``shift_taps`` order, edges
    replicated: the ONNX graph's form of ``_unfolded`` (Pad, one depthwise Conv, a Reshape)."""
    channels = signal.shape[1]
    reach = dilation * (size // 2)
    padded = F.pad(signal, (reach,) * 4, mode="replicate")
    bank = _one_hot_taps(int(channels), size).to(signal.dtype)
    taps = F.conv2d(padded, bank, dilation=dilation, groups=int(channels))
    return taps.unflatten(1, (int(channels), size * size))


def _apply_conv(
    signals: list[torch.Tensor], weights: torch.Tensor, grids: list[tuple[int, int, int]]
) -> torch.Tensor:
    out, start = None, 0
    for index, size, dilation in grids:
        taps = size * size
        channels = int(signals[index].shape[1])
        products = _gathered(signals[index], size, dilation) * weights[:, None, start : start + taps]
        ones = torch.from_numpy(np.ones((channels, taps, 1, 1), np.float32)).to(weights.dtype)
        term = F.conv2d(products.flatten(1, 2), ones, groups=channels)  # the sum over taps, per channel
        out = term if out is None else out + term
        start += taps
    return out


def _apply_unfold(
    signals: list[torch.Tensor], weights: torch.Tensor, grids: list[tuple[int, int, int]]
) -> torch.Tensor:
    out, start = None, 0
    for index, size, dilation in grids:
        term = (_unfolded(signals[index], size, dilation) * weights[:, None, start : start + size * size]).sum(dim=2)
        out = term if out is None else out + term
        start += size * size
    return out


#: The ONNX graph's softmax takes the reference tap's logit from every logit and caps the differences here, so
#: exp never overflows: 75 taps at e^80 sum to 4e36, below float32's 3.4e38 (a cap that bites means one tap
#: outweighs the reference by e^80, i.e. all of a kernel's weight in the taps at the cap).
SOFTMAX_CAP = 80.0


def softmax_channels(logits: torch.Tensor, reference: int | None = None,
                     ones: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over dim 1. The ONNX graph spells it out: ONNX Runtime's CPU Softmax over a non-last axis
    transposes, and took 42% of the whole render model's time on a 256 px image. With ``reference`` (the index of
    a channel whose logit no other exceeds by much: a kernel's centre tap, whose guide penalty is zero) the graph
    subtracts that channel's logit instead of the maximum over channels, which always leaves one term of exp(0) = 1
    in the sum (no underflow to 0 / 0), and takes the sum as a 1x1 convolution with ``ones`` (a (1, C, 1, 1)
    constant; ONNX export cannot build it from a traced shape), then multiplies by its reciprocal. ReduceMax and
    ReduceSum over the channel axis were 12% of render-kprcan-aov's time on a 512 px input; this form of the
    softmax alone is 9x faster in ONNX Runtime (75 channels, 512 px, one thread, 0.26 -> 0.03 s; the whole graph
    0.89x at 1,024 px, bench/results/onnx_speed.md). Without ``reference`` and ``ones``: the maximum, as before."""
    if not torch.onnx.is_in_onnx_export():
        return torch.softmax(logits, dim=1)
    if reference is None or ones is None:
        weights = torch.exp(logits - logits.amax(dim=1, keepdim=True))
        return weights / weights.sum(dim=1, keepdim=True)
    relative = (logits - logits[:, reference : reference + 1]).clamp(max=SOFTMAX_CAP)
    weights = torch.exp(relative)
    return weights * torch.reciprocal(F.conv2d(weights, ones))


def guide_penalty(guide: torch.Tensor, centre: torch.Tensor, strength: torch.Tensor, size: int,
                  dilation: int, ones: torch.Tensor) -> torch.Tensor:
    """Sum over channels of ``strength * (guide at the tap - centre)^2`` for every tap of a size x size dilated
    kernel: (N, size * size, H, W) in ``shift_taps`` order; ``strength`` is per channel (N, C, H, W); edges
    replicated; ``ones`` is a (size^2, C, 1, 1) constant. PyTorch gathers the taps with ``unfold`` (fast
    backward); the ONNX graph uses shifted slices, summed over channels by one grouped 1x1 convolution."""
    if not torch.onnx.is_in_onnx_export():
        return (strength[:, :, None] * (_unfolded(guide, size, dilation) - centre[:, :, None]) ** 2).sum(dim=1)
    if ONNX_TAPS == "conv":
        # All taps at once (N, C, taps, H, W); the sum over channels as one 1x1 convolution whose weights pick
        # channel c's tap k for output k.
        channels, taps = int(guide.shape[1]), size * size
        diff = _gathered(guide, size, dilation) - centre[:, :, None]
        terms = (strength[:, :, None] * (diff * diff)).flatten(1, 2)
        pick = np.zeros((taps, channels * taps, 1, 1), np.float32)
        for c in range(channels):
            pick[np.arange(taps), c * taps + np.arange(taps)] = 1.0
        return F.conv2d(terms, torch.from_numpy(pick).to(terms.dtype))
    # Per tap: shifted slice minus centre, squared, weighted; the channel sums as one grouped 1x1 convolution
    # (ONNX Runtime's ReduceSum over the channel axis, once per tap, cost more than the rest of the penalty).
    reach = dilation * (size // 2)
    padded = F.pad(guide, (reach,) * 4, mode="replicate")
    taps = shift_taps(size, dilation)
    terms = []
    for dy, dx in taps:
        diff = _shifted(padded, reach, dy, dx) - centre
        terms.append(strength * (diff * diff))
    return F.conv2d(torch.cat(terms, dim=1), ones, groups=len(taps))


def _apply_slices(
    signals: list[torch.Tensor], weights: torch.Tensor, layout: list[tuple[int, int, int]]
) -> torch.Tensor:
    reach = max(max(abs(dy), abs(dx)) for _, dy, dx in layout)
    padded = [F.pad(s, (reach, reach, reach, reach), mode="replicate") for s in signals]
    out = None
    for k, (index, dy, dx) in enumerate(layout):
        term = _shifted(padded[index], reach, dy, dx) * weights[:, k : k + 1]
        out = term if out is None else out + term
    return out


def shuffled_tail(tail: nn.Conv2d, x: torch.Tensor, factor: int) -> torch.Tensor:
    """``pixel_shuffle(tail(x), factor)`` for a 1x1 ``tail``. The ONNX graph computes the same as one transposed
    convolution of stride ``factor`` (each input pixel writes its factor x factor output pixels), with a channel of
    ones whose weights are the tail's per-sub-pixel bias: ONNX Runtime's DepthToSpace over the render models' 112
    output channels took 10% of their time (on a 1,024 px image 0.32 s for the 1x1 convolution and DepthToSpace,
    0.06 s for this; the same values)."""
    if not torch.onnx.is_in_onnx_export():
        return F.pixel_shuffle(tail(x), factor)
    outputs = tail.out_channels // factor**2
    # tail channel c * factor^2 + i * factor + j is output channel c at sub-pixel (i, j), as in pixel_shuffle
    weight = tail.weight[:, :, 0, 0].reshape(outputs, factor, factor, -1).permute(3, 0, 1, 2)
    bias = tail.bias.reshape(1, outputs, factor, factor)
    ones = torch.ones_like(x[:, :1])
    return F.conv_transpose2d(torch.cat([x, ones], dim=1), torch.cat([weight, bias], dim=0), stride=factor)
