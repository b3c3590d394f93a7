"""The trainer job, export and the train command, on tiny models and toy images (seconds in total)."""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from engine.errors import EngineError, JobCancelled, ModelError  # noqa: E402
from engine.jobs import CancelToken, run_job  # noqa: E402
from engine.training import trainer as trainer_module  # noqa: E402
from engine.training.archs import ARCHITECTURES, build_model  # noqa: E402
from engine.training.losses import (  # noqa: E402
    lowfreq_relative_mse,
    ms_ssim,
    noise2noise_relative_mse,
    relative_mse,
    restoration_loss,
)
from engine.training.recipes import RecipeError, load_recipe, recipe_from_dict  # noqa: E402
from engine.training.trainer import TrainOptions, train_job  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run ~100x faster on one thread than on two contended ones (shared CI machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def toy_folder(tmp_path_factory):
    """Six 48x48 images of two flat colours each (a tiny net can learn to denoise them in ~100 steps)."""
    folder = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    for i in range(6):
        base = np.ones((48, 48, 3), np.float32) * rng.random(3).astype(np.float32)
        base[:, 24 + i :] *= 0.5
        cv2.imwrite(str(folder / f"img{i}.png"), np.clip(base * 255, 0, 255).astype(np.uint8))
    return folder


def tiny_recipe(folder, arch="dncnn", **train):
    config = {"features": 8, "depth": 3} if arch == "dncnn" else dict(ARCHITECTURES[arch].tiny, scale=2)
    degradation = {"kind": "noise", "sigma": [15, 35]} if arch == "dncnn" else {"kind": "sr", "scale": 2}
    settings = {"steps": 30, "batch_size": 4, "lr": 3e-3, "warmup_steps": 3, "val_every": 0, "checkpoint_every": 0}
    settings.update(train)
    return recipe_from_dict(
        {
            "model": {
                "id": f"toy-{arch}",
                "task": "photo-denoise" if arch == "dncnn" else "super-resolution",
                "arch": arch,
                "config": config,
            },
            "data": {"train": [str(folder)], "patch_size": 16, "val_crop": 32, "val_count": 1},
            "degradation": degradation,
            "train": settings,
        },
        source="toy",
    )


def test_a_few_steps_lower_the_loss(toy_folder, tmp_path):
    recipe = tiny_recipe(toy_folder, steps=150, lr=1e-2)
    result = run_job(train_job(recipe, None, TrainOptions(run_dir=tmp_path, export=False)))
    losses = [h["loss"] for h in result.history if "loss" in h]
    assert len(losses) == 150 and result.skipped_batches == 0
    assert np.mean(losses[-15:]) < 0.8 * np.mean(losses[:15])
    assert result.best_val_psnr is not None and np.isfinite(result.best_val_psnr)


def test_a_nan_batch_is_skipped_not_propagated(toy_folder, tmp_path, monkeypatch):
    real_build = trainer_module.build_data
    calls = {"n": 0}

    def poisoned_build(*args, **kwargs):
        train, val = real_build(*args, **kwargs)
        real_sample = train.sample

        def sample(rng):
            calls["n"] += 1
            s = real_sample(rng)
            if calls["n"] == 9:  # one sample of the third batch (batch size 4)
                s.inputs["color"][0, 0, 0] = np.nan
            if calls["n"] == 14:
                s.inputs["color"][1, 2, 3] = np.inf
            return s

        train.sample = sample
        return train, val

    monkeypatch.setattr(trainer_module, "build_data", poisoned_build)
    result = run_job(train_job(tiny_recipe(toy_folder, steps=6), None, TrainOptions(run_dir=tmp_path, export=False)))
    assert result.steps == 6 and result.skipped_batches == 2
    skipped_steps = [h["step"] for h in result.history if "lr" in h and "loss" not in h]
    assert skipped_steps == [3.0, 4.0]
    state = torch.load(tmp_path / "best.pt", weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values())
    assert np.isfinite(result.final_loss)


def test_invalid_hdr_targets_are_masked_out_of_the_loss():
    pred = torch.rand(2, 3, 32, 32, requires_grad=True)
    target = pred.detach() + 0.1
    target[0, :, :4, :4] = float("nan")
    target[1, 0, 5, 5] = float("inf")
    valid = torch.isfinite(target)
    for kind in ("l1", "l2", "ms-ssim", "l1+ms-ssim", "relmse", "l1+relmse"):
        loss = restoration_loss(pred, torch.nan_to_num(target, nan=0.0, posinf=0.0), valid, kind)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
        pred.grad = None
    l1 = restoration_loss(pred, torch.nan_to_num(target, nan=0.0, posinf=0.0), valid, "l1")
    assert float(l1.detach()) == pytest.approx(0.1, abs=1e-5)  # the masked points add nothing
    l2 = restoration_loss(pred, torch.nan_to_num(target, nan=0.0, posinf=0.0), valid, "l2")
    assert float(l2.detach()) == pytest.approx(0.01, abs=1e-6)
    same = torch.rand(1, 3, 64, 64)
    assert float(ms_ssim(same, same)) == pytest.approx(1.0, abs=1e-5)


def test_relative_mse_loss_is_the_render_benchmarks_metric_on_linear_values():
    """relmse compares expm1 of log1p-space values: (p - r)^2 / (p^2 + 0.01), the prediction detached in the
    denominator; it is finite for a wild prediction and pushes a too-dark prediction up."""
    reference = torch.tensor([0.0, 0.5, 4.0, 100.0]).reshape(1, 1, 2, 2)
    linear = torch.tensor([0.1, 0.4, 5.0, 80.0]).reshape(1, 1, 2, 2)
    pred = torch.log1p(linear).requires_grad_(True)
    loss = restoration_loss(pred, torch.log1p(reference), None, "relmse")
    expected = float(((linear - reference) ** 2 / (linear**2 + 0.01)).mean())
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert pred.grad[0, 0, 1, 1] < 0  # 80 < 100: the gradient step raises it
    wild = torch.full((1, 1, 2, 2), 1e4, requires_grad=True)
    assert torch.isfinite(restoration_loss(wild, torch.log1p(reference), None, "relmse"))
    with pytest.raises(RecipeError, match="relmse"):
        recipe_from_dict({"model": {"id": "x", "task": "photo-denoise", "arch": "dncnn"},
                          "train": {"loss": "relmse"}})


def test_noise2noise_relmse_is_least_at_the_clean_value_where_the_other_normalisers_are_not():
    """Against skewed Monte Carlo-like noisy targets (gamma-distributed estimates with the clean mean), the mean
    relMSE normalised by the target's ring of neighbours is least for the clean image itself; normalised by the
    noisy target it favours a darker image, by the detached prediction a brighter one."""
    generator = torch.Generator().manual_seed(0)
    clean = 0.2 + torch.rand((1, 3, 48, 48), generator=generator)
    gamma = torch.distributions.Gamma(torch.full((64, 3, 48, 48), 2.0), torch.full((64, 3, 48, 48), 2.0))
    torch.manual_seed(1)
    targets = torch.log1p(gamma.sample() * clean)

    def scores(loss):
        return {k: float(loss(torch.log1p(clean * k).expand_as(targets), targets)) for k in (0.8, 0.9, 1.0, 1.1, 1.25)}

    n2n = scores(noise2noise_relative_mse)
    assert min(n2n, key=n2n.get) == 1.0
    reference = scores(lambda p, t: relative_mse(p, t, None, "reference"))
    prediction = scores(lambda p, t: relative_mse(p, t, None, "prediction"))
    assert min(reference, key=reference.get) == 0.8 and min(prediction, key=prediction.get) == 1.25
    assert float(restoration_loss(targets[:1], targets[:1], None, "relmse-n2n")) == 0.0
    recipe_from_dict({"model": {"id": "x", "task": "render-denoise", "arch": "kprcan", "value_transform": "log1p"},
                      "train": {"loss": "relmse-n2n"}})


def test_lowfreq_term_sees_a_dark_bias_that_zero_mean_noise_hides_from_it():
    """lowfreq_relative_mse scores 8 px block means: a prediction 3% too dark everywhere costs it about 0.03^2,
    zero-mean pixel noise of 10x the per-pixel error almost nothing; the per-pixel relMSE ranks them the other
    way. restoration_loss adds lowfreq_weight of it to l1+relmse, and a recipe may only ask for it there."""
    generator = torch.Generator().manual_seed(0)
    reference = 1.0 + torch.rand((1, 3, 32, 32), generator=generator)
    target = torch.log1p(reference)
    dark = torch.log1p(reference * 0.97)
    # a checkerboard of +-10% within every block: zero mean at 8 px
    checker = (torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2 * 2 - 1
    noisy = torch.log1p(reference * (1 + 0.1 * checker))
    assert float(lowfreq_relative_mse(dark, target)) == pytest.approx(0.03**2, rel=0.05)
    assert float(lowfreq_relative_mse(noisy, target)) < 1e-5
    assert float(relative_mse(noisy, target, None, "reference")) > 5 * float(relative_mse(dark, target, None,
                                                                                          "reference"))
    base = restoration_loss(dark, target, None, "l1+relmse", relmse_weight=0.5)
    with_term = restoration_loss(dark, target, None, "l1+relmse", relmse_weight=0.5, lowfreq_weight=2.0)
    assert float(with_term - base) == pytest.approx(2.0 * float(lowfreq_relative_mse(dark, target)), rel=1e-4)
    small = torch.log1p(torch.full((1, 3, 4, 4), 2.0))  # a patch smaller than a block is one block
    assert float(lowfreq_relative_mse(small, small)) == 0.0
    with pytest.raises(RecipeError, match="lowfreq_weight"):
        recipe_from_dict({"model": {"id": "x", "task": "render-denoise", "arch": "kprcan", "value_transform": "log1p"},
                          "train": {"loss": "l1", "lowfreq_weight": 1.0}})


def test_l1_plus_reference_weighted_relmse_charges_a_leak_into_a_dark_pixel_in_full():
    """l1+relmse adds relmse_weight times (p - r)^2 / (r^2 + 0.01) - the benchmark's weighting - to L1 in log
    space. A dark pixel (0.07) predicted at 0.5, as emitter light leaking into it, costs far more than under the
    prediction-weighted relmse, which lets the bright prediction shrink its own weight."""
    reference = torch.tensor([0.07, 0.07, 2.0, 10.0]).reshape(1, 1, 2, 2)
    linear = torch.tensor([0.5, 0.07, 2.2, 9.0]).reshape(1, 1, 2, 2)
    target = torch.log1p(reference)
    pred = torch.log1p(linear).requires_grad_(True)
    loss = restoration_loss(pred, target, None, "l1+relmse", relmse_weight=0.5)
    l1 = float((torch.log1p(linear) - target).abs().mean())
    relative = float(((linear - reference) ** 2 / (reference**2 + 0.01)).mean())
    assert float(loss.detach()) == pytest.approx(l1 + 0.5 * relative, rel=1e-5)
    leak_by_reference = float(relative_mse(pred.detach(), target, None, "reference"))
    leak_by_prediction = float(relative_mse(pred.detach(), target, None, "prediction"))
    assert leak_by_reference > 10 * leak_by_prediction
    loss.backward()
    assert pred.grad[0, 0, 0, 0] > 0 and pred.grad[0, 0, 1, 1] < 0  # the leak goes down, the dim emitter up
    with pytest.raises(ValueError, match="denominator"):
        relative_mse(pred, target, None, "target")
    with pytest.raises(RecipeError, match="l1\\+relmse"):
        recipe_from_dict({"model": {"id": "x", "task": "photo-denoise", "arch": "dncnn"},
                          "train": {"loss": "l1+relmse"}})


@pytest.mark.timeout(120)
def test_worker_processes_feed_reproducible_batches_and_exit(toy_folder, tmp_path):
    """workers > 0 (what a GPU run uses): batches come from worker processes, the run is reproducible for the
    same worker count, differs from the in-loop sampling, and no worker process outlives the run."""
    import multiprocessing

    recipe = tiny_recipe(toy_folder, steps=12, lr=1e-2)

    def losses(workers, name):
        result = run_job(train_job(recipe, None, TrainOptions(run_dir=tmp_path / name, export=False, workers=workers)))
        assert result.skipped_batches == 0 and result.steps == 12
        return [h["loss"] for h in result.history if "loss" in h]

    first, second, inline = losses(2, "w2a"), losses(2, "w2b"), losses(0, "w0")
    assert first == pytest.approx(second, rel=1e-6)
    assert first != pytest.approx(inline, rel=1e-3)  # each worker draws from its own generator
    assert multiprocessing.active_children() == []


def test_resume_continues_the_same_run(toy_folder, tmp_path):
    recipe = tiny_recipe(toy_folder, steps=8)
    straight = run_job(train_job(recipe, None, TrainOptions(run_dir=tmp_path / "a", export=False)))

    token = CancelToken()

    def cancel_after_four(progress):
        if progress.metrics.get("step") == 4.0:
            token.cancel()

    with pytest.raises(JobCancelled):
        run_job(train_job(recipe, token, TrainOptions(run_dir=tmp_path / "b", export=False)), cancel_after_four)
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=True)["step"] == 4
    resumed = run_job(train_job(recipe, None, TrainOptions(run_dir=tmp_path / "b", export=False, resume=True)))
    assert resumed.steps == 8
    assert [h["step"] for h in resumed.history if "loss" in h] == [float(s) for s in range(1, 9)]
    assert [h["loss"] for h in resumed.history if "loss" in h] == pytest.approx(
        [h["loss"] for h in straight.history if "loss" in h], rel=1e-5
    )
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["state_dict"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_stop_request_exports_best_and_registers_it(toy_folder, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from engine.models.registry import ModelRegistry, verify_model_file

    token = CancelToken()
    events = []

    def stop_at_five(progress):
        events.append(progress)
        if progress.metrics.get("step") == 5.0:
            token.request_stop()

    result = run_job(train_job(tiny_recipe(toy_folder, steps=100), token, TrainOptions(run_dir=tmp_path)), stop_at_five)
    assert result.stopped_early and result.steps == 5
    assert {"step", "loss", "lr"} <= set(events[-3].metrics) or events[-1].stage == "export"
    exported = result.export
    assert exported.parity_error <= 1e-4
    registry = ModelRegistry(include_classical=False)  # the per-user folder (RESTORATION_STUDIO_HOME)
    entry = registry.get("toy-dncnn")
    verify_model_file(entry)
    manifest = entry.manifest
    assert manifest.inputs == ("color", "noise_level") and manifest.params[0].name == "noise_level"
    assert manifest.provenance["steps"] == 5 and manifest.scores["val_psnr"] == pytest.approx(
        result.best_val_psnr, abs=1e-3
    )
    session = ort.InferenceSession(str(entry.path), providers=["CPUExecutionProvider"])
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["restoration_studio.manifest"])["id"] == "toy-dncnn"
    model = build_model("dncnn", {"features": 8, "depth": 3})
    model.load_state_dict(torch.load(exported.weights_path, weights_only=True)["state_dict"])
    x = np.random.default_rng(5).random((1, 3, 37, 53), dtype=np.float32)
    level = np.full((1, 1, 1, 1), 0.1, np.float32)
    got = session.run(None, {"color": x, "noise_level": level})[0]
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x), torch.from_numpy(level)).numpy()
    assert np.abs(got - expected).max() <= 1e-4


