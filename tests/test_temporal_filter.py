"""Temporal smoothing of a restored shot (engine/temporal_filter.py, ShotRestoreRequest.smoothing): less flicker
where the motion pass is trusted, no ghost where the history no longer fits the frame, the first frame and frames
without motion left as restored, and a resumed run identical to one that never stopped."""

from __future__ import annotations

import numpy as np
import pytest

from engine.cli import main as cli
from engine.imageio import read_image
from engine.jobs import run_job
from engine.metrics import temporal_relmse
from engine.motion import PreviousFrame, motion_pass
from engine.shot import FrameState, ShotRestoreRequest, find_shot, restore_shot
from engine.temporal_filter import smooth_frame, smooth_with_previous
from tests.test_shot import blender_shot, frame_pixels

SIZE = (48, 64)


def test_accumulation_lowers_flicker_on_a_still_frame():
    """A still scene restored with an error that changes every frame (what a per-frame denoiser leaves): the
    smoothed frames change less from one to the next, and each is nearer the truth."""
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.2, 1.0, (*SIZE, 3)).astype(np.float32)
    noisy = [np.maximum(truth + rng.normal(0, 0.3, truth.shape), 0).astype(np.float32) for _ in range(8)]
    restored = [np.maximum(truth + rng.normal(0, 0.03, truth.shape), 0).astype(np.float32) for _ in range(8)]
    valid = np.ones(SIZE, np.float32)
    smoothed = [restored[0]]
    for t in range(1, 8):
        smoothed.append(smooth_frame(restored[t], noisy[t], smoothed[-1], valid))
    assert temporal_relmse(smoothed, [truth] * 8) < 0.75 * temporal_relmse(restored, [truth] * 8)
    assert np.mean((smoothed[-1] - truth) ** 2) < np.mean((restored[-1] - truth) ** 2)
    np.testing.assert_array_equal(smooth_frame(restored[1], noisy[1], smoothed[0], valid, strength=0.0), restored[1])
    # weight 0 where the history is not trusted (outside the previous frame, disocclusions)
    np.testing.assert_array_equal(smooth_frame(restored[1], noisy[1], smoothed[0], np.zeros(SIZE, np.float32)),
                                  restored[1])


def test_history_that_no_longer_fits_the_frame_does_not_ghost():
    """A bright object in the history that the frame does not show (it moved without motion vectors, or a
    highlight went out): the clamp to the frame's own neighbourhood keeps it out."""
    rng = np.random.default_rng(1)
    frame = np.full((*SIZE, 3), 0.3, np.float32)
    noisy = np.maximum(frame + rng.normal(0, 0.05, frame.shape), 0).astype(np.float32)
    history = frame.copy()
    history[10:30, 10:30] = 8.0  # not in this frame
    out = smooth_frame(frame, noisy, history, np.ones(SIZE, np.float32), strength=0.9)
    assert float(out[10:30, 10:30].max()) < 0.5  # without the clamp: 0.1 * 0.3 + 0.9 * 8 = 7.2
    # centred on the noisy neighbourhood's mean (TAA's clip, kept for the lab's comparison) the clamp also holds
    mean_centred = smooth_frame(frame, noisy, history, np.ones(SIZE, np.float32), strength=0.9, centre="mean")
    assert float(mean_centred[10:30, 10:30].max()) < 0.5
    with pytest.raises(ValueError, match="centre"):
        smooth_frame(frame, noisy, history, np.ones(SIZE, np.float32), centre="median")


