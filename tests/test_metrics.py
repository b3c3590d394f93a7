"""Metrics (engine.metrics), including the exact benchmark protocols of ../shared/bench/PROTOCOL.md."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine.metrics import pooled_rmse, psnr, psnr_y_sr, relmse, rgb_to_y_bt601, rmse, ssim, tonemapped_psnr

SET5 = Path(__file__).resolve().parents[2] / "shared" / "bench" / "sr" / "Set5"


def test_psnr_and_rmse():
    a = np.zeros((4, 4, 3))
    b = np.full((4, 4, 3), 0.1)
    assert rmse(a, b) == pytest.approx(0.1)
    assert psnr(a, b) == pytest.approx(20.0)
    assert psnr(a * 255, b * 255, peak=255) == pytest.approx(20.0)
    assert psnr(a, a) == math.inf
    assert pooled_rmse([(a, b), (a, a)]) == pytest.approx(math.sqrt(0.01 / 2))
    with pytest.raises(ValueError):
        psnr(a, b[:2])


def test_ssim_properties():
    rng = np.random.default_rng(0)
    clean = np.clip(rng.random((40, 48)).cumsum(axis=1) / 24, 0, 1)
    assert ssim(clean, clean) == pytest.approx(1.0)
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    noisier = np.clip(clean + rng.normal(0, 0.3, clean.shape), 0, 1)
    assert 0 < ssim(noisier, clean) < ssim(noisy, clean) < 1
    assert ssim(noisy, clean) == pytest.approx(ssim(clean, noisy))
    colour = np.dstack([clean, noisy, noisier])
    expected = np.mean([ssim(colour[:, :, c], clean) for c in range(3)])
    assert ssim(colour, np.dstack([clean] * 3)) == pytest.approx(expected)


def test_ssim_matches_a_direct_computation():
    """Hand-rolled SSIM with an explicit Gaussian kernel, on the interior (as scikit-image's default crop)."""
    rng = np.random.default_rng(1)
    a = rng.random((24, 24))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    radius = 5
    offsets = np.arange(-radius, radius + 1)
    kernel_1d = np.exp(-(offsets**2) / (2 * 1.5**2))
    kernel = np.outer(kernel_1d, kernel_1d) / np.sum(np.outer(kernel_1d, kernel_1d))
    values = []
    for y in range(radius, 24 - radius):
        for x in range(radius, 24 - radius):
            pa = a[y - radius : y + radius + 1, x - radius : x + radius + 1]
            pb = b[y - radius : y + radius + 1, x - radius : x + radius + 1]
            ma, mb = np.sum(kernel * pa), np.sum(kernel * pb)
            va, vb = np.sum(kernel * pa * pa) - ma * ma, np.sum(kernel * pb * pb) - mb * mb
            cov = np.sum(kernel * pa * pb) - ma * mb
            c1, c2 = 0.01**2, 0.03**2
            values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma * ma + mb * mb + c1) * (va + vb + c2)))
    assert ssim(a, b) == pytest.approx(np.mean(values), abs=1e-6)


def test_render_metrics_follow_the_protocol():
    ref = np.array([[[0.0, 1.0, 4.0]]])
    x = np.array([[[0.1, 1.5, 2.0]]])
    expected = np.mean([(0.1**2) / 0.01, (0.5**2) / 1.01, (2.0**2) / 16.01])
    assert relmse(x, ref) == pytest.approx(expected)
    gamma = 1 / 2.2
    mse = np.mean([(0.1**gamma) ** 2, (1.0 - 1.0) ** 2, 0.0])
    assert tonemapped_psnr(x, ref) == pytest.approx(10 * math.log10(1 / mse))


def test_y_psnr_rounds_y_like_matlab_and_crops_the_border():
    hr = np.zeros((10, 10, 3), np.uint8)
    hr[..., 0] = 12  # Y = 19.08
    out = hr.copy()
    out[4, 4, 0] = 13  # Y = 19.34: still rounds to 19
    assert psnr_y_sr(out, hr, 2) == math.inf
    out[4, 4, 0] = 14  # Y = 19.60: rounds to 20, one level up
    assert psnr_y_sr(out, hr, 2) == pytest.approx(10 * math.log10(255**2 / (1 / 36)))
    out[0, 0] = 0  # in the cropped border
    assert psnr_y_sr(out, hr, 2) == pytest.approx(10 * math.log10(255**2 / (1 / 36)))
    assert rgb_to_y_bt601(np.array([[[255, 255, 255]]], np.uint8))[0, 0] == 235
    assert rgb_to_y_bt601(np.full((2, 2), 77, np.uint8))[0, 0] == 77  # gray is used as it is
    with pytest.raises(ValueError, match="uint8"):
        psnr_y_sr(out.astype(np.float32), hr, 2)


