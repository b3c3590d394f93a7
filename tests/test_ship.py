"""One manifest writer (engine/models/manifest_writer.py) and one ship command (``main.py ship``): a training
run becomes a shipped model with its companion files, a shipped model is re-exported from its weights, and a
benchmark's scores are merged into a manifest, all through the same writer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.cli import main as cli  # noqa: E402
from engine.errors import ModelError  # noqa: E402
from engine.image import ImageMeta, make_image  # noqa: E402
from engine.jobs import run_job  # noqa: E402
from engine.kernel_pipeline import native_available  # noqa: E402
from engine.models.entry import for_input  # noqa: E402
from engine.models.manifest import load_manifest  # noqa: E402
from engine.models.manifest_writer import update_manifest, write_manifest  # noqa: E402
from engine.models.registry import ModelRegistry, file_sha256, verify_model_file  # noqa: E402
from engine.training.recipes import recipe_from_dict  # noqa: E402
from engine.training.trainer import TrainOptions, train_job  # noqa: E402
from tests.test_training_trainer import _render_pairs  # noqa: E402

MANIFEST = {"id": "m", "task": "render-denoise", "file": "m.onnx", "inputs": ["color"], "sha256": "ab" * 32,
            "provenance": {"recipe": "r.toml", "old": 1}, "scores": {"a": 1.0}}


def test_the_writer_merges_keeps_unknown_fields_and_refuses_bad_manifests(tmp_path):
    path = write_manifest(tmp_path / "m.json", MANIFEST, extra={"tiling": {"measured_px": 1024}})
    assert json.loads(path.read_text())["tiling"] == {"measured_px": 1024}
    before = path.read_text()
    assert update_manifest(path, scores={"a": 1.0}) is False and path.read_text() == before  # nothing changed
    assert update_manifest(path, scores={"b": 2.5}, provenance={"old": None, "new": "x"}) is True
    data = json.loads(path.read_text())
    assert data["scores"] == {"a": 1.0, "b": 2.5} and data["provenance"] == {"recipe": "r.toml", "new": "x"}
    assert data["tiling"] == {"measured_px": 1024} and list(data)[0] == "id"  # unknown fields and order kept
    assert load_manifest(path).scores["b"] == 2.5
    with pytest.raises(ModelError, match="task"):
        update_manifest(path, fields={"task": "teleport"})
    assert json.loads(path.read_text())["task"] == "render-denoise"  # a refused update leaves the file alone
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.fixture(scope="module")
def render_run(tmp_path_factory):
    """A real (tiny) KPRCAN training run: best.pt and last.pt as `main.py train --no-export` leaves them."""
    folder = tmp_path_factory.mktemp("ship")
    _render_pairs(folder / "data")
    recipe = recipe_from_dict({
        "model": {"id": "tiny-render", "task": "render-denoise", "arch": "kprcan", "value_transform": "log1p",
                  "name": "Tiny render", "config": {"aux_inputs": ["albedo", "normal"], "features": 4, "blocks": 1,
                                                    "guide": ["albedo", "color"], "refine": True}},
        "data": {"kind": "paired", "patch_size": 16, "val_crop": 32, "mining": "random"},
        "degradation": {"kind": "none"},
        "train": {"steps": 2, "batch_size": 2, "val_every": 2, "checkpoint_every": 0},
    }, source="recipes/tiny_render.toml")
    torch.set_num_threads(1)
    run_job(train_job(recipe, None, TrainOptions(data=(str(folder / "data"),), run_dir=folder / "run",
                                                 export=False)))
    return folder / "run"


def test_ship_a_run_then_reexport_it_and_add_benchmark_scores(render_run, tmp_path, capsys):
    out = tmp_path / "models"
    assert cli(["ship", str(render_run), "--out", str(out), "--device-note", "test CPU"]) == 0
    assert "tiny-render.onnx" in capsys.readouterr().out
    registry = ModelRegistry(folders=[(out, "bundled")], include_classical=False)
    entry = registry.get("tiny-render")
    verify_model_file(entry)
    provenance = entry.manifest.provenance
    # the recipe came from the checkpoint; the run's facts and the companion kernel model are recorded
    assert provenance["recipe"] == "recipes/tiny_render.toml" and provenance["arch"] == "kprcan"
    assert provenance["steps"] == 2 and provenance["device"] == "test CPU"
    assert (out / provenance["kernel_model"]).is_file() and "kernel_refine_taps" in provenance
    # the CPU kernel pipeline's graphs (engine/kernel_pipeline.py), checked against torch at export
    pipeline = provenance["pipeline"]
    assert (out / pipeline["features"]).is_file() and (out / pipeline["refine"]).is_file()
    assert pipeline["guide"] and pipeline["ref_tap"] == 12
    if Path("/proc/self/clear_refs").exists() and native_available():  # its own memory per tile pixel
        assert pipeline["bytes_per_pixel"] > 0 and entry.manifest.tile.bytes_per_pixel > 0
    assert (out / "tiny-render.pt").is_file() and entry.manifest.inputs == ("color", "albedo", "normal")

    results = {"summary": {"val": {"tiny-render": {"4": {"rel_mse": 0.0123456789, "psnr": 30.12345}}}}}
    (tmp_path / "render.json").write_text(json.dumps(results))
    assert cli(["ship", "--scores", str(tmp_path / "render.json"), "--id", "tiny-render", "--out", str(out)]) == 0
    scores = load_manifest(out / "tiny-render.json").scores
    assert scores["val_spp4_relmse"] == 0.012346 and scores["benchmark"] == "bench/results/render.md"
    # the foreign set's figures (bench/render_foreign.py) join the scores already there, they do not replace them
    foreign = {"kind": "render-foreign", "benchmark": "bench/results/render_foreign.md",
               "summary": {"tiny-render": {"4": {"geo_ratio": 1.21749, "wins": 3, "scenes": 7, "worst_dpsnr": 3.634},
                                           "64": {"geo_ratio": 2.5691, "wins": 1, "scenes": 7, "worst_dpsnr": -7.1}},
                           "oidn-aov": {"4": {"geo_ratio": 1.0, "wins": 0, "scenes": 7, "worst_dpsnr": 5.5}}},
               "rows": []}
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))
    assert cli(["ship", "--scores", str(tmp_path / "foreign.json"), "--id", "tiny-render", "--out", str(out)]) == 0
    scores = load_manifest(out / "tiny-render.json").scores
    assert scores["val_spp4_relmse"] == 0.012346 and scores["foreign_spp4_ratio_oidn_aov"] == 1.217
    assert scores["foreign_spp64_worst_dpsnr"] == -7.1 and scores["foreign_spp4_wins"] == 3
    assert scores["benchmark"] == "bench/results/render.md, bench/results/render_foreign.md"

    kernels_before = (out / "tiny-render.kernels.onnx").read_bytes()
    assert cli(["ship", "--reexport", "tiny-render", "--out", str(out)]) == 0
    again = load_manifest(out / "tiny-render.json")
    assert again.scores == scores and again.provenance["reexported"] and again.provenance["steps"] == 2
    assert (out / "tiny-render.kernels.onnx").read_bytes() != b"" and kernels_before
    verify_model_file(ModelRegistry(folders=[(out, "bundled")], include_classical=False).get("tiny-render"))


def test_ship_refuses_what_is_not_a_run(tmp_path, capsys):
    from engine.training.archs import build_model

    assert cli(["ship", str(tmp_path)]) == 1
    assert "not a training run" in capsys.readouterr().err
    assert cli(["ship"]) == 2
    assert cli(["ship", "--scores", str(tmp_path / "x.json")]) == 2  # --scores needs --id
    weights = tmp_path / "w.pt"  # weights without the recipe a trainer checkpoint records
    config = {"features": 4, "depth": 2}
    torch.save({"arch": "dncnn", "config": config, "state_dict": build_model("dncnn", config).state_dict()}, weights)
    capsys.readouterr()
    assert cli(["ship", str(weights), "--out", str(tmp_path / "o")]) == 1
    assert "--recipe" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_ship_a_weights_file_with_its_recipe(render_run, tmp_path):
    out = tmp_path / "models"
    assert cli(["ship", str(render_run / "best.pt"), "--recipe", str(_recipe_file(tmp_path)), "--id", "from-pt",
                "--steps", "2", "--minutes", "0.1", "--out", str(out)]) == 0
    manifest = load_manifest(out / "from-pt.json")
    assert manifest.provenance["minutes"] == 0.1 and manifest.provenance["checkpoint"] == "best.pt"
    assert np.isfinite(manifest.tile.overlap) and manifest.name == "Tiny render (file)"


def _recipe_file(folder):
    path = folder / "tiny.toml"
    path.write_text("""
