"""Issue 42: the demodulated kernel-prediction denoiser (KPCN's diffuse path for a Combined + Denoising Data
render), its growth from the shipped kind of model, its ONNX graph, the Noise2Noise loss it trains with, and the
Cycles validation pairs it is chosen on."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.training.archs import build_model  # noqa: E402
from engine.training.archs.kpcn.growth import grow_model, grows_into  # noqa: E402
from engine.training.archs.kpcn.model import DEMOD_EPS  # noqa: E402

TINY = {"features": 4, "blocks": 1, "aux_inputs": ["albedo", "normal"]}


def _textured_scene(size=32, seed=0, flat_light=False):
    """A random albedo texture (1 px detail) under smooth light, plus a normal buffer: colour (log1p), albedo,
    normal. The colour is exactly (albedo + DEMOD_EPS) x light, so its demodulated form is the light."""
    g = torch.Generator().manual_seed(seed)
    albedo = torch.rand(1, 3, size, size, generator=g) * 0.9
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    light = (0.6 + (0 if flat_light else 0.3) * torch.sin(xx / 9.0) * torch.cos(yy / 11.0))
    light = light[None, None].expand(1, 3, -1, -1)
    normal = torch.zeros(1, 3, size, size)
    normal[:, 2] = 1.0
    return torch.log1p((albedo + DEMOD_EPS) * light), albedo, normal


def _random_kernels(model, seed=1):
    """Wide, random per-pixel kernels (a trained model's kernels are anything but the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=g) * 0.3)


def _set_share(model, logit):
    with torch.no_grad():
        model.mix.weight.zero_()
        model.mix.bias.fill_(logit)


@pytest.mark.parametrize("refine", [False, True])
def test_demodulated_kernels_keep_texture_by_construction(refine):
    """Whatever the kernels, under even light the demodulated result is the textured image itself (the kernels
    average light, and each pixel's own albedo multiplies it back), where the colour's own kernels smear the
    texture; under smoothly varying light it stays several times closer than they do."""
    torch.manual_seed(0)
    model = build_model("kprcan", dict(TINY, demodulate=True, refine=refine, guide=["albedo", "color"])).eval()
    _random_kernels(model)

    def error(share_logit, flat_light):
        color, albedo, normal = _textured_scene(flat_light=flat_light)
        _set_share(model, share_logit)
        with torch.no_grad():
            out = torch.expm1(model(color, albedo, normal))
        linear = torch.expm1(color)
        return float(((out - linear).abs() / linear).mean())

    assert error(5.0, flat_light=True) < 1e-4  # sigmoid(50): all demodulated
    assert error(-5.0, flat_light=True) > 0.2  # all colour: the kernels average neighbours of other albedos
    assert error(-5.0, flat_light=False) > 4 * error(5.0, flat_light=False)


def test_the_share_blends_the_two_results_per_pixel_in_linear_radiance():
    torch.manual_seed(0)
    model = build_model("kprcan", dict(TINY, demodulate=True)).eval()
    _random_kernels(model)
    color, albedo, normal = _textured_scene(seed=3)
    outputs = {}
    for logit in (-5.0, 0.0, 5.0):
        _set_share(model, logit)
        with torch.no_grad():
            outputs[logit] = torch.expm1(model(color, albedo, normal))
    torch.testing.assert_close(outputs[0.0], 0.5 * (outputs[-5.0] + outputs[5.0]), rtol=1e-4, atol=1e-5)
    # a flat image stays flat (normalised kernels, either way)
    flat = torch.full((1, 3, 32, 32), 0.7)
    with torch.no_grad():
        torch.testing.assert_close(model(flat, torch.full_like(flat, 0.4), normal), flat, atol=1e-5, rtol=0)


def test_demodulation_needs_albedo_and_kernels_and_a_real_switch():
    with pytest.raises(ValueError, match="albedo"):
        build_model("kprcan", dict(TINY, aux_inputs=["normal"], demodulate=True))
    with pytest.raises(ValueError, match="albedo"):
        build_model("kp-direct", dict(TINY, demodulate=True))
    with pytest.raises(ValueError, match="true or false"):
        build_model("kprcan", dict(TINY, demodulate="mix"))


def test_a_shipped_style_model_grows_demodulation_keeping_every_weight(tmp_path):
    """render-kprcan-aov's configuration (guides, refinement) grows into the demodulated model: every weight the
    same, the share one half everywhere; dropping demodulation is refused."""
    torch.manual_seed(0)
    old_config = dict(TINY, guide=["albedo", "normal", "color"], refine=True, refine_features=4,
                      demodulate=False)
    old = build_model("kprcan", old_config)
    _random_kernels(old)
    new_config = dict(old_config, demodulate=True)
    weights = {"arch": "kprcan", "config": old_config, "state_dict": old.state_dict()}
    assert grows_into(new_config, weights, "kprcan")
    model = build_model("kprcan", new_config)
    grow_model(model, old.state_dict(), old_config)
    for key, value in old.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)
    color, albedo, normal = _textured_scene()
    share = model.demodulated_share(color, albedo, normal)
    assert torch.allclose(share, torch.full_like(share, 0.5))
    back = {"arch": "kprcan", "config": new_config, "state_dict": model.state_dict()}
    assert not grows_into(old_config, back, "kprcan")
    with pytest.raises(ValueError, match="demodulation"):
        grow_model(build_model("kprcan", old_config), model.state_dict(), new_config)


