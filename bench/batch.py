"""Images per second for many small images: 1 worker (all cores to one session) against N workers (a session each).

    .venv/bin/python bench/batch.py [--workers 1,2] [--count 16] [--pairs 3] [--kind document|photo]

Generates ``--count`` small images (540 x 420 gray pages through document-restormer-tiny, or 640 x 480 photos
through photo-denoise-color-fast at noise level 15; nothing from benchmark data), then restores them all with
engine.batch.restore_files (reading, restoring, writing), once per worker count in turn, ``--pairs`` times
(1 2 1 2 ...), each time in a fresh child process whose sessions are warmed on one image first. Reports the
median images per second (wall) and CPU seconds per image, and the ratios against the first worker count pair by
pair. Writes bench/results/batch.md (+ .json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

KINDS = {"document": ("document-restormer-tiny", {}), "photo": ("photo-denoise-color-fast", {"noise_level": 15.0})}

CHILD = """
import json, resource, sys, time
from pathlib import Path
from engine.inflight import restore_files
from engine.models.registry import ModelRegistry
folder, workers, model, params = Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4], json.loads(sys.argv[5])
sources = sorted((folder / "in").glob("*.png"))
entry = ModelRegistry().get(model)
out = folder / f"out-{workers}"
out.mkdir(exist_ok=True)
plan = lambda image, source: (entry, params, out / source.name)
restore_files(sources[:workers], plan, workers=workers)  # warm-up: each worker's session is built
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu, started = usage.ru_utime + usage.ru_stime, time.perf_counter()
results = restore_files(sources, plan, workers=workers)
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
assert all(r.ok for r in results), [r.error for r in results if not r.ok]
print(json.dumps({"images": len(results), "wall": wall, "cpu": usage.ru_utime + usage.ru_stime - cpu}))
"""


def make_inputs(folder: Path, kind: str, count: int) -> None:
    from engine.image import ImageMeta, make_image
    from engine.imageio import write_image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        if kind == "document":
            page = np.ones((420, 540), np.float32)
            for top in range(30 + index % 7, 390, 21):
                page[top : top + 8, 40:500] = np.where(rng.random((8, 460)) < 0.4, 0.12, 1.0)
            page *= 0.82 + 0.12 * rng.random((420, 540))
            write_image(folder / f"{index:03d}.png", make_image(page[:, :, None], meta=ImageMeta(gray=True)))
        else:
            base = np.linspace(0, 1, 640)[None, :, None] * np.linspace(0.3, 1, 480)[:, None, None]
            photo = np.clip(base * rng.random(3) + rng.normal(0, 15 / 255, (480, 640, 3)), 0, 1)
            write_image(folder / f"{index:03d}.png", make_image(photo.astype(np.float32)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--kind", choices=tuple(KINDS), default="document")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    model, params = KINDS[args.kind]
    runs: dict[int, list[dict]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory(prefix="rs-batch-") as scratch:
        folder = Path(scratch)
        make_inputs(folder / "in", args.kind, args.count)
        env = {**os.environ, "RESTORATION_STUDIO_HOME": str(folder / "home")}
        for _ in range(args.pairs):
            for workers in counts:
                done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(folder), str(workers), model,
                                       json.dumps(params)], capture_output=True, text=True, env=env, check=True,
                                      cwd=ROOT)
                runs[workers].append(json.loads(done.stdout.strip().splitlines()[-1]))
    first = counts[0]
    rows = {}
    for workers in counts:
        per_second = [r["images"] / r["wall"] for r in runs[workers]]
        cpu_each = [r["cpu"] / r["images"] for r in runs[workers]]
        speedups = [r["wall"] and b["wall"] / r["wall"] for r, b in zip(runs[workers], runs[first], strict=True)]
        cpu_ratios = [(r["cpu"] / r["images"]) / (b["cpu"] / b["images"])
                      for r, b in zip(runs[workers], runs[first], strict=True)]
        rows[workers] = {"images_per_s": round(statistics.median(per_second), 3),
                         "cpu_s_per_image": round(statistics.median(cpu_each), 3),
                         "throughput_ratio": round(statistics.median(speedups), 3),
                         "cpu_ratio": round(statistics.median(cpu_ratios), 3), "runs": runs[workers]}
    lines = [f"| workers | images/s (median) | CPU s per image | images/s vs {first} worker(s) | CPU per image vs "
             f"{first} |", "|---|---|---|---|---|"]
    for workers, row in rows.items():
        lines.append(f"| {workers} | {row['images_per_s']:.2f} | {row['cpu_s_per_image']:.3f} | "
                     f"{row['throughput_ratio']:.2f} | {row['cpu_ratio']:.2f} |")
    table = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "batch.md").write_text(
        "# Many small images: workers in flight\n\n"
        f"`bench/batch.py {' '.join(sys.argv[1:])}`: {args.count} generated {args.kind} images through {model}, "
        f"{args.pairs} runs per worker count in turn, medians (ratios pair by pair), on a shared "
        f"{os.cpu_count()}-thread machine busy with other work.\n\n" + table, encoding="utf-8")
    (RESULTS / "batch.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
