"""The edge-case corpus: every valid oddity loads as what it is, survives a restore and a save; bombs cost nothing."""

from __future__ import annotations

import resource
import time

import numpy as np
import pytest

from bench.edge_corpus import build_edge_corpus
from bench.malformed import build_corpus
from engine.errors import ImageReadError
from engine.image import ImageMeta, make_image
from engine.imageio import read_image, write_image
from engine.jobs import run_job
from engine.models.registry import ModelRegistry
from engine.restore import restore_job
from tests.onnx_factory import install

EXTENSION = {"png": "png", "jpeg": "jpg", "tiff": "tif", "bmp": "bmp", "webp": "webp", "exr": "exr", "hdr": "hdr"}


@pytest.fixture(scope="module")
def edge_corpus(tmp_path_factory):
    return build_edge_corpus(tmp_path_factory.mktemp("edge"))


@pytest.mark.timeout(60)
def test_every_edge_case_loads_as_what_it_is(edge_corpus):
    assert len(edge_corpus) >= 35
    problems = []
    for case in edge_corpus:
        try:
            image = read_image(case.path)
            assert (image.height, image.width) == case.size, (image.height, image.width)
            assert image.pixels.dtype == np.float32 and image.pixels.shape[2] == 3
            case.check(image)
        except Exception as error:  # collect every failure, not only the first
            problems.append(f"{case.path.name}: {type(error).__name__}: {error}")
    assert not problems, "\n".join(problems)


@pytest.mark.timeout(60)
def test_every_edge_case_saves_in_its_own_format_and_reads_back(edge_corpus, tmp_path):
    for case in edge_corpus:
        image = read_image(case.path)
        target = tmp_path / f"{case.path.stem}.out.{EXTENSION[image.meta.format]}"
        write_image(target, image)
        again = read_image(target)
        assert (again.height, again.width) == (image.height, image.width), case.path.name
        assert (again.alpha is None) == (image.alpha is None or image.meta.format == "jpeg"), case.path.name
        assert again.meta.gray == image.meta.gray or image.meta.format == "webp", case.path.name


@pytest.fixture(scope="module")
def tiny_registry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    install(folder, "tiny-denoise", build={"layers": 3, "noise_input": True},
            params=[{"name": "noise_level", "type": "float", "default": 25, "min": 0, "max": 75}])
    install(folder, "tiny-aligned", build={"layers": 2}, tile={"alignment": 8, "overlap": 3, "default": 0})
    install(folder, "tiny-sr2", task="super-resolution", build={"layers": 2, "scale": 2})
    return ModelRegistry([(folder, "bundled")])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("model_id", ["tiny-denoise", "tiny-aligned", "tiny-sr2", "nlm", "bicubic-x2"])
def test_degenerate_shapes_restore_without_error(tiny_registry, model_id):
    entry = tiny_registry.get(model_id)
    for height, width in ((1, 1), (1, 3000), (3000, 1), (2, 3)):
        pixels = np.random.default_rng(height * width).random((height, width, 3)).astype(np.float32)
        image = make_image(pixels, np.ones((height, width), np.float32), ImageMeta(format="png", bit_depth=8))
        for tile in (None, 96):
            result = run_job(restore_job(image, entry, tile=tile)).image
            scale = entry.manifest.scale
            assert result.pixels.shape == (height * scale, width * scale, 3)
            assert result.alpha.shape == (height * scale, width * scale)
            assert np.isfinite(result.pixels).all()


@pytest.mark.timeout(60)
def test_decompression_bombs_are_refused_before_any_allocation(tmp_path):
    bombs = [(path, words) for path, words in build_corpus(tmp_path) if "bomb" in path.name or "absurd" in path.name]
    assert len(bombs) >= 13
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    for path, _words in bombs:
        started = time.perf_counter()
        with pytest.raises(ImageReadError):
            read_image(path)
        assert time.perf_counter() - started < 2.0, path.name
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mib < 200, f"reading bombs raised the peak RSS by {grown_mib:.0f} MiB"
