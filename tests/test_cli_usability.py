"""The command line as a new user meets it (issue 46, items 6 and 8): usage errors that say what to type, chains
of models as one run, and a ZSSR time budget that holds."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.chain import ChainStep, chain_job, check_chain
from engine.cli import main as cli
from engine.cli import unknown_command_message
from engine.errors import EngineError, JobCancelled
from engine.image import ImageMeta, make_image
from engine.imageio import read_image, write_image
from engine.jobs import CancelToken
from engine.models.registry import ModelRegistry
from engine.paths import user_models_dir
from tests.onnx_factory import install

ROOT = Path(__file__).resolve().parent.parent


def noisy_photo(path: Path, sigma: float = 20.0, size: tuple[int, int] = (40, 48)) -> Path:
    rng = np.random.default_rng(5)
    ramp = np.tile(np.linspace(0.2, 0.8, size[1], dtype=np.float32), (size[0], 1))[:, :, None].repeat(3, 2)
    noisy = np.clip(ramp + rng.normal(0, sigma / 255, ramp.shape), 0, 1).astype(np.float32)
    return write_image(path, make_image(noisy, None, ImageMeta(format="png", bit_depth=8)))


def test_unknown_model_is_a_usage_error_with_a_suggestion(tmp_path, capsys):
    source = noisy_photo(tmp_path / "in.png")
    assert cli(["restore", str(source), "-o", str(tmp_path / "o.png"), "--model", "lanczos-x3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown model 'lanczos-x3': did you mean lanczos-x") and "lanczos-x2" in err
    assert len(err.strip().splitlines()) == 1
    assert cli(["restore", str(source), "-o", str(tmp_path / "o.png"), "--model", "nlm", "--then", "zzz"]) == 2
    assert "unknown model 'zzz'" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_refusing_to_overwrite_names_the_option_once(tmp_path):
    source = noisy_photo(tmp_path / "in.png")
    target = tmp_path / "out.png"
    target.write_bytes(b"keep me")
    run = subprocess.run([sys.executable, "main.py", "restore", str(source), "-o", str(target), "--model", "nlm",
                          "--set", "noise_level=10"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 1 and target.read_bytes() == b"keep me"
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--overwrite" in errors[0]


def test_a_mistyped_command_is_not_opened_as_an_image(tmp_path):
    source = noisy_photo(tmp_path / "x.png")
    run = subprocess.run([sys.executable, "main.py", "restor", str(source)], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen"})
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == ["error: unknown command 'restor' (and no such file): did you mean "
                                               "restore?"]
    # A file (even one without an extension) or a path is still something to open, not a command.
    (tmp_path / "render").write_bytes(b"")
    assert unknown_command_message(str(tmp_path / "render")) is None
    assert unknown_command_message("photo.png") is None
    assert "commands:" in unknown_command_message("frobnicate")


def test_denoise_then_upscale_is_one_run(tmp_path, capsys):
    source = noisy_photo(tmp_path / "in.png")
    out = tmp_path / "out.png"
    assert cli(["restore", str(source), "-o", str(out), "--model", "nlm", "--then", "lanczos-x2",
                "--set", "noise_level=20"]) == 0
    captured = capsys.readouterr()
    result = read_image(out)
    assert (result.height, result.width) == (80, 96)
    assert "\u2192" in captured.out and "\u03c320" in captured.out
    # The chain's output is the second model applied to the first one's result (nothing else in between).
    registry = ModelRegistry()
    image = read_image(source)
    steps = [ChainStep(registry.get("nlm"), {"noise_level": 20.0}), ChainStep(registry.get("lanczos-x2"))]
    chained = _run(chain_job(image, steps))
    from engine.restore import restore_job

    first = _run(restore_job(image, registry.get("nlm"), {"noise_level": 20.0}))
    second = _run(restore_job(first.image, registry.get("lanczos-x2")))
    np.testing.assert_allclose(chained.image.pixels, second.image.pixels, atol=1e-6)
    assert [step["model_id"] for step in chained.details["steps"]] == ["nlm", "lanczos-x2"]


def _run(job, records=None):
    while True:
        try:
            record = next(job)
        except StopIteration as stop:
            return stop.value
        if records is not None:
            records.append(record)


def test_chain_progress_runs_once_from_0_to_1_and_estimates_later_noise_levels(tmp_path):
    registry = ModelRegistry()
    image = read_image(noisy_photo(tmp_path / "in.png", sigma=25.0, size=(64, 64)))
    steps = [ChainStep(registry.get("lanczos-x2")), ChainStep(registry.get("nlm"))]
    records = []
    result = _run(chain_job(image, steps, token=CancelToken()), records)
    fractions = [r.fraction for r in records if r.fraction is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # The upscaler reads 64 x 64 pixels, the denoiser after it 128 x 128: the first fifth is the upscaler's.
    assert max(r.fraction for r in records if r.stage.startswith("1/2")) <= 0.2 + 1e-6
    # the time left is the whole chain's (engine.jobs.EtaClock), never negative
    etas = [r.eta_s for r in records if r.stage.startswith(("1/2", "2/2")) and r.fraction]
    assert etas and all(eta is not None and eta >= 0 for eta in etas)
    assert any("noise level" in r.message and r.stage.startswith("step 2/2") for r in records)
    # Estimated on the denoiser's own input (the upscaled image, smoother than the original), not the original.
    from engine.noise_estimate import with_estimated_noise_level
    from engine.restore import restore_job

    upscaled = _run(restore_job(image, registry.get("lanczos-x2"))).image
    _, expected = with_estimated_noise_level(upscaled, registry.get("nlm").manifest, {})
    _, on_original = with_estimated_noise_level(image, registry.get("nlm").manifest, {})
    assert result.details["steps"][1]["params"]["noise_level"] == pytest.approx(expected)
    assert abs(expected - on_original) > 5


def test_a_chain_that_cannot_work_is_refused_before_running(tmp_path, capsys):
    install(user_models_dir(), "tiny-aov", task="render-denoise", value_transform="log1p",
            build={"layers": 2, "extra_inputs": ("albedo", "normal")})
    registry = ModelRegistry()
    with pytest.raises(EngineError, match="run it before the upscaler"):
        check_chain([ChainStep(registry.get("lanczos-x2")), ChainStep(registry.get("tiny-aov"))])
    check_chain([ChainStep(registry.get("tiny-aov")), ChainStep(registry.get("lanczos-x2"))])
    source = noisy_photo(tmp_path / "in.png")
    assert cli(["restore", str(source), "-o", str(tmp_path / "o.png"), "--model", "lanczos-x2",
                "--then", "tiny-aov"]) == 2
    assert cli(["restore", str(source), "-o", str(tmp_path / "o.png"), "--model", "nlm", "--then", "lanczos-x2",
                "--set", "bogus=1"]) == 2
    assert "no model of the chain" in capsys.readouterr().err


def test_chain_can_be_cancelled_between_steps(tmp_path):
    registry = ModelRegistry()
    image = read_image(noisy_photo(tmp_path / "in.png"))
    token = CancelToken()
    job = chain_job(image, [ChainStep(registry.get("lanczos-x2")), ChainStep(registry.get("lanczos-x2"))],
                    token=token)
    for record in job:
        if record.stage.startswith("1/2") and record.fraction and record.fraction > 0:
            token.cancel()
            break
    with pytest.raises(JobCancelled):
        for record in job:
            assert not record.stage.startswith("2/2"), "the second model ran after a cancel"


@pytest.mark.slow
def test_zssr_seconds_budget_holds(tmp_path):
    """``zssr --seconds N`` ends within a few seconds of N: the final ensemble is kept inside the budget."""
    pytest.importorskip("torch")
    source = noisy_photo(tmp_path / "in.png", sigma=2.0, size=(96, 120))
    started = time.perf_counter()
    assert cli(["zssr", str(source), "-o", str(tmp_path / "o.png"), "--scale", "4", "--seconds", "12"]) == 0
    elapsed = time.perf_counter() - started
    # Before, the final 8-way ensembles ran after the budget: ~35 s over at this size. The slack is for a busy
    # machine (torch's start-up counts too).
    assert elapsed < 12 + 8, elapsed
    assert read_image(tmp_path / "o.png").width == 480


@pytest.mark.parametrize(
    "arguments",
    [
        ["restore", "{bad}", "-o", "{tmp}/o.png"],
        ["restore", "{bad}", "{good}", "-o", "{tmp}/out", "--model", "nlm", "--set", "noise_level=5"],
        ["restore", "{good}", "-o", "{tmp}/o.png", "--model", "nosuch"],
        ["restore", "{good}", "-o", "{tmp}/o.txt"],
        ["info", "{bad}"],
        ["zssr", "{bad}", "-o", "{tmp}/z.png", "--scale", "2"],
        ["zssr", "{good}", "-o", "{tmp}/z.png", "--scale", "20"],
    ],
)
def test_every_error_is_printed_once(tmp_path, arguments, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    good = noisy_photo(tmp_path / "good.png")
    code = cli([a.format(bad=bad, good=good, tmp=tmp_path) for a in arguments])
    assert code in (1, 2)
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, errors


def test_zssr_time_plan_keeps_the_final_passes_inside_the_budget(monkeypatch):
    """The planner (engine/zssr/train._plan_step) with a known cost per pass: training stops early enough for the
    final outputs of this and later steps, and the ensemble is dropped when it would eat the budget."""
    from engine.zssr import train
    from engine.zssr.config import preset_request

    class FakeTrainer:
        input = np.zeros((1, 3, 100, 100), np.float32)
        request = preset_request("fast", (4.0, 4.0), back_projection=False)
        sf = (2.0, 2.0)

        def output_shape(self):
            return (200, 200)

        def ensemble_size(self, ensemble=None):
            return 8 if ensemble else 1

    now = [1000.0]
    monkeypatch.setattr(train.time, "perf_counter", lambda: now[0])
    steps = [(2.0, 2.0), (4.0, 4.0)]
    cost = {"per_px": 1e-6}  # one pass: 0.04 s at x2 (200 x 200), 0.16 s at x4
    # Ensembles: 8 x (0.04 + 0.16) x 1.2 headroom = 1.92 s kept back of 60 s; the rest shared by the two steps.
    stop, ensemble = train._plan_step(FakeTrainer(), steps, 0, now[0] + 60.0, cost)
    assert ensemble and stop - now[0] == pytest.approx((60.0 - 1.92) / 2)
    # With 3 s left the ensembles would take more than half: one pass each, 0.24 s kept back.
    stop, ensemble = train._plan_step(FakeTrainer(), steps, 0, now[0] + 3.0, cost)
    assert not ensemble and stop - now[0] == pytest.approx((3.0 - 0.24) / 2)
