"""Motion between the frames of a shot: renderer motion passes in one convention, and warping a frame onto another.

The engine's convention is *backward flow*: ``flow[y, x] = (dx, dy)`` in pixels, x to the right and y down (rows
as stored), such that the surface point seen at pixel (x, y) of frame t was at (x + dx, y + dy) in frame t - 1.
``warp(previous, flow)`` then brings frame t - 1 (or anything aligned with it: its denoised output, its passes)
onto frame t, and ``inside_mask(flow)`` says which pixels had a source inside the previous frame.

Renderer passes (the ``motion`` role of :mod:`engine.imageio.aov`), converted by :func:`flow_to_previous`:

- **Blender** (Cycles, EEVEE) ``Vector``: four channels X Y Z W in pixels with y up; (X, Y) is the position in the
  previous frame minus the position in this one, (Z, W) this position minus the position in the next frame.
  Checked with bpy 5.0.1: a cube moving 10 px right and 5 px up per frame reads X = -10, Y = -5, Z = -10,
  W = -5 on the middle frame. So dx = X and dy = -Y.
- **generic** (what this project's generators write, ``motion`` with two channels): already backward flow, y down.

Arnold's ``motionvector``, V-Ray's ``VRayVelocity``, RenderMan's ``forward`` and Redshift's ``MotionVectors`` are
forward motion, scaled by the shutter, or normalised by a user setting, and none was checked against its
renderer here: :func:`flow_to_previous` returns ``None`` for them and callers treat the shot as having no motion
pass (and say so) rather than warp with a guess.

Pure numpy + OpenCV (imported when a frame is warped), no torch: the window, the command line and the ONNX
temporal models use it at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

#: Conventions :func:`flow_to_previous` knows; keys are the ``renderer`` names of engine/imageio/aov.py's table
#: (first word), plus ``generic`` for the engine's own backward flow.
KNOWN_CONVENTIONS = ("Blender", "generic")


def convention_key(renderer: str) -> str:
    """``"Blender"`` for aov.py's ``"Blender"``, ``"generic"`` for the engine's own layer, else the renderer."""
    first = renderer.split("/")[0].strip()
    return "generic" if first.lower() in ("generic", "ours", "mitsuba") else first


def flow_to_previous(motion: np.ndarray, renderer: str) -> np.ndarray | None:
    """The backward flow (H, W, 2) float32 of a renderer's motion pass, or ``None`` for an unverified convention.

    ``motion`` is (H, W, C) with the pass's channels in their file order (Blender: X Y Z W; generic: dx dy)."""
    motion = np.asarray(motion, dtype=np.float32)
    if motion.ndim != 3 or motion.shape[2] < 2:
        raise ValueError(f"a motion pass needs at least two channels, got shape {motion.shape}")
    key = convention_key(renderer)
    if key == "Blender":
        flow = np.stack([motion[..., 0], -motion[..., 1]], axis=-1)
    elif key == "generic":
        flow = motion[..., :2].copy()
    else:
        return None
    # Blender writes huge values where nothing was hit in some versions; a non-finite vector means "no motion known".
    flow[~np.isfinite(flow)] = 0.0
    return np.ascontiguousarray(flow, dtype=np.float32)


def flow_to_next(motion: np.ndarray, renderer: str) -> np.ndarray | None:
    """Forward flow (where each pixel's surface will be in frame t + 1), where the pass has it (Blender's Z W)."""
    motion = np.asarray(motion, dtype=np.float32)
    if convention_key(renderer) != "Blender" or motion.ndim != 3 or motion.shape[2] < 4:
        return None
    flow = np.stack([-motion[..., 2], motion[..., 3]], axis=-1)
    flow[~np.isfinite(flow)] = 0.0
    return np.ascontiguousarray(flow, dtype=np.float32)


