"""Random Blender Cycles scene descriptions, drawn deterministically from a seed (the Cycles generator's half that
needs no Blender).

What production renders have and the Mitsuba generator (:mod:`engine.render_data.scenes`) lacks: procedural
textures at every scale (bricks, wood rings, fabric-like weaves, foliage-like cells, noise, checkers, printed text),
principled materials across roughness / metallic / transmission / subsurface / coat, rooms lit through a window by a
sun and the sky, skies with a sun outdoors, small very bright emitters (fireflies), depth of field, motion blur,
thin geometry (rods, wires) and volumes (fog in a box, smoke-like spheres).

A description is a plain JSON-able dict; :mod:`engine.render_data.cycles_backend` builds it with bpy and renders
it. Nothing here imports bpy, so the descriptions are tested in the app's environment; the seed alone decides
everything (numpy's PCG64), and every part of the scene draws from its own stream (``_stream``), so adding a
feature to one part does not change the others of older seeds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Spec = dict[str, Any]

TEXTURES = ("none", "bricks", "wood", "fabric", "foliage", "noise", "checker", "stripes")
SHAPES = ("sphere", "cube", "cylinder", "torus", "cone", "monkey", "rod", "text")
LAYOUTS = ("outdoor", "interior", "studio")
#: Words for text objects (printed signs, labels): glyph edges are the finest detail a denoiser must keep.
WORDS = ("RENDER", "exit", "Studio 42", "caution", "OPEN", "fig. 3", "0123456789", "Aa Bb Cc", "noise", "hello")


def _stream(seed: int, part: str) -> np.random.Generator:
    """An independent generator for one part of the scene (camera, lights, objects...)."""
    return np.random.default_rng([int(seed), sum(ord(c) * 31**i for i, c in enumerate(part)) % (2**32)])


def _colour(rng: np.random.Generator, low: float = 0.03, high: float = 0.9) -> list[float]:
    base = rng.uniform(low, high, 3)
    grey = float(base.mean())
    mix = rng.uniform(0.0, 1.0)
    return [round(float(grey + mix * (c - grey)), 4) for c in base]


def random_material(rng: np.random.Generator) -> Spec:
    """A principled material: one family (diffuse, plastic, metal, glass, subsurface, coated) with its
    parameters, and maybe a procedural texture on its base colour (and roughness)."""
    family = str(rng.choice(["diffuse", "plastic", "metal", "glass", "subsurface", "coated"],
                            p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1]))
    material: Spec = {"family": family, "base_color": _colour(rng), "roughness": round(float(rng.uniform(0.3, 1)), 3),
                      "metallic": 0.0, "transmission": 0.0, "subsurface": 0.0, "coat": 0.0, "ior": 1.5}
    if family == "plastic":
        material["roughness"] = round(float(rng.uniform(0.05, 0.5)), 3)
    elif family == "metal":
        material.update(metallic=1.0, roughness=round(float(rng.choice([0.0, 0.02, 0.1, 0.25, 0.5])), 3),
                        base_color=_colour(rng, 0.5, 1.0))
    elif family == "glass":
        material.update(transmission=1.0, roughness=round(float(rng.choice([0.0, 0.0, 0.05, 0.2])), 3),
                        ior=round(float(rng.uniform(1.33, 1.8)), 3), base_color=_colour(rng, 0.7, 1.0))
    elif family == "subsurface":
        material.update(subsurface=1.0, roughness=round(float(rng.uniform(0.3, 0.7)), 3),
                        subsurface_radius=round(float(rng.uniform(0.02, 0.3)), 3))
    elif family == "coated":
        material.update(coat=1.0, roughness=round(float(rng.uniform(0.3, 0.8)), 3))
    texture = "none" if family in ("glass", "metal") and rng.random() < 0.7 else str(
        rng.choice(TEXTURES, p=[0.25, 0.12, 0.12, 0.1, 0.1, 0.13, 0.1, 0.08]))
    material["texture"] = {"kind": texture, "scale": round(float(np.exp(rng.uniform(np.log(1.5), np.log(60)))), 3),
                           "second_color": _colour(rng), "rough_texture": bool(rng.random() < 0.4)}
    return material


def _shape(rng: np.random.Generator, index: int, spread: float) -> Spec:
    kind = str(rng.choice(SHAPES, p=[0.2, 0.17, 0.12, 0.1, 0.08, 0.08, 0.15, 0.1]))
    size = float(rng.uniform(0.2, 0.7))
    shape: Spec = {"kind": kind, "size": round(size, 3),
                   "location": [round(float(rng.uniform(-spread, spread)), 3),
                                round(float(rng.uniform(-spread, spread)), 3), round(size, 3)],
                   "rotation": [round(float(v), 3) for v in rng.uniform(0, math.pi, 3)] if rng.random() < 0.5
                   else [0.0, 0.0, round(float(rng.uniform(0, math.pi)), 3)],
                   "material": random_material(rng)}
    if kind == "rod":  # thin geometry: a wire or a rod, a few pixels wide or less
        shape["radius"] = round(float(np.exp(rng.uniform(np.log(0.004), np.log(0.04)))), 4)
        shape["size"] = round(float(rng.uniform(0.8, 2.5)), 3)
    if kind == "text":
        shape["body"] = str(rng.choice(WORDS))
        shape["size"] = round(float(rng.uniform(0.15, 0.6)), 3)
    if rng.random() < 0.15:  # motion blur: the object moves during the shutter
        shape["motion"] = [round(float(v), 3) for v in rng.normal(0, 0.15, 3)]
    return shape


def random_cycles_scene(seed: int) -> Spec:
    """The description of scene ``seed`` (see the module docstring)."""
    layout_rng = _stream(seed, "layout")
    layout = str(layout_rng.choice(LAYOUTS, p=[0.4, 0.3, 0.3]))
    spec: Spec = {"seed": int(seed), "layout": layout, "generator": "cycles_scenes v1"}

    ground_rng = _stream(seed, "ground")
    spec["ground"] = random_material(ground_rng)
    if layout == "interior":
        spec["room"] = {"size": round(float(ground_rng.uniform(3.5, 6.0)), 3),
                        "height": round(float(ground_rng.uniform(2.4, 3.2)), 3),
                        "wall": random_material(ground_rng),
                        "window": [round(float(ground_rng.uniform(0.6, 1.6)), 3),
                                   round(float(ground_rng.uniform(0.6, 1.3)), 3)]}

    light_rng = _stream(seed, "lights")
    sun_elevation = float(light_rng.uniform(10, 70))
    spec["world"] = {"zenith": _colour(light_rng, 0.2, 0.9), "horizon": _colour(light_rng, 0.2, 0.9),
                     "strength": round(float(np.exp(light_rng.uniform(np.log(0.05), np.log(1.5)))), 4)}
    lights: list[Spec] = []
    if layout in ("outdoor", "interior") or light_rng.random() < 0.3:
        azimuth = float(light_rng.uniform(0, 2 * math.pi)) if layout != "interior" else float(
            light_rng.uniform(-0.5, 0.5))  # through the window (the room's +x wall)
        lights.append({"kind": "sun", "elevation": round(sun_elevation, 2), "azimuth": round(azimuth, 3),
                       "strength": round(float(light_rng.uniform(2, 8)), 3),
                       "angle": round(float(light_rng.uniform(0.5, 5)), 3), "color": _colour(light_rng, 0.8, 1.0)})
    for _ in range(int(light_rng.integers(1 if layout == "studio" else 0, 3))):
        lights.append({"kind": "area", "size": round(float(np.exp(light_rng.uniform(np.log(0.05), np.log(2)))), 3),
                       "location": [round(float(v), 3) for v in light_rng.uniform([-3, -3, 1.5], [3, 3, 4])],
                       "power": round(float(light_rng.uniform(50, 600)), 2), "color": _colour(light_rng, 0.6, 1.0)})
    if light_rng.random() < 0.3:  # small bright emitters: fireflies at low sample counts
        for _ in range(int(light_rng.integers(2, 12))):
            lights.append({"kind": "bulb", "radius": round(float(light_rng.uniform(0.01, 0.04)), 4),
                           "location": [round(float(v), 3) for v in light_rng.uniform([-2, -2, 0.1], [2, 2, 2])],
                           "strength": round(float(light_rng.uniform(50, 800)), 2),
                           "color": _colour(light_rng, 0.5, 1.0)})
    spec["lights"] = lights

    object_rng = _stream(seed, "objects")
    spread = 1.2 if layout != "interior" else 0.9 * spec["room"]["size"] / 2
    spec["shapes"] = [_shape(object_rng, i, spread) for i in range(int(object_rng.integers(2, 8)))]

    volume_rng = _stream(seed, "volume")
    spec["volume"] = None
    if volume_rng.random() < 0.15:
        spec["volume"] = {"kind": str(volume_rng.choice(["fog", "smoke"])),
                          "density": round(float(np.exp(volume_rng.uniform(np.log(0.05), np.log(2)))), 4),
                          "color": _colour(volume_rng, 0.5, 1.0),
                          "location": [round(float(v), 3) for v in volume_rng.uniform([-1, -1, 0.3], [1, 1, 1])]}

    camera_rng = _stream(seed, "camera")
    # Framing: about 2-4 m of the scene across the frame outdoors (the objects lie within 1.2 m of the centre),
    # whatever the lens; indoors a wide lens from the far side of the room, looking at the window wall.
    lens = float(camera_rng.uniform(18, 85)) if layout != "interior" else float(camera_rng.uniform(14, 30))
    if layout == "interior":
        distance = float(camera_rng.uniform(0.3, 0.45) * spec["room"]["size"])
        azimuth = float(camera_rng.uniform(math.pi * 0.8, math.pi * 1.2))
        elevation = float(camera_rng.uniform(0.05, 0.3))
    else:
        distance = float(camera_rng.uniform(2.0, 4.0)) * lens / 36.0
        azimuth = float(camera_rng.uniform(0, 2 * math.pi))
        elevation = float(camera_rng.uniform(0.1, 0.7))
    target = [round(float(v), 3) for v in camera_rng.uniform([-0.3, -0.3, 0.2], [0.3, 0.3, 0.8])]
    camera: Spec = {"location": [round(target[0] + distance * math.cos(azimuth) * math.cos(elevation), 3),
                                 round(target[1] + distance * math.sin(azimuth) * math.cos(elevation), 3),
                                 round(max(0.3, target[2] + distance * math.sin(elevation)), 3)],
                    "target": target, "lens": round(lens, 2), "fstop": None}
    if camera_rng.random() < 0.25:  # depth of field, focused on the target
        camera["fstop"] = round(float(np.exp(camera_rng.uniform(np.log(0.8), np.log(5.6)))), 3)
    spec["camera"] = camera
    spec["motion_blur"] = any("motion" in s for s in spec["shapes"])
    return spec


# -- shots: one scene, several frames, with the camera and objects moving ----------------------------------------

#: What moves in a shot: the camera, one or two objects, or both. ``random_cycles_shot`` picks ``seed % 3``, so
#: any three consecutive seeds give one of each.
SHOT_KINDS = ("camera", "object", "both")
#: Camera moves: towards / away from the target, turning on the spot, circling the target, a hand-held wobble.
CAMERA_MOVES = ("dolly", "pan", "orbit", "handheld")


def _rotate_z(point: list[float], centre: list[float], angle: float) -> list[float]:
    dx, dy = point[0] - centre[0], point[1] - centre[1]
    c, s = math.cos(angle), math.sin(angle)
    return [centre[0] + c * dx - s * dy, centre[1] + s * dx + c * dy, point[2]]


def _smooth_walk(rng: np.random.Generator, frames: int, sigma: float) -> np.ndarray:
    """(frames, 3) offsets of a hand-held camera: a random walk, smoothed over 3 frames, starting near zero."""
    steps = rng.normal(0.0, sigma, (frames + 2, 3))
    walk = np.cumsum(steps, axis=0)
    smooth = (walk[:-2] + walk[1:-1] + walk[2:]) / 3.0
    return smooth - smooth[0]


def shot_cameras(camera: Spec, move: Spec, frames: int) -> list[Spec]:
    """The camera (``location``, ``target``) of every frame for a move of :func:`random_cycles_shot`.

    The move runs linearly from frame 0 to the last frame; ``jitter`` (hand-held) adds the stored per-frame
    offsets to the location and the target."""
    location, target = [float(v) for v in camera["location"]], [float(v) for v in camera["target"]]
    out = []
    for index in range(frames):
        t = index / max(frames - 1, 1)
        loc, tgt = list(location), list(target)
        if move["kind"] == "dolly":  # along the view axis, towards (amount > 0) or away from the target
            loc = [a + move["amount"] * t * (b - a) for a, b in zip(location, target, strict=True)]
        elif move["kind"] == "pan":  # the camera stays, the target turns about the vertical through the camera
            tgt = _rotate_z(target, location, math.radians(move["degrees"]) * t)
        elif move["kind"] == "orbit":  # the camera circles the target
            loc = _rotate_z(location, target, math.radians(move["degrees"]) * t)
        jitter = move.get("jitter")
        if jitter:
            loc = [a + b for a, b in zip(loc, jitter["location"][index], strict=True)]
            tgt = [a + b for a, b in zip(tgt, jitter["target"][index], strict=True)]
        out.append({"location": [round(v, 5) for v in loc], "target": [round(v, 5) for v in tgt]})
    return out


def random_cycles_shot(seed: int, frames: int = 8, kind: str | None = None) -> Spec:
    """Scene ``seed`` (:func:`random_cycles_scene`) as a shot of ``frames`` frames: the camera moves (a dolly, a
    pan, an orbit or a hand-held wobble, sometimes a wobble on top of a move), one or two objects translate and
    rotate at constant speed (keyframed linearly), or both (``kind``; default ``SHOT_KINDS[seed % 3]``).

    Motion blur is off (Cycles writes its ``Vector`` pass only without it): the shapes' own shutter motion is
    dropped. Everything the shot adds draws from the ``"shot"`` stream, so the still scene of the seed is
    unchanged. ``spec["shot"]`` holds the kind, the camera move, the per-frame cameras and the object moves
    (``index`` into ``spec["shapes"]``, ``translate`` in metres per frame, ``rotate`` in radians per frame)."""
    if frames < 1:
        raise ValueError("a shot needs at least one frame")
    kind = kind if kind is not None else SHOT_KINDS[int(seed) % len(SHOT_KINDS)]
    if kind not in SHOT_KINDS:
        raise ValueError(f"unknown shot kind {kind!r}; expected one of {SHOT_KINDS}")
    spec = random_cycles_scene(seed)
    for shape in spec["shapes"]:
        shape.pop("motion", None)
    spec["motion_blur"] = False
    spec["generator"] = "cycles_scenes v1 shot"
    rng = _stream(seed, "shot")
    camera = spec["camera"]
    distance = math.dist(camera["location"], camera["target"])
    move: Spec = {"kind": "static"}
    if kind in ("camera", "both"):
        move = {"kind": str(rng.choice(CAMERA_MOVES, p=[0.25, 0.25, 0.3, 0.2]))}
        if move["kind"] == "dolly":
            move["amount"] = round(float(rng.uniform(0.08, 0.25) * rng.choice([-1, 1])), 4)
        elif move["kind"] == "pan":
            move["degrees"] = round(float(rng.uniform(4, 12) * rng.choice([-1, 1])), 3)
        elif move["kind"] == "orbit":
            move["degrees"] = round(float(rng.uniform(8, 25) * rng.choice([-1, 1])), 3)
        if move["kind"] == "handheld" or rng.random() < 0.3:
            sigma = 0.004 * distance
            move["jitter"] = {"location": _smooth_walk(rng, frames, sigma).round(5).tolist(),
                              "target": _smooth_walk(rng, frames, sigma).round(5).tolist()}
    moves: list[Spec] = []
    if kind in ("object", "both"):
        count = min(len(spec["shapes"]), int(rng.integers(1, 3)))
        for index in sorted(int(i) for i in rng.choice(len(spec["shapes"]), count, replace=False)):
            heading = float(rng.uniform(0, 2 * math.pi))
            travel = float(rng.uniform(0.15, 0.5)) / max(frames - 1, 1)  # metres per frame
            lift = float(rng.normal(0, 0.02)) if rng.random() < 0.3 else 0.0
            spin = [0.0, 0.0, float(rng.uniform(0.3, 1.2) * rng.choice([-1, 1])) / max(frames - 1, 1)]
            if rng.random() < 0.3:  # tumbling too
                spin[0] = float(rng.uniform(-0.6, 0.6)) / max(frames - 1, 1)
            moves.append({"index": index,
                          "translate": [round(travel * math.cos(heading), 5), round(travel * math.sin(heading), 5),
                                        round(lift, 5)],
                          "rotate": [round(v, 5) for v in spin]})
    spec["shot"] = {"frames": int(frames), "kind": kind, "camera_move": move,
                    "cameras": shot_cameras(camera, move, frames), "object_moves": moves}
    return spec


def shot_render_seeds(seed: int, frames: int, spps: list[int]) -> list[dict[str, int]]:
    """The Cycles seed of every render of every frame of shot ``seed``: all distinct (noisy at each spp, the
    Noise2Noise target, the reference), so no two renders share noise. Blender's own denoised frame reuses its
    noisy frame's seed on purpose: it is the denoiser's output for exactly that noisy render."""
    base = (int(seed) * 7919) % (2**31 - 10_000_000)
    out = []
    for index in range(frames):
        frame = base + 1000 * (index + 1)
        out.append({"target": frame + 1, "reference": frame + 2, **{f"spp{n}": frame + 16 + n for n in spps}})
    return out
