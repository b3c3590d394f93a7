"""Photo denoising on Kodak24 at sigma 15 / 25 / 50, protocol of ../shared/bench/PROTOCOL.md.

    .venv/bin/python bench/denoise.py                                    # every photo-denoise model, 24 images
    .venv/bin/python bench/denoise.py --models photo-denoise-color nlm --images 4 --sigmas 25
    .venv/bin/python bench/denoise.py --report                           # rebuild the table from the records
    .venv/bin/python bench/denoise.py --clipped --models photo-denoise-color bm3d --images 2 --sigmas 25

Every model runs through the app's own path: ``engine.restore.restore_job`` with the model's registry entry
(ONNX Runtime for networks, ``engine/models/classical.py`` for NLM and BM3D), told the true ``noise_level``.
Each finished (model, sigma, image) appends one JSON line to ``bench/results/denoise_records.jsonl``, so slow
methods (BM3D takes minutes per image on 2 shared cores) can be run on a subset and extended later; the
report takes the newest record per key and says how many images each mean covers. When methods cover
different images, a second table compares them on the images all of them ran.

Protocol: ``x`` = uint8 RGB / 255; ``y = x + sigma/255 * n`` with ``n = default_rng(i).standard_normal(x.shape)``
(HxWx3 order, ``i`` = 1 for kodim01), ``y`` not clipped; output clipped to [0, 1] and rounded to uint8; PSNR in
RGB over all pixels; mean over images. Seconds per megapixel = wall time of the restore job / megapixels.

``--clipped``: the protocol's clipped variant, what real photos look like: the same ``y`` clipped to [0, 1] and
stored as 16-bit (rounded to 1/65535) before the denoiser sees it, still told the sigma added. Its records carry
``"clipped": true`` and the report gives them their own tables beside the unclipped ones, CBM3D (``bm3d``) on the
same clipped inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]

#: ``KODAK24_DIR`` overrides it (a git worktree's ``..`` is not the project folder).
KODAK = Path(os.environ.get("KODAK24_DIR", ROOT.parent / "shared" / "bench" / "denoise" / "Kodak24"))
RESULTS = ROOT / "bench" / "results"
RECORDS = RESULTS / "denoise_records.jsonl"
SIGMAS = (15, 25, 50)
#: Published Kodak24 RGB PSNR (REFERENCE.md), sigma 15 / 25 / 50.
PUBLISHED = {
    "CBM3D": (34.28, 32.15, 28.46),
    "DnCNN (colour, blind)": (34.60, 32.14, 28.95),
    "FFDNet": (34.63, 32.13, 28.98),
}


def read_clean(index: int) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(KODAK / f"kodim{index:02d}.png"), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {KODAK / f'kodim{index:02d}.png'}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def noisy_version(clean_uint8: np.ndarray, sigma: float, index: int, clipped: bool = False) -> np.ndarray:
    """The protocol's noisy image: float, not clipped; ``clipped``: clipped to [0, 1] and stored as 16 bits."""
    x = clean_uint8.astype(np.float64) / 255.0
    noise = np.random.default_rng(index).standard_normal(x.shape)
    y = x + sigma / 255.0 * noise
    if clipped:
        y = np.round(np.clip(y, 0.0, 1.0) * 65535.0) / 65535.0
    return y.astype(np.float32)


def psnr_uint8(output: np.ndarray, clean_uint8: np.ndarray) -> float:
    from engine.metrics import psnr

    rounded = np.round(np.clip(output, 0.0, 1.0) * 255.0).astype(np.uint8)
    return psnr(rounded.astype(np.float64), clean_uint8.astype(np.float64), peak=255.0)


def build_registry(extra_dirs: list[str]):
    from engine.models.registry import ModelRegistry, default_folders

    folders = default_folders() + [(Path(d), "user") for d in extra_dirs]
    return ModelRegistry(folders)


