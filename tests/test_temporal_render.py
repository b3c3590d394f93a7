"""The temporal render denoiser (issue 44): exact motion of generated shots, the temporal architecture's valid
rule, its ONNX export, and a tiny recurrent training run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.motion import TEMPORAL_INPUTS, inside_mask, warp  # noqa: E402
from engine.training.archs import ARCHITECTURES, build_model  # noqa: E402

TINY = dict(ARCHITECTURES["kprcan-temporal"].tiny)


def _inputs(size: int = 16, seed: int = 0, valid: float | torch.Tensor = 1.0):
    g = torch.Generator().manual_seed(seed)
    color = torch.rand(1, 3, size, size, generator=g)
    albedo = torch.rand(1, 3, size, size, generator=g)
    normal = torch.rand(1, 3, size, size, generator=g) * 2 - 1
    previous_color = torch.rand(1, 3, size, size, generator=g)
    previous_output = torch.rand(1, 3, size, size, generator=g)
    mask = valid if isinstance(valid, torch.Tensor) else torch.full((1, 1, size, size), float(valid))
    return [color, albedo, normal, previous_color, previous_output, mask]


def _trained_like(model):
    """Random (non-zero) weights everywhere, as after training: the zero-initialised temporal head would hide a
    leak of history into the output."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model.eval()


def test_inputs_and_shapes():
    model = build_model("kprcan-temporal", TINY).eval()
    assert model.input_roles == ("color", "albedo", "normal", *TEMPORAL_INPUTS)
    with torch.no_grad():
        out = model(*_inputs(16))
        weights = model.blend_weights(*_inputs(16))
    assert out.shape == (1, 3, 16, 16)
    assert weights.shape == (1, len(model.frame.layout) + 25, 16, 16)
    assert torch.allclose(weights.sum(dim=1), torch.ones(1, 16, 16), atol=1e-5)


def test_invalid_history_changes_nothing():
    """previous_valid = 0: the output does not depend on previous_color / previous_output at all."""
    model = _trained_like(build_model("kprcan-temporal", TINY))
    first = _inputs(16, seed=1, valid=0.0)
    second = list(first)
    second[3] = torch.rand(1, 3, 16, 16) * 50.0
    second[4] = torch.rand(1, 3, 16, 16) * 50.0
    with torch.no_grad():
        a, b = model(*first), model(*second)
        history = model.blend_weights(*first)[:, len(model.frame.layout):]
    assert torch.equal(a, b)
    assert float(history.abs().max()) == 0.0
    # and with valid = 1 the same change does change the output (the test can fail)
    first[5] = second[5] = torch.ones(1, 1, 16, 16)
    with torch.no_grad():
        assert float((model(*first) - model(*second)).abs().max()) > 1e-3


def test_partly_invalid_history_is_ignored_where_invalid():
    model = _trained_like(build_model("kprcan-temporal", TINY))
    valid = torch.ones(1, 1, 24, 24)
    valid[:, :, :, :12] = 0.0  # the left half was disoccluded
    first = _inputs(24, seed=2, valid=valid)
    second = list(first)
    noise = torch.rand(1, 3, 24, 24) * 10
    second[3] = first[3] + noise * (1 - valid)  # changes only where invalid
    second[4] = first[4] + noise * (1 - valid)
    with torch.no_grad():
        assert torch.equal(model(*first), model(*second))


def test_without_history_it_is_the_per_frame_model():
    """With no valid history the output is the per-frame model's, whatever the temporal parts learnt."""
    frame_model = _trained_like(build_model("kprcan", TINY))
    model = _trained_like(build_model("kprcan-temporal", TINY))
    assert model.load_frame_weights(frame_model.state_dict()) == []
    inputs = _inputs(16, seed=3, valid=0.0)
    with torch.no_grad():
        assert torch.allclose(model(*inputs), frame_model(*inputs[:3]), atol=1e-5)


