"""Kernel-predicting render denoisers: kernels are normalised, the inspector's dense kernel is the filter the
model applies, export keeps the kernel application inside the ONNX graph, and the inspector runs on it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.image import ImageMeta, make_image  # noqa: E402
from engine.kernel_inspector import dense_kernel, has_kernels, inspect_kernel  # noqa: E402
from engine.training.archs import ARCHITECTURES, build_model  # noqa: E402
from engine.training.archs.kpcn import KernelPredictionDenoiser  # noqa: E402

TINY = {"features": 4, "blocks": 1}


def _inputs(roles, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    tensors = []
    for role in roles:
        low = -1.0 if role == "normal" else 0.0
        tensors.append(torch.rand(1, 1 if role == "depth" else 3, size, size, generator=g) * (1 - low) + low)
    return tensors


@pytest.mark.parametrize("arch", ["kpcn", "kprcn", "kprcan", "kp-direct"])
def test_registered_tiny_models_run_and_train(arch):
    model = build_model(arch, ARCHITECTURES[arch].tiny)
    inputs = _inputs(model.input_roles)
    out = model(*inputs)
    assert out.shape == inputs[0].shape
    out.abs().mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.overlap % 8 == 0 and model.overlap >= model.receptive_radius


@pytest.mark.parametrize(("aux", "guide"), [
    ((), ()), (("albedo", "normal"), ()), (("albedo",), ()), (("albedo", "normal"), ("albedo", "normal")),
    (("albedo", "normal"), ("albedo", "normal", "color"))])
def test_kernel_prediction_keeps_a_flat_image_flat(aux, guide):
    model = KernelPredictionDenoiser(aux_inputs=aux, guide=guide, **TINY).eval()
    color = torch.full((1, 3, 32, 32), 0.7)
    rest = [torch.full((1, 3, 32, 32), 0.4) if n == "albedo" else torch.zeros(1, 3, 32, 32) for n in aux]
    with torch.no_grad():
        out = model(color, *rest)
    # A normalised kernel averages equal values to the same value.
    assert torch.allclose(out, color, atol=1e-5)


def test_weights_sum_to_one_and_dense_kernel_reproduces_the_output():
    torch.manual_seed(0)
    model = KernelPredictionDenoiser(aux_inputs=(), **TINY).eval()
    (color,) = _inputs(model.input_roles, seed=3)
    with torch.no_grad():
        weights = model.kernel_weights(color)
        out = model(color)
    assert torch.allclose(weights.sum(dim=1), torch.ones(1, 32, 32), atol=1e-5)
    y, x = 13, 17
    kernel = dense_kernel(weights[0, :, y, x].numpy(), model.layout, model.prefilters)
    assert kernel.shape == (23, 23)  # dilation 4 x radius 2 + box radius 3 each side
    r = kernel.shape[0] // 2
    padded = np.pad(color[0].numpy(), ((0, 0), (r, r), (r, r)), mode="edge")
    window = padded[:, y : y + 2 * r + 1, x : x + 2 * r + 1]
    expected = (window * kernel[None]).sum(axis=(1, 2))
    np.testing.assert_allclose(out[0, :, y, x].numpy(), expected, atol=1e-5)


def test_dense_single_scale_kernel_and_bad_configs():
    model = KernelPredictionDenoiser(aux_inputs=("albedo",), kernel=5, **TINY)
    assert len(model.layout) == 25 and model.prefilters == [1]
    with pytest.raises(ValueError):
        KernelPredictionDenoiser(kernel=4)
    with pytest.raises(ValueError):
        KernelPredictionDenoiser(block="dense")
    with pytest.raises(ValueError):
        KernelPredictionDenoiser(aux_inputs=("motion",))


def _render_image(size=40, seed=0):
    rng = np.random.default_rng(seed)
    albedo = np.where(np.arange(size)[None, :, None] < size // 2, 0.8, 0.2) * np.ones((size, size, 3))
    normal = np.zeros((size, size, 3))
    normal[..., 2] = 1.0
    pixels = albedo * rng.gamma(2.0, 0.5, (size, size, 3))
    meta = ImageMeta(format="exr", bit_depth=32, sample_type="float", hdr=True, color_space="linear")
    return make_image(pixels.astype(np.float32), None, meta, {"albedo": albedo, "normal": normal})


@pytest.mark.slow
@pytest.mark.parametrize(("guide", "context", "centre", "refine"), [
    ((), 0, "pixel", False), (("albedo", "normal", "color"), 0, "pixel", False), (("albedo",), 1, "pixel", False),
    (("albedo", "color"), 0, "box", False), (("albedo", "normal", "color"), 0, "pixel", True)])  # with refine_features
def test_export_restore_and_inspect(tmp_path, guide, context, centre, refine):
    """The generic export writes the companion kernel model too (the architecture's spec), and the inspector
    runs on it."""
    pytest.importorskip("onnxruntime")
    from engine.jobs import run_job
    from engine.models.manifest import load_manifest
    from engine.models.registry import ModelEntry
    from engine.restore import restore_job
    from engine.training.export import build_manifest, export_model

    torch.manual_seed(0)
    config = dict(TINY, guide=list(guide), context_blocks=context, color_guide_centre=centre, refine=refine,
                  refine_features=4 * refine)
    model = build_model("kprcan", config).eval()
    if centre == "box":  # strong guides, so that the graph's centre is checked against PyTorch's
        with torch.no_grad():
            model.tail.bias[len(model.layout) * 4 :] = 0.5
    if context:  # a trained branch: its output is no longer zero (export checks the graph against PyTorch)
        torch.nn.init.normal_(model.context_out.weight, std=0.3)
    if refine:  # a trained refinement: strengths that matter, per-pixel logits
        with torch.no_grad():
            model.tail.weight[-model._refine_rows() * model.unshuffle**2 :].normal_(std=0.1)
            model.tail.bias[-3 * model.unshuffle**2 :] = 0.4
            torch.nn.init.normal_(model.refine_net[2].weight, std=0.3)
    manifest = build_manifest(model, model_id="tiny-kp", task="render-denoise", value_transform="log1p")
    export_model(model, manifest, tmp_path, arch="kprcan", arch_config=config)
    manifest = load_manifest(tmp_path / "tiny-kp.json")
    assert has_kernels(manifest) and manifest.tile.alignment == (8 if context else 2)
    assert ("kernel_refine_taps" in manifest.provenance) == refine
    import onnx

    operators = {node.op_type for node in onnx.load(str(tmp_path / "tiny-kp.onnx")).graph.node}
    assert "ConvTranspose" in operators and "DepthToSpace" not in operators  # kpcn.shuffled_tail
    assert "ReduceMax" not in operators  # kpcn.softmax_channels: the centre tap is the reference
    entry = ModelEntry(manifest, tmp_path / "tiny-kp.onnx", "user")
    image = _render_image()
    result = run_job(restore_job(image, entry, device="cpu"))
    assert result.image.pixels.shape == image.pixels.shape and np.isfinite(result.image.pixels).all()
    inspection = inspect_kernel(entry, image, x=5, y=30)
    assert inspection.kernel.shape == ((27, 27) if refine else (23, 23))  # a refinement reaches 2 px farther
    assert abs(float(inspection.kernel.sum()) - 1.0) < 1e-4 and inspection.passes == (2 if refine else 1)
    assert inspection.kernel_without_aovs is not None and 0.0 <= inspection.aov_influence <= 1.0
    with pytest.raises(Exception, match="outside"):
        inspect_kernel(entry, image, x=99, y=0)


def test_the_graphs_transposed_convolution_is_the_pixel_shuffled_tail(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from engine.training.archs.kpcn.kernels import shuffled_tail

    torch.manual_seed(0)
    tail = torch.nn.Conv2d(6, 5 * 4, 1)
    with torch.no_grad():
        tail.bias.normal_()  # a different bias for every output channel and sub-pixel

    class Tail(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.tail = tail

        def forward(self, x):
            return shuffled_tail(self.tail, x, 2)

    x = torch.randn(1, 6, 7, 9)
    path = tmp_path / "tail.onnx"
    with torch.no_grad():
        torch.onnx.export(Tail(), (x,), str(path), input_names=["x"], dynamic_axes={"x": {2: "h", 3: "w"}},
                          dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in ((1, 6, 7, 9), (1, 6, 12, 5)):
        x = torch.randn(*shape)
        with torch.no_grad():
            expected = torch.nn.functional.pixel_shuffle(tail(x), 2).numpy()
        np.testing.assert_allclose(session.run(None, {"x": x.numpy()})[0], expected, rtol=1e-5, atol=1e-5)


def test_the_graphs_softmax_is_softmax_without_a_reduce_max(tmp_path):
    """The ONNX graph's softmax (kpcn.softmax_channels with a reference tap) subtracts the centre tap's logit, not
    the maximum, and sums with a 1x1 convolution: the same weights as torch.softmax, also for logits far from 0
    (where exp alone would overflow or underflow), and a kernel whose taps outweigh the centre by more than e^80
    still gives finite weights that sum to 1."""
    ort = pytest.importorskip("onnxruntime")
    from engine.training.archs.kpcn.kernels import SOFTMAX_CAP, softmax_channels

    class Softmax(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("ones", torch.ones(1, 25, 1, 1))

        def forward(self, x):
            return softmax_channels(x, 12, self.ones)

    path = tmp_path / "softmax.onnx"
    with torch.no_grad():
        torch.onnx.export(Softmax(), (torch.randn(1, 25, 4, 4),), str(path), input_names=["x"],
                          dynamic_axes={"x": {2: "h", 3: "w"}}, dynamo=False)
    import onnx

    assert "ReduceMax" not in {node.op_type for node in onnx.load(str(path)).graph.node}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    torch.manual_seed(0)
    for offset in (0.0, 500.0, -500.0):
        x = torch.randn(1, 25, 6, 7) * 10 + offset
        np.testing.assert_allclose(session.run(None, {"x": x.numpy()})[0], torch.softmax(x, dim=1).numpy(),
                                   rtol=1e-5, atol=1e-6)
    x = torch.zeros(1, 25, 3, 3)
    x[:, 12] = -2 * SOFTMAX_CAP  # every other tap e^160 times the centre's weight
    weights = session.run(None, {"x": x.numpy()})[0]
    assert np.isfinite(weights).all() and np.allclose(weights.sum(axis=1), 1.0)
    np.testing.assert_allclose(weights, torch.softmax(x, dim=1).numpy(), atol=1e-6)


def test_a_crop_of_the_model_inputs_is_the_crop_of_the_whole_images():
    """model_inputs(box=...), which the kernel inspector feeds its crops with, prepares a crop with the image's
    own exposure scale and depth range: the same values as the whole image's inputs there, bad samples included
    (a negative or NaN sample is 0, as the restore job makes it)."""
    from engine.models.manifest import load_manifest
    from engine.paths import resources_dir
    from engine.restore import model_inputs

    manifest = load_manifest(resources_dir() / "models" / "render-kprcan-aov.json")
    base = _render_image()
    pixels = base.pixels.copy()
    pixels[3, 4] = [-1.0, np.nan, np.inf]
    depth = np.linspace(1.0, 9.0, 40 * 40, dtype=np.float32).reshape(40, 40, 1)
    image = make_image(pixels, None, base.meta, {**base.layers, "depth": depth})
    manifest_with_depth = dataclasses.replace(manifest, inputs=(*manifest.inputs, "depth"))
    whole, report = model_inputs(image, manifest_with_depth, 2.5)
    crop, crop_report = model_inputs(image, manifest_with_depth, 2.5, (2, 20, 3, 31))
    assert set(crop) == set(whole) == {"color", "albedo", "normal", "depth"}
    for name in whole:
        np.testing.assert_array_equal(crop[name], whole[name][2:20, 3:31])
    assert report == crop_report and report["nonfinite_count"] == 2


def test_the_inspector_composes_a_refinement_with_the_first_pass():
    """composed_kernel: each refinement tap's weight times its neighbour's first-pass kernel, at its offset;
    a neighbour beyond the edge is the edge pixel (as the model pads), and normalised weights stay normalised."""
    from engine.kernel_inspector import composed_kernel
    from engine.training.archs.kpcn.kernels import shift_taps

    layout = [(0, dy, dx) for dy, dx in shift_taps(3, 1)]
    refine_taps = shift_taps(5, 1)
    rng = np.random.default_rng(0)
    first = rng.random((9, 6, 7))
    first /= first.sum(axis=0)
    weights = np.concatenate([first, np.zeros((25, 6, 7))])
    centre = refine_taps.index((0, 0))
    weights[9 + centre] = 1.0  # the identity refinement: the first pass's kernel, 2 px of zeros around it
    out = composed_kernel(weights, layout, [1], refine_taps, 3, 3)
    assert out.shape == (7, 7)
    assert np.allclose(out[2:5, 2:5], dense_kernel(first[:, 3, 3], layout, [1])) and np.isclose(out.sum(), 1)
    weights[9:] = 0.0
    weights[9 + refine_taps.index((0, 1))] = 1.0  # all weight on the right neighbour: its kernel, one px right
    out = composed_kernel(weights, layout, [1], refine_taps, 3, 3)
    assert np.allclose(out[2:5, 3:6], dense_kernel(first[:, 3, 4], layout, [1]))
    edge = composed_kernel(weights, layout, [1], refine_taps, 3, 6)  # the right neighbour of the last column
    assert np.allclose(edge[2:5, 2:5], dense_kernel(first[:, 3, 6], layout, [1]))
    mixed = rng.random((25, 6, 7))
    weights[9:] = mixed / mixed.sum(axis=0)
    assert np.isclose(composed_kernel(weights, layout, [1], refine_taps, 0, 0).sum(), 1.0)


def test_aov_augmentation_rotates_normals_and_permutes_colour_alike():
    from engine.training.datasets import augment_aovs

    rng = np.random.default_rng(3)
    x = rng.random((8, 8, 3)).astype(np.float32)
    y = x * 0.5
    normal = rng.standard_normal((8, 8, 3)).astype(np.float32)
    normal /= np.linalg.norm(normal, axis=2, keepdims=True)
    albedo = rng.random((8, 8, 3)).astype(np.float32)
    seen_orders = set()
    for _ in range(12):
        x2, y2, aovs = augment_aovs(x, y, {"normal": normal, "albedo": albedo}, rng)
        order = tuple(next(k for k in range(3) if np.array_equal(x2[..., c], x[..., k])) for c in range(3))
        seen_orders.add(order)
        # the same permutation for colour, target and albedo
        for c, k in enumerate(order):
            assert np.array_equal(x2[..., c], x[..., k])
            assert np.array_equal(y2[..., c], y[..., k])
            assert np.array_equal(aovs["albedo"][..., c], albedo[..., k])
        # normals stay unit vectors and keep their angles to each other (a rotation), but move
        rotated = aovs["normal"]
        assert np.allclose(np.linalg.norm(rotated, axis=2), 1.0, atol=1e-5)
        assert np.allclose((rotated[0, 0] * rotated[3, 5]).sum(), (normal[0, 0] * normal[3, 5]).sum(), atol=1e-5)
        assert not np.allclose(rotated, normal)
    assert len(seen_orders) > 1


def test_paired_training_normalises_depth_by_the_whole_image(tmp_path):
    from engine.imageio import write_image
    from engine.training.datasets import PairedImageDataset

    (tmp_path / "input").mkdir()
    (tmp_path / "target").mkdir()
    color = np.full((32, 32, 3), 0.5, np.float32)
    depth = np.tile(np.linspace(1.0, 10.0, 32, dtype=np.float32)[None, :, None], (32, 1, 3))
    meta = ImageMeta(hdr=True, format="exr", color_space="linear")
    write_image(tmp_path / "input" / "a_color.exr", make_image(color, meta=meta))
    write_image(tmp_path / "input" / "a_depth.exr", make_image(depth, meta=meta))
    write_image(tmp_path / "target" / "a_ref.exr", make_image(color, meta=meta))
    dataset = PairedImageDataset(
        [(tmp_path / "input" / "a_color.exr", tmp_path / "target" / "a_ref.exr")],
        roles=("color", "depth"), patch_size=8, transform="log1p",
    )
    rng = np.random.default_rng(0)
    for _ in range(5):
        sample = dataset.sample(rng)
        # a crop's depth is divided by the image's maximum (10), as inference does, not by the crop's own:
        # then 10 x value is one of the image's depths 1 + 9 k / 31
        grid = (sample.inputs["depth"] * 10.0 - 1.0) * 31.0 / 9.0
        assert np.allclose(grid, np.round(grid), atol=0.1)
        assert sample.inputs["depth"].min() >= 0.09


def _build_recipe_from_checkpoint(tmp_path, old_config: dict, state: dict, new_config: dict):
    """What ``train --init`` builds: a render recipe with ``new_config`` started from weights of ``old_config``
    (the trainer's build_for_recipe); returns (model, config used)."""
    import torch

    from engine.training.recipes import recipe_from_dict
    from engine.training.trainer import build_for_recipe

    init = tmp_path / "init.pt"
    torch.save({"arch": "kprcan", "config": old_config, "state_dict": state}, init)
    recipe = recipe_from_dict({
        "model": {"id": "t", "task": "render-denoise", "arch": "kprcan", "value_transform": "log1p",
                  "config": new_config},
        "data": {"kind": "paired"}, "degradation": {"kind": "none"},
    }, source="t")
    model, _, config, _ = build_for_recipe(recipe, str(init))
    return model, config


def test_colour_only_model_grows_into_an_aov_model_that_starts_where_it_was(tmp_path):
    """Warm start: the AOV model's new input weights begin at zero, so it first reproduces the colour model."""
    import torch

    from engine.training.archs.kpcn import grow_model

    torch.manual_seed(0)
    colour = build_model("kprcan", {"aux_inputs": [], "features": 4, "blocks": 1})
    aov = build_model("kprcan", {"aux_inputs": ["albedo", "normal"], "features": 4, "blocks": 1})
    grow_model(aov, colour.state_dict(), {"aux_inputs": []})
    colour.eval()
    aov.eval()
    x, albedo, normal = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(aov(x, albedo, normal), colour(x), atol=1e-6)
        # the AOVs are really wired in: once their weights move, the output depends on them
        aov.head.weight[:, 12:] += 0.1
        assert not torch.allclose(aov(x, albedo, normal), colour(x), atol=1e-4)
    with pytest.raises(ValueError):
        grow_model(colour, aov.state_dict(), {"aux_inputs": ["albedo", "normal"]})


def test_training_an_aov_recipe_from_colour_only_weights_grows_them(tmp_path):
    colour = build_model("kprcan", {"aux_inputs": [], "features": 4, "blocks": 1})
    model, config = _build_recipe_from_checkpoint(
        tmp_path, {"aux_inputs": [], "features": 4, "blocks": 1}, colour.state_dict(),
        {"aux_inputs": ["albedo", "normal"], "features": 4, "blocks": 1, "demodulate": False})
    assert config["aux_inputs"] == ["albedo", "normal"] and model.aux_inputs == ("albedo", "normal")


def test_guides_grow_gently_and_steer_kernels_away_from_other_albedos(tmp_path):
    """guide=("albedo", "normal"): each tap's logit loses strength x squared buffer distance. Grown from a model
    without guides, every strength starts at GUIDE_START; a strong albedo guide keeps a kernel on its own stripe."""
    import torch

    from engine.training.archs.kpcn.growth import GUIDE_START, grow_model
    from engine.training.archs.kpcn.model import GUIDE_GAIN

    torch.manual_seed(0)
    config = {"aux_inputs": ["albedo", "normal"], "features": 4, "blocks": 1}
    plain = build_model("kprcan", config).eval()
    guided = build_model("kprcan", dict(config, guide=["albedo", "normal"])).eval()
    grow_model(guided, plain.state_dict(), config)
    x, normal = torch.rand(1, 3, 16, 16), torch.zeros(1, 3, 16, 16)
    stripes = (torch.arange(16) % 2).float().view(1, 1, 1, 16).expand(1, 3, 16, 16).contiguous()
    with torch.no_grad():
        strengths = torch.nn.functional.softplus(GUIDE_GAIN * guided._features(x, {"albedo": stripes,
                                                                                    "normal": normal})[:, 75:])
        assert torch.allclose(strengths, torch.full_like(strengths, GUIDE_START), rtol=1e-4)
        # flat buffers: no distances, so the guided model is exactly the old one
        flat = torch.full_like(x, 0.5)
        assert torch.allclose(guided(x, flat, normal), plain(x, flat, normal), atol=1e-6)
        # stripes: the fine taps on the other stripe (odd dx) lose weight, more so with a strong guide
        def other_stripe_weight(model):
            weights = model.kernel_weights(x, stripes, normal)[0, :25, 8, 8]
            odd = torch.tensor([dx % 2 == 1 for dy in range(-2, 3) for dx in range(-2, 3)])
            return float(weights[odd].sum() / weights.sum())
        before = other_stripe_weight(plain)
        assert other_stripe_weight(guided) < before
        guided.tail.bias[75 * 4 :] = 2.0  # strength ~20 on every guide and scale
        assert other_stripe_weight(guided) < 1e-3 < before
    with pytest.raises(ValueError):
        build_model("kprcan", dict(config, guide=["depth"]))
    # a colour guide grows onto a guided model: the old strengths stay, the new ones start at GUIDE_START
    more = build_model("kprcan", dict(config, guide=["albedo", "normal", "color"])).eval()
    grow_model(more, guided.state_dict(), dict(config, guide=["albedo", "normal"]))
    with torch.no_grad():
        grown = torch.nn.functional.softplus(GUIDE_GAIN * more._features(x, {"albedo": stripes,
                                                                                "normal": normal})[:, 75:])
        assert torch.allclose(grown[:, :6], torch.full_like(grown[:, :6], float(torch.nn.functional.softplus(
            torch.tensor(GUIDE_GAIN * 2.0)))), rtol=1e-4)
        assert torch.allclose(grown[:, 6:], torch.full_like(grown[:, 6:], GUIDE_START), rtol=1e-4)
        # an emitter beside a dim surface with equal buffers: a strong colour guide keeps its light out
        lit = torch.full((1, 3, 16, 16), 0.1)
        lit[..., 9:] = 3.0
        more.tail.bias[75 * 4 :] = 2.0
        assert float(more(lit, flat, normal)[0, 0, 8, 8]) < 0.11 < float(guided(lit, flat, normal)[0, 0, 8, 8])
    with pytest.raises(ValueError):
        grow_model(guided, more.state_dict(), dict(config, guide=["albedo", "normal", "color"]))


def test_a_box_centred_colour_guide_sees_through_noise_and_still_stops_at_edges():
    """color_guide_centre="box": a coarse colour tap is compared with the box mean around the pixel, not with the
    pixel's own noisy value. On a noisy flat region the pixel-centred guide penalises every tap but the pixel
    itself (a noisy centre is far from every smoothed tap), so the kernel keeps much of the pixel's own noise;
    the box-centred one averages. Across a clean step edge both keep the coarse taps on the pixel's own side."""
    from engine.training.archs.kpcn import grow_model

    torch.manual_seed(0)
    config = {"aux_inputs": [], "features": 4, "blocks": 1}
    plain = build_model("kprcan", config).eval()
    models = {}
    for centre in ("pixel", "box"):
        models[centre] = build_model("kprcan", dict(config, guide=["color"], color_guide_centre=centre)).eval()
        grow_model(models[centre], plain.state_dict(), config)
        with torch.no_grad():
            models[centre].tail.bias[75 * 4 :] = 1.0  # strength ~10 at every scale
    g = torch.Generator().manual_seed(1)
    noisy = 0.5 + 0.3 * torch.randn(1, 3, 32, 32, generator=g)
    edge = torch.full((1, 3, 32, 32), 0.2)
    edge[..., 17:] = 1.5
    with torch.no_grad():
        def self_weight(model, x):  # mean weight of the fine centre tap (the pixel's own noisy value) inside
            return float(model.kernel_weights(x)[0, 12, 8:24, 8:24].mean())

        def far_side_share(model):  # coarse taps (dilation 4) that land on the other side of the edge
            weights = model.kernel_weights(edge)[0, 50:, 16, 16]
            far = torch.tensor([dx > 0 for dy in range(-2, 3) for dx in range(-2, 3)])
            return float(weights[far].sum() / weights.sum())

        assert self_weight(models["pixel"], noisy) > 3 * self_weight(models["box"], noisy)
        assert far_side_share(models["box"]) < 0.05 and far_side_share(models["pixel"]) < 0.05
        assert far_side_share(plain) > 0.2
        # without a colour guide the option changes nothing
        albedo_only = build_model("kprcan", dict(config, aux_inputs=["albedo"], guide=["albedo"],
                                                 color_guide_centre="box")).eval()
        twin = build_model("kprcan", dict(config, aux_inputs=["albedo"], guide=["albedo"])).eval()
        twin.load_state_dict(albedo_only.state_dict())
        albedo = torch.rand(1, 3, 32, 32, generator=g)
        assert torch.equal(albedo_only(noisy, albedo), twin(noisy, albedo))
    with pytest.raises(ValueError):
        build_model("kprcan", dict(config, guide=["color"], color_guide_centre="median"))


def test_a_model_grows_deeper_and_wider_and_starts_exactly_where_it_was(tmp_path):
    """blocks / features / context_blocks: new residual blocks start as the identity, new channels and a new
    context branch feed nothing yet, so the grown model's output equals the old one's; and the new weights have
    gradients from the first step (they learn)."""
    import torch

    from engine.training.archs.kpcn import grow_model

    torch.manual_seed(0)
    config = {"aux_inputs": ["albedo", "normal"], "features": 4, "blocks": 1, "guide": ["albedo", "color"]}
    old = build_model("kprcan", config).eval()
    inputs = _inputs(("color", "albedo", "normal"), size=32, seed=3)
    with torch.no_grad():
        before = old(*inputs)
    for grown_config in (dict(config, blocks=3), dict(config, features=6), dict(config, blocks=2, features=8),
                         dict(config, context_blocks=2)):
        grown = build_model("kprcan", grown_config).eval()
        grow_model(grown, old.state_dict(), config)
        with torch.no_grad():
            assert torch.allclose(grown(*inputs), before, atol=1e-6), grown_config
        # the new weights are not dead: their gradients are non-zero from the first step
        grown.train()
        grown(*inputs).square().mean().backward()
        new = tuple(f"body.{i}.conv2." for i in range(1, len(grown.body))) + ("context_out.",)
        new_grads = [p.grad for name, p in grown.named_parameters() if name.startswith(new)]
        # weight and bias of each new block's second convolution and of the context branch's output
        assert len(new_grads) == 2 * (len(grown.body) - 1) + (2 if grown.context_out is not None else 0)
        assert all(g is not None and float(g.abs().sum()) > 0 for g in new_grads)
        if grown_config["features"] > 4:
            assert float(grown.tail.weight.grad[:, 4:].abs().sum()) > 0
    # the aux-input growth composes with widening: a colour-only model grows into a wider AOV model
    colour = build_model("kprcan", {"aux_inputs": [], "features": 4, "blocks": 1}).eval()
    wide = build_model("kprcan", {"aux_inputs": ["albedo"], "features": 6, "blocks": 2}).eval()
    grow_model(wide, colour.state_dict(), {"aux_inputs": [], "features": 4, "blocks": 1})
    with torch.no_grad():
        assert torch.allclose(wide(inputs[0], inputs[1]), colour(inputs[0]), atol=1e-6)
    # never narrower or shallower, and plain KPCN blocks (no identity path) do not grow deeper
    with pytest.raises(ValueError):
        grow_model(old, grown.state_dict(), dict(config, blocks=2, features=8))
    with pytest.raises(ValueError):
        grow_model(build_model("kpcn", dict(config, blocks=2)), build_model("kpcn", config).state_dict(), config)
    with pytest.raises(ValueError):  # a context branch grows whole, not block by block
        grow_model(build_model("kprcan", dict(config, context_blocks=2)),
                   build_model("kprcan", dict(config, context_blocks=1)).state_dict(), dict(config, context_blocks=1))
    # the trainer grows a recipe's deeper, wider model from a checkpoint
    model, config_used = _build_recipe_from_checkpoint(tmp_path, config, old.state_dict(),
                                                       dict(config, blocks=2, features=8))
    assert config_used["blocks"] == 2 and config_used["features"] == 8 and len(model.body) == 2
    with torch.no_grad():
        assert torch.allclose(model.eval()(*inputs), before, atol=1e-6)


def _fixed_bilateral(log_colour, albedo, normal):
    """The refinement a grown model starts with, written out pixel by pixel in numpy (REFINE_START_*):
    weights exp(-d^2 / (2 sigma^2) - sum over guides of strength * squared distance), averaged in linear."""
    from engine.training.archs.kpcn.growth import REFINE_START_SIGMA, REFINE_START_STRENGTH

    c, a, n = (np.pad(t[0].numpy(), ((0, 0), (2, 2), (2, 2)), mode="edge") for t in (log_colour, albedo, normal))
    height, width = log_colour.shape[-2:]
    out = np.zeros((3, height, width))
    for y in range(height):
        for x in range(width):
            weights, values = [], []
            for dy in range(-2, 3):
                for dx in range(-2, 3):
                    logit = -(dy * dy + dx * dx) / (2 * REFINE_START_SIGMA**2)
                    for guide, name in ((c, "color"), (a, "albedo"), (n, "normal")):
                        diff = guide[:, y + 2 + dy, x + 2 + dx] - guide[:, y + 2, x + 2]
                        logit -= REFINE_START_STRENGTH[name] * float((diff * diff).sum())
                    weights.append(logit)
                    values.append(np.expm1(c[:, y + 2 + dy, x + 2 + dx]))
            w = np.exp(np.array(weights) - max(weights))
            out[:, y, x] = np.log1p((w[:, None] * np.array(values)).sum(0) / w.sum())
    return out


def test_a_refinement_grows_as_a_fixed_bilateral_and_then_learns_per_pixel(tmp_path):
    """refine=True: a second 5x5 kernel on the filtered colour. Grown, it is exactly the fixed cross-bilateral of
    the REFINE_START constants on the old model's output; its rows learn; it survives growing and is never
    dropped; the trainer grows it from a checkpoint; the kernel inspector still sees the first kernels."""
    import torch

    from engine.training.archs.kpcn import grow_model

    torch.manual_seed(0)
    config = {"aux_inputs": ["albedo", "normal"], "features": 4, "blocks": 1, "guide": ["albedo", "color"]}
    old = build_model("kprcan", config).eval()
    inputs = _inputs(("color", "albedo", "normal"), size=12, seed=5)
    grown = build_model("kprcan", dict(config, refine=True)).eval()
    grow_model(grown, old.state_dict(), config)
    with torch.no_grad():
        before = old(*inputs)
        after = grown(*inputs)
        expected = _fixed_bilateral(before, inputs[1], inputs[2])
        assert np.allclose(after[0].numpy(), expected, atol=2e-5)
        # random buffers differ everywhere, so their strengths of 300 keep each pixel; flat ones let it filter
        flat = [inputs[0], torch.full_like(inputs[1], 0.5), torch.zeros_like(inputs[2])]
        assert np.allclose(grown(*flat)[0].numpy(), _fixed_bilateral(old(*flat), flat[1], flat[2]), atol=2e-5)
        assert float((grown(*flat) - old(*flat)).abs().mean()) > 1e-3
        assert torch.allclose(grown.kernel_weights(*inputs), old.kernel_weights(*inputs), atol=1e-6)
    assert grown.overlap >= old.overlap and grown.overlap % 8 == 0
    # the refinement's rows (the tail's last) learn from the first step, the strengths included
    grown.train()
    grown(*inputs).square().mean().backward()
    rows = (25 + 3) * grown.unshuffle**2
    assert float(grown.tail.weight.grad[-rows:].abs().sum()) > 0
    assert float(grown.tail.bias.grad[-3 * grown.unshuffle**2 :].abs().sum()) > 0
    # a grown refinement survives growing again (here: deeper), and is never dropped
    deeper = build_model("kprcan", dict(config, refine=True, blocks=2)).eval()
    grow_model(deeper, grown.state_dict(), dict(config, refine=True))
    with torch.no_grad():
        assert torch.allclose(deeper(*inputs), grown.eval()(*inputs), atol=1e-6)
    with pytest.raises(ValueError, match="refinement"):
        grow_model(build_model("kprcan", config), grown.state_dict(), dict(config, refine=True))
    # its own features (refine_features) grow at zero, and then steer it
    netted = build_model("kprcan", dict(config, refine=True, refine_features=4)).eval()
    grow_model(netted, grown.state_dict(), dict(config, refine=True))
    with torch.no_grad():
        assert torch.allclose(netted(*inputs), grown(*inputs), atol=1e-6)
        torch.nn.init.normal_(netted.refine_net[2].weight, std=0.5)
        # (on flat buffers, where the refinement filters rather than keeping each pixel)
        assert not torch.allclose(netted(*flat), grown(*flat), atol=1e-4)
        assert torch.allclose(netted.kernel_weights(*inputs), grown.kernel_weights(*inputs), atol=1e-6)
    netted.train_only_refinement()
    with pytest.raises(ValueError, match="refine_features needs refine"):
        build_model("kprcan", dict(config, refine_features=4))
    assert all(p.requires_grad for p in netted.refine_net.parameters()) and not netted.head.weight.requires_grad
    model, config_used = _build_recipe_from_checkpoint(tmp_path, config, old.state_dict(), dict(config, refine=True))
    assert config_used["refine"] is True and model.refine
    with torch.no_grad():
        assert torch.allclose(model.eval()(*inputs), after, atol=1e-6)


def test_the_context_branch_sees_farther_and_its_reach_is_declared():
    """context_blocks: a change beyond the body's reach moves the output through the context branch, and none
    beyond the declared receptive radius does (what the tiler's overlap relies on)."""
    import torch

    torch.manual_seed(0)
    plain = build_model("kprcan", dict(TINY, aux_inputs=[]))
    model = build_model("kprcan", dict(TINY, aux_inputs=[], context_blocks=1)).eval()
    torch.nn.init.normal_(model.context_out.weight, std=0.3)
    assert model.alignment == 8 and model.receptive_radius > plain.receptive_radius
    size, centre = 256, 128
    x = torch.rand(1, 3, size, size)

    def moved(net, distance: int) -> float:
        y = x.clone()
        y[..., centre, centre + distance : centre + distance + 2] += 2.0
        with torch.no_grad():
            return float((net(y) - net(x))[..., centre, centre].abs().max())

    beyond_body = plain.receptive_radius + plain.kernel_reach + 8
    assert moved(plain, beyond_body) == 0.0 and moved(model, beyond_body) > 0.0
    assert moved(model, model.receptive_radius + model.kernel_reach + 8) == 0.0


def test_a_refinement_stays_within_the_declared_overlap():
    """refine (with its own features): the second kernel and its convolutions reach 4 px past the first pass,
    and nothing beyond the declared tile overlap moves the output."""
    import torch

    torch.manual_seed(0)
    model = build_model("kprcan", dict(TINY, aux_inputs=[], refine=True, refine_features=4)).eval()
    torch.nn.init.normal_(model.refine_net[2].weight, std=0.3)
    first = model.receptive_radius + model.kernel_reach
    assert model.overlap >= first + 4
    x = torch.rand(1, 3, 160, 160)

    def moved(distance: int) -> float:
        y = x.clone()
        y[..., 80, 80 + distance] += 2.0
        with torch.no_grad():
            return float((model(y) - model(x))[..., 80, 80].abs().max())

    assert moved(4) > 0.0 and moved(model.overlap + 1) == 0.0  # (the first pass's radius is an upper bound)


def test_retired_options_load_at_their_neutral_values_and_are_refused_otherwise(tmp_path):
    """Options no shipped model used were removed (issue 41); weights and recipes that spell them out at the
    value meaning "off" (render-kprcan-aov.pt says demodulate = false) still build the same model and grow."""
    import torch

    from engine.training.archs.kpcn.model import RETIRED_OPTIONS

    torch.manual_seed(0)
    plain = build_model("kprcan", TINY)
    spelled = build_model("kprcan", dict(TINY, **RETIRED_OPTIONS))
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in spelled.state_dict().items()}
    for name, value in {"scales": 4, "filter_space": "linear", "correction": True}.items():
        with pytest.raises(ValueError, match=f"option {name} = .* was removed"):
            build_model("kprcan", dict(TINY, **{name: value}))
    # demodulate is a switch again (issue 42); the earlier experiment's "mix" is not it
    with pytest.raises(ValueError, match="demodulate must be true or false"):
        build_model("kprcan", dict(TINY, aux_inputs=["albedo"], demodulate="mix"))
    # a recipe with a retired option is refused, not silently trained as its init's model
    with pytest.raises(ValueError, match="was removed"):
        _build_recipe_from_checkpoint(tmp_path, TINY, plain.state_dict(), dict(TINY, correction=True))
    # a staged model saved with the retired switches at "off" still grows (here: guides added)
    old_config = dict(TINY, aux_inputs=["albedo", "normal"], demodulate=False)
    old = build_model("kprcan", old_config)
    model, config = _build_recipe_from_checkpoint(tmp_path, old_config, old.state_dict(),
                                                  dict(old_config, guide=["albedo", "normal"]))
    assert model.guide == ("albedo", "normal")


@pytest.mark.parametrize("form", ["conv", "slices"])
def test_the_graphs_tap_gathering_matches_unfold(monkeypatch, form):
    """Both ONNX forms of the kernel application and of the guide penalty (kernels.ONNX_TAPS: one-hot depthwise
    Conv, or one Slice per tap) compute what PyTorch's unfold path computes, on random inputs with dilated grids
    of several signals, edges included."""
    from engine.training.archs.kpcn import kernels

    g = torch.Generator().manual_seed(5)
    signals = [torch.randn(2, 3, 13, 17, generator=g) for _ in range(3)]
    grids = [(0, 5, 1), (1, 5, 2), (2, 3, 4)]
    weights = torch.randn(2, 25 + 25 + 9, 13, 17, generator=g)
    guide, centre = torch.randn(2, 4, 13, 17, generator=g), torch.randn(2, 4, 13, 17, generator=g)
    strength = torch.rand(2, 4, 13, 17, generator=g)
    ones = torch.ones(25, 4, 1, 1)
    expected = kernels.apply_kernels(signals, weights, grids)
    expected_penalty = kernels.guide_penalty(guide, centre, strength, 5, 2, ones)
    monkeypatch.setattr(kernels, "ONNX_TAPS", form)
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    torch.testing.assert_close(kernels.apply_kernels(signals, weights, grids), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(kernels.guide_penalty(guide, centre, strength, 5, 2, ones), expected_penalty,
                               rtol=1e-5, atol=1e-5)


def test_conv_tap_form_exports_the_same_model_with_few_slices(tmp_path, monkeypatch):
    """A guided, refined KPRCAN exported with each tap form: ONNX Runtime gives the same output (1e-5), and the
    conv form's graph has a handful of Slice / Mul nodes instead of one per tap."""
    ort = pytest.importorskip("onnxruntime")
    import onnx

    from engine.training.archs.kpcn import kernels

    torch.manual_seed(1)
    model = build_model("kprcan", dict(TINY, guide=["albedo", "normal", "color"], refine=True)).eval()
    with torch.no_grad():
        model.tail.weight.normal_(std=0.1)
    inputs = _inputs(model.input_roles, size=40, seed=2)
    names = [f"in{i}" for i in range(len(inputs))]
    outputs, counts = {}, {}
    for form in ("slices", "conv"):
        monkeypatch.setattr(kernels, "ONNX_TAPS", form)
        path = tmp_path / f"{form}.onnx"
        with torch.no_grad():
            torch.onnx.export(model, tuple(inputs), str(path), input_names=names, dynamo=False,
                              dynamic_axes={n: {2: "h", 3: "w"} for n in names})
        ops = [node.op_type for node in onnx.load(str(path)).graph.node]
        counts[form] = {op: ops.count(op) for op in ("Slice", "Mul")}
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs[form] = session.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})[0]
    np.testing.assert_allclose(outputs["conv"], outputs["slices"], rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(outputs["conv"], model(*inputs).numpy(), rtol=1e-4, atol=1e-4)
    assert counts["conv"]["Slice"] * 5 < counts["slices"]["Slice"]
    assert counts["conv"]["Mul"] * 3 < counts["slices"]["Mul"]


def test_onnx_speed_profile_reports_operator_shares(tmp_path):
    """bench/onnx_speed.py --profile: ONNX Runtime's kernel time per operator type of a graph, shares summing to
    at most one, the convolution of a conv-only graph first."""
    pytest.importorskip("onnxruntime")
    from bench.onnx_speed import op_shares

    path = tmp_path / "conv.onnx"
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 3, 3))
    torch.onnx.export(model, (torch.randn(1, 3, 32, 32),), str(path), input_names=["color"], dynamo=False,
                      dynamic_axes={"color": {2: "h", 3: "w"}})
    seconds, shares = op_shares(path, {"color": np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)})
    assert seconds > 0 and shares[0][0] == "Conv"
    assert 0.99 <= sum(share for _, share in shares) <= 1.0 + 1e-9