@pytest.mark.parametrize("arch", ["dncnn", "edsr", "rcan"])
def test_every_architecture_exports_with_parity(arch, tmp_path):
    pytest.importorskip("onnxruntime")
    from engine.training.export import build_manifest, export_model, read_onnx_manifest

    config = dict(ARCHITECTURES[arch].tiny)
    if arch == "dncnn":
        config.update(downscale=2, body="residual", depth=4)
    else:
        config.update(scale=2, noise_level_input=True)
    model = build_model(arch, config)
    manifest = build_manifest(
        model, model_id=f"tiny-{arch}", task="super-resolution" if arch != "dncnn" else "photo-denoise"
    )
    result = export_model(model, manifest, tmp_path, arch=arch, arch_config=config)
    assert result.parity_error <= 1e-4
    assert result.manifest.tile.alignment == model.alignment and result.manifest.scale == model.scale
    assert read_onnx_manifest(result.onnx_path)["inputs"] == list(model.input_roles)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"tiny-{arch}{ext}" for ext in (".json", ".onnx", ".pt")
    )
    # One tile's memory is measured at export and read back from the manifest (tiles are sized by it).
    from engine.models.manifest import load_manifest

    assert load_manifest(result.manifest_path).tile.bytes_per_pixel == result.manifest.tile.bytes_per_pixel
    if Path("/proc/self/clear_refs").exists():  # measured where Linux lets a process reset its peak memory
        assert result.manifest.tile.bytes_per_pixel > 0


