"""Peak memory of `main.py restore` on a 40-megapixel photo (the promise: well under 2 GB).

    .venv/bin/python bench/memory_40mp.py [--model nlm] [--megapixels 40] [--format png]

Generates a synthetic 8-bit RGB test image (gradients, edges and noise; no benchmark data), runs the real
command line on it in a child process, and reports the child's peak resident set size and wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def make_test_image(path: Path, megapixels: float) -> tuple[int, int]:
    import cv2

    width = int((megapixels * 1e6 * 1.5) ** 0.5)
    height = int(megapixels * 1e6 / width)
    rng = np.random.default_rng(0)
    row = np.linspace(0, 255, width, dtype=np.float32)
    image = np.empty((height, width, 3), np.uint8)
    for start in range(0, height, 512):  # built in bands so the generator itself stays small
        stop = min(height, start + 512)
        band = np.broadcast_to(row, (stop - start, width))[:, :, None].repeat(3, axis=2).copy()
        band[:, :, 1] = (np.arange(start, stop, dtype=np.float32)[:, None] * 255 / height)
        band[:, ::97] = 255 - band[:, ::97]
        band += rng.normal(0, 12, band.shape).astype(np.float32)
        image[start:stop] = np.clip(band, 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), image)
    return width, height


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="nlm")
    parser.add_argument("--megapixels", type=float, default=40.0)
    parser.add_argument("--format", default="png", choices=("png", "tiff", "jpg"))
    parser.add_argument("--tile", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / f"input.{args.format}"
        width, height = make_test_image(source, args.megapixels)
        target = Path(folder) / f"output.{args.format}"
        command = [sys.executable, str(ROOT / "main.py"), "restore", str(source), "-o", str(target)]
        command += ["--model", args.model]
        if args.tile is not None:
            command += ["--tile", str(args.tile)]
        started = time.perf_counter()
        completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        if completed.returncode != 0:
            print(completed.stderr, file=sys.stderr)
            return 1
        ok = target.exists()
    row = {
        "model": args.model,
        "image": f"{width}x{height} ({width * height / 1e6:.1f} MP, 8-bit RGB {args.format})",
        "peak_rss_mib": round(peak_mib),
        "seconds": round(seconds, 1),
        "output_written": ok,
        "cpu": os.cpu_count(),
    }
    table = (
        "| model | image | peak RSS (MiB) | wall time (s) |\n|---|---|---|---|\n"
        f"| {row['model']} | {row['image']} | {row['peak_rss_mib']} | {row['seconds']} |\n"
    )
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"memory_40mp_{args.model}"
    (RESULTS / f"{name}.md").write_text(
        f"# Peak memory of `main.py restore` on a large image\n\nCommand: `{' '.join(sys.argv)}`\n\n{table}",
        encoding="utf-8",
    )
    (RESULTS / f"{name}.json").write_text(json.dumps(row, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
