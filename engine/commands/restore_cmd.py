"""``main.py restore INPUT... -o OUTPUT [--model ID] [--then ID]... [--set NAME=VALUE]... [--tile N] [--device D]
[--ensemble N]``.

Files or folders in; one file out (single input with an image extension) or a folder out. Outputs keep the
input's format, bit depth, alpha, HDR range and metadata. A model that takes a noise level gets each photo's
own estimate unless ``--set noise_level=N`` fixes it (as the app fills its box on opening). A batch shows a
progress bar on the terminal and goes on past a bad file, exiting 1 at the end if any file failed.

``--then ID`` (repeatable) runs more models after the first as one chain (engine/chain.py), e.g.
``--model photo-denoise-color --then sr-x2``: denoise, then upscale, one output. ``--set NAME=VALUE`` goes to
every model of the chain that has that parameter.

A shot (a frame pattern such as ``shot_####.exr``, a folder of EXR frames, or any input with ``--frames``) is
restored frame by frame by engine/commands/restore_shot_cmd.py: skipping finished frames, resumable.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import EngineError
from ..jobs import EtaClock
from .progress_bar import clear_bar, draw_bar


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("restore", help="restore images with a model")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files or folders, or one shot: a frame pattern (shot_####.exr) or folder of frames")
    parser.add_argument("-o", "--output", required=True,
                        help="output file (one input) or folder; for a shot a pattern (out/shot_####.exr) or folder")
    parser.add_argument("--frames", help="frames of a shot: 1001-1100, 1-99x2, 1,5,9-12 (default: those on disk)")
    parser.add_argument("--model", help="model id (see `models`); default: the best for the image kind")
    parser.add_argument("--then", action="append", default=[], metavar="ID", dest="then",
                        help="run this model on the result next, as one chain (repeatable; e.g. --then sr-x2)")
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
        "--smooth", type=float, default=None, metavar="WEIGHT",
        help="a shot: the weight of the previous frame's result, warped by the motion pass, in each frame's (less "
             "flicker; on by default at the measured weight, 0 turns it off)",
    )
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
    from ..batch import UsageProblem
    from ..batch import parse_settings as parse  # one parser for restore and batch
    from ..cli import UsageError

    try:
        return parse(settings, manifest)
    except UsageProblem as error:  # a usage error stops the whole run (exit 2), not just one file
        raise UsageError(str(error)) from None


def resolve_model(registry, model_id: str):
    """The registry entry of ``model_id``; an unknown id is a usage error that suggests the nearest names."""
    import difflib

    from ..cli import UsageError
    from ..errors import ModelError

    try:
        return registry.get(model_id)
    except ModelError:
        known = sorted(entry.id for entry in registry.models())
        close = difflib.get_close_matches(model_id, known, n=3, cutoff=0.5)
        hint = f": did you mean {' or '.join(close)}?" if close else ""
        raise UsageError(f"unknown model {model_id!r}{hint} (`main.py models` describes them; known: "
                         f"{', '.join(known)})") from None


def chain_settings(settings: list[str], manifests: list) -> list[dict]:
    """``--set`` values for each model of a chain: a NAME=VALUE goes to every model that has NAME."""
    from ..cli import UsageError

    values: list[dict] = [{} for _ in manifests]
    for item in settings:
        name = item.partition("=")[0].strip()
        owners = [i for i, manifest in enumerate(manifests) if name in {p.name for p in manifest.params}]
        if not owners and len(manifests) > 1:
            raise UsageError(f"no model of the chain ({', '.join(m.id for m in manifests)}) has a parameter "
                             f"{name!r}")
        if not owners or "=" not in item:
            parse_settings([item], manifests[0])  # raises the usual message
        for i in owners:
            values[i].update(parse_settings([item], manifests[i]))
    return values


def output_path_for(source: Path, output: Path, batch: bool) -> Path:
    from ..imageio import output_name

    if not batch:
        return output
    return output / output_name(source.name)  # a camera raw file's result is a TIFF


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..imageio import is_supported, output_name, read_image, write_image
    from ..imageio.atomic import claim_output
    from ..imageio.pages import page_count, read_page, write_pages
    from ..models.registry import ModelRegistry
    from ..models.suggest import require_suggestion

    shot = shot_input(args)
    if shot is not None:
        return _run_shot(args, shot)
    if args.smooth is not None:
        raise UsageError("--smooth blends a shot's frames: give a frame pattern (shot_####.exr), a folder of "
                         "frames or --frames")
    files = collect_inputs(args.inputs)
    output = Path(args.output)
    batch = len(files) > 1 or any(Path(item).is_dir() for item in args.inputs)
    if batch:
        if output.exists() and not output.is_dir():
            raise UsageError(f"{output}: several inputs need an output folder")
        output.mkdir(parents=True, exist_ok=True)
    elif output.is_dir():
        output = output_path_for(files[0], output, True)
        batch = False
    elif not is_supported(output) or output_name(output) != output:
        raise UsageError(f"{output}: unsupported output format (use an image extension or a folder; camera raw "
                         "files are read only: a raw's result is a 16-bit .tif)")

    registry = ModelRegistry()
    for problem in registry.problems:  # a bad user model is named once and skipped; the others work
        print(f"warning: {problem}", file=sys.stderr)
    explicit = resolve_model(registry, args.model) if args.model else None
    then = [resolve_model(registry, model_id) for model_id in args.then]
    if then:
        from ..chain import ChainStep, check_chain

        try:
            check_chain([ChainStep(entry) for entry in ([explicit] if explicit else []) + then])
        except EngineError as error:
            raise UsageError(str(error)) from None
    if explicit is not None:
        settings, *then_settings = chain_settings(args.settings, [explicit.manifest] + [e.manifest for e in then])
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if batch and args.workers > 1:
        if then:
            raise UsageError("--then runs one image at a time: leave out --workers")

        def plan(image, source: Path):
            """The model, parameters and target for one file once it is read (saying what the user should know)."""
            entry = explicit or require_suggestion(registry, image).entry
            chosen = settings if explicit is not None else chain_settings(args.settings, [entry.manifest])[0]
            values = _chosen_values(image, source.name, entry, chosen)
            target = output_path_for(source, output, batch)
            refuse_input_as_output(source, target)
            if target.exists() and not args.overwrite:
                raise EngineError(f"{target}: already exists (use --overwrite to replace it)")
            return entry, values, target

        return _run_with_workers(files, plan, args)

    failures = 0
    started = time.perf_counter()
    clock = EtaClock()  # the time left of the whole run, on the bar
    for index, source in enumerate(files):
        label = f"{index + 1}/{len(files)} {source.name}"
        target = output_path_for(source, output, batch)
        try:
            refuse_input_as_output(source, target)  # before the work, not after it
            # The output name is claimed before the work starts: of several runs aiming at one new file, one
            # wins and the others stop at once with a clear error (write_image's no-clobber publish backs it up).
            with claim_output(target, overwrite=args.overwrite):
                image = read_image(source)
                entry = explicit
                if explicit is None:
                    suggestion = require_suggestion(registry, image)
                    entry = suggestion.entry
                    print(f"{source.name}: model {entry.id} ({suggestion.reason}; --model to choose another)",
                          file=sys.stderr)
                    settings, *then_settings = chain_settings(args.settings,
                                                              [entry.manifest] + [e.manifest for e in then])
                after = list(zip(then, then_settings, strict=True))
                pages = page_count(image)

                def show(progress, page=0, label=label, index=index, pages=pages):
                    overall = (index + (page + (progress.fraction or 0.0)) / pages) / len(files)
                    draw_bar(overall, label, eta_s=clock.eta(overall))

                if pages == 1:
                    result = restore_one(image, source.name, entry, settings, after, args, show)
                    del image  # the job held the input only while it ran: writing never needs both in memory
                    write_image(target, result.image, overwrite=args.overwrite)
                else:
                    del image
                    results = []

                    def restored_pages(pages=pages, source=source, entry=entry, settings=settings, after=after,
                                       show=show, results=results):
                        # Read, restore and hand over one page at a time: a long scan never sits in memory whole.
                        for page in range(pages):
                            result = restore_one(read_page(source, page), f"{source.name} page {page + 1}", entry,
                                                 settings, after, args, lambda p, page=page: show(p, page))
                            results.append(result)
                            yield result.image

                    write_pages(target, restored_pages(), overwrite=args.overwrite)
                    result = results[-1]
            clear_bar()
            for warning in result.details.get("warnings", ()):
                print(f"warning: {source.name}: {warning}", file=sys.stderr)
            pages_note = f", {pages} pages" if pages > 1 else ""
            print(f"{source} -> {target}  [{result.label}, {result.device}, {result.seconds:.2f} s{pages_note}]")
        except EngineError as error:
            if not batch:
                raise
            failures += 1
            clear_bar()
            print(f"error: {error}", file=sys.stderr)
    if batch:
        done = len(files) - failures
        print(f"{done} of {len(files)} images restored in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 1 if failures else 0


def shot_input(args: argparse.Namespace):
    """The shot the inputs name, or None for files and folders restored one by one: a frame pattern, any input with
    ``--frames``, or a folder holding one numbered sequence of EXR frames (a folder of photos stays a batch: each
    photo gets its own noise estimate)."""
    from ..cli import UsageError
    from ..shot import ShotError, find_shot, folder_is_shot, normalise_pattern

    patterns = [item for item in args.inputs if normalise_pattern(item)[0] is not None]
    if patterns or args.frames:
        if len(args.inputs) != 1:
            raise UsageError("a shot is restored on its own: give one frame pattern or folder of frames")
        shot = find_shot(args.inputs[0], args.frames)
        if shot is None:
            if patterns:
                raise UsageError(f"{args.inputs[0]}: no frames found (give --frames, e.g. --frames 1001-1100)")
            raise UsageError(f"--frames needs a frame pattern such as shot_####.exr, a folder of frames or a frame "
                             f"of a sequence, not {args.inputs[0]}")
        return shot
    if len(args.inputs) == 1 and Path(args.inputs[0]).is_dir():
        try:
            shot = find_shot(args.inputs[0])
        except ShotError:  # several sequences: restored as a folder of files
            return None
        if shot is not None and folder_is_shot(shot):
            collect_inputs(args.inputs)  # says which sidecars and references it leaves out, as for files
            return shot
    return None


def _run_shot(args: argparse.Namespace, shot) -> int:
    """The model and parameters for a shot (named, or suggested for its first frame), then the frames."""
    from ..batch import EXIT_MISSING_INPUT
    from ..cli import UsageError
    from ..imageio import read_image
    from ..models.registry import ModelRegistry
    from ..models.suggest import require_suggestion
    from ..shot import output_pattern
    from .restore_shot_cmd import run_shot

    if args.then:
        raise UsageError("--then is not available for shots; restore the shot, then run the next model on its output")
    if args.workers != 1:
        raise UsageError("a shot is restored one frame after another: leave out --workers")
    if args.tile is not None and args.tile < 0:
        raise UsageError("--tile must be 0 or more")
    output_pattern(shot, args.output)  # a bad output stops before any work (exit 2)
    registry = ModelRegistry()
    for problem in registry.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if args.model:
        entry = resolve_model(registry, args.model)
    else:
        if not shot.present:
            print(f"error: {shot.label}: none of its frames exists", file=sys.stderr)
            return EXIT_MISSING_INPUT
        first = shot.present[0]
        suggestion = require_suggestion(registry, read_image(shot.path(first)))
        entry = suggestion.entry
        print(f"{shot.name}: model {entry.id} ({suggestion.reason}, on frame {first}; --model to choose another)",
              file=sys.stderr)
    return run_shot(args, shot, entry, parse_settings(args.settings, entry.manifest), registry)


def refuse_input_as_output(source: Path, target: Path) -> None:
    """An input is never overwritten: refuse at once, before any work, when the output is the input file."""
    from ..imageio import _same_file

    if _same_file(target, source):
        raise EngineError(f"{target}: refusing to overwrite the input file (choose another output)")


def restore_one(image, name: str, entry, settings: dict, after, args: argparse.Namespace, show):
    """Restore one image (or one page) with ``entry``, then each ``(model, settings)`` of ``after`` in turn (a
    chain, ``--then``): the photo's own noise estimate unless the user fixed it, the warnings a user should see on
    stderr, then the job. Returns the job's result."""
    from ..jobs import CancelToken, run_job
    from ..restore import restore_job

    values = _chosen_values(image, name, entry, settings)
    if after:
        from ..chain import ChainStep, chain_job

        steps = [ChainStep(entry, values)] + [ChainStep(model, model_settings) for model, model_settings in after]
        job = chain_job(image, steps, tile=args.tile, device=args.device, ensemble=args.ensemble,
                        token=CancelToken())
    else:
        job = restore_job(image, entry, values, tile=args.tile, device=args.device, ensemble=args.ensemble,
                          token=CancelToken(), release_input=True)
    del image
    return run_job(job, show)


