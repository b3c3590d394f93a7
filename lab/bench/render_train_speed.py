"""Seconds per KPRCAN training step on this CPU: the implementation before 2026-11-27 next to the current one.

The render recipes used to force bf16 autocast, and the kernel application and box filters were written as a
sum of shifted slices and ``avg_pool2d``. On a CPU without native bf16 (no AVX512-BF16 / AMX) PyTorch runs bf16
convolutions on its slow reference path, and a slice's backward zero-fills a padded gradient per tap. This
times one step of the shipped AOV model's configuration (batch 6 of 128x128, colour + albedo + normal) in:

- ``before``: bf16 autocast, slices, ``avg_pool2d`` (the old code, rebuilt here by swapping the new pieces out;
  the attention mean is a pooled sum over a pooled count, one more small pool than the old single call);
- ``before, fp32``: the same ops in fp32;
- ``now``: fp32 (``amp = "auto"`` on this CPU), ``unfold`` kernels, box filters as depthwise convolutions.

All rows compute the same function (outputs agree to ~4e-7 in fp32). Median of ``--repeats`` steps after two
warm-up steps, in one run, so the ratios are comparable even on a shared machine.

    nice -n 10 .venv/bin/python lab/bench/render_train_speed.py [--threads 1] [--repeats 6]

Writes lab/bench/results/render_train_speed.md and .json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from engine.training.archs import build_model  # noqa: E402
from engine.training.trainer import cpu_has_native_bf16  # noqa: E402

KPCN = sys.modules["engine.training.archs.kpcn.model"]
KERNELS = sys.modules["engine.training.archs.kpcn.kernels"]
CONFIG = {"aux_inputs": ["albedo", "normal"], "features": 32, "blocks": 4, "kernel": "multiscale", "unshuffle": 2}


def _old_box_sum(self, x: torch.Tensor) -> torch.Tensor:
    size = self.column.shape[2]
    return F.avg_pool2d(x, size, stride=1, padding=self.padding, divisor_override=1)


@contextmanager
def old_ops():
    """The slice-sum kernel application and avg_pool2d box filters of the code before this change."""
    saved = KPCN.apply_kernels, KPCN.BoxSum.forward
    KPCN.apply_kernels = lambda signals, weights, grids: KERNELS._apply_slices(signals, weights,
                                                                             KERNELS.grid_layout(grids))
    KPCN.BoxSum.forward = _old_box_sum
    try:
        yield
    finally:
        KPCN.apply_kernels, KPCN.BoxSum.forward = saved


def step_seconds(bf16: bool, repeats: int, batch: int, size: int) -> float:
    torch.manual_seed(0)
    model = build_model("kprcan", CONFIG)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    inputs = [torch.rand(batch, 3, size, size) for _ in range(3)]
    target = torch.rand(batch, 3, size, size)
    times = []
    for i in range(repeats + 2):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            output = model(*inputs)
        loss = (output.float() - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i >= 2:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def check_same_function() -> float:
    torch.manual_seed(0)
    model = build_model("kprcan", CONFIG).eval()
    inputs = [torch.rand(1, 3, 96, 96) for _ in range(3)]
    with torch.no_grad():
        now = model(*inputs)
        with old_ops():
            before = model(*inputs)
    return float((now - before).abs().max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--batch", type=int, default=6)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    difference = check_same_function()
    rows = []
    for label, bf16, old in [("before (bf16 autocast, slices, avg_pool2d)", True, True),
                             ("before, fp32", False, True),
                             ("now (fp32, unfold, depthwise box filters)", False, False)]:
        if old:
            with old_ops():
                seconds = step_seconds(bf16, args.repeats, args.batch, args.size)
        else:
            seconds = step_seconds(bf16, args.repeats, args.batch, args.size)
        rows.append({"variant": label, "seconds": seconds})
        print(f"{label:45s} {seconds:.3f} s/step", file=sys.stderr)
    now = rows[-1]["seconds"]
    lines = [
        f"## KPRCAN training step on this CPU ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.machine()}, {args.threads} thread(s), native bf16: {cpu_has_native_bf16()})",
        "",
        f"Batch {args.batch} of {args.size}x{args.size}, colour + albedo + normal, {CONFIG['features']} features, "
        f"{CONFIG['blocks']} blocks; median of {args.repeats} steps. Old and new ops agree to {difference:.1e}.",
        "",
        "| implementation | s / step | vs now |",
        "|---|---|---|",
    ] + [f"| {r['variant']} | {r['seconds']:.3f} | {r['seconds'] / now:.1f}x |" for r in rows] + [
        "",
        f"Command: `nice -n 10 .venv/bin/python lab/bench/render_train_speed.py --threads {args.threads}`",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "lab" / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "render_train_speed.md").write_text(text, encoding="utf-8")
    (out / "render_train_speed.json").write_text(json.dumps({"rows": rows, "max_difference": difference,
                                                             "threads": args.threads}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
