"""Render :mod:`engine.render_data.cycles_scenes` descriptions with Blender Cycles (bpy): training pairs for the
render denoisers from the renderer the users have.

Training-only: it needs ``bpy`` (Blender 5.0.1 as a Python module, Python 3.11, about 1 GB; never a dependency of
the app or of its tests), imported inside the functions that render. Run it with that Python from the repository
root (only numpy and this package's pure-Python modules are imported besides bpy)::

    /path/to/bpy-python -m engine.render_data.cycles_backend --out DIR --scenes N [--seed S] [--spp 4,16]
        [--target-spp 128] [--ref-spp 0] [--size 128x128] [--threads 1]

For each scene ``scene_SSSSSS`` (seed S + i) it writes, as the multi-layer EXR Blender writes (Combined, the
Denoising Data passes, normal, depth, and the diffuse / glossy / transmission direct, indirect and colour passes that
KPCN's split needs, emission and environment), with denoising off:

- ``DIR/input/scene_SSSSSS_sppNNNN_color.exr``: the noisy input at each ``--spp``, each with its own Cycles seed;
- ``DIR/target/scene_SSSSSS_sppNNNN_ref.exr``: its Noise2Noise target, a second render of the same view at
  ``--target-spp`` with another seed (independent noise; Lehtinen et al. 2018), shared by the scene's inputs;
- with ``--ref-spp R`` > 0 also ``DIR/clean/scene_SSSSSS_ref.exr`` (a clean reference, for validation sets) and
  ``DIR/reference/scene_SSSSSS_sppNNNN_ref.exr`` links to it (``input/`` + ``reference/``: the clean pairs);
- ``DIR/scenes/scene_SSSSSS.json``: the description, the seeds and the wall time of every render (one thread unless
  ``--threads``).

``input/`` + ``target/`` is the paired layout engine/training/datasets.py reads (the app's EXR reader finds the
colour and the ``albedo`` / ``normal`` / ``depth`` roles in Blender's layers). Files already written are kept, so an
interrupted run resumes. The same command gives the same scenes; Cycles' noise depends on its seed only (one
thread; with more threads Blender's tiles may sum in another order, so the last bits may differ).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from .cycles_scenes import random_cycles_scene

#: The view-layer passes written beside Combined (``use_pass_<name>``), besides the Denoising Data.
PASSES = ("normal", "z", "diffuse_direct", "diffuse_indirect", "diffuse_color", "glossy_direct", "glossy_indirect",
          "glossy_color", "transmission_direct", "transmission_indirect", "transmission_color", "emit",
          "environment")
#: Cycles seeds: noisy input at n spp = base + n, Noise2Noise target = base + 1, clean reference = base + 2.
SEED_STRIDE = 100_000


def scene_name(seed: int) -> str:
    return f"scene_{seed:06d}"


def render_seeds(seed: int, spps: list[int]) -> dict[str, int]:
    """The Cycles seed of every render of scene ``seed``: all distinct, so every noise is independent."""
    base = (seed * 7919) % (2**31 - SEED_STRIDE)
    return {"target": base + 1, "reference": base + 2, **{f"spp{n}": base + 16 + n for n in spps}}


# --- Cycles settings and rendering (bpy): every Cycles render of the project -------------------------------


def new_cycles_scene(width: int, height: int, threads: int = 1):
    """A fresh, empty Blender scene set up as every Cycles render of this project is (training pairs, shots,
    bench/cycles_foreign.py's set): Cycles on the CPU at a fixed sample count (adaptive sampling off), denoising
    off, ``threads`` fixed threads (one: the noise then depends on the seed alone), the Standard view transform, an
    opaque film, the Denoising Data and the passes of PASSES stored, multi-layer 32-bit EXR (ZIP) output."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    scene.render.threads_mode = "FIXED"
    scene.render.threads = threads
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = width, height, 100
    scene.render.film_transparent = False
    scene.view_settings.view_transform = "Standard"
    layer = scene.view_layers[0]
    layer.cycles.denoising_store_passes = True
    for name in PASSES:
        setattr(layer, f"use_pass_{name}", True)
    settings = scene.render.image_settings
    settings.media_type = "MULTI_LAYER_IMAGE"
    settings.file_format = "OPEN_EXR_MULTILAYER"
    settings.color_depth = "32"
    settings.exr_codec = "ZIP"
    return scene


def render_still(scene, target: Path, samples: int, seed: int) -> float:
    """Render ``scene``'s current frame at ``samples`` spp with Cycles seed ``seed`` into ``target``, written whole
    or not at all (an interrupted run resumes cleanly: a file there is a finished render). Returns the wall
    seconds."""
    import bpy

    scene.cycles.samples = samples
    scene.cycles.seed = seed
    partial = target.with_name(target.stem + ".partial.exr")
    scene.render.filepath = str(partial)
    started = time.perf_counter()
    bpy.ops.render.render(write_still=True)
    seconds = time.perf_counter() - started
    os.replace(partial, target)
    return seconds


def look_at(obj, location, target) -> None:
    """Turn ``obj`` (a camera or a light, which look down their -Z) at ``location`` towards ``target``."""
    from mathutils import Vector

    obj.rotation_euler = (Vector(target) - Vector(location)).to_track_quat("-Z", "Y").to_euler()


def add_sky(strength: float, zenith, horizon=None) -> None:
    """The world: a uniform colour ``zenith``, or with ``horizon`` a vertical gradient from it up to ``zenith``."""
    import bpy

    world = bpy.data.worlds.new("sky")
    bpy.context.scene.world = world
    world.use_nodes = True
    tree = world.node_tree
    background = tree.nodes["Background"]
    background.inputs["Strength"].default_value = strength
    if horizon is None:
        background.inputs["Color"].default_value = (*zenith, 1)
        return
    coords = tree.nodes.new("ShaderNodeTexCoord")
    separate = tree.nodes.new("ShaderNodeSeparateXYZ")
    ramp = tree.nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (*horizon, 1)
    ramp.color_ramp.elements[1].color = (*zenith, 1)
    tree.links.new(coords.outputs["Generated"], separate.inputs["Vector"])
    tree.links.new(separate.outputs["Z"], ramp.inputs["Fac"])
    tree.links.new(ramp.outputs["Color"], background.inputs["Color"])


# --- building a scene description (bpy) --------------------------------------------------------------------


def _principled(name: str, spec: dict[str, Any]):
    import bpy

    material = bpy.data.materials.new(name)
    material.use_nodes = True
    tree = material.node_tree
    bsdf = tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*spec["base_color"], 1)
    bsdf.inputs["Roughness"].default_value = spec["roughness"]
    bsdf.inputs["Metallic"].default_value = spec["metallic"]
    bsdf.inputs["Transmission Weight"].default_value = spec["transmission"]
    bsdf.inputs["IOR"].default_value = spec["ior"]
    bsdf.inputs["Coat Weight"].default_value = spec["coat"]
    if spec["subsurface"]:
        bsdf.inputs["Subsurface Weight"].default_value = spec["subsurface"]
        bsdf.inputs["Subsurface Scale"].default_value = spec.get("subsurface_radius", 0.1)
    texture = spec["texture"]
    if texture["kind"] != "none":
        colour = _texture(tree, texture, spec["base_color"])
        tree.links.new(colour.outputs[0], bsdf.inputs["Base Color"])
        if texture["rough_texture"] and spec["transmission"] == 0:
            ramp = tree.nodes.new("ShaderNodeMapRange")
            ramp.inputs["To Min"].default_value = max(0.0, spec["roughness"] - 0.3)
            ramp.inputs["To Max"].default_value = min(1.0, spec["roughness"] + 0.3)
            bw = tree.nodes.new("ShaderNodeRGBToBW")
            tree.links.new(colour.outputs[0], bw.inputs[0])
            tree.links.new(bw.outputs[0], ramp.inputs["Value"])
            tree.links.new(ramp.outputs[0], bsdf.inputs["Roughness"])
    return material