def _chosen_values(image, name: str, entry, settings: dict) -> dict:
    """The parameters ``entry`` runs with on ``image``: the photo's own noise estimate unless the user fixed it,
    with the warnings a user should see on stderr."""
    from ..noise_estimate import wants_noise_level, with_estimated_noise_level
    from ..restore import suitability_warning

    for message in image.meta.extra.get("decoder_warnings", ()):
        _say(f"warning: {name}: the decoder reported: {message}")
    values, level = with_estimated_noise_level(image, entry.manifest, settings)
    if level is not None:
        _say(f"{name}: noise level {level:g} (estimated; --set noise_level=N to choose it)")
    elif wants_noise_level(entry.manifest) and "noise_level" not in settings:
        # Not measurable, or the estimate was unsure: say so rather than pass a wrong level off as its own.
        used = values.get("noise_level", entry.manifest.param("noise_level").default)
        _say(f"{name}: cannot tell its noise level; using {used:g} (--set noise_level=N to choose it)")
    warning = suitability_warning(image, entry.manifest)
    if warning:
        _say(f"warning: {name}: {warning}")
    return values


def _say(text: str) -> None:
    """One line on stderr, whole: the bar cleared first, and never while another thread's decode captures the
    console (``--workers``: the line would be taken for that file's decoder message)."""
    from ..imageio import CONSOLE_LOCK

    with CONSOLE_LOCK:
        clear_bar()
        print(text, file=sys.stderr, flush=True)


