"""Experiment (not shipped): a learned temporal filter of restored shots in place of engine/temporal_filter.py's fixed
blend. On the Cycles validation shots every variant tried was behind the fixed filter in per-frame relMSE (flicker a
little lower); lab/notes/render_history.md (2026-12-07, eighth session) has the figures.

    .venv/bin/python lab/bench/learned_temporal_filter.py prepare [--shots DIR] --out RUN/data.npz
    .venv/bin/python lab/bench/learned_temporal_filter.py train --data RUN/data.npz --run-dir RUN --steps 3000
    .venv/bin/python lab/bench/learned_temporal_filter.py evaluate --checkpoint RUN/best.pt --data RUN/valid.npz

What it is (``--kernel 3``; ``--kernel 1`` the same with 1x1 taps; ``--kernel 0`` the fixed filter's blend with a
per-pixel history weight and clamp width, starting exactly as the fixed filter): a small kernel-predicting network
that runs after any per-frame render denoiser. For frame t it sees the frame's restored colour, its noisy colour and
frame t - 1's *filtered* result warped onto frame t along the render's motion pass (so its history is its own
output, fed back), with the mask of where that history can be trusted (engine.motion.trusted_mask). It predicts, per
pixel, 19 weights (a softmax, so the result is a convex combination of its inputs and cannot brighten, darken or
invent detail): a 3x3 kernel over the restored frame, a 3x3 kernel over the warped history and one weight for the
history clamped to the noisy neighbourhood (the hand-set filter's building block). History weights are zero where
the history is not trusted. It was meant to replace the fixed blend of engine/temporal_filter.py (one weight, 0.3,
for every pixel), which cannot tell where the per-frame result flickers and where the history is stale.

Data: the Cycles *training* shots of engine/render_data/cycles_shot.py (seeds below 90000; 96x96, 8 frames, 4 and 16
spp, each frame with an independent 128-spp render as its Noise2Noise target), each restored frame by frame by
several per-frame denoisers (Blender's own OIDN frames that came with the shots, and the app's ``render-kprcan-aov``
and ``render-kprcan-color``), so the filter learns to follow whichever model it is given. Two training shots
(:data:`VALID_SEEDS`) are kept aside to choose the checkpoint; the validation shots (seeds 95000+, 512-spp
references) are never read here except by ``evaluate`` with an explicit ``--data``, which only measures.

Training: whole 96x96 clips of 8 frames run recurrently (frame 0 has no history), flips / transposes (the flow
turned with them) and channel permutations. Loss per frame: squared error against the target over a normaliser that
does not depend on the target's noise (``--normaliser base``: the per-frame result, which blows up where it is black
and the target is not; ``target`` with ``--norm-data``: the same shots' targets denoised by OIDN, from ``prepare
--denoise-targets``), plus ``--temporal`` times the same of the frame-to-frame change (bench/flicker.py's measure);
``--loss log`` (squared log1p error) is biased for a noisy target. Values are the frame's linear colour times its
own :func:`engine.transforms.auto_exposure_scale` (the noisy frame's), as the app feeds it."""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from engine.temporal_filter import DEFAULT_SPREAD

ROOT = Path(__file__).resolve().parents[2]  # the repository
SHOTS = Path(os.environ.get("CYCLES_SHOTS", "/work/wt/shared_data/cycles_shots"))
#: Training shots kept aside to choose the checkpoint.
VALID_SEEDS = (50004, 50008)
#: Seeds at and above this are validation shots (never trained on).
HELD_OUT = 90000
#: Per-frame denoisers whose results the filter learns to follow ("blender-oidn": the shot's own Blender frames).
BASES = ("blender-oidn", "render-kprcan-aov", "render-kprcan-color")
#: The clamp's half-width in standard deviations of the noisy 5x5 neighbourhood (log space): the fixed filter's.
CLAMP_SPREAD = DEFAULT_SPREAD
#: Relative-MSE epsilon (as bench/flicker.py's measure).
EPSILON = 0.01


# ----------------------------------------------------------------------------------------------------------- data


