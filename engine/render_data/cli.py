"""``render-data``: render procedural Mitsuba scenes as training/validation sets for render denoisers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..jobs import Progress, describe_eta, run_job
from .scenes import DEFAULT_GAUSSIAN_FRACTION


def _spp_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated sample counts, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("sample counts must be positive integers")
    return values


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value}")
    return value


def _size(text: str) -> tuple[int, int]:
    from ..cli import UsageError

    try:
        width, height = (int(v) for v in text.lower().split("x"))
        if width < 8 or height < 8:
            raise ValueError
    except ValueError:
        raise UsageError(f"--size must be WxH with both at least 8, got {text!r}") from None
    return width, height


def _report(progress: Progress) -> None:
    left = describe_eta(progress.eta_s)
    print(f"[{progress.fraction:6.1%}] {progress.message}" + (f", {left}" if left else ""), file=sys.stderr,
          flush=True)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    add_shot_parser(subparsers)
    parser = subparsers.add_parser(
        "render-data",
        help="render procedural scenes (noisy + reference, with AOVs) for training render denoisers",
        description="Render N procedural Mitsuba scenes at several sample counts with albedo, normal and depth "
        "AOVs, plus a high-spp reference, as EXR sets (needs mitsuba from requirements-dev.txt).",
    )
    parser.add_argument("--scenes", type=_positive, required=True, help="number of scenes")
    parser.add_argument("--out", type=Path, required=True, help="output folder (one sub-folder per scene)")
    parser.add_argument("--spp", type=_spp_list, default=(1, 4, 16, 64), help="noisy sample counts (default 1,4,16,64)")
    parser.add_argument("--ref-spp", type=_positive, default=1024, help="reference sample count (default 1024)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first scene; scene i uses seed+i")
    parser.add_argument("--size", default="128x128", help="image size WxH (default 128x128)")
    parser.add_argument("--threads", type=_positive, default=None, help="render threads (default: all cores)")
    parser.add_argument("--gaussian-fraction", type=_fraction, default=DEFAULT_GAUSSIAN_FRACTION,
                        help="share of scenes with a Gaussian pixel filter, i.e. spatially correlated noise "
                        "(default 0: box filter, independent pixel noise as most path tracers and OIDN assume)")
    parser.add_argument("--panel-fraction", type=_fraction, default=0.0,
                        help="share of scenes with an emitting panel flush with a wall, sharing its albedo and "
                        "normal like the Cornell box's light (default 0, as the sets made before this option)")
    parser.add_argument("--firefly-fraction", type=_fraction, default=0.0,
                        help="share of scenes full of caustic paths (mirror-like and glass shapes, a concentrated "
                        "light, often a dark floor), which are fireflies at low sample counts (default 0)")
    parser.add_argument("--no-resume", action="store_true", help="re-render scenes that are already complete")
    parser.add_argument("--pairs", type=Path, default=None,
                        help="also write a training view (input/ + target/ folders paired by name) here")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from .generate import RenderSetRequest, generate_set

    width, height = _size(args.size)
    request = RenderSetRequest(
        out=args.out, scenes=args.scenes, seed=args.seed, spp=args.spp, ref_spp=args.ref_spp,
        width=width, height=height, threads=args.threads, resume=not args.no_resume,
        gaussian_fraction=args.gaussian_fraction, panel_fraction=args.panel_fraction,
        firefly_fraction=args.firefly_fraction,
    )
    result = run_job(generate_set(request), _report)
    print(f"{len(result.names)} scenes in {result.seconds:.1f} s ({result.variant}) -> {result.out}")
    if args.pairs is not None:
        from .pairs import write_pairs

        print(f"{write_pairs(args.out, args.pairs)} training pairs -> {args.pairs}")
    return 0


def add_shot_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "render-shot",
        help="render one procedural scene as a shot of several frames, for per-scene fine-tuning",
        description="Render one procedural Mitsuba scene as a short camera move: each frame noisy (albedo, normal "
        "and depth as EXR layers) beside the same frame with many samples (NAME_ref.exr), the layout the Train "
        "dialog fine-tunes a render denoiser on (needs mitsuba from requirements-dev.txt).",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (frame_0000.exr, frame_0000_ref.exr...)")
    parser.add_argument("--seed", type=int, default=0, help="the scene's seed")
    parser.add_argument("--frames", type=_positive, default=8, help="number of frames (default 8)")
    parser.add_argument("--spp", type=_positive, default=4, help="samples per pixel of the noisy frames (default 4)")
    parser.add_argument("--ref-spp", type=_positive, default=256,
                        help="samples per pixel of the references (default 256)")
    parser.add_argument("--size", default="128x128", help="image size WxH (default 128x128)")
    parser.add_argument("--orbit", type=float, default=24.0,
                        help="degrees the camera turns about its target over the shot (default 24)")
    parser.add_argument("--panel-fraction", type=_fraction, default=0.0,
                        help="probability that the scene has an emitting panel flush with a wall (default 0)")
    parser.add_argument("--threads", type=_positive, default=None, help="render threads (default: all cores)")
    parser.set_defaults(handler=run_shot)
    return parser


def run_shot(args: argparse.Namespace) -> int:
    from .generate import ShotRequest, generate_shot

    width, height = _size(args.size)
    request = ShotRequest(out=args.out, seed=args.seed, frames=args.frames, spp=args.spp, ref_spp=args.ref_spp,
                          width=width, height=height, threads=args.threads, orbit_degrees=args.orbit,
                          panel_fraction=args.panel_fraction)
    result = run_job(generate_shot(request), _report)
    print(f"{len(result.names)} frames in {result.seconds:.1f} s ({result.variant}) -> {result.out}")
    return 0
