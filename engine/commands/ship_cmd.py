"""``main.py ship RUN [--recipe R] [--checkpoint best|last] [--out DIR] ...``: make a trained model a shipped one.

    python main.py ship runs/render_color                      # a run folder of `main.py train` (best.pt, last.pt)
    python main.py ship RUN/best.pt --steps 12865 --minutes 6 --device-note "CUDA: NVIDIA H200, bf16"
    python main.py ship --reexport render-kprcan-color         # new ONNX files from a shipped model's .pt
    python main.py ship --scores bench/results/render.json --id render-kprcan-aov   # a benchmark's scores
    python main.py ship runs/clip_only --clipped-of photo-denoise-color   # its weights for clipped input

Writes ``<id>.onnx`` (parity-checked against torch), ``<id>.json`` and ``<id>.pt`` into ``--out`` (default:
resources/models), plus the companion files the architecture exports (``<id>.kernels.onnx`` for the kernel
inspector). The recipe is the one the checkpoint recorded unless ``--recipe`` names another. The work is
engine/training/ship.py; the top level of this module stays light (torch is imported when the command runs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import EngineError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("ship", help="export a training run as a shipped model (or update one)")
    parser.add_argument("run", nargs="?", metavar="RUN", help="a training run's folder, or one weights file (.pt)")
    parser.add_argument("--reexport", metavar="ID", help="rebuild a shipped model's ONNX files from its .pt")
    parser.add_argument("--scores", metavar="JSON", help="copy a benchmark's scores (bench/results/*.json) into --id")
    parser.add_argument("--recipe", help="the recipe the run trained (default: the one its checkpoint recorded)")
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"), help="with a run folder")
    parser.add_argument("--steps", type=int, help="with a weights file: steps the run trained")
    parser.add_argument("--minutes", type=float, help="with a weights file: the run's training minutes")
    parser.add_argument("--id", dest="model_id", help="model id (default: the recipe's)")
    parser.add_argument("--name", help="display name (default: the recipe's)")
    parser.add_argument("--description", help="description (default: the recipe's)")
    parser.add_argument("--validated-note", default="", help="appended to the description")
    parser.add_argument("--data-note", default="", help="what it trained on (default: the recipe's data.train)")
    parser.add_argument("--device-note", help="where and how it trained (default: the shared 2-core CPU, fp32)")
    parser.add_argument("--tile", type=int, help="default tile (0: whole image)")
    parser.add_argument("--overlap", type=int, help="tile overlap instead of the receptive radius")
    parser.add_argument("--out", help="models folder to write (default: resources/models)")
    parser.add_argument("--blend-with", metavar="PT", help="blend the run's weights with these (the weights it was "
                        "fine-tuned from): (1 - SHARE) x PT + SHARE x run")
    parser.add_argument("--blend", type=float, default=0.5, metavar="SHARE", help="the run's share with --blend-with")
    parser.add_argument("--clipped-of", metavar="ID", help="ship RUN as the weights model ID runs on clipped input "
                        "(8- and 16-bit photos): ID.clipped.onnx and the manifest's 'clipped' field")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError

    modes = [bool(args.run), bool(args.reexport), bool(args.scores)]
    if sum(modes) != 1:
        raise UsageError("give RUN (a run folder or weights file), or --reexport ID, or --scores JSON --id ID")
    try:
        from ..training import ship
    except ModuleNotFoundError as error:
        raise EngineError(f"this build has no training support ({error.name} is missing)") from None
    out = Path(args.out) if args.out else None
    if args.scores:
        if not args.model_id:
            raise UsageError("--scores needs --id")
        try:
            results = json.loads(Path(args.scores).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise EngineError(f"{args.scores}: {error}") from None
        scores = ship.add_scores(results, args.model_id, out)
        print(f"{len(scores)} scores -> {(out or ship.shipped_models_dir()) / (args.model_id + '.json')}")
        return 0
    if args.reexport:
        result = ship.reexport(args.reexport, out)
    else:
        request = ship.ShipRequest(
            Path(args.run), recipe=args.recipe, checkpoint=args.checkpoint, out=out, model_id=args.model_id,
            name=args.name, description=args.description, validated_note=args.validated_note,
            data_note=args.data_note, device_note=args.device_note or ship.CPU_NOTE, tile=args.tile,
            overlap=args.overlap, steps=args.steps, minutes=args.minutes,
            blend_with=Path(args.blend_with) if args.blend_with else None, blend=args.blend)
        if args.clipped_of:
            clipped = ship.ship_clipped(request, args.clipped_of)
            print(f"{clipped['file']} (sha256 {clipped['sha256'][:12]}) -> the weights {args.clipped_of} runs on "
                  "clipped input")
            return 0
        result = ship.ship(request)
    kernels = result.manifest.provenance.get("kernel_model")
    size_mb = result.onnx_path.stat().st_size / 1e6
    print(f"{result.onnx_path} ({size_mb:.2f} MB, parity error {result.parity_error:.1e})"
          + (f", companion {kernels}" if kernels else ""))
    return 0
