"""Degradations and patch mining: pure functions, checked on synthetic arrays."""

import numpy as np
import pytest

from engine.training import degradations as deg
from engine.training import mining


def test_gaussian_noise_has_the_requested_std_and_leaves_input_alone():
    rng = np.random.default_rng(0)
    clean = np.full((128, 128, 3), 0.5, np.float32)
    noisy, level = deg.add_gaussian_noise(clean, 25 / 255, rng)
    assert level == pytest.approx(25 / 255)
    assert float((noisy - clean).std()) == pytest.approx(25 / 255, rel=0.03)
    assert np.all(clean == 0.5)
    # Not clipped: the protocol's noise goes below 0 near black.
    dark, _ = deg.add_gaussian_noise(np.zeros((64, 64, 3), np.float32), 0.1, rng)
    assert dark.min() < 0


def test_noise_level_ranges_per_channel_and_correlation():
    rng = np.random.default_rng(1)
    clean = np.zeros((96, 96, 3), np.float32)
    noisy, level = deg.add_gaussian_noise(clean, (0.05, 0.2), rng, per_channel=True)
    stds = noisy.reshape(-1, 3).std(axis=0)
    assert 0.04 < stds.min() and stds.max() < 0.22 and 0.05 <= level <= 0.2
    correlated, _ = deg.add_gaussian_noise(clean, 0.1, rng, correlation_sigma=1.5)
    white, _ = deg.add_gaussian_noise(clean, 0.1, rng)
    assert float(correlated.std()) == pytest.approx(0.1, rel=0.1)

    def neighbour_corr(x):
        return float(np.corrcoef(x[:, :-1, 0].ravel(), x[:, 1:, 0].ravel())[0, 1])

    assert neighbour_corr(correlated) > 0.5 > abs(neighbour_corr(white))


def test_poisson_gaussian_noise_grows_with_signal():
    rng = np.random.default_rng(2)
    dark, _ = deg.add_poisson_gaussian_noise(np.full((64, 64, 3), 0.05, np.float32), 0.01, 0.0, rng)
    bright, _ = deg.add_poisson_gaussian_noise(np.full((64, 64, 3), 0.9, np.float32), 0.01, 0.0, rng)
    assert bright.std() > 3 * dark.std()
    assert float(bright.std()) == pytest.approx(np.sqrt(0.01 * 0.9), rel=0.05)


def test_jpeg_changes_pixels_and_quality_matters():
    rng = np.random.default_rng(3)
    image = rng.random((64, 64, 3)).astype(np.float32)
    low, high = deg.jpeg_compress(image, 10), deg.jpeg_compress(image, 95)
    assert low.shape == image.shape and low.dtype == np.float32
    assert np.abs(low - image).mean() > np.abs(high - image).mean() > 0.0
    gray = deg.jpeg_compress(image[:, :, :1], 50)
    assert gray.shape == (64, 64, 1)


def test_kernels_are_normalised_and_oriented():
    iso = deg.isotropic_gaussian_kernel(15, 2.0)
    assert iso.sum() == pytest.approx(1.0, abs=1e-6) and np.allclose(iso, iso.T)
    aniso = deg.anisotropic_gaussian_kernel(15, 4.0, 1.0, 0.0)
    assert aniso.sum() == pytest.approx(1.0, abs=1e-6)
    assert aniso[7, :].sum() > aniso[:, 7].sum()  # wider along x
    rotated = deg.anisotropic_gaussian_kernel(15, 4.0, 1.0, np.pi / 2)
    assert np.allclose(rotated, aniso.T, atol=1e-6)
    random = deg.random_gaussian_kernel(np.random.default_rng(0))
    assert random.sum() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError):
        deg.isotropic_gaussian_kernel(4, 1.0)


def test_blur_and_downscaling_shapes_and_constants():
    constant = np.full((30, 42, 3), 0.3, np.float32)
    assert np.allclose(deg.blur(constant, deg.isotropic_gaussian_kernel(7, 1.5)), 0.3, atol=1e-6)
    small = deg.bicubic_downscale(constant, 2)
    assert small.shape == (15, 21, 3) and np.allclose(small, 0.3, atol=1e-5)
    odd = deg.bicubic_downscale(np.zeros((31, 43, 1), np.float32), 3)
    assert odd.shape == (10, 14, 1)
    decimated = deg.kernel_downscale(constant, deg.isotropic_gaussian_kernel(11, 1.0), 3)
    assert decimated.shape == (10, 14, 3) and np.allclose(decimated, 0.3, atol=1e-5)
    # Upscaling a ramp with MATLAB bicubic keeps it a ramp in the interior.
    ramp = np.tile(np.linspace(0, 1, 16, dtype=np.float32)[None, :, None], (8, 1, 1))
    up = deg.imresize_bicubic(ramp, 2.0)
    assert up.shape == (16, 32, 1) and np.all(np.diff(up[4, 4:-4, 0]) > 0)


