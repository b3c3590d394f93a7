"""A model the app can run: its manifest, its file (networks), where it came from, and how it runs on a tile.

Every entry binds its tile function (:meth:`ModelEntry.tile_function`): an ONNX network is loaded with ONNX
Runtime on the user's device, a built-in engine (engine/models/builtin.py) gives its own function. The restore
job calls it without knowing which kind of model it runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..digest import file_sha256
from ..errors import EngineError, ModelError
from .manifest import ModelManifest

if TYPE_CHECKING:
    from ..image import Image

log = logging.getLogger(__name__)

TileInputs = Mapping[str, np.ndarray]
#: What the restore job runs on each tile: the tile's inputs by role (H x W x C float32 in the manifest's value
#: space) -> (H * scale, W * scale, channels).
TileFunction = Callable[[TileInputs], np.ndarray]


@dataclass(frozen=True)
class BoundModel:
    """A model made ready for one job: its tile function, the device it runs on (in words) and, when known,
    what one pixel costs inside it (bytes), which sizes automatic tiles."""

    run: TileFunction
    device: str
    bytes_per_pixel: float | None = None


#: ``bind(entry, params, device, token, session)`` -> the entry's :class:`BoundModel` for one job (``session``:
#: ONNX Runtime settings for a network, ``threads`` and ``worker``; built-in engines ignore it).
Binder = Callable[["ModelEntry", Mapping[str, Any], str, Any, Mapping[str, Any]], BoundModel]


@dataclass(frozen=True)
class ModelEntry:
    manifest: ModelManifest
    #: The ONNX file for engine "onnx"; None for built-in engines.
    path: Path | None
    #: "builtin" (classical), "blend" (a bundled or user network with a built-in peer), "bundled" (resources/models) or
    #: "user" (trained on this machine).
    source: str
    #: How the entry runs (set by the registry); None: by its manifest's engine (:data:`ENGINE_BINDERS`).
    bind: Binder | None = field(default=None, compare=False, repr=False)

    @property
    def id(self) -> str:
        return self.manifest.id

    def tile_function(self, params: Mapping[str, Any], device: str, token: Any,
                      session: Mapping[str, Any] | None = None) -> BoundModel:
        """The function the restore job runs on each tile, for the resolved ``params`` on ``device`` (``session``:
        ONNX Runtime settings, ``threads`` and ``worker``)."""
        bind = self.bind or ENGINE_BINDERS.get(self.manifest.engine)
        if bind is None:
            raise ModelError(f"model {self.id!r}: engine {self.manifest.engine!r} needs a bound entry "
                             "(built-in engines: engine.models.builtin.builtin_engine(id).entry())")
        return bind(self, params, device, token, session or {})


def input_is_clipped(image: Image) -> bool:
    """True when every value of ``image`` lies in [0, 1], as in every image read from an 8- or 16-bit file (its
    noise was clipped at black and white); a float image whose noise was not clipped (the Kodak24 protocol's
    noisy inputs) has values outside. The values are looked at, not the file's sample type: an image made in
    code says "uint" by default whatever it holds. HDR images are never taken as clipped."""
    if image.meta.hdr:
        return False
    pixels = image.pixels
    return bool(pixels.size == 0 or (float(pixels.min()) >= 0.0 and float(pixels.max()) <= 1.0))


def for_input(entry: ModelEntry, image: Image) -> ModelEntry:
    """The entry that restores ``image``: ``entry`` itself, or, where its manifest has weights for clipped inputs
    (``clipped``) and the image is clipped (:func:`input_is_clipped`), the same model with those weights."""
    variant = entry.manifest.clipped
    if not variant or entry.path is None or not input_is_clipped(image):
        return entry
    path = confined_path(entry.path.parent, variant["file"])
    manifest = replace(entry.manifest, file=variant["file"], sha256=variant["sha256"], data_files={}, clipped={})
    return replace(entry, manifest=manifest, path=path)


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
    location written in the model. Read without loading the tensors.

    A tensor stored outside the model names its file under the key ``location``; a file without those bytes has
    no external data, which is known without importing ``onnx`` (about a CPU-second) on every restore."""
    with open(path, "rb") as handle:
        if not any(b"location" in block for block in _overlapping_blocks(handle)):
            return []
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


