"""Batch restoration: a typed queue of files (or frames of a shot), each restored the same way on any worker.

    items = plan(["shot.####.exr"], "out/shot.####.exr", frames=parse_frames("1001-1100"))
    options = BatchOptions(model_id="render-kprcan-aov", model_sha256="ab12...", tile=512, device="cpu")
    for event in run_local(items, options):   # or engine.ray_batch.run_ray(items, options, "auto")
        print(event)                           # dicts: start / progress / done / skipped / error / finish

The pieces, and who uses them:

- :class:`BatchItem` / :class:`ItemState`: one input and its output, with state, attempts, error and timing
  (the command line today; the window's batch queue is meant to move here).
- :func:`parse_frames`, :func:`expand_pattern`, :func:`plan`: frame ranges (``1001-1100``, ``1-99x2``,
  ``1,5,9-12``) and padding patterns (``####``, ``%04d``) into items, refusing two items with one output.
- :func:`restore_item`: read -> model (pinned by id and sha256, or the suggested one) -> restore -> write
  atomically (engine/imageio/atomic.py: a crash leaves the old file or none, never half a file). The local loop
  and every Ray actor call this one function, so a frame is the same bytes whichever worker ran it, given the
  same tile size and device (the tile is fixed by :meth:`BatchOptions.tile_for`, never sized to free memory).
- :func:`run_local`: the items in this process, one after another; :mod:`engine.ray_batch` spreads them over a
  Ray cluster with the same events.
- :func:`exit_code`: what the run's outcome means to a farm manager (see ``EXIT_*``, docs/farm.md).
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from .errors import EngineError, ModelError

#: Exit codes of ``main.py batch`` (and the errors behind them), for farm managers. See docs/farm.md.
EXIT_OK = 0  #: every item restored or skipped (already there)
EXIT_FAILED = 1  #: at least one item failed while processing (bad input file, write error, out of memory...)
EXIT_USAGE = 2  #: the command line is wrong (bad option, bad frame range, two inputs with one output)
EXIT_MODEL = 3  #: the model is unknown, its file is missing, or it does not match the pinned sha256
EXIT_MISSING_INPUT = 4  #: every failure was an input frame or file that does not exist (a render not finished?)
EXIT_INTERRUPTED = 130  #: interrupted (SIGINT); outputs written so far are complete, the rest can be resumed


class UsageProblem(EngineError):
    """A problem with what was asked (exit 2)."""

    exit_code = EXIT_USAGE


class ModelPinError(ModelError):
    """The model named cannot be used as pinned (exit 3): unknown, missing file, or another sha256."""

    exit_code = EXIT_MODEL


ALREADY_EXISTS = "already exists (use --skip-existing to resume, --overwrite to replace)"


class ItemState(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    #: Stopped by the user before it ended (the window's Cancel); not written, not a failure of the input.
    CANCELLED = "cancelled"


@dataclass
class BatchItem:
    """One input file and where its result goes. ``frame`` is set for items of a frame pattern."""

    source: Path
    target: Path
    frame: int | None = None
    state: ItemState = ItemState.PENDING
    attempts: int = 0
    error: str | None = None
    #: Why it failed, as an exit code (EXIT_FAILED or EXIT_MISSING_INPUT).
    error_code: int | None = None
    seconds: float | None = None
    #: Who ran it last (host:pid), for reports.
    worker: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in (ItemState.DONE, ItemState.SKIPPED, ItemState.FAILED, ItemState.CANCELLED)

    def record(self) -> dict[str, Any]:
        """A JSON-ready summary (paths as strings)."""
        data = asdict(self)
        data.update(source=str(self.source), target=str(self.target), state=self.state.value)
        return data


@dataclass(frozen=True)
class BatchOptions:
    """How every item is restored: the same on every worker (frozen, so it can be shipped to Ray actors)."""

    #: Model id; None: the suggested model for each image's kind.
    model_id: str | None = None
    #: Required sha256 of the model's file (hex); None: not pinned.
    model_sha256: str | None = None
    #: ``NAME=VALUE`` model parameters, as on the command line (parsed against the model's manifest).
    settings: tuple[str, ...] = ()
    #: Tile edge; None: the model's default, or FALLBACK_TILE when that is "automatic" (see tile_for).
    tile: int | None = None
    device: str = "cpu"
    ensemble: int = 1
    overwrite: bool = False
    skip_existing: bool = False

    def tile_for(self, manifest) -> int:
        """The tile edge used for every item: the user's, else the manifest's default, else FALLBACK_TILE.

        Never 0 ("size it to the free memory"): that would give a node with less memory other tiles, and
        other tiles give other bytes where they overlap."""
        from .restore import FALLBACK_TILE

        if self.tile is not None and self.tile > 0:
            return self.tile
        return manifest.tile.default if manifest.tile.default > 0 else FALLBACK_TILE


# ---------------------------------------------------------------------------------------------- frames

_FRAMES = re.compile(r"^(-?\d+)(?:-(-?\d+)(?:[x:](\d+))?)?$")
_PRINTF = re.compile(r"%(0?)(\d*)d")
_HASHES = re.compile(r"#+")


def parse_frames(text: str) -> list[int]:
    """``1001-1100``, ``1-99x2`` (every 2nd; ``:2`` also works), ``1,5,9-12`` -> the frames, in order, unique."""
    frames: list[int] = []
    for part in text.replace(" ", "").split(","):
        match = _FRAMES.match(part)
        if not match:
            raise UsageProblem(f"bad frame range {part!r} (use e.g. 1001-1100, 1-99x2 or 1,5,9-12)")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        step = int(match.group(3) or 1)
        if last < first or step < 1:
            raise UsageProblem(f"bad frame range {part!r}: the end is before the start, or the step is 0")
        frames.extend(range(first, last + 1, step))
    seen: set[int] = set()
    return [f for f in frames if not (f in seen or seen.add(f))]


def is_pattern(text: str) -> bool:
    return bool(_HASHES.search(Path(text).name) or _PRINTF.search(Path(text).name))


def expand_pattern(pattern: str, frame: int) -> str:
    """``shot.####.exr`` / ``shot.%04d.exr`` with frame 7 -> ``shot.0007.exr`` (in the file name only)."""
    folder, name = str(Path(pattern).parent), Path(pattern).name
    if _PRINTF.search(name):
        name = _PRINTF.sub(lambda m: f"{frame:0{int(m.group(2) or 0)}d}", name, count=1)
    else:
        name = _HASHES.sub(lambda m: f"{frame:0{len(m.group(0))}d}", name, count=1)
    return name if folder == "." and not str(pattern).startswith("./") else str(Path(folder) / name)


