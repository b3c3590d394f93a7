"""Saving a result and exporting the comparison: which result, under which name, with which confirmation.

The window's File menu, the History panel and the tests call these through the window's ``save_*`` and
``export_*`` methods. Writing happens off the GUI thread (the engine keeps format, depth, alpha and metadata) and
never replaces the opened original without an explicit yes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, QRect
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QFileDialog

from engine.api import EngineError, Image, ImageResult, output_name

from . import background
from .display_cache import uint8_to_qimage
from .viewer import CompareViewer

if TYPE_CHECKING:
    from .main_window import MainWindow

SAVE_FILTERS = ("PNG (*.png)", "TIFF (*.tif *.tiff)", "OpenEXR (*.exr)", "JPEG (*.jpg *.jpeg)", "WebP (*.webp)",
                "Radiance HDR (*.hdr)", "All files (*)")


class Saving:
    def __init__(self, host: MainWindow) -> None:
        self.host = host

    @property
    def session(self):
        return self.host.session

    def current_result_key(self) -> str | None:
        """The result to save: B when it is a result, else A when it is, else the newest result."""
        a_key, b_key = self.host.compare_bar.keys()
        for key in (b_key, a_key):
            if key and self.session.result_for_key(key) is not None:
                return key
        return self.session.latest_result_key()

    def suggested_name(self, key: str) -> Path:
        return self.name_for(self.session.original_path, self.session.result_for_key(key))

    def name_for(self, original_path: Path | None, result: ImageResult | None) -> Path:
        """``<input name>_<model id><input's extension>`` beside the input (or in the last folder)."""
        original = original_path or Path("image.png")
        folder = original.parent if original_path else Path(self.host.settings.last_folder)
        model = result.model_id.replace("+", "_then_") if result else "result"
        return folder / output_name(f"{original.stem}_{model}{original.suffix or '.png'}")

    def save_all_unsaved(self) -> list[Path]:
        """Save every unsaved result of the session beside its input, under its suggested name (a number is
        added instead of replacing an existing file); waits for the writes. Returns the files written; raises
        the first error (nothing is discarded then)."""
        from engine.api import write_image

        written: list[Path] = []
        for item in self.session.unsaved():
            base = target = self.name_for(item.original_path, item.result)
            number = 2
            while target.exists() or target in written:
                target = base.with_name(f"{base.stem}-{number}{base.suffix}")
                number += 1
            written.append(Path(write_image(target, item.result.image)))
            self.session.mark_saved(item.result)
        self.host.history_panel.set_results(self.session.results, self.session.is_saved)
        return written

    def save_dialog(self, key: str | None = None) -> None:
        key = key or self.current_result_key()
        if key is None:
            self.host.show_error("Nothing to save", "Run a model first; its result is what gets saved.")
            return
        suggested = self.suggested_name(key)
        filters = ["Same format as the input (*" + (suggested.suffix or ".png") + ")", *SAVE_FILTERS]
        path, _ = QFileDialog.getSaveFileName(self.host, "Save result", str(suggested), ";;".join(filters))
        if path:
            self.save_result(Path(path), key)

    def save_result(self, path: Path, key: str | None = None, wait: bool = False) -> bool:
        """Write a result to ``path`` (format from the extension; depth, alpha, metadata kept by the engine).

        Overwriting the original input asks for explicit confirmation first. Returns False when not saved.
        """
        host = self.host
        key = key or self.current_result_key()
        result = self.session.result_for_key(key) if key else None
        if result is None:
            return False
        overwrite_input = (self.session.original_path is not None and path.exists()
                           and path.resolve() == self.session.original_path.resolve())
        if overwrite_input and not host.confirm(
                "Overwrite the original?",
                f"{path.name} is the image you opened. Replacing it loses the original for good.\n\n"
                "Overwrite it with the result?"):
            host.flash("Not saved: the original was kept", 5000)
            return False
        from engine.api import write_image

        image = result.image
        session = self.session

        def write():
            return write_image(path, image, allow_overwrite_input=overwrite_input)

        def done(written) -> None:
            session.mark_saved(result)
            host.history_panel.set_results(session.results, session.is_saved)
            host.settings.last_folder = str(Path(written).parent)
            host.flash(f"Saved {written}", 6000)
            host.saved.emit(str(written))

        def failed(error: Exception, details: str) -> None:
            host.show_error("Cannot save", str(error), "" if isinstance(error, EngineError) else details)

        if wait:
            try:
                done(write())
            except Exception as error:  # shown like the asynchronous path does
                failed(error, "")
                return False
        else:
            background.call_in_background(write, done, failed)
        return True

    def export_dialog(self) -> None:
        host = self.host
        if host.viewer.image_a() is None:
            host.show_error("Nothing to export", "Open an image first.")
            return
        original = self.session.original_path or Path("comparison.png")
        default = Path(host.settings.last_folder) / f"{original.stem}_comparison.png"
        path, _ = QFileDialog.getSaveFileName(host, "Export comparison", str(default), "PNG (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            self.export_comparison(Path(path))

    def export_comparison(self, path: Path) -> bool:
        """Write the comparison at full resolution: split at the divider, or side by side (also for flicker)."""
        host = self.host
        picture = render_comparison(host.viewer, host.compare_bar.exposure(), host.compare_bar.tonemap())
        if picture is None or not picture.save(str(path), "PNG"):
            host.show_error("Cannot export", f"Could not write {path}.")
            return False
        host.flash(f"Exported {path}", 6000)
        return True


def _display_rgb(image: Image, exposure: float, tonemap: str, size: tuple[int, int]) -> np.ndarray:
    from engine.api import to_display_uint8

    rgb = to_display_uint8(image.pixels, hdr=bool(image.meta.hdr), exposure=exposure, tonemap=tonemap)
    width, height = size
    if (image.width, image.height) != (width, height):  # stretch a smaller image over the canvas (nearest)
        ys = np.arange(height) * image.height // height
        xs = np.arange(width) * image.width // width
        rgb = rgb[ys][:, xs]
    return rgb


def render_comparison(viewer: CompareViewer, exposure: float, tonemap: str):
    """The comparison as a full-resolution QImage (labels included), or None when there is nothing to show."""
    a, b = viewer.image_a(), viewer.image_b()
    if a is None:
        return None
    b = b or a
    width, height = viewer.canvas_size()
    mode = viewer.mode()
    if mode == "diff":
        made = viewer.diff_values()
        if made is not None:
            from .diffmap import FalseColour

            return uint8_to_qimage(FalseColour(made[1])(made[0]))
        mode = "side"
    left = _display_rgb(a, exposure, tonemap, (width, height))
    right = _display_rgb(b, exposure, tonemap, (width, height))
    if mode == "split":
        point = viewer.canvas_point(QPointF(viewer.width() * viewer.divider(), viewer.height() / 2.0))
        cut = width // 2 if point is None else int(min(max(point.x(), 0), width))
        out = np.concatenate([left[:, :cut], right[:, cut:]], axis=1)
        picture = uint8_to_qimage(out)
        painter = QPainter(picture)
        painter.fillRect(QRect(max(0, cut - 1), 0, 2, height), QColor(255, 255, 255))
        painter.end()
        return picture
    gap = max(2, width // 200)
    out = np.full((height, 2 * width + gap, 3), 40, dtype=np.uint8)
    out[:, :width] = left
    out[:, width + gap:] = right
    return uint8_to_qimage(out)
