"""``main.py restore INPUT... -o OUTPUT [--model ID] [--set NAME=VALUE]... [--tile N] [--device D] [--ensemble N]``.

Files or folders in; one file out (single input with an image extension) or a folder out. Outputs keep the
input's format, bit depth, alpha, HDR range and metadata. A model that takes a noise level gets each photo's
own estimate unless ``--set noise_level=N`` fixes it (as the app fills its box on opening). A batch shows a
progress bar on the terminal and goes on past a bad file, exiting 1 at the end if any file failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import EngineError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("restore", help="restore images with a model")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    parser.add_argument("-o", "--output", required=True, help="output file (one input) or folder")
    parser.add_argument("--model", help="model id (see `models`); default: the best for the image kind")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", dest="settings", help="model parameter"
    )
    parser.add_argument("--tile", type=int, help="tile edge in pixels (0: automatic)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--ensemble", type=int, choices=(1, 4, 8), default=1, metavar="{1,4,8}",
        help="average the model over 4 mirrored or 8 rotated and mirrored copies (better, 4 / 8 x the time)",
    )
    parser.add_argument("--overwrite", action="store_true", help="allow replacing existing output files")
    parser.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="images restored at once, each with its own share of the cores (many small images: try 2)",
    )
    parser.set_defaults(handler=run)
    return parser


def collect_inputs(items: list[str]) -> list[Path]:
    from ..cli import UsageError
    from ..imageio import folder_images

    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found, companions = folder_images(path)
            if not found:
                raise UsageError(f"{path}: no supported images in this folder")
            if companions:
                first, why = next(iter(companions.items()))
                print(f"{path}: left out {len(companions)} file(s) that go with another image "
                      f"(e.g. {first.name}: {why})", file=sys.stderr)
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise UsageError(f"{path}: no such file or folder")
    return files


def parse_settings(settings: list[str], manifest) -> dict:
    from ..cli import UsageError

    values = {}
    for item in settings:
        name, sep, text = item.partition("=")
        if not sep:
            raise UsageError(f"--set expects NAME=VALUE, got {item!r}")
        try:
            values[name.strip()] = manifest.param(name.strip()).parse(text)
        except KeyError:
            names = ", ".join(p.name for p in manifest.params) or "none"
            raise UsageError(f"model {manifest.id!r} has no parameter {name!r} (it has: {names})") from None
        except ValueError as error:
            raise UsageError(str(error)) from None
    return values


def output_path_for(source: Path, output: Path, batch: bool) -> Path:
    if not batch:
        return output
    return output / source.name


def _progress_bar(fraction: float, label: str) -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    filled = int(round(fraction * width))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}%  {label[:50]:<50}")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..imageio import is_supported, read_image, write_image
    from ..jobs import CancelToken, run_job
    from ..models.registry import ModelRegistry
    from ..noise_estimate import with_estimated_noise_level
    from ..restore import restore_job, suitability_warning

    files = collect_inputs(args.inputs)
    output = Path(args.output)
    batch = len(files) > 1 or any(Path(item).is_dir() for item in args.inputs)
    if batch:
        if output.exists() and not output.is_dir():
            raise UsageError(f"{output}: several inputs need an output folder")
        output.mkdir(parents=True, exist_ok=True)
    elif output.is_dir():
        output = output / files[0].name
        batch = False
    elif not is_supported(output):
        raise UsageError(f"{output}: unsupported output format (use an image extension or a folder)")

    registry = ModelRegistry()
    explicit = registry.get(args.model) if args.model else None
    if explicit is not None:
        settings = parse_settings(args.settings, explicit.manifest)

    def plan(image, source: Path):
        """The model, parameters and target for one file once it is read (printing what the user should know)."""
        entry = explicit or _default_model(registry, image)
        chosen = settings if explicit is not None else parse_settings(args.settings, entry.manifest)
        values, level = with_estimated_noise_level(image, entry.manifest, chosen)
        if level is not None:
            print(f"{source.name}: noise level {level:g} (estimated; --set noise_level=N to choose it)",
                  file=sys.stderr)
        warning = suitability_warning(image, entry.manifest)
        if warning:
            print(f"warning: {source.name}: {warning}", file=sys.stderr)
        target = output_path_for(source, output, batch)
        if target.exists() and not args.overwrite and target.resolve() != source.resolve():
            raise EngineError(f"{target}: already exists (use --overwrite to replace it)")
        return entry, values, target

    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if batch and args.workers > 1:
        return _run_with_workers(files, plan, args)

    failures = 0
    started = time.perf_counter()
    for index, source in enumerate(files):
        label = f"{index + 1}/{len(files)} {source.name}"
        try:
            image = read_image(source)
            entry, values, target = plan(image, source)

            def show(progress, label=label, index=index):
                overall = (index + (progress.fraction or 0.0)) / len(files)
                _progress_bar(overall, label)

            job = restore_job(image, entry, values, tile=args.tile, device=args.device, ensemble=args.ensemble,
                              token=CancelToken(), release_input=True)
            del image  # the job holds the input only while it runs, so writing never needs both in memory
            result = run_job(job, show)
            del job
            write_image(target, result.image)
            if sys.stderr.isatty():
                sys.stderr.write("\r" + " " * 90 + "\r")
            print(f"{source} -> {target}  [{result.label}, {result.device}, {result.seconds:.2f} s]")
        except EngineError as error:
            if not batch:
                raise
            failures += 1
            if sys.stderr.isatty():
                sys.stderr.write("\n")
            print(f"error: {error}", file=sys.stderr)
    if batch:
        done = len(files) - failures
        print(f"{done} of {len(files)} images restored in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 1 if failures else 0


def _run_with_workers(files: list[Path], plan, args: argparse.Namespace) -> int:
    """Several files in flight (engine/batch.py); one line per file as it finishes, in finishing order."""
    from ..batch import restore_files

    started = time.perf_counter()
    done = [0]

    def report(result) -> None:
        done[0] += 1
        if result.ok:
            print(f"{result.source} -> {result.target}  [{result.label}, {result.device}, {result.seconds:.2f} s]")
        else:
            print(f"error: {result.error}", file=sys.stderr)
        _progress_bar(done[0] / len(files), f"{done[0]}/{len(files)} {result.source.name}")

    results = restore_files(files, plan, workers=args.workers, tile=args.tile, device=args.device,
                            ensemble=args.ensemble, on_result=report)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    failures = sum(not r.ok for r in results)
    print(f"{len(files) - failures} of {len(files)} images restored in {time.perf_counter() - started:.1f} s "
          f"({args.workers} at a time)", file=sys.stderr)
    return 1 if failures else 0


def _default_model(registry, image):
    task = "render-denoise" if image.meta.hdr else "photo-denoise"
    entry = registry.default_for(task)
    if entry is None:
        raise EngineError(f"no {task} model is installed; pass --model (see `main.py models`)")
    return entry
