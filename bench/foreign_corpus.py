"""Run `info --json` and `restore` on image files this project did not make, and count what happens.

    .venv/bin/python bench/foreign_corpus.py CORPUS=FOLDER... [--timeout-s 120] [--write]
    e.g. bench/foreign_corpus.py pillow=/tmp/c/pillow-13.0.0/Tests/images openexr=/tmp/c/openexr-3.5.3/src/test \\
         pngsuite=/tmp/c/pngsuite

Public corpora it was made for: Pillow's test images (``Tests/images`` in Pillow's sdist), OpenEXR's test images
(``src/test`` in the OpenEXR sdist) and PngSuite. Nothing is downloaded and nothing is kept: pass folders you have.
Every file under each folder is tried (not only image extensions: a loader meets any file); each file runs in a
worker process, so a native crash only costs the worker (counted as a crash); a file taking longer than
``--timeout-s`` counts as a hang.

For each file:
- ``info --json``: exit 0 with valid JSON on stdout, or exit 1 with one ``error:`` line on stderr and nothing on
  stdout (a clean error). Anything else (another status, a traceback, stdout that is not JSON) is a crash.
- a second opinion on what was read: where Pillow decodes the file to 8-bit L / LA / RGB / RGBA / P, our pixels
  must match Pillow's within 2/255 on average (a different picture is a silently wrong read);
- ``restore`` (``--model nlm --set noise_level=2`` for display images, ``--model oidn`` for HDR) to the same
  format: exit 0 or a clean error. A written output must
  have the input's size, page count, alpha, and bit depth (or a deeper one), keep more than 256 levels when the
  input had them (16-bit precision), and keep the picture: local means (9 x 9 boxes) within 0.05 of the range on
  average for display images, 0.1 in log(1 + x) for HDR. Otherwise it is silently wrong, or "degraded, with a
  warning" when the command warned the user (e.g. an HDR image through a display-referred model).

``--damaged-exr N`` adds a corpus of N damaged copies of every EXR file found (cut short, bytes overwritten, a run
zeroed): a damaged file must give a clean error, or load (EXR has no checksums: damage inside pixel data makes
other, valid pixels), never crash or hang.

Prints a table per corpus and overall; ``--write`` also writes bench/results/foreign_corpus.md (+ .json).
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

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

WORKER = r"""
import contextlib, io, json, os, sys, tempfile, traceback
results = os.fdopen(os.dup(1), "w")  # our answers; fd 1 is watched per call below
import numpy as np
from engine.cli import main as cli
from engine.imageio import read_image
from engine.imageio.formats import FORMAT_EXTENSIONS
from engine.imageio.pages import page_count, read_page
from engine.models.registry import ModelRegistry
import cv2, OpenEXR, tifffile, PIL.Image
REGISTRY = ModelRegistry()


def run_cli(argv):
    # Everything that reaches stdout, Python-level and native (fd 1), as the command's user would see it.
    with tempfile.TemporaryFile() as sink, tempfile.TemporaryFile() as errors:
        saved_out, saved_err = os.dup(1), os.dup(2)
        os.dup2(sink.fileno(), 1)
        os.dup2(errors.fileno(), 2)
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    status = cli(argv)
                except SystemExit as stop:
                    status = stop.code
                except BaseException as error:
                    status = "exception " + type(error).__name__
        finally:
            sys.stdout.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
        sink.seek(0)
        errors.seek(0)
        stdout = out.getvalue() + sink.read().decode("utf-8", "replace")
        stderr = err.getvalue() + errors.read().decode("utf-8", "replace")
    return status, stdout, stderr


def classify(status, stdout, stderr, want_json):
    if status == 0:
        if want_json:
            try:
                json.loads(stdout)
            except ValueError:
                return "crash", "stdout is not JSON: " + stdout[:120]
        return "ok", ""
    if status == 1 and "Traceback" not in stderr and stderr.strip() and not (want_json and stdout.strip()):
        return "clean_error", stderr.strip().splitlines()[-1][:160]
    return "crash", f"status {status}: " + (stderr.strip().splitlines() or [""])[-1][:160] + stdout[:80]


