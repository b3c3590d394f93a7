"""Shipping a trained model: export a run as ``<id>.onnx/.json/.pt`` (plus its architecture's companion files),
rebuild a shipped model's ONNX files from its weights, and copy a benchmark's scores into a manifest.

The command line is ``python main.py ship`` (engine/commands/ship_cmd.py); every manifest is written through
engine/models/manifest_writer.py. What a shipped manifest records about its run (``provenance``): recipe,
architecture and configuration, checkpoint, steps, minutes, device, data, best validation PSNR, loss, optimiser,
seed and date.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EngineError
from ..models.manifest import TileSpec, load_manifest
from ..models.manifest_writer import update_manifest
from ..paths import resources_dir

CPU_NOTE = "CPU (2 cores shared with other jobs), fp32"


@dataclass(frozen=True)
class ShipRequest:
    #: A training run's folder (best.pt, last.pt) or one weights file (a run's best.pt fetched alone).
    source: Path
    #: The recipe the run trained; None: the one the checkpoint recorded.
    recipe: str | None = None
    checkpoint: str = "best"
    out: Path | None = None
    model_id: str | None = None
    name: str | None = None
    description: str | None = None
    validated_note: str = ""
    data_note: str = ""
    device_note: str = CPU_NOTE
    tile: int | None = None
    overlap: int | None = None
    #: With a weights file: what the run's log said (its steps and minutes).
    steps: int | None = None
    minutes: float | None = None
    #: Ship a blend of the run's weights and these (the weights the run was fine-tuned from):
    #: ``(1 - blend) * blend_with + blend * run`` (:func:`blend_weights`).
    blend_with: Path | None = None
    blend: float = 1.0


def shipped_models_dir() -> Path:
    return resources_dir() / "models"


def _recipe(request: ShipRequest, weights: Mapping[str, Any]):
    from .recipes import load_recipe, recipe_from_dict

    if request.recipe:
        return load_recipe(request.recipe)
    stored = weights.get("recipe")
    if not isinstance(stored, Mapping):
        raise EngineError(f"{request.source}: no checkpoint of this run records its recipe; name it with --recipe")
    tables = {key: value for key, value in stored.items() if key != "source"}
    source = str(stored.get("source") or request.source)
    return dataclasses.replace(recipe_from_dict(tables, source=source), source=source)


def _load(request: ShipRequest):
    """The model, its weights file's contents, and what the manifest records about the run."""
    from .export import load_run, load_weights, model_from_weights, run_provenance

    source = Path(request.source)
    if source.is_dir():
        if not (source / f"{request.checkpoint}.pt").is_file() or not (source / "last.pt").is_file():
            raise EngineError(f"{source}: not a training run's folder (it needs {request.checkpoint}.pt and last.pt)")
        model, best, last = load_run(source, request.checkpoint)
        recipe = _recipe(request, last)  # the trainer records the recipe in last.pt
        provenance = run_provenance(Path(recipe.source), request.checkpoint, best, last)
        return model, best, recipe, provenance, best.get("val_psnr", last.get("best_psnr"))
    if not source.is_file():
        raise EngineError(f"{source}: no such run folder or weights file")
    weights = load_weights(source)
    model = model_from_weights(weights)
    beside = source.with_name("last.pt")  # a run's best.pt: its run's last.pt records the recipe
    recipe = _recipe(request, weights if "recipe" in weights or not beside.is_file() else load_weights(beside))
    provenance = {"recipe": recipe.source, "arch": weights["arch"], "config": weights["config"],
                  "checkpoint": source.name, "best_step": weights.get("step"),
                  "steps": request.steps if request.steps is not None else weights.get("step"),
                  "minutes": request.minutes}
    return model, weights, recipe, provenance, weights.get("val_psnr", weights.get("best_psnr"))


