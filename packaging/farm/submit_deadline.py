"""Submit a Restoration Studio batch job to Thinkbox Deadline (10.x), using Deadline's CommandLine plugin.

    python submit_deadline.py /shots/sh010/beauty.####.exr /shots/sh010/denoised.####.exr --frames 1001-1100 \
        --chunk 10 --model render-kprcan-aov --app /opt/RestorationStudio/RestorationStudio [--pool gpu] [--dry-run]

Writes the job info and plugin info files and calls ``deadlinecommand JOB_INFO PLUGIN_INFO`` (``--dry-run``
writes and prints them only). Each task runs the command of farm_command.py with ``--frames
<STARTFRAME>-<ENDFRAME>``, which Deadline replaces by the task's chunk. A task exiting non-zero fails (and is
retried as the job's settings say): 3 means the node has another model file than the one pinned, 4 that input
frames are missing (a render still running?); see docs/farm.md.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from farm_command import add_common_arguments, app_argv, batch_command, chunks, pinned_model

START, END = "<STARTFRAME>", "<ENDFRAME>"


def job_files(args: argparse.Namespace, model: str) -> tuple[str, str]:
    """The job info and plugin info texts (key=value lines)."""
    app = app_argv(args.app)
    command = batch_command(app[1:], args.input, args.output, f"{START}-{END}", model, args.tile, args.device,
                            args.set)
    name = args.name or f"Restoration Studio: {Path(args.output).name}"
    job = {
        "Plugin": "CommandLine",
        "Name": name,
        "Frames": args.frames,
        "ChunkSize": str(args.chunk),
        "OutputFilename0": args.output.replace("%04d", "####"),
    }
    if args.pool:
        job["Pool"] = args.pool
    if args.group:
        job["Group"] = args.group
    # Deadline splits Arguments like a Windows command line (double quotes, on every platform): list2cmdline quoting
    plugin = {"Executable": app[0], "Arguments": subprocess.list2cmdline(command), "Shell": "default",
              "ShellExecute": "False"}
    return _lines(job), _lines(plugin)


def task_command(plugin_info: str, start: int, end: int) -> list[str]:
    """What Deadline runs for the task of frames start..end (the tokens replaced; for --dry-run and tests)."""
    values = dict(line.split("=", 1) for line in plugin_info.splitlines() if "=" in line)
    arguments = values["Arguments"].replace(START, str(start)).replace(END, str(end))
    return [values["Executable"], *shlex.split(arguments)]


def _lines(values: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--pool", help="Deadline pool")
    parser.add_argument("--group", help="Deadline group")
    parser.add_argument("--dry-run", action="store_true", help="write and print the job files, submit nothing")
    parser.add_argument("--deadlinecommand", default="deadlinecommand")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model = pinned_model(args.model, app_argv(args.app))
    job, plugin = job_files(args, model)
    folder = Path(tempfile.mkdtemp(prefix="rs-deadline-"))
    (folder / "job_info.job").write_text(job, encoding="utf-8")
    (folder / "plugin_info.job").write_text(plugin, encoding="utf-8")
    if args.dry_run:
        print(f"# {folder / 'job_info.job'}\n{job}\n# {folder / 'plugin_info.job'}\n{plugin}")
        first, _, last = args.frames.partition("-")
        for start, end in chunks(int(first), int(last or first), args.chunk):
            print(f"# task {start}-{end}: {shlex.join(task_command(plugin, start, end))}")
        return 0
    return subprocess.call([args.deadlinecommand, str(folder / "job_info.job"), str(folder / "plugin_info.job")])


if __name__ == "__main__":
    sys.exit(main())
