"""The Quality setting: what 4 and 8 passes (geometric self-ensemble, engine/ensemble.py) buy, and what they cost.

Every method runs through the app's restore job with ``ensemble`` = 1, 4 and 8, side by side in one run, on
each task's benchmark data (PROTOCOL.md):

- render denoise: the held-out generated scenes of bench/render.py (seeds 90000+; rendered there when missing)
  and cbox256, at 4 and 16 spp, relMSE (lower is better); our models next to OIDN, which gets the same passes;
- photo denoise: the first ``--kodak`` Kodak24 images at sigma 25, RGB PSNR;
- super-resolution: Set5 at x2 and x4, Y PSNR.

    nice -n 10 .venv/bin/python bench/ensemble.py [--tasks render,photo,sr] [--kodak 4]
    .venv/bin/python bench/ensemble.py --report      # rebuild the tables from bench/results/ensemble.json

Time is the sum of the restore jobs' wall time over a method's cases, as a ratio to its one-pass time.
Prints markdown tables and writes bench/results/ensemble.md and .json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from engine.image import make_image  # noqa: E402
from engine.imageio import read_image  # noqa: E402
from engine.jobs import run_job  # noqa: E402
from engine.metrics import relmse  # noqa: E402
from engine.restore import restore_job  # noqa: E402

PASSES = (1, 4, 8)


def restored(image, entry, params: dict, passes: int) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    result = run_job(restore_job(image, entry, params, device="cpu", ensemble=passes))
    return np.asarray(result.image.pixels), time.perf_counter() - started


def render_rows(scenes_dir: Path) -> list[dict]:
    import render

    render.ensure_scenes(scenes_dir)
    cases = [c for c in render.cbox_cases() + render.generated_cases(scenes_dir) if c["spp"] in (4, 16)]
    images = {str(c["input"]): read_image(c["input"]) for c in cases}
    rows = []
    for entry in render.methods([], with_oidn=True):
        restored(images[str(cases[0]["input"])], entry, {}, 1)  # warm-up: session / device creation
        for passes in PASSES:
            scores: dict[tuple[str, int], list[float]] = {}
            seconds = 0.0
            for case in cases:
                image = images[str(case["input"])]
                if any(n != "color" and n not in image.layers for n in entry.manifest.inputs):
                    continue
                out, spent = restored(image, entry, {}, passes)
                seconds += spent
                scores.setdefault((case["set"], case["spp"]), []).append(relmse(out, case["reference"]))
            if scores:
                rows.append({"task": "render", "method": entry.id, "passes": passes, "seconds": seconds,
                             "scores": {f"{s} {n} spp": float(np.mean(v)) for (s, n), v in sorted(scores.items())}})
            print(f"{entry.id} x{passes}: {rows[-1]['scores'] if scores else '-'}", file=sys.stderr)
    return rows


def photo_rows(images: int) -> list[dict]:
    import denoise

    registry = denoise.build_registry([])
    cases = []  # (clean, noisy image), read and made once for every model and pass count
    for index in range(1, images + 1):
        clean = denoise.read_clean(index)
        cases.append((clean, make_image(denoise.noisy_version(clean, 25, index))))
    rows = []
    for entry in registry.models("photo-denoise"):
        if entry.manifest.engine != "onnx" or entry.source != "bundled":
            continue
        takes_level = any(p.name == "noise_level" for p in entry.manifest.params)
        params = {"noise_level": 25.0} if takes_level else {}
        for passes in PASSES:
            psnrs, seconds = [], 0.0
            for clean, noisy in cases:
                out, spent = restored(noisy, entry, params, passes)
                seconds += spent
                psnrs.append(denoise.psnr_uint8(out, clean))
            rows.append({"task": "photo", "method": entry.id, "passes": passes, "seconds": seconds,
                         "scores": {f"Kodak24 1-{images} σ25 PSNR": float(np.mean(psnrs))}})
            print(f"{entry.id} x{passes}: {rows[-1]['scores']}", file=sys.stderr)
    return rows


def sr_rows() -> list[dict]:
    import denoise
    import sr

    from engine.metrics import psnr_y_sr

    registry = denoise.build_registry([])
    rows = []
    for model_id, scale in (("sr-x2", 2), ("sr-x4", 4)):
        if model_id not in registry:
            continue
        entry = registry.get(model_id)
        pairs = [sr.pair(scale, index) for index in range(1, 6)]
        pairs = [(make_image(low.astype(np.float32) / 255.0), high) for low, high in pairs]
        for passes in PASSES:
            psnrs, seconds = [], 0.0
            for low, high in pairs:
                out, spent = restored(low, entry, {}, passes)
                seconds += spent
                psnrs.append(psnr_y_sr(sr.to_uint8(out), high, scale))
            rows.append({"task": "sr", "method": model_id, "passes": passes, "seconds": seconds,
                         "scores": {f"Set5 x{scale} Y-PSNR": float(np.mean(psnrs))}})
            print(f"{model_id} x{passes}: {rows[-1]['scores']}", file=sys.stderr)
    return rows


def table(rows: list[dict]) -> str:
    lines = []
    titles = {"render": "Render denoising: relMSE (lower is better)", "photo": "Photo denoising: PSNR (dB)",
              "sr": "Super-resolution: PSNR (dB)"}
    for task, title in titles.items():
        picked = [r for r in rows if r["task"] == task]
        if not picked:
            continue
        columns = list(dict.fromkeys(c for r in picked for c in r["scores"]))
        lines += [f"### {title}", "", "| method | passes | " + " | ".join(columns) + " | time |",
                  "|---|---|" + "---|" * (len(columns) + 1)]
        for row in picked:
            one = next(r for r in picked if r["method"] == row["method"] and r["passes"] == 1)
            cells = []
            for column in columns:
                value, base = row["scores"].get(column), one["scores"].get(column)
                if value is None:
                    cells.append("-")
                elif task == "render":
                    cells.append(f"{value:.5f}" + (f" ({value / base:.3f}x)" if row["passes"] > 1 else ""))
                else:
                    cells.append(f"{value:.2f}" + (f" ({value - base:+.2f})" if row["passes"] > 1 else ""))
            ratio = row["seconds"] / one["seconds"] if one["seconds"] else float("nan")
            lines.append(f"| `{row['method']}` | {row['passes']} | " + " | ".join(cells) + f" | {ratio:.1f}x |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="render,photo,sr")
    parser.add_argument("--kodak", type=int, default=4, help="Kodak24 images for the photo table")
    parser.add_argument("--scenes-dir", default=str(ROOT / "bench" / "work" / "render_val"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "ensemble"))
    parser.add_argument("--report", action="store_true", help="only rebuild the tables from the .json")
    args = parser.parse_args()
    out = Path(args.out)
    if args.report:
        stored = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
        text = stored["header"] + table(stored["rows"])
        out.with_suffix(".md").write_text(text, encoding="utf-8")
        print(text)
        return 0
    tasks = args.tasks.split(",")
    rows: list[dict] = []
    if "render" in tasks:
        rows += render_rows(Path(args.scenes_dir))
    if "photo" in tasks:
        rows += photo_rows(args.kodak)
    if "sr" in tasks:
        rows += sr_rows()
    header = (f"## Quality setting: passes of the geometric self-ensemble (one run, "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}, "
              "shared 2-core CPU)\n\nIn brackets: against one pass. Time: against one pass of the same method.\n\n")
    text = header + table(rows)
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"header": header, "rows": rows}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
