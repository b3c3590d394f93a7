"""Training a temporal render denoiser (archs/kpcn_temporal.py) on shots: recurrent clips, a temporal loss.

A recipe with ``[data] kind = "shots"`` trains here (``python main.py train --recipe ...`` hands it over): its
``train`` folders hold shot folders as ``render-shot`` writes them (``frame_0000.exr`` with ``albedo`` /
``normal`` / ``motion`` layers beside ``frame_0000_ref.exr``, ``visibility.npz``; engine/render_data/generate.py).

One step: a batch of clips of ``clip_frames`` consecutive frames (the same ``patch_size`` crop of each), run
recurrently as the shot restorer runs the model (engine/motion.py's ``TEMPORAL_INPUTS``): the first frame of a clip
has ``previous_valid`` = 0 and its own colour as history (run without gradient: it is the per-frame model's case);
every later frame gets the previous frame's noisy colour and the model's own output warped onto it by the motion
layer (bilinear, as ``engine.motion.warp``; gradients flow back through the warp into the earlier frames).
``previous_valid`` is the warp's inside-the-crop mask times the exact visibility (visibility.npz) in half of the
clips and the inside mask alone in the others (what the shot restorer can tell from a two-channel motion pass);
``no_motion_prob`` of the clips get zero flow with every pixel valid (a shot without a motion pass), so that the
model learns to reject history that disagrees with the present.

Loss per frame: the recipe's ``l1+relmse`` (L1 of log1p values plus ``relmse_weight`` times the relative MSE
against the reference); plus ``temporal_weight`` times the relative MSE of consecutive-frame differences against
the reference's (Chaitanya et al. 2017's temporal loss, in the form of bench/flicker.py's measure: ((o_t - o_{t-1})
- (r_t - r_{t-1}))^2 / (((r_t + r_{t-1}) / 2)^2 + 0.01), linear values in frame t's exposure).

Every value is in the model's space as the app gives it: log1p of the linear colour times the frame's own
``auto_exposure_scale`` (engine/transforms.py), history converted with the current frame's scale. Checkpoints
(``last.pt``, ``best.pt`` by validation relMSE + flicker) carry what ``python main.py ship RUN`` needs.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..jobs import CancelToken, EtaClock, Progress
from ..metrics import shot_scores
from ..transforms import auto_exposure_scale, prepare_aov
from .recipes import Recipe, resolve_path

#: Relative MSE's epsilon (as losses.relative_mse and the render benchmark).
EPSILON = 0.01
#: Learning-rate factor of the temporal parts (temporal head and tail), which start from zero.
NEW_PARTS_LR_FACTOR = 10.0
#: Steps between looks for new shot folders (a recipe with its own ``[data] val``: the training set may grow).
RESCAN_EVERY = 25


@dataclass
class Shot:
    """One shot in memory: (F, H, W, C) float32 arrays, linear colour as rendered."""

    name: str
    color: np.ndarray
    albedo: np.ndarray
    normal: np.ndarray
    reference: np.ndarray
    flow: np.ndarray  # (F, H, W, 2) backward flow; frame 0's is zero
    visible: np.ndarray  # (F, H, W) 1 where the point was visible in the previous frame
    #: The references are independent noisy renders (Noise2Noise targets): the relMSE's normaliser is the
    #: detached prediction's (losses.relative_mse), not the noisy target's.
    noise2noise: bool = False
    #: ``visible`` is the renderer's exact visibility (render-shot's visibility.npz), which a shot restorer does not
    #: have; False: it is what the motion pass itself tells (consistency of backward and forward flow, or inside).
    exact_visibility: bool = True


def _read_exr(path: Path) -> dict[str, np.ndarray]:
    import OpenEXR

    with OpenEXR.File(str(path)) as exr:
        return {name: np.asarray(channel.pixels, dtype=np.float32) for name, channel in exr.channels().items()}


def _stack(channels: dict[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    """The (H, W, len(names)) array of these channels. OpenEXR's Python API groups a layer's R, G, B channels into
    one (H, W, 3) entry (``RGB``, ``albedo``); X, Y, Z channels stay apart."""
    if all(name in channels for name in names):
        return np.stack([channels[name] for name in names], axis=-1)
    layer = names[0].rsplit(".", 1)[0] if "." in names[0] else ""
    for key in (layer or "RGB", f"{layer}.RGB" if layer else "RGB"):
        grouped = channels.get(key)
        if grouped is not None and grouped.ndim == 3 and grouped.shape[2] == len(names):
            return grouped
    raise KeyError(f"no channels {', '.join(names)} (the file has {', '.join(sorted(channels))})")


def frame_files(folder: Path) -> list[Path]:
    """The noisy frames of a shot folder, in order (``NAME_ref.exr``, ``NAME_target.exr`` and Blender's own
    ``NAME_blender.exr`` beside them are not frames)."""
    return sorted(p for p in folder.glob("*.exr") if not p.stem.endswith(("_ref", "_target", "_blender")))


def _target_of(path: Path) -> tuple[Path, bool]:
    """A frame's reference (``_ref``), else its Noise2Noise target (``_target``: an independent noisy render);
    and whether it is the latter."""
    reference = path.with_name(path.stem + "_ref.exr")
    if reference.is_file():
        return reference, False
    return path.with_name(path.stem + "_target.exr"), True


def load_shot(folder: Path) -> Shot:
    """A shot folder: ``render-shot``'s (motion layers, visibility.npz) or a renderer's multi-layer frames read by
    the app's EXR reader (engine/imageio: Blender's Denoising Albedo / Normal and ``Vector`` pass; the Cycles
    shots of engine/render_data/cycles_shot.py), whose visibility is the forward/backward consistency of the
    motion pass where it has both directions (engine.motion.consistency_mask), else the inside mask."""
    frames = frame_files(folder)
    if len(frames) < 2:
        raise ValueError(f"{folder}: a shot needs at least two frames")
    if "motion.X" not in _read_exr(frames[0]) or not (folder / "visibility.npz").is_file():
        return _load_engine_shot(folder, frames)
    color, albedo, normal, reference, flow = [], [], [], [], []
    for path in frames:
        channels = _read_exr(path)
        color.append(_stack(channels, ("R", "G", "B")))
        albedo.append(prepare_aov("albedo", _stack(channels, ("albedo.R", "albedo.G", "albedo.B"))))
        normal.append(prepare_aov("normal", _stack(channels, ("normal.X", "normal.Y", "normal.Z"))))
        flow.append(_stack(channels, ("motion.X", "motion.Y")))
        reference.append(_stack(_read_exr(path.with_name(path.stem + "_ref.exr")), ("R", "G", "B")))
    visible = np.load(folder / "visibility.npz")["visible"].astype(np.float32)
    arrays = [np.nan_to_num(np.stack(a), nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
              for a in (color, albedo, normal, reference, flow)]
    return Shot(folder.name, *arrays, visible)


def _load_engine_shot(folder: Path, frames: list[Path]) -> Shot:
    from ..imageio import read_image
    from ..motion import consistency_mask, flow_to_next, flow_to_previous, inside_mask

    color, albedo, normal, reference, backward, forward = [], [], [], [], [], []
    noise2noise = False
    for path in frames:
        image = read_image(path)
        height, width = image.pixels.shape[:2]
        color.append(np.asarray(image.pixels[:, :, :3], np.float32))
        for name, out in (("albedo", albedo), ("normal", normal)):
            if name not in image.layers:
                raise ValueError(f"{path}: no {name} pass")
            out.append(prepare_aov(name, image.layers[name][:, :, :3]))
        role = dict(image.meta.extra.get("aov_roles", {}) or {}).get("motion")
        if not role:
            raise ValueError(f"{path}: no motion pass")
        layer = image.layers[role["layer"]]
        # engine/motion.py's generic convention is a layer named "motion"; aov.py's table puts that name in a
        # row with Arnold's, whose convention is not verified
        renderer = "generic" if role["layer"].rsplit(".", 1)[-1].lower() == "motion" else role.get("renderer", "")
        back = flow_to_previous(layer, renderer)
        if back is None:
            raise ValueError(f"{path}: motion pass {role['layer']} of an unverified convention")
        backward.append(back)
        forward.append(flow_to_next(layer, renderer))
        target, n2n = _target_of(path)
        noise2noise |= n2n
        reference.append(np.asarray(read_image(target).pixels[:, :, :3], np.float32))
    visible = np.zeros((len(frames), height, width), np.float32)
    for t in range(1, len(frames)):
        visible[t] = (consistency_mask(backward[t], forward[t - 1]) if forward[t - 1] is not None
                      else inside_mask(backward[t]))
    backward[0] = np.zeros_like(backward[0])
    arrays = [np.nan_to_num(np.stack(a), nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
              for a in (color, albedo, normal, reference, backward)]
    return Shot(folder.name, *arrays, visible, noise2noise, exact_visibility=False)


def find_shots(roots: Sequence[str | Path]) -> list[Path]:
    """Shot folders (holding ``shot.json``) under ``roots`` (a root may be a shot folder itself)."""
    found: list[Path] = []
    for root in roots:
        root = resolve_path(root)
        if (root / "shot.json").is_file():
            found.append(root)
        else:
            found.extend(sorted(p.parent for p in root.glob("*/shot.json")))
    return found


# -- tensors --------------------------------------------------------------------------------------------------

def torch_warp(image, flow):
    """``engine.motion.warp`` in torch (N, C, H, W) by (N, 2, H, W): bilinear, edge pixels replicated; the
    gradient flows into ``image``."""
    import torch
    import torch.nn.functional as F

    n, _, height, width = image.shape
    ys, xs = torch.meshgrid(torch.arange(height, dtype=image.dtype), torch.arange(width, dtype=image.dtype),
                            indexing="ij")
    x = (xs + flow[:, 0]).clamp(0, width - 1)
    y = (ys + flow[:, 1]).clamp(0, height - 1)
    grid = torch.stack([2 * x / max(width - 1, 1) - 1, 2 * y / max(height - 1, 1) - 1], dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def inside(flow):
    """``engine.motion.inside_mask`` in torch: (N, 1, H, W)."""
    import torch

    _, _, height, width = flow.shape
    ys, xs = torch.meshgrid(torch.arange(height, dtype=flow.dtype), torch.arange(width, dtype=flow.dtype),
                            indexing="ij")
    x, y = xs + flow[:, 0], ys + flow[:, 1]
    return ((x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)).to(flow.dtype)[:, None]


@dataclass
class Clip:
    """A batch of clips as tensors: (N, T, C, H, W) linear colour and references, AOVs, flows, masks, and each
    frame's exposure scale (N, T)."""

    color: Any
    albedo: Any
    normal: Any
    reference: Any
    flow: Any
    valid_extra: Any  # (N, T, 1, H, W): visibility (or ones), multiplied with the inside mask
    exposure: Any
    noise2noise: Any = None  # (N,) 1.0 where the references are Noise2Noise targets