def test_export_fails_loudly_when_onnx_differs_from_torch(tmp_path):
    pytest.importorskip("onnxruntime")
    from engine.training.export import build_manifest, export_model

    class Jittery(torch.nn.Module):
        input_roles, channels, scale, alignment, overlap = ("color",), 3, 1, 1, 0

        def forward(self, color):
            return color + torch.rand_like(color)  # random at every call: ONNX cannot match torch

    model = Jittery()
    with pytest.raises(ModelError, match="parity"):
        export_model(
            model, build_manifest(model, model_id="bad", task="photo-denoise"), tmp_path, arch="x", arch_config={}
        )
    assert not any(p.suffix in (".onnx", ".json") for p in tmp_path.rglob("*"))


def test_train_command_end_to_end(toy_folder, tmp_path, capsys):
    from engine.cli import main

    recipe = tmp_path / "toy.toml"
    recipe.write_text(
        f"""
[model]
id = "toy-sr"
task = "super-resolution"
arch = "edsr"
[model.config]
features = 4
blocks = 1
scale = 2
[data]
train = ["{toy_folder.as_posix()}"]
patch_size = 16
val_crop = 32
[degradation]
kind = "sr"
scale = 2
[train]
steps = 100
batch_size = 2
""",
        encoding="utf-8",
    )
    out = tmp_path / "models"
    assert (
        main(["train", "--recipe", str(recipe), "--steps", "3", "--out", str(out), "--run-dir", str(tmp_path / "run")])
        == 0
    )
    assert "trained 3 steps" in capsys.readouterr().out
    manifest = json.loads((out / "toy-sr.json").read_text())
    assert manifest["scale"] == 2 and manifest["provenance"]["steps"] == 3
    assert main(["train", "--recipe", str(tmp_path / "missing.toml")]) == 1
    assert main(["train", "--recipe", str(recipe), "--steps", "0"]) == 2