[model]
id = "tiny-render"
name = "Tiny render (file)"
task = "render-denoise"
arch = "kprcan"
value_transform = "log1p"
[model.config]
aux_inputs = ["albedo", "normal"]
features = 4
blocks = 1
guide = ["albedo", "color"]
refine = true
[data]
kind = "paired"
[degradation]
kind = "none"
""")
    return path


def test_ship_a_blend_of_a_fine_tuned_run_and_the_weights_it_started_from(render_run, tmp_path, capsys):
    best = torch.load(render_run / "best.pt", map_location="cpu", weights_only=True)
    start = tmp_path / "start.pt"
    zeroed = {k: torch.zeros_like(v) if v.is_floating_point() else v for k, v in best["state_dict"].items()}
    torch.save({"arch": best["arch"], "config": best["config"], "state_dict": zeroed}, start)
    out = tmp_path / "models"
    assert cli(["ship", str(render_run), "--blend-with", str(start), "--blend", "0.25", "--out", str(out)]) == 0
    shipped = torch.load(out / "tiny-render.pt", map_location="cpu", weights_only=True)["state_dict"]
    floating = [k for k, v in best["state_dict"].items() if v.is_floating_point()]
    assert floating and all(torch.allclose(shipped[k], 0.25 * best["state_dict"][k]) for k in floating)
    manifest = load_manifest(out / "tiny-render.json")
    assert manifest.provenance["blend"]["share"] == 0.25 and manifest.provenance["blend"]["with"] == "start.pt"
    assert "val_psnr" not in manifest.scores  # the run's validation score was not the blend's
    verify_model_file(ModelRegistry(folders=[(out, "bundled")], include_classical=False).get("tiny-render"))

    capsys.readouterr()
    assert cli(["ship", str(render_run), "--blend-with", str(start), "--blend", "1.5", "--out", str(out)]) == 1
    assert "[0, 1]" in capsys.readouterr().err
    other = tmp_path / "other.pt"
    torch.save({"arch": "dncnn", "config": {"features": 4, "depth": 2}, "state_dict": {}}, other)
    assert cli(["ship", str(render_run), "--blend-with", str(other), "--out", str(tmp_path / "o")]) == 1
    assert "architecture" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_ship_a_run_as_the_weights_a_model_runs_on_clipped_input(render_run, tmp_path, capsys):
    out = tmp_path / "models"
    assert cli(["ship", str(render_run), "--out", str(out)]) == 0
    assert cli(["ship", str(render_run), "--checkpoint", "last", "--clipped-of", "tiny-render", "--out", str(out)]) == 0
    assert "tiny-render.clipped.onnx" in capsys.readouterr().out
    manifest = load_manifest(out / "tiny-render.json")
    assert manifest.clipped["file"] == "tiny-render.clipped.onnx"
    assert manifest.clipped["provenance"]["checkpoint"] == "last"
    assert (out / "tiny-render.clipped.onnx").is_file() and not (out / "tiny-render.clipped.json").exists()
    registry = ModelRegistry(folders=[(out, "bundled")], include_classical=False)
    entry = registry.get("tiny-render")
    assert [e.id for e in registry.models()] == [entry.id]  # one model, two sets of weights
    assert file_sha256(out / "tiny-render.clipped.onnx") == manifest.clipped["sha256"]
    photo = make_image(np.full((8, 8, 3), 0.5, np.float32), None, ImageMeta(format="png", bit_depth=8))
    assert for_input(entry, photo).path == out / "tiny-render.clipped.onnx"

    other = tmp_path / "other"
    other.mkdir()
    shipped = json.loads((out / "tiny-render.json").read_text(encoding="utf-8"))
    shipped["provenance"]["config"] = {**shipped["provenance"]["config"], "features": 8}
    del shipped["clipped"]
    (other / "tiny-render.json").write_text(json.dumps(shipped), encoding="utf-8")
    assert cli(["ship", str(render_run), "--clipped-of", "tiny-render", "--out", str(other)]) == 1
    assert "not tiny-render's network" in capsys.readouterr().err and not (other / "tiny-render.clipped.onnx").exists()
    assert cli(["ship", str(render_run), "--clipped-of", "nope", "--out", str(other)]) == 1

