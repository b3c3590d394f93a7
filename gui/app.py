"""Application entry: ``gui.app.main(images, screenshot=None)`` (called by ``python main.py [IMAGE...]``)."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEvent, QObject, Qt
from PySide6.QtWidgets import QApplication

from .settings import APPLICATION, ORGANISATION, AppSettings
from .theme import apply_theme

#: Window size used for ``--screenshot`` (a stable picture for the README).
SCREENSHOT_SIZE = (1440, 900)


#: Seconds a Python thread may hold the GIL before handing it over (CPython's default is 0.005). Jobs run in
#: a worker thread; with a shorter interval the GUI thread waits less for the GIL after each Qt call, which
#: keeps painting smooth while a job's Python code runs.
GIL_SWITCH_INTERVAL_S = 0.001


def create_application(argv: list[str] | None = None) -> QApplication:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    app = QApplication.instance()
    if app is None:
        QCoreApplication.setOrganizationName(ORGANISATION)
        QCoreApplication.setApplicationName(APPLICATION)
        QApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(argv if argv is not None else [sys.argv[0]])
    from . import wheel_guard
    from .icons import app_icon

    app.setWindowIcon(app_icon())
    wheel_guard.install(app)  # the wheel scrolls panels; it changes a field only when the field has focus
    return app


def _process_until(app: QApplication, done, timeout_ms: int) -> bool:
    timer = QElapsedTimer()
    timer.start()
    while not done() and timer.elapsed() < timeout_ms:
        app.processEvents()
        QCoreApplication.sendPostedEvents()
    return done()


def take_screenshot(window, image_path: str, out_path: str) -> int:
    """Open ``image_path`` (synchronously), show the split view and write a PNG of the whole window."""
    app = QApplication.instance()
    from engine.api import EngineError, read_image

    try:
        image = read_image(image_path)
    except EngineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    window.resize(*SCREENSHOT_SIZE)
    window.show()
    window.set_original(image, Path(image_path))
    window.set_mode("split")
    window.viewer.set_divider(0.5)
    _process_until(app, lambda: window.windowHandle() is not None and window.windowHandle().isExposed(), 5000)
    _process_until(app, lambda: window.device_text() != "detecting\u2026", 10000)
    # A photo's noise level is measured in the background: show the settled panel, as a user sees it a moment later.
    _process_until(app, lambda: not window.model_panel.waiting_for_noise_level(), 20000)
    for _ in range(5):
        app.processEvents()
    picture = window.grab()
    if picture.isNull() or not picture.save(out_path, "PNG"):
        print(f"error: could not write the screenshot to {out_path}", file=sys.stderr)
        return 1
    print(f"screenshot written to {out_path}")
    return 0


class FileOpenForwarder(QObject):
    """Opens files the system hands to the running app as a ``QFileOpenEvent`` (macOS Finder double-click or
    "Open With"; on Linux and Windows files arrive on the command line instead)."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self._window = window

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.FileOpen and event.file():
            self._window.open_paths([event.file()])
            return True
        return False


def build_window(images: list[str], *, persist_layout: bool = True):
    """The themed main window, shown, with ``images`` being opened (reading happens in the background)."""
    app = create_application()
    settings = AppSettings()
    apply_theme(app, settings.theme)
    from .main_window import MainWindow

    window = MainWindow(settings, persist_layout=persist_layout)
    window.file_open_forwarder = FileOpenForwarder(window)
    from .reference_finder import ReferenceFinder

    window.reference_finder = ReferenceFinder(window)  # a NAME_ref / NAME_clean / higher-spp file beside the image
    from . import histogram_panel

    window.histogram_dock = histogram_panel.install(window)  # View > Histogram
    app.installEventFilter(window.file_open_forwarder)
    if persist_layout:
        window.show()
        if images:
            window.open_paths([str(Path(p)) for p in images])
    return window


def selftest_window() -> str:
    """Build, show and paint the main window, then close it (``main.py --selftest``); raises on failure.

    In a frozen bundle this is where a missing Qt plugin (platform, SVG icons, image formats) shows up.
    """
    app = create_application()
    window = build_window([], persist_layout=False)
    try:
        window.resize(800, 600)
        window.show()
        _process_until(app, lambda: window.windowHandle() is not None and window.windowHandle().isExposed(), 5000)
        picture = window.grab()
        if picture.isNull() or picture.width() < 100:
            raise RuntimeError("the window could not be painted")
        if app.windowIcon().isNull():
            raise RuntimeError("the application icon did not load (SVG support missing?)")
        count = len(window.registry.models())
        if count == 0:
            raise RuntimeError("the model picker is empty")
        return f"window built with {count} models; Qt platform {app.platformName()}"
    finally:
        window.close()


def main(images: list[str], screenshot: str | None = None) -> int:
    """Start the desktop app with ``images`` (several become a queue); with ``screenshot``, write one and exit."""
    if screenshot is not None and not images:
        print("error: --screenshot needs an IMAGE", file=sys.stderr)
        return 2
    app = create_application()
    window = build_window(images if screenshot is None else [], persist_layout=screenshot is None)
    if screenshot is not None:
        code = take_screenshot(window, images[0], screenshot)
        window.close()  # closeEvent waits for the window's background calls
        return code
    return app.exec()
