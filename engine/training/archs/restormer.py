"""Restormer (Zamir et al., CVPR 2022): an efficient Transformer for high-resolution image restoration.

Written from the paper. The building blocks:

- **MDTA** (multi-Dconv head transposed attention): queries, keys and values come from a 1x1 convolution
  followed by a 3x3 depth-wise convolution (local context), and attention is computed *across channels*
  (a C/heads x C/heads map per head) instead of across pixels, so its cost grows linearly with the image area.
  Queries and keys are L2-normalised along the pixel axis and the logits are scaled by a learnable per-head
  temperature.
- **GDFN** (gated-Dconv feed-forward network): 1x1 expansion to two branches, 3x3 depth-wise convolution,
  GELU(branch 1) * branch 2 (the gate), 1x1 projection back.
- A 4-level encoder-decoder: pixel-unshuffle halves H and W and doubles the channels on the way down,
  pixel-shuffle undoes it on the way up; skip connections are concatenated (and reduced by a 1x1 convolution on
  the two lower levels); refinement blocks at full resolution, a 3x3 output convolution and a global residual.

Two optional additions for CPU-sized document models (off by default, so the default is the paper's network):
a background prior (the page divided by its grey-level closing, then a learned clipped stretch) fed as an extra
input channel and used as the base of the global residual, and a 2x pixel-unshuffle stem (FFDNet-style).

Contract (for export and inference): input ``(N, C, H, W)`` float32 in [0, 1] with H and W multiples of
``model.alignment`` (8 = three 2x pixel-unshuffles; 16 with the stem); output the same shape, in [0, 1]. There is one
value range end to end: no normalisation to [-1, 1] anywhere (the seed project's lesson: normalising to [-1, 1]
and clamping to [0, 1] afterwards blackened half of every page). In eval mode the output is clamped to [0, 1];
in training mode it is not, so that the loss still has gradients for overshooting pixels.

:func:`pad_to_alignment` pads odd sizes (reflect) for callers that do not tile.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: H and W must be multiples of this (three 2x down-samplings).
ALIGNMENT = 8


@dataclass(frozen=True)
class RestormerConfig:
    in_channels: int = 1
    out_channels: int = 1
    dim: int = 48
    #: Transformer blocks per encoder level (level 4 is the bottleneck); the decoder mirrors levels 1-3.
    num_blocks: tuple[int, int, int, int] = (4, 6, 6, 8)
    num_refinement_blocks: int = 4
    heads: tuple[int, int, int, int] = (1, 2, 4, 8)
    ffn_expansion: float = 2.66
    bias: bool = False
    #: "none": the paper's network. "background": a document prior computed inside the network (see
    #: :class:`BackgroundPrior`): the page divided by its estimated paper background is given as an extra input
    #: channel and is the base of the global residual, so the transformer learns a correction of an already
    #: flattened page (what makes a CPU-sized budget reach useful accuracy).
    prior: str = "none"
    #: Radius of the background closing (pixels): more than half the widest ink stroke.
    prior_radius: int = 5
    #: Initial (ink, paper) levels of the prior's stretch, learned in training: normalised values below ``ink``
    #: map to 0, above ``paper`` to 1 (the classical cleaner's "soft" method, whose defaults these are).
    prior_levels: tuple[float, float] = (0.15, 0.9)
    #: 2: pixel-unshuffle the input by 2 before the first convolution and pixel-shuffle the output back (as
    #: FFDNet does): lossless, and every level then runs on 4x fewer pixels, which is what makes training on a
    #: CPU affordable. 1: the paper's full-resolution first level.
    stem_unshuffle: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


#: Named sizes. "base" is the paper's configuration; "tiny" trains on a 2-core CPU in tens of minutes.
SIZES: dict[str, RestormerConfig] = {
    "tiny": RestormerConfig(dim=16, num_blocks=(1, 1, 2, 2), num_refinement_blocks=1, heads=(1, 1, 2, 4),
                            ffn_expansion=2.0),
    "small": RestormerConfig(dim=24, num_blocks=(2, 2, 3, 4), num_refinement_blocks=2, heads=(1, 2, 4, 8),
                             ffn_expansion=2.0),
    "base": RestormerConfig(),
}


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of an (N, C, H, W) tensor, with bias.

    Written with mean/variance reductions over dim 1 rather than a reshape to (N, HW, C): no transposes, and it
    exports to plain ReduceMean/Sub/Mul/Div ONNX nodes that ONNX Runtime runs fast on the CPU.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        centred = x - mean
        var = (centred * centred).mean(dim=1, keepdim=True)
        return centred * torch.rsqrt(var + self.eps) * self.weight + self.bias


class BackgroundPrior(nn.Module):
    """Paper background by grey-level closing (max-pool then min-pool), and the page divided by it.

    Ink is darker and thinner than ``2 * radius + 1`` pixels, so the closing removes it and keeps the paper,
    stains and shadows; dividing by it flattens them (as the classical cleaner in engine/documents does).
    The flattened page then goes through a clipped linear stretch with learned (ink, paper) levels. Max-pooling
    exports to ONNX MaxPool, which runs fast in ONNX Runtime. Returns the prior page in [0, 1].
    """

    def __init__(self, radius: int, levels: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__()
        self.radius = int(radius)
        self.ink = nn.Parameter(torch.tensor(float(levels[0])))
        self.paper = nn.Parameter(torch.tensor(float(levels[1])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, k = self.radius, 2 * self.radius + 1
        # Replicate padding keeps the page's edge values; "-max(-x)" is a min-pool (erosion).
        dilated = F.max_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), k, stride=1)
        closed = -F.max_pool2d(F.pad(-dilated, (r, r, r, r), mode="replicate"), k, stride=1)
        flat = (x / closed.clamp(min=1e-2)).clamp(0.0, 1.0)
        # Clipped linear stretch: paper to white, ink to black, anti-aliased edges in between.
        span = (self.paper - self.ink).clamp(min=1e-2)
        return ((flat - self.ink) / span).clamp(0.0, 1.0)


class MDTA(nn.Module):
    """Multi-Dconv head transposed attention: self-attention across channels, linear in the pixel count."""

    def __init__(self, dim: int, heads: int, bias: bool) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"MDTA: {dim} channels do not split into {heads} heads")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        # (N, heads, C/heads, H*W): each head attends over its channels, the pixels are the "sequence" axis.
        q = q.reshape(n, self.heads, c // self.heads, h * w)
        k = k.reshape(n, self.heads, c // self.heads, h * w)
        v = v.reshape(n, self.heads, c // self.heads, h * w)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.temperature, dim=-1)
        out = (attn @ v).reshape(n, c, h, w)
        return self.project_out(out)


class GDFN(nn.Module):
    """Gated-Dconv feed-forward network."""

    def __init__(self, dim: int, expansion: float, bias: bool) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        # tanh GELU: a handful of elementwise ONNX ops, faster on the CPU than erf and within 1e-3 of it.
        return self.project_out(F.gelu(gate, approximate="tanh") * value)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, expansion: float, bias: bool) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim)
        self.attn = MDTA(dim, heads, bias)
        self.norm2 = ChannelLayerNorm(dim)
        self.ffn = GDFN(dim, expansion, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def _stage(dim: int, blocks: int, heads: int, config: RestormerConfig) -> nn.Sequential:
    return nn.Sequential(*[TransformerBlock(dim, heads, config.ffn_expansion, config.bias) for _ in range(blocks)])


class Downsample(nn.Module):
    """Halve H and W, double the channels: 3x3 conv to C/2 channels, then pixel-unshuffle (x4 channels)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(dim, dim // 2, kernel_size=3, padding=1, bias=False),
                                  nn.PixelUnshuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """Double H and W, halve the channels: 3x3 conv to 2C channels, then pixel-shuffle (/4 channels)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(dim, dim * 2, kernel_size=3, padding=1, bias=False),
                                  nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Restormer(nn.Module):
    """The Restormer network. See the module docstring for the input/output contract."""

    #: ONNX contract attributes read by the trainer and the exporter (see archs/common.py).
    input_roles: tuple[str, ...] = ("color",)
    scale = 1
    alignment = ALIGNMENT

    def __init__(self, config: RestormerConfig | None = None) -> None:
        super().__init__()
        config = config or RestormerConfig()
        self.config = config
        self.channels = config.out_channels
        self.overlap = conv_receptive_radius(config)
        if config.prior not in ("none", "background"):
            raise ValueError(f"unknown Restormer prior {config.prior!r} (none or background)")
        if config.prior == "background" and config.in_channels != config.out_channels:
            raise ValueError("the background prior needs as many output channels as input channels")
        self.prior = BackgroundPrior(config.prior_radius, config.prior_levels) if config.prior == "background" else None
        d = config.dim
        nb, hd = config.num_blocks, config.heads
        if config.stem_unshuffle not in (1, 2):
            raise ValueError("stem_unshuffle must be 1 or 2")
        self.stem = config.stem_unshuffle
        self.alignment = ALIGNMENT * self.stem
        embed_in = config.in_channels * (2 if self.prior is not None else 1) * self.stem**2
        self.patch_embed = nn.Conv2d(embed_in, d, kernel_size=3, padding=1, bias=config.bias)

        self.encoder1 = _stage(d, nb[0], hd[0], config)
        self.down1_2 = Downsample(d)
        self.encoder2 = _stage(d * 2, nb[1], hd[1], config)
        self.down2_3 = Downsample(d * 2)
        self.encoder3 = _stage(d * 4, nb[2], hd[2], config)
        self.down3_4 = Downsample(d * 4)
        self.latent = _stage(d * 8, nb[3], hd[3], config)

        self.up4_3 = Upsample(d * 8)
        self.reduce3 = nn.Conv2d(d * 8, d * 4, kernel_size=1, bias=config.bias)
        self.decoder3 = _stage(d * 4, nb[2], hd[2], config)
        self.up3_2 = Upsample(d * 4)
        self.reduce2 = nn.Conv2d(d * 4, d * 2, kernel_size=1, bias=config.bias)
        self.decoder2 = _stage(d * 2, nb[1], hd[1], config)
        self.up2_1 = Upsample(d * 2)
        # Level 1 keeps the concatenated 2d channels (no reduction), as in the paper.
        self.decoder1 = _stage(d * 2, nb[0], hd[0], config)
        self.refinement = _stage(d * 2, config.num_refinement_blocks, hd[0], config)
        self.output = nn.Conv2d(d * 2, config.out_channels * self.stem**2, kernel_size=3, padding=1, bias=config.bias)
        # Start as the identity of the residual base (zero residual): early steps refine instead of undoing noise.
        nn.init.zeros_(self.output.weight)
        if self.output.bias is not None:
            nn.init.zeros_(self.output.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = x
        features = x
        if self.prior is not None:
            base = self.prior(x)
            features = torch.cat([x, base], dim=1)
        if self.stem > 1:
            features = F.pixel_unshuffle(features, self.stem)
        e1 = self.encoder1(self.patch_embed(features))
        e2 = self.encoder2(self.down1_2(e1))
        e3 = self.encoder3(self.down2_3(e2))
        latent = self.latent(self.down3_4(e3))

        d3 = self.decoder3(self.reduce3(torch.cat([self.up4_3(latent), e3], dim=1)))
        d2 = self.decoder2(self.reduce2(torch.cat([self.up3_2(d3), e2], dim=1)))
        d1 = self.decoder1(torch.cat([self.up2_1(d2), e1], dim=1))
        residual = self.output(self.refinement(d1))
        if self.stem > 1:
            residual = F.pixel_shuffle(residual, self.stem)
        if self.config.in_channels == self.config.out_channels:
            out = base + residual
        else:
            out = residual
        # Training keeps overshoots differentiable; inference (and the ONNX export) stays in [0, 1].
        return out if self.training else out.clamp(0.0, 1.0)


def conv_receptive_radius(config: RestormerConfig) -> int:
    """Pixels of context each side that the convolutions see (full-resolution pixels, rounded up to 8).

    Each transformer block has two 3x3 depth-wise convolutions (radius 2 at its level); a level k (1-based) pixel
    spans 2**(k-1) input pixels. MDTA itself is global over whatever tile it sees, so no overlap makes tiles
    exactly equal to the whole page; this radius is the part a tiler can honour.
    """
    nb, refine = config.num_blocks, config.num_refinement_blocks
    radius = 1 + 2 * (nb[0] * 2 + refine) + 1 + 1  # embed, enc1 + dec1 + refinement, output, down conv
    radius += 2 * (2 * 2 * nb[1] + 2)  # level 2 blocks, its down and up convs
    radius += 4 * (2 * 2 * nb[2] + 2)
    radius += 8 * (2 * nb[3])
    radius *= config.stem_unshuffle
    if config.prior == "background":
        radius += 2 * config.prior_radius
    return -(-radius // 8) * 8


def build_restormer(size: str = "tiny", channels: int = 1, **overrides: object) -> Restormer:
    """A Restormer of a named size (``SIZES``) for ``channels``-channel images; ``overrides`` change fields."""
    if size not in SIZES:
        raise ValueError(f"unknown Restormer size {size!r} (expected one of {', '.join(SIZES)})")
    fields = SIZES[size].to_dict()
    fields.update(in_channels=channels, out_channels=channels)
    for key, value in overrides.items():
        if key not in fields:
            raise ValueError(f"unknown Restormer option {key!r}")
        fields[key] = tuple(value) if isinstance(value, list) else value
    return Restormer(RestormerConfig(**fields))


def pad_to_alignment(x: torch.Tensor, alignment: int = ALIGNMENT) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad (N, C, H, W) on the bottom/right to multiples of ``alignment``; returns it and the old (H, W)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % alignment, (-w) % alignment
    if pad_h or pad_w:
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, (h, w)


def restore_padded(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``model`` on any H x W by padding to the alignment and cropping the result back."""
    padded, (h, w) = pad_to_alignment(x, int(getattr(model, "alignment", ALIGNMENT)))
    return model(padded)[..., :h, :w]