def _texture(tree, texture: dict[str, Any], base: list[float]):
    """A colour node for the texture kinds of cycles_scenes.TEXTURES (between ``base`` and the second colour)."""
    kind, scale, second = texture["kind"], texture["scale"], texture["second_color"]
    coords = tree.nodes.new("ShaderNodeTexCoord")
    ramp = tree.nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (*base, 1)
    ramp.color_ramp.elements[1].color = (*second, 1)
    if kind == "bricks":
        node = tree.nodes.new("ShaderNodeTexBrick")
        node.inputs["Color1"].default_value = (*base, 1)
        node.inputs["Color2"].default_value = (*[0.8 * c for c in base], 1)
        node.inputs["Mortar"].default_value = (*second, 1)
        node.inputs["Scale"].default_value = scale
        tree.links.new(coords.outputs["Object"], node.inputs["Vector"])
        return node
    if kind == "checker":
        node = tree.nodes.new("ShaderNodeTexChecker")
        node.inputs["Color1"].default_value = (*base, 1)
        node.inputs["Color2"].default_value = (*second, 1)
        node.inputs["Scale"].default_value = scale
        tree.links.new(coords.outputs["Object"], node.inputs["Vector"])
        return node
    if kind == "wood":
        node = tree.nodes.new("ShaderNodeTexWave")
        node.wave_type = "RINGS"
        node.inputs["Distortion"].default_value = 5.0
        node.inputs["Detail"].default_value = 4.0
    elif kind == "stripes":
        node = tree.nodes.new("ShaderNodeTexWave")
        node.wave_type = "BANDS"
    elif kind == "fabric":
        node = tree.nodes.new("ShaderNodeTexMagic")
        node.turbulence_depth = 3
    elif kind == "foliage":
        node = tree.nodes.new("ShaderNodeTexVoronoi")  # cells, like leaves or scales
    else:  # noise
        node = tree.nodes.new("ShaderNodeTexNoise")
        node.inputs["Detail"].default_value = 8.0
    node.inputs["Scale"].default_value = scale
    tree.links.new(coords.outputs["Object"], node.inputs["Vector"])
    factor = node.outputs["Fac"] if "Fac" in node.outputs else node.outputs["Distance"]
    tree.links.new(factor, ramp.inputs["Fac"])
    return ramp


