"""Peak memory of `main.py restore` on huge images: a 100 MP photo, a 16k x 16k HDR render, a 4k render with AOVs.

    .venv/bin/python bench/huge.py [--case photo|render|render-aov|all] [--megapixels 100] [--side 16384]
                                   [--tile N] [--budget-s 3000] [--work DIR] [--input FILE] [--dry]
                                   [--baseline REVISION]

``render-aov`` is an EXR with albedo and normal layers through the default render model for such images
(render-kprcan-aov); ``photo`` goes through the default photo denoiser (photo-denoise-color). ``--baseline``
runs each case with an earlier commit too (checked out in a temporary git worktree, the same Python), on the same
generated input, right after this tree's run, and adds its rows (case name + ``@REVISION``) beside them.

Each case generates a synthetic input (no benchmark data), runs the real command line on it in a child process
(niced, so the shared machine stays usable), samples the child's peak resident set size (VmHWM) while it runs
and takes the final figure from ``wait4``. A child still running after ``--budget-s`` seconds is killed and its
row says so, with the peak reached until then. Results go to bench/results/huge.md (+ .json), one row per case,
merged with the rows of earlier runs of the other case.

``--dry`` runs the same flow with the identity in place of each tile's inference (the ONNX session is still
built): on a 2-core machine a 16k render takes hours of inference, while its memory is the pipeline's (measured
dry at full size) plus ONNX Runtime's per-tile working set (measured as real minus dry on a smaller image with the
same tile).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.memory_40mp import make_test_image  # noqa: E402
from engine.imageio.formats import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MODELS = {"photo": "photo-denoise-color", "render": "render-kprcan-color", "render-aov": "render-kprcan-aov"}


def make_render_exr(path: Path, side: int, aovs: bool = False) -> None:
    """A float32 linear-HDR 'render': smooth lighting times a texture, Monte Carlo-like noise, a few fireflies."""
    import OpenEXR

    rng = np.random.default_rng(0)
    rgb = np.empty((side, side, 3), np.float32)
    x = np.linspace(0.0, 1.0, side, dtype=np.float32)
    for start in range(0, side, 1024):  # in bands so the generator holds one image, not several
        stop = min(side, start + 1024)
        y = np.linspace(start / side, stop / side, stop - start, endpoint=False, dtype=np.float32)[:, None]
        light = 0.2 + 2.0 * np.exp(-((x[None, :] - 0.5) ** 2 + (y - 0.3) ** 2) * 8.0)
        texture = 0.5 + 0.4 * (((x[None, :] * 64).astype(np.int32) + (y * 64).astype(np.int32)) % 2)
        band = (light * texture)[:, :, None] * np.array([1.0, 0.8, 0.6], np.float32)
        noise = rng.gamma(2.0, 0.5, band.shape).astype(np.float32)  # mean 1, skewed like few-spp estimates
        band = band * noise
        fireflies = rng.random(band.shape[:2]) < 1e-4
        band[fireflies] *= 50.0
        rgb[start:stop] = band
    channels = {"RGB": rgb}
    if aovs:  # flat albedo in checker tiles, normals tilting across the frame: enough for the guide to matter
        albedo = np.empty_like(rgb)
        normal = np.empty_like(rgb)
        for start in range(0, side, 1024):
            stop = min(side, start + 1024)
            y = np.linspace(start / side, stop / side, stop - start, endpoint=False, dtype=np.float32)[:, None]
            checker = 0.5 + 0.4 * (((x[None, :] * 64).astype(np.int32) + (y * 64).astype(np.int32)) % 2)
            albedo[start:stop] = checker[:, :, None] * np.array([1.0, 0.8, 0.6], np.float32)
            tilt = np.broadcast_to(x[None, :] - 0.5, checker.shape)
            normal[start:stop, :, 0] = tilt
            normal[start:stop, :, 1] = np.broadcast_to(y - 0.5, checker.shape)
            normal[start:stop, :, 2] = 1.0
            normal[start:stop] /= np.linalg.norm(normal[start:stop], axis=2, keepdims=True)
        channels["albedo"] = albedo
        channels["normal"] = normal
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, channels).write(str(path))


def _vm_hwm_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def run_child(command: list[str], budget_s: float, log: Path, env: dict[str, str], cwd: Path = ROOT,
              nice: int = 10) -> dict:
    """Run ``command`` niced; return wall time, peak RSS (MiB), exit status, and whether the budget killed it."""
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as output:
        child = subprocess.Popen(
            command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, preexec_fn=lambda: os.nice(nice),
            env={**os.environ, **env},
        )
        peak = 0.0
        killed = False
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)  # noqa: F841 (usage: CPU time below)
            if pid:
                break
            peak = max(peak, _vm_hwm_mib(child.pid) or 0.0)
            if time.perf_counter() - started > budget_s:
                child.kill()
                killed = True
                pid, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.5)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    peak = max(peak, usage.ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux
    return {"seconds": round(seconds, 1), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mib": round(peak), "peak_rss_gb": round(peak * 2**20 / 1e9, 2), "exit": child.returncode,
            "killed": killed}


#: The restore command's flow (engine/commands/restore_cmd.py) with each tile's inference replaced by the identity:
#: the same reading, model-space conversion, tiling, blending, conversion back and writing, and the real ONNX session
#: is still built. Its peak is the pipeline's memory without ONNX Runtime's per-tile working set.
DRY_CHILD = """
import sys
import numpy as np
from engine import restore
from engine.imageio import read_image, write_image
from engine.jobs import CancelToken, run_job
from engine.models.registry import ModelRegistry
real_runner = restore._tile_runner
def identity_runner(entry, params, device, token, *rest):
    _run, device_used, bytes_per_pixel = real_runner(entry, params, device, token, *rest)
    return (lambda tile: np.ascontiguousarray(tile["color"])), device_used, bytes_per_pixel
