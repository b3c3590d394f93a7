"""Model manifests: what a tiler, a UI and a user need to know about a model, stored as JSON.

A shipped or user-trained model is ``<id>.onnx`` plus ``<id>.json`` (this manifest) in a models folder.
Classical engines (no weights) carry the same manifest, built in code, with ``engine="classical"``.

ONNX contract (every exported model follows it):
- inputs are named by role: ``color`` (1, C, H, W) float32 in the model's value space (see
  ``value_transform``), and, when the manifest lists them, ``albedo`` (1, 3, H, W), ``normal`` (1, 3, H, W),
  ``depth`` (1, 1, H, W), ``noise_level`` (1, 1, 1, 1) in [0, 1] units (the user's 8-bit value / 255);
  a raw denoiser (task ``raw-denoise``) takes the packed Bayer mosaic as ``color`` (1, 4, H, W) and its
  per-photosite noise standard deviation as ``noise_map`` (1, 4, H, W), both in normalised raw units
  (engine/raw/mosaic.py);
- one output, (1, C, H * scale, W * scale), in the same value space as ``color``;
- H and W are dynamic; they must be multiples of ``tile.alignment``.

Value transforms: ``srgb`` (display-referred [0, 1], as in the file), ``linear`` (HDR as is), ``log1p`` (HDR
compressed with log(1 + x) after the image-wide exposure scale; the inverse is applied to the output).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..motion import TEMPORAL_INPUTS

TASKS = ("render-denoise", "photo-denoise", "document", "super-resolution", "raw-denoise")
TASK_LABELS = {
    "render-denoise": "Render denoise",
    "photo-denoise": "Photo denoise",
    "document": "Document",
    "super-resolution": "Super-resolution",
    "raw-denoise": "Raw denoise",
}
#: Model inputs by role; a temporal model also takes frame t - 1's data (engine/motion.py, filled by engine/shot.py).
INPUT_ROLES = ("color", "albedo", "normal", "depth", "noise_level", "noise_map", *TEMPORAL_INPUTS)
VALUE_TRANSFORMS = ("srgb", "linear", "log1p")
PARAM_TYPES = ("float", "int", "bool", "choice")


@dataclass(frozen=True)
class ParamSpec:
    """A user parameter: the GUI builds a control from it, the CLI parses ``--set name=value`` with it."""

    name: str
    type: str = "float"
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    label: str = ""
    help: str = ""

    def parse(self, text: str) -> Any:
        """Parse and validate a value given as text (command line)."""
        try:
            if self.type == "float":
                value: Any = float(text)
            elif self.type == "int":
                value = int(text)
            elif self.type == "bool":
                lowered = text.strip().lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(text)
                value = lowered in ("1", "true", "yes", "on")
            else:
                value = text
        except ValueError:
            raise ValueError(f"parameter {self.name!r} expects a {self.type}, got {text!r}") from None
        return self.validate(value)

    def clamp(self, value: float) -> float:
        """A numeric value moved into [min, max] (for values the app proposes, such as an estimate)."""
        if self.min is not None:
            value = max(value, self.min)
        return min(value, self.max) if self.max is not None else value

    def validate(self, value: Any) -> Any:
        if self.type in ("float", "int"):
            if self.min is not None and value < self.min or self.max is not None and value > self.max:
                raise ValueError(f"parameter {self.name!r} must be between {self.min} and {self.max}, got {value}")
        if self.type == "choice" and value not in self.choices:
            raise ValueError(f"parameter {self.name!r} must be one of {', '.join(self.choices)}, got {value!r}")
        return value


@dataclass(frozen=True)
class TileSpec:
    #: Input height and width must be multiples of this.
    alignment: int = 1
    #: Pixels of context each side of a tile that the receptive field needs (input resolution).
    overlap: int = 16
    #: Default tile edge in input pixels (0: whole image when it fits the memory budget).
    default: int = 512
    #: Memory one tile's inference takes per input pixel, and its fixed part, in bytes: measured at export
    #: (engine/training/tile_memory.py); 0 when unknown (the restore job then assumes a conservative figure).
    bytes_per_pixel: float = 0.0
    bytes_base: float = 0.0


@dataclass(frozen=True)
class ModelManifest:
    id: str
    task: str
    name: str = ""
    description: str = ""
    #: "onnx" for a network file, "classical" for a built-in algorithm without weights.
    engine: str = "onnx"
    #: ONNX file name relative to the manifest (engine "onnx" only).
    file: str = ""
    sha256: str = ""
    #: Further files the ONNX file loads (external tensor data), by name in the same folder -> sha256.
    data_files: Mapping[str, str] = field(default_factory=dict)
    scale: int = 1
    #: Colour channels the model works on: 3 (RGB) or 1 (gray; RGB inputs are converted to luma).
    channels: int = 3
    inputs: tuple[str, ...] = ("color",)
    params: tuple[ParamSpec, ...] = ()
    value_transform: str = "srgb"
    tile: TileSpec = field(default_factory=TileSpec)
    #: How it was trained: recipe, data, steps, minutes, device...
    provenance: Mapping[str, Any] = field(default_factory=dict)
    #: Measured scores, e.g. {"kodak24_sigma25_psnr": 31.2}.
    scores: Mapping[str, Any] = field(default_factory=dict)
    #: Weights for clipped inputs, run instead of ``file`` where every value of the image lies in [0, 1] (every 8-
    #: or 16-bit photo: the camera and the file clipped its noise at black and white), as
    #: :func:`engine.models.entry.for_input` decides: ``{"file": ..., "sha256": ..., "provenance": {...}}`` (the
    #: same network, trained on clipped noise only). Empty: ``file`` serves every input.
    clipped: Mapping[str, Any] = field(default_factory=dict)

    @property
    def hdr(self) -> bool:
        """True when the model expects scene-referred linear HDR input."""
        return self.value_transform in ("linear", "log1p")

    @property
    def display_name(self) -> str:
        return self.name or self.id

    def param(self, name: str) -> ParamSpec:
        for spec in self.params:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def default_params(self) -> dict[str, Any]:
        return {spec.name: spec.default for spec in self.params}

    def resolve_params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``given`` (validated). Unknown names are an error."""
        known = {spec.name for spec in self.params}
        unknown = sorted(set(given) - known)
        if unknown:
            names = ", ".join(sorted(known)) or "none"
            raise ValueError(f"model {self.id!r} has no parameter {', '.join(unknown)} (it has: {names})")
        values = self.default_params()
        for name, value in given.items():
            values[name] = self.param(name).validate(value)
        return values

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["inputs"] = list(self.inputs)
        data["params"] = [dict(asdict(p), choices=list(p.choices)) for p in self.params]
        data["data_files"] = dict(self.data_files)
        if not data["data_files"]:
            del data["data_files"]
        data["provenance"] = dict(self.provenance)
        data["scores"] = dict(self.scores)
        data["clipped"] = dict(self.clipped)
        if not data["clipped"]:
            del data["clipped"]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


