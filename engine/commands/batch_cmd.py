"""``main.py batch INPUT... -o OUTPUT [--frames 1001-1100] [--model ID@sha256:HEX] [--skip-existing] [--progress json]
[--ray auto|local|ADDRESS]``: the farm-ready, headless restore.

Inputs are files, folders or frame patterns (``shot.####.exr``, ``shot.%04d.exr``, with ``--frames``); the output is a
file, a folder or a pattern. Every output is written atomically, so a killed job leaves complete files or none,
and ``--skip-existing`` resumes where it stopped. Each frame gives the same bytes whether the shot runs whole or
in chunks (the tile size is fixed, never sized to free memory; keep ``--device`` fixed too). ``--progress json``
prints one JSON object per line on stdout; exit codes are listed in engine/batch.py and docs/farm.md. ``--ray``
spreads the files over a Ray cluster (engine/ray_batch.py); without it they run here, one after another.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..jobs import EtaClock
from .progress_bar import clear_bar, draw_bar
from .stopping import sigterm_as_ctrl_c


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "batch", help="restore many files or frames (farm-ready; optionally on a Ray cluster)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, or frame patterns")
    parser.add_argument("-o", "--output", required=True, help="output file, folder, or frame pattern")
    parser.add_argument("--frames", help="frames of a pattern: 1001-1100, 1-99x2, 1,5,9-12 (default: those on disk)")
    parser.add_argument("--model", help="model id, optionally pinned: ID@sha256:HEX (default: suggested per image)")
    parser.add_argument("--model-sha256", metavar="HEX", help="refuse to run unless the model file has this sha256")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="settings",
                        help="model parameter")
    parser.add_argument("--tile", type=int,
                        help="tile edge in pixels (default: the model's, else 512; never automatic)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--ensemble", type=int, choices=(1, 4, 8), default=1, metavar="{1,4,8}")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--skip-existing", action="store_true", help="leave outputs that exist (resume a run)")
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that exist")
    parser.add_argument("--progress", choices=("text", "json"), default="text",
                        help="json: one JSON object per line on stdout (start, progress, done/skipped/error, finish)")
    parser.add_argument("--ray", metavar="ADDRESS",
                        help="run on a Ray cluster: auto (the running one), local (start one here), or HOST:PORT")
    parser.add_argument("--workers", type=int, help="Ray actors (default: one per CPU, or per GPU with cuda)")
    parser.add_argument("--retries", type=int, default=2, help="Ray: attempts after a failure or a lost worker")
    parser.set_defaults(handler=run)
    return parser


def options_from_args(args: argparse.Namespace):
    from ..batch import BatchOptions, split_model_spec

    model_id, sha256 = split_model_spec(args.model, args.model_sha256)
    if args.tile is not None and args.tile < 0:
        from ..batch import UsageProblem

        raise UsageProblem("--tile must be 0 or more")
    return BatchOptions(model_id=model_id, model_sha256=sha256, settings=tuple(args.settings), tile=args.tile or None,
                        device=args.device, ensemble=args.ensemble, overwrite=args.overwrite,
                        skip_existing=args.skip_existing)


def run(args: argparse.Namespace) -> int:
    as_json = args.progress == "json"
    # stdout carries only our lines (JSON ones with --progress json); what libraries print there (Ray's
    # "(raylet) A worker died..." notes, say) goes to stderr instead.
    out, sys.stdout = sys.stdout, sys.stderr
    try:
        with sigterm_as_ctrl_c():  # a farm manager's stop: outputs stay whole, --skip-existing resumes
            return _run(args, as_json, out)
    finally:
        sys.stdout = out


def _run(args: argparse.Namespace, as_json: bool, out) -> int:
    from ..batch import event, parse_frames, plan

    report = TextReport(out)

    def emit(record: dict) -> None:
        if as_json:
            print(json.dumps(record), file=out, flush=True)
        else:
            report(record)

    try:
        options = options_from_args(args)
        items = plan(args.inputs, args.output, parse_frames(args.frames) if args.frames else None)
        if args.ray:
            from ..ray_batch import run_ray

            events = run_ray(items, options, args.ray, workers=args.workers, retries=args.retries)
        else:
            if args.workers:
                from ..batch import UsageProblem

                raise UsageProblem("--workers needs --ray")
            events = run_local(items, options)
        code = 0
        for record in events:
            emit(record)
            if record["event"] == "finish":
                code = record["exit_code"]
        return code
    except Exception as error:
        if as_json:
            from ..batch import EXIT_FAILED

            emit(event("fatal", message=str(error), code=getattr(error, "exit_code", EXIT_FAILED)))
        raise


def run_local(items, options):
    from ..batch import run_local as local

    return local(items, options)


class TextReport:
    """``--progress text``: one line per item on ``out`` (errors on stderr) and, on a terminal, the progress bar
    with the item in hand and the time left of the whole run."""

    def __init__(self, out) -> None:
        self.out = out
        self.clock = EtaClock()
        self.total = 0
        self.finished = 0

    def __call__(self, record: dict) -> None:
        kind = record["event"]
        if kind == "start":
            self.clock, self.total = EtaClock(), record["total"]
            model = record["model"] or "suggested per image"
            where = f"{record['workers']} Ray worker(s)" if record["backend"] == "ray" else "this process"
            print(f"{record['total']} item(s) with {model} on {where}", file=sys.stderr)
        elif kind == "progress":
            self._bar(record["overall"], f"{record['index'] + 1}/{record['total']} {Path(record['input']).name}")
        elif kind in ("done", "skipped", "error"):
            clear_bar()
            if kind == "done":
                print(f"{record['input']} -> {record['output']}  [{record.get('model')}, {record.get('device')}, "
                      f"{record.get('seconds', 0):.2f} s]", file=self.out, flush=True)
            elif kind == "skipped":
                print(f"{record['output']}: exists, skipped", file=self.out, flush=True)
            else:
                print(f"error: {record['message']}", file=sys.stderr, flush=True)
            self.finished += 1  # in any order (Ray): the bar counts the items finished
            self._bar(self.finished / max(self.total, 1), f"{self.finished}/{self.total} finished")
        elif kind == "retry":
            clear_bar()
            print(f"retrying {record['input']} ({record['reason']})", file=sys.stderr, flush=True)
        elif kind == "finish":
            clear_bar()
            print(f"{record['done']} restored, {record['skipped']} skipped, {record['failed']} failed of "
                  f"{record['total']} in {record['seconds']:.1f} s", file=sys.stderr)

    def _bar(self, fraction: float, text: str) -> None:
        draw_bar(fraction, text, eta_s=self.clock.eta(fraction))
