"""``main.py restore 'shot_####.exr' [--frames 1001-1100] -o 'out/shot_####.exr'``: a shot, frame by frame.

The input is a frame pattern (``####``, ``%04d``, ``$F4``, ``shot.1001-1100#.exr``), a folder of EXR frames, or any
input with ``--frames``; the output a pattern or a folder (the frames keep their names). Frames whose output exists
are skipped, so the same command run again after Ctrl+C, a crash or a killed farm task restores only what is left
(``--overwrite`` redoes them). One line per frame (stdout: restored and skipped frames; stderr: missing and failed
ones), a progress bar with the time left on a terminal; exit codes as ``batch``'s (docs/farm.md): 0, 1 (a frame
failed), 2 (usage), 3 (model), 4 (only missing input frames), 130 (interrupted; finished frames are kept).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from ..errors import EngineError
from ..jobs import describe_eta


def _terminate(signum, frame):  # SIGTERM from a farm manager: stop like Ctrl+C (finished frames stay)
    raise KeyboardInterrupt


def _bar(fraction: float, text: str) -> None:
    if not sys.stderr.isatty():
        return
    filled = int(round(fraction * 30))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {fraction * 100:5.1f}%  {text[:60]:<60}")
    sys.stderr.flush()


def _clear() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r" + " " * 100 + "\r")


def run_shot(args: argparse.Namespace, shot, entry, settings: dict, registry) -> int:
    """Restore ``shot`` with the model ``entry`` of ``registry`` (``settings``: its typed parameters) as ``args``
    say (the ``restore`` command's options, checked by engine/commands/restore_cmd.py); returns the exit code."""
    try:
        previous_handler = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (tests calling the CLI from a thread)
        previous_handler = None
    try:
        return _run(args, shot, entry, settings, registry)
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)


def _run(args: argparse.Namespace, shot, entry, settings: dict, registry) -> int:
    from ..batch import EXIT_INTERRUPTED
    from ..jobs import CancelToken
    from ..shot import ShotRestoreRequest, output_pattern, restore_shot

    pattern = output_pattern(shot, args.output)
    request = ShotRestoreRequest(shot, pattern, entry.id, settings, tile=args.tile or None, device=args.device,
                                 overwrite=args.overwrite, ensemble=args.ensemble)
    print(f"{shot.label} -> {pattern}", file=sys.stderr)
    job = restore_shot(request, CancelToken(), registry)
    counts = {"done": 0, "skipped": 0}
    started = time.perf_counter()
    try:
        while True:
            try:
                progress = next(job)
            except StopIteration as finished:
                result = finished.value
                break
            metrics = dict(progress.metrics)
            counts.update({k: int(metrics[k]) for k in counts if k in metrics})
            stage, fraction = progress.stage, float(progress.fraction or 0.0)
            left = describe_eta(progress.eta_s)
            if stage == "restoring":
                _bar(fraction, f"frame {metrics.get('frame')} ({metrics.get('index')}/{metrics.get('total')})"
                               + (f", {left}" if left else ""))
            elif stage in ("restored", "skipped"):
                _clear()
                more = stage == "restored" and left and metrics.get("index") != metrics.get("total")
                print(progress.message + (f"  [{left}]" if more else ""), flush=True)
            elif stage in ("missing", "failed"):
                _clear()
                print(f"error: {progress.message}", file=sys.stderr, flush=True)
            elif stage == "note":
                _clear()
                print(f"note: {progress.message}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        job.close()
        _clear()
        print(f"interrupted: {counts['done']} frame(s) restored and kept; run the same command again to restore "
              "the rest", file=sys.stderr)
        return EXIT_INTERRUPTED
    except EngineError:
        _clear()
        raise
    _clear()
    print(f"{result.restored} restored, {result.skipped} skipped, {result.failed} failed of {len(result.frames)} "
          f"frames in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return result.exit_code
