"""The foreign render set: hand-built Blender Cycles scenes of kinds our Mitsuba generator never makes.

These scenes are the honest yardstick of issue 42. No generator, training run or checkpoint choice may read them:
they exist only to be measured on (``bench/render.py --foreign``). Each is built here by hand, in code, so that the
set is reproducible (fixed geometry, fixed Cycles seeds, one thread) and nothing from outside the repository is
needed. Reproducible to the figures, not to the last bit: two runs of the same code (Blender 5.0.1, 2 and 6 spp,
2026-12-07) gave every scene but ``wood`` 0.2-3.7 % of pixels that differ, by at most 2.7e-4 of their value, so
compare renders of this set with a tolerance (the scenes themselves, every Blender setting, are the same each run).
What each scene stresses:

- ``bricks``: a brick wall, a noise-textured floor and extruded text under a sun; fine texture whose noise at 16 spp
  is mostly anti-aliasing (a denoiser must keep it, not smear it).
- ``wood``: a wood-grain table (wave + noise textures) with a checker cloth and a matte vase, area light.
- ``metal``: polished and brushed metal spheres and a copper torus over a checker floor under a gradient sky.
- ``glass``: a glass sphere and a glass cube (transmission, caustics) on a textured floor, one small area light.
- ``interior``: a closed room lit only through a window by a sun and the sky (indirect light dominates).
- ``emitters``: tiny very bright emissive spheres (fairy lights) over a glossy floor in the dark (fireflies).
- ``dof``: a row of textured objects seen through a wide aperture (depth of field), focus on the middle one.

Run with a Python that has bpy 5.0.1 (never a dependency of the app or of its tests), from the repository root (the
Cycles settings, the sky and the rendering are engine/render_data/cycles_backend.py's, shared with the training
renders)::

    nohup nice -n 5 /path/to/bpy-python -m bench.cycles_foreign render bench/work/cycles_foreign &

Writes ``OUT/<scene>/spp0004.exr`` ... ``spp0064.exr`` (Denoising Data, the diffuse / glossy / transmission split
passes, normal and depth stored; denoising off) and ``ref1024.exr`` (1024 spp; ``--ref-spp N`` for more),
128 x 128, as the multi-layer EXR Blender writes. Files already there are kept (the set is a cache). The wall time
of every render (one Cycles thread) goes to ``OUT/<scene>/cost.json``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from engine.render_data.cycles_backend import add_sky, look_at, new_cycles_scene, render_still

WIDTH = HEIGHT = 128
SPP = (4, 16, 64)
REFERENCE_SPP = 1024
#: Cycles seeds: every render of a scene gets its own, so the noisy inputs and the reference are independent.
BASE_SEED = 4200
SCENES = ("bricks", "wood", "metal", "glass", "interior", "emitters", "dof")


# --- building blocks -----------------------------------------------------------------------------------------


def _material(name: str, **inputs):
    import bpy

    material = bpy.data.materials.new(name)
    material.use_nodes = True
    principled = material.node_tree.nodes["Principled BSDF"]
    for key, value in inputs.items():
        principled.inputs[key].default_value = value
    return material


def _textured(name: str, build):
    """A principled material whose base colour (and maybe roughness) ``build(tree, principled)`` wires up."""
    material = _material(name)
    tree = material.node_tree
    build(tree, tree.nodes["Principled BSDF"])
    return material


def _add(kind: str, material=None, **kwargs):
    import bpy

    getattr(bpy.ops.mesh, f"primitive_{kind}_add")(**kwargs)
    obj = bpy.context.object
    if material is not None:
        obj.data.materials.append(material)
    return obj


def _smooth(obj):
    for polygon in obj.data.polygons:
        polygon.use_smooth = True
    return obj


def _camera(location, target, lens=35.0):
    import bpy

    bpy.ops.object.camera_add(location=location)
    camera = bpy.context.object
    look_at(camera, location, target)
    camera.data.lens = lens
    bpy.context.scene.camera = camera
    return camera


def _light(kind: str, location, energy, size=0.5, target=(0, 0, 0), color=(1, 1, 1)):
    import bpy

    bpy.ops.object.light_add(type=kind, location=location)
    light = bpy.context.object
    light.data.energy = energy
    light.data.color = color
    if kind == "AREA":
        light.data.size = size
    elif kind == "SUN":
        light.data.angle = math.radians(size)
    look_at(light, location, target)
    return light


def _world(top=(0.05, 0.05, 0.05), bottom=None, strength=1.0):
    """A uniform or vertical-gradient sky."""
    add_sky(strength, top, bottom)


def _bricks(tree, principled):
    bricks = tree.nodes.new("ShaderNodeTexBrick")
    bricks.inputs["Scale"].default_value = 6.0
    bricks.inputs["Color1"].default_value = (0.45, 0.12, 0.06, 1)
    bricks.inputs["Color2"].default_value = (0.6, 0.25, 0.12, 1)
    bricks.inputs["Mortar"].default_value = (0.7, 0.7, 0.65, 1)
    bricks.inputs["Mortar Size"].default_value = 0.03
    tree.links.new(bricks.outputs["Color"], principled.inputs["Base Color"])
    principled.inputs["Roughness"].default_value = 0.8


def _noise_floor(tree, principled, scale=25.0, dark=(0.08, 0.08, 0.07), light=(0.5, 0.45, 0.38)):
    noise = tree.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = scale
    noise.inputs["Detail"].default_value = 8.0
    ramp = tree.nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (*dark, 1)
    ramp.color_ramp.elements[1].color = (*light, 1)
    tree.links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
    tree.links.new(ramp.outputs["Color"], principled.inputs["Base Color"])
    tree.links.new(noise.outputs["Fac"], principled.inputs["Roughness"])


def _wood(tree, principled):
    coords = tree.nodes.new("ShaderNodeTexCoord")
    mapping = tree.nodes.new("ShaderNodeMapping")
    mapping.inputs["Scale"].default_value = (1.0, 8.0, 1.0)
    noise = tree.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = 3.0
    wave = tree.nodes.new("ShaderNodeTexWave")
    wave.wave_type = "RINGS"
    wave.inputs["Scale"].default_value = 4.0
    wave.inputs["Distortion"].default_value = 6.0
    wave.inputs["Detail"].default_value = 4.0
    ramp = tree.nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (0.18, 0.07, 0.02, 1)
    ramp.color_ramp.elements[1].color = (0.55, 0.3, 0.12, 1)
    tree.links.new(coords.outputs["Object"], mapping.inputs["Vector"])
    tree.links.new(mapping.outputs["Vector"], wave.inputs["Vector"])
    tree.links.new(mapping.outputs["Vector"], noise.inputs["Vector"])
    tree.links.new(wave.outputs["Fac"], ramp.inputs["Fac"])
    tree.links.new(ramp.outputs["Color"], principled.inputs["Base Color"])
    principled.inputs["Roughness"].default_value = 0.35
    tree.links.new(noise.outputs["Fac"], principled.inputs["Coat Weight"])


def _checker(tree, principled, scale=10.0, a=(0.8, 0.8, 0.8), b=(0.1, 0.1, 0.12)):
    checker = tree.nodes.new("ShaderNodeTexChecker")
    checker.inputs["Scale"].default_value = scale
    checker.inputs["Color1"].default_value = (*a, 1)
    checker.inputs["Color2"].default_value = (*b, 1)
    tree.links.new(checker.outputs["Color"], principled.inputs["Base Color"])


def _text(body: str, location, size, material, rotation=(math.pi / 2, 0, 0), extrude=0.02):
    import bpy

    bpy.ops.object.text_add(location=location, rotation=rotation)
    text = bpy.context.object
    text.data.body = body
    text.data.size = size
    text.data.extrude = extrude
    text.data.align_x = "CENTER"
    text.data.materials.append(material)
    return text


# --- the scenes ----------------------------------------------------------------------------------------------


def scene_bricks():
    _add("plane", _textured("wall", _bricks), size=6, location=(0, 1.5, 1.5), rotation=(math.radians(90), 0, 0))
    _add("plane", _textured("floor", _noise_floor), size=8, location=(0, 0, 0))
    _text("RESTORE", (0, 1.4, 1.6), 0.6, _material("letters", **{"Base Color": (0.9, 0.85, 0.2, 1),
                                                                  "Roughness": 0.4}))
    _text("fine print 0123456789", (0, 1.4, 1.1), 0.16, _material("ink", **{"Base Color": (0.02, 0.02, 0.02, 1)}))
    _smooth(_add("uv_sphere", _material("ball", **{"Base Color": (0.2, 0.4, 0.8, 1), "Roughness": 0.5}),
                 radius=0.35, location=(-1.0, 0.2, 0.35)))
    _light("SUN", (3, -4, 5), 3.0, size=2.0, target=(0, 0, 0))
    _world((0.35, 0.45, 0.6), (0.1, 0.1, 0.1), 0.6)
    _camera((0.3, -3.6, 1.5), (0, 1.0, 1.2), lens=40)


def scene_wood():
    _add("cube", _textured("table", _wood), size=1, location=(0, 0, 0.4), scale=(2.4, 1.4, 0.06))
    _add("plane", _textured("cloth", lambda t, p: _checker(t, p, 18.0, (0.7, 0.1, 0.1), (0.9, 0.9, 0.85))),
         size=0.8, location=(0.5, -0.1, 0.431))
    _smooth(_add("cylinder", _material("vase", **{"Base Color": (0.3, 0.5, 0.35, 1), "Roughness": 0.6}),
                 radius=0.18, depth=0.6, location=(-0.5, 0.2, 0.73), vertices=48))
    _add("plane", _material("ground", **{"Base Color": (0.3, 0.3, 0.3, 1)}), size=10, location=(0, 0, 0))
    _light("AREA", (1.2, -1.5, 2.5), 220.0, size=1.0, target=(0, 0, 0.4))
    _world((0.08, 0.08, 0.1))
    _camera((1.2, -2.3, 1.7), (0, 0, 0.45), lens=38)


def scene_metal():
    _add("plane", _textured("floor", lambda t, p: _checker(t, p, 12.0)), size=10, location=(0, 0, 0))
    _smooth(_add("uv_sphere", _material("chrome", **{"Base Color": (0.9, 0.9, 0.9, 1), "Metallic": 1.0,
                                                     "Roughness": 0.03}),
                 radius=0.6, location=(-0.8, 0.3, 0.6), segments=64, ring_count=32))
    _smooth(_add("uv_sphere", _material("brushed", **{"Base Color": (0.95, 0.75, 0.35, 1), "Metallic": 1.0,
                                                      "Roughness": 0.3, "Anisotropic": 0.8}),
                 radius=0.5, location=(0.7, 0.6, 0.5), segments=64, ring_count=32))
    _smooth(_add("torus", _material("copper", **{"Base Color": (0.95, 0.5, 0.35, 1), "Metallic": 1.0,
                                                 "Roughness": 0.15}),
                 location=(0.3, -0.6, 0.25), major_radius=0.35, minor_radius=0.12,
                 rotation=(math.radians(60), 0, 0.4)))
    _light("AREA", (-2.0, -1.5, 3.0), 300.0, size=0.6, target=(0, 0, 0.3))
    _world((0.5, 0.6, 0.8), (0.05, 0.04, 0.03), 1.0)
    _camera((0.0, -3.5, 1.8), (0, 0.1, 0.4), lens=40)


def scene_glass():
    _add("plane", _textured("floor", lambda t, p: _noise_floor(t, p, 8.0, (0.6, 0.55, 0.5), (0.9, 0.88, 0.8))),
         size=10, location=(0, 0, 0))
    glass = _material("glass", **{"Base Color": (1, 1, 1, 1), "Roughness": 0.0, "Transmission Weight": 1.0,
                                  "IOR": 1.5})
    _smooth(_add("uv_sphere", glass, radius=0.5, location=(-0.5, 0.0, 0.5), segments=64, ring_count=32))
    tinted = _material("tinted", **{"Base Color": (0.6, 0.9, 0.7, 1), "Roughness": 0.05,
                                    "Transmission Weight": 1.0, "IOR": 1.45})
    _add("cube", tinted, size=0.6, location=(0.6, 0.4, 0.3), rotation=(0, 0, 0.5))
    _add("cube", _material("block", **{"Base Color": (0.8, 0.2, 0.1, 1)}), size=0.4, location=(-0.3, 1.0, 0.2))
    _light("AREA", (1.5, -0.5, 2.5), 150.0, size=0.25, target=(0, 0, 0))
    _world((0.02, 0.02, 0.03))
    _camera((0.2, -2.8, 1.4), (0, 0.2, 0.35), lens=40)


def scene_interior():
    white = _material("plaster", **{"Base Color": (0.75, 0.73, 0.7, 1), "Roughness": 0.9})
    floor = _textured("parquet", _wood)
    room = 4.0
    _add("plane", floor, size=room, location=(0, 0, 0))
    _add("plane", white, size=room, location=(0, 0, 2.6), rotation=(math.pi, 0, 0))
    _add("plane", white, size=room, location=(-2, 0, 1.3), rotation=(0, math.radians(90), 0), scale=(0.65, 1, 1))
    _add("plane", white, size=room, location=(0, 2, 1.3), rotation=(math.radians(90), 0, 0), scale=(1, 0.65, 1))
    _add("plane", white, size=room, location=(0, -2, 1.3), rotation=(math.radians(90), 0, 0), scale=(1, 0.65, 1))
    # The window wall (x = 2) as four boxes around a 1.2 x 1.0 opening.
    for location, scale in (((2, 0, 0.4), (0.05, 2, 0.4)), ((2, 0, 2.2), (0.05, 2, 0.4)),
                            ((2, -1.3, 1.3), (0.05, 0.7, 0.5)), ((2, 1.3, 1.3), (0.05, 0.7, 0.5))):
        _add("cube", white, size=2, location=location, scale=scale)
    _add("cube", _material("sofa", **{"Base Color": (0.15, 0.25, 0.5, 1), "Roughness": 0.8}), size=1,
         location=(-1.2, 0.6, 0.3), scale=(0.8, 1.6, 0.6))
    _smooth(_add("uv_sphere", _material("lamp", **{"Base Color": (0.9, 0.9, 0.9, 1), "Metallic": 1.0,
                                                   "Roughness": 0.2}), radius=0.25, location=(0.3, 1.2, 0.25)))
    _light("SUN", (6, -2, 4), 6.0, size=1.0, target=(0, 0.5, 0))
    _world((0.4, 0.55, 0.9), (0.3, 0.3, 0.3), 1.5)
    _camera((-1.7, -1.6, 1.4), (1.0, 0.5, 0.9), lens=20)


def scene_emitters():
    import random

    rng = random.Random(BASE_SEED)  # fixed placements: the set never changes
    _add("plane", _material("floor", **{"Base Color": (0.1, 0.1, 0.12, 1), "Roughness": 0.12}), size=10,
         location=(0, 0, 0))
    _smooth(_add("uv_sphere", _material("pot", **{"Base Color": (0.7, 0.7, 0.7, 1), "Roughness": 0.5}),
                 radius=0.4, location=(0, 0.3, 0.4)))
    for index in range(14):
        hue = rng.random()
        color = (1.0, 0.5 + 0.5 * hue, 0.2 + 0.6 * (1 - hue), 1)
        glow = _material(f"bulb{index}", **{"Base Color": (0, 0, 0, 1), "Emission Color": color,
                                            "Emission Strength": 400.0})
        _add("ico_sphere", glow, radius=0.02, subdivisions=2,
             location=(rng.uniform(-1.2, 1.2), rng.uniform(-0.6, 1.2), rng.uniform(0.1, 1.1)))
    _world((0.005, 0.005, 0.008))
    _camera((0.0, -2.8, 1.1), (0, 0.3, 0.45), lens=38)


def scene_dof():
    _add("plane", _textured("floor", lambda t, p: _checker(t, p, 30.0, (0.7, 0.65, 0.55), (0.2, 0.18, 0.15))),
         size=12, location=(0, 2, 0))
    for index, y in enumerate((-1.0, 0.0, 1.2, 2.6, 4.2)):
        material = _textured(f"obj{index}", lambda t, p: _bricks(t, p)) if index % 2 else \
            _textured(f"obj{index}", lambda t, p: _noise_floor(t, p, 30.0, (0.1, 0.2, 0.5), (0.8, 0.85, 0.9)))
        _smooth(_add("uv_sphere", material, radius=0.3, location=((index - 2) * 0.35, y, 0.3)))
    _text("FOCUS", (0.0, 0.35, 0.62), 0.18, _material("label", **{"Base Color": (0.9, 0.1, 0.1, 1)}))
    _light("AREA", (1.5, -2.0, 3.0), 400.0, size=1.5, target=(0, 1, 0))
    _world((0.3, 0.35, 0.45), (0.05, 0.05, 0.05), 0.5)
    camera = _camera((0.2, -2.6, 0.8), (0, 1.0, 0.3), lens=50)
    camera.data.dof.use_dof = True
    camera.data.dof.focus_distance = 2.65
    camera.data.dof.aperture_fstop = 1.2


BUILDERS = {name: globals()[f"scene_{name}"] for name in SCENES}


# --- rendering -----------------------------------------------------------------------------------------------


def build(name: str):
    """Scene ``name`` in a fresh Blender scene with the project's Cycles settings (one thread)."""
    scene = new_cycles_scene(WIDTH, HEIGHT, threads=1)
    BUILDERS[name]()
    return scene


