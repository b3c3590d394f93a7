"""A shot (a numbered image sequence) open in the window: one frame at a time in the viewer, a transport bar to move
through it and play it, and its restored frames beside the input ones.

:class:`ShotView` is installed on the main window (``window.shots``). It opens a shot from a pattern
(``shot_####.exr``), a folder of frames or, when the user asks, from one file of a sequence (a notice above the
viewer offers it without getting in the way); shows the current frame as the window's original (so the model
panel, the inspector, the histogram and the compare modes work on it) and the restored frame, when there is one,
as the source "Restored"; plays the shot at its frame rate, dropping frames rather than stalling when decoding
is slower; and runs the selected model over the whole shot (gui/shot_run.py).

Frames are decoded off the GUI thread into a memory-bounded cache (gui/frame_cache.py). While playing, the
viewer's images are swapped directly; the compare bar, the scores and the histogram follow once the frame stays.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget

from engine.api import Image

from . import background
from .display_cache import TILE, DisplayPyramid
from .frame_cache import FrameCache, FrameLoader
from .transport import DEFAULT_FPS, PlaybackClock, RateMeter, TransportBar
from .viewer import display_converter

if TYPE_CHECKING:
    from .main_window import MainWindow

#: The restored frame's source key (A / B in the compare bar).
RESULT_KEY = "shot:result"
#: Milliseconds a frame must stay before the compare bar, scores and histogram follow it (scrubbing stays fluid).
SETTLE_MS = 120
#: Frames read ahead of the one shown while playing (also bounded by the cache's budget).
READ_AHEAD = 6
#: Memory for frames' display tiles made ahead on the reading threads (bytes), and the most tiles made per frame.
PREPARED_BYTES = 256 << 20
PREPARED_TILES = 16


def frame_rate(image: Image) -> float | None:
    """The frame rate a file records (an EXR's ``framesPerSecond``), or None."""
    extra = image.meta.extra
    value = (extra.get("exr_header") or {}).get("framesPerSecond")
    layout = extra.get("exr_layout")
    if value is None and layout is not None:
        for part in getattr(layout, "parts", ()) or ():
            value = (part.get("header") or {}).get("framesPerSecond")
            if value is not None:
                break
    try:
        if isinstance(value, (list, tuple)) and len(value) == 2:
            value = Fraction(int(value[0]), int(value[1]))
        rate = float(value) if value is not None else None
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return rate if rate is not None and 1.0 <= rate <= 240.0 else None


def is_pattern(text: str) -> bool:
    name = Path(text).name
    return "#" in name or ("%" in name and "d" in name)


class SequenceNotice(QFrame):
    """"shot_1004.exr is frame 4 of shot_####.exr (100 frames) [Open as Shot] [x]": above the viewer, never modal.
    Also the other way round: a folder opened as a shot offers [Queue as Images]."""

    accepted = Signal()
    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sequenceNotice")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#sequenceNotice { background: rgba(70, 120, 190, 60); border: 1px solid "
                           "rgba(110, 160, 230, 120); border-radius: 3px; }")
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.open_button = QPushButton("Open as Shot")
        self.open_button.setToolTip("Open every frame of the sequence as one shot (frame slider, playback, "
                                    "restore the whole shot)")
        self.open_button.clicked.connect(self.accepted)
        self.close_button = QToolButton()
        self.close_button.setText("\u2715")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Keep working on this one frame")
        self.close_button.clicked.connect(self.hide)
        self.close_button.clicked.connect(self.dismissed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 3, 4, 3)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.open_button)
        layout.addWidget(self.close_button)
        self.hide()

    def offer(self, text: str, button: str = "Open as Shot", tip: str = "") -> None:
        self.label.setText(text)
        self.open_button.setText(button)
        if tip:
            self.open_button.setToolTip(tip)
        self.show()