def test_smoothing_follows_the_motion_pass(tmp_path):
    """Through the shot restorer with a per-frame model: frame 1 as restored, later frames blended with the
    previous result moved along the Vector pass (the moving square's pixels come from where it was)."""
    pattern = blender_shot(tmp_path / "in")
    shot = find_shot(pattern)
    plain = run_job(restore_shot(ShotRestoreRequest(shot, str(tmp_path / "plain"), "nlm", smoothing=0.0)))
    smooth = run_job(restore_shot(ShotRestoreRequest(shot, str(tmp_path / "smooth"), "nlm")))  # on by default
    assert any("smoothed over time" in note for note in smooth.notes)
    assert not any("smoothed" in note for note in plain.notes)
    first_plain, first_smooth = (frame_pixels(str(tmp_path / d / "shot_####.exr"), 1001) for d in ("plain", "smooth"))
    np.testing.assert_array_equal(first_smooth, first_plain)
    # frame 1002 = what smooth_with_previous makes of frame 1001's result moved by the motion pass
    image = read_image(tmp_path / "in" / "shot_1002.exr")
    previous = PreviousFrame(1001, read_image(tmp_path / "in" / "shot_1001.exr").pixels, first_smooth,
                             motion_pass(read_image(tmp_path / "in" / "shot_1001.exr")).forward())
    expected = smooth_with_previous(image, frame_pixels(str(tmp_path / "plain" / "shot_####.exr"), 1002), previous)
    np.testing.assert_allclose(frame_pixels(str(tmp_path / "smooth" / "shot_####.exr"), 1002), expected,
                               rtol=1e-5, atol=1e-5)
    assert not np.allclose(expected, frame_pixels(str(tmp_path / "plain" / "shot_####.exr"), 1002))


def test_frames_without_a_motion_pass_are_left_as_restored(tmp_path):
    pattern = blender_shot(tmp_path / "in", motion=False)
    shot = find_shot(pattern)
    result = run_job(restore_shot(ShotRestoreRequest(shot, str(tmp_path / "out"), "nlm")))
    assert any("not smoothed" in note for note in result.notes)
    plain = run_job(restore_shot(ShotRestoreRequest(shot, str(tmp_path / "plain"), "nlm", smoothing=0.0)))
    assert plain.restored == 4
    for frame in shot.frames:
        np.testing.assert_array_equal(frame_pixels(str(tmp_path / "out" / "shot_####.exr"), frame),
                                      frame_pixels(str(tmp_path / "plain" / "shot_####.exr"), frame))


def test_a_resumed_smoothed_run_equals_an_uninterrupted_one(tmp_path):
    """Frame t - 1's smoothed result is read back from its file when a run resumes at frame t."""
    pattern = blender_shot(tmp_path / "in")
    shot = find_shot(pattern)
    run_job(restore_shot(ShotRestoreRequest(shot, str(tmp_path / "whole"), "nlm")))
    part = find_shot(pattern, "1001-1002")
    run_job(restore_shot(ShotRestoreRequest(part, str(tmp_path / "resumed"), "nlm")))
    resumed = run_job(restore_shot(ShotRestoreRequest(shot, str(tmp_path / "resumed"), "nlm")))
    assert resumed.restored == 2 and resumed.count(FrameState.SKIPPED) == 2
    for frame in shot.frames:
        np.testing.assert_array_equal(frame_pixels(str(tmp_path / "resumed" / "shot_####.exr"), frame),
                                      frame_pixels(str(tmp_path / "whole" / "shot_####.exr"), frame))


def test_command_line_smoothing_option(tmp_path, capsys):
    pattern = blender_shot(tmp_path / "in")
    assert cli(["restore", pattern, "-o", str(tmp_path / "off"), "--model", "nlm", "--smooth", "0"]) == 0
    assert cli(["restore", pattern, "-o", str(tmp_path / "on"), "--model", "nlm"]) == 0
    assert "smoothed over time" in capsys.readouterr().err
    off, on = (frame_pixels(str(tmp_path / d / "shot_####.exr"), 1003) for d in ("off", "on"))
    assert not np.allclose(off, on)
    # a single image has no previous frame: the option is refused rather than ignored
    assert cli(["restore", str(tmp_path / "in" / "shot_1001.exr"), "-o", str(tmp_path / "one.exr"), "--model", "nlm",
                "--smooth", "0.5"]) == 2
    assert "--smooth" in capsys.readouterr().err
