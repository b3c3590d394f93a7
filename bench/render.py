"""Render denoising benchmark: our kernel-predicting networks next to Intel Open Image Denoise.

Data (PROTOCOL.md, "Render denoising"): ``../shared/bench/renders/cbox256`` (Cornell box, 1/4/16/64 spp with
albedo/normal/depth, 4096-spp reference) and held-out procedural scenes of our own generator whose seeds
(90000+) no training set uses (made here with ``render-data`` when missing: 24 scenes, 128x128, 1024-spp
reference; until 2026-12-03 the set was the first 6 of them, still reported on their own for comparison with
older tables). Every method runs through the app's restore job (same tiling, exposure and value transforms):

- ``noisy``: the input itself;
- ``oidn`` / ``oidn-aov``: OIDN 2.5 (pyoidn) colour only / with albedo + normal, quality high;
- every render-denoise ONNX model in ``resources/models`` and in each ``--models`` folder.

Metrics: relMSE = mean((x - r)^2 / (r^2 + 0.01)); tonemapped PSNR (clip to [0, 1], gamma 1/2.2, peak 1); time
per megapixel = median seconds of a restore (session warm, cbox 256x256 runs) / megapixels.

    nice -n 10 .venv/bin/python bench/render.py [--models DIR ...] [--scenes-dir DIR]

Prints markdown tables and writes bench/results/render.md and .json.

``--foreign DIR`` measures instead on the foreign set (hand-built Blender Cycles scenes, bench/cycles_foreign.py),
each method as a ratio to OIDN + AOVs run as Blender runs it, with a do-no-harm column: bench/render_foreign.py,
written to bench/results/render_foreign.md.
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

ROOT = Path(__file__).resolve().parent.parent

from engine.imageio import read_image  # noqa: E402
from engine.jobs import run_job  # noqa: E402
from engine.metrics import relmse, tonemapped_psnr  # noqa: E402
from engine.models.registry import ModelEntry, scan_models_folder  # noqa: E402
from engine.restore import restore_job  # noqa: E402

CBOX = ROOT.parent / "shared" / "bench" / "renders" / "cbox256"
SPP = (1, 4, 16, 64)
VAL_SEED, VAL_SCENES, VAL_SIZE, VAL_REF_SPP = 90000, 24, 128, 1024
#: The held-out set until 2026-12-03 (seeds 90000-90005): six scenes moved by up to 11% each between candidates
#: that differed by 1-4% on 44 validation scenes, too few to rank models; kept as a column of their own.
FIRST_SCENES = 6
#: The peer each model is compared with scene by scene.
PEER = "oidn-aov"


def cbox_cases() -> list[dict]:
    reference = read_image(CBOX / "cbox_256_ref_spp04096_color.exr").pixels
    return [{"set": "cbox256", "scene": "cbox", "spp": n, "input": CBOX / f"cbox_256_spp{n:05d}_color.exr",
             "reference": reference} for n in SPP]


def ensure_scenes(folder: Path) -> None:
    if len(list(folder.glob("*/scene.json"))) >= VAL_SCENES:
        return
    from engine.render_data.generate import RenderSetRequest, generate_set

    print(f"rendering {VAL_SCENES} held-out scenes into {folder} (seeds {VAL_SEED}+) ...", file=sys.stderr)
    run_job(generate_set(RenderSetRequest(folder, VAL_SCENES, VAL_SEED, SPP, VAL_REF_SPP, VAL_SIZE, VAL_SIZE)))


def generated_cases(folder: Path) -> list[dict]:
    cases = []
    for info_path in sorted(folder.glob("*/scene.json"))[:VAL_SCENES]:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        name, scene_dir = info["name"], info_path.parent
        if info["seed"] < VAL_SEED:
            raise SystemExit(f"{scene_dir}: seed {info['seed']} is in the training range; use held-out scenes")
        reference = read_image(scene_dir / f"{name}_ref_spp{info['ref_spp']:05d}_color.exr").pixels
        for n in SPP:
            cases.append({"set": "generated", "scene": name, "spp": n,
                          "input": scene_dir / f"{name}_spp{n:05d}_color.exr", "reference": reference})
    return cases


def methods(model_dirs: list[Path], with_oidn: bool) -> list[ModelEntry]:
    from engine.models.builtin import BUILTIN_ENGINES

    entries = []
    if with_oidn:
        entries += [e.entry() for e in BUILTIN_ENGINES
                    if e.manifest.task == "render-denoise" and e.available()]
    for folder, source in [(ROOT / "resources" / "models", "bundled")] + [(d, "user") for d in model_dirs]:
        found, problems = scan_models_folder(folder, source)
        for problem in problems:
            print(f"warning: {problem}", file=sys.stderr)
        entries += [e for e in found if e.manifest.task == "render-denoise"]
    return entries


def run(args: argparse.Namespace) -> dict:
    scenes_dir = Path(args.scenes_dir)
    ensure_scenes(scenes_dir)
    cases = cbox_cases() + generated_cases(scenes_dir)
    entries = methods([Path(d) for d in args.models], not args.no_oidn)
    rows: list[dict] = []
    images = {str(c["input"]): read_image(c["input"]) for c in cases}
    for case in cases:
        image = images[str(case["input"])]
        rows.append({"method": "noisy", "set": case["set"], "scene": case["scene"], "spp": case["spp"],
                     "rel_mse": relmse(image.pixels, case["reference"]),
                     "psnr": tonemapped_psnr(image.pixels, case["reference"]), "seconds": 0.0,
                     "megapixels": image.width * image.height / 1e6})
    for entry in entries:
        # Warm-up: the first call creates the ONNX Runtime session / OIDN device.
        run_job(restore_job(images[str(cases[0]["input"])], entry, device="cpu"))
        for case in cases:
            image = images[str(case["input"])]
            missing = [n for n in entry.manifest.inputs if n != "color" and n not in image.layers]
            if missing:
                continue
            started = time.perf_counter()
            result = run_job(restore_job(image, entry, device="cpu"))
            seconds = time.perf_counter() - started
            rows.append({"method": entry.id, "set": case["set"], "scene": case["scene"], "spp": case["spp"],
                         "rel_mse": relmse(result.image.pixels, case["reference"]),
                         "psnr": tonemapped_psnr(result.image.pixels, case["reference"]), "seconds": seconds,
                         "megapixels": image.width * image.height / 1e6})
            print(f"{entry.id:28s} {case['set']:9s} {case['scene']:14s} spp {case['spp']:3d} "
                  f"relMSE {rows[-1]['rel_mse']:.5f} PSNR {rows[-1]['psnr']:.2f} ({seconds:.2f} s)", file=sys.stderr)
    names = {e.id: e.manifest.display_name for e in entries}
    return {"rows": rows, "names": names}


def _first_scene_names(rows: list[dict]) -> set[str]:
    names = sorted({r["scene"] for r in rows if r["set"] == "generated"})
    return set(names[:FIRST_SCENES])


def _table(rows: list[dict], names: dict, order: list[str], summary: dict, key: str) -> list[str]:
    lines = ["| method | " + " | ".join(f"{n} spp" for n in SPP) + " | s per MP |",
             "|---|" + "---|" * (len(SPP) + 1)]
    for method in order:
        picked = [r for r in rows if r["method"] == method]
        if not picked:
            continue
        cells = []
        for n in SPP:
            at = [r for r in picked if r["spp"] == n]
            if not at:
                cells.append("-")
                continue
            mse, psnr = float(np.mean([r["rel_mse"] for r in at])), float(np.mean([r["psnr"] for r in at]))
            summary.setdefault(key, {}).setdefault(method, {})[str(n)] = {"rel_mse": mse, "psnr": psnr}
            cells.append(f"{mse:.5f} / {psnr:.2f}")
        per_mp = [r["seconds"] / r["megapixels"] for r in picked if r["seconds"] > 0]
        speed = f"{float(np.median(per_mp)):.2f}" if per_mp else "-"
        if per_mp:
            summary[key][method]["seconds_per_megapixel"] = float(np.median(per_mp))
        label = "noisy input" if method == "noisy" else f"{names[method]} (`{method}`)"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {speed} |")
    return lines


def paired(rows: list[dict], names: dict, ratios_out: dict) -> list[str]:
    """Scene by scene against the peer on the held-out set: how many scenes each model wins, and the geometric
    mean of its relMSE ratios with a 90% bootstrap interval over scenes (the mean relMSE is ruled by a few hard
    scenes; this asks whether a model is better on a typical scene)."""
    by = {(r["method"], r["scene"], r["spp"]): r["rel_mse"] for r in rows if r["set"] == "generated"}
    scenes = sorted({r["scene"] for r in rows if r["set"] == "generated"})
    if not any(k[0] == PEER for k in by):
        return []
    rng = np.random.default_rng(0)
    lines = [f"Scene by scene against `{PEER}`: scenes won of {len(scenes)}, and the geometric mean of relMSE "
             f"ratios (model / `{PEER}`, below 1 is better) with a 90% bootstrap interval over scenes.", "",
             "| method | " + " | ".join(f"{n} spp" for n in SPP) + " |", "|---|" + "---|" * len(SPP)]
    for method in names:
        if method == PEER or not any(k[0] == method for k in by):
            continue
        cells = []
        for n in SPP:
            ratios = np.array([by[(method, s, n)] / by[(PEER, s, n)] for s in scenes
                               if (method, s, n) in by and (PEER, s, n) in by])
            if not len(ratios):
                cells.append("-")
                continue
            logs = np.log(ratios)
            boot = np.exp(rng.choice(logs, size=(2000, len(logs))).mean(axis=1))
            geo, lo, hi = float(np.exp(logs.mean())), *np.quantile(boot, [0.05, 0.95]).tolist()
            wins = int((ratios < 1).sum())
            ratios_out.setdefault(method, {})[str(n)] = {
                "wins": wins, "scenes": len(ratios), "geo_ratio": geo, "ci90": [lo, hi]}
            cells.append(f"{wins}/{len(ratios)}, {geo:.3f} ({lo:.3f}-{hi:.3f})")
        lines.append(f"| `{method}` | " + " | ".join(cells) + " |")
    return lines + [""]


def summarise(rows: list[dict], names: dict) -> tuple[str, dict, dict]:
    """The markdown tables; the mean scores per set, method and spp (what ``main.py ship --scores`` reads); and
    the scene-by-scene ratios to the peer."""
    order = ["noisy"] + list(names)
    summary: dict = {}
    ratios: dict = {}
    first = _first_scene_names(rows)
    count = len({r["scene"] for r in rows if r["set"] == "generated"})
    sections = [
        ("cbox256", "Cornell box 256x256 (cbox256, 4096-spp reference)", [r for r in rows if r["set"] == "cbox256"]),
        ("generated", f"Held-out generated scenes ({count} scenes, seeds {VAL_SEED}+, {VAL_SIZE}x{VAL_SIZE}, "
                      f"{VAL_REF_SPP}-spp reference; mean over scenes)", [r for r in rows if r["set"] == "generated"]),
        ("generated_first6", f"The first {FIRST_SCENES} of them (seeds {VAL_SEED}-{VAL_SEED + FIRST_SCENES - 1}, the "
                             "held-out set of tables before 2026-12-03)",
         [r for r in rows if r["set"] == "generated" and r["scene"] in first]),
    ]
    lines: list[str] = []
    for key, title, picked in sections:
        lines += [f"### {title}", "", "relMSE / tonemapped PSNR (dB), lower / higher is better.", ""]
        lines += _table(picked, names, order, summary, key) + [""]
        if key == "generated":
            lines += paired(rows, names, ratios)
    return "\n".join(lines), summary, ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=[], help="extra folders of render-denoise models")
    parser.add_argument("--scenes-dir", default=str(ROOT / "bench" / "work" / "render_val"))
    parser.add_argument("--no-oidn", action="store_true")
    parser.add_argument("--out", default=None, help="results path without suffix (default bench/results/render, "
                                                     "or render_foreign with --foreign)")
    parser.add_argument("--foreign", metavar="DIR", default=None,
                        help="measure on the foreign Cycles set rendered by bench/cycles_foreign.py into DIR")
    parser.add_argument("--earlier", metavar="JSON", default=None,
                        help="with --foreign: count the scenes of an earlier run's JSON that DIR lacks (same methods)")
    args = parser.parse_args()
    if args.foreign:
        from bench.render_foreign import run as run_foreign

        run_foreign(Path(args.foreign), Path(args.out or ROOT / "bench" / "results" / "render_foreign"),
                    [Path(d) for d in args.models], not args.no_oidn,
                    Path(args.earlier) if args.earlier else None)
        return 0
    args.out = args.out or str(ROOT / "bench" / "results" / "render")
    started = time.perf_counter()
    result = run(args)
    table, summary, ratios = summarise(result["rows"], result["names"])
    header = (f"## Render denoising (one run, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()}-core CPU, "
              f"load average {os.getloadavg()[0]:.1f}; times include tiling and "
              f"transforms)\n\n")
    text = header + table
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"summary": summary, "paired": ratios, "rows": result["rows"],
                                                    "names": result["names"],
                                                    "seconds": time.perf_counter() - started}, indent=1),
                                        encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
