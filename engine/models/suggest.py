"""Which model to suggest for an image: the one rule the window, the command line, the batch queue and the
self-test all follow.

    suggestion = suggest_model(image, entries=registry.models())
    suggestion.entry, suggestion.reason       # e.g. render-kprcan-color, "HDR render without albedo/normal ..."

The rule, in order:

1. The task follows the image: an HDR render -> render denoising; a camera raw file with a Bayer sensor -> raw
   denoising (on the mosaic, before demosaicing), then photo denoising; a gray (scanned) image -> document
   restoration, then photo denoising; any other image -> photo denoising. An explicit ``task`` overrides this.
2. Within a task the models are ranked (:func:`rank`): bundled networks before the user's own, before built-in
   classical engines, before blends; then those using more of the image's buffers (albedo, normal, depth);
   then by id, so a model ``X`` comes before its variant ``X-fast``.
3. The first ranked model that suits the image (:func:`suitability_warning` says nothing) is suggested: a
   render without albedo and normal buffers gets a colour-only model, one with them the model using them. A
   render whose file says how many samples per pixel it has (Cycles writes it into the EXR header) does not suit
   a model that did harm at that level on the foreign set (:func:`harm_at_samples`: its tonemapped PSNR fell
   below the noisy input's on a Blender scene no training saw), so such a render goes to the next model.
4. When none suits, the first ranked model of the first task is returned with its warning, so callers that
   must pick something (the command line) say why the result may be poor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .entry import ModelEntry
from .manifest import ModelManifest

if TYPE_CHECKING:
    from ..image import Image

#: Order of the sources in the ranking: ours first, Intel's blends last.
SOURCE_RANK = {"bundled": 0, "user": 1, "builtin": 2, "blend": 3}
#: Buffers besides colour that a model may take.
BUFFERS = ("albedo", "normal", "depth")


def render_samples(image: Image) -> int | None:
    """Samples per pixel of a render, from its file's header (Blender Cycles writes them); None when unknown."""
    from ..imageio.exr import samples_in_header

    return samples_in_header((image.meta.extra or {}).get("exr_header") or {})


def harm_at_samples(manifest: ModelManifest, samples: int) -> str | None:
    """What the foreign set (bench/render_foreign.py, scores ``foreign_spp{N}_...`` in the manifest) says of this
    model at ``samples`` per pixel, when it did harm there: its figures at the largest measured count not above
    ``samples`` (the smallest measured one below it), in words; None when it did no harm or was not measured."""
    scores = manifest.scores
    measured = sorted(int(m[1]) for key in scores if (m := re.fullmatch(r"foreign_spp(\d+)_worst_dpsnr", key)))
    if not measured:
        return None
    level = max([n for n in measured if n <= samples] or measured[:1])
    worst = scores.get(f"foreign_spp{level}_worst_dpsnr")
    if not isinstance(worst, int | float) or worst >= 0:
        return None
    ratio = scores.get(f"foreign_spp{level}_ratio_oidn_aov")
    compared = f"{float(ratio):.2f}x the error of OIDN + AOVs and " if isinstance(ratio, int | float) else ""
    return (f"this render has {samples} samples per pixel: on Blender scenes at {level} spp that no training saw, "
            f"{manifest.display_name} had {compared}up to {-float(worst):.1f} dB less detail than the render "
            "before denoising (it smears fine texture when there is little noise); OIDN + AOVs is the safer choice")


@dataclass(frozen=True)
class Suggestion:
    entry: ModelEntry
    #: Why this model, in words (shown in the CLI's log and the window's status line).
    reason: str
    #: None when the model suits the image; otherwise the warning :func:`suitability_warning` gives.
    warning: str | None = None


