"""Render denoiser checkpoints on validation scenes: relMSE and tonemapped PSNR per sample count, in PyTorch.

For choosing among training candidates before any is exported (the app's path, ONNX through the restore job, is
``bench/render.py`` and ``lab/bench/render_regions.py``). Each scene is one whole image, prepared as the restore job
prepares it (one image-wide exposure scale, log1p, the AOV conventions), so on 128 px scenes the figures equal
the app's to the printed digits (on seeds 80000-80015 at 4 / 16 spp, both ways: render-kprcan-aov 0.00527 /
0.00333, render-kprcan-color 0.00637 / 0.00403, and the colour model before it 0.00717 / 0.00444). Scenes:
folders of ``render-data`` scenes (``*/scene.json``), or a Cycles validation set of
``engine.render_data.cycles_backend --ref-spp`` (``input/`` + ``clean/``, seeds 40000+); never the benchmark's
held-out seeds (90000+) nor the foreign set for choosing.

    .venv/bin/python bench/render_checkpoints.py SCENES_DIR CHECKPOINT.pt... [--spp 4,16] [--threads 1] [--oidn]

Checkpoints: trainer checkpoints (``runs/NAME/last.pt``, ``best.pt``) or shipped weights
(``resources/models/ID.pt``). ``--oidn`` adds Intel Open Image Denoise (colour only and with albedo + normal)
through the restore job, as ``bench/render.py`` runs it. Prints a markdown table; writes nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from engine.imageio import read_image  # noqa: E402
from engine.imageio.hdr import sanitize_hdr  # noqa: E402
from engine.metrics import relmse, tonemapped_psnr  # noqa: E402
from engine.transforms import auto_exposure_scale, prepare_aov  # noqa: E402


def load_cycles_cases(scenes_dir: Path, spps: list[int]) -> list[tuple[int, object, np.ndarray]]:
    """(spp, noisy image, reference pixels) of every scene of a Cycles validation set
    (engine/render_data/cycles_backend.py with ``--ref-spp``: ``input/NAME_sppNNNN_color.exr`` beside
    ``clean/NAME_ref.exr``) that has its clean reference and every asked sample count."""
    cases = []
    for clean in sorted((scenes_dir / "clean").glob("*_ref.exr")):
        name = clean.name[: -len("_ref.exr")]
        inputs = [scenes_dir / "input" / f"{name}_spp{spp:04d}_color.exr" for spp in spps]
        if all(path.is_file() for path in inputs):
            reference = read_image(clean).pixels
            cases += [(spp, read_image(path), reference) for spp, path in zip(spps, inputs, strict=True)]
    if not cases:
        raise SystemExit(f"{scenes_dir}/clean holds no complete scene")
    return cases


def load_cases(scenes_dir: Path, spps: list[int]) -> list[tuple[int, object, np.ndarray]]:
    """(spp, noisy image, reference pixels) of every complete scene: render-data scenes (``*/scene.json``), or a
    Cycles validation set (``clean/`` + ``input/``)."""
    if (scenes_dir / "clean").is_dir():
        return load_cycles_cases(scenes_dir, spps)
    cases = []
    for info_path in sorted(scenes_dir.glob("*/scene.json")):
        info = json.loads(info_path.read_text(encoding="utf-8"))
        name, folder = info["name"], info_path.parent
        if info["seed"] >= 90000:
            raise SystemExit(f"{folder}: seed {info['seed']} is one of the benchmark's held-out scenes")
        reference = read_image(folder / f"{name}_ref_spp{info['ref_spp']:05d}_color.exr").pixels
        for spp in spps:
            cases.append((spp, read_image(folder / f"{name}_spp{spp:05d}_color.exr"), reference))
    if not cases:
        raise SystemExit(f"{scenes_dir} holds no complete rendered scene (no */scene.json)")
    return cases


def checkpoint_outputs(path: Path, cases) -> list[np.ndarray]:
    """One checkpoint's restored images (linear, as the file), one per case, from the inputs the restore job
    would prepare."""
    import torch

    from engine.training.export import load_weights, model_from_weights

    model = model_from_weights(load_weights(path)).eval()

    def tensor(array: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32))[None]

    outputs = []
    for _, image, _ in cases:
        scale = auto_exposure_scale(image.pixels)  # as the restore job: from the file's pixels, then sanitised
        linear, _ = sanitize_hdr(image.pixels)
        inputs = [tensor(np.log1p(linear * scale))]
        for name in model.aux_inputs:
            layer = np.asarray(image.layers[name])
            inputs.append(tensor(prepare_aov(name, layer[:, :, :1] if name == "depth" else layer[:, :, :3])))
        with torch.no_grad():
            out = model(*inputs)[0].numpy().transpose(1, 2, 0)
        outputs.append(np.expm1(out) / scale)
    return outputs


def restored_outputs(entry, cases) -> list[np.ndarray]:
    """The images an entry (an ONNX model or a built-in engine such as OIDN) restores through the app's restore job."""
    from engine.jobs import run_job
    from engine.restore import restore_job

    return [run_job(restore_job(image, entry, device="cpu")).image.pixels for _, image, _ in cases]


def scores(outputs: list[np.ndarray], cases) -> dict[int, tuple[float, float]]:
    """Mean relMSE and tonemapped PSNR per sample count."""
    per_spp: dict[int, list[tuple[float, float]]] = {}
    for restored, (spp, _, reference) in zip(outputs, cases, strict=True):
        per_spp.setdefault(spp, []).append((relmse(restored, reference), tonemapped_psnr(restored, reference)))
    return {spp: (float(np.mean([r for r, _ in v])), float(np.mean([p for _, p in v]))) for spp, v in per_spp.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenes", help="folder of render-data scenes (validation seeds)")
    parser.add_argument("checkpoints", nargs="+", help=".pt files")
    parser.add_argument("--spp", default="4,16", help="sample counts (default 4,16)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--oidn", action="store_true", help="also score OIDN, colour only and with AOVs")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    spps = [int(s) for s in args.spp.split(",")]
    cases = load_cases(Path(args.scenes), spps)
    print(f"{len(cases) // len(spps)} scenes from {args.scenes}; relMSE / tonemapped PSNR (dB)\n")
    print("| checkpoint | " + " | ".join(f"{spp} spp" for spp in spps) + " |")
    print("|---|" + "---|" * len(spps))
    for checkpoint in args.checkpoints:
        result = scores(checkpoint_outputs(Path(checkpoint), cases), cases)
        cells = " | ".join(f"{result[spp][0]:.5f} / {result[spp][1]:.2f}" for spp in spps)
        print(f"| {checkpoint} | {cells} |", flush=True)
    if args.oidn:
        from bench.render import methods

        for entry in methods([], with_oidn=True):
            if entry.path is None:  # the built-in engines, not the bundled networks
                result = scores(restored_outputs(entry, cases), cases)
                cells = " | ".join(f"{result[spp][0]:.5f} / {result[spp][1]:.2f}" for spp in spps)
                print(f"| {entry.id} | {cells} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
