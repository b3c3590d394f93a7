"""Model manifests: what a tiler, a UI and a user need to know about a model, stored as JSON.

A shipped or user-trained model is ``<id>.onnx`` plus ``<id>.json`` (this manifest) in a models folder.
Classical engines (no weights) carry the same manifest, built in code, with ``engine="classical"``.

ONNX contract (every exported model follows it):
- inputs are named by role: ``color`` (1, C, H, W) float32 in the model's value space (see
  ``value_transform``), and, when the manifest lists them, ``albedo`` (1, 3, H, W), ``normal`` (1, 3, H, W),
  ``depth`` (1, 1, H, W), ``noise_level`` (1, 1, 1, 1) in [0, 1] units (the user's 8-bit value / 255);
- one output, (1, C, H * scale, W * scale), in the same value space as ``color``;
- H and W are dynamic; they must be multiples of ``tile.alignment``.

Value transforms: ``srgb`` (display-referred [0, 1], as in the file), ``linear`` (HDR as is), ``log1p`` (HDR
compressed with log(1 + x) after the image-wide exposure scale; the inverse is applied to the output).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelError

TASKS = ("render-denoise", "photo-denoise", "document", "super-resolution")
TASK_LABELS = {
    "render-denoise": "Render denoise",
    "photo-denoise": "Photo denoise",
    "document": "Document",
    "super-resolution": "Super-resolution",
}
INPUT_ROLES = ("color", "albedo", "normal", "depth", "noise_level")
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
        data["provenance"] = dict(self.provenance)
        data["scores"] = dict(self.scores)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


def manifest_from_dict(data: Mapping[str, Any], source: str = "manifest") -> ModelManifest:
    """Validate and build a manifest from parsed JSON. Raises ModelError naming ``source`` and the problem."""

    def fail(problem: str) -> ModelError:
        return ModelError(f"{source}: {problem}")

    if not isinstance(data, Mapping):
        raise fail("a manifest must be a JSON object")
    for key in ("id", "task"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise fail(f"missing or empty {key!r}")
    if data["task"] not in TASKS:
        raise fail(f"unknown task {data['task']!r} (expected one of {', '.join(TASKS)})")
    engine = data.get("engine", "onnx")
    if engine not in ("onnx", "classical"):
        raise fail(f"unknown engine {engine!r}")
    if engine == "onnx" and not data.get("file"):
        raise fail("an ONNX model needs 'file'")
    inputs = tuple(data.get("inputs", ("color",)))
    bad_inputs = [name for name in inputs if name not in INPUT_ROLES]
    if bad_inputs or "color" not in inputs:
        raise fail(f"inputs must include 'color' and only use {', '.join(INPUT_ROLES)}; got {list(inputs)}")
    transform = data.get("value_transform", "srgb")
    if transform not in VALUE_TRANSFORMS:
        raise fail(f"unknown value_transform {transform!r}")
    try:
        params = tuple(
            ParamSpec(**dict(p, choices=tuple(p.get("choices", ())))) for p in data.get("params", ())
        )
        tile = TileSpec(**data.get("tile", {}))
        scale = int(data.get("scale", 1))
        channels = int(data.get("channels", 3))
    except (TypeError, ValueError) as error:
        raise fail(f"invalid field: {error}") from None
    for spec in params:
        if spec.type not in PARAM_TYPES:
            raise fail(f"parameter {spec.name!r} has unknown type {spec.type!r}")
    if scale < 1 or channels not in (1, 3) or tile.alignment < 1 or tile.overlap < 0:
        raise fail("scale must be >= 1, channels 1 or 3, alignment >= 1 and overlap >= 0")
    memory = (tile.bytes_per_pixel, tile.bytes_base)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < float("inf") for v in memory):
        raise fail("tile.bytes_per_pixel and tile.bytes_base must be numbers >= 0")
    return ModelManifest(
        id=data["id"],
        task=data["task"],
        name=data.get("name", ""),
        description=data.get("description", ""),
        engine=engine,
        file=data.get("file", ""),
        sha256=data.get("sha256", ""),
        scale=scale,
        channels=channels,
        inputs=inputs,
        params=params,
        value_transform=transform,
        tile=tile,
        provenance=dict(data.get("provenance", {})),
        scores=dict(data.get("scores", {})),
    )


def load_manifest(path: Path) -> ModelManifest:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{path}: cannot read manifest ({error})") from None
    return manifest_from_dict(data, source=str(path))
