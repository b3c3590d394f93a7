"""Render denoising on the foreign set: Blender Cycles scenes no generator of ours made (issue 42's yardstick).

The scenes are hand-built in ``bench/cycles_foreign.py`` (textures, metal, glass, an interior lit through a window,
tiny bright emitters, depth of field), rendered with bpy at 4 / 16 / 64 spp with Blender's Denoising Data passes and
a 1024-spp reference, as the multi-layer EXR Blender writes. No training run or checkpoint choice may read them.
Every method runs through the app's restore job, as in ``bench/render.py``: the noisy input, OIDN colour only, OIDN
+ AOVs (``oidn-aov``, prefilter "auto" = "accurate" with ``cleanAux`` for Blender inputs: run the way Blender runs
it), the bundled KPRCAN models and the KPRCAN + OIDN blend (``render-kprcan-oidn``).

Reported (``engine.metrics`` for every figure):

- per scene and spp: relMSE, and its ratio to ``oidn-aov`` (below 1 beats Blender's denoiser);
- per spp: the geometric mean over scenes of those ratios, and scenes won;
- "do no harm": tonemapped PSNR of each method minus the noisy input's, per scene; the worst scene per spp.

    /path/to/bpy-python -m bench.cycles_foreign render bench/work/cycles_foreign     # the renders (cached)
    nice -n 10 .venv/bin/python bench/render.py --foreign bench/work/cycles_foreign  # this table

Writes bench/results/render_foreign.md and .json.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from engine.imageio import read_image  # noqa: E402
from engine.jobs import run_job  # noqa: E402
from engine.metrics import relmse, tonemapped_psnr  # noqa: E402
from engine.restore import restore_job  # noqa: E402

#: The peer every ratio is taken against: OIDN with albedo + normal, prefiltered as Blender does.
PEER = "oidn-aov"
_SPP_FILE = re.compile(r"spp(\d+)\.exr$")
_REF_FILE = re.compile(r"ref(\d+)\.exr$")


def foreign_cases(folder: Path) -> list[dict]:
    """One case per (scene, spp) of every scene folder that has a reference ``ref<N>.exr`` and noisy
    ``spp<N>.exr`` renders; scenes still rendering (no reference yet) are left out."""
    cases = []
    for scene_dir in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        references = sorted((int(m.group(1)), p) for p in scene_dir.glob("ref*.exr") if (m := _REF_FILE.search(p.name)))
        if not references:
            continue
        ref_spp, ref_path = references[-1]
        for path in sorted(scene_dir.glob("spp*.exr")):
            match = _SPP_FILE.search(path.name)
            if match:
                cases.append({"set": "foreign", "scene": scene_dir.name, "spp": int(match.group(1)),
                              "input": path, "reference_path": ref_path, "ref_spp": ref_spp})
    return cases


def evaluate(cases: list[dict], entries: list, log=print) -> list[dict]:
    """Rows of (method, scene, spp, relMSE, tonemapped PSNR, seconds) for the noisy input and every entry."""
    references = {str(c["reference_path"]): np.asarray(read_image(c["reference_path"]).pixels)[:, :, :3]
                  for c in cases}
    images = {str(c["input"]): read_image(c["input"]) for c in cases}
    rows = []

    def row(method, case, pixels, seconds):
        reference = references[str(case["reference_path"])]
        pixels = np.asarray(pixels)[:, :, :3]
        rows.append({"method": method, "scene": case["scene"], "spp": case["spp"], "ref_spp": case["ref_spp"],
                     "rel_mse": relmse(pixels, reference), "psnr": tonemapped_psnr(pixels, reference),
                     "seconds": seconds})

    for case in cases:
        row("noisy", case, images[str(case["input"])].pixels, 0.0)
    for entry in entries:
        for case in cases:
            image = images[str(case["input"])]
            started = time.perf_counter()
            result = run_job(restore_job(image, entry, device="cpu"))
            row(entry.id, case, result.image.pixels, time.perf_counter() - started)
            last = rows[-1]
            log(f"{entry.id:24s} {case['scene']:10s} spp {case['spp']:3d} relMSE {last['rel_mse']:.5f} "
                f"PSNR {last['psnr']:.2f}")
    return rows


def summarise(rows: list[dict], names: dict[str, str]) -> tuple[str, dict]:
    """Markdown: the geometric-mean ratio to the peer per spp with scenes won and the worst do-no-harm margin,
    then per-scene tables. Returns (markdown, summary dict)."""
    by = {(r["method"], r["scene"], r["spp"]): r for r in rows}
    methods = ["noisy"] + [m for m in names if m != "noisy"]
    methods = [m for m in methods if any(k[0] == m for k in by)]
    scenes = sorted({r["scene"] for r in rows})
    spps = sorted({r["spp"] for r in rows})
    summary: dict = {}

    def label(method):
        return "noisy input" if method == "noisy" else f"{names.get(method, method)} (`{method}`)"

    lines = [f"Geometric mean over {len(scenes)} scenes of relMSE / relMSE of `{PEER}` (OIDN + albedo + normal, "
             "prefiltered as Blender does; below 1 beats it), scenes won, and the do-no-harm margin: the worst "
             "scene's tonemapped PSNR minus the noisy input's (dB; negative = worse than not denoising).", "",
             "| method | " + " | ".join(f"{n} spp: ratio, won, worst dPSNR" for n in spps) + " |",
             "|---|" + "---|" * len(spps)]
    for method in methods:
        cells = []
        for n in spps:
            pairs = [(by[(method, s, n)], by.get((PEER, s, n)), by[("noisy", s, n)]) for s in scenes
                     if (method, s, n) in by]
            ratios = np.array([r["rel_mse"] / p["rel_mse"] for r, p, _ in pairs if p is not None])
            harm = np.array([r["psnr"] - noisy["psnr"] for r, _, noisy in pairs])
            if not len(ratios):
                cells.append("-")
                continue
            geo = float(np.exp(np.log(ratios).mean()))
            wins = int((ratios < 1).sum())
            summary.setdefault(method, {})[str(n)] = {
                "geo_ratio": geo, "wins": wins, "scenes": len(ratios), "worst_dpsnr": float(harm.min()),
                "mean_rel_mse": float(np.mean([r["rel_mse"] for r, _, _ in pairs]))}
            cells.append(f"{geo:.3f}, {wins}/{len(ratios)}, {harm.min():+.2f}")
        lines.append(f"| {label(method)} | " + " | ".join(cells) + " |")
    lines.append("")
    for n in spps:
        lines += [f"#### {n} spp: relMSE (ratio to `{PEER}`) / tonemapped PSNR dB (minus the noisy input's)", "",
                  "| method | " + " | ".join(scenes) + " |", "|---|" + "---|" * len(scenes)]
        for method in methods:
            cells = []
            for s in scenes:
                r, p, noisy = by.get((method, s, n)), by.get((PEER, s, n)), by.get(("noisy", s, n))
                if r is None:
                    cells.append("-")
                    continue
                ratio = f" ({r['rel_mse'] / p['rel_mse']:.2f}x)" if p else ""
                harm = f" ({r['psnr'] - noisy['psnr']:+.1f})" if noisy and method != "noisy" else ""
                cells.append(f"{r['rel_mse']:.4f}{ratio} / {r['psnr']:.1f}{harm}")
            lines.append(f"| {label(method)} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines), summary


def reference_noise(rows: list[dict]) -> dict[str, dict]:
    """Per scene, how noisy its reference still is: Monte Carlo variance falls as 1 / spp, so the noisy input at
    the highest sample count n predicts the reference's own relMSE as relMSE(n) x n / reference spp, compared with
    the peer's relMSE at n. Where that share is large, the reference's noise (not the denoiser) rules the error at
    that count and the ratios there mean little."""
    out = {}
    for scene in sorted({r["scene"] for r in rows}):
        noisy = [r for r in rows if r["scene"] == scene and r["method"] == "noisy"]
        if not noisy:
            continue
        top = max(noisy, key=lambda r: r["spp"])
        estimate = top["rel_mse"] * top["spp"] / top["ref_spp"]
        peer = next((r for r in rows if r["scene"] == scene and r["method"] == PEER and r["spp"] == top["spp"]), None)
        out[scene] = {"spp": top["spp"], "ref_spp": top["ref_spp"], "estimate": estimate,
                      "share_of_peer": estimate / peer["rel_mse"] if peer else None}
    return out


def scene_costs(folder: Path) -> list[str]:
    """The render cost of each scene (cost.json from cycles_foreign.py), as markdown."""
    lines = ["| scene | " + "seconds per render (spp), one Cycles thread |", "|---|---|"]
    for cost_path in sorted(Path(folder).glob("*/cost.json")):
        cost = json.loads(cost_path.read_text(encoding="utf-8"))
        cells = ", ".join(f"{v['seconds']:.0f} s ({v['spp']})" for v in sorted(cost.values(), key=lambda v: v["spp"]))
        lines.append(f"| {cost_path.parent.name} | {cells} |")
    return lines


def earlier_rows(path: Path, scenes_here: set[str], methods_here: set[str]) -> tuple[list[dict], list[str]]:
    """Rows of an earlier run (its .json) for the scenes not rendered in this run's folder, of the methods this run
    measures; and those scenes' names. The scenes' renders are reproducible to the figures (bench/cycles_foreign.py),
    so a scene measured once need not be rendered again to be counted, as long as the methods are the same files."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    rows = [r for r in data["rows"] if r["scene"] not in scenes_here and r["method"] in methods_here]
    return rows, sorted({r["scene"] for r in rows})


