"""The transport bar under the viewer while a shot is open, and the clock that plays it.

:class:`PlaybackClock` decides which frame is due at a given time: playback keeps to the frame rate by skipping
frames that are not decoded in time instead of slowing down (a viewer's "drop frames"), and loops or stops at the
last frame. :class:`RateMeter` measures the rate frames really reached the screen. :class:`TransportBar` is the
widget: first / previous / play-pause / next / last, a frame slider whose groove marks the frames already
restored, the frame number, the frame rate and loop. Positions are indices into the shot's frames (a shot with
holes plays the frames it has); the number shown is the frame number.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QStyle,
    QStyleOptionSlider,
    QToolButton,
    QWidget,
)

DEFAULT_FPS = 24.0
#: Frame rates offered first in the rate box's tooltip (it takes any value in its range).
COMMON_RATES = (23.976, 24.0, 25.0, 29.97, 30.0, 48.0, 50.0, 60.0)


class PlaybackClock:
    """Which frame (an index into ``count`` frames) is due ``now`` seconds into playback at ``fps``."""

    def __init__(self, count: int, fps: float = DEFAULT_FPS, loop: bool = True) -> None:
        self.count = max(1, int(count))
        self.fps = float(fps)
        self.loop = loop
        self._start_index = 0
        self._start_time = 0.0

    def start(self, index: int, now: float) -> None:
        self._start_index = int(index) % self.count
        self._start_time = float(now)

    def set_fps(self, fps: float, now: float) -> None:
        """Change the rate without a jump: playback goes on from the frame due now."""
        due = self.due(now)
        self.fps = float(fps)
        self.start(due if due is not None else self.count - 1, now)

    def due(self, now: float) -> int | None:
        """The index due at ``now``; None once past the last frame without loop."""
        steps = int(math.floor(max(0.0, now - self._start_time) * self.fps + 1e-9))
        index = self._start_index + steps
        if index < self.count:
            return index
        if not self.loop:
            return None
        return index % self.count


class RateMeter:
    """Frames shown per second over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 1.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def reset(self) -> None:
        self._times.clear()

    def tick(self, now: float) -> None:
        self._times.append(now)
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    def rate(self, now: float | None = None) -> float | None:
        times = self._times
        if now is not None:
            while times and now - times[0] > self.window_s:
                times.popleft()
        if len(times) < 2:
            return None
        span = times[-1] - times[0]
        return (len(times) - 1) / span if span > 0 else None


