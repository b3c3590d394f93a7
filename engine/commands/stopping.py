"""How the farm-facing commands (``batch``, ``restore`` of a shot) take being stopped: a farm manager's SIGTERM
stops them as Ctrl+C does (KeyboardInterrupt), between atomic writes, so every output already written stays whole
and the same command run again resumes (exit 130, engine/batch.py's EXIT_INTERRUPTED)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """While the block runs, SIGTERM raises KeyboardInterrupt; the previous handler is put back afterwards. Off the
    main thread (tests calling the command line from a thread) signals cannot be handled: nothing changes."""
    try:
        previous = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