def test_recipes_in_the_repo_load_and_bad_keys_are_refused():
    root = Path(__file__).resolve().parent.parent
    recipes = sorted((root / "recipes").glob("**/*.toml")) + sorted((root / "lab" / "recipes").glob("*.toml"))
    assert recipes
    for path in recipes:
        recipe = load_recipe(path)
        if recipe.model.arch in ARCHITECTURES:
            build_model(recipe.model.arch, ARCHITECTURES[recipe.model.arch].tiny)
    # a bundled recipe by name, as `train --recipe sr_x4_real` and the frozen app accept it
    assert load_recipe("sr_x4_real").model.id == load_recipe(root / "recipes" / "sr_x4_real.toml").model.id
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe("no_such_recipe")
    with pytest.raises(RecipeError, match="unknown key"):
        recipe_from_dict({"model": {"id": "x", "task": "photo-denoise", "arch": "dncnn"}, "train": {"stepz": 3}})
    with pytest.raises(RecipeError, match="loss"):
        recipe_from_dict({"model": {"id": "x", "task": "photo-denoise", "arch": "dncnn"}, "train": {"loss": "l3"}})


def test_paired_hdr_data_with_aovs_and_invalid_targets(tmp_path):
    """Render-style pairs: EXR colour + albedo/normal/depth inputs, a reference with NaN points (masked)."""
    rng = np.random.default_rng(0)
    (tmp_path / "input").mkdir()
    (tmp_path / "target").mkdir()
    for i in range(3):
        ref = (rng.random((32, 32, 3)) * 4).astype(np.float32)
        noisy = ref * rng.gamma(4.0, 0.25, ref.shape).astype(np.float32)
        ref[0, 0] = np.nan
        cv2.imwrite(str(tmp_path / "target" / f"s{i}_color.exr"), ref[:, :, ::-1])
        cv2.imwrite(str(tmp_path / "input" / f"s{i}_color.exr"), noisy[:, :, ::-1])
        cv2.imwrite(str(tmp_path / "input" / f"s{i}_albedo.exr"), rng.random((32, 32, 3)).astype(np.float32))
        cv2.imwrite(str(tmp_path / "input" / f"s{i}_normal.exr"), rng.random((32, 32, 3)).astype(np.float32) * 2 - 1)
        cv2.imwrite(str(tmp_path / "input" / f"s{i}_depth.exr"), rng.random((32, 32)).astype(np.float32) * 9)
    recipe = recipe_from_dict(
        {
            "model": {
                "id": "toy-render",
                "task": "render-denoise",
                "arch": "edsr",
                "value_transform": "log1p",
                "config": {"features": 4, "blocks": 1, "scale": 1, "aux_inputs": ["albedo", "normal", "depth"]},
            },
            "data": {"kind": "paired", "patch_size": 16, "val_crop": 32, "mining": "random"},
            "degradation": {"kind": "none"},
            "train": {"steps": 4, "batch_size": 2, "val_every": 2, "checkpoint_every": 0},
        }
    )
    result = run_job(train_job(recipe, None, TrainOptions(data=(str(tmp_path),), run_dir=tmp_path / "run")))
    assert result.skipped_batches == 0 and np.isfinite(result.final_loss)
    assert result.export.manifest.inputs == ("color", "albedo", "normal", "depth")
    assert result.export.manifest.value_transform == "log1p"