def _add_shape(index: int, shape: dict[str, Any]):
    import bpy

    size, location = shape["size"], shape["location"]
    kind = shape["kind"]
    if kind == "sphere":
        bpy.ops.mesh.primitive_uv_sphere_add(radius=size, location=location, segments=48, ring_count=24)
    elif kind == "cube":
        bpy.ops.mesh.primitive_cube_add(size=size * 1.4, location=location)
    elif kind == "cylinder":
        bpy.ops.mesh.primitive_cylinder_add(radius=size * 0.6, depth=size * 1.6, location=location, vertices=48)
    elif kind == "torus":
        bpy.ops.mesh.primitive_torus_add(major_radius=size, minor_radius=size * 0.3, location=location)
    elif kind == "cone":
        bpy.ops.mesh.primitive_cone_add(radius1=size * 0.7, depth=size * 1.6, location=location, vertices=48)
    elif kind == "monkey":
        bpy.ops.mesh.primitive_monkey_add(size=size * 1.4, location=location)
        bpy.ops.object.modifier_add(type="SUBSURF")
    elif kind == "rod":
        bpy.ops.mesh.primitive_cylinder_add(radius=shape["radius"], depth=size, location=location, vertices=12)
    elif kind == "text":
        bpy.ops.object.text_add(location=location)
        text = bpy.context.object
        text.data.body = shape["body"]
        text.data.size = size
        text.data.extrude = 0.01
        text.data.align_x = "CENTER"
    else:
        raise ValueError(f"unknown shape {kind!r}")
    obj = bpy.context.object
    obj.rotation_euler = shape["rotation"] if kind != "text" else (math.pi / 2, 0, shape["rotation"][2])
    if kind in ("sphere", "cylinder", "torus", "cone", "monkey", "rod"):
        for polygon in obj.data.polygons:
            polygon.use_smooth = True
    obj.data.materials.append(_principled(f"m{index}", shape["material"]))
    if "motion" in shape:  # keyframes a shutter apart: Cycles blurs the move
        scene = bpy.context.scene
        obj.keyframe_insert("location", frame=scene.frame_current - 1)
        obj.location = [a + b for a, b in zip(location, shape["motion"], strict=True)]
        obj.keyframe_insert("location", frame=scene.frame_current + 1)
        obj.location = location
        obj.keyframe_insert("location", frame=scene.frame_current)
    return obj