def _matlab_bicubic_upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(x, scale, 'bicubic')`` for integer upscaling (no antialiasing needed), in float."""
    def weights(length):
        u = np.arange(1, length * scale + 1) / scale + 0.5 * (1 - 1 / scale)
        index = np.floor(u - 2)[:, None] + np.arange(5)[None, :]
        distance = np.abs(u[:, None] - index)
        w = np.where(distance <= 1, 1.5 * distance**3 - 2.5 * distance**2 + 1,
                     np.where(distance <= 2, -0.5 * distance**3 + 2.5 * distance**2 - 4 * distance + 2, 0))
        w /= w.sum(axis=1, keepdims=True)
        mirror = np.concatenate([np.arange(length), np.arange(length)[::-1]])
        return w, mirror[np.mod(index - 1, 2 * length).astype(int)]

    image = image.astype(np.float64)
    wy, iy = weights(image.shape[0])
    wx, ix = weights(image.shape[1])
    rows = np.einsum("ok,okwc->owc", wy, image[iy])
    return np.einsum("ok,hokc->hoc", wx, rows[:, ix])


@pytest.mark.skipif(not SET5.is_dir(), reason="benchmark data (../shared/bench) not present")
def test_set5_bicubic_reproduces_the_published_protocol_numbers():
    import cv2

    published = {2: 33.65, 3: 30.39, 4: 28.42}
    for scale, expected in published.items():
        scores = []
        for hr_path in sorted((SET5 / f"image_SRF_{scale}").glob("*_HR.png")):
            hr = cv2.imread(str(hr_path))[:, :, ::-1]
            lr = cv2.imread(str(hr_path).replace("_HR", "_LR"))[:, :, ::-1]
            up = np.clip(np.rint(_matlab_bicubic_upscale(lr, scale)), 0, 255).astype(np.uint8)
            scores.append(psnr_y_sr(up, hr, scale))
        assert np.mean(scores) == pytest.approx(expected, abs=0.006)


def test_temporal_relmse_measures_flicker_not_steady_error():
    from engine.metrics import temporal_relmse

    rng = np.random.default_rng(3)
    refs = [np.full((16, 16, 3), 0.5, np.float32) + 0.1 * t for t in range(6)]  # the scene brightens
    assert temporal_relmse(refs, refs) == 0.0
    steady = [r + 0.05 for r in refs]  # a bias that stays put does not flicker
    assert temporal_relmse(steady, refs) == pytest.approx(0.0, abs=1e-12)
    assert relmse(steady[0], refs[0]) > 0
    noisy = [r + rng.normal(0, 0.05, r.shape) for r in refs]  # independent errors: about 2x the relMSE
    per_frame = np.mean([relmse(o, r) for o, r in zip(noisy, refs, strict=True)])
    assert temporal_relmse(noisy, refs) == pytest.approx(2 * per_frame, rel=0.15)
    alternating = [r + (0.05 if t % 2 else -0.05) for t, r in enumerate(refs)]  # worst case: 4x
    expected = np.mean([0.1**2 / (((refs[t][0, 0, 0] + refs[t - 1][0, 0, 0]) / 2) ** 2 + 0.01) for t in range(1, 6)])
    assert temporal_relmse(alternating, refs) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError):
        temporal_relmse(refs[:1], refs[:1])
    with pytest.raises(ValueError):
        temporal_relmse(refs[:3], refs[:2])


def test_shot_scores_are_the_mean_per_frame_relmse_and_the_temporal_relmse():
    from engine.metrics import shot_scores, temporal_relmse

    rng = np.random.default_rng(4)
    refs = rng.random((5, 12, 10, 3)).astype(np.float32)  # (F, H, W, 3), as the shot benchmarks hold them
    outputs = refs + rng.normal(0, 0.05, refs.shape).astype(np.float32)
    scores = shot_scores(outputs, refs)
    o, r = outputs.astype(np.float64), refs.astype(np.float64)
    change = np.diff(o, axis=0) - np.diff(r, axis=0)  # written out here, not taken from temporal_relmse
    flicker = np.mean(change**2 / (((r[1:] + r[:-1]) / 2) ** 2 + 0.01), axis=(1, 2, 3)).mean()
    assert scores == {"relmse": pytest.approx(np.mean([relmse(o, r) for o, r in zip(outputs, refs, strict=True)])),
                      "flicker": pytest.approx(flicker, rel=1e-5)}
    assert scores["flicker"] == temporal_relmse(list(outputs), list(refs))
    assert shot_scores(refs, refs) == {"relmse": 0.0, "flicker": 0.0}
    steady = shot_scores(refs + 0.1, refs)  # a steady error costs per-frame relMSE only
    assert steady["flicker"] < 1e-10 < steady["relmse"]
    with pytest.raises(ValueError):
        shot_scores(outputs[:3], refs)  # every frame needs its reference
