"""``main.py --selftest``: a headless check that an installed (or frozen) app really restores an image.

Steps, each of which must pass: read the bundled sample render (with its AOVs) -> run the default render
denoiser on it -> write the result to a temporary EXR -> read that back -> the pixels are finite, have the
input's shape and match what was written; when the bundled reference render exists, the result is closer to
it than the noisy input is (relative MSE). It catches what packaging breaks: missing models, data files,
native libraries (ONNX Runtime, OpenEXR, OpenCV) or an image format plugin.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import EngineError


class SelftestError(EngineError):
    """A self-test step failed; the message says which and why."""


@dataclass
class SelftestReport:
    model_id: str = ""
    device: str = ""
    shape: tuple[int, ...] = ()
    seconds: float = 0.0
    #: relative MSE against the bundled reference: (noisy input, result); None without a reference.
    relmse: tuple[float, float] | None = None
    lines: list[str] = field(default_factory=list)


def run_selftest(
    sample: Path | None = None,
    reference: Path | None = None,
    *,
    model_id: str | None = None,
    log: Callable[[str], None] = print,
) -> SelftestReport:
    """Run the self-test; raises :class:`SelftestError` (or another ``EngineError``) at the first failure."""
    from .imageio import read_image, write_image
    from .jobs import CancelToken, run_job
    from .metrics import relmse
    from .models.registry import ModelRegistry
    from .models.suggest import tasks_for
    from .paths import sample_image_path
    from .restore import restore_job, suitability_warning

    report = SelftestReport()

    def step(message: str) -> None:
        report.lines.append(message)
        log(message)

    started = time.perf_counter()
    sample = Path(sample) if sample else sample_image_path()
    if reference is None:
        reference = sample.with_name(sample.stem + "_ref" + sample.suffix)
    if not sample.is_file():
        raise SelftestError(f"the bundled sample image is missing: {sample}")
    image = read_image(sample)
    step(f"read {sample.name}: {image.width}x{image.height}, layers: {', '.join(image.layers) or 'none'}")

    registry = ModelRegistry()
    suggestion = None if model_id else registry.suggest(image)
    if model_id is None and suggestion is None:
        raise SelftestError(f"no {tasks_for(image)[0]} model found in {registry.folders[0][0]}")
    entry = registry.get(model_id) if model_id else suggestion.entry
    warning = suitability_warning(image, entry.manifest)
    if warning:
        raise SelftestError(f"the default model does not suit the bundled sample: {warning}")
    result = run_job(restore_job(image, entry, {}, token=CancelToken()))
    report.model_id, report.device = entry.id, result.device
    step(f"ran {entry.id} on {result.device} in {result.seconds:.2f} s")
    from .kernel_pipeline import native_available, pipeline_files

    if pipeline_files(entry.manifest.provenance) is not None and not result.device.startswith("CUDA"):
        step("kernel stage: " + ("fused native code" if native_available()
                                 else "the whole ONNX graph (the native stage is not built: 2-3x slower)"))

    from .noise_estimate import jpeg_network_available

    step("JPEG noise levels: " + ("read by the network (resources/estimators)" if jpeg_network_available()
                                  else "by simulation only (the network's file is missing)"))

    expected = (image.height * entry.manifest.scale, image.width * entry.manifest.scale, 3)
    with tempfile.TemporaryDirectory(prefix="restoration-studio-selftest-") as folder:
        target = write_image(Path(folder) / "selftest.exr", result.image)
        back = read_image(target)
        step(f"wrote and read back {target.name} ({target.stat().st_size} bytes)")
    pixels = np.asarray(back.pixels)
    report.shape = tuple(pixels.shape)
    if pixels.shape != expected:
        raise SelftestError(f"the result has shape {pixels.shape}, expected {expected}")
    if not np.isfinite(pixels).all():
        raise SelftestError(f"the result holds {int((~np.isfinite(pixels)).sum())} non-finite values")
    written = np.asarray(result.image.pixels, dtype=np.float32)
    # EXR output is half float for a half-float input: allow half precision, nothing more.
    if not np.allclose(pixels, written, rtol=2e-3, atol=1e-4):
        raise SelftestError("the file read back differs from the image written")
    if float(pixels.max()) <= float(pixels.min()):
        raise SelftestError("the result is a flat image")

    if reference.is_file():
        ref = np.asarray(read_image(reference).pixels)
        before, after = relmse(np.asarray(image.pixels), ref), relmse(pixels, ref)
        report.relmse = (before, after)
        step(f"relMSE to the reference: noisy {before:.5f} -> restored {after:.5f}")
        if not after < before:
            raise SelftestError(f"the result is not closer to the reference than the noisy input "
                                f"(relMSE {after:.5f} vs {before:.5f})")
    else:
        step("no reference image: skipped the improvement check")
    report.seconds = time.perf_counter() - started
    return report
