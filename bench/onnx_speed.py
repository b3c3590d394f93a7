"""Two or more ONNX model files timed side by side in one process, on the same random inputs: for an export change
(the same weights, another graph), whether it is faster and whether its outputs are the same.

Each file gets its own session through the app's ``engine.runtime.OnnxModel`` on the CPU (its session options and
thread count are the app's); after one warm-up run per session the runs are interleaved (A B C A B C ...), so that
a machine whose speed drifts slows them alike. Prints per file the minimum and median seconds, seconds per
megapixel, the median relative to the first file, and the largest output difference from the first file; appends
the table to bench/results/onnx_speed.md.

    .venv/bin/python bench/onnx_speed.py OLD.onnx NEW.onnx [--size 1024] [--repeats 8] [--label TEXT] [--profile]

``--profile`` adds where each file's time goes: ONNX Runtime's own profiler over one run (after a warm-up), the
kernel time summed per operator type, the largest shares listed.

Inputs are named by the model contract (engine/models/manifest.py): ``color`` in [0, 2), ``normal`` in [-1, 1),
every other 3- or 1-channel input in [0, 1).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from engine.runtime import OnnxModel  # noqa: E402


def random_feeds(model: OnnxModel, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for tensor in model.session.get_inputs():
        channels = tensor.shape[1] if isinstance(tensor.shape[1], int) else 3
        value = rng.random((1, channels, size, size), dtype=np.float32)
        scale, offset = {"color": (2.0, 0.0), "normal": (2.0, -1.0)}.get(tensor.name, (1.0, 0.0))
        feeds[tensor.name] = value * scale + offset
    return feeds


def op_shares(path: Path, feeds: dict[str, np.ndarray], top: int = 8) -> tuple[float, list[tuple[str, float]]]:
    """(seconds of kernel time in one run, [(operator type, share of it)] largest first), from ONNX Runtime's
    profiler on a fresh CPU session (default session options)."""
    import collections
    import json
    import tempfile

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder) / "profile")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        session.run(None, feeds)
        session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    by_op: collections.Counter = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
    total = sum(by_op.values())
    return total / 2e6, [(op, duration / total) for op, duration in by_op.most_common(top)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help=".onnx files; the first is the baseline")
    parser.add_argument("--size", type=int, default=1024, help="input edge in pixels (default 1024, the render tile)")
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--label", default="")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "onnx_speed.md"))
    parser.add_argument("--profile", action="store_true", help="also the time per operator type of each file")
    args = parser.parse_args()
    paths = [Path(m) for m in args.models]
    sessions = [OnnxModel(p, device="cpu") for p in paths]
    feeds = random_feeds(sessions[0], args.size)
    outputs = [s.run(feeds)[0] for s in sessions]  # also the warm-up
    times: list[list[float]] = [[] for _ in sessions]
    for _ in range(args.repeats):
        for index, sess in enumerate(sessions):
            started = time.perf_counter()
            sess.run(feeds)
            times[index].append(time.perf_counter() - started)
    megapixels = args.size * args.size / 1e6
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"### {stamp}{' - ' + args.label if args.label else ''}", "",
             f"`{' '.join(['bench/onnx_speed.py', *sys.argv[1:]])}` ({args.size} px input, {args.repeats} interleaved "
             f"runs each, {sessions[0].device})", "",
             "| model file | min s | median s | median s/MP | median vs first | max abs output difference |",
             "|---|---|---|---|---|---|"]
    base = statistics.median(times[0])
    for path, run_times, out in zip(paths, times, outputs, strict=True):
        median = statistics.median(run_times)
        lines.append(f"| {path} | {min(run_times):.3f} | {median:.3f} | {median / megapixels:.2f} | "
                     f"{median / base:.3f} | {float(np.abs(out - outputs[0]).max()):.2e} |")
    if args.profile:
        lines += ["", "ONNX Runtime's profiler, one run each (kernel time, shares of the largest operator types):", ""]
        for path in paths:
            seconds, shares = op_shares(path, feeds)
            lines.append(f"- {path}: {seconds:.2f} s; " + ", ".join(f"{op} {share:.0%}" for op, share in shares))
    print("\n".join(lines))
    with open(args.out, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
