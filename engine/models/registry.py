"""The model registry: an explicit list of classical engines plus the ONNX models found in two folders.

Folders are read when :meth:`ModelRegistry.refresh` is called, never at import time: the bundled
``resources/models`` and the per-user models folder (models trained on this machine). Each ONNX model's
sha256 is checked when it is loaded for inference (:func:`verify_model_file`), not while listing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

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


def confined_path(folder: Path, name: str) -> Path:
    """``folder / name`` resolved, or ModelError when it lies outside ``folder`` (``..``, an absolute path, or a
    symbolic link pointing elsewhere): a manifest may only name files beside it."""
    base = Path(folder).resolve()
    if not name or Path(name).is_absolute() or Path(name).name != name or name in (".", ".."):
        raise ModelError(f"{name!r} is not a plain file name in {base}; model files must lie beside their manifest")
    path = (base / name).resolve()
    if path.parent != base:
        raise ModelError(f"{name!r} in {base} leads outside its folder (to {path}); model files must lie beside "
                         "their manifest")
    return path


def verify_file(model_id: str, path: Path, expected: str, what: str = "") -> None:
    """Raise ModelError unless ``path`` exists and its sha256 is ``expected`` (which must be given)."""
    what = what or path.name
    if not path.is_file():
        raise ModelError(f"model {model_id!r}: file {path} is missing")
    if not expected:
        # Every exporter writes the checksum; a manifest without one could point at any file.
        raise ModelError(
            f"model {model_id!r}: its manifest has no sha256 for {what}, so it cannot be verified "
            "(re-export the model, or add the file's sha256 to the manifest)"
        )
    actual = file_sha256(path)
    if actual != expected:
        raise ModelError(
            f"model {model_id!r}: {what} fails its checksum (expected {expected[:12]}..., found {actual[:12]}...); "
            "the file is damaged or was replaced"
        )


def external_data_names(path: Path) -> list[str]:
    """The external-data files an ONNX file makes ONNX Runtime read (tensors stored beside the model), by the
    location written in the model. Read without loading the tensors."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:
        raise ModelError(f"{path.name}: not a readable ONNX file ({error})") from None
    names = []
    for tensor in _get_all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = ExternalDataInfo(tensor).location
            if location not in names:
                names.append(location)
    return names


def verify_model_file(entry: ModelEntry) -> None:
    """Raise ModelError unless every file the entry's ONNX model loads exists beside its manifest and matches
    the manifest's sha256: the ONNX file and each external-data file it refers to (``data_files``)."""
    if entry.path is None:
        return
    manifest = entry.manifest
    verify_file(entry.id, entry.path, manifest.sha256)
    folder = entry.path.parent
    for name in external_data_names(entry.path):
        try:
            data_path = confined_path(folder, name)
        except ModelError as error:
            raise ModelError(f"model {entry.id!r}: its ONNX file loads external data from outside its folder "
                             f"({error})") from None
        if name not in manifest.data_files:
            raise ModelError(f"model {entry.id!r}: its ONNX file loads {name}, which the manifest's data_files do "
                             "not list with a sha256, so it cannot be verified")
        verify_file(entry.id, data_path, manifest.data_files[name])


def verified_companion(entry: ModelEntry, name: Any, expected: Any) -> Path:
    """A further model file named in the manifest (e.g. provenance ``kernel_model``), confined to the model's
    folder and checked against its sha256 (required), ready to load."""
    if entry.path is None or not isinstance(name, str) or not isinstance(expected, str):
        raise ModelError(f"model {entry.id!r}: its manifest names a companion file without a name and sha256")
    path = confined_path(entry.path.parent, name)
    verify_file(entry.id, path, expected)
    return path


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
        entries.append(ModelEntry(manifest, path, source))
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
    return ModelEntry(manifest, entry.path, entry.source), problem


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
            from .classical import CLASSICAL_ENGINES

            for engine in CLASSICAL_ENGINES:
                if engine.available():
                    entries[engine.manifest.id] = ModelEntry(engine.manifest, None, engine.source)
        for folder, source in self.folders:
            found, folder_problems = scan_models_folder(folder, source)
            problems.extend(folder_problems)
            for entry in found:
                if entry.id in entries:
                    entry, problem = resolve_id_clash(entry, entries)
                    problems.append(problem)
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
        """The models of a task, preferred first: bundled before user before built-in classical engines, then
        those using more of the image's ``aovs``, then by id (so a model ``X`` comes before its ``X-fast`` and
        other variants, whatever order their files were found in)."""
        rank = {"bundled": 0, "user": 1, "builtin": 2, "blend": 3}
        have = set(aovs)
        return sorted(self.models(task),
                      key=lambda e: (rank.get(e.source, 3), -len(set(e.manifest.inputs) & have), e.id))

    def default_for(self, task: str) -> ModelEntry | None:
        """The preferred model of a task: a trained network before a classical engine, bundled before user."""
        candidates = self.ranked(task)
        return candidates[0] if candidates else None

    def __contains__(self, model_id: str) -> bool:
        return model_id in self._entries


def default_folders() -> list[tuple[Path, str]]:
    return [(resources_dir() / "models", "bundled"), (user_models_dir(), "user")]