def _run_with_workers(files: list[Path], plan, args: argparse.Namespace) -> int:
    """Several files in flight (engine/inflight.py); one line per file as it finishes, in finishing order."""
    from ..imageio import CONSOLE_LOCK
    from ..inflight import restore_files

    started = time.perf_counter()
    clock = EtaClock()
    done = [0]

    def report(result) -> None:  # from the worker that finished, while others may be decoding: CONSOLE_LOCK
        done[0] += 1
        with CONSOLE_LOCK:
            clear_bar()  # the file's line replaces the bar, which is drawn again below it
            if result.ok:
                print(f"{result.source} -> {result.target}  [{result.label}, {result.device}, "
                      f"{result.seconds:.2f} s]", flush=True)
            else:
                print(f"error: {result.error}", file=sys.stderr, flush=True)
            draw_bar(done[0] / len(files), f"{done[0]}/{len(files)} {result.source.name}",
                     eta_s=clock.eta(done[0] / len(files)))

    results = restore_files(files, plan, workers=args.workers, tile=args.tile, device=args.device,
                            ensemble=args.ensemble, on_result=report, overwrite=args.overwrite)
    clear_bar()
    failures = sum(not r.ok for r in results)
    print(f"{len(files) - failures} of {len(files)} images restored in {time.perf_counter() - started:.1f} s "
          f"({args.workers} at a time)", file=sys.stderr)
    return 1 if failures else 0
