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
    from ..imageio.atomic import claim_output
    from ..imageio.pages import page_count, read_page, write_pages
    from ..models.registry import ModelRegistry

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
    for problem in registry.problems:  # a bad user model is named once and skipped; the others work
        print(f"warning: {problem}", file=sys.stderr)
    explicit = registry.get(args.model) if args.model else None
    if explicit is not None:
        settings = parse_settings(args.settings, explicit.manifest)

    failures = 0
    started = time.perf_counter()
    for index, source in enumerate(files):
        label = f"{index + 1}/{len(files)} {source.name}"
        target = output_path_for(source, output, batch)
        try:
            refuse_input_as_output(source, target)  # before the work, not after it
            # The output name is claimed before the work starts: of several runs aiming at one new file, one
            # wins and the others stop at once with a clear error (write_image's no-clobber publish backs it up).
            with claim_output(target, overwrite=args.overwrite):
                image = read_image(source)
                entry = explicit or _default_model(registry, image)
                if explicit is None:
                    settings = parse_settings(args.settings, entry.manifest)
                pages = page_count(image)

                def show(progress, page=0, label=label, index=index, pages=pages):
                    overall = (index + (page + (progress.fraction or 0.0)) / pages) / len(files)
                    _progress_bar(overall, label)

                if pages == 1:
                    result = restore_one(image, source.name, entry, settings, args, show)
                    del image  # the job held the input only while it ran: writing never needs both in memory
                    write_image(target, result.image, overwrite=args.overwrite)
                else:
                    del image
                    results = []

                    def restored_pages(pages=pages, source=source, entry=entry, settings=settings, show=show,
                                       results=results):
                        # Read, restore and hand over one page at a time: a long scan never sits in memory whole.
                        for page in range(pages):
                            result = restore_one(read_page(source, page), f"{source.name} page {page + 1}", entry,
                                                 settings, args, lambda p, page=page: show(p, page))
                            results.append(result)
                            yield result.image

                    write_pages(target, restored_pages(), overwrite=args.overwrite)
                    result = results[-1]
            if sys.stderr.isatty():
                sys.stderr.write("\r" + " " * 90 + "\r")
            pages_note = f", {pages} pages" if pages > 1 else ""
            print(f"{source} -> {target}  [{result.label}, {result.device}, {result.seconds:.2f} s{pages_note}]")
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


def refuse_input_as_output(source: Path, target: Path) -> None:
    """An input is never overwritten: refuse at once, before any work, when the output is the input file."""
    from ..imageio import _same_file

    if _same_file(target, source):
        raise EngineError(f"{target}: refusing to overwrite the input file (choose another output)")


def restore_one(image, name: str, entry, settings: dict, args: argparse.Namespace, show):
    """Restore one image (or one page) with ``entry``: the photo's own noise estimate unless the user fixed it,
    the warnings a user should see on stderr, then the job. Returns the job's result."""
    from ..jobs import CancelToken, run_job
    from ..noise_estimate import with_estimated_noise_level
    from ..restore import restore_job, suitability_warning

    for message in image.meta.extra.get("decoder_warnings", ()):
        print(f"warning: {name}: the decoder reported: {message}", file=sys.stderr)
    values, level = with_estimated_noise_level(image, entry.manifest, settings)
    if level is not None:
        print(f"{name}: noise level {level:g} (estimated; --set noise_level=N to choose it)", file=sys.stderr)
    warning = suitability_warning(image, entry.manifest)
    if warning:
        print(f"warning: {name}: {warning}", file=sys.stderr)
    job = restore_job(image, entry, values, tile=args.tile, device=args.device, ensemble=args.ensemble,
                      token=CancelToken())
    del image
    return run_job(job, show)


def _default_model(registry, image):
    task = "render-denoise" if image.meta.hdr else "photo-denoise"
    entry = registry.default_for(task)
    if entry is None:
        raise EngineError(f"no {task} model is installed; pass --model (see `main.py models`)")
    return entry