def _render_pairs(folder, count=3, size=32, seed=0):
    rng = np.random.default_rng(seed)
    (folder / "input").mkdir(parents=True)
    (folder / "target").mkdir()
    for i in range(count):
        ref = (rng.random((size, size, 3)) * 4).astype(np.float32)
        noisy = ref * rng.gamma(4.0, 0.25, ref.shape).astype(np.float32)
        cv2.imwrite(str(folder / "target" / f"s{i}_color.exr"), ref[:, :, ::-1])
        cv2.imwrite(str(folder / "input" / f"s{i}_color.exr"), noisy[:, :, ::-1])
        cv2.imwrite(str(folder / "input" / f"s{i}_albedo.exr"), rng.random((size, size, 3)).astype(np.float32))
        normal = rng.random((size, size, 3)).astype(np.float32) * 2 - 1
        cv2.imwrite(str(folder / "input" / f"s{i}_normal.exr"), normal)


def test_train_only_the_refinement_keeps_the_first_pass(tmp_path):
    """train_only = "refine": a grown refinement trains while every other weight, and so the first pass's
    kernels, stays exactly the checkpoint's; a model without a refinement, a bad part name or weight decay
    (which would shrink the frozen rows) are refused."""
    from engine.training.export import load_weights

    _render_pairs(tmp_path / "data")
    config = {"aux_inputs": ["albedo", "normal"], "features": 4, "blocks": 1, "guide": ["albedo", "color"]}
    torch.manual_seed(0)
    old = build_model("kprcan", config)
    init = tmp_path / "old.pt"
    torch.save({"arch": "kprcan", "config": config, "state_dict": old.state_dict()}, init)
    spec = {
        "model": {"id": "toy-refine", "task": "render-denoise", "arch": "kprcan", "value_transform": "log1p",
                  "config": dict(config, refine=True)},
        "data": {"kind": "paired", "patch_size": 16, "val_crop": 32, "mining": "random"},
        "degradation": {"kind": "none"},
        "train": {"steps": 3, "batch_size": 2, "val_every": 3, "checkpoint_every": 0, "lr": 1e-2,
                  "weight_decay": 0.0, "train_only": "refine"},
    }
    run_job(train_job(recipe_from_dict(spec), None, TrainOptions(data=(str(tmp_path / "data"),), init=str(init),
                                                                 run_dir=tmp_path / "run", export=False)))
    from engine.training.archs.kpcn import grow_model

    trained = load_weights(tmp_path / "run" / "last.pt")["state_dict"]
    start = build_model("kprcan", dict(config, refine=True))
    grow_model(start, old.state_dict(), config)
    for key, value in start.state_dict().items():
        if key.startswith("tail."):
            rows = len(old.state_dict()[key])
            assert torch.equal(trained[key][:rows], value[:rows]), key  # the first pass's rows, unchanged
            assert not torch.allclose(trained[key][rows:], value[rows:]), key  # the refinement's learnt
        else:
            assert torch.equal(trained[key], value), key
    without = dict(spec, model=dict(spec["model"], config=config))
    with pytest.raises(EngineError, match="no refine stage"):
        run_job(train_job(recipe_from_dict(without), None, TrainOptions(data=(str(tmp_path / "data"),),
                                                                       run_dir=tmp_path / "run2")))
    with pytest.raises(RecipeError, match="train_only"):
        recipe_from_dict(dict(spec, train=dict(spec["train"], train_only="body")))
    with pytest.raises(RecipeError, match="weight_decay"):
        recipe_from_dict(dict(spec, train=dict(spec["train"], weight_decay=1e-4)))