def pillow_check(path, image):
    # Pillow's reading of the same file, where it gives plain 8-bit samples; None when it cannot say.
    try:
        with PIL.Image.open(path) as other:
            if other.mode not in ("L", "LA", "RGB", "RGBA", "P") or getattr(other, "n_frames", 1) > 1:
                return None
            if image.meta.bit_depth != 8 or image.meta.hdr:
                return None
            if image.meta.extra.get("exif_orientation_applied"):
                return None
            rgb = np.asarray(other.convert("RGB"), dtype=np.float32) / 255.0
    except Exception:
        return None
    if rgb.shape != image.pixels.shape:
        return f"size {rgb.shape} (Pillow) vs {image.pixels.shape} (ours)"
    difference = float(np.abs(rgb - image.pixels).mean())
    return None if difference <= 2 / 255 else f"pixels differ from Pillow's by {difference * 255:.1f}/255 on average"


def levels(image):
    return len(np.unique(np.round(image.pixels[..., 0] * 65535)))


def output_check(source, output):
    a, b = read_image(source), read_image(output)
    if page_count(a) != page_count(b):
        return f"{page_count(a)} pages -> {page_count(b)}"
    for index in range(page_count(a)):
        if index:
            a, b = read_page(source, index), read_page(output, index)
        problem = page_check(a, b)
        if problem:
            return problem if page_count(a) == 1 else f"page {index + 1}: {problem}"
    return None


