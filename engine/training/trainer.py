"""The trainer: a job (engine/jobs.py) that trains a recipe's model, validates it, checkpoints, and exports it.

The loop has named steps: ``feed`` (sample a batch), ``optimise`` (forward, loss, backward, clip, step),
``validate`` (PSNR in display space on fixed held-out samples, keeping the best weights) and ``save`` (a
checkpoint to resume from); ``_train`` reads as those steps, each a function over the run's state (``_Run``).
What it does against the failures seed 001 met:

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
from ..metrics import masked_psnr
from ..paths import user_data_dir
from ..transforms import from_model_space
from . import datasets as ds
from . import distributed
from .recipes import Recipe, TrainSection, is_recipe_reference, prepare_hint, recipe_checkpoint, resolve_path

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
    if d.kind == "shots":
        raise EngineError(f"{recipe.source} trains on shots (a temporal model): python main.py train --recipe "
                          f"{recipe.source} --run-dir RUN, then python main.py ship RUN (engine/training/temporal.py)")
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
        if g.kind == "raw":  # Bayer mosaics unprocessed from the photographs (raw_data.py)
            from .raw_data import raw_datasets

            return raw_datasets(paths, val_paths, d, recipe.train.seed + 12345)
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
        fit_multiple=alignment,
        augment_aovs=d.augment_aovs,
        **common,
    )
    val_set = ds.PairedImageDataset(val_pairs, patch_size=train.patch_size, fit_multiple=alignment, **common)
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


#: Validation PSNR (engine/metrics.py; the name lab scripts import from here).
psnr = masked_psnr


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
                masked_psnr(display_space(output, sample, transform), display_space(sample.target, sample, transform),
                            valid)
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


@dataclass(eq=False)
class _Run:
    """One training run: what the loop's steps share, and what a checkpoint saves to resume it."""

    recipe: Recipe
    options: TrainOptions
    t: TrainSection  # the recipe's [train], with the run's budgets
    token: CancelToken
    context: distributed.Context  # several processes under torchrun (distributed.py), else one
    device: str
    model_id: str
    run_dir: Path
    rng: np.random.Generator
    model: Any  # weights, validation and export
    net: Any  # forward/backward: the model itself, or its DDP wrapper
    arch: str
    config: dict
    init_path: Path | None
    roles: tuple[str, ...]
    train_set: Any
    val_samples: list
    optimizer: Any
    scaler: Any
    amp_dtype: Any
    # Counted over the whole run (a resumed run goes on from its checkpoint).
    step: int = 0
    elapsed_before: float = 0.0
    skipped: int = 0
    best_psnr: float | None = None
    best_step: int | None = None
    start_psnr: float | None = None  # a fine-tune's starting model, scored before its first step
    history: list[dict] = field(default_factory=list)
    best_state: dict | None = None
    # This session only.
    session_start: float = 0.0
    consecutive_skips: int = 0
    last_loss: float | None = None
    last_val_step: int = -1
    last_val: tuple[float, float] | None = None
    stopped_early: bool = False

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.pt"

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.session_start

    def budget_fraction(self) -> float:
        fractions = []
        if self.t.steps > 0:
            fractions.append(self.step / self.t.steps)
        if self.t.minutes > 0:
            fractions.append(self.elapsed() / (self.t.minutes * 60.0))
        return max(fractions)

    def checkpoint_payload(self) -> dict:
        import torch

        return {
            "kind": CHECKPOINT_KIND,
            "arch": self.arch,
            "config": self.config,
            "recipe": self.recipe.to_dict(),
            "state_dict": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "elapsed": self.elapsed(),
            "skipped": self.skipped,
            "best_psnr": self.best_psnr,
            "best_step": self.best_step,
            "start_psnr": self.start_psnr,
            "history": self.history[-5000:],
            "numpy_rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }

    def save_last(self) -> None:
        _save(self.last_path, self.checkpoint_payload())

    def validate(self) -> float:
        """Score the model on the validation samples; a new best is kept (in memory and in best.pt)."""
        score = evaluate(self.model, self.val_samples, self.roles, self.recipe.model.value_transform, self.device)
        if np.isfinite(score) and (self.best_psnr is None or score > self.best_psnr):
            self.best_psnr, self.best_step = score, self.step
            self.best_state = {k: v.detach().to("cpu").clone() for k, v in self.model.state_dict().items()}
            _save(self.best_path, {"arch": self.arch, "config": self.config, "state_dict": self.best_state,
                                   "val_psnr": score, "step": self.step})
        return score


def _train(recipe: Recipe, token: CancelToken | None, options: TrainOptions) -> Generator[Progress, None, TrainResult]:
    """The loop, step by step: set up (or resume) the run, score a fine-tune's start, then per batch feed,
    optimise, count, validate, save and report; then the final validation, checkpoint and export."""
    token = token or CancelToken()
    t = _budgets(recipe, options)
    model_id = options.model_id or recipe.model.id
    run_dir = Path(options.run_dir) if options.run_dir else user_data_dir() / "training" / model_id
    run_dir.mkdir(parents=True, exist_ok=True)

    yield Progress(0.0, "prepare", "building the model and loading images")
    run = _setup_run(recipe, options, t, token, model_id, run_dir)
    if options.resume and run.last_path.is_file():
        _resume(run)
    run.session_start = time.perf_counter()
    if getattr(run.train_set, "note", ""):  # e.g. patches shrunk to fit a small shot's frames
        yield Progress(0.0, "prepare", run.train_set.note)
    yield from _validate_start(run)

    feeder = _feeder(run)
    start_fraction = run.budget_fraction()
    try:
        # Under DDP rank 0 decides when the budget is spent, for all ranks.
        while distributed.main_decides(run.budget_fraction() < 1.0):
            token.raise_if_cancelled()
            if token.stop_requested:
                run.stopped_early = True
                break
            batch = distributed.shard(feeder.next_batch(), run.context)  # feed
            lr = _set_learning_rate(run)
            ok, loss_value = _train_step(run, *batch)  # optimise
            metrics = _count_step(run, lr, ok, loss_value)
            _maybe_validate(run, metrics)
            run.history.append(dict(metrics))
            _maybe_save(run)
            yield _step_progress(run, metrics, ok, loss_value, start_fraction)
    except JobCancelled:
        if run.context.is_main:
            run.save_last()  # so that the same run can be resumed
        raise
    finally:
        feeder.close()

    yield from _final_validation(run)
    return (yield from _finish(run))


def _budgets(recipe: Recipe, options: TrainOptions) -> TrainSection:
    """The recipe's [train] with the run's step/minute budgets (if either is given, the other is unlimited unless
    also given)."""
    t = recipe.train
    if options.steps is not None or options.minutes is not None:
        t = replace(t, steps=options.steps or 0, minutes=options.minutes or 0.0)
        if t.steps <= 0 and t.minutes <= 0:
            raise EngineError("set a budget: --steps or --minutes")
    return t


def _setup_run(
    recipe: Recipe, options: TrainOptions, t: TrainSection, token: CancelToken, model_id: str, run_dir: Path
) -> _Run:
    """Device, seeds, model (from its init), data, frozen parts, DDP wrapper, optimiser and AMP scaler."""
    import torch

    device = pick_device(options.device)
    context = distributed.current()
    torch.manual_seed(t.seed)
    rng = np.random.default_rng(t.seed)
    init = options.init if options.init is not None else (t.init or None)
    model, arch, config, init_path = build_for_recipe(recipe, init)
    model.to(device).train()
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
    return _Run(
        recipe=recipe, options=options, t=t, token=token, context=context, device=device, model_id=model_id,
        run_dir=run_dir, rng=rng, model=model, net=net, arch=arch, config=config, init_path=init_path,
        roles=tuple(model.input_roles), train_set=train_set, val_samples=val_samples, optimizer=optimizer,
        scaler=scaler, amp_dtype=amp_dtype,
    )


def _resume(run: _Run) -> None:
    """Continue from last.pt: weights, optimiser, scaler, counters, best score, history and random states."""
    import torch

    checkpoint = torch.load(str(run.last_path), map_location="cpu", weights_only=True)
    if (
        checkpoint.get("kind") != CHECKPOINT_KIND
        or checkpoint.get("arch") != run.arch
        or checkpoint.get("config") != run.config
    ):
        raise EngineError(
            f"{run.last_path} belongs to another model: cannot resume (remove it or use another run folder)"
        )
    run.model.load_state_dict(checkpoint["state_dict"])
    run.optimizer.load_state_dict(checkpoint["optimizer"])
    run.scaler.load_state_dict(checkpoint["scaler"])
    run.step, run.elapsed_before, run.skipped = checkpoint["step"], checkpoint["elapsed"], checkpoint["skipped"]
    run.best_psnr, run.best_step = checkpoint["best_psnr"], checkpoint["best_step"]
    run.history = list(checkpoint["history"])
    run.start_psnr = checkpoint.get("start_psnr")
    run.rng.bit_generator.state = checkpoint["numpy_rng"]
    torch.set_rng_state(checkpoint["torch_rng"])
    if run.best_path.is_file():
        run.best_state = torch.load(str(run.best_path), map_location="cpu", weights_only=True)["state_dict"]


def _validate_start(run: _Run) -> Generator[Progress, None, None]:
    """Fine-tuning: score the starting model first (rank 0). The user learns whether fine-tuning helped, and a run
    whose steps all score worse exports the starting weights rather than the least bad of them."""
    if run.init_path is None or run.step != 0 or not run.val_samples or not run.context.is_main:
        return
    yield Progress(0.0, "validate", "validating the starting model")
    run.start_psnr = run.validate()
    record = {"step": 0.0, "val_psnr": run.start_psnr, "best_val_psnr": run.start_psnr,
              "start_val_psnr": run.start_psnr}
    run.history.append(dict(record))
    yield Progress(0.0, "validate", f"the starting model: validation {run.start_psnr:.2f} dB", None, record)


def _feeder(run: _Run):
    """The batch feeder, from the run's step on. Under DDP every rank draws the global batch and keeps its slice:
    the samples of one process with it all."""
    from .feeder import BatchFeeder, auto_workers

    options, t = run.options, run.t
    workers = options.workers if options.workers is not None else auto_workers(run.device)
    return BatchFeeder(run.train_set, run.roles, t.batch_size * run.context.world_size, run.device, run.rng,
                       workers=workers, seed=t.seed, start_step=run.step)


def _set_learning_rate(run: _Run) -> float:
    t = run.t
    lr = learning_rate(run.step, run.budget_fraction(), t.lr, t.warmup_steps, t.min_lr_ratio)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    return lr


def _train_step(run: _Run, inputs: list, target, valid) -> tuple[bool, float]:
    """One batch: forward, loss, backward, clip, optimiser step. Returns (ok, loss); a batch whose inputs, loss or
    gradient norm is not finite is skipped (no optimiser step). Under DDP all ranks skip together."""
    import torch

    from .losses import restoration_loss

    t, model, optimizer, scaler, context = run.t, run.model, run.optimizer, run.scaler, run.context
    ok = distributed.all_true(all(bool(torch.isfinite(x).all()) for x in inputs))
    loss_value = float("nan")
    if ok:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(
            device_type=run.device, dtype=run.amp_dtype or torch.float32, enabled=run.amp_dtype is not None
        ):
            output = run.net(*inputs)
        loss = restoration_loss(output.float(), target, valid, t.loss, t.ms_ssim_weight, t.relmse_weight,
                                t.lowfreq_weight, t.lowfreq_size)
        loss_value = float(loss.detach())
        ok = math.isfinite(loss_value)
        # Under DDP every rank runs backward (the gradient all-reduce is collective) and all skip together.
        if ok or context.enabled:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip_grad if t.clip_grad > 0 else float("inf"))
            ok = distributed.all_true(ok and bool(torch.isfinite(norm)))
            if ok:
                loss_value = distributed.mean(loss_value)  # the whole (global) batch's loss
                scaler.step(optimizer)
            scaler.update()
        if not ok:
            optimizer.zero_grad(set_to_none=True)
    return ok, loss_value


