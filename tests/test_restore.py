import json
import shutil

import numpy as np
import pytest

from engine.errors import EngineError, JobCancelled, ModelError
from engine.image import ImageMeta, make_image
from engine.jobs import CancelToken, run_job
from engine.models.manifest import manifest_from_dict
from engine.models.registry import ModelRegistry, file_sha256, verify_model_file
from engine.restore import restore_job, suitability_warning
from tests.onnx_factory import install


@pytest.fixture
def registry(tmp_path):
    folder = tmp_path / "models"
    install(folder, "tiny-denoise", build={"layers": 3, "noise_input": True},
            params=[{"name": "noise_level", "type": "float", "default": 25, "min": 0, "max": 75}])
    install(folder, "tiny-sr2", task="super-resolution", build={"layers": 2, "scale": 2})
    install(folder, "tiny-render", task="render-denoise", value_transform="log1p",
            build={"layers": 2, "extra_inputs": ("albedo", "normal")})
    install(folder, "tiny-doc", task="document", build={"layers": 2, "channels": 1})
    return ModelRegistry([(folder, "bundled")])


def photo(height=70, width=90, alpha=False, gray=False, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.random((height, width, 1 if gray else 3)).astype(np.float32)
    a = rng.random((height, width)).astype(np.float32) if alpha else None
    return make_image(pixels, a, ImageMeta(format="png", bit_depth=16, gray=gray))


def test_registry_lists_models_and_classical_engines(registry):
    ids = {e.id for e in registry.models()}
    assert {"tiny-denoise", "tiny-sr2", "nlm", "lanczos-x2"} <= ids
    assert registry.default_for("photo-denoise").id == "tiny-denoise"  # a network before a classical engine
    with pytest.raises(ModelError, match="no model named"):
        registry.get("nope")


def test_tiled_restore_equals_untiled(registry):
    image = photo(101, 87)
    entry = registry.get("tiny-denoise")
    whole = run_job(restore_job(image, entry, {"noise_level": 10}, tile=0))
    tiled = run_job(restore_job(image, entry, {"noise_level": 10}, tile=40))
    assert tiled.details["tile"] == 40
    assert np.abs(tiled.image.pixels - whole.image.pixels).max() < 1e-4


def test_noise_level_reaches_the_model(registry):
    image = photo()
    entry = registry.get("tiny-denoise")
    low = run_job(restore_job(image, entry, {"noise_level": 0})).image.pixels
    high = run_job(restore_job(image, entry, {"noise_level": 75})).image.pixels
    assert np.abs(low - high).max() > 1e-3


def test_super_resolution_resizes_alpha_and_keeps_meta(registry):
    image = photo(30, 40, alpha=True)
    result = run_job(restore_job(image, registry.get("tiny-sr2"), tile=16))
    assert result.image.pixels.shape == (60, 80, 3)
    assert result.image.alpha.shape == (60, 80)
    assert result.image.meta.bit_depth == 16 and result.image.meta.format == "png"
    assert 0.0 <= result.image.pixels.min() and result.image.pixels.max() <= 1.0


def test_gray_model_on_gray_image_stays_gray(registry):
    image = photo(gray=True)
    result = run_job(restore_job(image, registry.get("tiny-doc")))
    pixels = result.image.pixels
    assert result.image.meta.gray
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 1])


def test_hdr_render_keeps_range_and_uses_aovs(registry):
    rng = np.random.default_rng(3)
    radiance = (rng.random((48, 64, 3)) * 20).astype(np.float32)
    radiance[0, 0] = np.nan  # a bad sample must not poison the result
    albedo = rng.random((48, 64, 3)).astype(np.float32)
    normal = rng.random((48, 64, 3)).astype(np.float32) * 2 - 1
    meta = ImageMeta(format="exr", bit_depth=32, sample_type="float", hdr=True, color_space="linear")
    image = make_image(radiance, None, meta, {"albedo": albedo, "normal": normal})
    entry = registry.get("tiny-render")
    assert suitability_warning(image, entry.manifest) is None
    result = run_job(restore_job(image, entry, tile=0))
    out = result.image.pixels
    assert np.isfinite(out).all() and out.max() > 1.0  # HDR range kept, not clipped to 1
    assert set(result.image.layers) == {"albedo", "normal"}
    tiled = run_job(restore_job(image, entry, tile=24)).image.pixels
    assert np.abs(tiled - out).max() < 1e-4 * max(1.0, float(out.max()))
    other = make_image(radiance, None, meta, {"albedo": albedo * 0.1, "normal": normal})
    assert np.abs(run_job(restore_job(other, entry)).image.pixels - out).max() > 1e-4