class ShotView(QObject):
    """The open shot, its current frame, playback and the transport bar (see the module's docstring)."""

    #: A shot was opened (its label).
    shotOpened = Signal(str)
    #: The frame (number) now shown in the viewer.
    frameShown = Signal(int)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.shot = None  # engine Shot
        #: The output pattern restored frames are written to (None until a run or a known output).
        self.output_pattern: str | None = None
        self.index = 0
        self._shown_index = -1
        self._shown_paths: tuple[str | None, str | None] = (None, None)
        self.loader = FrameLoader(FrameCache(), threads=2, parent=self)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_load_failed)
        self.loader.after_read = self._prepare_display
        #: (exposure, tone map, zoom) of the viewer, for the reading threads; and the frames they prepared.
        self._display_snapshot = window.viewer.display_settings()
        self._prepared: OrderedDict[str, tuple[Image, DisplayPyramid, tuple[float, str], int]] = OrderedDict()
        self._prepared_lock = threading.Lock()
        self.clock = PlaybackClock(1)
        self.meter = RateMeter()
        self.play_timer = QTimer(self)
        self.play_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.play_timer.timeout.connect(self._tick)
        self.settle_timer = QTimer(self)
        self.settle_timer.setSingleShot(True)
        self.settle_timer.setInterval(SETTLE_MS)
        self.settle_timer.timeout.connect(self._settle)
        self._candidate: tuple[object, Path] | None = None  # (shot, frame file) the notice offers
        self._queue_folder: str | None = None  # a folder opened as a shot, which the notice offers to queue
        #: Shots (patterns) the user turned down this session: their frames are not offered as a shot again.
        self._declined: set[str] = set()
        self._select_result = False  # the next settle puts the restored frame in B
        self._first_frame_pending: str | None = None
        self.shot_run = None
        self._missing: frozenset[int] = frozenset()
        self._last_due = -1
        self._described = ""
        self._output_paths: tuple[str | None, list[str]] = (None, [])
        #: The side ("a" / "b") the user shows the restored frame on: frames without one show the input there
        #: for the time being, and the restored frame comes back on the frames that have it.
        self._result_in: str | None = None
        self._settling = False
        self.last_error = ""
        self.done: set[int] = set()  # indices whose restored frame exists
        #: Where each shot opened this session was restored to (its pattern -> the output pattern).
        self.outputs: dict[str, str] = {}

        self.transport = TransportBar(window._icon)
        self.transport.hide()
        self.transport.indexRequested.connect(self.go_to)
        self.transport.playToggled.connect(self.set_playing)
        self.transport.fpsChanged.connect(self._on_fps)
        self.transport.loopChanged.connect(lambda loop: setattr(self.clock, "loop", loop))
        self.notice = SequenceNotice()
        self.notice.accepted.connect(self._notice_accepted)
        self.notice.dismissed.connect(self._notice_dismissed)
        layout: QVBoxLayout = window.centralWidget().layout()
        layout.insertWidget(layout.indexOf(window.viewer), self.notice)
        layout.addWidget(self.transport)
        self._build_actions()
        window.compare_bar.sourcesChanged.connect(self._on_sources_chosen)

    # == actions ===============================================================================================
    def _build_actions(self) -> None:
        window = self.window
        self.act_open_shot = QAction("Open &Shot\u2026", window)
        self.act_open_shot.setIcon(window._icon("shot"))
        self.act_open_shot.setProperty("iconName", "shot")
        self.act_open_shot.setShortcut(QKeySequence("Ctrl+Alt+O"))
        self.act_open_shot.setStatusTip("Open a numbered image sequence (pick any of its frames) as one shot")
        self.act_open_shot.triggered.connect(self.open_shot_dialog)
        window.addAction(self.act_open_shot)
        file_menu = next(a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "File")
        file_menu.insertAction(window.act_open_folder, self.act_open_shot)
        # Frame keys act anywhere in the window while a shot is open (fields that take these keys, such as a
        # number being typed, keep them); with no shot they are off, so a single image keeps its arrow-key panning
        # and its flicker Space.
        self.frame_actions: list[QAction] = []
        for text, key, slot in (("Play / Pause", "Space", self.toggle_playing),
                                ("Next Frame", "Right", lambda: self.step(+1)),
                                ("Previous Frame", "Left", lambda: self.step(-1)),
                                ("First Frame", "Home", lambda: self.go_to(0)),
                                ("Last Frame", "End", lambda: self.go_to(self.count() - 1))):
            action = QAction(text, window)
            action.setShortcut(QKeySequence(key))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.setEnabled(False)
            action.triggered.connect(slot)
            window.addAction(action)
            self.frame_actions.append(action)
        view = next(a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "View")
        shot_menu = view.addMenu("Pla&yback")
        shot_menu.addActions(self.frame_actions)

    def set_icons(self, icon_for) -> None:
        self.transport.set_icons(icon_for)

    # == opening ===============================================================================================
    def is_open(self) -> bool:
        return self.shot is not None

    def count(self) -> int:
        return len(self.shot.frames) if self.shot is not None else 0

    def frame(self) -> int | None:
        return self.shot.frames[self.index] if self.shot is not None else None

    def open_shot_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        from .opening import image_file_filter

        path, _ = QFileDialog.getOpenFileName(self.window, "Open shot: choose any frame of the sequence",
                                              self.window.settings.last_folder, image_file_filter())
        if path:
            self.open_path(path, at=path)

    def open_paths(self, paths: list[str]) -> bool:
        """The window's open: a frame pattern, or one folder holding a numbered sequence, opens as a shot.
        True when handled here (the window then does nothing else)."""
        if len(paths) != 1:
            return False
        from engine.api import EngineError, find_shot, folder_is_shot

        path = Path(paths[0])
        if path.is_file():
            return False  # one image (a frame of a sequence is offered as a shot once it is open)
        try:
            shot = find_shot(path)
        except EngineError as error:
            if path.is_dir():  # e.g. several sequences in one folder: its images are queued, and why is said
                self.window.flash(f"{error}", 10000)
                return False
            self.window.show_error("Cannot open the shot", str(error))
            return True
        if shot is not None and len(shot.frames) >= 2:
            if path.is_dir() and not folder_is_shot(shot):
                # The engine's rule, as on the command line: a folder of numbered photos or scans is a batch; the
                # queue's first image then offers its shot (image_opened).
                return False
            self.open_shot(shot)
            if path.is_dir():  # frames may still be meant as separate images: one click queues them
                self._queue_folder = str(path)
                self.notice.offer(f"The folder \u201c{path.name}\u201d is open as one shot: {shot.name}, "
                                  f"{len(shot.frames)} frames.",
                                  "Queue as Images", "Put every image of the folder in the queue instead, to "
                                  "process them one by one as separate images")
            return True
        if not path.exists() and is_pattern(str(path)):
            self.window.show_error("No frames found", f"No file matches {path.name} in {path.parent}.")
            return True
        return False

    def open_path(self, path: str, at: str | None = None) -> bool:
        """Open the shot ``path`` names (pattern, folder, or one of its frames); an error dialog when none."""
        from engine.api import EngineError, find_shot

        try:
            shot = find_shot(path)
        except (EngineError, OSError, ValueError) as error:
            self.window.show_error("Cannot open the shot", str(error))
            return False
        if shot is None or not shot.frames:
            self.window.show_error("No shot found",
                                   f"{Path(path).name} is not part of a numbered sequence (e.g. shot_0001.exr, "
                                   "shot_0002.exr\u2026); open it as an image instead.")
            return False
        start = 0
        if at is not None:
            for index, frame in enumerate(shot.frames):
                if Path(shot.path(frame)) == Path(at):
                    start = index
                    break
        self.open_shot(shot, start)
        return True

    def open_shot(self, shot, index: int = 0) -> None:
        """Show ``shot`` from frame ``index``: its first frame opens like an image (model suggestion, panel)."""
        self.close()
        self.shot = shot
        self._output_paths = (None, [])
        self.index = min(max(index, 0), len(shot.frames) - 1)
        self.output_pattern = self.outputs.get(shot.pattern)
        if self.output_pattern is None:
            from .shot_run import default_output

            candidate = default_output(shot)
            self.output_pattern = candidate if self._any_output_exists(candidate) else None
        self.clock = PlaybackClock(len(shot.frames), DEFAULT_FPS, self.transport.loop())
        self._missing = frozenset(shot.missing)
        self.transport.set_frames(shot.frames)
        self.transport.slider.set_missing(shot.frames.index(f) for f in shot.missing)
        self.transport.set_index(self.index)
        self.transport.set_fps(DEFAULT_FPS)
        self.transport.show()
        self.notice.hide()
        self._queue_folder = None
        for action in self.frame_actions:
            action.setEnabled(True)
        self.window.viewer.flicker_hint = "Click to flip between A and B (Space plays the shot)"
        self.scan_outputs()
        self.window.flash(f"Opening shot {shot.label}\u2026")
        path = str(shot.path(shot.frames[self.index]))
        self._first_frame_pending = path
        image = self.loader.request(path)
        if image is not None:
            self._on_loaded(path, image)

    def close(self) -> None:
        """Back to single images (another image was opened)."""
        if self.shot is None:
            return
        self.set_playing(False)
        self.shot = None
        self.output_pattern = None
        self.done = set()
        self._shown_index = -1
        self._shown_paths = (None, None)
        self._first_frame_pending = None
        self._missing = frozenset()
        self.window.viewer.set_notice("")
        self.loader.clear()
        with self._prepared_lock:
            self._prepared.clear()
        self.transport.hide()
        for action in self.frame_actions:
            action.setEnabled(False)
        self._select_result = False
        self._result_in = None
        from .viewer import FLICKER_HINT

        self.window.viewer.flicker_hint = FLICKER_HINT
        self.window.session.shot_result = None
        self.window.session.shot_result_path = None

    def image_opened(self, path: str) -> None:
        """A single image was opened: when it is a frame of a numbered sequence, offer the shot (a notice)."""
        self.notice.hide()
        self._candidate = None
        if self.shot is not None:
            return

        def look():
            from engine.api import find_shot

            return find_shot(path)

        def found(shot) -> None:
            if shot is None or len(shot.frames) < 2 or self.shot is not None or shot.pattern in self._declined:
                return
            if self.window.session.original_path is None or Path(self.window.session.original_path) != Path(path):
                return  # another image was opened meanwhile
            self._candidate = (shot, Path(path))
            index = next((i for i, f in enumerate(shot.frames) if Path(shot.path(f)) == Path(path)), None)
            where = f"frame {shot.frames[index]} of " if index is not None else "part of "
            self.notice.offer(f"{Path(path).name} is {where}the shot {Path(shot.pattern).name} "
                              f"({len(shot.frames)} frames, {shot.first}\u2013{shot.last}).")

        background.call_in_background(look, found, lambda error, details: None)

    def _notice_dismissed(self) -> None:
        if self._candidate is not None:
            self._declined.add(self._candidate[0].pattern)
            self._candidate = None

    def _notice_accepted(self) -> None:
        self.notice.hide()
        if self._queue_folder is not None:
            folder, self._queue_folder = self._queue_folder, None
            if self.shot is not None:
                self._declined.add(self.shot.pattern)
            self.close()
            self.window.queue_folder(folder)
            return
        if self._candidate is None:
            return
        shot, path = self._candidate
        self._candidate = None
        index = next((i for i, f in enumerate(shot.frames) if Path(shot.path(f)) == path), 0)
        self.open_shot(shot, index)

    # == frames ================================================================================================
    def input_path(self, index: int) -> str:
        return str(self.shot.path(self.shot.frames[index]))

    def output_path(self, index: int) -> str | None:
        if self.output_pattern is None:
            return None
        if self._output_paths[0] != self.output_pattern:  # worked out once per output (asked many times a second)
            from .shot_run import output_frame_path

            self._output_paths = (self.output_pattern,
                                  [str(output_frame_path(self.output_pattern, f)) for f in self.shot.frames])
        return self._output_paths[1][index]

    def _any_output_exists(self, pattern: str) -> bool:
        from .shot_run import output_frame_path

        return any(Path(output_frame_path(pattern, f)).is_file() for f in self.shot.frames)

    def scan_outputs(self, indices=None) -> None:
        """Which frames have their restored file (all, or ``indices``); the slider marks them."""
        if self.shot is None:
            return
        if self.output_pattern is None:
            self.done = set()
        else:
            for index in range(self.count()) if indices is None else indices:
                path = self.output_path(index)
                if path is not None and Path(path).is_file():
                    self.done.add(index)
                else:
                    self.done.discard(index)
        self.transport.set_done(self.done)

    def _on_sources_chosen(self, a_key: str, b_key: str) -> None:
        """The compare bar changed: when the user did it, remember on which side they want the restored frame."""
        if self._settling or self.shot is None:
            return
        self._result_in = "a" if a_key == RESULT_KEY else "b" if b_key == RESULT_KEY else None

    def _effective_keys(self, has_result: bool) -> tuple[str | None, str | None]:
        """The compare bar's (A, B), with the restored frame back on its side when this frame has one."""
        a_key, b_key = self.window.compare_bar.keys()
        if has_result and self._result_in == "a" and a_key == "original":
            a_key = RESULT_KEY
        if has_result and self._result_in == "b" and b_key == "original":
            b_key = RESULT_KEY
        return a_key, b_key

    def _wanted_paths(self, index: int) -> tuple[str, str | None]:
        """(input, restored or None) of frame ``index``: the restored one when it exists and is shown (or about
        to be: a run just finished it)."""
        result = self.output_path(index) if index in self.done else None
        a_key, b_key = self.window.compare_bar.keys()
        if RESULT_KEY not in (a_key, b_key) and self._result_in is None and not self._select_result \
                and self.play_timer.isActive():
            result = None  # not shown: not read while playing
        return self.input_path(index), result

    def set_output(self, pattern: str | None) -> None:
        """Where this shot's restored frames are (a run's output)."""
        self.output_pattern = pattern
        if self.shot is not None and pattern is not None:
            self.outputs[self.shot.pattern] = pattern
        self.scan_outputs()

    def session_result_missing(self) -> bool:
        """The shown frame's restored file exists but is not what B can show yet."""
        return self._shown_paths[1] != self.output_path(self.index)

    def show_result_now(self, select: bool = False) -> None:
        """The current frame was just restored: read it and show it (as B when ``select``)."""
        if self.shot is None or self.play_timer.isActive():
            return
        self._select_result = self._select_result or select
        self._show_when_ready(self.index)

    def run(self, request) -> None:
        """Run pressed with the shot open: the whole shot (gui/shot_run.py)."""
        from .shot_run import ShotRun

        if self.window.runner.is_running():
            return
        self.set_playing(False)
        self.shot_run = ShotRun(self)
        self.shot_run.ask(request)

    def go_to(self, index: int) -> None:
        """Show frame ``index`` as soon as it is read (at once when cached)."""
        if self.shot is None:
            return
        self.index = min(max(int(index), 0), self.count() - 1)
        self.transport.set_index(self.index)
        self._show_when_ready(self.index)

    def step(self, delta: int) -> None:
        if self.shot is not None:
            self.set_playing(False)
            self.go_to(min(max(self.index + delta, 0), self.count() - 1))

    def _cached(self, index: int):
        """(input, restored) images of ``index`` when every one shown is cached, else None; and their paths."""
        paths = self._wanted_paths(index)
        images = [self.loader.cached(p) if p is not None else None for p in paths]
        ready = images[0] is not None and (paths[1] is None or images[1] is not None)
        return (images if ready else None), paths

    def _ahead(self, start: int, count: int) -> list[int]:
        """``count`` indices from ``start`` on (wrapping when looping)."""
        found = []
        for step in range(count):
            index = start + step
            if index >= self.count():
                if not self.clock.loop:
                    break
                index %= self.count()
            found.append(index)
        return found

    def _read_line(self, indices) -> list[str]:
        line = []
        for index in indices:
            if self.shot.frames[index] not in self._missing:
                line.extend(p for p in self._wanted_paths(index) if p is not None)
        return line

    def _show_when_ready(self, index: int, read_ahead: int = 2) -> bool:
        """Show ``index`` now if its images are cached (True); else read them first (then a few after it)."""
        if self.shot.frames[index] in self._missing:
            self._shown_index = index
            self.window.viewer.set_notice(f"Frame {self.shot.frames[index]} is missing: "
                                          f"{Path(self.input_path(index)).name} does not exist")
            self.window.image_label.setText(f"frame {self.shot.frames[index]} missing")
            return False
        images, paths = self._cached(index)
        self.loader.want(self._read_line(self._ahead(index, read_ahead + 1)))
        if images is not None:
            self._display(index, images[0], images[1], paths)
        return images is not None

    def _on_loaded(self, path: str, image: Image) -> None:
        if self.shot is None:
            return
        if self._first_frame_pending == path:
            self._first_frame_pending = None
            self._open_first_frame(image, path)
            return
        if not self.play_timer.isActive() and self._shown_index != self.index:
            self._show_when_ready(self.index)
        elif not self.play_timer.isActive() and path in self._wanted_paths(self.index) \
                and path not in self._shown_paths:
            self._show_when_ready(self.index)  # the restored frame arrived after its input

    def _on_load_failed(self, path: str, message: str) -> None:
        self.last_error = message
        if self._first_frame_pending == path:
            self._first_frame_pending = None
            shot_label = self.shot.label if self.shot is not None else ""
            self.close()
            self.window.show_error(f"Cannot open the shot {shot_label}", message)
            return
        self.window.flash(f"{Path(path).name}: {message}", 8000)

    def _open_first_frame(self, image: Image, path: str) -> None:
        """The shot's first shown frame opens like an image: model suggestion, model panel, title, fit."""
        window = self.window
        window.set_original(image, Path(path))
        rate = frame_rate(image)
        self.transport.set_fps(rate or DEFAULT_FPS)
        self.clock.fps = self.transport.fps()
        self._shown_index = self.index
        self._shown_paths = (path, None)
        window.settings.add_recent_file(self.shot.pattern)
        window.settings.last_folder = str(Path(path).resolve().parent)
        from .main_window import APP_TITLE

        window.setWindowTitle(f"{self.shot.name} \u2014 {APP_TITLE}")
        window.flash(f"Opened {self.shot.label}"  # the label counts the missing frames
                     + (f", {len(self.done)} already restored" if self.done else "")
                     + " \u00b7 Space plays, \u2190 \u2192 step", 8000)
        self._settle()
        if self.index in self.done:  # restored before: its restored frame becomes B once read
            self.show_result_now(select=True)
        self.shotOpened.emit(self.shot.label)

    def _display(self, index: int, a_image: Image, b_image: Image | None, paths) -> None:
        """Put frame ``index`` in the viewer now; the compare bar and scores follow when it stays."""
        window = self.window
        session = window.session
        session.open(a_image, Path(paths[0]))
        session.shot_result = b_image
        session.shot_result_path = Path(paths[1]) if paths[1] else None
        self._shown_index = index
        self._shown_paths = (paths[0], paths[1])
        window.viewer.set_notice("")
        a_key, b_key = self._effective_keys(b_image is not None)
        a = self._source_image(a_key)
        b = self._source_image(b_key)
        window.viewer.set_images(a[0], b[0], a[1], b[1])
        self._adopt_prepared(dict(zip(paths, (a_image, b_image), strict=True)))
        self._display_snapshot = window.viewer.display_settings()
        self.frameShown.emit(self.shot.frames[index])
        if self.play_timer.isActive():
            self.meter.tick(time.monotonic())
            self._show_frame_words(index)
        else:
            self.settle_timer.start()

    def _prepare_display(self, path: str, image: Image) -> None:
        """On a reading thread: the frame's display tiles at the viewer's zoom, exposure and tone map, so that
        showing it costs the GUI thread a blit, not a tone mapping (playback keeps its rate on big frames)."""
        exposure, tonemap, zoom = self._display_snapshot
        pyramid = DisplayPyramid(image.pixels, display_converter(image, exposure, tonemap), image.alpha)
        level = pyramid.level_for_zoom(zoom)
        width, height = pyramid.level_size(level)
        across, down = -(-width // TILE), -(-height // TILE)
        if across * down <= PREPARED_TILES:
            for ty in range(down):
                for tx in range(across):
                    pyramid.tile(level, ty, tx)
        else:  # zoomed far into a big frame: its stand-in only (the visible tiles are made while painting)
            pyramid.thumbnail()
        # Its 8-bit tiles, and the smaller float levels built on the way (a third of the pixels' bytes at most).
        size = 4 * width * height + (int(image.pixels.nbytes) // 3 if level else 0)
        with self._prepared_lock:
            self._prepared.pop(path, None)
            self._prepared[path] = (image, pyramid, (exposure, tonemap), size)
            while sum(entry[3] for entry in self._prepared.values()) > PREPARED_BYTES and len(self._prepared) > 1:
                self._prepared.popitem(last=False)

    def _adopt_prepared(self, images: dict) -> None:
        """Hand the viewer the display tiles a reading thread made for these (path -> image) frames."""
        for path, image in images.items():
            if path is None or image is None:
                continue
            with self._prepared_lock:
                entry = self._prepared.get(path)
                if entry is not None:
                    self._prepared.move_to_end(path)  # a loop shows it again: kept while memory allows
            if entry is not None and entry[0] is image:
                self.window.viewer.adopt_pyramid(image, entry[1], entry[2])

    def _show_frame_words(self, index: int) -> None:
        """While playing: the status line and the compare bar's names follow the frame (cheaply: the image is
        described again once playback stops)."""
        window, session = self.window, self.window.session
        frame = self.shot.frames[index]
        window.image_label.setText(f"{self._described} \u00b7 frame {frame} ({index + 1}/{self.count()})")
        names = {"original": f"Original ({session.original_path.name})", RESULT_KEY: session.shot_result_label()}
        for combo in (window.compare_bar.a_combo, window.compare_bar.b_combo):
            for key, name in names.items():
                found = combo.findData(key)
                if found >= 0:
                    combo.setItemText(found, name)

    def _source_image(self, key: str | None) -> tuple[Image | None, str]:
        session = self.window.session
        if key == "original":  # the two a shot plays, without building the other sources each frame
            return session.original, f"Original ({session.original_path.name})"
        if key == RESULT_KEY:
            return session.shot_result, session.shot_result_label()
        source = session.source(key) if key else None
        if source is None:
            return None, "A"
        return source.image, source.label

    def _settle(self, b_key: str | None = None) -> None:
        """The frame stays: the compare bar's sources, the scores, the histogram and the status follow it."""
        window = self.window
        if self.shot is None:
            return
        has_result = window.session.shot_result is not None
        a_key, current_b = self._effective_keys(has_result)
        if b_key is None:
            b_key = RESULT_KEY if self._select_result else current_b
        if self._select_result and has_result:
            self._select_result = False
        if not has_result:  # this frame has no restored file (yet): its input there meanwhile
            a_key = "original" if a_key == RESULT_KEY else a_key
            b_key = "original" if b_key == RESULT_KEY else b_key
        window.history_panel.set_results(window.session.results, window.session.is_saved)
        self._settling = True
        try:
            window._refresh_sources(a_key or "original", b_key or "original")
        finally:
            self._settling = False
        if RESULT_KEY in (a_key, b_key):
            self._result_in = "a" if a_key == RESULT_KEY else "b"
        from .opening import describe_image

        image = window.session.original
        frame = self.frame()
        self._described = describe_image(image)
        text = self._described + f" \u00b7 frame {frame} ({self.index + 1}/{self.count()})"
        window.image_label.setText(text)
        window.image_label.setToolTip(text)

    # == playback ==============================================================================================
    def toggle_playing(self) -> None:
        self.set_playing(not self.play_timer.isActive())

    def set_playing(self, playing: bool) -> None:
        if playing and self.shot is None:
            return
        if playing == self.play_timer.isActive():
            self.transport.set_playing(playing)
            return
        if playing:
            if not self.clock.loop and self.index >= self.count() - 1:
                self.go_to(0)
            self.clock.fps = self.transport.fps()
            self.clock.start(self.index, time.monotonic())
            self._last_due = -1
            self.meter.reset()
            self.settle_timer.stop()
            self.play_timer.start(max(1, int(500 / self.clock.fps)))  # twice per frame: a due frame waits <= 1/2
        else:
            self.play_timer.stop()
            if self.shot is not None:
                self.transport.set_index(self.index)
                self.settle_timer.start()
        self.transport.set_playing(playing)

    def playing(self) -> bool:
        return self.play_timer.isActive()

    def _tick(self) -> None:
        """Playback: show the newest decoded frame that is due, and read the frames that will be due by the time
        a read ends; frames that cannot be decoded in time are skipped (playback keeps time)."""
        if self.shot is None:
            self.set_playing(False)
            return
        now = time.monotonic()
        self._display_snapshot = self.window.viewer.display_settings()
        due = self.clock.due(now)
        if due is None:  # past the last frame, no loop: stop on it
            self.set_playing(False)
            self.go_to(self.count() - 1)
            return
        fits = self.loader.cache.frames_that_fit(self._frame_bytes() * (2 if self._shown_paths[1] else 1))
        read_ahead = max(1, min(READ_AHEAD, fits // 2))
        lead = math.ceil(self.loader.read_seconds * self.clock.fps) if self.loader.read_seconds else 0
        if due != self._last_due:
            self._last_due = due
            self.loader.want(self._read_line(self._ahead(due + lead if lead > 1 else due, read_ahead)))
        newest = self._newest_ready(due, lead + read_ahead)
        if newest is not None:
            images, paths = self._cached(newest)
            self.index = newest
            self._display(newest, images[0], images[1], paths)
            self.transport.set_index(newest)
        self.transport.show_rate(self.meter.rate(now), self.clock.fps)

    def _newest_ready(self, due: int, window: int) -> int | None:
        """The latest frame up to ``due`` (and newer than the one shown) whose images are decoded, or None."""
        for back in range(window + 1):
            index = due - back
            if index < 0:
                if not self.clock.loop:
                    return None
                index %= self.count()
            if index == self._shown_index:
                return None
            if self.shot.frames[index] not in self._missing and self._cached(index)[0] is not None:
                return index
        return None

    def _frame_bytes(self) -> int:
        image = self.window.session.original
        return int(image.pixels.nbytes) if image is not None else 1

    def _on_fps(self, fps: float) -> None:
        if self.play_timer.isActive():
            self.clock.set_fps(fps, time.monotonic())
            self.play_timer.start(max(1, int(500 / fps)))
        else:
            self.clock.fps = fps

    def shutdown(self) -> None:
        self.set_playing(False)
        self.loader.want([])
        self.loader.wait_idle(3000)