def _count_step(run: _Run, lr: float, ok: bool, loss_value: float) -> dict[str, float]:
    """Advance the step counter and count a skipped batch; the step's metrics record. Too many skipped batches in a
    row stop the run."""
    run.step += 1
    metrics: dict[str, float] = {"step": float(run.step), "lr": lr, "skipped": float(run.skipped)}
    if ok:
        run.consecutive_skips = 0
        run.last_loss = loss_value
        metrics["loss"] = loss_value
    else:
        run.skipped += 1
        run.consecutive_skips += 1
        metrics["skipped"] = float(run.skipped)
        if run.consecutive_skips >= MAX_CONSECUTIVE_SKIPS:
            raise EngineError(
                f"{run.consecutive_skips} batches in a row had NaN/Inf inputs or loss: the data or "
                "the learning rate is broken"
            )
    return metrics


def _maybe_validate(run: _Run, metrics: dict[str, float]) -> None:
    """Validate every ``val_every`` steps (rank 0); add the scores to the step's metrics."""
    if run.t.val_every > 0 and run.step % run.t.val_every == 0 and run.context.is_main:
        metrics["val_psnr"] = run.validate()
        run.last_val_step = run.step
        run.last_val = (float(run.step), metrics["val_psnr"])
    if run.best_psnr is not None:
        metrics["best_val_psnr"] = run.best_psnr
    if run.last_val is not None:
        # Repeated in every record: a GUI that throttles progress events still sees each validation.
        metrics["last_val_step"], metrics["last_val_psnr"] = run.last_val
    if run.start_psnr is not None:
        metrics["start_val_psnr"] = run.start_psnr  # likewise


