"""KPRCAN + OIDN: our bundled render network and Intel Open Image Denoise, run on the same tile and blended.

The two denoisers err in different places (on validation renders their per-scene errors correlate 0.73), so a
weighted mean of their outputs is better than either: the oldest ensemble trick, applied across two unrelated
networks. ``network_share`` is our network's weight in linear HDR; 0.4 was the best value on both validation
sets (render-data seeds 80000-80015 and 81000-81015, 1 to 64 spp; ``bench/render_blend.py``) and is the default.
The benchmark's held-out scenes (seeds 90000+) were not used to choose it.

It is offered only when ``pyoidn`` is installed and the bundled ``render-kprcan-aov`` network is present, as a
built-in engine of its own, never as the default: it depends on Intel's weights and costs both models' time.
Its tile runner is bound to the user's device (the network may run on CUDA; OIDN runs on the CPU here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..jobs import CancelToken
from ..paths import resources_dir
from ..transforms import from_model_space, to_model_space
from .base import ClassicalEngine, TileFunction
from .entry import ModelEntry, load_network, verify_model_file
from .manifest import ModelManifest, ParamSpec, TileSpec, load_manifest
from .oidn import OIDN_OVERLAP, oidn_denoise

#: The bundled network the blend uses (the colour + albedo + normal KPRCAN).
NETWORK_ID = "render-kprcan-aov"
#: Our network's weight in the blend, chosen on validation scenes (module docstring).
DEFAULT_SHARE = 0.4


def network_files() -> tuple[Path, Path]:
    """The bundled network's manifest and ONNX file."""
    folder = resources_dir() / "models"
    return folder / f"{NETWORK_ID}.json", folder / f"{NETWORK_ID}.onnx"


def network_present() -> bool:
    return all(path.is_file() for path in network_files())


def blend(network: np.ndarray, oidn: np.ndarray, share: float) -> np.ndarray:
    """``share`` x the network's output + (1 - ``share``) x OIDN's, both linear HDR (float32)."""
    share = np.float32(share)
    return (share * network + (np.float32(1.0) - share) * oidn).astype(np.float32, copy=False)


#: Its figures on the foreign set (bench/results/render_foreign.md, 2026-12-07, one run of the 11 Blender scenes),
#: in the keys ``main.py ship --scores`` gives the bundled networks: its card shows them, and the do-no-harm rule of
#: engine.models.suggest reads them (it made one scene worse than the undenoised render at 64 spp).
FOREIGN_SCORES = {
    "benchmark": "bench/results/render_foreign.md", "foreign_scenes": 11,
    "foreign_spp4_ratio_oidn_aov": 1.054, "foreign_spp4_wins": 4, "foreign_spp4_worst_dpsnr": 3.76,
    "foreign_spp16_ratio_oidn_aov": 1.317, "foreign_spp16_wins": 0, "foreign_spp16_worst_dpsnr": 0.85,
    "foreign_spp64_ratio_oidn_aov": 1.280, "foreign_spp64_wins": 1, "foreign_spp64_worst_dpsnr": -3.94,
}


def _network_tile() -> TileSpec:
    """The bundled network's alignment, reach (widened to cover OIDN's), default tile and memory figures, from its
    manifest (a fixed stand-in where it is missing: the engine is then not offered anyway)."""
    manifest_path, _ = network_files()
    try:
        tile = load_manifest(manifest_path).tile
    except (OSError, ModelError, ValueError):
        return TileSpec(alignment=2, overlap=OIDN_OVERLAP, default=1024)
    return replace(tile, overlap=max(tile.overlap, OIDN_OVERLAP))


def hybrid_manifest() -> ModelManifest:
    return ModelManifest(
        id="render-kprcan-oidn",
        task="render-denoise",
        name="KPRCAN + OIDN blend (albedo + normal)",
        description="Runs our KPRCAN render denoiser and Intel's OIDN on the same render (both with albedo and "
        "normal buffers) and blends their results: a combination with Intel's network, at the cost of both. "
        "Lower error than either alone on renders like our training data; on Blender scenes no training saw, "
        "slightly behind OIDN at 4 spp and behind it at 16 and 64 spp. Network share 0 gives OIDN, 1 gives KPRCAN.",
        engine="classical",
        inputs=("color", "albedo", "normal"),
        value_transform="linear",
        params=(
            ParamSpec("network_share", "float", DEFAULT_SHARE, min=0.0, max=1.0, label="KPRCAN share",
                      help="Weight of our network in the blend (the rest is OIDN's); 0.4 measured best"),
        ),
        tile=_network_tile(),
        provenance={
            "method": f"share x {NETWORK_ID} (bundled ONNX) + (1 - share) x OIDN RT filter (pyoidn 2.5.1.0, "
            "quality high), both with albedo + normal, mixed in linear HDR",
            "share_chosen_on": "render-data seeds 80000-80015 and 81000-81015 at 1, 4, 16 and 64 spp "
            "(bench/render_blend.py); not the benchmark's held-out seeds",
            "weights": "ours (KPRCAN) and Intel's (OIDN)",
        },
        scores=FOREIGN_SCORES,
    )


def bind_hybrid(params: Mapping[str, Any], device: str, token: CancelToken) -> tuple[TileFunction, str]:
    """The bundled blend's tile function for the user's ``device``, and where each half runs."""
    manifest_path, onnx_path = network_files()
    return _bind_blend(ModelEntry(load_manifest(manifest_path), onnx_path, "bundled"), DEFAULT_SHARE, params, device,
                       token)


