"""Rendering a numbered set of procedural scenes to disk, as a job (see :mod:`engine.jobs`).

Layout, the same as ``bench/renders/cbox256`` so that one reader serves both::

    OUT/<name>/<name>_spp00004_color.exr   (and _albedo, _normal, _depth, for every noisy spp level)
    OUT/<name>/<name>_ref_spp01024_color.exr
    OUT/<name>/scene.json                  (the scene description, sizes, seeds and render times)

``<name>`` is ``scene_<seed>``. Scene ``i`` uses seed ``seed + i``, and every render of it its own seed
derived from the scene seed and the sample count, so a set is reproducible and its noisy renders are
independent of each other and of the reference.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..jobs import CancelToken, EtaClock, Progress
from . import mitsuba_backend
from .exr import write_buffer
from .scenes import DEFAULT_GAUSSIAN_FRACTION, random_scene

#: Mean luminance the exposure factor of a scene description is relative to (middle grey).
MIDDLE_GREY = 0.18


@dataclass(frozen=True)
class RenderSetRequest:
    out: Path
    scenes: int
    seed: int = 0
    spp: tuple[int, ...] = (1, 4, 16, 64)
    ref_spp: int = 1024
    width: int = 128
    height: int = 128
    threads: int | None = None
    #: Share of scenes rendered with a Gaussian pixel filter (correlated noise); box otherwise.
    gaussian_fraction: float = DEFAULT_GAUSSIAN_FRACTION
    #: Share of scenes with an emitting panel flush with a wall (scenes.random_scene); 0 keeps older sets.
    panel_fraction: float = 0.0
    #: Share of scenes made full of caustic paths, i.e. fireflies (scenes.random_scene); 0 keeps older sets.
    firefly_fraction: float = 0.0
    #: Skip scenes whose folder already holds a complete set (lets an interrupted run resume).
    resume: bool = True


@dataclass(frozen=True)
class RenderSetResult:
    out: Path
    names: tuple[str, ...]
    seconds: float
    variant: str


def scene_name(seed: int) -> str:
    return f"scene_{seed:06d}"


def render_seed(scene_seed: int, spp: int, reference: bool = False) -> int:
    """The sampler seed of one render: distinct per scene, sample count and noisy/reference role."""
    return (scene_seed * 7919 + spp * 2 + int(reference)) % (2**31)


def set_paths(folder: Path, name: str, spp: Sequence[int], ref_spp: int) -> list[Path]:
    paths = [folder / f"{name}_spp{n:05d}_{b}.exr" for n in spp for b in ("color", "albedo", "normal", "depth")]
    return paths + [folder / f"{name}_ref_spp{ref_spp:05d}_color.exr", folder / "scene.json"]


def render_one(
    seed: int, spp: Sequence[int], ref_spp: int, width: int, height: int,
    gaussian_fraction: float = DEFAULT_GAUSSIAN_FRACTION,
    panel_fraction: float = 0.0,
    firefly_fraction: float = 0.0,
) -> dict:
    """Render one scene: ``{"noisy": {spp: buffers}, "reference": colour, "spec": ..., "times": ...}``.

    Colour is scaled so that the reference's mean luminance is the description's exposure times middle grey.
    """
    spec = random_scene(seed, gaussian_fraction, panel_fraction, firefly_fraction)
    scene = mitsuba_backend.build_scene(spec, width, height)
    times: dict[str, float] = {}
    start = time.perf_counter()
    reference = mitsuba_backend.render(scene, ref_spp, render_seed(seed, ref_spp, True))["color"]
    times[f"ref_spp{ref_spp}"] = time.perf_counter() - start
    noisy = {}
    for n in spp:
        start = time.perf_counter()
        noisy[n] = mitsuba_backend.render(scene, n, render_seed(seed, n))
        times[f"spp{n}"] = time.perf_counter() - start
    mean = float((reference @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)).mean())
    gain = spec["exposure"] * MIDDLE_GREY / mean if mean > 1e-8 else 1.0
    reference = reference * np.float32(gain)
    for buffers in noisy.values():
        buffers["color"] = buffers["color"] * np.float32(gain)
    return {"noisy": noisy, "reference": reference, "spec": spec, "times": times, "gain": gain, "mean": mean}


def generate_set(
    request: RenderSetRequest, token: CancelToken | None = None
) -> Generator[Progress, None, RenderSetResult]:
    """Render ``request.scenes`` scenes into ``request.out`` (see the module docstring for the layout)."""
    token = token or CancelToken()
    variant = mitsuba_backend.set_variant(request.threads)
    request.out.mkdir(parents=True, exist_ok=True)
    clock = EtaClock()
    names = []
    for i in range(request.scenes):
        token.raise_if_cancelled()
        seed = request.seed + i
        name = scene_name(seed)
        folder = request.out / name
        paths = set_paths(folder, name, request.spp, request.ref_spp)
        if not (request.resume and all(p.exists() for p in paths)):
            result = render_one(seed, request.spp, request.ref_spp, request.width, request.height,
                                request.gaussian_fraction, request.panel_fraction, request.firefly_fraction)
            folder.mkdir(parents=True, exist_ok=True)
            for n, buffers in result["noisy"].items():
                for buffer, array in buffers.items():
                    write_buffer(folder / f"{name}_spp{n:05d}_{buffer}.exr", buffer, array, half=buffer != "color")
            write_buffer(folder / f"{name}_ref_spp{request.ref_spp:05d}_color.exr", "color", result["reference"])
            info = {"name": name, "seed": seed, "width": request.width, "height": request.height,
                    "spp": list(request.spp), "ref_spp": request.ref_spp, "variant": variant,
                    "gaussian_fraction": request.gaussian_fraction, "panel_fraction": request.panel_fraction,
                    "firefly_fraction": request.firefly_fraction,
                    "render_seconds": result["times"], "exposure_gain": result["gain"],
                    "raw_mean_luminance": result["mean"], "spec": result["spec"]}
            # scene.json last: its presence marks a complete set for resuming.
            (folder / "scene.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
        names.append(name)
        fraction = (i + 1) / request.scenes
        yield Progress(fraction, "render", f"{name} ({i + 1}/{request.scenes})", clock.eta(fraction))
    return RenderSetResult(request.out, tuple(names), clock.elapsed(), variant)


# -- shots: one scene, several frames -------------------------------------------------------------------------

@dataclass(frozen=True)
class ShotRequest:
    """One procedural scene rendered as a short camera move, in the layout the Train dialog reads for per-scene
    fine-tuning: ``frame_0000.exr`` (noisy colour with ``albedo`` / ``normal`` / ``depth`` EXR layers, as a
    renderer writes a multi-layer frame) beside ``frame_0000_ref.exr`` (the same frame with many samples).

    Each frame also has a ``motion`` layer (``X, Y``): the engine's backward flow to the previous frame
    (engine/motion.py), exact at pixel centres (camera_motion.py; zero on the first frame), and the shot folder a
    ``visibility.npz`` (``visible``: frames x H x W, 1 where the pixel's surface point was visible in the previous
    frame; 0 on disocclusions and everywhere on the first frame), which training uses as the ideal history mask."""

    out: Path
    seed: int
    frames: int = 8
    spp: int = 4
    ref_spp: int = 256
    width: int = 128
    height: int = 128
    threads: int | None = None
    #: The camera turns this far about the vertical axis through its target over the whole shot.
    orbit_degrees: float = 24.0
    panel_fraction: float = 0.0


def frame_name(index: int) -> str:
    return f"frame_{index:04d}"


def orbit_camera(camera: dict, degrees: float) -> dict:
    """``camera`` turned by ``degrees`` about the vertical axis through its target."""
    angle = np.radians(degrees)
    tx, _, tz = camera["target"]
    x, y, z = camera["origin"]
    dx, dz = x - tx, z - tz
    origin = [tx + dx * float(np.cos(angle)) - dz * float(np.sin(angle)), y,
              tz + dx * float(np.sin(angle)) + dz * float(np.cos(angle))]
    return {**camera, "origin": [float(v) for v in origin]}


def generate_shot(request: ShotRequest, token: CancelToken | None = None) -> Generator[Progress, None, RenderSetResult]:
    """Render ``request.frames`` frames of scene ``request.seed`` into ``request.out`` (see :class:`ShotRequest`).

    Every frame shares one exposure (the first reference's), as the frames of one shot do, and every render its
    own sampler seed, so the frames' noise is independent."""
    from .camera_motion import backward_flow
    from .exr import write_layered

    if request.frames < 1:
        raise ValueError("a shot needs at least one frame")
    token = token or CancelToken()
    variant = mitsuba_backend.set_variant(request.threads)
    request.out.mkdir(parents=True, exist_ok=True)
    base = random_scene(request.seed, DEFAULT_GAUSSIAN_FRACTION, request.panel_fraction)
    clock = EtaClock()
    names, gain, times, cameras = [], None, [], []
    visibility = np.zeros((request.frames, request.height, request.width), np.uint8)
    for index in range(request.frames):
        token.raise_if_cancelled()
        turn = request.orbit_degrees * (index / max(request.frames - 1, 1) - 0.5)
        spec = {**base, "camera": orbit_camera(base["camera"], turn)}
        cameras.append(spec["camera"])
        scene = mitsuba_backend.build_scene(spec, request.width, request.height)
        start = time.perf_counter()
        seed = render_seed(request.seed, request.spp) + 104729 * (index + 1)
        reference = mitsuba_backend.render(scene, request.ref_spp, (seed + 1) % (2**31))["color"]
        noisy = mitsuba_backend.render(scene, request.spp, seed % (2**31))
        times.append(time.perf_counter() - start)
        if gain is None:
            mean = float((reference @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)).mean())
            gain = base["exposure"] * MIDDLE_GREY / mean if mean > 1e-8 else 1.0
        name = frame_name(index)
        noisy["color"] = noisy["color"] * np.float32(gain)
        if index:
            noisy["motion"], visible = backward_flow(scene, cameras[index], cameras[index - 1], request.width,
                                                     request.height)
            visibility[index] = visible > 0
        else:
            noisy["motion"] = np.zeros((request.height, request.width, 2), np.float32)
        write_layered(request.out / f"{name}.exr", noisy, half=False)
        write_buffer(request.out / f"{name}_ref.exr", "color", reference * np.float32(gain))
        names.append(name)
        fraction = (index + 1) / request.frames
        yield Progress(fraction, "render", f"{name} ({index + 1}/{request.frames})", clock.eta(fraction))
    np.savez_compressed(request.out / "visibility.npz", visible=visibility)
    info = {"seed": request.seed, "frames": request.frames, "spp": request.spp, "ref_spp": request.ref_spp,
            "width": request.width, "height": request.height, "orbit_degrees": request.orbit_degrees,
            "variant": variant, "exposure_gain": gain, "render_seconds": times, "cameras": cameras, "spec": base,
            "motion": "backward flow, engine/motion.py's generic convention (layer motion, channels X Y)"}
    (request.out / "shot.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    return RenderSetResult(request.out, tuple(names), clock.elapsed(), variant)


def add_shot_motion(folder: Path) -> int:
    """Add the ``motion`` layers and ``visibility.npz`` to a shot rendered before ``generate_shot`` wrote them
    (from its shot.json: the scene and every frame's camera); returns the number of frames updated."""
    import OpenEXR

    from .camera_motion import backward_flow

    info = json.loads((folder / "shot.json").read_text(encoding="utf-8"))
    width, height, cameras = info["width"], info["height"], info["cameras"]
    mitsuba_backend.set_variant()
    scene = mitsuba_backend.build_scene({**info["spec"], "camera": cameras[0]}, width, height)
    visibility = np.zeros((len(cameras), height, width), np.uint8)
    for index in range(len(cameras)):
        path = folder / f"{frame_name(index)}.exr"
        if index:
            flow, visible = backward_flow(scene, cameras[index], cameras[index - 1], width, height)
            visibility[index] = visible > 0
        else:
            flow = np.zeros((height, width, 2), np.float32)
        with OpenEXR.File(str(path)) as exr:
            header = dict(exr.header())
            channels = {name: np.array(channel.pixels) for name, channel in exr.channels().items()}
        channels["motion.X"], channels["motion.Y"] = flow[..., 0].copy(), flow[..., 1].copy()
        with OpenEXR.File({"compression": header.get("compression", OpenEXR.ZIP_COMPRESSION),
                           "type": OpenEXR.scanlineimage}, channels) as exr:
            exr.write(str(path))
    np.savez_compressed(folder / "visibility.npz", visible=visibility)
    return len(cameras)
