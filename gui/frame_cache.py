"""The decoded frames of a shot, kept by bytes (least recently used first out), and read off the GUI thread.

A 4K EXR frame is ~100 MB as float32, so the cache is bounded by memory, not by a count of frames:
:class:`FrameCache` holds images up to ``budget_bytes`` (1 GiB by default) and drops the least recently used.
:class:`FrameLoader` reads frames on its own small thread pool (two readers: A and B of a frame at once, while the
machine keeps cores for a job and the window) and says when one is ready; it reads the most wanted frame first, and
reads the user has moved past (scrubbing on, playback going on) are never started.

Frames are keyed by path and modification time, so a frame rewritten on disk (a rerun of the shot with
overwrite) is read again instead of shown stale.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
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

    def __init__(self, budget_bytes: int | None = None) -> None:
        self.budget = int(DEFAULT_BUDGET if budget_bytes is None else budget_bytes)
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
    def __init__(self, loader: FrameLoader, path: str) -> None:
        super().__init__()
        self.loader, self.path = loader, path
        self.setAutoDelete(True)

    def run(self) -> None:
        self.loader._read(self.path)


class FrameLoader(QObject):
    """Reads frames in the background into a :class:`FrameCache`, most wanted first.

    ``request(path)`` returns the image at once when it is cached, else puts the path first in line and returns
    None; ``loaded(path, image)`` follows in the GUI thread. ``want(paths)`` replaces the line with ``paths`` in
    the order they matter (playback: the frames about to be due): a reader that comes free takes the first one not
    read yet, so reads the user has moved past are never started. ``read_seconds`` is the recent time one read
    takes (playback reads that far ahead).
    """

    loaded = Signal(str, object)
    failed = Signal(str, str)

    def __init__(self, cache: FrameCache | None = None, threads: int = 1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache = cache or FrameCache()
        self.threads = max(1, threads)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(self.threads)
        self._relay = _Relay()
        self._relay.loaded.connect(self.loaded)
        self._relay.failed.connect(self.failed)
        self._lock = threading.Lock()
        self._line: list[str] = []  # paths to read, most wanted first
        self._reading: set[str] = set()
        self._failed: set[str] = set()  # not asked for again until the line is replaced
        #: Reads done, and the recent seconds per read (a moving average).
        self.reads = 0
        self.read_seconds = 0.0
        #: Called on the reading thread with (path, image) after each read: work to do ahead of the GUI thread
        #: (a shot prepares the frame's display tiles). Its errors are ignored: the frame is shown anyway.
        self.after_read: Callable[[str, Image], None] | None = None

    def request(self, path: str | Path) -> Image | None:
        path = str(path)
        key = frame_key(path)
        if key is None:
            return None
        image = self.cache.get(key)
        if image is not None:
            return image
        with self._lock:
            if path not in self._reading and path not in self._failed:
                if path in self._line:
                    self._line.remove(path)
                self._line.insert(0, path)
        self._pump()
        return None

    def cached(self, path: str | Path) -> Image | None:
        key = frame_key(path)
        return self.cache.get(key) if key is not None else None

    def want(self, paths: Iterable[str | Path]) -> None:
        """Read these (in this order) and nothing else that has not started yet."""
        line = []
        for path in paths:
            text = str(path)
            key = frame_key(text)
            if key is not None and key not in self.cache and text not in line:
                line.append(text)
        with self._lock:
            self._line = line
            self._failed.clear()
        self._pump()

    def pending(self) -> int:
        with self._lock:
            return len(self._line) + len(self._reading)

    def wait_idle(self, timeout_ms: int = 10000) -> bool:
        return self.pool.waitForDone(timeout_ms)

    def clear(self) -> None:
        """Drop the line and the cache (another shot was opened)."""
        with self._lock:
            self._line.clear()
            self._failed.clear()
        self.cache.clear()

    def _pump(self) -> None:
        """Start reads while a reader is free and something is in line."""
        while True:
            with self._lock:
                if len(self._reading) >= self.threads or not self._line:
                    return
                path = self._line.pop(0)
                self._reading.add(path)
            self.pool.start(_Read(self, path))

    # -- pool thread --------------------------------------------------------------------------------------
    def _read(self, path: str) -> None:
        key = frame_key(path)
        started = time.perf_counter()
        try:
            from engine.api import read_image

            if key is None:
                raise FileNotFoundError(f"{Path(path).name} does not exist")
            try:
                image = self.cache.get(key) or read_image(path)
            except Exception as error:
                if "library reported" not in str(error):
                    raise
                # The EXR reader takes anything written to the process's stderr while it decodes for the
                # library's complaint (engine/imageio/__init__.py), and the window's other threads write there
                # too (Qt warnings, a running job): read once more before calling the frame damaged.
                image = read_image(path)
        except Exception as error:  # a broken frame is reported, the others still play
            with self._lock:
                self._reading.discard(path)
                self._failed.add(path)
            self._relay.failed.emit(path, str(error) or type(error).__name__)
            self._pump()
            return
        self.cache.put(key, image)
        if self.after_read is not None:
            try:
                self.after_read(path, image)
            except Exception:  # only a head start for the display: painting converts the frame itself
                pass
        seconds = time.perf_counter() - started
        with self._lock:
            self._reading.discard(path)
            self.reads += 1
            self.read_seconds = seconds if self.reads == 1 else 0.7 * self.read_seconds + 0.3 * seconds
        self._relay.loaded.emit(path, image)
        self._pump()