def test_torch_warp_matches_engine_warp():
    from engine.training.temporal import inside, torch_warp

    rng = np.random.default_rng(0)
    image = rng.random((20, 24, 3)).astype(np.float32)
    flow = rng.uniform(-3, 3, (20, 24, 2)).astype(np.float32)
    ours = torch_warp(torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(flow).permute(2, 0, 1)[None])
    # OpenCV's remap interpolates at 1/32 pixel (fixed point): differences up to a 64th of a pixel's step
    difference = np.abs(ours[0].permute(1, 2, 0).numpy() - warp(image, flow))
    assert difference.max() < 1 / 32 and difference.mean() < 4e-3
    mask = inside(torch.from_numpy(flow).permute(2, 0, 1)[None])[0, 0].numpy()
    assert np.array_equal(mask, inside_mask(flow))


def test_flicker_measure():
    from engine.training.temporal import shot_scores

    rng = np.random.default_rng(1)
    reference = rng.random((5, 8, 8, 3)).astype(np.float32)
    assert shot_scores(reference, reference) == {"relmse": 0.0, "flicker": 0.0}
    steady = reference + 0.1  # a constant error: per-frame error, no flicker
    noisy = reference + rng.normal(0, 0.1, reference.shape)
    assert shot_scores(steady, reference)["flicker"] < 1e-10 < shot_scores(steady, reference)["relmse"]
    assert shot_scores(noisy, reference)["flicker"] > shot_scores(noisy, reference)["relmse"]


