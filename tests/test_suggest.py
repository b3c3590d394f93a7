"""One rule picks the suggested model (engine/models/suggest.py): the command line, the window, the batch queue
and the self-test ask the same function, so they agree for the same file (issue 41, part 2)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main as cli
from engine.image import ImageMeta, make_image
from engine.imageio import read_image, write_image
from engine.models.registry import ModelRegistry
from engine.models.suggest import rank, suggest_model, suitability_warning, tasks_for

HDR = ImageMeta(format="exr", bit_depth=32, sample_type="float", hdr=True, color_space="linear")


def render(path: Path, buffers: bool, size: tuple[int, int] = (40, 56)) -> Path:
    rng = np.random.default_rng(7)
    radiance = (rng.random((*size, 3)) * 4).astype(np.float32)
    layers = {"albedo": rng.random((*size, 3)), "normal": rng.random((*size, 3)) * 2 - 1} if buffers else None
    return write_image(path, make_image(radiance, None, HDR, layers))


@pytest.fixture(scope="module")
def bundled():
    return ModelRegistry(include_classical=False)


@pytest.fixture(scope="module")
def everything():
    return ModelRegistry()


def test_a_render_without_buffers_gets_the_colour_only_model(tmp_path, bundled):
    image = read_image(render(tmp_path / "plain.exr", buffers=False))
    suggestion = suggest_model(image, entries=bundled.models())
    assert suggestion.entry.id == "render-kprcan-color" and suggestion.warning is None
    assert "without albedo/normal" in suggestion.reason and "colour only" in suggestion.reason
    # The AOV model ranks first by id but needs buffers this file does not have: the rule skips it.
    assert bundled.ranked("render-denoise")[0].id == "render-kprcan-aov"
    assert suitability_warning(image, bundled.get("render-kprcan-aov").manifest) is not None


def test_a_render_with_buffers_gets_the_model_that_uses_them(tmp_path, bundled, everything):
    image = read_image(render(tmp_path / "aov.exr", buffers=True))
    for registry in (bundled, everything):  # built-in peers (OIDN, the blend) never displace our network
        suggestion = suggest_model(image, entries=registry.models())
        assert suggestion.entry.id == "render-kprcan-aov" and suggestion.warning is None
        assert "albedo + normal" in suggestion.reason


def test_tasks_follow_the_image_and_an_explicit_task_wins(everything):
    photo = make_image(np.full((16, 16, 3), 0.5, np.float32))
    gray = make_image(np.full((16, 16, 1), 0.5, np.float32), meta=ImageMeta(gray=True))
    assert tasks_for(photo) == ["photo-denoise"] and tasks_for(gray) == ["document", "photo-denoise"]
    assert suggest_model(photo, entries=everything.models()).entry.manifest.task == "photo-denoise"
    assert suggest_model(gray, entries=everything.models()).entry.manifest.task == "document"
    upscaler = suggest_model(photo, "super-resolution", entries=everything.models()).entry
    assert upscaler.manifest.task == "super-resolution"
    # Bundled networks first, then the user's, then built-in engines; among equals by id.
    ranked = rank(everything.models(), "photo-denoise")
    sources = [entry.source for entry in ranked]
    assert sources == sorted(sources, key=["bundled", "user", "builtin", "blend"].index)


def test_nothing_suits_gives_the_first_ranked_model_with_its_warning(tmp_path, bundled):
    only_aov = [bundled.get("render-kprcan-aov")]
    suggestion = suggest_model(read_image(render(tmp_path / "plain.exr", buffers=False)), entries=only_aov)
    assert suggestion.entry.id == "render-kprcan-aov" and "albedo and normal" in suggestion.warning
    assert suggest_model(make_image(np.zeros((8, 8, 3), np.float32)), entries=only_aov) is None


def test_no_image_needs_a_task(bundled):
    assert suggest_model(None, "photo-denoise", entries=bundled.models()).entry.id == "photo-denoise-color"
    with pytest.raises(ValueError):
        suggest_model(None, entries=bundled.models())


def test_restore_without_model_on_a_render_without_buffers(tmp_path, capsys):
    """The bug of issue 41: the command line picked the AOV model and exited 1 on a colour-only EXR."""
    source = render(tmp_path / "plain.exr", buffers=False)
    target = tmp_path / "out.exr"
    assert cli(["restore", str(source), "-o", str(target), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "model render-kprcan-color" in err and "without albedo/normal" in err
    restored = read_image(target)
    assert restored.pixels.shape == (40, 56, 3) and np.isfinite(restored.pixels).all()


def cycles_render(path: Path, samples: int) -> Path:
    """A render with albedo and normal whose header says, as Blender's Cycles writes it, how many samples it has."""
    rng = np.random.default_rng(3)
    size = (40, 56)
    meta = ImageMeta(format="exr", bit_depth=32, sample_type="float", hdr=True, color_space="linear",
                     extra={"exr_header": {"Software": "Blender 5.0.1", "cycles.ViewLayer.samples": str(samples)}})
    layers = {"albedo": rng.random((*size, 3)), "normal": rng.random((*size, 3)) * 2 - 1}
    return write_image(path, make_image((rng.random((*size, 3)) * 4).astype(np.float32), None, meta, layers))


def test_a_render_with_many_samples_does_not_go_to_a_model_that_harmed_such_renders(tmp_path, bundled, everything):
    """Do no harm: the foreign set (in the manifests' scores) shows our networks below the noisy input on some Blender
    scenes at 16 and 64 spp; a render whose header says it has that many samples is not suggested to them."""
    from engine.models.suggest import harm_at_samples, render_samples

    low = read_image(cycles_render(tmp_path / "low.exr", 8))
    high = read_image(cycles_render(tmp_path / "high.exr", 64))
    assert render_samples(low) == 8 and render_samples(high) == 64
    ours = bundled.get("render-kprcan-aov").manifest
    assert ours.scores["foreign_spp64_worst_dpsnr"] < 0 <= ours.scores["foreign_spp4_worst_dpsnr"]
    assert suitability_warning(low, ours) is None  # 8 spp is judged by the 4-spp figures: no harm there
    warning = suitability_warning(high, ours)
    assert warning.startswith("This render has 64 samples per pixel") and "OIDN + AOVs" in warning
    assert f"{-ours.scores['foreign_spp64_worst_dpsnr']:.1f} dB" in warning
    assert harm_at_samples(ours, 16) is not None and harm_at_samples(ours, 1) is None
    assert suggest_model(low, entries=everything.models()).entry.id == "render-kprcan-aov"
    if "oidn-aov" in everything:  # Intel's denoiser did no harm there: it is suggested
        suggestion = suggest_model(high, entries=everything.models())
        assert suggestion.entry.id == "oidn-aov" and suggestion.warning is None
    # without it (pyoidn missing) nothing suits: the first ranked model, with the warning that says why the result
    # may be poor
    ours_only = [e for e in everything.models() if e.source in ("bundled", "user")]
    suggestion = suggest_model(high, entries=ours_only)
    assert suggestion.entry.id == "render-kprcan-aov" and suggestion.warning == warning
    # the blend with OIDN carries its own foreign-set figures: harm at 64 spp (-3.94 dB), none at 16
    from engine.models.hybrid import hybrid_manifest
    assert harm_at_samples(hybrid_manifest(), 64) is not None and harm_at_samples(hybrid_manifest(), 16) is None
    # a model without foreign-set figures (the user's own, a peer) is never judged by them
    assert suitability_warning(high, dataclasses.replace(ours, scores={})) is None
