"""Super-resolution on Set5 x2 / x4, protocol of ../shared/bench/PROTOCOL.md.

    .venv/bin/python bench/sr.py                         # bicubic (MATLAB), classical engines, shipped SR models
    .venv/bin/python bench/sr.py --models sr-x2 --scales 2 --models-dir /tmp/my_models
    .venv/bin/python bench/sr.py --real                  # adds Set5 x4 from realistically degraded inputs

Rows: MATLAB-style bicubic (``engine.zssr.kernels.imresize``; must give 33.65 / 28.42 dB, else the protocol is
broken and the script stops), every super-resolution model in the registry of the matching scale (the app's
OpenCV bicubic and Lanczos engines, shipped ONNX models), each run through ``engine.restore.restore_job``
exactly as the app runs it, and ZSSR as measured by ``bench/zssr.py`` (read from ``bench/results/zssr.json``;
ZSSR trains per image, minutes each, so it has its own benchmark script and records).

Protocol: input ``_LR.png``, target ``_HR.png`` of the same scale folder; output rounded to uint8; Y of BT.601
as MATLAB ``rgb2ycbcr`` on uint8 (``engine.metrics.psnr_y_sr``); ``k`` pixels cropped off every border; mean
over the five images. Writes ``bench/results/sr.md`` and ``sr.json``.

``--real`` adds a table that no published number covers, for the real-world model: each Set5 HR image (from
the x4 folder) is blurred with a Gaussian of sigma 1.6 HR pixels, decimated by 4, given Gaussian noise of sigma
5 (8-bit units) and saved as JPEG at quality 75, with a fixed seed per image; every x4 method upscales that and
is scored against the HR image with the same protocol. It is a within-project comparison (the degradation is
from the family ``sr-x4-real`` was trained on), so it says which model to pick for a phone photo or a web
JPEG, not how we rank against the literature.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]

SET5 = ROOT.parent / "shared" / "bench" / "sr" / "Set5"
RESULTS = ROOT / "bench" / "results"
BICUBIC_PUBLISHED = {2: 33.65, 3: 30.39, 4: 28.42}
#: Published Set5 Y-PSNR (REFERENCE.md).
PUBLISHED = {
    "SRCNN": {2: 36.66, 4: 30.48},
    "VDSR": {2: 37.53, 4: 31.35},
    "ZSSR (paper)": {2: 37.37, 4: 31.13},
    "EDSR baseline": {2: 37.99, 4: 32.09},
}


def read_rgb_uint8(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def pair(scale: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    folder = SET5 / f"image_SRF_{scale}"
    return (read_rgb_uint8(folder / f"img_{index:03d}_SRF_{scale}_LR.png"),
            read_rgb_uint8(folder / f"img_{index:03d}_SRF_{scale}_HR.png"))


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)


def bicubic(low: np.ndarray, scale: int) -> tuple[np.ndarray, str]:
    from engine.zssr.kernels import imresize

    return imresize(low.astype(np.float32) / 255.0, scale=float(scale)), "CPU (numpy)"


def run_model(entry, device: str):
    from engine.image import make_image
    from engine.jobs import run_job
    from engine.restore import restore_job

    def upscale(low: np.ndarray, scale: int) -> tuple[np.ndarray, str]:
        result = run_job(restore_job(make_image(low.astype(np.float32) / 255.0), entry, {}, device=device),
                         lambda progress: None)
        return np.asarray(result.image.pixels), result.device.split(" — ")[0]

    return upscale


REAL_BLUR_SIGMA, REAL_NOISE, REAL_JPEG = 1.6, 5.0, 75


def real_pair(scale: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(degraded LR uint8, HR uint8) for the ``--real`` table (see the module docstring)."""
    from engine.training import degradations as deg

    _, high = pair(scale, index)
    rng = np.random.default_rng(1000 + index)
    size = 2 * int(np.ceil(3 * REAL_BLUR_SIGMA)) + 1
    low = deg.kernel_downscale(high.astype(np.float32) / 255.0,
                               deg.isotropic_gaussian_kernel(size, REAL_BLUR_SIGMA), scale)
    low, _ = deg.add_gaussian_noise(low, REAL_NOISE / 255.0, rng)
    low = deg.jpeg_compress(np.clip(low, 0.0, 1.0), REAL_JPEG)
    return to_uint8(low), high


def evaluate(method: str, upscale, scale: int, pairs=None) -> dict:
    from engine.metrics import psnr_y_sr

    pairs = pairs or pair
    scores, seconds, device = [], [], ""
    for index in range(1, 6):
        low, high = pairs(scale, index)
        started = time.perf_counter()
        out, device = upscale(low, scale)
        seconds.append(time.perf_counter() - started)
        if out.shape[:2] != high.shape[:2]:
            raise SystemExit(f"{method}: output {out.shape} does not match HR {high.shape}")
        scores.append(psnr_y_sr(to_uint8(out), high, scale))
    return {"method": method, "scale": scale, "psnr": scores, "mean": float(np.mean(scores)),
            "seconds_per_image": float(np.mean(seconds)), "device": device}


def zssr_rows() -> list[dict]:
    path = RESULTS / "zssr.json"
    if not path.is_file():
        return []
    rows = []
    for row in json.loads(path.read_text(encoding="utf-8")).get("table", []):
        if row.get("method") != "bicubic" and row.get("images_done") == 5:
            rows.append({"method": f"ZSSR {row['method']} (bench/zssr.py)", "scale": row["scale"],
                         "psnr": row["psnr"], "mean": row["mean"],
                         "seconds_per_image": row.get("seconds_per_image", float("nan")),
                         "device": row.get("device") or "CPU (torch)"})
    return rows


