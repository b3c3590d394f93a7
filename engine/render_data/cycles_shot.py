"""Render :func:`engine.render_data.cycles_scenes.random_cycles_shot` descriptions with Blender Cycles (bpy): shots
of several frames with the camera and objects moving, for temporal render denoisers and for measuring flicker.

Training and benchmarks only: it needs ``bpy`` (Blender 5.0.1 as a Python module), imported inside the functions
that render. Run it with that Python from the repository root::

    nice -n 15 /path/to/bpy-python -m engine.render_data.cycles_shot --out DIR --seed S [--shots N] [--frames 8]
        [--spp 4,16] [--ref-spp 512 | --target-spp 128] [--size 96x96] [--threads 1]

Shot ``S`` (seeds S, S+1, ... with ``--shots``) at every noisy sample count ``n`` goes to
``DIR/shot_SSSSSS_sppNNNN/``, the layout of the Mitsuba shots (``render-shot``) that the Train dialog reads:

- ``frame_0000.exr``: the noisy frame, denoising off, as the multi-layer EXR Blender writes (Combined, the Denoising
  Data passes, normal, depth, the diffuse / glossy / transmission passes, emission, environment and ``Vector``,
  Blender's motion pass, which it writes only with motion blur off, so motion blur is off);
- ``frame_0000_blender.exr``: Blender's own denoised result of exactly that noisy render (the same Cycles seed and
  sample count, rendered again with ``use_denoising`` on, OpenImageDenoise, albedo + normal, prefilter Accurate,
  quality High: what an artist gets; its ``Noisy Image`` pass equals ``frame_0000.exr``'s Combined);
- with ``--ref-spp R`` (validation shots) ``frame_0000_ref.exr``: a reference at R spp, or with ``--target-spp T``
  (training shots) ``frame_0000_target.exr``: a second, independent noisy render at T spp (a Noise2Noise target).
  Rendered once per frame and hard-linked into every sample count's folder;
- ``shot.json``: the description (camera of every frame, object moves), every Cycles seed, sample counts, size,
  and the wall time of every render (one thread unless ``--threads``).

Every render of every frame has its own Cycles seed (``scene.cycles.seed`` set per frame, never Blender's animated
seed), so the noise of consecutive frames is independent, as in a farm render with distinct seeds. Files already
written are kept (a file is written whole or not at all), so an interrupted run resumes. Frame ``i`` of the files
is Blender frame ``i + 1``.
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

from .cycles_scenes import random_cycles_shot, shot_render_seeds

#: Blender's denoiser as an artist runs it (Render Properties > Sampling > Denoise).
BLENDER_DENOISER = {"denoiser": "OPENIMAGEDENOISE", "denoising_input_passes": "RGB_ALBEDO_NORMAL",
                    "denoising_prefilter": "ACCURATE", "denoising_quality": "HIGH"}


def shot_name(seed: int, spp: int) -> str:
    return f"shot_{seed:06d}_spp{spp:04d}"


def frame_name(index: int) -> str:
    return f"frame_{index:04d}"


def _shape_objects(count: int) -> list:
    """The Blender object of every ``spec["shapes"]`` entry (cycles_backend names shape i's material ``m{i}``)."""
    import bpy

    found: dict[int, Any] = {}
    for obj in bpy.context.scene.objects:
        materials = getattr(obj.data, "materials", None) or []
        for material in materials:
            if material is not None and material.name.startswith("m") and material.name[1:].isdigit():
                found[int(material.name[1:])] = obj
    missing = [i for i in range(count) if i not in found]
    if missing:
        raise RuntimeError(f"shapes {missing} not found in the Blender scene")
    return [found[i] for i in range(count)]


def build_shot(spec: dict[str, Any], width: int, height: int, threads: int = 1):
    """The scene of a shot description, animated over Blender frames 1..N: the camera keyed on every frame (and
    its focus distance, with depth of field), each moving object keyed on the first and last frame, all linear;
    motion blur off and the ``Vector`` pass on."""
    import bpy

    from .cycles_backend import build_scene, look_at

    scene = build_scene(spec, width, height, threads=threads)
    shot = spec["shot"]
    frames = shot["frames"]
    bpy.context.preferences.edit.keyframe_new_interpolation_type = "LINEAR"
    scene.frame_start, scene.frame_end = 1, frames
    scene.render.use_motion_blur = False
    scene.view_layers[0].use_pass_vector = True
    camera = scene.camera
    for index, pose in enumerate(shot["cameras"]):
        camera.location = pose["location"]
        look_at(camera, pose["location"], pose["target"])
        camera.keyframe_insert("location", frame=index + 1)
        camera.keyframe_insert("rotation_euler", frame=index + 1)
        if camera.data.dof.use_dof:
            camera.data.dof.focus_distance = math.dist(pose["location"], pose["target"])
            camera.data.dof.keyframe_insert("focus_distance", frame=index + 1)
    objects = _shape_objects(len(spec["shapes"]))
    for move in shot["object_moves"]:
        obj = objects[move["index"]]
        location, rotation = list(obj.location), list(obj.rotation_euler)
        for frame in (1, frames):
            steps = frame - 1
            obj.location = [a + steps * b for a, b in zip(location, move["translate"], strict=True)]
            obj.rotation_euler = [a + steps * b for a, b in zip(rotation, move["rotate"], strict=True)]
            obj.keyframe_insert("location", frame=frame)
            obj.keyframe_insert("rotation_euler", frame=frame)
    scene.frame_set(1)
    return scene


def render_frame(scene, target: Path, frame: int, samples: int, seed: int, denoise: bool = False) -> float:
    """Render Blender frame ``frame`` at ``samples`` spp with Cycles seed ``seed`` into ``target`` (written whole
    or not at all); ``denoise``: Blender's OIDN on (:data:`BLENDER_DENOISER`). Returns the wall seconds."""
    from .cycles_backend import render_still

    scene.frame_set(frame)
    scene.cycles.use_animated_seed = False
    scene.cycles.use_denoising = denoise
    if denoise:
        for key, value in BLENDER_DENOISER.items():
            setattr(scene.cycles, key, value)
        scene.cycles.denoising_use_gpu = False
    return round(render_still(scene, target, samples, seed), 3)


def render_shot(out: Path, seed: int, frames: int, spps: list[int], ref_spp: int = 0, target_spp: int = 0,
                size: tuple[int, int] = (96, 96), threads: int = 1, log=print) -> dict[str, Any]:
    """Render shot ``seed`` into ``out`` (see the module docstring); returns the record written to shot.json."""
    if bool(ref_spp) == bool(target_spp):
        raise ValueError("give exactly one of ref_spp (validation shots) and target_spp (training shots)")
    spec = random_cycles_shot(seed, frames)
    seeds = shot_render_seeds(seed, frames, spps)
    folders = {n: out / shot_name(seed, n) for n in spps}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    clean_role, clean_spp, clean_suffix = (("reference", ref_spp, "_ref") if ref_spp else
                                           ("target", target_spp, "_target"))
    seconds: list[dict[str, float]] = []
    first = folders[spps[0]]
    record_path = first / "shot.json"
    if record_path.exists():
        old = json.loads(record_path.read_text(encoding="utf-8"))
        seconds = old.get("render_seconds", [])
    seconds += [{} for _ in range(frames - len(seconds))]
    scene = build_shot(spec, *size, threads=threads)
    started = time.perf_counter()
    for index in range(frames):
        name = frame_name(index)
        clean = first / f"{name}{clean_suffix}.exr"
        if not clean.exists():
            seconds[index][clean_role] = render_frame(scene, clean, index + 1, clean_spp, seeds[index][clean_role])
        for n, folder in folders.items():
            noisy, denoised = folder / f"{name}.exr", folder / f"{name}_blender.exr"
            if not noisy.exists():
                seconds[index][f"spp{n}"] = render_frame(scene, noisy, index + 1, n, seeds[index][f"spp{n}"])
            if not denoised.exists():
                seconds[index][f"spp{n}_blender"] = render_frame(scene, denoised, index + 1, n,
                                                                 seeds[index][f"spp{n}"], denoise=True)
            linked = folder / clean.name
            if folder != first and not linked.exists():
                os.link(clean, linked)
        log(f"{shot_name(seed, spps[0])[:11]} frame {index + 1}/{frames}: {seconds[index]}")
    record = {"seed": seed, "frames": frames, "spp": spps, "ref_spp": ref_spp, "target_spp": target_spp,
              "clean": f"frame_NNNN{clean_suffix}.exr", "width": size[0], "height": size[1], "threads": threads,
              "renderer": "Blender Cycles (CPU)", "blender_denoiser": BLENDER_DENOISER,
              "motion_pass": "Vector (Blender convention, see engine/motion.py); motion blur off",
              "blender_frames": [1, frames], "seeds": seeds, "render_seconds": seconds,
              "seconds_this_run": round(time.perf_counter() - started, 2),
              "camera_move": spec["shot"]["camera_move"]["kind"], "kind": spec["shot"]["kind"], "spec": spec}
    try:
        import bpy

        record["blender"] = bpy.app.version_string
    except ImportError:  # pragma: no cover - render_shot always runs with bpy
        pass
    for n, folder in folders.items():  # shot.json last: its presence marks a complete shot
        (folder / "shot.json").write_text(json.dumps({**record, "noisy_spp": n}, indent=1) + "\n", encoding="utf-8")
    return record


def shot_complete(out: Path, seed: int, spps: list[int]) -> bool:
    return all((out / shot_name(seed, n) / "shot.json").is_file() for n in spps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder of shots (one sub-folder per shot and noisy spp)")
    parser.add_argument("--seed", type=int, required=True, help="first shot seed")
    parser.add_argument("--shots", type=int, default=1, help="number of shots (seeds S, S+1, ...)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--spp", default="4,16", help="noisy sample counts")
    parser.add_argument("--ref-spp", type=int, default=0, help="a reference per frame at this spp (validation)")
    parser.add_argument("--target-spp", type=int, default=0,
                        help="a second independent noisy render per frame at this spp (training, Noise2Noise)")
    parser.add_argument("--size", default="96x96")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    spps = [int(v) for v in args.spp.split(",")]
    out = Path(args.out)
    for seed in range(args.seed, args.seed + args.shots):
        if shot_complete(out, seed, spps):
            print(f"shot {seed}: complete, skipped", flush=True)
            continue
        started = time.perf_counter()
        record = render_shot(out, seed, args.frames, spps, args.ref_spp, args.target_spp, (width, height),
                             args.threads, log=lambda text: print(text, flush=True))
        print(f"shot {seed}: {record['spec']['layout']}, {record['kind']} ({record['camera_move']}), "
              f"{time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
