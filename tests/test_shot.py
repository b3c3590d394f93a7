"""Shots (engine/shot.py): finding numbered sequences, restoring them frame by frame (skip, resume, cancel,
progress), and feeding a temporal model frame t - 1 warped by the render's motion pass.

Every sequence is written here: small PNG frames, and EXR frames laid out as Blender writes them (``ViewLayer.
Combined`` and a ``ViewLayer.Vector`` pass in Blender's convention, engine/motion.py's docstring)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import OpenEXR
import pytest
from onnx import TensorProto, helper, numpy_helper

from engine.batch import UsageProblem
from engine.cli import main as cli
from engine.errors import JobCancelled
from engine.image import ImageMeta, make_image
from engine.imageio import read_image, write_image
from engine.jobs import CancelToken, run_job
from engine.models.registry import ModelRegistry, file_sha256
from engine.motion import PreviousFrame, motion_pass, temporal_layers
from engine.paths import user_models_dir
from engine.restore import restore_job
from engine.shot import (
    FrameState,
    Shot,
    ShotError,
    ShotRestoreRequest,
    find_shot,
    format_frames,
    normalise_pattern,
    restore_shot,
)

H, W = 24, 32
#: The moving square: top-left corner in frame 1001, size, and its move per frame (x right, y down).
SQUARE, SIDE, MOVE = (4, 5), 8, (3, 2)


# ---------------------------------------------------------------------------------------------- fixtures


def png_frames(folder: Path, frames, name: str = "shot_{:04d}.png", seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for frame in frames:
        pixels = np.random.default_rng(seed + frame).random((H, W, 3), dtype=np.float32)
        paths.append(write_image(folder / name.format(frame), make_image(pixels)))
    return paths


def square_at(frame: int) -> tuple[int, int]:
    """(top, left) of the square in ``frame`` (frames from 1001)."""
    step = frame - 1001
    return SQUARE[1] + MOVE[1] * step, SQUARE[0] + MOVE[0] * step


def scene(frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy colour (H, W, 3) and Blender ``Vector`` pass (H, W, 4) of ``frame``: a textured square moving
    MOVE px per frame over a still textured background, fresh noise on every frame."""
    rng = np.random.default_rng(7)
    background = rng.uniform(0.2, 1.0, (H, W, 3)).astype(np.float32)
    texture = rng.uniform(2.0, 4.0, (SIDE, SIDE, 3)).astype(np.float32)
    colour = background.copy()
    top, left = square_at(frame)
    colour[top:top + SIDE, left:left + SIDE] = texture
    colour += np.random.default_rng(frame).normal(0, 0.05, colour.shape).astype(np.float32)
    vector = np.zeros((H, W, 4), np.float32)
    # Blender: X, Y = previous position - this one, Z, W = this position - the next one; pixels, y up.
    vector[top:top + SIDE, left:left + SIDE] = (-MOVE[0], MOVE[1], -MOVE[0], MOVE[1])
    return np.maximum(colour, 0.0), vector


def write_blender_frame(path: Path, colour: np.ndarray, vector: np.ndarray | None) -> Path:
    channels = {f"ViewLayer.Combined.{c}": np.ascontiguousarray(colour[:, :, i]) for i, c in enumerate("RGB")}
    channels["ViewLayer.Combined.A"] = np.ones((H, W), np.float32)
    if vector is not None:
        channels.update({f"ViewLayer.Vector.{c}": np.ascontiguousarray(vector[:, :, i]) for i, c in enumerate("XYZW")})
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, channels).write(str(path))
    return path


def blender_shot(folder: Path, frames=(1001, 1002, 1003, 1004), motion: bool = True) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for frame in frames:
        colour, vector = scene(frame)
        write_blender_frame(folder / f"shot_{frame:04d}.exr", colour, vector if motion else None)
    return str(folder / "shot_####.exr")


