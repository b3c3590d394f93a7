"""Camera raw files: reading them (LibRaw), what `info` says, the packed Bayer mosaic, the noise measured on it, the
raw denoiser's restore (picked by the suggestion rule) and the 16-bit TIFF with EXIF it writes. Every raw file here
is a DNG the test writes (tests/raw_dng.py); none comes from a real camera."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.cli import main as cli
from engine.errors import ImageReadError, ImageWriteError
from engine.imageio import SUPPORTED_READ_EXTENSIONS, SUPPORTED_WRITE_EXTENSIONS, describe, read_image, write_image
from engine.imageio.exif_tags import read_file_tags
from engine.raw.mosaic import RED_OFFSET, noise_map, pack, unpack
from engine.raw.noise import estimate_noise
from engine.training import degradations as deg

from .raw_dng import EXIF, box_filter_model, mosaic_of, raw_values, scene, write_dng

PATTERNS = tuple(RED_OFFSET)


def _write_scene_dng(path, pattern="RGGB", black=512, white=16383, noise=0.0, orientation=1, seed=0):
    values = raw_values(scene(), pattern, black, white)
    if noise:
        rng = np.random.default_rng(seed)
        values = values + rng.normal(0.0, noise * (white - black), values.shape)
    return write_dng(path, np.clip(np.rint(values), 0, 65535), pattern=pattern, black=black, white=white,
                     orientation=orientation)


# --------------------------------------------------------------------------------------------- the mosaic


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("shape", [(8, 10), (9, 11), (2, 3)])
def test_packing_puts_red_first_for_every_pattern_and_unpacks_exactly(pattern, shape):
    rgb = np.zeros(shape + (3,), np.float32)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 1.0, 2.0, 3.0
    mosaic = mosaic_of(rgb, pattern) + np.random.default_rng(0).random(shape).astype(np.float32) * 0.1
    planes, packing = pack(mosaic, pattern)
    assert planes.shape[0] == 4
    np.testing.assert_array_equal(np.floor(planes[0]), 1.0)  # red
    np.testing.assert_array_equal(np.floor(planes[1]), 2.0)  # green on red rows
    np.testing.assert_array_equal(np.floor(planes[2]), 2.0)
    np.testing.assert_array_equal(np.floor(planes[3]), 3.0)  # blue
    np.testing.assert_array_equal(unpack(planes, packing), mosaic)


def test_packing_refuses_what_is_not_a_bayer_pattern():
    with pytest.raises(ValueError, match="Bayer"):
        pack(np.zeros((4, 4)), "RGBW")


def test_noise_map_follows_the_poisson_gaussian_model():
    planes = np.full((4, 3, 3), 0.25, np.float32)
    np.testing.assert_allclose(noise_map(planes, 0.01, 1e-4), np.sqrt(0.01 * 0.25 + 1e-4), rtol=1e-6)


@pytest.mark.parametrize("shot,read", [(1e-3, 1e-6), (1e-4, 4e-7), (8e-3, 5e-5)])
def test_noise_is_measured_on_the_mosaic_within_15_percent(shot, read):
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:400, 0:600]
    clean = 0.02 + 0.7 * x / 600 + 0.05 * np.sin(y / 40.0)  # smooth scene: a ramp and a slow wave
    noisy = deg.add_sensor_noise(clean, shot, read, rng)
    profile = estimate_noise(pack(noisy)[0])
    for level in (0.05, 0.18, 0.5):
        truth = np.sqrt(shot * level + read)
        assert abs(profile.sigma_at(level) / truth - 1.0) < 0.15, (level, profile)


def test_noise_cannot_be_told_on_a_tiny_mosaic():
    assert estimate_noise(np.full((4, 6, 6), 0.3, np.float32)) is None


# --------------------------------------------------------------------------------------------- unprocessing


def test_camera_noise_is_unprocess_noise_process():
    rng = np.random.default_rng(0)
    image = rng.random((32, 32, 3)).astype(np.float32)
    camera = deg.random_camera(np.random.default_rng(5))
    expected, _ = deg.add_camera_noise(image, np.random.default_rng(9), camera)
    noise_rng = np.random.default_rng(9)
    mosaic = deg.add_sensor_noise(deg.unprocess(image, camera), camera["shot"], camera["read"], noise_rng)
    np.testing.assert_array_equal(deg.process_mosaic(mosaic, camera), expected)
    # Without noise, processing undoes unprocessing up to demosaicing: flat areas come back exactly.
    flat = np.full((16, 16, 3), 0.4, np.float32)
    np.testing.assert_allclose(deg.process_mosaic(deg.unprocess(flat, camera), camera), flat, atol=2e-3)


def test_raw_training_samples_are_packed_mosaics_with_their_noise_map():
    from engine.training.raw_data import raw_sample

    clean = np.random.default_rng(0).random((64, 48, 3)).astype(np.float32)
    camera = deg.random_camera(np.random.default_rng(3))
    sample = raw_sample(clean, np.random.default_rng(4), camera)
    assert sample.inputs["color"].shape == sample.inputs["noise_map"].shape == sample.target.shape == (4, 32, 24)
    np.testing.assert_allclose(sample.inputs["noise_map"],
                               noise_map(sample.inputs["color"], camera["shot"], camera["read"]), rtol=1e-6)
    residual = sample.inputs["color"] - sample.target
    assert residual.std() > 0.5 * np.sqrt(camera["read"])


# --------------------------------------------------------------------------------------------- reading


def test_raw_extensions_are_read_but_never_written():
    for extension in (".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw"):
        assert extension in SUPPORTED_READ_EXTENSIONS
        assert extension not in SUPPORTED_WRITE_EXTENSIONS


@pytest.mark.parametrize("pattern,white", [("RGGB", 16383), ("BGGR", 16383), ("GRBG", 65535), ("GBRG", 4095)])
def test_a_dng_is_developed_with_its_own_pattern_levels_and_white_balance(tmp_path, pattern, white):
    black = 512 if white > 4095 else 64
    image = read_image(_write_scene_dng(tmp_path / "scene.dng", pattern, black, white))
    assert image.meta.format == "raw" and image.meta.bit_depth == 16
    assert image.pixels.shape == (192, 256, 3)
    info = describe(image)
    assert info["cfa"] == pattern and info["white_level"] == white and info["black_levels"] == [black] * 4
    assert info["camera"] == "Testmaker T-100" and info["iso"] == 3200
    pixels = image.pixels
    red_patch, blue_patch, grey_field = pixels[40:56, 50:70], pixels[40:56, 140:180], pixels[120:180, 150:240]
    # The camera's white balance makes the grey field grey, and each patch keeps its colour, whatever the pattern.
    grey = grey_field.reshape(-1, 3).mean(axis=0)
    assert np.ptp(grey) < 0.03 * grey.mean(), grey
    assert red_patch[..., 0].mean() > 2 * red_patch[..., 2].mean()
    assert blue_patch[..., 2].mean() > 2 * blue_patch[..., 0].mean()
    # No auto-brightening: linear 0.25 comes out as sRGB(0.25) (~0.54), not stretched to the white point.
    assert abs(grey.mean() - 0.537) < 0.05


def test_the_raw_orientation_is_applied_when_developing(tmp_path):
    image = read_image(_write_scene_dng(tmp_path / "portrait.dng", orientation=6))
    assert image.pixels.shape == (256, 192, 3)


def test_a_broken_raw_file_is_a_clear_read_error(tmp_path):
    path = tmp_path / "broken.nef"
    path.write_bytes(b"II*\x00" + b"\x00" * 200)
    with pytest.raises(ImageReadError, match="raw"):
        read_image(path)


def test_info_prints_camera_iso_cfa_levels_and_noise(tmp_path, capsys):
    path = _write_scene_dng(tmp_path / "noisy.dng", "GRBG", noise=0.01)
    assert cli(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["camera"], info["iso"], info["cfa"], info["white_level"]) == ("Testmaker T-100", 3200, "GRBG", 16383)
    assert info["black_levels"] == [512, 512, 512, 512]
    assert info["lens"] == "Test Optics 50mm F1.8" and info["timestamp"] == "2024-05-01 10:11:12"
    assert "shot" in info["noise"] and "read" in info["noise"]


# --------------------------------------------------------------------------------------------- writing


def test_a_developed_raw_saves_as_16_bit_tiff_with_its_exif(tmp_path):
    import tifffile

    image = read_image(_write_scene_dng(tmp_path / "photo.dng", orientation=8))
    out = write_image(tmp_path / "photo.tif", image)
    assert tifffile.imread(out).dtype == np.uint16
    tags = read_file_tags(out)
    for key, value in EXIF.items():
        assert tags[key] == value, key
    assert (tags["Exif.Image.Make"], tags["Exif.Image.Model"]) == ("Testmaker", "T-100")
    assert tags["Exif.Image.Orientation"] == "1"  # the pixels are upright already
    with pytest.raises(ImageWriteError, match="read, never written"):
        write_image(tmp_path / "again.dng", image)


def test_a_jpeg_keeps_its_exif_when_saved_as_tiff(tmp_path):
    from PIL import Image as PILImage

    exif = PILImage.Exif()
    exif[0x010F], exif[0x0110] = "Maker", "Phone 1"
    PILImage.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(tmp_path / "a.jpg", exif=exif.tobytes())
    out = write_image(tmp_path / "a.tif", read_image(tmp_path / "a.jpg"))
    tags = read_file_tags(out)
    assert (tags["Exif.Image.Make"], tags["Exif.Image.Model"]) == ("Maker", "Phone 1")


# --------------------------------------------------------------------------------------------- restoring


@pytest.fixture
def raw_models(_user_home):
    from engine.paths import user_models_dir

    box_filter_model(user_models_dir(), "raw-test-box", 1.0)
    return user_models_dir()


@pytest.mark.parametrize("model", [None, "raw-test-box"])
def test_restore_picks_the_raw_model_and_writes_a_denoised_16_bit_tiff_with_exif(tmp_path, raw_models, capsys, model):
    """Without --model the suggestion rule picks the bundled raw model (bundled before the user's); with it, the
    tiny box-filter model. Either denoises the mosaic before the same development."""
    import tifffile

    path = _write_scene_dng(tmp_path / "noisy.dng", "BGGR", noise=0.02)
    out = tmp_path / "noisy.tif"
    assert cli(["restore", str(path), "-o", str(out)] + (["--model", model] if model else [])) == 0
    if model is None:
        assert "model raw-denoise-bayer (camera raw file (BGGR Bayer sensor)" in capsys.readouterr().err
    restored = tifffile.imread(out)
    assert restored.dtype == np.uint16 and restored.shape == (192, 256, 3)
    plain = np.rint(read_image(path).pixels * 65535)
    field_restored, field_plain = restored[130:180, 160:240].astype(float), plain[130:180, 160:240]
    assert abs(field_restored.mean() - field_plain.mean()) < 0.02 * field_plain.mean()  # same development
    assert field_restored.std() < 0.6 * field_plain.std()  # the mosaic was smoothed before demosaicing
    assert read_file_tags(out)["Exif.Photo.ISOSpeedRatings"] == "3200"


def test_the_identity_raw_model_gives_the_plain_development(tmp_path, _user_home):
    from engine.jobs import run_job
    from engine.models.registry import ModelRegistry
    from engine.paths import user_models_dir
    from engine.restore import restore_job

    box_filter_model(user_models_dir(), "raw-test-identity", 0.0)
    path = _write_scene_dng(tmp_path / "n.dng", "GBRG", noise=0.01)
    image = read_image(path)
    entry = ModelRegistry().get("raw-test-identity")
    result = run_job(restore_job(image, entry, tile=32), lambda progress: None)  # several tiles
    np.testing.assert_allclose(result.image.pixels, image.pixels, atol=1.5 / 65535)
    assert result.image.meta.exif == image.meta.exif


def test_raw_models_are_not_suggested_for_developed_photos(tmp_path, raw_models):
    from engine.models.registry import ModelRegistry
    from engine.models.suggest import suitability_warning

    write_image(tmp_path / "p.png", read_image(_write_scene_dng(tmp_path / "p.dng")))
    photo = read_image(tmp_path / "p.png")
    registry = ModelRegistry()
    assert registry.suggest(photo).entry.manifest.task == "photo-denoise"
    assert "raw files" in suitability_warning(photo, registry.get("raw-test-box").manifest)
    assert registry.suggest(read_image(tmp_path / "p.dng")).entry.manifest.task == "raw-denoise"


def test_a_folder_of_raws_is_restored_to_tiffs(tmp_path, raw_models):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b"):
        _write_scene_dng(folder / f"{name}.dng", noise=0.01)
    assert cli(["restore", str(folder), "-o", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.tif", "b.tif"]


# --------------------------------------------------------------------------------------------- training


def test_a_raw_recipe_trains_exports_and_denoises_a_dng(tmp_path):
    """The whole chain on a toy: [degradation] kind = raw trains raw-unet on unprocessed photographs, exports an
    ONNX model with the raw-denoise contract, and `restore` runs it on a DNG."""
    pytest.importorskip("torch")
    import cv2
    import torch

    from engine.jobs import run_job
    from engine.training.archs import ARCHITECTURES
    from engine.training.export import read_onnx_manifest
    from engine.training.recipes import recipe_from_dict
    from engine.training.trainer import TrainOptions, train_job

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        base = (np.ones((64, 64, 3)) * rng.random(3) * 255).astype(np.uint8)
        base[:, 20 + 5 * i :] //= 2
        cv2.imwrite(str(photos / f"p{i}.png"), base)
    recipe = recipe_from_dict({
        "model": {"id": "toy-raw", "task": "raw-denoise", "arch": "raw-unet", "value_transform": "linear",
                  "config": dict(ARCHITECTURES["raw-unet"].tiny)},
        "data": {"train": [str(photos)], "patch_size": 8, "val_crop": 32, "val_count": 1, "mining": "random"},
        "degradation": {"kind": "raw"},
        "train": {"steps": 3, "batch_size": 2, "val_every": 0, "checkpoint_every": 0},
    }, source="toy")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run_job(train_job(recipe, options=TrainOptions(run_dir=tmp_path / "run", out_dir=tmp_path / "models")))
    finally:
        torch.set_num_threads(previous)
    assert result.export.parity_error <= 1e-4
    manifest = read_onnx_manifest(result.export.onnx_path)
    assert manifest["inputs"] == ["color", "noise_map"] and manifest["channels"] == 4
    path = _write_scene_dng(tmp_path / "n.dng", "GRBG", noise=0.01)
    out = tmp_path / "n.tif"
    assert cli(["restore", str(path), "-o", str(out), "--model", "toy-raw"]) == 2  # not installed: usage error
    from engine.paths import user_models_dir

    user_models_dir().mkdir(parents=True, exist_ok=True)
    for file in (tmp_path / "models").iterdir():
        (user_models_dir() / file.name).write_bytes(file.read_bytes())
    assert cli(["restore", str(path), "-o", str(out), "--model", "toy-raw"]) == 0
    assert read_image(out).pixels.shape == (192, 256, 3)
