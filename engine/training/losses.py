"""Losses: L1 by default, MS-SSIM optionally (alone or mixed with L1 as OIDN trains: 0.16 L1 + 0.84 MS-SSIM), L2,
and for HDR renders in log1p space the relative MSE of the linear values (the render benchmark's metric).

All losses take ``valid``, a boolean mask of target points that count (seed 001: invalid HDR ground truth is
masked out rather than clamped). MS-SSIM uses as many scales as the patch allows (a 64 px patch supports 3 of
the usual 5 with a 7 px window), so it works on small training patches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _masked_mean(values: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    if valid is None:
        return values.mean()
    weights = valid.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    return _masked_mean((pred - target).abs(), valid)


def masked_l2(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over the valid points: what RMSE metrics (documents) measure."""
    return _masked_mean((pred - target) ** 2, valid)


def relative_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None,
                 denominator: str = "prediction") -> torch.Tensor:
    """Relative squared error of linear HDR values, for models working in log1p space: the render benchmark's
    relMSE, (x - r)^2 / (d^2 + 0.01). exp(x) - 1 is clamped at e^20 so that a wild early prediction cannot
    overflow.

    ``denominator = "prediction"`` (d = the detached prediction, Noise2Noise's HDR loss) suits noisy references
    better, since a noisy r^2 favours underestimates (it weights most the pixels whose noise fell low); but it
    leans the other way (least above the clean value: tests/test_training_trainer.py) and forgives an overshoot on
    a dark pixel (a bright prediction shrinks its own weight), so emitter light leaking into a dark neighbour costs
    little; ``noise2noise_relative_mse`` does neither. Measured
    (2026-11-27): continuing render-kprcan-aov for 500 steps with it alone instead of L1 in log space gave cbox256
    relMSE 0.0066 / 0.0062 at 4 / 16 spp against 0.0016 / 0.0010. ``"reference"`` (d = the target: the
    benchmark's own weighting) charges that leak in full; the render recipes add it to L1 (``l1+relmse``)."""
    if denominator not in ("prediction", "reference"):
        raise ValueError(f"denominator must be prediction or reference, got {denominator!r}")
    p = torch.expm1(pred.clamp(max=20.0))
    r = torch.expm1(target)
    d = p.detach() if denominator == "prediction" else r
    return _masked_mean((p - r) ** 2 / (d**2 + 0.01), valid)


def noise2noise_relative_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None,
                             ring: int = 2) -> torch.Tensor:
    """The relative MSE against a *noisy* target (Noise2Noise: a second, independent render of the view),
    (x - r)^2 / (d^2 + 0.01), whose normaliser ``d`` is the mean of the target's linear values on the ring of
    (2 ``ring`` + 1)^2 - 1 pixels around each pixel, the pixel itself left out. Monte Carlo noise is independent
    from pixel to pixel, so ``d`` is independent of the noise of the ``r`` it divides and the expected loss is
    least at the clean value (Lehtinen et al. 2018 need such a normaliser; a noisy ``r^2`` favours underestimates,
    the detached prediction overestimates).
    Unlike the detached prediction (``relative_mse``'s default), it charges a prediction that overshoots a dark
    pixel in full, as the benchmark's reference-normalised relMSE does."""
    p = torch.expm1(pred.clamp(max=20.0))
    r = torch.expm1(target)
    size = 2 * ring + 1
    padded = F.pad(r.detach(), (ring, ring, ring, ring), mode="replicate")
    box = F.avg_pool2d(padded, size, stride=1) * (size * size)
    d = (box - r.detach()) / (size * size - 1)
    return _masked_mean((p - r) ** 2 / (d**2 + 0.01), valid)


