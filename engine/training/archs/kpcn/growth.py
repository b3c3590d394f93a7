"""Growing a kernel-prediction denoiser from a smaller one: how the shipped render models were made.

``render-kprcan-color`` and ``render-kprcan-aov`` were each trained in stages, every stage starting from the
previous one's weights with something added (albedo and normal inputs, guides, a refinement, ...). A recipe whose
``init`` is such a smaller model of the same architecture trains the grown model (:func:`grows_into` decides,
:func:`grow_model` copies the weights); the trainer finds both through the architecture's spec.

Every kind of growth starts where the old model was (or, for a refinement, at a filter measured better than
none), so a stage can only improve on the last:

- new inputs (``aux_inputs``): the head's weights for them start at zero;
- new guides (``guide``): their strengths start at ``GUIDE_START`` everywhere;
- more residual blocks (``blocks``): the new ones are appended and start as the identity (second conv zero);
- more features: old weights keep their values, weights from new channels into old ones start at zero;
- a context branch (``context_blocks``): whole, with its output convolution at zero;
- a refinement (``refine``): a fixed cross-bilateral (the ``REFINE_START`` constants, the same at every pixel);
  its feature network (``refine_features``) starts with its output at zero;
- ``color_guide_centre`` moved: the same weights, the colour taps compared with another centre;
- demodulation (``demodulate``): the same kernels, their result blended half and half with the demodulated one
  (the share's convolution starts at zero); on pixels whose neighbours share their albedo the two are the same.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch

from ..common import AOV_CHANNELS
from .kernels import shift_taps
from .model import (
    GUIDE_GAIN,
    REFINE_GAIN,
    REFINE_TAPS,
    KernelPredictionDenoiser,
    without_retired,
)

#: Guide strength of a model grown from one without guides: gentle, so it starts near the old.
GUIDE_START = 0.1
#: A model grown a refinement starts as the fixed bilateral that measured best on validation at 4 spp:
#: spatial sigma 1.5 px; strengths per guide (log1p colour, albedo, normal).
REFINE_START_SIGMA = 1.5
REFINE_START_STRENGTH = {"color": 300.0, "albedo": 300.0, "normal": 10.0}
#: The options growth may change; every other option must be the same in the old and the new configuration.
GROWABLE = ("aux_inputs", "guide", "blocks", "features", "context_blocks", "refine", "refine_features",
            "color_guide_centre", "demodulate")


def grows_into(config: Mapping[str, Any], weights: Mapping[str, Any], arch: str) -> bool:
    """True when ``weights`` (a .pt: arch, config, state_dict) are a smaller model of ``arch`` that
    :func:`grow_model` can grow into ``config``: the same options but for :data:`GROWABLE`, nothing dropped,
    and something added (or the colour guide's centre moved)."""
    if weights["arch"] != arch:
        return False
    defaults = {k: p.default for k, p in inspect.signature(KernelPredictionDenoiser).parameters.items()}
    new = {**defaults, **without_retired(config)}  # a retired option in the recipe: its ValueError says so
    try:
        old = {**defaults, **without_retired(weights["config"])}
    except ValueError:  # weights of a retired experiment: not a smaller model of this one
        return False
    if any(old[k] != new[k] for k in defaults if k not in GROWABLE):
        return False
    old_aux, new_aux = set(old["aux_inputs"]), set(new["aux_inputs"])
    if not (old_aux <= new_aux and old["blocks"] <= new["blocks"] and old["features"] <= new["features"]):
        return False
    adds_guide = set(old["guide"]) < set(new["guide"])
    adds_blocks = old["blocks"] < new["blocks"] and arch != "kpcn"  # plain blocks have no identity path
    adds_refine = (not old["refine"] and bool(new["refine"])) or old["refine_features"] == 0 < new["refine_features"]
    adds_context = old["context_blocks"] == 0 < new["context_blocks"]
    moves_centre = old["color_guide_centre"] != new["color_guide_centre"]
    if old["demodulate"] and not new["demodulate"]:
        return False
    adds_demodulation = not old["demodulate"] and bool(new["demodulate"])
    return (old_aux < new_aux or adds_guide or adds_blocks or old["features"] < new["features"] or adds_context
            or adds_refine or moves_centre or adds_demodulation)


def input_parts(aux_inputs: tuple[str, ...]) -> list[tuple[str, int]]:
    """The head's input channel groups, in concatenation order (see the model's ``_features``)."""
    return [("color", 3)] + [(name, AOV_CHANNELS[name]) for name in aux_inputs]


def grow_model(model: KernelPredictionDenoiser, state: dict[str, torch.Tensor], old_config: dict) -> None:
    """Load ``state`` of a smaller model (``old_config``) into ``model`` (module docstring: what may grow).

    Input channels are matched by name through pixel-unshuffle's layout (channel c becomes c * r^2 + offset).
    """
    old_config = without_retired(old_config)
    if old_config.get("demodulate", False) and not model.demodulate:
        raise ValueError("cannot drop the old model's demodulation")
    old_parts = input_parts(tuple(old_config.get("aux_inputs", ())))
    new_parts = input_parts(model.aux_inputs)
    if not {name for name, _ in old_parts} <= {name for name, _ in new_parts}:
        raise ValueError(f"cannot grow inputs {old_parts} into {new_parts}: some would be dropped")
    r2 = model.unshuffle**2

    def starts(parts):
        out, at = {}, 0
        for name, count in parts:
            out[name] = at
            at += count
        return out

    old_blocks, new_blocks = int(old_config.get("blocks", len(model.body))), len(model.body)
    if int(old_config.get("features", model.head.out_channels)) > model.head.out_channels:
        raise ValueError(f"cannot narrow {old_config['features']} features into {model.head.out_channels}")
    old_context = int(old_config.get("context_blocks", 0))
    if old_context not in (0, model.context_blocks):  # a branch grows whole, not block by block
        raise ValueError(f"cannot grow {old_context} context blocks into {model.context_blocks}")
    if old_blocks > new_blocks or (old_blocks < new_blocks and model.body[0].kind == "plain"):
        raise ValueError(f"cannot grow {old_blocks} blocks into {new_blocks}"
                         + (" (plain blocks have no identity path)" if old_blocks < new_blocks else ""))
    old_start, new_start = starts(old_parts), starts(new_parts)
    head = state["head.weight"]
    grown = head.new_zeros(head.shape[0], *model.head.weight.shape[1:])  # old width; widened below
    for name, count in old_parts:
        src, dst = old_start[name] * r2, new_start[name] * r2
        grown[:, dst : dst + count * r2] = head[:, src : src + count * r2]
    state = dict(state)
    state["head.weight"] = grown
    for index in range(old_blocks, new_blocks):
        for name, value in model.body[index].state_dict().items():
            state[f"body.{index}.{name}"] = torch.zeros_like(value) if name.startswith("conv2.") else value
    old_guide = tuple(old_config.get("guide", ()))
    if not set(old_guide) <= set(model.guide):
        raise ValueError(f"cannot grow guide {old_guide} into guide {model.guide}")
    # pixel_shuffle takes output channel c from tail channels c * r^2 .. c * r^2 + r^2 - 1: the tail's rows are
    # the taps, then the guide strengths, then the refinement's rows, in blocks of r^2.
    tail_w, tail_b = state["tail.weight"], state["tail.bias"]
    # A refinement's rows come last; a model without one grows them as the fixed bilateral of the REFINE_START
    # constants (zero weights: the same kernel at every pixel).
    refine_w, refine_b = _grown_refine_rows(model, old_config, tail_w, tail_b, r2)
    if old_config.get("refine", False):
        tail_w, tail_b = tail_w[: -len(refine_b)], tail_b[: -len(refine_b)]
    old_rows = model.guide_scales * r2  # each guide's strength rows
    guide_rows = len(old_guide) * old_rows
    taps_w, taps_b = tail_w[: len(tail_w) - guide_rows], tail_b[: len(tail_b) - guide_rows]
    if len(taps_w) != len(model.layout) * r2:
        raise ValueError("the old model's kernels do not match the new model's taps")
    # Guide strengths: a guide the old model had keeps its rows, a new one starts at GUIDE_START everywhere.
    start = float(torch.log(torch.expm1(torch.tensor(GUIDE_START)))) / GUIDE_GAIN  # softplus^-1
    guide_w, guide_b = [], []
    for name in model.guide:
        if name in old_guide:
            at = len(tail_w) - guide_rows + old_guide.index(name) * old_rows
            guide_w.append(tail_w[at : at + old_rows])
            guide_b.append(tail_b[at : at + old_rows])
        else:
            guide_w.append(tail_w.new_zeros(old_rows, *tail_w.shape[1:]))
            guide_b.append(tail_b.new_full((old_rows,), start))
    state["tail.weight"] = torch.cat([taps_w, *guide_w, refine_w])
    state["tail.bias"] = torch.cat([taps_b, *guide_b, refine_b])
    fresh = model.state_dict()
    for key in fresh:
        # a new context branch, refinement network or demodulated share: its output starts at zero
        if key.startswith(("context", "refine_net", "mix.")) and key not in state:
            state[key] = fresh[key]
    for key, value in state.items():
        if key in fresh and value.shape != fresh[key].shape:
            state[key] = _widened(value, fresh[key])
    model.load_state_dict(state)


def _grown_refine_rows(model: KernelPredictionDenoiser, old_config: dict, tail_w: torch.Tensor,
                       tail_b: torch.Tensor, r2: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The tail rows (weights, biases) of ``model``'s refinement: the old model's, or the REFINE_START
    bilateral for a model that had none; empty when ``model`` has no refinement."""
    old_refine = bool(old_config.get("refine", False))
    if old_refine and not model.refine:
        raise ValueError("cannot drop the refinement of the old model")
    rows = model._refine_rows() * r2 if model.refine else 0
    if old_refine:
        if len(tail_b) < rows or len(model.refine_guides) != 1 + sum(
                n in old_config.get("aux_inputs", ()) for n in ("albedo", "normal")):
            raise ValueError("the old model's refinement does not match the new model's buffers")
        return tail_w[-rows:], tail_b[-rows:]
    logits = [-(dy * dy + dx * dx) / (2 * REFINE_START_SIGMA**2) for dy, dx in shift_taps(REFINE_TAPS, 1)]
    strengths = [float(torch.log(torch.tensor(REFINE_START_STRENGTH[g]))) / REFINE_GAIN for g in model.refine_guides]
    bias = torch.tensor(logits + strengths if model.refine else [], dtype=tail_b.dtype).repeat_interleave(r2)
    return tail_w.new_zeros(rows, *tail_w.shape[1:]), bias


def _widened(old: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
    """``old`` embedded in the leading corner of ``fresh`` (a wider layer's initial values), with the weights
    from new input channels to old output channels zeroed: the old outputs stay exactly what they were, the new
    outputs start random (so they differ from each other), and the zero weights learn from the first step."""
    if any(o > f for o, f in zip(old.shape, fresh.shape, strict=True)) or old.shape[2:] != fresh.shape[2:]:
        raise ValueError(f"cannot widen {tuple(old.shape)} into {tuple(fresh.shape)}")
    out = fresh.clone()
    if old.dim() >= 2:
        out[: old.shape[0], old.shape[1] :] = 0
    out[tuple(slice(0, n) for n in old.shape)] = old
    return out