class FrameSlider(QSlider):
    """A horizontal slider over frame indices whose groove shows which frames are restored (a green mark each,
    like a compositor's cache line)."""

    DONE = QColor(80, 190, 110)
    MISSING = QColor(220, 90, 80)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self._done: frozenset[int] = frozenset()
        self._missing: frozenset[int] = frozenset()
        self.setMinimumHeight(22)
        self.setPageStep(10)

    def set_done(self, indices) -> None:
        done = frozenset(int(i) for i in indices)
        if done != self._done:
            self._done = done
            self.update()

    def done(self) -> frozenset[int]:
        return self._done

    def set_missing(self, indices) -> None:
        """Frames of the shot's range that have no file (marked red)."""
        self._missing = frozenset(int(i) for i in indices)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().paintEvent(event)
        if not (self._done or self._missing) or self.maximum() < self.minimum():
            return
        option = QStyleOptionSlider()
        self.initStyleOption(option)
        groove = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                             QStyle.SubControl.SC_SliderGroove, self)
        handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                             QStyle.SubControl.SC_SliderHandle, self)
        span = max(1, groove.width() - handle.width())
        left = groove.left() + handle.width() // 2
        count = self.maximum() - self.minimum() + 1
        width = max(2, int(math.ceil(span / max(1, count - 1))) if count > 1 else 2)
        painter = QPainter(self)
        try:
            y = self.height() - 4
            for marks, colour in ((self._done, self.DONE), (self._missing, self.MISSING)):
                for index in sorted(marks):
                    if not self.minimum() <= index <= self.maximum():
                        continue
                    x = left + QStyle.sliderPositionFromValue(self.minimum(), self.maximum(), index, span)
                    painter.fillRect(QRect(x - width // 2, y, width, 3), colour)
        finally:
            painter.end()


class _RateBox(QDoubleSpinBox):
    """Frames per second, written as short as it is (24, 23.976)."""

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt's name)
        return f"{value:.3f}".rstrip("0").rstrip(".")


class TransportBar(QWidget):
    """First / previous / play / next / last, the frame slider, the frame number, frame rate and loop."""

    #: The user moved to this index (slider, buttons, frame box).
    indexRequested = Signal(int)
    #: Play (True) or pause (False) was asked for.
    playToggled = Signal(bool)
    fpsChanged = Signal(float)
    loopChanged = Signal(bool)

    def __init__(self, icon_for, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._icon_for = icon_for
        self._frames: list[int] = []
        self._playing = False
        self._updating = False

        def button(name: str, tip: str, slot) -> QToolButton:
            made = QToolButton()
            made.setIcon(icon_for(name))
            made.setProperty("iconName", name)
            made.setToolTip(tip)
            made.setAutoRaise(True)
            made.clicked.connect(slot)
            return made

        self.first_button = button("frame_first", "First frame (Home)", lambda: self._go(0))
        self.prev_button = button("frame_prev", "Previous frame (Left)", lambda: self.step(-1))
        self.play_button = button("play", "Play / pause (Space)", lambda: self.playToggled.emit(not self._playing))
        self.next_button = button("frame_next", "Next frame (Right)", lambda: self.step(+1))
        self.last_button = button("frame_last", "Last frame (End)", lambda: self._go(len(self._frames) - 1))

        self.slider = FrameSlider()
        self.slider.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.slider.setToolTip("Frame (drag to scrub; green marks: frames restored)")
        self.slider.valueChanged.connect(self._on_slider)
        self.frame_box = QSpinBox()
        self.frame_box.setToolTip("Frame number (type one to go there)")
        self.frame_box.setKeyboardTracking(False)
        self.frame_box.valueChanged.connect(self._on_frame_box)
        self.position_label = QLabel()
        self.position_label.setToolTip("Position in the shot")
        self.fps_box = _RateBox()
        self.fps_box.setRange(1.0, 240.0)
        self.fps_box.setDecimals(3)
        self.fps_box.setValue(DEFAULT_FPS)
        self.fps_box.setSuffix(" fps")
        self.fps_box.setKeyboardTracking(False)
        self.fps_box.setFixedWidth(self.fps_box.fontMetrics().horizontalAdvance("239.976 fps") + 30)
        self.fps_box.setToolTip("Playback frame rate (from the files when they say; common: "
                                + ", ".join(f"{r:g}" for r in COMMON_RATES) + ")")
        self.fps_box.valueChanged.connect(lambda value: self.fpsChanged.emit(float(value)))
        self.loop_button = QToolButton()
        self.loop_button.setIcon(icon_for("loop"))
        self.loop_button.setProperty("iconName", "loop")
        self.loop_button.setCheckable(True)
        self.loop_button.setChecked(True)
        self.loop_button.setAutoRaise(True)
        self.loop_button.setToolTip("Loop playback")
        self.loop_button.toggled.connect(self.loopChanged)
        self.rate_label = QLabel()
        self.rate_label.setToolTip("The rate frames really reach the screen (frames not decoded in time are "
                                   "skipped, so playback keeps time)")
        self.rate_label.setMinimumWidth(110)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        layout.setSpacing(4)
        for widget in (self.first_button, self.prev_button, self.play_button, self.next_button, self.last_button):
            layout.addWidget(widget)
        layout.addSpacing(4)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.frame_box)
        layout.addWidget(self.position_label)
        layout.addSpacing(8)
        layout.addWidget(self.fps_box)
        layout.addWidget(self.loop_button)
        layout.addWidget(self.rate_label)

    # -- content ----------------------------------------------------------------------------------------------
    def set_frames(self, frames: Sequence[int]) -> None:
        self._frames = [int(f) for f in frames]
        self._updating = True
        self.slider.setRange(0, max(0, len(self._frames) - 1))
        self.slider.setValue(0)
        self.slider.set_done(())
        if self._frames:
            digits = max(len(str(min(self._frames))), len(str(max(self._frames))))
            # Room for the number beside the step buttons (the dark theme pads the text on the right).
            self.frame_box.setMinimumWidth(self.frame_box.fontMetrics().horizontalAdvance("0" * digits) + 46)
            self.frame_box.setRange(min(self._frames), max(self._frames))
            self.frame_box.setValue(self._frames[0])
        self._updating = False
        self._show_position(0)

    def frames(self) -> list[int]:
        return list(self._frames)

    def index(self) -> int:
        return self.slider.value()

    def set_index(self, index: int) -> None:
        """Show ``index`` as the current position (no signal)."""
        if not self._frames:
            return
        index = min(max(int(index), 0), len(self._frames) - 1)
        self._updating = True
        self.slider.setValue(index)
        self.frame_box.setValue(self._frames[index])
        self._updating = False
        self._show_position(index)

    def set_done(self, indices) -> None:
        self.slider.set_done(indices)

    def set_playing(self, playing: bool) -> None:
        self._playing = playing
        name = "pause" if playing else "play"
        self.play_button.setIcon(self._icon_for(name))
        self.play_button.setProperty("iconName", name)
        self.play_button.setToolTip("Pause (Space)" if playing else "Play (Space)")
        if not playing:
            self.rate_label.setText("")

    def playing(self) -> bool:
        return self._playing

    def fps(self) -> float:
        return float(self.fps_box.value())

    def set_fps(self, fps: float) -> None:
        self.fps_box.setValue(float(fps))

    def loop(self) -> bool:
        return self.loop_button.isChecked()

    def show_rate(self, rate: float | None, fps: float) -> None:
        if rate is None:
            self.rate_label.setText("")
            return
        self.rate_label.setText(f"playing {rate:.1f} fps")
        slow = rate < 0.9 * fps
        self.rate_label.setStyleSheet("color: #e0a040;" if slow else "")
        self.rate_label.setToolTip(
            (f"Frames are decoded slower than {fps:g} fps: some are skipped so playback keeps time. "
             if slow else "") + "The rate frames really reach the screen.")

    def set_icons(self, icon_for) -> None:
        self._icon_for = icon_for
        for widget in (self.first_button, self.prev_button, self.play_button, self.next_button, self.last_button,
                       self.loop_button):
            widget.setIcon(icon_for(widget.property("iconName")))

    # -- navigation ----------------------------------------------------------------------------------------
    def step(self, delta: int) -> None:
        if self._frames:
            self._go(min(max(self.index() + delta, 0), len(self._frames) - 1))

    def _go(self, index: int) -> None:
        if not self._frames:
            return
        self.set_index(index)
        self.indexRequested.emit(self.index())

    def _on_slider(self, value: int) -> None:
        if self._updating or not self._frames:
            return
        self._updating = True
        self.frame_box.setValue(self._frames[value])
        self._updating = False
        self._show_position(value)
        self.indexRequested.emit(value)

    def _on_frame_box(self, frame: int) -> None:
        if self._updating or not self._frames:
            return
        # A frame the shot lacks goes to the nearest one it has.
        index = min(range(len(self._frames)), key=lambda i: (abs(self._frames[i] - frame), i))
        self._go(index)

    def _show_position(self, index: int) -> None:
        count = len(self._frames)
        self.position_label.setText(f"{index + 1}/{count}" if count else "")