def test_broken_data_stops_with_a_clear_error(toy_folder, tmp_path, monkeypatch):
    real_build = trainer_module.build_data

    def all_nan(*args, **kwargs):
        train, val = real_build(*args, **kwargs)
        real_sample = train.sample

        def sample(rng):
            s = real_sample(rng)
            s.inputs["color"][:] = np.nan
            return s

        train.sample = sample
        return train, val

    monkeypatch.setattr(trainer_module, "build_data", all_nan)
    monkeypatch.setattr(trainer_module, "MAX_CONSECUTIVE_SKIPS", 3)
    with pytest.raises(EngineError, match="NaN"):
        run_job(train_job(tiny_recipe(toy_folder, steps=10), None, TrainOptions(run_dir=tmp_path, export=False)))


def test_dynamo_exporter_also_passes_parity(tmp_path):
    pytest.importorskip("onnxscript")
    from engine.training.export import build_manifest, export_model

    config = dict(ARCHITECTURES["dncnn"].tiny, downscale=2)
    model = build_model("dncnn", config)
    manifest = build_manifest(model, model_id="tiny-dynamo", task="photo-denoise")
    result = export_model(model, manifest, tmp_path, arch="dncnn", arch_config=config, exporter="dynamo")
    assert result.manifest.provenance["exporter"] == "dynamo" and result.parity_error <= 1e-4


