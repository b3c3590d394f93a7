"""The command-line contract that scripts rely on (issue 2, part 5)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main as cli
from engine.image import ImageMeta, make_image
from engine.imageio import read_image, write_image
from engine.paths import user_models_dir
from tests.onnx_factory import install

ROOT = Path(__file__).resolve().parent.parent


def rgba16_png(path: Path) -> Path:
    rng = np.random.default_rng(0)
    pixels = rng.random((40, 56, 3)).astype(np.float32)
    alpha = np.tile(np.linspace(0, 1, 56, dtype=np.float32), (40, 1))
    return write_image(path, make_image(pixels, alpha, ImageMeta(format="png", bit_depth=16)))


def multilayer_exr(path: Path) -> Path:
    rng = np.random.default_rng(1)
    radiance = (rng.random((32, 48, 3)) * 8).astype(np.float32)
    layers = {"albedo": rng.random((32, 48, 3)), "normal": rng.random((32, 48, 3)) * 2 - 1}
    meta = ImageMeta(format="exr", bit_depth=32, sample_type="float", hdr=True, color_space="linear")
    return write_image(path, make_image(radiance, None, meta, layers))


def test_models_json(capsys):
    assert cli(["models", "--json"]) == 0
    models = json.loads(capsys.readouterr().out)
    nlm = next(m for m in models if m["id"] == "nlm")
    assert nlm["task"] == "photo-denoise" and nlm["params"][0]["name"] == "noise_level"


def test_info_json(tmp_path, capsys):
    path = rgba16_png(tmp_path / "a.png")
    assert cli(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    text = json.dumps(info).lower()
    assert "16" in text and "alpha" in text


def test_restore_16bit_rgba_png_keeps_depth_and_alpha(tmp_path, capsys):
    source = rgba16_png(tmp_path / "in.png")
    target = tmp_path / "out.png"
    assert cli(["restore", str(source), "-o", str(target), "--model", "nlm", "--set", "noise_level=5"]) == 0
    before, after = read_image(source), read_image(target)
    assert after.meta.bit_depth == 16 and after.has_alpha
    np.testing.assert_allclose(after.alpha, before.alpha, atol=1 / 65535)
    assert after.pixels.shape == before.pixels.shape


def test_restore_multilayer_exr_keeps_layers_and_hdr(tmp_path):
    install(user_models_dir(), "tiny-render", task="render-denoise", value_transform="log1p",
            build={"layers": 2, "extra_inputs": ("albedo", "normal")})
    source = multilayer_exr(tmp_path / "render.exr")
    target = tmp_path / "clean.exr"
    assert cli(["restore", str(source), "-o", str(target), "--model", "tiny-render"]) == 0
    result = read_image(target)
    assert result.meta.hdr and result.pixels.max() > 1.0
    assert {"albedo", "normal"} <= set(result.layers)
    np.testing.assert_allclose(result.layers["albedo"], read_image(source).layers["albedo"], atol=1e-3)


def test_restore_with_an_ensemble(tmp_path, capsys):
    install(user_models_dir(), "tiny-render", task="render-denoise", value_transform="log1p",
            build={"layers": 2, "extra_inputs": ("albedo", "normal")})
    source = multilayer_exr(tmp_path / "render.exr")
    for passes in ("1", "8"):
        assert cli(["restore", str(source), "-o", str(tmp_path / f"x{passes}.exr"), "--model", "tiny-render",
                    "--ensemble", passes]) == 0
    assert "8-pass ensemble" in capsys.readouterr().out
    one, eight = read_image(tmp_path / "x1.exr").pixels, read_image(tmp_path / "x8.exr").pixels
    assert one.shape == eight.shape and np.abs(one - eight).max() > 0
    assert cli(["restore", str(source), "-o", str(tmp_path / "bad.exr"), "--ensemble", "3"]) == 2


def test_restore_jpeg_and_upscale(tmp_path):
    rng = np.random.default_rng(2)
    source = write_image(tmp_path / "photo.jpg", make_image(rng.random((24, 32, 3)), None, ImageMeta(format="jpeg")))
    assert cli(["restore", str(source), "-o", str(tmp_path / "big.jpg"), "--model", "lanczos-x2"]) == 0
    result = read_image(tmp_path / "big.jpg")
    assert result.meta.format == "jpeg" and (result.height, result.width) == (48, 64)


def test_batch_goes_on_past_a_bad_file(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    rgba16_png(folder / "a.png")
    rgba16_png(folder / "b.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "out"
    assert cli(["restore", str(folder), "-o", str(out), "--model", "bicubic-x2"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert "broken.png" in capsys.readouterr().err


@pytest.mark.parametrize("workers", [1, 2])
def test_restore_on_a_terminal_draws_one_bar_and_clears_it_for_each_line(tmp_path, terminal_stderr, capsys, workers):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        rgba16_png(folder / name)
    terminal = terminal_stderr()
    assert cli(["restore", str(folder), "-o", str(tmp_path / "out"), "--model", "bicubic-x2", "--workers",
                str(workers)]) == 0
    bars = terminal.bars()
    assert bars and all(len(bar) == 79 for bar in bars)  # the engine/commands/progress_bar.py bar, within 80 columns
    assert any(bar.rstrip().endswith("s left") for bar in bars)  # the run's time left (engine.jobs.describe_eta)
    assert f"\r{' ' * 79}\r3 of 3 images restored in " in terminal.getvalue()  # cleared before the summary
    assert len(capsys.readouterr().out.splitlines()) == 3


@pytest.mark.parametrize(
    "arguments",
    [
        ["restore", "missing.png", "-o", "x.png"],
        ["restore", "{src}", "-o", "{tmp}/o.png", "--model", "nlm", "--set", "strength=3"],
        ["restore", "{src}", "-o", "{tmp}/o.png", "--model", "nlm", "--set", "noise_level=loud"],
        ["restore", "{src}", "-o", "{tmp}/o.png", "--bogus"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(tmp_path, arguments, capsys):
    source = rgba16_png(tmp_path / "in.png")
    arguments = [a.format(src=source, tmp=tmp_path) for a in arguments]
    assert cli(arguments) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err


def test_processing_error_is_one_line_without_traceback(tmp_path):
    broken = tmp_path / "broken.exr"
    broken.write_bytes(b"v/1\x01 truncated")
    run = subprocess.run(
        [sys.executable, "main.py", "restore", str(broken), "-o", str(tmp_path / "o.exr")],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr and "broken.exr" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.exr").exists()


def test_input_is_never_overwritten(tmp_path):
    source = rgba16_png(tmp_path / "in.png")
    before = source.read_bytes()
    assert cli(["restore", str(source), "-o", str(source), "--model", "nlm"]) == 1
    assert source.read_bytes() == before


def test_restore_estimates_each_photos_noise_level_unless_set(tmp_path, capsys):
    rng = np.random.default_rng(3)
    ramp = np.tile(np.linspace(0.2, 0.8, 96, dtype=np.float32), (96, 1))[:, :, None].repeat(3, 2)
    folder = tmp_path / "in"
    folder.mkdir()
    for name, sigma in (("quiet.png", 4.0), ("loud.png", 30.0)):
        noisy = np.clip(ramp + rng.normal(0, sigma / 255, ramp.shape), 0, 1).astype(np.float32)
        write_image(folder / name, make_image(noisy, None, ImageMeta(format="png", bit_depth=16)))
    assert cli(["restore", str(folder), "-o", str(tmp_path / "out"), "--model", "nlm"]) == 0
    captured = capsys.readouterr()
    estimates = {line.split(":")[0]: float(line.split("noise level ")[1].split()[0])
                 for line in captured.err.splitlines() if "(estimated;" in line}
    assert set(estimates) == {"quiet.png", "loud.png"}
    assert abs(estimates["quiet.png"] - 4.0) < 1.5 and abs(estimates["loud.png"] - 30.0) < 3.0
    # The level used is the one reported (the result label carries it).
    assert f"\u03c3{estimates['loud.png']:g}" in captured.out
    assert cli(["restore", str(folder / "loud.png"), "-o", str(tmp_path / "set.png"), "--model", "nlm",
                "--set", "noise_level=12"]) == 0
    captured = capsys.readouterr()
    assert "estimated" not in captured.err and "\u03c312" in captured.out


def test_restoring_a_shot_folder_restores_the_frames_not_their_references(tmp_path, capsys):
    """A shot's fine-tuning folder holds frame_0000.exr beside frame_0000_ref.exr: restoring the folder denoises the
    frames and says what it left out (before, every reference was a failed input of the AOV model)."""
    install(user_models_dir(), "tiny-render", task="render-denoise", value_transform="log1p",
            build={"layers": 2, "extra_inputs": ("albedo", "normal")})
    shot = tmp_path / "shot"
    shot.mkdir()
    for index in range(2):
        multilayer_exr(shot / f"frame_{index:04d}.exr")
        rgb = read_image(shot / f"frame_{index:04d}.exr")
        write_image(shot / f"frame_{index:04d}_ref.exr", make_image(rgb.pixels, None, rgb.meta))
    out = tmp_path / "out"
    assert cli(["restore", str(shot), "-o", str(out), "--model", "tiny-render"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["frame_0000.exr", "frame_0001.exr"]
    assert "left out 2 file(s)" in capsys.readouterr().err


def test_a_line_said_while_another_thread_decodes_is_not_taken_for_that_files_message(capfd):
    """restore --workers: one worker says something (a noise level, a file's line) while another decodes, whose
    capture of the console (engine.imageio: what libraries print about the file) must not swallow the line."""
    import threading

    from engine.commands.restore_cmd import _say
    from engine.imageio import _library_messages

    capturing, release, captured = threading.Event(), threading.Event(), []

    def decode() -> None:
        with _library_messages() as messages:
            capturing.set()
            release.wait(10)
        captured.append(list(messages))

    decoder = threading.Thread(target=decode)
    decoder.start()
    assert capturing.wait(10)
    sayer = threading.Thread(target=_say, args=("b.png: noise level 7 (estimated)",))
    sayer.start()
    sayer.join(0.3)
    assert sayer.is_alive()  # it waits for the decode's capture to end
    release.set()
    decoder.join(10)
    sayer.join(10)
    assert captured == [[]]
    assert "b.png: noise level 7 (estimated)" in capfd.readouterr().err
