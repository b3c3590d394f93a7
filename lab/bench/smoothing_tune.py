"""How engine/temporal_filter.py's settings were chosen: temporal smoothing of per-frame restored frames on the
Cycles TRAINING shots (engine/render_data/cycles_shot.py seeds 50000-50008, 4 and 16 spp), scored against their
independent 128-spp renders with tonemapped errors (per frame, and of the frame-to-frame change): those renders'
fireflies swamp relMSE. Never use it on the validation shots to choose anything: they are what bench/flicker.py
measures.

    .venv/bin/python lab/bench/smoothing_tune.py 0.3:0.5:cubic:restored 0.5:0.5:cubic:restored 0.3:0.5:cubic:mean \
        [--out lab/bench/results/smoothing_tune.md]

Each setting is WEIGHT:SPREAD:INTERPOLATION:CENTRE (the history's warp: linear | cubic; the clamp centred on the
restored pixel or on the noisy neighbourhood's mean); the first row is always no smoothing. The per-frame restorations
are cached in $SMOOTHING_CACHE (default /tmp/smoothing_tune). The runs of 2026-12-07 chose 0.3:0.5:cubic:restored.
Rerun the same day with --out (lab/bench/results/smoothing_tune.md): it is no worse per frame than no smoothing for
OIDN + AOVs and KPRCAN at 4 and 16 spp and takes out 13-20% of the frame-to-frame error; so are 0.3:0.25 (less
flicker taken out) and the bilinear warp (equal to five digits on these 96x96 shots: the bicubic warp's advantage
was argued, not measured here); weight 0.5 and above, spread 1 or the mean-centred clamp are worse per frame for
OIDN + AOVs at 16 spp.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

import engine.temporal_filter as temporal_filter
from engine.imageio import read_image
from engine.jobs import run_job
from engine.models.registry import ModelRegistry
from engine.motion import PreviousFrame, trusted_mask, usable_motion, warp
from engine.restore import restore_job

SHOTS = Path(os.environ.get("CYCLES_SHOTS", "/work/wt/shared_data/cycles_shots"))
CACHE = Path(os.environ.get("SMOOTHING_CACHE", "/tmp/smoothing_tune"))
METHODS = {"oidn-aov": {"prefilter": "accurate"}, "render-kprcan-aov": {}}


def training_shots() -> list[dict]:
    """Per training shot: its frame files, their 128-spp renders and each method's per-frame results (cached as
    arrays, one .npz per shot)."""
    registry, shots = None, []
    CACHE.mkdir(parents=True, exist_ok=True)
    for info_path in sorted(SHOTS.glob("shot_*_spp*/shot.json")):
        if json.loads(info_path.read_text())["seed"] >= 90000:
            continue  # a validation shot: never used here
        frames = sorted(info_path.parent.glob("frame_[0-9][0-9][0-9][0-9].exr"))
        cached = CACHE / f"{info_path.parent.name}.npz"
        if not cached.exists():
            registry = registry or ModelRegistry()
            arrays: dict[str, list] = {"targets": [], **{m: [] for m in METHODS}}
            for path in frames:
                image = read_image(path)
                arrays["targets"].append(read_image(path.with_name(path.stem + "_target.exr")).pixels[:, :, :3])
                for method, params in METHODS.items():
                    job = restore_job(image, registry.get(method), params, device="cpu", threads=1)
                    arrays[method].append(run_job(job).image.pixels[:, :, :3])
            np.savez(cached, **{key: np.stack(value) for key, value in arrays.items()})
            print("restored", info_path.parent.name, file=sys.stderr)
        with np.load(cached) as data:
            shots.append({"name": info_path.parent.name, "frames": frames, "targets": list(data["targets"]),
                          "restored": {m: list(data[m]) for m in METHODS}})
    return shots


def smoothed(shot: dict, method: str, weight: float, spread: float, interpolation: str, centre: str) -> list:
    outputs, previous = [], None
    for index, path in enumerate(shot["frames"]):
        image, restored = read_image(path), shot["restored"][method][index]
        found, _ = usable_motion(image)
        out = restored
        if previous is not None and found is not None and weight > 0:
            flow = found.backward()
            history = np.maximum(warp(previous.output, flow, interpolation=interpolation), 0.0)
            out = temporal_filter.smooth_frame(restored, image.pixels, history, trusted_mask(flow, previous.forward),
                                               weight, spread, centre)
        outputs.append(out)
        previous = PreviousFrame(index, image.pixels, out, found.forward() if found else None)
    return outputs


def tonemapped(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, None)
    return x / (1.0 + x)


def scores(outputs: list, targets: list) -> tuple[float, float]:
    """Tonemapped MSE per frame, and of the frame-to-frame change against the targets' change."""
    out, ref = [tonemapped(o) for o in outputs], [tonemapped(t) for t in targets]
    per_frame = np.mean([np.mean((o - r) ** 2) for o, r in zip(out, ref, strict=True)])
    change = np.mean([np.mean(((out[t] - out[t - 1]) - (ref[t] - ref[t - 1])) ** 2) for t in range(1, len(out))])
    return float(per_frame), float(change)


def main(argv: list[str]) -> int:
    out = None
    if "--out" in argv:
        index = argv.index("--out")
        out, argv = Path(argv[index + 1]), argv[:index] + argv[index + 2:]
    settings = [(0.0, 1.0, "linear", "restored")]
    for item in argv:
        weight, spread, interpolation, centre = item.split(":")
        settings.append((float(weight), float(spread), interpolation, centre))
    shots = training_shots()
    lines = ["| method | spp | weight | spread | warp | clamp centre | tonemapped MSE per frame | of the change |",
             "|---|---|---|---|---|---|---|---|"]
    for method in METHODS:
        for spp in ("0004", "0016"):
            group = [s for s in shots if s["name"].endswith(spp)]
            for setting in settings:
                results = [scores(smoothed(s, method, *setting), s["targets"]) for s in group]
                per_frame, change = np.mean(results, axis=0)
                print(f"{method:18s} {int(spp)} spp {setting}: per frame {per_frame:.5f}, change {change:.5f}")
                weight, spread, interpolation, centre = setting
                lines.append(f"| `{method}` | {int(spp)} | {weight:g} | {spread:g} | {interpolation} | {centre} | "
                             f"{per_frame:.5f} | {change:.5f} |")
    if out is not None:
        command = "nice -n 10 .venv/bin/python lab/bench/smoothing_tune.py " + " ".join(argv) + f" --out {out}"
        out.write_text(f"## Temporal smoothing settings on the Cycles training shots ({len(shots)} sequences: "
                       "seeds 50000-50008 at 4 and 16 spp, "
                       "tonemapped x / (1 + x) errors against their independent 128-spp renders; the first row of "
                       "each group is no smoothing)\n\n" + "\n".join(lines) + f"\n\nCommand: `{command}`\n",
                       encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
