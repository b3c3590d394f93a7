import numpy as np
import pytest

from engine.image import make_image
from engine.imageio import read_image, write_image
from engine.inflight import restore_files, threads_per_worker
from engine.jobs import CancelToken
from engine.models.registry import ModelRegistry
from tests.onnx_factory import install


@pytest.fixture
def registry(tmp_path):
    folder = tmp_path / "models"
    install(folder, "tiny-denoise", build={"layers": 3, "noise_input": True},
            params=[{"name": "noise_level", "type": "float", "default": 25, "min": 0, "max": 75}])
    return ModelRegistry([(folder, "bundled")])


def inputs(folder, count=7):
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        path = folder / f"{index}.png"
        write_image(path, make_image(rng.random((30 + index, 41, 3)).astype(np.float32)))
        paths.append(path)
    return paths


def test_two_workers_give_the_same_files_as_one(registry, tmp_path):
    sources = inputs(tmp_path / "in")
    entry = registry.get("tiny-denoise")
    outputs = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        out.mkdir()
        seen = []
        results = restore_files(sources, lambda image, source, out=out: (entry, {"noise_level": 10}, out / source.name),
                                workers=workers, on_result=seen.append)
        assert [r.source for r in results] == sources  # in the order given
        assert all(r.ok for r in results) and len(seen) == len(sources)
        if workers == 2:
            assert {r.worker for r in results} == {0, 1}  # both workers took files
        outputs[workers] = [read_image(r.target).pixels for r in results]
    for one, two in zip(outputs[1], outputs[2], strict=True):
        np.testing.assert_array_equal(one, two)


def test_each_worker_runs_its_own_session(registry, tmp_path):
    from engine.runtime import load_onnx_model

    entry = registry.get("tiny-denoise")
    first = load_onnx_model(entry.path, "cpu", threads=1, slot=0)
    assert load_onnx_model(entry.path, "cpu", threads=1, slot=0) is first
    assert load_onnx_model(entry.path, "cpu", threads=1, slot=1) is not first


def test_a_bad_file_is_reported_and_the_others_go_on(registry, tmp_path):
    sources = inputs(tmp_path / "in", 4)
    sources[1].write_bytes(b"not a png")
    entry = registry.get("tiny-denoise")
    out = tmp_path / "out"
    out.mkdir()
    results = restore_files(sources, lambda image, source: (entry, {}, out / source.name), workers=2)
    assert [r.ok for r in results] == [True, False, True, True]
    assert results[1].error and results[1].target is None
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "2.png", "3.png"]


def test_a_cancelled_batch_stops(registry, tmp_path):
    from engine.errors import JobCancelled

    sources = inputs(tmp_path / "in", 3)
    token = CancelToken()
    token.cancel()
    entry = registry.get("tiny-denoise")
    results = restore_files(sources, lambda image, source: (entry, {}, tmp_path / source.name), workers=2,
                            token=token)
    assert results == []  # nothing was started
    token = CancelToken()

    def plan(image, source):
        token.cancel()
        return entry, {}, tmp_path / source.name

    with pytest.raises(JobCancelled):
        restore_files(sources, plan, workers=1, token=token)


def test_threads_are_shared_out():
    assert threads_per_worker(1, cores=8) == 8
    assert threads_per_worker(2, cores=8) == 4
    assert threads_per_worker(4, cores=2) == 1


def test_command_line_restores_a_folder_with_two_workers(registry, tmp_path, capsys):
    from engine.cli import main as cli
    from engine.paths import user_models_dir

    install(user_models_dir(), "tiny-user-denoise", build={"layers": 2, "noise_input": True},
            params=[{"name": "noise_level", "type": "float", "default": 25, "min": 0, "max": 75}])
    sources = inputs(tmp_path / "in", 5)
    sources[2].write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "out"
    code = cli(["restore", str(tmp_path / "in"), "-o", str(out), "--model", "tiny-user-denoise",
                "--set", "noise_level=10", "--workers", "2"])
    assert code == 1  # one file failed, the others were written
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "1.png", "3.png", "4.png"]
    captured = capsys.readouterr()
    assert "2.png" in captured.err and "4 of 5 images restored" in captured.err
    sequential = tmp_path / "seq"
    sequential.mkdir()
    assert cli(["restore", str(sources[0]), "-o", str(sequential / "0.png"), "--model", "tiny-user-denoise",
                "--set", "noise_level=10"]) == 0
    np.testing.assert_array_equal(read_image(sequential / "0.png").pixels, read_image(out / "0.png").pixels)