def _room(room: dict[str, Any]) -> None:
    """Four walls and a ceiling around the origin; the +x wall has the window (four boxes around an opening)."""
    import bpy

    size, height = room["size"], room["height"]
    half = size / 2
    wall = _principled("wall", room["wall"])
    bpy.ops.mesh.primitive_plane_add(size=size, location=(0, 0, height), rotation=(math.pi, 0, 0))
    bpy.context.object.data.materials.append(wall)
    for location, rotation in (((-half, 0, height / 2), (0, math.pi / 2, 0)),
                               ((0, half, height / 2), (math.pi / 2, 0, 0)),
                               ((0, -half, height / 2), (math.pi / 2, 0, 0))):
        bpy.ops.mesh.primitive_cube_add(size=1, location=location, rotation=rotation)
        bpy.context.object.scale = (size, height, 0.05) if rotation[0] else (height, size, 0.05)
        bpy.context.object.data.materials.append(wall)
    width, tall = room["window"]
    sill = 0.8
    top = min(height - 0.1, sill + tall)
    for centre, scale in (((half, 0, sill / 2), (0.05, size, sill)),
                          ((half, 0, (top + height) / 2), (0.05, size, height - top)),
                          ((half, -(width / 2 + (half - width / 2) / 2), (sill + top) / 2),
                           (0.05, half - width / 2, top - sill)),
                          ((half, width / 2 + (half - width / 2) / 2, (sill + top) / 2),
                           (0.05, half - width / 2, top - sill))):
        bpy.ops.mesh.primitive_cube_add(size=1, location=centre)
        bpy.context.object.scale = scale
        bpy.context.object.data.materials.append(wall)


def build_scene(spec: dict[str, Any], width: int, height: int, threads: int = 1):
    """A fresh Blender scene (:func:`new_cycles_scene`) from a description."""
    import bpy

    scene = new_cycles_scene(width, height, threads)
    scene.frame_set(10)
    world = spec["world"]
    add_sky(world["strength"], world["zenith"], world["horizon"])
    bpy.ops.mesh.primitive_plane_add(size=40 if spec["layout"] != "interior" else spec["room"]["size"])
    bpy.context.object.data.materials.append(_principled("ground", spec["ground"]))
    if spec["layout"] == "interior":
        _room(spec["room"])
    for index, shape in enumerate(spec["shapes"]):
        _add_shape(index, shape)
    for index, light in enumerate(spec["lights"]):
        if light["kind"] == "sun":
            bpy.ops.object.light_add(type="SUN")
            sun = bpy.context.object
            sun.data.energy, sun.data.angle = light["strength"], math.radians(light["angle"])
            sun.data.color = light["color"]
            elevation, azimuth = math.radians(light["elevation"]), light["azimuth"]
            direction = (math.cos(azimuth) * math.cos(elevation), math.sin(azimuth) * math.cos(elevation),
                         math.sin(elevation))
            look_at(sun, direction, (0, 0, 0))
        elif light["kind"] == "area":
            bpy.ops.object.light_add(type="AREA", location=light["location"])
            area = bpy.context.object
            area.data.energy, area.data.size, area.data.color = light["power"], light["size"], light["color"]
            look_at(area, light["location"], (0, 0, 0.3))
        else:  # a small bright emitting sphere
            bpy.ops.mesh.primitive_ico_sphere_add(radius=light["radius"], location=light["location"],
                                                  subdivisions=2)
            glow = bpy.data.materials.new(f"bulb{index}")
            glow.use_nodes = True
            bsdf = glow.node_tree.nodes["Principled BSDF"]
            bsdf.inputs["Base Color"].default_value = (0, 0, 0, 1)
            bsdf.inputs["Emission Color"].default_value = (*light["color"], 1)
            bsdf.inputs["Emission Strength"].default_value = light["strength"]
            bpy.context.object.data.materials.append(glow)
    volume = spec.get("volume")
    if volume:
        if volume["kind"] == "fog":
            bpy.ops.mesh.primitive_cube_add(size=6, location=(0, 0, 1.5))
        else:
            bpy.ops.mesh.primitive_uv_sphere_add(radius=0.6, location=volume["location"])
        medium = bpy.data.materials.new("volume")
        medium.use_nodes = True
        tree = medium.node_tree
        tree.nodes.remove(tree.nodes["Principled BSDF"])
        node = tree.nodes.new("ShaderNodeVolumePrincipled")
        node.inputs["Density"].default_value = volume["density"] * (0.1 if volume["kind"] == "fog" else 1.0)
        node.inputs["Color"].default_value = (*volume["color"], 1)
        tree.links.new(node.outputs[0], tree.nodes["Material Output"].inputs["Volume"])
        bpy.context.object.data.materials.append(medium)
    camera_spec = spec["camera"]
    bpy.ops.object.camera_add(location=camera_spec["location"])
    camera = bpy.context.object
    look_at(camera, camera_spec["location"], camera_spec["target"])
    camera.data.lens = camera_spec["lens"]
    if camera_spec["fstop"]:
        camera.data.dof.use_dof = True
        camera.data.dof.aperture_fstop = camera_spec["fstop"]
        camera.data.dof.focus_distance = math.dist(camera_spec["location"], camera_spec["target"])
    scene.camera = camera
    scene.render.use_motion_blur = bool(spec["motion_blur"])
    return scene