def sample_clips(shots: Sequence[Shot], rng: np.random.Generator, batch: int, frames: int, patch: int,
                 no_motion_prob: float = 0.1, exact_valid_prob: float = 0.5) -> Clip:
    import torch

    items = []
    for _ in range(batch):
        shot = shots[int(rng.integers(len(shots)))]
        count, height, width = shot.color.shape[:3]
        length = min(frames, count)
        start = int(rng.integers(count - length + 1))
        size = min(patch, height, width)
        y, x = int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1))
        window = (slice(start, start + length), slice(y, y + size), slice(x, x + size))
        color, reference = shot.color[window], shot.reference[window]
        flow, visible = shot.flow[window].copy(), shot.visible[window]
        extra = visible if rng.random() < exact_valid_prob else np.ones_like(visible)
        if rng.random() < no_motion_prob:
            flow[:] = 0.0
            extra = np.ones_like(visible)
        exposure = np.array([auto_exposure_scale(shot.color[start + i]) for i in range(length)], np.float32)
        items.append((color, shot.albedo[window], shot.normal[window], reference, flow, extra[..., None], exposure,
                      float(shot.noise2noise)))

    def tensor(index: int) -> Any:
        return torch.from_numpy(np.ascontiguousarray(np.stack([item[index] for item in items]))).permute(
            0, 1, 4, 2, 3).contiguous()

    exposure = torch.from_numpy(np.stack([item[6] for item in items]))
    noise2noise = torch.tensor([item[7] for item in items], dtype=torch.float32)
    return Clip(tensor(0), tensor(1), tensor(2), tensor(3), tensor(4), tensor(5), exposure, noise2noise)


