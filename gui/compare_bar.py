"""The bar above the viewer: which two images to compare, how, and the HDR display settings."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QToolButton,
    QWidget,
)

from engine.api import tonemap_label

from .diffmap import ERROR_KINDS
from .session import Source
from .viewer import MODES

MODE_ICONS = {"split": "split", "side": "side", "flicker": "flicker", "diff": "diff"}


class CompareBar(QWidget):
    sourcesChanged = Signal(str, str)  # keys of A and B
    modeChanged = Signal(str)
    errorKindChanged = Signal(str)
    exposureChanged = Signal(float)
    tonemapChanged = Signal(str)

    def __init__(self, tonemaps: tuple[str, ...], icon_for, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.a_combo = QComboBox()
        self.b_combo = QComboBox()
        for combo, tip in ((self.a_combo, "A: left / baseline image"), (self.b_combo, "B: right / compared image")):
            # Long names do not widen the bar (and so the window): the combo takes the room there is, up to 260 px.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
            combo.setMaximumWidth(260)
            combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            combo.setToolTip(tip)
            combo.currentIndexChanged.connect(self._emit_sources)
        self.swap_button = QToolButton()
        self.swap_button.setIcon(icon_for("swap"))
        self.swap_button.setToolTip("Swap A and B (X)")
        self.swap_button.clicked.connect(self.swap)

        self.mode_buttons: dict[str, QToolButton] = {}
        self.mode_group = QButtonGroup(self)
        self.mode_group.setExclusive(True)
        for index, (mode, label) in enumerate(MODES.items()):
            button = QToolButton()
            button.setCheckable(True)
            button.setIcon(icon_for(MODE_ICONS[mode]))
            button.setText(label)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setToolTip(f"{label} (Ctrl+{index + 1})")
            button.clicked.connect(lambda _=False, m=mode: self.set_mode(m, emit=True))
            self.mode_group.addButton(button)
            self.mode_buttons[mode] = button
        self.mode_buttons["split"].setChecked(True)
        # With little room the mode buttons drop their words (kept in the tooltips), so the bar never makes the
        # window wider than the screen; see resizeEvent.
        self._text_widths = {mode: button.sizeHint().width() for mode, button in self.mode_buttons.items()}
        for button in self.mode_buttons.values():
            button.setMinimumWidth(button.iconSize().width() + 12)

        self.error_combo = QComboBox()
        for kind, label in ERROR_KINDS.items():
            self.error_combo.addItem(label, kind)
        self.error_combo.setToolTip("What the difference view shows (false colour; the bar gives the scale)")
        self.error_combo.currentIndexChanged.connect(
            lambda _: self.errorKindChanged.emit(self.error_combo.currentData()))
        self.error_combo.setVisible(False)
        self.error_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.error_combo.setMinimumContentsLength(10)

        self.exposure_slider = QSlider(Qt.Orientation.Horizontal)
        self.exposure_slider.setRange(-100, 100)  # tenths of a stop
        self.exposure_slider.setFixedWidth(90)
        self.exposure_slider.setToolTip("Exposure in stops, applied to every pane (E / Shift+E, R resets)")
        self.exposure_box = QDoubleSpinBox()
        self.exposure_box.setRange(-10.0, 10.0)
        self.exposure_box.setSingleStep(0.5)
        self.exposure_box.setDecimals(1)
        self.exposure_box.setSuffix(" EV")
        self.exposure_slider.valueChanged.connect(lambda v: self.exposure_box.setValue(v / 10.0))
        self.exposure_box.valueChanged.connect(self._on_exposure)
        self.tonemap_combo = QComboBox()
        for name in tonemaps:
            self.tonemap_combo.addItem(tonemap_label(name), name)
        self.tonemap_combo.setToolTip("View transform for HDR images (all panes); the OCIO ones are OpenColorIO's "
                                      "own ACES views")
        self.tonemap_combo.currentIndexChanged.connect(
            lambda _: self.tonemapChanged.emit(self.tonemap_combo.currentData()))

        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 3, 6, 3)
        layout.setSpacing(6)
        layout.addWidget(QLabel("A"))
        layout.addWidget(self.a_combo, 1)  # the combos take the room there is (up to their 260 px)
        layout.addWidget(self.swap_button)
        layout.addWidget(QLabel("B"))
        layout.addWidget(self.b_combo, 1)
        layout.addSpacing(12)
        for button in self.mode_buttons.values():
            layout.addWidget(button)
        layout.addWidget(self.error_combo)
        layout.addStretch(1)
        # Exposure and tone map sit in the main toolbar (see display_controls), where there is room.
        self.display_controls = QWidget()
        display = QHBoxLayout(self.display_controls)
        display.setContentsMargins(0, 0, 6, 0)
        display.setSpacing(6)
        display.addWidget(QLabel("Exposure"))
        display.addWidget(self.exposure_slider)
        display.addWidget(self.exposure_box)
        display.addWidget(QLabel("Tone map"))
        display.addWidget(self.tonemap_combo)
        self._updating = False

    def _width_with_words(self) -> int:
        """The width the bar needs to show the mode buttons' words (the A/B combos at their smallest)."""
        layout = self.layout()
        margins = layout.contentsMargins()
        total, shown = margins.left() + margins.right(), 0
        for index in range(layout.count()):
            item = layout.itemAt(index)
            widget = item.widget()
            if widget is None:
                total += item.sizeHint().width()
                continue
            if widget.isHidden():
                continue
            shown += 1
            mode = next((m for m, b in self.mode_buttons.items() if b is widget), None)
            total += self._text_widths[mode] if mode else widget.minimumSizeHint().width()
        return total + layout.spacing() * max(0, shown - 1)

    def _fit_words(self) -> None:
        style = (Qt.ToolButtonStyle.ToolButtonTextBesideIcon if self.width() >= self._width_with_words()
                 else Qt.ToolButtonStyle.ToolButtonIconOnly)
        for button in self.mode_buttons.values():
            if button.toolButtonStyle() != style:
                button.setToolButtonStyle(style)

    def words_shown(self) -> bool:
        return self.mode_buttons["split"].toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonTextBesideIcon

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit_words()

    def set_icons(self, icon_for) -> None:
        """Re-tint the icons (after a theme change)."""
        self.swap_button.setIcon(icon_for("swap"))
        for mode, button in self.mode_buttons.items():
            button.setIcon(icon_for(MODE_ICONS[mode]))

    # -- sources -------------------------------------------------------------------------------------------
    def set_sources(self, sources: list[Source], a_key: str | None, b_key: str | None) -> None:
        """Fill both combos and select ``a_key`` / ``b_key`` (keys missing fall back to the first source)."""
        self._updating = True
        for combo, key in ((self.a_combo, a_key), (self.b_combo, b_key)):
            combo.clear()
            for source in sources:
                combo.addItem(source.label, source.key)
            index = combo.findData(key) if key is not None else -1
            combo.setCurrentIndex(index if index >= 0 else (0 if sources else -1))
            combo.setEnabled(bool(sources))
        self.swap_button.setEnabled(len(sources) > 1)
        self._updating = False
        self._emit_sources()

    def keys(self) -> tuple[str | None, str | None]:
        return self.a_combo.currentData(), self.b_combo.currentData()

    def select(self, a_key: str | None = None, b_key: str | None = None) -> None:
        self._updating = True
        for combo, key in ((self.a_combo, a_key), (self.b_combo, b_key)):
            if key is not None and combo.findData(key) >= 0:
                combo.setCurrentIndex(combo.findData(key))
        self._updating = False
        self._emit_sources()

    def swap(self) -> None:
        a, b = self.keys()
        self.select(b, a)

    def _emit_sources(self) -> None:
        if not self._updating:
            a, b = self.keys()
            self.sourcesChanged.emit(a or "", b or "")

    # -- mode and display ------------------------------------------------------------------------------------
    def set_mode(self, mode: str, emit: bool = False) -> None:
        self.mode_buttons[mode].setChecked(True)
        self.error_combo.setVisible(mode == "diff")
        self._fit_words()
        if emit:
            self.modeChanged.emit(mode)

    def set_exposure(self, stops: float) -> None:
        self.exposure_box.setValue(stops)

    def exposure(self) -> float:
        return float(self.exposure_box.value())

    def _on_exposure(self, value: float) -> None:
        self.exposure_slider.blockSignals(True)
        self.exposure_slider.setValue(round(value * 10))
        self.exposure_slider.blockSignals(False)
        self.exposureChanged.emit(float(value))

    def set_tonemap(self, name: str) -> None:
        index = self.tonemap_combo.findData(name)
        if index >= 0:
            self.tonemap_combo.setCurrentIndex(index)

    def tonemap(self) -> str:
        return self.tonemap_combo.currentData()