restore._tile_runner = identity_runner
source, target, model, tile = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
import inspect
# As the command line does, where the engine can take the input's buffer for the result.
RELEASE = {"release_input": True} if "release_input" in inspect.signature(restore.restore_job).parameters else {}
image = read_image(source)
job = restore.restore_job(image, ModelRegistry().get(model), {}, tile=int(tile) if tile != "none" else None,
                          token=CancelToken(), **RELEASE)
del image
result = run_job(job)
del job
write_image(target, result.image)
print(source, "->", target, "(identity tiles)", result.details["tile"])
"""


def _dimensions(path: Path) -> tuple[int, int]:
    """Width and height from the header only (reading a 16k render to learn its size would cost 3 GiB here)."""
    if path.suffix.lower() == ".exr":
        import OpenEXR

        box = OpenEXR.File(str(path), header_only=True).parts[0].header["dataWindow"]
        return int(box[1][0] - box[0][0] + 1), int(box[1][1] - box[0][1] + 1)
    from PIL import Image as PILImage

    PILImage.MAX_IMAGE_PIXELS = None
    with PILImage.open(path) as image:
        return image.size


def case_key(case: str, args: argparse.Namespace, tree: str = "") -> str:
    size = f"-{args.side}" if case.startswith("render") else ""
    return f"{case}{size}{'-dry' if args.dry else ''}{'@' + tree if tree else ''}"


def make_input(case: str, args: argparse.Namespace, folder: Path) -> tuple[Path, int, int, str]:
    """The case's input (generated unless --input gives one): path, width, height, kind."""
    if case == "photo":
        source = args.input or folder / "photo.png"
        kind = "8-bit RGB PNG"
        if args.input is None:
            width, height = make_test_image(source, args.megapixels)
            return source, width, height, kind
    else:
        source = args.input or folder / "render.exr"
        kind = "float32 RGB EXR" + (" + albedo + normal" if case == "render-aov" else "")
        if args.input is None:
            make_render_exr(source, args.side, aovs=case == "render-aov")
            return source, args.side, args.side, kind
    return (source, *_dimensions(source), kind)


def run_case(case: str, args: argparse.Namespace, folder: Path, made: tuple[Path, int, int, str],
             tree: Path = ROOT, tree_name: str = "") -> dict:
    model = MODELS[case]
    source, width, height, kind = made
    if case == "photo":
        target = folder / "photo_out.png"
        extra = ["--set", "noise_level=15"]
    else:
        target = folder / "render_out.exr"
        extra = []
    what = f"{width}x{height} ({width * height / 1e6:.1f} MP, {kind})"
    input_mib = source.stat().st_size / 2**20
    if args.dry:
        command = [sys.executable, "-c", DRY_CHILD, str(tree), str(source), str(target), model,
                   str(args.tile) if args.tile is not None else "none"]
    else:
        command = [sys.executable, str(tree / "main.py"), "restore", str(source), "-o", str(target), "--model", model]
        command += extra + (["--tile", str(args.tile)] if args.tile is not None else [])
    log = folder / f"{case}{'-' + tree_name if tree_name else ''}.log"
    # A 16k x 16k render (268 MP) is above the loader's default 200 MP decompression-bomb limit: raise it for this
    # child only, as a user with such renders would (the README says how).
    limit = max(DEFAULT_MAX_PIXELS, width * height)
    row = run_child(command, args.budget_s, log, {MAX_PIXELS_ENV: str(limit)}, cwd=tree, nice=args.nice)
    tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
    row.update(
        case=case_key(case, args, tree_name),
        tree=tree_name or "this",
        model=model + (" (identity tiles: pipeline without ORT)" if args.dry else ""),
        image=what,
        megapixels=round(width * height / 1e6, 1),
        input_file_mib=round(input_mib),
        tile=args.tile if args.tile is not None else "model default",
        output_written=target.exists() and row["exit"] == 0,
        float32_image_mib=round(width * height * 3 * 4 / 2**20),
        log_tail=tail,
        cpu_threads=os.cpu_count(),
        max_pixels_env=limit if limit > DEFAULT_MAX_PIXELS else None,
    )
    target.unlink(missing_ok=True)
    return row


