"""The ZSSR job: train an image-specific CNN on the image itself, then upscale it (Shocher et al. 2018).

Per gradual scale step ``s_i`` (relative to the input, as the reference's ``scale_factors``):

1. Fathers: every source (the input, then each earlier step's result) and its bicubic downscales between
   ``min_father_scale`` and 1; each iteration picks one with probability proportional to its area (the
   paper: pairs closer to the input's size are sampled more), takes a random crop and one of the 8
   rotations/flips (interpolation-free).
2. Son: the crop downscaled by ``s_i`` with the chosen kernel (+ optional Gaussian noise); the net maps its
   bicubic upscale back to the crop (residual learning), L1 loss, Adam.
3. Learning-rate policy of the reference: every ``test_every`` iterations the reconstruction error of the
   input from its own son is recorded; every ``lr_check_every`` iterations (once ``min_iterations`` passed
   since the last change) a line is fitted to the recent errors and lr is divided by 10 when the fit's std
   exceeds ``-lr_change_ratio x slope``; training stops below ``min_learning_rate`` or at ``max_iterations``.
4. Output: median of the 8-way geometric self-ensemble (each member back-projected), back-projected again.

Where this differs from the reference code, and why: fathers come from a fixed pyramid (``father_levels``
scales per unit of scale, from ``min_father_scale``) sampled by area, as the paper describes, instead of the
reference's random continuous affine warps (scale, shear, rotation with interpolation); the
reconstruction error is measured on a centred crop of at most two crop sizes a side (the reference uses the
whole input; on a CPU that probe would cost more than the training on large images); a user or estimated
kernel is applied at every gradual step with that step's factor (the reference takes one kernel per step).

Value spaces: display-referred images train in [0, 1] as they are; HDR images train in a normalised log space
``log1p(x) / max(log1p(x))`` (so the net sees [0, 1] and the result is mapped back with ``expm1``). Gray images
train on their one channel. Alpha is upscaled bicubically beside the colour.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import EngineError
from ..image import Image
from ..jobs import CancelToken, EtaClock, ImageResult, Job, Progress
from ..runtime import cpu_name
from .config import ZssrRequest
from .kernels import imresize, load_kernel, scaled_shape
from .net import build_net, flops_per_pixel

#: Cost cap of the reconstruction-error probe: a centred crop of the input at most this many crops a side
#: (256 px for the paper's 128 crops), so that measuring the error stays a few percent of the training.
_PROBE_CROPS = 2
#: Above this many output pixels a forward pass is tiled (memory: 64 channels x 4 bytes per pixel per layer).
_TILE = 512


def import_torch() -> Any:
    """Import torch, first asking OpenMP to let idle threads sleep.

    With the default (spinning) wait policy a busy 2-core machine made each small convolution 50-200x slower
    (measured: 200 16-channel 24x24 convs 10.3 s vs 0.05 s). libgomp reads the policy once, when torch loads,
    so this only helps when ZSSR is the first to import torch; ``main.py`` may set it earlier for everyone.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    return torch


def pick_device(choice: str) -> tuple[Any, str]:
    """The torch device for ``choice`` and a truthful description of it."""
    torch = import_torch()

    if choice in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda"), f"CUDA: {torch.cuda.get_device_name(0)}"
    if choice == "cuda":
        reason = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device found"
        raise EngineError(f"CUDA was requested but {reason}; choose the CPU")
    return torch.device("cpu"), f"CPU ({cpu_name()}, {torch.get_num_threads()} threads)"




# --------------------------------------------------------------------------------------------- value space