def suitability_warning(image: Image, manifest: ModelManifest) -> str | None:
    """A short warning when the image does not suit the model (shown by the GUI, printed by the CLI)."""
    if manifest.task == "raw-denoise":
        if image.meta.format != "raw":
            return (f"{manifest.display_name} denoises camera raw files (DNG, CR2, NEF, ARW...) before "
                    "demosaicing; this image is already developed: choose a photo denoiser.")
        if not dict(image.meta.extra.get("raw", {})).get("cfa"):
            return (f"{manifest.display_name} needs a Bayer sensor; this raw file's sensor is not a 2x2 Bayer "
                    "mosaic (X-Trans, Foveon or a demosaiced DNG): choose a photo denoiser.")
        return None
    missing = [name for name in BUFFERS if name in manifest.inputs and name not in image.layers]
    if missing:
        return (
            f"{manifest.display_name} needs {' and '.join(missing)} buffers, which this image does not have; "
            "choose a colour-only model or load the render's AOVs."
        )
    samples = render_samples(image) if manifest.task == "render-denoise" else None
    if samples is not None:
        harm = harm_at_samples(manifest, samples)
        if harm is not None:
            return harm[0].upper() + harm[1:] + "."
    if manifest.hdr and not image.meta.hdr:
        return (
            f"{manifest.display_name} is made for linear HDR renders; this is a {image.meta.bit_depth}-bit "
            "display image, so results may be poor."
        )
    if not manifest.hdr and image.meta.hdr:
        return (
            f"{manifest.display_name} is made for display-referred images; this HDR image is processed "
            "sRGB-encoded and values above 1.0 may be clipped."
        )
    return None


def tasks_for(image: Image) -> list[str]:
    """The tasks that suit an image, preferred first."""
    if image.meta.hdr:
        return ["render-denoise"]
    if image.meta.format == "raw":
        return ["raw-denoise", "photo-denoise"]
    if image.meta.gray:
        return ["document", "photo-denoise"]
    return ["photo-denoise"]


def rank(entries: Iterable[ModelEntry], task: str, buffers: Iterable[str] = ()) -> list[ModelEntry]:
    """The models of ``task`` among ``entries``, preferred first (rule 2 of the module docstring)."""
    have = set(buffers)
    return sorted((e for e in entries if e.manifest.task == task),
                  key=lambda e: (SOURCE_RANK.get(e.source, len(SOURCE_RANK)),
                                 -len(set(e.manifest.inputs) & have), e.id))


def _describe(image: Image) -> str:
    if image.meta.format == "raw":
        cfa = dict(image.meta.extra.get("raw", {})).get("cfa")
        return f"camera raw file ({cfa} Bayer sensor)" if cfa else "camera raw file (not a Bayer sensor)"
    if not image.meta.hdr:
        return "gray image" if image.meta.gray else "photo"
    buffers = [name for name in BUFFERS if name in image.layers]
    return f"HDR render with {' + '.join(buffers)}" if buffers else "HDR render without albedo/normal buffers"


def suggest_model(image: Image | None, task: str | None = None, *, entries: Sequence[ModelEntry]) -> Suggestion | None:
    """The model to suggest for ``image`` (and ``task``, when given) among ``entries`` (a registry's models:
    ``ModelRegistry.suggest`` passes them). None when no model of the task is installed.

    Without an image (the app before anything is opened) ``task`` is required and its first ranked model wins.
    """
    if image is None:
        if task is None:
            raise ValueError("suggest_model needs an image or a task")
        ranked = rank(entries, task)
        return Suggestion(ranked[0], f"the preferred {task} model") if ranked else None

    tasks = [task] if task else tasks_for(image)
    buffers = [name for name in BUFFERS if name in image.layers]
    fallback: Suggestion | None = None
    samples = render_samples(image)
    for name in tasks:
        harmful = []  # models passed over because they did harm at this many samples (rule 3)
        for entry in rank(entries, name, buffers):
            warning = suitability_warning(image, entry.manifest)
            if warning is None:
                uses = [b for b in BUFFERS if b in entry.manifest.inputs]
                why = (f"uses its {' + '.join(uses)}" if uses else
                       "on its Bayer mosaic, before demosaicing" if name == "raw-denoise" else "colour only")
                if harmful:
                    why += (f"; not {', '.join(harmful)}: on unseen Blender scenes with {samples} samples per pixel "
                            "they lost detail against the undenoised render")
                return Suggestion(entry, f"{_describe(image)}: the preferred {name} model that suits it ({why})")
            if samples is not None and harm_at_samples(entry.manifest, samples) is not None:
                harmful.append(entry.id)
            if fallback is None:
                fallback = Suggestion(entry, f"{_describe(image)}: no installed {name} model suits it", warning)
    return fallback


def require_suggestion(registry, image: Image) -> Suggestion:
    """``registry.suggest(image)``, or a ModelError naming the missing kind of model: what the command line and
    the batch path use when no model is named."""
    from ..errors import ModelError

    suggestion = registry.suggest(image)
    if suggestion is None:
        raise ModelError(f"no {tasks_for(image)[0]} model is installed; pass --model (see `main.py models`)")
    return suggestion