def test_onnx_matches_torch(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from engine.training.export import build_manifest, export_model

    model = _trained_like(build_model("kprcan-temporal", TINY))
    manifest = build_manifest(model, model_id="tiny-temporal", task="render-denoise", value_transform="log1p")
    assert list(manifest.inputs) == ["color", "albedo", "normal", *TEMPORAL_INPUTS]
    result = export_model(model, manifest, tmp_path, arch="kprcan-temporal", arch_config=TINY, trace_size=32,
                          measure_memory=False)
    session = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    valid = torch.ones(1, 1, 24, 32)
    valid[:, :, 10:] = 0
    inputs = _inputs(32, seed=4, valid=torch.ones(1, 1, 32, 32))
    inputs = [t[:, :, :24] for t in inputs[:5]] + [valid]
    got = session.run(None, {name: t.numpy() for name, t in zip(model.input_roles, inputs, strict=True)})[0]
    with torch.no_grad():
        expected = model(*inputs).numpy()
    assert np.abs(got - expected).max() < 1e-4
    assert json.loads(result.manifest_path.read_text())["inputs"][-3:] == list(TEMPORAL_INPUTS)


# -- shots ------------------------------------------------------------------------------------------------------

def _write_synthetic_shot(folder: Path, seed: int, frames: int = 5, size: int = 24, shift: int = 2) -> None:
    """A texture panned ``shift`` px right per frame (so the backward flow is (-shift, 0)), noisy frames beside
    clean references, in render-shot's layout."""
    from engine.render_data.exr import write_buffer, write_layered

    rng = np.random.default_rng(seed)
    wide = rng.random((size, size + shift * frames, 3)).astype(np.float32) + 0.1
    folder.mkdir(parents=True)
    visible = np.zeros((frames, size, size), np.uint8)
    for t in range(frames):
        start = shift * (frames - 1 - t)  # the view moves left over the texture: content moves right
        clean = wide[:, start : start + size]
        flow = np.zeros((size, size, 2), np.float32)
        if t:
            flow[..., 0] = -shift
            visible[t] = 1
        buffers = {"color": clean * rng.gamma(4.0, 0.25, clean.shape).astype(np.float32),
                   "albedo": np.clip(clean, 0, 1), "normal": np.zeros_like(clean) + [0, 0, 1],
                   "depth": np.ones((size, size, 1), np.float32), "motion": flow}
        write_layered(folder / f"frame_{t:04d}.exr", buffers, half=False)
        write_buffer(folder / f"frame_{t:04d}_ref.exr", "color", clean)
    np.savez_compressed(folder / "visibility.npz", visible=visible)
    (folder / "shot.json").write_text(json.dumps({"seed": seed, "frames": frames}), encoding="utf-8")


def test_tiny_training_run_end_to_end(tmp_path):
    from engine.jobs import run_job
    from engine.training.recipes import recipe_from_dict
    from engine.training.ship import ShipRequest, ship
    from engine.training.temporal import TemporalOptions, load_shot, train_temporal

    for seed in range(3):
        _write_synthetic_shot(tmp_path / "train" / f"shot_{seed}", seed)
    _write_synthetic_shot(tmp_path / "val" / "shot_9", 9)
    shot = load_shot(tmp_path / "train" / "shot_0")
    # every layer as the app's EXR reader reads it (OpenEXR's API groups R, G, B layers: the colour once came back
    # as the albedo)
    from engine.imageio import read_image

    frame = read_image(tmp_path / "train" / "shot_0" / "frame_0001.exr")
    assert np.array_equal(shot.color[1], frame.pixels[:, :, :3])
    assert np.array_equal(shot.albedo[1], frame.layers["albedo"][:, :, :3])
    assert np.array_equal(shot.normal[1], frame.layers["normal"][:, :, :3])
    assert np.array_equal(shot.reference[1], read_image(tmp_path / "train" / "shot_0" / "frame_0001_ref.exr").pixels)
    # the synthetic motion is right: the previous reference warped onto the next is that reference
    assert np.allclose(warp(shot.reference[0], shot.flow[1])[:, 2:], shot.reference[1][:, 2:], atol=1e-6)
    recipe = recipe_from_dict({
        "model": {"id": "tiny-temporal", "task": "render-denoise", "arch": "kprcan-temporal",
                  "value_transform": "log1p", "config": TINY},
        "data": {"kind": "shots", "train": [str(tmp_path / "train")], "val": [str(tmp_path / "val")],
                 "patch_size": 16},
        "degradation": {"kind": "none"},
        "train": {"steps": 3, "batch_size": 2, "clip_frames": 3, "lr": 1e-3, "warmup_steps": 1, "val_every": 2,
                  "checkpoint_every": 1, "loss": "l1+relmse", "temporal_weight": 1.0},
    })
    run_dir = tmp_path / "run"
    result = run_job(train_temporal(recipe, TemporalOptions(run_dir=run_dir, threads=1)))
    assert result.steps == 3 and (run_dir / "last.pt").is_file() and (run_dir / "best.pt").is_file()
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["step"] for h in history] == [0, 2, 3]
    assert all(np.isfinite(h["val_relmse"]) and np.isfinite(h["val_flicker"]) for h in history)
    # resuming continues from step 3
    more = run_job(train_temporal(recipe, TemporalOptions(run_dir=run_dir, steps=4, resume=True, threads=1)))
    assert more.steps == 4
    exported = ship(ShipRequest(source=run_dir, out=tmp_path / "models"))
    assert exported.parity_error < 1e-4
    assert list(exported.manifest.inputs)[-3:] == list(TEMPORAL_INPUTS)


