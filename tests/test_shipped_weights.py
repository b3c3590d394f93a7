"""Every shipped model's torch weights (resources/models/*.pt) still load into its architecture, and export to
an ONNX graph (plus its companion files, e.g. *.kernels.onnx) that computes what the shipped ONNX files compute.

This is the guard for changes to the architectures (options removed, modules split): a shipped model that no
longer loads, or loads into a different graph, fails here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from engine.models.manifest import load_manifest  # noqa: E402
from engine.training.export import export_model, load_weights, model_from_weights  # noqa: E402

MODELS = Path(__file__).resolve().parent.parent / "resources" / "models"
SHIPPED = sorted(path.stem for path in MODELS.glob("*.pt"))


def _feeds(session, height: int, width: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in session.get_inputs():
        shape = [1 if isinstance(d, str) or d is None else d for d in spec.shape]
        if spec.name == "noise_level":
            feeds[spec.name] = np.full((1, 1, 1, 1), 0.1, np.float32)
            continue
        shape[2:] = [height, width]
        low = -1.0 if spec.name == "normal" else 0.0
        feeds[spec.name] = rng.uniform(low, 1.0, shape).astype(np.float32)
    return feeds


def _same_outputs(shipped: Path, fresh: Path, size: tuple[int, int]) -> float:
    import onnxruntime as ort

    a = ort.InferenceSession(str(shipped), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(fresh), providers=["CPUExecutionProvider"])
    feeds = _feeds(a, *size, seed=5)
    assert [i.name for i in a.get_inputs()] == [i.name for i in b.get_inputs()]
    expected, got = a.run(None, feeds)[0], b.run(None, feeds)[0]
    assert expected.shape == got.shape
    return float(np.abs(expected - got).max())


def test_every_model_ships_its_weights():
    # companions (<id>.kernels.onnx, <id>.features.onnx...) have a dot in their stem
    assert {p.stem for p in MODELS.glob("*.onnx") if "." not in p.stem} == set(SHIPPED)


@pytest.mark.parametrize("model_id", SHIPPED)
def test_shipped_weights_export_to_the_shipped_graph(model_id, tmp_path):
    weights = load_weights(MODELS / f"{model_id}.pt")
    model = model_from_weights(weights)
    manifest = load_manifest(MODELS / f"{model_id}.json")
    assert tuple(model.input_roles) == manifest.inputs
    assert (int(model.scale), int(model.alignment)) == (manifest.scale, manifest.tile.alignment)
    result = export_model(model, manifest, tmp_path, arch=weights["arch"], arch_config=weights["config"])
    align = max(8, manifest.tile.alignment)
    size = (4 * align, 5 * align)
    assert _same_outputs(MODELS / f"{model_id}.onnx", result.onnx_path, size) < 2e-4
    clipped = manifest.clipped.get("file")  # other weights (test below), not a companion of these
    companions = sorted(p.name.removeprefix(model_id) for p in MODELS.glob(f"{model_id}.*.onnx") if p.name != clipped)
    for suffix in companions:
        fresh = tmp_path / f"{model_id}{suffix}"
        assert fresh.is_file(), f"{model_id}: the export wrote no {fresh.name}"
        assert _same_outputs(MODELS / f"{model_id}{suffix}", fresh, size) < 2e-4


@pytest.mark.parametrize("model_id", SHIPPED)
def test_the_recipe_a_shipped_model_names_builds_its_network(model_id):
    """A shipped model can be retrained: the recipe its manifest names exists and builds the network of its .pt
    (no option of it was retired)."""
    from engine.training.archs import build_model
    from engine.training.recipes import load_recipe

    manifest = load_manifest(MODELS / f"{model_id}.json")
    recipe = load_recipe(MODELS.parent.parent / manifest.provenance["recipe"])
    weights = load_weights(MODELS / f"{model_id}.pt")
    assert recipe.model.arch == weights["arch"]
    model = build_model(recipe.model.arch, recipe.model.config)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {
        k: tuple(v.shape) for k, v in weights["state_dict"].items()}


@pytest.mark.parametrize("model_id", [m for m in SHIPPED if load_manifest(MODELS / f"{m}.json").clipped])
def test_weights_for_clipped_input_are_the_same_network(model_id):
    """A model's weights for clipped input (manifest ``clipped``) are its network with other weights: the same
    operators, inputs and tensor shapes, made by the same architecture and configuration, and not the same
    values; their file matches the sha256 the manifest gives."""
    import onnx
    from onnx import numpy_helper

    from engine.models.registry import file_sha256

    manifest = load_manifest(MODELS / f"{model_id}.json")
    path = MODELS / manifest.clipped["file"]
    assert file_sha256(path) == manifest.clipped["sha256"]
    run = manifest.clipped["provenance"]
    assert (run["arch"], run["config"]) == (manifest.provenance["arch"], manifest.provenance["config"])
    main, other = onnx.load(str(MODELS / manifest.file)), onnx.load(str(path))
    assert [n.op_type for n in main.graph.node] == [n.op_type for n in other.graph.node]
    assert [i.name for i in main.graph.input] == [i.name for i in other.graph.input]
    shapes = {t.name: tuple(t.dims) for t in main.graph.initializer}
    assert shapes == {t.name: tuple(t.dims) for t in other.graph.initializer}
    differ = [t.name for t in other.graph.initializer if t.name in shapes and not np.array_equal(
        numpy_helper.to_array(t), numpy_helper.to_array(next(u for u in main.graph.initializer if u.name == t.name)))]
    assert differ
