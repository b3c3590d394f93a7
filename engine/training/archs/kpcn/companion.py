"""Companion export for kernel-predicting render denoisers: the kernel model the kernel inspector runs.

:func:`export_kernel_model` writes ``<id>.kernels.onnx`` beside ``<id>.onnx``: the same inputs, one output
``kernels`` (1, K, H, W) holding each pixel's normalised weights (a model with a refinement appends its 25
weights: ``kernel_refine_taps`` lists their offsets), checked against torch. It returns what the manifest's
``provenance`` records for :mod:`engine.kernel_inspector` to turn the K weights into a dense kernel: the
companion file name and sha256, the tap layout ``[signal, dy, dx]`` and the box prefilter size of each signal.
The generic exporter (engine/training/export.py) calls it through the architecture's spec and writes the manifest.

:func:`export_pipeline` writes the two graphs of the CPU kernel pipeline (engine/kernel_pipeline.py):
``<id>.features.onnx`` (the network up to its tail's outputs) and ``<id>.refine.onnx`` (the refinement's
convolutions), with the kernel stage's layout, checked against torch where the native stage is built.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ....models.entry import file_sha256
from .kernels import SOFTMAX_CAP, shift_taps
from .model import GUIDE_CHANNELS, GUIDE_GAIN, REFINE_GAIN, REFINE_MAX_LOG, REFINE_TAPS, KernelWeightsModel

OPSET = 18
TOLERANCE = 1e-4


def _examples(names: list[str], rng: np.random.Generator):
    def example(height: int, width: int) -> tuple:
        arrays = []
        for name in names:
            channels = 1 if name == "depth" else 3
            low = -1.0 if name == "normal" else 0.0
            arrays.append(rng.uniform(low, 1.0, (1, channels, height, width)).astype(np.float32))
        return tuple(arrays)

    return example


def export_companions(model, models_dir: Path, model_id: str) -> dict[str, Any]:
    """Every companion file of a kernel-predicting model: the kernel inspector's graph and the CPU pipeline's."""
    return dict(export_kernel_model(model, models_dir, model_id), **export_pipeline(model, models_dir, model_id))


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
    example = _examples(names, np.random.default_rng(3))
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


class _FeaturesModel(nn.Module):
    """Export wrapper: the model's inputs -> its first kernels' logits (N, K, H, W), their guide strengths
    (softplus applied) and the refinement's raw rows, before any kernel is applied."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        model = self.model
        color, aux = model._split(inputs)
        out = model._features(color, aux)
        taps = len(model.layout)
        strengths = F.softplus(GUIDE_GAIN * out[:, taps : taps + len(model.guide) * model.guide_scales])
        rows = out[:, -model._refine_rows() :] if model.refine else out[:, :0]
        return out[:, :taps], strengths, rows


class _RefineModel(nn.Module):
    """Export wrapper: the refinement's guides (N, C, H, W) and the tail's refinement rows -> its logits and its
    strengths per guide (the refinement network's addition included)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.net = model.refine_net
        self.taps = REFINE_TAPS**2

    def forward(self, guides, rows):
        if self.net is not None:
            rows = rows + self.net(guides)
        strengths = torch.exp((REFINE_GAIN * rows[:, self.taps :]).clamp(max=REFINE_MAX_LOG))
        return rows[:, : self.taps], strengths


def pipeline_layout(model) -> dict[str, Any]:
    """The kernel stage's layout as engine/kernel_pipeline.py reads it (``PipelineLayout``)."""
    sizes = {size for _, size, _ in model.grids}
    return {
        "taps": sizes.pop(),
        "dilations": [dilation for _, _, dilation in model.grids],
        "prefilters": list(model.prefilters),
        "guide": list(model.guide),
        "guide_centre": model.color_guide_centre,
        "softmax_cap": SOFTMAX_CAP,
        "ref_tap": int(model.centre_tap),
        "refine_stage": {"taps": REFINE_TAPS, "guides": list(model.refine_guides)} if model.refine else None,
    }


def export_pipeline(model, models_dir: Path, model_id: str, trace_size: int = 64) -> dict[str, Any]:
    """Write ``<id>.features.onnx`` (and ``<id>.refine.onnx`` for a model with a refinement network) for the CPU
    kernel pipeline; returns the provenance entry ``pipeline`` that names them with the stage's layout. Models the
    fused stage does not cover (direct prediction, demodulation, no guides, kernels of unequal sizes) get
    nothing. Where the native stage is built, the pipeline's output is checked against the model's own."""
    import onnxruntime as ort

    from ....kernel_pipeline import PipelineLayout, kernel_stage, native_available

    if (getattr(model, "mode", "kernel") != "kernel" or model.demodulate or not model.guide
            or len({size for _, size, _ in model.grids}) != 1 or model.centre_tap is None):
        return {}
    models_dir = Path(models_dir)
    model = model.to("cpu").float().eval()
    names = list(model.input_roles)
    example = _examples(names, np.random.default_rng(5))
    entry: dict[str, Any] = dict(pipeline_layout(model))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        features = models_dir / f"{model_id}.features.onnx"
        outputs = ["logits", "strengths", "rows"]
        dynamic = {name: {2: "height", 3: "width"} for name in names + outputs}
        torch.onnx.export(_FeaturesModel(model).eval(), tuple(torch.from_numpy(a) for a in example(64, 64)),
                          str(features), input_names=names, output_names=outputs, opset_version=OPSET,
                          dynamic_axes=dynamic, dynamo=False)
        entry.update(features=features.name, features_sha256=file_sha256(features), refine=None)
        if model.refine:
            refine = models_dir / f"{model_id}.refine.onnx"
            channels = sum(GUIDE_CHANNELS[g] for g in model.refine_guides)
            example_inputs = (torch.zeros(1, channels, 64, 64), torch.zeros(1, model._refine_rows(), 64, 64))
            dynamic = {name: {2: "height", 3: "width"} for name in ("guides", "rows", "logits", "strengths")}
            torch.onnx.export(_RefineModel(model).eval(), example_inputs, str(refine), input_names=["guides", "rows"],
                              output_names=["logits", "strengths"], opset_version=OPSET, dynamic_axes=dynamic,
                              dynamo=False)
            entry.update(refine=refine.name, refine_sha256=file_sha256(refine))
    if native_available():
        align = max(1, int(model.alignment))
        feeds = example(trace_size + 2 * align, trace_size + 5 * align)
        with torch.no_grad():
            expected = model(*(torch.from_numpy(a) for a in feeds)).numpy()[0]
        session = ort.InferenceSession(str(features), providers=["CPUExecutionProvider"])
        logits, strengths, rows = (a[0] for a in session.run(None, dict(zip(names, feeds, strict=True))))
        refine_stage = None
        if entry["refine"]:
            refine_session = ort.InferenceSession(str(models_dir / entry["refine"]), providers=["CPUExecutionProvider"])

            wanted = {i.name for i in refine_session.get_inputs()}  # without a refinement network: rows alone

            def refine_stage(guides):
                feeds = {"guides": guides[None], "rows": rows[None]}
                return [a[0] for a in refine_session.run(None, {k: v for k, v in feeds.items() if k in wanted})]

        inputs = dict(zip(names, (a[0] for a in feeds), strict=True))
        got = kernel_stage(PipelineLayout.from_provenance(entry), inputs, logits, strengths, refine_stage)
        error = float(np.abs(got - expected).max())
        if error > TOLERANCE:
            raise RuntimeError(f"kernel pipeline parity check failed: max error {error:.2e} > {TOLERANCE}")
    return {"pipeline": entry}