def test_bf16_autocast_and_fine_tuning_from_an_exported_model(toy_folder, tmp_path):
    from engine.models.registry import ModelRegistry

    first = run_job(train_job(tiny_recipe(toy_folder, steps=3, amp="bf16"), None, TrainOptions(run_dir=tmp_path / "a")))
    assert first.skipped_batches == 0 and np.isfinite(first.final_loss)
    base_id = first.export.manifest.id
    assert base_id in ModelRegistry(include_classical=False)
    # Fine-tune: starts from the exported weights (architecture taken from the .pt), new id, provenance kept.
    tuned = run_job(
        train_job(
            tiny_recipe(toy_folder, steps=2),
            None,
            TrainOptions(run_dir=tmp_path / "b", init=base_id, model_id="toy-tuned", steps=2),
        )
    )
    assert tuned.export.manifest.provenance["fine_tuned_from"].endswith(f"{base_id}.pt")
    # the starting model was scored before the first step: the bar the run had to beat
    assert np.isfinite(tuned.start_val_psnr) and tuned.history[0]["step"] == 0.0
    assert tuned.history[0]["val_psnr"] == tuned.start_val_psnr
    assert tuned.export.manifest.provenance["start_val_psnr"] == round(tuned.start_val_psnr, 3)
    # a run whose every step scores worse (a wild learning rate) exports the starting weights, unchanged
    wild = run_job(
        train_job(
            tiny_recipe(toy_folder, steps=2, lr=50.0, warmup_steps=0),
            None,
            TrainOptions(run_dir=tmp_path / "w", init=base_id, model_id="toy-wild", steps=2),
        )
    )
    assert wild.best_step == 0 and wild.best_val_psnr == wild.start_val_psnr
    base_weights = torch.load(str(first.export.weights_path), weights_only=True)["state_dict"]
    wild_weights = torch.load(str(wild.export.weights_path), weights_only=True)["state_dict"]
    assert all(torch.equal(base_weights[k], wild_weights[k]) for k in base_weights)
    # a fine-tune cancelled and resumed keeps its starting score (from the checkpoint, not scored again)
    token = CancelToken()
    options = dict(run_dir=tmp_path / "r", init=base_id, steps=4, export=False)
    with pytest.raises(JobCancelled):
        run_job(train_job(tiny_recipe(toy_folder, steps=4), token, TrainOptions(**options)),
                lambda progress: progress.metrics.get("step") == 2.0 and token.cancel())
    resumed = run_job(train_job(tiny_recipe(toy_folder, steps=4), None, TrainOptions(**options, resume=True)))
    assert resumed.steps == 4 and resumed.start_val_psnr == pytest.approx(tuned.start_val_psnr)
    assert [h["step"] for h in resumed.history if "val_psnr" in h][0] == 0.0
    with pytest.raises(EngineError, match="no model named"):
        run_job(train_job(tiny_recipe(toy_folder, steps=1), None, TrainOptions(run_dir=tmp_path / "c", init="nope")))


def test_gray_models_get_gray_samples(toy_folder, tmp_path):
    recipe = tiny_recipe(toy_folder, steps=2)
    recipe = recipe.replace(
        model=recipe.model.__class__(**{**recipe.model.__dict__, "config": {"features": 4, "depth": 3, "channels": 1}})
    )
    result = run_job(train_job(recipe, None, TrainOptions(run_dir=tmp_path, out_dir=tmp_path / "out")))
    assert result.export.manifest.channels == 1 and np.isfinite(result.final_loss)


