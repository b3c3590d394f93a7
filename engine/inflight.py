"""Many images in one go: several restores in flight, each worker with its own ONNX Runtime session.

    results = restore_files(paths, plan, workers=2)      # plan(image, source) -> (entry, params, target)

For many small images (document pages, web photos) one image at a time leaves cores idle between the network's
calls: reading, estimating the noise, converting, blending and writing run on one core. With ``workers`` images in
flight, each worker's session gets ``cpu cores / workers`` threads, so the network's time is not oversubscribed
while the other steps overlap (bench/batch.py measures images per second for 1 and 2 workers). Workers are
threads: ONNX Runtime, OpenCV, the image codecs and NumPy's large operations release the GIL. (engine/batch.py is
the typed queue of files and frames that farms and Ray run; this module is what ``restore --workers N`` uses
inside one process.)

Results come back in the order of ``sources``; a file that fails (unreadable, unsuitable model, existing target)
gets its error in its result and the others go on. ``on_result`` is called once per file as it finishes, from the
worker's thread, one call at a time; one that prints holds ``engine.imageio.CONSOLE_LOCK`` (another worker may be
decoding, and a decode captures the console).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import EngineError, JobCancelled
from .jobs import CancelToken, run_job

#: (image, source path) -> (model entry, its parameters, target path): what to do with one file once it is read.
Plan = Callable[[Any, Path], tuple[Any, Mapping[str, Any], Path]]


@dataclass(frozen=True)
class FileResult:
    source: Path
    #: Where the result was written (None when it failed before a target was chosen).
    target: Path | None = None
    label: str = ""
    device: str = ""
    #: The restore's own seconds (reading and writing not included).
    seconds: float = 0.0
    #: Why the file failed; "" when it was restored and written.
    error: str = ""
    #: Which worker did it (0-based).
    worker: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.error


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Intra-op threads for each worker's session: the cores shared out, at least one."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def restore_files(
    sources: Sequence[Path],
    plan: Plan,
    *,
    workers: int = 1,
    tile: int | None = None,
    device: str = "auto",
    ensemble: int = 1,
    token: CancelToken | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    overwrite: bool = True,
) -> list[FileResult]:
    """Read, restore and write every file of ``sources``, ``workers`` at a time (see the module's docstring)."""
    from .imageio import read_image, write_image
    from .restore import restore_job

    token = token or CancelToken()
    workers = max(1, min(int(workers), len(sources) or 1))
    threads = threads_per_worker(workers) if workers > 1 else 0
    results: list[FileResult | None] = [None] * len(sources)
    next_index = [0]
    lock = threading.Lock()
    failure: list[BaseException] = []

    def take() -> int | None:
        with lock:
            if next_index[0] >= len(sources) or failure or token.cancelled:
                return None
            next_index[0] += 1
            return next_index[0] - 1

    def one(index: int, worker: int) -> FileResult:
        source = Path(sources[index])
        target = None
        try:
            image = read_image(source)
            entry, params, target = plan(image, source)
            job = restore_job(image, entry, params, tile=tile, device=device, ensemble=ensemble, token=token,
                              threads=threads, release_input=True, worker=worker)
            del image  # the job writes its result into the input's buffer: one image-sized buffer per worker
            result = run_job(job)
            del job
            write_image(target, result.image, overwrite=overwrite)
            return FileResult(source, Path(target), result.label, result.device, result.seconds, "", worker,
                              result.details)
        except JobCancelled:
            raise
        except EngineError as error:
            return FileResult(source, Path(target) if target is not None else None, error=str(error), worker=worker)

    def work(worker: int) -> None:
        try:
            while (index := take()) is not None:
                outcome = one(index, worker)
                with lock:
                    results[index] = outcome
                    if on_result is not None:
                        on_result(outcome)
        except BaseException as error:  # a bug or a cancel: stop the other workers, re-raised below
            with lock:
                failure.append(error)

    if workers == 1:
        work(0)
    else:
        pool = [threading.Thread(target=work, args=(worker,), name=f"restore-worker-{worker}", daemon=True)
                for worker in range(workers)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    if failure:
        raise failure[0]
    return [result for result in results if result is not None]