def _maps(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    height, width = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return xs + flow[..., 0], ys + flow[..., 1]


def warp(image: np.ndarray, flow: np.ndarray, interpolation: str = "linear") -> np.ndarray:
    """``image`` (aligned with frame t - 1; (H, W) or (H, W, C), any channel count) resampled onto frame t.

    Bilinear, or bicubic with ``interpolation="cubic"`` (sharper: what a result warped again every frame needs, see
    engine/temporal_filter.py; it can overshoot at edges); a source outside the frame takes the nearest edge pixel
    (see :func:`inside_mask` to tell them)."""
    image = np.asarray(image, dtype=np.float32)
    if image.shape[:2] != flow.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and flow {flow.shape[:2]} differ in size")
    import cv2  # here, not at the top: the manifest and the EXR reader import this module for its names

    map_x, map_y = _maps(flow)
    if image.ndim == 3 and image.shape[2] > 4:  # cv2.remap takes at most 4 channels at once
        return np.concatenate([warp(image[..., i:i + 4], flow, interpolation) for i in range(0, image.shape[2], 4)],
                              axis=-1)
    modes = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}
    if interpolation not in modes:
        raise ValueError(f"interpolation must be one of {', '.join(modes)}, got {interpolation!r}")
    out = cv2.remap(image, map_x, map_y, interpolation=modes[interpolation], borderMode=cv2.BORDER_REPLICATE)
    if image.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


def inside_mask(flow: np.ndarray) -> np.ndarray:
    """True where the pixel's source in the previous frame lies inside that frame (float32 (H, W) 0/1)."""
    height, width = flow.shape[:2]
    map_x, map_y = _maps(flow)
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return inside.astype(np.float32)


def trusted_mask(flow_back: np.ndarray, flow_forward_prev: np.ndarray | None) -> np.ndarray:
    """Where frame t - 1 warped onto frame t by ``flow_back`` can be trusted (float32 (H, W) 0/1): inside frame
    t - 1 (:func:`inside_mask`) and, when frame t - 1's forward flow is known and of the same size, not disoccluded
    (:func:`consistency_mask`). The one rule for a temporal model's ``previous_valid`` and for temporal smoothing."""
    valid = inside_mask(flow_back)
    if flow_forward_prev is not None and flow_forward_prev.shape[:2] == flow_back.shape[:2]:
        valid = valid * consistency_mask(flow_back, flow_forward_prev)
    return valid


def compose(flow_t: np.ndarray, flow_prev: np.ndarray) -> np.ndarray:
    """Backward flow from frame t to frame t - 2, given t -> t - 1 (``flow_t``) and t - 1 -> t - 2 (``flow_prev``)."""
    return flow_t + warp(flow_prev, flow_t)


def consistency_mask(flow_back: np.ndarray, flow_forward_prev: np.ndarray, tolerance: float = 1.0) -> np.ndarray:
    """1 where the backward flow of frame t and the forward flow of frame t - 1 agree (no disocclusion), else 0.

    ``flow_forward_prev`` is frame t - 1's forward flow (to frame t). A surface seen at p in frame t came from
    q = p + back(p); if q's forward flow does not bring it back to p (within ``tolerance`` pixels plus 5% of the
    motion), q was covering something else: p was occluded in frame t - 1."""
    there = warp(flow_forward_prev, flow_back)
    error = np.linalg.norm(flow_back + there, axis=-1)
    scale = np.linalg.norm(flow_back, axis=-1)
    ok = (error <= tolerance + 0.05 * scale) & (inside_mask(flow_back) > 0)
    return ok.astype(np.float32)


#: The extra inputs a temporal model's manifest names (engine/models/manifest.py ``inputs``) and that the shot
#: restorer (engine/shot.py) fills for frame t as image layers before restoring it:
#: ``previous_color``  frame t - 1's noisy colour warped onto frame t (H, W, 3); frame t's own colour on the
#:                     first frame;
#: ``previous_output`` frame t - 1's restored colour warped onto frame t (H, W, 3); frame t's colour on the first frame;
#: ``previous_valid``  (H, W, 1) 1 where the warped pixels can be trusted (inside the previous frame and not
#:                     disoccluded), 0 elsewhere and everywhere on the first frame of a run.
TEMPORAL_INPUTS = ("previous_color", "previous_output", "previous_valid")


def convention_known(renderer: str) -> bool:
    """Whether :func:`flow_to_previous` converts this renderer's motion pass (otherwise it is not used)."""
    return convention_key(renderer) in KNOWN_CONVENTIONS


def describe_convention(renderer: str) -> str:
    """What ``info`` and the shot restorer say about a motion pass of this renderer."""
    if convention_known(renderer):
        return f"{convention_key(renderer)} convention: used as motion vectors"
    return (f"{renderer or 'unknown renderer'}: convention not verified, not used (frames are not warped with it)")


