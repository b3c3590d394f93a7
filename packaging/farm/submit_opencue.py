"""Submit a Restoration Studio batch job to OpenCue with PyOutline (``pip install opencue-pyoutline``, and a
configured Cuebot).

    python submit_opencue.py /shots/sh010/beauty.####.exr /shots/sh010/denoised.####.exr --frames 1001-1100 \
        --chunk 10 --model render-kprcan-aov --app /opt/RestorationStudio/RestorationStudio \
        [--show SHOW --shot SHOT] [--service SERVICE] [--dry-run]

One Shell layer, ``chunk`` frames per frame-task; OpenCue replaces ``#FRAME_START#`` / ``#FRAME_END#`` in the
command with the chunk's first and last frame. ``--dry-run`` prints the layer's command, and each task's, instead
of launching. Exit codes of the command (3: model pin mismatch, 4: input frames missing): docs/farm.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from farm_command import add_common_arguments, app_argv, batch_command, chunks, pinned_model

START, END = "#FRAME_START#", "#FRAME_END#"


def layer_command(args: argparse.Namespace, model: str) -> list[str]:
    return batch_command(app_argv(args.app), args.input, args.output, f"{START}-{END}", model, args.tile,
                         args.device, args.set)


def task_command(command: list[str], start: int, end: int) -> list[str]:
    """What a frame-task runs (the tokens replaced as RQD does; for --dry-run and tests)."""
    return [part.replace(START, str(start)).replace(END, str(end)) for part in command]


def launch(args: argparse.Namespace, command: list[str]) -> None:
    from outline import Outline, cuerun
    from outline.modules.shell import Shell

    outline = Outline(args.name or f"restoration_studio_{args.output.split('/')[-1].split('.')[0]}",
                      show=args.show, shot=args.shot)
    layer = Shell("restore", command=command, range=args.frames, chunk=args.chunk, threads=1.0)
    if args.service:
        layer.set_service(args.service)
    outline.add_layer(layer)
    cuerun.launch(outline, use_pycuerun=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--show", help="OpenCue show")
    parser.add_argument("--shot", help="OpenCue shot")
    parser.add_argument("--service", help="RQD service (e.g. one with a GPU tag)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, launch nothing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = layer_command(args, pinned_model(args.model, app_argv(args.app)))
    if args.dry_run:
        print(shlex.join(command))
        first, _, last = args.frames.partition("-")
        for start, end in chunks(int(first), int(last or first), args.chunk):
            print(f"  task {start}-{end}: {shlex.join(task_command(command, start, end))}")
        return 0
    launch(args, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
