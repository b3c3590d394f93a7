"""The network that reads the noise a JPEG holds (trained by engine/training/noise_level_net.py, shipped as
resources/estimators/jpeg-noise.onnx, run by engine/noise_estimate.py). Its accuracy on real photographs is
measured by bench/noise_estimate_files.py; tests/test_noise_estimate_files.py holds it to the issue's tolerances."""

from __future__ import annotations

import hashlib
import json
from argparse import Namespace

import numpy as np
import pytest
from PIL import Image as PILImage

from engine.imageio import read_image
from engine.noise_estimate import (
    JPEG_NETWORK_FILE,
    JpegSettings,
    jpeg_table_features,
    measure_noise,
    network_jpeg_noise,
    settings_tables,
)
from engine.paths import resources_dir
from tests.test_noise_estimate_files import SIZE, noisy_photo, save_jpeg


def test_shipped_network_matches_its_record():
    path = resources_dir().joinpath(*JPEG_NETWORK_FILE)
    record = json.loads(path.with_suffix(".json").read_text())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"]
    assert "engine.training.noise_level_net train" in record["trained_by"] and "SunHays80" in record["data"]
    assert record["parity_max_error"] < 1e-3
    assert path.stat().st_size < 2_000_000


def test_level_does_not_depend_on_the_image_size(tmp_path):
    """A part of a photo reads the noise of the whole (the network has no padding: with zero padding, a model
    trained on 96 px crops read 384 px crops 2.6x high at sigma 25, because the share of edge blocks differs)."""
    _, noisy = noisy_photo(25.0, seed=2)
    decoded = save_jpeg(noisy, tmp_path / "n.jpg", 90, 2)
    settings = JpegSettings(quality=90, subsampling=2)
    whole = network_jpeg_noise(decoded, settings)
    for part in (decoded[:, : SIZE // 2], decoded[:, SIZE // 2 :], decoded[: SIZE // 2], decoded[SIZE // 2 :]):
        assert network_jpeg_noise(part, settings).held == pytest.approx(whole.held, rel=0.12)
        assert network_jpeg_noise(part, settings).before == pytest.approx(whole.before, rel=0.12)


def test_colour_jpeg_level_is_the_networks_and_its_tables_are_the_files(tmp_path):
    _, noisy = noisy_photo(10.0, seed=3)
    save_jpeg(noisy, tmp_path / "n.jpg", 85, 0)
    image = read_image(tmp_path / "n.jpg")
    settings = JpegSettings.of_image(image)
    # The file's own tables are libjpeg's at the quality it was saved with.
    assert np.allclose(jpeg_table_features(settings_tables(settings), settings.subsampling),
                       jpeg_table_features(settings_tables(JpegSettings(quality=85, subsampling=0)), 0))
    read = network_jpeg_noise(image.pixels, settings)
    estimate = measure_noise(image)
    assert estimate.level == pytest.approx(read.held)
    assert estimate.sigma_before_compression == pytest.approx(read.before)
    assert len(read.quadrants) == 4 and sum(share for share, _ in read.quadrants) == pytest.approx(1.0)
    assert read.blocks == (SIZE // 8 - 7) ** 2


def test_noise_unlike_the_rest_of_the_jpeg_is_unsure(tmp_path):
    """Weak noise on one half, strong on the other: the network weighs the half it reads best, the other half
    reads far more, so the level is not filled in."""
    clean, _ = noisy_photo(0.0, seed=0)
    rng = np.random.default_rng(9)
    mixed = clean.copy()
    mixed[:, : SIZE // 2] += 5.0 / 255.0 * rng.standard_normal((SIZE, SIZE // 2, 3)).astype(np.float32)
    mixed[:, SIZE // 2 :] += 40.0 / 255.0 * rng.standard_normal((SIZE, SIZE // 2, 3)).astype(np.float32)
    save_jpeg(np.clip(mixed, 0, 1), tmp_path / "m.jpg", 90, 2)
    estimate = measure_noise(read_image(tmp_path / "m.jpg"))
    assert not estimate.confident and "different noise levels" in estimate.reason


def test_gray_jpeg_is_measured_by_the_simulation(tmp_path):
    clean, noisy = noisy_photo(25.0, seed=4)
    for name, pixels in (("c.jpg", clean), ("n.jpg", noisy)):
        PILImage.fromarray(np.clip(np.rint(pixels[:, :, 0] * 255), 0, 255).astype(np.uint8)).save(
            tmp_path / name, quality=90)
    image = read_image(tmp_path / "n.jpg")
    assert network_jpeg_noise(image.pixels, JpegSettings.of_image(image)) is None
    with PILImage.open(tmp_path / "n.jpg") as n, PILImage.open(tmp_path / "c.jpg") as c:
        truth = float(np.std(np.asarray(n, np.float32) - np.asarray(c, np.float32)))
    estimate = measure_noise(image)
    assert estimate.method == "jpeg" and estimate.level == pytest.approx(truth, rel=0.2)


def test_training_samples_and_export(tmp_path):
    torch = pytest.importorskip("torch")
    from engine.training.noise_level_net import CROP, _command, build_model, export, pooled, sample

    clean, _ = noisy_photo(0.0, seed=0)
    photos = [(np.clip(np.rint(clean * 255), 0, 255).astype(np.uint8), 0.5)]
    pixels, tables, targets = sample(photos, np.random.default_rng(1), crop=CROP)
    assert pixels.shape == (3, CROP, CROP) and tables.shape == (9,) and targets.shape == (2,)
    assert np.all(np.isfinite(targets)) and tables[6:].sum() == 1.0  # one subsampling
    model = build_model()
    maps = model(torch.from_numpy(pixels[None]), torch.from_numpy(tables[None]))
    assert maps.shape == (1, 3, CROP // 8 - 7, CROP // 8 - 7) and pooled(maps).shape == (1, 2)
    checkpoint = tmp_path / "best.pt"
    torch.save({"model": model.state_dict(), "width": 64, "depth": 3, "step": 1, "steps": 1, "batch": 1,
                "lr": 1e-3, "seed": 0, "validation_held_error": 1.0}, checkpoint)
    export(Namespace(checkpoint=str(checkpoint), out=str(tmp_path / "net.onnx")))
    record = json.loads((tmp_path / "net.json").read_text())
    assert record["parity_max_error"] < 1e-3 and record["parameters"] == sum(p.numel() for p in model.parameters())
    assert record["trained_by"] == ("python -m engine.training.noise_level_net train --steps 1 --batch 1 --lr 0.001 "
                                    "--seed 0")
    # A fine-tune's record names the run it started from, and its own options.
    tuned = _command({"steps": 4, "batch": 2, "lr": 3e-4, "seed": 0, "more_photos": True,
                      "init": record["trained_by"] + " (its step 1)"})
    assert tuned.startswith(record["trained_by"] + " (its step 1), then ") and "--more-photos --init" in tuned