@dataclass(frozen=True)
class MotionPass:
    """An image's motion pass (the ``motion`` role the EXR reader found, engine/imageio/aov.py) and its flows."""

    #: The layer of ``image.layers`` it is (e.g. ``ViewLayer.Vector``), and the renderer its name belongs to.
    layer: str
    renderer: str
    #: The pass as stored (H, W, C), channels in file order.
    array: np.ndarray

    @property
    def known(self) -> bool:
        return convention_known(self.renderer)

    def backward(self) -> np.ndarray | None:
        """Backward flow (to frame t - 1), None for an unverified convention; computed once per pass."""
        return self._flows[0]

    def forward(self) -> np.ndarray | None:
        """Forward flow (to frame t + 1) where the pass has it (Blender's Z W), else None; computed once per pass."""
        return self._flows[1]

    @cached_property
    def _flows(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        return flow_to_previous(self.array, self.renderer), flow_to_next(self.array, self.renderer)


def motion_pass(image: Any) -> MotionPass | None:
    """The motion pass of an engine Image (read from an EXR whose layers the AOV table names), or None."""
    role = dict(image.meta.extra.get("aov_roles", {}) or {}).get("motion")
    if not role:
        return None
    layer = role.get("layer")
    array = image.layers.get(layer) if layer is not None else None
    if array is None or array.ndim != 3 or array.shape[2] < 2 or array.shape[:2] != image.pixels.shape[:2]:
        return None
    return MotionPass(layer, str(role.get("renderer", "")), array)


def usable_motion(image: Any) -> tuple[MotionPass | None, str]:
    """(the image's motion pass when its convention is known, else None; a sentence when it is not usable)."""
    found = motion_pass(image)
    if found is None:
        return None, "no motion pass"
    if not found.known:
        return None, f"motion pass {found.layer}: {describe_convention(found.renderer)}"
    return found, ""


@dataclass(frozen=True)
class PreviousFrame:
    """What a temporal model needs of frame t - 1 to restore frame t: its noisy colour, its restored colour (both
    (H, W, 3) in the image's own values) and its forward flow when its motion pass has one (for
    :func:`consistency_mask`)."""

    frame: int
    colour: np.ndarray
    output: np.ndarray
    forward: np.ndarray | None = None


#: ``motion`` arguments left out: the callee looks the image's motion pass up itself (None means "it has none").
LOOK_UP: Any = object()


def temporal_layers(image: Any, previous: PreviousFrame | None = None, motion: MotionPass | None = LOOK_UP
                    ) -> dict[str, np.ndarray]:
    """The :data:`TEMPORAL_INPUTS` layers of frame ``image`` (an engine Image), given frame t - 1's data.

    With ``previous`` (same size): its colour and output warped onto this frame with this frame's backward flow (its
    motion pass; zero flow when it has none usable), ``previous_valid`` = :func:`inside_mask` times, when
    ``previous.forward`` and this frame's flow exist, :func:`consistency_mask`. Without (the first frame of a run,
    a lone image): both ``previous_*`` colours are this frame's own colour and ``previous_valid`` is 0. ``motion``:
    the image's :func:`usable_motion` pass (None: it has none) when the caller has looked it up already.

    The one rule for the shot restorer (engine/shot.py) and for a temporal model run on a single image
    (engine/restore.py fills the layers this way when the image has none)."""
    colour = np.asarray(image.pixels[:, :, :3], dtype=np.float32)
    height, width = colour.shape[:2]
    if previous is None or previous.colour.shape[:2] != (height, width) or previous.output.shape[:2] != (height, width):
        return {"previous_color": colour, "previous_output": colour,
                "previous_valid": np.zeros((height, width, 1), np.float32)}
    found = usable_motion(image)[0] if motion is LOOK_UP else motion
    flow = found.backward() if found is not None else None
    if flow is None:
        zero = np.zeros((height, width, 2), np.float32)
        return {"previous_color": np.array(previous.colour[:, :, :3], np.float32),
                "previous_output": np.array(previous.output[:, :, :3], np.float32),
                "previous_valid": inside_mask(zero)[:, :, None]}
    return {"previous_color": warp(previous.colour[:, :, :3], flow),
            "previous_output": warp(previous.output[:, :, :3], flow),
            "previous_valid": trusted_mask(flow, previous.forward)[:, :, None]}
