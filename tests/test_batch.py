"""The farm-ready batch command (issue 49, part 1): frames and patterns, resume, pins, exit codes, JSON progress,
and the same bytes whether a shot runs whole or in chunks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import batch
from engine.batch import BatchItem, BatchOptions, ItemState, expand_pattern, parse_frames, plan
from engine.cli import main as cli
from engine.image import ImageMeta, make_image
from engine.imageio import read_image, write_image
from engine.models.registry import file_sha256
from engine.paths import user_models_dir
from tests.onnx_factory import install

ROOT = Path(__file__).resolve().parent.parent


def write_frames(folder: Path, frames, name="shot.{:04d}.png", size=(40, 52)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for frame in frames:
        rng = np.random.default_rng(frame)
        pixels = rng.random((*size, 3)).astype(np.float32)
        write_image(folder / name.format(frame), make_image(pixels, None, ImageMeta(format="png", bit_depth=16)))
    return folder


@pytest.fixture
def tiny_model():
    path = install(user_models_dir(), "tiny", build={"layers": 3})
    return file_sha256(path)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------- frames and patterns


def test_parse_frames():
    assert parse_frames("1001-1005") == [1001, 1002, 1003, 1004, 1005]
    assert parse_frames("1-9x4") == [1, 5, 9]
    assert parse_frames("1-9:4") == [1, 5, 9]
    assert parse_frames("3,1,2-4") == [3, 1, 2, 4]
    assert parse_frames("7") == [7]
    for bad in ("", "a-b", "5-1", "1-5x0", "1--"):
        with pytest.raises(batch.UsageProblem):
            parse_frames(bad)


def test_expand_pattern():
    assert expand_pattern("shot.####.exr", 7) == "shot.0007.exr"
    assert expand_pattern("renders/shot.%04d.exr", 1001) == "renders/shot.1001.exr"
    assert expand_pattern("a/b_%d.png", 12) == "a/b_12.png"
    assert expand_pattern("v2#/f.#.png", 3) == "v2#/f.3.png"  # only the file name is a pattern
    assert expand_pattern("f.##.png", 123) == "f.123.png"  # wider numbers are not cut


def test_plan_frames_outputs_and_missing(tmp_path):
    write_frames(tmp_path / "in", [1, 2, 4])
    items = plan([str(tmp_path / "in/shot.####.png")], str(tmp_path / "out/r.%03d.png"), parse_frames("1-4"))
    assert [i.frame for i in items] == [1, 2, 3, 4]
    assert [i.target.name for i in items] == ["r.001.png", "r.002.png", "r.003.png", "r.004.png"]
    missing = items[2]
    assert missing.state is ItemState.FAILED and missing.error_code == batch.EXIT_MISSING_INPUT
    # no --frames: the frames on disk
    found = plan([str(tmp_path / "in/shot.%04d.png")], str(tmp_path / "out"))
    assert [i.frame for i in found] == [1, 2, 4] and found[0].target == tmp_path / "out" / "shot.0001.png"


def test_plan_refuses_collisions_and_bad_outputs(tmp_path):
    write_frames(tmp_path / "a", [1])
    write_frames(tmp_path / "b", [1])
    with pytest.raises(batch.UsageProblem, match="both be written"):
        plan([str(tmp_path / "a/shot.0001.png"), str(tmp_path / "b/shot.0001.png")], str(tmp_path / "out"))
    with pytest.raises(batch.UsageProblem, match="replace the input"):
        plan([str(tmp_path / "a/shot.0001.png")], str(tmp_path / "a/shot.0001.png"))
    with pytest.raises(batch.UsageProblem, match="frame pattern"):
        plan([str(tmp_path / "a/shot.0001.png")], str(tmp_path / "out"), [1])
    with pytest.raises(batch.UsageProblem, match="needs a frame pattern as input"):
        plan([str(tmp_path / "a/shot.0001.png")], str(tmp_path / "out.####.png"))


def test_model_spec_pins():
    digest = "ab" * 32
    assert batch.split_model_spec(f"tiny@sha256:{digest.upper()}") == ("tiny", digest)
    assert batch.split_model_spec("tiny", digest) == ("tiny", digest)
    assert batch.split_model_spec(None) == (None, None)
    with pytest.raises(batch.UsageProblem):
        batch.split_model_spec("tiny@md5:00")
    with pytest.raises(batch.UsageProblem):
        batch.split_model_spec("tiny@sha256:1234")
    with pytest.raises(batch.UsageProblem):
        batch.split_model_spec(f"tiny@sha256:{digest}", "cd" * 32)
    with pytest.raises(batch.UsageProblem):
        batch.split_model_spec(None, digest)


# ------------------------------------------------------------------------------------------- the command


def test_batch_json_progress_and_exit_codes(tmp_path, tiny_model, capsys):
    write_frames(tmp_path / "in", [1001, 1002, 1004])
    out = tmp_path / "out"
    code = cli(["batch", str(tmp_path / "in/shot.####.png"), "-o", str(out / "den.####.png"),
                "--frames", "1001-1004", "--model", f"tiny@sha256:{tiny_model}", "--tile", "32",
                "--device", "cpu", "--progress", "json"])
    captured = capsys.readouterr()
    events = json_lines(captured.out)  # stdout holds nothing but JSON lines
    assert code == batch.EXIT_MISSING_INPUT == 4
    assert events[0]["event"] == "start" and events[0]["sha256"] == tiny_model and events[0]["tile"] == 32
    done = [e for e in events if e["event"] == "done"]
    assert sorted(e["frame"] for e in done) == [1001, 1002, 1004]
    errors = [e for e in events if e["event"] == "error"]
    assert [(e["frame"], e["code"]) for e in errors] == [(1003, 4)]
    assert events[-1] == {**events[-1], "event": "finish", "done": 3, "failed": 1, "exit_code": 4}
    assert sorted(p.name for p in out.iterdir()) == ["den.1001.png", "den.1002.png", "den.1004.png"]
    restored = read_image(out / "den.1001.png")
    assert restored.meta.bit_depth == 16 and restored.pixels.shape == (40, 52, 3)

    # the missing frame arrives; a resumed run skips what exists and does only frame 1003
    write_frames(tmp_path / "in", [1003])
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code = cli(["batch", str(tmp_path / "in/shot.%04d.png"), "-o", str(out / "den.####.png"), "--frames",
                "1001-1004", "--model", "tiny", "--model-sha256", tiny_model, "--tile", "32", "--skip-existing",
                "--progress", "json"])
    events = json_lines(capsys.readouterr().out)
    assert code == 0
    assert sorted(e["frame"] for e in events if e["event"] == "skipped") == [1001, 1002, 1004]
    assert [e["frame"] for e in events if e["event"] == "done"] == [1003]
    assert all(before[name] == (out / name).stat().st_mtime_ns for name in before)

    # without --skip-existing or --overwrite an existing output is a per-frame failure (exit 1), left untouched
    code = cli(["batch", str(tmp_path / "in/shot.####.png"), "-o", str(out / "den.####.png"), "--frames", "1001",
                "--model", "tiny", "--progress", "json"])
    events = json_lines(capsys.readouterr().out)
    assert code == batch.EXIT_FAILED and "already exists" in events[-2]["message"]


def test_batch_model_pin_mismatch_exits_3_before_any_work(tmp_path, tiny_model, capsys):
    write_frames(tmp_path / "in", [1])
    wrong = "0" * 64
    code = cli(["batch", str(tmp_path / "in/shot.####.png"), "-o", str(tmp_path / "out"), "--model",
                f"tiny@sha256:{wrong}", "--progress", "json"])
    captured = capsys.readouterr()
    assert code == batch.EXIT_MODEL == 3
    fatal = json_lines(captured.out)[-1]
    assert fatal["event"] == "fatal" and fatal["code"] == 3 and tiny_model in fatal["message"]
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: ")  # one line a farm can parse
    assert not (tmp_path / "out").exists()
    # an unknown model is exit 3 too; a classical engine has no file to pin
    assert cli(["batch", str(tmp_path / "in/shot.0001.png"), "-o", str(tmp_path / "o.png"), "--model", "nope"]) == 3
    assert cli(["batch", str(tmp_path / "in/shot.0001.png"), "-o", str(tmp_path / "o.png"), "--model",
                f"nlm@sha256:{wrong}"]) == 3
    assert cli(["batch", str(tmp_path / "in/shot.####.png"), "-o", str(tmp_path / "o"), "--frames", "x"]) == 2
    assert cli(["batch", str(tmp_path / "in/shot.0001.png"), "-o", str(tmp_path / "o.png"), "--model", "tiny",
                "--set", "strength=2"]) == 2
    assert "has no parameter 'strength'" in capsys.readouterr().err and not (tmp_path / "o.png").exists()


def test_batch_folder_and_single_file_text_output(tmp_path, tiny_model, capsys):
    write_frames(tmp_path / "in", [1, 2], name="photo{}.png")
    assert cli(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "tiny"]) == 0
    captured = capsys.readouterr()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["photo1.png", "photo2.png"]
    assert "2 restored, 0 skipped, 0 failed of 2" in captured.err
    assert cli(["batch", str(tmp_path / "in/photo1.png"), "-o", str(tmp_path / "one.png"), "--model", "tiny"]) == 0
    assert (tmp_path / "one.png").is_file()


def test_batch_on_a_terminal_draws_the_bar_with_the_time_left(tmp_path, tiny_model, terminal_stderr, capsys):
    write_frames(tmp_path / "in", range(1, 5), size=(120, 160))
    terminal = terminal_stderr()
    assert cli(["batch", str(tmp_path / "in/shot.####.png"), "-o", str(tmp_path / "out/r.####.png"), "--model",
                "tiny", "--tile", "32"]) == 0
    bars = terminal.bars()
    assert all(len(bar) == 79 for bar in bars)  # within the terminal
    assert any("1/4 shot.0001.png" in bar for bar in bars)  # the item in hand, from its progress events
    assert any("2/4 finished" in bar and bar.rstrip().endswith("s left") for bar in bars)  # engine.jobs wording
    assert f"\r{' ' * 79}\r4 restored, 0 skipped, 0 failed of 4 in " in terminal.getvalue()  # cleared first
    assert len(capsys.readouterr().out.splitlines()) == 4  # one line per frame, on stdout


def test_a_corrupt_frame_fails_alone(tmp_path, tiny_model, capsys):
    write_frames(tmp_path / "in", [1, 3])
    (tmp_path / "in/shot.0002.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    code = cli(["batch", str(tmp_path / "in/shot.####.png"), "-o", str(tmp_path / "out"), "--frames", "1-3",
                "--model", "tiny", "--progress", "json"])
    events = json_lines(capsys.readouterr().out)
    assert code == batch.EXIT_FAILED
    assert [(e["frame"], e["code"]) for e in events if e["event"] == "error"] == [(2, 1)]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["shot.0001.png", "shot.0003.png"]


def _run_main(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240)


@pytest.mark.slow
def test_chunks_give_the_same_bytes_as_a_whole_shot(tmp_path, tiny_model):
    """A farm runs a shot in chunks on separate processes: the frames must be byte-identical to one whole run."""
    write_frames(tmp_path / "in", range(1, 7), name="shot.{:04d}.exr", size=(70, 90))
    # HDR frames (EXR, values above 1) with a tile smaller than the image, so overlaps and the exposure scale count
    for frame in range(1, 7):
        path = tmp_path / "in" / f"shot.{frame:04d}.exr"
        image = read_image(path)
        meta = ImageMeta(format="exr", bit_depth=32, sample_type="float", hdr=True, color_space="linear")
        write_image(path, make_image(image.pixels * 6.0, None, meta))
    common = ["--model", f"tiny@sha256:{tiny_model}", "--tile", "48", "--device", "cpu", "--progress", "json"]
    whole = _run_main(["batch", "in/shot.####.exr", "-o", "whole/r.####.exr", "--frames", "1-6", *common], tmp_path)
    assert whole.returncode == 0, whole.stderr
    for chunk in ("1-2", "3-4", "5-6"):
        part = _run_main(["batch", "in/shot.%04d.exr", "-o", "chunks/r.%04d.exr", "--frames", chunk, *common],
                         tmp_path)
        assert part.returncode == 0, part.stderr
        assert all(json.loads(line)["event"] for line in part.stdout.splitlines())
    for frame in range(1, 7):
        name = f"r.{frame:04d}.exr"
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "chunks" / name).read_bytes(), name
    restored = read_image(tmp_path / "whole" / "r.0001.exr")
    assert restored.meta.hdr and float(restored.pixels.max()) > 1.0


def test_sigterm_mid_run_leaves_whole_files_and_resume_finishes(tmp_path, tiny_model):
    """A farm manager killing a task (SIGTERM) leaves complete outputs or none; --skip-existing resumes."""
    import signal
    import time

    write_frames(tmp_path / "in", range(1, 41), size=(120, 160))
    args = [sys.executable, str(ROOT / "main.py"), "batch", "in/shot.####.png", "-o", "out/r.####.png", "--frames",
            "1-40", "--model", "tiny", "--tile", "32", "--progress", "json"]
    process = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:  # wait for the second finished frame, then stop the task
        if json.loads(line)["event"] == "done" and json.loads(line)["index"] >= 1:
            break
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == batch.EXIT_INTERRUPTED, err
    assert "interrupted" in err
    written = sorted((tmp_path / "out").iterdir())
    assert 2 <= len(written) < 40
    assert all(p.name.startswith("r.") for p in written)  # no partial (.part) files left behind
    for path in written:
        assert read_image(path).pixels.shape == (120, 160, 3)
    start = time.monotonic()
    resumed = _run_main([*args[2:], "--skip-existing"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    events = json_lines(resumed.stdout)
    assert sum(e["event"] == "skipped" for e in events) == len(written)
    assert sum(e["event"] == "done" for e in events) == 40 - len(written)
    assert len(list((tmp_path / "out").iterdir())) == 40
    assert time.monotonic() - start < 200


def test_run_local_updates_typed_items(tmp_path, tiny_model):
    write_frames(tmp_path / "in", [1, 2])
    items = plan([str(tmp_path / "in")], str(tmp_path / "out"))
    assert all(isinstance(i, BatchItem) and i.state is ItemState.PENDING for i in items)
    events = list(batch.run_local(items, BatchOptions(model_id="tiny", tile=32)))
    assert [e["event"] for e in events][0] == "start" and events[-1]["event"] == "finish"
    assert all(i.state is ItemState.DONE and i.attempts == 1 and i.seconds > 0 for i in items)
    assert items[0].record()["state"] == "done" and items[0].details["model"] == "tiny"
    assert batch.exit_code(items) == 0


def test_a_cancelled_item_is_finished_and_the_run_is_not_ok():
    """The window's Cancel ends a queue item as CANCELLED (engine/batch.py's states, shared with the window)."""
    from engine.batch import EXIT_FAILED, EXIT_OK, exit_code

    done = BatchItem(Path("a.png"), Path("out/a.png"), state=ItemState.DONE)
    cancelled = BatchItem(Path("b.png"), Path("out/b.png"), state=ItemState.CANCELLED)
    assert cancelled.finished and cancelled.record()["state"] == "cancelled"
    assert exit_code([done]) == EXIT_OK and exit_code([done, cancelled]) == EXIT_FAILED