def to_model(linear, exposure):
    """log1p(max(x, 0) * exposure), exposure (N,) per item."""
    import torch

    return torch.log1p(linear.clamp(min=0) * exposure.view(-1, 1, 1, 1))


def from_model(values, exposure):
    import torch

    return torch.expm1(values.clamp(max=20.0)) / exposure.view(-1, 1, 1, 1)


def run_clip(model, clip: Clip, grad_first: bool = False) -> list[Any]:
    """The model's outputs (log1p, each frame in its own exposure) over a clip, recurrently as the shot restorer
    runs it: frame 0 with no history, frame t with frame t - 1's noisy colour and output warped onto it."""
    import torch

    outputs = []
    frames = clip.color.shape[1]
    previous_linear = None
    for t in range(frames):
        exposure = clip.exposure[:, t]
        color = to_model(clip.color[:, t], exposure)
        if t == 0:
            previous_color = previous_output = color
            valid = torch.zeros_like(color[:, :1])
        else:
            flow = clip.flow[:, t]
            valid = inside(flow) * clip.valid_extra[:, t]
            previous_color = to_model(torch_warp(clip.color[:, t - 1], flow), exposure)
            previous_output = to_model(torch_warp(previous_linear, flow), exposure)
        inputs = (color, clip.albedo[:, t], clip.normal[:, t], previous_color, previous_output, valid)
        if t == 0 and not grad_first:
            with torch.no_grad():
                out = model(*inputs)
        else:
            out = model(*inputs)
        outputs.append(out)
        previous_linear = from_model(out, exposure)
    return outputs


