import threading

import pytest

from engine.errors import JobCancelled
from engine.jobs import CancelToken, EtaClock, Progress, relay, run_job


def counting_job(steps, token):
    for index in range(steps):
        token.raise_if_cancelled()
        yield Progress((index + 1) / steps, "count")
    return steps * 10


def test_run_job_returns_the_result_and_reports_progress():
    seen = []
    assert run_job(counting_job(4, CancelToken()), seen.append) == 40
    assert [p.fraction for p in seen] == [0.25, 0.5, 0.75, 1.0]


def test_relay_passes_converted_progress_on_and_returns_the_inner_result():
    def outer(token):
        result = yield from relay(counting_job(4, token), lambda p: p.fraction if p.fraction != 0.5 else None)
        return result + 1

    seen = []
    assert run_job(outer(CancelToken()), seen.append) == 41
    assert seen == [0.25, 0.75, 1.0]  # the record mapped to None is left out


def test_closing_the_outer_job_closes_the_relayed_one():
    closed = []

    def inner():
        try:
            yield Progress(0.5)
            yield Progress(1.0)
        finally:
            closed.append(True)
        return 1

    def outer():
        return (yield from relay(inner(), lambda p: p.fraction))

    job = outer()
    assert next(job) == 0.5
    job.close()
    assert closed == [True]


def test_cancel_raises_inside_the_job():
    token = CancelToken()
    job = counting_job(10, token)
    next(job)
    token.cancel()
    with pytest.raises(JobCancelled):
        next(job)


def test_cancel_callbacks_run_once_and_can_be_removed():
    token = CancelToken()
    calls = []
    remove = token.on_cancel(lambda: calls.append("a"))
    token.on_cancel(lambda: calls.append("b"))
    remove()
    thread = threading.Thread(target=token.cancel)
    thread.start()
    thread.join()
    assert calls == ["b"] and token.cancelled
    token.on_cancel(lambda: calls.append("late"))  # registering after the fact runs at once
    assert calls == ["b", "late"]


def test_stop_request_is_separate_from_cancel():
    token = CancelToken()
    token.request_stop()
    assert token.stop_requested and not token.cancelled
    token.raise_if_cancelled()  # a stop request is not a cancellation


def test_progress_is_immutable():
    record = Progress(0.5, "x")
    with pytest.raises(AttributeError):
        record.fraction = 1.0


def test_eta_clock_extrapolates():
    clock = EtaClock()
    clock.start -= 10.0  # pretend 10 s have passed
    assert clock.eta(0.0) is None
    assert clock.eta(0.5) == pytest.approx(10.0, abs=0.5)
    assert clock.eta(1.0) == pytest.approx(0.0, abs=1e-6)


def test_durations_and_times_left_are_said_one_way():
    from engine.jobs import describe_duration, describe_eta

    assert [describe_duration(s) for s in (0.4, 40, 125, 3900)] == ["0 s", "40 s", "2 min 05 s", "1 h 05 min"]
    assert describe_eta(125) == "2 min 05 s left" and describe_eta(None) == ""
