"""The command line's progress bar: one line on stderr, redrawn in place, on a terminal only (a log file or a farm
manager's pipe gets the finished lines alone). ``restore``, ``restore`` of a shot, ``batch`` and ``zssr`` draw it.

    draw_bar(0.42, "frame 1042 (42/100)", eta_s=125)   # [#############.................]  42.0%  frame 1042
                                                        #   (42/100), 2 min 05 s left
    clear_bar()                                         # before printing a line of its own
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import TextIO

from ..jobs import describe_eta

#: Cells of the bar itself; the text after it is cut to the terminal's width.
BAR_CELLS = 30
#: The stream a bar stands on now (one bar at a time): clear_bar writes only there.
_drawn_on: TextIO | None = None


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):  # not a real terminal file (tests, some IDE consoles)
        return shutil.get_terminal_size().columns


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def draw_bar(fraction: float, text: str = "", *, eta_s: float | None = None, stream: TextIO | None = None) -> None:
    """Draw ``[####....]  42.0%  text, 2 min 05 s left`` over the line (the time left ``eta_s`` as
    :func:`engine.jobs.describe_eta` says it, when known; none once the bar is full), never wider than the terminal
    (a wrapped line could not be redrawn in place)."""
    stream = stream or sys.stderr
    if not _is_terminal(stream):
        return
    left = describe_eta(eta_s) if fraction < 1 else ""
    text = f"{text}, {left}" if text and left else text or left
    fraction = min(max(float(fraction), 0.0), 1.0)
    filled = int(round(fraction * BAR_CELLS))
    line = f"[{'#' * filled}{'.' * (BAR_CELLS - filled)}] {fraction * 100:5.1f}%"
    if text:
        line += f"  {text}"
    width = max(_columns(stream) - 1, 1)  # the last column would move some terminals' cursor to the next line
    stream.write("\r" + line[:width].ljust(width))
    stream.flush()
    global _drawn_on
    _drawn_on = stream


def clear_bar(stream: TextIO | None = None) -> None:
    """Blank the bar's line, so that the next line printed starts at its left edge (nothing when no bar stands
    there: any command, and the command line's error handler, may call it)."""
    global _drawn_on
    stream = stream or sys.stderr
    if stream is _drawn_on:
        _drawn_on = None
        stream.write("\r" + " " * max(_columns(stream) - 1, 1) + "\r")
        stream.flush()
