"""Chains: several models run one after the other as one job (denoise, then upscale; clean a scan, then upscale).

``chain_job(image, [ChainStep(denoiser), ChainStep(upscaler)])`` runs each step's :func:`engine.restore.restore_job`
on the previous step's result and yields one progress from 0 to 1 across the whole chain; each step's share is
its input's pixel count (an upscaler after a denoiser works on the same pixels, a second upscaler on four times as
many). A step whose model takes a noise level and is given none gets the level estimated on *its* input (the
denoised image, not the original). The result carries every step's own result in ``details["steps"]``.

The CLI's ``restore --then MODEL`` and the window call this; :func:`check_chain` says before running whether an
order cannot work (a model that needs the render's AOVs after an upscaler, which drops them).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import EngineError
from .jobs import CancelToken, EtaClock, ImageResult, Progress, relay
from .models.registry import ModelEntry


@dataclass(frozen=True)
class ChainStep:
    """One model of a chain and the parameters the user chose for it (the rest take their defaults)."""

    entry: ModelEntry
    params: Mapping[str, Any] = field(default_factory=dict)


def check_chain(steps: Sequence[ChainStep]) -> None:
    """Raise EngineError when the chain cannot run in this order (checked before any work)."""
    if not steps:
        raise EngineError("a chain needs at least one model")
    scaled_by = None
    for step in steps:
        aovs = [name for name in step.entry.manifest.inputs if name != "color"]
        if scaled_by is not None and aovs:
            raise EngineError(
                f"{step.entry.id} uses the render's {', '.join(aovs)}, which do not survive the upscaling by "
                f"{scaled_by}: run it before the upscaler"
            )
        if step.entry.manifest.scale != 1:
            scaled_by = step.entry.id


def chain_label(results: Sequence[ImageResult]) -> str:
    return " \u2192 ".join(result.label for result in results)


def chain_job(
    image: Any,
    steps: Sequence[ChainStep],
    *,
    tile: int | None = None,
    device: str = "auto",
    ensemble: int = 1,
    token: CancelToken | None = None,
) -> Generator[Progress, None, ImageResult]:
    """Run ``steps`` in order on ``image`` as one job (see the module docstring); returns the last image."""
    from .noise_estimate import with_estimated_noise_level
    from .restore import restore_job, suitability_warning

    check_chain(steps)
    token = token or CancelToken()
    clock = EtaClock()  # the time left of the whole chain
    # Each step's share of the progress: the pixels it reads (its input is the previous step's output).
    weights, pixels = [], image.width * image.height
    for step in steps:
        weights.append(float(pixels))
        pixels *= step.entry.manifest.scale ** 2
    total = sum(weights)
    results: list[ImageResult] = []
    warnings: list[str] = []
    current = image
    for index, step in enumerate(steps):
        token.raise_if_cancelled()
        done_before = sum(weights[:index]) / total
        share = weights[index] / total
        name = f"{index + 1}/{len(steps)} {step.entry.manifest.display_name}"
        params, level = with_estimated_noise_level(current, step.entry.manifest, dict(step.params))
        if level is not None:
            yield Progress(done_before, f"step {name}", f"{name}: noise level {level:g} (estimated)")
        warning = suitability_warning(current, step.entry.manifest)
        if warning:
            warnings.append(f"{step.entry.id}: {warning}")
            yield Progress(done_before, f"step {name}", f"{name}: {warning}")
        job = restore_job(current, step.entry, params, tile=tile, device=device, ensemble=ensemble, token=token)
        result = yield from relay(job, _as_chain_progress(name, done_before, share, clock))
        results.append(result)
        current = result.image
        del job
    seconds = clock.elapsed()
    label = chain_label(results)
    yield Progress(1.0, "done", f"{label} in {seconds:.2f} s")
    return ImageResult(
        image=current,
        label=label,
        model_id="+".join(step.entry.id for step in steps),
        device=results[-1].device,
        seconds=seconds,
        details={
            "steps": [{"model_id": r.model_id, "label": r.label, "seconds": r.seconds, **dict(r.details)}
                      for r in results],
            **({"warnings": warnings} if warnings else {}),
        },
    )


def _as_chain_progress(name: str, done_before: float, share: float, clock: EtaClock) -> Callable[[Progress], Progress]:
    """A step's progress as the chain's: its fraction placed in the step's share of the whole (``done_before`` +
    ``share`` x the step's), its words prefixed with the step's ``name``, the time left of the whole chain."""

    def convert(record: Progress) -> Progress:
        fraction = None if record.fraction is None else done_before + share * record.fraction
        return Progress(fraction, f"{name}: {record.stage}", f"{name}: {record.message}",
                        clock.eta(fraction) if fraction is not None else None, record.metrics, record.preview)

    return convert
