"""The README's headline table, built from the measured results of bench/denoise.py and bench/sr.py.

    .venv/bin/python bench/headline.py        # writes bench/results/README_table.md

Shipped models against the targets of REFERENCE.md: on Kodak24 the colour denoiser against CBM3D, DnCNN and
FFDNet (published) and BM3D / NLM (measured here); on Set5 the SR models against bicubic and ZSSR / EDSR
(published). Only CPU records enter; a mean over fewer than all images says so.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from bench.denoise import PUBLISHED as DENOISE_PUBLISHED  # noqa: E402
from bench.denoise import SIGMAS, labelled, load_records  # noqa: E402
from bench.sr import PUBLISHED as SR_PUBLISHED  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def _denoise_cell(records: list[dict], model: str, sigma: int) -> str:
    chosen = [r for r in records if r["model"] == model and r["sigma"] == sigma
              and not r.get("device", "").startswith("CUDA")]
    if not chosen:
        return "–"
    mean = float(np.mean([r["psnr"] for r in chosen]))
    count = len({r["image"] for r in chosen})
    return f"{mean:.2f}" + ("" if count == 24 else f" ({count} img)")


def denoise_rows() -> list[str]:
    # the protocol's unclipped noise (bench/denoise.py's --clipped records are its variant, with their own tables)
    records = [r for r in labelled(load_records()) if not r.get("clipped", False)]
    models = sorted({r["model"] for r in records})
    lines = ["### Photo denoising, Kodak24 RGB PSNR (dB), σ15 / σ25 / σ50", "",
             "| method | σ15 | σ25 | σ50 | s/MP (CPU, σ25) | source |", "|---|---|---|---|---|---|"]
    for model in models:
        speed = [r["s_per_mp"] for r in records if r["model"] == model and r["sigma"] == 25
                 and not r.get("device", "").startswith("CUDA")]
        speed_text = f"{np.median(speed):.1f}" if speed else "–"
        cells = " | ".join(_denoise_cell(records, model, s) for s in SIGMAS)
        lines.append(f"| {model} | {cells} | {speed_text} | measured here |")
    for name, values in DENOISE_PUBLISHED.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " | – | published |")
    return lines


def sr_rows() -> list[str]:
    path = RESULTS / "sr.json"
    lines = ["### Super-resolution, Set5 PSNR on Y (dB)", "", "| method | x2 | x4 | source |", "|---|---|---|---|"]
    if not path.is_file():
        return lines + ["| (run bench/sr.py) | | | |"]
    rows = json.loads(path.read_text(encoding="utf-8"))["table"]
    by_method: dict[str, dict[int, float]] = {}
    for row in rows:
        by_method.setdefault(row["method"], {})[row["scale"]] = row["mean"]
    merged: dict[str, dict[int, float]] = {}
    for method, values in by_method.items():
        # "<family>-x2" and "<family>-x4" are two models of one family: one line.
        key = re.sub(r"-x[0-9]$", "-x2 / -x4", method)
        merged.setdefault(key, {}).update(values)
    for method, values in merged.items():
        lines.append(f"| {method} | " + " | ".join(f"{values[s]:.2f}" if s in values else "–" for s in (2, 4))
                     + " | measured here |")
    for name, values in SR_PUBLISHED.items():
        lines.append(f"| {name} | {values.get(2, '–')} | {values.get(4, '–')} | published |")
    return lines


def main() -> int:
    lines = ["<!-- built by bench/headline.py from bench/results/denoise_records.jsonl and sr.json -->", ""]
    lines += denoise_rows() + [""] + sr_rows() + [""]
    text = "\n".join(lines)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "README_table.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