def test_mitsuba_shot_motion_is_exact(tmp_path):
    """The motion layer of a rendered shot: the camera model matches Mitsuba's, and the previous frame's normals
    warped by it matches this frame's where the point was visible (seed 60, 12 degrees: mean flow 2.2 px; measured
    mean normal error 0.015 warped, 0.080 unwarped, 0.133 warped the wrong way)."""
    mi = pytest.importorskip("mitsuba")
    from engine.jobs import run_job
    from engine.render_data import mitsuba_backend
    from engine.render_data.camera_motion import pixel_rays
    from engine.render_data.generate import ShotRequest, generate_shot
    from engine.training.temporal import load_shot

    out = tmp_path / "shot"
    run_job(generate_shot(ShotRequest(out=out, seed=60, frames=2, spp=16, ref_spp=16, width=48, height=40,
                                      threads=1, orbit_degrees=12.0)))
    info = json.loads((out / "shot.json").read_text())
    scene = mitsuba_backend.build_scene({**info["spec"], "camera": info["cameras"][1]}, 48, 40)
    _, directions = pixel_rays(info["cameras"][1], 48, 40)
    ys, xs = np.array([0, 7, 39]), np.array([0, 30, 47])
    position = mi.Point2f(mi.Float((xs + 0.5) / 48), mi.Float((ys + 0.5) / 40))
    ray, _ = scene.sensors()[0].sample_ray(0.0, 0.5, position, mi.Point2f(0.5, 0.5))
    assert np.allclose(np.array(ray.d).reshape(3, -1).T, directions[ys, xs], atol=1e-5)

    shot = load_shot(out)
    assert np.all(shot.flow[0] == 0) and np.abs(shot.flow[1]).max() > 1.0
    mask = (inside_mask(shot.flow[1]) * shot.visible[1]) > 0
    import cv2

    mask = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # away from edges (filtered pixels)
    # the shading normal (smooth, little sampling noise; the albedo of textures and glass is noisier at 16 spp)
    warped = np.abs(warp(shot.normal[0], shot.flow[1]) - shot.normal[1])[mask].mean()
    unwarped = np.abs(shot.normal[0] - shot.normal[1])[mask].mean()
    reversed_ = np.abs(warp(shot.normal[0], -shot.flow[1]) - shot.normal[1])[mask].mean()
    assert warped < 0.3 * unwarped and warped < 0.3 * reversed_


def _write_blender_like_shot(folder: Path, frames: int = 3, size: int = 16, shift: int = 2) -> None:
    """Frames in Blender's layer names (ViewLayer.Combined, Denoising Albedo / Normal, Vector: X Y = previous
    position minus this one, y up; Z W = this position minus the next) with Noise2Noise targets beside them."""
    import OpenEXR

    rng = np.random.default_rng(5)
    folder.mkdir(parents=True)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    for t in range(frames):
        plane = lambda: rng.random((size, size)).astype(np.float32)  # noqa: E731
        channels = {f"ViewLayer.Combined.{c}": plane() for c in "RGB"}
        channels.update({f"ViewLayer.Denoising Albedo.{c}": plane() for c in "RGB"})
        channels.update({f"ViewLayer.Denoising Normal.{c}": v for c, v in
                         zip("XYZ", (np.zeros((size, size), np.float32), np.zeros((size, size), np.float32),
                                     np.ones((size, size), np.float32)), strict=True)})
        # content moves `shift` px right per frame
        for c, value in zip("XYZW", (-shift, 0.0, -shift, 0.0), strict=True):
            channels[f"ViewLayer.Vector.{c}"] = np.full((size, size), value, np.float32)
        with OpenEXR.File(header, channels) as exr:
            exr.write(str(folder / f"frame_{t:04d}.exr"))
        with OpenEXR.File(header, {c: plane() for c in "RGB"}) as exr:
            exr.write(str(folder / f"frame_{t:04d}_target.exr"))
    (folder / "shot.json").write_text("{}", encoding="utf-8")


def test_blender_shot_loads_through_the_exr_reader(tmp_path):
    from engine.training.temporal import load_shot

    _write_blender_like_shot(tmp_path / "shot")
    shot = load_shot(tmp_path / "shot")
    assert shot.noise2noise and not shot.exact_visibility
    assert shot.color.shape == (3, 16, 16, 3)
    assert np.all(shot.flow[0] == 0)
    assert np.allclose(shot.flow[1][..., 0], -2) and np.allclose(shot.flow[1][..., 1], 0)
    # consistent backward and forward vectors: valid wherever the source is inside the frame (x >= 2)
    assert np.all(shot.visible[1][:, 2:] == 1) and np.all(shot.visible[1][:, :2] == 0)