def clip_losses(outputs: Sequence[Any], clip: Clip, relmse_weight: float, temporal_weight: float,
                first: int = 1) -> tuple[Any, dict[str, float]]:
    """The per-frame loss over frames ``first``..: L1 of log1p values + ``relmse_weight`` * relMSE against a
    reference; against a Noise2Noise target the relMSE alone (L1's minimiser is the noisy target's median, not its
    mean), normalised by the detached prediction (losses.relative_mse). Plus ``temporal_weight`` times the
    temporal term on each pair (t - 1, t) with t >= ``first`` (normalised by the prediction too for N2N targets)."""
    import torch

    def per_item(x: Any) -> Any:
        return x.flatten(1).mean(dim=1)

    n2n = clip.noise2noise if clip.noise2noise is not None else torch.zeros(clip.color.shape[0])
    frame_terms, temporal_terms = [], []
    for t in range(first, len(outputs)):
        exposure = clip.exposure[:, t]
        target = to_model(clip.reference[:, t], exposure)
        out = outputs[t]
        linear = torch.expm1(out.clamp(max=20.0))
        ref = torch.expm1(target)
        scaled = n2n.view(-1, 1, 1, 1)
        normaliser = (scaled * linear.detach() + (1 - scaled) * ref) ** 2 + EPSILON
        relmse = per_item((linear - ref) ** 2 / normaliser)
        l1 = per_item((out - target).abs())
        frame_terms.append(((1 - n2n) * (l1 + relmse_weight * relmse) + n2n * relmse).mean())
        # frame t - 1 in frame t's exposure units
        previous = from_model(outputs[t - 1], clip.exposure[:, t - 1]) * exposure.view(-1, 1, 1, 1)
        previous_ref = clip.reference[:, t - 1].clamp(min=0) * exposure.view(-1, 1, 1, 1)
        middle = scaled * (linear.detach() + previous.detach()) / 2 + (1 - scaled) * (ref + previous_ref) / 2
        # as engine.metrics.temporal_relmse (bench/flicker.py)
        temporal_terms.append((((linear - previous) - (ref - previous_ref)) ** 2 / (middle**2 + EPSILON)).mean())
    frame_loss = torch.stack(frame_terms).mean()
    temporal_loss = torch.stack(temporal_terms).mean()
    loss = frame_loss + temporal_weight * temporal_loss
    return loss, {"frame": frame_loss.item(), "temporal": temporal_loss.item()}


# -- evaluation on whole shots ---------------------------------------------------------------------------------

def shot_clip(shot: Shot) -> Clip:
    """A whole shot as a batch of one clip (every frame, whole frames)."""
    import torch

    def tensor(array: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2)[None].contiguous()

    exposure = torch.tensor([[auto_exposure_scale(frame) for frame in shot.color]], dtype=torch.float32)
    return Clip(tensor(shot.color), tensor(shot.albedo), tensor(shot.normal), tensor(shot.reference),
                tensor(shot.flow), tensor(np.ones_like(shot.visible[..., None])), exposure,
                torch.tensor([float(shot.noise2noise)]))


