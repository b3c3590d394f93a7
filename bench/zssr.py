"""ZSSR on Set5 (x2, x4) with the protocol of ../shared/bench/PROTOCOL.md: bicubic and each preset.

    .venv/bin/python bench/zssr.py --scales 2 4 --methods bicubic fast          # runs, appends records
    .venv/bin/python bench/zssr.py --report                                     # table only

Each finished image appends one JSON line to ``bench/results/zssr_records.jsonl`` (so long runs in the
background keep what they finished); ``--report`` (also run at the end of every run) builds
``bench/results/zssr.md`` and ``zssr.json`` from the newest record per (method, scale, image).

Protocol: input ``_LR.png``, target ``_HR.png``; Y of ITU-R BT.601 as MATLAB ``rgb2ycbcr`` on uint8 (so Y is
rounded to an integer, as MATLAB returns uint8), output rounded to uint8 first, ``k`` pixels cropped off
every border. Bicubic = MATLAB-style antialiased imresize (engine.zssr.kernels), which gives 33.65 / 28.42.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

# Idle OpenMP threads must sleep, not spin, on a shared machine (see engine/zssr/train.py: import_torch).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]

SET5 = Path(os.environ.get("SET5_DIR", ROOT.parent / "shared" / "bench" / "sr" / "Set5"))
RESULTS = ROOT / "bench" / "results"
RECORDS = RESULTS / "zssr_records.jsonl"
PAPER = {2: 37.37, 3: 33.42, 4: 31.13}
BICUBIC_PUBLISHED = {2: 33.65, 3: 30.39, 4: 28.42}


def read_rgb(path: Path) -> np.ndarray:
    from PIL import Image as PILImage

    with PILImage.open(path) as handle:
        return np.asarray(handle.convert("RGB"), dtype=np.float32) / 255.0


def psnr_y(output: np.ndarray, target: np.ndarray, k: int) -> float:
    """The Set5 protocol (engine.metrics.psnr_y_sr) on [0, 1] float images, rounded to uint8 first."""
    from engine.metrics import psnr_y_sr

    def to_uint8(values: np.ndarray) -> np.ndarray:
        return np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)

    return psnr_y_sr(to_uint8(output), to_uint8(target), k)


def pair(k: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    folder = SET5 / f"image_SRF_{k}"
    return read_rgb(folder / f"img_{index:03d}_SRF_{k}_LR.png"), read_rgb(folder / f"img_{index:03d}_SRF_{k}_HR.png")


def run_one(method: str, k: int, index: int, seconds: float | None, seed: int) -> dict:
    from engine.image import make_image
    from engine.jobs import CancelToken, run_job
    from engine.zssr import preset_request, zssr_job
    from engine.zssr.kernels import imresize

    lr, hr = pair(k, index)
    start = time.perf_counter()
    cpu_start = time.process_time()
    record: dict = {"method": method, "scale": k, "image": index}
    if method == "bicubic":
        output = imresize(lr, float(k), out_shape=hr.shape[:2])
        record["device"] = "CPU (numpy)"
    else:
        # no previews: nobody looks at them here, and each costs a full forward pass
        preset, _, variant = method.partition("-")
        extra = {"bf16": variant == "bf16"} if variant in ("fp32", "bf16") else {}
        if variant.startswith("steps"):  # e.g. paper-steps6: six geometric gradual steps
            extra = {"gradual_steps": int(variant[5:])}
        request = preset_request(preset, float(k), seed=seed, seconds=seconds, preview_every_s=1e9, **extra)
        def log(progress) -> None:  # a heartbeat for long background runs
            it = progress.metrics.get("iteration")
            if it is not None and int(it) % 100 == 0 and progress.stage.startswith("train"):
                print(f"  x{k} img{index}: {progress.message}", file=sys.stderr, flush=True)

        result = run_job(zssr_job(make_image(lr), request, CancelToken()), log)
        output = np.asarray(result.image.pixels)
        record["device"] = result.device
        record["iterations"] = result.details["iterations"]
        record["seconds_per_iteration"] = result.details["seconds_per_iteration"]
        record["step_seconds"] = result.details["step_seconds"]
        record["seconds_budget"] = seconds
    if output.shape != hr.shape:
        raise SystemExit(f"shape mismatch {output.shape} vs {hr.shape}")
    record["seconds"] = time.perf_counter() - start
    # CPU seconds (all threads): on a machine shared with other jobs this, divided by the thread count, is
    # closer to what the run costs on an idle machine than the wall time is.
    record["cpu_seconds"] = time.process_time() - cpu_start
    record["psnr"] = psnr_y(output, hr, k)
    record["host"] = platform.node()
    record["when"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return record


def speed(peak_gflops: float) -> str:
    """Seconds per training iteration and per ensemble pass, by layout and precision, vs the CPU's peak."""
    import torch

    from engine.zssr import preset_request
    from engine.zssr.net import flops_per_pixel
    from engine.zssr.train import ZssrTrainer

    x = np.random.default_rng(0).random((256, 256, 3)).astype(np.float32)
    lines = ["| what | layout | precision | wall s | CPU s (all threads) | GFLOP | GFLOP/s (wall) | "
             "GFLOP per CPU-second | of the peak per CPU-second |", "|---|---|---|---|---|---|---|---|---|"]
    threads = torch.get_num_threads()
    rows = []
    for crop in (128, 64):
        for channels_last in (True, False):
            for bf16 in (False, True):
                trainer = ZssrTrainer(x, preset_request("paper", 2.0, crop_size=crop, bf16=bf16), None,
                                      torch.device("cpu"))
                if not channels_last:
                    trainer.channels_last = False
                    trainer.net = trainer.net.to(memory_format=torch.contiguous_format)
                trainer.start_step((2.0, 2.0))
                for _ in range(2):
                    trainer.train_iteration()
                n = 6
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(n):
                    trainer.train_iteration()
                wall, cpu = (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n
                gflop = crop * crop * flops_per_pixel(3) * 3 / 1e9  # forward + backward ~ 3 forwards
                rows.append((f"train step, crop {crop}", channels_last, bf16, wall, cpu, gflop))
    for channels_last in (True, False):
        trainer = ZssrTrainer(x, preset_request("paper", 2.0), None, torch.device("cpu"))
        if not channels_last:
            trainer.channels_last = False
            trainer.net = trainer.net.to(memory_format=torch.contiguous_format)
        trainer.start_step((2.0, 2.0))
        trainer.forward(trainer.input, (512, 512))
        wall, cpu = time.perf_counter(), time.process_time()
        trainer.forward(trainer.input, (512, 512))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rows.append(("inference 256->512 (1 of 8 ensemble passes)", channels_last, False, wall, cpu,
                     512 * 512 * flops_per_pixel(3) / 1e9))
    for what, channels_last, bf16, wall, cpu, gflop in rows:
        per_core = gflop / cpu
        lines.append(f"| {what} | {'channels_last' if channels_last else 'NCHW'} | {'bf16' if bf16 else 'fp32'} "
                     f"| {wall:.3f} | {cpu:.3f} | {gflop:.1f} | {gflop / wall:.0f} | {per_core:.0f} | "
                     f"{per_core / peak_gflops:.0%} |")
    text = (f"# ZSSR speed on this CPU ({threads} threads; peak per core taken as {peak_gflops:.0f} GFLOP/s fp32)\n\n"
            + "\n".join(lines) + "\n\nFLOPs count the convolutions only (2 x multiply-adds; training = 3x forward)."
            " The machine was shared with other jobs (load 10-18 on 2 cores): wall times are inflated;"
            " GFLOP per CPU-second is the throughput of one busy core, compared with the peak given.\n")
    (RESULTS / "zssr_speed.md").write_text(text, encoding="utf-8")
    return text


def label(rec: dict) -> str:
    """The table row of a record: the method, what the Paper preset did when it ran, and GPU runs apart."""
    from engine.zssr.config import PAPER_GRADUAL_STEPS

    method, scale, steps = rec["method"], rec["scale"], len(rec.get("step_seconds", []))
    if method.startswith("paper-steps"):  # an explicit step count: "paper" where it is what the preset does now
        preset = scale > 2 and int(method[len("paper-steps"):]) == PAPER_GRADUAL_STEPS
        method = "paper" if preset else f"paper ({steps} steps)"
    elif method.startswith("paper") and scale == 2 and steps == 1:
        method += " (one jump)"  # before the Paper preset followed the reference's six-step x2 schedule
    elif method.startswith("paper") and scale > 2 and steps == 2:
        method += " (two steps)"  # before the Paper preset took six gradual steps above x2
    if str(rec.get("device", "")).startswith("CUDA"):
        method += ", GPU"
    return method


def report() -> str:
    records: dict[tuple[str, int, int], dict] = {}
    if RECORDS.exists():
        for line in RECORDS.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                records[(label(rec), rec["scale"], rec["image"])] = rec
    order = ("bicubic", "fast", "fast-bf16", "real", "paper (one jump)", "paper (two steps)", "paper", "paper-bf16")
    order = tuple(m for base in order for m in (base, base + ", GPU"))
    methods = [m for m in order if any(key[0] == m for key in records)]
    scales = sorted({key[1] for key in records})
    lines = [
        "# ZSSR on Set5 (PSNR on Y, dB; protocol of PROTOCOL.md; wall time on this machine)",
        "",
        "| method | scale | img1 | img2 | img3 | img4 | img5 | mean | reference | wall s/image | CPU s/image "
        "| iterations | wall s/iter |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    table = []
    for method in methods:
        for k in scales:
            recs = [records.get((method, k, i)) for i in range(1, 6)]
            done = [r for r in recs if r]
            if not done:
                continue
            cells = [f"{r['psnr']:.2f}" if r else "–" for r in recs]
            mean = float(np.mean([r["psnr"] for r in done]))
            mean_cell = f"{mean:.2f}" + ("" if len(done) == 5 else f" ({len(done)}/5)")
            ref = BICUBIC_PUBLISHED[k] if method == "bicubic" else PAPER[k]
            secs = float(np.mean([r["seconds"] for r in done]))
            cpus = [r["cpu_seconds"] for r in done if "cpu_seconds" in r]
            cpu_cell = f"{np.mean(cpus):.0f}" if cpus else "–"
            iters = [r.get("iterations") for r in done if r.get("iterations") is not None]
            spi = [r.get("seconds_per_iteration") for r in done if r.get("seconds_per_iteration")]
            lines.append(
                f"| {method} | x{k} | " + " | ".join(cells) + f" | {mean_cell} | {ref:.2f} | {secs:.1f} | {cpu_cell} | "
                + (f"{np.mean(iters):.0f}" if iters else "–") + " | "
                + (f"{np.mean(spi):.3f}" if spi else "–") + " |"
            )
            table.append({"method": method, "scale": k, "psnr": [r["psnr"] if r else None for r in recs],
                          "mean": mean, "images_done": len(done), "reference": ref, "seconds_per_image": secs,
                          "device": max({r.get("device", "") for r in done},
                                        key=lambda d: sum(r.get("device") == d for r in done))})
    devices = sorted({r.get("device", "") for r in records.values()})
    lines += ["", "Devices: " + "; ".join(devices), "",
              "s/image includes the 8-way ensemble and back-projection; s/iter = training seconds / iterations "
              "(the machine is shared with other jobs, so wall times are upper bounds). GPU rows ran five images at a "
              "time on one H200 beside two training runs, so their wall times are upper bounds too."]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "zssr.md").write_text(text, encoding="utf-8")
    (RESULTS / "zssr.json").write_text(json.dumps({"table": table, "records": list(records.values())}, indent=1),
                                       encoding="utf-8")
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--methods", nargs="+", default=["bicubic", "fast"])
    parser.add_argument("--images", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--seconds", type=float, default=None, help="wall-clock budget per image (ZSSR)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--records", type=Path, default=RECORDS, help="append the records here (default: %(default)s)")
    parser.add_argument("--report", action="store_true", help="only rebuild the table from the records")
    parser.add_argument("--speed", action="store_true", help="measure seconds per iteration / per pass only")
    parser.add_argument("--peak", type=float, default=166.0, help="the CPU's fp32 peak in GFLOP/s")
    args = parser.parse_args()
    if args.speed:
        print(speed(args.peak))
        return 0
    if not args.report:
        RESULTS.mkdir(parents=True, exist_ok=True)
        for method in args.methods:
            for k in args.scales:
                for index in args.images:
                    rec = run_one(method, k, index, args.seconds, args.seed)
                    print(json.dumps({key: rec[key] for key in ("method", "scale", "image", "psnr", "seconds")}),
                          flush=True)
                    with open(args.records, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(rec) + "\n")
    print(report())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    raise SystemExit(main())