def test_a_recipe_can_start_from_a_base_and_state_only_its_changes(tmp_path):
    (tmp_path / "exp").mkdir()
    (tmp_path / "base.toml").write_text(
        '[model]\nid = "toy"\ntask = "photo-denoise"\narch = "dncnn"\n[model.config]\nfeatures = 16\ndepth = 5\n'
        '[data]\ntrain = ["a", "b"]\npatch_size = 48\n[train]\nsteps = 100\nlr = 1e-3\n'
    )
    (tmp_path / "exp" / "mid.toml").write_text('base = "../base.toml"\n[train]\nlr = 5e-4\n')
    (tmp_path / "exp" / "leaf.toml").write_text(
        'base = "mid.toml"\n[model]\nid = "toy-wide"\n[model.config]\nfeatures = 32\n[data]\ntrain = ["c"]\n'
    )
    recipe = load_recipe(tmp_path / "exp" / "leaf.toml")
    assert recipe.model.id == "toy-wide" and recipe.model.task == "photo-denoise"
    assert recipe.model.config == {"features": 32, "depth": 5}  # nested tables merge
    assert recipe.data.train == ("c",) and recipe.data.patch_size == 48  # a list replaces the base's
    assert recipe.train.lr == 5e-4 and recipe.train.steps == 100  # through the chain
    assert recipe.source.endswith("leaf.toml")

    (tmp_path / "loop_a.toml").write_text('base = "loop_b.toml"\n')
    (tmp_path / "loop_b.toml").write_text('base = "loop_a.toml"\n')
    with pytest.raises(RecipeError, match="cycle"):
        load_recipe(tmp_path / "loop_a.toml")
    (tmp_path / "orphan.toml").write_text('base = "gone.toml"\n[train]\nsteps = 3\n')
    with pytest.raises(RecipeError, match="base gone.toml does not exist"):
        load_recipe(tmp_path / "orphan.toml")
    (tmp_path / "typo.toml").write_text('base = "base.toml"\n[train]\nstepz = 3\n')
    with pytest.raises(RecipeError, match="unknown key"):
        load_recipe(tmp_path / "typo.toml")


def test_shipped_models_name_self_contained_recipes():
    """A shipped model's recipe states everything (no ``base``), so editing an experiment cannot change it."""
    import tomllib

    root = Path(__file__).resolve().parent.parent
    manifests = sorted((root / "resources" / "models").glob("*.json"))
    named = [json.loads(path.read_text())["provenance"].get("recipe") for path in manifests]
    named = [name for name in named if name]
    assert len(named) >= 5
    for name in named:
        assert "base" not in tomllib.loads((root / name).read_text()), name


def test_fine_tuning_a_shipped_render_model_picks_a_whole_network_recipe():
    """The recipes that made the render models are training runs of their own (rounds on firefly scenes from a
    run folder's checkpoint or from weights pinned to an older commit); a user's
    per-shot fine-tune gets the model's fine-tuning recipe instead: the same network, every weight trainable, its
    lr used as it is, starting from the shipped weights."""
    from engine.training.recipes import FINE_TUNE_LR_FACTOR, fine_tuning_lr, list_recipes, recipe_for_fine_tuning
    from engine.training.trainer import resolve_init

    root = Path(__file__).resolve().parent.parent
    recipes = list_recipes()
    for model_id in ("render-kprcan-aov", "render-kprcan-color"):
        made_by = json.loads((root / "resources" / "models" / f"{model_id}.json").read_text())["provenance"]["recipe"]
        assert not load_recipe(root / made_by).train.for_fine_tuning
        chosen = recipe_for_fine_tuning(recipes, made_by)
        assert chosen is not None and chosen.train.for_fine_tuning and chosen.train.train_only == ""
        assert chosen.model == load_recipe(root / made_by).model  # the base's weights load as they are
        assert fine_tuning_lr(chosen) == chosen.train.lr
        # it starts from the shipped model even without --init
        assert chosen.train.init == model_id and resolve_init(chosen.train.init).name == f"{model_id}.pt"
        # a model fine-tuned with it names it in turn, and gets it again
        assert recipe_for_fine_tuning(recipes, chosen.source) is chosen
    # without a fine-tuning recipe of its model: the one that made it, at a fraction of its rate
    plain = recipe_for_fine_tuning(recipes, "recipes/sr_x4.toml")
    assert plain is not None and plain.source.endswith("sr_x4.toml") and not plain.train.for_fine_tuning
    assert fine_tuning_lr(plain) == pytest.approx(plain.train.lr * FINE_TUNE_LR_FACTOR)
    assert recipe_for_fine_tuning(recipes, "recipes/no_such_recipe.toml") is None
    assert recipe_for_fine_tuning(recipes, "") is None
    with pytest.raises(RecipeError, match="for_fine_tuning"):
        recipe_from_dict({"model": {"id": "x", "task": "photo-denoise", "arch": "dncnn"},
                          "train": {"for_fine_tuning": "yes"}})
