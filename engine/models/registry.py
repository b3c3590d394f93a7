"""The model registry: an explicit list of classical engines plus the ONNX models found in two folders.

Folders are read when :meth:`ModelRegistry.refresh` is called, never at import time: the bundled
``resources/models`` and the per-user models folder (models trained on this machine). Each ONNX model's
sha256 is checked when it is loaded for inference (:func:`verify_model_file`), not while listing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from ..paths import resources_dir, user_models_dir
from .manifest import ModelManifest, load_manifest


@dataclass(frozen=True)
class ModelEntry:
    manifest: ModelManifest
    #: The ONNX file for engine "onnx"; None for classical engines.
    path: Path | None
    #: "builtin" (classical), "blend" (a bundled network with a built-in peer), "bundled" (resources/models) or
    #: "user" (trained on this machine).
    source: str

    @property
    def id(self) -> str:
        return self.manifest.id


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_model_file(entry: ModelEntry) -> None:
    """Raise ModelError unless the entry's ONNX file exists and matches the manifest's sha256."""
    if entry.path is None:
        return
    if not entry.path.is_file():
        raise ModelError(f"model {entry.id!r}: file {entry.path} is missing")
    if not entry.manifest.sha256:
        # Every exporter writes the checksum; a manifest without one could point at any file.
        raise ModelError(
            f"model {entry.id!r}: its manifest has no sha256, so {entry.path.name} cannot be verified "
            "(re-export the model, or add the file's sha256 to the manifest)"
        )
    actual = file_sha256(entry.path)
    if actual != entry.manifest.sha256:
        raise ModelError(
            f"model {entry.id!r}: {entry.path.name} fails its checksum (expected {entry.manifest.sha256[:12]}..., "
            f"found {actual[:12]}...); the file is damaged or was replaced"
        )


def scan_models_folder(folder: Path, source: str) -> tuple[list[ModelEntry], list[str]]:
    """Read every ``*.json`` manifest in ``folder``. Returns the entries and readable problems."""
    entries: list[ModelEntry] = []
    problems: list[str] = []
    if not folder.is_dir():
        return entries, problems
    for manifest_path in sorted(folder.glob("*.json")):
        try:
            manifest = load_manifest(manifest_path)
        except ModelError as error:
            problems.append(str(error))
            continue
        if manifest.engine != "onnx":
            problems.append(f"{manifest_path}: only ONNX models can be installed from a folder")
            continue
        entries.append(ModelEntry(manifest, (folder / manifest.file).resolve(), source))
    return entries, problems


class ModelRegistry:
    """All models the app can run, by id. Later folders override earlier ones with the same id."""

    def __init__(self, folders: Iterable[tuple[Path, str]] | None = None, include_classical: bool = True) -> None:
        self.folders = list(folders) if folders is not None else default_folders()
        self.include_classical = include_classical
        self._entries: dict[str, ModelEntry] = {}
        self.problems: list[str] = []
        self.refresh()

    def refresh(self) -> None:
        entries: dict[str, ModelEntry] = {}
        problems: list[str] = []
        if self.include_classical:
            from .classical import CLASSICAL_ENGINES

            for engine in CLASSICAL_ENGINES:
                if engine.available():
                    entries[engine.manifest.id] = ModelEntry(engine.manifest, None, engine.source)
        for folder, source in self.folders:
            found, folder_problems = scan_models_folder(folder, source)
            problems.extend(folder_problems)
            for entry in found:
                entries[entry.id] = entry
        self._entries = entries
        self.problems = problems

    def models(self, task: str | None = None) -> list[ModelEntry]:
        return [e for e in self._entries.values() if task is None or e.manifest.task == task]

    def get(self, model_id: str) -> ModelEntry:
        try:
            return self._entries[model_id]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise ModelError(f"no model named {model_id!r} (known: {known})") from None

    def ranked(self, task: str, aovs: Iterable[str] = ()) -> list[ModelEntry]:
        """The models of a task, preferred first (the ranking of :func:`engine.models.suggest.rank`)."""
        from .suggest import rank

        return rank(self.models(), task, aovs)

    def default_for(self, task: str) -> ModelEntry | None:
        """The preferred model of a task when there is no image to go by (see :mod:`engine.models.suggest`)."""
        from .suggest import suggest_model

        suggestion = suggest_model(None, task, self.models())
        return suggestion.entry if suggestion else None

    def suggest(self, image, task: str | None = None):
        """The model to suggest for ``image`` among this registry's models (:func:`~engine.models.suggest.suggest_model`)."""
        from .suggest import suggest_model

        return suggest_model(image, task, self.models())

    def __contains__(self, model_id: str) -> bool:
        return model_id in self._entries


def default_folders() -> list[tuple[Path, str]]:
    return [(resources_dir() / "models", "bundled"), (user_models_dir(), "user")]
