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
- ``fog``: pillars in a fog-filled hall, lit by a spot light from above (volume scattering, light shafts); the
  albedo and normal buffers see the surfaces behind the fog, not the fog.
- ``skin``: a subdivided head and a marble ball of subsurface-scattering materials, key and rim light.
- ``foliage``: a few hundred alpha-cut leaves and thin twigs against a bright sky, sunlight dappling the ground
  (thin geometry, cut-outs, high-contrast shadow edges).
- ``motion``: a spinning checkered wheel and a ball flying past a brick wall with sharp lettering, with motion
  blur (the buffers are blurred too).

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
#: Scenes keep their index (it seeds their renders): new ones go at the end.
SCENES = ("bricks", "wood", "metal", "glass", "interior", "emitters", "dof", "fog", "skin", "foliage", "motion")


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


def _ramp(tree, fac, dark, light):
    """A two-colour ramp node driven by the output ``fac``, from ``dark`` to ``light`` (RGB)."""
    ramp = tree.nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (*dark, 1)
    ramp.color_ramp.elements[1].color = (*light, 1)
    tree.links.new(fac, ramp.inputs["Fac"])
    return ramp


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
    tree.links.new(_ramp(tree, noise.outputs["Fac"], dark, light).outputs["Color"], principled.inputs["Base Color"])
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
    tree.links.new(coords.outputs["Object"], mapping.inputs["Vector"])
    tree.links.new(mapping.outputs["Vector"], wave.inputs["Vector"])
    tree.links.new(mapping.outputs["Vector"], noise.inputs["Vector"])
    ramp = _ramp(tree, wave.outputs["Fac"], (0.18, 0.07, 0.02), (0.55, 0.3, 0.12))
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


def _output_volume(name: str, density: float, color=(1, 1, 1), anisotropy=0.0):
    """A material that is only a volume (no surface): a principled volume of ``density``."""
    import bpy

    material = bpy.data.materials.new(name)
    material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.remove(nodes["Principled BSDF"])
    volume = nodes.new("ShaderNodeVolumePrincipled")
    volume.inputs["Density"].default_value = density
    volume.inputs["Color"].default_value = (*color, 1)
    volume.inputs["Anisotropy"].default_value = anisotropy
    links.new(volume.outputs["Volume"], nodes["Material Output"].inputs["Volume"])
    return material


def scene_fog():
    _add("plane", _textured("floor", lambda t, p: _noise_floor(t, p, 12.0)), size=12, location=(0, 0, 0))
    stone = _material("stone", **{"Base Color": (0.55, 0.52, 0.48, 1), "Roughness": 0.7})
    for x in (-1.2, 0.0, 1.2):
        for y in (0.5, 2.0):
            _smooth(_add("cylinder", stone, radius=0.16, depth=3.0, location=(x, y, 1.5), vertices=32))
    _add("cube", _material("ceiling", **{"Base Color": (0.3, 0.3, 0.3, 1)}), size=1, location=(0, 1.2, 3.05),
         scale=(6, 6, 0.1))
    # the fog fills the hall (the camera is inside it)
    _add("cube", _output_volume("fog", 0.12, (0.9, 0.92, 1.0), anisotropy=0.4), size=1, location=(0, 1.0, 1.5),
         scale=(8, 8, 3.0))
    spot = _light("SPOT", (0.4, 1.2, 2.9), 600.0, target=(0.0, 1.0, 0.0))
    spot.data.spot_size = math.radians(35)
    spot.data.shadow_soft_size = 0.05
    _light("POINT", (-2.5, -1.5, 1.5), 40.0, size=0.1, color=(1.0, 0.6, 0.3))
    _world((0.01, 0.01, 0.012))
    _camera((0.5, -2.8, 1.3), (0, 1.0, 1.1), lens=30)


def scene_skin():
    import bpy

    _add("plane", _material("backdrop", **{"Base Color": (0.12, 0.12, 0.13, 1), "Roughness": 0.6}), size=10,
         location=(0, 0, 0))
    skin = _material("skin", **{"Base Color": (0.8, 0.55, 0.45, 1), "Subsurface Weight": 1.0,
                                "Subsurface Radius": (1.0, 0.35, 0.2), "Subsurface Scale": 0.08,
                                "Roughness": 0.45})
    head = _smooth(_add("monkey", skin, size=1.0, location=(-0.35, 0.2, 0.75), rotation=(0.2, 0, 0.35)))
    head.modifiers.new("smooth", "SUBSURF").levels = 2
    bpy.context.view_layer.update()
    marble = _material("marble", **{"Base Color": (0.92, 0.9, 0.86, 1), "Subsurface Weight": 1.0,
                                    "Subsurface Radius": (1.0, 0.9, 0.8), "Subsurface Scale": 0.25,
                                    "Roughness": 0.15})
    _smooth(_add("uv_sphere", marble, radius=0.32, location=(0.75, 0.0, 0.32), segments=64, ring_count=32))
    _light("AREA", (-1.8, -2.0, 2.2), 180.0, size=1.2, target=(0, 0.2, 0.6))
    _light("AREA", (1.2, 2.2, 1.6), 260.0, size=0.4, target=(0, 0.2, 0.7), color=(0.8, 0.9, 1.0))
    _world((0.02, 0.02, 0.025))
    _camera((0.3, -2.9, 1.1), (0.05, 0.2, 0.65), lens=45)


