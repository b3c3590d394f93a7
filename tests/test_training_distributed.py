"""Training with torch DDP under torchrun (issue 49, part 3): two CPU processes (gloo) with batch B take the same
steps as one process with batch 2B, and a resumed DDP run continues exactly as a resumed single process does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from engine.jobs import run_job  # noqa: E402
from engine.training import distributed  # noqa: E402
from engine.training.recipes import load_recipe  # noqa: E402
from engine.training.trainer import TrainOptions, train_job  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TORCHRUN = Path(sys.executable).with_name("torchrun")

RECIPE = """
[model]
id = "toy-ddp"
task = "photo-denoise"
arch = "dncnn"
[model.config]
features = 8
depth = 3
[data]
kind = "clean"
train = ["{folder}"]
patch_size = 16
val_crop = 32
val_count = 1
[degradation]
kind = "noise"
sigma = [15.0, 35.0]
[train]
steps = 6
batch_size = {batch}
lr = 1e-2
warmup_steps = 2
val_every = 0
checkpoint_every = 0
amp = "off"
seed = 3
"""


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def toy_images(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        base = np.ones((48, 48, 3), np.float32) * rng.random(3).astype(np.float32)
        base[:, 20 + i :] *= 0.4
        cv2.imwrite(str(folder / f"img{i}.png"), np.clip(base * 255, 0, 255).astype(np.uint8))
    return folder


def write_recipe(path: Path, folder: Path, batch: int) -> Path:
    path.write_text(RECIPE.format(folder=folder.as_posix(), batch=batch), encoding="utf-8")
    return path


def torchrun(recipe: Path, run_dir: Path, steps: int, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [str(TORCHRUN), "--standalone", "--nproc-per-node", "2", str(ROOT / "main.py"), "train", "--recipe",
               str(recipe), "--steps", str(steps), "--run-dir", str(run_dir), "--no-export", "--device", "cpu",
               "--threads", "1", *extra]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    return result


def weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "last.pt", weights_only=True, map_location="cpu")


def max_difference(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_one_process_is_a_world_of_one():
    context = distributed.current()
    assert (context.rank, context.world_size, context.enabled, context.is_main) == (0, 1, False, True)
    batch = ([torch.zeros(4, 3, 2, 2)], torch.arange(4.0), None)
    assert distributed.shard(batch, context) is batch
    two = distributed.Context(rank=1, world_size=2)
    inputs, target, valid = distributed.shard(batch, two)
    assert target.tolist() == [2.0, 3.0] and inputs[0].shape[0] == 2 and valid is None
    assert distributed.all_true(True) and not distributed.all_true(False) and distributed.mean(2.5) == 2.5
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model, "cpu") is model


def test_a_finished_worker_exits_with_its_code_and_its_output_written():
    """exit_process skips the interpreter's teardown (where gloo aborted about one worker exit in ten) but not the
    output: a pipe's buffered text and the log reach the reader, and the code is the run's."""
    code = ("import logging, sys; from engine.training.distributed import exit_process; "
            "logging.basicConfig(stream=sys.stderr); logging.getLogger('x').warning('logged'); "
            "print('buffered', end=''); exit_process(3)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3 and result.stdout == "buffered" and "logged" in result.stderr


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_two_processes_match_one_with_double_batch_and_resume(tmp_path):
    if not TORCHRUN.exists():
        pytest.skip("torchrun is not installed next to this Python")
    folder = toy_images(tmp_path / "toy")
    per_process = write_recipe(tmp_path / "b2.toml", folder, batch=2)
    double = write_recipe(tmp_path / "b4.toml", folder, batch=4)

    # one process, batch 4: 3 steps, then resumed to 6
    single = tmp_path / "single"
    run_job(train_job(load_recipe(str(double)), None, TrainOptions(steps=3, run_dir=single, export=False,
                                                                   device="cpu", threads=1)))
    single_3 = weights(single)
    run_job(train_job(load_recipe(str(double)), None, TrainOptions(steps=6, run_dir=single, export=False,
                                                                   device="cpu", threads=1, resume=True)))
    single_6 = weights(single)

    # two processes, batch 2 each, the same way
    ddp = tmp_path / "ddp"
    first = torchrun(per_process, ddp, 3)
    assert "x 2 processes" in first.stdout and first.stdout.count("trained 3 steps") == 1  # rank 0 speaks
    ddp_3 = weights(ddp)
    torchrun(per_process, ddp, 6, "--resume")
    ddp_6 = weights(ddp)

    assert ddp_3["step"] == 3 and ddp_6["step"] == 6 and ddp_6["skipped"] == 0
    weights_moved = max_difference(single_3["state_dict"], single_6["state_dict"])
    assert weights_moved > 1e-3  # the steps really train
    assert max_difference(ddp_3["state_dict"], single_3["state_dict"]) < 1e-5
    assert max_difference(ddp_6["state_dict"], single_6["state_dict"]) < 1e-5
    ddp_losses = [h["loss"] for h in ddp_6["history"] if "loss" in h]
    single_losses = [h["loss"] for h in single_6["history"] if "loss" in h]
    assert len(ddp_losses) == 6 and ddp_losses == pytest.approx(single_losses, rel=1e-4)

    # the control: one process with the per-process batch (2) takes other steps
    small = tmp_path / "small"
    run_job(train_job(load_recipe(str(per_process)), None, TrainOptions(steps=3, run_dir=small, export=False,
                                                                        device="cpu", threads=1)))
    assert max_difference(weights(small)["state_dict"], ddp_3["state_dict"]) > 100 * 1e-5