def temporal_model(folder: Path, model_id: str = "tiny-temporal", source: str = "previous_output",
                   value_transform: str = "linear") -> Path:
    """A temporal ONNX model: output = previous_valid * ``source`` + (1 - previous_valid) * color (the other
    previous input times 0, so every input is used). It carries frame t - 1's pixels along the motion where they are
    valid, so what it was fed can be read off its output exactly."""
    other = "previous_color" if source == "previous_output" else "previous_output"
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3, "H", "W"])
              for name in ("color", "previous_color", "previous_output")]
    inputs.append(helper.make_tensor_value_info("previous_valid", TensorProto.FLOAT, [1, 1, "H", "W"]))
    nodes = [
        helper.make_node("Mul", ["previous_valid", source], ["kept"]),
        helper.make_node("Sub", ["one", "previous_valid"], ["fresh_weight"]),
        helper.make_node("Mul", ["fresh_weight", "color"], ["fresh"]),
        helper.make_node("Mul", ["zero", other], ["unused"]),
        helper.make_node("Add", ["kept", "fresh"], ["mixed"]),
        helper.make_node("Add", ["mixed", "unused"], ["output"]),
    ]
    constants = [numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "one"),
                 numpy_helper.from_array(np.zeros((1, 1, 1, 1), np.float32), "zero")]
    graph = helper.make_graph(nodes, "gate", inputs,
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, "H", "W"])], constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{model_id}.onnx"
    onnx.save(model, str(path))
    manifest = {"id": model_id, "task": "render-denoise", "name": f"Tiny {model_id}", "engine": "onnx",
                "file": path.name, "sha256": file_sha256(path), "channels": 3,
                "inputs": ["color", "previous_color", "previous_output", "previous_valid"],
                "value_transform": value_transform, "tile": {"alignment": 1, "overlap": 0, "default": 0},
                "provenance": {"recipe": "tests/test_shot.py (a gate, test only)"}}
    (folder / f"{model_id}.json").write_text(json.dumps(manifest), encoding="utf-8")
    return path


def registry_with(folder: Path) -> ModelRegistry:
    return ModelRegistry([(folder, "user")])


def frame_pixels(pattern: str, frame: int) -> np.ndarray:
    return np.asarray(read_image(pattern.replace("####", f"{frame:04d}")).pixels)


# ---------------------------------------------------------------------------------------------- finding


@pytest.mark.parametrize("name, pattern", [
    ("name.{:04d}.exr", "name.####.exr"),
    ("name_{:04d}.png", "name_####.png"),
    ("name{:04d}.png", "name####.png"),
    ("take2_{:03d}.png", "take2_###.png"),
    ("f{}.png", "f#.png"),
])
def test_a_frame_or_a_folder_finds_its_sequence(tmp_path, name, pattern):
    field = name[name.index("{"):name.index("}") + 1]
    frames = {"{}": [1, 2, 3, 5, 9, 10, 11], "{:03d}": [98, 99, 100, 102]}.get(field, [1001, 1002, 1003, 1005])
    if name.endswith(".exr"):
        for frame in frames:
            write_blender_frame(tmp_path / name.format(frame), *scene(1001))
    else:
        png_frames(tmp_path, frames, name)
    shot = find_shot(tmp_path / name.format(frames[1]))
    assert shot is not None and shot.name == pattern
    assert shot.pattern == str(tmp_path / pattern)
    assert shot.frames == tuple(range(frames[0], frames[-1] + 1))
    assert set(shot.missing) == set(shot.frames) - set(frames)
    assert find_shot(tmp_path) == shot
    assert find_shot(tmp_path / pattern) == shot
    assert shot.path(frames[2]) == tmp_path / name.format(frames[2])


def test_pattern_spellings(tmp_path):
    png_frames(tmp_path, range(1001, 1004))
    expected = str(tmp_path / "shot_####.png")
    for text in ("shot_%04d.png", "shot_$F4.png", "shot_####.png"):
        shot = find_shot(tmp_path / text)
        assert shot.pattern == expected and shot.frames == (1001, 1002, 1003) and not shot.missing
    assert normalise_pattern(str(tmp_path / "shot_1001-1003#.png")) == (expected, [1001, 1002, 1003])
    assert find_shot(tmp_path / "shot_1001-1004#.png").missing == (1004,)  # RV: '#' is four digits
    assert normalise_pattern("a.1-3@@@.png") == ("a.###.png", [1, 2, 3])  # '@' is one digit
    nuke = find_shot(f"{tmp_path / 'shot_####.png'} 1002-1005")
    assert nuke.frames == (1002, 1003, 1004, 1005) and nuke.missing == (1004, 1005)
    assert normalise_pattern("plain.png") == (None, None)


