"""Kernel-prediction render denoisers (seed 001): KPCN, KPRCN, KPRCAN, and the direct-prediction baseline.

KPCN (Bako et al. 2017) predicts, for every pixel, a normalised filter kernel and applies it to the noisy
radiance; the output is a weighted average of noisy values, so it cannot invent energy or explode the way
direct prediction did in the seed's experiments. The three variants share one body and differ only in its
blocks, with equal depth so that their receptive fields match:

- ``block="plain"``: KPCN, a VGG-like stack of 5x5 convolutions with ReLU, no batch normalisation;
- ``block="residual"``: KPRCN, residual blocks of two 5x5 convolutions;
- ``block="rcab"``: KPRCAN, residual blocks with channel attention (squeeze-and-excitation). The attention
  pools over a local 9x9 window instead of the whole image, so a tile's result does not depend on the tile;
- ``mode="direct"``: the same body predicting the denoised colour (a residual on the input), the baseline.

Kernels: ``kernel="multiscale"`` predicts 5x5 taps at dilations 1, 2 and 4 (the coarser ones on a box-
prefiltered signal), 75 weights in one softmax: a 23x23 footprint for a fraction of the cost of 529 taps.
``scales=4`` adds taps at dilation 8 (47x47, 100 weights), for the blotchy low-frequency noise that a smaller
footprint leaves in flat regions at low sample counts. ``filter_space="linear"`` applies the kernels to the linear
radiance (exp - 1 of the log1p input) and returns log1p of the result, instead of averaging log values.
``context_blocks=N`` adds a context branch: N residual blocks on the head's features pooled to 1/8 resolution,
upsampled and added back before the body (wide context for little work; alignment 8, a larger tile overlap).
``correction=True`` adds a direct per-pixel term (log space, from three more tail outputs that start at zero) to
the filtered colour: the kernels' weighted average can only pick among the noisy values in its footprint, and a
predicted correction might lift what such averages leave at low sample counts. In a 3,000-step CPU fine-tune it
stayed tiny and gained nothing (recipes/render_kprcan_aov_correction.toml); off by default.
``refine=True`` filters the result once more with a 5x5 kernel (per-pixel logits from the tail) whose taps are
also steered by their distance to the pixel in the *filtered* colour, albedo and normal: after the first pass the
colour is clean enough to show the edges that a noisy colour guide hides (recipes/render_kprcan_aov_refine.toml).
``kernel=<odd int>`` predicts one dense kernel of that size (KPCN's 21). Kernels are applied as sums of
shifted slices, which export to ONNX as plain Slice/Mul/Add (no unfold).

Inputs (ONNX contract of engine/models/manifest.py): ``color`` (N, 3, H, W) in log1p space, and the AOVs
named in ``aux_inputs``: ``albedo`` [0, 1], ``normal`` [-1, 1], ``depth`` [0, 1]. The AOVs steer the kernels
(where edges and textures are); the kernels filter the noisy colour itself. ``demodulate=True`` instead filters
colour / (albedo + 0.02) and multiplies the albedo back (KPCN's diffuse trick); in our short CPU trainings it
did much worse (black-albedo emitters and glass make the demodulated signal explode at edges), so it is off by
default. ``demodulate="mix"`` predicts both: one softmax over twice the taps, half on the colour and half on
the demodulated signal (remodulated by the pixel's own albedo); the network decides per pixel how much of its
weight goes to each, so textures can be filtered as flat shading while emitters and glass keep colour taps.
``guide=("albedo", "normal", "color")`` adds a cross-bilateral term to every tap's logit: minus a per-pixel strength
(predicted, >= 0, one per guide and kernel scale) times the squared distance between the pixel's buffer value
and the tap's (box-prefiltered like the tap's colour). A kernel then avoids neighbours of another albedo or
normal at full resolution, which the half-resolution body's linear tail cannot express for a 1-2 pixel texture.
``color_guide_centre="box"`` compares a colour tap (box-prefiltered at its scale) with the box mean around the
pixel at the same scale instead of the pixel's own noisy colour, like a patch distance: at 4 spp the centre
pixel's noise otherwise swamps the distance, and a model without buffers learnt to give its colour guide almost
no strength (0.01-0.2).
Output: (N, 3, H, W) in log1p space.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import AOV_CHANNELS, round_up

#: Added to the albedo before demodulating, so black albedo (sky, glass) stays finite and smooth.
ALBEDO_EPS = 0.02
MULTISCALE_TAPS = 5
#: Logit offset of the coarsest scale's taps when a model grows a scale (``grow_model``): they copy the next
#: finer scale's logits minus this much, so they start with e^-2 = 14% of that scale's weight.
SCALE_START_OFFSET = -2.0
#: Logit offset of the demodulated taps when a plain model grows into ``demodulate="mix"`` (``grow_model``):
#: they start with 27% of the weight. Not near zero: Adam moves a logit by about the learning rate per step, so
#: from -6 (0.25%) the share had only reached 0.4-0.8% after 500 steps.
MIX_START_OFFSET = -1.0
#: Guide strength = softplus(GUIDE_GAIN * tail output): the gain lets Adam (steps of about the learning rate)
#: move the strengths over their useful range (0 .. ~100) within a few thousand steps.
GUIDE_GAIN = 10.0
#: Guide strength of a model grown from one without guides (``grow_model``): gentle, so it starts near the old.
GUIDE_START = 0.1
#: Channels of each guide: an AOV, or the noisy colour itself (log1p; a bilateral range term, which can keep
#: an emitter's light out of the pixels beside it when the buffers show no edge there, as in the Cornell box).
GUIDE_CHANNELS = dict(AOV_CHANNELS, color=3)
#: Downsampling of the context branch (``context_blocks``) relative to the body: 1/8 of full resolution.
CONTEXT_FACTOR = 4
#: Local window of the channel attention's pooling (tile-independent, unlike global pooling).
ATTENTION_WINDOW = 9
#: The refinement kernel (``refine``): 5x5 taps at dilation 1.
REFINE_TAPS = 5
#: Refinement strengths are exp(REFINE_GAIN * tail output) (multiplicative steps: their useful range spans
#: 1 .. 1000), capped at e^REFINE_MAX_LOG.
REFINE_GAIN = 10.0
REFINE_MAX_LOG = 12.0
#: A model grown a refinement starts as the fixed bilateral that measured best on validation at 4 spp
#: (``grow_model``): spatial sigma 1.5 px; strengths per guide (log1p colour, albedo, normal).
REFINE_START_SIGMA = 1.5
REFINE_START_STRENGTH = {"color": 300.0, "albedo": 300.0, "normal": 10.0}


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


class LocalChannelAttention(nn.Module):
    def __init__(self, features: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, features // reduction)
        self.squeeze = nn.Conv2d(features, hidden, 1)
        self.excite = nn.Conv2d(hidden, features, 1)
        self.window_sum = BoxSum(features, ATTENTION_WINDOW)
        self.window_count = BoxSum(1, ATTENTION_WINDOW)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The mean over the window's pixels inside the image (avg_pool2d with count_include_pad=False).
        pooled = self.window_sum(x) / self.window_count(torch.ones_like(x[:, :1]))
        return x * torch.sigmoid(self.excite(F.relu(self.squeeze(pooled))))


class Block(nn.Module):
    """Two 5x5 convolutions: plain (KPCN), residual (KPRCN) or residual with channel attention (KPRCAN)."""

    def __init__(self, features: int, kind: str, reduction: int, kernel_size: int) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.kind = kind
        self.conv1 = nn.Conv2d(features, features, kernel_size, padding=pad)
        self.conv2 = nn.Conv2d(features, features, kernel_size, padding=pad)
        self.attention = LocalChannelAttention(features, reduction) if kind == "rcab" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        if self.attention is not None:
            y = self.attention(y)
        return F.relu(y) if self.kind == "plain" else x + y


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
        return _apply_slices(signals, weights, grid_layout(grids))
    return _apply_unfold(signals, weights, grids)


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


class KernelPredictionDenoiser(nn.Module):
    def __init__(
        self,
        aux_inputs: tuple[str, ...] = ("albedo", "normal"),
        features: int = 32,
        blocks: int = 4,
        block: str = "rcab",
        kernel: str | int = "multiscale",
        mode: str = "kernel",
        reduction: int = 4,
        conv_size: int = 5,
        demodulate: bool | str = False,
        channels: int = 3,
        unshuffle: int = 2,
        guide: tuple[str, ...] = (),
        scales: int = 3,
        filter_space: str = "log",
        context_blocks: int = 0,
        correction: bool = False,
        color_guide_centre: str = "pixel",
        refine: bool = False,
        refine_features: int = 0,
    ) -> None:
        super().__init__()
        if block not in ("plain", "residual", "rcab"):
            raise ValueError(f"block must be plain, residual or rcab, got {block!r}")
        if mode not in ("kernel", "direct"):
            raise ValueError(f"mode must be kernel or direct, got {mode!r}")
        unknown = [name for name in aux_inputs if name not in AOV_CHANNELS]
        if unknown:
            raise ValueError(f"unknown auxiliary inputs {unknown}")
        self.channels = channels
        self.scale = 1
        self.aux_inputs = tuple(aux_inputs)
        self.input_roles = ("color",) + self.aux_inputs
        self.mode = mode
        if demodulate not in (False, True, "mix"):
            raise ValueError(f"demodulate must be false, true or \"mix\", got {demodulate!r}")
        self.demodulate = demodulate if ("albedo" in self.aux_inputs and mode == "kernel") else False
        if filter_space not in ("log", "linear") or (filter_space == "linear" and self.demodulate):
            raise ValueError(f"filter_space must be log or linear (linear without demodulation), got {filter_space!r}")
        self.filter_space = filter_space
        in_channels = 3 * (2 if self.demodulate else 1) + sum(AOV_CHANNELS[name] for name in self.aux_inputs)
        pad = conv_size // 2
        # The body runs at 1/unshuffle resolution on space-to-depth input: unshuffle**2 times fewer
        # operations, and each 5x5 convolution reaches twice as far in full-resolution pixels.
        self.unshuffle = int(unshuffle)
        self.head = nn.Conv2d(in_channels * self.unshuffle**2, features, conv_size, padding=pad)
        self.body = nn.Sequential(*[Block(features, block, reduction, conv_size) for _ in range(blocks)])
        # Context branch: the head's features average-pooled by CONTEXT_FACTOR, residual blocks there, upsampled
        # and added back before the body through a 1x1 convolution that starts at zero (a new branch changes
        # nothing until it learns). Wide context for a sixteenth of the body's operations per block.
        self.context_blocks = int(context_blocks)
        if self.context_blocks < 0:
            raise ValueError(f"context_blocks must be >= 0, got {context_blocks}")
        self.context = nn.Sequential(*[Block(features, "residual", reduction, conv_size)
                                       for _ in range(self.context_blocks)])
        self.context_out = nn.Conv2d(features, features, 1) if self.context_blocks else None
        if self.context_out is not None:
            nn.init.zeros_(self.context_out.weight)
            nn.init.zeros_(self.context_out.bias)
        if kernel == "multiscale":
            if not 1 <= int(scales) <= 5:
                raise ValueError(f"scales must be 1 to 5, got {scales}")
            dilations = [2**i for i in range(int(scales))]  # 1, 2, 4 (, 8, ...)
            self.grids = [(i, MULTISCALE_TAPS, d) for i, d in enumerate(dilations)]
            self.prefilters = [1] + [2 * d - 1 for d in dilations[1:]]  # box sizes 1, 3, 7 (, 15, ...)
            self.prefilter_sums = nn.ModuleList(BoxSum(3, size, same=False) for size in self.prefilters[1:])
            kernel_reach = dilations[-1] * (MULTISCALE_TAPS // 2) + self.prefilters[-1] // 2
        else:
            size = int(kernel)
            if size < 1 or size % 2 == 0:
                raise ValueError(f"kernel size must be odd, got {size}")
            self.grids = [(0, size, 1)]
            self.prefilters = [1]
            self.prefilter_sums = nn.ModuleList()
            kernel_reach = size // 2
        if self.demodulate == "mix":
            # The same kernels again, on the prefiltered demodulated signal (signal indices after the colour's).
            count = len(self.grids)
            self.grids += [(index + count, size, dilation) for index, size, dilation in self.grids]
            self.prefilters = self.prefilters * 2
        self.layout = grid_layout(self.grids)
        # the pixel's own tap (zero guide penalty): the ONNX graph's softmax reference (softmax_channels)
        self.centre_tap = self.layout.index((0, 0, 0)) if (0, 0, 0) in self.layout else None
        self.register_buffer("softmax_ones", torch.ones(1, len(self.layout), 1, 1), persistent=False)
        self.kernel_desc = kernel
        self.guide = tuple(guide) if mode == "kernel" else ()
        if not set(self.guide) <= {"color", *self.aux_inputs} or len(set(self.guide)) != len(self.guide):
            raise ValueError(f"guide {self.guide} must be distinct names among color and {self.aux_inputs}")
        if color_guide_centre not in ("pixel", "box"):
            raise ValueError(f"color_guide_centre must be pixel or box, got {color_guide_centre!r}")
        self.color_guide_centre = color_guide_centre
        # One strength per guide and kernel scale (the colour scales; "mix" reuses them for its second half).
        self.guide_scales = len(self.prefilter_sums) + 1
        guide_channels = sum(GUIDE_CHANNELS[g] for g in self.guide)
        self.guide_sums = nn.ModuleList(BoxSum(guide_channels, size, same=False)
                                        for size in (self.prefilters[1 : self.guide_scales] if self.guide else ()))
        # A constant of the ONNX graph's channel sums (guide_penalty); not saved in checkpoints.
        if self.guide:
            tap_count = self.grids[0][1] ** 2
            self.register_buffer("guide_ones", torch.ones(tap_count, guide_channels, 1, 1), persistent=False)
        # Direct correction (kernel mode only): the tail's last rows, added in log space after the kernels.
        self.correction = bool(correction) and mode == "kernel"
        outputs = len(self.layout) + len(self.guide) * self.guide_scales if mode == "kernel" else channels
        outputs += channels if self.correction else 0
        # Refinement (kernel mode only): a second, 5x5 kernel on the filtered colour, cross-bilateral on the
        # filtered colour itself and the buffers; its logits and strengths are the tail's last rows.
        self.refine = bool(refine) and mode == "kernel"
        if int(refine_features) and not self.refine:
            raise ValueError("refine_features needs refine = true (a kernel-mode model's refinement)")
        self.refine_only = False  # train_only_refinement
        # three channels each (the ONNX graph repeats each strength over three channels)
        self.refine_guides = ("color",) + tuple(n for n in ("albedo", "normal") if n in self.aux_inputs)
        if self.refine:
            outputs += REFINE_TAPS**2 + len(self.refine_guides)
            refine_channels = sum(GUIDE_CHANNELS[g] for g in self.refine_guides)
            self.register_buffer("refine_ones", torch.ones(REFINE_TAPS**2, refine_channels, 1, 1), persistent=False)
            self.register_buffer("refine_softmax_ones", torch.ones(1, REFINE_TAPS**2, 1, 1), persistent=False)
        # Refinement features: two 3x3 convolutions at full resolution on what the refinement compares (the
        # filtered colour and the buffers), adding to its logits and log-strengths; the last starts at zero.
        self.refine_net = None
        if self.refine and int(refine_features) > 0:
            self.refine_net = nn.Sequential(nn.Conv2d(refine_channels, int(refine_features), 3, padding=1), nn.ReLU(),
                                            nn.Conv2d(int(refine_features), self._refine_rows(), 3, padding=1))
            nn.init.zeros_(self.refine_net[2].weight)
            nn.init.zeros_(self.refine_net[2].bias)
        self.tail = nn.Conv2d(features, outputs * self.unshuffle**2, 1)
        self.alignment = self.unshuffle * (CONTEXT_FACTOR if self.context_blocks else 1)
        attention_reach = blocks * (ATTENTION_WINDOW // 2) if block == "rcab" else 0
        # the context branch: its pooling window and its blocks' reach at 1/CONTEXT_FACTOR of the body's scale
        context_reach = (CONTEXT_FACTOR * (2 * pad * self.context_blocks + 2)) if self.context_blocks else 0
        self.receptive_radius = (pad * (1 + 2 * blocks) + attention_reach + context_reach + 1) * self.unshuffle
        refine_reach = (REFINE_TAPS // 2 + (2 if self.refine_net is not None else 0)) if self.refine else 0
        self.overlap = round_up(self.receptive_radius + (kernel_reach + refine_reach if mode == "kernel" else 0), 8)
        self.kernel_reach = kernel_reach

    # The pieces are separate methods so that the kernel inspector can run the same graph up to the weights.
    def _signal(self, color: torch.Tensor, aux: dict[str, torch.Tensor]) -> torch.Tensor:
        if not self.demodulate:
            return color
        # exp(x) - 1 and log(1 + x) rather than expm1/log1p: the TorchScript ONNX exporter lacks expm1.
        shading = (torch.exp(color.clamp(min=0)) - 1) / (aux["albedo"].clamp(0, 1) + ALBEDO_EPS)
        return torch.log(1 + shading)

    def _features(self, color: torch.Tensor, signal: torch.Tensor, aux: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [color] + ([signal] if self.demodulate else []) + [aux[name] for name in self.aux_inputs]
        x = torch.cat(parts, dim=1) if len(parts) > 1 else color
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        h = F.relu(self.head(x))
        if self.context_out is not None:
            c = self.context(F.avg_pool2d(h, CONTEXT_FACTOR))
            h = h + self.context_out(F.interpolate(c, scale_factor=CONTEXT_FACTOR, mode="bilinear",
                                                   align_corners=False))
        y = F.relu(self.body(h))
        return shuffled_tail(self.tail, y, self.unshuffle) if self.unshuffle > 1 else self.tail(y)

    def _split(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if len(inputs) != len(self.input_roles):
            raise TypeError(f"expected inputs {self.input_roles}, got {len(inputs)} tensors")
        color = inputs[0]
        return color, {name: t.to(color) for name, t in zip(self.aux_inputs, inputs[1:], strict=True)}

    def kernel_weights(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The normalised per-pixel weights (N, K, H, W), K = len(self.layout)."""
        color, aux = self._split(inputs)
        return softmax_channels(self._logits(color, self._signal(color, aux), aux), self.centre_tap,
                                self.softmax_ones)

    def all_kernel_weights(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The first pass's weights and, for a model with a refinement, its 5x5 weights after them
        (N, K + 25, H, W): what the kernel inspector composes into one footprint."""
        if not self.refine:
            return self.kernel_weights(*inputs)
        color, aux = self._split(inputs)
        signal = self._signal(color, aux)
        out = self._features(color, signal, aux)
        first = softmax_channels(self._logits(color, signal, aux, out), self.centre_tap, self.softmax_ones)
        filtered = self._corrected(self._filtered(color, signal, aux, first), out)
        return torch.cat([first, self._refine_weights(filtered, aux, out[:, -self._refine_rows() :])], dim=1)

    def _logits(self, color: torch.Tensor, signal: torch.Tensor, aux: dict[str, torch.Tensor],
                out: torch.Tensor | None = None) -> torch.Tensor:
        """The kernels' logits (N, K, H, W), with the cross-bilateral guide term when the model has guides
        (``out``: the tail's outputs, when the caller has them already)."""
        out = self._features(color, signal, aux) if out is None else out
        taps = len(self.layout)
        if not self.guide:
            return out[:, :taps]
        strength_count = len(self.guide) * self.guide_scales
        logits, strengths = out[:, :taps], F.softplus(GUIDE_GAIN * out[:, taps : taps + strength_count])
        centre = torch.cat([color if name == "color" else aux[name] for name in self.guide], dim=1)
        channels = [GUIDE_CHANNELS[name] for name in self.guide]
        guides = self._prefiltered(centre, self.guide_sums)
        penalties = []
        for scale, (index, size, dilation) in enumerate(self.grids[: self.guide_scales]):
            # each guide's strength at this scale, repeated over the guide's channels
            strength = torch.cat([strengths[:, g * self.guide_scales + scale, None].expand(-1, count, -1, -1)
                                  for g, count in enumerate(channels)], dim=1)
            penalties.append(guide_penalty(guides[index], self._guide_centre(centre, guides[index], channels),
                                           strength, size, dilation, self.guide_ones))
        penalty = torch.cat(penalties, dim=1)
        if logits.shape[1] != penalty.shape[1]:  # "mix": the demodulated taps have the same neighbours
            penalty = torch.cat([penalty, penalty], dim=1)
        return logits - penalty

    def _guide_centre(self, centre: torch.Tensor, prefiltered: torch.Tensor, channels: list[int]) -> torch.Tensor:
        """What each tap of one kernel scale is compared with: the pixel's own guide values, except that with
        ``color_guide_centre="box"`` the colour guide compares like with like, the tap's box mean with the box
        mean around the pixel at the same scale (a noisy centre pixel otherwise dominates the distance)."""
        if self.color_guide_centre == "pixel" or "color" not in self.guide:
            return centre
        parts, at = [], 0
        for name, count in zip(self.guide, channels, strict=True):
            parts.append((prefiltered if name == "color" else centre)[:, at : at + count])
            at += count
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    def _prefiltered(self, signal: torch.Tensor, sums: nn.ModuleList | None = None) -> list[torch.Tensor]:
        """The signal box-filtered for each kernel scale (``sums``: the scales' BoxSums for its channel count;
        the colour's by default)."""
        sums = self.prefilter_sums if sums is None else sums
        out = [signal]
        for size, box in zip(self.prefilters[1 : 1 + len(sums)], sums, strict=True):
            out.append(box(F.pad(signal, (size // 2,) * 4, mode="replicate")) / size**2)
        return out

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        color, aux = self._split(inputs)
        signal = self._signal(color, aux)
        if self.mode == "direct":
            return color + self._features(color, signal, aux)
        out = self._features(color, signal, aux)
        if self.refine_only:  # training the refinement alone: the first pass is a constant of the gradient
            rows = self._refine_rows()
            out = torch.cat([out[:, :-rows].detach(), out[:, -rows:]], dim=1)
        weights = softmax_channels(self._logits(color, signal, aux, out), self.centre_tap, self.softmax_ones)
        filtered = self._corrected(self._filtered(color, signal, aux, weights), out)
        return self._refined(filtered, aux, out[:, -self._refine_rows() :]) if self.refine else filtered

    def _corrected(self, filtered: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The filtered colour plus the direct correction (tail rows before the refinement's), if any."""
        if not self.correction:
            return filtered
        at = out.shape[1] - self.channels - (self._refine_rows() if self.refine else 0)
        return filtered + out[:, at : at + self.channels]

    def _refine_rows(self) -> int:
        return REFINE_TAPS**2 + len(self.refine_guides)

    def train_only_refinement(self) -> None:
        """Freeze everything but the refinement: only the tail's refinement rows get gradients (the rest of the
        tail is detached in ``forward``, so its rows get exact zeros), and no gradient flows into the body."""
        if not self.refine:
            raise ValueError("this model has no refinement to train")
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        self.tail.weight.requires_grad_(True)
        self.tail.bias.requires_grad_(True)
        for parameter in self.refine_net.parameters() if self.refine_net is not None else ():
            parameter.requires_grad_(True)
        self.refine_only = True

    def _refined(self, filtered: torch.Tensor, aux: dict[str, torch.Tensor], out: torch.Tensor) -> torch.Tensor:
        """The filtered colour (log1p) filtered once more by a 5x5 kernel (``_refine_weights``), averaged in
        linear radiance, like the renderer's samples."""
        weights = self._refine_weights(filtered, aux, out)
        linear = torch.exp(filtered.clamp(min=0)) - 1
        refined = apply_kernels([linear], weights, [(0, REFINE_TAPS, 1)])
        return torch.log(1 + refined.clamp(min=0))

    def _refine_weights(self, filtered: torch.Tensor, aux: dict[str, torch.Tensor], out: torch.Tensor) -> torch.Tensor:
        """The refinement's normalised 5x5 weights (N, 25, H, W): predicted logits (``out``: the tail's
        refinement rows) minus a predicted strength per guide times the squared distance of each tap's filtered
        colour, albedo and normal to the pixel's. The first pass has removed most of the noise, so here the
        colour distance finds the edges that a noisy colour guide cannot (this form, fixed, lowered validation
        relMSE 2.8% / 2.1% at 4 / 16 spp)."""
        taps = REFINE_TAPS**2
        # The distances are constants of the gradient (the filtered colour's too): only the strengths learn
        # from them, and training skips a backward pass through every tap of three full-resolution guides.
        guides = torch.cat([filtered if name == "color" else aux[name] for name in self.refine_guides],
                           dim=1).detach()
        if self.refine_net is not None:
            out = out + self.refine_net(guides)
        strengths = torch.exp((REFINE_GAIN * out[:, taps:]).clamp(max=REFINE_MAX_LOG))
        if torch.onnx.is_in_onnx_export():
            strength = torch.repeat_interleave(strengths, GUIDE_CHANNELS["color"], dim=1)
            penalty = guide_penalty(guides, guides, strength, REFINE_TAPS, 1, self.refine_ones)
        else:
            n, _, height, width = guides.shape
            distances = (_unfolded(guides, REFINE_TAPS, 1) - guides[:, :, None]) ** 2  # (N, C, taps, H, W)
            per_guide = distances.view(n, len(self.refine_guides), -1, taps, height, width).sum(dim=2)
            penalty = (strengths[:, :, None] * per_guide).sum(dim=1)
        return softmax_channels(out[:, :taps] - penalty, taps // 2, self.refine_softmax_ones)  # its centre tap

    def _filtered(self, color: torch.Tensor, signal: torch.Tensor, aux: dict[str, torch.Tensor],
                  weights: torch.Tensor) -> torch.Tensor:
        """The noisy colour filtered by the normalised kernel ``weights``, in log1p space."""
        if self.demodulate == "mix":
            half, grids = weights.shape[1] // 2, self.grids[: len(self.grids) // 2]
            plain = apply_kernels(self._prefiltered(color), weights[:, :half], grids)
            share = weights[:, half:].sum(dim=1, keepdim=True)  # the weight on demodulated taps, 0..1
            shading = apply_kernels(self._prefiltered(signal), weights[:, half:], grids) / share.clamp(min=1e-6)
            return plain + share * self._remodulate(shading, aux)
        if self.filter_space == "linear":
            # Average radiance, not log radiance: the mean of log1p values underestimates log1p of the mean where
            # samples vary (Jensen), so log-space kernels trade blur for darkening in noisy flat regions.
            linear = apply_kernels(self._prefiltered(torch.exp(signal.clamp(min=0)) - 1), weights, self.grids)
            return torch.log(1 + linear.clamp(min=0))
        filtered = apply_kernels(self._prefiltered(signal), weights, self.grids)
        return self._remodulate(filtered, aux) if self.demodulate else filtered

    @staticmethod
    def _remodulate(shading: torch.Tensor, aux: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.log(1 + (torch.exp(shading) - 1) * (aux["albedo"].clamp(0, 1) + ALBEDO_EPS))


def input_parts(aux_inputs: tuple[str, ...], demodulate: bool | str) -> list[tuple[str, int]]:
    """The head's input channel groups, in concatenation order (see ``_features``)."""
    return ([("color", 3)] + ([("signal", 3)] if demodulate else [])
            + [(name, AOV_CHANNELS[name]) for name in aux_inputs])


def grow_model(model: KernelPredictionDenoiser, state: dict[str, torch.Tensor], old_config: dict) -> None:
    """Load ``state`` of a model that took fewer inputs (e.g. colour only) into ``model`` (e.g. colour + albedo +
    normal): every weight is copied, and the head's weights for the new inputs start at zero, so the grown model
    begins exactly where the old one was and training can only teach it to use the new buffers.

    Channels are matched by input name through pixel-unshuffle's layout (channel c becomes c * r^2 + offset).

    A plain kernel model also grows into ``demodulate="mix"``: the demodulated signal is a new input (zero
    weights), and the demodulated taps copy the colour taps' logits offset by ``MIX_START_OFFSET``: the grown
    model starts as a fixed blend of the old model and the same kernels applied to the demodulated signal.
    And a model grows guides it lacked: their strengths start at ``GUIDE_START`` everywhere. A multiscale model
    grows coarser scales (``scales``): their taps copy the coarsest old scale's logits offset by
    ``SCALE_START_OFFSET``, and their guide strengths copy that scale's. And a model grows residual blocks
    (``blocks``): the new ones are appended after the old and start as the identity (their second convolution
    is zero), so the deeper model computes what the old one did until training moves them. And it grows wider
    (``features``): every weight keeps its old values, the new channels get fresh random inputs, and the
    weights from new channels into old ones start at zero (``_widened``), so again nothing changes at first.
    A context branch (``context_blocks``) grows with its output convolution at zero, likewise, and so does a
    direct ``correction`` (its tail rows). A refinement (``refine``) grows as a fixed cross-bilateral (the
    ``REFINE_START`` constants, the same at every pixel): not the identity, but a filter that measured better
    than none on validation before any training.
    """
    old_demodulate = old_config.get("demodulate", False)
    if old_demodulate != model.demodulate and not (old_demodulate is False and model.demodulate == "mix"):
        raise ValueError(f"cannot grow demodulate={old_demodulate!r} into demodulate={model.demodulate!r}")
    old_parts = input_parts(tuple(old_config.get("aux_inputs", ())), old_demodulate)
    new_parts = input_parts(model.aux_inputs, model.demodulate)
    if not {name for name, _ in old_parts} <= {name for name, _ in new_parts}:
        raise ValueError(f"cannot grow inputs {old_parts} into {new_parts}: some would be dropped")
    r2 = model.unshuffle**2

    def starts(parts):
        out, at = {}, 0
        for name, count in parts:
            out[name] = at
            at += count
        return out

    old_blocks, new_blocks = int(old_config.get("blocks", len(model.body))), len(model.body)
    if int(old_config.get("features", model.head.out_channels)) > model.head.out_channels:
        raise ValueError(f"cannot narrow {old_config['features']} features into {model.head.out_channels}")
    old_context = int(old_config.get("context_blocks", 0))
    if old_context not in (0, model.context_blocks):  # a branch grows whole, not block by block
        raise ValueError(f"cannot grow {old_context} context blocks into {model.context_blocks}")
    if old_blocks > new_blocks or (old_blocks < new_blocks and model.body[0].kind == "plain"):
        raise ValueError(f"cannot grow {old_blocks} blocks into {new_blocks}"
                         + (" (plain blocks have no identity path)" if old_blocks < new_blocks else ""))
    old_start, new_start = starts(old_parts), starts(new_parts)
    head = state["head.weight"]
    grown = head.new_zeros(head.shape[0], *model.head.weight.shape[1:])  # old width; widened below
    for name, count in old_parts:
        src, dst = old_start[name] * r2, new_start[name] * r2
        grown[:, dst : dst + count * r2] = head[:, src : src + count * r2]
    state = dict(state)
    state["head.weight"] = grown
    for index in range(old_blocks, new_blocks):
        for name, value in model.body[index].state_dict().items():
            state[f"body.{index}.{name}"] = torch.zeros_like(value) if name.startswith("conv2.") else value
    old_guide = tuple(old_config.get("guide", ()))
    if not set(old_guide) <= set(model.guide):
        raise ValueError(f"cannot grow guide {old_guide} into guide {model.guide}")
    # pixel_shuffle takes output channel c from tail channels c * r^2 .. c * r^2 + r^2 - 1: the tail's rows are
    # the colour taps, then (with "mix") the demodulated taps, then the guide strengths, then the direct
    # correction, in blocks of r^2.
    tail_w, tail_b = state["tail.weight"], state["tail.bias"]
    # A refinement's rows come last of all; a model without one grows them as the fixed bilateral of the
    # REFINE_START constants (zero weights: the same kernel at every pixel).
    refine_w, refine_b = _grown_refine_rows(model, old_config, tail_w, tail_b, r2)
    if old_config.get("refine", False):
        tail_w, tail_b = tail_w[: -len(refine_b)], tail_b[: -len(refine_b)]
    # A direct correction's rows come before those; a model without one grows them at zero (it adds nothing).
    correction_rows = model.channels * r2
    if old_config.get("correction", False):
        if not model.correction:
            raise ValueError("cannot drop the direct correction of the old model")
        correction_w, correction_b = tail_w[-correction_rows:], tail_b[-correction_rows:]
        tail_w, tail_b = tail_w[:-correction_rows], tail_b[:-correction_rows]
    else:
        correction_w = tail_w.new_zeros(correction_rows, *tail_w.shape[1:])
        correction_b = tail_b.new_zeros(correction_rows)
    if not model.correction:
        correction_w, correction_b = correction_w[:0], correction_b[:0]
    old_scales = int(old_config.get("scales", 3)) if model.kernel_desc == "multiscale" else 1
    added_scales = model.guide_scales - old_scales
    if added_scales < 0 or (added_scales and model.demodulate):
        raise ValueError(f"cannot grow {old_scales} kernel scales into {model.guide_scales}"
                         + (" with demodulated taps" if model.demodulate else ""))
    old_rows = old_scales * r2  # each guide's strength rows
    guide_rows = len(old_guide) * old_rows
    taps_w, taps_b = tail_w[: len(tail_w) - guide_rows], tail_b[: len(tail_b) - guide_rows]
    if model.demodulate == "mix" and old_demodulate is False:
        taps_w, taps_b = torch.cat([taps_w, taps_w]), torch.cat([taps_b, taps_b + MIX_START_OFFSET])
    scale_rows = MULTISCALE_TAPS**2 * r2
    for _ in range(added_scales):
        taps_w = torch.cat([taps_w, taps_w[-scale_rows:]])
        taps_b = torch.cat([taps_b, taps_b[-scale_rows:] + SCALE_START_OFFSET])
    if len(taps_w) != len(model.layout) * r2:
        raise ValueError("the old model's kernels do not match the new model's taps")
    # Guide strengths: a guide the old model had keeps its rows (a new scale copies the coarsest), a new one
    # starts at GUIDE_START everywhere.
    rows = model.guide_scales * r2
    start = float(torch.log(torch.expm1(torch.tensor(GUIDE_START)))) / GUIDE_GAIN  # softplus^-1
    guide_w, guide_b = [], []
    for name in model.guide:
        if name in old_guide:
            at = len(tail_w) - guide_rows + old_guide.index(name) * old_rows
            kept_w, kept_b = tail_w[at : at + old_rows], tail_b[at : at + old_rows]
            guide_w.append(torch.cat([kept_w] + [kept_w[-r2:]] * added_scales))
            guide_b.append(torch.cat([kept_b] + [kept_b[-r2:]] * added_scales))
        else:
            guide_w.append(tail_w.new_zeros(rows, *tail_w.shape[1:]))
            guide_b.append(tail_b.new_full((rows,), start))
    state["tail.weight"] = torch.cat([taps_w, *guide_w, correction_w, refine_w])
    state["tail.bias"] = torch.cat([taps_b, *guide_b, correction_b, refine_b])
    fresh = model.state_dict()
    for key in fresh:
        # a new context branch or refinement network: its output starts at zero
        if key.startswith(("context", "refine_net")) and key not in state:
            state[key] = fresh[key]
    for key, value in state.items():
        if key in fresh and value.shape != fresh[key].shape:
            state[key] = _widened(value, fresh[key])
    model.load_state_dict(state)


def _grown_refine_rows(model: KernelPredictionDenoiser, old_config: dict, tail_w: torch.Tensor,
                       tail_b: torch.Tensor, r2: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The tail rows (weights, biases) of ``model``'s refinement: the old model's, or the REFINE_START
    bilateral for a model that had none; empty when ``model`` has no refinement."""
    old_refine = bool(old_config.get("refine", False))
    if old_refine and not model.refine:
        raise ValueError("cannot drop the refinement of the old model")
    rows = model._refine_rows() * r2 if model.refine else 0
    if old_refine:
        if len(tail_b) < rows or len(model.refine_guides) != 1 + sum(
                n in old_config.get("aux_inputs", ()) for n in ("albedo", "normal")):
            raise ValueError("the old model's refinement does not match the new model's buffers")
        return tail_w[-rows:], tail_b[-rows:]
    logits = [-(dy * dy + dx * dx) / (2 * REFINE_START_SIGMA**2) for dy, dx in shift_taps(REFINE_TAPS, 1)]
    strengths = [float(torch.log(torch.tensor(REFINE_START_STRENGTH[g]))) / REFINE_GAIN for g in model.refine_guides]
    bias = torch.tensor(logits + strengths if model.refine else [], dtype=tail_b.dtype).repeat_interleave(r2)
    return tail_w.new_zeros(rows, *tail_w.shape[1:]), bias


def _widened(old: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
    """``old`` embedded in the leading corner of ``fresh`` (a wider layer's initial values), with the weights
    from new input channels to old output channels zeroed: the old outputs stay exactly what they were, the new
    outputs start random (so they differ from each other), and the zero weights learn from the first step."""
    if any(o > f for o, f in zip(old.shape, fresh.shape, strict=True)) or old.shape[2:] != fresh.shape[2:]:
        raise ValueError(f"cannot widen {tuple(old.shape)} into {tuple(fresh.shape)}")
    out = fresh.clone()
    if old.dim() >= 2:
        out[: old.shape[0], old.shape[1] :] = 0
    out[tuple(slice(0, n) for n in old.shape)] = old
    return out


class KernelWeightsModel(nn.Module):
    """Export wrapper: the same inputs, the normalised kernel weights as output (for the kernel inspector):
    ``all_kernel_weights``, the refinement's after the first pass's."""

    def __init__(self, model: KernelPredictionDenoiser) -> None:
        super().__init__()
        self.model = model
        self.input_roles = model.input_roles

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model.all_kernel_weights(*inputs)


def kpcn(**config) -> KernelPredictionDenoiser:
    return KernelPredictionDenoiser(**dict({"block": "plain"}, **config))


def kprcn(**config) -> KernelPredictionDenoiser:
    return KernelPredictionDenoiser(**dict({"block": "residual"}, **config))


def kprcan(**config) -> KernelPredictionDenoiser:
    return KernelPredictionDenoiser(**dict({"block": "rcab"}, **config))


def direct_denoiser(**config) -> KernelPredictionDenoiser:
    return KernelPredictionDenoiser(**dict({"block": "rcab", "mode": "direct"}, **config))
