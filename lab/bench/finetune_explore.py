"""Choosing the per-shot fine-tuning recipe's settings without looking at the frames the benchmark scores.

One fine-tune of ``render-kprcan-aov`` with recipes/render_kprcan_aov_finetune.toml, some fields overridden, on a
Cycles validation shot's fine-tuning folder exactly as bench/render_finetune.py builds it (the even frames 0, 2, 4
train; the last even frame, 6, is the trainer's validation frame), scored in relMSE on that held-out frame 6 only,
beside Blender's own OIDN result of the same noisy render, and blended with the app's OIDN (+ albedo + normal) at
network shares 0.3-1.0. The odd frames that bench/render_finetune.py reports are never read. One JSON line per run
(append them to a log with ``>>``).

    PYTHONPATH=$PWD nice -n 15 .venv/bin/python lab/bench/finetune_explore.py \
        /work/wt/shared_data/cycles_shots/shot_095002_spp0004 --steps 300 \
        --set data.patch_size=64 train.lr=5e-4 data.augment=false --tag noaug

Runs of 2026-12-07 (1 thread, nice 15, 300 steps, about 1.5 CPU-minutes each, shot 95002 at 4 spp, the shot
where the fine-tune was furthest behind Blender's OIDN): lab/bench/results/finetune_explore.jsonl ("ratio": relMSE
over Blender's OIDN on held-out frame 6). Their overrides apply to the recipe as it was before they chose its
present settings (lr 1.5e-4, patch 128 (96 on these frames), flips/rotations with normal rotation and RGB
permutation, exposure jitter 1 stop, relMSE weight 0.25); the first line is that recipe at patch 64: 1.03x.
lr 5e-4 0.99x (1e-3 1.04x, whole 96 px frames 1.01x); without normal/RGB augmentation 0.97x, also without exposure
jitter 0.93x, without any augmentation 0.90x (lr 3e-4 0.98x); relMSE weight 2: 0.86x (8: 0.86x).
That recipe (lr 5e-4, no augmentation, relMSE weight 2) then kept its step-50 weights on shot 95000 at 4 spp (its
held-out frame got worse after that: a static camera lets it memorise, a panning one does not), so a second round
(the later lines, overrides of that recipe) compared on both shots' held-out frames: on 95000, lr 5e-4 with flips
1.19x, lr 1.5e-4 1.07x, the recipe before all this 1.15x; on 95002, lr 1.5e-4 0.97x (before: 1.03x). Chosen: lr
1.5e-4, no augmentation, relMSE weight 2, 64 px patches, better than the former recipe on both held-out frames.
On the scored odd frames (bench/results/render_finetune_cycles_shots.md) it won on 95002 @ 4 spp but lost on 95000
@ 4 spp, so the shipped recipe kept its settings; these are lab/recipes/render_kprcan_aov_finetune_shot.toml. One
held-out frame is a noisy judge: the trainer's best step on it was 100-450 of 600.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench import render_finetune as rf  # the repository root on the path: run as the docstring says
from engine.jobs import run_job
from engine.metrics import relmse
from engine.models.builtin import BUILTIN_ENGINES
from engine.restore import restore_job
from engine.training.recipes import load_recipe

ROOT = Path(__file__).resolve().parents[2]

RECIPE = ROOT / "recipes" / "render_kprcan_aov_finetune.toml"


def override(recipe, items):
    """``section.field=value`` (value as JSON when it parses, else a string) for each item."""
    for item in items:
        key, value = item.split("=", 1)
        section, field = key.split(".")
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
        recipe = recipe.replace(**{section: replace(getattr(recipe, section), **{field: value})})
    return recipe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shot", help="a Cycles validation shot folder (seed 95000+)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--set", nargs="*", default=[], metavar="SECTION.FIELD=VALUE")
    parser.add_argument("--tag", default="run")
    parser.add_argument("--base", default="render-kprcan-aov")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    recipe = override(load_recipe(RECIPE), args.set)
    folder = Path(args.shot)
    _, train, _ = rf.prepare_cycles_shot(folder)
    held = max(int(p.stem[6:10]) for p in train.glob("frame_*_ref.exr"))  # the trainer's validation frame
    frames = rf.scored_frames(folder, [held])
    blender = rf.blender_oidn(folder, frames)["rel_mse"]
    entry, info = rf.fine_tune(recipe, args.base, train, 600.0, "explore_" + args.tag, 1, None, args.steps)
    _, image, reference = frames[0]
    ours = run_job(restore_job(image, entry, None, device="cpu", threads=1)).image.pixels
    oidn = next(e.entry() for e in BUILTIN_ENGINES if e.manifest.id == "oidn-aov")
    theirs = run_job(restore_job(image, oidn, rf.PARAMS["oidn-aov"], device="cpu", threads=1)).image.pixels
    score = relmse(ours, reference)
    blend = {f"{w:.1f}": round(relmse(w * ours + (1 - w) * theirs, reference) / blender, 3)
             for w in np.arange(0.3, 1.01, 0.1)}
    print(json.dumps({"tag": args.tag, "shot": folder.name, "set": args.set, "steps": info["steps"],
                      "cpu_min": round(info["cpu_seconds"] / 60, 2), "held_out_frame": held, "relmse": score,
                      "blender_oidn": blender, "ratio": round(score / blender, 3),
                      "best_val_psnr": info["best_val_psnr"], "blend_ratio": blend}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