def _overlapping_blocks(handle, size: int = 1 << 20, overlap: int = 16):
    """A file's bytes in blocks that overlap by ``overlap`` bytes (so a word across a boundary is seen)."""
    tail = b""
    for block in iter(lambda: handle.read(size), b""):
        yield tail + block
        tail = block[-overlap:]


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


def load_pipeline_model(entry: ModelEntry, device: str, *, threads: int = 0, slot: int = 0) -> Any:
    """``entry``'s kernel pipeline on the CPU, or None where the whole graph should run instead (no pipeline
    files in its manifest, no native stage built, :data:`STAGE_ENV` set to "graph", or a CUDA device: the graph's
    many small operations are cheap on a GPU), or where its pipeline files are missing or do not match their
    sha256 in the manifest."""
    from ..kernel_pipeline import STAGE_ENV, KernelPipelineModel, PipelineLayout, native_available, pipeline_files
    from ..runtime import load_onnx_model, probe_device

    data = pipeline_files(entry.manifest.provenance)
    if data is None or os.environ.get(STAGE_ENV, "") == "graph" or not native_available():
        return None
    if device == "cuda" or probe_device(device).kind == "cuda":
        return None
    try:
        layout = PipelineLayout.from_provenance(data)
        features_path = verified_companion(entry, data["features"], data.get("features_sha256"))
        refine_path = None
        if data.get("refine"):
            refine_path = verified_companion(entry, data["refine"], data.get("refine_sha256"))
    except EngineError as error:
        # The whole graph (verified by the caller) computes the same: a model folder copied without its pipeline
        # files, or with files that do not match, still runs, only slower.
        log.warning("%s: running the whole graph (%s)", entry.id, error)
        return None
    features = load_onnx_model(features_path, device, threads=threads, slot=slot)
    refine = load_onnx_model(refine_path, device, threads=threads, slot=slot) if refine_path else None
    measured = data.get("bytes_per_pixel")
    return KernelPipelineModel(features, refine, layout, tuple(entry.manifest.inputs), threads,
                               float(measured) if isinstance(measured, (int, float)) and measured > 0 else None)


def load_network(entry: ModelEntry, device: str, *, threads: int = 0, sha256: str | None = None, slot: int = 0) -> Any:
    """What runs an ONNX network entry's tiles: its kernel pipeline where that applies, else its whole graph."""
    from ..runtime import load_onnx_model

    pipeline = load_pipeline_model(entry, device, threads=threads, slot=slot)
    if pipeline is not None:
        return pipeline
    return load_onnx_model(Path(entry.path), device, threads=threads, sha256=sha256, slot=slot)


def bind_onnx(entry: ModelEntry, params: Mapping[str, Any], device: str, token: Any,
              session: Mapping[str, Any] | None = None) -> BoundModel:
    """An ONNX network on ``device``: checked against its manifest's sha256, loaded with ONNX Runtime (a render
    model on the CPU as its convolutions plus the fused kernel stage, engine/kernel_pipeline.py)."""
    verify_model_file(entry)
    session = session or {}
    model = load_network(entry, device, threads=int(session.get("threads", 0)), sha256=entry.manifest.sha256,
                         slot=int(session.get("worker", 0)))
    extra: dict[str, np.ndarray] = {}
    if "noise_level" in entry.manifest.inputs:
        level = float(params.get("noise_level", 0.0)) / 255.0
        extra["noise_level"] = np.full((1, 1, 1, 1), level, dtype=np.float32)
    # Its memory per pixel comes from the manifest (measured at export): see engine.restore.model_bytes_per_pixel;
    # a render model's CPU kernel pipeline has its own figure.
    return BoundModel(lambda tile: model.run_image(tile, token, extra), str(model.device),
                      getattr(model, "bytes_per_pixel", None))


#: How an entry made without ``bind`` runs, by its manifest's ``engine`` (a built-in engine's entry comes from
#: ``builtin_engine(id).entry()``, which binds it).
ENGINE_BINDERS: dict[str, Binder] = {"onnx": bind_onnx}
