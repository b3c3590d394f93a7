"""Shots: a numbered sequence of frames (``shot_####.exr``) as one thing to open, describe and restore.

    shot = find_shot("renders/shot_####.exr", "1001-1100")     # or a folder of frames, or one frame of it
    shot.label                     # "shot_####.exr (1001-1100, 100 frames, 2 missing)"
    request = ShotRestoreRequest(shot, "out/shot_####.exr")    # or an output folder
    result = run_job(restore_shot(request))                    # Progress per tile and per frame, then the result

How a shot is found (:func:`find_shot`): a pattern (``####``, ``%04d``, Houdini's ``$F4``, RV's
``shot.1001-1100#.exr`` where ``#`` is four digits and ``@`` one, or Nuke's ``shot.####.exr 1001-1100``); a folder
holding one numbered sequence; or one frame whose name ends in a number and has numbered siblings. Without
requested frames a shot spans its first to its last frame on disk (every n-th frame when all of them are n apart):
the frames in between that are not there are its ``missing`` ones. Padding patterns and frame ranges are
engine/batch.py's (one parser for ``batch`` and ``restore``).

How a shot is restored (:func:`restore_shot`): frame by frame in order, each written atomically with the same
writer as ``restore`` (an EXR keeps its passes); a frame whose output exists is skipped (it is complete: outputs are
published whole), so running the same request again after a crash or a cancel restores only what is left. A missing
input frame is reported and skipped. The model, the tile size and an estimated noise level are fixed for the whole
shot (chosen on its first frame), so the frames are restored alike.

A temporal model (its manifest's ``inputs`` list engine/motion.py's :data:`TEMPORAL_INPUTS`) gets, for frame t,
frame t - 1's noisy colour and restored output warped onto frame t by frame t's motion pass
(:func:`engine.motion.temporal_layers`). The previous frame is the frame number t - 1 only: after a gap, a missing or
failed frame, or with every other frame, a new run starts. When a run resumes, frame t - 1's output is read back
from its file.

With ``smoothing`` (any model), each restored frame is blended with frame t - 1's result warped onto it where the
motion pass is trusted (engine/temporal_filter.py: less flicker); the same rules for t - 1 apply, and frames without
a usable motion pass are left as restored.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from .batch import (
    _PRINTF,
    EXIT_FAILED,
    EXIT_MISSING_INPUT,
    EXIT_OK,
    UsageProblem,
    expand_pattern,
    frames_on_disk,
    is_pattern,
    parse_frames,
)
from .errors import EngineError, JobCancelled, ModelError
from .jobs import CancelToken, EtaClock, Progress, relay
from .temporal_filter import DEFAULT_STRENGTH

#: Houdini's ``$F`` / ``$F4``.
_HOUDINI = re.compile(r"\$F(\d*)")
#: RV / DJV: ``shot.1001-1100#.exr`` (``#``: four digits each, ``@``: one digit each).
_RV = re.compile(r"(-?\d+)-(-?\d+)([#@]+)")
#: Nuke's file knob: ``shot.####.exr 1001-1100``.
_NUKE_RANGE = re.compile(r"^(.*\S)\s+(-?\d+)-(-?\d+)$")
#: A file name ending in a frame number: prefix, digits, extension.
_NUMBERED = re.compile(r"^(.*?)(\d+)(\.[A-Za-z0-9]+)$")


class ShotError(UsageProblem):
    """What was given is not a shot that can be restored as asked (exit 2)."""


# ---------------------------------------------------------------------------------------------- finding


def normalise_pattern(text: str) -> tuple[str | None, list[int] | None]:
    """(the pattern with ``#`` padding, frames it names) for the pattern spellings above; (None, None) if none.

    ``shot.%04d.exr`` -> ``shot.####.exr``; ``shot.$F4.exr`` -> ``shot.####.exr``; ``shot.1001-1100#.exr`` ->
    (``shot.####.exr``, 1001..1100); ``shot.####.exr 1001-1100`` -> the same."""
    text = str(text)
    frames: list[int] | None = None
    nuke = _NUKE_RANGE.match(text)
    if nuke and is_pattern(nuke.group(1)):
        text, frames = nuke.group(1), list(range(int(nuke.group(2)), int(nuke.group(3)) + 1))
    folder, name = os.path.split(text)
    rv = _RV.search(name)
    if rv:
        marks = rv.group(3)
        width = 4 * marks.count("#") + marks.count("@")
        first, last = int(rv.group(1)), int(rv.group(2))
        if last < first:
            raise ShotError(f"{text}: the frame range ends before it starts")
        name = name[: rv.start()] + "#" * width + name[rv.end():]
        frames = list(range(first, last + 1))
    name = _HOUDINI.sub(lambda m: "#" * int(m.group(1) or 1), name, count=1)
    name = _PRINTF.sub(lambda m: "#" * int(m.group(2) or 1), name, count=1)
    if not is_pattern(name):
        return None, None
    return os.path.join(folder, name) if folder else name, frames


def _absolute(pattern: str) -> str:
    folder, name = os.path.split(pattern)
    return os.path.join(os.path.abspath(folder or "."), name)


def present_frames(pattern: str) -> list[int]:
    """The frames of ``pattern`` whose file exists under exactly the name the pattern gives (padding included)."""
    return [f for f in frames_on_disk(pattern) if Path(expand_pattern(pattern, f)).is_file()]


def _span(found: Sequence[int]) -> tuple[int, ...]:
    """The frames a sequence should have: first to last, every n-th when all frames found are n apart."""
    found = sorted(set(found))
    if len(found) < 2:
        return tuple(found)
    step = 0
    for a, b in zip(found, found[1:], strict=False):
        step = math.gcd(step, b - a)
    return tuple(range(found[0], found[-1] + 1, max(step, 1)))


def format_frames(frames: Iterable[int]) -> str:
    """The inverse of :func:`engine.batch.parse_frames`: ``1001-1100``, ``1-99x2``, ``1,5,9-12`` ("" for none)."""
    frames = sorted(set(frames))
    if not frames:
        return ""
    if len(frames) > 2:
        step = frames[1] - frames[0]
        if step > 1 and all(b - a == step for a, b in zip(frames, frames[1:], strict=False)):
            return f"{frames[0]}-{frames[-1]}x{step}"
    runs: list[str] = []
    start = previous = frames[0]
    for frame in frames[1:] + [None]:
        if frame is not None and frame == previous + 1:
            previous = frame
            continue
        runs.append(str(start) if start == previous else f"{start}-{previous}")
        if frame is not None:
            start = previous = frame
    return ",".join(runs)


@dataclass(frozen=True)
class Shot:
    """A numbered sequence of frames: ``pattern`` (absolute, ``#`` padding) and the frames it covers, in order.

    ``frames`` are those requested, or first to last of those on disk; ``missing`` the ones among them with no file
    (when the shot was found; :meth:`refresh` looks again)."""

    pattern: str
    frames: tuple[int, ...]
    missing: tuple[int, ...] = ()

    @classmethod
    def of(cls, pattern: str, frames: Iterable[int]) -> Shot:
        """A shot of ``pattern`` over ``frames`` (sorted, unique), its missing frames looked up on disk."""
        pattern = _absolute(pattern)
        ordered = tuple(sorted(set(int(f) for f in frames)))
        missing = tuple(f for f in ordered if not Path(expand_pattern(pattern, f)).is_file())
        return cls(pattern, ordered, missing)

    def path(self, frame: int) -> Path:
        return Path(expand_pattern(self.pattern, frame))

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self):
        return iter(self.frames)

    def __contains__(self, frame: object) -> bool:
        return frame in self.frames

    @property
    def first(self) -> int:
        return self.frames[0]

    @property
    def last(self) -> int:
        return self.frames[-1]

    @property
    def name(self) -> str:
        return Path(self.pattern).name

    @property
    def folder(self) -> Path:
        return Path(self.pattern).parent

    @property
    def present(self) -> tuple[int, ...]:
        """The frames that have a file."""
        missing = set(self.missing)
        return tuple(f for f in self.frames if f not in missing)

    @property
    def label(self) -> str:
        """``shot_####.exr (1001-1100, 100 frames, 2 missing)``."""
        count = f"{len(self.frames)} frame{'s' if len(self.frames) != 1 else ''}"
        missing = f", {len(self.missing)} missing" if self.missing else ""
        return f"{self.name} ({format_frames(self.frames)}, {count}{missing})"

    def refresh(self) -> Shot:
        """The same shot with its missing frames looked up again (a render still running)."""
        return Shot.of(self.pattern, self.frames)

    def with_frames(self, frames: Iterable[int] | str) -> Shot:
        """This sequence over other frames (``"1001-1050"`` or numbers)."""
        return Shot.of(self.pattern, parse_frames(frames) if isinstance(frames, str) else frames)


def _requested(frames: str | Iterable[int] | None) -> list[int] | None:
    if frames is None:
        return None
    chosen = parse_frames(frames) if isinstance(frames, str) else [int(f) for f in frames]
    if not chosen:
        raise ShotError("no frames requested")
    return chosen


#: Frame formats whose numbered folders are shots (renders); other numbered images in a folder (photos, scans)
#: are restored one by one, each with its own noise estimate.
SHOT_FOLDER_FORMATS = (".exr",)


def folder_is_shot(shot: Shot) -> bool:
    """Whether a *folder* whose frames form ``shot`` opens (window) and restores (``restore``) as one shot: when
    its frames are renders (EXR). The one place this rule lives."""
    return shot.name.lower().endswith(SHOT_FOLDER_FORMATS)


def find_shot(path_or_pattern: str | os.PathLike[str], frames: str | Iterable[int] | None = None) -> Shot | None:
    """The shot ``path_or_pattern`` names (see the module docstring), over ``frames`` (``"1001-1100"``, or
    numbers; default: those on disk). None when it names no sequence: a lone file, a folder without one, a pattern
    with no frame on disk and none requested.

    Raises ShotError for a folder holding several sequences (give a pattern then) and for a bad frame range."""
    requested = _requested(frames)
    pattern, named = normalise_pattern(str(path_or_pattern))
    if pattern is None:
        path = Path(path_or_pattern)
        if path.is_dir():
            pattern = _folder_sequence(path)
        elif path.is_file():
            pattern = sequence_of(path)
        if pattern is None:
            return None
    chosen = requested or named
    if chosen:
        return Shot.of(pattern, chosen)
    found = present_frames(pattern)
    return Shot.of(pattern, _span(found)) if found else None


def _pattern_for(folder: Path, prefix: str, digits: str, suffix: str, siblings: Iterable[str]) -> str:
    """The pattern of the file ``prefix + digits + suffix``: its padding from its own digits and its siblings'."""
    width = len(digits)
    same_width = [s for s in siblings if len(s) == width]
    padded = digits.startswith("0") and width > 1 or any(s.startswith("0") for s in same_width)
    if not padded and any(len(s) != width and not s.startswith("0") for s in siblings):
        width = 1  # 1, 10, 100: no padding
    return str(folder / f"{prefix}{'#' * width}{suffix}")


def sequence_of(path: str | os.PathLike[str]) -> str | None:
    """The pattern of the sequence the file ``path`` is a frame of, or None when it has no numbered sibling."""
    path = Path(path)
    match = _NUMBERED.match(path.name)
    if not match:
        return None
    prefix, digits, suffix = match.groups()
    folder = path.parent
    siblings = []
    for entry in folder.iterdir():
        other = _NUMBERED.match(entry.name)
        if other and other.group(1) == prefix and other.group(3) == suffix and entry.is_file():
            siblings.append(other.group(2))
    pattern = _pattern_for(folder, prefix, digits, suffix, siblings)
    present = present_frames(pattern)
    return pattern if len(present) >= 2 and int(digits) in present else None


def _folder_sequence(folder: Path) -> str | None:
    """The pattern of the one numbered sequence in ``folder`` (render AOV sidecars and references left out)."""
    from .imageio import folder_images

    found, _companions = folder_images(folder)
    groups: dict[tuple[str, str], list[str]] = {}
    for path in found:
        match = _NUMBERED.match(path.name)
        if match:
            groups.setdefault((match.group(1), match.group(3)), []).append(match.group(2))
    patterns = []
    for (prefix, suffix), numbers in sorted(groups.items()):
        if len(numbers) < 2:
            continue
        numbers.sort(key=lambda s: (len(s), s))
        pattern = _pattern_for(folder, prefix, numbers[0], suffix, numbers)
        if len(present_frames(pattern)) >= 2:
            patterns.append(pattern)
    if len(patterns) > 1:
        names = ", ".join(Path(p).name for p in patterns)
        raise ShotError(f"{folder}: several sequences in this folder ({names}); give one as a pattern")
    return patterns[0] if patterns else None


# ---------------------------------------------------------------------------------------------- restoring


class FrameState(str, Enum):
    RESTORED = "restored"
    #: Its output already existed (a finished frame of an earlier run): left as it is.
    SKIPPED = "skipped"
    #: Its input frame does not exist (a render not finished?).
    MISSING = "missing"
    FAILED = "failed"
    #: Not reached: the run was asked to stop (``token.request_stop()``) before it.
    STOPPED = "stopped"


@dataclass(frozen=True)
class FrameOutcome:
    frame: int
    source: Path
    output: Path
    state: FrameState
    seconds: float = 0.0
    #: Why it failed or was left out ("" when restored).
    message: str = ""


@dataclass(frozen=True)
class ShotRestoreRequest:
    """What to restore: ``shot`` into ``output`` (a pattern such as ``out/shot_####.exr``, or a folder: the
    frames keep their names), with ``model_id`` (None: the model engine/models/suggest.py suggests for the first
    frame) and its typed ``params``. ``tile``: None for the model's default (fixed for the shot, as ``batch`` does).
    ``overwrite``: restore frames whose output exists instead of skipping them."""

    shot: Shot
    output: str
    model_id: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    tile: int | None = None
    device: str = "auto"
    overwrite: bool = False
    ensemble: int = 1
    #: Temporal smoothing (engine/temporal_filter.py): the weight of the previous frame's result, warped by the
    #: motion pass, in each frame's result; 0: off; None: engine.temporal_filter.DEFAULT_STRENGTH for a per-frame
    #: model (on held-out Cycles shots it lowered flicker and per-frame error alike, bench/results/flicker_smooth.md),
    #: off for a temporal model (it sees the previous frame itself).
    smoothing: float | None = None

    def output_pattern(self) -> str:
        """Where the frames go (absolute, ``#`` padding); ShotError for an output that cannot take a shot."""
        return output_pattern(self.shot, self.output)

    def output_path(self, frame: int) -> Path:
        """The output file of ``frame`` (the viewer opens it when the frame's ``restored`` progress arrives)."""
        return Path(expand_pattern(self.output_pattern(), frame))


@dataclass(frozen=True)
class ShotRestoreResult:
    shot: Shot
    #: Where the frames went (absolute, ``#`` padding): ``Shot.of(output_pattern, ...)`` plays them.
    output_pattern: str
    model_id: str
    frames: tuple[FrameOutcome, ...]
    #: Things the user should know once (no usable motion pass, the noise level used...).
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    def count(self, state: FrameState) -> int:
        return sum(1 for outcome in self.frames if outcome.state is state)

    @property
    def restored(self) -> int:
        return self.count(FrameState.RESTORED)

    @property
    def skipped(self) -> int:
        return self.count(FrameState.SKIPPED)

    @property
    def failed(self) -> int:
        return self.count(FrameState.FAILED) + self.count(FrameState.MISSING)

    @property
    def output_shot(self) -> Shot:
        """The restored shot (the frames with an output on disk), to open or play."""
        return Shot.of(self.output_pattern, [o.frame for o in self.frames])

    @property
    def exit_code(self) -> int:
        """As ``batch``'s (docs/farm.md): 0 all restored or skipped, 4 every failure a missing input, else 1."""
        bad = [o for o in self.frames if o.state in (FrameState.FAILED, FrameState.MISSING, FrameState.STOPPED)]
        if not bad:
            return EXIT_OK
        return EXIT_MISSING_INPUT if all(o.state is FrameState.MISSING for o in bad) else EXIT_FAILED


def output_pattern(shot: Shot, output: str | os.PathLike[str]) -> str:
    """The absolute output pattern for ``output``: a pattern (any spelling :func:`normalise_pattern` reads), or a
    folder (the frames keep their names). Refuses a file name and the shot's own pattern."""
    from .imageio import is_supported

    pattern, _ = normalise_pattern(str(output))
    if pattern is None:
        folder = Path(output)
        if folder.exists() and not folder.is_dir():
            raise ShotError(f"{folder}: a shot's output is a pattern (e.g. out/{shot.name}) or a folder, not a file")
        if not folder.exists() and folder.suffix and is_supported(folder):
            raise ShotError(f"{folder}: a shot's output is a pattern such as {folder.parent / shot.name} or a folder")
        pattern = str(folder / shot.name)
    pattern = _absolute(pattern)
    if os.path.normcase(os.path.realpath(os.path.dirname(pattern))) == \
            os.path.normcase(os.path.realpath(os.path.dirname(shot.pattern))) and \
            os.path.basename(pattern) == os.path.basename(shot.pattern):
        raise ShotError(f"{pattern}: the output would replace the shot's own frames (choose another output)")
    return pattern


def needs_previous(manifest) -> bool:
    """Whether a model is temporal: its manifest's inputs include frame t - 1's data."""
    from .motion import TEMPORAL_INPUTS

    return any(name in manifest.inputs for name in TEMPORAL_INPUTS)


def _without_temporal_layers(image):
    """The restored image without the previous-frame layers it was given (they are not written out)."""
    from .image import make_image
    from .motion import TEMPORAL_INPUTS

    if not any(name in image.layers for name in TEMPORAL_INPUTS):
        return image
    layers = {k: v for k, v in image.layers.items() if k not in TEMPORAL_INPUTS}
    return make_image(image.pixels, image.alpha, image.meta, layers)


def _with_layers(image, layers: Mapping[str, Any]):
    from .image import make_image

    return make_image(image.pixels, image.alpha, image.meta, {**image.layers, **layers})


def _previous_from_disk(frame: int, source: Path, target: Path):
    """Frame ``frame``'s data for the next frame of a temporal run, from its input and its finished output on disk
    (a resumed run); None when either cannot be read."""
    from .imageio import read_image
    from .motion import PreviousFrame, usable_motion

    try:
        image = read_image(source)
        output = read_image(target)
    except EngineError:
        return None
    if output.pixels.shape[:2] != image.pixels.shape[:2]:
        return None
    found, _ = usable_motion(image)
    return PreviousFrame(frame, image.pixels, output.pixels, found.forward() if found else None)


def restore_shot(request: ShotRestoreRequest, token: CancelToken | None = None,
                 registry=None) -> Generator[Progress, None, ShotRestoreResult]:
    """Restore the frames of ``request.shot`` in order (see the module docstring); a job (engine/jobs.py).

    Yields Progress with the fraction over all frames, an ETA from the frames restored so far, a message such as
    ``frame 1004 (4/100): tile 2 of 6`` and ``metrics`` ``{"frame", "index", "total", "done", "skipped",
    "failed"}``: stage ``restoring`` while a frame runs, then one record per frame with stage ``restored`` (its
    ``preview`` is the frame's result as written), ``skipped``, ``missing`` or ``failed``; stage ``note`` for what
    the user should know once (also in the result's ``notes``). ``token.cancel()`` stops at once (the frame under
    way is not written; JobCancelled); ``token.request_stop()`` stops after the frame under way and returns the
    result. Frame failures (an unreadable input, a write error) are reported and the run goes on; a model that
    cannot be loaded stops it (ModelError)."""
    from .batch import BatchOptions
    from .image import make_image
    from .imageio import read_image, write_image
    from .models.registry import ModelRegistry
    from .motion import PreviousFrame, temporal_layers, usable_motion
    from .noise_estimate import with_estimated_noise_level
    from .restore import restore_job
    from .temporal_filter import smooth_with_previous

    token = token or CancelToken()
    registry = registry or ModelRegistry()
    shot = request.shot.refresh()
    target_pattern = output_pattern(shot, request.output)
    total = len(shot.frames)
    if total == 0:
        raise ShotError(f"{shot.name}: no frames to restore")
    yield Progress(0.0, "prepare", f"{shot.label} -> {Path(target_pattern).name}",
                   metrics={"total": total, "done": 0, "skipped": 0, "failed": 0})

    first_image = None
    if request.model_id:
        entry = registry.get(request.model_id)
    else:
        if not shot.present:
            raise ShotError(f"{shot.label}: none of its frames exists")
        from .models.suggest import require_suggestion

        first_image = read_image(shot.path(shot.present[0]))
        entry = require_suggestion(registry, first_image).entry
    manifest = entry.manifest
    temporal = needs_previous(manifest)
    # by default a per-frame model's frames are smoothed; a temporal model already sees the previous frame
    default = 0.0 if temporal else DEFAULT_STRENGTH
    if request.smoothing is not None and not 0.0 <= float(request.smoothing) < 1.0:
        raise ShotError(f"the smoothing weight is the previous result's share of each frame: from 0 (off) to below 1, "
                        f"not {request.smoothing:g}")
    smoothing = default if request.smoothing is None else float(request.smoothing)
    keeps_previous = temporal or smoothing > 0
    tile = BatchOptions(tile=request.tile).tile_for(manifest)
    params: dict[str, Any] = dict(request.params)
    try:
        manifest.resolve_params(params)  # a wrong parameter stops the run before any frame
    except ValueError as error:
        raise ShotError(str(error)) from None
    noise_fixed = False
    notes: list[str] = []
    if temporal:
        notes.append(f"{manifest.display_name} is temporal: each frame is restored with the previous one")
        yield Progress(0.0, "note", notes[-1])
    if smoothing > 0:
        notes.append(f"smoothed over time: each frame blended with the previous result (weight {smoothing:g}) where "
                     "the motion pass is trusted")
        yield Progress(0.0, "note", notes[-1])

    def target(frame: int) -> Path:
        return Path(expand_pattern(target_pattern, frame))

    pending = [f for f in shot.frames if f not in shot.missing and (request.overwrite or not target(f).exists())]
    if first_image is not None and (not pending or pending[0] != shot.present[0]):
        first_image = None  # read to choose the model; not restored in this run
    work_total = max(1, len(pending))
    work_done = 0
    clock: EtaClock | None = None
    outcomes: list[FrameOutcome] = []
    counts = {"done": 0, "skipped": 0, "failed": 0}
    previous: PreviousFrame | None = None
    #: A frame left as it was (skipped) whose data the next frame of a temporal run would read back from disk.
    previous_on_disk: int | None = None
    motion_said = False
    started = time.perf_counter()

    def metrics(frame: int, index: int) -> dict[str, float]:
        return {"frame": frame, "index": index + 1, "total": total, **counts}

    def eta(fraction_of_frame: float) -> float | None:
        if clock is None:
            return None
        return clock.eta(min(1.0, (work_done + fraction_of_frame) / work_total))

    def restoring(frame: int, index: int, where: str) -> Callable[[Progress], Progress]:
        """A frame's restore job's progress as the shot's."""

        def convert(step: Progress) -> Progress:
            fraction = float(step.fraction or 0.0)
            return Progress((index + fraction) / total, "restoring", f"{where}: {step.message}", eta(fraction),
                            metrics(frame, index))

        return convert

    for index, frame in enumerate(shot.frames):
        token.raise_if_cancelled()
        source, output = shot.path(frame), target(frame)
        where = f"frame {frame} ({index + 1}/{total})"
        if token.stop_requested:
            outcomes.extend(FrameOutcome(f, shot.path(f), target(f), FrameState.STOPPED, message="stopped")
                            for f in shot.frames[index:])
            notes.append(f"stopped before frame {frame}; run again to restore the rest")
            break
        if not source.is_file():
            outcomes.append(FrameOutcome(frame, source, output, FrameState.MISSING,
                                         message=f"{source}: no such file"))
            counts["failed"] += 1
            previous, previous_on_disk = None, None
            yield Progress((index + 1) / total, "missing", f"{where}: input missing ({source.name}), skipped",
                           eta(0.0), metrics(frame, index))
            continue
        if output.exists() and not request.overwrite:
            outcomes.append(FrameOutcome(frame, source, output, FrameState.SKIPPED, message="output exists"))
            counts["skipped"] += 1
            previous, previous_on_disk = None, frame
            yield Progress((index + 1) / total, "skipped", f"{where}: {output.name} exists, skipped", eta(0.0),
                           metrics(frame, index))
            continue

        clock = clock or EtaClock()
        frame_started = time.perf_counter()
        try:
            reuse = first_image is not None and frame == shot.present[0]
            image, first_image = (first_image if reuse else read_image(source)), None
            colour = image.pixels
            frame_image = image
            if keeps_previous:
                if previous is None and previous_on_disk == frame - 1:
                    previous = _previous_from_disk(frame - 1, shot.path(frame - 1), target(frame - 1))
                if previous is not None and previous.frame != frame - 1:
                    previous = None
                found, why = usable_motion(image)
                if previous is not None and found is None and not motion_said:
                    motion_said = True
                    notes.append(f"{why} in frame {frame}: " + ("previous frames are used unwarped (zero motion)"
                                                                 if temporal else "frames without it are not smoothed"))
                    yield Progress(index / total, "note", notes[-1], eta(0.0), metrics(frame, index))
                forward = found.forward() if found is not None else None
            if temporal:
                image = _with_layers(image, temporal_layers(image, previous, found))
            if not noise_fixed:
                # One noise level for the whole shot (estimated on its first frame restored): frames restored alike.
                values, level = with_estimated_noise_level(image, manifest, params)
                params, noise_fixed = dict(values), True
                if level is not None:
                    notes.append(f"noise level {level:g} estimated on frame {frame}, used for every frame")
                    yield Progress(index / total, "note", notes[-1], eta(0.0), metrics(frame, index))
            job = restore_job(image, entry, params, tile=tile, device=request.device, ensemble=request.ensemble,
                              token=token, release_input=not keeps_previous)
            del image
            result = yield from relay(job, restoring(frame, index, where))
            restored = _without_temporal_layers(result.image)
            if smoothing > 0:
                smoothed = smooth_with_previous(frame_image, restored.pixels, previous, smoothing, motion=found)
                if smoothed is not None:
                    restored = make_image(smoothed, restored.alpha, restored.meta, restored.layers)
            del frame_image
            output.parent.mkdir(parents=True, exist_ok=True)
            write_image(output, restored, overwrite=request.overwrite)
        except (ModelError, JobCancelled):
            raise
        except EngineError as error:
            outcomes.append(FrameOutcome(frame, source, output, FrameState.FAILED,
                                         time.perf_counter() - frame_started, str(error)))
            counts["failed"] += 1
            work_done += 1
            previous, previous_on_disk = None, None
            yield Progress((index + 1) / total, "failed", f"{where}: {error}", eta(0.0), metrics(frame, index))
            continue
        seconds = time.perf_counter() - frame_started
        outcomes.append(FrameOutcome(frame, source, output, FrameState.RESTORED, seconds))
        counts["done"] += 1
        work_done += 1
        previous_on_disk = None
        previous = PreviousFrame(frame, colour, restored.pixels, forward) if keeps_previous else None
        yield Progress((index + 1) / total, "restored", f"{where} -> {output.name} ({seconds:.1f} s)", eta(0.0),
                       metrics(frame, index), preview=restored)
    return ShotRestoreResult(shot, target_pattern, manifest.id, tuple(outcomes), tuple(notes),
                             time.perf_counter() - started)
