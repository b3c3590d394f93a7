"""What level to tell a denoiser for a noisy JPEG: the noise the file still holds, or the sigma before compression?

    .venv/bin/python lab/bench/jpeg_noise_level.py [--images 3 19] [--sigma 25] [--quality 90] \
        [--model photo-denoise-color]

Kodak24 crops (top-left 384x256 of the named images; ``KODAK24_DIR`` overrides the folder) with Gaussian noise
(clipped), saved as JPEG (4:2:0), measured by ``engine.noise_estimate.measure_noise``, then denoised by the model
told each candidate level. Prints RGB PSNR against the clean crop (dB).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
KODAK = Path(os.environ.get("KODAK24_DIR", ROOT.parent / "shared" / "bench" / "denoise" / "Kodak24"))


def main(argv: list[str] | None = None) -> int:
    from PIL import Image as PILImage

    from engine.imageio import read_image
    from engine.jobs import run_job
    from engine.metrics import psnr
    from engine.models.registry import ModelRegistry
    from engine.noise_estimate import measure_noise
    from engine.restore import restore_job

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[3, 19])
    parser.add_argument("--sigma", type=float, default=25.0)
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--model", default="photo-denoise-color")
    args = parser.parse_args(argv)
    entry = ModelRegistry().get(args.model)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "noisy.jpg"
        for index in args.images:
            with PILImage.open(KODAK / f"kodim{index:02d}.png") as photo:
                clean = np.asarray(photo.convert("RGB"), np.float32)[:256, :384] / 255.0
            noise = np.random.default_rng(index).standard_normal(clean.shape)
            noisy = np.clip(clean + args.sigma / 255.0 * noise, 0.0, 1.0)
            PILImage.fromarray(np.rint(noisy * 255.0).astype(np.uint8)).save(path, quality=args.quality, subsampling=2)
            image = read_image(path)
            estimate = measure_noise(image)
            row = [f"kodim{index:02d} crop, σ{args.sigma:g} q{args.quality} 4:2:0: "
                   f"input {psnr(image.pixels, clean):.2f} dB"]
            for name, level in (("noise left", estimate.level), ("sigma before", estimate.sigma_before_compression),
                                ("true sigma", args.sigma)):
                result = run_job(restore_job(image, entry, {"noise_level": float(level)}, device="cpu"), lambda p: None)
                row.append(f"told {name} {level:.1f}: {psnr(np.clip(result.image.pixels, 0, 1), clean):.2f} dB")
            print("; ".join(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