def _maybe_save(run: _Run) -> None:
    """A checkpoint to resume from every ``checkpoint_every`` steps (rank 0)."""
    if run.t.checkpoint_every > 0 and run.step % run.t.checkpoint_every == 0 and run.context.is_main:
        run.save_last()


def _step_progress(run: _Run, metrics: dict[str, float], ok: bool, loss_value: float,
                   start_fraction: float) -> Progress:
    fraction = run.budget_fraction()
    done = fraction - start_fraction
    eta = (time.perf_counter() - run.session_start) * (1.0 - fraction) / done if done > 0 else None
    message = f"step {run.step}" + (f", loss {loss_value:.4f}" if ok else ", batch skipped")
    if "val_psnr" in metrics:
        message += f", validation {metrics['val_psnr']:.2f} dB"
    return Progress(min(fraction, 1.0), "train", message, eta, metrics)


def _final_validation(run: _Run) -> Generator[Progress, None, None]:
    """Validate the last weights unless the last step just did (rank 0)."""
    if run.last_val_step == run.step or not run.val_samples or not run.context.is_main:
        return
    yield Progress(1.0, "validate", "final validation")
    score = run.validate()
    best = run.best_psnr if run.best_psnr is not None else score
    final = {"step": float(run.step), "val_psnr": score, "best_val_psnr": best}
    run.history.append(final)
    final.update(last_val_step=float(run.step), last_val_psnr=score)
    yield Progress(1.0, "validate", f"validation {score:.2f} dB", None, dict(final))


