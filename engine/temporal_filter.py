"""Temporal smoothing of a restored shot: motion-compensated accumulation of the restored frames, what real-time
renderers call temporal accumulation, to take out the frame-to-frame flicker that a per-frame denoiser leaves.

For frame t, with ``den`` its restored colour and ``history`` frame t - 1's smoothed result warped onto frame t by
frame t's motion pass (bicubic: the history is resampled again every frame, and bilinear resampling blurs a little
more each time; on the 8-frame training shots the two scored the same to five digits, and on the validation shots,
measured afterwards with lab/bench/learned_temporal_filter.py's ``evaluate --warp``, bicubic gave Blender's OIDN
frames 2-3% lower relMSE and our networks' frames the same), and ``valid`` 0 outside frame t - 1 and where the
backward and forward motion vectors disagree (disocclusions; engine/motion.py's masks, as for a temporal model)::

    out = den + strength * valid * (clamp(history) - den)

``clamp`` bounds the history to frame t's restored value plus or minus ``spread`` standard deviations of frame t's
*noisy* colour over a 5x5 window, in log space: a variance clip (Salvi 2016) measured on the input, as SVGF does (a
denoised frame's own neighbourhood is too smooth to bound anything), centred on the restored pixel rather than on
the window's mean, which on fine texture pulled the history towards the local mean (blur; measured on the training
shots: per-frame error at 16 spp 0.00040 centred on the mean, 0.00037 on the restored value, 0.00038 unsmoothed).
History that no longer fits the frame (a shadow or a highlight that moved without the geometry, motion the vectors
missed) is pulled back instead of ghosting. ``strength`` 0 is off; the history's weight ``strength`` averages over about
1 / (1 - strength) frames where the motion is trusted.

The settings (:data:`DEFAULT_STRENGTH`, :data:`DEFAULT_SPREAD`) were chosen on the Cycles *training* shots of
engine/render_data/cycles_shot.py, scored against their independent 128-spp renders (unbiased targets); the
validation shots only measure them (bench/flicker.py, docs/benchmarks.md). Linear HDR in, linear HDR out; numpy
and OpenCV only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .motion import LOOK_UP

#: History weight where the motion is trusted (0: off). Chosen with DEFAULT_SPREAD on the Cycles training shots
#: (tonemapped errors against their 128-spp renders, 9 shots at 4 and 16 spp, OIDN + AOVs and KPRCAN frames): the
#: weights 0.3 / 0.5 / 0.7 with spreads 0.25 / 0.5 / 1; higher weights lowered the flicker no further and blurred.
DEFAULT_STRENGTH = 0.3
#: Half-width of the clamp, in standard deviations of the noisy input's 5x5 neighbourhood (log space).
DEFAULT_SPREAD = 0.5
#: The clamp's window (pixels).
WINDOW = 5


def neighbourhood_bounds(noisy: np.ndarray, spread: float = DEFAULT_SPREAD, centre: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel and channel, (low, high) in log1p space: ``centre`` (log1p of linear values; default the mean of
    the noisy colour's ``WINDOW`` x ``WINDOW`` neighbourhood) minus / plus ``spread`` standard deviations of that
    neighbourhood."""
    import cv2

    log = np.log1p(np.maximum(np.asarray(noisy[:, :, :3], np.float32), 0.0))
    mean = cv2.blur(log, (WINDOW, WINDOW), borderType=cv2.BORDER_REFLECT)
    square = cv2.blur(log * log, (WINDOW, WINDOW), borderType=cv2.BORDER_REFLECT)
    std = np.sqrt(np.maximum(square - mean * mean, 0.0))
    middle = mean if centre is None else centre
    return middle - spread * std, middle + spread * std


def smooth_frame(restored: np.ndarray, noisy: np.ndarray, history: np.ndarray, valid: np.ndarray,
                 strength: float = DEFAULT_STRENGTH, spread: float = DEFAULT_SPREAD, centre: str = "restored"
                 ) -> np.ndarray:
    """Frame t's smoothed colour (H x W x 3, linear): ``restored`` (frame t restored on its own) blended with
    ``history`` (frame t - 1's smoothed colour warped onto frame t), clamped to ``noisy``'s (frame t's input)
    neighbourhood, with weight ``strength * valid`` (``valid``: H x W or H x W x 1 in [0, 1]). ``centre``: where
    the clamp is centred, "restored" (the frame's restored value, the product's choice: see the module docstring)
    or "mean" (the noisy neighbourhood's mean, as TAA's variance clipping; kept for lab/bench/smoothing_tune.py)."""
    if centre not in ("restored", "mean"):
        raise ValueError(f"unknown clamp centre {centre!r}")
    restored = np.asarray(restored[:, :, :3], np.float32)
    if strength <= 0.0:
        return restored.copy()
    centre = np.log1p(np.maximum(restored, 0.0)) if centre == "restored" else None
    low, high = neighbourhood_bounds(noisy, spread, centre)
    clamped = np.expm1(np.clip(np.log1p(np.maximum(history[:, :, :3], 0.0)), low, high))
    weight = strength * np.asarray(valid, np.float32).reshape(restored.shape[0], restored.shape[1], 1)
    return (restored + weight * (clamped - restored)).astype(np.float32)


def smooth_with_previous(image: Any, restored: np.ndarray, previous: Any, strength: float = DEFAULT_STRENGTH,
                         spread: float = DEFAULT_SPREAD, motion: Any = LOOK_UP) -> np.ndarray | None:
    """Frame t's smoothed colour from ``image`` (frame t's input, an engine Image with its motion pass),
    ``restored`` (its restored colour) and ``previous`` (an engine.motion.PreviousFrame whose ``output`` is frame
    t - 1's *smoothed* colour); None when there is nothing to smooth with: no previous frame (the first frame, after
    a gap), another size, or no motion pass whose convention is known (smoothing without motion would ghost).
    ``motion``: the image's usable motion pass (None: it has none) when the caller has looked it up already."""
    from .motion import trusted_mask, usable_motion, warp

    found = usable_motion(image)[0] if motion is LOOK_UP else motion
    if previous is None or found is None or strength <= 0.0:
        return None
    height, width = restored.shape[:2]
    if previous.output.shape[:2] != (height, width):
        return None
    flow = found.backward()
    if flow is None:
        return None
    # bicubic: the history is resampled again every frame, and bilinear resampling compounds into blur
    history = np.maximum(warp(previous.output[:, :, :3], flow, interpolation="cubic"), 0.0)
    return smooth_frame(restored, image.pixels, history, trusted_mask(flow, previous.forward), strength, spread)