def rows_table(rows: list[dict]) -> list[str]:
    lines = ["| method | scale | img1 | img2 | img3 | img4 | img5 | mean | s/image | device |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: (r["scale"], r["mean"])):
        lines.append(f"| {row['method']} | x{row['scale']} | " + " | ".join(f"{p:.2f}" for p in row["psnr"])
                     + f" | **{row['mean']:.2f}** | {row['seconds_per_image']:.2f} | {row['device']} |")
    return lines


def table(rows: list[dict], scales: list[int], real_rows: list[dict] | None = None) -> str:
    lines = ["# Super-resolution on Set5 (PSNR on Y, dB; protocol of PROTOCOL.md)", ""]
    lines += rows_table(rows)
    lines.append("")
    lines.append("Published (REFERENCE.md), Set5 " + " / ".join(f"x{s}" for s in scales) + ": "
                 + "; ".join(f"{name} {' / '.join(str(v.get(s, '–')) for s in scales)}"
                             for name, v in PUBLISHED.items()) + ".")
    lines.append("")
    lines.append("`bicubic (MATLAB)` is the protocol's baseline (must read 33.65 / 28.42). `bicubic-xk` and "
                 "`lanczos-xk` are the app's OpenCV engines (OpenCV's cubic uses a = -0.75, MATLAB's a = -0.5). "
                 "Models run through `engine.restore.restore_job` (ONNX Runtime). Wall times are on a 2-core "
                 f"machine shared with other jobs ({platform.node()}, {time.strftime('%Y-%m-%d')}).")
    if real_rows:
        lines += ["", "## Real-world inputs: Set5 x4 from blurred, noisy, JPEG-compressed images (`--real`)", "",
                  f"Gaussian blur sigma {REAL_BLUR_SIGMA} (HR pixels), decimation by 4, noise sigma {REAL_NOISE:g}, "
                  f"JPEG quality {REAL_JPEG}; fixed seeds. A within-project comparison (see bench/sr.py).", ""]
        lines += rows_table(real_rows)
    return "\n".join(lines) + "\n"


def update_manifests(rows: list[dict], models_dir: Path, real_rows: list[dict] = ()) -> list[str]:
    """Write each bundled SR model's Set5 means (and real-world x4 mean) into its manifest's ``scores``."""
    from engine.models.manifest_writer import update_manifest

    updated = []
    for manifest_path in sorted(models_dir.glob("*.json")):
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
        mine = [r for r in rows if r["method"] == data.get("id")]
        real = [r for r in real_rows if r["method"] == data.get("id")]
        if data.get("task") != "super-resolution" or not (mine or real):
            continue
        scores = {f"set5_x{row['scale']}_psnr_y": round(row["mean"], 2) for row in mine}
        scores.update({f"set5_real_x{row['scale']}_psnr_y": round(row["mean"], 2) for row in real})
        update_manifest(manifest_path, scores=scores)
        updated.append(data["id"])
    return updated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="*", default=[2, 4])
    parser.add_argument("--models", nargs="*", help="model ids (default: every SR model of each scale)")
    parser.add_argument("--models-dir", action="append", default=[], help="extra folder of ONNX models")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--real", action="store_true", help="also score x4 methods on degraded Set5 inputs")
    parser.add_argument("--update-manifests", action="store_true",
                        help="write the Set5 means into resources/models/*.json scores")
    args = parser.parse_args(argv)
    from engine.models.registry import ModelRegistry, default_folders

    registry = ModelRegistry(default_folders() + [(Path(d), "user") for d in args.models_dir])
    rows = []
    for scale in args.scales:
        row = evaluate("bicubic (MATLAB)", bicubic, scale)
        if abs(row["mean"] - BICUBIC_PUBLISHED[scale]) > 0.01:
            raise SystemExit(f"bicubic x{scale} gives {row['mean']:.2f}, not {BICUBIC_PUBLISHED[scale]}: "
                             "the protocol is broken")
        rows.append(row)
        for entry in registry.models("super-resolution"):
            if entry.manifest.scale != scale or (args.models and entry.id not in args.models):
                continue
            rows.append(evaluate(entry.id, run_model(entry, args.device), scale))
            print(f"{entry.id}: x{scale} {rows[-1]['mean']:.2f} dB", flush=True)
    rows += [r for r in zssr_rows() if r["scale"] in args.scales]
    real_rows = []
    if args.real:
        real_rows.append(evaluate("bicubic (MATLAB)", bicubic, 4, real_pair))
        for entry in registry.models("super-resolution"):
            if entry.manifest.scale == 4 and (not args.models or entry.id in args.models):
                real_rows.append(evaluate(entry.id, run_model(entry, args.device), 4, real_pair))
                print(f"{entry.id}: real-world x4 {real_rows[-1]['mean']:.2f} dB", flush=True)
    text = table(rows, args.scales, real_rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sr.md").write_text(text, encoding="utf-8")
    (RESULTS / "sr.json").write_text(json.dumps({"table": rows, "real_world_x4": real_rows}, indent=1),
                                     encoding="utf-8")
    print(text)
    if args.update_manifests:
        updated = update_manifests(rows, ROOT / "resources" / "models", real_rows)
        print("manifests updated:", ", ".join(updated) or "none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
