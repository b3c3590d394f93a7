"""Short background calls (reading a file, computing metrics) off the GUI thread.

Long, cancellable work goes through :class:`gui.worker.JobRunner`; this is for one-shot functions whose
result the GUI needs soon. The callbacks run in the GUI thread.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Relay(QObject):
    done = Signal(object)
    error = Signal(object, str)


class _Call(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.fn = fn
        self.relay = relay
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            value = self.fn()
        except Exception as error:  # reported to the caller's error callback, never lost
            self.relay.error.emit(error, traceback.format_exc())
            return
        self.relay.done.emit(value)


_pool: QThreadPool | None = None
_live: set[_Relay] = set()


def pool() -> QThreadPool:
    global _pool
    if _pool is None:
        _pool = QThreadPool()
        _pool.setMaxThreadCount(2)
    return _pool


def call_in_background(fn: Callable[[], Any], on_done: Callable[[Any], None],
                       on_error: Callable[[Exception, str], None] | None = None) -> None:
    """Run ``fn()`` on a pool thread; deliver its value to ``on_done`` (or the exception to ``on_error``)."""
    relay = _Relay()
    _live.add(relay)  # keep the relay alive until it has delivered

    def finish_done(value: Any) -> None:
        _live.discard(relay)
        on_done(value)

    def finish_error(error: Exception, details: str) -> None:
        _live.discard(relay)
        if on_error is not None:
            on_error(error, details)

    relay.done.connect(finish_done)
    relay.error.connect(finish_error)
    pool().start(_Call(fn, relay))


def wait_idle(timeout_ms: int = 10000) -> bool:
    """Block until background calls have finished (shutdown, tests)."""
    return pool().waitForDone(timeout_ms)
