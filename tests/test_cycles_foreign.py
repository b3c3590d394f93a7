"""The foreign render set (bench/cycles_foreign.py) renders with the project's one set of Cycles settings
(engine/render_data/cycles_backend.py: new_cycles_scene, render_still) into files the app reads as renders."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not os.environ.get("BPY_PYTHON"), reason="renders with Blender: set BPY_PYTHON to a bpy Python")
def test_a_foreign_scene_renders_whole_files_with_the_shared_settings(tmp_path):
    from engine.training.datasets import read_aovs

    script = ("import sys; from pathlib import Path; import bench.cycles_foreign as cf; "
              "cf.WIDTH, cf.HEIGHT, cf.SPP = 40, 32, (1,); cf.render_scene('wood', Path(sys.argv[1]), 2)")
    for _ in range(2):  # the second run finds the files there and renders nothing (the set is a cache)
        subprocess.run([os.environ["BPY_PYTHON"], "-c", script, str(tmp_path)], cwd=ROOT, check=True)
    folder = tmp_path / "wood"
    assert sorted(p.name for p in folder.iterdir()) == ["cost.json", "ref2.exr", "spp0001.exr"]  # no .partial
    cost = json.loads((folder / "cost.json").read_text())
    assert {name: (entry["spp"], entry["seed"], entry["size"], entry["threads"]) for name, entry in cost.items()} == {
        "spp0001.exr": (1, 4301, [40, 32], 1), "ref2.exr": (2, 4302, [40, 32], 1)}
    aovs = read_aovs(folder / "spp0001.exr", ["albedo", "normal", "depth"])  # the Denoising Data and passes stored
    assert aovs["albedo"].shape == (32, 40, 3) and math.isfinite(float(aovs["depth"].max()))