def _bind_blend(network_entry: ModelEntry, default_share: float, params: Mapping[str, Any], device: str,
                token: CancelToken) -> tuple[TileFunction, str]:
    """``network_entry`` (an ONNX render network taking colour, albedo and normal) and OIDN on each tile, blended."""
    from ..runtime import cpu_description

    verify_model_file(network_entry)
    model = load_network(network_entry, device)
    space = network_entry.manifest.value_transform
    share = float(params.get("network_share", default_share))
    label = "KPRCAN" if network_entry.source == "bundled" else network_entry.manifest.display_name

    def network(tile: Mapping[str, np.ndarray]) -> np.ndarray:
        """The network's output in linear HDR (the tile is already exposure-scaled; its graph works in its
        manifest's value space, log1p for ours)."""
        values = dict(tile, color=to_model_space(tile["color"], space, True))
        return from_model_space(model.run_image(values, token), space, True)

    def run(tile: Mapping[str, np.ndarray]) -> np.ndarray:
        color = tile["color"]
        ours = network(tile) if share > 0.0 else np.zeros_like(color)  # at share 0 or 1 only one model runs
        token.raise_if_cancelled()
        theirs = (oidn_denoise(color, tile.get("albedo"), tile.get("normal")) if share < 1.0
                  else np.zeros_like(color))
        return blend(ours, theirs, share)

    info = model.device
    if info.kind == "cpu":
        fallback = f" — {info.fallback_reason}" if info.fallback_reason else ""
        where = f"{cpu_description()}, {label} and OIDN{fallback}"
    else:
        where = f"{label} on {info.description}, OIDN on {cpu_description()}"
    return run, where


def hybrid_engines() -> list[ClassicalEngine]:
    """The blended engine for ``BUILTIN_ENGINES`` (shown when pyoidn and the bundled network are present)."""
    return [ClassicalEngine(hybrid_manifest(), None, requires=("pyoidn", "onnxruntime"), bind=bind_hybrid,
                            present=network_present, source="blend")]


#: The network share of a user's fine-tuned network in its blend: the share chosen on each shot's held-out
#: reference frame by ``bench/render_finetune.py --blend`` was 0.5 on five Cycles shots of six (0.3 on the other;
#: bench/results/render_finetune_cycles_shots_spp4.md, _spp16.md). A fine-tuned network is nearer its shot than
#: the bundled one is to an unseen render, so it gets more weight than the bundled blend's 0.4.
USER_SHARE = 0.5
#: What a user's blend is called: the network's id with this suffix.
USER_SUFFIX = "-oidn"


#: The inputs a blended network may take: what OIDN takes too (colour alone, or with albedo and normal).
BLENDABLE_INPUTS = (("color", "albedo", "normal"), ("color",))


def blends_with_oidn(entry: ModelEntry) -> bool:
    """A network of the user's own that can be blended with OIDN: an ONNX render denoiser at the same scale taking
    exactly what OIDN takes (:data:`BLENDABLE_INPUTS`)."""
    manifest = entry.manifest
    return (entry.source == "user" and manifest.engine == "onnx" and entry.path is not None
            and manifest.task == "render-denoise" and tuple(manifest.inputs) in BLENDABLE_INPUTS
            and manifest.scale == 1)


def user_blend_engine(network_entry: ModelEntry) -> ClassicalEngine:
    """``network_entry`` (one of the user's networks, e.g. fine-tuned on a shot in the Train dialog) blended with
    OIDN (with albedo and normal when the network takes them), offered beside it as ``<its id>-oidn``. On held-out
    Cycles shots it brought a ten-CPU-minute fine-tune from 0.71-0.99x to 0.66-0.90x Blender's OIDN's relMSE
    (bench/render_finetune.py --blend --smooth; docs/benchmarks.md)."""
    network = network_entry.manifest
    aovs = "albedo" in network.inputs
    manifest = ModelManifest(
        id=network.id + USER_SUFFIX,
        task="render-denoise",
        name=f"{network.display_name} + OIDN blend",
        description=f"Runs your network {network.display_name} and Intel's OIDN on the same render ("
        + ("both with albedo and normal buffers" if aovs else "both on the colour alone")
        + ") and blends their results: a combination with Intel's network, at the cost of both. Network share 0 "
        "gives OIDN, 1 gives your network.",
        engine="classical",
        inputs=tuple(network.inputs),
        value_transform="linear",
        params=(
            ParamSpec("network_share", "float", USER_SHARE, min=0.0, max=1.0, label="Network share",
                      help="Weight of your network in the blend (the rest is OIDN's)"),
        ),
        tile=replace(network.tile, overlap=max(network.tile.overlap, OIDN_OVERLAP)),  # the network's memory figures
        provenance={
            "method": f"share x {network.id} (your ONNX network) + (1 - share) x OIDN RT filter (pyoidn), "
            + ("both with albedo + normal" if aovs else "both colour only") + ", mixed in linear HDR",
            "network": network.id,
            "weights": "yours and Intel's (OIDN)",
        },
    )

    def bind(params: Mapping[str, Any], device: str, token: CancelToken) -> tuple[TileFunction, str]:
        return _bind_blend(network_entry, USER_SHARE, params, device, token)

    return ClassicalEngine(manifest, None, requires=("pyoidn", "onnxruntime"), bind=bind,
                           present=lambda: network_entry.path is not None and network_entry.path.is_file(),
                           source="blend")