def _render(spec: dict[str, Any], target: Path, samples: int, seed: int, size: tuple[int, int],
            threads: int) -> float:
    return round(render_still(build_scene(spec, *size, threads=threads), target, samples, seed), 2)


def _link(link: Path, points_to: str) -> None:
    """A relative symlink, written atomically (kept when there)."""
    if not link.exists():
        temporary = link.with_name(link.name + ".tmp")
        temporary.unlink(missing_ok=True)
        os.symlink(points_to, temporary)
        os.replace(temporary, link)


def write_reference_links(out: Path, name: str, spps: list[int]) -> None:
    """A validation set's clean pairs: ``DIR/reference/NAME_sppNNNN_ref.exr`` links to ``DIR/clean/NAME_ref.exr``,
    so ``input/`` + ``reference/`` pairs every noisy input with the clean reference (a recipe's ``val_input_dir``
    / ``val_target_dir``: checkpoints are chosen against clean references, never against noisy targets)."""
    (out / "reference").mkdir(parents=True, exist_ok=True)
    for n in spps:
        _link(out / "reference" / f"{name}_spp{n:04d}_ref.exr", f"../clean/{name}_ref.exr")


def render_scene(out: Path, seed: int, spps: list[int], target_spp: int, ref_spp: int = 0,
                 size: tuple[int, int] = (128, 128), threads: int = 1) -> dict[str, Any]:
    """Render scene ``seed`` into the pairs layout under ``out`` (see the module docstring); returns its record."""
    name = scene_name(seed)
    record_path = out / "scenes" / f"{name}.json"
    record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.exists() else {
        "name": name, "spec": random_cycles_scene(seed), "size": list(size), "threads": threads, "seconds": {}}
    seeds = render_seeds(seed, spps)
    record["seeds"] = seeds
    for folder in ("input", "target", "scenes") + (("clean",) if ref_spp else ()):
        (out / folder).mkdir(parents=True, exist_ok=True)
    jobs = [(out / "target" / f"{name}_target.exr", target_spp, seeds["target"], "target")]
    jobs += [(out / "input" / f"{name}_spp{n:04d}_color.exr", n, seeds[f"spp{n}"], f"spp{n}") for n in spps]
    if ref_spp:
        jobs.append((out / "clean" / f"{name}_ref.exr", ref_spp, seeds["reference"], "reference"))
    for path, samples, cycles_seed, key in jobs:
        if not path.exists():
            record["seconds"][key] = _render(record["spec"], path, samples, cycles_seed, size, threads)
            record_path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    # Every input pairs with the scene's Noise2Noise target by name (datasets.match_pairs: X_color <-> X_ref).
    for n in spps:
        _link(out / "target" / f"{name}_spp{n:04d}_ref.exr", f"{name}_target.exr")
    if ref_spp:
        write_reference_links(out, name, spps)
    record.update(spp=spps, target_spp=target_spp, ref_spp=ref_spp,
                  target_kind="independent noisy render (Noise2Noise)")
    record_path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--scenes", type=int, default=1)
    parser.add_argument("--seed", type=int, default=30000, help="first scene seed")
    parser.add_argument("--spp", default="4,16", help="noisy input sample counts")
    parser.add_argument("--target-spp", type=int, default=128, help="the Noise2Noise target's sample count")
    parser.add_argument("--ref-spp", type=int, default=0, help="also a clean reference (validation sets)")
    parser.add_argument("--size", default="128x128")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    spps = [int(v) for v in args.spp.split(",")]
    for index in range(args.scenes):
        record = render_scene(Path(args.out), args.seed + index, spps, args.target_spp, args.ref_spp,
                              (width, height), args.threads)
        total = sum(record["seconds"].values())
        print(f"{record['name']}: {record['spec']['layout']}, {len(record['spec']['shapes'])} shapes, "
              f"{total:.1f} s ({record['seconds']})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