def _finish(run: _Run) -> Generator[Progress, None, TrainResult]:
    """The last checkpoint and the result; rank 0 exports the best weights for all."""
    if run.context.is_main:
        run.save_last()
    seconds = run.elapsed()
    result = TrainResult(
        run.run_dir, run.step, seconds, run.best_psnr, run.best_step, run.skipped, run.last_loss, run.stopped_early,
        run.device, None, tuple(run.history), run.start_psnr,
    )
    if not run.options.export or not run.context.is_main:
        return result
    run.token.raise_if_cancelled()
    yield Progress(1.0, "export", "exporting to ONNX and checking parity")
    return replace(result, export=_export(run, seconds))


def _export(run: _Run, seconds: float):
    """The best weights (else the last) to ONNX, with a manifest that records where they came from."""
    from .export import build_manifest, export_model

    recipe, options, t = run.recipe, run.options, run.t
    export_net = copy.deepcopy(run.model).to("cpu").float().eval()
    if run.best_state is not None:
        export_net.load_state_dict(run.best_state)
    provenance = {
        "recipe": recipe.source,
        "arch": run.arch,
        "arch_config": run.config,
        "data": [
            str(f) for f in (options.data or recipe.data.train or (recipe.data.input_dir, recipe.data.target_dir))
        ],
        "steps": run.step,
        "minutes": round(seconds / 60.0, 2),
        "device": device_label(run.device),
        "best_val_psnr": None if run.best_psnr is None else round(run.best_psnr, 3),
        "best_step": run.best_step,
        "skipped_batches": run.skipped,
        "seed": t.seed,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if run.init_path is not None:
        provenance["fine_tuned_from"] = str(run.init_path)
        if run.start_psnr is not None:
            provenance["start_val_psnr"] = round(run.start_psnr, 3)
    scores = {} if run.best_psnr is None else {"val_psnr": round(run.best_psnr, 3)}
    manifest = build_manifest(
        export_net,
        model_id=run.model_id,
        task=recipe.model.task,
        name=options.model_name or recipe.model.name,
        description=recipe.model.description,
        value_transform=recipe.model.value_transform,
        params=recipe.export.params,
        tile_default=recipe.export.tile,
        provenance=provenance,
        scores=scores,
    )
    return export_model(export_net, manifest, options.out_dir, arch=run.arch, arch_config=run.config)


def device_label(device: str) -> str:
    import torch

    if device == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(0)}"
    return f"CPU ({torch.get_num_threads()} threads)"
