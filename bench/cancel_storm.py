"""Cancel storms with the shipped models: restore jobs started and cancelled at random moments, at engine level
and through the GUI's JobRunner (offscreen), with cancel latency, threads, ONNX sessions and memory measured.

    .venv/bin/python bench/cancel_storm.py [--rounds 200] [--size 384] [--max-delay-s 1.5]

Models: photo-denoise-color, sr-x2, render-kprcan-color (on an HDR version of the image) and the classical NLM,
in turn. Tiles: the model default, or 128 px on every third round. Results: bench/results/cancel_storm.md (+ .json).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
RESULTS = ROOT / "bench" / "results"
MODELS = ("photo-denoise-color", "sr-x2", "render-kprcan-color", "nlm")


def _images(size: int):
    from engine.image import ImageMeta, make_image

    rng = np.random.default_rng(0)
    ramp = np.linspace(0.1, 0.9, size, dtype=np.float32)
    clean = np.stack([np.add.outer(ramp, ramp) / 2] * 3, axis=2)
    noisy = np.clip(clean + rng.normal(0, 0.08, clean.shape), 0, 1).astype(np.float32)
    photo = make_image(noisy, None, ImageMeta(format="png", bit_depth=8))
    render = make_image((noisy * 3).astype(np.float32), None,
                        ImageMeta(format="exr", bit_depth=32, hdr=True, color_space="linear"))
    return photo, render


def _job_maker(registry, photo, render):
    from engine.restore import restore_job

    entries = [registry.get(model) for model in MODELS]

    def make_job(token, index):
        entry = entries[index % len(entries)]
        image = render if entry.manifest.hdr else photo
        tile = 128 if index % 3 == 2 and entry.manifest.engine == "onnx" else None
        return restore_job(image, entry, tile=tile, token=token)

    return make_job


def runner_storm(make_job, rounds: int, max_delay_s: float, seed: int) -> dict:
    """The same storm through gui.worker.JobRunner, with a Qt event loop running while the jobs run."""
    from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer

    from bench.storm_tools import live_onnx_sessions, native_threads, rss_mib
    from gui.worker import JobRunner

    app = QCoreApplication.instance() or QCoreApplication([])
    runner = JobRunner()
    outcomes: list[str] = []
    runner.succeeded.connect(lambda result: outcomes.append("succeeded"))
    runner.cancelled.connect(lambda: outcomes.append("cancelled"))
    runner.failed.connect(lambda message, details: outcomes.append("failed: " + message))
    rng = np.random.default_rng(seed)
    gc.collect()
    before = (native_threads(), threading.active_count(), rss_mib())
    latencies, peak, hung = [], 0.0, 0
    for index in range(rounds):
        loop = QEventLoop()
        runner.finished.connect(loop.quit)
        asked = [0.0]

        def cancel_now(asked=asked) -> None:
            asked[0] = time.perf_counter()
            runner.cancel()

        cancel_timer, hang_timer = QTimer(), QTimer()
        for timer in (cancel_timer, hang_timer):
            timer.setSingleShot(True)
        cancel_timer.timeout.connect(cancel_now)
        hang_timer.timeout.connect(loop.quit)  # a hang ends the wait; it is counted below
        runner.start(lambda token, index=index: make_job(token, index))
        cancel_timer.start(int(rng.random() * max_delay_s * 1000) if index % 10 else 0)
        hang_timer.start(30_000)
        loop.exec()
        cancel_timer.stop()  # a job that completed first must not see its cancel hit the next one
        hang_timer.stop()
        runner.finished.disconnect(loop.quit)
        if not runner.wait(5):
            hung += 1
            continue
        if outcomes and outcomes[-1] == "cancelled" and asked[0]:
            latencies.append(time.perf_counter() - asked[0])
        peak = max(peak, rss_mib())
    app.processEvents()
    gc.collect()
    time.sleep(0.05)
    after = (native_threads(), threading.active_count(), rss_mib())
    return {
        "rounds": rounds,
        "cancelled": outcomes.count("cancelled"),
        "completed": outcomes.count("succeeded"),
        "failed": [o for o in outcomes if o.startswith("failed")][:5],
        "hung": hung,
        "latency": _latency(latencies),
        "threads_before_after": [before[0], after[0]],
        "python_threads_before_after": [before[1], after[1]],
        "onnx_sessions_after": live_onnx_sessions(),
        "rss_before_after_peak_mib": [round(before[2]), round(after[2]), round(peak)],
    }


def _latency(values: list[float]) -> dict:
    if not values:
        return {}
    ms = np.array(values) * 1000
    return {"median_ms": round(float(np.median(ms)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "max_ms": round(float(ms.max()), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--max-delay-s", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from bench.storm_tools import engine_storm
    from engine.jobs import run_job
    from engine.models.registry import ModelRegistry
    from engine.runtime import _SESSION_CACHE_SIZE

    registry = ModelRegistry()
    photo, render = _images(args.size)
    make_job = _job_maker(registry, photo, render)
    started = time.perf_counter()
    # Warm-up: one complete run per (model, tile) combination; cached sessions and ORT's per-shape memory arenas
    # are kept on purpose and are not what a storm could leak.
    for index in range(3 * len(MODELS)):
        run_job(make_job(None, index))
    full_run_s = (time.perf_counter() - started) / (3 * len(MODELS))
    storm = engine_storm(make_job, args.rounds, max_delay_s=args.max_delay_s, seed=args.seed, join_timeout_s=30)
    engine_row = {
        "rounds": storm.rounds,
        "cancelled": storm.cancelled,
        "completed": storm.completed,
        "failed": storm.failed[:5],
        "hung": storm.hung,
        "latency": storm.latency_summary(),
        "threads_before_after": [storm.threads_before, storm.threads_after],
        "python_threads_before_after": [storm.python_threads_before, storm.python_threads_after],
        "onnx_sessions_after": storm.sessions_after,
        "rss_before_after_peak_mib": [round(storm.rss_before_mib), round(storm.rss_after_mib),
                                      round(storm.rss_peak_mib)],
    }
    gui_row = runner_storm(make_job, args.rounds, args.max_delay_s, args.seed + 1)
    rows = {"engine (threads + CancelToken)": engine_row, "GUI JobRunner (Qt event loop)": gui_row}
    lines = [
        "| level | rounds | cancelled / completed / failed / hung | cancel latency median / p95 / max (ms) | "
        "threads before → after | ONNX sessions alive after | RSS before → after (peak), MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        lat = row["latency"]
        lines.append(
            f"| {name} | {row['rounds']} | {row['cancelled']} / {row['completed']} / {len(row['failed'])} / "
            f"{row['hung']} | {lat.get('median_ms')} / {lat.get('p95_ms')} / {lat.get('max_ms')} | "
            f"{row['threads_before_after'][0]} → {row['threads_before_after'][1]} | {row['onnx_sessions_after']} "
            f"(cache holds ≤ {_SESSION_CACHE_SIZE}) | {row['rss_before_after_peak_mib'][0]} → "
            f"{row['rss_before_after_peak_mib'][1]} ({row['rss_before_after_peak_mib'][2]}) |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cancel_storm.md").write_text(
        "# Cancel storms with the shipped models\n\n"
        f"Command: `bench/cancel_storm.py {' '.join(sys.argv[1:])}`; models {', '.join(MODELS)} in turn on a "
        f"{args.size}x{args.size} image (HDR for the render model), cancelled after a random 0-{args.max_delay_s} s "
        f"(every tenth at once); one complete run takes {full_run_s:.2f} s on average. {os.cpu_count()} threads.\n\n"
        + table,
        encoding="utf-8",
    )
    (RESULTS / "cancel_storm.json").write_text(json.dumps({**rows, "full_run_s": round(full_run_s, 2)}, indent=2),
                                               encoding="utf-8")
    bad = any(row["hung"] or row["failed"] for row in rows.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
