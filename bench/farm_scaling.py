"""Scaling of the farm paths on this machine: batch restoration (local loop, then Ray with 1, 2, 4 workers) and
DDP training steps per second (1 process vs 2 under torchrun).

    .venv/bin/python bench/farm_scaling.py [--frames 32] [--size 256] [--model photo-denoise-color-fast]
                                           [--workers 1 2 4] [--steps 30]

Batch: ``--frames`` synthetic noisy photos (generated here, never bench data) restored with a shipped model at a
fixed tile, through engine.batch.run_local and engine.ray_batch.run_ray on a Ray head started for the run
(``ray start --head --num-cpus`` = the most workers asked for). Throughput counts from the first finished file to
the last (actor start-up excluded, reported apart). DDP: a small DnCNN on generated images, 1 process with batch B,
1 process with batch 2B (the same work per step as 2 x B) and ``torchrun --nproc-per-node 2`` with B each;
steps/s from the run's own clock (training loop only). Results: bench/results/farm_scaling.md (+ .json), with the
machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# Not this folder: its packaging.py would shadow the `packaging` library that Ray imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
RESULTS = ROOT / "bench" / "results"


def machine() -> dict:
    from engine.runtime import cpu_name

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2),
            "python": sys.version.split()[0]}


def make_frames(folder: Path, count: int, size: int) -> None:
    from engine.image import ImageMeta, make_image
    from engine.imageio import write_image

    folder.mkdir(parents=True)
    ramp = np.linspace(0.1, 0.9, size, dtype=np.float32)
    clean = np.stack([np.add.outer(ramp, ramp) / 2] * 3, axis=2)
    for frame in range(1, count + 1):
        noisy = np.clip(clean + np.random.default_rng(frame).normal(0, 0.08, clean.shape), 0, 1).astype(np.float32)
        write_image(folder / f"f.{frame:04d}.png", make_image(noisy, None, ImageMeta(format="png", bit_depth=8)))


def timed(events) -> dict:
    """Wall clock of a run's events: total, until the first file is done, and files/s after that."""
    start = time.perf_counter()
    first = last = None
    done = 0
    for record in events:
        if record["event"] == "done":
            done += 1
            now = time.perf_counter()
            first = first or now
            last = now
        if record["event"] == "finish" and record["failed"]:
            raise RuntimeError(f"{record['failed']} files failed")
    total = time.perf_counter() - start
    steady = (done - 1) / (last - first) if done > 1 and last > first else None
    return {"files": done, "total_s": round(total, 2), "first_file_s": round(first - start, 2),
            "files_per_s": round(steady, 3) if steady else None}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def batch_scaling(args, work: Path) -> list[dict]:
    from engine.batch import BatchOptions, plan, run_local
    from engine.ray_batch import run_ray

    make_frames(work / "in", args.frames, args.size)
    options = BatchOptions(model_id=args.model, tile=args.tile, device="cpu", overwrite=True)
    from engine import runtime

    rows = []
    for threads in ("", "1"):  # ORT's default pool (all cores), then one thread as each Ray worker gets
        os.environ["RESTORATION_STUDIO_ORT_THREADS"] = threads
        runtime._cache.clear()  # a new session, with that many threads
        label = "ORT default threads" if not threads else "1 ORT thread"
        rows.append({"backend": f"local loop (1 process, {label})",
                     **timed(run_local(plan([str(work / "in")], str(work / f"local{threads}")), options))})
        print(rows[-1], flush=True)
    os.environ.pop("RESTORATION_STUDIO_ORT_THREADS", None)
    ray = Path(sys.executable).with_name("ray")
    temp = tempfile.mkdtemp(prefix="rsbench-", dir="/tmp")
    port = free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    head = subprocess.Popen([str(ray), "start", "--head", "--port", str(port), "--num-cpus", str(max(args.workers)),
                             "--include-dashboard=false", "--temp-dir", temp, "--block", "--disable-usage-stats"],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        time.sleep(3)
        for workers in args.workers:
            out = work / f"ray{workers}"
            items = plan([str(work / "in")], str(out))
            row = timed(run_ray(items, options, f"127.0.0.1:{port}", workers=workers))
            rows.append({"backend": f"Ray, {workers} worker(s), 1 ORT thread each", **row})
            print(rows[-1], flush=True)
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(temp, ignore_errors=True)
    return rows


RECIPE = """
[model]
id = "bench-ddp"
task = "photo-denoise"
arch = "dncnn"
[model.config]
features = 32
depth = 6
[data]
kind = "clean"
train = ["{folder}"]
patch_size = 48
val_crop = 64
val_count = 1
[degradation]
kind = "noise"
sigma = [10.0, 40.0]
[train]
steps = {steps}
batch_size = {batch}
lr = 1e-3
val_every = 0
checkpoint_every = 0
amp = "off"
"""


def ddp_scaling(args, work: Path) -> list[dict]:
    import cv2
    import torch

    folder = work / "train"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        image = (rng.random((160, 160, 3)) * 0.3 + np.linspace(0, 0.7, 160)[None, :, None]).astype(np.float32)
        cv2.imwrite(str(folder / f"t{i}.png"), (image * 255).astype(np.uint8))
    rows = []
    base = args.batch
    runs = [("1 process, batch B", 1, base), ("1 process, batch 2B", 1, 2 * base), ("torchrun 2 processes, B each", 2,
                                                                                    base)]
    for label, processes, batch in runs:
        recipe = work / f"r{processes}_{batch}.toml"
        recipe.write_text(RECIPE.format(folder=folder.as_posix(), steps=args.steps, batch=batch), encoding="utf-8")
        run_dir = work / f"run_{processes}_{batch}"
        train = [str(ROOT / "main.py"), "train", "--recipe", str(recipe), "--run-dir", str(run_dir), "--no-export",
                 "--device", "cpu", "--threads", "1"]
        if processes > 1:
            command = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc-per-node",
                       str(processes), *train]
        else:
            command = [sys.executable, *train]
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
        wall = time.perf_counter() - started
        if result.returncode:
            raise RuntimeError(result.stderr[-2000:])
        state = torch.load(run_dir / "last.pt", weights_only=True)
        steps_per_s = state["step"] / state["elapsed"]
        losses = [h["loss"] for h in state["history"] if "loss" in h]
        rows.append({"run": label, "processes": processes, "batch_per_process": batch,
                     "global_batch": batch * processes, "steps": state["step"],
                     "train_s": round(state["elapsed"], 2), "wall_s": round(wall, 2),
                     "steps_per_s": round(steps_per_s, 3),
                     "samples_per_s": round(steps_per_s * batch * processes, 1),
                     "last_10_mean_loss": round(float(np.mean(losses[-10:])), 4)})
        print(rows[-1], flush=True)
    return rows