def frames_on_disk(pattern: str) -> list[int]:
    """The frames of ``pattern`` that exist (for a pattern given without ``--frames``)."""
    path = Path(pattern)
    name = path.name
    token = _PRINTF.search(name) or _HASHES.search(name)
    regex = re.escape(name[: token.start()]) + r"(-?\d+)" + re.escape(name[token.end():])
    compiled = re.compile("^" + regex + "$")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        match = compiled.match(entry.name)
        if match and entry.is_file():
            found.append(int(match.group(1)))
    return sorted(set(found))


def plan(inputs: Sequence[str], output: str, frames: Sequence[int] | None = None) -> list[BatchItem]:
    """Items for ``inputs`` (files, folders, or frame patterns) into ``output`` (a file, a folder or a pattern).

    A pattern input takes ``frames`` (default: the frames found on disk); a missing frame becomes a FAILED item
    (EXIT_MISSING_INPUT) rather than stopping the others. A single non-pattern input may go to a file; anything
    else needs a folder or, for frame patterns, an output pattern."""
    from .imageio import folder_images, is_supported, output_name

    entries: list[tuple[Path, int | None]] = []
    missing: list[tuple[Path, int | None]] = []
    pattern_input = False
    for text in inputs:
        if is_pattern(text):
            pattern_input = True
            chosen = list(frames) if frames else frames_on_disk(text)
            if not chosen:
                raise UsageProblem(f"{text}: no frames found (give --frames, e.g. --frames 1001-1100)")
            for frame in chosen:
                source = Path(expand_pattern(text, frame))
                (entries if source.is_file() else missing).append((source, frame))
            continue
        if frames:
            raise UsageProblem(f"--frames needs a frame pattern such as shot.####.exr or shot.%04d.exr, not {text}")
        path = Path(text)
        if path.is_dir():
            found, _companions = folder_images(path)
            if not found:
                raise UsageProblem(f"{path}: no supported images in this folder")
            entries.extend((p, None) for p in found)
        elif path.exists():
            entries.append((path, None))
        else:
            missing.append((path, None))

    out = Path(output)
    several = len(entries) + len(missing) > 1 or pattern_input or any(Path(t).is_dir() for t in inputs)
    out_is_pattern = is_pattern(output)
    if out_is_pattern and not pattern_input:
        raise UsageProblem(f"{output}: an output pattern needs a frame pattern as input")
    to_folder = not out_is_pattern and (several or out.is_dir() or not out.suffix)
    if not to_folder and not out_is_pattern and not is_supported(out):
        raise UsageProblem(f"{out}: unsupported output format (use an image extension or a folder)")
    if to_folder and out.exists() and not out.is_dir():
        raise UsageProblem(f"{out}: several inputs need an output folder")

    def target(source: Path, frame: int | None) -> Path:
        if out_is_pattern:
            if frame is None:
                raise UsageProblem(f"{source}: an output pattern needs every input to be a frame pattern")
            return Path(expand_pattern(output, frame))
        return out / output_name(source.name) if to_folder else out

    items = [BatchItem(source, target(source, frame), frame) for source, frame in entries]
    for source, frame in missing:
        label = f"frame {frame}: " if frame is not None else ""
        items.append(BatchItem(source, target(source, frame), frame, ItemState.FAILED,
                               error=f"{label}{source}: no such file", error_code=EXIT_MISSING_INPUT))
    items.sort(key=lambda item: (item.frame is None, item.frame or 0, str(item.source)))
    seen: dict[Path, Path] = {}
    for item in items:
        key = item.target.resolve()
        if key in seen:
            raise UsageProblem(f"{seen[key]} and {item.source} would both be written to {item.target}")
        if key == item.source.resolve():
            raise UsageProblem(f"{item.source}: the output would replace the input (choose another output)")
        seen[key] = item.source
    return items