def test_the_demodulated_model_exports_an_onnx_graph_that_computes_the_same(tmp_path):
    """Inference needs no torch: the demodulation, the two filtered signals, the refinement and the blend are in
    the graph, whose outputs ONNX Runtime computes as PyTorch does."""
    ort = pytest.importorskip("onnxruntime")
    from engine.training.export import build_manifest, export_model

    torch.manual_seed(0)
    config = dict(TINY, guide=["albedo", "normal", "color"], refine=True, refine_features=4, demodulate=True)
    model = build_model("kprcan", config).eval()
    _random_kernels(model, seed=4)
    with torch.no_grad():
        model.mix.weight.mul_(0.3)
    manifest = build_manifest(model, model_id="tiny-demod", task="render-denoise", value_transform="log1p")
    export_model(model, manifest, tmp_path, arch="kprcan", arch_config=config)
    color, albedo, normal = _textured_scene(size=40, seed=5)
    color = torch.log1p(torch.expm1(color) * torch.distributions.Gamma(2.0, 2.0).sample(color.shape))  # noisy
    session = ort.InferenceSession(str(tmp_path / "tiny-demod.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feeds = dict(zip(names, [t.numpy() for t in (color, albedo, normal)], strict=True))
    (onnx_out,) = session.run(None, feeds)
    with torch.no_grad():
        expected = model(color, albedo, normal).numpy()
        share = model.demodulated_share(color, albedo, normal)
    assert 0.2 < float(share.mean()) < 0.8 and float(share.std()) > 0.05  # both paths matter, per pixel
    np.testing.assert_allclose(onnx_out, expected, atol=2e-4, rtol=1e-4)


def test_the_noise2noise_loss_learns_the_mean_of_noisy_targets():
    """Lehtinen et al. 2018: against independent noisy renders of the same pixel, the relative MSE whose
    normaliser is the detached prediction (loss "relmse") is minimised by the targets' mean, the clean value;
    normalised by the noisy target instead, or as L1 in log space, it learns something darker."""
    from engine.training.losses import restoration_loss

    clean = 0.8
    # Monte Carlo pixel estimates: heavy-tailed (most samples miss a bright path), mean = clean
    samples = torch.distributions.Gamma(0.5, 0.5 / clean).sample((4000, 1, 1, 1))
    assert abs(float(samples.mean()) - clean) < 0.05
    targets = torch.log1p(samples)

    def fitted(kind, denominator=None):
        value = torch.tensor([0.5], requires_grad=True)  # log1p space, as the models predict
        optimiser = torch.optim.Adam([value], lr=0.02)
        for _ in range(600):
            optimiser.zero_grad()
            pred = value.expand_as(targets)
            if denominator is None:
                loss = restoration_loss(pred, targets, None, kind)
            else:
                from engine.training.losses import relative_mse
                loss = relative_mse(pred, targets, None, denominator)
            loss.backward()
            optimiser.step()
        return float(torch.expm1(value.detach()))

    n2n = fitted("relmse")
    assert abs(n2n - float(samples.mean())) < 0.03
    assert fitted(None, "reference") < 0.5 * clean  # a noisy normaliser favours underestimates
    assert fitted("l1") < 0.8 * clean  # the median of log-noisy targets


def test_cycles_validation_pairs_input_with_the_clean_reference(tmp_path):
    """The Cycles generator's validation layout: input/ + reference/ pairs each noisy input with the scene's
    clean render (not with its Noise2Noise target), as the trainer reads it."""
    from engine.render_data.cycles_backend import write_reference_links
    from engine.training.datasets import match_pairs

    out = tmp_path / "val"
    for folder in ("input", "target", "clean"):
        (out / folder).mkdir(parents=True)
    name = "scene_040000"
    for n in (4, 16):
        (out / "input" / f"{name}_spp{n:04d}_color.exr").write_bytes(b"x")
    (out / "clean" / f"{name}_ref.exr").write_bytes(b"clean")
    (out / "target" / f"{name}_target.exr").write_bytes(b"noisy")
    write_reference_links(out, name, [4, 16])
    write_reference_links(out, name, [4, 16])  # again: kept
    pairs = match_pairs(out / "input", out / "reference")
    assert len(pairs) == 2
    assert all(target.read_bytes() == b"clean" for _, target in pairs)


def test_a_recipe_data_step_renders_with_the_bpy_python_it_is_given(tmp_path, monkeypatch):
    from engine.errors import EngineError
    from engine.training.recipes import DataSection, ModelSection, Recipe, run_prepare

    marker = tmp_path / "ran.txt"
    recipe = Recipe(ModelSection(id="x", task="render-denoise", arch="kprcan"),
                    DataSection(prepare=(f"bpy-python -c \"open(r'{marker}', 'w').write('ok')\"",)))
    monkeypatch.delenv("BPY_PYTHON", raising=False)
    with pytest.raises(EngineError, match="BPY_PYTHON"):
        run_prepare(recipe, echo=lambda _: None)
    monkeypatch.setenv("BPY_PYTHON", sys.executable)
    run_prepare(recipe, echo=lambda _: None)
    assert marker.read_text() == "ok" and os.environ["BPY_PYTHON"] == sys.executable


def test_the_share_trains_alone_and_moves_towards_the_better_result():
    """train_only = "share": every weight but the share's frozen; on a textured scene whose clean colour the
    demodulated path keeps, a few steps raise the demodulated share. A model that does not demodulate has no
    share to train."""
    from engine.errors import EngineError
    from engine.training.losses import restoration_loss
    from engine.training.trainer import train_only

    torch.manual_seed(0)
    model = build_model("kprcan", dict(TINY, demodulate=True, guide=["albedo"]))
    _random_kernels(model)
    _set_share(model, 0.0)
    train_only(model, "share", "kprcan")
    assert {name for name, p in model.named_parameters() if p.requires_grad} == {"mix.weight", "mix.bias"}
    clean, albedo, normal = _textured_scene(flat_light=True)
    noisy = torch.log1p(torch.expm1(clean) * torch.distributions.Gamma(4.0, 4.0).sample(clean.shape))
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01)
    before = float(model.demodulated_share(noisy, albedo, normal).mean())
    for _ in range(30):
        optimiser.zero_grad()
        target = torch.log1p(torch.expm1(clean) * torch.distributions.Gamma(4.0, 4.0).sample(clean.shape))
        restoration_loss(model(noisy, albedo, normal), target, None, "relmse").backward()
        optimiser.step()
    assert float(model.demodulated_share(noisy, albedo, normal).mean()) > before + 0.2
    with pytest.raises(EngineError, match="does not demodulate"):
        train_only(build_model("kprcan", TINY), "share", "kprcan")
