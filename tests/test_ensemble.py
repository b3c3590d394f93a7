"""The Quality setting's geometric self-ensemble (engine/ensemble.py) through tiling and the restore job."""

import numpy as np
import pytest

from engine.ensemble import PASS_COUNTS, apply, passes, undo
from engine.errors import EngineError, JobCancelled
from engine.image import make_image
from engine.jobs import CancelToken, run_job
from engine.models.registry import ModelRegistry
from engine.restore import restore_job
from engine.tiling import run_tiled
from tests.onnx_factory import install


def finish(job):
    while True:
        try:
            next(job)
        except StopIteration as done:
            return done.value


def lopsided(tile):
    """A 3x3 filter with no symmetry (radius 1): each of the 8 orientations gives a different output."""
    x = tile["color"]
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="reflect")
    height, width = x.shape[:2]
    weights = np.array([[0.5, 0.2, 0.0], [0.1, 0.1, 0.0], [0.05, 0.0, 0.05]], dtype=np.float32)
    out = np.zeros_like(x)
    for dy in range(3):
        for dx in range(3):
            out += weights[dy, dx] * padded[dy : dy + height, dx : dx + width]
    return out


def test_the_eight_symmetries_are_distinct_and_each_is_undone():
    x = np.arange(5 * 7 * 2, dtype=np.float32).reshape(5, 7, 2)
    seen = set()
    for symmetry in passes(8):
        turned = apply(symmetry, x)
        assert turned.shape[:2] == ((7, 5) if symmetry.rotations % 2 else (5, 7))
        seen.add(turned.tobytes() + bytes(turned.shape[:2]))
        assert np.array_equal(undo(symmetry, turned), x)
    assert len(seen) == 8
    assert not any(s.rotations % 2 for s in passes(4))  # 4 passes keep every tile's shape
    with pytest.raises(ValueError):
        passes(3)
    assert PASS_COUNTS == (1, 4, 8)


@pytest.mark.parametrize("count", [4, 8])
def test_tiled_ensemble_is_the_mean_of_the_turned_runs(count):
    rng = np.random.default_rng(0)
    image = rng.random((61, 83, 3)).astype(np.float32)
    expected = np.mean([undo(s, lopsided({"color": np.ascontiguousarray(apply(s, image))}))
                        for s in passes(count)], axis=0)
    single = finish(run_tiled({"color": image}, lopsided, tile=0))
    whole = finish(run_tiled({"color": image}, lopsided, tile=0, ensemble=count))
    tiled = finish(run_tiled({"color": image}, lopsided, tile=40, overlap=2, feather=4, ensemble=count))
    assert np.abs(whole - single).max() > 1e-2  # the orientations really differ
    np.testing.assert_allclose(whole, expected, atol=1e-6)
    np.testing.assert_allclose(tiled, expected, atol=1e-5)  # each tile's passes blend like single passes


def test_ensemble_progress_counts_each_pass_of_each_tile():
    image = np.zeros((64, 100, 3), np.float32)
    job = run_tiled({"color": image}, lambda t: t["color"], tile=64, overlap=2, feather=4, ensemble=8)
    steps = []
    while True:
        try:
            steps.append(next(job))
        except StopIteration:
            break
    assert steps[-1] == (16, 16) and len(steps) == 16  # 2 tiles x 8 passes


@pytest.fixture
def registry(tmp_path):
    folder = tmp_path / "models"
    install(folder, "tiny-denoise", build={"layers": 3})
    install(folder, "tiny-sr2", task="super-resolution", build={"layers": 2, "scale": 2})
    install(folder, "tiny-render", task="render-denoise", value_transform="log1p",
            build={"layers": 2, "extra_inputs": ("albedo", "normal")})
    return ModelRegistry([(folder, "bundled")], include_classical=False)


def test_restore_with_an_ensemble_says_so_and_stays_close_to_one_pass(registry):
    rng = np.random.default_rng(1)
    image = make_image(rng.random((37, 52, 3)).astype(np.float32))
    entry = registry.get("tiny-denoise")
    one = run_job(restore_job(image, entry))
    records = []
    eight = run_job(restore_job(image, entry, ensemble=8), records.append)
    assert "8-pass ensemble" in eight.label and eight.details["ensemble"] == 8
    assert "ensemble" not in one.details
    assert any("pass 8 of 8" in r.message for r in records)
    difference = np.abs(eight.image.pixels - one.image.pixels)
    assert 0 < difference.mean() < 0.1  # an untrained net is far from equivariant, but it is the same net


def test_ensemble_keeps_shapes_for_super_resolution_and_render_buffers(registry):
    rng = np.random.default_rng(2)
    low = make_image(rng.random((21, 34, 3)).astype(np.float32))
    up = run_job(restore_job(low, registry.get("tiny-sr2"), ensemble=8)).image
    assert (up.height, up.width) == (42, 68)
    from engine.image import ImageMeta

    hdr = make_image(rng.random((30, 44, 3)).astype(np.float32) * 4, meta=ImageMeta(format="exr", hdr=True),
                     layers={"albedo": rng.random((30, 44, 3)).astype(np.float32),
                             "normal": rng.random((30, 44, 3)).astype(np.float32) * 2 - 1})
    out = run_job(restore_job(hdr, registry.get("tiny-render"), ensemble=8)).image
    assert out.pixels.shape == (30, 44, 3) and np.isfinite(out.pixels).all()


def test_a_bad_pass_count_is_refused_and_cancel_stops_between_passes(registry):
    image = make_image(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(EngineError, match="1, 4 or 8 passes, not 2"):
        run_job(restore_job(image, registry.get("tiny-denoise"), ensemble=2))
    token = CancelToken()
    job = restore_job(image, registry.get("tiny-denoise"), tile=0, ensemble=8, token=token)
    seen = []
    with pytest.raises(JobCancelled):
        for progress in job:
            seen.append(progress.message)
            if "pass 2 of 8" in progress.message:
                token.cancel()
    assert not any("pass 3 of 8" in m for m in seen)