def render_scene(name: str, out: Path, reference_spp: int = REFERENCE_SPP) -> dict:
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    cost_path = folder / "cost.json"
    cost = json.loads(cost_path.read_text()) if cost_path.exists() else {}
    index = SCENES.index(name)
    jobs = [(f"spp{n:04d}.exr", n) for n in SPP] + [(f"ref{reference_spp}.exr", reference_spp)]
    for file_name, samples in jobs:
        target = folder / file_name
        if target.exists():
            continue
        seed = BASE_SEED + 100 * index + samples  # independent noise per render
        seconds = render_still(build(name), target, samples, seed)
        cost[file_name] = {"spp": samples, "seconds": round(seconds, 2), "threads": 1, "size": [WIDTH, HEIGHT],
                           "seed": seed}
        cost_path.write_text(json.dumps(cost, indent=1) + "\n")
        print(f"{name}/{file_name}: {cost[file_name]['seconds']} s", flush=True)
    return cost


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["render"])
    parser.add_argument("out", type=Path)
    parser.add_argument("scenes", nargs="?", default=",".join(SCENES), help="comma-separated (default: all)")
    parser.add_argument("--ref-spp", type=int, default=REFERENCE_SPP,
                        help="reference sample count (a scene whose 1024-spp reference is still noisy, e.g. tiny "
                             "emitters, gets a higher one; bench/render_foreign.py uses each scene's highest)")
    args = parser.parse_args(argv)
    for name in args.scenes.split(","):
        render_scene(name, args.out, args.ref_spp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
