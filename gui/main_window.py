"""The main window: menus, toolbar, docks (model, history, queue, inspector), the comparison viewer, status bar."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
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

from engine.api import EngineError, Image, ImageResult, ModelRegistry

from . import background
from .about_dialog import about_html
from .compare_bar import CompareBar
from .icons import app_icon, icon
from .inspector import PixelInspector
from .kernel_panel import KernelInspectorPanel
from .metrics_bar import MetricsBar
from .model_panel import ModelPanel
from .opening import describe_image, expand_paths, image_file_filter, imageio_module
from .run_controller import RunController
from .saving import Saving
from .session import Session
from .settings import AppSettings
from .shot_view import ShotView
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
    ("E / Shift+E", "Exposure +/\u2212 half a stop"), ("R", "Reset exposure"),
    ("Ctrl+Alt+O", "Open a shot (an image sequence)"),
    ("Space, \u2190 \u2192, Home / End", "Shot: play / pause, step a frame, first / last frame"), ("F1", "This list"),
)


def _tonemaps() -> tuple[str, ...]:
    from engine.api import TONEMAPS

    return tuple(TONEMAPS)


def _tonemap_label(name: str) -> str:
    from engine.api import tonemap_label

    return tonemap_label(name)


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
        #: Starts and ends jobs (one run, or the batch queue); see gui/run_controller.py.
        self.runs = RunController(self)
        self.saving = Saving(self)
        self._device_text = "detecting\u2026"
        #: Closing with unsaved results asks first (the GUI tests' throwaway windows turn this off).
        self.ask_before_discarding = True
        #: Counts model and image changes: a kernel predicted for an earlier one is not shown.
        self._kernel_generation = 0
        self.last_error_dialog: QMessageBox | None = None
        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        # 1400 x 860, or the screen when it is smaller (a 1280 x 720 laptop).
        screen = QApplication.primaryScreen().availableGeometry() if QApplication.primaryScreen() else None
        self.resize(min(1400, screen.width()) if screen else 1400, min(860, screen.height()) if screen else 860)

        colour = icon_colour(self.settings.theme)
        self._icon = lambda name: icon(name, colour)
        self.viewer = CompareViewer()
        self.compare_bar = CompareBar(_tonemaps(), self._icon)
        self.metrics_bar = MetricsBar(self.session)
        self.metrics_bar.setWordWrap(True)  # long scores wrap rather than widen the window past the screen
        self.metrics_bar.setMinimumWidth(120)
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.setSpacing(0)
        central_layout.addWidget(self.compare_bar)
        central_layout.addWidget(self.metrics_bar)
        central_layout.addWidget(self.viewer, 1)
        self.setCentralWidget(central)

        self.model_panel = ModelPanel(self.registry, available_task_panels(), self.settings.tile_size,
                                      default_ensemble=self.settings.ensemble)
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
        self.history_panel.setMinimumWidth(150)
        self.resizeDocks([self.model_dock, self.history_dock], [360, 180], Qt.Orientation.Horizontal)
        self.resizeDocks([self.model_dock, self.inspector_dock], [600, 170], Qt.Orientation.Vertical)

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._connect()
        #: A shot (image sequence) open as one: transport bar, playback, runs over every frame (gui/shot_view.py).
        self.shots = ShotView(self)
        self.compare_bar.set_tonemap(self.settings.tonemap if self.settings.tonemap in _tonemaps() else "aces")
        self.viewer.set_tonemap(self.compare_bar.tonemap())
        self._restore_geometry()
        self.update_actions()
        self._reset_kernel_panel()
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
                                            "Open a folder: numbered frames open as a shot, other images are "
                                            "queued")
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
        self.act_stop = self._action("&Stop and Keep Result", self.runs.request_stop, None, None,
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
        self.act_render_passes = self._action("Render &Passes\u2026", self.render_passes_dialog, None, None,
                                              "Which passes of the render the models use (albedo, normal, depth)")
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
            action = tone.addAction(_tonemap_label(name))
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
        tools.addAction(self.act_render_passes)
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
        # The status bar never makes the window wider than a 1280 px screen: its labels may be cut short (the
        # full text is in their tooltips) instead of setting the window's minimum width.
        for label, least in ((self.image_label, 160), (self.model_label, 110), (self.device_label, 110)):
            label.setMinimumWidth(least)
        for label in (self.model_label, self.device_label, self.run_label):
            status.addPermanentWidget(label)
        self._update_model_label()
        self._update_device_label()

    def _connect(self) -> None:
        self.model_panel.runRequested.connect(self.run_request)
        self.model_panel.noiseLevelSettled.connect(self.runs.noise_level_settled)
        self.model_panel.cancelRequested.connect(self.cancel_job)
        self.model_panel.stopRequested.connect(self.runs.request_stop)
        self.model_panel.selectionChanged.connect(self._update_model_label)
        self.model_panel.selectionChanged.connect(self._reset_kernel_panel)
        self.model_panel.selectionChanged.connect(self.update_actions)
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
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", self.settings.last_folder, image_file_filter())
        if paths:
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Queue a folder of images", self.settings.last_folder)
        if folder:
            self.open_paths([folder])

    def queue_folder(self, folder: str) -> None:
        """Every image of ``folder`` in the queue, the first one opened (a folder of frames otherwise opens as a
        shot)."""
        self.shots.close()
        self._open_files([folder])

    def open_paths(self, paths: list[str]) -> None:
        """Open one image, or queue several (folders expand to their images) and open the first; a frame pattern
        or a folder of numbered frames opens as a shot."""
        if self.shots.open_paths(paths):
            return
        self._open_files(paths)

    def _open_files(self, paths: list[str]) -> None:
        files, companions = expand_paths(paths)
        skipped = 0
        if len(files) > 1:  # in a batch, leave out what cannot be an image instead of failing on it later
            supported = [f for f in files if imageio_module().is_supported(f)]
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
        self.shots.close()
        self.flash(f"Opening {Path(path).name}\u2026")
        read_image = imageio_module().read_image
        background.call_in_background(lambda: read_image(path), lambda image: self._on_opened(image, path),
                                      lambda error, details: self._on_open_failed(path, error, details))

    def _on_opened(self, image: Image, path: str) -> None:
        self.set_original(image, Path(path))
        self.settings.add_recent_file(path)
        self.settings.last_folder = str(Path(path).resolve().parent)
        pages = int(image.meta.extra.get("pages", 1))
        earlier = len(self.session.results)  # made before another image was opened: back in the History
        if pages > 1:
            self.flash(f"Opened {Path(path).name}: {pages} pages, showing page 1 (Page Down / Page Up for the "
                       "others; the queue and `restore` process every page)", 10000)
        else:
            self.flash(f"Opened {Path(path).name}" + (f" \u00b7 its {earlier} earlier result(s) are in the History"
                                                      if earlier else ""), 6000 if earlier else 4000)
        self.shots.image_opened(path)  # one frame of a sequence: the shot is offered
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
        from engine.api import read_page

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
        """Make ``image`` the working image. The previous image's results are kept for when it is opened again
        (and counted when the window asks about unsaved work); this image's own results come back."""
        self.session.open(image, path)
        self.runs.forget_held_run()
        self.metrics_bar.forget()
        self.history_panel.set_results(self.session.results, self.session.is_saved)
        self.model_panel.show_outcome("Ready", False)  # not the previous image's "Done in N s"
        self.run_label.setText("Last run: \u2013")
        self.run_label.setToolTip("")
        self._suggest_model(image)
        self.model_panel.set_image(image)
        self._reset_kernel_panel()
        self.image_label.setText(describe_image(image))
        self.image_label.setToolTip(describe_image(image) + "\n(size \u00b7 format and depth \u00b7 HDR or not "
                                    "\u00b7 alpha \u00b7 AOV buffers \u00b7 value range, min\u2013max)")
        self.setWindowTitle(f"{path.name if path else 'image'} \u2014 {APP_TITLE}")
        self._refresh_sources("original", self.session.latest_result_key() or "original")
        self.viewer.zoom_fit()
        self.viewer.setFocus()
        self.update_actions()

    def _suggest_model(self, image: Image) -> None:
        """When the selected model does not suit the new image, select the suggested one
        (:func:`engine.models.suggest.suggest_model`). The user's choice is kept whenever it suits the image.
        """
        from .model_panel import suitability

        current = self.model_panel.current_entry()
        if self.model_panel.current_task_panel() is not None:
            return
        if current is not None and suitability(image, current.manifest) is None:
            return
        suggestion = self.registry.suggest(image)  # the rule the command line follows too
        if suggestion is not None and suggestion.warning is None:
            self.model_panel.select("model", suggestion.entry.id)

    def reference_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load reference image", self.settings.last_folder,
                                              image_file_filter())
        if path:
            self.load_reference(path)

    def load_reference(self, path: str) -> None:
        read_image = imageio_module().read_image
        background.call_in_background(lambda: read_image(path), lambda image: self.set_reference(image, Path(path)),
                                      lambda error, details: self._on_open_failed(path, error, details))

    def set_reference(self, image: Image | None, path: Path | None = None) -> None:
        self.session.reference = image
        self.session.reference_path = path
        self.metrics_bar.forget()
        a, b = self.compare_bar.keys()
        self._refresh_sources(a, b)
        self.update_actions()

    def clear_reference(self) -> None:
        self.set_reference(None)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files()
        for path in files:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_paths([p]))
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
        self.update_actions()

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
        from engine.api import has_kernels, inspect_kernel

        entry = self.model_panel.current_entry()
        image = self.session.original
        if image is None or entry is None or not has_kernels(entry.manifest):
            return
        generation = self._kernel_generation

        def show(inspection) -> None:
            if generation == self._kernel_generation:  # not for another model or image
                self.kernel_panel.show_inspection(inspection)

        def failed(error, details) -> None:
            if generation == self._kernel_generation:
                self.kernel_panel.show_message(f"Kernel inspector: {error}")
        canvas_w, canvas_h = self.viewer.canvas_size()
        px = min(image.width - 1, x * image.width // max(1, canvas_w))
        py = min(image.height - 1, y * image.height // max(1, canvas_h))
        if not self.kernel_dock.isVisible():
            self.kernel_dock.show()
        self.kernel_dock.raise_()
        self.kernel_panel.show_message(f"Predicting the kernel at ({px}, {py})…")
        device = self.settings.device if self.settings.device in ("cpu", "cuda") else "auto"
        background.call_in_background(
            lambda: inspect_kernel(entry, image, px, py, device=device), show, failed)

    def _reset_kernel_panel(self) -> None:
        """Another model or image: the kernel shown (or being predicted) no longer applies; the prompt says
        what the selected model allows."""
        from engine.api import has_kernels

        self._kernel_generation += 1
        entry = self.model_panel.current_entry()
        kernels = entry is not None and has_kernels(entry.manifest)
        self.kernel_panel.show_prompt(entry.manifest.display_name if kernels else None)

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
        self.metrics_bar.show_scores(*self.compare_bar.keys())

    def metrics_text(self) -> str:
        return self.metrics_bar.scores_text()

    # == running (gui/run_controller.py starts and ends jobs) ===============================================
    @property
    def runner(self) -> JobRunner:
        return self.runs.runner

    def run_current(self) -> None:
        """Run what the model panel shows on the open image (or on every frame of the open shot)."""
        self.run_request(self.model_panel.request())

    def run_request(self, request) -> None:
        if self.shots.is_open():
            self.shots.run(request)
        else:
            self.runs.run(request, self.session.original)

    def cancel_job(self) -> None:
        self.runs.cancel()

    def show_preview(self, preview: Image) -> None:
        """A running job's live preview: shown as B the first time, then wherever it is shown."""
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

    def show_kept_preview(self) -> None:
        """"Stop and keep result" was pressed: the live preview is shown as B, named as the result being kept."""
        self.model_panel.show_stopping()
        if self.session.preview is None:
            self.flash("Stopping: finishing the result\u2026")
            return
        self.session.preview_kept = True
        a_key, _ = self.compare_bar.keys()
        self._refresh_sources(a_key if a_key and a_key != "preview" else "original", "preview")
        self.flash("Stopped: the result so far is shown; finishing it (ensemble and back-projection)\u2026")

    def show_result(self, result: ImageResult, took: float) -> None:
        """A finished run: it joins the history and is shown as B."""
        key = self.session.add_result(result)
        self.history_panel.set_results(self.session.results, self.session.is_saved)
        a_key, _ = self.compare_bar.keys()
        self._refresh_sources(a_key if a_key and a_key != "preview" else "original", key)
        self.run_label.setText(f"Last run: {took:.1f} s")
        self.run_label.setToolTip(f"{result.label} on {result.device}")
        if result.device:
            self._device_text = result.device
            self._update_device_label()
        self.model_panel.show_outcome(f"Done in {took:.1f} s", True)
        self.flash(f"{result.label}: done in {took:.1f} s", 6000)
        self.resultAdded.emit(key)

    def drop_preview(self) -> None:
        """A run ended without a result: its preview goes."""
        if self.session.preview is not None:
            self.session.preview = None
            self.session.preview_kept = False
            a_key, b_key = self.compare_bar.keys()
            self._refresh_sources(a_key if a_key != "preview" else "original",
                                  b_key if b_key != "preview" else self.session.latest_result_key() or "original")

    def process_queue_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the results into", self.settings.last_folder)
        if folder:
            self.process_queue(Path(folder))

    def process_queue(self, out_folder: Path) -> bool:
        """Run the current model on every queued file, saving ``<name>_<model><ext>`` into ``out_folder``."""
        return self.runs.process_queue(self.queue_panel.paths(), self.model_panel.request(), out_folder)

    # == saving (gui/saving.py) ======================================================================================
    def current_result_key(self) -> str | None:
        return self.saving.current_result_key()

    def suggested_name(self, key: str) -> Path:
        return self.saving.suggested_name(key)

    def save_dialog(self, key: str | None = None) -> None:
        self.saving.save_dialog(key)

    def save_result(self, path: Path, key: str | None = None, wait: bool = False) -> bool:
        return self.saving.save_result(path, key, wait)

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
        self.saving.export_dialog()

    def export_comparison(self, path: Path) -> bool:
        return self.saving.export_comparison(path)

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
        self.shots.set_icons(self._icon)

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
            from engine.api import device_summary

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
        self.model_label.setToolTip(self.model_label.text())

    def update_actions(self) -> None:
        has_image = self.session.original is not None
        running = self.runner.is_running()
        self.act_run.setEnabled(has_image and not running and bool(self.model_panel.current_title()))
        self.act_cancel.setEnabled(running)
        self.act_stop.setEnabled(running and self.model_panel.current_task_panel() is not None)
        self.act_save.setEnabled(bool(self.session.results))
        self.act_export.setEnabled(has_image)
        self.act_clear_reference.setEnabled(self.session.reference is not None)
        self.act_render_passes.setEnabled(has_image and "aov_roles" in self.session.original.meta.extra)
        pages = int(self.session.original.meta.extra.get("pages", 1)) if has_image else 1
        self.act_next_page.setEnabled(pages > 1 and not running)
        self.act_prev_page.setEnabled(pages > 1 and not running)

    def render_passes_dialog(self) -> None:
        """Tools > Render Passes: show which pass took which role and let the user give a role to another pass."""
        from .render_passes_dialog import RenderPassesDialog

        dialog = RenderPassesDialog(self.session.original, self)
        if dialog.exec() and (dialog.choices() or dialog.colour()):
            self.set_original(dialog.image(), self.session.original_path)

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
        return about_html(APP_TITLE, self._device_text)

    def show_about(self):
        """Help > About: version, environment and the bundled libraries' licence notices (non-modal)."""
        from .about_dialog import AboutDialog

        dialog = AboutDialog(self.about_text() + "<p>Third-party software and its licences: see the next tab.</p>",
                             self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.about_dialog = dialog
        return dialog

    def ask_about_unsaved(self) -> bool:
        """Before quitting with unsaved results: Save All (beside their inputs) / Discard / Cancel.
        True when the window may close."""
        unsaved = self.session.unsaved()
        if not unsaved or not self.ask_before_discarding:
            return True
        images = len({item.original_path for item in unsaved})
        where = "this image" if images == 1 else f"{images} images"
        answer = QMessageBox.warning(
            self, "Unsaved results",
            f"{len(unsaved)} result(s) of {where} are not saved.\n\n"
            "Save All writes each one beside its input as NAME_MODEL (never replacing a file); "
            "Discard loses them.",
            QMessageBox.StandardButton.SaveAll | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Discard:
            self.session.forget_results()
            return True
        if answer != QMessageBox.StandardButton.SaveAll:
            return False
        try:
            written = self.saving.save_all_unsaved()
        except Exception as error:  # nothing is discarded: the window stays open and says why
            self.show_error("Cannot save", f"Not every result could be saved, so the window stays open: {error}")
            return False
        self.flash(f"Saved {len(written)} result(s)")
        return True

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.runner.is_running():
            if not self.confirm("A job is running", "Cancel the running job and quit?"):
                event.ignore()
                return
            self.runs.batch = None
            self.runner.cancel()
            self.runner.wait(3.0)
        if not self.ask_about_unsaved():
            event.ignore()
            return
        self.shots.shutdown()
        if self.persist_layout:
            self.settings.geometry = self.saveGeometry()
            self.settings.window_state = self.saveState()
            self.settings.sync()
        background.wait_idle(3000)
        super().closeEvent(event)

