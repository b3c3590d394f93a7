"""The command a farm task runs, shared by the OpenCue and Deadline submission scripts (the Flamenco job type
builds the same list in JavaScript).

One task = one chunk of frames = one call of the headless batch command:

    <app> batch IN.####.exr -o OUT.####.exr --frames START-END --model ID@sha256:HEX --tile N --device D
          --skip-existing --progress json

``--skip-existing`` makes a re-queued task resume (outputs are written atomically, so existing ones are whole);
the pinned sha256 makes every node refuse a different model file (exit 3) rather than mix results; a fixed tile and
device make each frame the same bytes whichever node and chunk ran it. Exit codes: docs/farm.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
from collections.abc import Sequence


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="input frame pattern, e.g. /shots/sh010/beauty.####.exr (a path every node sees)")
    parser.add_argument("output", help="output frame pattern, e.g. /shots/sh010/denoised.####.exr")
    parser.add_argument("--frames", required=True, help="frame range, e.g. 1001-1100")
    parser.add_argument("--chunk", type=int, default=10, help="frames per task (default 10)")
    parser.add_argument("--model", required=True, help="model id, or ID@sha256:HEX to pin it yourself")
    parser.add_argument("--tile", type=int, default=512, help="tile edge (fixed, so chunks give the same bytes)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="model parameter")
    parser.add_argument("--app", default="restoration-studio",
                        help="the app on the render nodes: its executable, or 'PYTHON /path/main.py' for a checkout")
    parser.add_argument("--name", help="job name (default: from the output pattern)")


def pinned_model(model: str, app: Sequence[str]) -> str:
    """``ID@sha256:HEX``: as given, or with the sha256 the locally installed app reports for ``ID``."""
    if "@sha256:" in model:
        return model
    listing = subprocess.run([*app, "models", "--json"], capture_output=True, text=True, check=True)
    for entry in json.loads(listing.stdout):
        if entry["id"] == model:
            if not entry.get("sha256"):
                raise SystemExit(f"error: model {model!r} is built in (no file to pin); pick an ONNX model")
            return f"{model}@sha256:{entry['sha256']}"
    raise SystemExit(f"error: no model named {model!r} in this installation ({' '.join(app)} models)")


def batch_command(app: Sequence[str], input_pattern: str, output_pattern: str, frames: str, model: str, tile: int,
                  device: str, settings: Sequence[str] = ()) -> list[str]:
    """The task's argv; ``frames`` is the farm's chunk token (e.g. ``#FRAME_START#-#FRAME_END#``)."""
    command = [*app, "batch", input_pattern, "-o", output_pattern, "--frames", frames, "--model", model,
               "--tile", str(tile), "--device", device, "--skip-existing", "--progress", "json"]
    for item in settings:
        command += ["--set", item]
    return command


def app_argv(app: str) -> list[str]:
    return shlex.split(app)


def chunks(first: int, last: int, size: int) -> list[tuple[int, int]]:
    """(start, end) of each task, as the farms cut a contiguous range (for --dry-run listings and tests)."""
    return [(start, min(start + size - 1, last)) for start in range(first, last + 1, size)]