# ---------------------------------------------------------------------------------------------- one item


def parse_settings(settings: Iterable[str], manifest) -> dict:
    """``NAME=VALUE`` strings -> the model's typed parameters (UsageProblem on an unknown name or bad value)."""
    values = {}
    for item in settings:
        name, sep, text = item.partition("=")
        if not sep:
            raise UsageProblem(f"--set expects NAME=VALUE, got {item!r}")
        try:
            values[name.strip()] = manifest.param(name.strip()).parse(text)
        except KeyError:
            names = ", ".join(p.name for p in manifest.params) or "none"
            raise UsageProblem(f"model {manifest.id!r} has no parameter {name!r} (it has: {names})") from None
        except ValueError as error:
            raise UsageProblem(str(error)) from None
    return values


def split_model_spec(spec: str | None, sha256: str | None = None) -> tuple[str | None, str | None]:
    """``ID@sha256:HEX`` (or ``ID`` plus ``--model-sha256 HEX``) -> (id, lower-case hex or None)."""
    model_id, pinned = spec, None
    if spec and "@" in spec:
        model_id, _, digest = spec.partition("@")
        if not digest.startswith("sha256:"):
            raise UsageProblem(f"--model {spec}: pin a model as ID@sha256:HEX")
        pinned = digest[len("sha256:"):]
    if sha256:
        if pinned and pinned.lower() != sha256.lower():
            raise UsageProblem("--model and --model-sha256 name two different checksums")
        pinned = sha256
    if pinned is not None:
        pinned = pinned.lower()
        if not re.fullmatch(r"[0-9a-f]{64}", pinned):
            raise UsageProblem(f"{pinned!r} is not a sha256 (64 hexadecimal digits)")
        if not model_id:
            raise UsageProblem("a pinned sha256 needs a model id (--model ID@sha256:HEX)")
    return model_id or None, pinned


