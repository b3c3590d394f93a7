"""``main.py info FILE [--json]``: what the loader sees in a file, and which render pass took which role."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("info", help="describe an image file as the loader sees it")
    parser.add_argument("file")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)
    return parser


def exr_details(extra: dict[str, Any]) -> dict[str, Any]:
    """The EXR-only part of ``info``: parts, tiles, notes and the passes used as albedo / normal / depth..."""
    details: dict[str, Any] = {}
    if extra.get("exr_parts", 1) > 1:
        details["parts"] = int(extra["exr_parts"])
    for key in ("exr_tiles", "exr_notes"):
        if key in extra:
            details[key[4:]] = extra[key]
    roles = extra.get("aov_roles")
    if roles is not None:
        details["roles"] = {role: {k: v for k, v in entry.items() if v} for role, entry in roles.items()}
    return details


def run(args: argparse.Namespace) -> int:
    from ..imageio import describe, read_image
    from ..imageio.aov import describe_roles

    image = read_image(args.file)
    info = describe(image)
    info.update(exr_details(dict(image.meta.extra)))
    roles = info.pop("roles", None) if not args.json else None
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    width = max(len(str(key)) for key in info)
    for key, value in info.items():
        print(f"{str(key).ljust(width)}  {value}")
    if roles is not None:
        inputs = [role for role in ("albedo", "normal", "depth") if role in roles]
        print("roles" + ("" if inputs else " (no albedo, normal or depth pass found: colour-only models apply)"))
        for line in describe_roles(roles):
            print(f"  {line}")
    return 0