@dataclass(frozen=True)
class ValueSpace:
    """Maps image pixels to the training space and back (identity for LDR, normalised log1p for HDR)."""

    hdr: bool
    norm: float = 1.0

    @staticmethod
    def for_pixels(pixels: np.ndarray, hdr: bool) -> ValueSpace:
        if not hdr:
            return ValueSpace(False)
        top = float(np.log1p(np.maximum(pixels, 0.0)).max())
        return ValueSpace(True, max(top, 1e-6))

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.hdr:
            return (np.log1p(np.maximum(x, 0.0)) / self.norm).astype(np.float32)
        return np.clip(x, 0.0, 1.0).astype(np.float32)

    def inverse(self, t: np.ndarray) -> np.ndarray:
        if self.hdr:
            return np.expm1(np.clip(t, 0.0, 1.0) * self.norm).astype(np.float32)
        return np.clip(t, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------- the trainer


class ZssrTrainer:
    """The state of one run. The job below drives it; tests and the benchmark may drive it directly."""

    def __init__(self, x: np.ndarray, request: ZssrRequest, kernel: np.ndarray | None, device: Any) -> None:
        from .kernels import TorchResampler

        torch = import_torch()

        self.torch = torch
        self.request = request
        self.device = device
        self.rng = np.random.default_rng(request.seed)
        self.noise_gen = torch.Generator().manual_seed(request.seed + 1)
        torch.manual_seed(request.seed)
        self.channels = x.shape[2]
        self.input = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)[None])).to(device)
        self.resampler = TorchResampler(device, kernel)
        self.net = build_net(self.channels, request.width, request.depth).to(device)
        self.channels_last = device.type == "cpu"
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=request.learning_rate)
        self.sources: list[tuple[Any, tuple[float, float]]] = [(self.input, (1.0, 1.0))]
        self.sf: tuple[float, float] = (1.0, 1.0)
        self.iteration = 0
        self.total_iterations = 0
        self.losses: list[float] = []
        self.flops_per_px = flops_per_pixel(self.channels, request.width, request.depth)
        self.train_pixels = 0

    # ----------------------------------------------------------------------------------------- per step

    def start_step(self, sf: tuple[float, float]) -> None:
        """Reset the learning-rate policy for a new scale factor and rebuild the fathers (weights are kept)."""
        self.sf = sf
        self.iteration = 0
        self.lr = self.request.learning_rate
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        self.lr_changes = [0]
        self.rec_errors: list[float] = []
        self.rec_steps: list[int] = []
        self.fathers = self._build_fathers()
        areas = np.array([f.shape[-2] * f.shape[-1] for f in self.fathers], dtype=np.float64)
        self.father_p = areas / areas.sum()

    def _build_fathers(self) -> list[Any]:
        req = self.request
        top = min(self.sources[-1][1])
        levels = max(2, int(round(req.father_levels * max(1.0, top))))
        fathers = []
        min_side = max(8, int(math.ceil(2 * max(self.sf))))
        for r in np.linspace(req.min_father_scale, top, levels):
            src, base = next((s, b) for s, b in self.sources if min(b) >= r - 1e-6)
            ratio = r / min(base)
            if abs(ratio - 1.0) < 1e-6:
                father = src
            else:
                shape = scaled_shape(tuple(src.shape[-2:]), (ratio, ratio))
                father = self.resampler.resize(src, (ratio, ratio), shape)
            if min(father.shape[-2:]) >= min_side:
                fathers.append(father.contiguous())
        if not fathers:
            raise EngineError("the image is too small for this scale factor")
        return fathers

    def _sample_pair(self) -> tuple[Any, Any]:
        torch = self.torch
        req = self.request
        father = self.fathers[int(self.rng.choice(len(self.fathers), p=self.father_p))]
        fh, fw = int(father.shape[-2]), int(father.shape[-1])
        ch, cw = min(req.crop_size, fh), min(req.crop_size, fw)
        y = int(self.rng.integers(0, fh - ch + 1))
        x = int(self.rng.integers(0, fw - cw + 1))
        hr = father[:, :, y : y + ch, x : x + cw]
        # 8 rotations/flips; with different scales per axis only those that keep the axes (as the reference).
        square = abs(self.sf[0] - self.sf[1]) < 1e-9
        k = int(self.rng.integers(0, 8 if square else 4)) * (1 if square else 2)
        hr = _dihedral(hr, k)
        son = self.resampler.down(hr, self.sf)
        if req.noise_std > 0:
            noise = torch.randn(son.shape, generator=self.noise_gen).to(son.device)
            son = son + noise * req.noise_std
        interp = self.resampler.resize(son, self.sf, tuple(hr.shape[-2:]))
        return interp.contiguous(), hr.contiguous()

    def train_iteration(self) -> float:
        torch = self.torch
        interp, hr = self._sample_pair()
        if self.channels_last:
            interp = interp.contiguous(memory_format=torch.channels_last)
        self.net.train()
        if self.request.bf16:
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                out = self.net(interp)
        else:
            out = self.net(interp)
        loss = (out.float() - hr).abs().mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        value = float(loss.detach())
        self.losses.append(value)
        self.train_pixels += int(hr.shape[-2] * hr.shape[-1])
        self.iteration += 1
        self.total_iterations += 1
        if self.iteration % self.request.test_every == 0:
            self._record_reconstruction_error()
        self._learning_rate_policy()
        return value

    def _record_reconstruction_error(self) -> None:
        torch = self.torch
        img = self.input
        h, w = int(img.shape[-2]), int(img.shape[-1])
        side = _PROBE_CROPS * self.request.crop_size
        ph, pw = min(h, side), min(w, side)
        y, x = (h - ph) // 2, (w - pw) // 2
        probe = img[:, :, y : y + ph, x : x + pw]
        with torch.inference_mode():
            son = self.resampler.down(probe, self.sf)
            rec = self.forward(son, (ph, pw))
            self.rec_errors.append(float(((rec - probe) ** 2).mean()))
        self.rec_steps.append(self.iteration)

    def _learning_rate_policy(self) -> None:
        req = self.request
        it = self.iteration - 1  # the reference checks with its 0-based counter
        if (it + 1) % req.lr_check_every or it - self.lr_changes[-1] <= req.min_iterations:
            return
        n = max(req.lr_slope_range // req.test_every, 4)
        if len(self.rec_errors) < 4:
            return
        xs = np.asarray(self.rec_steps[-n:], dtype=np.float64)
        ys = np.asarray(self.rec_errors[-n:], dtype=np.float64)
        (slope, _), cov = np.polyfit(xs, ys, 1, cov=True)
        std = math.sqrt(max(cov[0][0], 0.0))
        if -req.lr_change_ratio * slope < std:
            self.lr /= 10.0
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr
            self.lr_changes.append(it)

    def done_training(self) -> bool:
        return self.iteration >= self.request.max_iterations or self.lr < self.request.min_learning_rate

    # ----------------------------------------------------------------------------------------- inference

    def forward(self, lr: Any, out_shape: tuple[int, int], sf: tuple[float, float] | None = None) -> Any:
        """Net applied to ``lr`` upscaled to ``out_shape`` (clipped to [0, 1]); tiled when large. Float32."""
        torch = self.torch
        sf = sf or self.sf
        interp = self.resampler.resize(lr, sf, out_shape)
        self.net.eval()
        with torch.inference_mode():
            h, w = out_shape
            if h * w <= _TILE * _TILE:
                out = self._net_eval(interp)
            else:
                out = torch.empty_like(interp)
                margin = self.request.depth + 2
                for y0 in range(0, h, _TILE):
                    for x0 in range(0, w, _TILE):
                        ya, xa = max(0, y0 - margin), max(0, x0 - margin)
                        yb, xb = min(h, y0 + _TILE + margin), min(w, x0 + _TILE + margin)
                        tile = self._net_eval(interp[:, :, ya:yb, xa:xb])
                        out[:, :, y0 : y0 + _TILE, x0 : x0 + _TILE] = tile[
                            :, :, y0 - ya : y0 - ya + min(_TILE, h - y0), x0 - xa : x0 - xa + min(_TILE, w - x0)
                        ]
        return out.clamp(0.0, 1.0)

    def _net_eval(self, interp: Any) -> Any:
        torch = self.torch
        if self.channels_last:
            interp = interp.contiguous(memory_format=torch.channels_last)
        return self.net(interp).float().contiguous()

    def back_project(self, sr: Any, iters: int) -> Any:
        lr = self.input
        for _ in range(iters):
            down = self.resampler.down(sr, self.sf, tuple(lr.shape[-2:]))
            sr = (sr + self.resampler.resize(lr - down, self.sf, tuple(sr.shape[-2:]))).clamp(0.0, 1.0)
        return sr

    def output_shape(self) -> tuple[int, int]:
        return scaled_shape(tuple(self.input.shape[-2:]), self.sf)

    def ensemble_size(self, ensemble: bool | None = None) -> int:
        """How many forward passes :meth:`final_output` makes (8 rotations/flips, 4 for a non-square scale)."""
        if not (self.request.ensemble if ensemble is None else ensemble):
            return 1
        return 8 if abs(self.sf[0] - self.sf[1]) < 1e-9 else 4

    def final_output(self, token: CancelToken | None = None, step_index: int = -1,
                     ensemble: bool | None = None) -> Any:
        """The 8-way median ensemble with back-projection (the reference's ``final_test``); ``ensemble=False``
        makes one pass (a time budget too short for eight)."""
        torch = self.torch
        bp = self.request.back_projection_for_step(step_index)
        passes = self.ensemble_size(ensemble)
        ks = range(0, 8, 8 // passes) if passes > 1 else range(1)
        oh, ow = self.output_shape()
        outputs = []
        with torch.inference_mode():
            for k in ks:
                if token is not None:
                    token.raise_if_cancelled()
                lr_k = _dihedral(self.input, k)
                shape_k = (oh, ow) if k % 2 == 0 else (ow, oh)
                out = _dihedral_inverse(self.forward(lr_k, shape_k), k)
                outputs.append(self.back_project(out, bp))
            stack = torch.stack(outputs, 0)
            if len(outputs) == 1:
                result = stack[0]
            else:
                ordered = torch.sort(stack, dim=0).values
                n = len(outputs)
                result = ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])
            return self.back_project(result, bp)

    def add_source(self, output: Any) -> None:
        self.sources.append((output, self.sf))