def resolve_model(registry, options: BatchOptions):
    """The pinned model's entry, checked: its manifest and its file both have the pinned sha256.

    None when no model is named (each image then gets the suggested model of its kind)."""
    from .models.registry import file_sha256, verify_model_file

    if not options.model_id:
        return None
    try:
        entry = registry.get(options.model_id)
    except ModelError as error:
        raise ModelPinError(str(error)) from None
    if options.model_sha256:
        if entry.path is None:
            raise ModelPinError(f"model {entry.id!r} is built in (no file): it cannot be pinned by sha256")
        if not entry.path.is_file():
            raise ModelPinError(f"model {entry.id!r}: file {entry.path} is missing")
        actual = file_sha256(entry.path)
        if actual != options.model_sha256:
            raise ModelPinError(f"model {entry.id!r}: {entry.path.name} has sha256 {actual}, "
                                f"not the pinned {options.model_sha256}")
    try:
        verify_model_file(entry)
    except ModelError as error:
        raise ModelPinError(str(error)) from None
    return entry


def suggested_model(registry, image):
    """The model picked for an image when none is named: engine.models.suggest's rule, as in the window and
    ``restore``."""
    from .models.suggest import require_suggestion

    return require_suggestion(registry, image).entry


def restore_item(item: BatchItem, options: BatchOptions, registry, entry=None, token=None) -> BatchItem:
    """Restore one item and write its output atomically; returns a new item (DONE, SKIPPED or FAILED)."""
    from .jobs import run_job

    return run_job(restore_item_steps(item, options, registry, entry, token))


def restore_item_steps(item: BatchItem, options: BatchOptions, registry, entry=None,
                       token=None) -> Generator[float, None, BatchItem]:
    """:func:`restore_item` as a generator yielding the item's completed fraction (per tile).

    Only EngineErrors become FAILED items (with the message); ModelPinError and anything else (a bug, a killed
    process) propagate to the caller, which may retry elsewhere."""
    from .imageio import read_image, write_image
    from .jobs import CancelToken, relay
    from .noise_estimate import with_estimated_noise_level
    from .restore import restore_job

    started = time.perf_counter()
    worker = _worker_name()
    attempts = item.attempts + 1
    if item.target.exists() and options.skip_existing:
        return replace(item, state=ItemState.SKIPPED, attempts=attempts, worker=worker, error=None,
                       error_code=None, seconds=0.0)
    if not item.source.exists():
        return replace(item, state=ItemState.FAILED, attempts=attempts, worker=worker,
                       error=f"{item.source}: no such file", error_code=EXIT_MISSING_INPUT)
    try:
        if item.target.exists() and not options.overwrite:
            raise EngineError(f"{item.target}: {ALREADY_EXISTS}")
        image = read_image(item.source)
        chosen = entry or suggested_model(registry, image)
        settings = parse_settings(options.settings, chosen.manifest)
        values, level = with_estimated_noise_level(image, chosen.manifest, settings)
        job = restore_job(image, chosen, values, tile=options.tile_for(chosen.manifest), device=options.device,
                          ensemble=options.ensemble, token=token or CancelToken())
        del image  # the job holds the input only while it runs
        result = yield from relay(job, lambda progress: float(progress.fraction or 0.0))
        del job
        item.target.parent.mkdir(parents=True, exist_ok=True)
        write_image(item.target, result.image)
    except (ModelPinError, UsageProblem):
        raise
    except EngineError as error:
        return replace(item, state=ItemState.FAILED, attempts=attempts, worker=worker, error=str(error),
                       error_code=EXIT_FAILED, seconds=time.perf_counter() - started)
    details = {"model": result.model_id, "device": result.device, "tile": result.details.get("tile"),
               "label": result.label}
    if level is not None:
        details["noise_level"] = level
    return replace(item, state=ItemState.DONE, attempts=attempts, worker=worker, error=None, error_code=None,
                   seconds=time.perf_counter() - started, details=details)


def retryable(item: BatchItem) -> bool:
    """Whether another attempt (on another worker) may succeed: not for a missing or unreadable input, nor for an
    output that is in the way."""
    if item.state is not ItemState.FAILED:
        return False
    if item.error_code == EXIT_MISSING_INPUT:
        return False
    return not (item.error or "").endswith(ALREADY_EXISTS)


