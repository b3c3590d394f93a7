"""Export a trained model as a shipped one (ONNX + manifest + weights), and record its benchmark scores.

    # from a run folder (best.pt / last.pt of `python main.py train`):
    python scripts/ship_model.py --run-dir runs/render_aov_mix --recipe recipes/render_kprcan_aov_mix.toml \
        [--checkpoint best|last] [--data-note "..."] [--device-note "..."] [--id ID] [--out resources/models] \
        [--tile N] [--overlap N] [--validated-note "..."]
    # from a single weights file fetched from a device run (give what the run's log said):
    python scripts/ship_model.py --weights RUN/best.pt --recipe recipes/photo_denoise_color_gpu.toml \
        --steps 12865 --minutes 6.0 --device-note "CUDA: NVIDIA H200, bf16" --data-note "..."
    # rebuild a shipped model's ONNX files from its .pt with the current exporter (manifest, scores kept):
    python scripts/ship_model.py --reexport render-kprcan-color
    # copy a model's scores from a benchmark's JSON into its manifest:
    python scripts/ship_model.py --scores bench/results/render.json --id render-kprcan-aov
    python scripts/ship_model.py --scores bench/results/documents.json --id document-restormer-tiny

Export writes ``<id>.onnx`` (parity-checked against torch), ``<id>.json`` (manifest; provenance: recipe,
architecture, steps, minutes, device, data, validation PSNR, loss, optimiser) and ``<id>.pt`` (so the training
dialog can fine-tune it); kernel-predicting render denoisers also get ``<id>.kernels.onnx`` for the kernel
inspector. ``--overlap`` replaces the architecture's receptive radius as the tile overlap (e.g. a Restormer's
attention is global over a tile, so the bench measures what a given overlap costs), ``--tile`` sets the default
tile (0: the whole image when it fits the memory budget). Photo-denoising and super-resolution scores are
written by their benches instead (``bench/denoise.py`` / ``bench/sr.py --update-manifests``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CPU_NOTE = "CPU (2 cores shared with other jobs), fp32"


def _load(args: argparse.Namespace):
    """The model, and what its manifest records about the training run."""
    from engine.training.export import load_run, load_weights, model_from_weights, run_provenance

    if args.run_dir:
        model, best, last = load_run(Path(args.run_dir), args.checkpoint)
        provenance = run_provenance(args.recipe, args.checkpoint, best, last)
        val = best.get("val_psnr", last.get("best_psnr"))
        return model, best, provenance, val
    weights = load_weights(args.weights)
    model = model_from_weights(weights)
    provenance = {"recipe": str(args.recipe), "arch": weights["arch"], "config": weights["config"],
                  "checkpoint": Path(args.weights).name, "best_step": weights.get("step"),
                  "steps": args.steps if args.steps is not None else weights.get("step"), "minutes": args.minutes}
    return model, weights, provenance, weights.get("val_psnr")


def export(args: argparse.Namespace) -> None:
    import time

    from engine.models.manifest import TileSpec
    from engine.training.export import build_manifest, export_model
    from engine.training.recipes import load_recipe

    recipe = load_recipe(args.recipe)
    model, weights, provenance, val = _load(args)
    model_id = args.id or recipe.model.id
    val = None if val is None else round(float(val), 3)
    provenance.update({
        "best_val_psnr": val,
        "device": args.device_note,
        "data": args.data_note or [str(f) for f in recipe.data.train],
        "loss": recipe.train.loss,
        "optimizer": f"AdamW lr {recipe.train.lr:g} wd {recipe.train.weight_decay:g}, warm-up + cosine",
        "seed": recipe.train.seed,
    })
    provenance.setdefault("date", time.strftime("%Y-%m-%d", time.gmtime()))
    description = args.description or recipe.model.description
    if args.validated_note:
        description = f"{description} {args.validated_note}"
    manifest = build_manifest(
        model, model_id=model_id, task=recipe.model.task, name=args.name or recipe.model.name,
        description=description, value_transform=recipe.model.value_transform, params=recipe.export.params,
        tile_default=args.tile if args.tile is not None else recipe.export.tile, provenance=provenance,
        scores={} if val is None else {"val_psnr": val},
    )
    if args.overlap is not None:
        manifest = dataclasses.replace(manifest, tile=TileSpec(manifest.tile.alignment, args.overlap,
                                                               manifest.tile.default))
    out = Path(args.out)
    result = export_model(model, manifest, out, arch=weights["arch"], arch_config=weights["config"])
    kernels = result.manifest.provenance.get("kernel_model")  # written by export_model (the arch's spec)
    size_mb = result.onnx_path.stat().st_size / 1e6
    print(f"{result.onnx_path} ({size_mb:.2f} MB, parity error {result.parity_error:.1e})"
          + (f", kernel model {kernels}" if kernels else ""))


def reexport(args: argparse.Namespace) -> None:
    """Same weights, same manifest (provenance, scores), new ONNX graph: for exporter improvements."""
    import time

    from engine.models.manifest import load_manifest
    from engine.training.export import export_model, load_weights, model_from_weights

    out = Path(args.out)
    manifest = load_manifest(out / f"{args.reexport}.json")
    weights = load_weights(out / f"{args.reexport}.pt")
    model = model_from_weights(weights)
    provenance = dict(manifest.provenance, reexported=time.strftime("%Y-%m-%d", time.gmtime()))
    manifest = dataclasses.replace(manifest, provenance=provenance)
    result = export_model(model, manifest, out, arch=weights["arch"], arch_config=weights["config"])
    kernels = result.manifest.provenance.get("kernel_model")
    print(f"{result.onnx_path} (parity error {result.parity_error:.1e})" + (f", {kernels}" if kernels else ""))


def scores_from(results: dict, model_id: str) -> tuple[dict, str]:
    """A model's scores in a benchmark JSON: bench/render.py's ("summary") or bench/documents.py's ("records")."""
    scores = {}
    if "summary" in results:
        for set_name, methods in results["summary"].items():
            for level, values in methods.get(model_id, {}).items():
                if isinstance(values, dict):
                    scores[f"{set_name}_spp{level}_relmse"] = round(values["rel_mse"], 6)
                    scores[f"{set_name}_spp{level}_psnr_tonemapped"] = round(values["psnr"], 3)
                else:
                    scores[f"{set_name}_{level}"] = round(values, 4)
        return scores, "bench/results/render.md"
    if "records" in results:
        for record in results["records"]:
            if record["method"].startswith(f"{model_id} ("):
                setting = record["method"][len(model_id) + 2 : -1].replace(" ", "_").replace(",", "")
                scores[f"documents_val16_rmse_{setting}"] = round(record["rmse"], 5)
                scores[f"documents_val16_s_per_page_{setting}"] = round(record["s_per_page"], 3)
        return scores, "bench/results/documents.md"
    raise SystemExit("unknown benchmark JSON: expected bench/render.py's or bench/documents.py's")


