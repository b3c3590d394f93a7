"""The model panel: models grouped by task, what they expect, their parameters, and the Run / Cancel controls.

Task panels written elsewhere (ZSSR) plug in here: they appear as entries of their task and replace the
parameter form with their own widget; the run controller asks them for the job (see :mod:`gui.task_panels`).

What Run runs leaves the panel as one frozen :class:`RunRequest` (``request()``, and the ``runRequested`` signal
carries it): the run controller starts its job from that value alone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.api import (
    AOV_NAMES,
    TASK_LABELS,
    Image,
    ModelEntry,
    ModelManifest,
    ModelRegistry,
    ParamSpec,
    Progress,
    describe_eta,
    headline_scores,
    suggest_model,
    suitability_warning,
)

from .task_panels import TaskPanelSpec

ROLE_KIND = Qt.ItemDataRole.UserRole
ROLE_ID = Qt.ItemDataRole.UserRole + 1
INPUT_LABELS = {"color": "colour", "albedo": "albedo", "normal": "normal", "depth": "depth",
                "noise_level": "noise level"}
#: Shown under the noise level while the opened photo is measured, and once its level fills the box.
MEASURING_NOTE = "Measuring this image's noise\u2026"
MEASURED_NOTE = "Measured from this image"
UNMEASURABLE_NOTE = "Could not measure this image (too small?)"
#: Shown (with the estimator's reason) when a photo was measured but the level is not sure enough to fill in.
UNSURE_NOTE = "Cannot tell this photo's noise level ({reason}): set it yourself"
SOURCE_LABELS = {"builtin": "classical, built in", "bundled": "trained, bundled", "user": "trained on this machine",
                 "blend": "a network of ours or yours blended with a built-in peer (Intel OIDN)"}


#: The task chooser at the top of the panel, in the words a user looks for: (key, label). A key is an engine
#: task, or a task panel's key (ZSSR).
TASK_CHOICES = (
    ("render-denoise", "Render \u2014 remove render noise"),
    ("photo-denoise", "Photo \u2014 remove noise"),
    ("document", "Document \u2014 clean a scanned page"),
    ("super-resolution", "Upscale \u2014 enlarge"),
    ("raw-denoise", "Raw \u2014 denoise a camera raw file before demosaicing"),
    ("zssr", "ZSSR \u2014 enlarge by learning from the image"),
)
_CHOICE_KEYS = {key for key, _label in TASK_CHOICES}
#: How many models the short list shows before "More models".
SHORT_LIST = 3

#: The quality box: passes per tile and what the user reads.
QUALITY_CHOICES = (
    (1, "Standard (one pass)"),
    (4, "High \u00b7 4 passes (4\u00d7 time)"),
    (8, "Best \u00b7 8 passes (8\u00d7 time)"),
)


def progress_text(progress: Progress) -> str:
    """"denoise · 45% · 12 s left" (the parts that are known)."""
    parts = [progress.stage] if progress.stage else []
    if progress.fraction is not None:
        parts.append(f"{progress.fraction * 100:.0f}%")
    eta = describe_eta(progress.eta_s)
    if eta:
        parts.append(eta)
    return " \u00b7 ".join(parts)


def suitability(image: Image, manifest: ModelManifest) -> str | None:
    return suitability_warning(image, manifest)


class ParamForm(QWidget):
    """Controls built from a manifest's ParamSpecs; ``values()`` reads them back.

    ``propose_noise_level`` sets the level the app measured; ``edited`` fires only when the user changes a
    control, so the panel knows which values are the user's own. The "Estimate" button asks the panel
    (``estimateRequested``), which measured the opened image already.
    """

    changed = Signal()
    edited = Signal(str)
    estimateRequested = Signal()

    def __init__(self, specs: tuple[ParamSpec, ...], values: dict[str, Any], parent: QWidget | None = None,
                 image: Image | None = None):
        super().__init__(parent)
        self._proposing = False
        self._noise_box: QDoubleSpinBox | None = None
        self._controls: dict[str, tuple[ParamSpec, QWidget]] = {}
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for spec in specs:
            control = self._control(spec, values.get(spec.name, spec.default))
            control.setToolTip(spec.help)
            label = QLabel(spec.label or spec.name.replace("_", " ").capitalize())
            label.setToolTip(spec.help)
            self._controls[spec.name] = (spec, control)
            if spec.name == "noise_level" and spec.type == "float":
                self._noise_box = control
                layout.addRow(label, self._with_estimate_button(control, image))
                # Where the value came from, on a line of its own (beside the box it would widen the panel).
                layout.addRow("", self.noise_note)
                self._noise_note_row = layout.rowCount() - 1
                layout.setRowVisible(self._noise_note_row, False)
            else:
                layout.addRow(label, control)

    @property
    def takes_noise_level(self) -> bool:
        return self._noise_box is not None

    def set_image(self, image: Image | None) -> None:
        if self._noise_box is not None:
            self.estimate_button.setEnabled(image is not None and not image.meta.hdr)

    def propose_noise_level(self, level: float, note: str) -> None:
        """Set the level the app measured, without counting it as the user's edit; ``note`` (under the box)
        says where it came from."""
        if self._noise_box is None:
            return
        self._proposing = True
        try:
            self._noise_box.setValue(level)
        finally:
            self._proposing = False
        self.set_noise_note(note)

    def set_noise_note(self, note: str) -> None:
        if self._noise_box is not None:
            self.noise_note.setText(note)
            self.layout().setRowVisible(self._noise_note_row, bool(note))

    def _user_changed(self, name: str) -> None:
        if not self._proposing:
            if name == "noise_level":
                self.set_noise_note("")
            self.edited.emit(name)

    def _with_estimate_button(self, box: QWidget, image: Image | None) -> QWidget:
        """The noise level box and an "Estimate" button that puts the image's measured level back (PCA
        estimator); ``noise_note`` (a row of its own) says where the value came from."""
        row = QWidget()
        row_layout = QHBoxLayout(row)
        row_layout.setContentsMargins(0, 0, 0, 0)
        row_layout.addWidget(box, 1)
        self.noise_note = QLabel()
        self.noise_note.setObjectName("noiseNote")
        self.noise_note.setStyleSheet("QLabel#noiseNote { color: #9da5b4; }")
        self.noise_note.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.noise_note.setToolTip("Chen et al. 2015 PCA estimator; type a value to choose your own")
        self.estimate_button = QPushButton("Estimate")
        self.estimate_button.setToolTip("Use this image's measured noise level (Chen et al. 2015 PCA estimator)")
        self.estimate_button.setEnabled(image is not None and not image.meta.hdr)
        self.estimate_button.clicked.connect(self.estimateRequested)
        row_layout.addWidget(self.estimate_button)
        return row

    def _control(self, spec: ParamSpec, value: Any) -> QWidget:
        """The editor of one parameter, showing ``value``; any edit emits ``changed`` and marks the value the
        user's own."""
        control, edited = self._editor(spec, value)
        edited.connect(self.changed)
        edited.connect(lambda _value, name=spec.name: self._user_changed(name))
        return control

    @staticmethod
    def _editor(spec: ParamSpec, value: Any) -> tuple[QWidget, Any]:
        """The widget for ``spec``'s type and the signal it emits when edited."""
        if spec.type == "float":
            box = QDoubleSpinBox()
            box.setRange(spec.min if spec.min is not None else -1e9, spec.max if spec.max is not None else 1e9)
            span = (spec.max or 1.0) - (spec.min or 0.0)
            box.setDecimals(3 if span <= 2 else 2 if span <= 20 else 1)
            box.setSingleStep(span / 100 if spec.min is not None and spec.max is not None else 0.1)
            box.setValue(float(value if value is not None else box.minimum()))
            return box, box.valueChanged
        if spec.type == "int":
            box = QSpinBox()
            box.setRange(int(spec.min) if spec.min is not None else -(2 ** 31),
                         int(spec.max) if spec.max is not None else 2 ** 31 - 1)
            box.setValue(int(value if value is not None else box.minimum()))
            return box, box.valueChanged
        if spec.type == "bool":
            box = QCheckBox()
            box.setChecked(bool(value))
            return box, box.toggled
        combo = QComboBox()
        combo.addItems(list(spec.choices))
        if value in spec.choices:
            combo.setCurrentText(str(value))
        return combo, combo.currentTextChanged

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, (spec, control) in self._controls.items():
            if spec.type == "float":
                out[name] = float(control.value())
            elif spec.type == "int":
                out[name] = int(control.value())
            elif spec.type == "bool":
                out[name] = bool(control.isChecked())
            else:
                out[name] = control.currentText()
        return out

    def control(self, name: str) -> QWidget:
        return self._controls[name][1]


