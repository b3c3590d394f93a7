"""How much of a render denoiser's error is low-frequency: a brightness bias or blotches a few pixels wide.

For each checkpoint (and OIDN with AOVs, through the restore job) on a folder of ``render-data`` scenes, at each
sample count: relMSE; the mean of output / mean of reference (1 = no overall bias); the relMSE of ``--block`` px
block means (the low-frequency error); and the relMSE after an oracle has scaled the output so that its
``--block`` px box means equal the reference's (what is left once the low frequencies are right). A model
whose relMSE drops far more under the oracle than OIDN's has its deficit at low frequencies. ``--per-scene``
adds a table of every scene's relMSE per method, over the whole image and split into the band within ``--edge``
px of the image edges and the pixels further in (to find one scene or a border that dominates a mean).
``--tail 1,10,100`` adds the part of each mean that comes from every scene's K worst pixels (each method's own) and
the relMSE of the remaining pixels: whether a gap between two methods lies in a few outliers (a firefly left in,
light bled into a dark pixel) or in the bulk of the image.

    .venv/bin/python lab/bench/render_lowfreq.py SCENES_DIR CHECKPOINT.pt... [--spp 4,16] [--no-oidn]
        [--per-scene [--edge 16]] [--tail 1,10,100] [--out lab/bench/results/render_lowfreq.md]

Use scenes whose references are clean (``render-data --ref-spp 1024``): a 256-spp reference's own noise favours
outputs that are too dark. Never the benchmark's held-out seeds (90000+). Prints a markdown table and, with
``--out``, appends it there with the command.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent

from bench.render import methods  # noqa: E402
from bench.render_checkpoints import checkpoint_outputs, load_cases, restored_outputs  # noqa: E402
from engine.metrics import relative_squared_error, relmse  # noqa: E402


def block_means(image: np.ndarray, block: int) -> np.ndarray:
    """Means of the ``block`` x ``block`` blocks that fit (H x W x C -> H/block x W/block x C)."""
    height, width = image.shape[0] // block * block, image.shape[1] // block * block
    cropped = image[:height, :width]
    return cropped.reshape(height // block, block, width // block, block, -1).mean(axis=(1, 3))


def oracle_corrected(output: np.ndarray, reference: np.ndarray, block: int) -> np.ndarray:
    """The output scaled per pixel so that its ``block`` px box means equal the reference's."""
    import cv2

    eps = 1e-4
    gain = (cv2.blur(reference, (block, block)) + eps) / (cv2.blur(output, (block, block)) + eps)
    return output * gain


def rows_for(name: str, outputs: list[np.ndarray], cases, spps: list[int], block: int) -> list[str]:
    rows = []
    for spp in spps:
        picked = [(out, ref) for out, (s, _, ref) in zip(outputs, cases, strict=True) if s == spp]
        rel = np.mean([relmse(o, r) for o, r in picked])
        ratio = np.mean([o.mean() / r.mean() for o, r in picked])
        low = np.mean([relmse(block_means(o, block), block_means(r, block)) for o, r in picked])
        oracle = np.mean([relmse(oracle_corrected(o, r, block), r) for o, r in picked])
        change = f"{oracle / rel - 1:+.0%}"
        rows.append(f"| {name} | {spp} | {rel:.5f} | {ratio:.4f} | {low:.5f} | {oracle:.5f} ({change}) |")
    return rows


def per_scene_rows(outputs: dict[str, list[np.ndarray]], cases, names: list[str], spps: list[int],
                   edge: int) -> list[str]:
    """One row per scene and sample count: each method's relMSE, whole / within ``edge`` px of the edges / inside."""
    columns = list(outputs)
    rows = ["| scene | spp | " + " | ".join(f"{m}: all / edge band / inside" for m in columns) + " |",
            "|---|---|" + "---|" * len(columns)]
    parts: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    for index, (spp, _, reference) in enumerate(cases):
        cells = []
        for method in columns:
            error = relative_squared_error(outputs[method][index], reference).mean(axis=-1)
            inside = np.zeros(error.shape, bool)
            inside[edge:-edge, edge:-edge] = True
            part = (error.mean(), error[~inside].mean(), error[inside].mean())
            parts.setdefault((method, spp), []).append(part)
            cells.append(" / ".join(f"{v:.5f}" for v in part))
        rows.append(f"| {names[index // len(spps)]} | {spp} | " + " | ".join(cells) + " |")
    for spp in spps:  # the means over scenes of each part
        cells = [" / ".join(f"{v:.5f}" for v in np.mean(parts[(method, spp)], axis=0)) for method in columns]
        rows.append(f"| **mean** | {spp} | " + " | ".join(cells) + " |")
    return rows


