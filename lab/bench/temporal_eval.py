"""Flicker and per-frame error of a temporal render denoiser beside the per-frame ones, on shots no training saw.

Per shot folder (``render-shot``'s layout with its ``motion`` layers: Mitsuba seeds 92000+ by default, rendered
into runs/shots/val when missing) and method, two figures (:func:`engine.metrics.shot_scores`, as bench/flicker.py
and the temporal trainer's validation report them):

- ``relMSE``: per-frame relMSE (:func:`engine.metrics.relmse`) against the frame's reference, mean over the frames;
- ``flicker``: :func:`engine.metrics.temporal_relmse`, the relMSE of the frame-to-frame change (out[t] - out[t-1])
  against (ref[t] - ref[t-1]), normalised by ((ref[t] + ref[t-1]) / 2)^2 + 0.01, mean over t >= 1.

Cycles validation shots (/work/wt/shared_data/cycles_shots, seeds 95000+, Blender's ``Vector`` pass) are read by
the app's EXR reader; their frames' ``previous_valid`` is the inside mask times the pass's forward/backward
consistency, as the shot restorer computes it for Blender.

Methods: ``noisy``; on Cycles shots ``blender-oidn`` (Blender's own OIDN result saved beside each frame);
``oidn-aov`` (the app's OIDN with albedo + normal, prefilter accurate) and
``render-kprcan-aov`` frame by frame through the app's restore job; the temporal model (``--model``: an ONNX
file with its manifest beside it) run recurrently **here**, with ONNX Runtime and engine.motion only (no torch),
by the rule engine/motion.py states for the shot restorer: frame 0 with ``previous_valid`` = 0 and its own colour
as history; frame t with frame t - 1's noisy colour and restored result warped by frame t's motion layer
(engine's generic backward flow) and ``previous_valid`` = the warp's inside mask (a two-channel motion pass has no
forward flow for a disocclusion test). Each frame goes into log1p space with its own ``auto_exposure_scale``, as
the restore job converts a single image. (bench/flicker.py measures shipped temporal models through the app's own
shot restorer, engine/shot.py, instead.)

    nice -n 15 .venv/bin/python lab/bench/temporal_eval.py --model runs/temporal_export/render-kprcan-temporal.onnx \
        [--shots runs/shots/val/shot_92000 ...] [--out lab/bench/results/temporal_eval]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent

from engine.imageio import read_image  # noqa: E402
from engine.jobs import run_job  # noqa: E402
from engine.metrics import shot_scores  # noqa: E402
from engine.motion import inside_mask, warp  # noqa: E402
from engine.training.temporal import frame_files, load_shot  # noqa: E402
from engine.transforms import auto_exposure_scale, from_model_space, to_model_space  # noqa: E402

CYCLES = Path("/work/wt/shared_data/cycles_shots")
#: Mitsuba shots of render-shot (seeds 92000+) and s3-data's Cycles validation shots (seeds 95000+).
DEFAULT_SHOTS = (tuple(f"runs/shots/val/shot_{92000 + i}" for i in range(2))
                 + tuple(str(CYCLES / f"shot_{95000 + i:06d}_spp{spp:04d}") for i in range(3) for spp in (4, 16)))
PER_FRAME = ("oidn-aov", "render-kprcan-aov")
PARAMS = {"oidn-aov": {"prefilter": "accurate"}}


def run_temporal(session, shot) -> np.ndarray:
    """The temporal ONNX model over a shot, recurrently (see the module docstring): linear (F, H, W, 3)."""
    names = [i.name for i in session.get_inputs()]
    outputs = []
    for t in range(shot.color.shape[0]):
        color = shot.color[t]
        scale = auto_exposure_scale(color)
        if t == 0:
            previous_color, previous_output = color, color
            valid = np.zeros(color.shape[:2] + (1,), np.float32)
        else:
            flow = shot.flow[t]
            previous_color = warp(shot.color[t - 1], flow)
            previous_output = warp(outputs[-1], flow)
            # what the shot restorer knows: the inside mask, times the motion pass's own consistency where it has
            # forward vectors too (Blender); never render-shot's exact visibility
            valid = inside_mask(flow) * (1.0 if shot.exact_visibility else shot.visible[t])
            valid = valid[:, :, None].astype(np.float32)
        layers = {"color": to_model_space(color.copy(), "log1p", True, scale),
                  "albedo": shot.albedo[t], "normal": shot.normal[t],
                  "previous_color": to_model_space(np.array(previous_color), "log1p", True, scale),
                  "previous_output": to_model_space(np.array(previous_output), "log1p", True, scale),
                  "previous_valid": valid}
        feed = {name: np.ascontiguousarray(layers[name].transpose(2, 0, 1)[None], np.float32) for name in names}
        out = session.run(None, feed)[0][0].transpose(1, 2, 0)
        outputs.append(from_model_space(np.ascontiguousarray(out), "log1p", True, scale))
    return np.stack(outputs)


def run_per_frame(entry, folder: Path) -> np.ndarray:
    """The entry frame by frame through the app's restore job, cached in runs/eval_cache (the per-frame methods do
    not change between runs of this script)."""
    from engine.restore import restore_job

    cache = ROOT / "runs" / "eval_cache" / f"{folder.parent.name}_{folder.name}_{entry.id}.npy"
    if cache.is_file():
        return np.load(cache)
    frames = []
    for path in frame_files(folder):
        image = read_image(path)
        result = run_job(restore_job(image, entry, device="cpu", params=PARAMS.get(entry.id, {})))
        frames.append(result.image.pixels[:, :, :3])
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, np.stack(frames))
    return np.stack(frames)


def blender_oidn(folder: Path) -> np.ndarray | None:
    """Blender's own OIDN results of the noisy frames (Cycles shots: NAME_blender.exr), or None."""
    paths = [p.with_name(p.stem + "_blender.exr") for p in frame_files(folder)]
    if not all(p.is_file() for p in paths):
        return None
    return np.stack([read_image(p).pixels[:, :, :3] for p in paths])