def test_per_shot_fine_tuning_can_keep_normals_and_hues(tmp_path):
    """``augment_aovs = false`` (the per-shot fine-tuning recipe): flips and rotations still apply, but normals keep
    their directions and colours their channel order; by default both are randomised."""
    from engine.imageio import write_image
    from engine.training.datasets import PairedImageDataset

    (tmp_path / "input").mkdir()
    (tmp_path / "target").mkdir()
    rng = np.random.default_rng(1)
    color = np.tile(np.array([0.1, 0.5, 0.9], np.float32), (16, 16, 1)) * rng.uniform(0.8, 1.2, (16, 16, 1))
    normal = np.tile(np.array([0.0, 0.0, 1.0], np.float32), (16, 16, 1))
    meta = ImageMeta(hdr=True, format="exr", color_space="linear")
    write_image(tmp_path / "input" / "a_color.exr", make_image(color.astype(np.float32), meta=meta))
    write_image(tmp_path / "input" / "a_normal.exr", make_image(normal, meta=meta))
    write_image(tmp_path / "target" / "a_ref.exr", make_image(color.astype(np.float32), meta=meta))
    pairs = [(tmp_path / "input" / "a_color.exr", tmp_path / "target" / "a_ref.exr")]

    def samples(**options):
        dataset = PairedImageDataset(pairs, roles=("color", "normal"), patch_size=8, transform="log1p",
                                     augment=True, **options)
        draw = np.random.default_rng(0)
        return [dataset.sample(draw) for _ in range(12)]

    def channel_order(sample) -> tuple:
        return tuple(np.argsort([sample.inputs["color"][c].mean() for c in range(3)]))

    kept = samples(augment_aovs=False)
    assert all(np.array_equal(s.inputs["normal"], kept[0].inputs["normal"]) for s in kept)
    assert {channel_order(s) for s in kept} == {(0, 1, 2)}
    assert len({s.inputs["color"].tobytes() for s in kept}) > 1  # still flipped / rotated / cropped
    randomised = samples()
    assert not all(np.allclose(s.inputs["normal"], randomised[0].inputs["normal"]) for s in randomised)
    assert len({channel_order(s) for s in randomised}) > 1