def run(folder: Path, out: Path, model_dirs: list[Path], with_oidn: bool = True, earlier: Path | None = None) -> dict:
    from bench.render import methods

    started = time.perf_counter()
    cases = foreign_cases(folder)
    if not cases:
        raise SystemExit(f"{folder}: no rendered scenes (run bpy-python -m bench.cycles_foreign render {folder} first)")
    entries = methods(model_dirs, with_oidn)
    rows = evaluate(cases, entries, log=lambda text: print(text, file=sys.stderr))
    names = {e.id: e.manifest.display_name for e in entries}
    note = ""
    if earlier is not None:
        kept, scenes = earlier_rows(earlier, {c["scene"] for c in cases}, {r["method"] for r in rows})
        rows += kept
        note = (f"Scenes {', '.join(scenes)} are counted from an earlier run of the same methods (`{earlier}`, rows "
                f"copied: their renders were not on disk this time); the others were rendered and measured now.\n\n")
    table, summary = summarise(rows, names)
    noise = reference_noise(rows)
    table += ("\n### How noisy the references still are\n\nrelMSE of the noisy input at the highest count x spp / "
              "reference spp (variance falls as 1 / spp), and that as a share of `oidn-aov`'s relMSE there: where it "
              "is large the reference's own noise rules that column.\n\n| scene | reference spp | estimate | share "
              "of oidn-aov's relMSE |\n|---|---|---|---|\n"
              + "".join(f"| {scene} | {v['ref_spp']} | {v['estimate']:.5f} | "
                        + (f"{v['share_of_peer']:.0%} at {v['spp']} spp" if v["share_of_peer"] is not None else "-")
                        + " |\n" for scene, v in noise.items()))
    ref_spp = sorted({r["ref_spp"] for r in rows})
    runs = "one run" if earlier is None else "rows of an earlier run merged in"
    text = (f"## Render denoising on the foreign set ({runs}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()}-core CPU, "
            f"load average {os.getloadavg()[0]:.1f})\n\n"
            f"Hand-built Blender 5.0.1 Cycles scenes (bench/cycles_foreign.py), 128x128, Denoising Data passes, "
            f"reference {', '.join(map(str, ref_spp))} spp; no generator, training run or checkpoint choice has "
            f"seen them.\n\n    nice -n 10 .venv/bin/python bench/render.py --foreign {folder}"
            + (f" --earlier {earlier}" if earlier is not None else "") + "\n\n" + note
            + table + "\n### Render cost\n\n" + "\n".join(scene_costs(folder)) + "\n")
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text, encoding="utf-8")
    try:
        report = out.with_suffix(".md").resolve().relative_to(ROOT).as_posix()
    except ValueError:
        report = str(out.with_suffix(".md"))
    # "kind" tells `main.py ship --scores` which benchmark wrote the file; "benchmark" names the report
    out.with_suffix(".json").write_text(json.dumps({"kind": "render-foreign", "benchmark": report,
                                                    "summary": summary, "reference_noise": noise, "rows": rows,
                                                    "names": names,
                                                    "seconds": time.perf_counter() - started}, indent=1),
                                        encoding="utf-8")
    return summary
