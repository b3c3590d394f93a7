"""Fuzz the image loader for a fixed time, in worker processes that may crash, and count what happens.

    .venv/bin/python bench/fuzz_loader.py [--seconds 300] [--workers 2] [--seed 0] [--keep DIR]

Each input is a valid seed file (bench/fuzzing.py: every format and the odd layouts) damaged by random byte-level
mutations. Workers are child processes reading one file at a time, so a crash in native decoder code (libpng,
libjpeg, libtiff, OpenEXR, libwebp) kills only the worker: the parent counts it as a crash, keeps the input under
``--keep`` and starts a new worker. An input taking longer than ``--hang-s`` counts as a hang. Outcomes:
loaded, refused (an ImageReadError naming the file), wrong (another exception or a malformed image: a bug),
crash, hang. Results: bench/results/fuzz_loader.md (+ .json).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

WORKER = """
import os, sys, json, traceback
# Results go to a private copy of stdout; whatever the decoders print goes to /dev/null.
results = os.fdopen(os.dup(1), "w")
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
from bench.fuzzing import load_outcome
import cv2, OpenEXR, tifffile, PIL.Image  # decoders loaded before the clock starts for the first input
results.write("ready\\n")
results.flush()
for line in sys.stdin:
    path = line.strip()
    try:
        outcome, detail = load_outcome(path), ""
    except BaseException as error:
        outcome, detail = "wrong", type(error).__name__ + ": " + str(error)[:200]
    results.write(json.dumps([outcome, detail]) + "\\n")
    results.flush()
"""


class Worker:
    def __init__(self, index: int, folder: Path) -> None:
        env = dict(os.environ, OPENCV_LOG_LEVEL="SILENT", OPENCV_IO_ENABLE_OPENEXR="1")
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(ROOT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, env=env, preexec_fn=lambda: os.nice(5),
        )
        ready = self.process.stdout.readline()  # imports done: the first input is timed like the others
        if ready.strip() != "ready":
            raise RuntimeError("a fuzzing worker failed to start")
        self.path = folder / f"input{index}"
        self.started = 0.0
        self.busy = False
        self.name = ""

    def submit(self, name: str, data: bytes) -> None:
        self.path = self.path.with_name(f"{self.path.name.split('.')[0]}.{name.rsplit('.', 1)[-1]}")
        self.path.write_bytes(data)
        self.name = name
        self.started = time.perf_counter()
        self.busy = True
        self.process.stdin.write(f"{self.path}\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang-s", type=float, default=20.0)
    parser.add_argument("--keep", type=Path, default=Path(tempfile.gettempdir()) / "fuzz_loader_findings")
    args = parser.parse_args()

    from bench.fuzzing import mutate, random_operations, repair_png_checksums, seeds

    seed_files = seeds()
    names = sorted(seed_files)
    rng = np.random.default_rng(args.seed)
    counts: collections.Counter[str] = collections.Counter()
    per_seed: dict[str, collections.Counter[str]] = {name: collections.Counter() for name in names}
    findings: list[dict[str, str]] = []
    slowest = 0.0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        workers = [Worker(i, folder) for i in range(args.workers)]
        current: dict[int, bytes] = {}

        def record(index: int, outcome: str, detail: str) -> None:
            nonlocal slowest
            worker = workers[index]
            counts[outcome] += 1
            per_seed[worker.name][outcome] += 1
            slowest = max(slowest, time.perf_counter() - worker.started)
            worker.busy = False
            if outcome in ("wrong", "crash", "hang"):
                args.keep.mkdir(parents=True, exist_ok=True)
                kept = args.keep / f"{outcome}{len(findings)}_{worker.name}"
                kept.write_bytes(current[index])
                findings.append({"outcome": outcome, "seed": worker.name, "detail": detail, "file": str(kept)})

        while True:
            now = time.perf_counter()
            running = now - started < args.seconds
            for index, worker in enumerate(workers):
                if not worker.busy and running:
                    name = names[int(rng.integers(len(names)))]
                    data = mutate(seed_files[name], random_operations(rng))
                    if rng.random() < 0.5:
                        data = repair_png_checksums(data)
                    current[index] = data
                    worker.submit(name, data)
            busy = [w for w in workers if w.busy]
            if not busy:
                break
            ready, _, _ = select.select([w.process.stdout for w in busy], [], [], 0.5)
            for index, worker in enumerate(workers):
                if not worker.busy:
                    continue
                if worker.process.stdout in ready:
                    line = worker.process.stdout.readline()
                    if line:
                        outcome, detail = json.loads(line)
                        record(index, outcome, detail)
                        continue
                    code = worker.process.wait()  # end of output: the worker died on this input
                    record(index, "crash", f"worker exit status {code}")
                    workers[index] = Worker(index, folder)
                elif time.perf_counter() - worker.started > args.hang_s:
                    worker.stop()
                    record(index, "hang", f"no answer in {args.hang_s:.0f} s")
                    workers[index] = Worker(index, folder)
        for worker in workers:
            worker.stop()
    seconds = time.perf_counter() - started
    total = sum(counts.values())
    row = {
        "inputs": total,
        "seconds": round(seconds, 1),
        "inputs_per_s": round(total / seconds, 1),
        "workers": args.workers,
        "seed": args.seed,
        **{k: counts.get(k, 0) for k in ("loaded", "refused", "wrong", "crash", "hang")},
        "slowest_input_s": round(slowest, 2),
        "per_seed": {name: dict(c) for name, c in per_seed.items()},
        "findings": findings,
    }
    table = (
        "| inputs | seconds | loaded | refused (clear error) | wrong (bug) | native crashes | hangs | slowest (s) |\n"
        "|---|---|---|---|---|---|---|---|\n"
        f"| {total} | {row['seconds']} | {row['loaded']} | {row['refused']} | {row['wrong']} | {row['crash']} | "
        f"{row['hang']} | {row['slowest_input_s']} |\n"
    )
    seed_lines = ["| seed file | inputs | loaded | refused | other |", "|---|---|---|---|---|"]
    for name, c in per_seed.items():
        other = sum(v for k, v in c.items() if k not in ("loaded", "refused"))
        seed_lines.append(f"| {name} | {sum(c.values())} | {c['loaded']} | {c['refused']} | {other} |")
    print(table)
    print("\n".join(seed_lines))
    for finding in findings:
        print(finding)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fuzz_loader.md").write_text(
        "# Loader fuzzing (byte mutations of valid seeds, workers in child processes)\n\n"
        f"Command: `bench/fuzz_loader.py {' '.join(sys.argv[1:])}` on {os.cpu_count()} threads (workers niced)\n\n"
        + table + "\n" + "\n".join(seed_lines) + "\n",
        encoding="utf-8",
    )
    (RESULTS / "fuzz_loader.json").write_text(json.dumps(row, indent=2), encoding="utf-8")
    return 0 if not (row["wrong"] or row["crash"] or row["hang"]) else 1


if __name__ == "__main__":
    sys.exit(main())
