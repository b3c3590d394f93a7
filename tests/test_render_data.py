"""The Mitsuba scene generator, the render-data command, the bundled render sample and the OIDN engines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from engine.render_data.scenes import ENVIRONMENT_LIGHTS, random_scene

ROOT = Path(__file__).resolve().parent.parent


def test_scene_descriptions_are_deterministic_and_valid():
    assert random_scene(7) == random_scene(7)
    assert random_scene(7) != random_scene(8)
    for seed in range(200):
        spec = random_scene(seed)
        json.dumps(spec)  # recorded beside every set
        assert sum(light["type"] in ENVIRONMENT_LIGHTS for light in spec["lights"]) <= 1
        assert 1 <= len(spec["lights"]) <= 3 and 2 <= len(spec["shapes"]) <= 7
        # Box filter (independent pixel noise) unless Gaussian is asked for; the rest of the scene is the same.
        assert spec["camera"]["filter"] == "box"
        assert random_scene(seed, 1.0)["camera"]["filter"] == "gaussian"
        mixed = random_scene(seed, 0.5)
        mixed["camera"]["filter"] = "box"
        assert mixed == spec
    assert 20 < sum(random_scene(s, 0.3)["camera"]["filter"] == "gaussian" for s in range(200)) < 100
    with pytest.raises(ValueError):
        random_scene(0, 1.5)


def test_panel_lights_are_opt_in_and_leave_other_scenes_unchanged():
    """--panel-fraction adds an emitting panel flush with wall 0 from its own random stream: scenes that get no
    panel are exactly the scenes of fraction 0 (older sets reproduce), and panel scenes have a wall and a low
    camera (3-15 degrees up), so that the panel is in view."""
    with_panel = 0
    for seed in range(100):
        plain, mixed = random_scene(seed), random_scene(seed, panel_fraction=0.4)
        panels = [light for light in mixed["lights"] if light["type"] == "panel"]
        if not panels:
            assert mixed == plain
            continue
        with_panel += 1
        assert len(panels) == 1 and mixed["room"]["walls"] >= 1
        assert mixed["lights"][:-1] == plain["lights"] and mixed["shapes"] == plain["shapes"]
        ox, oy, oz = mixed["camera"]["origin"]
        assert 3.0 <= math.degrees(math.atan2(oy - 0.2, math.hypot(ox, oz))) <= 15.0 + 1e-6
        json.dumps(mixed)
    assert 20 < with_panel < 60
    assert not any(light["type"] == "panel" for light in random_scene(3, panel_fraction=0.0)["lights"])
    with pytest.raises(ValueError):
        random_scene(0, panel_fraction=-0.1)


def test_firefly_scenes_are_opt_in_and_leave_other_scenes_unchanged():
    """--firefly-fraction makes a scene full of caustic paths from its own random stream: one or two shapes turn
    mirror-like or glass, a concentrated light (a narrow spot or a small bright sphere) joins the others, and the
    rest of the scene is the scene of fraction 0, panel included."""
    from engine.render_data.scenes import CAUSTIC_MATERIALS

    changed = 0
    for seed in range(60):
        plain, mixed = random_scene(seed, panel_fraction=0.3), random_scene(seed, panel_fraction=0.3,
                                                                            firefly_fraction=0.5)
        if mixed == plain:
            continue
        changed += 1
        assert mixed["lights"][:-1] == plain["lights"] and mixed["camera"] == plain["camera"]
        light = mixed["lights"][-1]
        assert light["type"] == "spot" and light["cutoff"] <= 35.0 or (
            light["type"] == "area" and light["shape"] == "sphere" and light["size"] <= 0.3)
        turned = [new for new, old in zip(mixed["shapes"], plain["shapes"], strict=True) if new != old]
        assert 1 <= len(turned) <= 2 and all(s["material"]["type"] in CAUSTIC_MATERIALS for s in turned)
        assert [s["position"] for s in mixed["shapes"]] == [s["position"] for s in plain["shapes"]]
        json.dumps(mixed)
    assert 15 < changed < 45
    assert all(random_scene(s, firefly_fraction=1.0) != random_scene(s) for s in range(5))
    with pytest.raises(ValueError):
        random_scene(0, firefly_fraction=1.5)


@pytest.mark.slow
def test_render_data_command_writes_deterministic_sets_and_pairs(tmp_path):
    pytest.importorskip("mitsuba")
    from engine.cli import main
    from engine.imageio import read_image
    from engine.training.datasets import match_pairs, read_aovs
    from engine.training.datasets import read_image as read_training_image

    args = ["render-data", "--scenes", "1", "--spp", "1,2", "--ref-spp", "4", "--seed", "3", "--size", "24x16",
            "--threads", "1"]
    assert main(args + ["--out", str(tmp_path / "a"), "--pairs", str(tmp_path / "pairs")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    folder = tmp_path / "a" / "scene_000003"
    info = json.loads((folder / "scene.json").read_text())
    assert info["seed"] == 3 and info["spp"] == [1, 2] and info["spec"] == random_scene(3)
    for path in folder.glob("*.exr"):
        other = read_image(tmp_path / "b" / "scene_000003" / path.name)
        np.testing.assert_array_equal(read_image(path).pixels, other.pixels)
    image = read_image(folder / "scene_000003_spp00002_color.exr")  # sidecars found as in cbox256
    assert image.meta.hdr and image.pixels.shape == (16, 24, 3)
    assert {"albedo", "normal", "depth"} <= set(image.layers)
    pairs = match_pairs(tmp_path / "pairs" / "input", tmp_path / "pairs" / "target")
    assert len(pairs) == 2
    aovs = read_aovs(pairs[0][0], ["albedo", "normal"])
    np.testing.assert_allclose(aovs["normal"], image.layers["normal"] if "spp00002" in pairs[0][0].name
                               else read_image(folder / "scene_000003_spp00001_color.exr").layers["normal"],
                               atol=1e-3)
    assert read_training_image(pairs[0][1]).shape == (16, 24, 3)
    # Several writers of one pairs folder (render-data runs of different seeds side by side) do not collide:
    # every link and rewritten file appears atomically, and no temporary file stays behind.
    from concurrent.futures import ThreadPoolExecutor

    from engine.render_data.pairs import write_pairs
    with ThreadPoolExecutor(6) as pool:
        counts = list(pool.map(lambda _: write_pairs(tmp_path / "a", tmp_path / "pairs"), range(30)))
    assert counts == [2] * 30
    assert not [p for p in (tmp_path / "pairs").rglob(".*")]
    assert match_pairs(tmp_path / "pairs" / "input", tmp_path / "pairs" / "target") == pairs
    assert main(args + ["--out", str(tmp_path / "c"), "--size", "3x3"]) == 2
    # A panel scene renders, and records its fraction and its panel.
    assert main(args + ["--out", str(tmp_path / "d"), "--panel-fraction", "1"]) == 0
    info = json.loads((tmp_path / "d" / "scene_000003" / "scene.json").read_text())
    assert info["panel_fraction"] == 1.0 and info["spec"]["lights"][-1]["type"] == "panel"
    panel = read_image(tmp_path / "d" / "scene_000003" / "scene_000003_ref_spp00004_color.exr").pixels
    assert np.isfinite(panel).all()
    # So does a firefly scene.
    assert main(args + ["--out", str(tmp_path / "e"), "--firefly-fraction", "1"]) == 0
    info = json.loads((tmp_path / "e" / "scene_000003" / "scene.json").read_text())
    assert info["firefly_fraction"] == 1.0 and info["spec"] == random_scene(3, firefly_fraction=1.0)


def test_render_shot_writes_frames_the_train_dialog_fine_tunes_on(tmp_path):
    """``render-shot``: one scene as a camera move; each noisy frame carries its AOVs as EXR layers and sits
    beside its NAME_ref.exr, so find_pairs (the Train dialog's folder reader) pairs them."""
    pytest.importorskip("mitsuba")
    from engine.cli import main
    from engine.imageio import read_image
    from engine.render_data.generate import orbit_camera
    from engine.training.datasets import find_pairs

    out = tmp_path / "shot"
    assert main(["render-shot", "--out", str(out), "--seed", "4", "--frames", "3", "--spp", "2", "--ref-spp", "8",
                 "--size", "24x16", "--threads", "1"]) == 0
    pairs = find_pairs(out)
    assert [(a.name, b.name) for a, b in pairs] == [(f"frame_{i:04d}.exr", f"frame_{i:04d}_ref.exr") for i in range(3)]
    info = json.loads((out / "shot.json").read_text())
    assert info["frames"] == 3 and info["spec"] == random_scene(4) and info["exposure_gain"] > 0
    frames = [read_image(a) for a, _ in pairs]
    assert all(f.meta.hdr and f.pixels.shape == (16, 24, 3) and {"albedo", "normal", "depth"} <= set(f.layers)
               for f in frames)
    # the camera turns about its target, through the scene's own camera halfway
    camera = random_scene(4)["camera"]
    assert info["cameras"][1]["origin"] == pytest.approx(camera["origin"])
    assert info["cameras"][0]["origin"] != info["cameras"][2]["origin"]
    turned = orbit_camera(camera, 30.0)
    distance = lambda c: math.dist(c["origin"], c["target"])  # noqa: E731
    assert distance(turned) == pytest.approx(distance(camera)) and turned["origin"][1] == camera["origin"][1]
    assert turned["origin"] != camera["origin"]
    assert orbit_camera(camera, 0.0)["origin"] == pytest.approx(camera["origin"])


def test_bundled_render_sample_has_aovs_and_reference():
    from engine.imageio import read_image

    noisy_path = ROOT / "resources" / "samples" / "sample_render.exr"
    ref_path = ROOT / "resources" / "samples" / "sample_render_ref.exr"
    assert noisy_path.stat().st_size < 2e6 and ref_path.stat().st_size < 2e6
    noisy, ref = read_image(noisy_path), read_image(ref_path)
    assert noisy.meta.hdr and noisy.pixels.shape == (256, 384, 3) == ref.pixels.shape
    assert {"albedo", "normal"} <= set(noisy.layers)
    # Noisy and reference agree on average (same scene, same exposure) but not pixel by pixel.
    assert abs(noisy.pixels.mean() / ref.pixels.mean() - 1) < 0.05
    assert np.abs(noisy.pixels - ref.pixels).mean() > 0.01


def test_oidn_engines_denoise_with_and_without_aovs():
    pytest.importorskip("pyoidn")
    from engine.image import ImageMeta, make_image
    from engine.jobs import run_job
    from engine.models.builtin import BUILTIN_ENGINES
    from engine.restore import restore_job

    engines = {e.manifest.id: e for e in BUILTIN_ENGINES}
    assert engines["oidn"].manifest.inputs == ("color",)
    assert engines["oidn-aov"].manifest.inputs == ("color", "albedo", "normal")
    rng = np.random.default_rng(0)
    clean = np.full((32, 32, 3), 0.5, np.float32)
    noisy = clean * rng.gamma(1.0, 1.0, clean.shape).astype(np.float32)
    normal = np.zeros_like(clean)
    normal[..., 2] = 1
    meta = ImageMeta(format="exr", bit_depth=32, sample_type="float", hdr=True, color_space="linear")
    image = make_image(noisy, None, meta, {"albedo": np.full_like(clean, 0.8), "normal": normal})
    for model_id in ("oidn", "oidn-aov"):
        result = run_job(restore_job(image, engines[model_id].entry(), device="cpu"))
        assert np.abs(result.image.pixels - clean).mean() < 0.5 * np.abs(noisy - clean).mean()