def test_render_model_without_aovs_is_refused_clearly(registry):
    meta = ImageMeta(format="exr", bit_depth=32, sample_type="float", hdr=True, color_space="linear")
    image = make_image(np.ones((16, 16, 3), np.float32), None, meta)
    entry = registry.get("tiny-render")
    assert "albedo and normal" in suitability_warning(image, entry.manifest)
    with pytest.raises(EngineError, match="albedo and normal"):
        run_job(restore_job(image, entry))


def test_photo_model_warns_about_hdr_input(registry):
    meta = ImageMeta(format="exr", bit_depth=32, hdr=True, color_space="linear")
    image = make_image(np.ones((16, 16, 3), np.float32) * 3, None, meta)
    assert "HDR" in suitability_warning(image, registry.get("tiny-denoise").manifest)


def test_cancel_stops_between_tiles(registry):
    token = CancelToken()
    job = restore_job(photo(200, 200), registry.get("tiny-denoise"), tile=48, token=token)
    next(job)  # prepare
    next(job)  # first tile
    token.cancel()
    with pytest.raises(JobCancelled):
        next(job)


def test_checksum_mismatch_is_refused(registry):
    entry = registry.get("tiny-sr2")
    with open(entry.path, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match="checksum"):
        verify_model_file(entry)


def test_bad_manifest_is_reported_not_fatal(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "broken.json").write_text("{not json", encoding="utf-8")
    (folder / "wrongtask.json").write_text('{"id": "x", "task": "cooking", "file": "x.onnx"}', encoding="utf-8")
    registry = ModelRegistry([(folder, "user")])
    assert len(registry.problems) == 2
    assert any("cooking" in p for p in registry.problems)


def test_unknown_parameter_is_a_clear_error(registry):
    with pytest.raises(ValueError, match="no parameter"):
        run_job(restore_job(photo(), registry.get("tiny-denoise"), {"strength": 3}))
    with pytest.raises(ValueError, match="between"):
        run_job(restore_job(photo(), registry.get("tiny-denoise"), {"noise_level": 500}))


def test_classical_nlm_denoises(registry):
    rng = np.random.default_rng(5)
    clean = np.tile(np.linspace(0.2, 0.8, 64, dtype=np.float32), (64, 1))[:, :, None].repeat(3, 2)
    noisy = np.clip(clean + rng.normal(0, 20 / 255, clean.shape), 0, 1).astype(np.float32)
    result = run_job(restore_job(make_image(noisy), registry.get("nlm"), {"noise_level": 20}))
    assert np.mean((result.image.pixels - clean) ** 2) < 0.5 * np.mean((noisy - clean) ** 2)
    assert result.device.startswith("CPU")


def test_cpu_device_is_reported_truthfully(registry):
    result = run_job(restore_job(photo(), registry.get("tiny-denoise"), device="cpu"))
    assert result.device.startswith("CPU (")


def test_automatic_tile_follows_memory_not_image_size(registry):
    from engine.restore import WHOLE_IMAGE_LIMIT, choose_tile_size

    manifest = registry.get("tiny-denoise").manifest
    small = photo(64, 64)
    assert choose_tile_size(small, manifest, None, bytes_per_pixel=100.0) == 0  # fits: one tile
    assert choose_tile_size(small, manifest, 128) == 128  # the user's choice wins
    # An image larger than the whole-image limit gets tiles whose area respects the limit.
    side = int(WHOLE_IMAGE_LIMIT**0.5) + 8
    big_view = make_image(np.broadcast_to(np.zeros((1, 1, 3), np.float32), (side, side, 3)))
    edge = choose_tile_size(big_view, manifest, None, bytes_per_pixel=24.0)
    assert 0 < edge and edge * edge <= WHOLE_IMAGE_LIMIT


def test_colour_model_on_gray_image_gives_a_gray_result(registry):
    image = photo(gray=True)
    result = run_job(restore_job(image, registry.get("tiny-denoise"), {"noise_level": 10}))
    pixels = result.image.pixels
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 2])
    assert result.image.meta.gray


