"""Measure what one tile of a model costs in memory, for the manifest (``tile.bytes_per_pixel``, ``tile.bytes_base``).

The restore job sizes its tiles from these two figures and the memory available (engine/restore.py,
``choose_tile_size``), so they must be what the app really uses: each size is measured in a fresh child process
that builds the session as the app does (engine/runtime.py), runs one small warm-up tile, resets its peak resident
set size (Linux ``/proc/self/clear_refs``), then creates the H x W x C tiles and runs the app's ``run_image`` on
them twice (a second run of the same shape is where a memory plan would double the peak), and reports the peak
above the resident size before the tiles. Two sizes give a line: bytes per input pixel and a fixed part.

    .venv/bin/python -m engine.training.tile_memory resources/models/sr-x2.json [--write]

A render model with a CPU kernel pipeline (engine/kernel_pipeline.py) is measured that way too; its figures go into
the manifest's ``provenance.pipeline`` (the restore job sizes its tiles by them when the pipeline runs).

Linux only (it reads ``/proc/self/status``). The export measures each new model this way (engine/training/export.py);
``--write`` adds the figures to an existing manifest without touching anything else in it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

#: Tile edges measured (input pixels); large enough that the per-pixel part dominates the fixed part.
SIZES = (256, 512)
#: Channels of each spatial input role besides ``color`` (whose channels are the manifest's).
ROLE_CHANNELS = {"albedo": 3, "normal": 3, "depth": 1, "previous_color": 3, "previous_output": 3, "previous_valid": 1}


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def _tiles(inputs: list[str], channels: int, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    tiles = {}
    for role in inputs:
        if role == "noise_level":
            continue
        count = channels if role in ("color", "noise_map") else ROLE_CHANNELS[role]
        tiles[role] = rng.random((size, size, count), dtype=np.float32)
    return tiles


def _pipeline_model(manifest_path: Path):
    """The CPU kernel pipeline (engine/kernel_pipeline.py) of the render model whose manifest is at
    ``manifest_path``, loaded as the app loads it (engine.models.entry.load_pipeline_model)."""
    from ..models.entry import ModelEntry, load_pipeline_model
    from ..models.manifest import load_manifest

    manifest = load_manifest(manifest_path)
    model = load_pipeline_model(ModelEntry(manifest, manifest_path.parent / manifest.file, "user"), "cpu")
    if model is None:
        raise RuntimeError(f"{manifest_path.name}: no CPU kernel pipeline to measure (files or native stage missing)")
    return model


def measure_in_this_process(onnx_path: Path, inputs: list[str], channels: int, size: int) -> int:
    """Peak bytes above the resident set for two runs of one ``size`` x ``size`` tile (call in a fresh process).
    ``onnx_path`` may name a render model's manifest (.json) instead: its CPU kernel pipeline is measured."""
    from ..runtime import OnnxModel

    model = _pipeline_model(onnx_path) if onnx_path.suffix == ".json" else OnnxModel(onnx_path, "cpu")
    extra = {"noise_level": np.full((1, 1, 1, 1), 0.1, np.float32)} if "noise_level" in inputs else {}
    model.run_image(_tiles(inputs, channels, 32), extra=extra)  # warm-up: lazy initialisation is not per pixel
    with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
        handle.write("5")  # resets VmHWM to the current resident set
    before = _status_kib("VmRSS")
    tiles = _tiles(inputs, channels, size)
    for _ in range(2):
        model.run_image(tiles, extra=extra)
    return (_status_kib("VmHWM") - before) * 1024


def measure(onnx_path: Path, inputs: list[str], channels: int, alignment: int = 1) -> dict[str, float]:
    """``{"bytes_per_pixel": ..., "bytes_base": ...}`` from one child process per size in :data:`SIZES`
    (``onnx_path``: the model file, or a render model's manifest for its CPU kernel pipeline)."""
    root = Path(__file__).resolve().parents[2]
    peaks = []
    sizes = [size - size % max(1, alignment) for size in SIZES]
    for size in sizes:
        command = [sys.executable, "-m", "engine.training.tile_memory", "--child", str(onnx_path),
                   ",".join(inputs), str(channels), str(size)]
        done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=True)
        peaks.append(int(done.stdout.strip().splitlines()[-1]))
    pixels = [size * size for size in sizes]
    per_pixel = (peaks[1] - peaks[0]) / (pixels[1] - pixels[0])
    base = max(0.0, peaks[0] - per_pixel * pixels[0])
    return {"bytes_per_pixel": round(per_pixel, 1), "bytes_base": float(round(base, -3))}


def update_manifest(manifest_path: Path) -> dict[str, float]:
    """Measure the model of ``manifest_path`` and add the figures to its ``tile`` (nothing else changes), and
    those of its CPU kernel pipeline, if it has one, to ``provenance.pipeline``."""
    text = manifest_path.read_text(encoding="utf-8")
    data = json.loads(text)
    shape = (list(data.get("inputs", ["color"])), int(data.get("channels", 3)),
             int(data.get("tile", {}).get("alignment", 1)))
    figures = measure(manifest_path.parent / data["file"], *shape)
    data.setdefault("tile", {}).update(figures)
    pipeline = data.get("provenance", {}).get("pipeline")
    if isinstance(pipeline, dict) and pipeline.get("features"):
        pipeline.update(measure(manifest_path, *shape))
    ending = "\n" if text.endswith("\n") else ""
    manifest_path.write_text(json.dumps(data, indent=2, sort_keys=False) + ending, encoding="utf-8")
    return figures


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        path, inputs, channels, size = argv[1:5]
        print(measure_in_this_process(Path(path), inputs.split(","), int(channels), int(size)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifests", nargs="+", type=Path)
    parser.add_argument("--write", action="store_true", help="store the figures in each manifest's tile")
    args = parser.parse_args(argv)
    for manifest_path in args.manifests:
        if args.write:
            figures = update_manifest(manifest_path)
        else:
            data = json.loads(manifest_path.read_text(encoding="utf-8"))
            figures = measure(manifest_path.parent / data["file"], list(data.get("inputs", ["color"])),
                              int(data.get("channels", 3)), int(data.get("tile", {}).get("alignment", 1)))
        print(f"{manifest_path.name}: {figures['bytes_per_pixel']:.0f} bytes per pixel + "
              f"{figures['bytes_base'] / 2**20:.0f} MiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