def notes(report: dict) -> list[str]:
    """Ratios read off the tables (so the text never disagrees with the figures)."""
    rays = {row["backend"]: row["files_per_s"] for row in report["batch"]["rows"]}
    ray_rates = [(label.split(", ")[1], rate) for label, rate in rays.items() if label.startswith("Ray") and rate]
    ddp = {row["run"]: row for row in report["ddp"]["rows"]}
    single, double = ddp["1 process, batch 2B"], ddp["torchrun 2 processes, B each"]
    out = ["Batch: files/s relative to one Ray worker: "
           + ", ".join(f"{name} {rate / ray_rates[0][1]:.2f}x" for name, rate in ray_rates) + "."]
    out.append("The local loop runs in this script's process with the default thread settings; Ray starts its workers "
               "with OMP_NUM_THREADS=1, which alone makes a run about 1.8x faster on this busy machine (docs/farm.md), "
               "so compare Ray rows with each other.")
    out.append(f"DDP: 2 processes take {double['steps_per_s'] / single['steps_per_s']:.2f}x the steps/s of one process "
               "with the same global batch (the same steps: tests/test_training_distributed.py).")
    return out


def write(report: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "farm_scaling.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    m = report["machine"]
    lines = [
        "# Farm paths: scaling on this machine",
        "",
        f"Command: `{report['command']}`. Machine: {m['cpu']}, {m['cores']} cores, shared with other jobs "
        f"(1-min load average {m['load_1min']} at the start, {report['load_end']} at the end): figures show what a "
        "busy 2-core box gives, not what a farm node would.",
        "",
        f"## Batch restoration ({report['batch']['frames']} frames of {report['batch']['size']} px, "
        f"{report['batch']['model']}, tile {report['batch']['tile']})",
        "",
        "| backend | files | total s | s to first file | files/s after the first |",
        "|---|---|---|---|---|",
    ]
    for row in report["batch"]["rows"]:
        lines.append(f"| {row['backend']} | {row['files']} | {row['total_s']} | {row['first_file_s']} | "
                     f"{row['files_per_s']} |")
    lines += ["", f"## DDP training (DnCNN 32 x 6, patch 48, {report['ddp']['rows'][0]['steps']} steps, gloo, "
              "1 torch thread per process)", "",
              "| run | global batch | steps/s | samples/s | training s | wall s (with start-up) | loss (last 10) |",
              "|---|---|---|---|---|---|---|"]
    for row in report["ddp"]["rows"]:
        lines.append(f"| {row['run']} | {row['global_batch']} | {row['steps_per_s']} | {row['samples_per_s']} | "
                     f"{row['train_s']} | {row['wall_s']} | {row['last_10_mean_loss']} |")
    lines += ["", *notes(report)]
    (RESULTS / "farm_scaling.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--model", default="photo-denoise-color-fast")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--skip-ddp", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    args = parser.parse_args()
    report = {"command": "bench/farm_scaling.py " + " ".join(sys.argv[1:]), "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="farm-bench-") as work:
        work = Path(work)
        if not args.skip_batch:
            report["batch"] = {"frames": args.frames, "size": args.size, "model": args.model, "tile": args.tile,
                               "rows": batch_scaling(args, work)}
        if not args.skip_ddp:
            report["ddp"] = {"rows": ddp_scaling(args, work)}
    report["load_end"] = round(os.getloadavg()[0], 2)
    if "batch" in report and "ddp" in report:
        write(report)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
