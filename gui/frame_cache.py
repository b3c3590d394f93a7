"""The decoded frames of a shot, kept by bytes (least recently used first out), and read off the GUI thread.

A 4K EXR frame is ~100 MB as float32, so the cache is bounded by memory, not by a count of frames:
:class:`FrameCache` holds images up to ``budget_bytes`` (1 GiB by default) and drops the least recently used.
:class:`FrameLoader` reads frames on its own thread pool (one reader, so the machine keeps cores for the job and
the window) and says when one is ready; requests that are no longer wanted (the user scrubbed on, playback moved
past them) are skipped when their turn comes instead of being read for nothing.

Frames are keyed by path and modification time, so a frame rewritten on disk (a rerun of the shot with
overwrite) is read again instead of shown stale.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from engine.api import Image

#: Default memory for decoded frames (bytes).
DEFAULT_BUDGET = 1 << 30


def image_bytes(image: Image) -> int:
    """Memory an image's arrays take (pixels, alpha, AOV buffers)."""
    total = int(image.pixels.nbytes)
    if image.alpha is not None:
        total += int(image.alpha.nbytes)
    for buffer in (image.aovs or {}).values():
        total += int(getattr(buffer, "nbytes", 0))
    return total


def frame_key(path: str | Path) -> tuple[str, int] | None:
    """(path, mtime in ns) of a file on disk; None when it does not exist (yet)."""
    try:
        return str(path), os.stat(path).st_mtime_ns
    except OSError:
        return None


class FrameCache:
    """Images by key, bounded by bytes; the least recently used go first. Thread-safe."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET) -> None:
        self.budget = int(budget_bytes)
        self._items: OrderedDict[object, tuple[Image, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key) -> Image | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._items

    def put(self, key, image: Image) -> None:
        """Keep ``image``; an image larger than the whole budget is not kept (it is shown, not cached)."""
        size = image_bytes(image)
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            if size > self.budget:
                return
            self._items[key] = (image, size)
            self._bytes += size
            while self._bytes > self.budget and self._items:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def discard_path(self, path: str | Path) -> None:
        """Forget every version of ``path`` (it was rewritten or deleted)."""
        text = str(path)
        with self._lock:
            for key in [k for k in self._items if isinstance(k, tuple) and k and k[0] == text]:
                self._bytes -= self._items.pop(key)[1]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def frames_that_fit(self, frame_bytes: int) -> int:
        """How many frames of ``frame_bytes`` the budget holds (at least 1)."""
        return max(1, self.budget // max(1, frame_bytes))


class _Relay(QObject):
    loaded = Signal(str, object)  # path, Image
    failed = Signal(str, str)  # path, message


class _Read(QRunnable):
    def __init__(self, loader: FrameLoader, path: str, key) -> None:
        super().__init__()
        self.loader, self.path, self.key = loader, path, key
        self.setAutoDelete(True)

    def run(self) -> None:
        self.loader._read(self.path, self.key)


class FrameLoader(QObject):
    """Reads frames in the background into a :class:`FrameCache`.

    ``request(path)`` returns the image at once when it is cached, else queues a read (once) and returns None;
    ``loaded(path, image)`` follows in the GUI thread. ``want(paths)`` says which reads still matter: queued ones
    outside it are skipped.
    """

    loaded = Signal(str, object)
    failed = Signal(str, str)

    def __init__(self, cache: FrameCache | None = None, threads: int = 1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache = cache or FrameCache()
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max(1, threads))
        self._relay = _Relay()
        self._relay.loaded.connect(self.loaded)
        self._relay.failed.connect(self.failed)
        self._lock = threading.Lock()
        self._queued: set[str] = set()
        self._wanted: set[str] | None = None  # None: every request is wanted
        #: Reads done (for tests and the status line).
        self.reads = 0

    def request(self, path: str | Path) -> Image | None:
        path = str(path)
        key = frame_key(path)
        if key is None:
            return None
        image = self.cache.get(key)
        if image is not None:
            return image
        with self._lock:
            if path in self._queued:
                return None
            self._queued.add(path)
        self.pool.start(_Read(self, path, key))
        return None

    def cached(self, path: str | Path) -> Image | None:
        key = frame_key(path)
        return self.cache.get(key) if key is not None else None

    def want(self, paths: Iterable[str | Path] | None) -> None:
        """Only these reads still matter (None: all do)."""
        with self._lock:
            self._wanted = None if paths is None else {str(p) for p in paths}

    def pending(self) -> int:
        with self._lock:
            return len(self._queued)

    def wait_idle(self, timeout_ms: int = 10000) -> bool:
        return self.pool.waitForDone(timeout_ms)

    def clear(self) -> None:
        """Drop queued reads and the cache (another shot was opened)."""
        self.pool.clear()
        with self._lock:
            self._queued.clear()
        self.cache.clear()

    # -- pool thread --------------------------------------------------------------------------------------
    def _read(self, path: str, key) -> None:
        with self._lock:
            skip = self._wanted is not None and path not in self._wanted
            if skip:
                self._queued.discard(path)
        if skip:
            return
        try:
            from engine.api import read_image

            image = read_image(path)
        except Exception as error:  # a broken frame is reported, the others still play
            with self._lock:
                self._queued.discard(path)
            self._relay.failed.emit(path, str(error) or type(error).__name__)
            return
        self.cache.put(key, image)
        with self._lock:
            self._queued.discard(path)
            self.reads += 1
        self._relay.loaded.emit(path, image)
