"""JobRunner: outcomes, throttled progress, cancellation within a second, stop-and-keep."""

from __future__ import annotations

import time

import pytest

from engine.errors import EngineError
from engine.jobs import CancelToken, Progress
from gui.worker import JobRunner


def counting_job(token: CancelToken, steps: int = 50, delay: float = 0.005):
    for i in range(steps):
        token.raise_if_cancelled()
        time.sleep(delay)
        yield Progress(fraction=(i + 1) / steps, stage="count", message=str(i))
    return "done"


def endless_job(token: CancelToken):
    i = 0
    while True:
        token.raise_if_cancelled()
        if token.stop_requested:
            return f"stopped at {i}"
        time.sleep(0.01)
        i += 1
        yield Progress(fraction=None, stage="train", metrics={"step": i})


@pytest.fixture
def runner(qtbot):
    runner = JobRunner()
    yield runner
    runner.cancel()
    runner.wait(5)


def test_success_delivers_last_progress_and_result(qtbot, runner):
    records, results = [], []
    runner.progress.connect(records.append)
    runner.succeeded.connect(results.append)
    with qtbot.waitSignals([runner.succeeded, runner.finished], timeout=5000, order="strict"):
        runner.start(lambda token: counting_job(token))
    assert results == ["done"]
    assert records, "no progress was delivered"
    assert records[-1].fraction == pytest.approx(1.0)
    # 50 steps of 5 ms = 250 ms: throttled to ~20 Hz gives far fewer signals than records.
    assert len(records) < 25
    assert not runner.is_running()


def test_cancel_takes_effect_within_a_second(qtbot, runner):
    runner.start(endless_job)
    qtbot.wait(100)
    assert runner.is_running()
    started = time.monotonic()
    with qtbot.waitSignals([runner.cancelled, runner.finished], timeout=1000, order="strict"):
        runner.cancel()
    assert time.monotonic() - started < 1.0
    assert not runner.is_running()


def test_request_stop_keeps_the_current_result(qtbot, runner):
    runner.start(endless_job)
    qtbot.wait(60)
    with qtbot.waitSignal(runner.succeeded, timeout=2000) as blocker:
        runner.request_stop()
    assert blocker.args[0].startswith("stopped at")


def test_errors_become_failed_with_details(qtbot, runner):
    def broken(token):
        yield Progress(0.1)
        raise ZeroDivisionError("boom")

    with qtbot.waitSignal(runner.failed, timeout=2000) as blocker:
        runner.start(broken)
    message, details = blocker.args
    assert "ZeroDivisionError" in message and "boom" in message
    assert "Traceback" in details

    def readable(token):
        raise EngineError("the model file is damaged")
        yield  # pragma: no cover

    with qtbot.waitSignal(runner.failed, timeout=2000) as blocker:
        runner.start(readable)
    assert blocker.args[0] == "the model file is damaged"


def test_one_job_at_a_time(qtbot, runner):
    runner.start(endless_job)
    with pytest.raises(RuntimeError):
        runner.start(endless_job)
    with qtbot.waitSignal(runner.finished, timeout=2000):
        runner.cancel()
    with qtbot.waitSignal(runner.succeeded, timeout=5000):
        runner.start(lambda token: counting_job(token, steps=3))


def test_a_throttled_preview_is_never_lost(qtbot, runner):
    def job(token):
        for i in range(30):
            yield Progress(i / 30, "train", preview=f"preview {i}" if i in (1, 2) else None)
        return "done"

    previews = []
    runner.progress.connect(lambda p: previews.append(p.preview))
    with qtbot.waitSignal(runner.finished, timeout=5000):
        runner.start(job)
    assert "preview 2" in previews
