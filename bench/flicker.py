"""Flicker of render denoisers on shots no training saw: per-frame relMSE beside the temporal error.

Per method and shot (frames 0..N-1 of one shot at one noisy sample count, each with its reference):

- ``relMSE``: :func:`engine.metrics.relmse` of every frame against its reference, mean over the frames;
- ``temporal``: :func:`engine.metrics.temporal_relmse`: the relMSE of the frame-to-frame change,
  ``(out[t] - out[t-1])`` against ``(ref[t] - ref[t-1])``, normalised by the reference's magnitude over the two frames
  (``((ref[t] + ref[t-1]) / 2)^2 + 0.01``), mean over t = 1..N-1. It is the change of the error from one frame to the
  next: 0 for a steady error, about 2x the relMSE for errors independent from frame to frame (docs/benchmarks.md).

Data (never trained on): the Cycles validation shots of engine/render_data/cycles_shot.py (seeds 95000+,
``--cycles DIR``, default /work/wt/shared_data/cycles_shots or $CYCLES_SHOTS: 8 frames, 96x96, 4 and 16 spp,
512-spp references), and Mitsuba shots of ``render-shot`` (``--mitsuba SEED:SPP ...``, seeds 92010+, rendered into
bench/work/flicker_shots when missing; the camera orbits; no motion pass). Methods:

- ``noisy``: the input;
- ``blender-oidn``: Blender's own OIDN result of the same noisy render (Cycles shots: ``frame_NNNN_blender.exr``,
  OIDN with albedo + normal, prefilter Accurate, as an artist gets it);
- ``oidn-aov``: the app's OIDN with albedo + normal, prefilter accurate, frame by frame;
- ``render-kprcan-aov``, ``render-kprcan-color``: our per-frame networks;
- ``--models ID|PATH ...``: any model id of the registry, or a folder / manifest / ONNX file of a trained model;
- ``--smooth WEIGHT``: every model again through the shot restorer with temporal smoothing
  (engine/temporal_filter.py), as ``<id> + smoothing WEIGHT``.
  A model whose manifest's inputs include engine.motion.TEMPORAL_INPUTS (a temporal model) runs through the shot
  restorer (:func:`engine.shot.restore_shot`: frame t - 1's input and output warped by the motion pass); all others
  through the restore job frame by frame.

Every network runs through the app's restore job (same tiling and transforms as the CLI), on the CPU.

    nice -n 15 .venv/bin/python bench/flicker.py [--cycles DIR] [--mitsuba 92010:4 92011:16] [--models ID|PATH ...]
        [--threads 1] [--out bench/results/flicker]

Prints markdown tables; writes OUT.md and OUT.json (with the command).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from engine.imageio import read_image  # noqa: E402
from engine.jobs import run_job  # noqa: E402
from engine.metrics import relmse, shot_scores  # noqa: E402
from engine.models.registry import ModelEntry, ModelRegistry, default_folders, scan_models_folder  # noqa: E402
from engine.motion import TEMPORAL_INPUTS  # noqa: E402
from engine.restore import restore_job  # noqa: E402

CYCLES = Path(os.environ.get("CYCLES_SHOTS", "/work/wt/shared_data/cycles_shots"))
#: Seeds below this may be in a training set (engine/render_data: training seeds stay under 90000).
HELD_OUT = 90000
WORK = ROOT / "bench" / "work" / "flicker_shots"
MITSUBA_FRAMES, MITSUBA_SIZE, MITSUBA_REF_SPP = 8, 96, 512
DEFAULT_MITSUBA = ("92010:4", "92011:16")
#: The methods every run has (besides noisy and, on Cycles shots, Blender's own OIDN).
DEFAULT_MODELS = ("oidn-aov", "render-kprcan-aov", "render-kprcan-color")
#: Parameters that make a method run as the brief says (OIDN as Blender runs it).
PARAMS = {"oidn-aov": {"prefilter": "accurate"}}


@dataclass
class Shot:
    """One shot at one noisy sample count: its noisy frames, references and (Cycles) Blender's OIDN frames."""

    name: str
    set: str
    folder: Path
    spp: int
    ref_spp: int
    frames: list[Path]
    references: list[np.ndarray] = field(repr=False)
    blender: list[Path] | None = None

    @property
    def group(self) -> str:
        return f"{self.set} {self.spp} spp"


