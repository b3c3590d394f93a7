"""Export a trained render denoiser from its run folder into a models folder, with its kernel model.

    python scripts/ship_render_model.py --run-dir RUN --recipe recipes/render_kprcan.toml \
        --data-note "21 scenes, seeds 10000-10020, 128x128, spp 1/4/16/64, 256-spp references" \
        [--out resources/models] [--checkpoint best|last]
    python scripts/ship_render_model.py --scores bench/results/render.json --id render-kprcan-aov

The first form writes ``<id>.onnx`` (parity-checked), ``<id>.json`` (manifest with provenance: recipe, steps,
minutes, validation PSNR, data), ``<id>.pt`` (for fine-tuning with ``train --init <id>``) and
``<id>.kernels.onnx`` (for the kernel inspector). The second copies the model's benchmark scores (relMSE and
tonemapped PSNR per spp on cbox256 and the held-out scenes) from bench/render.py's JSON into its manifest.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def export(args: argparse.Namespace) -> None:

    from engine.training.export import build_manifest, export_model, load_run, run_provenance
    from engine.training.kpcn_export import export_kernel_model
    from engine.training.recipes import load_recipe

    recipe = load_recipe(args.recipe)
    model, best, last = load_run(Path(args.run_dir), args.checkpoint)
    model_id = args.id or recipe.model.id
    provenance = run_provenance(args.recipe, args.checkpoint, best, last)
    provenance.update({
        "val_psnr_tonemapped": best.get("val_psnr", last.get("best_psnr")),
        "device": args.device_note,
        "data": args.data_note,
    })
    manifest = build_manifest(model, model_id=model_id, task=recipe.model.task, name=recipe.model.name,
                              description=recipe.model.description, value_transform=recipe.model.value_transform,
                              tile_default=recipe.export.tile, provenance=provenance)
    result = export_model(model, manifest, Path(args.out), arch=best["arch"], arch_config=best["config"])
    kernels = export_kernel_model(model, Path(args.out), model_id) if model.mode == "kernel" else None
    print(f"{result.onnx_path} (parity error {result.parity_error:.1e})" + (f", {kernels}" if kernels else ""))


def add_scores(args: argparse.Namespace) -> None:
    results = json.loads(Path(args.scores).read_text(encoding="utf-8"))["summary"]
    path = Path(args.out) / f"{args.id}.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    scores = {}
    for set_name, methods in results.items():
        for level, values in methods.get(args.id, {}).items():
            if isinstance(values, dict):
                scores[f"{set_name}_spp{level}_relmse"] = round(values["rel_mse"], 6)
                scores[f"{set_name}_spp{level}_psnr_tonemapped"] = round(values["psnr"], 3)
            else:
                scores[f"{set_name}_{level}"] = round(values, 4)
    manifest["scores"] = dict(manifest.get("scores", {}), **scores, benchmark="bench/results/render.md")
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    print(f"{len(scores)} scores -> {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir")
    parser.add_argument("--recipe")
    parser.add_argument("--id")
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"))
    parser.add_argument("--data-note", default="")
    parser.add_argument("--device-note", default="CPU (2 cores shared with other jobs), fp32",
                        help="where and how it trained, for the manifest")
    parser.add_argument("--out", default=str(ROOT / "resources" / "models"))
    parser.add_argument("--scores", help="bench/render.py JSON: copy this model's scores into its manifest")
    args = parser.parse_args()
    if args.scores:
        if not args.id:
            parser.error("--scores needs --id")
        add_scores(args)
    else:
        if not (args.run_dir and args.recipe):
            parser.error("give --run-dir and --recipe (or --scores and --id)")
        export(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
