"""Worst event-loop stall of the GUI while a long job runs (issue: keep it under 100 ms).

Starts the real main window (offscreen unless a display is set), opens a large image and runs a real model
on it tile by tile, while a 5 ms timer measures the gaps between its ticks (a gap is how long the window could
not react) and the viewer is panned and repainted every 16 ms like a user dragging. A second scenario streams
live previews (as ZSSR does) to measure the cost of showing them. Prints a markdown table and writes
bench/results/gui_stall.md and .json.

    .venv/bin/python bench/gui_stall.py [--size 2048] [--model nlm] [--tile 256]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("RESTORATION_STUDIO_HOME", tempfile.mkdtemp(prefix="rs-stall-"))

import numpy as np  # noqa: E402
from PySide6.QtCore import QCoreApplication, QElapsedTimer, QSettings, QTimer  # noqa: E402

TICK_MS = 5


class StallMeter:
    """Records the gaps between ticks of a fast timer on the GUI thread."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        # CPU time the GUI thread itself used between ticks: the part of a stall that is our own work, as
        # opposed to time the thread waited (other processes on the CPU, the GIL held by the job thread).
        self.cpu_gaps: list[float] = []
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self._last = 0

    def start(self) -> None:
        self.gaps.clear()
        self.cpu_gaps.clear()
        self.clock.start()
        self._last = self.clock.nsecsElapsed()
        self._last_cpu = time.thread_time()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed()
        self.gaps.append((now - self._last) / 1e6)
        self._last = now
        cpu = time.thread_time()
        self.cpu_gaps.append((cpu - self._last_cpu) * 1000.0)
        self._last_cpu = cpu

    def summary(self) -> dict[str, float]:
        gaps = np.asarray(self.gaps) if self.gaps else np.zeros(1)
        # A gap of TICK_MS is no stall at all: report the delay beyond the timer's own period.
        stalls = np.maximum(gaps - TICK_MS, 0.0)
        return {"ticks": int(len(self.gaps)), "worst_ms": float(stalls.max()),
                "p99_ms": float(np.percentile(stalls, 99)), "median_ms": float(np.median(stalls)),
                "worst_gui_cpu_ms": float(max(self.cpu_gaps) if self.cpu_gaps else 0.0)}