def _dihedral(x: Any, k: int) -> Any:
    """Rotation by 90 k degrees (k mod 4), then a horizontal flip when k >= 4 (reference order)."""
    import torch

    y = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(y, dims=(-1,)) if k >= 4 else y


def _dihedral_inverse(x: Any, k: int) -> Any:
    import torch

    y = torch.flip(x, dims=(-1,)) if k >= 4 else x
    return torch.rot90(y, -(k % 4), dims=(-2, -1))


def _to_numpy(t: Any) -> np.ndarray:
    return t[0].detach().float().cpu().numpy().transpose(1, 2, 0)


# ------------------------------------------------------------------------------------------------ the job


def _assemble(image: Image, out: np.ndarray, space: ValueSpace, gray: bool, shape: tuple[int, int]) -> Image:
    pixels = space.inverse(out)
    if gray:
        pixels = np.repeat(pixels[:, :, :1], 3, axis=2)
    alpha = None
    if image.alpha is not None:
        alpha = np.clip(imresize(np.asarray(image.alpha, np.float32), out_shape=shape), 0.0, 1.0)
    return image.with_pixels(pixels, alpha=alpha)


def zssr_job(image: Image, request: ZssrRequest, token: CancelToken) -> Job[ImageResult]:
    """Train ZSSR on ``image`` and return it upscaled by ``request.scale`` (see the module docstring)."""
    clock = EtaClock()
    start = clock.start
    device, device_label = pick_device(request.device)
    deadline = None if request.seconds is None else start + float(request.seconds)
    gray = bool(image.meta.gray)
    pixels = np.asarray(image.pixels, dtype=np.float32)[:, :, :1] if gray else np.asarray(image.pixels)
    space = ValueSpace.for_pixels(pixels, bool(image.meta.hdr))
    x = space.forward(pixels)

    kernel: np.ndarray | None = None
    kernel_note = "bicubic"
    if request.kernel == "file":
        kernel = load_kernel(request.kernel_path or "")
        kernel_note = f"file {os.path.basename(request.kernel_path or '')}"
    elif request.kernel == "estimate":
        from .kernel_estimate import estimate_kernel_job

        kernel = yield from estimate_kernel_job(x, request.scale_steps()[0], request.seed, token, device)
        kernel_note = f"estimated {kernel.shape[0]}x{kernel.shape[1]}"

    trainer = ZssrTrainer(x, request, kernel, device)
    steps = request.scale_steps()
    yield Progress(0.0, stage="zssr", message=f"ZSSR on {device_label}", metrics={"iteration": 0})
    step_times: list[float] = []
    ensemble_skipped: list[int] = []  # scale steps whose ensemble did not fit the time budget
    pass_cost: dict[str, float] = {}  # seconds per output pixel of one pass of the net (measured once)
    last_preview = time.perf_counter()
    preview_cost = 0.0
    out = trainer.input
    stopped = False
    for step_index, sf in enumerate(steps):
        token.raise_if_cancelled()
        trainer.start_step(sf)
        step_start = time.perf_counter()
        step_deadline = None
        ensemble = request.ensemble
        if deadline is not None:
            step_deadline, ensemble = _plan_step(trainer, steps, step_index, deadline, pass_cost)
        stage = f"x{sf[0]:.3g}" if abs(sf[0] - sf[1]) < 1e-9 else f"x{sf[0]:.3g}x{sf[1]:.3g}"
        while not stopped and not trainer.done_training():
            token.raise_if_cancelled()
            if token.stop_requested:
                stopped = True
                break
            if step_deadline is not None and time.perf_counter() >= step_deadline:
                break
            loss = trainer.train_iteration()
            now = time.perf_counter()
            fraction = _fraction(trainer, step_index, len(steps), step_start, step_deadline, now)
            preview = None
            if now - last_preview >= max(request.preview_every_s, 4.0 * preview_cost):
                t0 = time.perf_counter()
                current = trainer.forward(trainer.input, trainer.output_shape())
                preview = _assemble(image, _to_numpy(current), space, gray, trainer.output_shape())
                preview_cost = time.perf_counter() - t0
                last_preview = time.perf_counter()
            yield Progress(
                fraction,
                stage=f"train {stage}",
                message=f"step {step_index + 1}/{len(steps)} {stage}: iteration {trainer.iteration}, "
                f"loss {loss:.4f}, lr {trainer.lr:.0e}",
                eta_s=clock.eta(fraction),
                metrics={
                    "iteration": float(trainer.total_iterations),
                    "loss": loss,
                    "lr": trainer.lr,
                    "scale_step": float(step_index + 1),
                },
                preview=preview,
            )
        passes = trainer.ensemble_size(ensemble)
        yield Progress(
            (step_index + 0.97) / len(steps),
            stage=f"ensemble {stage}",
            message=f"{passes}-way ensemble and back-projection" if passes > 1 else "back-projection",
        )
        if request.ensemble and passes == 1:
            ensemble_skipped.append(step_index + 1)
        final_start = time.perf_counter()
        out = trainer.final_output(token, step_index, ensemble)
        if pass_cost:  # what a pass really cost at this size: larger outputs cost more per pixel than measured
            out_h, out_w = trainer.output_shape()
            per_px = (time.perf_counter() - final_start) / (passes * out_h * out_w)
            pass_cost["per_px"] = max(pass_cost["per_px"], per_px)
        trainer.add_source(out)
        step_times.append(time.perf_counter() - step_start)

    shape = trainer.output_shape()
    result_image = _assemble(image, _to_numpy(out), space, gray, shape)
    seconds = time.perf_counter() - start
    final_loss = float(np.mean(trainer.losses[-20:])) if trainer.losses else float("nan")
    sec_per_iter = sum(step_times) / max(trainer.total_iterations, 1)
    details = {
        "preset": request.preset,
        "scale": request.scale,
        "scale_steps": [list(s) for s in steps],
        "iterations": trainer.total_iterations,
        "final_loss": final_loss,
        "kernel": kernel_note,
        "value_space": "log1p normalised (HDR)" if space.hdr else "display [0, 1]",
        "channels": trainer.channels,
        "stopped_early": stopped,
        "ensemble_skipped_steps": ensemble_skipped,
        "step_seconds": step_times,
        "train_gflop": trainer.train_pixels * trainer.flops_per_px * 3 / 1e9,
        "seconds_per_iteration": sec_per_iter,
        "bf16": request.bf16,
        "seed": request.seed,
    }
    done = {"iteration": float(trainer.total_iterations)}
    yield Progress(1.0, stage="done", message=f"done in {seconds:.1f} s", metrics=done)
    return ImageResult(
        image=result_image,
        label=request.label,
        model_id="zssr",
        device=device_label,
        seconds=seconds,
        details=details,
    )


