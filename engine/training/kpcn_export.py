"""Companion export for kernel-predicting render denoisers: the kernel model the kernel inspector runs.

``export_kernel_model(model, models_dir, model_id)`` writes ``<id>.kernels.onnx`` beside ``<id>.onnx``: the same
inputs, one output ``kernels`` (1, K, H, W) holding each pixel's normalised weights (a model with a refinement
appends its 25 weights: ``kernel_refine_taps`` lists their offsets), checked against torch.
It records in ``<id>.json`` (``provenance``) what :mod:`engine.kernel_inspector` needs to turn the K weights
into a dense kernel: the companion file name, the tap layout ``[signal, dy, dx]`` and the box prefilter size of
each signal. The main model's file, sha256 and ONNX contract are untouched.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from ..models.registry import file_sha256

OPSET = 18
TOLERANCE = 1e-4


def export_kernel_model(model, models_dir: Path, model_id: str, trace_size: int = 64) -> Path:
    """Export the kernel weights of ``model`` (a KernelPredictionDenoiser) and register them in its manifest."""
    import onnxruntime as ort
    import torch

    from .archs.kpcn import REFINE_TAPS, KernelWeightsModel, shift_taps

    if getattr(model, "mode", "kernel") != "kernel":
        raise ValueError("only kernel-predicting models have kernels to inspect")
    models_dir = Path(models_dir)
    manifest_path = models_dir / f"{model_id}.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    wrapper = KernelWeightsModel(model.to("cpu").float().eval()).eval()
    names = list(model.input_roles)
    rng = np.random.default_rng(3)

    def example(height: int, width: int) -> tuple:
        arrays = []
        for name in names:
            channels = 1 if name == "depth" else 3
            low = -1.0 if name == "normal" else 0.0
            arrays.append(rng.uniform(low, 1.0, (1, channels, height, width)).astype(np.float32))
        return tuple(arrays)

    path = models_dir / f"{model_id}.kernels.onnx"
    dynamic = {name: {2: "height", 3: "width"} for name in names}
    dynamic["kernels"] = {2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, tuple(torch.from_numpy(a) for a in example(trace_size, trace_size)), str(path),
                          input_names=names, output_names=["kernels"], opset_version=OPSET, dynamic_axes=dynamic,
                          dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    align = max(1, int(model.alignment))
    feeds = example(trace_size + 2 * align, trace_size + 5 * align)
    with torch.no_grad():
        expected = wrapper(*(torch.from_numpy(a) for a in feeds)).numpy()
    got = session.run(None, dict(zip(names, feeds, strict=True)))[0]
    error = float(np.abs(got - expected).max())
    if error > TOLERANCE:
        path.unlink()
        raise RuntimeError(f"kernel model parity check failed: max error {error:.2e} > {TOLERANCE}")
    manifest.setdefault("provenance", {})
    manifest["provenance"].update(
        {
            "kernel_model": path.name,
            "kernel_model_sha256": file_sha256(path),
            "kernel_layout": [list(tap) for tap in model.layout],
            "kernel_prefilters": list(model.prefilters),
        }
    )
    if getattr(model, "refine", False):  # its 5x5 weights follow the first pass's in the output
        manifest["provenance"]["kernel_refine_taps"] = [list(tap) for tap in shift_taps(REFINE_TAPS, 1)]
    else:
        manifest["provenance"].pop("kernel_refine_taps", None)
    manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path