def _frames(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("frame_[0-9][0-9][0-9][0-9].exr"))


def cycles_shots(root: Path) -> list[Shot]:
    """The complete Cycles validation shots under ``root`` (those with a reference and a shot.json)."""
    shots = []
    for info_path in sorted(root.glob("shot_*_spp*/shot.json")):
        info = json.loads(info_path.read_text(encoding="utf-8"))
        folder = info_path.parent
        if not info.get("ref_spp"):
            continue  # a training shot (Noise2Noise targets, no reference)
        if info["seed"] < HELD_OUT:
            raise SystemExit(f"{folder}: seed {info['seed']} is in the training range; use held-out shots")
        frames = _frames(folder)
        shots.append(Shot(folder.name, "Cycles", folder, int(info["noisy_spp"]), int(info["ref_spp"]), frames,
                          [read_image(f.with_name(f.stem + "_ref.exr")).pixels for f in frames],
                          [f.with_name(f.stem + "_blender.exr") for f in frames]))
    return shots


def mitsuba_shot(seed: int, spp: int) -> Shot:
    """A Mitsuba ``render-shot`` (rendered into bench/work/flicker_shots on first use: one thread)."""
    if seed < HELD_OUT:
        raise SystemExit(f"Mitsuba shot seed {seed} is in the training range; use {HELD_OUT}+")
    folder = WORK / f"shot_{seed}_spp{spp}"
    if not (folder / "shot.json").is_file():
        from engine.render_data.generate import ShotRequest, generate_shot

        print(f"rendering Mitsuba shot {seed} ({MITSUBA_FRAMES} frames at {spp} spp) into {folder} ...",
              file=sys.stderr)
        run_job(generate_shot(ShotRequest(folder, seed, MITSUBA_FRAMES, spp, MITSUBA_REF_SPP, MITSUBA_SIZE,
                                          MITSUBA_SIZE, threads=1)))
    frames = _frames(folder)
    return Shot(folder.name, "Mitsuba", folder, spp, MITSUBA_REF_SPP, frames,
                [read_image(f.with_name(f.stem + "_ref.exr")).pixels for f in frames])


def is_temporal(entry: ModelEntry) -> bool:
    return any(name in entry.manifest.inputs for name in TEMPORAL_INPUTS)


def restore_frames(entry: ModelEntry, shot: Shot, threads: int) -> list[np.ndarray]:
    """Every frame restored on its own (a per-frame model)."""
    params = PARAMS.get(entry.id)
    return [run_job(restore_job(read_image(path), entry, params, device="cpu", threads=threads)).image.pixels
            for path in shot.frames]


def restore_shot_folder(entry: ModelEntry, folder: Path, registry: ModelRegistry, smoothing: float = 0.0
                        ) -> dict[str, np.ndarray]:
    """Every frame of the shot in ``folder`` (``frame_####.exr``) restored in order by the app's shot restorer
    (engine/shot.py: a temporal model sees frame t - 1 warped onto frame t; ``smoothing`` > 0 blends each result
    with the previous one along the motion pass), as {frame file stem: linear HDR pixels}. It writes the frames to a
    temporary folder, read back here. bench/render_finetune.py uses it too."""
    from engine.shot import ShotRestoreRequest, find_shot, restore_shot

    with tempfile.TemporaryDirectory(prefix="shot_restore_") as out:
        shot_frames = find_shot(str(folder / "frame_####.exr"))
        request = ShotRestoreRequest(shot_frames, out, model_id=entry.id, params=PARAMS.get(entry.id, {}), device="cpu",
                                     smoothing=smoothing)
        result = run_job(restore_shot(request, registry=registry))
        if result.failed:
            raise SystemExit(f"{entry.id} on {folder.name}: {result.failed} frames failed")
        return {path.stem: read_image(path).pixels for path in sorted(Path(out).glob("*.exr"))}


