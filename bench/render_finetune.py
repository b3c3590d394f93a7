"""Per-scene fine-tuning of the render denoiser, as the Train dialog runs it, measured on frames it never saw.

A renderer's user renders a few frames of a shot with many samples, fine-tunes the shipped denoiser on them in
the app, then denoises the rest of the shot. This script does the same on procedural shots (``render-shot``: one
scene, the camera orbiting its target, seeds 92000+ that no training set uses; rendered into bench/work when
missing): the even frames are the fine-tuning folder (the dialog holds one of them out for validation), the odd
frames are scored. Each candidate recipe trains through ``train_job`` exactly as the dialog starts it (base model,
``fine_tuning_lr``, the dialog's budget), is exported to ONNX and runs through the app's restore job, next to the
shipped model and OIDN (colour only and with AOVs).

    nice -n 10 .venv/bin/python bench/render_finetune.py [--minutes 10] [--recipes A.toml B.toml ...] \
        [--shots 92002:4 92003:16] [--base render-kprcan-color] [--out bench/results/NAME]

Default candidates: the recipe the dialog picks (``recipe_for_fine_tuning``) and the recipe that trained the base
model, when they differ. Prints a markdown table; writes bench/results/render_finetune.md and .json.

``--cycles SHOT_DIR ...`` measures on Blender Cycles shots instead (engine/render_data/cycles_shot.py validation
shots, seeds 95000+: 8 frames with the camera and objects moving, 512-spp references, and Blender's own OIDN result
of every noisy frame saved beside it). The fine-tuning set is the even frames' noisy renders with their references
(the "few high-spp frames" an artist renders; the dialog holds one out for validation), the odd frames are scored,
beside ``blender-oidn`` (the saved Blender-denoised frames: OIDN with albedo + normal, prefilter Accurate, as
Blender runs it) and the app's OIDN. The target: the fine-tuned model at least 20% below Blender's OIDN in relMSE.
``--smooth W`` also scores the base model, OIDN + AOVs and each fine-tuned model as the app restores the whole shot
(all frames in order, engine/shot.py) with temporal smoothing W (engine/temporal_filter.py), on the same odd frames.

    nice -n 15 .venv/bin/python bench/render_finetune.py \
        --cycles /work/wt/shared_data/cycles_shots/shot_095000_spp0004 --threads 1 \
        --out bench/results/render_finetune_cycles
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from bench.flicker import PARAMS  # noqa: E402  (peers run as Blender runs its denoiser)
from engine.imageio import read_image  # noqa: E402
from engine.jobs import run_job  # noqa: E402
from engine.metrics import relmse, tonemapped_psnr  # noqa: E402
from engine.models.registry import ModelEntry, ModelRegistry, scan_models_folder  # noqa: E402
from engine.restore import restore_job  # noqa: E402
from engine.training.recipes import fine_tuning_lr, list_recipes, load_recipe, recipe_for_fine_tuning  # noqa: E402
from engine.training.trainer import TrainOptions, train_job  # noqa: E402

WORK = ROOT / "bench" / "work" / "render_shots"
#: (seed, noisy spp): one shot per sample count the render target names.
SHOTS = ((92000, 4), (92001, 16))
FRAMES, SIZE, REF_SPP = 10, 192, 512


def ensure_shot(seed: int, spp: int) -> Path:
    folder = WORK / f"shot_{seed}_spp{spp}"
    if not (folder / "shot.json").is_file():
        from engine.render_data.generate import ShotRequest, generate_shot

        print(f"rendering shot {seed} ({FRAMES} frames at {spp} spp) into {folder} ...", file=sys.stderr)
        run_job(generate_shot(ShotRequest(folder, seed, FRAMES, spp, REF_SPP, SIZE, SIZE, panel_fraction=0.5)))
    train = folder / "fine_tune"
    if not train.is_dir():
        train.mkdir()
        for index in range(0, FRAMES, 2):
            for suffix in ("", "_ref"):
                shutil.copy2(folder / f"frame_{index:04d}{suffix}.exr", train / f"frame_{index:04d}{suffix}.exr")
    return folder


def scored_frames(folder: Path, indices=None) -> list[tuple[str, object, np.ndarray]]:
    indices = range(1, FRAMES, 2) if indices is None else indices
    return [(f"frame_{i:04d}", read_image(folder / f"frame_{i:04d}.exr"),
             read_image(folder / f"frame_{i:04d}_ref.exr").pixels) for i in indices]


def prepare_cycles_shot(folder: Path) -> tuple[dict, Path, list[int]]:
    """A Cycles validation shot: its shot.json, the fine-tuning folder (the even frames' noisy renders and
    references, copied under bench/work) and the odd frames to score."""
    info = json.loads((folder / "shot.json").read_text(encoding="utf-8"))
    if info["seed"] < 90000 or not info.get("ref_spp"):
        raise SystemExit(f"{folder}: not a held-out validation shot (seed {info['seed']}, references "
                         f"{info.get('ref_spp')} spp)")
    indices = sorted(int(p.stem[6:]) for p in folder.glob("frame_[0-9][0-9][0-9][0-9].exr"))
    train = WORK / "cycles" / folder.name / "fine_tune"
    if not train.is_dir():
        partial = train.with_name("fine_tune.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for index in indices[0::2]:
            for suffix in ("", "_ref"):
                shutil.copy2(folder / f"frame_{index:04d}{suffix}.exr", partial / f"frame_{index:04d}{suffix}.exr")
        partial.rename(train)
    return info, train, indices[1::2]


def blender_oidn(folder: Path, frames) -> dict:
    """The saved Blender-denoised frames (``frame_NNNN_blender.exr``) scored like the methods."""
    rows = []
    for name, _, reference in frames:
        pixels = read_image(folder / f"{name}_blender.exr").pixels
        rows.append({"frame": name, "rel_mse": relmse(pixels, reference), "psnr": tonemapped_psnr(pixels, reference)})
    return {"rel_mse": float(np.mean([r["rel_mse"] for r in rows])),
            "psnr": float(np.mean([r["psnr"] for r in rows])), "frames": rows}




def restored(entry: ModelEntry, frames, threads: int = 0) -> list[tuple[np.ndarray, float]]:
    """Each frame restored by ``entry`` (linear HDR) and the seconds it took."""
    outputs = []
    for _, image, _ in frames:
        started = time.perf_counter()
        result = run_job(restore_job(image, entry, PARAMS.get(entry.id), device="cpu", threads=threads))
        outputs.append((result.image.pixels, time.perf_counter() - started))
    return outputs


def score_outputs(outputs, frames) -> dict:
    rows = [{"frame": name, "rel_mse": relmse(pixels, reference), "psnr": tonemapped_psnr(pixels, reference),
             "seconds": seconds} for (pixels, seconds), (name, _, reference) in zip(outputs, frames, strict=True)]
    return {"rel_mse": float(np.mean([r["rel_mse"] for r in rows])),
            "psnr": float(np.mean([r["psnr"] for r in rows])), "frames": rows}


def score(entry: ModelEntry, frames, threads: int = 0) -> dict:
    return score_outputs(restored(entry, frames, threads), frames)


def restored_as_shot(entry: ModelEntry, folder: Path, frames, smoothing: float, user_folder: Path | None = None
                     ) -> list[tuple[np.ndarray, float]]:
    """``frames`` (the scored ones) as the app makes them when it restores the whole shot in ``folder`` with
    ``entry`` and temporal smoothing ``smoothing`` (bench/flicker.py's restore_shot_folder: engine/shot.py's
    restore_shot, engine/temporal_filter.py): every frame in order, each blended with the previous result along the
    motion pass. The seconds are the shot's time shared among its frames. ``user_folder``: the user models folder
    the entry comes from (default: a user entry's own folder), as the app's registry would scan it."""
    from bench.flicker import restore_shot_folder
    from engine.models.registry import default_folders

    folders = list(default_folders())
    if user_folder is None and entry.source == "user" and entry.path is not None:
        user_folder = entry.path.parent
    if user_folder is not None:
        folders.append((user_folder, "user"))
    started = time.perf_counter()
    restored = restore_shot_folder(entry, folder, ModelRegistry(folders), smoothing)
    seconds = (time.perf_counter() - started) / max(1, len(restored))
    return [(restored[name], seconds) for name, _, _ in frames]


#: Network shares tried for the blend of a fine-tuned model with OIDN (``engine/models/hybrid.py``'s blend).
SHARES = tuple(round(0.1 * i, 1) for i in range(11))


def blend_share(ours: np.ndarray, theirs: np.ndarray, reference: np.ndarray) -> float:
    """The network share whose blend with OIDN scores best (relMSE) on one held-out frame."""
    from engine.models.hybrid import blend

    return min(SHARES, key=lambda share: relmse(blend(ours, theirs, share), reference))


def fine_tune(recipe, base: str, data: Path, minutes: float, tag: str, threads: int,
              patch: int | None = None, steps: int | None = None) -> tuple[ModelEntry, dict]:
    run_dir, out_dir = WORK / "runs" / tag, WORK / "models" / tag
    for folder in (run_dir, out_dir):
        shutil.rmtree(folder, ignore_errors=True)
    recipe = recipe.replace(train=replace(recipe.train, lr=fine_tuning_lr(recipe)))
    if patch:
        recipe = recipe.replace(data=replace(recipe.data, patch_size=patch))
    options = TrainOptions(minutes=minutes, data=(str(data),), run_dir=run_dir, out_dir=out_dir,
                           model_id=f"bench-ft-{tag}", model_name=tag, init=base, threads=threads, steps=steps)
    cpu_started = time.process_time()
    result = run_job(train_job(recipe, None, options))
    cpu_seconds = time.process_time() - cpu_started
    found, problems = scan_models_folder(out_dir, "user")
    if problems or not found:
        raise SystemExit(f"{tag}: the fine-tuned model did not export: {problems}")
    info = {"steps": result.steps, "seconds": result.seconds, "lr": recipe.train.lr,
            "train_only": recipe.train.train_only or "everything", "best_val_psnr": result.best_val_psnr,
            "cpu_seconds": cpu_seconds, "patch_size": recipe.data.patch_size}
    return found[0], info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="render-kprcan-aov", help="the shipped model to fine-tune")
    parser.add_argument("--minutes", type=float, default=10.0, help="fine-tuning budget (the dialog's default)")
    parser.add_argument("--recipes", nargs="*", default=None, help="candidate recipe files (default: see above)")
    parser.add_argument("--shots", nargs="*", default=None, metavar="SEED:SPP",
                        help="shots to render and score (default: 92000:4 92001:16, where the recipes' lr was chosen)")
    parser.add_argument("--cycles", nargs="*", default=None, metavar="SHOT_DIR",
                        help="Cycles validation shot folders (cycles_shot.py) instead of the Mitsuba shots")
    parser.add_argument("--patch", type=int, default=None,
                        help="training patch size (default: the recipe's; smaller frames need a smaller one: the "
                        "recipes' 128 does not fit the 96x96 Cycles shots)")
    parser.add_argument("--steps", type=int, default=None,
                        help="also stop after this many steps (on a busy machine the wall-clock budget buys fewer "
                        "CPU-minutes: give a step count worth the CPU budget and a larger --minutes)")
    parser.add_argument("--blend", action="store_true",
                        help="Cycles shots: also score each fine-tuned model blended with Intel's OIDN (+ albedo + "
                        "normal), the network's share chosen on the held-out reference frame (a combination with "
                        "Intel's network, labelled so in the table); with --smooth also the blend the app offers for "
                        "a fine-tuned network (<network>-oidn, its default share) over the whole shot, smoothed")
    parser.add_argument("--smooth", type=float, default=None, metavar="WEIGHT",
                        help="Cycles shots: also score the base model, OIDN + AOVs and each fine-tuned model as the "
                             "app restores a whole shot, with temporal smoothing of this weight "
                             "(engine/temporal_filter.py), as '<method> + smoothing'")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "render_finetune"))
    args = parser.parse_args()
    started = time.perf_counter()
    registry = ModelRegistry(include_classical=False)
    base = registry.get(args.base)
    made_by = str(base.manifest.provenance.get("recipe", ""))
    if args.recipes:
        candidates = [load_recipe(Path(p)) for p in args.recipes]
    else:
        recipes = list_recipes()
        picked = recipe_for_fine_tuning(recipes, made_by)
        original = recipe_for_fine_tuning([r for r in recipes if not r.train.for_fine_tuning], made_by)
        candidates = [r for r in (picked, original) if r is not None]
        candidates = [r for i, r in enumerate(candidates) if all(r is not c for c in candidates[:i])]
    from engine.models.builtin import BUILTIN_ENGINES

    peers = [e.entry() for e in BUILTIN_ENGINES
             if e.manifest.task == "render-denoise" and e.available()]
    results: dict = {"base": args.base, "minutes": args.minutes, "shots": {},
                     "command": ".venv/bin/python bench/render_finetune.py " + shlex.join(sys.argv[1:])}
    jobs = []  # (label, folder, fine-tuning folder, scored frame indices, tag, Blender's OIDN saved)
    if args.cycles:
        for path in args.cycles:
            folder = Path(path)
            info, train, odd = prepare_cycles_shot(folder)
            jobs.append((f"Cycles {info['seed']} @ {info['noisy_spp']} spp", folder, train, odd,
                         f"cycles{info['seed']}_spp{info['noisy_spp']}", True))
        results["data"] = (f"Cycles shots of {info['frames']} frames ({info['width']}x{info['height']}, "
                           f"{info['ref_spp']}-spp references): fine-tuned on the {len(range(0, info['frames'], 2))} "
                           "even frames (one held out for validation), scored on the odd ones")
    shots = SHOTS if not args.shots else [tuple(int(v) for v in shot.split(":")) for shot in args.shots]
    if not args.cycles or args.shots:
        for seed, spp in shots:
            folder = ensure_shot(seed, spp)
            jobs.append((f"{seed} @ {spp} spp", folder, folder / "fine_tune", None, str(seed), False))
        results.setdefault("data", f"Shots of {FRAMES} frames ({SIZE}x{SIZE}, {REF_SPP}-spp references): fine-tuned "
                           "on the 5 even frames (one held out for validation), scored on the 5 odd ones")
    score_threads = args.threads if args.cycles else 0
    for label, folder, train, indices, shot_tag, has_blender in jobs:
        frames = scored_frames(folder, indices)
        shot = {"noisy": {"rel_mse": float(np.mean([relmse(i.pixels, r) for _, i, r in frames])),
                          "psnr": float(np.mean([tonemapped_psnr(i.pixels, r) for _, i, r in frames]))}}
        if has_blender:
            shot["blender-oidn"] = blender_oidn(folder, frames)
        shot[args.base] = score(base, frames, score_threads)
        smoothed = f" + smoothing {args.smooth:g}" if args.smooth and has_blender else ""
        if smoothed:
            shot[args.base + smoothed] = score_outputs(restored_as_shot(base, folder, frames, args.smooth), frames)
        peer_outputs = {}
        for peer in peers:
            peer_outputs[peer.id] = restored(peer, frames, score_threads)
            shot[peer.id] = score_outputs(peer_outputs[peer.id], frames)
            if smoothed and peer.id in ("oidn-aov", "render-kprcan-oidn"):  # the bundled blend: what a fine-tune adds
                shot[peer.id + smoothed] = score_outputs(restored_as_shot(peer, folder, frames, args.smooth), frames)
        for recipe in candidates:
            stem = Path(str(recipe.source)).stem
            tag = f"{stem}_{shot_tag}"
            entry, info = fine_tune(recipe, args.base, train, args.minutes, tag, args.threads, args.patch, args.steps)
            outputs = restored(entry, frames, score_threads)
            shot[stem] = {**score_outputs(outputs, frames), **info}
            if smoothed:
                shot[stem + smoothed] = {**score_outputs(restored_as_shot(entry, folder, frames, args.smooth), frames),
                                         **{k: v for k, v in info.items() if k != "cpu_seconds"}}
            if args.blend and indices is not None and "oidn-aov" in peer_outputs:
                # The fine-tuned network blended with Intel's OIDN (+ albedo + normal), its share chosen on the
                # frame the fine-tune held out for validation (the last even frame), never on the scored ones.
                held = scored_frames(folder, [sorted(int(p.stem[6:10]) for p in train.glob("frame_*_ref.exr"))[-1]])
                oidn = next(p for p in peers if p.id == "oidn-aov")
                share = blend_share(restored(entry, held, score_threads)[0][0],
                                    restored(oidn, held, score_threads)[0][0], held[0][2])
                from engine.models.hybrid import blend

                mixed = [(blend(ours, theirs, share), ours_seconds + theirs_seconds)  # both models run
                         for (ours, ours_seconds), (theirs, theirs_seconds)
                         in zip(outputs, peer_outputs["oidn-aov"], strict=True)]
                shot[f"{stem} + oidn-aov"] = {**score_outputs(mixed, frames), "share": share,
                                              "combination": "with Intel's OIDN"}
                if smoothed:
                    # As the app offers it: the fine-tuned network's own blend with OIDN (engine/models/hybrid.py,
                    # registry id <network>-oidn, its default share), over the whole shot with temporal smoothing.
                    from engine.models.hybrid import USER_SHARE, USER_SUFFIX

                    blended = ModelRegistry([(entry.path.parent, "user")]).get(entry.id + USER_SUFFIX)
                    shot[f"{stem} + oidn-aov{smoothed}"] = {
                        **score_outputs(restored_as_shot(blended, folder, frames, args.smooth, entry.path.parent),
                                        frames), "share": USER_SHARE, "combination": "with Intel's OIDN"}
            if has_blender:
                for method in (stem, f"{stem} + oidn-aov", stem + smoothed, f"{stem} + oidn-aov{smoothed}"):
                    if method in shot:
                        shot[method]["vs_blender_oidn"] = shot[method]["rel_mse"] / shot["blender-oidn"]["rel_mse"]
            print(f"{label}, {tag}: {shot[stem]['rel_mse']:.5f}", file=sys.stderr)
        results["shots"][label] = shot
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"## Per-scene fine-tuning of `{args.base}` (one run, {when}, "
             f"{platform.processor() or platform.machine()}, {args.threads} threads, {args.minutes:g} min per run)", "",
             f"{results['data']}. relMSE / tonemapped PSNR (dB), mean over the scored frames.", "",
             "| method | " + " | ".join(results["shots"]) + " | steps | lr | trains |",
             "|---|" + "---|" * (len(results["shots"]) + 3)]
    methods = list(dict.fromkeys(m for shot in results["shots"].values() for m in shot))
    for method in methods:
        cells = []
        for shot in results["shots"].values():
            r = shot.get(method)
            cells.append(f"{r['rel_mse']:.5f} / {r['psnr']:.2f}" if r else "-")
        runs = [shot[method] for shot in results["shots"].values() if "steps" in shot.get(method, {})]
        steps = "/".join(str(r["steps"]) for r in runs) or "-"
        lr = f"{runs[0]['lr']:.2g}" if runs else "-"
        trains = runs[0]["train_only"] if runs else "-"
        recipe_stem, _, smoothing = method.partition(" + smoothing ")
        label = f"fine-tuned with `{recipe_stem}.toml`" if runs else f"`{recipe_stem}`"
        if smoothing:
            label += f", the whole shot restored by the app with temporal smoothing {smoothing}"
        shares = [shot[method]["share"] for shot in results["shots"].values() if "share" in shot.get(method, {})]
        if shares:
            recipe_stem = method.split(" + ")[0]
            label = (f"COMBINATION with Intel's OIDN: fine-tuned `{recipe_stem}.toml` blended with `oidn-aov` "
                     f"(network share {'/'.join(f'{v:g}' for v in shares)}, chosen on the held-out frame)")
            if smoothing:
                label = (f"COMBINATION with Intel's OIDN: the fine-tuned network's blend with OIDN as the app offers "
                         f"it (`<network>-oidn`, share {shares[0]:g}), the whole shot restored with temporal "
                         f"smoothing {smoothing}")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {steps} | {lr} | {trains} |")
    verdicts = [(label, method, r["vs_blender_oidn"]) for label, shot in results["shots"].items()
                for method, r in shot.items() if "vs_blender_oidn" in r]
    if verdicts:
        lines += ["", "Target: fine-tuned at least 20% below Blender's OIDN in relMSE on the shot's other frames "
                  "(ratio <= 0.80):", ""]
        intel = " (a combination with Intel OIDN)"
        lines += [f"- {label}, `{method}`{intel if ' + oidn-aov' in method else ''}: "
                  f"{ratio:.2f}x Blender's OIDN: {'met' if ratio <= 0.8 else 'not met'}"
                  for label, method, ratio in verdicts]
    runs = [r for shot in results["shots"].values() for r in shot.values() if "cpu_seconds" in r]
    if runs:
        lines += ["", "Fine-tuning CPU time (process): " + ", ".join(f"{r['cpu_seconds'] / 60:.1f} min" for r in runs)
                  + f" for a {args.minutes:g}-minute wall-clock budget."]
    lines += ["", f"Command: `{results['command']}`"]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text, encoding="utf-8")
    results["seconds"] = time.perf_counter() - started
    out.with_suffix(".json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
