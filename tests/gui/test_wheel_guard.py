"""Issue 46, item 2: scrolling a panel with the wheel does not change the field under the cursor (the noise level
ended at 0.0); a field that has focus still takes the wheel."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QScrollArea,
    QScrollBar,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from gui.app import create_application


def wheel(widget: QWidget, steps: int = -1) -> None:
    """A real wheel turn over the middle of ``widget`` (negative: towards the user, i.e. scroll down)."""
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre.toPoint())), QPoint(0, 0),
                        QPoint(0, 120 * steps), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def panel(qtbot):
    create_application()  # installs the guard, as the app does at start-up
    area = QScrollArea()
    content = QWidget()
    layout = QVBoxLayout(content)
    spin, combo, slider = QDoubleSpinBox(), QComboBox(), QSlider(Qt.Orientation.Horizontal)
    spin.setRange(0, 100)
    spin.setValue(25.0)
    combo.addItems(["Fast", "Paper", "Real photo"])
    combo.setCurrentIndex(1)
    slider.setRange(0, 100)
    slider.setValue(50)
    for widget in (spin, combo, slider):
        layout.addWidget(widget)
        layout.addSpacing(400)
    area.setWidget(content)
    area.setWidgetResizable(True)
    area.resize(300, 300)
    qtbot.addWidget(area)
    area.show()
    qtbot.waitExposed(area)
    return area, spin, combo, slider


def test_the_wheel_scrolls_the_panel_instead_of_changing_unfocused_fields(qtbot):
    area, spin, combo, slider = panel(qtbot)
    bar = area.verticalScrollBar()
    for widget in (spin, combo, slider):
        assert widget.focusPolicy() == Qt.FocusPolicy.StrongFocus
        before = bar.value()
        area.ensureWidgetVisible(widget)
        before = bar.value()
        wheel(widget, -1)
        assert bar.value() > before, f"the panel did not scroll over {type(widget).__name__}"
        assert not widget.hasFocus()
    assert (spin.value(), combo.currentIndex(), slider.value()) == (25.0, 1, 50)


def test_a_focused_field_takes_the_wheel(qtbot):
    area, spin, combo, slider = panel(qtbot)
    area.activateWindow()
    for widget in (spin, combo, slider):
        widget.setFocus(Qt.FocusReason.MouseFocusReason)
        qtbot.waitUntil(widget.hasFocus, timeout=2000)
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=2000)
    wheel(spin, 1)
    assert spin.value() == 26.0
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus, timeout=2000)
    wheel(combo, -1)
    assert combo.currentIndex() == 2


def test_scroll_bars_keep_their_wheel(qtbot):
    area, *_ = panel(qtbot)
    bar: QScrollBar = area.verticalScrollBar()
    wheel(bar, -1)
    assert bar.value() > 0


def test_the_main_windows_fields_ignore_a_passing_wheel(window, qtbot):
    spins = window.findChildren(QDoubleSpinBox) + window.findChildren(QComboBox)
    assert spins, "the window has fields to guard"
    assert all(s.focusPolicy() != Qt.FocusPolicy.WheelFocus for s in spins)
    visible = [s for s in spins if s.isVisible() and s.isEnabled() and not s.hasFocus()]
    for field in visible:
        before = field.value() if isinstance(field, QDoubleSpinBox) else field.currentIndex()
        wheel(field, -3)
        after = field.value() if isinstance(field, QDoubleSpinBox) else field.currentIndex()
        assert after == before, field.objectName() or type(field).__name__