def lowfreq_relative_mse(pred: torch.Tensor, target: torch.Tensor, size: int = 8) -> torch.Tensor:
    """The relative MSE of ``size`` x ``size`` block means of the linear HDR values, (P - R)^2 / (R^2 + 0.01):
    the error a denoiser leaves at low frequencies (a region a few per cent too dark or blotchy), which the
    per-pixel terms barely see. Measured on 24 scenes with 1,024-spp references (2026-12-03): the shipped
    render-kprcan-aov was 2% too dark on average at 4 spp, and correcting its 8 px block means to the reference's
    (an oracle) would lower its relMSE 18% against OIDN + AOVs' 12%. A block mean of a 256-spp reference is as
    good as a 16,000-spp pixel, so, unlike the per-pixel relMSE's, this denominator does not favour
    underestimates where the reference is noisy. Patches smaller than a block are scored whole.
    Tried at weight 1.0 on that model (lab/recipes/render_kprcan_aov_lowfreq.toml): the block-mean error fell 20%, the
    detail got worse by as much and relMSE did not fall; no shipped recipe uses it."""
    p = torch.expm1(pred.clamp(max=20.0))
    r = torch.expm1(target)
    size = max(1, min(size, p.shape[-2], p.shape[-1]))
    pooled_p = F.avg_pool2d(p, size, ceil_mode=True)
    pooled_r = F.avg_pool2d(r, size, ceil_mode=True)
    return ((pooled_p - pooled_r) ** 2 / (pooled_r**2 + 0.01)).mean()


def _gaussian_window(size: int, sigma: float, channels: int, device, dtype) -> torch.Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma * sigma))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def _ssim_parts(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor, data_range: float):
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    groups = x.shape[1]
    mu_x = F.conv2d(x, window, groups=groups)
    mu_y = F.conv2d(y, window, groups=groups)
    sxx = F.conv2d(x * x, window, groups=groups) - mu_x**2
    syy = F.conv2d(y * y, window, groups=groups) - mu_y**2
    sxy = F.conv2d(x * y, window, groups=groups) - mu_x * mu_y
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return luminance * cs, cs


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window_size: int = 7) -> torch.Tensor:
    """Multi-scale SSIM of N x C x H x W batches (mean over the batch), using the scales the size allows."""
    levels = 1
    size = min(x.shape[-2:])
    while levels < len(MS_SSIM_WEIGHTS) and size // (2**levels) >= window_size:
        levels += 1
    if size < window_size:
        raise ValueError(f"MS-SSIM needs patches of at least {window_size} pixels, got {size}")
    weights = torch.tensor(MS_SSIM_WEIGHTS[:levels], device=x.device, dtype=x.dtype)
    weights = weights / weights.sum()
    window = _gaussian_window(window_size, 1.5, x.shape[1], x.device, x.dtype)
    values = []
    for level in range(levels):
        ssim_map, cs_map = _ssim_parts(x, y, window, data_range)
        if level == levels - 1:
            values.append(ssim_map.flatten(1).mean(1))
        else:
            values.append(cs_map.flatten(1).mean(1))
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    # cs can be slightly negative on noise; clamping keeps the fractional power real.
    stacked = torch.stack(values, dim=1).clamp(min=1e-6)
    return torch.prod(stacked ** weights[None, :], dim=1).mean()


def restoration_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None = None,
    kind: str = "l1",
    ms_ssim_weight: float = 0.84,
    relmse_weight: float = 0.25,
    lowfreq_weight: float = 0.0,
    lowfreq_size: int = 8,
) -> torch.Tensor:
    """The recipe's loss. Invalid target points get the prediction's own (detached) value, so they add no
    error to MS-SSIM (or to the block means of ``lowfreq_weight``) either. ``lowfreq_weight`` adds that much
    of ``lowfreq_relative_mse`` to "l1+relmse"."""
    if valid is not None:
        target = torch.where(valid, target, pred.detach())
    if kind == "l1":
        return masked_l1(pred, target, valid)
    if kind == "l2":
        return masked_l2(pred, target, valid)
    if kind == "relmse":
        return relative_mse(pred, target, valid)
    if kind == "relmse-n2n":
        return noise2noise_relative_mse(pred, target, valid)
    if kind == "l1+relmse":
        loss = masked_l1(pred, target, valid) + relmse_weight * relative_mse(pred, target, valid, "reference")
        if lowfreq_weight:
            loss = loss + lowfreq_weight * lowfreq_relative_mse(pred, target, lowfreq_size)
        return loss
    data_range = max(1.0, float(target.detach().amax()))  # log1p HDR values can exceed 1
    structural = 1.0 - ms_ssim(pred.float(), target.float(), data_range)
    if kind == "ms-ssim":
        return structural
    if kind == "l1+ms-ssim":
        return ms_ssim_weight * structural + (1.0 - ms_ssim_weight) * masked_l1(pred, target, valid)
    raise ValueError(f"unknown loss {kind!r}")