def restore_shot_torch(model, shot: Shot) -> np.ndarray:
    """The model run recurrently over a whole shot (torch; inside mask as the only validity, as the shot restorer
    has for a two-channel motion pass): linear (F, H, W, 3)."""
    import torch

    clip = shot_clip(shot)
    alignment = int(getattr(model, "alignment", 1))
    height, width = shot.color.shape[1:3]
    if height % alignment or width % alignment:
        raise ValueError(f"shot {shot.name}: size {width}x{height} is not a multiple of {alignment}")
    with torch.no_grad():
        outputs = run_clip(model, clip)
    return np.stack([from_model(out, clip.exposure[:, t])[0].permute(1, 2, 0).numpy()
                     for t, out in enumerate(outputs)])


# -- the job ---------------------------------------------------------------------------------------------------

@dataclass
class TemporalOptions:
    run_dir: Path
    steps: int | None = None
    minutes: float | None = None
    resume: bool = False
    threads: int | None = None
    init: str | None = None
    #: Shot folders replacing the recipe's ``[data] train``.
    data: tuple[str, ...] = ()
    log: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TemporalResult:
    run_dir: Path
    steps: int
    seconds: float
    best_score: float | None


def _validation_shots(recipe: Recipe, shots: list[Path]) -> tuple[list[Path], list[Path]]:
    if recipe.data.val:
        return shots, find_shots(recipe.data.val)
    count = min(recipe.data.val_count, max(0, len(shots) - 1))
    return shots[: len(shots) - count], shots[len(shots) - count :]


def validate(model, shots: Sequence[Shot]) -> dict[str, float]:
    model.eval()
    scores = [shot_scores(restore_shot_torch(model, shot), shot.reference) for shot in shots]
    model.train()
    relmse = float(np.mean([s["relmse"] for s in scores]))
    flicker = float(np.mean([s["flicker"] for s in scores]))
    return {"val_relmse": relmse, "val_flicker": flicker, "val_score": relmse + flicker,
            # what `ship` records as the model's validation figure: -10 log10 of the mean relMSE
            "val_psnr": -10.0 * math.log10(max(relmse, 1e-12))}


def _init_model(recipe: Recipe, init: str | None):
    import torch

    from .archs import build_model
    from .trainer import resolve_init

    model = build_model(recipe.model.arch, dict(recipe.model.config))
    spec = init if init is not None else recipe.train.init
    note = ""
    if spec:
        weights = torch.load(str(resolve_init(spec)), map_location="cpu", weights_only=True)
        if weights.get("arch") == recipe.model.arch:
            model.load_state_dict(weights["state_dict"])
            note = f"weights of {spec}"
        else:
            missing = model.load_frame_weights(weights["state_dict"])
            note = f"per-frame path from {spec} ({weights.get('arch')}); not matched: {missing or 'none'}"
    return model, note