def _shot_folders(root: Path, validation: bool) -> list[Path]:
    folders = []
    for info_path in sorted(root.glob("shot_*_spp*/shot.json")):
        info = json.loads(info_path.read_text(encoding="utf-8"))
        if (info["seed"] >= HELD_OUT) == validation:
            folders.append(info_path.parent)
    return folders


def prepare(args: argparse.Namespace) -> None:
    """Every shot's frames, flows, trust masks, targets (training: the 128-spp renders; ``--validation``: the
    512-spp references) and each base's restored frames, into one .npz (linear values, not scaled)."""
    from engine.imageio import read_image
    from engine.jobs import run_job
    from engine.models.registry import ModelRegistry, default_folders
    from engine.motion import trusted_mask, usable_motion
    from engine.restore import restore_job

    registry = ModelRegistry(default_folders(), include_classical=True)
    folders = _shot_folders(args.shots, args.validation)
    if not folders:
        raise SystemExit(f"no {'validation' if args.validation else 'training'} shots under {args.shots}")
    noisy, target, valid, flows, seeds, spps, restored = [], [], [], [], [], [], []
    started = time.perf_counter()
    for folder in folders:
        info = json.loads((folder / "shot.json").read_text(encoding="utf-8"))
        frames = sorted(folder.glob("frame_[0-9][0-9][0-9][0-9].exr"))
        suffix = "_ref.exr" if args.validation else "_target.exr"
        shot_noisy, shot_target, shot_valid, shot_flow = [], [], [], []
        per_base: dict[str, list[np.ndarray]] = {base: [] for base in BASES}
        forward_previous = None
        for path in frames:
            image = read_image(path)
            found, _ = usable_motion(image)
            if found is None:
                raise SystemExit(f"{path}: no usable motion pass")
            flow = found.backward()
            shot_noisy.append(image.pixels[:, :, :3])
            target_image = read_image(path.with_name(path.stem + suffix))
            if args.denoise_targets and not args.validation:
                # the 128-spp render through OIDN with albedo + normal: a low-variance stand-in for a reference
                job = restore_job(target_image, registry.get("oidn-aov"), {"prefilter": "accurate"}, device="cpu",
                                  threads=args.threads)
                target_image = run_job(job).image
            shot_target.append(target_image.pixels[:, :, :3])
            shot_flow.append(flow)
            shot_valid.append(trusted_mask(flow, forward_previous) if forward_previous is not None
                              else np.zeros(flow.shape[:2], np.float32))
            forward_previous = found.forward()
            for base in BASES:
                if base == "blender-oidn":
                    per_base[base].append(read_image(path.with_name(path.stem + "_blender.exr")).pixels[:, :, :3])
                else:
                    job = restore_job(image, registry.get(base), None, device="cpu", threads=args.threads)
                    per_base[base].append(run_job(job).image.pixels[:, :, :3])
        noisy.append(shot_noisy)
        target.append(shot_target)
        valid.append(shot_valid)
        flows.append(shot_flow)
        restored.append([per_base[base] for base in BASES])
        seeds.append(info["seed"])
        spps.append(int(info["noisy_spp"]))
        print(f"{folder.name}: {len(frames)} frames ({time.perf_counter() - started:.0f} s)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, noisy=np.asarray(noisy, np.float32), target=np.asarray(target, np.float32),
                        valid=np.asarray(valid, np.float32), flow=np.asarray(flows, np.float32),
                        restored=np.asarray(restored, np.float32), seed=np.asarray(seeds), spp=np.asarray(spps),
                        bases=np.asarray(BASES), validation=np.asarray(bool(args.validation)),
                        denoised_targets=np.asarray(bool(args.denoise_targets and not args.validation)))


def exposure_scales(noisy: np.ndarray) -> np.ndarray:
    """Per shot and frame, the app's exposure scale of the noisy frame ([S, T])."""
    from engine.transforms import auto_exposure_scale

    return np.asarray([[auto_exposure_scale(frame) for frame in shot] for shot in noisy], np.float32)


# ---------------------------------------------------------------------------------------------------------- model