def restore_sequence(entry: ModelEntry, shot: Shot, registry: ModelRegistry,
                     smoothing: float = 0.0) -> list[np.ndarray]:
    """The shot's frames restored in order by the shot restorer (:func:`restore_shot_folder`)."""
    restored = restore_shot_folder(entry, shot.folder, registry, smoothing)
    return [restored[path.stem] for path in shot.frames]


def score(outputs: list[np.ndarray], shot: Shot) -> dict:
    """engine.metrics.shot_scores (mean per-frame relMSE, temporal relMSE) in this table's keys, with the frames'."""
    scores = shot_scores(outputs, shot.references)
    return {"rel_mse": scores["relmse"], "temporal": scores["flicker"],
            "per_frame": [relmse(o, r) for o, r in zip(outputs, shot.references, strict=True)]}


def resolve_models(specs: list[str]) -> tuple[ModelRegistry, list[ModelEntry]]:
    """The registry (with every ``--models`` path's folder added) and the entries, in order."""
    extra, wanted = [], []
    for spec in specs:
        path = Path(spec)
        if path.exists():
            folder = path if path.is_dir() else path.parent
            found, problems = scan_models_folder(folder, "user")
            if not found:
                raise SystemExit(f"{spec}: no model manifest found ({problems})")
            # A folder: every model in it; a manifest or an ONNX file: the model whose network has that stem.
            stem = path.name.split(".")[0]
            picked = found if path.is_dir() else \
                [e for e in found if e.path is not None and e.path.name.split(".")[0] == stem] or found
            extra.append((folder, "user"))
            wanted += [e.id for e in picked]
        else:
            wanted.append(spec)
    registry = ModelRegistry(default_folders() + extra, include_classical=True)
    entries = []
    for model_id in dict.fromkeys(wanted):
        try:
            entries.append(registry.get(model_id))
        except Exception as error:  # noqa: BLE001 - an unknown id is the user's mistake: say which
            raise SystemExit(f"{model_id}: {error}") from None
    return registry, entries


def reference_floor(shot: Shot) -> dict:
    """An estimate of what the reference's own noise adds to every method's scores (the same for all): the
    reference at R spp has about n / (R + n) of the relMSE of ``noisy`` at n spp against it (independent noise)."""
    noisy = [read_image(p).pixels for p in shot.frames]
    share = shot.spp / (shot.ref_spp + shot.spp)
    measured = score(noisy, shot)
    return {"rel_mse": measured["rel_mse"] * share, "temporal": measured["temporal"] * share}


def floor(results: dict, group: str, key: str) -> float:
    return float(np.mean([s["reference_floor"][key] for s in results["shots"].values() if s["group"] == group]))


