"""The ZSSR parameter panel: preset, size, time limit; every user parameter of the paper under "Advanced" (in
plain words, each with a tooltip); a live loss curve, stop-and-keep.

The main window asks it for the job (``make_job``) and forwards progress (``on_progress``); the panel only
copies its widgets into a frozen :class:`engine.zssr.ZssrRequest` and never touches the engine's thread.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.api import PRESET_LABELS, PRESET_NAMES, CancelToken, ImageResult, Job, Progress, ZssrRequest, preset_request

from .loss_plot import LossPlot

KERNEL_CHOICES = (("bicubic", "Bicubic (ideal downscaling)"), ("file", "From file\u2026"),
                  ("estimate", "Estimate from the image"))


def _widgets_of(layout) -> list[QWidget]:
    return [layout.itemAt(i).widget() for i in range(layout.count()) if layout.itemAt(i).widget() is not None]


def _spin(low: int, high: int, value: int, step: int = 1, special: str | None = None) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setValue(value)
    if special:
        box.setSpecialValueText(special)
    return box


def _dspin(low: float, high: float, value: float, step: float, decimals: int) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setValue(value)
    return box


class ZssrPanel(QWidget):
    """Parameters of a ZSSR run, its live loss curve, and a "Stop and keep result" button."""

    title = "ZSSR (train on this image)"
    #: Emitted by "Stop and keep result" (the main window may connect it to its runner's request_stop).
    stopRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._token: CancelToken | None = None
        self._stop_callback: Callable[[], None] | None = None
        self._kernel_path: str | None = None

        self.preset = QComboBox()
        for name in PRESET_NAMES:
            self.preset.addItem(PRESET_LABELS[name], name)
        self.scale = _dspin(1.0, 16.0, 2.0, 0.5, 2)
        self.per_axis = QCheckBox("per axis")
        self.scale_x = _dspin(1.0, 16.0, 2.0, 0.5, 2)
        self.scale_x.setToolTip("Scale factor along the width (the first box is then the height)")
        self.steps = _spin(0, 12, 0, special="auto (one per \u00d72)")
        self.kernel = QComboBox()
        for key, label in KERNEL_CHOICES:
            self.kernel.addItem(label, key)
        self.kernel_label = QLabel("")
        self.back_projection = QCheckBox("back-projection")
        self.bp_iters = _spin(1, 50, 10)
        self.noise = _dspin(0.0, 0.2, 0.0, 0.0025, 4)
        self.crop = _spin(16, 512, 128, step=16)
        self.min_iters = _spin(0, 100000, 256, step=32)
        self.max_iters = _spin(1, 100000, 3000, step=100)
        self.seconds = _spin(0, 24 * 3600, 0, step=30, special="no limit")
        self.seconds.setSuffix(" s")
        self.seed = _spin(0, 2**31 - 1, 0)
        self.device = QComboBox()
        for key, label in (("auto", "Auto (GPU if available)"), ("cpu", "CPU"), ("cuda", "CUDA GPU")):
            self.device.addItem(label, key)
        self.ensemble = QCheckBox("8-way self-ensemble")
        self.bf16 = QCheckBox("bfloat16 training")
        self.loss_plot = LossPlot(self, log_y=True, x_label="iteration", y_label="L1 loss")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.stop_button = QPushButton("Stop and keep result")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Finish now: ensemble and back-projection with the network trained so far")

        scale_row = QHBoxLayout()
        scale_row.addWidget(self.scale)
        scale_row.addWidget(self.per_axis)
        scale_row.addWidget(self.scale_x)
        kernel_row = QHBoxLayout()
        kernel_row.addWidget(self.kernel)
        kernel_row.addWidget(self.kernel_label, 1)
        bp_row = QHBoxLayout()
        bp_row.addWidget(self.back_projection)
        bp_row.addWidget(self.bp_iters)
        iters_row = QHBoxLayout()
        iters_row.addWidget(self.min_iters)
        iters_row.addWidget(QLabel("to"))
        iters_row.addWidget(self.max_iters)
        flags_row = QVBoxLayout()
        flags_row.addWidget(self.ensemble)
        flags_row.addWidget(self.bf16)

        # What a photographer decides up front; the paper's own knobs wait under "Advanced", each with a tooltip
        # that says what it does in plain words (the preset sets them all).
        self.preset.setToolTip("Fast: a minute or two. Paper: the published settings, slower and a little sharper. "
                               "Real photo: also copes with noise and JPEG artefacts.")
        self.scale.setToolTip("How many times larger the result is (2: twice the width and height)")
        self.seconds.setToolTip("Stop training after this long and finish with the network trained so far")
        form = QFormLayout()
        # The model dock is ~340 px wide: a row whose fields do not fit beside their label puts the label above
        # them (the panel was 413 px at least, so the dock scrolled sideways and clipped the model's description).
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Preset", self.preset)
        form.addRow("Enlarge by", scale_row)
        form.addRow("Time limit", self.seconds)
        form.addRow("Run on", self.device)

        self.advanced_button = QToolButton()
        self.advanced_button.setText("Advanced")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.setAutoRaise(True)
        self.advanced_button.setToolTip("The ZSSR paper's own settings; the preset chooses them for you")
        self.advanced = QWidget()
        advanced = QFormLayout(self.advanced)
        advanced.setContentsMargins(0, 0, 0, 0)
        advanced.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        for label, field, tip in (
            ("Enlarge in steps", self.steps,
             "Enlarge a little at a time, learning again after each step (gradual steps; auto: one per \u00d72)"),
            ("Blur model", kernel_row,
             "How the picture was blurred when it was made smaller (the downscaling kernel). Bicubic suits "
             "images shrunk by software; 'Estimate' learns a camera's blur from the image (KernelGAN-style)"),
            ("", bp_row,
             "Back-projection: nudge the result until, shrunk again, it matches the original exactly"),
            ("Training noise", self.noise,
             "Noise added to the small copies the network learns from (the paper's 'noise on LR sons'), so that "
             "it learns to ignore noise: raise it for noisy or JPEG photos (0.0125 for real photos)"),
            ("Patch size", self.crop, "Size in pixels of the pieces the network trains on (the crop)"),
            ("Training length", iters_row,
             "Iterations: at least the first number between learning-rate drops, at most the second in all"),
            ("Random seed", self.seed, "The same seed and settings give the same result"),
            ("", flags_row,
             "Self-ensemble: average the result over 8 rotated and mirrored copies (slower, a little cleaner). "
             "bfloat16: faster training on processors that support it"),
        ):
            text = QLabel(label) if label else None
            if text is not None:
                text.setToolTip(tip)
                advanced.addRow(text, field)
            else:
                advanced.addRow("", field)
            for widget in (field,) if isinstance(field, QWidget) else _widgets_of(field):
                if not widget.toolTip():
                    widget.setToolTip(tip)
        self.advanced.setVisible(False)
        self.advanced_button.toggled.connect(self._show_advanced)
        self.ensemble.setText("Average 8 turned copies")
        self.bf16.setText("Faster training (bfloat16)")
        self.back_projection.setText("Match the original")

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.advanced_button)
        layout.addWidget(self.advanced)
        layout.addWidget(self.loss_plot, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.stop_button)

        self.preset.currentIndexChanged.connect(self._apply_preset)
        self.per_axis.toggled.connect(self.scale_x.setEnabled)
        self.back_projection.toggled.connect(self.bp_iters.setEnabled)
        self.kernel.activated.connect(self._on_kernel_chosen)
        self.stop_button.clicked.connect(self.request_stop)
        self.preset.setCurrentIndex(PRESET_NAMES.index("fast"))
        self._apply_preset()
        self.scale_x.setEnabled(False)

    # -- state --------------------------------------------------------------------------------------------

    def _show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def _apply_preset(self) -> None:
        request = preset_request(str(self.preset.currentData()), self.scale.value())
        self.steps.setValue(request.gradual_steps)
        self.back_projection.setChecked(request.back_projection)
        self.bp_iters.setValue(request.back_projection_iters)
        self.bp_iters.setEnabled(request.back_projection)
        self.noise.setValue(request.noise_std)
        self.crop.setValue(request.crop_size)
        self.min_iters.setValue(request.min_iterations)
        self.max_iters.setValue(request.max_iterations)
        self.ensemble.setChecked(request.ensemble)
        self.bf16.setChecked(request.bf16)

    def _on_kernel_chosen(self, index: int) -> None:
        if self.kernel.itemData(index) != "file":
            self.kernel_label.setText("")
            return
        path, _ = QFileDialog.getOpenFileName(self, "Downscaling kernel", "",
                                              "Kernels (*.npy *.mat *.png *.tif *.tiff);;All files (*)")
        if path:
            self.set_kernel_file(path)
        elif not self._kernel_path:
            self.kernel.setCurrentIndex(0)

    def set_kernel_file(self, path: str) -> None:
        self._kernel_path = path
        self.kernel.setCurrentIndex([k for k, _ in KERNEL_CHOICES].index("file"))
        self.kernel_label.setText(path.replace("\\", "/").rsplit("/", 1)[-1])

    def request(self) -> ZssrRequest:
        """The frozen request the current widgets describe."""
        name = str(self.preset.currentData())
        sy = self.scale.value()
        sx = self.scale_x.value() if self.per_axis.isChecked() else sy
        kernel = str(self.kernel.currentData())
        base = preset_request(name, (sy, sx))
        if self.steps.value():  # an explicit step count replaces the preset's own schedule
            base = base.replace(gradual_steps=self.steps.value(), schedule=(), schedule_back_projection=())
        elif self.bp_iters.value() != base.back_projection_iters:
            base = base.replace(schedule_back_projection=())
        return base.replace(
            kernel=kernel,
            kernel_path=self._kernel_path if kernel == "file" else None,
            back_projection=self.back_projection.isChecked(),
            back_projection_iters=self.bp_iters.value(),
            noise_std=self.noise.value(),
            crop_size=self.crop.value(),
            min_iterations=self.min_iters.value(),
            max_iterations=self.max_iters.value(),
            seconds=float(self.seconds.value()) or None,
            seed=self.seed.value(),
            device=str(self.device.currentData()),
            ensemble=self.ensemble.isChecked(),
            bf16=self.bf16.isChecked(),
        )

    # -- running ------------------------------------------------------------------------------------------

    def make_job(self, image, token: CancelToken) -> Job[ImageResult]:
        from engine.api import zssr_job

        request = self.request()
        self._token = token
        self.loss_plot.clear()
        self.status.setText("Starting\u2026")
        self.stop_button.setEnabled(True)
        return zssr_job(image, request, token)

    def set_stop_callback(self, callback: Callable[[], None] | None) -> None:
        """What "Stop and keep result" calls besides asking the job's token to stop."""
        self._stop_callback = callback

    def request_stop(self) -> None:
        if self._token is not None:
            self._token.request_stop()
        if self._stop_callback is not None:
            self._stop_callback()
        self.stopRequested.emit()
        self.status.setText("Finishing with the current network\u2026")
        self.stop_button.setEnabled(False)

    def on_progress(self, progress: Progress) -> None:
        metrics = progress.metrics
        if "loss" in metrics and "iteration" in metrics:
            self.loss_plot.add_point("loss", float(metrics["iteration"]), float(metrics["loss"]))
        if progress.message:
            eta = f" \u00b7 {progress.eta_s:.0f} s left" if progress.eta_s is not None else ""
            self.status.setText(progress.message + eta)
        if progress.stage == "done" or (progress.fraction is not None and progress.fraction >= 1.0):
            self.job_finished()

    def job_finished(self) -> None:
        """The job ended (done, failed or cancelled): no token to stop any more."""
        self._token = None
        self.stop_button.setEnabled(False)
