"""Kernel-prediction render denoisers (KPCN, KPRCN, KPRCAN, the direct baseline): the model (``model.py``), its
kernel operations (``kernels.py``), how it grows from a smaller model (``growth.py``) and its companion exports
for the kernel inspector and the CPU kernel pipeline (``companion.py``). :data:`SPECS` describes the four
architectures to the trainer and the exporter (engine/training/archs/__init__.py lists them)."""

from __future__ import annotations

from ..spec import ArchSpec
from .companion import export_companions, export_kernel_model, export_pipeline
from .growth import grow_model, grows_into
from .model import KernelPredictionDenoiser, direct_denoiser, kpcn, kprcan, kprcn


def _train_refinement_only(model: KernelPredictionDenoiser) -> None:
    if not model.refine:
        raise ValueError("this model has no refine stage to train alone (set refine = true in [model.config])")
    model.train_only_refinement()


def _train_share_only(model: KernelPredictionDenoiser) -> None:
    if not model.demodulate:
        raise ValueError("this model does not demodulate (set demodulate = true in [model.config])")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for parameter in model.mix.parameters():
        parameter.requires_grad_(True)


def _spec(builder, description: str) -> ArchSpec:
    return ArchSpec(
        builder,
        description,
        {"features": 4, "blocks": 1},
        grows_into=grows_into,
        grow=grow_model,
        companions=export_companions,
        parts={"refine": _train_refinement_only, "share": _train_share_only},
    )


SPECS: dict[str, ArchSpec] = {
    "kpcn": _spec(kpcn, "KPCN: 5x5 conv stack predicting per-pixel kernels (render denoising, AOVs)"),
    "kprcn": _spec(kprcn, "KPRCN: KPCN with residual blocks"),
    "kprcan": _spec(kprcan, "KPRCAN: KPCN with residual channel-attention blocks"),
    "kp-direct": _spec(direct_denoiser, "Direct-prediction render denoiser (KPRCAN body, no kernels)"),
}

__all__ = ["SPECS", "KernelPredictionDenoiser", "direct_denoiser", "export_companions", "export_kernel_model",
           "export_pipeline", "grow_model",
           "grows_into", "kpcn", "kprcan", "kprcn"]