def train_temporal(recipe: Recipe, options: TemporalOptions,
                   token: CancelToken | None = None) -> Generator[Progress, None, TemporalResult]:
    """Train ``recipe`` (``[data] kind = "shots"``) into ``options.run_dir`` (see the module docstring)."""
    import torch

    from .trainer import _save, learning_rate

    token = token or CancelToken()
    if options.threads:
        torch.set_num_threads(int(options.threads))
    t = recipe.train
    torch.manual_seed(t.seed)
    rng = np.random.default_rng(t.seed)
    run_dir = Path(options.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model, init_note = _init_model(recipe, options.init)
    if t.train_only:
        from .trainer import train_only

        train_only(model, t.train_only, recipe.model.arch)
    # the parts the per-frame model does not have learn faster (they start at zero)
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    new = [p for name, p in trainable if not name.startswith("frame.")]
    old = [p for name, p in trainable if name.startswith("frame.")]
    groups = [{"params": old, "lr_factor": 1.0}] if old else []
    optimizer = torch.optim.AdamW(groups + [{"params": new, "lr_factor": NEW_PARTS_LR_FACTOR}],
                                  lr=t.lr, weight_decay=t.weight_decay)
    step, elapsed, best, skipped = 0, 0.0, None, 0
    history: list[dict[str, float]] = []
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if options.resume and last_path.is_file():
        state = torch.load(str(last_path), map_location="cpu", weights_only=True)
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed, best, skipped = state["step"], state["elapsed"], state.get("best_score"), state["skipped"]
        history = list(state.get("history", []))
        rng = np.random.default_rng([t.seed, step])
    steps = options.steps if options.steps is not None else (t.steps if not options.minutes else 0)
    minutes = options.minutes if options.minutes is not None else (t.minutes if options.steps is None else 0.0)
    all_shots = find_shots(options.data or recipe.data.train)
    train_paths, val_paths = _validation_shots(recipe, all_shots)
    if not train_paths:
        raise ValueError("no training shots (folders with shot.json) under " + ", ".join(recipe.data.train))
    train_shots = [load_shot(p) for p in train_paths]
    val_shots = [load_shot(p) for p in val_paths]

    def add_new_shots() -> None:
        """Shots rendered since the run started join the training set (the renderer may still be writing them)."""
        known = set(train_paths) | set(val_paths)
        for path in find_shots(options.data or recipe.data.train):
            if path not in known:
                train_paths.append(path)
                train_shots.append(load_shot(path))
    recipe_tables = dict(recipe.to_dict(), source=recipe.source)

    def plain(value: Any) -> Any:  # numpy scalars -> Python numbers, so that resuming loads with weights_only
        return value.item() if isinstance(value, np.generic) else value

    def payload(extra: dict[str, Any]) -> dict[str, Any]:
        return {"arch": recipe.model.arch, "config": dict(recipe.model.config), "state_dict": model.state_dict(),
                "step": int(step), "elapsed": float(elapsed), "skipped": int(skipped), "best_score": plain(best),
                "recipe": recipe_tables, "history": [{k: plain(v) for k, v in h.items()} for h in history],
                "init": init_note, "data": {"train": [str(p) for p in train_paths], "val": [str(p) for p in val_paths]},
                **{k: plain(v) for k, v in extra.items()}}

    if step == 0 and val_shots:
        scores = validate(model, val_shots)
        history.append({"step": 0, **scores})
        best = scores["val_score"]
        _save(best_path, payload(scores))
    clock = EtaClock()
    started = time.monotonic() - elapsed
    clip_frames = max(2, int(t.clip_frames or 4))
    model.train()
    while True:
        elapsed = time.monotonic() - started
        progress = step / steps if steps else elapsed / (minutes * 60)
        if (steps and step >= steps) or (minutes and elapsed >= minutes * 60):
            break
        token.raise_if_cancelled()
        if recipe.data.val and step % RESCAN_EVERY == 0:
            add_new_shots()
        lr = learning_rate(step, min(progress, 1.0), t.lr, t.warmup_steps, 0.1)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_factor"]
        clip = sample_clips(train_shots, rng, t.batch_size, clip_frames, recipe.data.patch_size)
        outputs = run_clip(model, clip)
        loss, parts = clip_losses(outputs, clip, t.relmse_weight, t.temporal_weight)
        optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            skipped += 1
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        step += 1
        message = f"step {step}: loss {loss.item():.4f} (frame {parts['frame']:.4f}, temporal {parts['temporal']:.5f})"
        if t.val_every and step % t.val_every == 0 and val_shots:
            scores = validate(model, val_shots)
            history.append({"step": step, **scores})
            message += (f"; val relMSE {scores['val_relmse']:.5f} flicker {scores['val_flicker']:.5f}")
            if best is None or scores["val_score"] < best:
                best = scores["val_score"]
                elapsed = time.monotonic() - started
                _save(best_path, payload(scores))
        if t.checkpoint_every and step % t.checkpoint_every == 0:
            elapsed = time.monotonic() - started
            _save(last_path, payload({"optimizer": optimizer.state_dict()}))
        yield Progress(min(progress, 1.0), "train", message, clock.eta(max(progress, 1e-6)))
    elapsed = time.monotonic() - started
    if val_shots:
        scores = validate(model, val_shots)
        history.append({"step": step, **scores})
        if best is None or scores["val_score"] < best:
            best = scores["val_score"]
            _save(best_path, payload(scores))
    _save(last_path, payload({"optimizer": optimizer.state_dict()}))
    if not best_path.is_file():
        _save(best_path, payload({}))
    (run_dir / "history.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
    return TemporalResult(run_dir, step, elapsed, best)
