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


def raw_noise_text(path: str) -> str:
    """A raw file's Poisson-Gaussian noise, measured on its Bayer mosaic (engine/raw/noise.py), in words."""
    from ..raw.denoise import measure_noise

    profile, pattern = measure_noise(path)
    if pattern is None:
        return "not measured (not a Bayer sensor)"
    if profile is None:
        return "cannot tell (too small, dark or bright)"
    return (f"shot {profile.shot:.3g}, read {profile.read:.3g} (variance shot * x + read, x in 0-1 of the white "
            f"level): sigma {profile.sigma_at(0.18) * 100:.2f}% of white at 18% grey, measured on the mosaic")


def run(args: argparse.Namespace) -> int:
    from ..imageio import describe, read_image
    from ..imageio.aov import describe_roles

    image = read_image(args.file)
    info = describe(image)
    info.update(exr_details(dict(image.meta.extra)))
    if image.meta.format == "raw":
        info["noise"] = raw_noise_text(args.file)
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
