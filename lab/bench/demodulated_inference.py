"""Does running the shipped render denoiser on albedo-demodulated colour keep texture at high sample counts?

    .venv/bin/python lab/bench/demodulated_inference.py [--folder bench/work/cycles_foreign] [--eps 0.02]

For each foreign Cycles scene on disk (bench/cycles_foreign.py renders) and spp: ``render-kprcan-aov`` as shipped,
and the same network given ``colour / (albedo + eps)`` with its result multiplied back by ``albedo + eps`` (no
retraining: the network never saw demodulated input). Prints relMSE and tonemapped PSNR minus the noisy input's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    from bench.render_foreign import foreign_cases
    from engine.imageio import read_image
    from engine.jobs import run_job
    from engine.metrics import relmse, tonemapped_psnr
    from engine.models.registry import ModelRegistry
    from engine.restore import restore_job

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=ROOT / "bench" / "work" / "cycles_foreign")
    parser.add_argument("--eps", type=float, default=0.02)
    args = parser.parse_args(argv)
    entry = ModelRegistry().get("render-kprcan-aov")
    print("| scene | spp | noisy PSNR | as shipped: relMSE / dPSNR | demodulated: relMSE / dPSNR |")
    print("|---|---|---|---|---|")
    for case in foreign_cases(args.folder):
        reference = np.asarray(read_image(case["reference_path"]).pixels)[:, :, :3]
        image = read_image(case["input"])
        albedo = np.asarray(image.layers["albedo"])[:, :, :3] + args.eps
        plain = np.asarray(run_job(restore_job(image, entry, device="cpu")).image.pixels)
        demodulated = image.with_pixels(np.asarray(image.pixels) / albedo)
        remodulated = np.asarray(run_job(restore_job(demodulated, entry, device="cpu")).image.pixels) * albedo
        noisy_psnr = tonemapped_psnr(np.asarray(image.pixels), reference)
        cells = [f"{relmse(out, reference):.5f} / {tonemapped_psnr(out, reference) - noisy_psnr:+.2f}"
                 for out in (plain, remodulated)]
        print(f"| {case['scene']} | {case['spp']} | {noisy_psnr:.2f} | {cells[0]} | {cells[1]} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