def test_torch_noise_twins_match_numpy_statistics():
    torch = pytest.importorskip("torch")
    batch = torch.full((4, 3, 64, 64), 0.5)
    sigma = torch.tensor([0.0, 0.05, 0.1, 0.2])
    noisy = deg.gaussian_noise_torch(batch, sigma, torch.Generator().manual_seed(0))
    stds = (noisy - batch).flatten(1).std(dim=1)
    assert torch.allclose(stds, sigma, atol=0.01)
    pg = deg.poisson_gaussian_noise_torch(batch, torch.full((4,), 0.02), torch.zeros(4))
    assert float((pg - batch).std()) == pytest.approx(0.1, rel=0.05)


def _half_textured_images(count=3, size=96, seed=0):
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        image = np.full((size, size, 3), 0.4, np.float32)
        image[:, size // 2 :] = rng.random((size, size // 2, 3))  # right half: texture
        images.append(image)
    return images


def test_mined_patches_have_higher_gradient_than_random_ones():
    images = _half_textured_images()
    mined = mining.mine_patches(images, 16, fraction=0.5)
    random = mining.random_patches([im.shape[:2] for im in images], 16, len(mined), np.random.default_rng(0))
    assert len(random) == len(mined) == 54  # 3 images x 36 grid patches x 0.5

    def mean_gradient(refs):
        return np.mean([mining.mean_gradient(r.crop(images[r.image])) for r in refs])

    assert mean_gradient(mined) > 1.5 * mean_gradient(random)
    # Non-overlapping: distinct grid cells, stride = size.
    assert len({(r.image, r.top, r.left) for r in mined}) == len(mined)
    assert all(r.top % 16 == 0 and r.left % 16 == 0 for r in mined)


def test_mining_refuses_overlap_unless_asked_and_statistics_rank_texture():
    images = _half_textured_images(1)
    with pytest.raises(ValueError):
        mining.extract_grid([(96, 96)], 16, 8)
    assert len(mining.overlapping_patches([(96, 96)], 16, 8)) == 11 * 11
    flat, textured = images[0][:16, :16], images[0][:16, -16:]
    a, b = mining.patch_statistics(flat), mining.patch_statistics(textured)
    for key in ("gradient", "std", "hf_power"):
        assert b[key] > a[key]
    refs = mining.extract_grid([(96, 96)], 32, 32)
    for statistic in ("std", "hf_power"):
        top = mining.select_top(refs, mining.score_patches(images, refs, statistic), 0.5)
        assert all(r.left >= 32 for r in top) and all(r.left == 64 for r in top[:3])
    losses = mining.loss_scores(images, refs, lambda patch: float(patch.std()))
    assert losses.shape == (9,)


def test_paired_sr_patches_stay_aligned_under_augmentation(tmp_path):
    cv2 = pytest.importorskip("cv2")
    from engine.training.datasets import PairedImageDataset, match_pairs

    rng = np.random.default_rng(0)
    (tmp_path / "lr").mkdir()
    (tmp_path / "hr").mkdir()
    for i in range(2):
        hr = cv2.GaussianBlur(rng.random((64, 64, 3)).astype(np.float32), (0, 0), 2)
        hr = (hr - hr.min()) / (hr.max() - hr.min())
        hr = np.clip(np.rint(hr * 255), 0, 255).astype(np.uint8)
        lr = hr.reshape(32, 2, 32, 2, 3).mean(axis=(1, 3)).round().astype(np.uint8)  # 2x2 box average
        cv2.imwrite(str(tmp_path / "hr" / f"im{i}_hr.png"), hr)
        cv2.imwrite(str(tmp_path / "lr" / f"im{i}_lr.png"), lr)
    pairs = match_pairs(tmp_path / "lr", tmp_path / "hr")
    assert [(a.name, b.name) for a, b in pairs] == [("im0_lr.png", "im0_hr.png"), ("im1_lr.png", "im1_hr.png")]
    dataset = PairedImageDataset(pairs, patch_size=32, roles=("color",), scale=2, augment=True, mining="gradient")
    sample_rng = np.random.default_rng(1)
    for _ in range(8):
        sample = dataset.sample(sample_rng)
        x, y = sample.inputs["color"], sample.target
        assert x.shape == (3, 16, 16) and y.shape == (3, 32, 32)
        boxed = y.reshape(3, 16, 2, 16, 2).mean(axis=(2, 4))
        assert np.abs(boxed - x).max() < 1.5 / 255


def test_sr_patches_match_a_whole_image_downscale():
    from engine.training import datasets as ds
    from engine.training.mining import PatchRef
    from engine.training.recipes import DegradationSection

    rng = np.random.default_rng(0)
    image = (rng.random((60, 70, 3)) * 255).astype(np.uint8)
    store = ds.ImageStore([None], [image], [False])
    dataset = ds.CleanImageDataset(
        store, patch_size=16, degradation=DegradationSection(kind="sr", scale=2), roles=("color",), mining="random"
    )
    whole = deg.bicubic_downscale(ds.to_float(image), 2)
    for top, left in ((0, 0), (20, 30), (44, 54)):  # corner, inside, opposite corner
        clean, lr, _ = dataset._downscale_with_context(PatchRef(0, top, left, 16), rng)
        assert np.array_equal(clean, ds.to_float(image)[top : top + 16, left : left + 16])
        assert np.abs(lr - whole[top // 2 : top // 2 + 8, left // 2 : left // 2 + 8]).max() < 1e-6
    sample = dataset.sample(rng)
    assert sample.inputs["color"].shape == (3, 8, 8) and sample.target.shape == (3, 16, 16)


def _photo_patch(size: int = 96) -> np.ndarray:
    from tests.test_noise_estimate import synthetic_photo

    return synthetic_photo(size, seed=2)


def test_clipped_noise_is_clipped_after_the_noise_and_told_the_sigma_added():
    from engine.training.datasets import degrade
    from engine.training.recipes import DegradationSection

    # Dark and bright areas, where a camera's clipping matters.
    clean = np.clip(_photo_patch() * 1.4 - 0.2, 0.0, 1.0)
    spec = DegradationSection(kind="noise", sigma=(30.0, 30.0), clip_prob=1.0)
    noisy, level = degrade(clean, spec, np.random.default_rng(0))
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    assert level == pytest.approx(30.0 / 255.0)
    # The same noise unclipped (same seed) goes outside [0, 1]; clipping happens after it, not to the clean image.
    unclipped, _ = degrade(clean, DegradationSection(kind="noise", sigma=(30.0, 30.0)), np.random.default_rng(0))
    assert unclipped.min() < 0.0 and unclipped.max() > 1.0
    np.testing.assert_array_equal(noisy, np.clip(unclipped, 0.0, 1.0))
    # Validation clips only when asked.
    spec_val = DegradationSection(kind="noise", val_clip=True)
    valid, _ = degrade(clean, spec_val, np.random.default_rng(1), fixed_sigma=50.0)
    assert valid.min() >= 0.0 and valid.max() <= 1.0


def test_jpeg_noise_is_told_the_sigma_added_as_the_app_tells_it():
    from engine.training.datasets import degrade
    from engine.training.recipes import DegradationSection

    clean = _photo_patch(128)
    for quality, subsampling_prob in ((90, 1.0), (98, 0.0)):
        spec = DegradationSection(kind="noise", sigma=(25.0, 25.0), jpeg_prob=1.0, jpeg_quality=(quality, quality),
                                  jpeg_subsampling_prob=subsampling_prob)
        noisy, level = degrade(clean, spec, np.random.default_rng(3), fixed_sigma=None)
        subsampling = "420" if subsampling_prob == 1.0 else "444"
        reference, _ = deg.add_gaussian_noise(clean, 25.0 / 255.0, np.random.default_rng(3))
        np.testing.assert_array_equal(noisy, deg.jpeg_compress(reference, quality, subsampling))
        assert level == pytest.approx(25.0 / 255.0)


def test_jpeg_subsampling_halves_colour_resolution_only_when_asked():
    rng = np.random.default_rng(4)
    image = rng.uniform(0.2, 0.8, (64, 64, 3)).astype(np.float32)
    full, halved = deg.jpeg_compress(image, 95, "444"), deg.jpeg_compress(image, 95, "420")
    assert np.abs(full - image).mean() < np.abs(halved - image).mean()
    with pytest.raises(ValueError):
        deg.jpeg_compress(image, 95, "422x")


def test_recipe_probabilities_are_checked():
    from engine.training.recipes import RecipeError, recipe_from_dict

    base = {"model": {"id": "x", "task": "photo-denoise", "arch": "edsr"}}
    recipe = recipe_from_dict({**base, "degradation": {"clip_prob": 0.8, "val_clip": True}})
    assert recipe.degradation.clip_prob == 0.8 and recipe.degradation.val_clip
    with pytest.raises(RecipeError, match="clip_prob"):
        recipe_from_dict({**base, "degradation": {"clip_prob": 1.5}})


def test_camera_noise_is_signal_dependent_raw_noise_seen_through_a_camera_pipeline():
    from engine.metrics import psnr

    clean = _photo_patch(128)
    camera = deg.random_camera(np.random.default_rng(5))
    assert set(camera) == {"rgb2cam", "red_gain", "blue_gain", "digital_gain", "shot", "read"}
    np.testing.assert_allclose(camera["rgb2cam"].sum(axis=1), 1.0)
    # Without noise, unprocessing and processing again give the image back but for demosaicing.
    through, _ = deg.add_camera_noise(clean, np.random.default_rng(0), camera, noise_scale=0.0)
    assert through.shape == clean.shape and psnr(through, clean) > 30.0
    loud = dict(camera, shot=1e-2, read=1e-4)
    noisy, level = deg.add_camera_noise(clean, np.random.default_rng(1), loud)
    assert 0.0 <= noisy.min() and noisy.max() <= 1.0 and level > 0
    residual = noisy - through
    # Demosaicing correlates the noise between neighbours (white noise would not be).
    flat = residual[:, :, 1]
    correlation = np.corrcoef(flat[:, :-1].ravel(), flat[:, 1:].ravel())[0, 1]
    assert correlation > 0.2
    # Shot noise: brighter raw values carry more noise (in raw space; the tone curve then reshapes it).
    quiet, _ = deg.add_camera_noise(clean, np.random.default_rng(1), dict(camera, shot=1e-4, read=1e-6))
    assert np.std(quiet - through) < 0.5 * np.std(residual)


def test_camera_noise_recipe_degrades_patches():
    from engine.training.datasets import degrade
    from engine.training.recipes import RecipeError, recipe_from_dict

    base = {"model": {"id": "x", "task": "photo-denoise", "arch": "edsr"}}
    recipe = recipe_from_dict({**base, "degradation": {"noise": "camera", "jpeg_prob": 1.0, "jpeg_quality": [80, 95]}})
    clean = _photo_patch(64)
    noisy, _ = degrade(clean, recipe.degradation, np.random.default_rng(2))
    assert noisy.shape == clean.shape and not np.allclose(noisy, clean)
    with pytest.raises(RecipeError):
        recipe_from_dict({**base, "degradation": {"noise": "film"}})


def test_paired_patches_shrink_to_fit_a_small_shot(tmp_path):
    """A user's 96x96 frames against a recipe's 128 px patches (the Train dialog's per-shot fine-tune): the
    dataset uses the largest aligned patch the frames hold and says so; without fit_multiple it refuses."""
    cv2 = pytest.importorskip("cv2")
    from engine.training.datasets import DataError, PairedImageDataset, match_pairs

    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    (tmp_path / "ref").mkdir()
    for i in range(2):
        image = (rng.random((96, 100, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / "in" / f"frame_{i}.png"), image)
        cv2.imwrite(str(tmp_path / "ref" / f"frame_{i}.png"), image)
    pairs = match_pairs(tmp_path / "in", tmp_path / "ref")
    with pytest.raises(DataError, match="at least 128"):
        PairedImageDataset(pairs, patch_size=128, roles=("color",))
    dataset = PairedImageDataset(pairs, patch_size=128, roles=("color",), fit_multiple=16)
    assert dataset.patch_size == 96 and "96 px instead of the recipe's 128 px" in dataset.note
    assert dataset.sample(np.random.default_rng(1)).target.shape == (3, 96, 96)
    roomy = PairedImageDataset(pairs, patch_size=64, roles=("color",), fit_multiple=16)
    assert roomy.patch_size == 64 and roomy.note == ""
