"""``main.py noise-level FILE [--method pca|immerkaer] [--json]``: estimate a photo's noise level.

Prints sigma in 8-bit units, the value to give a denoiser as ``restore --set noise_level=...``.
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("noise-level", help="estimate the Gaussian noise level of a photo (8-bit units)")
    parser.add_argument("file")
    parser.add_argument("--method", choices=("pca", "immerkaer"), default="pca",
                        help="pca: Chen et al. 2015 (default, accurate); immerkaer: fast, over-reads texture")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..errors import EngineError
    from ..imageio import read_image
    from ..noise_estimate import estimate_noise_level

    image = read_image(args.file)
    if image.meta.hdr:
        raise EngineError("noise-level estimates display-referred photos; this is an HDR image")
    try:
        level = estimate_noise_level(image.pixels, args.method)
    except ValueError as error:
        raise EngineError(str(error)) from None
    if args.json:
        print(json.dumps({"noise_level": round(level, 2), "method": args.method}))
    else:
        print(f"{level:.1f}")
    return 0
