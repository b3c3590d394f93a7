"""``main.py noise-level FILE [--method auto|pca|immerkaer] [--json]``: estimate a photo's noise level.

Prints sigma in 8-bit units: the noise the file holds (for a JPEG, what is left after compression). For a JPEG the
level to give a denoiser (``restore --set noise_level=...``) is the sigma before compression, larger: it is printed
on stderr ("for a denoiser: ..."), and ``--json`` gives it as ``denoiser_level``; ``restore`` and the app use it
when they measure a photo themselves. ``auto`` (the default, what the app and ``restore`` use) picks the method
from the file and says how sure it is; an unsure level is printed with the reason on stderr (the app and
``restore`` do not use it), and an image it cannot measure at all is an error.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("noise-level", help="estimate the noise level of a photo (8-bit units)")
    parser.add_argument("file")
    parser.add_argument("--method", choices=("auto", "pca", "immerkaer"), default="auto",
                        help="auto: from the file (a JPEG with its own compression), with a confidence (default); "
                             "pca: Chen et al. 2015 on the pixels as they are; immerkaer: fast, over-reads texture")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..errors import EngineError
    from ..imageio import read_image
    from ..noise_estimate import estimate_noise_level, measure_noise

    image = read_image(args.file)
    if image.meta.hdr:
        raise EngineError("noise-level estimates display-referred photos; this is an HDR image")
    if args.method == "auto":
        estimate = measure_noise(image)
        if estimate.level is None:
            raise EngineError(f"cannot measure this image's noise: {estimate.reason}")
        if args.json:
            print(json.dumps({
                "noise_level": round(estimate.level, 2), "method": estimate.method,
                "confidence": round(estimate.confidence, 2), "confident": estimate.confident,
                "reason": estimate.reason,
                "sigma_before_compression": None if estimate.sigma_before_compression is None
                else round(estimate.sigma_before_compression, 2),
                "denoiser_level": round(estimate.denoiser_level, 2),
            }))
        else:
            print(f"{estimate.level:.1f}")
            if estimate.sigma_before_compression is not None:
                print(f"for a denoiser: {estimate.denoiser_level:.1f} (the sigma before compression, which restore "
                      "and the app use; the file holds less noise than was there before compression)",
                      file=sys.stderr)
            if not estimate.confident:
                print(f"unsure (confidence {estimate.confidence:.2f}): {estimate.reason}", file=sys.stderr)
        return 0
    try:
        level = estimate_noise_level(image.pixels, args.method)
    except ValueError as error:
        raise EngineError(str(error)) from None
    if args.json:
        print(json.dumps({"noise_level": round(level, 2), "method": args.method}))
    else:
        print(f"{level:.1f}")
    return 0