def build_model(width: int = 24, kernel: int = 3):
    import torch
    from torch import nn
    from torch.nn import functional as F

    def shifted(x, radius: int = 1):
        """The 3x3 neighbourhood of every pixel as 9 tensors (edges replicated)."""
        padded = F.pad(x, (radius, radius, radius, radius), mode="replicate")
        height, width_ = x.shape[-2:]
        return [padded[:, :, dy:dy + height, dx:dx + width_] for dy in range(2 * radius + 1)
                for dx in range(2 * radius + 1)]

    class TemporalFilter(nn.Module):
        """restored, noisy, history (N x 3 x H x W, linear, exposure-scaled), valid (N x 1 x H x W) -> filtered."""

        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(16, width, 3, padding=1), nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                nn.Conv2d(width, 2 * kernel * kernel + 1 if kernel else 2, 1))
            with torch.no_grad():
                self.body[-1].weight.mul_(0.1)
                self.body[-1].bias.zero_()
                if kernel:  # start as "keep the restored frame": the centre tap of the restored kernel
                    self.body[-1].bias[kernel * kernel // 2] = 3.0
                else:  # start as the fixed filter: history weight 0.3, clamp spread 0.5
                    self.body[-1].bias[0] = math.log(0.3 / 0.7)

        def forward(self, restored, noisy, history, valid):
            log_r = torch.log1p(torch.clamp(restored, min=0.0))
            log_h = torch.log1p(torch.clamp(history, min=0.0))
            log_n = torch.log1p(torch.clamp(noisy, min=0.0))
            padded = F.pad(log_n, (2, 2, 2, 2), mode="reflect")
            mean = F.avg_pool2d(padded, 5, stride=1)
            square = F.avg_pool2d(padded * padded, 5, stride=1)
            std = torch.sqrt(torch.clamp(square - mean * mean, min=0.0) + 1e-8)
            gap = (log_h - log_r) * valid
            features = torch.cat([log_r, gap, gap / (std + 0.01), log_n - log_r, std, valid], dim=1)
            if not kernel:
                # the fixed filter's blend with a per-pixel history weight and clamp width
                alpha, spread = self.body(features).split(1, dim=1)
                spread = CLAMP_SPREAD * torch.exp(1.5 * torch.tanh(spread))
                clamped = torch.expm1(torch.minimum(torch.maximum(log_h, log_r - spread * std), log_r + spread * std))
                return restored + torch.sigmoid(alpha) * valid * (clamped - restored)
            weights = torch.softmax(self.body(features), dim=1)
            clamped = torch.expm1(torch.minimum(torch.maximum(log_h, log_r - CLAMP_SPREAD * std),
                                                log_r + CLAMP_SPREAD * std))
            taps = kernel * kernel
            history_weights = weights[:, taps:] * valid
            total = weights[:, :taps].sum(dim=1, keepdim=True) + history_weights.sum(dim=1, keepdim=True)
            out = clamped * history_weights[:, taps:taps + 1]
            for k, tap in enumerate(shifted(restored, kernel // 2)):
                out = out + weights[:, k:k + 1] * tap
            for k, tap in enumerate(shifted(history, kernel // 2)):
                out = out + history_weights[:, k:k + 1] * tap
            return out / total

    return TemporalFilter()


def warp_torch(image, flow):
    """engine.motion.warp's bicubic resampling (edge replicated) in torch: image N x C x H x W, flow N x 2 x H x W."""
    import torch
    from torch.nn import functional as F

    height, width = image.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(height, dtype=image.dtype), torch.arange(width, dtype=image.dtype),
                            indexing="ij")
    grid_x = (xs + flow[:, 0]) / max(width - 1, 1) * 2 - 1
    grid_y = (ys + flow[:, 1]) / max(height - 1, 1) * 2 - 1
    grid = torch.stack([grid_x, grid_y], dim=-1)
    return F.grid_sample(image, grid, mode="bicubic", padding_mode="border", align_corners=True)


def run_clip(model, restored, noisy, flow, valid):
    """The filter over a clip recurrently: tensors [N, T, C, H, W] (valid [N, T, 1, H, W]); returns [N, T, 3, H, W]."""
    import torch

    outputs = []
    for t in range(restored.shape[1]):
        if t == 0:
            history, trust = restored[:, 0], torch.zeros_like(valid[:, 0])
        else:
            history, trust = torch.clamp(warp_torch(outputs[-1], flow[:, t]), min=0.0), valid[:, t]
        outputs.append(model(restored[:, t], noisy[:, t], history, trust))
    return torch.stack(outputs, dim=1)


def clip_loss(out, target, temporal: float, kind: str = "relmse", base=None, normaliser: str = "base"):
    """(total, per-frame part, change part) of a clip [N, T, 3, H, W].

    ``kind`` "relmse": squared error against the noisy target over a normaliser that does not depend on it (the
    per-frame denoiser's result ``base``, or the detached prediction without one), plus ``temporal`` times the same
    of the frame-to-frame change. Unbiased for an independent noisy target (Noise2Noise), at the price of noisy
    gradients where a target holds a firefly. "log": squared error of log1p values; biased for a noisy target, and
    the filter, whose output is a convex combination of its inputs, learns to pick dark taps (on the validation
    shots its relMSE doubled while this loss fell): kept only to show that."""
    if kind == "log":
        target = target[:, :, 0] if target.dim() == 6 else target
        out, target = torch_log1p(out), torch_log1p(target)
        frame = ((out - target) ** 2).mean()
        change = (((out[:, 1:] - out[:, :-1]) - (target[:, 1:] - target[:, :-1])) ** 2).mean()
        return frame + temporal * change, frame.detach(), change.detach()
    target, reference = (target[:, :, 0], target[:, :, 1]) if target.dim() == 6 else (target, target)
    norm = (reference if normaliser == "target" else base if base is not None else out).detach()
    frame = ((out - target) ** 2 / (norm ** 2 + EPSILON)).mean()
    change_out, change_target = out[:, 1:] - out[:, :-1], target[:, 1:] - target[:, :-1]
    middle = (norm[:, 1:] + norm[:, :-1]) / 2
    change = ((change_out - change_target) ** 2 / (middle ** 2 + EPSILON)).mean()
    return frame + temporal * change, frame.detach(), change.detach()


def torch_log1p(x):
    import torch

    return torch.log1p(torch.clamp(x, min=0.0))


# ------------------------------------------------------------------------------------------------------- training


class Clips:
    """The prepared shots as torch tensors, scaled by each frame's exposure: every (shot, base) pair is one clip."""

    def __init__(self, path: Path, seeds: tuple[int, ...] | None = None, exclude: tuple[int, ...] = (),
                 norm_path: Path | None = None):
        import torch

        data = np.load(path)
        keep = [i for i, seed in enumerate(data["seed"])
                if (seeds is None or int(seed) in seeds) and int(seed) not in exclude]
        if not keep:
            raise SystemExit(f"{path}: no shots selected")
        scale = exposure_scales(data["noisy"][keep])[:, :, None, None, None]
        self.noisy = torch.from_numpy(data["noisy"][keep] * scale).permute(0, 1, 4, 2, 3).contiguous()
        self.target = torch.from_numpy(data["target"][keep] * scale).permute(0, 1, 4, 2, 3).contiguous()
        # the relMSE normaliser's reference (the denoised targets of --denoise-targets) when given, else the target
        norm = np.load(norm_path)["target"][keep] * scale if norm_path is not None else None
        self.norm = torch.from_numpy(norm).permute(0, 1, 4, 2, 3).contiguous() if norm is not None else self.target
        self.flow = torch.from_numpy(data["flow"][keep]).permute(0, 1, 4, 2, 3).contiguous()
        self.valid = torch.from_numpy(data["valid"][keep])[:, :, None].contiguous()
        restored = data["restored"][keep] * scale[:, None]
        self.restored = torch.from_numpy(restored).permute(0, 1, 2, 5, 3, 4).contiguous()  # S, B, T, C, H, W
        self.seeds = [int(s) for s in data["seed"][keep]]
        self.spps = [int(s) for s in data["spp"][keep]]
        self.bases = [str(b) for b in data["bases"]]
        self.pairs = [(s, b) for s in range(len(keep)) for b in range(len(self.bases))]

    def batch(self, indices, rng: np.random.Generator | None = None):
        import torch

        shots = [self.pairs[i][0] for i in indices]
        bases = [self.pairs[i][1] for i in indices]
        restored = torch.stack([self.restored[s, b] for s, b in zip(shots, bases, strict=True)])
        noisy, target, flow, valid = (self.noisy[shots], torch.stack([self.target[shots], self.norm[shots]], 2),
                                      self.flow[shots].clone(), self.valid[shots])
        if rng is not None:
            if rng.random() < 0.5:  # mirror left-right: dx changes sign
                restored, noisy, target, flow, valid = (x.flip(-1) for x in (restored, noisy, target, flow, valid))
                flow[:, :, 0] = -flow[:, :, 0]
            if rng.random() < 0.5:  # mirror top-bottom
                restored, noisy, target, flow, valid = (x.flip(-2) for x in (restored, noisy, target, flow, valid))
                flow[:, :, 1] = -flow[:, :, 1]
            if rng.random() < 0.5:  # transpose: x and y swap
                restored, noisy, target, flow, valid = (x.transpose(-1, -2) for x in
                                                        (restored, noisy, target, flow, valid))
                flow = flow[:, :, [1, 0]]
            order = torch.from_numpy(rng.permutation(3))
            restored, noisy, target = restored[:, :, order], noisy[:, :, order], target[:, :, :, order]
        return restored.contiguous(), noisy.contiguous(), flow.contiguous(), valid.contiguous(), target.contiguous()


def validate(model, clips: Clips, temporal: float, kind: str = "relmse", normaliser: str = "base") -> float:
    import torch

    losses = []
    with torch.no_grad():
        for index in range(len(clips.pairs)):
            restored, noisy, flow, valid, target = clips.batch([index])
            out = run_clip(model, restored, noisy, flow, valid)
            losses.append(float(clip_loss(out, target, temporal, kind, restored, normaliser)[0]))
    return float(np.mean(losses))


def train(args: argparse.Namespace) -> None:
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    training = Clips(args.data, exclude=VALID_SEEDS, norm_path=args.norm_data)
    held = Clips(args.data, seeds=VALID_SEEDS, norm_path=args.norm_data)
    model = build_model(args.width, args.kernel)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=args.lr, total_steps=args.steps,
                                                   pct_start=0.05)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    best = validate(model, held, args.temporal, args.loss, args.normaliser)
    print(f"step 0: validation {best:.5f} (the starting weights)", flush=True)
    started, running = time.perf_counter(), []
    for step in range(1, args.steps + 1):
        indices = rng.choice(len(training.pairs), size=args.batch, replace=False)
        restored, noisy, flow, valid, target = training.batch(indices, rng)
        out = run_clip(model, restored, noisy, flow, valid)
        loss, frame, change = clip_loss(out, target, args.temporal, args.loss, restored, args.normaliser)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        running.append((float(frame), float(change)))
        if step % args.val_every == 0 or step == args.steps:
            score = validate(model, held, args.temporal, args.loss, args.normaliser)
            mean = np.mean(running, axis=0)
            running.clear()
            state = {"model": model.state_dict(), "width": args.width, "kernel": args.kernel, "step": step,
                     "validation": score,
                     "args": {k: str(v) for k, v in vars(args).items()}, "bases": training.bases,
                     "train_seeds": sorted(set(training.seeds)), "valid_seeds": list(VALID_SEEDS)}
            torch.save(state, args.run_dir / "last.pt")
            marker = ""
            if score < best:
                best, marker = score, " *"
                torch.save(state, args.run_dir / "best.pt")
            print(f"step {step}: train frame {mean[0]:.5f} change {mean[1]:.5f} validation {score:.5f}{marker} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)


def load(checkpoint: Path):
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = build_model(int(state["width"]), int(state.get("kernel", 3)))
    model.load_state_dict(state["model"])
    model.eval()
    return model, state


def evaluate(args: argparse.Namespace) -> None:
    """Per shot and base: relMSE and flicker of the base alone, the fixed filter and this network (numpy / torch
    with the app's warps), against the file's targets (validation shots: 512-spp references)."""
    import torch

    from engine.metrics import shot_scores
    from engine.motion import warp
    from engine.temporal_filter import smooth_frame

    model, state = load(args.checkpoint) if args.checkpoint else (None, {})
    data = np.load(args.data)
    scales = exposure_scales(data["noisy"])
    rows: dict[tuple[str, int, str], list[dict]] = {}
    for s in range(len(data["seed"])):
        flows, valid, noisy, target = data["flow"][s], data["valid"][s], data["noisy"][s], data["target"][s]
        for b, base in enumerate(data["bases"]):
            frames = data["restored"][s, b]
            fixed, learned = [], []
            for t in range(len(frames)):
                if t == 0:
                    fixed.append(frames[0].copy())
                    learned_in = (frames[0], frames[0], np.zeros(frames[0].shape[:2], np.float32))
                else:
                    history = np.maximum(warp(fixed[-1], flows[t], interpolation=args.warp), 0.0)
                    fixed.append(smooth_frame(frames[t], noisy[t], history, valid[t]))
                    learned_in = (frames[t], np.maximum(warp(learned[-1], flows[t], interpolation="cubic"), 0.0),
                                  valid[t]) if model is not None else None
                if model is not None and t == 0:  # the app leaves a shot's first frame as restored
                    learned.append(frames[0].copy())
                elif model is not None:
                    scale = float(scales[s, t])
                    tensors = [torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)[None]) * scale)
                               for x in (learned_in[0], noisy[t], learned_in[1])]
                    with torch.no_grad():
                        out = model(*tensors, torch.from_numpy(learned_in[2][None, None]))
                    learned.append(out[0].numpy().transpose(1, 2, 0) / scale)
            methods = {"alone": list(frames), "fixed": fixed}
            if model is not None:
                methods["learned"] = learned
            for name, outputs in methods.items():
                rows.setdefault((str(base), int(data["spp"][s]), name), []).append(shot_scores(outputs, list(target)))
    print(f"data {args.data} ({'validation shots' if bool(data['validation']) else 'training shots'}), "
          f"checkpoint {args.checkpoint} (step {state.get('step')})")
    print("| base | spp | method | relMSE | flicker |\n|---|---|---|---|---|")
    for (base, spp, name), scores in sorted(rows.items()):
        print(f"| {base} | {spp} | {name} | {np.mean([x['relmse'] for x in scores]):.5f} | "
              f"{np.mean([x['flicker'] for x in scores]):.5f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare")
    p.add_argument("--shots", type=Path, default=SHOTS)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--validation", action="store_true", help="the validation shots (seeds 90000+), to measure")
    p.add_argument("--denoise-targets", action="store_true",
                   help="training targets: the 128-spp renders denoised by OIDN + albedo + normal (not raw)")
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=prepare)
    p = commands.add_parser("train")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--width", type=int, default=24)
    p.add_argument("--kernel", type=int, choices=(0, 1, 3), default=0,
                   help="0: the fixed filter's blend with a predicted weight and clamp width per pixel; 1 or 3: "
                        "softmax weights over 1x1 or 3x3 taps of the restored frame and the history, and the "
                        "clamped history")
    p.add_argument("--temporal", type=float, default=0.5)
    p.add_argument("--loss", choices=("relmse", "log"), default="relmse")
    p.add_argument("--norm-data", type=Path, help="prepared data whose targets are relMSE's normaliser (with "
                   "--normaliser target): the denoised targets of the same shots, the loss's target staying --data's")
    p.add_argument("--normaliser", choices=("base", "target"), default="base",
                   help="relMSE's normaliser: the per-frame result (noisy targets) or the target (denoised targets)")
    p.add_argument("--val-every", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=train)
    p = commands.add_parser("evaluate")
    p.add_argument("--warp", choices=("cubic", "linear"), default="cubic",
                   help="the fixed filter's history warp (the app's: cubic)")
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--data", type=Path, required=True)
    p.set_defaults(func=evaluate)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