def manifest_from_dict(data: Mapping[str, Any], source: str = "manifest") -> ModelManifest:
    """Validate and build a manifest from parsed JSON. Raises ModelError naming ``source`` and the problem.

    Every field's type is checked (a manifest in the user's models folder may have been written by anyone), so
    that a bad one is refused here with a readable message rather than failing later with a TypeError.
    """

    def fail(problem: str) -> ModelError:
        return ModelError(f"{source}: {problem}")

    def text(key: str, default: str = "") -> str:
        value = data.get(key, default)
        if not isinstance(value, str):
            raise fail(f"{key!r} must be a string, got {type(value).__name__}")
        return value

    def integer(mapping: Mapping[str, Any], key: str, default: int, where: str = "") -> int:
        value = mapping.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(f"{where}{key!r} must be an integer, got {type(value).__name__}")
        return value

    def mapping_of(key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise fail(f"{key!r} must be a JSON object, got {type(value).__name__}")
        return dict(value)

    if not isinstance(data, Mapping):
        raise fail("a manifest must be a JSON object")
    for key in ("id", "task"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise fail(f"missing or empty {key!r}")
    if not _ID_PATTERN.fullmatch(data["id"]):
        raise fail(f"id {data['id']!r} must be letters, digits, '.', '_' or '-' (at most 100)")
    if data["task"] not in TASKS:
        raise fail(f"unknown task {data['task']!r} (expected one of {', '.join(TASKS)})")
    engine = text("engine", "onnx")
    if engine not in ("onnx", "classical"):
        raise fail(f"unknown engine {engine!r}")
    file = text("file")
    if engine == "onnx" and not file:
        raise fail("an ONNX model needs 'file'")
    problem = _file_name_problem(file) if file else None
    if problem:
        raise fail(f"'file' {problem}")
    sha256 = text("sha256")
    if sha256 and not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise fail("'sha256' must be 64 lower-case hexadecimal digits")
    data_files = mapping_of("data_files")
    for name, digest in data_files.items():
        problem = _file_name_problem(name)
        if problem:
            raise fail(f"data file {name!r} {problem}")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise fail(f"data file {name!r} needs its sha256 (64 lower-case hexadecimal digits)")
    clipped = mapping_of("clipped")
    if clipped:
        if engine != "onnx":
            raise fail("only an ONNX model can have 'clipped' weights")
        name = clipped.get("file")
        problem = _file_name_problem(name if isinstance(name, str) else "")
        if problem:
            raise fail(f"'clipped' file {problem}")
        if not isinstance(clipped.get("sha256"), str) or not re.fullmatch(r"[0-9a-f]{64}", clipped["sha256"]):
            raise fail("'clipped' needs the sha256 of its file (64 lower-case hexadecimal digits)")
        if not isinstance(clipped.get("provenance", {}), Mapping):
            raise fail("'clipped' provenance must be a JSON object")
    raw_inputs = data.get("inputs", ["color"])
    if not isinstance(raw_inputs, (list, tuple)) or not all(isinstance(name, str) for name in raw_inputs):
        raise fail(f"'inputs' must be a list of names, got {raw_inputs!r}")
    inputs = tuple(raw_inputs)
    bad_inputs = [name for name in inputs if name not in INPUT_ROLES]
    if bad_inputs or "color" not in inputs:
        raise fail(f"inputs must include 'color' and only use {', '.join(INPUT_ROLES)}; got {list(inputs)}")
    transform = text("value_transform", "srgb")
    if transform not in VALUE_TRANSFORMS:
        raise fail(f"unknown value_transform {transform!r}")
    raw_params = data.get("params", [])
    if not isinstance(raw_params, (list, tuple)):
        raise fail(f"'params' must be a list, got {type(raw_params).__name__}")
    params = tuple(_param_from_dict(p, fail) for p in raw_params)
    raw_tile = data.get("tile", {})
    if not isinstance(raw_tile, Mapping):
        raise fail(f"'tile' must be a JSON object, got {type(raw_tile).__name__}")
    unknown = sorted(set(raw_tile) - {"alignment", "overlap", "default", "bytes_per_pixel", "bytes_base"})
    if unknown:
        raise fail(f"'tile' has unknown field(s) {', '.join(map(str, unknown))}")
    memory = {key: raw_tile[key] for key in ("bytes_per_pixel", "bytes_base") if key in raw_tile}
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < float("inf")
               for v in memory.values()):
        raise fail("tile.bytes_per_pixel and tile.bytes_base must be numbers >= 0")
    tile = TileSpec(**{key: integer(raw_tile, key, getattr(TileSpec(), key), "tile ") for key in raw_tile
                       if key not in memory}, **{key: float(value) for key, value in memory.items()})
    scale = integer(data, "scale", 1)
    channels = integer(data, "channels", 3)
    # 4 channels: a raw denoiser's packed Bayer planes (task raw-denoise).
    allowed = (4,) if text("task", "") == "raw-denoise" else (1, 3)
    if scale < 1 or channels not in allowed or tile.alignment < 1 or tile.overlap < 0 or tile.default < 0:
        raise fail("scale must be >= 1, channels 1 or 3 (4 for raw-denoise), alignment >= 1, overlap and "
                   "default tile >= 0")
    return ModelManifest(
        id=data["id"],
        task=data["task"],
        name=text("name"),
        description=text("description"),
        engine=engine,
        file=file,
        sha256=sha256,
        data_files=data_files,
        scale=scale,
        channels=channels,
        inputs=inputs,
        params=params,
        value_transform=transform,
        tile=tile,
        provenance=mapping_of("provenance"),
        scores=mapping_of("scores"),
        clipped=clipped,
    )


#: A model id: also a file name stem and a command-line word, so no separators, spaces or control characters.
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _file_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a model file named in a manifest (None when it can): model files lie in the
    manifest's own folder, so a plain file name is required (no folders, no ``..``, no absolute path)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or ":" in name or "\0" in name:
        return f"must be a plain file name in the manifest's folder, got {name!r}"
    return None


def _param_from_dict(raw: Any, fail: Callable[[str], ModelError]) -> ParamSpec:
    """One parameter of a manifest, with every field's type checked."""
    if not isinstance(raw, Mapping):
        raise fail(f"each parameter must be a JSON object, got {raw!r}")
    unknown = sorted(set(raw) - {f.name for f in fields(ParamSpec)})
    if unknown:
        raise fail(f"parameter {raw.get('name')!r} has unknown field(s) {', '.join(map(str, unknown))}")
    name, kind = raw.get("name"), raw.get("type", "float")
    if not isinstance(name, str) or not name:
        raise fail("a parameter needs a 'name' (a string)")
    if kind not in PARAM_TYPES:
        raise fail(f"parameter {name!r} has unknown type {kind!r}")
    for key in ("label", "help"):
        if not isinstance(raw.get(key, ""), str):
            raise fail(f"parameter {name!r}: {key!r} must be a string")
    for key in ("min", "max"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise fail(f"parameter {name!r}: {key!r} must be a number or null")
    choices = raw.get("choices", [])
    if not isinstance(choices, (list, tuple)) or not all(isinstance(c, str) for c in choices):
        raise fail(f"parameter {name!r}: 'choices' must be a list of strings")
    if kind == "choice" and not choices:
        raise fail(f"parameter {name!r} of type choice needs 'choices'")
    default = raw.get("default")
    expected = {"float": (int, float), "int": (int,), "bool": (bool,), "choice": (str,)}[kind]
    if default is not None and (not isinstance(default, expected) or (kind != "bool" and isinstance(default, bool))):
        raise fail(f"parameter {name!r}: default {default!r} is not a {kind}")
    spec = ParamSpec(**dict(raw, choices=tuple(choices)))
    if default is not None:
        try:
            spec.validate(default)
        except ValueError as error:
            raise fail(f"default out of range: {error}") from None
    return spec


def load_manifest(path: Path) -> ModelManifest:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{path}: cannot read manifest ({error})") from None
    except (RecursionError, ValueError) as error:  # absurdly nested JSON, huge numbers
        raise ModelError(f"{path}: cannot read manifest ({type(error).__name__})") from None
    return manifest_from_dict(data, source=str(path))
