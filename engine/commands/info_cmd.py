"""``main.py info FILE [--json]``: what the loader sees in a file."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("info", help="describe an image file as the loader sees it")
    parser.add_argument("file")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..imageio import describe, read_image

    info = describe(read_image(args.file))
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        width = max(len(str(key)) for key in info)
        for key, value in info.items():
            print(f"{str(key).ljust(width)}  {value}")
    return 0
