"""The Cycles training-data generator's scene descriptions (engine/render_data/cycles_scenes.py) and the parts of
its bpy backend that need no Blender: seeds, names and the pairs layout the trainer reads."""

from __future__ import annotations

import json
import math
import os

import pytest

from engine.render_data.cycles_backend import render_seeds, scene_name
from engine.render_data.cycles_scenes import LAYOUTS, SHAPES, TEXTURES, random_cycles_scene


def test_a_seed_always_gives_the_same_json_able_scene():
    first, again = random_cycles_scene(30007), random_cycles_scene(30007)
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    assert json.loads(json.dumps(first)) == first
    assert json.dumps(random_cycles_scene(30008), sort_keys=True) != json.dumps(first, sort_keys=True)


def test_scenes_cover_the_variety_the_issue_lists():
    specs = [random_cycles_scene(40000 + i) for i in range(300)]
    materials = [s["material"] for spec in specs for s in spec["shapes"]] + [spec["ground"] for spec in specs]
    assert {spec["layout"] for spec in specs} == set(LAYOUTS)
    assert {s["kind"] for spec in specs for s in spec["shapes"]} == set(SHAPES)
    assert {m["texture"]["kind"] for m in materials} == set(TEXTURES)
    assert {m["family"] for m in materials} == {"diffuse", "plastic", "metal", "glass", "subsurface", "coated"}
    assert any(m["metallic"] == 1 and m["roughness"] == 0 for m in materials)  # mirror-like metal
    assert any(m["transmission"] == 1 and m["roughness"] == 0 for m in materials)  # clear glass
    lights = [light for spec in specs for light in spec["lights"]]
    assert {light["kind"] for light in lights} == {"sun", "area", "bulb"}
    assert all(light["radius"] <= 0.04 for light in lights if light["kind"] == "bulb")  # small bright emitters
    assert sum(spec["camera"]["fstop"] is not None for spec in specs) > 30  # depth of field
    assert sum(spec["motion_blur"] for spec in specs) > 30
    assert sum(spec["volume"] is not None for spec in specs) > 20
    thin = [s for spec in specs for s in spec["shapes"] if s["kind"] == "rod"]
    assert thin and min(s["radius"] for s in thin) < 0.01
    # texture scales span fine print to large patterns
    scales = [m["texture"]["scale"] for m in materials if m["texture"]["kind"] != "none"]
    assert min(scales) < 3 and max(scales) > 40


def test_interiors_are_lit_through_the_window_and_seen_from_inside():
    interiors = [s for s in (random_cycles_scene(50000 + i) for i in range(200)) if s["layout"] == "interior"]
    assert interiors
    for spec in interiors:
        half = spec["room"]["size"] / 2
        x, y, z = spec["camera"]["location"]
        assert abs(x) < half and abs(y) < half and 0 < z < spec["room"]["height"]
        suns = [light for light in spec["lights"] if light["kind"] == "sun"]
        assert suns and all(abs(light["azimuth"]) <= 0.5 for light in suns)  # from the +x (window) side


def test_one_part_of_a_scene_does_not_shift_the_others():
    """Each part draws from its own stream: the camera of a seed does not depend on how many shapes it has."""
    spec = random_cycles_scene(61000)
    from engine.render_data.cycles_scenes import _stream

    assert _stream(61000, "camera").random() != _stream(61000, "objects").random()
    assert spec["camera"] == random_cycles_scene(61000)["camera"]


def test_every_render_of_a_scene_gets_its_own_cycles_seed():
    seeds = render_seeds(30000, [4, 16, 64])
    assert len(set(seeds.values())) == len(seeds) == 5
    assert all(0 <= s < 2**31 for s in seeds.values())
    assert render_seeds(30001, [4])["target"] != seeds["target"]
    assert scene_name(30000) == "scene_030000"


@pytest.mark.skipif(not os.environ.get("BPY_PYTHON"), reason="renders with Blender: set BPY_PYTHON to a bpy Python")
def test_renders_pairs_the_trainer_reads(tmp_path):
    """With bpy (BPY_PYTHON=/path/to/python-with-bpy): one tiny scene renders into input/ + target/, which the
    trainer's pair finder and AOV reader accept, and with a clean reference into the input/ + reference/ view."""
    import subprocess
    from pathlib import Path

    from engine.training.datasets import find_pairs, match_pairs, read_aovs

    root = Path(__file__).resolve().parent.parent
    subprocess.run([os.environ["BPY_PYTHON"], "-m", "engine.render_data.cycles_backend", "--out", str(tmp_path),
                    "--seed", "30001", "--spp", "2", "--target-spp", "4", "--ref-spp", "8", "--size", "32x32"],
                   cwd=root, check=True)
    pairs = find_pairs(tmp_path)
    assert [(p.name, t.name) for p, t in pairs] == [("scene_030001_spp0002_color.exr", "scene_030001_spp0002_ref.exr")]
    assert pairs[0][1].resolve() == (tmp_path / "target" / "scene_030001_target.exr").resolve()
    # the validation view: input/ + reference/ pairs the input with the clean render
    (_, clean), = match_pairs(tmp_path / "input", tmp_path / "reference")
    assert clean.resolve() == (tmp_path / "clean" / "scene_030001_ref.exr").resolve()
    aovs = read_aovs(pairs[0][0], ["albedo", "normal", "depth"])
    assert aovs["albedo"].shape == (32, 32, 3) and math.isfinite(float(aovs["depth"].max()))
