"""Batch restoration on a Ray cluster: ``main.py batch IN... -o OUT --ray auto|local|HOST:PORT``.

Ray (https://docs.ray.io) is optional: the app never imports this module at start, and ``import ray`` happens
only when a run asks for it (a clear error names the pinned package when it is missing).

How a run goes:

- The driver (this process) plans the items (engine/batch.py) and starts ``workers`` actors, each holding one
  ONNX Runtime session (the model resolved and checked against its pinned sha256 once, in the actor).
- Items are streamed: at most ``IN_FLIGHT`` per actor are submitted at a time (one running, one waiting), the
  next goes to whichever actor frees up first, so a slow node takes fewer files.
- Each actor reads its input and writes the output itself, atomically (engine/imageio/atomic.py), so the
  cluster needs the paths on a shared file system (as a render farm has); only small records travel back.
- A file whose worker dies (process killed, node lost) or that fails in a way another attempt may fix goes back
  to the queue, up to ``retries`` more attempts; a dead actor is replaced. Every item is reported exactly once,
  as done, skipped or failed, in the same events as the local run (engine/batch.py ``run_local``).
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from .batch import (
    BatchItem,
    BatchOptions,
    ItemState,
    event,
    finish_event,
    item_event,
    restore_item,
    retryable,
    start_event,
)
from .errors import EngineError

#: Calls queued per actor: one running and one ready, so an actor never waits for the driver.
IN_FLIGHT = 2
RAY_REQUIREMENT = "ray==2.60.0"
#: How long a run asking for more workers than the cluster has room for waits for nodes to join.
JOIN_WAIT_S = 20.0


def import_ray():
    try:
        import ray
    except ImportError as error:
        if error.name not in ("ray", None):  # Ray is there but one of its imports fails: say which
            raise EngineError(f"Ray cannot be imported: {error}") from None
        raise EngineError(
            f"--ray needs Ray, which is not installed: pip install {RAY_REQUIREMENT} "
            "(an optional extra, listed in requirements-dev.txt; the app itself does not need it)"
        ) from None
    return ray


class RestoreWorker:
    """One Ray actor: one model, one ONNX Runtime session, restoring the items it is given."""

    def __init__(self, options: BatchOptions) -> None:
        from .models.registry import ModelRegistry

        self.options = options
        self.registry = ModelRegistry()
        from .batch import resolve_model

        self.entry = resolve_model(self.registry, options)  # ModelPinError here fails the run, not a file
        if self.entry is not None and self.entry.path is not None:
            from .models.entry import load_network

            load_network(self.entry, options.device)  # the sessions, created once and kept warm

    def describe(self) -> dict[str, Any]:
        import socket

        return {"pid": os.getpid(), "host": socket.gethostname()}

    def restore(self, item: BatchItem) -> BatchItem:
        return restore_item(item, self.options, self.registry, self.entry)


def _runtime_env() -> dict[str, Any]:
    """What actors need to import the engine and find the same models as the driver (shared file system)."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p),
           "OPENCV_IO_ENABLE_OPENEXR": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    for name in ("RESTORATION_STUDIO_HOME",):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return {"env_vars": env}


