"""Cancel storms: start restore jobs and cancel them at random moments, measuring what is left behind.

Shared by tests/test_cancel_storm.py (tiny models) and bench/cancel_storm.py (the shipped models). A round starts
a job on a fresh thread, cancels it after a random delay (before it starts, between tiles, or inside an ONNX
Runtime call, which the token terminates) and joins the thread. The report says how many rounds ended each way,
how long cancellation took, and how many threads, ONNX sessions and resident memory remain afterwards.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from engine.errors import JobCancelled
from engine.jobs import CancelToken, Job, run_job


def rss_mib() -> float:
    """Resident memory of this process now (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def native_threads() -> int:
    """Threads of this process, native ones included (ONNX Runtime and OpenMP pools are invisible to Python)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def live_onnx_sessions() -> int:
    """OnnxModel objects still alive anywhere in the process (the runtime caches a few on purpose)."""
    from engine.runtime import OnnxModel

    gc.collect()
    # type() rather than isinstance(): isinstance asks some lazy modules' objects for __class__ and wakes them.
    return sum(1 for obj in gc.get_objects() if type(obj) is OnnxModel)


@dataclass
class StormReport:
    rounds: int = 0
    cancelled: int = 0
    completed: int = 0
    failed: list[str] = field(default_factory=list)
    hung: int = 0
    #: Seconds from cancel() to the job's thread having ended, per cancelled round.
    latencies: list[float] = field(default_factory=list)
    threads_before: int = 0
    threads_after: int = 0
    python_threads_before: int = 0
    python_threads_after: int = 0
    sessions_after: int = 0
    rss_before_mib: float = 0.0
    rss_after_mib: float = 0.0
    rss_peak_mib: float = 0.0

    def latency_summary(self) -> dict[str, float]:
        if not self.latencies:
            return {}
        values = np.array(self.latencies) * 1000
        return {
            "median_ms": round(float(np.median(values)), 2),
            "p95_ms": round(float(np.percentile(values, 95)), 2),
            "max_ms": round(float(values.max()), 2),
        }


def engine_storm(
    make_job: Callable[[CancelToken, int], Job],
    rounds: int,
    *,
    max_delay_s: float,
    seed: int = 0,
    join_timeout_s: float = 10.0,
) -> StormReport:
    """Run ``rounds`` jobs from ``make_job(token, round)``; cancel each after a random delay in [0, max_delay_s]."""
    rng = np.random.default_rng(seed)
    report = StormReport(rounds=rounds)
    gc.collect()
    report.threads_before = native_threads()
    report.python_threads_before = threading.active_count()
    report.rss_before_mib = rss_mib()
    for index in range(rounds):
        token = CancelToken()
        outcome: list[str] = []

        def work(token: CancelToken = token, index: int = index, outcome: list[str] = outcome) -> None:
            try:
                run_job(make_job(token, index))
                outcome.append("completed")
            except JobCancelled:
                outcome.append("cancelled")
            except Exception as error:  # reported, not raised: the storm goes on and the caller asserts
                outcome.append(f"failed: {type(error).__name__}: {error}")

        thread = threading.Thread(target=work, name=f"storm-{index}", daemon=True)
        thread.start()
        delay = float(rng.random() * max_delay_s) if index % 10 else 0.0  # every tenth: cancel at once
        time.sleep(delay)
        asked = time.perf_counter()
        token.cancel()
        thread.join(join_timeout_s)
        if thread.is_alive():
            report.hung += 1
            continue
        if outcome[0] == "cancelled":
            report.cancelled += 1
            report.latencies.append(time.perf_counter() - asked)
        elif outcome[0] == "completed":
            report.completed += 1
        else:
            report.failed.append(outcome[0])
        report.rss_peak_mib = max(report.rss_peak_mib, rss_mib())
    gc.collect()
    time.sleep(0.05)  # let exiting threads be reaped
    report.threads_after = native_threads()
    report.python_threads_after = threading.active_count()
    report.sessions_after = live_onnx_sessions()
    report.rss_after_mib = rss_mib()
    return report
