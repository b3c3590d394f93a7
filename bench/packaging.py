"""Size and start-up time of the packaged app (PyInstaller bundles, and the source install for comparison).

    nice -n 10 .venv/bin/python bench/packaging.py --bundle lite=build/dist-lite/RestorationStudio \\
        --bundle full=build/dist-full/RestorationStudio [--deb lite=dist/x.deb] [--runs 3]

For each: size on disk, number of files, and the median wall time (warm file cache: one untimed run first) of
  * ``--help``: the command line's start (interpreter, imports, argument parser);
  * ``--screenshot OUT sample.exr``: start -> window shown with the bundled sample open and painted -> PNG
    written -> exit (an upper bound of "double-click to picture", offscreen);
  * ``--selftest``: read sample, run the default render denoiser, write/read back, build the window.
Writes bench/results/packaging.md and .json. The machine is shared: the load average is recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "resources" / "samples" / "sample_render.exr"


def size_of(folder: Path) -> tuple[float, int]:
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_size for p in files) / 2**20, len(files)


def timed(command: list[str], env: dict[str, str], runs: int) -> float:
    subprocess.run(command, env=env, capture_output=True, timeout=600)  # warm the file cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return statistics.median(times)


def measure(name: str, launcher: list[str], folder: Path | None, runs: int, deb: Path | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "RESTORATION_STUDIO_HOME": tmp, "HOME": tmp,
               "XDG_CONFIG_HOME": tmp}
        row = {"name": name}
        if folder is not None:
            row["size_mb"], row["files"] = size_of(folder)
        if deb is not None:
            row["deb_mb"] = deb.stat().st_size / 2**20
        row["help_s"] = timed([*launcher, "--help"], env, runs)
        row["screenshot_s"] = timed([*launcher, "--screenshot", str(Path(tmp) / "shot.png"), str(SAMPLE)], env, runs)
        row["selftest_s"] = timed([*launcher, "--selftest"], env, runs)
    print(f"{name}: {row}", file=sys.stderr)
    return row


def pairs(items: list[str]) -> dict[str, Path]:
    return {k: Path(v) for k, _, v in (item.partition("=") for item in items)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", action="append", default=[], metavar="NAME=FOLDER")
    parser.add_argument("--deb", action="append", default=[], metavar="NAME=FILE")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-source", action="store_true", help="skip the source-install row")
    args = parser.parse_args()
    debs = pairs(args.deb)
    rows = []
    for name, folder in pairs(args.bundle).items():
        rows.append(measure(name, [str(folder / "RestorationStudio")], folder, args.runs, debs.get(name)))
    if not args.no_source:
        rows.append(measure("source (.venv, python main.py)", [sys.executable, str(ROOT / "main.py")], None,
                            args.runs, None))
    load = os.getloadavg()[0]
    lines = [
        "| Build | Size on disk | Files | .deb | `--help` | start -> window with sample -> exit | `--selftest` |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        size = f"{r['size_mb']:.0f} MiB" if "size_mb" in r else "-"
        files = str(r.get("files", "-"))
        deb = f"{r['deb_mb']:.0f} MiB" if "deb_mb" in r else "-"
        lines.append(f"| {r['name']} | {size} | {files} | {deb} | {r['help_s']:.2f} s | {r['screenshot_s']:.2f} s | "
                     f"{r['selftest_s']:.2f} s |")
    cpu = os.cpu_count()
    lines.append(f"\nMedian of {args.runs} warm runs, offscreen, {cpu} CPUs, load average {load:.1f} while measuring "
                 f"(shared machine). Command: `nice -n 10 .venv/bin/python bench/packaging.py "
                 f"{' '.join('--bundle ' + b for b in args.bundle)}{''.join(' --deb ' + d for d in args.deb)}`.")
    table = "\n".join(lines)
    print(table)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "packaging.md").write_text(table + "\n", encoding="utf-8")
    (out / "packaging.json").write_text(json.dumps({"rows": rows, "load_average": load, "runs": args.runs},
                                                   indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
