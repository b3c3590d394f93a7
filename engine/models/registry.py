"""The model registry: the built-in engines (engine/models/builtin.py) plus the ONNX models found in two folders.

Folders are read when :meth:`ModelRegistry.refresh` is called, never at import time: the bundled
``resources/models`` and the per-user models folder (models trained on this machine). Each ONNX model's
sha256 is checked when it is loaded for inference (:func:`verify_model_file`), not while listing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from ..errors import ModelError
from ..paths import resources_dir, user_models_dir
from .builtin import BUILTIN_ENGINES
from .entry import ModelEntry, bind_onnx, confined_path, file_sha256, verified_companion, verify_model_file
from .manifest import load_manifest
from .suggest import Suggestion, rank, suggest_model

__all__ = ["ModelEntry", "ModelRegistry", "confined_path", "file_sha256", "resolve_id_clash", "scan_models_folder",
           "verified_companion", "verify_model_file"]


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
        except Exception as error:  # a manifest anyone could have written never stops the others from loading
            problems.append(f"{manifest_path}: cannot read manifest ({type(error).__name__}: {error})")
            continue
        if manifest.engine != "onnx":
            problems.append(f"{manifest_path}: only ONNX models can be installed from a folder")
            continue
        try:
            path = confined_path(folder, manifest.file)
        except ModelError as error:
            problems.append(f"{manifest_path}: {error}")
            continue
        entries.append(ModelEntry(manifest, path, source, bind=bind_onnx))
    return entries, problems


def resolve_id_clash(entry: ModelEntry, taken: Mapping[str, ModelEntry]) -> tuple[ModelEntry, str]:
    """A model whose id is already taken (a user model named like a bundled one, or two user models alike)
    is offered under a new id, ``<id>-<source>`` (numbered if need be), and never silently replaces the other:
    ``--model <id>`` keeps meaning the model found first. Returns the renamed entry and the warning to show."""
    base = f"{entry.id}-{entry.source}"
    new_id, number = base, 2
    while new_id in taken:
        new_id, number = f"{base}{number}", number + 1
    original = taken[entry.id]
    manifest = replace(entry.manifest, id=new_id, name=f"{entry.manifest.display_name} ({entry.source}, renamed)")
    problem = (f"{entry.path or entry.id}: model id {entry.id!r} is already taken by the {original.source} model; "
               f"this {entry.source} model is offered as {new_id!r}")
    return replace(entry, manifest=manifest), problem


class ModelRegistry:
    """All models the app can run, by id. A model whose id is already taken is renamed (see
    :func:`resolve_id_clash`), with a warning in ``problems``."""

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
            for engine in BUILTIN_ENGINES:
                if engine.available():
                    entries[engine.manifest.id] = engine.entry()
        for folder, source in self.folders:
            found, folder_problems = scan_models_folder(folder, source)
            problems.extend(folder_problems)
            for entry in found:
                if entry.id in entries:
                    entry, problem = resolve_id_clash(entry, entries)
                    problems.append(problem)
                entries[entry.id] = entry
        if self.include_classical:
            self._add_user_blends(entries)
        self._entries = entries
        self.problems = problems

    @staticmethod
    def _add_user_blends(entries: dict[str, ModelEntry]) -> None:
        """Each of the user's render networks that takes what OIDN takes (a shot fine-tune, for one) is
        also offered blended with OIDN (engine/models/hybrid.py ``user_blend_engine``), when OIDN is installed and
        the blend's id is free."""
        from .hybrid import blends_with_oidn, user_blend_engine

        for entry in [e for e in entries.values() if blends_with_oidn(e)]:
            engine = user_blend_engine(entry)
            if engine.manifest.id not in entries and engine.available():
                entries[engine.manifest.id] = engine.entry()

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
        return rank(self.models(), task, aovs)

    def default_for(self, task: str) -> ModelEntry | None:
        """The preferred model of a task when there is no image to go by (see :mod:`engine.models.suggest`)."""
        suggestion = suggest_model(None, task, entries=self.models())
        return suggestion.entry if suggestion else None

    def suggest(self, image, task: str | None = None) -> Suggestion | None:
        """The model to suggest for ``image`` among this registry's models (:mod:`engine.models.suggest`)."""
        return suggest_model(image, task, entries=self.models())

    def __contains__(self, model_id: str) -> bool:
        return model_id in self._entries


def default_folders() -> list[tuple[Path, str]]:
    return [(resources_dir() / "models", "bundled"), (user_models_dir(), "user")]