def test_requested_frames_and_labels(tmp_path):
    png_frames(tmp_path, [1001, 1002, 1003, 1005])
    shot = find_shot(tmp_path / "shot_####.png")
    assert shot.label == "shot_####.png (1001-1005, 5 frames, 1 missing)"
    assert (shot.first, shot.last, len(shot), shot.present) == (1001, 1005, 5, (1001, 1002, 1003, 1005))
    chosen = find_shot(tmp_path / "shot_####.png", "1002-1010x2")
    assert chosen.frames == (1002, 1004, 1006, 1008, 1010) and chosen.missing == (1004, 1006, 1008, 1010)
    assert find_shot(tmp_path / "shot_1001.png", "1001,1003").frames == (1001, 1003)
    assert find_shot(tmp_path / "shot_####.png", [1005, 1001]).frames == (1001, 1005)
    with pytest.raises(UsageProblem):
        find_shot(tmp_path / "shot_####.png", "10-1")
    assert format_frames([1, 2, 3, 5, 9, 10]) == "1-3,5,9-10" and format_frames(range(1, 100, 2)) == "1-99x2"


def test_every_other_frame_on_disk_is_not_half_missing(tmp_path):
    png_frames(tmp_path, range(1, 10, 2), "s.{:04d}.png")
    shot = find_shot(tmp_path)
    assert shot.frames == (1, 3, 5, 7, 9) and not shot.missing and shot.label == "s.####.png (1-9x2, 5 frames)"


def test_what_is_not_a_shot(tmp_path):
    png_frames(tmp_path / "lone", [7], "only_{:04d}.png")
    assert find_shot(tmp_path / "lone" / "only_0007.png") is None  # no sibling
    png_frames(tmp_path / "plain", [1], "photo.png")
    assert find_shot(tmp_path / "plain" / "photo.png") is None
    assert find_shot(tmp_path / "plain") is None
    assert find_shot(tmp_path / "nothing_####.png") is None  # nothing on disk, nothing asked
    assert find_shot(tmp_path / "nothing_####.png", "1-3").missing == (1, 2, 3)
    png_frames(tmp_path / "two", [1, 2], "a_{:04d}.png")
    png_frames(tmp_path / "two", [1, 2], "b_{:04d}.png")
    with pytest.raises(ShotError, match="several sequences"):
        find_shot(tmp_path / "two")


def test_padding_tells_sequences_apart(tmp_path):
    png_frames(tmp_path, [1, 2, 3], "x_{:04d}.png")
    png_frames(tmp_path, [1, 2], "x_{}.png")  # another sequence, unpadded
    padded = find_shot(tmp_path / "x_0002.png")
    assert padded.name == "x_####.png" and padded.frames == (1, 2, 3)
    unpadded = find_shot(tmp_path / "x_2.png")
    assert unpadded.name == "x_#.png" and unpadded.frames == (1, 2)


def test_a_render_folder_leaves_its_sidecars_out(tmp_path):
    for frame in (1, 2, 3):
        write_blender_frame(tmp_path / f"frame_{frame:04d}.exr", *scene(1001))
        write_blender_frame(tmp_path / f"frame_{frame:04d}_albedo.exr", *scene(1001))
    shot = find_shot(tmp_path)
    assert shot.name == "frame_####.exr" and shot.frames == (1, 2, 3)


# ---------------------------------------------------------------------------------------------- motion pass


def test_the_exr_reader_exposes_the_motion_pass_with_its_convention(tmp_path, capsys):
    colour, vector = scene(1002)
    path = write_blender_frame(tmp_path / "f.exr", colour, vector)
    image = read_image(path)
    found = motion_pass(image)
    assert found.layer == "ViewLayer.Vector" and found.renderer == "Blender" and found.known
    np.testing.assert_array_equal(found.array, vector)
    top, left = square_at(1002)
    np.testing.assert_array_equal(found.backward()[top, left], (-MOVE[0], -MOVE[1]))  # it came from up-left
    np.testing.assert_array_equal(found.forward()[top, left], MOVE)
    assert found.backward() is found.backward()  # converted once per frame, however many callers ask
    assert image.meta.extra["aov_roles"]["motion"]["convention"] == "Blender"
    assert cli(["info", str(path)]) == 0
    out = capsys.readouterr().out
    motion_line = next(line for line in out.splitlines() if line.strip().startswith("motion"))
    assert "ViewLayer.Vector" in motion_line and "Blender convention: used as motion vectors" in motion_line

    channels = {c: np.ascontiguousarray(colour[:, :, i]) for i, c in enumerate("RGB")}
    channels.update({f"motionvector.{c}": np.ascontiguousarray(vector[:, :, i]) for i, c in enumerate("RGB")})
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                 channels).write(str(tmp_path / "arnold.exr"))
    arnold = motion_pass(read_image(tmp_path / "arnold.exr"))
    assert arnold is not None and not arnold.known and arnold.backward() is None
    assert cli(["info", str(tmp_path / "arnold.exr")]) == 0
    assert "convention not verified" in capsys.readouterr().out


