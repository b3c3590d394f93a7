"""The jobs API: how long-running work (inference, training, ZSSR) reports progress and is cancelled.

A job is a plain generator. It yields :class:`Progress` records, returns its result, and raises
:class:`~engine.errors.JobCancelled` (via ``token.raise_if_cancelled()``) when the user cancels. It never
touches Qt: the GUI wraps it in a worker thread, the command line drives it with :func:`run_job`, tests call
``next()`` on it directly.

    def my_job(image, token: CancelToken) -> Generator[Progress, None, Result]:
        eta = EtaClock()
        for i, tile in enumerate(tiles):
            token.raise_if_cancelled()
            ...
            yield Progress(fraction=(i + 1) / len(tiles), stage="denoise", eta_s=eta.eta((i + 1) / len(tiles)))
        return result
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import JobCancelled

R = TypeVar("R")
T = TypeVar("T")
U = TypeVar("U")
Job = Generator["Progress", None, R]


@dataclass(frozen=True)
class Progress:
    """One progress record. Immutable, so it can cross from a worker thread to the GUI."""

    #: Completed fraction in [0, 1], or None when unknown.
    fraction: float | None
    #: Short name of the current stage ("load", "denoise", "train x2", ...).
    stage: str = ""
    #: Free text for a status line.
    message: str = ""
    #: Estimated seconds left, or None.
    eta_s: float | None = None
    #: Numbers worth plotting or showing (step, loss, lr, val_psnr, ...).
    metrics: Mapping[str, float] = field(default_factory=dict)
    #: An optional intermediate result (e.g. ZSSR's current upscaled image), as an engine Image.
    preview: Any = None


class CancelToken:
    """Cooperative cancellation shared between the thread that asks and the job that checks.

    ``cancel()`` asks the job to stop and discard its work; ``request_stop()`` asks a job that supports it
    (ZSSR, training) to finish early and return what it has. Callbacks registered with ``on_cancel`` run
    when ``cancel()`` is called, from the calling thread (used to terminate a running ONNX Runtime call).
    """

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a failing callback must not prevent the cancellation itself
                pass

    def request_stop(self) -> None:
        self._stop.set()

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Register ``callback``; returns a function that unregisters it. Runs at once if already cancelled."""
        with self._lock:
            already = self._cancelled.is_set()
            if not already:
                self._callbacks.append(callback)
        if already:
            callback()

        def remove() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return remove

    def raise_if_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise JobCancelled()


class EtaClock:
    """Estimates the time left from the completed fraction (linear extrapolation since start)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def eta(self, fraction: float) -> float | None:
        if fraction <= 0.0:
            return None
        elapsed = self.elapsed()
        return max(0.0, elapsed * (1.0 - fraction) / fraction)


def run_job(job: Generator[T, None, R], on_progress: Callable[[T], None] | None = None) -> R:
    """Drive a job to completion in the calling thread and return its result.

    ``on_progress`` sees every record; an exception it raises (or a KeyboardInterrupt) leaves the job suspended:
    the caller closes it (``job.close()``) to let it clean up."""
    while True:
        try:
            record = next(job)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(record)


def relay(job: Generator[T, None, R], convert: Callable[[T], U | None]) -> Generator[U, None, R]:
    """Pass a job's progress on as another job's: yields ``convert(record)`` for each record of ``job`` (leaving
    out those it maps to None, e.g. to throttle) and returns the job's result, so that an outer job writes

        result = yield from relay(inner_job, lambda p: Progress(p.fraction, "restoring", p.message))

    Closing the outer job closes ``job`` too."""
    try:
        while True:
            try:
                record = next(job)
            except StopIteration as stop:
                return stop.value
            converted = convert(record)
            if converted is not None:
                yield converted
    finally:
        job.close()


@dataclass(frozen=True)
class ImageResult:
    """What an image-producing job (restore, ZSSR, ...) returns: the new image and how it was made."""

    image: Any  # engine.image.Image
    #: Short label for the history list, e.g. "DnCNN σ25" or "ZSSR x2 (fast)".
    label: str
    model_id: str
    #: The device that really ran it, e.g. "CPU", "CUDA: NVIDIA H100", "CPU (CUDA unavailable: ...)".
    device: str
    seconds: float
    #: Anything else worth showing (parameters used, tiles, iterations, final loss...).
    details: Mapping[str, Any] = field(default_factory=dict)


def describe_duration(seconds: float) -> str:
    """``"1 h 05 min"``, ``"2 min 05 s"``, ``"40 s"``: how the window and the command line say a length of time."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def describe_eta(seconds: float | None) -> str:
    """``"2 min 05 s left"``, ``"40 s left"``, ``""`` when unknown: how the window and the command line say an ETA."""
    return "" if seconds is None else f"{describe_duration(seconds)} left"
