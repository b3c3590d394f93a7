"""The trainer: a job (engine/jobs.py) that trains a recipe's model, validates it, checkpoints, and exports it.

The loop has named steps: ``feed`` (sample a batch), ``optimise`` (forward, loss, backward, clip, step),
``validate`` (PSNR in display space on fixed held-out samples, keeping the best weights) and ``save`` (a
checkpoint to resume from). What it does against the failures seed 001 met:

- a batch whose inputs hold NaN/Inf, or whose loss or gradient norm is not finite, is skipped (no optimiser
  step) and counted in the ``skipped`` metric; many skipped batches in a row stop the run with a clear error;
- target points that are NaN/Inf (or negative, for HDR) are masked out of the loss (datasets.py);
- HDR is trained in the model's value space (log1p after the image-wide exposure scale, as inference runs it)
  and validated in display space (tonemapped: clip, gamma 1/2.2).

Budgets: training stops at ``steps`` iterations or ``minutes`` of wall time, whichever comes first; both count
for the whole run, so a resumed run (``resume=True``) continues the same step counter, learning-rate schedule
and best score. The learning rate warms up linearly, then follows a cosine over the budget fraction used.
``token.cancel()`` saves a checkpoint and raises JobCancelled; ``token.request_stop()`` ends training early
and exports the best weights so far.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EngineError, JobCancelled
from ..jobs import CancelToken, Progress
from ..paths import user_data_dir
from ..transforms import from_model_space
from . import datasets as ds
from . import distributed
from .recipes import Recipe, is_recipe_reference, prepare_hint, recipe_checkpoint, resolve_path

#: Consecutive skipped batches after which the data is declared broken.
MAX_CONSECUTIVE_SKIPS = 50
CHECKPOINT_KIND = "restoration-studio-run"


@dataclass(frozen=True)
class TrainOptions:
    """Run-time choices that are not part of the recipe."""

    #: Budgets replacing the recipe's (if either is given, the other is unlimited unless also given).
    steps: int | None = None
    minutes: float | None = None
    #: Training image folders replacing the recipe's ``[data] train`` (clean), or of pairs (paired: input/ +
    #: target/ sub-folders, or references named NAME_ref beside their inputs; datasets.find_pairs).
    data: tuple[str, ...] = ()
    #: Where checkpoints go (default: <user data>/training/<model id>).
    run_dir: Path | None = None
    #: Where the exported model goes (default: the per-user models folder).
    out_dir: Path | None = None
    resume: bool = False
    export: bool = True
    #: Exported model id (default: the recipe's), name and description overrides.
    model_id: str | None = None
    model_name: str | None = None
    #: Weights to fine-tune from (a .pt file or a registered model id), replacing the recipe's ``init``.
    init: str | None = None
    #: "cpu", "cuda" or None (CUDA when available).
    device: str | None = None
    #: CPU threads for torch during the run (None: 1 on a busy machine, else torch's default; see
    #: :func:`busy_machine_threads`).
    threads: int | None = None
    #: Processes sampling batches ahead of the step (None: none on the CPU, most cores in front of a GPU; see
    #: :mod:`.feeder`). With workers a run is reproducible for the same count but not resumed bit-exactly.
    workers: int | None = None
    #: Your own data instead of the recipe's: an object with ``sample(rng) -> datasets.Sample`` (e.g. a
    #: synthetic generator or a fixed patch pool) and the validation samples to score it with.
    train_data: Any = None
    val_data: Sequence[Any] | None = None


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    steps: int
    seconds: float
    best_val_psnr: float | None
    best_step: int | None
    skipped_batches: int
    final_loss: float | None
    stopped_early: bool
    device: str
    export: Any = None  # export.ExportResult when exported
    history: tuple[dict, ...] = field(default_factory=tuple)
    #: Fine-tuning: the starting model's validation score before the first step (the bar the run had to beat;
    #: being the best so far, it is what gets exported if no step beat it).
    start_val_psnr: float | None = None


# ----------------------------------------------------------------------------------------------- data


def _train_folders(recipe: Recipe, options: TrainOptions) -> list[Path]:
    folders = options.data or recipe.data.train
    if not folders:
        raise EngineError("no training images: give [data] train in the recipe or --data")
    return [resolve_path(f) for f in folders]


def build_data(recipe: Recipe, options: TrainOptions, model) -> tuple[Any, list]:
    """The training dataset and the fixed validation samples, shaped for ``model`` (its input roles, colour
    channels, scale and alignment)."""
    d, g, m = recipe.data, recipe.degradation, recipe.model
    roles, alignment = tuple(model.input_roles), int(model.alignment)
    channels, scale = int(model.channels), int(model.scale)
    if g.kind == "sr" and g.scale != scale:
        raise EngineError(f"the recipe degrades by x{g.scale} but the model upscales x{scale}")
    if d.kind == "clean":
        paths = [p for folder in _train_folders(recipe, options) for p in ds.list_images(folder, d.recursive)]
        if d.max_images:
            paths = paths[: d.max_images]
        if not paths:
            raise EngineError("the training folders hold no images")
        if d.val and not options.data:  # the recipe's validation folders go with its own training folders
            val_paths = [p for folder in d.val for p in ds.list_images(resolve_path(folder), d.recursive)][
                : d.val_count
            ]
        else:
            # Hold out the last images (never trained on) unless there is only one image.
            holdout = min(d.val_count, max(1, len(paths) // 5)) if len(paths) > 1 else 0
            val_paths = paths[len(paths) - holdout :] if holdout else paths[:1]
            paths = paths[: len(paths) - holdout] if holdout else paths
        train = ds.CleanImageDataset(
            ds.ImageStore.load(paths),
            patch_size=d.patch_size,
            degradation=g,
            roles=roles,
            transform=m.value_transform,
            channels=channels,
            mining=d.mining,
            mine_fraction=d.mine_fraction,
            mine_stride=d.mine_stride,
            augment=d.augment,
            exposure_jitter_stops=d.exposure_jitter_stops,
        )
        val = ds.validation_from_clean(
            ds.ImageStore.load(val_paths),
            crop=d.val_crop,
            degradation=g,
            roles=roles,
            transform=m.value_transform,
            channels=channels,
            multiple=alignment,
            seed=recipe.train.seed + 12345,
        )
        return train, val
    if options.data:
        pairs = [pair for folder in options.data for pair in ds.find_pairs(resolve_path(folder))]
    else:
        pairs = ds.match_pairs(resolve_path(d.input_dir), resolve_path(d.target_dir))
    if d.val_input_dir and not options.data:
        val_pairs = ds.match_pairs(resolve_path(d.val_input_dir), resolve_path(d.val_target_dir))[: d.val_count]
    else:
        holdout = min(d.val_count, max(1, len(pairs) // 5)) if len(pairs) > 1 else 0
        val_pairs = pairs[len(pairs) - holdout :] if holdout else pairs[:1]
        pairs = pairs[: len(pairs) - holdout] if holdout else pairs
    common = dict(roles=roles, scale=scale, transform=m.value_transform, channels=channels)
    train = ds.PairedImageDataset(
        pairs,
        patch_size=d.patch_size,
        augment=d.augment,
        mining=d.mining,
        mine_fraction=d.mine_fraction,
        exposure_jitter_stops=d.exposure_jitter_stops,
        **common,
    )
    val_set = ds.PairedImageDataset(val_pairs, patch_size=d.patch_size, **common)
    return train, ds.validation_from_pairs(val_set, d.val_crop, alignment)


def collate(samples: Sequence[ds.Sample], roles: Sequence[str], device) -> tuple[list, Any, Any]:
    import torch

    from .feeder import stack

    inputs, target, valid = stack(samples, roles)
    return ([torch.from_numpy(x).to(device) for x in inputs], torch.from_numpy(target).to(device),
            None if valid is None else torch.from_numpy(valid).to(device))


# ----------------------------------------------------------------------------------------------- metrics


def display_space(values: np.ndarray, sample: ds.Sample, transform: str) -> np.ndarray:
    """C x H x W model-space values -> what PSNR is measured on: [0, 1] display values (HDR tonemapped)."""
    hwc = np.transpose(values, (1, 2, 0))
    image = from_model_space(hwc, transform, sample.hdr, sample.exposure)
    if sample.hdr:
        return np.clip(np.nan_to_num(image), 0.0, 1.0) ** (1 / 2.2)
    return np.clip(image, 0.0, 1.0)


def psnr(a: np.ndarray, b: np.ndarray, valid: np.ndarray | None = None) -> float:
    diff = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = float(diff[valid].mean()) if valid is not None else float(diff.mean())
    return 100.0 if mse <= 1e-10 else 10.0 * math.log10(1.0 / mse)


def evaluate(model, samples: Sequence[ds.Sample], roles: Sequence[str], transform: str, device) -> float:
    """Mean PSNR (dB) of the model's outputs on ``samples``, in display space."""
    import torch

    was_training = model.training
    model.eval()
    scores = []
    with torch.no_grad():
        for sample in samples:
            inputs, _, _ = collate([sample], roles, device)
            output = model(*inputs)[0].float().cpu().numpy()
            valid = None if sample.valid is None else np.transpose(sample.valid, (1, 2, 0))
            scores.append(
                psnr(display_space(output, sample, transform), display_space(sample.target, sample, transform), valid)
            )
    model.train(was_training)
    return float(np.mean(scores)) if scores else float("nan")


