"""The render models' fused CPU kernel stage (engine/kernel_pipeline.py, engine/native/guided_kernels.c): the same
result as the model's whole ONNX graph, the formula checked against plain numpy, and the fall-backs."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from engine import kernel_pipeline
from engine.kernel_pipeline import KernelPipelineModel, PipelineLayout, guided_kernels, native_available
from engine.models.entry import load_network
from engine.models.registry import ModelRegistry
from engine.runtime import OnnxModel, load_onnx_model

needs_native = pytest.mark.skipif(not native_available(), reason="the native kernel stage is not built here")


def test_the_native_stage_is_built_wherever_a_compiler_is():
    # pip install -e . (scripts/setup.sh) builds it; a machine with a C compiler and Python's headers that lacks
    # it has a broken install, which would silently run every render model 2-3x slower.
    compiler = shutil.which("cc") or shutil.which("gcc")
    headers = Path(sysconfig.get_paths()["include"], "Python.h").is_file()
    if compiler and headers:
        assert native_available()


def _reference(logits, ref_tap, strengths, group, guides, centres, signals, size, dilations, pad, cap):
    """The formula of guided_kernels.c in plain numpy (float64)."""
    scales = len(dilations)
    _, height, width = logits.shape
    centres = np.broadcast_to(centres, (scales, *centres.shape)) if centres.ndim == 3 else centres
    radius = size // 2
    penalised = []
    taps = []
    for scale, dilation in enumerate(dilations):
        for k in range(size * size):
            dy, dx = (k // size - radius) * dilation, (k % size - radius) * dilation
            window = np.s_[:, pad + dy : pad + dy + height, pad + dx : pad + dx + width]
            diff = guides[scale][window].astype(np.float64) - centres[scale]
            weight = np.stack([strengths[g * scales + scale] for g in group])
            penalised.append(logits[scale * size * size + k] - (weight * diff * diff).sum(axis=0))
            taps.append(signals[scale][window].astype(np.float64))
    penalised = np.stack(penalised)
    weights = np.exp(np.minimum(penalised - penalised[ref_tap], cap))
    return (weights[:, None] * np.stack(taps)).sum(axis=0) / weights.sum(axis=0)


@needs_native
@pytest.mark.parametrize("guide_channels, signal_channels, shared_centre", [(9, 3, True), (3, 3, False),
                                                                           (4, 2, True)])
def test_fused_kernels_match_the_formula(guide_channels, signal_channels, shared_centre):
    rng = np.random.default_rng(guide_channels)
    height, width, size, dilations = 37, 29, 5, [1, 2, 3]
    pad = 6
    scales = len(dilations)
    group = [min(c // 3, 2) for c in range(guide_channels)]
    groups = max(group) + 1
    logits = rng.normal(0, 3, (scales * size * size, height, width)).astype(np.float32)
    strengths = rng.uniform(0, 4, (groups * scales, height, width)).astype(np.float32)
    guides = rng.uniform(-1, 1, (scales, guide_channels, height + 2 * pad, width + 2 * pad)).astype(np.float32)
    signals = rng.uniform(0, 2, (scales, signal_channels, height + 2 * pad, width + 2 * pad)).astype(np.float32)
    if shared_centre:
        centres = np.ascontiguousarray(guides[0, :, pad:-pad, pad:-pad])
    else:
        centres = rng.uniform(-1, 1, (scales, guide_channels, height, width)).astype(np.float32)
    args = (logits, 12, strengths, group, guides, centres, signals, size, dilations, pad, 80.0)
    expected = _reference(*args)
    one = guided_kernels(*args, threads=1)
    assert one.shape == (signal_channels, height, width) and one.dtype == np.float32
    np.testing.assert_allclose(one, expected, rtol=2e-5, atol=2e-5)
    # bands of rows on two threads give the very same numbers
    np.testing.assert_array_equal(guided_kernels(*args, threads=2), one)


@needs_native
def test_the_softmax_cap_and_far_negative_logits_stay_finite():
    rng = np.random.default_rng(1)
    height = width = 8
    pad = 2
    logits = np.full((25, height, width), -500.0, np.float32)
    logits[12] = 0.0
    logits[3] = 300.0  # far above the reference: capped at e^80, still finite
    guides = np.zeros((1, 3, height + 2 * pad, width + 2 * pad), np.float32)
    signals = rng.uniform(0, 1, (1, 3, height + 2 * pad, width + 2 * pad)).astype(np.float32)
    out = guided_kernels(logits, 12, np.zeros((1, height, width), np.float32), [0, 0, 0], guides,
                         guides[0, :, pad:-pad, pad:-pad].copy(), signals, 5, [1], pad, 80.0, threads=1)
    assert np.isfinite(out).all()
    # tap 3 is (dy, dx) = (-2, +1): it holds all the weight
    np.testing.assert_allclose(out, signals[0][:, 0:height, 3 : 3 + width], rtol=1e-6)


@needs_native
def test_shape_mismatches_are_refused():
    logits = np.zeros((25, 4, 4), np.float32)
    guides = np.zeros((1, 3, 8, 8), np.float32)
    with pytest.raises(ValueError, match="padding"):
        guided_kernels(logits, 12, np.zeros((1, 4, 4), np.float32), [0, 0, 0], guides, np.zeros((3, 4, 4)),
                       guides, 5, [1], 1, 80.0)
    with pytest.raises(ValueError, match="signals"):
        guided_kernels(logits, 12, np.zeros((1, 4, 4), np.float32), [0, 0, 0], guides, np.zeros((3, 4, 4)),
                       guides[:, :, 1:], 5, [1], 2, 80.0)


def _tile(roles, size=96, seed=0):
    rng = np.random.default_rng(seed)
    tile = {}
    for role in roles:
        low = -1.0 if role == "normal" else 0.0
        blocks = rng.uniform(low, 1.0, (size // 8, size // 8, 3)).astype(np.float32)
        smooth = np.kron(blocks, np.ones((8, 8, 1), np.float32))
        tile[role] = smooth + 0.05 * rng.standard_normal(smooth.shape).astype(np.float32)
    tile["color"] = np.log1p(np.abs(tile["color"]) * 4)  # the model's log1p space, with some bright pixels
    return tile


@needs_native
@pytest.mark.parametrize("model_id", ["render-kprcan-aov", "render-kprcan-color"])
def test_bundled_render_models_give_their_whole_graphs_output(model_id, monkeypatch):
    entry = ModelRegistry(include_classical=False).get(model_id)
    pipeline = load_network(entry, "cpu", threads=2)
    assert isinstance(pipeline, KernelPipelineModel)
    tile = _tile(entry.manifest.inputs, size=96 + 2 * entry.manifest.tile.alignment)
    graph = OnnxModel(entry.path, "cpu", threads=2)
    expected = graph.run_image(tile)
    got = pipeline.run_image(tile)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2e-5)
    # the switch for benchmarks (and a way out) runs the whole graph
    monkeypatch.setenv(kernel_pipeline.STAGE_ENV, "graph")
    assert isinstance(load_network(entry, "cpu"), OnnxModel)


def test_models_without_a_pipeline_and_machines_without_the_stage_run_the_whole_graph(monkeypatch):
    registry = ModelRegistry(include_classical=False)
    photo = registry.get("photo-denoise-color-fast")
    assert kernel_pipeline.pipeline_files(photo.manifest.provenance) is None
    assert isinstance(load_network(photo, "cpu"), OnnxModel)
    monkeypatch.setattr(kernel_pipeline, "native_available", lambda: False)
    render = registry.get("render-kprcan-aov")
    model = load_network(render, "cpu")
    assert isinstance(model, OnnxModel) and model is load_onnx_model(render.path, "cpu")


def test_the_layout_in_the_bundled_manifest_is_complete():
    entry = ModelRegistry(include_classical=False).get("render-kprcan-aov")
    data = kernel_pipeline.pipeline_files(entry.manifest.provenance)
    layout = PipelineLayout.from_provenance(data)
    assert (layout.taps, layout.dilations) == (5, (1, 2, 4)) and layout.guide == ("albedo", "normal", "color")
    assert layout.refine_guides == ("color", "albedo", "normal") and layout.ref_tap == 12
    broken = dict(data)
    del broken["dilations"]
    with pytest.raises(Exception, match="incomplete"):
        PipelineLayout.from_provenance(broken)


@needs_native
def test_a_model_folder_without_its_pipeline_files_still_runs_its_whole_graph(tmp_path, caplog):
    import json

    source = Path(ModelRegistry(include_classical=False).get("render-kprcan-aov").path).parent
    data = json.loads((source / "render-kprcan-aov.json").read_text(encoding="utf-8"))
    data.update(id="copied", file="copied.onnx")
    (tmp_path / "copied.json").write_text(json.dumps(data), encoding="utf-8")
    shutil.copyfile(source / "render-kprcan-aov.onnx", tmp_path / "copied.onnx")
    entry = ModelRegistry(folders=[(tmp_path, "user")], include_classical=False).get("copied")
    with caplog.at_level("WARNING"):
        assert isinstance(load_network(entry, "cpu"), OnnxModel)
    assert "running the whole graph" in caplog.text and "features.onnx" in caplog.text


@needs_native
def test_the_restore_job_sizes_tiles_by_the_pipelines_own_memory_figure():
    from engine.jobs import CancelToken

    entry = ModelRegistry(include_classical=False).get("render-kprcan-aov")
    measured = entry.manifest.provenance["pipeline"]["bytes_per_pixel"]
    assert 0 < measured < entry.manifest.tile.bytes_per_pixel  # no 225-channel concatenations
    bound = entry.tile_function({}, "cpu", CancelToken())
    assert bound.bytes_per_pixel == measured