def add_scores(args: argparse.Namespace) -> None:
    scores, benchmark = scores_from(json.loads(Path(args.scores).read_text(encoding="utf-8")), args.id)
    if not scores:
        raise SystemExit(f"no scores of {args.id} in {args.scores}")
    path = Path(args.out) / f"{args.id}.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["scores"] = dict(manifest.get("scores", {}), **scores, benchmark=benchmark)
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    print(f"{len(scores)} scores -> {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--run-dir", help="a training run's folder (best.pt, last.pt)")
    source.add_argument("--weights", help="one weights file (a run's best.pt fetched alone)")
    source.add_argument("--scores", help="a benchmark's JSON: copy the model's scores into its manifest")
    source.add_argument("--reexport", metavar="ID", help="rebuild a shipped model's ONNX files from its .pt")
    parser.add_argument("--recipe", help="the recipe the run trained (export)")
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"), help="with --run-dir")
    parser.add_argument("--steps", type=int, help="with --weights: steps the run trained")
    parser.add_argument("--minutes", type=float, help="with --weights: the run's training minutes")
    parser.add_argument("--id", help="model id (default: the recipe's)")
    parser.add_argument("--name", help="display name (default: the recipe's)")
    parser.add_argument("--description", help="description (default: the recipe's)")
    parser.add_argument("--validated-note", default="", help="appended to the description")
    parser.add_argument("--data-note", default="", help="what it trained on (default: the recipe's data.train)")
    parser.add_argument("--device-note", default=CPU_NOTE, help="where and how it trained")
    parser.add_argument("--tile", type=int, help="default tile (0: whole image)")
    parser.add_argument("--overlap", type=int, help="tile overlap instead of the receptive radius")
    parser.add_argument("--out", default=str(ROOT / "resources" / "models"))
    args = parser.parse_args()
    if args.scores:
        if not args.id:
            parser.error("--scores needs --id")
        add_scores(args)
    elif args.reexport:
        reexport(args)
    elif args.run_dir or args.weights:
        if not args.recipe:
            parser.error("export needs --recipe")
        export(args)
    else:
        parser.error("give --run-dir or --weights (export), or --scores with --id")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