def _leaf(tree, principled):
    """A green leaf cut out of its plane by an ellipse (alpha), its colour varied by a noise."""
    coords = tree.nodes.new("ShaderNodeTexCoord")
    mapping = tree.nodes.new("ShaderNodeMapping")
    mapping.inputs["Scale"].default_value = (2.0, 4.0, 1.0)
    mapping.inputs["Location"].default_value = (-1.0, -2.0, 0.0)
    gradient = tree.nodes.new("ShaderNodeTexGradient")
    gradient.gradient_type = "SPHERICAL"
    cut = tree.nodes.new("ShaderNodeMath")
    cut.operation = "GREATER_THAN"
    cut.inputs[1].default_value = 0.02
    tree.links.new(coords.outputs["UV"], mapping.inputs["Vector"])
    tree.links.new(mapping.outputs["Vector"], gradient.inputs["Vector"])
    tree.links.new(gradient.outputs["Fac"], cut.inputs[0])
    tree.links.new(cut.outputs["Value"], principled.inputs["Alpha"])
    noise = tree.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = 6.0
    ramp = _ramp(tree, noise.outputs["Fac"], (0.08, 0.22, 0.03), (0.35, 0.55, 0.08))
    tree.links.new(ramp.outputs["Color"], principled.inputs["Base Color"])
    principled.inputs["Roughness"].default_value = 0.5


def scene_foliage():
    import random

    rng = random.Random(BASE_SEED + 7)  # fixed placements: the set never changes
    _add("plane", _textured("ground", lambda t, p: _noise_floor(t, p, 20.0, (0.2, 0.17, 0.1), (0.45, 0.4, 0.3))),
         size=10, location=(0, 0, 0))
    leaf = _textured("leaf", _leaf)
    bark = _material("twig", **{"Base Color": (0.2, 0.13, 0.07, 1), "Roughness": 0.8})
    for _ in range(260):
        x, y, z = rng.uniform(-1.3, 1.3), rng.uniform(-0.2, 1.6), rng.uniform(0.6, 2.2)
        _add("plane", leaf, size=rng.uniform(0.12, 0.22), location=(x, y, z),
             rotation=(rng.uniform(0, math.pi), rng.uniform(0, math.pi), rng.uniform(0, 2 * math.pi)))
    for _ in range(14):
        x, y = rng.uniform(-1.2, 1.2), rng.uniform(0.0, 1.5)
        _add("cylinder", bark, radius=0.006, depth=1.6, vertices=8, location=(x, y, 1.4),
             rotation=(rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), 0))
    _light("SUN", (2, -1, 6), 4.0, size=0.6, target=(0, 0.6, 0))
    _world((0.55, 0.7, 1.0), (0.25, 0.25, 0.22), 1.0)
    _camera((0.2, -2.6, 1.0), (0, 0.8, 1.1), lens=32)


def scene_motion():
    import bpy

    bpy.context.preferences.edit.keyframe_new_interpolation_type = "LINEAR"
    scene = bpy.context.scene
    scene.render.use_motion_blur = True
    scene.render.motion_blur_shutter = 0.5
    _add("plane", _textured("floor", lambda t, p: _checker(t, p, 16.0, (0.75, 0.75, 0.7), (0.15, 0.15, 0.18))),
         size=10, location=(0, 0, 0))
    _add("plane", _textured("wall", _bricks), size=8, location=(0, 2.5, 2.0), rotation=(math.radians(90), 0, 0))
    wheel = _add("cylinder", _textured("wheel", lambda t, p: _checker(t, p, 8.0, (0.9, 0.8, 0.1), (0.1, 0.1, 0.6))),
                 radius=0.6, depth=0.08, vertices=64, location=(-0.5, 0.8, 0.9), rotation=(math.radians(90), 0, 0))
    _text("STILL", (0.7, 2.45, 1.6), 0.35, _material("paint", **{"Base Color": (0.95, 0.95, 0.95, 1)}))
    ball = _smooth(_add("uv_sphere", _material("ball", **{"Base Color": (0.8, 0.15, 0.1, 1), "Roughness": 0.3}),
                        radius=0.22, location=(0.2, 0.2, 0.4)))
    for frame, angle, x in ((0, 0.0, -0.2), (1, 50.0, 0.6), (2, 100.0, 1.4)):
        scene.frame_set(frame)
        wheel.rotation_euler[1] = math.radians(angle)
        wheel.keyframe_insert("rotation_euler", index=1, frame=frame)
        ball.location.x = x
        ball.keyframe_insert("location", index=0, frame=frame)
    scene.frame_set(1)
    _light("AREA", (1.5, -2.0, 3.0), 350.0, size=1.2, target=(0, 0.8, 0.5))
    _world((0.3, 0.35, 0.45), (0.05, 0.05, 0.05), 0.6)
    _camera((0.3, -2.8, 1.2), (0, 0.8, 0.8), lens=38)


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
        # a freshly built scene per render (a few ms against minutes of rendering): no state carried between renders
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
