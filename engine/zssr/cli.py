"""``main.py zssr INPUT -o OUTPUT --scale S [--preset fast|paper|real] [--kernel FILE|estimate] ...``.

Trains ZSSR on INPUT and writes it upscaled to OUTPUT (same format rules as ``restore``). ``--scale`` takes
one factor or two (rows, columns), non-integer allowed. Progress goes to stderr; Ctrl+C cancels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import PRESET_NAMES


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("zssr", help="zero-shot super-resolution (trains on the image itself)")
    parser.add_argument("input", metavar="INPUT", help="image file")
    parser.add_argument("-o", "--output", required=True, help="output image file")
    parser.add_argument("--scale", type=float, nargs="+", required=True, metavar="S",
                        help="scale factor, or two factors (rows columns)")
    parser.add_argument("--preset", choices=PRESET_NAMES, default="fast")
    parser.add_argument("--kernel", metavar="FILE",
                        help="downscaling kernel file (.npy, .png, .mat) or 'estimate' (default: bicubic)")
    parser.add_argument("--iterations", type=int, metavar="N", help="maximum iterations per scale step")
    parser.add_argument("--min-iterations", type=int, metavar="N", help="minimum iterations between lr changes")
    parser.add_argument("--seconds", type=float, metavar="T", help="wall-clock budget for the whole run")
    parser.add_argument("--steps", type=int, metavar="N", help="gradual scale steps (default: one per x2)")
    parser.add_argument("--noise", type=float, metavar="STD", help="noise std added to the LR sons")
    parser.add_argument("--crop", type=int, metavar="PX", help="training crop size")
    parser.add_argument("--back-projection", type=int, metavar="N", help="back-projection iterations (0: off)")
    parser.add_argument("--no-ensemble", action="store_true", help="skip the 8-way self-ensemble")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="allow replacing an existing output file")
    parser.set_defaults(handler=run)
    return parser


def request_from_args(args: argparse.Namespace):
    from ..cli import UsageError
    from .config import preset_request

    if len(args.scale) not in (1, 2):
        raise UsageError("--scale takes one or two factors")
    scale = (args.scale[0], args.scale[-1])
    if min(scale) < 1.0 or max(scale) > 16.0:
        raise UsageError("--scale must be between 1 and 16")
    overrides: dict = {}
    if args.kernel:
        if args.kernel == "estimate":
            overrides["kernel"] = "estimate"
        else:
            if not Path(args.kernel).is_file():
                raise UsageError(f"{args.kernel}: no such kernel file")
            overrides.update(kernel="file", kernel_path=str(args.kernel))
    if args.iterations is not None:
        overrides["max_iterations"] = args.iterations
    if args.min_iterations is not None:
        overrides["min_iterations"] = args.min_iterations
    for name, field in (("seconds", "seconds"), ("steps", "gradual_steps"), ("noise", "noise_std"),
                        ("crop", "crop_size")):
        if getattr(args, name) is not None:
            overrides[field] = getattr(args, name)
    if args.back_projection is not None:
        overrides.update(back_projection=args.back_projection > 0, back_projection_iters=max(args.back_projection, 0))
    if args.no_ensemble:
        overrides["ensemble"] = False
    try:
        return preset_request(args.preset, scale, device=args.device, seed=args.seed, **overrides)
    except ValueError as error:
        raise UsageError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..commands.progress_bar import clear_bar, draw_bar
    from ..errors import EngineError
    from ..imageio import is_supported, read_image, write_image
    from ..imageio.atomic import claim_output
    from ..jobs import CancelToken, run_job
    from .train import zssr_job

    request = request_from_args(args)
    source, target = Path(args.input), Path(args.output)
    if not source.is_file():
        raise UsageError(f"{source}: no such file")
    if not is_supported(target):
        raise UsageError(f"{target}: unsupported output format")
    if target.exists() and not args.overwrite:
        raise EngineError(f"{target}: already exists (use --overwrite to replace it)")
    image = read_image(source)
    pages = int(image.meta.extra.get("pages", 1))
    if pages > 1:  # ZSSR trains on one image; never restore page 1 and drop the rest without a word
        raise EngineError(f"{source}: has {pages} pages and ZSSR restores one image at a time; save the page you "
                          "want as its own file (or use `restore`, which processes every page)")
    tty = sys.stderr.isatty()
    last = [-1.0]

    def show(progress) -> None:
        fraction = progress.fraction or 0.0
        if tty:
            draw_bar(fraction, progress.message, eta_s=progress.eta_s)
        elif fraction - last[0] >= 0.1:
            last[0] = fraction
            print(f"{fraction * 100:5.1f}% {progress.message}", file=sys.stderr)

    # Claimed before training and published without replacing anything: parallel runs never clobber each other.
    with claim_output(target, overwrite=args.overwrite):
        try:
            result = run_job(zssr_job(image, request, CancelToken()), show)
        finally:
            clear_bar()
        write_image(target, result.image, overwrite=args.overwrite)
    if request.seconds is not None and result.details["iterations"] == 0:
        print(f"warning: --seconds {request.seconds:g} left no time to train on this machine (the result is "
              "the untrained network's); give it more time", file=sys.stderr)
    print(f"{source} -> {target}  [{result.label}, {result.details['iterations']} iterations, {result.device}, "
          f"{result.seconds:.1f} s]")
    return 0
