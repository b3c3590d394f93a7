"""Companion export for kernel-predicting render denoisers: the kernel model the kernel inspector runs.

:func:`export_kernel_model` writes ``<id>.kernels.onnx`` beside ``<id>.onnx``: the same inputs, one output
``kernels`` (1, K, H, W) holding each pixel's normalised weights (a model with a refinement appends its 25
weights: ``kernel_refine_taps`` lists their offsets), checked against torch. It returns what the manifest's
``provenance`` records for :mod:`engine.kernel_inspector` to turn the K weights into a dense kernel: the
companion file name and sha256, the tap layout ``[signal, dy, dx]`` and the box prefilter size of each signal.
The generic exporter (engine/training/export.py) calls it through the architecture's spec and writes the manifest.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ....models.entry import file_sha256
from .kernels import shift_taps
from .model import REFINE_TAPS, KernelWeightsModel

OPSET = 18
TOLERANCE = 1e-4


def export_kernel_model(model, models_dir: Path, model_id: str, trace_size: int = 64) -> dict[str, Any]:
    """Write ``<id>.kernels.onnx`` for ``model`` (a kernel-mode KernelPredictionDenoiser) into ``models_dir``;
    returns the provenance entries that name it (None for an entry to remove: a stale refinement layout).
    A direct-prediction model has no kernels: nothing is written, and the result is empty."""
    import onnxruntime as ort
    import torch

    if getattr(model, "mode", "kernel") != "kernel":
        return {}
    models_dir = Path(models_dir)
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
    provenance: dict[str, Any] = {
        "kernel_model": path.name,
        "kernel_model_sha256": file_sha256(path),
        "kernel_layout": [list(tap) for tap in model.layout],
        "kernel_prefilters": list(model.prefilters),
        # a refinement's 5x5 weights follow the first pass's in the output
        "kernel_refine_taps": [list(tap) for tap in shift_taps(REFINE_TAPS, 1)] if model.refine else None,
    }
    return provenance