def test_bundled_preferences_do_not_depend_on_file_order():
    """photo-denoise-color-fast.json sorts before photo-denoise-color.json: the full model must still come first,
    and a render with albedo + normal goes to the model that uses them."""
    from engine.models.registry import ModelRegistry
    from engine.paths import resources_dir

    bundled = ModelRegistry([(resources_dir() / "models", "bundled")])
    assert bundled.default_for("photo-denoise").id == "photo-denoise-color"
    assert bundled.ranked("render-denoise", ("albedo", "normal"))[0].id == "render-kprcan-aov"
    assert bundled.ranked("render-denoise")[0].id.startswith("render-kprcan")


def test_fixed_default_tile_shrinks_to_the_memory_budget(registry):
    from dataclasses import replace

    from engine.restore import FALLBACK_BYTES_PER_PIXEL, choose_tile_size, model_bytes_per_pixel

    manifest = registry.get("tiny-denoise").manifest
    measured = replace(manifest, tile=replace(manifest.tile, default=1024, bytes_per_pixel=1000.0, bytes_base=0.0))
    image = photo(64, 64)
    # Plenty of memory: the manifest's fixed tile as it is.
    assert choose_tile_size(image, measured, budget=4 << 30) == 1024
    # 1000 bytes per pixel and 256 MB: tiles of at most sqrt(256e6 / 1000) = 505 px, whatever the default says.
    edge = choose_tile_size(image, measured, budget=256_000_000)
    assert 400 < edge <= 505 and edge * edge * 1000 <= 256_000_000
    # The fixed part of the tile's memory counts too.
    based = replace(measured, tile=replace(measured.tile, bytes_base=128_000_000.0))
    assert choose_tile_size(image, based, budget=256_000_000) < edge
    # The user's own tile is honoured.
    assert choose_tile_size(image, measured, requested=1024, budget=256_000_000) == 1024
    # A model without a measured figure is sized with a conservative one, larger for super-resolution.
    assert model_bytes_per_pixel(manifest) == FALLBACK_BYTES_PER_PIXEL
    assert model_bytes_per_pixel(registry.get("tiny-sr2").manifest) == FALLBACK_BYTES_PER_PIXEL * 4


def test_automatic_tile_is_the_whole_image_only_when_it_fits(registry):
    from dataclasses import replace

    from engine.restore import choose_tile_size

    manifest = registry.get("tiny-denoise").manifest
    auto = replace(manifest, tile=replace(manifest.tile, default=0, bytes_per_pixel=1000.0))
    image = photo(300, 200)
    assert choose_tile_size(image, auto, budget=100_000_000) == 0  # 60,000 px x 1000 B = 60 MB
    edge = choose_tile_size(image, auto, budget=20_000_000)
    assert 0 < edge < 300 and edge * edge * 1000 <= 20_000_000


def test_shipped_models_carry_measured_tile_memory():
    from engine.models.registry import default_folders

    bundled = ModelRegistry([default_folders()[0]], include_classical=False).models()
    assert bundled
    for entry in bundled:
        assert entry.manifest.tile.bytes_per_pixel > 100, entry.id


@pytest.mark.parametrize("model", ["tiny-denoise", "tiny-render"])
def test_result_written_into_a_released_input_is_the_same(registry, model):
    entry = registry.get(model)
    if model == "tiny-render":
        rng = np.random.default_rng(3)
        layers = {"albedo": rng.random((101, 87, 3)).astype(np.float32),
                  "normal": rng.random((101, 87, 3)).astype(np.float32) * 2 - 1}
        make = lambda: make_image(rng_pixels * 3, meta=ImageMeta(format="exr", hdr=True, bit_depth=32),  # noqa: E731
                                  layers=layers)
        rng_pixels = np.random.default_rng(4).random((101, 87, 3)).astype(np.float32)
    else:
        make = lambda: photo(101, 87)  # noqa: E731
    kept = run_job(restore_job(make(), entry, tile=40))
    image = make()
    buffer = image.pixels
    released = run_job(restore_job(image, entry, tile=40, release_input=True))
    assert np.shares_memory(released.image.pixels, buffer)  # no second image-sized buffer
    np.testing.assert_allclose(released.image.pixels, kept.image.pixels, atol=1e-6)