def blend_weights(start: Mapping[str, Any], tuned: Mapping[str, Any], share: float) -> dict[str, Any]:
    """``(1 - share) * start + share * tuned`` for every floating-point tensor of two state dicts of one model.

    A fine-tuned model blended with the weights it started from keeps much of what fine-tuning gained while
    losing little of what the start was good at (WiSE-FT: Wortsman et al., "Robust fine-tuning of zero-shot
    models", CVPR 2022): the clipped-noise fine-tuning of photo-denoise-color gained on clipped inputs and lost
    on unclipped ones, and the blend kept most of the gain (recipes/photo_denoise_color_clipped.toml)."""
    if not 0.0 <= share <= 1.0:
        raise EngineError(f"the blend share must be in [0, 1], not {share}")
    if set(start) != set(tuned):
        raise EngineError("cannot blend weights of different models (their tensors differ)")
    blended = {}
    for name, value in tuned.items():
        other = start[name]
        if tuple(other.shape) != tuple(value.shape):
            raise EngineError(f"cannot blend weights of different models ({name}: {tuple(other.shape)} vs "
                              f"{tuple(value.shape)})")
        if value.is_floating_point():
            blended[name] = ((1.0 - share) * other.double() + share * value.double()).to(value.dtype)
        else:
            blended[name] = value
    return blended


def _blend(request: ShipRequest, model, weights: Mapping[str, Any], provenance: dict[str, Any]):
    from .export import load_weights

    start = load_weights(Path(request.blend_with))
    if start["arch"] != weights["arch"] or dict(start["config"]) != dict(weights["config"]):
        raise EngineError(f"{request.blend_with}: not the run's architecture ({start['arch']} {dict(start['config'])})")
    model.load_state_dict(blend_weights(start["state_dict"], weights["state_dict"], request.blend))
    provenance["blend"] = {"with": Path(request.blend_with).name, "share": request.blend,
                           "rule": "(1 - share) * with + share * run (WiSE-FT)"}


def ship(request: ShipRequest):
    """Export the run of ``request`` as a shipped model; returns the :class:`ExportResult`."""
    from .export import build_manifest, export_model

    model, weights, recipe, provenance, val = _load(request)
    if request.blend_with is not None:
        _blend(request, model, weights, provenance)
        val = None  # the run's validation score was the unblended weights'
    model_id = request.model_id or recipe.model.id
    val = None if val is None else round(float(val), 3)
    provenance.update({
        "best_val_psnr": val,
        "device": request.device_note,
        "data": request.data_note or [str(f) for f in recipe.data.train],
        "loss": recipe.train.loss,
        "optimizer": f"AdamW lr {recipe.train.lr:g} wd {recipe.train.weight_decay:g}, warm-up + cosine",
        "seed": recipe.train.seed,
    })
    provenance.setdefault("date", time.strftime("%Y-%m-%d", time.gmtime()))
    description = request.description or recipe.model.description
    if request.validated_note:
        description = f"{description} {request.validated_note}"
    manifest = build_manifest(
        model, model_id=model_id, task=recipe.model.task, name=request.name or recipe.model.name,
        description=description, value_transform=recipe.model.value_transform, params=recipe.export.params,
        tile_default=request.tile if request.tile is not None else recipe.export.tile, provenance=provenance,
        scores={} if val is None else {"val_psnr": val},
    )
    if request.overlap is not None:
        manifest = dataclasses.replace(manifest, tile=TileSpec(manifest.tile.alignment, request.overlap,
                                                               manifest.tile.default))
    out = Path(request.out) if request.out else shipped_models_dir()
    return export_model(model, manifest, out, arch=weights["arch"], arch_config=weights["config"])


def ship_clipped(request: ShipRequest, model_id: str) -> dict[str, Any]:
    """Export the run of ``request`` as the weights shipped model ``model_id`` runs on clipped inputs (every 8- or
    16-bit photo; manifest field ``clipped``, :func:`engine.models.entry.for_input`): ``<id>.clipped.onnx``
    beside ``<id>.onnx``, with its sha256 and the run's provenance in ``<id>.json``. The run must be the same
    network (architecture and configuration) as the model's. Returns the manifest's new ``clipped`` field."""
    out = Path(request.out) if request.out else shipped_models_dir()
    manifest_path = out / f"{model_id}.json"
    if not manifest_path.is_file():
        raise EngineError(f"{manifest_path}: no such model to give weights for clipped input")
    main = load_manifest(manifest_path)
    if main.engine != "onnx":
        raise EngineError(f"{model_id}: only an ONNX model can have weights for clipped input")
    with tempfile.TemporaryDirectory() as folder:
        result = ship(dataclasses.replace(request, out=Path(folder), model_id=f"{model_id}.clipped"))
        run = result.manifest.provenance
        if (run.get("arch"), run.get("config")) != (main.provenance.get("arch"), main.provenance.get("config")):
            raise EngineError(f"{request.source}: not {model_id}'s network ({run.get('arch')} {run.get('config')} "
                              f"against {main.provenance.get('arch')} {main.provenance.get('config')})")
        if tuple(result.manifest.inputs) != tuple(main.inputs):
            raise EngineError(f"{request.source}: its inputs {list(result.manifest.inputs)} are not {model_id}'s")
        name = f"{model_id}.clipped.onnx"
        shutil.copyfile(result.onnx_path, out / name)
    clipped = {"file": name, "sha256": result.manifest.sha256, "provenance": dict(run)}
    update_manifest(manifest_path, fields={"clipped": clipped})
    return clipped


