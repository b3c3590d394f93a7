"""Export a trained torch model to ONNX, check it against torch, and register it.

What an export writes into the target folder (the per-user models folder by default, so the model appears in
the app at once; ``resources/models`` for shipped models):

- ``<id>.onnx``: one file (no external data), opset 18, dynamic H and W, inputs named by role as in the
  manifest's ONNX contract, one output; the manifest is also stored in the ONNX ``metadata_props``;
- ``<id>.json``: the :class:`ModelManifest` with the ONNX file's sha256 and the training provenance;
- ``<id>.pt``: the torch weights with the architecture name and configuration, so the model can be
  fine-tuned later (inference never reads it);
- whatever companion files the architecture's spec exports (``companions``: e.g. ``<id>.kernels.onnx``, the
  kernel-prediction models' weights for the kernel inspector), recorded in the manifest's provenance.

Every export runs a parity check: ONNX Runtime on random inputs of a size other than the traced one (which
also proves H and W are dynamic) must match torch within ``tolerance`` (1e-4), or the export fails loudly and
leaves nothing registered.

Exporter choice (measured with torch 2.13): the TorchScript-based exporter (``dynamo=False``) handles our
varargs ``forward(*inputs)`` directly, names the dynamic axes, and exports in a fraction of a second; the
dynamo exporter needs a signature wrapper and takes seconds. Both pass the parity check on our architectures
(tests cover both). ``exporter="auto"`` uses the former and falls back to dynamo if it fails; ``"dynamo"``
forces the latter.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..kernel_pipeline import native_available
from ..models.entry import file_sha256
from ..models.manifest import ModelManifest, ParamSpec, TileSpec, manifest_from_dict
from ..models.manifest_writer import write_manifest
from ..paths import user_models_dir

OPSET = 18
TOLERANCE = 1e-4
METADATA_KEY = "restoration_studio.manifest"


@dataclass(frozen=True)
class ExportResult:
    onnx_path: Path
    manifest_path: Path
    weights_path: Path
    manifest: ModelManifest
    #: Largest absolute difference between ONNX Runtime and torch in the parity check.
    parity_error: float


def _example_inputs(model, height: int, width: int, seed: int, value_range: float = 1.0) -> tuple[Any, ...]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    tensors = []
    for role in model.input_roles:
        if role == "noise_level":
            tensors.append(torch.rand((1, 1, 1, 1), generator=generator) * 0.3)
        elif role == "normal":
            tensors.append(torch.rand((1, 3, height, width), generator=generator) * 2 - 1)
        elif role in ("depth", "previous_valid"):
            tensors.append(torch.rand((1, 1, height, width), generator=generator))
        else:
            channels = model.channels if role in ("color", "noise_map", "previous_color", "previous_output") else 3
            tensors.append(torch.rand((1, channels, height, width), generator=generator) * value_range)
    return tuple(tensors)


def _export_file(model, example: tuple[Any, ...], path: Path, exporter: str = "auto") -> str:
    import torch

    names = list(model.input_roles)
    dynamic = {name: {2: "height", 3: "width"} for name in names if name != "noise_level"}
    dynamic["output"] = {2: "out_height", 3: "out_width"}
    try:
        if exporter == "dynamo":
            raise RuntimeError("the dynamo exporter was asked for")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                example,
                str(path),
                input_names=names,
                output_names=["output"],
                opset_version=OPSET,
                dynamic_axes=dynamic,
                dynamo=False,
            )
        return "torchscript"
    except Exception as first_error:  # fall back to the dynamo exporter with a fixed signature
        from torch.export import Dim

        class Signature(torch.nn.Module):
            def __init__(self, inner) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *inputs):
                return self.inner(*inputs)

        shapes = tuple({2: Dim.DYNAMIC, 3: Dim.DYNAMIC} if n != "noise_level" else None for n in names)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    Signature(model),
                    example,
                    str(path),
                    input_names=names,
                    output_names=["output"],
                    opset_version=OPSET,
                    dynamic_shapes=(shapes,),
                    dynamo=True,
                    external_data=False,
                    verbose=False,
                )
        except Exception as second_error:
            raise ModelError(f"ONNX export failed: {first_error}; dynamo exporter: {second_error}") from None
        return "dynamo"


def _store_metadata(path: Path, manifest: ModelManifest) -> None:
    import onnx

    proto = onnx.load(str(path))
    fields = {
        METADATA_KEY: manifest.to_json(),
        "id": manifest.id,
        "task": manifest.task,
        "scale": str(manifest.scale),
        "value_transform": manifest.value_transform,
        "inputs": ",".join(manifest.inputs),
    }
    del proto.metadata_props[:]
    for key, value in fields.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "restoration-studio"
    onnx.save(proto, str(path))  # one file: the weights stay inside (models are far below 2 GB)


def parity_check(model, onnx_path: Path, height: int, width: int, tolerance: float = TOLERANCE, seed: int = 7) -> float:
    """Max abs difference between ONNX Runtime (CPU) and torch on random inputs; raises ModelError above
    ``tolerance``."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    if names != list(model.input_roles):
        raise ModelError(f"exported inputs {names} differ from the model's roles {list(model.input_roles)}")
    worst = 0.0
    for trial in range(2):
        example = _example_inputs(model, height + trial * model.alignment, width, seed + trial)
        with torch.no_grad():
            expected = model(*example).float().numpy()
        got = session.run(None, {n: t.numpy() for n, t in zip(names, example, strict=True)})[0]
        if got.shape != expected.shape:
            raise ModelError(f"ONNX output shape {got.shape} differs from torch {expected.shape}")
        error = float(np.abs(got - expected).max())
        if not np.isfinite(error) or error > tolerance:
            raise ModelError(f"ONNX parity check failed: max abs error {error:.3g} > {tolerance:g}")
        worst = max(worst, error)
    return worst


