"""``main.py info FILE [--json]``: what the loader sees in a file, and which render pass took which role.

A frame pattern (``shot_####.exr``, ``--frames 1001-1100``) or a folder of numbered frames describes the shot: its
frames, the missing ones, and its first frame (size, passes, the motion pass and whether its convention is known).
A frame of a sequence also names the shot it belongs to."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("info", help="describe an image file as the loader sees it")
    parser.add_argument("file", help="an image file, a frame pattern (shot_####.exr) or a folder of frames")
    parser.add_argument("--frames", help="frames of a shot: 1001-1100, 1-99x2, 1,5,9-12 (default: those on disk)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)
    return parser


def exr_details(extra: dict[str, Any]) -> dict[str, Any]:
    """The EXR-only part of ``info``: parts, tiles, notes and the passes used as albedo / normal / depth..."""
    from ..imageio.exr import samples_in_header

    details: dict[str, Any] = {}
    samples = samples_in_header(extra.get("exr_header") or {})
    if samples is not None:
        details["samples"] = f"{samples} per pixel (from the renderer's header)"
    if extra.get("exr_parts", 1) > 1:
        details["parts"] = int(extra["exr_parts"])
    for key in ("exr_tiles", "exr_notes"):
        if key in extra:
            details[key[4:]] = extra[key]
    roles = extra.get("aov_roles")
    if roles is not None:
        details["roles"] = {role: {k: v for k, v in entry.items() if v} for role, entry in roles.items()}
    return details


def shot_details(shot) -> dict[str, Any]:
    """The shot part of ``info``: pattern, frames, missing frames."""
    from ..shot import format_frames

    details: dict[str, Any] = {"shot": shot.label, "pattern": shot.pattern, "frames": format_frames(shot.frames),
                               "frame_count": len(shot.frames)}
    if shot.missing:
        details["missing"] = format_frames(shot.missing)
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
    from pathlib import Path

    from ..cli import UsageError
    from ..imageio import describe, read_image
    from ..imageio.aov import describe_roles
    from ..shot import find_shot, normalise_pattern

    shot_info: dict[str, Any] = {}
    source = args.file
    as_shot = normalise_pattern(args.file)[0] is not None or Path(args.file).is_dir() or args.frames
    if as_shot:
        shot = find_shot(args.file, args.frames)
        if shot is None:
            raise UsageError(f"{args.file}: no numbered frames found (a pattern such as shot_####.exr, or a folder "
                             "of frames)")
        shot_info = shot_details(shot)
        if not shot.present:
            raise UsageError(f"{shot.label}: none of its frames exists")
        source = str(shot.path(shot.present[0]))
        shot_info["first_frame"] = source
    else:
        shot = find_shot(args.file) if Path(args.file).is_file() else None
        if shot is not None:
            shot_info = {"shot": shot.label}
    image = read_image(source)
    info = {**shot_info, **describe(image)} if as_shot else {**describe(image), **shot_info}
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