def learning_rate(step: int, progress: float, base: float, warmup: int, min_ratio: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine annealing over the budget fraction ``progress``."""
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    p = min(max(progress, 0.0), 1.0)
    return base * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * p)))


# ----------------------------------------------------------------------------------------------- model


def resolve_init(spec: str) -> Path:
    """A fine-tuning start: a .pt path, a registered model id whose weights lie beside its ONNX file, or a recipe
    file whose run left the weights (recipes.recipe_checkpoint: an earlier stage of a model grown in stages)."""
    if is_recipe_reference(spec):
        return recipe_checkpoint(spec)
    path = Path(spec).expanduser()
    if path.suffix == ".pt" and path.is_file():
        return path
    from ..models.registry import ModelRegistry

    entry = ModelRegistry(include_classical=False).get(spec)
    weights = entry.path.with_suffix(".pt") if entry.path else None
    if weights is None or not weights.is_file():
        raise EngineError(
            f"model {spec!r} cannot be fine-tuned: its torch weights ({entry.id}.pt) are not beside its ONNX file; "
            f"train it from its recipe ({entry.manifest.provenance.get('recipe', 'unknown')}) instead"
        )
    return weights


def build_for_recipe(recipe: Recipe, init: str | None):
    """The model to train, and (arch, config, init path) describing it.

    With ``init``: the init's own model, unless the recipe's architecture can grow those weights into the
    recipe's (larger) model (its spec's ``grows_into`` / ``grow``: how the shipped render models were staged)."""
    from .archs import arch_spec, build_model
    from .export import load_weights

    arch, config = recipe.model.arch, dict(recipe.model.config)
    state = None
    init_path = None
    if init:
        init_path = resolve_init(init)
        weights = load_weights(init_path)
        spec = arch_spec(arch)
        if spec.can_grow(arch, config, weights):
            model = build_model(arch, config)
            spec.grow(model, weights["state_dict"], dict(weights["config"]))
            return model, arch, config, init_path
        arch, config, state = weights["arch"], dict(weights["config"]), weights["state_dict"]
    model = build_model(arch, config)
    if state is not None:
        model.load_state_dict(state)
    return model, arch, config, init_path


def train_only(model, part: str, arch: str) -> None:
    """Freeze all of ``model`` but ``part`` (recipes' ``train_only``, a part its architecture's spec names); an
    EngineError if it has no such part."""
    from .archs import arch_spec

    freeze_all_but = arch_spec(arch).parts.get(part)
    if freeze_all_but is None:
        raise EngineError(f"train_only = {part!r}: a {arch} model has no {part} stage to train alone")
    try:
        freeze_all_but(model)
    except ValueError as error:
        raise EngineError(f"train_only = {part!r}: {error}") from None


def pick_device(requested: str | None) -> str:
    import torch

    if requested:
        if requested == "cuda" and not torch.cuda.is_available():
            raise EngineError("CUDA was asked for but is not available")
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 in hardware (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def autocast_dtype(amp: str, device: str):
    """The autocast dtype for the recipe's ``amp``: "auto" is fp16 on CUDA and bf16 on CPUs with native bf16
    (measured: 2.2-2.6x faster per step, validation PSNR within 0.02 dB of fp32 at equal steps; see
    lab/bench/results/bf16_cpu.md), fp32 elsewhere. Prefer "auto" to "bf16" in recipes: forced bf16 on a CPU without
    it (an AMD EPYC without AVX-512, say) falls back to PyTorch's slow convolution path, 10-40x slower than fp32
    (KPRCAN step 5.2 s vs 0.57 s, measured 2026-11-27)."""
    import torch

    if amp == "auto":
        if device == "cuda":
            return torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def _save(path: Path, payload: dict) -> None:
    import torch

    temporary = path.with_name(path.name + ".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)  # a crash mid-save never leaves a truncated checkpoint


# ----------------------------------------------------------------------------------------------- the job


def train_job(
    recipe: Recipe, token: CancelToken | None = None, options: TrainOptions | None = None
) -> Generator[Progress, None, TrainResult]:
    """Train ``recipe``; yields Progress (metrics step, loss, lr, skipped, val_psnr) and returns TrainResult."""
    import torch

    options = options or TrainOptions()
    previous_threads = torch.get_num_threads()
    threads = options.threads or busy_machine_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return (yield from _train(recipe, token, options))
    finally:
        torch.set_num_threads(previous_threads)


def busy_machine_threads() -> int | None:
    """1 when the machine is already busy (load average at least its CPU count), else None (torch's default).

    Measured on a shared 2-core box under load: a small EDSR step took 0.42 s on 1 thread and 4.1 s on 2,
    because OpenMP threads spin waiting for each other while other processes hold the cores."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on Windows
        return None
    return 1 if load >= (os.cpu_count() or 1) else None


def _train(recipe: Recipe, token: CancelToken | None, options: TrainOptions) -> Generator[Progress, None, TrainResult]:
    import torch

    token = token or CancelToken()
    t = recipe.train
    if options.steps is not None or options.minutes is not None:
        t = replace(t, steps=options.steps or 0, minutes=options.minutes or 0.0)
        if t.steps <= 0 and t.minutes <= 0:
            raise EngineError("set a budget: --steps or --minutes")
    model_id = options.model_id or recipe.model.id
    run_dir = Path(options.run_dir) if options.run_dir else user_data_dir() / "training" / model_id
    run_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"

    yield Progress(0.0, "prepare", "building the model and loading images")
    device = pick_device(options.device)
    context = distributed.current()  # several processes under torchrun (distributed.py), else one
    torch.manual_seed(t.seed)
    rng = np.random.default_rng(t.seed)
    init = options.init if options.init is not None else (t.init or None)
    model, arch, config, init_path = build_for_recipe(recipe, init)
    model.to(device).train()
    roles = tuple(model.input_roles)
    if options.train_data is not None:
        train_set, val_samples = options.train_data, list(options.val_data or ())
    else:
        try:
            train_set, val_samples = build_data(recipe, options, model)
        except ds.DataError as error:
            raise ds.DataError(f"{error}{'' if options.data else prepare_hint(recipe)}") from None
    if t.train_only:
        train_only(model, t.train_only, arch)
    net = distributed.wrap(model, device)  # forward/backward through DDP; model itself for weights and validation
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=t.lr,
                                  weight_decay=t.weight_decay)
    amp_dtype = autocast_dtype(t.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16 and device == "cuda")

    step, elapsed_before, skipped, best_psnr, best_step = 0, 0.0, 0, None, None
    start_psnr: float | None = None  # a fine-tune's starting model, scored before its first step
    history: list[dict] = []
    best_state = None
    if options.resume and last_path.is_file():
        checkpoint = torch.load(str(last_path), map_location="cpu", weights_only=True)
        if (
            checkpoint.get("kind") != CHECKPOINT_KIND
            or checkpoint.get("arch") != arch
            or checkpoint.get("config") != config
        ):
            raise EngineError(
                f"{last_path} belongs to another model: cannot resume (remove it or use another run folder)"
            )
        model.load_state_dict(checkpoint["state_dict"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scaler.load_state_dict(checkpoint["scaler"])
        step, elapsed_before, skipped = checkpoint["step"], checkpoint["elapsed"], checkpoint["skipped"]
        best_psnr, best_step, history = checkpoint["best_psnr"], checkpoint["best_step"], list(checkpoint["history"])
        start_psnr = checkpoint.get("start_psnr")
        rng.bit_generator.state = checkpoint["numpy_rng"]
        torch.set_rng_state(checkpoint["torch_rng"])
        if best_path.is_file():
            best_state = torch.load(str(best_path), map_location="cpu", weights_only=True)["state_dict"]

    session_start = time.perf_counter()

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - session_start

    def budget_fraction() -> float:
        fractions = []
        if t.steps > 0:
            fractions.append(step / t.steps)
        if t.minutes > 0:
            fractions.append(elapsed() / (t.minutes * 60.0))
        return max(fractions)

    def checkpoint_payload() -> dict:
        return {
            "kind": CHECKPOINT_KIND,
            "arch": arch,
            "config": config,
            "recipe": recipe.to_dict(),
            "state_dict": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "step": step,
            "elapsed": elapsed(),
            "skipped": skipped,
            "best_psnr": best_psnr,
            "best_step": best_step,
            "start_psnr": start_psnr,
            "history": history[-5000:],
            "numpy_rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }

    def validate() -> float:
        nonlocal best_psnr, best_step, best_state
        score = evaluate(model, val_samples, roles, recipe.model.value_transform, device)
        if np.isfinite(score) and (best_psnr is None or score > best_psnr):
            best_psnr, best_step = score, step
            best_state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
            _save(
                best_path, {"arch": arch, "config": config, "state_dict": best_state, "val_psnr": score, "step": step}
            )
        return score

    if init_path is not None and step == 0 and val_samples and context.is_main:
        # Score the starting model first: the user learns whether fine-tuning helped, and a run whose steps all
        # score worse exports the starting weights rather than the least bad of them.
        yield Progress(0.0, "validate", "validating the starting model")
        start_psnr = validate()
        record = {"step": 0.0, "val_psnr": start_psnr, "best_val_psnr": start_psnr, "start_val_psnr": start_psnr}
        history.append(dict(record))
        yield Progress(0.0, "validate", f"the starting model: validation {start_psnr:.2f} dB", None, record)

    from .feeder import BatchFeeder, auto_workers

    workers = options.workers if options.workers is not None else auto_workers(device)
    # Under DDP every rank draws the global batch and keeps its slice: the samples of one process with it all.
    feeder = BatchFeeder(train_set, roles, t.batch_size * context.world_size, device, rng, workers=workers,
                         seed=t.seed, start_step=step)
    start_fraction = budget_fraction()
    consecutive_skips = 0
    last_loss: float | None = None
    last_val_step = -1
    last_val: tuple[float, float] | None = None
    stopped_early = False
    try:
        while distributed.main_decides(budget_fraction() < 1.0):
            token.raise_if_cancelled()
            if token.stop_requested:
                stopped_early = True
                break
            # feed
            inputs, target, valid = distributed.shard(feeder.next_batch(), context)
            lr = learning_rate(step, budget_fraction(), t.lr, t.warmup_steps, t.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = lr
            # optimise
            ok = distributed.all_true(all(bool(torch.isfinite(x).all()) for x in inputs))
            loss_value = float("nan")
            if ok:
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(
                    device_type=device, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None
                ):
                    output = net(*inputs)
                from .losses import restoration_loss

                loss = restoration_loss(output.float(), target, valid, t.loss, t.ms_ssim_weight, t.relmse_weight,
                                        t.lowfreq_weight, t.lowfreq_size)
                loss_value = float(loss.detach())
                ok = math.isfinite(loss_value)
                # Under DDP every rank runs backward (the gradient all-reduce is collective) and all skip together.
                if ok or context.enabled:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                    norm = torch.nn.utils.clip_grad_norm_(
                        model.parameters(), t.clip_grad if t.clip_grad > 0 else float("inf")
                    )
                    ok = distributed.all_true(ok and bool(torch.isfinite(norm)))
                    if ok:
                        loss_value = distributed.mean(loss_value)  # the whole (global) batch's loss
                        scaler.step(optimizer)
                    scaler.update()
                if not ok:
                    optimizer.zero_grad(set_to_none=True)
            step += 1
            metrics: dict[str, float] = {"step": float(step), "lr": lr, "skipped": float(skipped)}
            if ok:
                consecutive_skips = 0
                last_loss = loss_value
                metrics["loss"] = loss_value
            else:
                skipped += 1
                consecutive_skips += 1
                metrics["skipped"] = float(skipped)
                if consecutive_skips >= MAX_CONSECUTIVE_SKIPS:
                    raise EngineError(
                        f"{consecutive_skips} batches in a row had NaN/Inf inputs or loss: the data or "
                        "the learning rate is broken"
                    )
            # validate
            if t.val_every > 0 and step % t.val_every == 0 and context.is_main:
                metrics["val_psnr"] = validate()
                last_val_step = step
                last_val = (float(step), metrics["val_psnr"])
            if best_psnr is not None:
                metrics["best_val_psnr"] = best_psnr
            if last_val is not None:
                # Repeated in every record: a GUI that throttles progress events still sees each validation.
                metrics["last_val_step"], metrics["last_val_psnr"] = last_val
            if start_psnr is not None:
                metrics["start_val_psnr"] = start_psnr  # likewise
            history.append(dict(metrics))
            # save
            if t.checkpoint_every > 0 and step % t.checkpoint_every == 0 and context.is_main:
                _save(last_path, checkpoint_payload())
            fraction = budget_fraction()
            done = fraction - start_fraction
            eta = (time.perf_counter() - session_start) * (1.0 - fraction) / done if done > 0 else None
            message = f"step {step}" + (f", loss {loss_value:.4f}" if ok else ", batch skipped")
            if "val_psnr" in metrics:
                message += f", validation {metrics['val_psnr']:.2f} dB"
            yield Progress(min(fraction, 1.0), "train", message, eta, metrics)
    except JobCancelled:
        if context.is_main:
            _save(last_path, checkpoint_payload())  # so that the same run can be resumed
        raise
    finally:
        feeder.close()

    if last_val_step != step and val_samples and context.is_main:
        yield Progress(1.0, "validate", "final validation")
        score = validate()
        final = {"step": float(step), "val_psnr": score, "best_val_psnr": best_psnr if best_psnr is not None else score}
        history.append(final)
        final.update(last_val_step=float(step), last_val_psnr=score)
        yield Progress(1.0, "validate", f"validation {score:.2f} dB", None, dict(final))
    if context.is_main:
        _save(last_path, checkpoint_payload())
    seconds = elapsed()
    result = TrainResult(
        run_dir, step, seconds, best_psnr, best_step, skipped, last_loss, stopped_early, device, None, tuple(history),
        start_psnr,
    )
    if not options.export or not context.is_main:  # rank 0 exports for all
        return result
    token.raise_if_cancelled()
    yield Progress(1.0, "export", "exporting to ONNX and checking parity")
    from .export import build_manifest, export_model

    export_net = copy.deepcopy(model).to("cpu").float().eval()
    if best_state is not None:
        export_net.load_state_dict(best_state)
    provenance = {
        "recipe": recipe.source,
        "arch": arch,
        "arch_config": config,
        "data": [
            str(f) for f in (options.data or recipe.data.train or (recipe.data.input_dir, recipe.data.target_dir))
        ],
        "steps": step,
        "minutes": round(seconds / 60.0, 2),
        "device": device_label(device),
        "best_val_psnr": None if best_psnr is None else round(best_psnr, 3),
        "best_step": best_step,
        "skipped_batches": skipped,
        "seed": t.seed,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if init_path is not None:
        provenance["fine_tuned_from"] = str(init_path)
        if start_psnr is not None:
            provenance["start_val_psnr"] = round(start_psnr, 3)
    scores = {} if best_psnr is None else {"val_psnr": round(best_psnr, 3)}
    manifest = build_manifest(
        export_net,
        model_id=model_id,
        task=recipe.model.task,
        name=options.model_name or recipe.model.name,
        description=recipe.model.description,
        value_transform=recipe.model.value_transform,
        params=recipe.export.params,
        tile_default=recipe.export.tile,
        provenance=provenance,
        scores=scores,
    )
    exported = export_model(export_net, manifest, options.out_dir, arch=arch, arch_config=config)
    return replace(result, export=exported)


def device_label(device: str) -> str:
    import torch

    if device == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(0)}"
    return f"CPU ({torch.get_num_threads()} threads)"
