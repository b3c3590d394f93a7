"""bench/flicker.py on a small shot the test makes: scores, the Blender column, held-out seeds, the written table."""

import json

import numpy as np
import pytest

from bench import flicker
from engine.render_data.exr import write_buffer, write_layered


def _shot(root, seed=95000, spp=4, frames=4, size=24):
    """A Cycles-shot layout: a gradient moving right one pixel a frame, noisy frames, 'Blender' frames that are
    the reference plus a steady bias (no flicker) and references."""
    folder = root / f"shot_{seed:06d}_spp{spp:04d}"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    for t in range(frames):
        ref = np.stack([0.2 + 0.6 * ((xs + t) % size) / size, 0.3 + 0.02 * ys / size, np.full_like(xs, 0.4)], -1)
        noisy = np.clip(ref + rng.normal(0, 0.1, ref.shape), 0, None).astype(np.float32)
        normal = np.dstack([0 * xs, 0 * xs, 1 + 0 * xs])
        write_layered(folder / f"frame_{t:04d}.exr", {"color": noisy, "albedo": ref.astype(np.float32),
                                                      "normal": normal}, half=False)
        write_buffer(folder / f"frame_{t:04d}_ref.exr", "color", ref.astype(np.float32))
        write_buffer(folder / f"frame_{t:04d}_blender.exr", "color", (ref * 1.05).astype(np.float32))
    (folder / "shot.json").write_text(json.dumps({"seed": seed, "noisy_spp": spp, "ref_spp": 512, "frames": frames}))
    return folder


def test_scores_a_shot_and_writes_the_tables(tmp_path, monkeypatch):
    _shot(tmp_path / "shots")
    monkeypatch.setattr(flicker, "DEFAULT_MODELS", ("render-kprcan-color",))
    out = tmp_path / "flicker"
    assert flicker.main(["--cycles", str(tmp_path / "shots"), "--mitsuba", "--out", str(out)]) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    shot = results["shots"]["shot_095000_spp0004"]
    assert shot["group"] == "Cycles 4 spp" and shot["frames"] == 4
    noisy, blender, ours = (shot["methods"][m] for m in ("noisy", "blender-oidn", "render-kprcan-color"))
    # Independent noise flickers (about twice its relMSE); a steady 5% bias does not flicker at all.
    assert noisy["temporal"] == pytest.approx(2 * noisy["rel_mse"], rel=0.3)
    assert blender["temporal"] < 0.05 * blender["rel_mse"]  # (the 5% bias moves with the gradient only)
    assert ours["rel_mse"] < noisy["rel_mse"] and len(ours["per_frame"]) == 4
    assert 0 < shot["reference_floor"]["rel_mse"] < noisy["rel_mse"] / 100
    text = out.with_suffix(".md").read_text()
    assert "| `blender-oidn` |" in text and "Cycles 4 spp: relMSE" in text and "bench/flicker.py" in text


def test_refuses_shots_in_the_training_range(tmp_path):
    _shot(tmp_path, seed=50000)
    with pytest.raises(SystemExit, match="training range"):
        flicker.cycles_shots(tmp_path)


def test_training_shots_without_references_are_left_out(tmp_path):
    folder = _shot(tmp_path, seed=95001)
    (folder / "shot.json").write_text(json.dumps({"seed": 50001, "noisy_spp": 4, "ref_spp": 0, "target_spp": 128}))
    assert flicker.cycles_shots(tmp_path) == []


def test_a_model_given_by_its_files_is_found(tmp_path):
    import shutil

    from engine.models.registry import default_folders

    bundled = next(folder for folder, source in default_folders() if (folder / "render-kprcan-color.json").is_file())
    for name in ("render-kprcan-color.json", "render-kprcan-color.onnx", "render-kprcan-color.kernels.onnx"):
        if (bundled / name).is_file():
            shutil.copy2(bundled / name, tmp_path / name)
    _, entries = flicker.resolve_models([str(tmp_path / "render-kprcan-color.onnx")])
    assert [e.id for e in entries] == ["render-kprcan-color"]
    with pytest.raises(SystemExit, match="no-such-model"):
        flicker.resolve_models(["no-such-model"])


def _temporal_gate(folder):
    """A temporal ONNX model: previous_valid * previous_output + (1 - previous_valid) * color (+ 0 * previous_color):
    it carries the first frame's output along wherever the previous frame is valid, so it hardly flickers."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from engine.models.registry import file_sha256

    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, "H", "W"])
              for n in ("color", "previous_color", "previous_output")]
    inputs.append(helper.make_tensor_value_info("previous_valid", TensorProto.FLOAT, [1, 1, "H", "W"]))
    nodes = [helper.make_node("Mul", ["previous_valid", "previous_output"], ["kept"]),
             helper.make_node("Sub", ["one", "previous_valid"], ["weight"]),
             helper.make_node("Mul", ["weight", "color"], ["fresh"]),
             helper.make_node("Mul", ["zero", "previous_color"], ["unused"]),
             helper.make_node("Add", ["kept", "fresh"], ["mixed"]),
             helper.make_node("Add", ["mixed", "unused"], ["output"])]
    constants = [numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "one"),
                 numpy_helper.from_array(np.zeros((1, 1, 1, 1), np.float32), "zero")]
    graph = helper.make_graph(nodes, "gate", inputs,
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, "H", "W"])], constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True)
    path = folder / "gate-temporal.onnx"
    onnx.save(model, str(path))
    manifest = {"id": "gate-temporal", "task": "render-denoise", "name": "Gate", "engine": "onnx", "file": path.name,
                "sha256": file_sha256(path), "channels": 3,
                "inputs": ["color", "previous_color", "previous_output", "previous_valid"], "value_transform": "linear",
                "tile": {"alignment": 1, "overlap": 0, "default": 0}, "provenance": {"recipe": "tests (a gate)"}}
    (folder / "gate-temporal.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_a_temporal_model_runs_through_the_shot_restorer(tmp_path, monkeypatch):
    from engine.models.manifest import INPUT_ROLES

    if "previous_output" not in INPUT_ROLES:
        pytest.skip("this checkout has no temporal models (engine/shot.py and the manifest's temporal inputs)")
    pytest.importorskip("engine.shot", reason="the shot restorer (engine/shot.py) is not in this checkout")
    _shot(tmp_path / "shots")
    _temporal_gate(tmp_path / "models")
    monkeypatch.setattr(flicker, "DEFAULT_MODELS", ())
    out = tmp_path / "flicker"
    assert flicker.main(["--cycles", str(tmp_path / "shots"), "--mitsuba", "--models", str(tmp_path / "models"),
                         "--out", str(out)]) == 0
    methods = json.loads(out.with_suffix(".json").read_text())["shots"]["shot_095000_spp0004"]["methods"]
    gate, noisy = methods["gate-temporal"], methods["noisy"]
    assert gate["temporal_model"] is True
    # No motion pass in this shot: the restorer carries frame t - 1's output along unwarped, so the output changes
    # far less from frame to frame than the noisy input.
    assert gate["temporal"] < noisy["temporal"] / 4