def tail_rows(outputs: dict[str, list[np.ndarray]], cases, spps: list[int], counts: list[int]) -> list[str]:
    """Per method and sample count: relMSE, and for each K the part of it from every scene's K worst pixels
    (the method's own) and the relMSE of the other pixels (both means over scenes)."""
    rows = ["| method | spp | relMSE | " + " | ".join(f"from the {k} worst px / rest" for k in counts) + " |",
            "|---|---|---|" + "---|" * len(counts)]
    for method, images in outputs.items():
        for spp in spps:
            errors = [np.sort(relative_squared_error(out, ref).mean(axis=-1).ravel())
                      for out, (s, _, ref) in zip(images, cases, strict=True) if s == spp]
            cells = []
            for k in counts:
                worst = np.mean([e[-k:].sum() / e.size for e in errors])
                rest = np.mean([e[:-k].mean() for e in errors])
                cells.append(f"{worst:.5f} / {rest:.5f}")
            rows.append(f"| {method} | {spp} | {np.mean([e.mean() for e in errors]):.5f} | " + " | ".join(cells) + " |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenes", help="folder of render-data scenes (validation seeds, clean references)")
    parser.add_argument("checkpoints", nargs="*", help=".pt files")
    parser.add_argument("--spp", default="4,16")
    parser.add_argument("--block", type=int, default=8, help="block size in pixels (default 8)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-oidn", action="store_true")
    parser.add_argument("--per-scene", action="store_true", help="also list every scene's relMSE per method")
    parser.add_argument("--edge", type=int, default=16, help="width of the edge band of --per-scene (default 16)")
    parser.add_argument("--tail", help="pixel counts K, e.g. 1,10,100: the part of the relMSE from every scene's K "
                                       "worst pixels, and the rest")
    parser.add_argument("--out", help="markdown file to append the table to")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    spps = [int(s) for s in args.spp.split(",")]
    cases = load_cases(Path(args.scenes), spps)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"### {len(cases) // len(spps)} scenes from {args.scenes}, {stamp}",
             "",
             f"`{' '.join(['lab/bench/render_lowfreq.py', *sys.argv[1:]])}`",
             "",
             f"| method | spp | relMSE | mean output / mean reference | relMSE of {args.block} px block means | "
             f"relMSE once an oracle fixes the {args.block} px means |",
             "|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    outputs = {}
    for checkpoint in args.checkpoints:
        outputs[checkpoint] = checkpoint_outputs(Path(checkpoint), cases)
        rows = rows_for(checkpoint, outputs[checkpoint], cases, spps, args.block)
        print("\n".join(rows), flush=True)
        lines += rows
    if not args.no_oidn:
        entry = next(e for e in methods([], with_oidn=True) if e.id == "oidn-aov")
        outputs["oidn-aov"] = restored_outputs(entry, cases)
        rows = rows_for("oidn-aov", outputs["oidn-aov"], cases, spps, args.block)
        print("\n".join(rows), flush=True)
        lines += rows
    if args.per_scene:
        names = [path.parent.name for path in sorted(Path(args.scenes).glob("*/scene.json"))]
        rows = ["", f"Every scene (edge band: within {args.edge} px of the image edges):", "",
                *per_scene_rows(outputs, cases, names, spps, args.edge)]
        print("\n".join(rows), flush=True)
        lines += rows
    if args.tail:
        counts = [int(k) for k in args.tail.split(",")]
        rows = ["", "Outliers: the part of each mean from every scene's K worst pixels (each method's own), and the "
                "relMSE of the other pixels:", "", *tail_rows(outputs, cases, spps, counts)]
        print("\n".join(rows), flush=True)
        lines += rows
    if args.out:
        with open(args.out, "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
