"""Loads the clean reference that sits beside an opened image, so a render's results are scored at once.

``cbox_256_spp0016_color.exr`` opened beside ``cbox_256_ref_spp04096_color.exr`` gets it as the reference;
``photo.png`` beside ``photo_clean.png`` or ``photo_ref.png`` too (engine/imageio/sidecars.find_reference holds
the naming rule). A reference found this way is replaced by the next image's, or dropped when the next image has
none; one the user picked by hand (File > Load Reference) is left alone. A found file that cannot be read or has
another size is named in the status bar and not used.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject

from . import background


class ReferenceFinder(QObject):
    """Connected to the window's ``imageOpened`` by ``gui.app.build_window``."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self._window = window
        self._found: Path | None = None  # the reference this finder loaded (None: none, or the user's own)
        window.imageOpened.connect(self.image_opened)

    def image_opened(self, path: str) -> None:
        from engine.api import find_reference, read_image

        window = self._window
        reference = find_reference(Path(path))
        if reference is None:
            if self._found is not None and window.session.reference_path == self._found:
                window.clear_reference()  # the previous image's reference does not score this one
            self._found = None
            return
        opened = window.session.original

        def use(image) -> None:
            if window.session.original is not opened:
                return  # another image was opened meanwhile
            if (image.height, image.width) != (opened.height, opened.width):
                window.flash(f"{reference.name} looks like the reference but is {image.width} x {image.height}: "
                             "not used", 8000)
                return
            self._found = reference
            window.set_reference(image, reference)
            window.flash(f"Reference: {reference.name} (found beside the image; File \u203a Clear Reference to "
                         "drop it)", 8000)

        def failed(error: Exception, details: str) -> None:
            window.flash(f"{reference.name} looks like the reference but cannot be read: {error}", 8000)

        background.call_in_background(lambda: read_image(reference), use, failed)