def _plan_step(trainer: ZssrTrainer, steps: list, step_index: int, deadline: float,
               cost: dict[str, float]) -> tuple[float, bool]:
    """(when to stop training, whether to run the ensemble) for scale step ``step_index`` under ``deadline``.

    The final outputs of this and the later steps are kept back from the time left (one timed pass of the net,
    made at the first step and scaled by output size, tells what a pass costs: the ensemble makes 8 or 4), and
    the rest is shared equally by the steps' training, so that the run ends near the deadline rather than one
    ensemble after it. When the ensembles would take more than half the time left, each step makes a single
    pass instead (the result's ``ensemble_skipped_steps`` says which).
    """
    in_shape = tuple(trainer.input.shape[-2:])
    if "per_px" not in cost:
        t0 = time.perf_counter()
        trainer.forward(trainer.input, trainer.output_shape())
        out_h, out_w = trainer.output_shape()
        cost["per_px"] = (time.perf_counter() - t0) / (out_h * out_w)
    now = time.perf_counter()
    left = max(0.0, deadline - now)

    def final_cost(ensemble: bool) -> float:
        total = 0.0
        for index in range(step_index, len(steps)):
            h, w = scaled_shape(in_shape, steps[index])
            square = abs(steps[index][0] - steps[index][1]) < 1e-9
            passes = (8 if square else 4) if ensemble else 1
            bp = trainer.request.back_projection_for_step(index)
            total += cost["per_px"] * h * w * passes * (1.0 + 0.1 * bp) * 1.2  # 20% headroom
        return total

    ensemble = trainer.request.ensemble and final_cost(True) <= 0.5 * left
    training = max(0.0, left - final_cost(ensemble)) / (len(steps) - step_index)
    return now + training, ensemble


def _fraction(trainer: ZssrTrainer, step: int, steps: int, step_start: float, deadline: float | None, now: float):
    req = trainer.request
    by_iters = trainer.iteration / req.max_iterations
    # The lr policy needs about three reductions, each at least min_iterations after the previous one.
    drops = len(trainer.lr_changes) - 1
    since = trainer.iteration - trainer.lr_changes[-1]
    by_policy = (drops + min(1.0, since / max(req.min_iterations, 1))) / 4.0
    frac = max(by_iters, by_policy)
    if deadline is not None:
        frac = max(frac, (now - step_start) / max(deadline - step_start, 1e-6))
    return (step + min(frac, 0.95)) / steps