def build_manifest(
    model,
    *,
    model_id: str,
    task: str,
    name: str = "",
    description: str = "",
    value_transform: str = "srgb",
    params: tuple[Mapping[str, Any], ...] = (),
    tile_default: int = 512,
    provenance: Mapping[str, Any] | None = None,
    scores: Mapping[str, Any] | None = None,
) -> ModelManifest:
    """A manifest whose I/O fields come from the model itself (roles, scale, channels, alignment, overlap)."""
    data = {
        "id": model_id,
        "task": task,
        "name": name,
        "description": description,
        "file": f"{model_id}.onnx",
        "scale": int(model.scale),
        "channels": int(model.channels),
        "inputs": list(model.input_roles),
        "params": [dict(p) for p in params],
        "value_transform": value_transform,
        "tile": {"alignment": int(model.alignment), "overlap": int(model.overlap), "default": int(tile_default)},
        "provenance": dict(provenance or {}),
        "scores": dict(scores or {}),
    }
    manifest = manifest_from_dict(data, source=f"model {model_id}")
    if "noise_level" in manifest.inputs and not any(p.name == "noise_level" for p in manifest.params):
        # The contract: a model with a noise-level input exposes it as the user parameter ``noise_level``.
        manifest = replace(
            manifest,
            params=manifest.params
            + (ParamSpec("noise_level", "float", 25.0, 0.0, 100.0, label="Noise level", help="sigma in 8-bit units"),),
        )
    return replace(manifest, tile=TileSpec(**data["tile"]))


