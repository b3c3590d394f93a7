"""The main window: menus, toolbar, docks (model, history, queue, inspector), the comparison viewer, status bar."""

from __future__ import annotations

import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRect, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QPainter,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSizePolicy,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from engine.errors import EngineError
from engine.image import Image
from engine.jobs import CancelToken, ImageResult, Progress
from engine.models.registry import ModelRegistry

from . import background
from .compare_bar import CompareBar
from .display_cache import uint8_to_qimage
from .icons import app_icon, icon
from .inspector import PixelInspector
from .kernel_panel import KernelInspectorPanel
from .model_panel import ModelPanel, format_eta
from .session import Session
from .settings import AppSettings
from .side_panels import HistoryPanel, QueuePanel
from .task_panels import available_task_panels
from .theme import apply_theme, icon_colour
from .viewer import CompareViewer
from .worker import JobRunner

APP_TITLE = "Restoration Studio"
SHORTCUTS = (
    ("Ctrl+O", "Open images"), ("Ctrl+Shift+O", "Load a reference image"), ("Ctrl+S", "Save the result"),
    ("Ctrl+E", "Export the comparison as PNG"), ("Ctrl+R", "Run the selected model"), ("Esc", "Cancel the job"),
    ("Ctrl+1 \u2026 Ctrl+4", "Split / side by side / flicker / difference"), ("X", "Swap A and B"),
    ("Space (hold)", "Flicker: show the other image"), ("Click", "Flicker: flip between A and B"),
    ("F / double-click", "Fit to window"), ("1", "Actual pixels (1:1)"), ("+ / \u2212, wheel", "Zoom (wheel zooms "
     "around the cursor)"), ("Drag, arrows", "Pan"), ("Drag the divider", "Move the split"),
    ("E / Shift+E", "Exposure +/\u2212 half a stop"), ("R", "Reset exposure"), ("F1", "This list"),
)


def _imageio():
    import engine.imageio as imageio

    return imageio


def _imageio_pages():
    import engine.imageio.pages as pages

    return pages


def _tonemaps() -> tuple[str, ...]:
    from engine.display import TONEMAPS

    return tuple(TONEMAPS)


def describe_image(image: Image) -> str:
    """Status bar text: size, format and depth, HDR or not, alpha, value range."""
    meta = image.meta
    depth = {"half": "16-bit half", "float": "32-bit float"}.get(meta.sample_type, f"{meta.bit_depth}-bit")
    parts = [f"{image.width}\u00d7{image.height}", f"{meta.format.upper()} {depth}",
             "HDR" if meta.hdr else ("gray" if meta.gray else "RGB")]
    if image.alpha is not None:
        parts.append("alpha")
    if image.aovs:
        parts.append("+" + "/".join(image.aovs))
    pages = int(meta.extra.get("pages", 1))
    if pages > 1:
        parts.append(f"page {int(meta.extra.get('page_index', 0)) + 1} of {pages}")
    pixels = image.pixels
    step = max(1, int(np.sqrt(pixels.shape[0] * pixels.shape[1] / 4_000_000)))  # sample huge images
    sample = pixels[::step, ::step]
    parts.append(f"{float(np.nanmin(sample)):.4g}\u2013{float(np.nanmax(sample)):.4g}")
    return " \u00b7 ".join(parts)


def expand_paths(paths: list[str]) -> tuple[list[str], int]:
    """Files as given, folders replaced by the supported images inside them (sorted, not recursive) without a
    render's AOV sidecars and references (read with it, or not inputs); and how many of those were left out."""
    imageio = _imageio()
    out: list[str] = []
    companions = 0
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found, left_out = imageio.folder_images(path)
            out.extend(str(p) for p in found)
            companions += len(left_out)
        else:
            out.append(str(path))
    return out, companions


