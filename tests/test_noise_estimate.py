"""Noise-level estimation: accuracy on synthetic Gaussian noise, gray-origin images, clipping, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.noise_estimate import estimate_noise_level, estimate_sigma_immerkaer, estimate_sigma_pca

ROOT = Path(__file__).resolve().parent.parent


def synthetic_photo(size: int = 128, seed: int = 0) -> np.ndarray:
    """A clean RGB test scene: smooth colour gradients, shapes and a band of fine texture, with the slight
    optical blur of a real photo (perfectly sharp synthetic edges alias, which no camera image does)."""
    import cv2

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image = np.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.6 - 0.3 * x * y], axis=2)
    for _ in range(6):
        cy, cx, radius = rng.uniform(0.15, 0.85, 2).tolist() + [rng.uniform(0.05, 0.2)]
        disc = (y - cy) ** 2 + (x - cx) ** 2 < radius**2
        image[disc] = rng.uniform(0.1, 0.9, 3)
    band = (y > 0.8) & (y < 0.9)
    image[band] += 0.08 * np.sin(40 * x[band])[:, None]
    # Foliage-like texture (band-limited random detail) on the left half: edges a 3x3 filter mistakes for noise.
    texture = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), 1.2)
    image[:, : size // 2] += 0.6 * texture[:, : size // 2, None]
    image = cv2.GaussianBlur(image, (0, 0), 0.8)
    return np.clip(image, 0.05, 0.95).astype(np.float32)


@pytest.mark.parametrize("sigma", [5.0, 25.0, 50.0])
def test_pca_estimator_is_accurate_on_gaussian_noise(sigma):
    clean = synthetic_photo()
    noisy = clean + sigma / 255.0 * np.random.default_rng(1).standard_normal(clean.shape).astype(np.float32)
    estimate = estimate_noise_level(noisy)
    assert abs(estimate - sigma) < 0.06 * sigma + 0.5, estimate


def test_pca_beats_immerkaer_on_a_real_photo():
    # Immerkaer's 3x3 filter sees photographic texture as noise; the PCA estimator separates it.
    import cv2

    photo = ROOT.parent / "shared" / "data" / "train" / "BSDS500_train" / "100098.jpg"
    if not photo.is_file():
        pytest.skip("training photographs (../shared/data) not present")
    clean = cv2.imread(str(photo))[:192, :192, ::-1].astype(np.float32) / 255.0
    noisy = clean + 5.0 / 255.0 * np.random.default_rng(2).standard_normal(clean.shape).astype(np.float32)
    pca_error = abs(estimate_noise_level(noisy, "pca") - 5.0)
    immerkaer_error = abs(estimate_noise_level(noisy, "immerkaer") - 5.0)
    assert pca_error < 0.3
    assert pca_error < immerkaer_error


def test_clean_image_reads_near_zero():
    assert estimate_noise_level(synthetic_photo()) < 1.0


def test_gray_origin_image_uses_one_channel():
    clean = synthetic_photo()[:, :, 1]
    noisy = clean + 20.0 / 255.0 * np.random.default_rng(3).standard_normal(clean.shape).astype(np.float32)
    rgb = np.repeat(noisy[:, :, None], 3, axis=2)
    assert estimate_noise_level(rgb) == pytest.approx(estimate_noise_level(noisy), rel=1e-9)
    assert abs(estimate_noise_level(rgb) - 20.0) < 1.5


def test_clipping_correction_recovers_heavy_noise():
    # An 8-bit photo clips the noise at 0 and 1; without the correction sigma 60 reads clearly low.
    clean = np.clip(synthetic_photo() * 1.2 - 0.1, 0.0, 1.0)
    noisy = clean + 60.0 / 255.0 * np.random.default_rng(4).standard_normal(clean.shape).astype(np.float32)
    clipped = np.round(np.clip(noisy, 0.0, 1.0) * 255.0) / 255.0
    raw = 255.0 * estimate_sigma_pca(clipped)
    corrected = estimate_noise_level(clipped)
    assert raw < 56.0
    assert abs(corrected - 60.0) < abs(raw - 60.0)
    assert abs(corrected - 60.0) < 4.0


def test_immerkaer_scale_is_right_on_flat_image():
    flat = np.full((128, 128, 3), 0.5, dtype=np.float32)
    noisy = flat + 10.0 / 255.0 * np.random.default_rng(5).standard_normal(flat.shape).astype(np.float32)
    assert 255.0 * estimate_sigma_immerkaer(noisy) == pytest.approx(10.0, rel=0.05)


def test_errors():
    with pytest.raises(ValueError):
        estimate_noise_level(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError):
        estimate_noise_level(np.zeros((32, 32, 3), np.float32), method="nope")
    with pytest.raises(ValueError):
        estimate_noise_level(np.zeros((32, 32, 2), np.float32))


def test_noise_level_command(tmp_path, capsys):
    import cv2

    from engine.cli import main

    clean = synthetic_photo()
    noisy = clean + 20.0 / 255.0 * np.random.default_rng(6).standard_normal(clean.shape).astype(np.float32)
    path = tmp_path / "noisy.png"
    cv2.imwrite(str(path), np.round(np.clip(noisy, 0, 1) * 255.0).astype(np.uint8)[:, :, ::-1])
    assert main(["noise-level", str(path)]) == 0
    assert abs(float(capsys.readouterr().out) - 20.0) < 1.5
    assert main(["noise-level", str(tmp_path / "missing.png")]) == 1