def ensure_shot(folder: Path) -> None:
    if (folder / "shot.json").is_file():
        return
    from engine.render_data.generate import ShotRequest, generate_shot

    seed = int(folder.name.split("_")[-1])
    run_job(generate_shot(ShotRequest(out=folder, seed=seed, frames=10, spp=4 if seed % 2 == 0 else 16,
                                      ref_spp=1024, width=128, height=128, threads=1,
                                      orbit_degrees=30.0 if seed % 3 == 0 else -20.0)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="the temporal model's .onnx (its manifest beside it)")
    parser.add_argument("--shots", nargs="+", default=list(DEFAULT_SHOTS))
    parser.add_argument("--out", type=Path, default=ROOT / "lab" / "bench" / "results" / "temporal_eval")
    args = parser.parse_args()

    import onnxruntime as ort

    from engine.models.registry import ModelRegistry

    registry = ModelRegistry()
    entries = [registry.get(model_id) for model_id in PER_FRAME]
    session = None
    if args.model:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(args.model), options, providers=["CPUExecutionProvider"])
    temporal_name = args.model.stem if args.model else None
    results: dict = {"command": " ".join(shlex.quote(a) for a in sys.argv), "shots": {}}
    for folder in map(Path, args.shots):
        if folder.parent != CYCLES:
            ensure_shot(folder)
        elif not (folder / "shot.json").is_file():
            print(f"{folder}: not rendered (yet), skipped", file=sys.stderr)
            continue
        shot = load_shot(folder)
        info = json.loads((folder / "shot.json").read_text())
        spp = info.get("spp") if isinstance(info.get("spp"), int) else int(folder.name.rsplit("spp", 1)[-1])
        label = f"{folder.name} ({spp} spp, {shot.color.shape[0]} frames, {shot.color.shape[2]} px)"
        row = {"noisy": shot_scores(shot.color, shot.reference)}
        blender = blender_oidn(folder)
        if blender is not None:
            row["blender-oidn"] = shot_scores(blender, shot.reference)
        for entry in entries:
            row[entry.id] = shot_scores(run_per_frame(entry, folder), shot.reference)
        if session is not None:
            started = time.perf_counter()
            row[temporal_name] = shot_scores(run_temporal(session, shot), shot.reference)
            row[temporal_name]["seconds"] = time.perf_counter() - started
        results["shots"][label] = row
        print(label, json.dumps(row), file=sys.stderr, flush=True)
    methods = list(dict.fromkeys(m for row in results["shots"].values() for m in row))
    # means over the shots every method ran on (blender-oidn: the Cycles shots only)
    mean = {m: {k: float(np.mean([row[m][k] for row in results["shots"].values() if m in row]))
                for k in ("relmse", "flicker")} for m in methods}
    results["mean"] = mean
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"## Temporal render denoiser on held-out Mitsuba shots ({when}, {platform.machine()}, CPU)", "",
             f"`{results['command']}`", "",
             "relMSE: per-frame, mean over frames; flicker: relMSE of out[t] - out[t-1] against ref[t] - ref[t-1] "
             "(normalised by ((ref[t] + ref[t-1]) / 2)^2 + 0.01), mean over t >= 1. "
             "Each cell: relMSE / flicker; the mean "
             "is over the shots the method ran on (blender-oidn: the Cycles shots).",
             "", "| method | " + " | ".join(results["shots"]) + " | mean |",
             "|---|" + "---|" * (len(results["shots"]) + 1)]
    for method in methods:
        cells = [f"{row[method]['relmse']:.5f} / {row[method]['flicker']:.5f}" if method in row else "-"
                 for row in results["shots"].values()]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {mean[method]['relmse']:.5f} / "
                     f"{mean[method]['flicker']:.5f} |")
    if temporal_name:
        oidn, ours = mean["oidn-aov"], mean[temporal_name]
        lines += ["", f"Targets (issue 44): flicker at most half of OIDN + AOVs': {ours['flicker']:.5f} vs "
                  f"{oidn['flicker'] / 2:.5f} -> {'met' if ours['flicker'] <= oidn['flicker'] / 2 else 'not met'}; "
                  f"per-frame relMSE no worse than OIDN's: {ours['relmse']:.5f} vs {oidn['relmse']:.5f} -> "
                  f"{'met' if ours['relmse'] <= oidn['relmse'] else 'not met'}."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text, encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