class MainWindow(QMainWindow):
    imageOpened = Signal(str)
    openFailed = Signal(str)
    resultAdded = Signal(str)
    saved = Signal(str)

    def __init__(self, settings: AppSettings | None = None, registry: ModelRegistry | None = None, *,
                 persist_layout: bool = True) -> None:
        super().__init__()
        self.settings = settings or AppSettings()
        #: False for --screenshot: a stable default layout, and the user's saved one is left alone.
        self.persist_layout = persist_layout
        self.registry = registry or ModelRegistry()
        self.session = Session()
        self.runner = JobRunner(self)
        self._pending_preview: Image | None = None
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(250)
        self._preview_timer.timeout.connect(self._show_pending_preview)
        self._job_started = 0.0
        self._job_title = ""
        self._batch: dict[str, Any] | None = None
        #: (id(image), id(reference)) -> (image, reference, text); the images are kept so ids cannot be reused.
        self._metrics_cache: dict[tuple[int, int], tuple[Image, Image, str]] = {}
        self._metrics_running: set[tuple[int, int]] = set()
        self._device_text = "detecting\u2026"
        self.last_error_dialog: QMessageBox | None = None
        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.resize(1400, 860)

        colour = icon_colour(self.settings.theme)
        self._icon = lambda name: icon(name, colour)
        self.viewer = CompareViewer()
        self.compare_bar = CompareBar(_tonemaps(), self._icon)
        self.metrics_label = QLabel()
        self.metrics_label.setObjectName("metricsLabel")
        self.metrics_label.setTextFormat(Qt.TextFormat.RichText)
        self.metrics_label.setContentsMargins(8, 2, 8, 2)
        self.metrics_label.hide()
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.setSpacing(0)
        central_layout.addWidget(self.compare_bar)
        central_layout.addWidget(self.metrics_label)
        central_layout.addWidget(self.viewer, 1)
        self.setCentralWidget(central)

        self.model_panel = ModelPanel(self.registry, available_task_panels(), self.settings.tile_size,
                                      default_ensemble=self.settings.ensemble)
        self._run_when_measured = False  # Run was pressed while the photo's noise level was being measured
        self.history_panel = HistoryPanel()
        self.queue_panel = QueuePanel()
        self.inspector = PixelInspector()
        self.model_dock = self._dock("Model", "modelDock", self.model_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.inspector_dock = self._dock("Pixel inspector", "inspectorDock", self.inspector,
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.kernel_panel = KernelInspectorPanel()
        self.kernel_dock = self._dock("Kernel inspector", "kernelDock", self.kernel_panel,
                                      Qt.DockWidgetArea.RightDockWidgetArea)
        self.history_dock = self._dock("History", "historyDock", self.history_panel,
                                       Qt.DockWidgetArea.LeftDockWidgetArea)
        self.queue_dock = self._dock("Queue", "queueDock", self.queue_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.tabifyDockWidget(self.history_dock, self.queue_dock)
        self.tabifyDockWidget(self.inspector_dock, self.kernel_dock)
        self.history_dock.raise_()
        self.inspector_dock.raise_()
        self.model_panel.setMinimumWidth(340)
        self.history_panel.setMinimumWidth(190)
        self.resizeDocks([self.model_dock, self.history_dock], [340, 210], Qt.Orientation.Horizontal)
        self.resizeDocks([self.model_dock, self.inspector_dock], [600, 170], Qt.Orientation.Vertical)

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._connect()
        self.compare_bar.set_tonemap(self.settings.tonemap if self.settings.tonemap in _tonemaps() else "aces")
        self.viewer.set_tonemap(self.compare_bar.tonemap())
        self._restore_geometry()
        self._update_actions()
        self._detect_device()
        self._report_model_problems()

    # == construction ==========================================================================================
    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, text: str, slot, shortcut: str | QKeySequence.StandardKey | None = None,
                icon_name: str | None = None, tip: str = "", viewer_only: bool = False) -> QAction:
        action = QAction(text, self)
        if icon_name:
            action.setIcon(self._icon(icon_name))
            action.setProperty("iconName", icon_name)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if viewer_only:
            # Single-key shortcuts act only while the viewer has focus, so typing in a field is never stolen.
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.viewer.addAction(action)
        else:
            self.addAction(action)
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        self.act_open = self._action("&Open\u2026", self.open_dialog, QKeySequence.StandardKey.Open, "open",
                                     "Open one or more images (several become a queue)")
        self.act_open_folder = self._action("Open &Folder\u2026", self.open_folder_dialog, None, None,
                                            "Queue every image of a folder")
        self.act_reference = self._action("Load &Reference\u2026", self.reference_dialog, "Ctrl+Shift+O",
                                          "reference", "Load a clean reference image to score results against")
        self.act_clear_reference = self._action("Clear Reference", self.clear_reference)
        self.act_save = self._action("&Save Result As\u2026", lambda: self.save_dialog(), QKeySequence.StandardKey.Save,
                                     "save", "Save the result (keeps the input's format, depth, alpha, metadata)")
        self.act_export = self._action("&Export Comparison\u2026", self.export_dialog, "Ctrl+E", "export",
                                       "Write the current split or side-by-side comparison as a PNG")
        self.act_quit = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_run = self._action("&Run", self.run_current, "Ctrl+R", "run", "Run the selected model (Ctrl+R)")
        self.act_cancel = self._action("&Cancel", self.cancel_job, "Esc", "cancel", "Cancel the running job (Esc)")
        self.act_stop = self._action("&Stop and Keep Result", self.runner.request_stop, None, None,
                                     "Finish early and keep the current result (ZSSR)")
        self.mode_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for index, (mode, label) in enumerate((("split", "&Split"), ("side", "Side by Si&de"),
                                               ("flicker", "&Flicker"), ("diff", "&Difference"))):
            action = self._action(label, lambda _=False, m=mode: self.set_mode(m), f"Ctrl+{index + 1}", mode)
            action.setCheckable(True)
            group.addAction(action)
            self.mode_actions[mode] = action
        self.mode_actions["split"].setChecked(True)
        self.act_swap = self._action("S&wap A and B", self.compare_bar.swap, "X", "swap", viewer_only=True)
        self.act_fit = self._action("&Fit to Window", self.viewer.zoom_fit, "F", "fit", "Fit to window (F)",
                                    viewer_only=True)
        self.act_one = self._action("&Actual Pixels (1:1)", lambda: self.viewer.zoom_1to1(), "1", "one_to_one",
                                    "Actual pixels, 1:1 (1)", viewer_only=True)
        self.act_zoom_in = self._action("Zoom &In", self.viewer.zoom_in, "+", "zoom_in", viewer_only=True)
        self.act_zoom_in_eq = self._action("Zoom In", self.viewer.zoom_in, "=", viewer_only=True)
        self.act_zoom_out = self._action("Zoom &Out", self.viewer.zoom_out, "-", "zoom_out", viewer_only=True)
        self.act_exp_up = self._action("Exposure +\u00bd Stop", lambda: self._nudge_exposure(0.5), "E",
                                       viewer_only=True)
        self.act_exp_down = self._action("Exposure \u2212\u00bd Stop", lambda: self._nudge_exposure(-0.5), "Shift+E",
                                         viewer_only=True)
        self.act_exp_reset = self._action("Reset Exposure", lambda: self.compare_bar.set_exposure(0.0), "R",
                                          viewer_only=True)
        self.act_next_page = self._action("Next &Page", lambda: self.show_page(+1), "PgDown", None,
                                          "Show the next page of a multi-page TIFF or frame of an animation")
        self.act_prev_page = self._action("Previous Pa&ge", lambda: self.show_page(-1), "PgUp", None,
                                          "Show the previous page of a multi-page TIFF or frame of an animation")
        self.act_shortcuts = self._action("&Keyboard Shortcuts", self.show_shortcuts, "F1")
        self.act_about = self._action("&About Restoration Studio", self.show_about)
        self.act_refresh_models = self._action("Refresh &Models", self.refresh_models, None, None,
                                               "Read the models folders again")
        self.act_train = None
        if self._train_dialog_class() is not None:
            self.act_train = self._action("&Train / Fine-tune\u2026", self.open_train_dialog, None, "train",
                                          "Train or fine-tune a model on your own images")

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.act_open, self.act_open_folder])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        file_menu.addActions([self.act_reference, self.act_clear_reference])
        file_menu.addSeparator()
        file_menu.addActions([self.act_save, self.act_export])
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)

        view = bar.addMenu("&View")
        view.addActions(list(self.mode_actions.values()))
        view.addAction(self.act_swap)
        view.addSeparator()
        view.addActions([self.act_fit, self.act_one, self.act_zoom_in, self.act_zoom_out])
        view.addSeparator()
        view.addActions([self.act_exp_up, self.act_exp_down, self.act_exp_reset])
        view.addSeparator()
        view.addActions([self.act_prev_page, self.act_next_page])
        tone = view.addMenu("&Tone Map")
        tone_group = QActionGroup(self)
        self.tonemap_actions: dict[str, QAction] = {}
        for name in _tonemaps():
            action = tone.addAction(name.upper() if name == "aces" else name.capitalize())
            action.setCheckable(True)
            action.triggered.connect(lambda _=False, n=name: self.compare_bar.set_tonemap(n))
            tone_group.addAction(action)
            self.tonemap_actions[name] = action
        view.addSeparator()
        theme_menu = view.addMenu("T&heme")
        theme_group = QActionGroup(self)
        for name in ("dark", "light"):
            action = theme_menu.addAction(name.capitalize())
            action.setCheckable(True)
            action.setChecked(self.settings.theme == name)
            action.triggered.connect(lambda _=False, n=name: self.set_theme(n))
            theme_group.addAction(action)
        panels = view.addMenu("&Panels")
        for dock in (self.model_dock, self.history_dock, self.queue_dock, self.inspector_dock):
            panels.addAction(dock.toggleViewAction())

        run_menu = bar.addMenu("&Run")
        run_menu.addActions([self.act_run, self.act_stop, self.act_cancel])

        tools = bar.addMenu("&Tools")
        device_menu = tools.addMenu("Compute &Device")
        device_group = QActionGroup(self)
        self.device_actions: dict[str, QAction] = {}
        for name, label in (("auto", "Automatic (GPU when available)"), ("cpu", "CPU"), ("cuda", "CUDA GPU")):
            action = device_menu.addAction(label)
            action.setCheckable(True)
            action.setChecked(self.settings.device == name)
            action.triggered.connect(lambda _=False, n=name: self.set_device(n))
            device_group.addAction(action)
            self.device_actions[name] = action
        if self.act_train is not None:
            tools.addAction(self.act_train)
        tools.addAction(self.act_refresh_models)

        help_menu = bar.addMenu("&Help")
        help_menu.addActions([self.act_shortcuts, self.act_about])

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.addActions([self.act_open, self.act_save, self.act_export])
        toolbar.addSeparator()
        toolbar.addAction(self.act_reference)
        toolbar.addSeparator()
        toolbar.addActions([self.act_run, self.act_cancel])
        toolbar.addSeparator()
        toolbar.addActions([self.act_fit, self.act_one])
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        toolbar.addWidget(spacer)
        toolbar.addWidget(self.compare_bar.display_controls)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        for action in (self.act_open, self.act_run):  # the two everyone looks for get a label
            toolbar.widgetForAction(action).setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(toolbar)
        self.toolbar = toolbar

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.image_label = QLabel("No image")
        self.message_label = QLabel()
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(self.message_label.clear)
        self.model_label = QLabel()
        self.device_label = QLabel()
        self.run_label = QLabel("Last run: \u2013")
        # Messages get their own label: QStatusBar.showMessage would hide the image description.
        status.addWidget(self.image_label)
        status.addWidget(self.message_label, 1)
        self.message_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.model_label.setMaximumWidth(300)
        for label in (self.model_label, self.device_label, self.run_label):
            status.addPermanentWidget(label)
        self._update_model_label()
        self._update_device_label()

    def _connect(self) -> None:
        self.runner.progress.connect(self._on_progress)
        self.runner.succeeded.connect(self._on_succeeded)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        self.runner.finished.connect(self._on_finished)
        self.model_panel.runRequested.connect(self.run_current)
        self.model_panel.noiseLevelSettled.connect(self._on_noise_level_settled)
        self.model_panel.cancelRequested.connect(self.cancel_job)
        self.model_panel.stopRequested.connect(self.runner.request_stop)
        self.model_panel.selectionChanged.connect(self._update_model_label)
        self.model_panel.selectionChanged.connect(self._update_actions)
        self.model_panel.tile_box.valueChanged.connect(lambda v: setattr(self.settings, "tile_size", v))
        self.model_panel.quality_box.currentIndexChanged.connect(
            lambda _index: setattr(self.settings, "ensemble", self.model_panel.ensemble()))
        self.compare_bar.sourcesChanged.connect(self._on_sources_changed)
        self.compare_bar.modeChanged.connect(self.set_mode)
        self.compare_bar.errorKindChanged.connect(self.viewer.set_error_kind)
        self.compare_bar.exposureChanged.connect(self.viewer.set_exposure)
        self.compare_bar.tonemapChanged.connect(self._on_tonemap)
        self.viewer.hovered.connect(self._on_hover)
        self.viewer.pixelClicked.connect(self._inspect_kernel)
        self.history_panel.chosen.connect(lambda key: self.compare_bar.select(b_key=key))
        self.history_panel.saveRequested.connect(lambda key: self.save_dialog(key))
        self.queue_panel.openRequested.connect(self.open_file)
        self.queue_panel.processRequested.connect(self.process_queue_dialog)

    def _restore_geometry(self) -> None:
        if not self.persist_layout:
            return
        if self.settings.geometry is not None:
            self.restoreGeometry(self.settings.geometry)
        if self.settings.window_state is not None:
            self.restoreState(self.settings.window_state)

    # == opening =================================================================================================
    def open_dialog(self) -> None:
        imageio = _imageio()
        patterns = " ".join(f"*{ext}" for ext in sorted(imageio.SUPPORTED_READ_EXTENSIONS))
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", self.settings.last_folder,
                                                f"Images ({patterns});;All files (*)")
        if paths:
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Queue a folder of images", self.settings.last_folder)
        if folder:
            self.open_paths([folder])

    def open_paths(self, paths: list[str]) -> None:
        """Open one image, or queue several (folders expand to their images) and open the first."""
        files, companions = expand_paths(paths)
        skipped = 0
        if len(files) > 1:  # in a batch, leave out what cannot be an image instead of failing on it later
            supported = [f for f in files if _imageio().is_supported(f)]
            skipped = len(files) - len(supported)
            files = supported
        if not files:
            self.show_error("Nothing to open", "No supported images were found in what you dropped or chose.")
            return
        if len(files) > 1 or any(Path(p).is_dir() for p in paths):
            notes = ([f"{skipped} unsupported file(s) left out."] if skipped else []) + (
                [f"{companions} AOV / reference file(s) left out: they go with the renders beside them."]
                if companions else [])
            self.queue_panel.set_paths(files, " ".join(notes))
            self.queue_dock.show()
            self.queue_dock.raise_()
        self.open_file(files[0])

    def open_file(self, path: str) -> None:
        """Read ``path`` on a background thread and show it; a readable dialog when it cannot be read."""
        path = str(path)
        self.flash(f"Opening {Path(path).name}\u2026")
        read_image = _imageio().read_image
        background.call_in_background(lambda: read_image(path), lambda image: self._on_opened(image, path),
                                      lambda error, details: self._on_open_failed(path, error, details))

    def _on_opened(self, image: Image, path: str) -> None:
        self.set_original(image, Path(path))
        self.settings.add_recent_file(path)
        self.settings.last_folder = str(Path(path).resolve().parent)
        pages = int(image.meta.extra.get("pages", 1))
        if pages > 1:
            self.flash(f"Opened {Path(path).name}: {pages} pages, showing page 1 (Page Down / Page Up for the "
                       "others; the queue and `restore` process every page)", 10000)
        else:
            self.flash(f"Opened {Path(path).name}", 4000)
        self.imageOpened.emit(path)

    def show_page(self, step: int) -> None:
        """Show another page of the open multi-page TIFF (or frame of an animated PNG / WebP)."""
        image, path = self.session.original, self.session.original_path
        if image is None or path is None or int(image.meta.extra.get("pages", 1)) < 2 or self.runner.is_running():
            return
        pages = int(image.meta.extra["pages"])
        index = min(max(int(image.meta.extra.get("page_index", 0)) + step, 0), pages - 1)
        if index == int(image.meta.extra.get("page_index", 0)):
            return
        self.flash(f"Opening page {index + 1} of {pages}\u2026")
        read_page = _imageio_pages().read_page
        background.call_in_background(lambda: read_page(path, index), lambda page: self._on_page(page, path),
                                      lambda error, details: self._on_open_failed(str(path), error, details))

    def _on_page(self, image: Image, path: Path) -> None:
        self.set_original(image, path)
        self.flash(f"{path.name}: page {int(image.meta.extra.get('page_index', 0)) + 1} of "
                   f"{int(image.meta.extra.get('pages', 1))}", 4000)

    def _on_open_failed(self, path: str, error: Exception, details: str) -> None:
        self.flash("")
        message = str(error) if isinstance(error, EngineError) else f"{Path(path).name}: {error}"
        self.queue_panel.set_status(path, "failed", message)
        self.show_error(f"Cannot open {Path(path).name}", message,
                        "" if isinstance(error, EngineError) else details)
        self.openFailed.emit(message)

    def set_original(self, image: Image, path: Path | None) -> None:
        """Make ``image`` the working image (results of the previous one are forgotten)."""
        self.session.open(image, path)
        self._run_when_measured = False  # a Run held for the previous image's noise level does not carry over
        self._metrics_cache.clear()
        self.history_panel.set_results([])
        self._suggest_model(image)
        self.model_panel.set_image(image)
        self.image_label.setText(describe_image(image))
        self.image_label.setToolTip("Size \u00b7 format and depth \u00b7 HDR or not \u00b7 alpha \u00b7 AOV buffers "
                                    "\u00b7 value range (min\u2013max)")
        self.setWindowTitle(f"{path.name if path else 'image'} \u2014 {APP_TITLE}")
        self._refresh_sources("original", "original")
        self.viewer.zoom_fit()
        self.viewer.setFocus()
        self._update_actions()

    def _suggest_model(self, image: Image) -> None:
        """When the selected model does not suit the new image, select the default model of a task that does.

        An HDR render goes to render denoising (preferring a model that uses its AOVs), a gray scan to document
        restoration, other images to photo denoising. The user's choice is kept whenever it suits the image.
        """
        from .model_panel import suitability

        current = self.model_panel.current_entry()
        if self.model_panel.current_task_panel() is not None:
            return
        if current is not None and suitability(image, current.manifest) is None:
            return
        tasks = ["render-denoise"] if image.meta.hdr else (["document", "photo-denoise"] if image.meta.gray
                                                            else ["photo-denoise"])
        for task in tasks:
            for entry in self.registry.ranked(task, image.aovs):
                if suitability(image, entry.manifest) is None:
                    self.model_panel.select("model", entry.id)
                    return

    def reference_dialog(self) -> None:
        imageio = _imageio()
        patterns = " ".join(f"*{ext}" for ext in sorted(imageio.SUPPORTED_READ_EXTENSIONS))
        path, _ = QFileDialog.getOpenFileName(self, "Load reference image", self.settings.last_folder,
                                              f"Images ({patterns});;All files (*)")
        if path:
            self.load_reference(path)

    def load_reference(self, path: str) -> None:
        read_image = _imageio().read_image
        background.call_in_background(lambda: read_image(path), lambda image: self.set_reference(image, Path(path)),
                                      lambda error, details: self._on_open_failed(path, error, details))

    def set_reference(self, image: Image | None, path: Path | None = None) -> None:
        self.session.reference = image
        self.session.reference_path = path
        self._metrics_cache.clear()
        a, b = self.compare_bar.keys()
        self._refresh_sources(a, b)
        self._update_actions()

    def clear_reference(self) -> None:
        self.set_reference(None)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files()
        for path in files:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_file(p))
        if not files:
            self.recent_menu.addAction("(none)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear Recent", self.settings.clear_recent_files)

    # -- drag and drop ---------------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier and len(paths) == 1:
            self.load_reference(paths[0])  # Shift+drop: use as the reference
        else:
            self.open_paths(paths)

    # == comparing ===============================================================================================
    def _refresh_sources(self, a_key: str | None, b_key: str | None) -> None:
        self.compare_bar.set_sources(self.session.sources(), a_key, b_key)

    def _on_sources_changed(self, a_key: str, b_key: str) -> None:
        a = self.session.source(a_key)
        b = self.session.source(b_key)
        self.viewer.set_images(a.image if a else None, b.image if b else None,
                               a.label if a else "A", b.label if b else "B")
        self.history_panel.select_key(b_key)
        self._update_metrics()
        self._update_actions()

    def set_mode(self, mode: str) -> None:
        self.viewer.set_mode(mode)
        self.compare_bar.set_mode(mode)
        self.mode_actions[mode].setChecked(True)

    def _on_tonemap(self, name: str) -> None:
        self.viewer.set_tonemap(name)
        self.settings.tonemap = name
        if name in self.tonemap_actions:
            self.tonemap_actions[name].setChecked(True)

    def _nudge_exposure(self, stops: float) -> None:
        self.compare_bar.set_exposure(self.compare_bar.exposure() + stops)

    def shown_sources(self) -> list[tuple[str, Image]]:
        """(name, image) of A, B and the reference, for the inspector."""
        out = []
        a_key, b_key = self.compare_bar.keys()
        for tag, key in (("A", a_key), ("B", b_key)):
            source = self.session.source(key) if key else None
            if source is not None:
                out.append((tag, source.image))
        if self.session.reference is not None and "reference" not in (a_key, b_key):
            out.append(("Ref", self.session.reference))
        return out

    def _inspect_kernel(self, x: int, y: int) -> None:
        """Show the kernel the selected kernel-prediction model applies at the clicked pixel (off the GUI thread)."""
        from engine.kernel_inspector import has_kernels, inspect_kernel

        entry = self.model_panel.current_entry()
        image = self.session.original
        if image is None or entry is None or not has_kernels(entry.manifest):
            return
        canvas_w, canvas_h = self.viewer.canvas_size()
        px = min(image.width - 1, x * image.width // max(1, canvas_w))
        py = min(image.height - 1, y * image.height // max(1, canvas_h))
        if not self.kernel_dock.isVisible():
            self.kernel_dock.show()
        self.kernel_dock.raise_()
        self.kernel_panel.show_message(f"Predicting the kernel at ({px}, {py})…")
        device = self.settings.device if self.settings.device in ("cpu", "cuda") else "auto"
        background.call_in_background(
            lambda: inspect_kernel(entry, image, px, py, device=device),
            self.kernel_panel.show_inspection,
            lambda error, details: self.kernel_panel.show_message(f"Kernel inspector: {error}"),
        )

    def _on_hover(self, x: int, y: int) -> None:
        if x < 0:
            self.inspector.clear()
            return
        canvas = self.viewer.canvas_size()
        sources = self.shown_sources()
        extra = []
        if self.viewer.mode() == "diff":
            made = self.viewer.diff_values()
            if made is not None:
                errors = made[0]
                px, py = min(x, errors.shape[1] - 1), min(y, errors.shape[0] - 1)
                extra.append(("error", float(errors[py, px])))
        self.inspector.show_pixel(x, y, canvas, sources, extra)

    def _update_metrics(self) -> None:
        """PSNR / SSIM (and relMSE for HDR) of A and B against the reference, computed off the GUI thread."""
        reference = self.session.reference
        if reference is None:
            self.metrics_label.hide()
            return
        a_key, b_key = self.compare_bar.keys()
        parts: list[str] = []
        pending = False
        for tag, key in (("A", a_key), ("B", b_key)):
            source = self.session.source(key) if key else None
            if source is None or key == "reference":
                continue
            if key == "preview":  # changes several times a second: scored once it is a result
                parts.append(f"<b>{tag}</b> live preview")
                continue
            cache_key = (id(source.image), id(reference))
            if cache_key in self._metrics_cache:
                parts.append(f"<b>{tag}</b> {self._metrics_cache[cache_key][2]}")
            else:
                pending = True
                parts.append(f"<b>{tag}</b> computing\u2026")
                self._compute_metrics(source.image, reference, cache_key)
        if not parts:
            parts.append("choose an image other than the reference as A or B")
        self.metrics_label.setText("vs reference \u2014 " + " &nbsp;&nbsp;|&nbsp;&nbsp; ".join(parts))
        self.metrics_label.setVisible(True)
        self.metrics_label.setProperty("pending", pending)

    def _compute_metrics(self, image: Image, reference: Image, cache_key: tuple[int, int]) -> None:
        if cache_key in self._metrics_cache or cache_key in self._metrics_running:
            return
        self._metrics_running.add(cache_key)

        def compute() -> str:
            return metrics_text(image, reference)

        def done(text: str) -> None:
            self._metrics_running.discard(cache_key)
            if self.session.reference is reference:  # still the same reference: keep and show it
                self._metrics_cache[cache_key] = (image, reference, text)
                self._update_metrics()

        def error(exc: Exception, details: str) -> None:
            done(f"n/a ({exc})")

        background.call_in_background(compute, done, error)

    def metrics_text(self) -> str:
        return self.metrics_label.text() if self.metrics_label.isVisible() else ""

    # == running ==================================================================================================
    def run_current(self) -> None:
        image = self.session.original
        if image is None or self.runner.is_running():
            return
        if self.model_panel.waiting_for_noise_level():
            # Run pressed within a second of opening a photo: go once its noise level is measured, not with
            # the default level.
            self._run_when_measured = True
            self.flash("Measuring the image's noise level\u2026")
            return
        self._run_when_measured = False
        factory, title = self._job_factory()
        if factory is None:
            return
        # A task panel's make_job may touch its widgets, so it is called here, in the GUI thread.
        panel = self.model_panel.current_task_panel()
        self._start_job(lambda token: factory(image, token), title, build_here=panel is not None)

    def _on_noise_level_settled(self) -> None:
        if self._run_when_measured:
            self._run_when_measured = False
            self.run_current()

    def _job_factory(self, measure_each: bool = False):
        """(make_job(image, token), title) for the current selection, or (None, "").

        ``measure_each``: a noise level that is the app's measurement (not the user's) is measured again on each
        image the job is made for (the queue's photos each get their own, as on the command line)."""
        panel = self.model_panel.current_task_panel()
        if panel is not None:
            return panel.make_job, str(getattr(panel, "title", "ZSSR"))
        entry = self.model_panel.current_entry()
        if entry is None:
            return None, ""
        params = self.model_panel.params()
        tile = self.model_panel.tile()
        ensemble = self.model_panel.ensemble()
        device = self.settings.device
        # The panel's level is then each image's fallback (an image too small to measure, or an HDR one).
        measure = measure_each and self.model_panel.noise_level_is_measured()

        def make(image: Image, token: CancelToken):
            from engine.noise_estimate import with_estimated_noise_level
            from engine.restore import restore_job

            values, _level = with_estimated_noise_level(image, entry.manifest, params, replace=measure)
            return restore_job(image, entry, values, tile=tile, device=device, ensemble=ensemble, token=token)

        return make, entry.manifest.display_name

    def _start_job(self, factory, title: str, build_here: bool = False) -> None:
        self._job_title = title
        self._job_started = time.perf_counter()
        try:
            self.runner.start(factory, build_here=build_here)
        except Exception as error:  # a panel that cannot build its job (bad settings) says why
            self.show_error(f"{title} cannot start", str(error))
            return
        self.model_panel.set_running(True)
        self.flash(f"Running {title}\u2026")
        self._update_actions()

    def cancel_job(self) -> None:
        if self.runner.is_running():
            if self._batch is not None:
                self._batch["stop"] = True
            self.runner.cancel()
            self.flash("Cancelling\u2026")

    def _on_progress(self, progress: Progress) -> None:
        self.model_panel.show_progress(progress)
        panel = self.model_panel.current_task_panel()
        if panel is not None and hasattr(panel, "on_progress"):
            try:
                panel.on_progress(progress)
            except Exception as error:  # a panel's display bug must not stop the job's reporting
                self.flash(f"Panel display error: {error}", 5000)
        eta = format_eta(progress.eta_s)
        self.flash(f"{self._job_title}: {progress.message or progress.stage}"
                                     + (f" \u2014 {eta}" if eta else ""))
        if isinstance(progress.preview, Image) and self._batch is None:
            self._pending_preview = progress.preview
            # Previews arrive up to 20 times a second; showing 4 a second keeps the window fluid.
            if not self._preview_timer.isActive():
                self._preview_timer.start()

    def _show_pending_preview(self) -> None:
        preview, self._pending_preview = self._pending_preview, None
        if preview is None or not self.runner.is_running():
            return
        first = self.session.preview is None
        self.session.preview = preview
        a_key, b_key = self.compare_bar.keys()
        if first:
            self._refresh_sources(a_key or "original", "preview")
        elif "preview" in (a_key, b_key):
            a = self.session.source(a_key)
            b = self.session.source(b_key)
            self.viewer.set_images(a.image if a else None, b.image if b else None,
                                   a.label if a else "A", b.label if b else "B")

    def _on_succeeded(self, result: Any) -> None:
        seconds = time.perf_counter() - self._job_started
        if self._batch is not None:
            self._batch_item_done(result)
            return
        if not isinstance(result, ImageResult):
            self.show_error("Unexpected result", f"The job returned {type(result).__name__}, not an image.")
            return
        key = self.session.add_result(result)
        self.history_panel.set_results(self.session.results)
        a_key, _ = self.compare_bar.keys()
        self._refresh_sources(a_key if a_key and a_key != "preview" else "original", key)
        took = result.seconds or seconds
        self.run_label.setText(f"Last run: {took:.1f} s")
        self.run_label.setToolTip(f"{result.label} on {result.device}")
        if result.device:
            self._device_text = result.device
            self._update_device_label()
        self.model_panel.show_outcome(f"Done in {took:.1f} s", True)
        self.flash(f"{result.label}: done in {took:.1f} s", 6000)
        self.resultAdded.emit(key)

    def _on_failed(self, message: str, details: str) -> None:
        if self._batch is not None:
            self._batch_item_failed(message)
            return
        self._drop_preview()
        self.model_panel.show_outcome("Failed", False)
        self.flash(f"{self._job_title} failed", 6000)
        self.show_error(f"{self._job_title or 'The job'} failed", message, details)

    def _on_cancelled(self) -> None:
        if self._batch is not None:
            self._batch_item_failed("cancelled", status="cancelled")
            return
        self._drop_preview()
        self.model_panel.show_outcome("Cancelled", False)
        self.flash("Cancelled", 4000)

    def _on_finished(self) -> None:
        panel = self.model_panel.current_task_panel()
        if panel is not None and hasattr(panel, "job_finished"):
            panel.job_finished()
        if self._batch is not None and not self._batch.get("stop") and self._batch["todo"]:
            QTimer.singleShot(0, self._batch_next)
            return
        if self._batch is not None:
            self._batch_end()
        self.model_panel.set_running(False)
        self._update_actions()

    def _drop_preview(self) -> None:
        self._pending_preview = None
        self._preview_timer.stop()
        if self.session.preview is not None:
            self.session.preview = None
            a_key, b_key = self.compare_bar.keys()
            self._refresh_sources(a_key if a_key != "preview" else "original",
                                  b_key if b_key != "preview" else self.session.latest_result_key() or "original")

    # -- batch queue ---------------------------------------------------------------------------------------------
    def process_queue_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the results into", self.settings.last_folder)
        if folder:
            self.process_queue(Path(folder))

    def process_queue(self, out_folder: Path) -> bool:
        """Run the current model on every queued file, saving ``<name>_<model><ext>`` into ``out_folder``."""
        if self.runner.is_running() or not self.queue_panel.paths():
            return False
        if self.model_panel.current_task_panel() is not None:
            self.show_error("Choose a model", "The queue runs a model from the list on every file; "
                            "ZSSR trains on one image at a time, so run it on the open image instead.")
            return False
        factory, title = self._job_factory(measure_each=True)
        if factory is None:
            self.show_error("No model selected", "Choose a model in the Model panel first.")
            return False
        suffix = (self.model_panel.current_entry().id if self.model_panel.current_entry() else "zssr")
        self._batch = {"todo": list(self.queue_panel.paths()), "factory": factory, "title": title,
                       "out": Path(out_folder), "suffix": suffix, "current": None, "done": 0, "failed": 0}
        for path in self._batch["todo"]:
            self.queue_panel.set_status(path, "waiting")
        self.model_panel.set_running(True)
        self._batch_next()
        return True

    def _batch_next(self) -> None:
        batch = self._batch
        path = batch["todo"].pop(0)
        batch["current"] = path
        self.queue_panel.set_status(path, "running")
        imageio = _imageio()
        factory, out_folder, suffix = batch["factory"], batch["out"], batch["suffix"]

        def job(token: CancelToken):
            image = imageio.read_image(path)
            source = Path(path)
            target = out_folder / f"{source.stem}_{suffix}{source.suffix}"
            pages = int(image.meta.extra.get("pages", 1))
            if pages > 1:  # every page of a multi-page scan or animation, into one file like the input
                del image
                restored = []
                for index in range(pages):
                    result = yield from factory(_imageio_pages().read_page(path, index), token)
                    restored.append(result.image)
                return str(_imageio_pages().write_pages(target, restored))
            result = yield from factory(image, token)
            written = imageio.write_image(target, result.image)
            return str(written)

        self._job_title = f"{batch['title']} ({Path(path).name})"
        self._job_started = time.perf_counter()
        self.runner.start(job)
        self.flash(f"Queue: {Path(path).name}\u2026")

    def _batch_item_done(self, written: Any) -> None:
        self._batch["done"] += 1
        self.queue_panel.set_status(self._batch["current"], "done", f"saved {written}")

    def _batch_item_failed(self, message: str, status: str = "failed") -> None:
        self._batch["failed"] += status == "failed"
        self.queue_panel.set_status(self._batch["current"], status, message)

    def _batch_end(self) -> None:
        batch, self._batch = self._batch, None
        text = f"Queue finished: {batch['done']} saved to {batch['out']}"
        if batch["failed"]:
            text += f", {batch['failed']} failed (hover over them for the reason)"
        self.model_panel.show_outcome(f"Queue: {batch['done']} done", batch["failed"] == 0)
        self.flash(text, 10000)

    # == saving ===================================================================================================
    def current_result_key(self) -> str | None:
        """The result to save: B when it is a result, else A when it is, else the newest result."""
        a_key, b_key = self.compare_bar.keys()
        for key in (b_key, a_key):
            if key and self.session.result_for_key(key) is not None:
                return key
        return self.session.latest_result_key()

    def suggested_name(self, key: str) -> Path:
        result = self.session.result_for_key(key)
        original = self.session.original_path or Path("image.png")
        folder = original.parent if self.session.original_path else Path(self.settings.last_folder)
        return folder / f"{original.stem}_{result.model_id if result else 'result'}{original.suffix or '.png'}"

    def save_dialog(self, key: str | None = None) -> None:
        key = key or self.current_result_key()
        if key is None:
            self.show_error("Nothing to save", "Run a model first; its result is what gets saved.")
            return
        imageio = _imageio()
        suggested = self.suggested_name(key)
        filters = ["Same format as the input (*" + (suggested.suffix or ".png") + ")",
                   "PNG (*.png)", "TIFF (*.tif *.tiff)", "OpenEXR (*.exr)", "JPEG (*.jpg *.jpeg)", "WebP (*.webp)",
                   "Radiance HDR (*.hdr)", "All files (*)"]
        del imageio
        path, _ = QFileDialog.getSaveFileName(self, "Save result", str(suggested), ";;".join(filters))
        if path:
            self.save_result(Path(path), key)

    def save_result(self, path: Path, key: str | None = None, wait: bool = False) -> bool:
        """Write a result to ``path`` (format from the extension; depth, alpha, metadata kept by the engine).

        Overwriting the original input asks for explicit confirmation first. Returns False when not saved.
        """
        key = key or self.current_result_key()
        result = self.session.result_for_key(key) if key else None
        if result is None:
            return False
        overwrite_input = (self.session.original_path is not None and path.exists()
                           and path.resolve() == self.session.original_path.resolve())
        if overwrite_input and not self.confirm(
                "Overwrite the original?",
                f"{path.name} is the image you opened. Replacing it loses the original for good.\n\n"
                "Overwrite it with the result?"):
            self.flash("Not saved: the original was kept", 5000)
            return False
        write_image = _imageio().write_image
        image = result.image

        def write():
            return write_image(path, image, allow_overwrite_input=overwrite_input)

        def done(written) -> None:
            self.settings.last_folder = str(Path(written).parent)
            self.flash(f"Saved {written}", 6000)
            self.saved.emit(str(written))

        def failed(error: Exception, details: str) -> None:
            self.show_error("Cannot save", str(error), "" if isinstance(error, EngineError) else details)

        if wait:
            try:
                done(write())
            except Exception as error:  # shown like the asynchronous path does
                failed(error, "")
                return False
        else:
            background.call_in_background(write, done, failed)
        return True

    def flash(self, text: str, timeout_ms: int = 0) -> None:
        """Show a status message (cleared after ``timeout_ms`` when given)."""
        self.message_label.setText(text)
        self._message_timer.stop()
        if timeout_ms:
            self._message_timer.start(timeout_ms)

    def confirm(self, title: str, question: str) -> bool:
        answer = QMessageBox.warning(self, title, question,
                                     QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                     QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def export_dialog(self) -> None:
        if self.viewer.image_a() is None:
            self.show_error("Nothing to export", "Open an image first.")
            return
        original = self.session.original_path or Path("comparison.png")
        default = Path(self.settings.last_folder) / f"{original.stem}_comparison.png"
        path, _ = QFileDialog.getSaveFileName(self, "Export comparison", str(default), "PNG (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            self.export_comparison(Path(path))

    def export_comparison(self, path: Path) -> bool:
        """Write the comparison at full resolution: split at the divider, or side by side (also for flicker)."""
        picture = render_comparison(self.viewer, self.compare_bar.exposure(), self.compare_bar.tonemap())
        if picture is None or not picture.save(str(path), "PNG"):
            self.show_error("Cannot export", f"Could not write {path}.")
            return False
        self.flash(f"Exported {path}", 6000)
        return True

    # == settings, dialogs, status =================================================================================
    def set_theme(self, theme: str) -> None:
        self.settings.theme = theme
        apply_theme(QApplication.instance(), theme)
        colour = icon_colour(theme)
        self._icon = lambda name: icon(name, colour)
        for action in self.findChildren(QAction):
            name = action.property("iconName")
            if name:
                action.setIcon(self._icon(name))
        self.compare_bar.set_icons(self._icon)

    def set_device(self, device: str) -> None:
        self.settings.device = device
        self._detect_device()

    def _detect_device(self) -> None:
        preference = self.settings.device
        self._device_text = "detecting\u2026"
        self._update_device_label()

        def done(text: str) -> None:
            self._device_text = text
            self._update_device_label()

        def probe() -> str:
            from engine.runtime import device_summary

            return device_summary(preference)

        background.call_in_background(probe, done, lambda error, _: done(f"unknown ({error})"))

    def _update_device_label(self) -> None:
        short = self._device_text.split(" \u2014 ")[0].replace("(R)", "").replace("(TM)", "").replace("  ", " ")
        self.device_label.setText(f"Device: {short}")
        self.device_label.setToolTip(self._device_text)

    def device_text(self) -> str:
        return self._device_text

    def _update_model_label(self) -> None:
        title = self.model_panel.current_title()
        self.model_label.setText(f"Model: {title}" if title else "Model: none")

    def _update_actions(self) -> None:
        has_image = self.session.original is not None
        running = self.runner.is_running()
        self.act_run.setEnabled(has_image and not running and bool(self.model_panel.current_title()))
        self.act_cancel.setEnabled(running)
        self.act_stop.setEnabled(running and self.model_panel.current_task_panel() is not None)
        self.act_save.setEnabled(bool(self.session.results))
        self.act_export.setEnabled(has_image)
        self.act_clear_reference.setEnabled(self.session.reference is not None)
        pages = int(self.session.original.meta.extra.get("pages", 1)) if has_image else 1
        self.act_next_page.setEnabled(pages > 1 and not running)
        self.act_prev_page.setEnabled(pages > 1 and not running)

    def refresh_models(self) -> None:
        self.registry.refresh()
        self.model_panel.refresh()
        self._report_model_problems()

    def _report_model_problems(self) -> None:
        """A bad or clashing user model is named in the status bar (all of them in its tooltip); the rest load."""
        problems = self.registry.problems
        if problems:
            self.flash(f"{len(problems)} model problem(s): {problems[0]}", 10000)
            self.message_label.setToolTip("\n".join(problems))

    @staticmethod
    def _train_dialog_class():
        try:
            from .train_dialog import TrainDialog
        except Exception:  # the training feature is optional
            return None
        return TrainDialog

    def open_train_dialog(self) -> None:
        dialog_class = self._train_dialog_class()
        if dialog_class is None:
            return
        entry = self.model_panel.current_entry()
        dialog = dialog_class(self, self.registry, model_id=entry.id if entry is not None else None,
                              image_path=self.session.original_path)
        dialog.finished.connect(lambda _: self.refresh_models())
        dialog.open()

    def show_error(self, title: str, message: str, details: str = "") -> QMessageBox:
        """A window-modal (non-blocking) error box; ``details`` go into its expandable Details section."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        if details:
            box.setDetailedText(details)
        box.open()
        self.last_error_dialog = box
        return box

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td style='padding-right:18px'><b>{k}</b></td><td>{v}</td></tr>" for k, v in SHORTCUTS)
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", f"<table>{rows}</table>",
                          QMessageBox.StandardButton.Close, self)
        box.open()

    def about_text(self) -> str:
        def version(name: str) -> str:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                return "not installed"

        from PySide6 import QtCore

        ort = version("onnxruntime-gpu")
        if ort == "not installed":
            ort = version("onnxruntime")
        import importlib.util

        from engine import __version__

        flavour = "full" if importlib.util.find_spec("torch") is not None else "lite: no ZSSR or training"
        return (f"<h3>{APP_TITLE} {__version__}</h3><p>Restores HDR renders, photos and scanned documents on your "
                f"own machine.</p><p><b>Build:</b> {flavour}{' (packaged)' if getattr(sys, 'frozen', False) else ''}"
                f"</p><p><b>Compute device:</b> {self._device_text}</p>"
                f"<p>Python {platform.python_version()} \u00b7 Qt {QtCore.qVersion()} \u00b7 PySide6 "
                f"{version('PySide6-Essentials')}<br>NumPy {np.__version__} \u00b7 ONNX Runtime {ort} \u00b7 "
                f"OpenCV {version('opencv-python-headless')} \u00b7 PyTorch {version('torch')}<br>"
                f"{platform.system()} {platform.release()} ({sys.platform})</p>")

    def show_about(self):
        """Help > About: version, environment and the bundled libraries' licence notices (non-modal)."""
        from .about_dialog import AboutDialog

        dialog = AboutDialog(self.about_text() + "<p>Third-party software and its licences: see the next tab.</p>",
                             self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.about_dialog = dialog
        return dialog

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.runner.is_running():
            if not self.confirm("A job is running", "Cancel the running job and quit?"):
                event.ignore()
                return
            self._batch = None
            self.runner.cancel()
            self.runner.wait(3.0)
        if self.persist_layout:
            self.settings.geometry = self.saveGeometry()
            self.settings.window_state = self.saveState()
            self.settings.sync()
        background.wait_idle(3000)
        super().closeEvent(event)


def metrics_text(image: Image, reference: Image) -> str:
    """"PSNR 31.20 dB · SSIM 0.9123" (+ relMSE for HDR) of ``image`` against ``reference``."""
    if image.pixels.shape != reference.pixels.shape:
        return f"n/a (size {image.width}\u00d7{image.height} vs reference {reference.width}\u00d7{reference.height})"
    from engine import metrics

    if reference.meta.hdr or image.meta.hdr:
        # Linear HDR values have no peak: score the display-like version (clip, gamma 1/2.2) as the
        # benchmark protocol does, and add relMSE, the render-denoising standard.
        def display(x):
            return np.clip(x, 0.0, 1.0) ** (1.0 / 2.2)

        return " \u00b7 ".join([
            f"PSNR {metrics.tonemapped_psnr(image.pixels, reference.pixels):.2f} dB",
            f"SSIM {metrics.ssim(display(image.pixels), display(reference.pixels)):.4f}",
            f"relMSE {metrics.relmse(image.pixels, reference.pixels):.4g}"])
    parts = [f"PSNR {metrics.psnr(image.pixels, reference.pixels):.2f} dB",
             f"SSIM {metrics.ssim(image.pixels, reference.pixels):.4f}"]
    return " \u00b7 ".join(parts)


def _display_rgb(image: Image, exposure: float, tonemap: str, size: tuple[int, int]) -> np.ndarray:
    from engine.display import to_display_uint8

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