def export_model(
    model,
    manifest: ModelManifest,
    out_dir: Path | None = None,
    *,
    arch: str,
    arch_config: Mapping[str, Any],
    trace_size: int = 64,
    tolerance: float = TOLERANCE,
    exporter: str = "auto",
    measure_memory: bool = True,
) -> ExportResult:
    """Export ``model`` (eval mode, CPU, float32) as ``<id>.onnx/.json/.pt`` into ``out_dir``.

    ``measure_memory``: measure one tile's memory per pixel with the app's session (engine/training/tile_memory.py)
    into the manifest's ``tile``, which the restore job sizes its tiles by (without it, a conservative figure)."""
    import torch

    out_dir = Path(out_dir) if out_dir is not None else user_models_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu").float().eval()
    align = max(1, int(model.alignment))
    size = max(align, trace_size - trace_size % align)
    example = _example_inputs(model, size, size, seed=1)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as scratch:
        temporary = Path(scratch) / f"{manifest.id}.onnx"
        used = _export_file(model, example, temporary, exporter)
        # Parity on a different, non-square size: a shape baked in at trace time fails here.
        error = parity_check(model, temporary, size + 2 * align, size + 5 * align, tolerance)
        manifest = replace(manifest, file=f"{manifest.id}.onnx", provenance=dict(manifest.provenance, exporter=used))
        _store_metadata(temporary, manifest)
        error = max(error, parity_check(model, temporary, size - align if size > align else size, size, tolerance))
        onnx_path = out_dir / f"{manifest.id}.onnx"
        os.replace(temporary, onnx_path)
    manifest = replace(manifest, sha256=file_sha256(onnx_path))
    companions = _export_companions(model, arch, out_dir, manifest.id)
    if companions:
        provenance = {k: v for k, v in dict(manifest.provenance, **companions).items() if v is not None}
        manifest = replace(manifest, provenance=provenance)
    if measure_memory:
        manifest = replace(manifest, tile=replace(manifest.tile, **tile_memory_figures(onnx_path, manifest)))
    weights_path = out_dir / f"{manifest.id}.pt"
    torch.save(
        {"arch": arch, "config": dict(arch_config), "state_dict": model.state_dict(), "manifest_id": manifest.id},
        weights_path,
    )
    manifest_path = write_manifest(out_dir / f"{manifest.id}.json", manifest)
    pipeline = manifest.provenance.get("pipeline")
    if measure_memory and isinstance(pipeline, dict) and native_available():  # the CPU pipeline's tiles
        figures = tile_memory_figures(manifest_path, manifest)
        if figures:
            manifest = replace(manifest, provenance=dict(manifest.provenance, pipeline=dict(pipeline, **figures)))
            manifest_path = write_manifest(manifest_path, manifest)
    return ExportResult(onnx_path, manifest_path, weights_path, manifest, error)


def _export_companions(model, arch: str, out_dir: Path, model_id: str) -> dict[str, Any]:
    """The files the architecture exports beside ``<id>.onnx`` (its spec's ``companions`` hook), and the
    provenance entries that record them (None: an entry to remove)."""
    from .archs import ARCHITECTURES

    spec = ARCHITECTURES.get(arch)
    if spec is None or spec.companions is None:
        return {}
    return dict(spec.companions(model, out_dir, model_id))


def tile_memory_figures(onnx_path: Path, manifest: ModelManifest) -> dict[str, float]:
    """``bytes_per_pixel`` and ``bytes_base`` of one tile, measured; {} where they cannot be (not Linux).
    ``onnx_path`` may be a render model's written manifest: its CPU kernel pipeline is measured."""
    import subprocess

    from .tile_memory import measure

    if not Path("/proc/self/clear_refs").exists():
        return {}
    try:
        return measure(onnx_path, list(manifest.inputs), manifest.channels, manifest.tile.alignment)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return {}


def read_onnx_manifest(path: Path) -> dict[str, Any]:
    """The manifest stored in an exported ONNX file's metadata."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            return json.loads(entry.value)
    raise ModelError(f"{path} carries no Restoration Studio manifest")


def load_weights(path: Path) -> dict[str, Any]:
    """A ``.pt`` written by :func:`export_model` or a trainer checkpoint: {arch, config, state_dict}."""
    import torch

    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:
        raise ModelError(f"cannot read weights {path}: {error}") from None
    if not isinstance(data, dict) or "state_dict" not in data or "arch" not in data:
        raise ModelError(f"{path} is not a Restoration Studio weights file")
    return data


def model_from_weights(weights: dict[str, Any]):
    """The model a weights file describes (``load_weights``: arch, config, state_dict), in eval mode."""
    from .archs import build_model

    model = build_model(weights["arch"], weights["config"])
    model.load_state_dict(weights["state_dict"])
    return model.eval()


def load_run(run_dir: Path, checkpoint: str = "best") -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The model of a training run's ``<checkpoint>.pt`` (eval mode), that checkpoint, and ``last.pt``."""
    run_dir = Path(run_dir)
    best = load_weights(run_dir / f"{checkpoint}.pt")
    last = load_weights(run_dir / "last.pt")
    return model_from_weights(best), best, last


def run_provenance(recipe_path: Path, checkpoint: str, best: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    """What every shipped model's manifest records about the run that made it (scripts add task specifics)."""
    import time

    return {
        "recipe": str(Path(recipe_path)),
        "arch": best["arch"],
        "config": best["config"],
        "checkpoint": checkpoint,
        "steps": int(best.get("step", last["step"])),
        "run_steps": int(last["step"]),
        "minutes": round(float(last["elapsed"]) / 60.0, 1),
        "skipped_batches": int(last["skipped"]),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }
