"""Out-of-memory during inference: recognised from every layer's wording and retried with smaller tiles."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.errors import DeviceOutOfMemory, EngineError, JobCancelled
from engine.image import ImageMeta, make_image
from engine.jobs import CancelToken, run_job
from engine.models.registry import ModelRegistry
from engine.oom import is_out_of_memory
from engine.restore import restore_job, smaller_tile
from engine.runtime import load_onnx_model
from tests.onnx_factory import install

ORT_OOM = (
    "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running Conv node. "
    "Name:'/conv1' Status Message: Failed to allocate memory for requested buffer of size 268435456"
)


@pytest.fixture
def entry(tmp_path):
    install(tmp_path / "models", "tiny-denoise", build={"layers": 3, "noise_input": True},
            params=[{"name": "noise_level", "type": "float", "default": 25, "min": 0, "max": 75}])
    return ModelRegistry([(tmp_path / "models", "bundled")]).get("tiny-denoise")


def photo(height=100, width=100):
    pixels = np.random.default_rng(0).random((height, width, 3)).astype(np.float32)
    return make_image(pixels, None, ImageMeta(format="png", bit_depth=8))


class _StarvedSession:
    """Wraps a real ONNX Runtime session and fails, as ORT does, on inputs above a pixel budget."""

    def __init__(self, session, max_pixels: int, error_type: type[BaseException]) -> None:
        self.session = session
        self.max_pixels = max_pixels
        self.error_type = error_type
        self.sizes: list[tuple[int, int]] = []

    def run(self, names, feeds, options=None):
        height, width = feeds["color"].shape[2:]
        self.sizes.append((height, width))
        if height * width > self.max_pixels:
            raise self.error_type(ORT_OOM)
        return self.session.run(names, feeds, options)


def _starve(monkeypatch, entry, max_pixels, error_type=None):
    if error_type is None:
        from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException as error_type
    model = load_onnx_model(entry.path, "auto")
    starved = _StarvedSession(model.session, max_pixels, error_type)
    monkeypatch.setattr(model, "session", starved)
    return starved


def test_ort_out_of_memory_is_retried_with_smaller_tiles(entry, monkeypatch):
    image = photo()
    reference = run_job(restore_job(image, entry, {"noise_level": 10})).image.pixels
    starved = _starve(monkeypatch, entry, max_pixels=70 * 70)
    records = []
    result = run_job(restore_job(image, entry, {"noise_level": 10}), records.append)
    assert starved.sizes[0] == (100, 100)  # the whole image first, as the automatic tile size says
    assert max(h * w for h, w in starved.sizes[1:]) <= 70 * 70
    retries = [r for r in records if "retrying" in r.message]
    assert len(retries) == 1 and "tiles of 64 px" in retries[0].message
    assert "out of memory with the whole image" in retries[0].message
    assert retries[0].metrics["tile_size"] == 64
    later = [r for r in records if r.message.startswith("tile ")]
    assert later and all("64 px tiles after running out of memory" in r.message for r in later)
    assert result.details["oom_retries"] == [64] and result.details["tile"] == 64
    np.testing.assert_allclose(result.image.pixels, reference, atol=2e-5)  # tiling keeps the result
    assert records[-1].fraction == 1.0


def test_halving_continues_down_to_the_floor_then_gives_a_clear_error(entry, monkeypatch):
    image = photo(300, 300)
    starved = _starve(monkeypatch, entry, max_pixels=100 * 100)
    records = []
    result = run_job(restore_job(image, entry, tile=256), records.append)
    assert result.details["oom_retries"] == [128, 64]
    assert [r.metrics["tile_size"] for r in records if "retrying" in r.message] == [128, 64]
    assert result.image.pixels.shape == (300, 300, 3)

    starved.max_pixels = 10  # nothing fits
    with pytest.raises(DeviceOutOfMemory, match="out of memory even with tiles of 64 px"):
        run_job(restore_job(image, entry, tile=256))


def test_other_inference_errors_are_not_retried(entry, monkeypatch):
    model = load_onnx_model(entry.path, "auto")

    class Broken:
        calls = 0

        def run(self, *args):
            Broken.calls += 1
            raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions")

    monkeypatch.setattr(model, "session", Broken())
    with pytest.raises(EngineError, match="inference failed") as caught:
        run_job(restore_job(photo(), entry))
    assert not isinstance(caught.value, DeviceOutOfMemory) and Broken.calls == 1


def test_cancel_during_a_retry_still_cancels(entry, monkeypatch):
    _starve(monkeypatch, entry, max_pixels=70 * 70)
    token = CancelToken()
    job = restore_job(photo(), entry, token=token)
    for record in job:
        if "retrying" in record.message:
            token.cancel()
            break
    with pytest.raises(JobCancelled):
        next(job)


def test_every_layers_wording_is_recognised():
    class OutOfMemoryError(RuntimeError):  # torch.cuda.OutOfMemoryError, without importing torch
        pass

    assert is_out_of_memory(OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError(ORT_OOM))
    assert is_out_of_memory(RuntimeError("CUDA failure 2: out of memory ; GPU=0 ; hostname=x"))
    assert is_out_of_memory(RuntimeError("CUBLAS failure 3: CUBLAS_STATUS_ALLOC_FAILED"))
    assert is_out_of_memory(RuntimeError("BFCArena::AllocateRawInternal Available memory of 1024 is smaller than "
                                         "requested bytes of 4096"))
    assert is_out_of_memory(Exception("OpenCV(4.14) error: (-4:Insufficient memory) Failed to allocate"))
    assert is_out_of_memory(MemoryError())
    try:
        try:
            raise MemoryError()
        except MemoryError as inner:
            raise EngineError("tile failed") from inner
    except EngineError as outer:
        assert is_out_of_memory(outer)  # found through the cause
    assert not is_out_of_memory(RuntimeError("INVALID_ARGUMENT: Got invalid dimensions"))
    assert not is_out_of_memory(ValueError("bad value"))


def test_smaller_tile_halves_keeps_alignment_and_stops_at_the_floor(entry):
    manifest = entry.manifest  # overlap 4, alignment 1
    image = photo(1000, 600)
    assert smaller_tile(0, image, manifest) == 500  # whole image: half its longer side
    assert smaller_tile(512, image, manifest) == 256
    assert smaller_tile(100, image, manifest) == 64
    assert smaller_tile(64, image, manifest) is None
    wide = dataclasses.replace(manifest, tile=dataclasses.replace(manifest.tile, alignment=8, overlap=88))
    assert smaller_tile(512, image, wide) == 256
    assert smaller_tile(256, image, wide) == 224  # 2 * 88 + 48, a multiple of 8
    assert smaller_tile(224, image, wide) is None


def test_a_tile_too_small_for_the_models_overlap_is_raised_to_a_sensible_one(tmp_path):
    install(tmp_path / "m", "wide", build={"layers": 2}, tile={"alignment": 2, "overlap": 88, "default": 512})
    entry = ModelRegistry([(tmp_path / "m", "bundled")]).get("wide")
    records = []
    result = run_job(restore_job(photo(300, 300), entry, tile=128), records.append)
    assert records[-2].metrics["tiles"] == 16
    assert result.details["tile"] == 224  # 2 * 88 + 48: the smallest sensible tile, not a refusal
    assert result.image.pixels.shape == (300, 300, 3)
