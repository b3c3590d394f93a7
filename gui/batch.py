"""The window's batch queue: the files of the Queue panel run one by one through one model, each result saved
as ``<name>_<model id><ext>`` into a folder.

Note for the merge: the engine is getting its own typed batch module (``engine/batch.py``, shared with the
command line's batch command). When it lands, this queue should take its items and naming from there; until
then the window keeps this small typed state of its own (it used to be an untyped dict).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class BatchQueue:
    """One run of the queue: what is left, what is running, and how many files were saved or failed."""

    #: Makes the restore job for one opened image: ``make(image, token)``.
    factory: Callable[..., Any]
    #: The model's display name (for the status line).
    title: str
    #: Where the results go.
    out: Path
    #: Appended to each input's name: the model id.
    suffix: str
    todo: list[str] = field(default_factory=list)
    current: str | None = None
    done: int = 0
    failed: int = 0
    #: Cancel was pressed: the file that is running ends and no other starts.
    stop: bool = False

    def target_for(self, path: str | Path) -> Path:
        """Where the result of ``path`` is saved."""
        source = Path(path)
        return self.out / f"{source.stem}_{self.suffix}{source.suffix}"

    def next(self) -> str:
        """Take the next file to run."""
        self.current = self.todo.pop(0)
        return self.current

    def has_more(self) -> bool:
        return bool(self.todo) and not self.stop

    def summary(self) -> str:
        text = f"Queue finished: {self.done} saved to {self.out}"
        if self.failed:
            text += f", {self.failed} failed (hover over them for the reason)"
        return text
