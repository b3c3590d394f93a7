"""Exact motion of a generated shot: the engine's backward flow (engine/motion.py) from the cameras and each
pixel's world position.

The procedural scenes are static and only the camera moves (``generate_shot`` orbits it), so the surface point
seen through pixel (x, y) of frame t is the first hit of the camera ray through that pixel's centre, and its
position in frame t - 1 is that point projected by frame t - 1's camera: ``flow = project_prev(P) - (x, y)``.
A ray that hits nothing sees the environment, a point at infinity: only its direction is projected. The point was
visible in frame t - 1 when the ray from frame t - 1's camera to it hits nothing before it (``visible``); the
others are disocclusions, which no warp can fill.

The camera model is Mitsuba's ``perspective`` sensor with ``look_at(origin, target, up=+y)`` and the field of view
along x (its default ``fov_axis``): camera space x = left, y = up, z = forward, and film coordinates
``u = (1 - x / (z tan(fov / 2))) / 2``, ``v = (1 - aspect * y / (z tan(fov / 2))) / 2`` in [0, 1], pixels
``(u * width, v * height)`` with pixel centres at half-integers. tests/test_temporal_render.py checks this
projection against Mitsuba's own ``sample_ray``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: Hits closer than this share of the distance to the point count as the point itself (self-intersection).
OCCLUSION_TOLERANCE = 1e-3


def camera_frame(camera: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(origin (3,), rotation (3, 3) whose columns are camera-space x = left, y = up, z = forward in world space)."""
    origin = np.asarray(camera["origin"], dtype=np.float64)
    forward = np.asarray(camera["target"], dtype=np.float64) - origin
    forward /= np.linalg.norm(forward)
    left = np.cross([0.0, 1.0, 0.0], forward)
    left /= np.linalg.norm(left)
    up = np.cross(forward, left)
    return origin, np.stack([left, up, forward], axis=1)


def pixel_rays(camera: Mapping[str, Any], width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """World-space (origin (3,), unit directions (H, W, 3)) of the rays through the pixel centres."""
    origin, rotation = camera_frame(camera)
    tan = np.tan(np.radians(camera["fov"]) / 2)
    aspect = width / height
    u = (np.arange(width) + 0.5) / width
    v = (np.arange(height) + 0.5) / height
    x = (1 - 2 * u)[None, :] * tan
    y = (1 - 2 * v)[:, None] * tan / aspect
    local = np.stack(np.broadcast_arrays(x, y, np.ones((height, width))), axis=-1)
    directions = local @ rotation.T
    return origin, directions / np.linalg.norm(directions, axis=-1, keepdims=True)


def project(camera: Mapping[str, Any], points: np.ndarray, width: int, height: int,
            at_infinity: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (..., 2) of world ``points`` (..., 3) in ``camera``'s image (pixel centres at
    half-integers), and whether each lies in front of the camera. Where ``at_infinity`` is true the point is a
    direction (the environment)."""
    origin, rotation = camera_frame(camera)
    relative = points - origin if at_infinity is None else np.where(at_infinity[..., None], points,
                                                                     points - origin)
    local = relative @ rotation
    tan = np.tan(np.radians(camera["fov"]) / 2)
    aspect = width / height
    z = local[..., 2]
    safe = np.where(np.abs(z) > 1e-12, z, 1e-12)
    u = (1 - local[..., 0] / (safe * tan)) / 2
    v = (1 - aspect * local[..., 1] / (safe * tan)) / 2
    return np.stack([u * width, v * height], axis=-1), z > 0


def _intersect(scene: Any, origin: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances (N,) to the first hit of rays from ``origin`` (3,) or (N, 3) along ``directions`` (N, 3) and
    whether there was one."""
    import mitsuba as mi

    origins = np.broadcast_to(origin, directions.shape)
    ray = mi.Ray3f(mi.Point3f(*(np.ascontiguousarray(origins[:, i], dtype=np.float32) for i in range(3))),
                   mi.Vector3f(*(np.ascontiguousarray(directions[:, i], dtype=np.float32) for i in range(3))))
    si = scene.ray_intersect(ray)
    return np.array(si.t, dtype=np.float64), np.array(si.is_valid(), dtype=bool)


def backward_flow(scene: Any, camera: Mapping[str, Any], previous_camera: Mapping[str, Any],
                  width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame t's backward flow (H, W, 2) float32 (engine/motion.py: dx, dy in pixels, y down) and a (H, W)
    float32 mask, 1 where the surface point was visible from ``previous_camera`` (0: disoccluded, or behind it).

    ``scene`` is any Mitsuba scene of the shot's (static) geometry; the flow is exact at pixel centres."""
    origin, directions = pixel_rays(camera, width, height)
    flat = directions.reshape(-1, 3)
    distance, hit = _intersect(scene, origin, flat)
    points = np.where(hit[:, None], origin + flat * np.where(hit, distance, 0.0)[:, None], flat)
    where, in_front = project(previous_camera, points, width, height, at_infinity=~hit)
    centres = np.stack(np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5), axis=-1).reshape(-1, 2)
    flow = (where - centres).reshape(height, width, 2)
    # Visible from the previous camera: the ray from its origin towards the point hits nothing before it.
    previous_origin, _ = camera_frame(previous_camera)
    visible = in_front.copy()
    if hit.any():
        towards = points[hit] - previous_origin
        length = np.linalg.norm(towards, axis=-1)
        first, found = _intersect(scene, previous_origin, towards / length[:, None])
        blocked = found & (first < length * (1 - OCCLUSION_TOLERANCE) - 1e-4)
        visible[np.flatnonzero(hit)[blocked]] = False
    flow[~in_front.reshape(height, width)] = 0.0
    return flow.astype(np.float32), visible.reshape(height, width).astype(np.float32)