def page_check(a, b):
    if (a.height, a.width) != (b.height, b.width):
        return f"size {a.width}x{a.height} -> {b.width}x{b.height}"
    if (a.alpha is None) != (b.alpha is None):
        return "alpha lost" if b.alpha is None else "alpha added"
    if b.meta.bit_depth < a.meta.bit_depth:
        return f"bit depth {a.meta.bit_depth} -> {b.meta.bit_depth}"
    if levels(a) > 256 and levels(b) <= 256:
        return f"precision cut: {levels(a)} levels -> {levels(b)}"
    # Local means (9 x 9 boxes) must agree: a denoiser removes noise and fine detail, not the picture. NaN, Inf and
    # (for HDR) negative values are replaced by 0 on purpose before restoring (engine/imageio/hdr.py).
    x = np.nan_to_num(a.pixels, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    y = np.nan_to_num(b.pixels, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    if a.meta.hdr:
        # Compared in log(1 + x), as HDR is seen: one removed firefly of 65504 must not outweigh the picture.
        x, y = np.log1p(np.maximum(x, 0.0)), np.log1p(np.maximum(y, 0.0))
    x, y = cv2.blur(x, (9, 9)), cv2.blur(y, (9, 9))
    difference = float(np.abs(x - y).mean())
    limit = 0.10 if a.meta.hdr else 0.05
    if difference <= limit:
        return None
    kind = "in log(1 + x) " if a.meta.hdr else ""
    return f"local means differ from the input's by {kind}{difference:.3f} on average"


folder = tempfile.mkdtemp()
results.write("ready\n")
results.flush()
for line in sys.stdin:
    path = line.strip()
    row = {}
    try:
        status, stdout, stderr = run_cli(["info", "--json", path])
        row["info"], row["info_detail"] = classify(status, stdout, stderr, True)
        if row["info"] == "ok":
            info = json.loads(stdout)
            problem = pillow_check(path, read_image(path))
            if problem:
                row["read"], row["read_detail"] = "wrong", problem
            output = os.path.join(folder, "out" + FORMAT_EXTENSIONS[info["format"]])
            if os.path.exists(output):
                os.unlink(output)
            # A model for the kind of image: OIDN (fast) for HDR, non-local means for display images.
            model = ["--model", "oidn" if "oidn" in REGISTRY else "render-kprcan-color"] if info["hdr"] else [
                "--model", "nlm", "--set", "noise_level=2"]
            status, stdout, stderr = run_cli(["restore", path, "-o", output, *model])
            row["restore"], row["restore_detail"] = classify(status, stdout, stderr, False)
            warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
            if warnings:
                row["warnings"] = warnings[:3]
            if row["restore"] == "ok":
                problem = output_check(path, output)
                if problem:
                    row["restore"], row["restore_detail"] = "wrong", problem
    except BaseException as error:
        row["worker"] = "exception " + type(error).__name__ + ": " + str(error)[:160]
    results.write(json.dumps(row) + "\n")
    results.flush()
"""


class Worker:
    def __init__(self) -> None:
        env = dict(os.environ, OPENCV_LOG_LEVEL="SILENT", OPENCV_IO_ENABLE_OPENEXR="1",
                   RESTORATION_STUDIO_HOME=tempfile.mkdtemp())
        self.process = subprocess.Popen([sys.executable, "-c", WORKER, str(ROOT)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("a corpus worker failed to start")

    def ask(self, path: Path, timeout_s: float) -> tuple[dict, float]:
        started = time.perf_counter()
        self.process.stdin.write(f"{path}\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        if not ready:
            return {"hang": True}, time.perf_counter() - started
        line = self.process.stdout.readline()
        if not line:
            return {"crash": f"worker died (status {self.process.wait()})"}, time.perf_counter() - started
        return json.loads(line), time.perf_counter() - started

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def corpus_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.stat().st_size > 0)


def damaged_copies(files: list[Path], folder: Path, per_file: int, seed: int = 0) -> list[Path]:
    """``per_file`` damaged copies of each file, written under ``folder``: cut short at a random point, a few
    random bytes overwritten, a run of bytes zeroed, in turn (seeded, so a rerun damages them alike)."""
    import random

    generator = random.Random(seed)
    out = []
    for number, path in enumerate(files):
        data = path.read_bytes()
        for copy in range(per_file):
            damaged = bytearray(data)
            start = min(len(damaged) - 1, 64)  # past most headers, so that the pixel data is what breaks
            if copy % 3 == 0:
                damaged = damaged[: generator.randrange(start, len(damaged))]
            elif copy % 3 == 1:
                for _ in range(8):
                    damaged[generator.randrange(start, len(damaged))] = generator.randrange(256)
            else:
                at = generator.randrange(start, len(damaged))
                damaged[at : at + 256] = bytes(len(damaged[at : at + 256]))
            target = folder / f"{number:04d}_{copy}_{path.name}"
            target.write_bytes(bytes(damaged))
            out.append(target)
    return out


def outcome(row: dict) -> str:
    """One word per file: crash, hang, wrong (silently wrong read or output), clean_error, restored, loaded."""
    if row.get("hang"):
        return "hang"
    if row.get("crash") or row.get("worker") or "crash" in (row.get("info"), row.get("restore")):
        return "crash"
    if row.get("read") == "wrong":
        return "wrong"
    if row.get("restore") == "wrong":
        return "degraded, with a warning" if row.get("warnings") else "wrong"
    if row.get("info") == "clean_error":
        return "refused"
    if row.get("restore") == "clean_error":
        return "loaded, restore refused"
    return "restored"


COLUMNS = ("files", "restored", "degraded, with a warning", "loaded, restore refused", "refused", "wrong", "crash",
           "hang")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpora", nargs="+", metavar="NAME=FOLDER", help="a corpus name and its folder")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="a file taking longer is a hang")
    parser.add_argument("--limit", type=int, default=0, help="at most this many files per corpus (0: all)")
    parser.add_argument("--damaged-exr", type=int, default=0, metavar="N",
                        help="also try N damaged copies (cut, bytes changed, bytes zeroed) of every EXR found")
    parser.add_argument("--write", action="store_true",
                        help="write bench/results/foreign_corpus.md and .json (default: print only)")
    args = parser.parse_args(argv)
    corpora = {}
    for item in args.corpora:
        name, _, folder = item.partition("=")
        if not folder or not Path(folder).is_dir():
            parser.error(f"{item}: expected NAME=FOLDER with an existing folder")
        files = corpus_files(Path(folder))
        corpora[name] = (Path(folder), files[: args.limit] if args.limit else files)
    if args.damaged_exr:
        # Damaged copies of the corpora's EXR files: like OpenEXR's own fuzz cases, which its sdist lacks.
        exr_files = [p for _, files in corpora.values() for p in files if p.suffix.lower() == ".exr"]
        scratch = Path(tempfile.mkdtemp(prefix="damaged_exr_"))
        corpora["damaged-exr"] = (scratch, damaged_copies(exr_files, scratch, args.damaged_exr))

    worker = Worker()
    rows: dict[str, list[dict]] = {}
    slowest = (0.0, "")
    for name, (folder, files) in corpora.items():
        rows[name] = []
        for index, path in enumerate(files):
            row, seconds = worker.ask(path, args.timeout_s)
            row["file"] = str(path.relative_to(folder))
            row["outcome"] = outcome(row)
            row["seconds"] = round(seconds, 2)
            rows[name].append(row)
            slowest = max(slowest, (seconds, str(path)))
            if row["outcome"] in ("crash", "hang"):
                worker.stop()
                worker = Worker()
            print(f"\r{name}: {index + 1}/{len(files)}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    worker.stop()

    lines = ["# Foreign corpora through `info --json` and `restore` (bench/foreign_corpus.py)", "",
             f"Command: `.venv/bin/python bench/foreign_corpus.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
             "",
             "| corpus | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    total = collections.Counter()
    for name, corpus_rows in rows.items():
        counts = collections.Counter(row["outcome"] for row in corpus_rows)
        counts["files"] = len(corpus_rows)
        total.update(counts)
        lines.append(f"| {name} | " + " | ".join(str(counts[c]) for c in COLUMNS) + " |")
    lines.append("| **all** | " + " | ".join(f"**{total[c]}**" for c in COLUMNS) + " |")
    lines += ["", f"Slowest file: {slowest[0]:.1f} s ({Path(slowest[1]).name}).", ""]
    bad = [(name, row) for name, corpus_rows in rows.items() for row in corpus_rows
           if row["outcome"] in ("wrong", "crash", "hang")]
    warned = [(name, row) for name, corpus_rows in rows.items() for row in corpus_rows
              if row["outcome"] == "degraded, with a warning"]
    if warned:
        lines += ["## Outputs that differ from the input, with the warning the user got", ""]
        for name, row in warned:
            lines.append(f"- {name}/{row['file']}: {row.get('restore_detail')}; {row['warnings'][0]}")
        lines.append("")
    if bad:
        lines += ["## Wrong, crashed or hung", ""]
        for name, row in bad:
            detail = row.get("read_detail") or row.get("restore_detail") or row.get("info_detail") or row.get(
                "crash") or row.get("worker") or ""
            lines.append(f"- {name}/{row['file']}: {row['outcome']}: {detail}")
        lines.append("")
    reasons = collections.Counter()
    for corpus_rows in rows.values():
        for row in corpus_rows:
            if row["outcome"] in ("refused", "loaded, restore refused"):
                detail = row.get("info_detail") if row["outcome"] == "refused" else row.get("restore_detail")
                reasons[_reason(detail or "")] += 1
    lines += ["## Why files were refused (most common)", "", "| reason | files |", "|---|---|"]
    lines += [f"| {reason} | {count} |" for reason, count in reasons.most_common(15)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "foreign_corpus.md").write_text(text, encoding="utf-8")
        (RESULTS / "foreign_corpus.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 1 if bad else 0


def _reason(detail: str) -> str:
    """An error line without the file name, cut at the first parenthesis: a category to count."""
    text = detail.split(": ", 2)[-1] if detail.startswith("error: ") else detail
    return text.split(" (")[0].split(": ")[0][:80].replace("|", "/")


if __name__ == "__main__":
    sys.exit(main())
