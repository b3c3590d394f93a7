"""``main.py train --recipe recipes/NAME.toml [--minutes M] [--steps N] [--data DIR...] [--out DIR] [--resume]``
(``--prepare`` first runs the commands that make the recipe's data).

Trains the recipe's model, prints progress lines (at most one every few seconds, plus every validation), and
exports the best weights to ``<id>.onnx/.json/.pt`` in ``--out`` (default: the per-user models folder, so the
model appears in the app at once; ship a model with ``--out resources/models``). The top level of this module
stays light: torch is imported only when the command runs. Under ``torchrun --nproc-per-node N`` it trains with
DDP, the recipe's batch per process (engine/training/distributed.py); rank 0 prints, checkpoints and exports.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("train", help="train a model from a recipe and register it")
    parser.add_argument("--recipe", required=True,
                        help="recipe TOML file, or the name of one in recipes/ (e.g. sr_x4_real)")
    parser.add_argument("--minutes", type=float, help="wall-time budget (replaces the recipe's budgets)")
    parser.add_argument("--steps", type=int, help="step budget (replaces the recipe's budgets)")
    parser.add_argument("--data", nargs="+", metavar="DIR", help="training image folder(s) (paired: input/ + target/)")
    parser.add_argument("--out", help="folder to export the model into (default: your models folder)")
    parser.add_argument("--run-dir", help="checkpoint folder (default: <user data>/training/<model id>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the checkpoint folder")
    parser.add_argument("--id", dest="model_id", help="id of the exported model (default: the recipe's)")
    parser.add_argument("--init", help="fine-tune from a .pt weights file or a registered model id")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes sampling batches ahead of the step (default: 0 on the CPU, up to 8 on a GPU)")
    parser.add_argument("--no-export", action="store_true", help="train and checkpoint only")
    parser.add_argument("--prepare", action="store_true",
                        help="first run the recipe's data commands ([data] prepare: they write its training folders)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError

    if args.steps is not None and args.steps <= 0 or args.minutes is not None and args.minutes <= 0:
        raise UsageError("--steps and --minutes must be positive")
    from . import distributed

    context = distributed.setup(None if args.device == "auto" else args.device)
    if not context.enabled:
        return _train(args, context)
    try:
        code = _train(args, context)
    except BaseException:
        distributed.teardown(finished=False)
        raise
    distributed.teardown(finished=True)
    distributed.exit_process(code)  # never returns: see its docstring


def _train(args: argparse.Namespace, context) -> int:
    from ..cli import UsageError
    from ..jobs import CancelToken, describe_eta, run_job
    from .recipes import load_recipe, run_prepare
    from .trainer import TrainOptions, train_job

    recipe = load_recipe(args.recipe)
    if recipe.data.kind == "shots":
        return _train_shots(args, recipe)
    if args.prepare:
        if not recipe.data.prepare:
            raise UsageError(f"{recipe.source} names no data commands: its data is in ../shared (or pass --data)")
        run_prepare(recipe)
    options = TrainOptions(
        steps=args.steps,
        minutes=args.minutes,
        data=tuple(args.data or ()),
        run_dir=Path(args.run_dir) if args.run_dir else None,
        out_dir=Path(args.out) if args.out else None,
        resume=args.resume,
        export=not args.no_export,
        model_id=args.model_id,
        init=args.init,
        device=None if args.device == "auto" else args.device,
        threads=args.threads,
        workers=args.workers,
    )
    last_print = [0.0]

    def report(progress) -> None:
        if not context.is_main:
            return
        now = time.monotonic()
        if progress.stage != "train" or "val_psnr" in progress.metrics or now - last_print[0] >= 5.0:
            last_print[0] = now
            left = describe_eta(progress.eta_s)
            eta = f" ({left})" if left else ""
            print(f"[{progress.stage}] {progress.message}{eta}", flush=True)

    result = run_job(train_job(recipe, CancelToken(), options), report)
    if not context.is_main:
        return 0
    best = "n/a" if result.best_val_psnr is None else f"{result.best_val_psnr:.2f} dB (step {result.best_step})"
    if result.start_val_psnr is not None:
        best += f", the starting model {result.start_val_psnr:.2f} dB"
    processes = f" x {context.world_size} processes" if context.enabled else ""
    print(
        f"trained {result.steps} steps in {result.seconds / 60:.1f} min on {result.device}{processes}; "
        f"best validation {best}; {result.skipped_batches} batches skipped"
    )
    if result.export is not None:
        print(f"exported {result.export.onnx_path} (parity error {result.export.parity_error:.2g})")
    sys.stdout.flush()
    return 0


def _train_shots(args: argparse.Namespace, recipe) -> int:
    """A temporal model's recipe (``[data] kind = "shots"``): recurrent clips (engine/training/temporal.py), then
    ``python main.py ship RUN_DIR`` exports it."""
    from ..cli import UsageError
    from ..jobs import CancelToken, run_job
    from .temporal import TemporalOptions, train_temporal

    if not args.run_dir:
        raise UsageError("a shots recipe needs --run-dir (ship the run with: python main.py ship RUN_DIR)")
    options = TemporalOptions(run_dir=Path(args.run_dir), steps=args.steps, minutes=args.minutes,
                              resume=args.resume, threads=args.threads, init=args.init,
                              data=tuple(args.data or ()))
    last_print = [0.0]

    def report(progress) -> None:
        now = time.monotonic()
        if "val" in progress.message or now - last_print[0] >= 30.0:
            last_print[0] = now
            print(f"[{progress.stage}] {progress.message}", flush=True)

    result = run_job(train_temporal(recipe, options, CancelToken()), report)
    best = "n/a" if result.best_score is None else f"{result.best_score:.5f}"
    print(f"trained {result.steps} steps in {result.seconds / 60:.1f} min; best validation relMSE + flicker {best}; "
          f"ship it with: python main.py ship {result.run_dir} --recipe {recipe.source}")
    return 0
