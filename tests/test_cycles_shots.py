"""The Cycles shot generator: the descriptions (seeded camera moves and object moves, no bpy) and, with Blender,
one tiny shot in the layout the Train dialog and bench/flicker.py read."""

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from engine.render_data.cycles_scenes import (
    CAMERA_MOVES,
    SHOT_KINDS,
    random_cycles_scene,
    random_cycles_shot,
    shot_cameras,
    shot_render_seeds,
)


def test_a_shot_is_deterministic_and_keeps_the_still_scene():
    shot = random_cycles_shot(95000, 8)
    assert json.dumps(shot, sort_keys=True) == json.dumps(random_cycles_shot(95000, 8), sort_keys=True)
    still = random_cycles_scene(95000)
    assert shot["camera"] == still["camera"] and shot["lights"] == still["lights"]
    assert [s["material"] for s in shot["shapes"]] == [s["material"] for s in still["shapes"]]
    # Cycles writes the Vector pass only without motion blur: no shutter motion is left in a shot.
    assert shot["motion_blur"] is False and not any("motion" in s for s in shot["shapes"])
    assert len(shot["shot"]["cameras"]) == 8


def test_three_consecutive_seeds_give_every_kind_of_motion():
    kinds = {random_cycles_shot(seed, 6)["shot"]["kind"] for seed in (95000, 95001, 95002)}
    assert kinds == set(SHOT_KINDS)
    for seed in range(50000, 50030):
        shot = random_cycles_shot(seed, 6)["shot"]
        moving_camera = shot["camera_move"]["kind"] != "static"
        assert moving_camera == (shot["kind"] in ("camera", "both"))
        assert bool(shot["object_moves"]) == (shot["kind"] in ("object", "both"))
        if moving_camera:
            assert shot["camera_move"]["kind"] in CAMERA_MOVES
            assert shot["cameras"][0] != shot["cameras"][-1]
        else:
            assert all(c == shot["cameras"][0] for c in shot["cameras"])
        for move in shot["object_moves"]:
            assert 0 <= move["index"] < len(random_cycles_scene(seed)["shapes"])
            assert math.hypot(*move["translate"][:2]) * 5 > 0.1  # it visibly moves over the shot


def test_camera_moves_do_what_they_say():
    camera = {"location": [4.0, 0.0, 1.0], "target": [0.0, 0.0, 1.0]}
    dolly = shot_cameras(camera, {"kind": "dolly", "amount": 0.25}, 5)
    assert dolly[0]["location"] == [4.0, 0.0, 1.0] and dolly[-1]["location"] == [3.0, 0.0, 1.0]
    assert all(c["target"] == camera["target"] for c in dolly)
    orbit = shot_cameras(camera, {"kind": "orbit", "degrees": 90.0}, 3)
    assert np.allclose(orbit[-1]["location"], [0.0, 4.0, 1.0], atol=1e-4)
    assert all(math.dist(c["location"], c["target"]) == pytest.approx(4.0, abs=1e-4) for c in orbit)
    pan = shot_cameras(camera, {"kind": "pan", "degrees": 90.0}, 3)
    assert all(c["location"] == camera["location"] for c in pan)
    assert np.allclose(pan[-1]["target"], [4.0, -4.0, 1.0], atol=1e-4)
    jitter = {"location": [[0, 0, 0], [0.01, 0, 0]], "target": [[0, 0, 0], [0, 0.02, 0]]}
    shaky = shot_cameras(camera, {"kind": "handheld", "jitter": jitter}, 2)
    assert shaky[1] == {"location": [4.01, 0.0, 1.0], "target": [0.0, 0.02, 1.0]}


def test_handheld_wobble_is_small_and_starts_at_the_set_camera():
    for seed in range(50000, 50060):
        shot = random_cycles_shot(seed, 8)
        jitter = shot["shot"]["camera_move"].get("jitter")
        if jitter:
            distance = math.dist(shot["camera"]["location"], shot["camera"]["target"])
            assert np.allclose(jitter["location"][0], 0) and np.allclose(jitter["target"][0], 0)
            assert np.abs(np.array(jitter["location"])).max() < 0.1 * distance
            return
    pytest.fail("no hand-held shot among 60 seeds")


def test_every_render_of_every_frame_has_its_own_seed():
    seeds = shot_render_seeds(95000, 8, [4, 16])
    flat = [s for frame in seeds for s in frame.values()]
    assert len(flat) == len(set(flat)) == 8 * 4
    assert all(0 <= s < 2**31 for s in flat)
    assert shot_render_seeds(95001, 8, [4, 16])[0]["spp4"] != seeds[0]["spp4"]


def test_bad_requests_are_refused():
    with pytest.raises(ValueError):
        random_cycles_shot(1, 0)
    with pytest.raises(ValueError):
        random_cycles_shot(1, 4, kind="zoom")


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("BPY_PYTHON"), reason="renders with Blender: set BPY_PYTHON to a bpy Python")
def test_renders_a_shot_with_motion_vectors_and_blenders_denoised_frames(tmp_path):
    """With bpy (BPY_PYTHON=/path/to/python-with-bpy): a 3-frame 32x32 shot (seed 95002: objects move) renders
    into the Mitsuba shot layout; the Vector pass converts to backward flow; Blender's denoised frame is the
    denoiser's output for exactly the noisy frame (its Noisy Image pass equals the noisy Combined)."""
    from engine.imageio import read_image
    from engine.motion import flow_to_previous

    root = Path(__file__).resolve().parent.parent
    subprocess.run([os.environ["BPY_PYTHON"], "-m", "engine.render_data.cycles_shot", "--out", str(tmp_path),
                    "--seed", "95002", "--frames", "3", "--spp", "2", "--ref-spp", "8", "--size", "32x32"],
                   cwd=root, check=True, capture_output=True)
    folder = tmp_path / "shot_095002_spp0002"
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([f"frame_{i:04d}{s}.exr" for i in range(3) for s in ("", "_blender", "_ref")]
                           + ["shot.json"])
    info = json.loads((folder / "shot.json").read_text())
    assert info["ref_spp"] == 8 and info["frames"] == 3 and len(info["render_seconds"]) == 3
    assert all(t["reference"] > 0 and t["spp2"] > 0 for t in info["render_seconds"])
    noisy = [read_image(folder / f"frame_{i:04d}.exr") for i in range(3)]
    assert not np.array_equal(noisy[1].pixels, noisy[2].pixels)  # independent noise, moving objects
    vector = [layer for name, layer in noisy[2].layers.items() if name.endswith("Vector")][0]
    flow = flow_to_previous(vector, "Blender")
    assert flow.shape == (32, 32, 2) and np.abs(flow).max() > 0.1  # the moving objects
    blender = read_image(folder / "frame_0001_blender.exr")
    noisy_image = [layer for name, layer in blender.layers.items() if name.endswith("Noisy Image")][0]
    assert np.array_equal(noisy_image[..., :3], noisy[1].pixels)
    assert not np.array_equal(blender.pixels, noisy[1].pixels)
