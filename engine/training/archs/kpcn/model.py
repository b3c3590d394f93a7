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
``kernel=<odd int>`` predicts one dense kernel of that size (KPCN's 21). The kernels average log1p values.
``context_blocks=N`` adds a context branch: N residual blocks on the head's features pooled to 1/8 resolution,
upsampled and added back before the body (wide context for little work; alignment 8, a larger tile overlap; the
device round's recipe grows the shipped model with it, recipes/render_kprcan_aov_device.toml).
``refine=True`` filters the result once more with a 5x5 kernel (per-pixel logits from the tail) whose taps are
also steered by their distance to the pixel in the *filtered* colour, albedo and normal: after the first pass the
colour is clean enough to show the edges that a noisy colour guide hides; ``refine_features=N`` adds two 3x3
convolutions on what the refinement compares. The kernel operations themselves are in ``kernels.py``; how a model
grows from a smaller one is ``growth.py``.

Inputs (ONNX contract of engine/models/manifest.py): ``color`` (N, 3, H, W) in log1p space, and the AOVs
named in ``aux_inputs``: ``albedo`` [0, 1], ``normal`` [-1, 1], ``depth`` [0, 1]. The AOVs steer the kernels
(where edges and textures are); the kernels filter the noisy colour itself.
``guide=("albedo", "normal", "color")`` adds a cross-bilateral term to every tap's logit: minus a per-pixel strength
(predicted, >= 0, one per guide and kernel scale) times the squared distance between the pixel's buffer value
and the tap's (box-prefiltered like the tap's colour). A kernel then avoids neighbours of another albedo or
normal at full resolution, which the half-resolution body's linear tail cannot express for a 1-2 pixel texture.
``color_guide_centre="box"`` compares a colour tap (box-prefiltered at its scale) with the box mean around the
pixel at the same scale instead of the pixel's own noisy colour, like a patch distance: at 4 spp the centre
pixel's noise otherwise swamps the distance, and a model without buffers learnt to give its colour guide almost
no strength (0.01-0.2).
Output: (N, 3, H, W) in log1p space.

``demodulate=True`` (KPCN's diffuse path, for the single Combined + Denoising Data input; needs ``albedo``): the
same kernels also filter the demodulated colour, ``log1p(linear / (albedo + DEMOD_EPS))`` (irradiance: texture
divided out), whose result is multiplied back by the pixel's own ``albedo + DEMOD_EPS``, so a texture the albedo
buffer shows is kept by construction however wide the kernel. Where the albedo does not modulate the light
(emitters, glass, mirrors, the sky: albedo near zero or unrelated to the colour) demodulation is wrong, so a
per-pixel share ``m = sigmoid(MIX_GAIN * mix(features))`` blends the two results in linear radiance,
``m * demodulated + (1 - m) * colour``; the refinement filters both before the blend. Same ONNX contract (the
demodulation happens inside the graph).

Options that no shipped model (nor the device round) used were removed in issue 41 (``RETIRED_OPTIONS``: a
fourth kernel scale, linear-space filtering, a direct correction); their experiments and results are described in
lab/. Weights saved with those options at their neutral values still load.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..common import AOV_CHANNELS, round_up
from .kernels import (
    BoxSum,
    _unfolded,
    apply_kernels,
    grid_layout,
    guide_penalty,
    shuffled_tail,
    softmax_channels,
)

#: Options of earlier versions, with the only value still accepted (the one that means "off"): weights and
#: recipes saved with them load unchanged; any other value was an experiment no shipped model kept.
RETIRED_OPTIONS = {"scales": 3, "filter_space": "log", "correction": False}
#: ``demodulate``: the colour is divided by ``albedo + DEMOD_EPS`` (KPCN used 0.00316 on its diffuse buffer; a
#: combined colour has dark-albedo pixels whose light is not diffuse, where a small epsilon explodes the quotient).
DEMOD_EPS = 0.02
#: The demodulated share is sigmoid(MIX_GAIN * mix output): as GUIDE_GAIN, lets Adam move it within few steps.
MIX_GAIN = 10.0
MULTISCALE_TAPS = 5
#: Dilations of the multiscale kernels' 5x5 grids.
MULTISCALE_DILATIONS = (1, 2, 4)
#: Guide strength = softplus(GUIDE_GAIN * tail output): the gain lets Adam (steps of about the learning rate)
#: move the strengths over their useful range (0 .. ~100) within a few thousand steps.
GUIDE_GAIN = 10.0
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


def without_retired(config: dict) -> dict:
    """``config`` without the retired options at their neutral values; a ValueError for any other value."""
    config = dict(config)
    for name, neutral in RETIRED_OPTIONS.items():
        if name in config:
            value = config.pop(name)
            if value != neutral:
                raise ValueError(f"option {name} = {value!r} was removed from the kernel-prediction denoisers "
                                 f"(no shipped model used it; only {name} = {neutral!r} is accepted)")
    return config


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
        channels: int = 3,
        unshuffle: int = 2,
        guide: tuple[str, ...] = (),
        context_blocks: int = 0,
        color_guide_centre: str = "pixel",
        refine: bool = False,
        refine_features: int = 0,
        demodulate: bool = False,
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
        in_channels = 3 + sum(AOV_CHANNELS[name] for name in self.aux_inputs)
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
            self.grids = [(i, MULTISCALE_TAPS, d) for i, d in enumerate(MULTISCALE_DILATIONS)]
            self.prefilters = [1] + [2 * d - 1 for d in MULTISCALE_DILATIONS[1:]]  # box sizes 1, 3, 7
            self.prefilter_sums = nn.ModuleList(BoxSum(3, size, same=False) for size in self.prefilters[1:])
            kernel_reach = MULTISCALE_DILATIONS[-1] * (MULTISCALE_TAPS // 2) + self.prefilters[-1] // 2
        else:
            size = int(kernel)
            if size < 1 or size % 2 == 0:
                raise ValueError(f"kernel size must be odd, got {size}")
            self.grids = [(0, size, 1)]
            self.prefilters = [1]
            self.prefilter_sums = nn.ModuleList()
            kernel_reach = size // 2
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
        # One strength per guide and kernel scale.
        self.guide_scales = len(self.prefilter_sums) + 1
        guide_channels = sum(GUIDE_CHANNELS[g] for g in self.guide)
        self.guide_sums = nn.ModuleList(BoxSum(guide_channels, size, same=False)
                                        for size in (self.prefilters[1 : self.guide_scales] if self.guide else ()))
        # A constant of the ONNX graph's channel sums (guide_penalty); not saved in checkpoints.
        if self.guide:
            tap_count = self.grids[0][1] ** 2
            self.register_buffer("guide_ones", torch.ones(tap_count, guide_channels, 1, 1), persistent=False)
        outputs = len(self.layout) + len(self.guide) * self.guide_scales if mode == "kernel" else channels
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
        # Demodulation (kernel mode): the per-pixel share of the demodulated result, from the body's features; it
        # starts at one half everywhere (weights and bias zero).
        if demodulate not in (True, False):  # "mix", an earlier experiment's value, is not this switch
            raise ValueError(f"demodulate must be true or false, got {demodulate!r}")
        self.demodulate = bool(demodulate)
        if self.demodulate and (mode != "kernel" or "albedo" not in self.aux_inputs):
            raise ValueError("demodulate needs a kernel-mode model with the albedo input")
        self.mix = nn.Conv2d(features, self.unshuffle**2, 1) if self.demodulate else None
        if self.mix is not None:
            nn.init.zeros_(self.mix.weight)
            nn.init.zeros_(self.mix.bias)
        self.alignment = self.unshuffle * (CONTEXT_FACTOR if self.context_blocks else 1)
        attention_reach = blocks * (ATTENTION_WINDOW // 2) if block == "rcab" else 0
        # the context branch: its pooling window and its blocks' reach at 1/CONTEXT_FACTOR of the body's scale
        context_reach = (CONTEXT_FACTOR * (2 * pad * self.context_blocks + 2)) if self.context_blocks else 0
        self.receptive_radius = (pad * (1 + 2 * blocks) + attention_reach + context_reach + 1) * self.unshuffle
        refine_reach = (REFINE_TAPS // 2 + (2 if self.refine_net is not None else 0)) if self.refine else 0
        self.overlap = round_up(self.receptive_radius + (kernel_reach + refine_reach if mode == "kernel" else 0), 8)
        self.kernel_reach = kernel_reach

    # The pieces are separate methods so that the kernel inspector can run the same graph up to the weights.
    def _features(self, color: torch.Tensor, aux: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._head_out(self.tail, self._body(color, aux))

    def _head_out(self, conv: nn.Conv2d, y: torch.Tensor) -> torch.Tensor:
        """A 1x1 output convolution of the body's features at full resolution (pixel-shuffled)."""
        return shuffled_tail(conv, y, self.unshuffle) if self.unshuffle > 1 else conv(y)

    def _body(self, color: torch.Tensor, aux: dict[str, torch.Tensor]) -> torch.Tensor:
        """The body's features (N, features, H / unshuffle, W / unshuffle), after the last ReLU."""
        parts = [color] + [aux[name] for name in self.aux_inputs]
        x = torch.cat(parts, dim=1) if len(parts) > 1 else color
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        h = F.relu(self.head(x))
        if self.context_out is not None:
            c = self.context(F.avg_pool2d(h, CONTEXT_FACTOR))
            h = h + self.context_out(F.interpolate(c, scale_factor=CONTEXT_FACTOR, mode="bilinear",
                                                   align_corners=False))
        return F.relu(self.body(h))

    def _split(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if len(inputs) != len(self.input_roles):
            raise TypeError(f"expected inputs {self.input_roles}, got {len(inputs)} tensors")
        color = inputs[0]
        return color, {name: t.to(color) for name, t in zip(self.aux_inputs, inputs[1:], strict=True)}

    def kernel_weights(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The normalised per-pixel weights (N, K, H, W), K = len(self.layout)."""
        color, aux = self._split(inputs)
        return softmax_channels(self._logits(color, aux), self.centre_tap, self.softmax_ones)

    def all_kernel_weights(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The first pass's weights and, for a model with a refinement, its 5x5 weights after them
        (N, K + 25, H, W): what the kernel inspector composes into one footprint."""
        if not self.refine:
            return self.kernel_weights(*inputs)
        color, aux = self._split(inputs)
        out = self._features(color, aux)
        first = softmax_channels(self._logits(color, aux, out), self.centre_tap, self.softmax_ones)
        filtered = self._filtered(color, first)
        return torch.cat([first, self._refine_weights(filtered, aux, out[:, -self._refine_rows() :])], dim=1)

    def _logits(self, color: torch.Tensor, aux: dict[str, torch.Tensor], out: torch.Tensor | None = None
                ) -> torch.Tensor:
        """The kernels' logits (N, K, H, W), with the cross-bilateral guide term when the model has guides
        (``out``: the tail's outputs, when the caller has them already)."""
        out = self._features(color, aux) if out is None else out
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
        return logits - torch.cat(penalties, dim=1)

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
        if self.mode == "direct":
            return color + self._features(color, aux)
        if self.demodulate:
            return self._demodulated_forward(color, aux)
        out = self._features(color, aux)
        if self.refine_only:  # training the refinement alone: the first pass is a constant of the gradient
            rows = self._refine_rows()
            out = torch.cat([out[:, :-rows].detach(), out[:, -rows:]], dim=1)
        weights = softmax_channels(self._logits(color, aux, out), self.centre_tap, self.softmax_ones)
        filtered = self._filtered(color, weights)
        return self._refined(filtered, aux, out[:, -self._refine_rows() :]) if self.refine else filtered

    def _demodulated_forward(self, color: torch.Tensor, aux: dict[str, torch.Tensor]) -> torch.Tensor:
        """``demodulate``: the kernels (and the refinement) filter the colour and the demodulated colour alike;
        the demodulated result is remodulated by the pixel's albedo and the two are blended by the predicted share
        (see the module docstring). Log1p in, log1p out."""
        y = self._body(color, aux)
        out = self._head_out(self.tail, y)
        if self.refine_only:
            rows = self._refine_rows()
            out = torch.cat([out[:, :-rows].detach(), out[:, -rows:]], dim=1)
        weights = softmax_channels(self._logits(color, aux, out), self.centre_tap, self.softmax_ones)
        modulation = aux["albedo"].clamp(min=0.0) + DEMOD_EPS
        linear = torch.exp(color.clamp(min=0)) - 1
        irradiance = torch.log(1 + linear / modulation)
        both = [torch.cat(pair, dim=1) for pair in zip(self._prefiltered(color), self._prefiltered(irradiance),
                                                       strict=True)]
        filtered = apply_kernels(both, weights, self.grids)  # (N, 6, H, W): colour, irradiance (log1p)
        linear = torch.exp(filtered.clamp(min=0)) - 1
        if self.refine:
            refine_weights = self._refine_weights(filtered[:, :3], aux, out[:, -self._refine_rows() :])
            linear = apply_kernels([linear], refine_weights, [(0, REFINE_TAPS, 1)]).clamp(min=0)
        share = torch.sigmoid(MIX_GAIN * self._head_out(self.mix, y))
        blended = (1 - share) * linear[:, :3] + share * (linear[:, 3:] * modulation)
        return torch.log(1 + blended.clamp(min=0))

    def demodulated_share(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The per-pixel share of the demodulated result (N, 1, H, W), for a model with ``demodulate``."""
        if not self.demodulate:
            raise ValueError("this model does not demodulate")
        color, aux = self._split(inputs)
        return torch.sigmoid(MIX_GAIN * self._head_out(self.mix, self._body(color, aux)))

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

    def _filtered(self, color: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The noisy colour filtered by the normalised kernel ``weights``, in log1p space."""
        return apply_kernels(self._prefiltered(color), weights, self.grids)


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
    return KernelPredictionDenoiser(**dict({"block": "plain"}, **without_retired(config)))


def kprcn(**config) -> KernelPredictionDenoiser:
    return KernelPredictionDenoiser(**dict({"block": "residual"}, **without_retired(config)))


def kprcan(**config) -> KernelPredictionDenoiser:
    return KernelPredictionDenoiser(**dict({"block": "rcab"}, **without_retired(config)))


def direct_denoiser(**config) -> KernelPredictionDenoiser:
    return KernelPredictionDenoiser(**dict({"block": "rcab", "mode": "direct"}, **without_retired(config)))
