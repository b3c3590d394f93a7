"""Random scene descriptions, drawn deterministically from a seed.

A description is a plain JSON-able dict (camera, lights, shapes with materials, integrator settings); it is
recorded beside each rendered set so that a scene can be re-rendered or inspected. Turning it into a Mitsuba
scene is :func:`engine.render_data.mitsuba_backend.build_scene`; nothing here imports Mitsuba.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

PRIMITIVES = ("sphere", "cube", "cylinder", "disk", "rectangle", "torus", "blob")
MATERIALS = ("diffuse", "textured", "plastic", "roughconductor", "conductor", "dielectric", "roughdielectric")
LIGHTS = ("area", "point", "spot", "envmap", "constant", "directional")
ENVIRONMENT_LIGHTS = ("envmap", "constant")
# Complex IOR presets of Mitsuba's conductor BSDFs.
CONDUCTOR_PRESETS = ("Au", "Ag", "Al", "Cu", "Cr", "none")

Spec = dict[str, Any]


def _colour(rng: np.random.Generator, low: float = 0.05, high: float = 0.9) -> list[float]:
    # Saturated and grey colours alike: draw a hue-ish vector and mix it with grey.
    base = rng.uniform(low, high, 3)
    grey = float(base.mean())
    mix = rng.uniform(0.0, 1.0)
    return [float(grey + mix * (c - grey)) for c in base]


def _material(rng: np.random.Generator, kind: str | None = None) -> Spec:
    kind = kind or str(rng.choice(MATERIALS, p=[0.28, 0.2, 0.14, 0.12, 0.08, 0.1, 0.08]))
    if kind == "diffuse":
        return {"type": "diffuse", "reflectance": _colour(rng)}
    if kind == "textured":
        pattern = str(rng.choice(["checker", "noise", "stripes"]))
        return {
            "type": "textured",
            "pattern": pattern,
            "colour0": _colour(rng),
            "colour1": _colour(rng),
            "frequency": float(rng.uniform(2.0, 12.0)),
            "seed": int(rng.integers(0, 2**31 - 1)),
        }
    if kind == "plastic":
        return {"type": "plastic", "reflectance": _colour(rng), "alpha": float(rng.uniform(0.02, 0.4))}
    if kind == "roughconductor":
        return {"type": "roughconductor", "preset": str(rng.choice(CONDUCTOR_PRESETS)),
                "alpha": float(rng.uniform(0.05, 0.5))}
    if kind == "conductor":
        return {"type": "conductor", "preset": str(rng.choice(CONDUCTOR_PRESETS))}
    if kind == "dielectric":
        return {"type": "dielectric", "ior": float(rng.uniform(1.3, 1.7))}
    return {"type": "roughdielectric", "ior": float(rng.uniform(1.3, 1.7)), "alpha": float(rng.uniform(0.05, 0.35))}


#: Pixel reconstruction filter of the film. A box keeps each sample in its own pixel, so pixel noise is
#: independent, as in Cycles and most path tracers (filter importance sampling) and as OIDN assumes. A
#: Gaussian splats samples over neighbours: lag-1 noise autocorrelation ~0.37, which a denoiser trained on it
#: learns to expect and which OIDN cannot remove (see README.md). Gaussian is opt-in for that reason.
DEFAULT_GAUSSIAN_FRACTION = 0.0


def _camera(rng: np.random.Generator, gaussian_fraction: float) -> Spec:
    distance = float(rng.uniform(3.5, 6.5))  # inside the walls (7.5 from the centre)
    azimuth = float(rng.uniform(0.0, 2.0 * math.pi))
    elevation = float(np.radians(rng.uniform(5.0, 50.0)))
    origin = [
        distance * math.cos(elevation) * math.cos(azimuth),
        distance * math.sin(elevation) + 0.2,
        distance * math.cos(elevation) * math.sin(azimuth),
    ]
    target = [float(v) for v in rng.uniform([-0.4, 0.1, -0.4], [0.4, 0.6, 0.4])]
    return {
        "origin": origin,
        "target": target,
        "fov": float(rng.uniform(28.0, 55.0)),
        # One uniform draw whatever the fraction, so that the rest of a seed's scene does not depend on it.
        "filter": "gaussian" if float(rng.uniform()) < gaussian_fraction else "box",
    }


def _light(rng: np.random.Generator, kind: str) -> Spec:
    power = float(np.exp(rng.uniform(np.log(0.5), np.log(4.0))))
    tint = [float(c) for c in 1.0 - 0.35 * rng.uniform(0.0, 1.0, 3)]
    azimuth = float(rng.uniform(0.0, 2.0 * math.pi))
    height = float(rng.uniform(1.5, 4.5))
    radius = float(rng.uniform(1.0, 3.5))
    position = [radius * math.cos(azimuth), height, radius * math.sin(azimuth)]
    if kind == "area":
        return {"type": "area", "position": position, "size": float(rng.uniform(0.3, 1.5)),
                "radiance": [c * power * 4.0 for c in tint], "shape": str(rng.choice(["rectangle", "sphere"]))}
    if kind == "point":
        return {"type": "point", "position": position, "intensity": [c * power * 8.0 for c in tint]}
    if kind == "spot":
        return {"type": "spot", "position": position, "target": [float(v) for v in rng.uniform(-0.5, 0.5, 3)],
                "cutoff": float(rng.uniform(20.0, 50.0)), "intensity": [c * power * 15.0 for c in tint]}
    if kind == "envmap":
        return {"type": "envmap", "sun_azimuth": azimuth, "sun_elevation": float(rng.uniform(0.1, 1.2)),
                "sun_strength": float(rng.uniform(5.0, 60.0)), "sky": _colour(rng, 0.3, 1.0),
                "scale": power * 0.4}
    if kind == "constant":
        return {"type": "constant", "radiance": [c * power * 0.15 for c in tint]}
    return {"type": "directional", "direction": [float(-position[0]), -height, float(-position[2])],
            "irradiance": [c * power * 1.5 for c in tint]}


def _shape(rng: np.random.Generator, kind: str) -> Spec:
    size = float(rng.uniform(0.2, 0.7))
    x, z = (float(v) for v in rng.uniform(-1.6, 1.6, 2))
    return {
        "type": kind,
        "position": [x, size if kind not in ("disk", "rectangle") else float(rng.uniform(0.2, 1.2)), z],
        "size": size,
        "rotation": [float(v) for v in rng.uniform(0.0, 360.0, 3)],
        "material": _material(rng),
        "seed": int(rng.integers(0, 2**31 - 1)),
    }


def _panel(rng: np.random.Generator, camera: Spec) -> Spec:
    """An emitting panel flush with wall 0 (a ceiling-light-like emitter): it shares the wall's material and
    normal, so the albedo and normal buffers show no edge at its border, as in the Cornell box, where the
    emitter has nearly the ceiling's albedo. Position and size are fractions of the wall's half-size."""
    power = float(np.exp(rng.uniform(np.log(2.0), np.log(12.0))))
    tint = [float(c) for c in 1.0 - 0.3 * rng.uniform(0.0, 1.0, 3)]
    # Near where the camera's line of sight meets the wall (7.5 beyond the centre), so that it is in view.
    ox, oy, oz = camera["origin"]
    slope = (camera["target"][1] - oy) / max(math.hypot(ox, oz), 1e-6)
    height = float(np.clip(camera["target"][1] + slope * 7.5 + rng.uniform(1.0, 3.0), 0.4, 6.0))
    return {"type": "panel", "wall": 0, "u": float(rng.uniform(-0.15, 0.15)), "v": (height - 4.0) / 8.0,
            "half_width": float(rng.uniform(0.08, 0.22)), "half_height": float(rng.uniform(0.03, 0.12)),
            "radiance": [c * power for c in tint]}


#: Materials that make caustic paths (light reaching a diffuse surface by way of a mirror-like or glass
#: surface), the paths a path tracer samples rarely and which are fireflies at a few samples per pixel.
CAUSTIC_MATERIALS = ("roughconductor", "conductor", "dielectric", "roughdielectric")


def _caustic_material(rng: np.random.Generator) -> Spec:
    kind = str(rng.choice(CAUSTIC_MATERIALS, p=[0.4, 0.2, 0.25, 0.15]))
    if kind == "roughconductor":  # low roughness: a tight highlight, a sharp glossy caustic
        return {"type": kind, "preset": str(rng.choice(CONDUCTOR_PRESETS[:5])), "alpha": float(rng.uniform(0.02, 0.12))}
    if kind == "conductor":
        return {"type": kind, "preset": str(rng.choice(CONDUCTOR_PRESETS[:5]))}
    if kind == "dielectric":
        return {"type": kind, "ior": float(rng.uniform(1.4, 1.7))}
    return {"type": kind, "ior": float(rng.uniform(1.4, 1.7)), "alpha": float(rng.uniform(0.02, 0.1))}


def _firefly_light(rng: np.random.Generator) -> Spec:
    """A concentrated light for a firefly scene: a narrow spot or a small, bright spherical area light (the
    power of an ordinary area light in a fraction of its size). Placed above the middle of the scene."""
    power = float(np.exp(rng.uniform(np.log(1.0), np.log(4.0))))
    tint = [float(c) for c in 1.0 - 0.3 * rng.uniform(0.0, 1.0, 3)]
    azimuth = float(rng.uniform(0.0, 2.0 * math.pi))
    radius = float(rng.uniform(0.5, 2.5))
    position = [radius * math.cos(azimuth), float(rng.uniform(1.8, 4.0)), radius * math.sin(azimuth)]
    if float(rng.uniform()) < 0.5:
        return {"type": "spot", "position": position, "target": [float(v) for v in rng.uniform(-0.6, 0.6, 3)],
                "cutoff": float(rng.uniform(15.0, 35.0)), "intensity": [c * power * 15.0 for c in tint]}
    size = float(rng.uniform(0.1, 0.3))
    return {"type": "area", "position": position, "size": size, "shape": "sphere",
            "radiance": [c * power * 4.0 * (0.8 / size) ** 2 for c in tint]}


def _add_fireflies(rng: np.random.Generator, shapes: list[Spec], lights: list[Spec], room: Spec) -> None:
    """Turn a scene into one full of caustic paths: one or two of its shapes become mirror-like or glass, a
    concentrated light joins the others, and often the ground becomes dark and diffuse, where the caustics'
    fireflies stand out (the case bench/results/render.md traces the shipped model's worst errors to)."""
    for index in rng.choice(len(shapes), size=min(len(shapes), int(rng.integers(1, 3))), replace=False):
        shapes[int(index)]["material"] = _caustic_material(rng)
    lights.append(_firefly_light(rng))
    if float(rng.uniform()) < 0.6:
        room["ground"] = True
        room["ground_material"] = {"type": "diffuse", "reflectance": _colour(rng, 0.02, 0.15)}


def random_scene(seed: int, gaussian_fraction: float = DEFAULT_GAUSSIAN_FRACTION,
                 panel_fraction: float = 0.0, firefly_fraction: float = 0.0) -> Spec:
    """A random scene description; the same seed (and fractions) always gives the same description.

    ``gaussian_fraction``: share of scenes whose film uses a Gaussian reconstruction filter (spatially
    correlated noise) instead of a box (per-pixel noise); see :data:`DEFAULT_GAUSSIAN_FRACTION`.
    ``panel_fraction``: share of scenes that get an emitting panel flush with a wall (``_panel``; the scene
    then has at least one wall). It draws from its own random stream, so every other part of a seed's scene is
    the same at any fraction (0 reproduces the sets made before it existed).
    ``firefly_fraction``: share of scenes made full of caustic paths (``_add_fireflies``), from a random stream
    of its own likewise.
    """
    if not 0.0 <= gaussian_fraction <= 1.0:
        raise ValueError(f"gaussian_fraction must be in [0, 1], got {gaussian_fraction}")
    if not 0.0 <= panel_fraction <= 1.0:
        raise ValueError(f"panel_fraction must be in [0, 1], got {panel_fraction}")
    if not 0.0 <= firefly_fraction <= 1.0:
        raise ValueError(f"firefly_fraction must be in [0, 1], got {firefly_fraction}")
    rng = np.random.default_rng(seed)
    n_lights = int(rng.integers(1, 4))
    lights: list[Spec] = []
    for _ in range(n_lights):
        kind = str(rng.choice(LIGHTS, p=[0.32, 0.16, 0.14, 0.18, 0.1, 0.1]))
        if kind in ENVIRONMENT_LIGHTS and any(light["type"] in ENVIRONMENT_LIGHTS for light in lights):
            kind = "area"  # Mitsuba allows one environment emitter per scene
        lights.append(_light(rng, kind))
    n_shapes = int(rng.integers(2, 8))
    shapes = [_shape(rng, str(rng.choice(PRIMITIVES, p=[0.22, 0.18, 0.14, 0.06, 0.06, 0.17, 0.17])))
              for _ in range(n_shapes)]
    room = {
        "ground": bool(rng.uniform() < 0.85),
        "walls": int(rng.choice([0, 1, 2], p=[0.45, 0.3, 0.25])),
        "wall_azimuth": float(rng.uniform(0.0, 360.0)),
        "ground_material": _material(rng, str(rng.choice(["diffuse", "textured", "plastic"]))),
        "wall_material": _material(rng, str(rng.choice(["diffuse", "textured"]))),
    }
    camera = _camera(rng, gaussian_fraction)
    panel_rng = np.random.default_rng([seed, 1])
    if float(panel_rng.uniform()) < panel_fraction:
        # A low camera (3-15 degrees up) so that the wall behind the scene, and the panel on it, are in view.
        ox, _, oz = camera["origin"]
        distance, azimuth = math.hypot(ox, oz), math.atan2(oz, ox)
        elevation = math.radians(float(panel_rng.uniform(3.0, 15.0)))
        camera["origin"] = [distance * math.cos(elevation) * math.cos(azimuth),
                            distance * math.sin(elevation) + 0.2,
                            distance * math.cos(elevation) * math.sin(azimuth)]
        lights.append(_panel(panel_rng, camera))
        room["walls"] = max(1, room["walls"])
        # Put wall 0 (at 7.5 towards -z, turned about y by wall_azimuth) behind the centre as the camera sees it.
        room["wall_azimuth"] = float(np.degrees(np.arctan2(camera["origin"][0], camera["origin"][2])))
    firefly_rng = np.random.default_rng([seed, 2])
    if float(firefly_rng.uniform()) < firefly_fraction:
        _add_fireflies(firefly_rng, shapes, lights, room)
    return {
        "seed": int(seed),
        "camera": camera,
        "lights": lights,
        "shapes": shapes,
        "room": room,
        "max_depth": int(rng.integers(4, 9)),
        # Scales the whole image so that the data covers dark and bright renders alike.
        "exposure": float(np.exp(rng.uniform(np.log(0.15), np.log(3.0)))),
    }
