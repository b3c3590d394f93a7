"""Photo denoiser weights side by side on held-out photographs, with noise as files hold it: PSNR (RGB, dB) of
torch weights files (a shipped ``.pt``, a run's ``best.pt`` / ``last.pt``) on centre crops of BSDS500_test photos
9-24 (the training recipes validate on the first 8; none of them trains on BSDS500_test), Gaussian noise at each
sigma, then clipped to [0, 1] (as every camera and 8/16-bit file), not clipped (the Kodak24 protocol), or clipped
and saved as JPEG quality 90 4:2:0 (the network told the sigma added, as the app tells it).

    .venv/bin/python lab/bench/photo_clipped_eval.py resources/models/photo-denoise-color.pt RUN/best.pt \
        [--first 9 --count 16 --crop 192 --sigmas 15 25 50]

Used to decide whether a clipped-noise fine-tune ships as the weights for clipped input (issue 45), on photos
that neither chose its checkpoint nor appear in Kodak24, where the issue's target is measured.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data")) / "train" / "BSDS500_test"
CONDITIONS = ("clipped", "unclipped", "jpeg90")


def photos(first: int, count: int, crop: int) -> list[np.ndarray]:
    from engine.imageio import read_image

    names = sorted(p for p in DATA.iterdir() if p.suffix.lower() in (".jpg", ".png"))[first - 1:first - 1 + count]
    out = []
    for path in names:
        pixels = read_image(path).pixels[..., :3]
        h, w = pixels.shape[:2]
        top, left = (h - crop) // 2, (w - crop) // 2
        out.append(np.ascontiguousarray(pixels[top:top + crop, left:left + crop]))
    return out


def noisy(clean: np.ndarray, sigma: float, condition: str, seed: int) -> np.ndarray:
    from engine.training.degradations import jpeg_compress

    rng = np.random.default_rng(seed)
    image = clean + rng.normal(0.0, sigma / 255.0, clean.shape).astype(np.float32)
    if condition == "unclipped":
        return image
    image = np.clip(image, 0.0, 1.0)
    if condition == "jpeg90":
        image = jpeg_compress(image, 90, "420")
    return image.astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="+")
    parser.add_argument("--first", type=int, default=9)
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--crop", type=int, default=192)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[15.0, 25.0, 50.0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    from engine.training.export import load_weights, model_from_weights

    torch.set_num_threads(args.threads)
    images = photos(args.first, args.count, args.crop)
    columns = [(c, s) for c in CONDITIONS for s in args.sigmas]
    inputs = {(c, s): [noisy(x, s, c, 1000 * i + int(s)) for i, x in enumerate(images)] for c, s in columns}
    last = args.first + len(images) - 1
    print(f"BSDS500_test photos {args.first}-{last}, {args.crop} px centre crops; mean PSNR (dB)")
    print("| weights | " + " | ".join(f"{c} σ{s:g}" for c, s in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for path in args.weights:
        model = model_from_weights(load_weights(Path(path)))
        scores = []
        for condition, sigma in columns:
            values = []
            for clean, image in zip(images, inputs[(condition, sigma)], strict=True):
                x = torch.from_numpy(image.transpose(2, 0, 1)[None].copy())
                level = torch.full((1, 1, 1, 1), sigma / 255.0)
                with torch.no_grad():
                    out = model(x, level)[0].numpy().transpose(1, 2, 0)
                values.append(psnr(np.clip(out, 0.0, 1.0) if condition != "unclipped" else out, clean))
            scores.append(float(np.mean(values)))
        print(f"| {path} | " + " | ".join(f"{v:.3f}" for v in scores) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
