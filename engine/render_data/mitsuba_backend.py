"""Turning scene descriptions into Mitsuba scenes and rendering them with AOVs.

Mitsuba is a training-only dependency (requirements-dev.txt) and is imported only inside these functions.
The fast ``llvm_ad_rgb`` variant needs the LLVM shared library (Debian ``libllvm19``); without it we fall
back to ``scalar_rgb``, which gives the same images, only slower. ``RS_MITSUBA_VARIANTS`` (comma-separated)
replaces that list: the device round (scripts/device/render_round.py) asks for ``cuda_ad_rgb`` first. Each
variant must render a tiny scene before it is used, since a CUDA variant can be selected on a machine whose
driver then fails to trace (no OptiX).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..errors import EngineError
from .scenes import Spec

DEFAULT_VARIANTS = ("llvm_ad_rgb", "scalar_rgb")
VARIANTS_ENV = "RS_MITSUBA_VARIANTS"


def variant_preference() -> tuple[str, ...]:
    """The variants to try, fastest first: ``RS_MITSUBA_VARIANTS`` if set, else :data:`DEFAULT_VARIANTS`."""
    text = os.environ.get(VARIANTS_ENV, "")
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    return names or DEFAULT_VARIANTS


def _renders(mi: Any) -> bool:
    """Whether the selected variant can render a 2x2 pixel scene (a CUDA variant without OptiX cannot)."""
    try:
        scene = mi.load_dict({"type": "scene", "integrator": {"type": "path"},
                              "sensor": {"type": "perspective", "film": {"type": "hdrfilm", "width": 2, "height": 2}},
                              "ball": {"type": "sphere"}, "light": {"type": "constant"}})
        image = np.asarray(mi.render(scene, spp=1))
    except Exception:  # noqa: BLE001 - any failure means: try the next variant
        return False
    return bool(np.isfinite(image).all())


def _mitsuba() -> Any:
    try:
        import mitsuba as mi
    except ImportError:
        raise EngineError("rendering training data needs Mitsuba 3: pip install -r requirements-dev.txt") from None
    return mi


def set_variant(threads: int | None = None) -> str:
    """Select the fastest available RGB variant and return its name; ``threads`` limits Dr.Jit's workers."""
    mi = _mitsuba()
    variants = variant_preference()
    if mi.variant() not in variants:
        for variant in variants:
            try:
                mi.set_variant(variant)
            except Exception:  # noqa: BLE001 - LLVM missing: Dr.Jit raises when it cannot load libLLVM; no CUDA
                continue
            if _renders(mi):
                break
        else:
            raise EngineError("no usable Mitsuba variant (tried: " + ", ".join(variants) + ")")
    if threads:
        import drjit as dr

        dr.set_thread_count(int(threads))
    return str(mi.variant())


def _rgb(value: list[float]) -> dict[str, Any]:
    return {"type": "rgb", "value": [float(v) for v in value]}


def _pattern_bitmap(material: Spec) -> np.ndarray:
    rng = np.random.default_rng(material["seed"])
    size = 128
    freq = material["frequency"]
    v, u = np.mgrid[0:size, 0:size] / size
    if material["pattern"] == "stripes":
        angle = rng.uniform(0.0, math.pi)
        t = 0.5 + 0.5 * np.sin(2 * math.pi * freq * (u * math.cos(angle) + v * math.sin(angle)))
    else:
        # Value noise: a coarse random grid upsampled bilinearly (tileable enough for our purpose).
        cells = max(2, int(freq))
        grid = rng.uniform(0.0, 1.0, (cells + 1, cells + 1))
        gu, gv = u * cells, v * cells
        i, j = gu.astype(int), gv.astype(int)
        fu, fv = gu - i, gv - j
        t = (grid[j, i] * (1 - fu) * (1 - fv) + grid[j, i + 1] * fu * (1 - fv)
             + grid[j + 1, i] * (1 - fu) * fv + grid[j + 1, i + 1] * fu * fv)
    c0, c1 = np.array(material["colour0"]), np.array(material["colour1"])
    return (c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]).astype(np.float32)


def _bsdf(mi: Any, material: Spec, two_sided: bool = False) -> dict[str, Any]:
    kind = material["type"]
    if kind == "diffuse":
        bsdf: dict[str, Any] = {"type": "diffuse", "reflectance": _rgb(material["reflectance"])}
    elif kind == "textured":
        if material["pattern"] == "checker":
            freq = material["frequency"]
            texture = {"type": "checkerboard", "color0": _rgb(material["colour0"]), "color1": _rgb(material["colour1"]),
                       "to_uv": mi.ScalarTransform4f().scale([freq, freq, 1.0])}
        else:
            texture = {"type": "bitmap", "bitmap": mi.Bitmap(_pattern_bitmap(material)), "raw": True}
        bsdf = {"type": "diffuse", "reflectance": texture}
    elif kind == "plastic":
        bsdf = {"type": "roughplastic", "diffuse_reflectance": _rgb(material["reflectance"]),
                "alpha": material["alpha"]}
    elif kind == "roughconductor":
        bsdf = {"type": "roughconductor", "material": material["preset"], "alpha": material["alpha"]}
    elif kind == "conductor":
        bsdf = {"type": "conductor", "material": material["preset"]}
    elif kind == "dielectric":
        return {"type": "dielectric", "int_ior": material["ior"]}
    elif kind == "roughdielectric":
        return {"type": "roughdielectric", "int_ior": material["ior"], "alpha": material["alpha"]}
    else:
        raise ValueError(f"unknown material {kind!r}")
    return {"type": "twosided", "material": bsdf} if two_sided else bsdf