def wait_for(app, condition, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.001)
    return condition()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="edge of the synthetic test image (pixels)")
    parser.add_argument("--model", default="nlm", help="model id to run (default: the classical NLM denoiser)")
    parser.add_argument("--tile", type=int, default=256, help="tile size (smaller tiles: more progress events)")
    parser.add_argument("--preview-seconds", type=float, default=6.0, help="length of the live-preview scenario")
    args = parser.parse_args(argv)

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, os.environ["RESTORATION_STUDIO_HOME"])
    from engine.image import make_image
    from engine.jobs import ImageResult, Progress
    from gui.app import build_window

    rng = np.random.default_rng(0)
    ramp = np.linspace(0.2, 0.8, args.size, dtype=np.float32)
    clean = np.stack([ramp[None, :].repeat(args.size, 0)] * 3, axis=2)
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape).astype(np.float32), 0, 1)
    image = make_image(noisy)

    window = build_window([])
    window.resize(1400, 860)
    app = QCoreApplication.instance()
    window.set_original(image, None)
    window.model_panel.select("model", args.model)
    window.model_panel.tile_box.setValue(args.tile)
    window.viewer.zoom_1to1()
    wait_for(app, lambda: window.device_text() != "detecting\u2026", 20)

    # The user drags the image around while the job runs: a pan and a repaint every 16 ms.
    direction = [1]

    def drag() -> None:
        window.viewer.pan_by(6 * direction[0], 3 * direction[0])
        direction[0] = -direction[0] if np.random.random() < 0.05 else direction[0]
        window.viewer.repaint()

    dragger = QTimer()
    dragger.setInterval(16)
    dragger.timeout.connect(drag)

    rows = []
    meter = StallMeter()
    progress_events = [0]
    window.runner.progress.connect(lambda _: progress_events.__setitem__(0, progress_events[0] + 1))

    # Cost of one frame of the viewer (split view at 1:1 of two 2048^2 images), with its tiles cached and with a
    # new image (the paint budget caps conversions; the rest is refined in later frames).
    def frame_ms(new_image: bool) -> float:
        times = []
        for i in range(30):
            if new_image:
                window.viewer.set_images(image, image.with_pixels(np.clip(image.pixels + 0.001 * (i + 1), 0, 1)))
            t0 = time.perf_counter()
            window.viewer.repaint()
            times.append((time.perf_counter() - t0) * 1000)
        return float(np.median(times))

    paint_cached = frame_ms(False)
    paint_new = frame_ms(True)
    window.set_original(image, None)
    window.viewer.zoom_1to1()

    # Scenario 0: no job, the same panning: the floor that the machine itself (other processes) sets.
    meter.start()
    dragger.start()
    wait_for(app, lambda: False, 8.0)
    dragger.stop()
    meter.stop()
    rows.append({"scenario": "no job, panning (baseline)", "job_s": 0.0, "progress_events": 0, **meter.summary()})

    def job_while_panning(scenario: str, timeout_s: float) -> None:
        """Run the window's current job while the user pans; one row of the table."""
        progress_events[0] = 0
        meter.start()
        dragger.start()
        started = time.perf_counter()
        window.run_current()
        wait_for(app, lambda: not window.runner.is_running(), timeout_s)
        wait_for(app, lambda: False, 0.2)
        seconds = time.perf_counter() - started
        dragger.stop()
        meter.stop()
        rows.append({"scenario": scenario, "job_s": round(seconds, 2), "progress_events": progress_events[0],
                     **meter.summary()})

    # Scenario 1: a real model, tile by tile.
    job_while_panning(f"{args.model} on {args.size}x{args.size}, tile {args.tile}, panning", 600)

    # Scenario 2: a job that streams a full-size preview every 100 ms (as ZSSR does), viewer at 1:1.
    def preview_job(img, token):
        steps = max(1, int(args.preview_seconds / 0.1))
        pixels = img.pixels
        for i in range(steps):
            token.raise_if_cancelled()
            deadline = time.perf_counter() + 0.1
            while time.perf_counter() < deadline:  # busy work in numpy, like a training step
                np.sqrt(pixels[:256, :256] + 1.0)
            preview = img.with_pixels(np.clip(pixels * (0.5 + 0.5 * i / steps), 0, 1))
            yield Progress((i + 1) / steps, "train", f"step {i}", preview=preview)
        return ImageResult(preview, "preview test", "preview", "CPU", args.preview_seconds)

    window.runs.job_factory = lambda request, measure_each=False: (preview_job, "Preview stream")
    job_while_panning(f"live preview {args.size}x{args.size} every 100 ms, 1:1, panning", 120)
    window.ask_before_discarding = False  # the benchmark's results are not the user's: quit without asking
    window.close()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = ["| scenario | job (s) | progress events | timer ticks | worst stall (ms) | p99 (ms) | median (ms) | "
             "worst GUI-thread CPU between ticks (ms) |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['scenario']} | {row['job_s']} | {row['progress_events']} | {row['ticks']} | "
                     f"{row['worst_ms']:.1f} | {row['p99_ms']:.1f} | {row['median_ms']:.1f} | "
                     f"{row['worst_gui_cpu_ms']:.1f} |")
    table = "\n".join(lines)
    header = (f"GUI event-loop stall while a job runs ({os.cpu_count()} CPU threads, "
              f"load average {load:.1f} at the end, QT_QPA_PLATFORM={os.environ.get('QT_QPA_PLATFORM')}). "
              f"A stall is the delay of a {TICK_MS} ms timer "
              "beyond its period.\n\n")
    header += (f"One viewer frame (split, 1:1, {args.size}x{args.size}): {paint_cached:.1f} ms with cached tiles, "
               f"{paint_new:.1f} ms for a new image (median of 30).\n\n")
    print(header + table)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "gui_stall.md").write_text(header + table + "\n", encoding="utf-8")
    summary = {"paint_cached_ms": paint_cached, "paint_new_image_ms": paint_new, "load_average": load, "rows": rows}
    (results / "gui_stall.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