def test_info_describes_a_shot(tmp_path, capsys):
    pattern = blender_shot(tmp_path, [1001, 1002, 1004])
    assert cli(["info", pattern]) == 0
    out = capsys.readouterr().out
    assert "shot_####.exr (1001-1004, 4 frames, 1 missing)" in out
    fields = dict(parts for parts in (line.split(None, 1) for line in out.splitlines() if line[:1].strip())
                  if len(parts) == 2)
    assert fields["missing"] == "1003" and fields["width"] == str(W) and fields["frame_count"] == "4"
    assert "Blender convention: used as motion vectors" in out
    assert cli(["info", str(tmp_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["frames"] == "1001-1004" and info["missing"] == "1003" and info["height"] == H
    assert cli(["info", str(tmp_path / "shot_1002.exr")]) == 0
    assert "shot_####.exr (1001-1004" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- temporal layers


def test_temporal_layers_warp_the_previous_frame_and_mark_disocclusions():
    previous_colour, previous_vector = scene(1001)
    colour, vector = scene(1002)
    meta = ImageMeta(format="exr", bit_depth=32, sample_type="float", hdr=True, color_space="linear",
                     extra={"aov_roles": {"motion": {"layer": "ViewLayer.Vector", "renderer": "Blender"}}})
    image = make_image(colour, None, meta, {"ViewLayer.Vector": vector})
    restored = previous_colour * 0.5  # stands for frame 1001's restored output
    forward = np.stack([-previous_vector[..., 2], previous_vector[..., 3]], axis=-1)
    layers = temporal_layers(image, PreviousFrame(1001, previous_colour, restored, forward))

    top, left = square_at(1002)
    old_top, old_left = square_at(1001)
    square = np.s_[top:top + SIDE, left:left + SIDE]
    old_square = np.s_[old_top:old_top + SIDE, old_left:old_left + SIDE]
    np.testing.assert_allclose(layers["previous_color"][square], previous_colour[old_square], atol=1e-6)
    np.testing.assert_allclose(layers["previous_output"][square], restored[old_square], atol=1e-6)
    valid = layers["previous_valid"][:, :, 0]
    assert valid.shape == (H, W) and valid[square].min() == 1
    uncovered = np.zeros((H, W), bool)  # under the square in 1001, background in 1002
    uncovered[old_square] = True
    uncovered[square] = False
    assert uncovered.any() and valid[uncovered].max() == 0
    still = np.ones((H, W), bool)
    still[old_square] = still[square] = False
    assert valid[still].min() == 1
    np.testing.assert_allclose(layers["previous_color"][still], previous_colour[still], atol=1e-6)

    first = temporal_layers(image)  # the first frame of a run, or a lone image
    np.testing.assert_array_equal(first["previous_color"], colour)
    np.testing.assert_array_equal(first["previous_output"], colour)
    assert first["previous_valid"].shape == (H, W, 1) and first["previous_valid"].max() == 0


# ---------------------------------------------------------------------------------------------- restoring


def expected_gate_outputs(frames) -> dict[int, np.ndarray]:
    """What the gate model must give over consecutive frames from 1001, computed without the engine: frame 1001's
    colour, carried along the square's motion, the background kept, uncovered pixels from their own frame."""
    out = {}
    for frame in frames:
        colour, _ = scene(frame)
        if frame == frames[0]:
            out[frame] = colour
            continue
        before = out[frame - 1]
        result = before.copy()  # still background: zero motion, valid
        top, left = square_at(frame)
        old_top, old_left = square_at(frame - 1)
        old = np.zeros((H, W), bool)
        old[old_top:old_top + SIDE, old_left:old_left + SIDE] = True
        new = np.zeros((H, W), bool)
        new[top:top + SIDE, left:left + SIDE] = True
        result[old & ~new] = colour[old & ~new]  # disoccluded: the model takes the frame's own colour
        result[new] = before[old_top:old_top + SIDE, old_left:old_left + SIDE].reshape(-1, 3)
        out[frame] = result
    return out


def test_a_temporal_model_gets_the_previous_output_warped_by_the_vector_pass(tmp_path):
    pattern = blender_shot(tmp_path / "in")
    temporal_model(tmp_path / "models")
    registry = registry_with(tmp_path / "models")
    request = ShotRestoreRequest(find_shot(pattern), str(tmp_path / "out"), "tiny-temporal")
    result = run_job(restore_shot(request, registry=registry))
    assert [o.state for o in result.frames] == [FrameState.RESTORED] * 4
    assert [o.output for o in result.frames] == [request.output_path(f) for f in range(1001, 1005)]
    assert request.output_path(1002) == tmp_path / "out" / "shot_1002.exr"
    assert not any("motion" in note for note in result.notes)  # the Vector pass was used
    expected = expected_gate_outputs(range(1001, 1005))
    out_pattern = str(tmp_path / "out" / "shot_####.exr")
    for frame in range(1001, 1005):
        np.testing.assert_allclose(frame_pixels(out_pattern, frame), expected[frame], rtol=1e-5, atol=1e-5)
    # The square's pixels on the last frame are frame 1001's noisy ones, moved 3 x (3, 2) px: really warped.
    top, left = square_at(1004)
    first_top, first_left = square_at(1001)
    np.testing.assert_allclose(frame_pixels(out_pattern, 1004)[top:top + SIDE, left:left + SIDE],
                               scene(1001)[0][first_top:first_top + SIDE, first_left:first_left + SIDE], rtol=1e-5)
    # The output keeps the file's passes and carries no previous-frame layer.
    written = set(OpenEXR.File(str(tmp_path / "out" / "shot_1002.exr"), separate_channels=True).channels())
    assert {"ViewLayer.Vector.X", "ViewLayer.Vector.W", "ViewLayer.Combined.A"} <= written
    assert not any("previous" in name for name in written)


def test_a_temporal_model_gets_the_previous_noisy_colour_warped(tmp_path):
    pattern = blender_shot(tmp_path / "in", range(1001, 1003))
    temporal_model(tmp_path / "models", "tiny-prev-colour", source="previous_color")
    registry = registry_with(tmp_path / "models")
    run_job(restore_shot(ShotRestoreRequest(find_shot(pattern), str(tmp_path / "out"), "tiny-prev-colour"),
                         registry=registry))
    out = frame_pixels(str(tmp_path / "out" / "shot_####.exr"), 1002)
    top, left = square_at(1002)
    old_top, old_left = square_at(1001)
    np.testing.assert_allclose(out[top:top + SIDE, left:left + SIDE],
                               scene(1001)[0][old_top:old_top + SIDE, old_left:old_left + SIDE], rtol=1e-5)


def test_resuming_a_temporal_run_reads_the_previous_output_back(tmp_path):
    pattern = blender_shot(tmp_path / "in")
    temporal_model(tmp_path / "models")
    registry = registry_with(tmp_path / "models")
    shot = find_shot(pattern)
    whole = ShotRestoreRequest(shot, str(tmp_path / "whole"), "tiny-temporal")
    run_job(restore_shot(whole, registry=registry))
    part = ShotRestoreRequest(shot.with_frames("1001-1002"), str(tmp_path / "parts"), "tiny-temporal")
    run_job(restore_shot(part, registry=registry))
    resumed = run_job(restore_shot(ShotRestoreRequest(shot, str(tmp_path / "parts"), "tiny-temporal"),
                                   registry=registry))
    assert [o.state for o in resumed.frames] == [FrameState.SKIPPED] * 2 + [FrameState.RESTORED] * 2
    for frame in range(1001, 1005):
        np.testing.assert_array_equal(frame_pixels(str(tmp_path / "parts" / "shot_####.exr"), frame),
                                      frame_pixels(str(tmp_path / "whole" / "shot_####.exr"), frame))


def test_a_gap_starts_a_new_temporal_run(tmp_path):
    pattern = blender_shot(tmp_path / "in", [1001, 1002, 1004])
    temporal_model(tmp_path / "models")
    registry = registry_with(tmp_path / "models")
    result = run_job(restore_shot(ShotRestoreRequest(find_shot(pattern), str(tmp_path / "out"), "tiny-temporal"),
                                  registry=registry))
    assert [o.state for o in result.frames] == [FrameState.RESTORED, FrameState.RESTORED, FrameState.MISSING,
                                                FrameState.RESTORED]
    assert result.exit_code == 4
    # Frame 1004 follows a missing frame: restored on its own (previous_valid 0 -> its own colour).
    np.testing.assert_allclose(frame_pixels(str(tmp_path / "out" / "shot_####.exr"), 1004), scene(1004)[0],
                               rtol=1e-5, atol=1e-6)


def test_without_a_motion_pass_frames_are_used_unwarped_and_it_is_said_once(tmp_path):
    pattern = blender_shot(tmp_path / "in", motion=False)
    temporal_model(tmp_path / "models")
    registry = registry_with(tmp_path / "models")
    job = restore_shot(ShotRestoreRequest(find_shot(pattern), str(tmp_path / "out"), "tiny-temporal"),
                       registry=registry)
    notes = []
    result = run_job(job, lambda p: notes.append(p.message) if p.stage == "note" else None)
    said = [n for n in notes if "no motion pass" in n]
    assert len(said) == 1 and "zero motion" in said[0] and said[0] in result.notes
    # Zero flow, every pixel valid: the gate keeps frame 1001 everywhere.
    for frame in range(1002, 1005):
        np.testing.assert_allclose(frame_pixels(str(tmp_path / "out" / "shot_####.exr"), frame), scene(1001)[0],
                                   rtol=1e-5, atol=1e-6)


def test_a_temporal_model_restores_a_lone_image_as_a_first_frame(tmp_path):
    temporal_model(tmp_path / "models")
    registry = registry_with(tmp_path / "models")
    path = write_blender_frame(tmp_path / "single.exr", *scene(1003))
    result = run_job(restore_job(read_image(path), registry.get("tiny-temporal")))
    np.testing.assert_allclose(result.image.pixels, scene(1003)[0], rtol=1e-5, atol=1e-6)
    assert not any(name.startswith("previous") for name in result.image.layers)


def test_skip_existing_and_resume_after_a_crash(tmp_path, monkeypatch):
    png_frames(tmp_path / "in", range(1, 7))
    shot = find_shot(tmp_path / "in" / "shot_####.png")
    request = ShotRestoreRequest(shot, str(tmp_path / "out" / "d_####.png"), "nlm", {"noise_level": 10})
    import engine.imageio

    real_write = engine.imageio.write_image
    written = []

    def crash_on_frame_4(path, image, **kwargs):
        if Path(path).name == "d_0004.png":
            raise RuntimeError("simulated crash")
        written.append(Path(path).name)
        return real_write(path, image, **kwargs)

    monkeypatch.setattr(engine.imageio, "write_image", crash_on_frame_4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_job(restore_shot(request))
    assert written == ["d_0001.png", "d_0002.png", "d_0003.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == written  # no half-written frame
    monkeypatch.setattr(engine.imageio, "write_image", real_write)
    before = {name: (tmp_path / "out" / name).stat().st_mtime_ns for name in written}
    result = run_job(restore_shot(request))
    assert [o.state.value for o in result.frames] == ["skipped"] * 3 + ["restored"] * 3
    assert {name: (tmp_path / "out" / name).stat().st_mtime_ns for name in written} == before
    assert result.exit_code == 0 and result.output_shot.label == "d_####.png (1-6, 6 frames)"
    again = run_job(restore_shot(ShotRestoreRequest(shot, request.output, "nlm", {"noise_level": 10},
                                                    overwrite=True)))
    assert again.restored == 6


def test_progress_over_frames_with_eta_and_metrics(tmp_path):
    png_frames(tmp_path, range(1001, 1005))
    (tmp_path / "out").mkdir()
    png_frames(tmp_path / "out", [1001])  # already done
    records = []
    request = ShotRestoreRequest(find_shot(tmp_path / "shot_####.png"), str(tmp_path / "out"), "nlm",
                                 {"noise_level": 10})
    result = run_job(restore_shot(request), records.append)
    fractions = [r.fraction for r in records]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    ends = [r for r in records if r.stage in ("restored", "skipped")]
    assert [r.stage for r in ends] == ["skipped", "restored", "restored", "restored"]
    assert ends[2].message.startswith("frame 1003 (3/4)")
    assert dict(ends[2].metrics) == {"frame": 1003, "index": 3, "total": 4, "done": 2, "skipped": 1, "failed": 0}
    assert all(r.eta_s is not None for r in ends[1:]) and ends[-1].eta_s == 0
    running = [r for r in records if r.stage == "restoring"]
    assert running and all(r.message.startswith("frame 10") for r in running)
    assert [o.seconds > 0 for o in result.frames] == [False, True, True, True]
    np.testing.assert_array_equal(ends[-1].preview.pixels, read_image(tmp_path / "out" / "shot_1004.png").pixels)


def test_cancel_between_frames_and_stop_after_a_frame(tmp_path):
    png_frames(tmp_path, range(1, 6))
    shot = find_shot(tmp_path / "shot_####.png")
    token = CancelToken()
    job = restore_shot(ShotRestoreRequest(shot, str(tmp_path / "out"), "nlm", {"noise_level": 10}), token)
    with pytest.raises(JobCancelled):
        for progress in job:
            if progress.stage == "restored" and progress.metrics["frame"] == 2:
                token.cancel()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["shot_0001.png", "shot_0002.png"]

    token = CancelToken()
    job = restore_shot(ShotRestoreRequest(shot, str(tmp_path / "out"), "nlm", {"noise_level": 10}), token)
    records = []

    def stop_at_frame_4(progress):
        records.append(progress)
        if progress.stage == "restoring" and progress.metrics["frame"] == 4:
            token.request_stop()

    result = run_job(job, stop_at_frame_4)
    assert [o.state.value for o in result.frames] == ["skipped", "skipped", "restored", "restored", "stopped"]
    assert not (tmp_path / "out" / "shot_0005.png").exists() and result.exit_code == 1


def test_a_bad_frame_fails_alone_and_outputs_are_checked(tmp_path):
    png_frames(tmp_path, [1, 2, 3])
    (tmp_path / "shot_0002.png").write_bytes(b"not a png")
    shot = find_shot(tmp_path / "shot_####.png")
    result = run_job(restore_shot(ShotRestoreRequest(shot, str(tmp_path / "out"), "nlm", {"noise_level": 10})))
    assert [o.state.value for o in result.frames] == ["restored", "failed", "restored"]
    assert result.frames[1].message and result.exit_code == 1
    for output in (str(tmp_path / "shot_####.png"), str(tmp_path / "shot_%04d.png"), str(tmp_path / "x.png")):
        with pytest.raises(ShotError):
            run_job(restore_shot(ShotRestoreRequest(shot, output, "nlm")))
    with pytest.raises(ShotError, match="no parameter"):
        run_job(restore_shot(ShotRestoreRequest(shot, str(tmp_path / "other"), "nlm", {"strength": 3})))
    assert not (tmp_path / "other").exists()


def test_shot_is_a_frozen_value():
    shot = Shot.of("/nowhere/s_####.exr", [3, 1, 2])
    assert shot.frames == (1, 2, 3) and shot.missing == (1, 2, 3)
    with pytest.raises(AttributeError):
        shot.frames = ()  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------- command line


def test_cli_restores_a_shot_and_resumes_after_an_interrupt(tmp_path, monkeypatch, capsys):
    pattern = blender_shot(tmp_path / "in", range(1001, 1006))
    temporal_model(user_models_dir())
    out = str(tmp_path / "out" / "den_####.exr")
    import engine.restore

    real_job = engine.restore.restore_job
    seen = []

    def interrupt_on_frame_1003(image, *args, **kwargs):
        seen.append(Path(image.meta.path).name)
        if image.meta.path.endswith("shot_1003.exr"):
            raise KeyboardInterrupt
        return real_job(image, *args, **kwargs)

    monkeypatch.setattr(engine.restore, "restore_job", interrupt_on_frame_1003)
    argv = ["restore", pattern.replace("####", "%04d"), "--frames", "1001-1005", "-o", out, "--model",
            "tiny-temporal"]
    assert cli(argv) == 130
    captured = capsys.readouterr()
    assert "interrupted: 2 frame(s) restored" in captured.err and "run the same command again" in captured.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["den_1001.exr", "den_1002.exr"]
    monkeypatch.setattr(engine.restore, "restore_job", real_job)
    assert cli(argv) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "frame 1001 (1/5): den_1001.exr exists, skipped"
    assert lines[2].startswith("frame 1003 (3/5) -> den_1003.exr")
    assert "0 failed of 5 frames" in captured.err
    expected = expected_gate_outputs(range(1001, 1006))
    for frame in range(1001, 1006):  # the resumed frames continue the run from the outputs on disk
        np.testing.assert_allclose(frame_pixels(out, frame), expected[frame], rtol=1e-5, atol=1e-5)


def test_cli_folder_of_frames_to_a_folder_and_exit_codes(tmp_path, capsys):
    blender_shot(tmp_path / "in", [1001, 1002, 1004])
    temporal_model(user_models_dir())
    assert cli(["restore", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "tiny-temporal"]) == 4
    captured = capsys.readouterr()
    assert "frame 1003 (3/4): input missing" in captured.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["shot_1001.exr", "shot_1002.exr",
                                                                    "shot_1004.exr"]
    assert cli(["restore", str(tmp_path / "in" / "shot_####.exr"), "-o", str(tmp_path / "o.exr")]) == 2
    assert cli(["restore", str(tmp_path / "in" / "shot_####.exr"), str(tmp_path / "in"), "-o",
                str(tmp_path / "o")]) == 2
    assert cli(["restore", str(tmp_path / "in" / "none_####.exr"), "-o", str(tmp_path / "o")]) == 2
    assert cli(["restore", str(tmp_path / "in" / "shot_####.exr"), "--frames", "9-1", "-o",
                str(tmp_path / "o")]) == 2
    assert cli(["restore", str(tmp_path / "in" / "shot_####.exr"), "-o", str(tmp_path / "o"), "--model",
                "no-such-model"]) == 2
    capsys.readouterr()
    # A single frame stays a single-image restore (and a temporal model takes it as a first frame).
    assert cli(["restore", str(tmp_path / "in" / "shot_1002.exr"), "-o", str(tmp_path / "one.exr"), "--model",
                "tiny-temporal"]) == 0
    np.testing.assert_allclose(read_image(tmp_path / "one.exr").pixels, scene(1002)[0], rtol=1e-5, atol=1e-6)


def test_main_py_restores_a_png_shot_end_to_end(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    png_frames(tmp_path / "in", range(1, 4), "plate.{:04d}.png")
    done = subprocess.run([sys.executable, str(root / "main.py"), "restore", str(tmp_path / "in" / "plate.####.png"),
                           "-o", str(tmp_path / "out" / "plate.####.png"), "--model", "nlm", "--set",
                           "noise_level=10"], capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stderr
    assert [line.split(" ->")[0] for line in done.stdout.splitlines()] == ["frame 1 (1/3)", "frame 2 (2/3)",
                                                                           "frame 3 (3/3)"]
    assert "3 restored, 0 skipped, 0 failed of 3 frames" in done.stderr
    assert read_image(tmp_path / "out" / "plate.0002.png").width == W


def test_cli_on_a_terminal_draws_a_bar_with_the_time_left_and_clears_it(tmp_path, terminal_stderr, capsys):
    png_frames(tmp_path / "in", range(1, 4), "plate.{:04d}.png")
    terminal = terminal_stderr()
    assert cli(["restore", str(tmp_path / "in" / "plate.####.png"), "-o", str(tmp_path / "out" / "plate.####.png"),
                "--model", "nlm", "--set", "noise_level=10"]) == 0
    bars = terminal.bars()
    assert any("frame 1 (1/3)" in bar for bar in bars) and any("frame 3 (3/3)" in bar for bar in bars)
    assert any(bar.rstrip().endswith("s left") for bar in bars if "frame 2 (2/3)" in bar)  # engine.jobs.describe_eta
    assert all(len(bar) == 79 for bar in bars)  # as wide as the terminal allows, never wrapping
    # the bar is cleared before the summary
    assert f"\r{' ' * 79}\r3 restored, 0 skipped, 0 failed of 3 frames in " in terminal.getvalue()
    assert [line.split(" ->")[0] for line in capsys.readouterr().out.splitlines()] == [
        "frame 1 (1/3)", "frame 2 (2/3)", "frame 3 (3/3)"]


@pytest.mark.parametrize("weight", [-0.1, 1.0, 1.5])
def test_a_smoothing_weight_outside_0_to_1_is_refused_before_any_frame(tmp_path, weight):
    """The weight is the previous result's share of each frame: -1 used to switch smoothing off quietly, 1 would keep
    only the history and more would extrapolate."""
    from engine.shot import ShotError

    pattern = blender_shot(tmp_path / "in", range(1001, 1003))
    temporal_model(tmp_path / "models", "tiny-prev-colour", source="previous_color")
    request = ShotRestoreRequest(find_shot(pattern), str(tmp_path / "out"), "tiny-prev-colour", smoothing=weight)
    with pytest.raises(ShotError, match="smoothing weight"):
        run_job(restore_shot(request, registry=registry_with(tmp_path / "models")))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
