"""The kernel inspector dock: the filter a kernel-predicting render denoiser applies at a clicked pixel.

Shows the predicted kernel, the kernel the same network predicts with flat albedo/normal buffers, and how
much the AOVs changed it (engine.kernel_inspector). The work runs off the GUI thread.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from .diffmap import colormap_lut

KERNEL_VIEW_PX = 138


def kernel_pixmap(kernel: np.ndarray, vmax: float, size: int = KERNEL_VIEW_PX) -> QPixmap:
    """A kernel in false colour on a square-root scale (so small far taps stay visible), 0 .. vmax, magnified
    with nearest-neighbour so every tap stays a square."""
    lut = colormap_lut()
    level = np.sqrt(np.clip(kernel / max(vmax, 1e-12), 0.0, 1.0))
    index = np.clip(level * (len(lut) - 1), 0, len(lut) - 1).astype(np.int32)
    rgb = np.ascontiguousarray(lut[index][:, :, :3].astype(np.uint8))
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(image).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.FastTransformation)


class KernelInspectorPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.with_aovs = QLabel()
        self.without_aovs = QLabel()
        self.with_caption = QLabel("with AOVs (√ scale)")
        self.without_caption = QLabel("AOVs flattened")
        for label in (self.with_aovs, self.without_aovs, self.with_caption, self.without_caption):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        grid = QGridLayout()
        grid.addWidget(self.with_aovs, 0, 0)
        grid.addWidget(self.without_aovs, 0, 1)
        grid.addWidget(self.with_caption, 1, 0)
        grid.addWidget(self.without_caption, 1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addLayout(grid)
        layout.addStretch(1)
        self.show_prompt(None)

    def show_prompt(self, model_name: str | None) -> None:
        """What to do next, with no kernel shown: ``model_name`` is the selected kernel-prediction model, or None
        when the selected model predicts no kernels."""
        if model_name:
            self.show_message(f"Click a pixel of the image to see the filter {model_name} applies there.")
        else:
            self.show_message("Select a kernel-prediction render model (KPRCAN), then click a pixel to see the "
                              "filter it applies there.")

    def show_message(self, text: str) -> None:
        self.status.setText(text)
        for label in (self.with_aovs, self.without_aovs, self.with_caption, self.without_caption):
            label.clear() if label in (self.with_aovs, self.without_aovs) else label.hide()

    def show_inspection(self, inspection) -> None:
        kernels = [inspection.kernel]
        if inspection.kernel_without_aovs is not None:
            kernels.append(inspection.kernel_without_aovs)
        vmax = float(max(k.max() for k in kernels))
        size = inspection.kernel.shape[0]
        self.with_aovs.setPixmap(kernel_pixmap(inspection.kernel, vmax))
        self.with_caption.show()
        passes = " (both passes composed)" if inspection.passes == 2 else ""
        text = (f"Pixel ({inspection.x}, {inspection.y}): {size}x{size} kernel{passes}, "
                f"centre weight {float(inspection.kernel[size // 2, size // 2]):.3f}.")
        if inspection.kernel_without_aovs is not None:
            self.without_aovs.setPixmap(kernel_pixmap(inspection.kernel_without_aovs, vmax))
            self.without_caption.show()
            text += f" AOV influence {inspection.aov_influence:.0%} (0%: the buffers changed nothing here)."
        else:
            self.without_aovs.clear()
            self.without_caption.hide()
            text += " Colour-only model: no AOVs to compare."
        self.status.setText(text)
