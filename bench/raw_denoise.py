"""Raw denoising measured: denoise the Bayer mosaic before demosaicing, or denoise the developed photo after.

    .venv/bin/python bench/raw_denoise.py                        # 12 held-out photographs, 3 noise levels
    .venv/bin/python bench/raw_denoise.py --images 4 --levels high --crops 0
    .venv/bin/python bench/raw_denoise.py --models-dir runs/raw/models --srgb-models MODEL
        # (models not in resources/models)

Data: the LAST ``--images`` photographs (sorted by id) of ``../shared/data/train/BSDS500_test``, which no recipe
here trains on or selects checkpoints with (recipes validate on its first 8; photo-denoise-color's checkpoint was
chosen on the next 40), centre-cropped to 480 x 320 and blurred by a Gaussian of ``--optics`` pixels (0.7): the
lens and the sensor's low-pass filter that a camera's photosites see through. (BSDS photographs are downscaled, so
sharper per pixel than a raw file: unblurred, the development's demosaicing alone costs them 19-26 dB.)
Each is unprocessed to a raw RGGB mosaic by a camera drawn with a fixed seed (engine/training/degradations:
``random_camera``, ``unprocess``: Brooks et al. 2019's inverse pipeline), given Poisson-Gaussian sensor noise at
fixed shot / read levels (``LEVELS``; read tied to shot by Brooks et al.'s fit to real sensors), clipped.

Methods, each scored by PSNR in sRGB against the clean mosaic developed the same way (``process_mosaic``: white
balance, bilinear-class demosaicing, colour correction, gamma, tone curve):

- ``noisy``: the noisy mosaic developed, no denoising;
- ``raw model``: the raw-denoise model on the packed mosaic, its noise map from the shot / read MEASURED on the
  noisy mosaic (engine/raw/noise.py, what the app does), then developed; ``raw model, true noise``: told the true
  shot / read instead;
- ``photo-denoise-real``: the shipped blind sRGB denoiser on the developed noisy photo;
- ``nlm`` and ``photo-denoise-color``: on the developed photo, told the TRUE noise standard deviation of the
  developed photo (an oracle: the most favourable level for them); ``nlm (measured sigma)``: told the level the app
  measures on the developed photo, as the app runs it;
- ``bm3d`` (CBM3D, the oracle and the measured level): too slow for whole photographs on this CPU, so it runs with
  every other method on ``--crops`` centre crops of ``--crop-size`` pixels of the first images,
  unprocessed and noised the same way.

Every model runs through the app's own code: sRGB models through ``engine.restore.restore_job`` with their
registry entries, the raw model through ``engine.raw.denoise.denoise_planes`` (what ``restore photo.dng`` runs).
Prints the tables and writes ``bench/results/raw_denoise.md`` and ``raw_denoise.json``.
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

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]

DATA = Path(os.environ.get("RAW_BENCH_DIR", ROOT.parent / "shared" / "data" / "train" / "BSDS500_test"))
RESULTS = ROOT / "bench" / "results"
#: name -> (shot, read): variance shot * x + read in normalised raw units; read = e^1.2 * shot^2.18 (Brooks et al.).
LEVELS = {name: (shot, float(np.exp(1.2) * shot**2.18)) for name, shot in
          (("low", 2e-3), ("mid", 6e-3), ("high", 1.2e-2))}
RAW_MODEL = "raw-denoise-bayer"


def held_out(count: int) -> list[Path]:
    files = sorted(p for p in DATA.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    if len(files) < count + 8:
        raise SystemExit(f"{DATA}: expected at least {count + 8} photographs")
    return files[-count:]


def read_rgb(path: Path, height: int = 320, width: int = 480) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / 255.0
    if image.shape[0] > image.shape[1]:
        image = np.ascontiguousarray(np.rot90(image))
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[top : top + height, left : left + width])


def centre(image: np.ndarray, size: int) -> np.ndarray:
    top, left = (image.shape[0] - size) // 2 // 2 * 2, (image.shape[1] - size) // 2 // 2 * 2
    return np.ascontiguousarray(image[top : top + size, left : left + size])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1).astype(np.float64) - np.clip(b, 0, 1)) ** 2))
    return 10.0 * np.log10(1.0 / max(mse, 1e-12))


class Methods:
    def __init__(self, models_dirs: list[Path], threads: int, srgb_models: list[str]) -> None:
        from engine.models.registry import ModelRegistry, default_folders

        folders = default_folders() + [(folder, "user") for folder in models_dirs]
        self.srgb_models = srgb_models
        self.registry = ModelRegistry(folders)
        self.threads = threads
        self.raw_entry = self.registry.get(RAW_MODEL)
        self.raw_run = self.raw_entry.tile_function({}, "cpu", None, session={"threads": threads}).run

    def srgb(self, model_id: str, developed: np.ndarray, sigma: float | None = None,
             estimated: bool = False) -> np.ndarray:
        """``model_id`` on the developed photo: told ``sigma``, or (``estimated``) the level the app measures on
        the photo and tells it (engine/noise_estimate.py), or nothing (a blind model)."""
        from engine.image import ImageMeta, make_image
        from engine.jobs import run_job
        from engine.noise_estimate import with_estimated_noise_level
        from engine.restore import restore_job

        image = make_image(developed, None, ImageMeta(format="tiff", bit_depth=16))
        params = {"noise_level": sigma} if sigma is not None else {}
        if estimated:
            params, _ = with_estimated_noise_level(image, self.registry.get(model_id).manifest, params)
        return run_job(restore_job(image, self.registry.get(model_id), params, device="cpu",
                                   threads=self.threads)).image.pixels

    def raw(self, planes: np.ndarray, shot: float, read: float) -> np.ndarray:
        from engine.jobs import run_job
        from engine.raw.denoise import denoise_planes
        from engine.raw.noise import NoiseProfile

        return run_job(denoise_planes(planes, NoiseProfile(shot, read, 0), self.raw_run, self.raw_entry.manifest))


def run_case(methods: Methods, clean_rgb: np.ndarray, seed: tuple[int, int], level: str, with_bm3d: bool) -> dict:
    from engine.raw.mosaic import pack, unpack
    from engine.raw.noise import estimate_noise
    from engine.training import degradations as deg

    shot, read = LEVELS[level]
    rng = np.random.default_rng(list(seed))
    camera = {**deg.random_camera(rng), "shot": shot, "read": read}
    clean = deg.unprocess(clean_rgb, camera)
    noisy = deg.add_sensor_noise(clean, shot, read, rng)
    reference = deg.process_mosaic(clean, camera)
    developed = deg.process_mosaic(noisy, camera)
    sigma = float(np.std(developed - reference) * 255.0)  # the oracle level for sRGB denoisers
    planes, packing = pack(noisy.astype(np.float32))
    measured = estimate_noise(planes)
    scores, seconds = {"noisy": psnr(developed, reference)}, {}
    # Also against the photograph itself (end to end): the development's demosaicing loses detail and adds colour
    # artefacts, which the reference above contains and an sRGB denoiser may remove (and is then scored down).
    original = clean_rgb[: clean.shape[0], : clean.shape[1]]
    end_to_end = {"noisy": psnr(developed, original)}

    def timed(name, produce):
        started = time.perf_counter()
        output = produce()
        seconds[name] = time.perf_counter() - started
        scores[name] = psnr(output, reference)
        end_to_end[name] = psnr(output, original)

    def raw_with(s, r):
        return deg.process_mosaic(unpack(methods.raw(planes, s, r), packing), camera)

    if measured is not None:
        timed("raw model", lambda: raw_with(measured.shot, measured.read))
    timed("raw model, true noise", lambda: raw_with(shot, read))
    timed("photo-denoise-real", lambda: methods.srgb("photo-denoise-real", developed))
    for model_id in methods.srgb_models:
        timed(model_id, lambda model_id=model_id: methods.srgb(model_id, developed))
    timed("photo-denoise-color (true sigma)", lambda: methods.srgb("photo-denoise-color", developed, sigma))
    timed("nlm (true sigma)", lambda: methods.srgb("nlm", developed, sigma))
    timed("nlm (measured sigma)", lambda: methods.srgb("nlm", developed, estimated=True))
    if with_bm3d:
        timed("bm3d (true sigma)", lambda: methods.srgb("bm3d", developed, sigma))
        timed("bm3d (measured sigma)", lambda: methods.srgb("bm3d", developed, estimated=True))
    return {"level": level, "scores": scores, "end_to_end": end_to_end, "seconds": seconds, "sigma_srgb": sigma,
            "measured": None if measured is None else {"shot": measured.shot, "read": measured.read}}


def table(records: list[dict], title: str, key: str = "scores") -> list[str]:
    methods = list(dict.fromkeys(m for r in records for m in r[key]))
    levels = [name for name in LEVELS if any(r["level"] == name for r in records)]
    lines = [f"### {title}", "", "| method | " + " | ".join(
        f"{name} (shot {LEVELS[name][0]:.0e}, read {LEVELS[name][1]:.1e})" for name in levels) + " |",
        "|---|" + "---|" * len(levels)]
    for method in methods:
        cells = []
        for name in levels:
            values = [r[key][method] for r in records if r["level"] == name and method in r[key]]
            cells.append(f"{np.mean(values):.2f}" if values else "-")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    sigmas = [f"{np.mean([r['sigma_srgb'] for r in records if r['level'] == n]):.1f}" for n in levels]
    lines += ["", "Noise in the developed photo (8-bit sigma, mean): " + ", ".join(
        f"{n} {s}" for n, s in zip(levels, sigmas, strict=True)), ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--levels", nargs="+", default=list(LEVELS), choices=list(LEVELS))
    parser.add_argument("--crops", type=int, default=3, help="crops of the first images with BM3D (0: none)")
    parser.add_argument("--crop-size", type=int, default=128)
    parser.add_argument("--models-dir", type=Path, nargs="*", default=[], help="further models folders")
    parser.add_argument("--srgb-models", nargs="*", default=[],
                        help="further blind sRGB denoisers to run on the developed photo (model ids)")
    parser.add_argument("--optics", type=float, default=0.7,
                        help="Gaussian blur (pixels) of each photograph before unprocessing: the lens and the "
                             "sensor's low-pass filter (0: none)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    methods = Methods(args.models_dir, args.threads, args.srgb_models)
    files = held_out(args.images)
    whole, crops = [], []
    for index, path in enumerate(files):
        clean = read_rgb(path)
        if args.optics > 0:
            import cv2

            clean = cv2.GaussianBlur(clean, (0, 0), args.optics)
        for level_index, level in enumerate(args.levels):
            record = run_case(methods, clean, (index, level_index), level, with_bm3d=False)
            whole.append({"image": path.name, **record})
            print(path.name, level, {k: round(v, 2) for k, v in record["scores"].items()}, flush=True)
            if index < args.crops:
                record = run_case(methods, centre(clean, args.crop_size), (index, level_index), level, True)
                crops.append({"image": path.name, **record})
                print(f"  crop {args.crop_size}", {k: round(v, 2) for k, v in record["scores"].items()}, flush=True)

    manifest = methods.raw_entry.manifest
    lines = ["# Raw denoising: before demosaicing vs after", "",
             f"Command: `.venv/bin/python bench/raw_denoise.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
             f"  ", f"Raw model: `{manifest.id}` ({manifest.provenance.get('recipe', '?')}, "
             f"{manifest.provenance.get('steps', '?')} steps); machine: {platform.machine()}, "
             f"{os.cpu_count()} cores (shared), CPU.", "",
             f"Data: the last {len(files)} photographs of BSDS500_test by id ({files[0].name} ... {files[-1].name}; "
             "never trained on, not the raw model's validation images), 480 x 320, unprocessed to RGGB mosaics by "
             f"a camera drawn per image (Brooks et al. 2019) after a Gaussian blur of {args.optics} px (optics), "
             "Poisson-Gaussian noise at the levels below. PSNR (dB) "
             "in sRGB against the clean mosaic developed the same way; mean over images.", ""]
    lines += table(whole, f"Whole photographs ({len(files)} images), "
                          "PSNR against the clean mosaic developed the same way")
    if crops:
        lines += table(crops, f"Centre crops of {args.crop_size} x {args.crop_size} of the first {args.crops} images, "
                              "with CBM3D (all methods on the same crops), against the clean development")
    lines += table(whole, f"Whole photographs ({len(files)} images), PSNR end to end: against the photograph itself",
                   "end_to_end")
    seconds = {}
    for record in whole:
        for name, value in record["seconds"].items():
            seconds.setdefault(name, []).append(value)
    lines += ["Seconds per 480 x 320 photograph (mean, 1 thread, shared CPU): " + ", ".join(
        f"{name} {np.mean(values):.2f}" for name, values in seconds.items()), ""]
    text = "\n".join(lines)
    print("\n" + text)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "raw_denoise.md").write_text(text, encoding="utf-8")
        summary = {}  # the raw model's mean PSNR per level, as `main.py ship --scores` copies it into its manifest
        for key, name in (("scores", f"bsds{len(files)}_raw_psnr"), ("end_to_end", f"bsds{len(files)}_raw_psnr_e2e")):
            summary[name] = {RAW_MODEL: {level: round(float(np.mean([r[key]["raw model"] for r in whole
                                                                      if r["level"] == level
                                                                      and "raw model" in r[key]])), 3)
                                         for level in args.levels}}
        (RESULTS / "raw_denoise.json").write_text(json.dumps(
            {"benchmark": "bench/results/raw_denoise.md", "summary": summary, "whole": whole, "crops": crops},
            indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
