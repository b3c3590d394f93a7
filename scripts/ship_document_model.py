"""Export a trained document model from its run folder into a models folder, and record its benchmark scores.

    python scripts/ship_document_model.py --run-dir runs/document_restormer_tiny2 \
        --recipe recipes/document_restormer_tiny.toml [--out resources/models] [--overlap 48] [--tile 0]
    python scripts/ship_document_model.py --scores bench/results/documents.json --id document-restormer-tiny

The first form writes ``<id>.onnx`` (parity-checked), ``<id>.json`` and ``<id>.pt`` with provenance (recipe,
steps, minutes, validation PSNR, data). ``--overlap`` replaces the architecture's theoretical receptive radius
(MDTA attention is global over a tile, so no overlap makes tiles exactly equal to a whole page; the bench
measures what a given overlap costs); ``--tile`` sets the default tile (0: the whole page when it fits the
memory budget). The second form copies the model's pooled RMSE from bench/documents.py's JSON into its manifest.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA_NOTE = (
    "80 real NoisyOffice training pages of ../shared/bench/documents (the 16 VALIDATION_IDS pages held out), "
    "each linked 10 times, plus 400 synthetic pages (engine/documents/synth.py seeds 0-399); random 96x96 crops"
)


def export(args: argparse.Namespace) -> None:

    from engine.models.manifest import TileSpec
    from engine.training.export import build_manifest, export_model, load_run, run_provenance
    from engine.training.recipes import load_recipe

    recipe = load_recipe(args.recipe)
    model, best, last = load_run(Path(args.run_dir), args.checkpoint)
    model_id = args.id or recipe.model.id
    provenance = run_provenance(args.recipe, args.checkpoint, best, last)
    provenance.update({
        "val_psnr_256_crops": best.get("val_psnr", last.get("best_psnr")),
        "device": "CPU (2 cores shared with other jobs), fp32",
        "loss": recipe.train.loss,
        "optimizer": f"AdamW lr {recipe.train.lr:g} wd {recipe.train.weight_decay:g}, warm-up + cosine",
        "data": args.data_note,
    })
    description = recipe.model.description
    if args.validated_note:
        description = f"{description} {args.validated_note}"
    manifest = build_manifest(model, model_id=model_id, task=recipe.model.task, name=recipe.model.name,
                              description=description, value_transform=recipe.model.value_transform,
                              tile_default=args.tile if args.tile is not None else recipe.export.tile,
                              provenance=provenance)
    if args.overlap is not None:
        manifest = dataclasses.replace(manifest, tile=TileSpec(manifest.tile.alignment, args.overlap,
                                                               manifest.tile.default))
    result = export_model(model, manifest, Path(args.out), arch=best["arch"], arch_config=best["config"])
    size_mb = result.onnx_path.stat().st_size / 1e6
    print(f"{result.onnx_path} ({size_mb:.2f} MB, parity error {result.parity_error:.1e})")


def add_scores(args: argparse.Namespace) -> None:
    records = json.loads(Path(args.scores).read_text(encoding="utf-8"))["records"]
    path = Path(args.out) / f"{args.id}.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    scores = {}
    for record in records:
        if record["method"].startswith(f"{args.id} ("):
            setting = record["method"][len(args.id) + 2 : -1].replace(" ", "_").replace(",", "")
            scores[f"documents_val16_rmse_{setting}"] = round(record["rmse"], 5)
            scores[f"documents_val16_s_per_page_{setting}"] = round(record["s_per_page"], 3)
    if not scores:
        raise SystemExit(f"no record of {args.id} in {args.scores}")
    manifest["scores"] = dict(manifest.get("scores", {}), **scores, benchmark="bench/results/documents.md")
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    print(f"{len(scores)} scores -> {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir")
    parser.add_argument("--recipe", default="recipes/document_restormer_tiny.toml")
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"))
    parser.add_argument("--out", default=str(ROOT / "resources" / "models"))
    parser.add_argument("--id")
    parser.add_argument("--overlap", type=int)
    parser.add_argument("--tile", type=int)
    parser.add_argument("--validated-note", default="", help="appended to the description (tile validated at)")
    parser.add_argument("--data-note", default=DATA_NOTE)
    parser.add_argument("--scores", help="bench/results/documents.json: copy the model's scores into its manifest")
    args = parser.parse_args()
    if args.scores:
        if not args.id:
            parser.error("--scores needs --id")
        add_scores(args)
    elif args.run_dir:
        export(args)
    else:
        parser.error("give --run-dir (export) or --scores (record scores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