def run_one(entry, clean: np.ndarray, sigma: float, index: int, device: str, clipped: bool = False,
            ensemble: int = 1) -> dict:
    from engine.image import make_image
    from engine.jobs import run_job
    from engine.models.entry import for_input
    from engine.restore import restore_job

    noisy = make_image(noisy_version(clean, sigma, index, clipped))
    params = {"noise_level": float(sigma)} if any(p.name == "noise_level" for p in entry.manifest.params) else {}
    started = time.perf_counter()
    result = run_job(restore_job(noisy, entry, params, device=device, ensemble=ensemble), lambda progress: None)
    seconds = time.perf_counter() - started
    megapixels = clean.shape[0] * clean.shape[1] / 1e6
    return {
        # the window's "Passes" setting: the mean of 4 / 8 mirrored and rotated passes is its own method here
        "model": entry.id if ensemble == 1 else f"{entry.id} x{ensemble} passes",
        # tells records of retrained weights apart: those that ran (a clipped input runs the weights for it)
        "model_sha256": for_input(entry, noisy).manifest.sha256 or "",
        "sigma": sigma,
        "image": index,
        "clipped": clipped,
        "psnr": psnr_uint8(result.image.pixels, clean),
        "seconds": seconds,
        "s_per_mp": seconds / megapixels,
        "device": result.device.split(" — ")[0],  # without the runtime's fallback explanation
        "host": platform.node(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def load_records() -> list[dict]:
    if not RECORDS.is_file():
        return []
    newest: dict[tuple, dict] = {}
    for line in RECORDS.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            key = (record["model"], record.get("model_sha256", ""), record["sigma"], record["image"],
                   record.get("device", ""), record.get("clipped", False))
            newest[key] = record
    return list(newest.values())


def shipped_sha256(clipped: bool = False) -> dict[str, str]:
    """The sha256 of each bundled model's ONNX file, by id; ``clipped``: of the file it runs on clipped inputs
    (its weights for clipped input where it has them)."""
    shas = {}
    for path in (ROOT / "resources" / "models").glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        sha = (data.get("clipped") or {}).get("sha256") if clipped else None
        if sha or data.get("sha256"):
            shas[data["id"]] = sha or data["sha256"]
    return shas


def labelled(records: list[dict]) -> list[dict]:
    """Records of weights that were replaced since (a different or no sha256, where records of the shipped file
    exist) keep their rows, as "<id> (earlier weights <sha256 prefix>)", one row per set of weights. On clipped
    inputs the shipped file is the model's weights for clipped input, where it has them."""
    shas = {flag: shipped_sha256(flag) for flag in (False, True)}

    def key(record: dict) -> tuple[str, bool]:
        return record["model"], bool(record.get("clipped", False))

    def shipped(record: dict) -> str | None:
        model, clipped = key(record)
        return shas[clipped].get(re.sub(r" x\d+ passes$", "", model))

    current = {key(r) for r in records if r.get("model_sha256") and r["model_sha256"] == shipped(r)}
    out = []
    for record in records:
        if key(record) in current and record.get("model_sha256") != shipped(record):
            earlier = (record.get("model_sha256") or "")[:8]
            record = dict(record, model=f"{record['model']} (earlier weights{' ' + earlier if earlier else ''})")
        out.append(record)
    return out


def _noisy_psnr(sigma: float, images: list[int], clipped: bool = False) -> float:
    return float(np.mean([psnr_uint8(noisy_version(read_clean(i), sigma, i, clipped), read_clean(i)) for i in images]))


def _table(records: list[dict], images_of: dict, title: str) -> list[str]:
    models = sorted({r["model"] for r in records}, key=lambda m: min(r["when"] for r in records if r["model"] == m))
    devices = sorted({r["device"] for r in records})
    lines = [title, "", "| method | device | images | " + " | ".join(f"σ{s} PSNR" for s in SIGMAS)
             + " | s/MP (σ25) |", "|---|---|---|" + "---|" * len(SIGMAS) + "---|"]
    for model in models:
        for device in devices:
            cells, counts, speed = [], set(), "–"
            for sigma in SIGMAS:
                chosen = [r for r in records if r["model"] == model and r["device"] == device
                          and r["sigma"] == sigma and r["image"] in images_of(model, sigma)]
                if chosen:
                    cells.append(f"{np.mean([r['psnr'] for r in chosen]):.2f}")
                    counts.add(len(chosen))
                    if sigma == 25:
                        speed = f"{np.median([r['s_per_mp'] for r in chosen]):.2f}"
                else:
                    cells.append("–")
            if counts:
                count = "/".join(str(c) for c in sorted(counts))
                lines.append(f"| {model} | {device} | {count} | " + " | ".join(cells) + f" | {speed} |")
    return lines


def _section(records: list[dict], clipped: bool) -> list[str]:
    lines = []
    all_images = sorted({r["image"] for r in records})
    lines += _table(records, lambda model, sigma: all_images,
                    "Each method over the images it ran (the `images` column; 24 = all of Kodak24):")
    lines.append("")
    # The fair comparison: only the images every method ran at that sigma.
    common = {}
    for sigma in SIGMAS:
        sets = [{r["image"] for r in records if r["model"] == m and r["sigma"] == sigma}
                for m in {r["model"] for r in records if r["sigma"] == sigma}]
        common[sigma] = sorted(set.intersection(*sets)) if sets else []
    if any(len(common[s]) < len({r["image"] for r in records if r["sigma"] == s}) for s in SIGMAS):
        lines += _table(records, lambda model, sigma: common[sigma],
                        "Same images for every method (the intersection; kodim indices "
                        + "; ".join(f"σ{s}: {','.join(map(str, common[s])) or 'none'}" for s in SIGMAS) + "):")
        lines.append("")
    noisy = [f"σ{s}: {_noisy_psnr(s, all_images[:24], clipped):.2f}" for s in SIGMAS]
    lines.append(f"Noisy input (same images): {', '.join(noisy)} dB.")
    lines.append("")
    return lines


def report() -> str:
    records = labelled(load_records())
    lines = ["# Photo denoising on Kodak24 (RGB PSNR, dB; protocol of PROTOCOL.md)", ""]
    if not records:
        return "\n".join(lines + ["No records yet: run bench/denoise.py."])
    lines += _section([r for r in records if not r.get("clipped", False)], clipped=False)
    clipped = [r for r in records if r.get("clipped", False)]
    if clipped:
        lines += ["## Clipped inputs (as in real photos)", "",
                  "The same noisy images clipped to [0, 1] and stored as 16-bit before the denoiser sees them "
                  "(`--clipped`); every method, CBM3D (`bm3d`) included, on the same clipped inputs, told the "
                  "sigma added.", ""]
        lines += _section(clipped, clipped=True)
    lines.append("Published on Kodak24 (REFERENCE.md, unclipped noise), σ15 / σ25 / σ50: "
                 + "; ".join(f"{name} {' / '.join(f'{v:.2f}' for v in values)}" for name, values in PUBLISHED.items())
                 + ".")
    lines.append("")
    lines.append("Every model runs through `engine.restore.restore_job` (ONNX Runtime or the classical engine), "
                 "given the true noise level. s/MP: median wall seconds per megapixel at σ25 on the machine "
                 "named in the device column; the benchmark machine is shared with other jobs, so these are "
                 "upper bounds.")
    return "\n".join(lines) + "\n"


def write_report() -> str:
    text = report()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "denoise.md").write_text(text, encoding="utf-8")
    (RESULTS / "denoise.json").write_text(json.dumps({"records": load_records()}, indent=1), encoding="utf-8")
    return text


def update_manifests(models_dir: Path) -> list[str]:
    """Write each bundled model's Kodak24 means into its manifest's ``scores`` (only means over all 24 images)."""
    from engine.models.manifest_writer import update_manifest

    updated = []
    records = load_records()
    for manifest_path in sorted(models_dir.glob("*.json")):
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
        if data.get("task") != "photo-denoise":
            continue
        scores = dict(data.get("scores", {}))
        for sigma in SIGMAS:
            chosen = [r for r in records if r["model"] == data["id"] and r["sigma"] == sigma
                      and r.get("model_sha256") == data.get("sha256") and not r.get("clipped", False)
                      and not r.get("device", "").startswith("CUDA")]
            if len({r["image"] for r in chosen}) == 24:
                scores[f"kodak24_sigma{sigma}_psnr"] = round(float(np.mean([r["psnr"] for r in chosen])), 2)
                if sigma == 25:
                    scores["kodak24_seconds_per_mp_cpu"] = round(float(np.median([r["s_per_mp"] for r in chosen])), 2)
        if update_manifest(manifest_path, scores=scores):
            updated.append(data["id"])
    return updated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="model ids (default: every photo-denoise model)")
    parser.add_argument("--images", type=int, default=24, help="run on kodim01..N only (default 24: all)")
    parser.add_argument("--first-image", type=int, default=1, help="start at this kodim index")
    parser.add_argument("--sigmas", type=int, nargs="*", default=list(SIGMAS))
    parser.add_argument("--models-dir", action="append", default=[], help="extra folder of ONNX models")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--clipped", action="store_true",
                        help="the clipped variant: noisy input clipped to [0, 1] and stored as 16-bit")
    parser.add_argument("--ensemble", type=int, choices=(1, 4, 8), default=1,
                        help="networks: the mean of this many mirrored / rotated passes (the window's Passes)")
    parser.add_argument("--report", action="store_true", help="only rebuild the table from the records")
    parser.add_argument("--no-record", action="store_true", help="print results without saving them")
    parser.add_argument("--update-manifests", action="store_true",
                        help="write the Kodak24 means (24 images only) into resources/models/*.json scores")
    args = parser.parse_args(argv)
    if not args.report:
        if not KODAK.is_dir():
            raise SystemExit(f"Kodak24 not found at {KODAK}")
        registry = build_registry(args.models_dir)
        ids = args.models or [e.id for e in registry.models("photo-denoise")]
        entries = [registry.get(model_id) for model_id in ids]
        indices = list(range(args.first_image, min(24, args.first_image + args.images - 1) + 1))
        for entry in entries:
            for sigma in args.sigmas:
                for index in indices:
                    record = run_one(entry, read_clean(index), float(sigma), index, args.device, args.clipped,
                                     args.ensemble if entry.manifest.engine == "onnx" else 1)
                    record["sigma"] = int(sigma)
                    print(f"{record['model']:28s} σ{sigma:<3d} {'clipped ' if args.clipped else ''}kodim{index:02d} "
                          f"{record['psnr']:6.2f} dB "
                          f"{record['s_per_mp']:7.2f} s/MP", flush=True)
                    if not args.no_record:
                        RESULTS.mkdir(parents=True, exist_ok=True)
                        with open(RECORDS, "a", encoding="utf-8") as handle:
                            handle.write(json.dumps(record) + "\n")
    print(write_report())
    if args.update_manifests:
        print("manifests updated:", ", ".join(update_manifests(ROOT / "resources" / "models")) or "none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