def _parametric_mesh(kind: str, seed: int, n: int = 48) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices, triangles and UVs of a torus or a noisy "blob" (displaced sphere), unit size at the origin."""
    rng = np.random.default_rng(seed)
    u, v = np.meshgrid(np.linspace(0, 2 * math.pi, n + 1), np.linspace(0, math.pi, n // 2 + 1))
    if kind == "torus":
        u, v = np.meshgrid(np.linspace(0, 2 * math.pi, n + 1), np.linspace(0, 2 * math.pi, n // 2 + 1))
        minor = rng.uniform(0.2, 0.45)
        x = (1 - minor + minor * np.cos(v)) * np.cos(u)
        z = (1 - minor + minor * np.cos(v)) * np.sin(u)
        y = minor * np.sin(v)
    else:
        radius = np.ones_like(u)
        for _ in range(4):  # a few low-frequency bumps
            a, b, phase = rng.integers(1, 5), rng.integers(1, 4), rng.uniform(0, 2 * math.pi)
            radius += rng.uniform(0.05, 0.2) * np.sin(a * u + phase) * np.sin(b * v)
        x, y, z = radius * np.sin(v) * np.cos(u), radius * np.cos(v), radius * np.sin(v) * np.sin(u)
    rows, cols = u.shape
    vertices = np.stack([x, y, z], -1).reshape(-1, 3)
    uvs = np.stack([u / u.max(), v / v.max()], -1).reshape(-1, 2)
    idx = np.arange(rows * cols).reshape(rows, cols)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    faces = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    return vertices.astype(np.float32), faces.astype(np.uint32), uvs.astype(np.float32)


def _rotation_matrix(degrees: list[float]) -> np.ndarray:
    rx, ry, rz = (math.radians(d) for d in degrees)
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return mz @ my @ mx


def _mesh(mi: Any, shape: Spec) -> Any:
    vertices, faces, uvs = _parametric_mesh(shape["type"], shape["seed"])
    vertices = vertices @ _rotation_matrix(shape["rotation"]).T * shape["size"] + np.array(shape["position"])
    props = mi.Properties()
    props["bsdf"] = mi.load_dict(_bsdf(mi, shape["material"], two_sided=True))
    mesh = mi.Mesh(shape["type"], len(vertices), len(faces), props, has_vertex_normals=True,
                   has_vertex_texcoords=True)
    params = mi.traverse(mesh)
    params["vertex_positions"] = mi.Float(vertices.ravel())
    params["faces"] = mi.UInt32(faces.ravel())
    params["vertex_texcoords"] = mi.Float(uvs.ravel())
    params.update()
    mesh.recompute_vertex_normals()
    return mesh


def _shape(mi: Any, shape: Spec) -> Any:
    kind = shape["type"]
    if kind in ("torus", "blob"):
        return _mesh(mi, shape)
    T = mi.ScalarTransform4f
    rx, ry, rz = shape["rotation"]
    to_world = (T().translate(shape["position"]).rotate([1, 0, 0], rx).rotate([0, 1, 0], ry)
                .rotate([0, 0, 1], rz).scale(shape["size"]))
    if kind == "cylinder":
        to_world = to_world.translate([0, 0, -0.5])
    flat = kind in ("disk", "rectangle")
    return {"type": kind, "to_world": to_world, "bsdf": _bsdf(mi, shape["material"], two_sided=flat)}


def _envmap_bitmap(light: Spec) -> np.ndarray:
    height, width = 64, 128
    v, u = (np.mgrid[0:height, 0:width] + 0.5) / np.array([height, width])[:, None, None]
    elevation = (0.5 - v) * math.pi
    azimuth = u * 2 * math.pi
    sky = np.array(light["sky"])[None, None] * (0.4 + 0.6 * np.clip(elevation, 0, None)[..., None] / (math.pi / 2))
    ground = np.array([0.12, 0.1, 0.08])[None, None] * np.ones_like(sky)
    image = np.where(elevation[..., None] > 0, sky, ground)
    # Angular distance to the sun, as a soft bright disc.
    se, sa = light["sun_elevation"], light["sun_azimuth"]
    cos_angle = np.sin(elevation) * math.sin(se) + np.cos(elevation) * math.cos(se) * np.cos(azimuth - sa)
    sun = light["sun_strength"] * np.exp((cos_angle - 1.0) / 0.002)
    return ((image + sun[..., None]) * light["scale"]).astype(np.float32)


def _wall_transform(mi: Any, room: Spec, index: int) -> Any:
    """Wall ``index``: an 8-unit-half-size rectangle facing the centre from 7.5 away, turned about y."""
    angle = room["wall_azimuth"] + 90.0 * index
    return mi.ScalarTransform4f().rotate([0, 1, 0], angle).translate([0, 4.0, -7.5])


def _emitter(mi: Any, light: Spec, room: Spec | None = None) -> Any:
    T = mi.ScalarTransform4f
    kind = light["type"]
    if kind == "panel":
        # Flush with the wall (1 mm in front), with the wall's own material: no albedo or normal edge.
        to_world = (_wall_transform(mi, room, light["wall"])
                    .translate([8.0 * light["u"], 8.0 * light["v"], 0.001])
                    .scale([8.0 * light["half_width"], 8.0 * light["half_height"], 1.0]))
        return {"type": "rectangle", "to_world": to_world,
                "emitter": {"type": "area", "radiance": _rgb(light["radiance"])},
                "bsdf": _bsdf(mi, room["wall_material"], two_sided=True)}
    if kind == "area":
        size = light["size"]
        emitter = {"type": "area", "radiance": _rgb(light["radiance"])}
        if light["shape"] == "sphere":
            return {"type": "sphere", "center": light["position"], "radius": size * 0.3, "emitter": emitter}
        to_world = T().look_at(origin=light["position"], target=[0, 0, 0], up=[0, 1, 0]).scale(size)
        return {"type": "rectangle", "to_world": to_world, "emitter": emitter}
    if kind == "point":
        return {"type": "point", "position": light["position"], "intensity": _rgb(light["intensity"])}
    if kind == "spot":
        return {"type": "spot", "intensity": _rgb(light["intensity"]), "cutoff_angle": light["cutoff"],
                "to_world": T().look_at(origin=light["position"], target=light["target"], up=[0, 1, 0])}
    if kind == "envmap":
        return {"type": "envmap", "bitmap": mi.Bitmap(_envmap_bitmap(light))}
    if kind == "constant":
        return {"type": "constant", "radiance": _rgb(light["radiance"])}
    if kind == "directional":
        return {"type": "directional", "direction": light["direction"], "irradiance": _rgb(light["irradiance"])}
    raise ValueError(f"unknown light {kind!r}")


def build_scene(spec: Spec, width: int, height: int) -> Any:
    """A Mitsuba scene for ``spec`` whose integrator writes colour plus albedo, shading normal and depth AOVs."""
    mi = _mitsuba()
    set_variant()
    T = mi.ScalarTransform4f
    camera = spec["camera"]
    scene: dict[str, Any] = {
        "type": "scene",
        "integrator": {"type": "aov", "aovs": "albedo:albedo,normal:sh_normal,depth:depth",
                       "image": {"type": "path", "max_depth": spec["max_depth"]}},
        "sensor": {
            "type": "perspective",
            "fov": camera["fov"],
            "to_world": T().look_at(origin=camera["origin"], target=camera["target"], up=[0, 1, 0]),
            "film": {"type": "hdrfilm", "width": int(width), "height": int(height),
                     "rfilter": {"type": camera["filter"]}, "pixel_format": "rgb"},
            "sampler": {"type": "independent"},
        },
    }
    room = spec["room"]
    if room["ground"]:
        scene["ground"] = {"type": "rectangle", "to_world": T().rotate([1, 0, 0], -90).scale(12.0),
                           "bsdf": _bsdf(mi, room["ground_material"], two_sided=True)}
    for i in range(room["walls"]):
        to_world = _wall_transform(mi, room, i).scale(8.0)
        scene[f"wall{i}"] = {"type": "rectangle", "to_world": to_world,
                             "bsdf": _bsdf(mi, room["wall_material"], two_sided=True)}
    for i, shape in enumerate(spec["shapes"]):
        scene[f"shape{i}"] = _shape(mi, shape)
    for i, light in enumerate(spec["lights"]):
        scene[f"light{i}"] = _emitter(mi, light, room)
    return mi.load_dict(scene)


def render(scene: Any, spp: int, seed: int) -> dict[str, np.ndarray]:
    """Render ``spp`` samples per pixel.

    Returns float32 ``color``, ``albedo``, ``normal`` (H x W x 3) and ``depth`` (H x W x 1).
    """
    mi = _mitsuba()
    # Dr.Jit seeds are 32-bit; keep distinct seeds distinct within that range.
    mi.render(scene, spp=int(spp), seed=int(seed) % (2**32))
    bitmap = scene.sensors()[0].film().bitmap()
    layers = {}
    for name, layer in bitmap.split():
        array = np.array(layer, dtype=np.float32)
        layers[name] = array[:, :, None] if array.ndim == 2 else array
    out = {
        "color": layers["<root>"][..., :3],
        "albedo": layers["albedo"][..., :3],
        "normal": layers["normal"][..., :3],
        "depth": layers["depth"][..., :1],
    }
    return {name: np.ascontiguousarray(np.nan_to_num(a, nan=0.0, posinf=65504.0)) for name, a in out.items()}
