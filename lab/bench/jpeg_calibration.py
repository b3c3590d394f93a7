"""Data for calibrating the JPEG noise estimator: raw measurements (``engine.noise_estimate.measure_jpeg``) and the
noise each file really holds, on training photographs with Gaussian noise added (clipped) and saved as JPEG.

    .venv/bin/python lab/bench/jpeg_calibration.py collect [--first 10] [--out lab/bench/results/jpeg_cal.npz]
    .venv/bin/python lab/bench/jpeg_calibration.py fit [--data lab/bench/results/jpeg_cal.npz]

Photos: ``../shared/data/train/SunHays80`` from the ``--first``-th on (sorted by name): the first 10 are left out,
because ``bench/noise_estimate_files.py`` measures the estimator on them. A random 384² crop per photo and sigma,
three random JPEG settings (quality 75-98, 4:2:0 or 4:4:4) each. Truth: the noise the file holds,
``std(jpeg(noisy) - jpeg(clean))``, with the photo's own noise (Chen et al. on the clean crop) counted the same way:
``sqrt(1 + own² / sigma²)`` times that. ``fit`` prints ridge-regression coefficients for
``engine.noise_estimate.JPEG_CALIBRATION`` (a correction of the narrow reading's level, the sigma of the smoothest 3%
of the blocks times the surviving share) and its error, cross-validated by photo (5 folds). The cached measurements
go to an .npz (git-ignored).
"""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data")) / "train" / "SunHays80"
SIGMAS = (3.0, 5.0, 7.0, 10.0, 14.0, 20.0, 28.0, 40.0, 55.0)
QUALITIES = (75, 80, 85, 90, 95, 98)


def jpeg(pixels: np.ndarray, quality: int, subsampling: int) -> np.ndarray:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8)).save(
        buffer, "JPEG", quality=quality, subsampling=subsampling)
    with PILImage.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), np.float32) / 255


def collect(args) -> None:
    from PIL import Image as PILImage

    from engine.noise_estimate import JpegSettings, calibration_features, estimate_noise_level, measure_jpeg

    files = sorted(args.data.glob("*.png"))[args.first:]
    rng = np.random.default_rng(7)
    rows = []
    for number, file in enumerate(files):
        with PILImage.open(file) as photo:
            array = np.asarray(photo.convert("RGB"), np.float32) / 255
        h, w = array.shape[:2]
        c = min(384, h, w) // 16 * 16
        for sigma in SIGMAS:
            top, left = rng.integers(0, h - c + 1) // 16 * 16, rng.integers(0, w - c + 1) // 16 * 16
            clean = np.ascontiguousarray(array[top:top + c, left:left + c])
            own = estimate_noise_level(clean)
            noisy = np.clip(clean + sigma / 255 * rng.standard_normal(clean.shape).astype(np.float32), 0, 1)
            for pick in rng.choice(len(QUALITIES) * 2, 3, replace=False):
                quality, subsampling = QUALITIES[pick // 2], (0, 2)[pick % 2]
                added = 255 * float(np.std(jpeg(noisy, quality, subsampling) - jpeg(clean, quality, subsampling)))
                truth = added * np.sqrt(1 + (own / sigma) ** 2)
                settings = JpegSettings(quality=quality, subsampling=subsampling)
                measured = measure_jpeg(jpeg(noisy, quality, subsampling), settings)
                # The calibration corrects the narrow reading (engine.noise_estimate.JpegMeasurement).
                rows.append([number, sigma, quality, subsampling, truth, measured.narrow_sigma * measured.share,
                             *calibration_features(measured, settings)])
        print(f"{file.name}: {len(rows)} cases", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.out, rows=np.asarray(rows, np.float64))


def fit(args) -> None:
    rows = np.load(args.data)["rows"]
    # A narrow level of about 0: the narrow reading could not measure (the engine uses the wide one there).
    measurable = rows[:, 5] > 0.3
    print(f"{len(rows)} cases, {int((~measurable).sum())} left out (narrow reading could not measure)")
    rows = rows[measurable]
    photo, sigma, quality = rows[:, 0], rows[:, 1], rows[:, 2]
    truth, raw, features = rows[:, 4], rows[:, 5], rows[:, 6:]
    target = np.log(truth) - np.log(np.maximum(raw, 1e-3))

    def solve(x, y, alpha):
        x1 = np.column_stack([x, np.ones(len(x))])
        penalty = alpha * np.eye(x1.shape[1])
        penalty[-1, -1] = 0
        return np.linalg.solve(x1.T @ x1 + penalty, x1.T @ y)

    def predict(coef, x):
        return np.column_stack([x, np.ones(len(x))]) @ coef

    folds = photo.astype(int) % 5
    for alpha in (0.1, 1.0, 10.0, 100.0):
        predicted = np.zeros_like(target)
        for fold in range(5):
            train = folds != fold
            predicted[~train] = predict(solve(features[train], target[train], alpha), features[~train])
        error = np.exp(predicted) * raw / truth - 1
        raw_error = raw / truth - 1
        keep = (quality >= 80) & (sigma >= 5) & (sigma <= 50)
        print(f"alpha {alpha:6g}: cross-validated within 15% {np.mean(np.abs(error[keep]) < 0.15):.3f} "
              f"(raw {np.mean(np.abs(raw_error[keep]) < 0.15):.3f}), mean abs {np.mean(np.abs(error[keep])):.3f} "
              f"(raw {np.mean(np.abs(raw_error[keep])):.3f})")
        for s in SIGMAS:
            m = keep & (sigma == s)
            if m.any():
                print(f"    sigma {s:4g}: within 15% {np.mean(np.abs(error[m]) < 0.15):.2f} "
                      f"(raw {np.mean(np.abs(raw_error[m]) < 0.15):.2f}), mean {np.mean(error[m]):+.3f}")
    coef = solve(features, target, args.alpha)
    print("JPEG_CALIBRATION = (" + ", ".join(f"{v:.4f}" for v in coef) + ")")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("collect", "fit"))
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--first", type=int, default=10)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=ROOT / "lab" / "bench" / "results" / "jpeg_cal.npz")
    args = parser.parse_args(argv)
    if args.step == "collect":
        args.data = args.data or DATA
        collect(args)
    else:
        args.data = args.data or args.out
        fit(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
