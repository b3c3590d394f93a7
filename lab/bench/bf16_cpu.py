"""Is bf16 autocast worth enabling for CPU training? Speed and accuracy of the same run in fp32 and bf16.

Trains the small photo denoiser recipe (FFDNet-style, 48 features, depth 10) for the same steps from the same
seed with ``amp = "off"`` and ``amp = "bf16"`` and compares seconds per step and validation PSNR (sigma 25, 8
held-out BSDS500_test crops). Also times one training step of the small EDSR x2 model both ways.

    nice -n 10 .venv/bin/python lab/bench/bf16_cpu.py [--steps 400] [--threads 1]

Writes lab/bench/results/bf16_cpu.md and .json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

import numpy as np  # noqa: E402

from engine.jobs import run_job  # noqa: E402
from engine.training.recipes import load_recipe  # noqa: E402
from engine.training.trainer import TrainOptions, train_job  # noqa: E402


def step_time(arch: str, config: dict, shape: tuple, noise_level: bool, amp: bool, repeats: int = 8) -> float:
    import torch

    from engine.training.archs import build_model

    torch.manual_seed(0)
    model = build_model(arch, config)
    optimizer = torch.optim.AdamW(model.parameters())
    inputs = [torch.rand(*shape)] + ([torch.rand(shape[0], 1, 1, 1)] if noise_level else [])
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            output = model(*inputs)
        loss = output.float().abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    times.sort()
    return times[len(times) // 2]


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "lab" / "bench" / "results" / "bf16_cpu"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    recipe = load_recipe(ROOT / "lab" / "recipes" / "photo_denoise_small.toml")
    recipe = recipe.replace(data=replace(recipe.data, max_images=120))
    rows = []
    for amp in ("off", "bf16"):
        run = recipe.replace(train=replace(recipe.train, amp=amp, val_every=0, checkpoint_every=0))
        started = time.perf_counter()
        result = run_job(
            train_job(
                run,
                None,
                TrainOptions(
                    steps=args.steps, export=False, threads=args.threads, run_dir=Path(f"/tmp/bench_bf16_{amp}")
                ),
            )
        )
        losses = [h["loss"] for h in result.history if "loss" in h]
        rows.append(
            {
                "amp": amp,
                "steps": result.steps,
                "seconds": round(time.perf_counter() - started, 1),
                "s_per_step": round(result.seconds / max(1, result.steps), 3),
                "val_psnr": round(result.best_val_psnr, 3),
                "final_loss": round(result.final_loss, 5),
                "mean_loss_last_50": round(float(np.mean(losses[-50:])), 5),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    edsr = {"features": 32, "blocks": 4, "scale": 2}
    timing = {amp: step_time("edsr", edsr, (16, 3, 48, 48), False, amp == "bf16") for amp in ("off", "bf16")}
    from engine.training.archs import build_model
    from engine.training.trainer import build_data, display_space, psnr

    model = build_model(recipe.model.arch, recipe.model.config)
    _, val = build_data(recipe, TrainOptions(), model)
    noisy = sum(
        psnr(display_space(s.inputs["color"], s, "srgb"), display_space(s.target, s, "srgb")) for s in val
    ) / len(val)
    lines = [
        "# bf16 autocast for CPU training",
        "",
        f"Photo denoiser recipe (`lab/recipes/photo_denoise_small.toml`, first 120 images), {args.steps} steps, "
        f"same seed; validation sigma 25 on 8 held-out BSDS500_test crops. CPU: "
        f"{torch.backends.cpu.get_cpu_capability()}, {args.threads} thread(s), machine shared with other jobs "
        "(absolute times are noisy; the ratio is what matters).",
        "",
        f"Noisy input: {noisy:.3f} dB.",
        "",
        "| amp | s / step | val PSNR (dB) | mean loss, last 50 steps |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['amp']} | {r['s_per_step']:.3f} | {r['val_psnr']:.3f} | {r['mean_loss_last_50']:.5f} |" for r in rows
    ]
    lines += [
        "",
        f"EDSR x2 (32 features, 4 blocks), batch 16 of 48 px LR patches, median step: fp32 {timing['off']:.3f} s, "
        f"bf16 {timing['bf16']:.3f} s (x{timing['off'] / timing['bf16']:.2f}).",
        "",
        f"Command: `nice -n 10 .venv/bin/python lab/bench/bf16_cpu.py --steps {args.steps} --threads {args.threads}`",
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    out = Path(args.out)
    out.with_suffix(".md").write_text(table, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "edsr_step_s": timing, "args": vars(args)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