def table(results: dict, methods: list[str], groups: list[str]) -> list[str]:
    lines = ["| method | " + " | ".join(f"{g}: relMSE | temporal | vs OIDN+AOVs" for g in groups) + " |",
             "|---|" + "---|---|---|" * len(groups)]
    for method in methods:
        cells = []
        for group in groups:
            shots = [s for s in results["shots"].values() if s["group"] == group and method in s["methods"]]
            if not shots:
                cells += ["-", "-", "-"]
                continue
            rel = float(np.mean([s["methods"][method]["rel_mse"] for s in shots]))
            tem = float(np.mean([s["methods"][method]["temporal"] for s in shots]))
            peers = [s["methods"]["oidn-aov"]["temporal"] for s in shots if "oidn-aov" in s["methods"]]
            ratio = f"{tem / float(np.mean(peers)):.2f}x" if peers else "-"
            cells += [f"{rel:.5f}", f"{tem:.5f}", ratio]
        lines.append(f"| `{method}` | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=Path, default=CYCLES, help="folder of Cycles shots (cycles_shot.py)")
    parser.add_argument("--mitsuba", nargs="*", default=list(DEFAULT_MITSUBA), metavar="SEED:SPP",
                        help="Mitsuba shots (render-shot), rendered when missing; none: --mitsuba with no value")
    parser.add_argument("--models", nargs="*", default=[], metavar="ID|PATH",
                        help="more models: registry ids, or a folder / manifest / ONNX file of a trained model")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    parser.add_argument("--smooth", type=float, default=None, metavar="WEIGHT",
                        help="also run every model through the shot restorer with temporal smoothing of this weight "
                             "(engine/temporal_filter.py), as '<id> + smoothing'")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "flicker")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    registry, entries = resolve_models(list(DEFAULT_MODELS) + list(args.models))
    shots = cycles_shots(args.cycles) if args.cycles.is_dir() else []
    for spec in args.mitsuba:
        seed, spp = (int(v) for v in spec.split(":"))
        shots.append(mitsuba_shot(seed, spp))
    if not shots:
        raise SystemExit("no shots: render the Cycles validation shots (engine/render_data/cycles_shot.py) or "
                         "give --mitsuba")
    command = "nice -n 15 .venv/bin/python bench/flicker.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    results: dict = {"command": command,
                     "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "shots": {}}
    smoothed = f" + smoothing {args.smooth:g}" if args.smooth else ""
    methods = ["noisy", "blender-oidn"] + [e.id for e in entries]
    methods += [e.id + smoothed for e in entries] if smoothed else []
    for shot in shots:
        record: dict = {"group": shot.group, "folder": str(shot.folder), "frames": len(shot.frames),
                        "ref_spp": shot.ref_spp, "methods": {}}
        record["methods"]["noisy"] = score([read_image(p).pixels for p in shot.frames], shot)
        if shot.blender:
            record["methods"]["blender-oidn"] = score([read_image(p).pixels for p in shot.blender], shot)
        for entry in entries:
            begun = time.perf_counter()
            outputs = restore_sequence(entry, shot, registry) if is_temporal(entry) else \
                restore_frames(entry, shot, args.threads)
            record["methods"][entry.id] = {**score(outputs, shot), "temporal_model": is_temporal(entry),
                                           "seconds": time.perf_counter() - begun}
            if smoothed:
                begun = time.perf_counter()
                outputs = restore_sequence(entry, shot, registry, args.smooth)
                record["methods"][entry.id + smoothed] = {**score(outputs, shot), "temporal_model": is_temporal(entry),
                                                          "smoothing": args.smooth,
                                                          "seconds": time.perf_counter() - begun}
        record["reference_floor"] = reference_floor(shot)
        results["shots"][shot.name] = record
        print(f"{shot.name}: " + ", ".join(f"{m} {r['rel_mse']:.4f}/{r['temporal']:.4f}"
                                           for m, r in record["methods"].items()), file=sys.stderr, flush=True)
    groups = list(dict.fromkeys(s.group for s in shots))
    lines = [f"## Flicker on held-out shots ({results['when']}, {platform.machine()}, CPU)", "",
             "relMSE: per-frame relMSE, mean over the frames and then over the shots of a group; temporal: "
             "temporal relMSE (relMSE of out[t] - out[t-1] against ref[t] - ref[t-1], normalised by the reference's "
             "magnitude; see docs/benchmarks.md); vs OIDN+AOVs: temporal error over `oidn-aov`'s "
             "(the target for a temporal model: <= 0.50x at a relMSE no worse than OIDN's).", ""]
    lines += table(results, methods, groups)
    lines += ["", "Shots: " + "; ".join(f"{name} ({s['frames']} frames, {s['ref_spp']}-spp reference)"
                                       for name, s in results["shots"].items()) + ".", "",
              "The references' own noise adds about this much to every method's scores (estimated from `noisy` "
              "at n spp as n / (R + n) of its score; the same for every method): " +
              "; ".join(f"{g}: {floor(results, g, 'rel_mse'):.5f} / {floor(results, g, 'temporal'):.5f}"
                        for g in groups) + ".", "", "Per shot (relMSE / temporal):", "",
              "| method | " + " | ".join(results["shots"]) + " |", "|---|" + "---|" * len(results["shots"])]
    for method in methods:
        cells = [f"{s['methods'][method]['rel_mse']:.5f} / {s['methods'][method]['temporal']:.5f}"
                 if method in s["methods"] else "-" for s in results["shots"].values()]
        lines.append(f"| `{method}` | " + " | ".join(cells) + " |")
    lines += ["", f"Command: `{results['command']}`"]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text, encoding="utf-8")
    results["seconds"] = time.perf_counter() - started
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
