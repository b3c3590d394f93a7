"""engine/motion.py: renderer motion passes in the engine's backward-flow convention, and warping with it."""

import numpy as np
import pytest

from engine import motion


def _scene(shift_x: int, shift_y: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Frame t-1 and frame t of a textured square moved by (shift_x, shift_y) pixels (y down)."""
    rng = np.random.default_rng(0)
    texture = rng.uniform(0, 1, (8, 8, 3)).astype(np.float32)
    prev = np.zeros((size, size, 3), np.float32)
    cur = np.zeros_like(prev)
    prev[10:18, 8:16] = texture
    cur[10 + shift_y:18 + shift_y, 8 + shift_x:16 + shift_x] = texture
    return prev, cur


def test_blender_vector_pass_becomes_backward_flow():
    # What Cycles writes for an object moving 10 px right and 5 px up per frame (checked with bpy 5.0.1).
    vector = np.zeros((4, 6, 4), np.float32)
    vector[...] = (-10.0, -5.0, -10.0, -5.0)
    back = motion.flow_to_previous(vector, "Blender")
    assert back.shape == (4, 6, 2)
    np.testing.assert_array_equal(back[0, 0], (-10.0, 5.0))  # the previous position: 10 px left, 5 px lower
    np.testing.assert_array_equal(motion.flow_to_next(vector, "Blender")[0, 0], (10.0, -5.0))


def test_unverified_conventions_are_not_guessed():
    vector = np.ones((2, 2, 3), np.float32)
    assert motion.flow_to_previous(vector, "V-Ray") is None
    assert motion.flow_to_previous(vector, "Arnold / Karma / generic") is None
    assert motion.flow_to_previous(vector[..., :2], "generic") is not None
    with pytest.raises(ValueError):
        motion.flow_to_previous(vector[..., :1], "Blender")


def test_warp_brings_the_previous_frame_onto_this_one():
    prev, cur = _scene(3, 2)
    flow = np.zeros(cur.shape[:2] + (2,), np.float32)
    flow[12:20, 11:19] = (-3.0, -2.0)  # the square's pixels came from 3 px left, 2 px up
    warped = motion.warp(prev, flow)
    np.testing.assert_allclose(warped[12:20, 11:19], cur[12:20, 11:19], atol=1e-6)
    # Without the flow the frames disagree on the square.
    assert np.abs(prev[12:20, 11:19] - cur[12:20, 11:19]).mean() > 0.1


def test_warp_takes_any_channel_count_and_2d():
    rng = np.random.default_rng(1)
    image = rng.uniform(size=(9, 7, 7)).astype(np.float32)
    flow = np.full((9, 7, 2), (1.0, 0.0), np.float32)
    out = motion.warp(image, flow)
    np.testing.assert_allclose(out[:, :-1], image[:, 1:], atol=1e-6)
    flat = motion.warp(image[..., 0], flow)
    assert flat.shape == (9, 7)


def test_inside_mask_and_compose():
    flow = np.full((5, 5, 2), (-2.0, 0.0), np.float32)
    mask = motion.inside_mask(flow)
    assert mask[:, :2].sum() == 0 and mask[:, 2:].min() == 1
    two = motion.compose(flow, flow)
    np.testing.assert_allclose(two[:, 4], np.tile((-4.0, 0.0), (5, 1)))


def test_consistency_mask_marks_disocclusions():
    size = 16
    back = np.zeros((size, size, 2), np.float32)
    back[:, 8:] = (-4.0, 0.0)  # the right half moved 4 px right
    fwd_prev = np.zeros_like(back)
    fwd_prev[:, 4:12] = (4.0, 0.0)  # in the previous frame, columns 4..11 move to 8..15
    ok = motion.consistency_mask(back, fwd_prev)
    assert ok[:, 8:].min() == 1  # moved pixels: consistent
    assert ok[:, :4].min() == 1  # static, never covered
    assert ok[:, 4:8].max() == 0  # uncovered by the move: their previous-frame pixel belonged to the object
