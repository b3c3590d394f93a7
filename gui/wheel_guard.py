"""The mouse wheel changes a field only when the field has focus; otherwise it scrolls the panel under it.

Qt's spin boxes, combo boxes and sliders take every wheel turn over them, and take focus from it (WheelFocus):
scrolling a side panel past a noise-level box set it to 0.0 on the way. ``install(app)`` (called once by
``gui.app.create_application``) adds an application-wide event filter that

- gives those widgets the StrongFocus policy (a click or Tab focuses them, the wheel does not), as each is
  polished, and
- sends a wheel turn over such a widget without focus to the scroll area it sits in (so the panel scrolls), or
  drops it when there is none. Once the field has focus (clicked, or reached with Tab), the wheel changes it.

Scroll bars are sliders too, and keep their wheel.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QScrollBar,
    QWidget,
)

#: Widgets whose value a stray wheel turn would change.
GUARDED = (QAbstractSpinBox, QComboBox, QAbstractSlider)


def is_guarded(widget: QObject) -> bool:
    return isinstance(widget, GUARDED) and not isinstance(widget, QScrollBar)


def _scroll_area(widget: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QAbstractScrollArea):
            return parent
        parent = parent.parentWidget()
    return None


def _guard_focus(widget: QWidget) -> None:
    if widget.focusPolicy() == Qt.FocusPolicy.WheelFocus:
        widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)


class WheelGuard(QObject):
    """The application event filter (see the module docstring)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        kind = event.type()
        if kind == QEvent.Type.Polish and is_guarded(watched):
            _guard_focus(watched)
        elif kind == QEvent.Type.Wheel and is_guarded(watched) and not watched.hasFocus():
            _guard_focus(watched)  # a widget polished before the guard was installed
            area = _scroll_area(watched)
            if area is not None:
                bar = area.horizontalScrollBar() if _mostly_horizontal(event) else area.verticalScrollBar()
                QCoreApplication.sendEvent(bar, event.clone())
            return True
        return False


def _mostly_horizontal(event) -> bool:
    delta = event.angleDelta()
    return abs(delta.x()) > abs(delta.y())


def install(app: QApplication) -> WheelGuard:
    """Install the guard on ``app`` once (later calls return the same one); fixes widgets that already exist."""
    guard = getattr(app, "_wheel_guard", None)
    if guard is None:
        guard = WheelGuard(app)
        app.installEventFilter(guard)
        app._wheel_guard = guard
        for widget in QApplication.allWidgets():
            if is_guarded(widget):
                _guard_focus(widget)
    return guard
