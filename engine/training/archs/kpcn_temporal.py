"""A temporal kernel-predicting render denoiser: the shipped KPRCAN (archs/kpcn/) that also filters the previous
frame's restored output, warped onto this frame, so that a shot's frames agree (Vogels et al. 2018, "Denoising
with Kernel Prediction and Asymmetric Loss Functions", section 5: temporal kernels; trained recurrently with a
temporal loss as in Chaitanya et al. 2017).

Inputs (engine/models/manifest.py's roles; engine/motion.py's ``TEMPORAL_INPUTS``, filled per frame by the shot
restorer): ``color`` and the AOVs of ``aux_inputs`` as the per-frame model takes them, then ``previous_color`` and
``previous_output`` (frame t - 1's noisy and restored colour warped onto frame t, in the model's value space, log1p)
and ``previous_valid`` (1, H, W: 1 where the warp can be trusted).

How it filters: the per-frame model's body (the same modules, so its weights load unchanged) sees the temporal
inputs through a second head convolution that starts at zero (an initialised model is the per-frame model), and
its features predict, besides the per-frame model's multi-scale kernel on the current colour, a 5x5 kernel on the
warped previous output. Both kernels' taps share **one softmax**: per pixel the network decides how much of the
result comes from history. A history tap's logit also pays a learnt strength times its squared distance to the
current frame's own (per-frame) estimate, so history that disagrees with the present loses weight even where the
motion is wrong. The per-frame model's refinement (a 5x5 guided kernel) then filters the blend.

The valid rule is part of the architecture, not only learnt: a history tap's exponentiated weight is multiplied by
``previous_valid`` at that tap before normalising, and the head sees ``previous_*`` multiplied by it, so where
``previous_valid`` is 0 the output does not depend on ``previous_color`` or ``previous_output`` at all (on a
shot's first frame the model is exactly a per-frame denoiser); tests/test_temporal_render.py checks it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...motion import TEMPORAL_INPUTS
from .kpcn.kernels import SOFTMAX_CAP, _gathered, apply_kernels, grid_layout, shuffled_tail
from .kpcn.model import CONTEXT_FACTOR, GUIDE_GAIN, KernelPredictionDenoiser, without_retired

#: The history kernel: 5x5 taps at dilation 1 on the warped previous output (sub-pixel warp errors and the
#: previous output's own residual noise are smoothed over a few pixels).
HISTORY_TAPS = 5
#: Initial history logits, relative to the centre tap of the per-frame kernel, and the initial strength of the
#: penalty on a history tap's squared log distance to the per-frame estimate. Chosen on the training run's
#: validation shots (seeds 91000-91003; relMSE / flicker there: per-frame model 0.00680 / 0.01140; -2 and 100:
#: 0.00688 / 0.01086; -4 and 300: 0.00678 / 0.01131; -2 with no penalty 0.0265 / 0.0165: unchecked history
#: ghosts).
HISTORY_BIAS = -2.0
HISTORY_STRENGTH = 100.0
#: Input channels of the temporal head: previous colour (3), previous output (3), previous valid (1).
TEMPORAL_CHANNELS = 7


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, reference: int) -> torch.Tensor:
    """Softmax over dim 1 in which channel k's exponentiated weight is multiplied by ``mask[:, k]`` (0 or 1)
    before normalising: a masked channel gets exactly zero weight and no gradient. ``reference`` is a channel
    whose mask is always 1 (the spatial kernel's centre tap): its logit is subtracted from all (the differences
    capped at :data:`SOFTMAX_CAP`, as the per-frame model's ONNX softmax does), so the sum is never below
    exp(0) * 1 and never overflows. The same form in PyTorch and in the ONNX graph."""
    relative = (logits - logits[:, reference : reference + 1]).clamp(max=SOFTMAX_CAP)
    weights = torch.exp(relative) * mask
    return weights / weights.sum(dim=1, keepdim=True)


class TemporalKernelDenoiser(nn.Module):
    """The per-frame KPRCAN (``KernelPredictionDenoiser(**config)``, kept as ``self.frame``) plus a history kernel
    over the warped previous output, one softmax over both (see the module docstring)."""

    def __init__(self, **config: Any) -> None:
        super().__init__()
        config = without_retired(config)
        config.setdefault("block", "rcab")
        self.frame = KernelPredictionDenoiser(**config)
        frame = self.frame
        if frame.mode != "kernel" or frame.centre_tap is None:
            raise ValueError("the temporal denoiser needs a kernel-mode model whose kernel has a centre tap")
        self.channels = frame.channels
        self.scale = 1
        self.aux_inputs = frame.aux_inputs
        self.input_roles = frame.input_roles + TEMPORAL_INPUTS
        self.alignment = frame.alignment
        features = frame.head.out_channels
        unshuffle = frame.unshuffle
        # no bias: without valid history its input is all zeros, and so is what it adds (the first frame of a shot
        # is restored exactly as the per-frame model restores it)
        self.temporal_head = nn.Conv2d(TEMPORAL_CHANNELS * unshuffle**2, features, frame.head.kernel_size,
                                       padding=frame.head.padding, bias=False)
        nn.init.zeros_(self.temporal_head.weight)
        # history logits (25) and one log-strength of the distance to the per-frame estimate, per pixel
        self.history_layout = grid_layout([(0, HISTORY_TAPS, 1)])
        self.temporal_tail = nn.Conv2d(features, (HISTORY_TAPS**2 + 1) * unshuffle**2, 1)
        nn.init.zeros_(self.temporal_tail.weight)
        with torch.no_grad():  # rows (channel c's sub-pixels are c * unshuffle^2 + ...): 25 logits, one strength
            bias = self.temporal_tail.bias.view(HISTORY_TAPS**2 + 1, unshuffle**2)
            bias[: HISTORY_TAPS**2] = HISTORY_BIAS
            bias[HISTORY_TAPS**2] = math.log(math.expm1(HISTORY_STRENGTH)) / GUIDE_GAIN
        self.overlap = frame.overlap + 8
        self.receptive_radius = frame.receptive_radius + HISTORY_TAPS // 2

    # -- the pieces ---------------------------------------------------------------------------------------------
    def _split(self, inputs: tuple[torch.Tensor, ...]):
        if len(inputs) != len(self.input_roles):
            raise TypeError(f"expected inputs {self.input_roles}, got {len(inputs)} tensors")
        count = len(self.frame.input_roles)
        color, aux = self.frame._split(inputs[:count])
        previous_color, previous_output, valid = (t.to(color) for t in inputs[count:])
        return color, aux, previous_color, previous_output, valid[:, :1]

    def _features(self, color, aux, previous_color, previous_output, valid):
        """The tail outputs of the per-frame model and of the history kernel, from one shared body."""
        frame = self.frame
        x = torch.cat([color] + [aux[name] for name in frame.aux_inputs], dim=1)
        # the valid rule: history enters only where it is valid
        history = torch.cat([previous_color * valid, previous_output * valid, valid], dim=1)
        if frame.unshuffle > 1:
            x = F.pixel_unshuffle(x, frame.unshuffle)
            history = F.pixel_unshuffle(history, frame.unshuffle)
        h = F.relu(frame.head(x) + self.temporal_head(history))
        if frame.context_out is not None:
            c = frame.context(F.avg_pool2d(h, CONTEXT_FACTOR))
            h = h + frame.context_out(F.interpolate(c, scale_factor=CONTEXT_FACTOR, mode="bilinear",
                                                    align_corners=False))
        y = F.relu(frame.body(h))
        if frame.unshuffle > 1:
            return (shuffled_tail(frame.tail, y, frame.unshuffle),
                    shuffled_tail(self.temporal_tail, y, frame.unshuffle))
        return frame.tail(y), self.temporal_tail(y)

    def blend_weights(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The normalised weights (N, K + 25, H, W): the per-frame kernel's K taps, then the history taps."""
        color, aux, previous_color, previous_output, valid = self._split(inputs)
        return self._blend(color, aux, previous_output, valid,
                           *self._features(color, aux, previous_color, previous_output, valid))[0]

    def _blend(self, color, aux, previous_output, valid, out, history_out):
        frame = self.frame
        spatial_logits = frame._logits(color, aux, out)
        # the per-frame estimate: the per-frame kernel alone (what the model without history would give)
        spatial_only = masked_softmax(spatial_logits, torch.ones_like(spatial_logits[:, :1]), frame.centre_tap)
        estimate = frame._filtered(color, spatial_only)
        taps = HISTORY_TAPS**2
        strength = F.softplus(GUIDE_GAIN * history_out[:, taps : taps + 1])
        gathered = _gathered(previous_output * valid, HISTORY_TAPS, 1)  # (N, 3, 25, H, W)
        distance = ((gathered - estimate.detach()[:, :, None]) ** 2).sum(dim=1)  # (N, 25, H, W)
        # relative to the pixel's own tap of the per-frame kernel: a history tap's logit is the centre tap's plus
        # what the tail predicts (the per-frame logits span tens of units; an absolute history logit would need
        # as many units of training before history got any weight)
        centre = spatial_logits[:, frame.centre_tap : frame.centre_tap + 1]
        history_logits = centre + history_out[:, :taps] - strength * distance
        tap_valid = _gathered(valid, HISTORY_TAPS, 1)[:, 0]  # each history tap's own validity
        mask = torch.cat([torch.ones_like(spatial_logits), tap_valid], dim=1)
        weights = masked_softmax(torch.cat([spatial_logits, history_logits], dim=1), mask, frame.centre_tap)
        return weights, estimate

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        color, aux, previous_color, previous_output, valid = self._split(inputs)
        frame = self.frame
        out, history_out = self._features(color, aux, previous_color, previous_output, valid)
        weights, _ = self._blend(color, aux, previous_output, valid, out, history_out)
        spatial = len(frame.layout)
        filtered = frame._filtered(color, weights[:, :spatial]) + apply_kernels(
            [previous_output * valid], weights[:, spatial:], [(0, HISTORY_TAPS, 1)])
        return frame._refined(filtered, aux, out[:, -frame._refine_rows() :]) if frame.refine else filtered

    def load_frame_weights(self, state_dict: Mapping[str, torch.Tensor]) -> list[str]:
        """Initialise the per-frame path from a per-frame model's weights (render-kprcan-aov.pt's ``model``);
        returns the names that did not match (left as initialised)."""
        own = self.frame.state_dict()
        matched = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
        self.frame.load_state_dict(matched, strict=False)
        return sorted(set(own) - set(matched))


def freeze_frame_model(model: TemporalKernelDenoiser) -> None:
    """Train the temporal parts alone (recipes' ``train_only = "temporal"``): the per-frame model's weights stay
    as loaded, so that a shot's first frame (no valid history) is restored exactly as the per-frame model does."""
    for parameter in model.frame.parameters():
        parameter.requires_grad_(False)


def kprcan_temporal(**config: Any) -> TemporalKernelDenoiser:
    return TemporalKernelDenoiser(**config)