def run_ray(items: list[BatchItem], options: BatchOptions, address: str = "auto", *, workers: int | None = None,
            retries: int = 2, threads_per_worker: int = 1) -> Iterator[dict[str, Any]]:
    """Restore ``items`` on the Ray cluster at ``address`` ("auto": the one running here; "local": start one for
    this run), yielding the events of :func:`engine.batch.run_local` plus ``retry``; updates ``items`` in place."""
    ray = import_ray()
    from ray.exceptions import RayActorError, RayTaskError

    from .batch import ModelPinError, UsageProblem, parse_settings

    started = time.perf_counter()
    gpu = options.device == "cuda"
    env = _runtime_env()
    env["env_vars"]["RESTORATION_STUDIO_ORT_THREADS"] = str(threads_per_worker)
    try:
        local = {}
        if address == "local":  # room for the workers asked for, even beyond the cores (to measure that)
            local["num_cpus"] = max(os.cpu_count() or 1, (workers or 0) * threads_per_worker)
        ray.init(address=None if address == "local" else address, include_dashboard=False, log_to_driver=False,
                 runtime_env=env, configure_logging=False, **local)
    except ConnectionError as error:
        raise EngineError(f"cannot reach a Ray cluster at {address}: {error}") from None
    actors: list[Any] = []
    try:
        unit = "GPU" if gpu else "CPU"
        deadline = time.monotonic() + JOIN_WAIT_S
        while True:
            fits = int(ray.cluster_resources().get(unit, 0) // (1 if gpu else threads_per_worker))
            if not workers or fits >= workers or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # nodes that are still joining
        if fits < 1:
            raise EngineError(f"the Ray cluster at {address} has no {unit} for a worker")
        count = workers or fits
        if count > fits:  # an actor that never gets its resources would hold its files for ever
            print(f"note: the cluster has room for {fits} worker(s) ({unit}); using {fits}, not {count}",
                  file=sys.stderr)
            count = fits
        actor_class = ray.remote(num_cpus=0 if gpu else threads_per_worker, num_gpus=1 if gpu else 0,
                                 max_restarts=0, max_task_retries=0)(RestoreWorker)

        def new_actor():
            actor = actor_class.remote(options)
            actors.append(actor)
            return actor

        entry = None
        if options.model_id:
            from .batch import resolve_model
            from .models.registry import ModelRegistry

            entry = resolve_model(ModelRegistry(), options)  # the actors' check, here first: exit 3 before any work
            parse_settings(options.settings, entry.manifest)  # and a bad --set: exit 2
        for _ in range(count):
            new_actor()
        total = len(items)
        yield start_event(items, options, entry, "ray", count)
        for index, item in enumerate(items):
            if item.finished:  # planned as missing: reported, never sent
                yield item_event(item, index, total)
        queue: deque[int] = deque(i for i, item in enumerate(items) if not item.finished)
        inflight: dict[Any, tuple[Any, int]] = {}
        load: dict[Any, int] = {a: 0 for a in actors}
        replacements = 0
        while queue or inflight:
            for actor in list(load):
                while queue and load[actor] < IN_FLIGHT:
                    index = queue.popleft()
                    items[index] = replace(items[index], state=ItemState.RUNNING)
                    # absolute paths: an actor's working folder is not the driver's (the file system is shared)
                    shipped = replace(items[index], source=items[index].source.absolute(),
                                      target=items[index].target.absolute())
                    inflight[actor.restore.remote(shipped)] = (actor, index)
                    load[actor] += 1
            if not inflight:
                raise EngineError("no Ray workers left to run the remaining files")
            ready, _ = ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                actor, index = inflight.pop(ref)
                if actor in load:
                    load[actor] -= 1
                item = items[index]
                try:
                    result = ray.get(ref)
                except RayActorError as error:  # the worker process died (killed, out of memory, node lost)
                    if actor in load:
                        del load[actor]
                        ray.kill(actor, no_restart=True)
                        if replacements < max(4, 2 * count):
                            replacements += 1
                            load[new_actor()] = 0
                    result = replace(item, state=ItemState.FAILED, attempts=item.attempts + 1,
                                     error=f"{item.source}: the worker was lost ({type(error).__name__})",
                                     error_code=1)
                    lost = True
                except RayTaskError as error:
                    cause = getattr(error, "cause", None)
                    if isinstance(cause, (ModelPinError, UsageProblem)):  # the whole run is wrong: stop (exit 3 / 2)
                        raise cause from None
                    message = str(getattr(error, "cause", None) or error).strip().splitlines()[-1]
                    result = replace(item, state=ItemState.FAILED, attempts=item.attempts + 1,
                                     error=f"{item.source}: {message}", error_code=1)
                    lost = True
                else:
                    result = replace(result, source=item.source, target=item.target)  # as the user wrote them
                    lost = False
                if result.state is ItemState.FAILED and (lost or retryable(result)) and result.attempts <= retries:
                    items[index] = replace(result, state=ItemState.PENDING)
                    queue.appendleft(index)
                    yield event("retry", index=index, total=total, input=str(item.source), frame=item.frame,
                                attempts=result.attempts, reason=result.error)
                    continue
                items[index] = result
                yield item_event(result, index, total)
        yield finish_event(items, time.perf_counter() - started)
    finally:
        for actor in actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:
                pass
        ray.shutdown()