def write_results(rows: dict[str, dict], command: str, nice: int = 10) -> str:
    lines = [
        "| case | model | image | tile | peak RSS (MiB) | peak RSS (GB) | one float32 RGB copy (MiB) | CPU s | wall s "
        "| finished |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows.values():
        finished = "yes" if row["output_written"] else ("killed at budget" if row["killed"] else f"exit {row['exit']}")
        lines.append(
            f"| {row['case']} | {row['model']} | {row['image']} | {row['tile']} | {row['peak_rss_mib']} | "
            f"{row.get('peak_rss_gb', round(row['peak_rss_mib'] * 2**20 / 1e9, 2))} | {row['float32_image_mib']} | "
            f"{row.get('cpu_seconds', '')} | {row['seconds']} | {finished} |"
        )
    table = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "huge.md").write_text(
        "# Peak memory of `main.py restore` on huge images\n\n"
        f"Last command: `{command}` (each case's child niced by {nice} on a shared "
        f"{os.cpu_count()}-thread CPU, busy with other work; compare CPU seconds, not wall)\n\n"
        + table,
        encoding="utf-8",
    )
    (RESULTS / "huge.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("photo", "render", "render-aov", "all"), default="all")
    parser.add_argument("--megapixels", type=float, default=100.0)
    parser.add_argument("--side", type=int, default=16384)
    parser.add_argument("--tile", type=int, default=None, help="tile edge passed to restore (default: the model's)")
    parser.add_argument("--budget-s", type=float, default=3000.0, help="kill a case still running after this")
    parser.add_argument("--work", type=Path, default=None, help="folder for the generated inputs (default: a temp)")
    parser.add_argument("--input", type=Path, default=None, help="use this file instead of generating one")
    parser.add_argument("--dry", action="store_true", help="identity in place of each tile's inference (see DRY_CHILD)")
    parser.add_argument("--baseline", default=None, help="also run each case with this earlier commit")
    parser.add_argument("--baseline-only", action="store_true",
                        help="run only the --baseline tree (a second process can run this tree at the same time)")
    parser.add_argument("--nice", type=int, default=10, help="niceness of each child (default: %(default)s)")
    args = parser.parse_args()
    previous = RESULTS / "huge.json"
    rows: dict[str, dict] = json.loads(previous.read_text(encoding="utf-8")) if previous.exists() else {}
    cases = ("photo", "render", "render-aov") if args.case == "all" else (args.case,)
    trees = [] if args.baseline and args.baseline_only else [(ROOT, "")]
    with tempfile.TemporaryDirectory(dir=args.work) as folder:
        if args.baseline:
            baseline = Path(folder) / "baseline"
            subprocess.run(["git", "worktree", "add", "--detach", str(baseline), args.baseline], cwd=ROOT, check=True,
                           capture_output=True)
            trees.append((baseline, args.baseline))
        try:
            for case in cases:
                made = make_input(case, args, Path(folder))
                for tree, name in trees:
                    row = run_case(case, args, Path(folder), made, tree, name)
                    rows[row["case"]] = row
                    print(json.dumps(row), flush=True)
                    print(write_results(rows, "bench/huge.py " + " ".join(sys.argv[1:]), args.nice), flush=True)
                if args.input is None:
                    made[0].unlink(missing_ok=True)
        finally:
            if args.baseline:
                subprocess.run(["git", "worktree", "remove", "--force", str(Path(folder) / "baseline")], cwd=ROOT,
                               capture_output=True)
    name = args.baseline if args.baseline and args.baseline_only else ""
    return 0 if all(rows[case_key(case, args, name)]["output_written"] for case in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
