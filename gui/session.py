"""What the user is working on: the original image, the results made this session, an optional reference.

Results are kept per image while the app runs: opening another image puts the current one's results aside
(``kept``), and opening it again brings them back. Which results were saved is remembered, so the window can ask
before unsaved work is discarded (:meth:`Session.unsaved`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.api import Image, ImageResult


@dataclass(frozen=True)
class Source:
    """One image the viewer can show as A or B."""

    key: str
    label: str
    image: Image


@dataclass(frozen=True)
class Unsaved:
    """A result not saved yet, with the image it was made from (for its file name)."""

    original_path: Path | None
    result: ImageResult


def _path_key(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return str(Path(path).resolve())
    except OSError:
        return str(path)


@dataclass
class Session:
    original: Image | None = None
    original_path: Path | None = None
    results: list[ImageResult] = field(default_factory=list)
    reference: Image | None = None
    reference_path: Path | None = None
    #: The live intermediate result of the running job (ZSSR), shown as a source while it runs.
    preview: Image | None = None
    #: "Stop and keep result" was pressed: the preview is what is being kept (finished off by the job).
    preview_kept: bool = False
    #: (original, [(layer name, picture)]): the original's AOV layers made viewable, kept while it is open.
    _layer_views: tuple[Image, list] | None = field(default=None, repr=False)
    #: The results of the other images opened this session, by resolved path (given back when one is reopened).
    kept: dict[str, tuple[Path, list[ImageResult]]] = field(default_factory=dict)
    #: ids of the results saved at least once (results are never copied, so their ids stay theirs).
    _saved: set[int] = field(default_factory=set, repr=False)
    #: With a shot open (gui/shot_view.py): the current frame's restored file, read from disk, and its path.
    shot_result: Image | None = None
    shot_result_path: Path | None = None

    def open(self, image: Image, path: Path | None) -> None:
        """Make ``image`` the original. The previous image's results are kept aside (by its path) and this
        image's own results, when it was opened before, come back."""
        previous = _path_key(self.original_path)
        if previous is not None and self.results:
            self.kept[previous] = (self.original_path, self.results)
        self.original = image
        self.original_path = path
        key = _path_key(path)
        self.results = list(self.kept.pop(key)[1]) if key in self.kept else []
        self.preview = None
        self.preview_kept = False

    def add_result(self, result: ImageResult) -> str:
        self.results.append(result)
        self.preview = None
        self.preview_kept = False
        return f"result:{len(self.results) - 1}"

    # -- saved or not ----------------------------------------------------------------------------------------
    def mark_saved(self, result: ImageResult) -> None:
        self._saved.add(id(result))

    def is_saved(self, result: ImageResult) -> bool:
        return id(result) in self._saved

    def unsaved(self) -> list[Unsaved]:
        """Every result of this session not saved yet: the open image's first, then the other images'."""
        found = [Unsaved(self.original_path, r) for r in self.results if not self.is_saved(r)]
        for path, results in self.kept.values():
            found.extend(Unsaved(path, r) for r in results if not self.is_saved(r))
        return found

    def forget_results(self) -> None:
        """Drop every result (the user chose to discard them)."""
        self.results = []
        self.kept.clear()
        self._saved.clear()

    def sources(self) -> list[Source]:
        found: list[Source] = []
        if self.original is not None:
            name = self.original_path.name if self.original_path else "image"
            found.append(Source("original", f"Original ({name})", self.original))
        if self.shot_result is not None:
            found.append(Source("shot:result", self.shot_result_label(), self.shot_result))
        for index, result in enumerate(self.results):
            found.append(Source(f"result:{index}", f"#{index + 1} {result.label}", result.image))
        if self.preview is not None:
            label = "Kept result (finishing\u2026)" if self.preview_kept else "Running\u2026 (live preview)"
            found.append(Source("preview", label, self.preview))
        if self.reference is not None:
            name = self.reference_path.name if self.reference_path else "reference"
            found.append(Source("reference", f"Reference ({name})", self.reference))
        found.extend(self.layer_sources())
        return found

    def shot_result_label(self) -> str:
        return f"Restored ({self.shot_result_path.name})" if self.shot_result_path else "Restored"

    def layer_sources(self) -> list[Source]:
        """The original's AOV layers (albedo, normal, depth) as pictures to view as A or B
        (engine/render_views.layer_view), made once per opened image."""
        image = self.original
        if image is None or not image.aovs:
            return []
        if self._layer_views is None or self._layer_views[0] is not image:
            from engine.api import layer_view

            views = [(name, layer_view(image, name)) for name in image.aovs]
            self._layer_views = (image, views)
        return [Source(f"layer:{name}", f"{name.capitalize()} (AOV layer)", view)
                for name, view in self._layer_views[1]]

    def source(self, key: str) -> Source | None:
        for candidate in self.sources():
            if candidate.key == key:
                return candidate
        return None

    def latest_result_key(self) -> str | None:
        return f"result:{len(self.results) - 1}" if self.results else None

    def result_for_key(self, key: str) -> ImageResult | None:
        if key.startswith("result:"):
            index = int(key.split(":", 1)[1])
            if 0 <= index < len(self.results):
                return self.results[index]
        return None
