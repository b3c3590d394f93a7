"""Where a render denoiser's error lies: relMSE split by kind of region, our models next to OIDN + AOVs.

Every pixel of a generated scene falls in one class, decided from its 16-spp albedo and normal buffers:

- ``black``: albedo below 0.03 (glass, the environment seen directly, black materials), dilated by 1 px: the
  buffers say little there, so the colour alone has to be denoised;
- ``geometry``: normal edges (sum of absolute neighbour differences above 0.1), dilated by 1 px, not black;
- ``texture``: albedo changes (blurred by a Gaussian of sigma 2, above 0.05), dilated, neither of the above;
- ``rest``: flat regions.

Each class's column is its share of the mean relMSE (they add up to the total), so the ratio of two methods'
columns says where one loses to the other. Scenes: folders of ``render-data`` scenes (``*/scene.json``), e.g. the
benchmark's held-out set (bench/work/render_val) or validation scenes of your own.

    nice -n 10 .venv/bin/python lab/bench/render_regions.py SCENES_DIR... [--spp 4,16] [--models DIR ...]

Prints a markdown table (no file written: a diagnosis, not a benchmark).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent

from bench.render import methods, rel_error  # noqa: E402
from engine.imageio import read_image  # noqa: E402
from engine.jobs import run_job  # noqa: E402
from engine.restore import restore_job  # noqa: E402

CLASSES = ("black", "geometry", "texture", "rest")


def _variation(a: np.ndarray) -> np.ndarray:
    gx = np.abs(np.diff(a, axis=1, append=a[:, -1:]))
    gy = np.abs(np.diff(a, axis=0, append=a[-1:]))
    return (gx + gy).sum(-1)


def _dilate(mask: np.ndarray) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def region_masks(albedo: np.ndarray, normal: np.ndarray) -> dict[str, np.ndarray]:
    black = _dilate(albedo.mean(-1) < 0.03)
    geometry = _dilate(_variation(normal) > 0.1) & ~black
    texture = _dilate(cv2.GaussianBlur(_variation(albedo), (0, 0), 2) > 0.05) & ~geometry & ~black
    return {"black": black, "geometry": geometry, "texture": texture, "rest": ~(black | geometry | texture)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenes", nargs="+", help="folders holding render-data scenes")
    parser.add_argument("--spp", default="4,16")
    parser.add_argument("--models", nargs="*", default=[], help="extra folders of render models")
    args = parser.parse_args()
    entries = {e.manifest.id: e for e in methods([Path(d) for d in args.models], True)}
    shares: dict[tuple[int, str], list[list[float]]] = {}
    areas: list[list[float]] = []
    scene_count = 0
    for folder in args.scenes:
        for info_path in sorted(Path(folder).glob("*/scene.json")):
            info = json.loads(info_path.read_text(encoding="utf-8"))
            name, d = info["name"], info_path.parent
            reference = read_image(d / f"{name}_ref_spp{info['ref_spp']:05d}_color.exr").pixels[..., :3]
            masks = region_masks(read_image(d / f"{name}_spp00016_albedo.exr").pixels[..., :3],
                                 read_image(d / f"{name}_spp00016_normal.exr").pixels[..., :3])
            areas.append([float(masks[c].mean()) for c in CLASSES])
            scene_count += 1
            for spp in (int(s) for s in args.spp.split(",")):
                image = read_image(d / f"{name}_spp{spp:05d}_color.exr")
                for model_id, entry in entries.items():
                    out = run_job(restore_job(image, entry, device="cpu")).image.pixels[..., :3]
                    error = rel_error(out, reference).mean(-1)
                    shares.setdefault((spp, model_id), []).append(
                        [float(error.mean())] + [float(error[masks[c]].sum() / error.size) for c in CLASSES])
    area = np.mean(areas, axis=0)
    print(f"{scene_count} scenes; area: " + ", ".join(f"{c} {a:.0%}" for c, a in zip(CLASSES, area, strict=True)))
    print("\n| spp | method | relMSE | " + " | ".join(CLASSES) + " |")
    print("|---|---|---|" + "---|" * len(CLASSES))
    for (spp, model_id), rows in sorted(shares.items()):
        mean = np.mean(rows, axis=0)
        oidn = shares.get((spp, "oidn-aov"))  # the ratios' base; without OIDN (not installed), none
        base = np.mean(oidn, axis=0) if oidn else [None] * len(mean)
        cells = [f"{m:.5f}" + (f" ({m / o:.2f}x)" if o else "") for m, o in zip(mean, base, strict=True)]
        print(f"| {spp} | {model_id} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
