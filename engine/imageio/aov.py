"""Render passes (AOVs) by role: which layer of a multi-layer EXR is the albedo, the normal, the depth...

One table, :data:`CONVENTIONS`, says it for every renderer the app knows. A layer is matched by the last
component of its name (``ViewLayer.Denoising Albedo`` -> ``Denoising Albedo``; a V-Ray channel ``.R`` has the
empty layer name), compared without case, spaces, underscores and dashes. The first row that matches a layer wins,
so the order of the rows is the order of preference (Blender's ``Denoising *`` passes before its ``Diffuse Color`` /
``Normal`` / ``Depth``, as Blender's own denoiser does).

Rows in order of preference (:data:`CONVENTIONS` is the table; :func:`table_markdown` writes it for docs/render-
passes.md, and a test keeps both copies equal). A row may list names that several renderers share (``albedo``:
Arnold, RenderMan, Karma, Mitsuba; ``N``: Arnold, Karma; ``Z``: Arnold, Redshift, generic); alpha is the beauty's
own ``A`` channel.

| role | renderer | pass names | normal space |
|---|---|---|---|
| albedo | Blender | `Denoising Albedo` | - |
| albedo | Arnold | `denoise_albedo`, `albedo`, `diffuse_albedo` | - |
| albedo | RenderMan | `albedo_mse` | - |
| albedo | Karma / Houdini | `basecolor` | - |
| albedo | V-Ray | `VRayDiffuseFilter`, `diffuseFilter` | - |
| albedo | Redshift | `DiffuseFilter` | - |
| albedo | Mitsuba / generic | `alb`, `diffcol`, `diffusealbedo` | - |
| albedo | Blender | `Diffuse Color`, `DiffCol` | - |
| normal | Blender | `Denoising Normal` | camera |
| normal | Arnold / Karma / generic | `N` | world |
| normal | RenderMan | `normal_mse` | world |
| normal | V-Ray | `VRayNormals`, `VRayBumpNormals`, `bumpNormals`, `normals` | camera |
| normal | Redshift | `BumpNormals` | world |
| normal | Mitsuba / generic | `sh_normal`, `nn`, `normal`, `nrm`, `worldnormal` | world |
| normal | Blender | `Normal` | world |
| depth | Blender | `Denoising Depth` | - |
| depth | Arnold / generic | `Z`, `depth`, `zdepth` | - |
| depth | Karma / Houdini | `Pz` | - |
| depth | RenderMan | `zfiltered` | - |
| depth | V-Ray | `VRayZDepth` | - |
| depth | Mitsuba | `dd`, `distance` | - |
| diffuse | Blender | `Diffuse Direct`, `Diffuse Indirect`, `DiffDir`, `DiffInd` | - |
| diffuse | Arnold / RenderMan | `diffuse`, `diffuse_mse` | - |
| diffuse | V-Ray | `VRayDiffuse`, `VRayRawLighting`, `VRayLighting` | - |
| diffuse | Redshift | `DiffuseLighting` | - |
| specular | Blender | `Glossy Direct`, `Glossy Indirect`, `GlossDir`, `GlossInd` | - |
| specular | Arnold / RenderMan | `specular`, `specular_mse` | - |
| specular | V-Ray | `VRaySpecular`, `VRayReflection` | - |
| specular | Redshift | `SpecularLighting`, `Reflections` | - |
| motion | Blender | `Vector` | - |
| motion | generic | `motion` | - |
| motion | Arnold / Karma | `motionvector`, `motionvectors`, `velocity` | - |
| motion | RenderMan | `forward` | - |
| motion | V-Ray | `VRayVelocity` | - |
| motion | Redshift | `MotionVectors` | - |

Beauty (the colour that is denoised): ``Combined`` (Blender), ``RGBA`` / root ``R G B`` (Arnold, V-Ray ``.R``),
``C`` (Karma / Mantra), ``Ci`` (RenderMan), ``Beauty``, ``color``... (see ``exr.py``).

Conversions for the models (they were trained on Mitsuba renders from ``engine/render_data``: world-space shading
normals, distance depth with 0 where no surface was hit):

- a camera-space normal is turned into world space with the header's ``worldToCamera`` matrix (OpenEXR's standard
  attribute, written by Arnold, Karma, RenderMan, Nuke). Blender writes no camera matrix; when the file also has a
  world-space normal pass (Blender's ``Normal``) the rotation between the two is fitted on the pixels where they
  agree and the camera-space normal is rotated with it. Otherwise it is used as written and the role says so;
- depth: "infinite" background values (Blender writes 1e10; anything at or above :data:`BACKGROUND_DEPTH`, and NaN or
  Inf) become 0, as in the training data, so they no longer decide the normalisation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Roles a render pass can take ("colour": the one restored). albedo / normal / depth are model inputs (the
#: canonical layers of engine/image.py).
ROLES = ("colour", "albedo", "normal", "depth", "diffuse", "specular", "motion", "alpha")
MODEL_ROLES = ("albedo", "normal", "depth")
#: Depth at or beyond this is background (Blender: 1e10 where no surface was hit).
BACKGROUND_DEPTH = 1.0e9


@dataclass(frozen=True)
class Convention:
    role: str
    renderer: str
    names: tuple[str, ...]
    #: For normals: "camera", "world", or "" when the renderer leaves it to the user.
    space: str = ""


CONVENTIONS: tuple[Convention, ...] = (
    Convention("albedo", "Blender", ("Denoising Albedo",)),
    Convention("albedo", "Arnold", ("denoise_albedo", "albedo", "diffuse_albedo")),
    Convention("albedo", "RenderMan", ("albedo_mse",)),
    Convention("albedo", "Karma / Houdini", ("basecolor",)),
    Convention("albedo", "V-Ray", ("VRayDiffuseFilter", "diffuseFilter")),
    Convention("albedo", "Redshift", ("DiffuseFilter",)),
    Convention("albedo", "Mitsuba / generic", ("alb", "diffcol", "diffusealbedo")),
    Convention("albedo", "Blender", ("Diffuse Color", "DiffCol")),
    Convention("normal", "Blender", ("Denoising Normal",), "camera"),
    Convention("normal", "Arnold / Karma / generic", ("N",), "world"),
    Convention("normal", "RenderMan", ("normal_mse",), "world"),
    Convention("normal", "V-Ray", ("VRayNormals", "VRayBumpNormals", "bumpNormals", "normals"), "camera"),
    Convention("normal", "Redshift", ("BumpNormals",), "world"),
    Convention("normal", "Mitsuba / generic", ("sh_normal", "nn", "normal", "nrm", "worldnormal"), "world"),
    Convention("normal", "Blender", ("Normal",), "world"),
    Convention("depth", "Blender", ("Denoising Depth",)),
    Convention("depth", "Arnold / generic", ("Z", "depth", "zdepth")),
    Convention("depth", "Karma / Houdini", ("Pz",)),
    Convention("depth", "RenderMan", ("zfiltered",)),
    Convention("depth", "V-Ray", ("VRayZDepth",)),
    Convention("depth", "Mitsuba", ("dd", "distance")),
    Convention("diffuse", "Blender", ("Diffuse Direct", "Diffuse Indirect", "DiffDir", "DiffInd")),
    Convention("diffuse", "Arnold / RenderMan", ("diffuse", "diffuse_mse")),
    Convention("diffuse", "V-Ray", ("VRayDiffuse", "VRayRawLighting", "VRayLighting")),
    Convention("diffuse", "Redshift", ("DiffuseLighting",)),
    Convention("specular", "Blender", ("Glossy Direct", "Glossy Indirect", "GlossDir", "GlossInd")),
    Convention("specular", "Arnold / RenderMan", ("specular", "specular_mse")),
    Convention("specular", "V-Ray", ("VRaySpecular", "VRayReflection")),
    Convention("specular", "Redshift", ("SpecularLighting", "Reflections")),
    Convention("motion", "Blender", ("Vector",)),
    Convention("motion", "generic", ("motion",)),
    Convention("motion", "Arnold / Karma", ("motionvector", "motionvectors", "velocity")),
    Convention("motion", "RenderMan", ("forward",)),
    Convention("motion", "V-Ray", ("VRayVelocity",)),
    Convention("motion", "Redshift", ("MotionVectors",)),
)


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


def layer_tail(layer: str) -> str:
    """The pass name of a layer: ``ViewLayer.Denoising Albedo`` -> ``Denoising Albedo`` (V-Ray's ``.R`` -> ``""``)."""
    return layer.rsplit(".", 1)[-1]


def match(layer: str) -> tuple[int, Convention] | None:
    """(row index, convention) of the first table row whose names include this layer's pass name."""
    key = _key(layer_tail(layer))
    if not key:
        return None
    for index, convention in enumerate(CONVENTIONS):
        if key in {_key(n) for n in convention.names}:
            return index, convention
    return None


def roles_of(layers: list[str]) -> dict[str, list[str]]:
    """{role: matching layers, best first} for these layer names (the table's order decides)."""
    ranked: dict[str, list[tuple[int, str]]] = {}
    for layer in layers:
        found = match(layer)
        if found:
            ranked.setdefault(found[1].role, []).append((found[0], layer))
    return {role: [layer for _, layer in sorted(items)] for role, items in ranked.items()}


# --- conversions into the models' convention -----------------------------------------------------------------


def clean_depth(depth: np.ndarray) -> tuple[np.ndarray, int]:
    """Depth with background (>= BACKGROUND_DEPTH, NaN, Inf, negative) set to 0, and how many pixels that was."""
    depth = np.asarray(depth, dtype=np.float32)
    background = ~np.isfinite(depth) | (depth >= BACKGROUND_DEPTH) | (depth < 0)
    count = int(background.sum())
    if not count:
        return depth, 0
    cleaned = depth.copy()
    cleaned[background] = 0.0
    return cleaned, count


def camera_to_world_rotation(header: dict[str, Any]) -> np.ndarray | None:
    """The 3 x 3 matrix M with ``n_world = n_camera @ M`` from the header's ``worldToCamera`` (row-vector
    convention of OpenEXR/Imath: ``p_camera = p_world @ worldToCamera``); None when absent or singular."""
    matrix = header.get("worldToCamera")
    if matrix is None:
        return None
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (4, 4):
        return None
    linear = matrix[:3, :3]
    if abs(np.linalg.det(linear)) < 1e-12:
        return None
    # Normals transform with the inverse transpose: n_c = n_w @ inv(L).T, so n_w = n_c @ L.T.
    return linear.T


def fit_rotation(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The rotation R with ``source @ R ~= target`` (orthogonal Procrustes over the pixels where both are unit
    normals), refitted on the pixels that agree (a mirror's normals differ between Blender's passes), and the
    median angle (degrees) left; None when too few pixels agree."""
    a = np.asarray(source, np.float64).reshape(-1, 3)
    b = np.asarray(target, np.float64).reshape(-1, 3)
    valid = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    valid &= (np.abs(np.linalg.norm(a, axis=1) - 1) < 0.05) & (np.abs(np.linalg.norm(b, axis=1) - 1) < 0.05)
    if valid.sum() < 16:
        return None
    step = max(1, int(valid.sum()) // 200_000)
    a, b = a[valid][::step], b[valid][::step]
    keep = np.ones(len(a), bool)
    rotation = np.eye(3)
    for _ in range(4):
        u, _, vt = np.linalg.svd(a[keep].T @ b[keep])
        d = np.sign(np.linalg.det(u @ vt))
        rotation = u @ np.diag([1.0, 1.0, d]) @ vt
        cosine = np.clip(np.sum((a @ rotation) * b, axis=1), -1, 1)
        keep = cosine > np.cos(np.radians(2.0))
        if keep.sum() < max(16, len(a) // 10):
            return None
    angle = float(np.degrees(np.median(np.arccos(np.clip(np.sum((a[keep] @ rotation) * b[keep], 1), -1, 1)))))
    return rotation, angle


def rotate_normals(normal: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """H x W x 3 normals @ rotation, renormalised (zero normals, e.g. background, stay zero)."""
    out = np.asarray(normal, np.float32)[:, :, :3] @ rotation.astype(np.float32)
    length = np.linalg.norm(out, axis=2, keepdims=True)
    np.divide(out, length, out=out, where=length > 1e-6)
    return out.astype(np.float32)


DEPTH_CHANNEL_PREFERENCE = ("Z", "z", "T", "t", "R", "r", "Y", "y", "X", "x", "V", "v")


def model_layer(role: str, layer: str, array: np.ndarray, channels: list[str], header: dict[str, Any],
                others: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str], str]:
    """(the model input, the channels it came from, a note) for the file layer ``layer`` (``array`` H x W x C,
    ``channels`` its channel names) taking ``role`` (albedo, normal or depth): normals into world space, depth
    background to 0. ``others``: the file's other layers by name (a world-space normal to fit a rotation on)."""
    if role == "albedo":
        return array[:, :, :3], channels[:3], ""
    if role == "depth":
        suffixes = [c.rpartition(".")[2] for c in channels]
        chosen = next((s for s in DEPTH_CHANNEL_PREFERENCE if s in suffixes), suffixes[0])
        index = suffixes.index(chosen)
        depth, background = clean_depth(array[:, :, index])
        note = f"{background} background pixels ({100.0 * background / depth.size:.0f}%) set to 0" if background else ""
        return depth[:, :, None], [channels[index]], note
    if role != "normal":
        raise ValueError(f"{role!r} is not a model input")
    normal = array[:, :, :3]
    found = match(layer)
    space = found[1].space if found and found[1].role == "normal" else ""
    note = f"{space} space" if space else "space not known; used as written"
    if space != "camera" or normal.shape[2] != 3:
        return normal, channels[:3], note
    rotation = camera_to_world_rotation(header)
    if rotation is not None:
        return rotate_normals(normal, rotation), channels[:3], "camera -> world space (worldToCamera)"
    for name, candidate in others.items():
        known = match(name)
        if name == layer or not known or known[1].role != "normal" or known[1].space != "world" \
                or candidate.shape[2] < 3:
            continue
        fitted = fit_rotation(normal, candidate[:, :, :3])
        if fitted is not None:
            return rotate_normals(normal, fitted[0]), channels[:3], (
                f"camera -> world space, rotation fitted on {name} (no camera matrix in the file; "
                f"median residual {fitted[1]:.2f} deg)")
    return normal, channels[:3], ("camera space, used as written: no worldToCamera matrix and no world-space normal "
                                  "in the file (the networks were trained on world-space normals)")


def describe_roles(roles: dict[str, dict[str, Any]]) -> list[str]:
    """One line per role for ``info``: ``normal    <- ViewLayer.Denoising Normal (X Y Z; Blender, camera -> world)``."""
    lines = []
    for role in ROLES:
        if role not in roles:
            continue
        entry = roles[role]
        channels = " ".join(c.rsplit(".", 1)[-1] or c for c in entry.get("channels", []))
        detail = "; ".join(x for x in (channels, entry.get("renderer", ""), entry.get("note", "")) if x)
        lines.append(f"{role:<9} <- {entry.get('layer') or '(root)'} ({detail})")
    return lines


def table_markdown() -> str:
    """:data:`CONVENTIONS` as the Markdown table of the module docstring and of docs/render-passes.md."""
    lines = ["| role | renderer | pass names | normal space |", "|---|---|---|---|"]
    for convention in CONVENTIONS:
        names = ", ".join(f"`{name}`" for name in convention.names)
        lines.append(f"| {convention.role} | {convention.renderer} | {names} | {convention.space or '-'} |")
    return "\n".join(lines)
