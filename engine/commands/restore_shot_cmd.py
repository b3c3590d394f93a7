"""``main.py restore 'shot_####.exr' [--frames 1001-1100] -o 'out/shot_####.exr'``: a shot, frame by frame.

The input is a frame pattern (``####``, ``%04d``, ``$F4``, ``shot.1001-1100#.exr``), a folder of EXR frames, or any
input with ``--frames``; the output a pattern or a folder (the frames keep their names). Frames whose output exists
are skipped, so the same command run again after Ctrl+C, a crash or a killed farm task restores only what is left
(``--overwrite`` redoes them). One line per frame (stdout: restored and skipped frames; stderr: missing and failed
ones), a progress bar with the time left on a terminal; exit codes as ``batch``'s (docs/farm.md): 0, 1 (a frame
failed), 2 (usage), 3 (model), 4 (only missing input frames), 130 (interrupted; finished frames are kept).
A per-frame model's frames are smoothed over time along the motion pass (engine/temporal_filter.py) unless
``--smooth 0``; ``--smooth W`` sets the previous result's weight.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..jobs import describe_eta
from .progress_bar import clear_bar, draw_bar
from .stopping import sigterm_as_ctrl_c


def run_shot(args: argparse.Namespace, shot, entry, settings: dict, registry) -> int:
    """Restore ``shot`` with the model ``entry`` of ``registry`` (``settings``: its typed parameters) as ``args``
    say (the ``restore`` command's options, checked by engine/commands/restore_cmd.py); returns the exit code."""
    with sigterm_as_ctrl_c():  # a farm manager's stop: finished frames stay, the same command resumes
        return _run(args, shot, entry, settings, registry)


def _run(args: argparse.Namespace, shot, entry, settings: dict, registry) -> int:
    from ..batch import EXIT_INTERRUPTED
    from ..jobs import CancelToken, run_job
    from ..shot import ShotRestoreRequest, output_pattern, restore_shot

    pattern = output_pattern(shot, args.output)
    request = ShotRestoreRequest(shot, pattern, entry.id, settings, tile=args.tile or None, device=args.device,
                                 overwrite=args.overwrite, ensemble=args.ensemble,
                                 smoothing=getattr(args, "smooth", None))
    print(f"{shot.label} -> {pattern}", file=sys.stderr)
    job = restore_shot(request, CancelToken(), registry)
    counts = {"done": 0, "skipped": 0}
    started = time.perf_counter()

    def show(progress) -> None:
        metrics = dict(progress.metrics)
        counts.update({k: int(metrics[k]) for k in counts if k in metrics})
        stage, left = progress.stage, describe_eta(progress.eta_s)
        if stage == "restoring":
            draw_bar(float(progress.fraction or 0.0),
                     f"frame {metrics.get('frame')} ({metrics.get('index')}/{metrics.get('total')})",
                     eta_s=progress.eta_s)
        elif stage in ("restored", "skipped"):
            clear_bar()
            more = stage == "restored" and left and metrics.get("index") != metrics.get("total")
            print(progress.message + (f"  [{left}]" if more else ""), flush=True)
        elif stage in ("missing", "failed", "note"):
            clear_bar()
            print(f"{'note' if stage == 'note' else 'error'}: {progress.message}", file=sys.stderr, flush=True)

    try:
        result = run_job(job, show)
    except KeyboardInterrupt:  # Ctrl+C, or SIGTERM (sigterm_as_ctrl_c): the job's finished frames stay on disk
        job.close()
        result = None
    finally:
        clear_bar()
    if result is None:
        print(f"interrupted: {counts['done']} frame(s) restored and kept; run the same command again to restore "
              "the rest", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"{result.restored} restored, {result.skipped} skipped, {result.failed} failed of {len(result.frames)} "
          f"frames in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return result.exit_code