@dataclass(frozen=True)
class RunRequest:
    """What the user asked to run, as the panel showed it when Run was pressed; it does not change afterwards.

    Either a model from the list (``entry``, with its parameter values, tile size and passes per tile) or a task
    panel (``task_panel``, e.g. ZSSR, which builds its own job from its widgets, in the GUI thread).
    """

    title: str
    entry: ModelEntry | None = None
    task_panel: QWidget | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: Tile edge the user chose; None for automatic.
    tile: int | None = None
    #: Passes per tile (1, 4 or 8: the Passes setting).
    ensemble: int = 1
    #: The noise level is the app's measurement of the opened photo, not a value the user set (a batch measures
    #: each of its photos again).
    noise_level_measured: bool = False
    #: The noise level still waits for the opened photo's measurement (Run goes once it is known).
    noise_level_pending: bool = False
    #: "Then upscale with": a super-resolution model run on the result, as one job (engine.chain.chain_job).
    then: ModelEntry | None = None


class ModelPanel(QWidget):
    #: Run was pressed (button or double-click): carries the panel's RunRequest.
    runRequested = Signal(object)
    cancelRequested = Signal()
    stopRequested = Signal()
    selectionChanged = Signal()
    #: The opened image's noise level was measured (or could not be): a Run that waited for it can go.
    noiseLevelSettled = Signal()

    def __init__(self, registry: ModelRegistry, task_panels: list[TaskPanelSpec] | None = None,
                 default_tile: int = 0, parent: QWidget | None = None, default_ensemble: int = 1) -> None:
        super().__init__(parent)
        self.registry = registry
        self._task_panels = list(task_panels or [])
        self._panel_widgets: dict[str, QWidget] = {}
        self._image: Image | None = None
        self._param_memory: dict[str, dict[str, Any]] = {}
        self._form: ParamForm | None = None
        self._running = False
        # The opened photo's measured noise level fills each model's noise level box unless the user set that
        # model's level for this photo (the ids of those models).
        self._noise_estimate: float | None = None
        self._noise_unsure = ""  # why the opened photo's measured level was not sure enough to fill in
        self._noise_measuring = False
        self._noise_user_set: set[str] = set()
        self._noise_generation = 0
        # The progress line of a running job: refreshed every second (see _show_progress_text).
        self._run_started = time.monotonic()
        self._last_progress: Progress | None = None
        self._eta: float | None = None  # the settled time left (see _settled_eta), when it was set, its stage
        self._eta_at = 0.0
        self._eta_stage = ""
        self._stopping = False
        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self._show_progress_text)

        # Task first: the list below shows the models of one task, the suggested one first, the rest under "More".
        self.task_combo = QComboBox()
        self.task_combo.setToolTip("What you are restoring; the list below shows the models for it, the one "
                                   "suggested for the opened image first")
        self.task_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.task_combo.setMinimumContentsLength(16)
        self.task_combo.currentIndexChanged.connect(self._on_task_changed)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabel("Models \u00b7 \u2605 suggested for this image")
        self.tree.setRootIsDecorated(True)
        self.tree.setIndentation(14)
        self.tree.setUniformRowHeights(True)
        self.tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.tree.currentItemChanged.connect(self._on_current_changed)
        self.tree.itemDoubleClicked.connect(self._on_double_click)

        self.title = QLabel()
        title_font = QFont(self.title.font())
        title_font.setPointSizeF(title_font.pointSizeF() * 1.15)
        title_font.setBold(True)
        self.title.setFont(title_font)
        self.title.setWordWrap(True)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.facts = QLabel()
        self.facts.setWordWrap(True)
        self.facts.setTextFormat(Qt.TextFormat.RichText)
        self.aovs = QLabel()
        self.aovs.setWordWrap(True)
        self.aovs.setTextFormat(Qt.TextFormat.RichText)
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setObjectName("suitabilityWarning")
        self.warning.setStyleSheet("QLabel#suitabilityWarning { color: #1e1e1e; background: #f0b94a;"
                                   " border-radius: 4px; padding: 6px; }")
        self.warning.hide()

        self.params_host = QWidget()
        self.params_layout = QVBoxLayout(self.params_host)
        self.params_layout.setContentsMargins(0, 0, 0, 0)
        self.tile_box = QSpinBox()
        self.tile_box.setRange(0, 8192)
        self.tile_box.setSingleStep(64)
        self.tile_box.setSpecialValueText("Auto")
        self.tile_box.setSuffix(" px")
        self.tile_box.setValue(default_tile)
        self.tile_box.setToolTip("Tile edge in input pixels. Smaller tiles use less memory; Auto picks one.")
        self.tile_box.valueChanged.connect(self._update_tile_note)
        # A tile size is one setting for every model, and remembered: say when it is mostly overlap for this one.
        self.tile_note = QLabel()
        self.tile_note.setWordWrap(True)
        self.tile_note.setObjectName("tileNote")
        self.tile_note.setStyleSheet("QLabel#tileNote { color: #f0b94a; }")
        self.tile_note.hide()
        # Quality: one pass, or the mean over mirrored / rotated copies (engine/ensemble.py), for every model.
        self.quality_box = QComboBox()
        self.quality_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.quality_box.setMinimumContentsLength(12)
        for passes, text in QUALITY_CHOICES:
            self.quality_box.addItem(text, passes)
        self.quality_box.setCurrentIndex(max(0, self.quality_box.findData(default_ensemble)))
        self.quality_box.setToolTip(
            "Run the model on mirrored (4) or rotated and mirrored (8) copies of the image and average them:\n"
            "a little cleaner and more faithful, at 4 or 8 times the time. On our render scenes 8 passes lower\n"
            "the colour-only KPRCAN's error by 3-8%, the AOV model's by up to 4% (2% worse on the Cornell box at\n"
            "4 spp) and OIDN's by 4-18%; photos and upscales gain 0.06-0.18 dB.\n"
            "The kernel inspector shows the single-pass kernel.")
        # "Then upscale with": a denoiser (or a document cleaner) and an upscaler as one run (engine.chain).
        self.then_combo = QComboBox()
        self.then_combo.setToolTip("Enlarge the result with a super-resolution model in the same run (denoise "
                                   "first, then upscale: the upscaler does not enlarge the noise)")
        self.then_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.then_combo.setMinimumContentsLength(12)
        self.then_label = QLabel("Then upscale")
        tile_row = QFormLayout()
        tile_row.setContentsMargins(0, 0, 0, 0)
        tile_row.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        tile_row.addRow(self.then_label, self.then_combo)
        tile_row.addRow("Passes", self.quality_box)  # not "Quality": OIDN has a parameter of that name
        tile_row.addRow("Tile size", self.tile_box)
        tile_row.addRow(self.tile_note)
        self.model_page = QWidget()
        model_layout = QVBoxLayout(self.model_page)
        model_layout.setContentsMargins(0, 0, 0, 0)
        model_layout.addWidget(self.params_host)
        model_layout.addLayout(tile_row)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.model_page)

        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("runButton")
        self.run_button.setDefault(True)
        self.run_button.setToolTip("Run the selected model on the image (Ctrl+R)")
        self.run_button.clicked.connect(self._request_run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the job and discard its work (Esc)")
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.stop_button = QPushButton("Stop && keep")
        self.stop_button.setToolTip("Finish early and keep the current result")
        self.stop_button.clicked.connect(self.stopRequested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button, 2)
        buttons.addWidget(self.stop_button, 1)
        buttons.addWidget(self.cancel_button, 1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("Idle")
        self.progress.setValue(0)
        self.progress_message = QLabel()
        self.progress_message.setWordWrap(True)
        self.progress_message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        # What the model is and its settings scroll (ZSSR has many); Run / Cancel / progress stay in view.
        info = QWidget()
        info_layout = QVBoxLayout(info)
        info_layout.setContentsMargins(6, 6, 6, 6)
        info_layout.setSpacing(6)
        # The parameters that matter first; what the model is and how it measured below them.
        for widget in (self.title, self.warning, self.aovs):
            info_layout.addWidget(widget)
        info_layout.addWidget(self.stack)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        info_layout.addWidget(line)
        info_layout.addWidget(self.description)
        info_layout.addWidget(self.facts)
        info_layout.addStretch(1)
        self.details_scroll = scroll = QScrollArea()
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(info)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        details = QWidget()
        details_layout = QVBoxLayout(details)
        details_layout.setContentsMargins(0, 0, 0, 6)
        details_layout.setSpacing(6)
        details_layout.addWidget(scroll, 1)
        controls = QVBoxLayout()
        controls.setContentsMargins(6, 0, 6, 0)
        controls.addLayout(buttons)
        controls.addWidget(self.progress)
        controls.addWidget(self.progress_message)
        details_layout.addLayout(controls)

        self.splitter = splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.tree)
        splitter.addWidget(details)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([118, 1000])  # the short list; drag the handle (or open "More") for more
        task_row = QHBoxLayout()
        task_row.setContentsMargins(6, 4, 6, 0)
        task_label = QLabel("Task")
        task_label.setBuddy(self.task_combo)
        task_row.addWidget(task_label)
        task_row.addWidget(self.task_combo, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(task_row)
        layout.addWidget(splitter, 1)
        self.refresh()
        self.set_running(False)

    # -- building ------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Rebuild the task chooser and the list from the registry (after training a model); keeps the selection
        when possible."""
        previous = self.current_key()
        task = self.current_task()
        self.task_combo.blockSignals(True)
        self.task_combo.clear()
        for key, label in TASK_CHOICES:
            if self._task_items(key):
                self.task_combo.addItem(label, key)
        self.task_combo.blockSignals(False)
        self._fill_then_combo()
        if previous is not None and self._task_of(previous) is not None:
            self.select(*previous)
            return
        for key, _label in TASK_CHOICES:
            if (task is None or key == task) and self._set_task(key):
                return
        if self.task_combo.count():
            self._set_task(self.task_combo.itemData(0))
        else:
            self.tree.clear()
            self._show_nothing()

    def current_task(self) -> str | None:
        """The task chosen at the top of the panel (an engine task, or a task panel's key)."""
        return self.task_combo.currentData()

    def _task_items(self, task: str) -> list[tuple[str, str, str, str]]:
        """(kind, id, text, tooltip) of ``task``'s list: the model suggested for the opened image first, then
        the others, preferred first (engine.models.suggest)."""
        own = [spec for spec in self._task_panels if spec.key == task]
        if own:  # a task panel with a task of its own (ZSSR)
            return [("panel", spec.key, spec.title, spec.description) for spec in own]
        # Other task panels join their task's list, after its models.
        panels = [("panel", spec.key, spec.title, spec.description) for spec in self._task_panels
                  if spec.task == task and spec.key not in _CHOICE_KEYS]
        from engine.api import rank_models

        image = self._image
        entries = rank_models(self.registry.models(), task, list(image.layers) if image is not None else [])
        suggestion = suggest_model(image, task, entries=entries) if entries else None
        if suggestion is not None and suggestion.warning is None:
            entries.remove(suggestion.entry)
            entries.insert(0, suggestion.entry)
        items = []
        for index, entry in enumerate(entries):
            text = entry.manifest.display_name + ("  (yours)" if entry.source == "user" else "")
            tip = entry.manifest.description or entry.id
            if index == 0 and suggestion is not None and suggestion.warning is None and image is not None:
                text = "\u2605 " + text
                tip = f"Suggested: {suggestion.reason}\n\n{tip}"
            items.append(("model", entry.id, text, tip))
        return items + panels

    def _task_of(self, key: tuple[str, str]) -> str | None:
        kind, ident = key
        if kind == "panel":
            spec = next((spec for spec in self._task_panels if spec.key == ident), None)
            return None if spec is None else spec.key if spec.key in _CHOICE_KEYS else spec.task
        return self.registry.get(ident).manifest.task if ident in self.registry else None

    def _on_task_changed(self, _index: int) -> None:
        if self.current_task() is not None:
            self._fill_tree(self.current_task(), None)

    def _set_task(self, task: str, keep: tuple[str, str] | None = None) -> bool:
        """Show ``task``'s models (quietly: no task-changed refill), ``keep`` selected; False for an unknown task."""
        index = self.task_combo.findData(task)
        if index < 0:
            return False
        self.task_combo.blockSignals(True)
        self.task_combo.setCurrentIndex(index)
        self.task_combo.blockSignals(False)
        self._fill_tree(task, keep)
        return True

    def _fill_tree(self, task: str, keep: tuple[str, str] | None) -> None:
        """The short list of ``task`` (suggested first), the rest under "More models"; selects ``keep`` when
        it is there, else the first."""
        items = self._task_items(task)
        current = self.current_key()
        if current is not None and current[0] == "model" and self._form is not None:
            self._param_memory[current[1]] = self._form.values()  # the form goes with the old list
        self.tree.blockSignals(True)
        self.tree.clear()
        more: QTreeWidgetItem | None = None
        for index, (kind, ident, text, tip) in enumerate(items):
            item = QTreeWidgetItem([text])
            item.setData(0, ROLE_KIND, kind)
            item.setData(0, ROLE_ID, ident)
            item.setToolTip(0, tip)
            if index < SHORT_LIST:
                self.tree.addTopLevelItem(item)
                continue
            if more is None:
                more = QTreeWidgetItem([f"More models ({len(items) - SHORT_LIST})"])
                more.setData(0, ROLE_KIND, "more")
                more.setFlags(Qt.ItemFlag.ItemIsEnabled)
                more.setToolTip(0, "The other models for this task")
                self.tree.addTopLevelItem(more)
            more.addChild(item)
        self.tree.blockSignals(False)
        # A task that is one panel (ZSSR) needs no list: its settings and live loss plot get the room.
        self.tree.setVisible(not (len(items) == 1 and items[0][0] == "panel"))
        target = self._find_item(keep) or self._find_item(tuple(items[0][:2]) if items else None)
        if target is not None and target.parent() is not None:
            target.parent().setExpanded(True)
        self.tree.setCurrentItem(target)
        if target is None:
            self._on_current_changed(None, None)

    def _find_item(self, key: tuple[str, str] | None) -> QTreeWidgetItem | None:
        if key is None:
            return None
        pending = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while pending:
            item = pending.pop(0)
            if (item.data(0, ROLE_KIND), item.data(0, ROLE_ID)) == tuple(key):
                return item
            pending.extend(item.child(j) for j in range(item.childCount()))
        return None

    def _fill_then_combo(self) -> None:
        """The upscalers "Then upscale" offers (built-in and trained super-resolution models; not ZSSR)."""
        from engine.api import rank_models

        chosen = self.then_combo.currentData()
        self.then_combo.blockSignals(True)
        self.then_combo.clear()
        self.then_combo.addItem("No (same size)", None)
        for entry in rank_models(self.registry.models(), "super-resolution"):
            self.then_combo.addItem(f"{entry.manifest.display_name}", entry.id)
        index = self.then_combo.findData(chosen)
        self.then_combo.setCurrentIndex(max(0, index))
        self.then_combo.blockSignals(False)

    def then_entry(self) -> ModelEntry | None:
        """The upscaler to run after the selected model, when "Then upscale" is set and offered for it."""
        ident = self.then_combo.currentData()
        if not ident or not self._then_offered() or ident not in self.registry:
            return None
        return self.registry.get(ident)

    def _then_offered(self) -> bool:
        entry = self.current_entry()
        return entry is not None and entry.manifest.scale == 1 and self.then_combo.count() > 1

    def set_then(self, ident: str | None) -> bool:
        index = self.then_combo.findData(ident)
        if index >= 0:
            self.then_combo.setCurrentIndex(index)
        return index >= 0

    # -- selection -----------------------------------------------------------------------------------------
    def current_key(self) -> tuple[str, str] | None:
        item = self.tree.currentItem()
        if item is None or item.data(0, ROLE_KIND) not in ("model", "panel"):
            return None
        return item.data(0, ROLE_KIND), item.data(0, ROLE_ID)

    def select(self, kind: str, ident: str) -> bool:
        """Select a model (or a task panel), switching the task when it belongs to another."""
        task = self._task_of((kind, ident))
        if task is None:
            return False
        elsewhere = task != self.current_task() or self._find_item((kind, ident)) is None
        if elsewhere and not self._set_task(task, (kind, ident)):
            return False
        item = self._find_item((kind, ident))
        if item is not None:
            if item.parent() is not None:
                item.parent().setExpanded(True)
            self.tree.setCurrentItem(item)
        return item is not None

    def current_entry(self) -> ModelEntry | None:
        key = self.current_key()
        if key is None or key[0] != "model" or key[1] not in self.registry:
            return None
        return self.registry.get(key[1])

    def current_task_panel(self) -> QWidget | None:
        key = self.current_key()
        if key is None or key[0] != "panel":
            return None
        return self._panel_widget(key[1])

    def current_title(self) -> str:
        entry = self.current_entry()
        if entry is not None:
            return entry.manifest.display_name
        panel = self.current_task_panel()
        return str(getattr(panel, "title", "")) if panel is not None else ""

    def _panel_widget(self, key: str) -> QWidget | None:
        if key not in self._panel_widgets:
            spec = next((s for s in self._task_panels if s.key == key), None)
            if spec is None:
                return None
            widget = spec.factory()
            self._panel_widgets[key] = widget
            self.stack.addWidget(widget)
        return self._panel_widgets[key]

    def params(self) -> dict[str, Any]:
        return self._form.values() if self._form is not None else {}

    def request(self) -> RunRequest | None:
        """The current selection and its settings as one frozen request; None when nothing runnable is selected."""
        panel = self.current_task_panel()
        if panel is not None:
            return RunRequest(title=str(getattr(panel, "title", "ZSSR")), task_panel=panel)
        entry = self.current_entry()
        if entry is None:
            return None
        then = self.then_entry()
        title = entry.manifest.display_name + (f" \u2192 {then.manifest.display_name}" if then else "")
        return RunRequest(title=title, entry=entry, params=MappingProxyType(dict(self.params())),
                          tile=self.tile(), ensemble=self.ensemble(),
                          noise_level_measured=self.noise_level_is_measured(),
                          noise_level_pending=self.waiting_for_noise_level(), then=then)

    def _request_run(self) -> None:
        request = self.request()
        if request is not None:
            self.runRequested.emit(request)

    def tile(self) -> int | None:
        """The tile size the user chose; None for automatic."""
        return self.tile_box.value() or None

    def ensemble(self) -> int:
        """Passes per tile the user chose (1, 4 or 8)."""
        return int(self.quality_box.currentData() or 1)

    def _on_double_click(self, item: QTreeWidgetItem, column: int) -> None:
        if item.data(0, ROLE_KIND) in ("model", "panel") and not self._running:
            self._request_run()

    def _on_current_changed(self, current: QTreeWidgetItem | None, previous: QTreeWidgetItem | None) -> None:
        if previous is not None and previous.data(0, ROLE_KIND) == "model" and self._form is not None:
            self._param_memory[previous.data(0, ROLE_ID)] = self._form.values()
        self._update_details()
        self.selectionChanged.emit()

    def _show_nothing(self) -> None:
        self.title.setText("No model available")
        self.description.setText("Install models into the models folder, or train one (Tools \u203a Train).")
        self.facts.clear()
        self.aovs.clear()
        self.warning.hide()
        self.tile_note.hide()
        self._set_form(None)

    def _set_form(self, form: ParamForm | None) -> None:
        if self._form is not None:
            self._form.setParent(None)
            self._form.deleteLater()
        self._form = form
        if form is not None:
            self.params_layout.addWidget(form)

    def _update_details(self) -> None:
        entry = self.current_entry()
        panel = self.current_task_panel()
        if entry is None and panel is None:
            self._show_nothing()
            return
        if panel is not None:
            spec = next(s for s in self._task_panels if s.key == self.current_key()[1])
            self.title.setText(spec.title)
            self.description.setText(spec.description)
            self.facts.setText(f"<b>Task</b> {TASK_LABELS.get(spec.task, spec.task)} \u00b7 trains on the image itself")
            self.aovs.clear()
            self.warning.hide()
            self._set_form(None)
            self.stack.setCurrentWidget(panel)
            # A panel with its own "stop and keep" button does not need a second one here.
            self.stop_button.setVisible(not hasattr(panel, "request_stop"))
            self._update_buttons()
            return
        manifest = entry.manifest
        self.stack.setCurrentWidget(self.model_page)
        self.title.setText(manifest.display_name)
        self.description.setText(manifest.description)
        inputs = ", ".join(INPUT_LABELS.get(name, name) for name in manifest.inputs)
        space = {"srgb": "ordinary pictures (sRGB)", "linear": "HDR renders (linear light)",
                 "log1p": "HDR renders (linear light, compressed inside the model)"}
        facts = [f"<b>Scale</b> \u00d7{manifest.scale}", f"<b>Inputs</b> {inputs}",
                 f"<b>Made for</b> {space.get(manifest.value_transform, manifest.value_transform)}",
                 f"<b>Source</b> {SOURCE_LABELS.get(entry.source, entry.source)}"]
        scores = headline_scores(manifest.scores)
        if scores:
            facts.append("<b>Measured</b> " + "<br>&nbsp;&nbsp;".join(scores))
        self.facts.setText("<br>".join(facts))
        form = ParamForm(manifest.params, self._param_memory.get(entry.id, manifest.default_params()),
                         image=self._image)
        form.edited.connect(self._on_param_edited)
        form.estimateRequested.connect(self._on_estimate_requested)
        self._set_form(form)
        self._propose_noise_level()
        self.stop_button.setVisible(False)
        offered = self._then_offered()
        self.then_label.setVisible(offered)
        self.then_combo.setVisible(offered)
        self._update_image_info()
        self._update_tile_note()
        self._update_buttons()

    def _update_tile_note(self) -> None:
        """Warn when the chosen tile is mostly the model's overlap (each tile recomputes ``overlap`` px on every
        side, so small tiles multiply the work: 256 px tiles of the render models are 90% overlap)."""
        entry, tile = self.current_entry(), self.tile_box.value()
        overlap = entry.manifest.tile.overlap if entry is not None else 0
        share = 1.0 - (max(0, tile - 2 * overlap) / tile) ** 2 if tile and overlap else 0.0
        if share >= 0.5:
            default = entry.manifest.tile.default
            self.tile_note.setText(f"Tiles of {tile} px are {share:.0%} overlap for this model ({overlap} px "
                                   "recomputed on each side), which makes it slower; Auto uses "
                                   + (f"{default} px tiles." if default else "tiles sized to the memory."))
        self.tile_note.setVisible(share >= 0.5)

    # -- image-dependent hints -------------------------------------------------------------------------------
    def set_image(self, image: Image | None) -> None:
        if image is not self._image:
            self._measure_noise(image)
        changed = image is not self._image
        self._image = image
        if changed and self.current_task() is not None:
            self._fill_tree(self.current_task(), self.current_key())  # this image's suggestion first
        if self._form is not None:
            self._form.set_image(image)
        self._propose_noise_level()
        self._update_image_info()
        self._update_buttons()

    # -- the opened photo's noise level ------------------------------------------------------------------
    def _measure_noise(self, image: Image | None) -> None:
        """Measure a newly opened photo's noise level in the background (a second or two for 12 megapixels), so the
        photo denoisers start from the image's own level rather than the manifest's default."""
        from engine.api import measure_noise

        from .background import call_in_background

        self._noise_generation += 1
        generation = self._noise_generation
        self._noise_estimate, self._noise_user_set, self._noise_unsure = None, set(), ""
        self._noise_measuring = image is not None and not image.meta.hdr
        if not self._noise_measuring:
            return

        def settle(estimate) -> None:
            if generation != self._noise_generation:
                return  # another image was opened meanwhile
            self._noise_measuring = False
            if estimate is not None and estimate.confident:
                self._noise_estimate = round(estimate.denoiser_level, 1)
            elif estimate is not None and estimate.level is not None:
                self._noise_unsure = estimate.reason or "unsure"  # measured, but a wrong level is worse than none
            self._propose_noise_level()
            self.noiseLevelSettled.emit()

        call_in_background(lambda: measure_noise(image), settle, lambda error, details: settle(None))

    def _user_set_noise_level(self) -> bool:
        entry = self.current_entry()
        return entry is not None and entry.id in self._noise_user_set

    def _propose_noise_level(self, asked: bool = False) -> None:
        if self._form is None or self._user_set_noise_level() or self._image is None or self._image.meta.hdr:
            return
        if self._noise_measuring:
            self._form.set_noise_note(MEASURING_NOTE)
        elif self._noise_estimate is not None:
            self._form.propose_noise_level(self._noise_estimate, MEASURED_NOTE)
        elif self._noise_unsure:  # the value stays what it was, and the window says why it was not filled in
            self._form.set_noise_note(UNSURE_NOTE.format(reason=self._noise_unsure))
        else:  # not measurable (too small, or the estimator failed): the value stays; said only when asked
            self._form.set_noise_note(UNMEASURABLE_NOTE if asked else "")

    def _on_param_edited(self, name: str) -> None:
        entry = self.current_entry()
        if name == "noise_level" and entry is not None:
            self._noise_user_set.add(entry.id)

    def _on_estimate_requested(self) -> None:
        """"Estimate" pressed: the opened image's measured level replaces the user's own value."""
        entry = self.current_entry()
        if entry is not None:
            self._noise_user_set.discard(entry.id)
        self._propose_noise_level(asked=True)

    def noise_level_is_measured(self) -> bool:
        """True when the current model's noise level is the app's measurement, not a value the user set (a queue
        then measures each of its photos)."""
        return self._form is not None and self._form.takes_noise_level and not self._user_set_noise_level()

    def waiting_for_noise_level(self) -> bool:
        """True while the current model's noise level still waits for the opened photo's measurement."""
        return (self._noise_measuring and not self._user_set_noise_level() and self._form is not None
                and self._form.takes_noise_level)

    def _update_image_info(self) -> None:
        entry = self.current_entry()
        if entry is None:
            return
        image = self._image
        wanted = [name for name in AOV_NAMES if name in entry.manifest.inputs]
        present = list(image.aovs) if image is not None else []
        if image is None:
            self.aovs.setText("")
        elif wanted or present:
            marks = []
            for name in AOV_NAMES:
                if name in present:
                    marks.append(f"<span style='color:#6fcf73'>\u2714 {name}</span>")
                elif name in wanted:
                    marks.append(f"<span style='color:#ef8a62'>\u2718 {name}</span>")
            use = "attached" if wanted else "found (this model does not use them)"
            self.aovs.setText(f"<b>AOV buffers</b> {use}: " + "&nbsp; ".join(marks))
        else:
            self.aovs.setText("")
        self.aovs.setVisible(bool(self.aovs.text()))  # an empty line would leave a gap above the settings
        message = suitability(image, entry.manifest) if image is not None else None
        self.warning.setText("\u26a0 " + message if message else "")
        self.warning.setVisible(bool(message))

    def warning_text(self) -> str:
        return self.warning.text() if self.warning.isVisible() or self.warning.text() else ""

    # -- running state ---------------------------------------------------------------------------------------
    def set_running(self, running: bool) -> None:
        self._running = running
        self._update_buttons()
        if running:
            self.show_live_plot()
            self._run_started = time.monotonic()
            self._last_progress = None
            self._eta = None
            self._stopping = False
            # Not the busy bar (it shows no words): "Starting… · N s" until the job reports its stage.
            self.progress.setRange(0, 1000)
            self.progress.setValue(0)
            self.progress_message.setText("")
            self._show_progress_text()
            self._tick.start()
        else:
            self._tick.stop()
            self.progress.setRange(0, 1000)

    def show_live_plot(self) -> None:
        """Scroll a task panel's live plot (ZSSR's loss curve) into view."""
        plot = getattr(self.current_task_panel(), "loss_plot", None)
        if plot is not None:
            self.details_scroll.ensureWidgetVisible(plot, 0, 0)

    def _show_progress_text(self) -> None:
        """The running job's progress line; the seconds since it started count up until the job gives an
        estimate of its own, so the line moves from the first second (a model loading, a first big tile)."""
        last = self._last_progress
        text = progress_text(last) if last is not None else ""
        text = text or "Starting\u2026"
        if last is None or last.eta_s is None:
            text += f" \u00b7 {int(time.monotonic() - self._run_started)} s"
        if self._stopping:
            text = "Finishing the kept result \u00b7 " + text
        self.progress.setFormat(text)

    def _settled_eta(self, progress: Progress) -> float | None:
        """The time left, settled: the job's estimate jumps (a first tile pays the model's warm-up), so the
        shown one counts down from the previous and moves 30% of the way to each new estimate."""
        new, now = progress.eta_s, time.monotonic()
        if new is None:
            return None
        if self._eta is None or progress.stage != self._eta_stage:
            self._eta, self._eta_at, self._eta_stage = new, now, progress.stage
            return new
        counted_down = max(0.0, self._eta - (now - self._eta_at))
        self._eta, self._eta_at = 0.7 * counted_down + 0.3 * new, now
        return self._eta

    def show_stopping(self) -> None:
        """"Stop and keep result" was pressed: the job is finishing what it has."""
        self._stopping = True
        if self._running:
            self._show_progress_text()

    def _update_buttons(self) -> None:
        can_run = (self.current_entry() is not None or self.current_task_panel() is not None) and \
            self._image is not None
        self.run_button.setEnabled(can_run and not self._running)
        self.cancel_button.setEnabled(self._running)
        self.stop_button.setEnabled(self._running)
        self.tree.setEnabled(not self._running)
        self.model_page.setEnabled(not self._running)  # task panels manage their own controls

    def show_progress(self, progress: Progress) -> None:
        if progress.fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(round(progress.fraction * 1000)))
        self._last_progress = replace(progress, eta_s=self._settled_eta(progress))
        self._show_progress_text()
        self.progress_message.setText(progress.message)

    def show_outcome(self, text: str, complete: bool) -> None:
        self.progress.setRange(0, 1000)
        self.progress.setValue(1000 if complete else 0)
        self.progress.setFormat(text)
        self.progress_message.setText("")