def _worker_name() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


# ---------------------------------------------------------------------------------------------- running


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """One progress event (``--progress json`` prints each as a line of JSON)."""
    return {"event": kind, **fields}


def item_event(item: BatchItem, index: int, total: int) -> dict[str, Any]:
    kind = {ItemState.DONE: "done", ItemState.SKIPPED: "skipped", ItemState.FAILED: "error"}[item.state]
    fields: dict[str, Any] = {"index": index, "total": total, "input": str(item.source), "output": str(item.target),
                              "frame": item.frame, "attempts": item.attempts, "worker": item.worker}
    if item.seconds is not None:
        fields["seconds"] = round(item.seconds, 4)
    if item.state is ItemState.FAILED:
        fields.update(message=item.error, code=item.error_code)
    if item.details:
        fields.update({k: v for k, v in item.details.items() if k in ("model", "device", "tile", "noise_level")})
    return event(kind, **fields)


def start_event(items: Sequence[BatchItem], options: BatchOptions, entry, backend: str, workers: int) -> dict:
    return event("start", total=len(items), backend=backend, workers=workers,
                 model=entry.id if entry is not None else None,
                 sha256=(entry.manifest.sha256 or None) if entry is not None else None,
                 tile=options.tile_for(entry.manifest) if entry is not None else options.tile,
                 device=options.device)


def finish_event(items: Sequence[BatchItem], seconds: float) -> dict[str, Any]:
    counts = {state.value: sum(1 for i in items if i.state is state) for state in ItemState}
    return event("finish", total=len(items), done=counts["done"], skipped=counts["skipped"],
                 failed=counts["failed"], seconds=round(seconds, 3), exit_code=exit_code(items))


def exit_code(items: Sequence[BatchItem]) -> int:
    """EXIT_OK when nothing failed; EXIT_MISSING_INPUT when every failure is a missing input; else EXIT_FAILED."""
    failed = [i for i in items if i.state in (ItemState.FAILED, ItemState.CANCELLED) or not i.finished]
    if not failed:
        return EXIT_OK
    if all(i.error_code == EXIT_MISSING_INPUT for i in failed):
        return EXIT_MISSING_INPUT
    return EXIT_FAILED


def run_local(items: list[BatchItem], options: BatchOptions, registry=None,
              token=None) -> Iterator[dict[str, Any]]:
    """Restore ``items`` here, one after another, yielding events; updates ``items`` in place.

    Events: ``start``, ``progress`` (per tile: index, fraction of the item, overall fraction), then one of
    ``done`` / ``skipped`` / ``error`` per item, and ``finish`` with the counts and the exit code."""
    from .jobs import relay
    from .models.registry import ModelRegistry

    registry = registry or ModelRegistry()
    entry = resolve_model(registry, options)
    if entry is not None:
        parse_settings(options.settings, entry.manifest)  # a bad --set stops the run before any work (exit 2)
    started = time.perf_counter()
    total = len(items)
    yield start_event(items, options, entry, "local", 1)
    for index, item in enumerate(items):
        if item.state is ItemState.FAILED and item.error_code == EXIT_MISSING_INPUT:
            yield item_event(item, index, total)
            continue
        items[index] = replace(item, state=ItemState.RUNNING)
        steps = restore_item_steps(item, options, registry, entry, token)
        items[index] = item = yield from relay(steps, _progress_events(item, index, total))
        yield item_event(item, index, total)
    yield finish_event(items, time.perf_counter() - started)


def _progress_events(item: BatchItem, index: int, total: int, interval_s: float = 0.5):
    """The ``progress`` event for one of ``item``'s completed fractions, or None within ``interval_s`` of the last
    (a few lines a second at most; the first fraction always has its event)."""
    last = [float("-inf")]

    def progress(fraction: float) -> dict[str, Any] | None:
        now = time.monotonic()
        if now - last[0] < interval_s:
            return None
        last[0] = now
        return event("progress", index=index, total=total, input=str(item.source), frame=item.frame,
                     fraction=round(fraction, 4), overall=round((index + fraction) / total, 4))

    return progress
