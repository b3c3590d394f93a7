"""Export trained photo-denoising or super-resolution weights (a run's best.pt) as a shipped model.

    python scripts/ship_model.py --weights RUN/best.pt --recipe recipes/photo_denoise_color_gpu.toml \
        --steps 12865 --minutes 6.0 --device "CUDA: NVIDIA H200" --data-note "..." [--out resources/models]

Writes ``<id>.onnx`` (parity-checked against torch), ``<id>.json`` (manifest: recipe, architecture, steps,
minutes, device, data, validation PSNR) and ``<id>.pt`` (so the training dialog can fine-tune it). Benchmark
scores are added afterwards by ``bench/denoise.py --update-manifests`` / ``bench/sr.py --update-manifests``.
(Render denoisers have their own script, ship_render_model.py: they also export a kernel model.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, type=Path, help="a run's best.pt (or last.pt)")
    parser.add_argument("--recipe", required=True, type=Path)
    parser.add_argument("--id", help="model id (default: the recipe's)")
    parser.add_argument("--name", help="display name (default: the recipe's)")
    parser.add_argument("--description", help="description (default: the recipe's)")
    parser.add_argument("--steps", type=int, help="steps the run trained (default: the checkpoint's step)")
    parser.add_argument("--minutes", type=float, help="the run's training minutes")
    parser.add_argument("--device", default="", help="what it trained on, e.g. 'CUDA: NVIDIA H200'")
    parser.add_argument("--data-note", default="")
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "models")
    args = parser.parse_args()

    from engine.training.archs import build_model
    from engine.training.export import build_manifest, export_model, load_weights
    from engine.training.recipes import load_recipe

    recipe = load_recipe(args.recipe)
    weights = load_weights(args.weights)
    model = build_model(weights["arch"], weights["config"])
    model.load_state_dict(weights["state_dict"])
    model.eval()
    val = weights.get("val_psnr")
    provenance = {
        "recipe": str(args.recipe),
        "arch": weights["arch"],
        "arch_config": weights["config"],
        "data": args.data_note or [str(f) for f in recipe.data.train],
        "best_step": weights.get("step"),
        "steps": args.steps if args.steps is not None else weights.get("step"),
        "minutes": args.minutes,
        "device": args.device,
        "best_val_psnr": None if val is None else round(float(val), 3),
        "seed": recipe.train.seed,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    manifest = build_manifest(
        model,
        model_id=args.id or recipe.model.id,
        task=recipe.model.task,
        name=args.name or recipe.model.name,
        description=args.description or recipe.model.description,
        value_transform=recipe.model.value_transform,
        params=recipe.export.params,
        tile_default=recipe.export.tile,
        provenance=provenance,
        scores={} if val is None else {"val_psnr": round(float(val), 3)},
    )
    result = export_model(model, manifest, args.out, arch=weights["arch"], arch_config=weights["config"])
    size = result.onnx_path.stat().st_size / 1e6
    print(f"{result.onnx_path} ({size:.1f} MB, parity error {result.parity_error:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