def test_lazy_model_inputs_equal_the_eager_ones(registry):
    from engine.restore import model_inputs

    manifest = registry.get("tiny-render").manifest
    rng = np.random.default_rng(5)
    pixels = rng.random((40, 50, 3)).astype(np.float32) * 4
    pixels[3, 4] = np.nan
    pixels[5, 6] = -1.0
    image = make_image(pixels, meta=ImageMeta(format="exr", hdr=True, bit_depth=32),
                       layers={"albedo": rng.random((40, 50, 3)).astype(np.float32) * 1.5,
                               "normal": rng.random((40, 50, 1)).astype(np.float32)})
    eager, report = model_inputs(image, manifest, 0.7)
    lazy, lazy_report = model_inputs(image, manifest, 0.7, lazy=True)
    assert report == lazy_report and report["nonfinite_count"] == 3 and report["negative_count"] == 3
    for name, array in eager.items():
        assert lazy[name].shape == array.shape
        np.testing.assert_array_equal(lazy[name][10:30, 5:45], array[10:30, 5:45])
        assert np.isfinite(array).all()


@pytest.fixture
def two_weights(tmp_path):
    """A photo model with weights for clipped input (another network of the same shape), and that other network
    as a model of its own, to compare with."""
    folder = tmp_path / "clipped_models"
    level = [{"name": "noise_level", "type": "float", "default": 25, "min": 0, "max": 75}]
    install(folder, "tiny-other", build={"layers": 3, "noise_input": True, "seed": 7}, params=level)
    other = folder / "tiny-other.onnx"
    shutil.copyfile(other, folder / "tiny-main.clipped.onnx")
    install(folder, "tiny-main", build={"layers": 3, "noise_input": True}, params=level,
            clipped={"file": "tiny-main.clipped.onnx", "sha256": file_sha256(other),
                     "provenance": {"recipe": "tests (random weights)"}})
    return folder, ModelRegistry([(folder, "bundled")], include_classical=False)


def _run(image, entry):
    messages = []
    job = restore_job(image, entry, {"noise_level": 10})
    try:
        while True:
            messages.append(next(job).message)
    except StopIteration as stop:
        return stop.value.image.pixels, " ".join(messages + [stop.value.label])


def test_clipped_input_runs_the_weights_for_clipped_input(two_weights):
    _, registry = two_weights
    main, other = registry.get("tiny-main"), registry.get("tiny-other")
    assert main.manifest.clipped["file"] == "tiny-main.clipped.onnx"
    rng = np.random.default_rng(3)
    values = rng.random((40, 50, 3)).astype(np.float32)
    as_file = make_image(values, None, ImageMeta(format="png", bit_depth=16))  # an integer file: always clipped
    result, messages = _run(as_file, main)
    assert np.array_equal(result, _run(as_file, other)[0]) and "clipped input" in messages
    unclipped = make_image(values * 1.4 - 0.2)  # as bench/denoise.py makes the protocol's noisy input
    result, messages = _run(unclipped, main)
    # The model's own weights: the float image has values outside [0, 1], so its noise was not clipped.
    assert not np.array_equal(result, _run(unclipped, other)[0]) and "clipped input" not in messages
    in_range = make_image(values, None, ImageMeta(format="tiff", bit_depth=32, sample_type="float"))
    assert np.array_equal(_run(in_range, main)[0], _run(in_range, other)[0])


def test_weights_for_clipped_input_are_checked_and_validated(two_weights, tmp_path):
    folder, registry = two_weights
    with open(folder / "tiny-main.clipped.onnx", "ab") as handle:
        handle.write(b"\0")
    image = make_image(np.full((20, 20, 3), 0.5, np.float32), None, ImageMeta(format="png", bit_depth=8))
    with pytest.raises(ModelError, match="checksum"):
        _run(image, registry.get("tiny-main"))
    manifest = json.loads((folder / "tiny-main.json").read_text(encoding="utf-8"))
    for clipped, problem in (({"file": "../x.onnx", "sha256": "0" * 64}, "plain file name"),
                             ({"file": "x.onnx"}, "sha256"),
                             ({"file": "x.onnx", "sha256": "0" * 64, "provenance": []}, "provenance")):
        with pytest.raises(ModelError, match=problem):
            manifest_from_dict({**manifest, "clipped": clipped})
    assert "clipped" not in manifest_from_dict({k: v for k, v in manifest.items() if k != "clipped"}).to_dict()