def reexport(model_id: str, out: Path | None = None):
    """Same weights, same manifest (provenance, scores), new ONNX graph: for exporter improvements."""
    from .export import export_model, load_weights, model_from_weights

    out = Path(out) if out else shipped_models_dir()
    if not (out / f"{model_id}.pt").is_file():
        raise EngineError(f"{out / model_id}.pt: no weights to re-export (only models shipped with them can be)")
    manifest = load_manifest(out / f"{model_id}.json")
    weights = load_weights(out / f"{model_id}.pt")
    provenance = dict(manifest.provenance, reexported=time.strftime("%Y-%m-%d", time.gmtime()))
    manifest = dataclasses.replace(manifest, provenance=provenance)
    return export_model(model_from_weights(weights), manifest, out, arch=weights["arch"],
                        arch_config=weights["config"])


def scores_from(results: Mapping[str, Any], model_id: str) -> tuple[dict[str, Any], str]:
    """A model's scores in a benchmark JSON: bench/render.py's ("summary"; bench/raw_denoise.py's too, naming its
    report in "benchmark"), the foreign render set's (bench/render_foreign.py: geometric-mean ratio to OIDN + AOVs,
    scenes won, the worst do-no-harm margin) or bench/documents.py's ("records"); and the benchmark's report that
    explains them."""
    scores: dict[str, Any] = {}
    # bench/render_foreign.py: per method, per spp, ratios to OIDN + AOVs (files written before it named its kind
    # are known by their reference-noise table)
    if results.get("kind") == "render-foreign" or "reference_noise" in results:
        for level, values in results["summary"].get(model_id, {}).items():
            scores[f"foreign_spp{level}_ratio_oidn_aov"] = round(values["geo_ratio"], 3)
            scores[f"foreign_spp{level}_wins"] = int(values["wins"])
            scores["foreign_scenes"] = int(values["scenes"])
            scores[f"foreign_spp{level}_worst_dpsnr"] = round(values["worst_dpsnr"], 2)
        return scores, str(results.get("benchmark", "bench/results/render_foreign.md"))
    if "summary" in results:
        for set_name, methods in results["summary"].items():
            for level, values in methods.get(model_id, {}).items():
                if isinstance(values, dict):
                    scores[f"{set_name}_spp{level}_relmse"] = round(values["rel_mse"], 6)
                    scores[f"{set_name}_spp{level}_psnr_tonemapped"] = round(values["psnr"], 3)
                else:
                    scores[f"{set_name}_{level}"] = round(values, 4)
        return scores, str(results.get("benchmark", "bench/results/render.md"))
    if "records" in results:
        for record in results["records"]:
            if record["method"].startswith(f"{model_id} ("):
                setting = record["method"][len(model_id) + 2 : -1].replace(" ", "_").replace(",", "")
                scores[f"documents_val16_rmse_{setting}"] = round(record["rmse"], 5)
                scores[f"documents_val16_s_per_page_{setting}"] = round(record["s_per_page"], 3)
        return scores, "bench/results/documents.md"
    raise EngineError("unknown benchmark JSON: expected bench/render.py's or bench/documents.py's")


def add_scores(results: Mapping[str, Any], model_id: str, out: Path | None = None) -> dict[str, Any]:
    """Copy ``model_id``'s scores from a benchmark's results into its manifest, beside the scores other benchmarks
    wrote there (a key of this benchmark's is replaced; "benchmark" lists every report); returns them."""
    scores, benchmark = scores_from(results, model_id)
    if not scores:
        raise EngineError(f"no scores of {model_id} in these benchmark results")
    path = (Path(out) if out else shipped_models_dir()) / f"{model_id}.json"
    existing = dict(load_manifest(path).scores)
    reports = [r for r in str(existing.pop("benchmark", "")).split(", ") if r]
    merged = dict(existing, **scores, benchmark=", ".join(dict.fromkeys([*reports, benchmark])))
    update_manifest(path, scores=merged)
    return scores
