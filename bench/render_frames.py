"""Time and peak memory of the render denoiser on full-size frames (what a 3D artist feeds it), by tile size
(or of a photo model on a synthetic photo of that size: ``--model photo-denoise-color-fast``).

bench/render.py times 256 px crops, one tile each; a 1080p or 4K frame is cut into tiles whose overlaps the model
computes twice, and ONNX Runtime's memory grows with the tile. This script builds a frame by tiling the Cornell
box's 4-spp colour, albedo and normal (``../shared/bench/renders/cbox256``) and restores it through the app's
restore job in a fresh child process per setting, which reports its wall time, the tiles it ran and its peak
resident memory (``ru_maxrss``).

    nice -n 10 .venv/bin/python bench/render_frames.py [--sizes 1920x1080,3840x2160] [--tiles 512,1024,0]
        [--model render-kprcan-aov,oidn-aov,render-kprcan-aov@DIR] [--code DIR] [--label TEXT]

``--model`` takes several ids, each run in turn in the same session (so beside OIDN on the same load); ``ID@DIR``
takes the model from the models folder DIR instead of the bundled one (e.g. a re-export with another graph form);
``ID:graph`` runs a render model's whole ONNX graph instead of its fused CPU kernel stage (engine/kernel_pipeline.py).
``--repeat N`` runs the whole list N times, interleaved, so that a busy moment of a shared machine hits every row.
``--runs N`` restores the frame N times in each child: the seconds column gives the first run (a fresh process, as
``restore`` on one file) and then the later ones (warm: ONNX Runtime's sessions built, memory already mapped, as in
the window or over a shot's frames); the peak memory is over all runs.

``--code DIR`` runs the children on another checkout (e.g. a worktree of an older commit) for a before / after
table; ``--label`` names the rows. Rows are appended to bench/results/render_frames.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CBOX = ROOT.parent / "shared" / "bench" / "renders" / "cbox256"

CHILD = r"""
import json, os, resource, sys, time
code, cbox, model_id, width, height, tile, models, runs = sys.argv[1:9]
import numpy as np
from pathlib import Path
from engine.image import make_image
from engine.imageio import read_image
from engine.jobs import run_job
from engine.models.registry import ModelRegistry
from engine.restore import restore_job
width, height, tile = int(width), int(height), int(tile)
entry = ModelRegistry([(Path(models or Path(code) / "resources" / "models"), "bundled")]).get(model_id)  # or OIDN
if entry.manifest.task == "render-denoise":
    crop = read_image(Path(cbox) / "cbox_256_spp00004_color.exr")
    reps = (-(-height // crop.height), -(-width // crop.width), 1)
    frame = lambda a: np.ascontiguousarray(np.tile(a, reps)[:height, :width])
    image = make_image(frame(crop.pixels), meta=crop.meta, layers={k: frame(v) for k, v in crop.layers.items()})
else:  # a photo model: a synthetic 8-bit photo of that size (mid-gray noise; speed and memory only)
    from engine.image import ImageMeta
    pixels = 0.4 + 0.2 * np.random.default_rng(0).random((height, width, 3), dtype=np.float32)
    image = make_image(pixels, meta=ImageMeta(format="png", bit_depth=8, sample_type="uint", hdr=False,
                                              color_space="srgb"))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tiles = [0]
def count_tiles(update):
    tiles[0] = max(tiles[0], int((update.metrics or {}).get("tiles", 1)))
times = []
for _ in range(int(runs)):  # the first run in a fresh process, then the same frame again in it (warm)
    result = None  # the previous run's output is not kept while the next one runs
    start = time.perf_counter()
    result = run_job(restore_job(image, entry, tile=None if tile < 0 else tile, device="cpu"), count_tiles)
    times.append(time.perf_counter() - start)
print(json.dumps({"seconds": times[0], "warm": times[1:], "tiles": tiles[0], "tile": result.details["tile"],
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                  "before_gb": before / 1e6}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1920x1080")
    parser.add_argument("--tiles", default="512,1024,0",
                        help="tile edges; -1 = the model's default, 0 = automatic (memory-sized)")
    parser.add_argument("--model", default="render-kprcan-aov", help="a bundled model id, or oidn-aov / oidn")
    parser.add_argument("--code", default=str(ROOT), help="the checkout whose engine the children run")
    parser.add_argument("--label", default="")
    parser.add_argument("--cbox", default=str(CBOX), help="the Cornell box renders the frame is tiled from")
    parser.add_argument("--repeat", type=int, default=1, help="run the list this many times, interleaved")
    parser.add_argument("--runs", type=int, default=1, help="restore the frame this many times in each child")
    args = parser.parse_args()
    code = Path(args.code).resolve()
    label = args.label or subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"],
                                         capture_output=True, text=True).stdout.strip()
    rows = []
    runs = [(s, m) for s in args.sizes.split(",") for m in args.model.split(",")] * max(1, args.repeat)
    for size, model in runs:
        spec, _, stage = model.partition(":")
        model_id, _, models = spec.partition("@")
        env = dict(os.environ, RESTORATION_STUDIO_KERNEL_STAGE=stage) if stage else None
        width, height = (int(v) for v in size.split("x"))
        for tile in (int(t) for t in args.tiles.split(",")):
            out = subprocess.run([sys.executable, "-c", CHILD, str(code), args.cbox, model_id, str(width),
                                  str(height), str(tile), str(Path(models).resolve()) if models else "",
                                  str(max(1, args.runs))],
                                 capture_output=True, text=True, env=env)
            if out.returncode:
                print(out.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"{size} tile {tile}: the child failed")
            record = json.loads(out.stdout.strip().splitlines()[-1])
            megapixels = width * height / 1e6
            warm = "".join(f", {t:.2f}" for t in record["warm"])
            seconds = f"{record['seconds']:.2f}; warm {warm[2:]}" if warm else f"{record['seconds']:.1f}"
            row = (f"| {label} | {model} | {size} | {'default' if tile < 0 else tile or 'auto'} "
                   f"({record['tile'] or 'whole'}) | {record['tiles']} | {seconds} | "
                   f"{record['seconds'] / megapixels:.2f} | {record['peak_gb']:.2f} |")
            print(row, flush=True)
            rows.append(row)
    results = ROOT / "bench" / "results" / "render_frames.md"
    if not results.exists():
        results.write_text("# Render denoiser on full-size frames (bench/render_frames.py)\n\n"
                           "| code | model | frame | tile asked (used) | tiles | seconds | s/MP | peak RSS GB |\n"
                           "|---|---|---|---|---|---|---|---|\n", encoding="utf-8")
    with results.open("a", encoding="utf-8") as handle:
        handle.write(f"<!-- {time.strftime('%Y-%m-%d %H:%M')} -->\n" + "\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
