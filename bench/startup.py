"""Start-up cost beside an earlier commit: the window shown (device found), and a first small restore done.

    .venv/bin/python bench/startup.py [--baseline 512bd3f] [--runs 5] [--only window,photo,...]

Each case is a whole fresh process, as a user starts it: ``window`` builds the main window offscreen, shows it and
waits until the status bar names the inference device (the background probe has finished); ``photo``,
``document`` and ``render`` run ``main.py restore`` on a small generated image (320 x 240 photo through
photo-denoise-color-fast, a 540 x 420 gray page through document-restormer-tiny, a 256 x 256 EXR with albedo and
normal through render-kprcan-aov). The earlier commit is checked out in a temporary git worktree and run with the
same Python; the two trees alternate (A B A B ...) after one warm-up run each, so both see the machine alike, and
each keeps its own user folder across runs, so the figures are those of a second and later start (the optimised
graph cache filled). CPU seconds (user + system, from ``wait4``) are the figure to compare on a busy machine;
the ratio is taken pair by pair and its median quoted. Writes bench/results/startup.md (+ .json).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

WINDOW_CHILD = """
import os, sys
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from gui.app import _process_until, build_window, create_application
app = create_application()
window = build_window([], persist_layout=False)
window.resize(1000, 700)
window.show()
shown = _process_until(app, lambda: window.windowHandle() is not None and window.windowHandle().isExposed(), 20000)
found = _process_until(app, lambda: "detecting" not in window.device_text(), 60000)
print("shown" if shown else "not shown", "|", window.device_text())
window.close()
sys.exit(0 if shown and found else 1)
"""

CASES = {
    "photo": ("photo.png", "photo-denoise-color-fast", ["--set", "noise_level=15"]),
    "document": ("page.png", "document-restormer-tiny", []),
    "render": ("render.exr", "render-kprcan-aov", []),
}


def make_inputs(folder: Path) -> None:
    """The small inputs, written with this tree's engine (both trees read them)."""
    from engine.image import ImageMeta, make_image
    from engine.imageio import write_image

    rng = np.random.default_rng(0)
    photo = np.clip(np.linspace(0, 1, 320)[None, :, None] + rng.normal(0, 0.06, (240, 320, 3)), 0, 1)
    write_image(folder / "photo.png", make_image(photo.astype(np.float32)))
    page = np.ones((420, 540), np.float32)
    for top in range(40, 380, 22):  # lines of "text": dark strokes on paper, with stains
        page[top : top + 9, 50:490] = np.where(rng.random((9, 440)) < 0.45, 0.15, 1.0)
    page *= 0.85 + 0.1 * rng.random((420, 540))
    write_image(folder / "page.png", make_image(page[:, :, None], meta=ImageMeta(gray=True)))
    side = 256
    light = np.linspace(0.2, 3.0, side, dtype=np.float32)[None, :, None] * np.ones((side, side, 3), np.float32)
    colour = light * rng.gamma(2.0, 0.5, (side, side, 3)).astype(np.float32)
    albedo = np.full((side, side, 3), 0.6, np.float32)
    normal = np.zeros((side, side, 3), np.float32)
    normal[..., 2] = 1.0
    meta = ImageMeta(format="exr", hdr=True, bit_depth=32, sample_type="float", color_space="linear")
    write_image(folder / "render.exr", make_image(colour, meta=meta, layers={"albedo": albedo, "normal": normal}))


def command(case: str, tree: Path, inputs: Path, out: Path) -> list[str]:
    if case == "window":
        return [sys.executable, "-c", WINDOW_CHILD, str(tree)]
    name, model, extra = CASES[case]
    return [sys.executable, str(tree / "main.py"), "restore", str(inputs / name), "-o", str(out / name),
            "--model", model, "--overwrite", *extra]


def run_once(argv: list[str], tree: Path, home: Path) -> dict:
    env = {**os.environ, "RESTORATION_STUDIO_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
    started = time.perf_counter()
    child = subprocess.Popen(argv, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = child.stdout.read() if child.stdout else b""
    _, status, usage = os.wait4(child.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed ({code}): {output.decode(errors='replace')[-600:]}")
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": time.perf_counter() - started,
            "peak_mib": usage.ru_maxrss / 1024}


def baseline_tree(revision: str, folder: Path) -> Path:
    tree = folder / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), revision], cwd=ROOT, check=True,
                   capture_output=True)
    return tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="512bd3f", help="the earlier commit (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="window,photo,document,render")
    args = parser.parse_args()
    cases = [case for case in args.only.split(",") if case]
    folder = Path(tempfile.mkdtemp(prefix="rs-startup-"))
    rows = {}
    try:
        inputs = folder / "inputs"
        inputs.mkdir()
        make_inputs(inputs)
        trees = {"this": ROOT, "baseline": baseline_tree(args.baseline, folder)}
        for case in cases:
            runs: dict[str, list[dict]] = {"this": [], "baseline": []}
            for index in range(args.runs + 1):  # the first pair warms the file cache and fills each user folder
                for side, tree in trees.items():
                    out = folder / f"out-{side}"
                    out.mkdir(exist_ok=True)
                    figures = run_once(command(case, tree, inputs, out), tree, folder / f"home-{side}")
                    if index:
                        runs[side].append(figures)
            ratios = [a["cpu"] / b["cpu"] for a, b in zip(runs["this"], runs["baseline"], strict=True)]
            rows[case] = {side: {key: round(statistics.median(r[key] for r in runs[side]), 3)
                                 for key in ("cpu", "wall", "peak_mib")} for side in trees}
            rows[case]["cpu_ratio_median"] = round(statistics.median(ratios), 3)
            rows[case]["cpu_ratio_range"] = [round(min(ratios), 3), round(max(ratios), 3)]
            print(case, json.dumps(rows[case]), flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder / "baseline")], cwd=ROOT,
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
    lines = ["| case | CPU s (this) | CPU s (baseline) | CPU ratio, median (min-max) | wall s this / baseline "
             "| peak MiB this / baseline |", "|---|---|---|---|---|---|"]
    for case, row in rows.items():
        low, high = row["cpu_ratio_range"]
        lines.append(f"| {case} | {row['this']['cpu']:.2f} | {row['baseline']['cpu']:.2f} | "
                     f"{row['cpu_ratio_median']:.2f} ({low:.2f}-{high:.2f}) | {row['this']['wall']:.2f} / "
                     f"{row['baseline']['wall']:.2f} | {row['this']['peak_mib']:.0f} / "
                     f"{row['baseline']['peak_mib']:.0f} |")
    table = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "startup.md").write_text(
        "# Start-up: window shown, first small restore (whole processes)\n\n"
        f"`bench/startup.py {' '.join(sys.argv[1:])}`: this tree against {args.baseline}, {args.runs} pairs after a "
        f"warm-up pair, on a shared {os.cpu_count()}-thread machine busy with other work (compare CPU seconds); "
        "medians.\n\n" + table,
        encoding="utf-8")
    (RESULTS / "startup.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
