"""The window's batch queue: the files of the Queue panel run one by one through one model, each result saved
as ``<name>_<model id><ext>`` into a folder.

Each file is an :class:`engine.batch.BatchItem` (the command line's ``batch`` uses the same type), so the window
and the command line share one record of a file's state (pending, running, done, failed, cancelled), attempts,
error and time. What is the window's own: the job factory (the model panel's request) and the order of work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.api import BatchItem, ItemState, output_name


@dataclass
class BatchQueue:
    """One run of the queue: its items (in order), the one running, and whether Cancel was pressed."""

    #: Makes the restore job for one opened image: ``make(image, token)``.
    factory: Callable[..., Any]
    #: The model's display name (for the status line).
    title: str
    #: Where the results go.
    out: Path
    #: Appended to each input's name: the model id.
    suffix: str
    items: list[BatchItem] = field(default_factory=list)
    current_item: BatchItem | None = None
    #: Cancel was pressed: the file that is running ends and no other starts.
    stop: bool = False
    _started: float = 0.0

    @classmethod
    def of(cls, paths: list[str], **kwargs: Any) -> BatchQueue:
        queue = cls(**kwargs)
        queue.items = [BatchItem(source=Path(p), target=queue.target_for(p)) for p in paths]
        return queue

    def target_for(self, path: str | Path) -> Path:
        """Where the result of ``path`` is saved."""
        source = Path(path)
        return self.out / output_name(f"{source.stem}_{self.suffix}{source.suffix}")

    @property
    def todo(self) -> list[str]:
        """The files still to run, in order."""
        return [str(item.source) for item in self.items if item.state is ItemState.PENDING]

    @property
    def current(self) -> str | None:
        return str(self.current_item.source) if self.current_item is not None else None

    @property
    def done(self) -> int:
        return sum(1 for item in self.items if item.state is ItemState.DONE)

    @property
    def failed(self) -> int:
        return sum(1 for item in self.items if item.state is ItemState.FAILED)

    def next(self) -> str:
        """Take the next file to run (it becomes RUNNING)."""
        item = next(item for item in self.items if item.state is ItemState.PENDING)
        item.state = ItemState.RUNNING
        item.attempts += 1
        self.current_item = item
        self._started = time.perf_counter()
        return str(item.source)

    def finish_current(self, state: ItemState, error: str | None = None) -> None:
        """The running file ended: DONE, FAILED (``error`` says why) or CANCELLED."""
        item = self.current_item
        if item is not None:
            item.state, item.error = state, error
            item.seconds = time.perf_counter() - self._started

    def has_more(self) -> bool:
        return bool(self.todo) and not self.stop

    def summary(self) -> str:
        text = f"Queue finished: {self.done} saved to {self.out}"
        if self.failed:
            text += f", {self.failed} failed (hover over them for the reason)"
        return text
