"""Runs one engine job at a time on a background thread and reports it to the GUI thread with signals.

A job is a plain generator (see ``engine.jobs``). The runner creates the cancel token, builds the job from a
factory on the worker thread (so that expensive set-up such as building an ONNX session does not freeze the
window), iterates it, and turns what happens into queued signals:

- ``progress(Progress)``: throttled to ~20 Hz; the last record before the end is always delivered;
- ``succeeded(result)``, ``failed(message, details)``, ``cancelled()``: exactly one of them per job;
- ``finished()``: always, after the outcome signal.

Only immutable objects cross threads (Progress records, results, strings).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine.api import CancelToken, EngineError, Job, JobCancelled, Progress

#: Minimum seconds between two progress signals (~20 Hz).
PROGRESS_INTERVAL_S = 0.05
#: How much lower the job thread's scheduling priority is than the GUI's (Unix nice steps). Thread pools that
#: the job starts (OpenCV, ONNX Runtime, PyTorch) inherit it, so the window always gets the CPU first.
JOB_NICENESS = 5


def _lower_thread_priority() -> None:
    """Lower the calling thread's priority (on Linux, setpriority on a thread id affects that thread only)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        thread_id = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread_id, os.getpriority(os.PRIO_PROCESS, thread_id) + JOB_NICENESS)
    except (AttributeError, OSError):  # not permitted or not supported: run at normal priority
        pass


class JobRunner(QObject):
    """Owns at most one running job. Create it in the GUI thread; connect to its signals there."""

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: threading.Thread | None = None
        self._token: CancelToken | None = None
        self._lock = threading.Lock()
        self._running = False

    # -- control -------------------------------------------------------------------------------------------
    def start(self, job_factory: Callable[[CancelToken], Job], *, build_here: bool = False) -> CancelToken:
        """Start ``job_factory(token)`` on a worker thread. Raises RuntimeError while another job runs.

        The factory runs on the worker thread, unless ``build_here``: then it runs in the calling (GUI) thread,
        for factories that touch widgets (a task panel resetting its plot); the job itself still runs on the
        worker thread.
        """
        with self._lock:
            if self._running:
                raise RuntimeError("a job is already running")
            self._running = True
            token = CancelToken()
            self._token = token
        if build_here:
            try:
                built = job_factory(token)
            except BaseException:
                with self._lock:
                    self._running = False
                    self._token = None
                raise

            def job_factory(_token: CancelToken, built=built) -> Job:
                return built

        thread = threading.Thread(target=self._run, args=(job_factory, token), name="restoration-job", daemon=True)
        self._thread = thread
        thread.start()
        return token

    def cancel(self) -> None:
        """Ask the running job to stop and discard its work (it ends with ``cancelled``)."""
        token = self._token
        if token is not None:
            token.cancel()

    def request_stop(self) -> None:
        """Ask the running job to finish early and return what it has (ZSSR, training)."""
        token = self._token
        if token is not None:
            token.request_stop()

    def is_running(self) -> bool:
        return self._running

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the worker thread ends (used at shutdown and in tests). True when it ended."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    # -- worker thread -------------------------------------------------------------------------------------
    def _run(self, job_factory: Callable[[CancelToken], Job], token: CancelToken) -> None:
        outcome: tuple[str, Any] = ("failed", ("The job ended without a result.", ""))
        pending: Progress | None = None
        pending_preview = None  # the newest preview of a throttled-away record; never lost
        last_emit = 0.0
        _lower_thread_priority()
        try:
            job = job_factory(token)
            while True:
                try:
                    record = next(job)
                except StopIteration as stop:
                    outcome = ("succeeded", stop.value)
                    break
                if token.cancelled:
                    # The job may not check its token often; stop driving it and report the cancellation.
                    job.close()
                    raise JobCancelled()
                if record.preview is not None:
                    pending_preview = record.preview
                elif pending_preview is not None:
                    record = dataclasses.replace(record, preview=pending_preview)
                now = time.monotonic()
                if now - last_emit >= PROGRESS_INTERVAL_S:
                    self.progress.emit(record)
                    last_emit = now
                    pending = None
                    pending_preview = None
                else:
                    pending = record
        except JobCancelled:
            outcome = ("cancelled", None)
        except EngineError as error:
            outcome = ("failed", (str(error), traceback.format_exc()))
        except MemoryError:
            outcome = ("failed", ("Out of memory. Try a smaller tile size.", traceback.format_exc()))
        except Exception as error:  # any bug in a job must reach the user as a dialog, not kill the app
            message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            outcome = ("failed", (message, traceback.format_exc()))
        if pending is not None and outcome[0] != "cancelled":
            self.progress.emit(pending)
        with self._lock:
            self._running = False
            self._token = None
        kind, value = outcome
        if kind == "succeeded":
            self.succeeded.emit(value)
        elif kind == "cancelled":
            self.cancelled.emit()
        else:
            self.failed.emit(*value)
        self.finished.emit()
