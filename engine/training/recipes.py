"""Training recipes: TOML files in ``recipes/`` that say everything needed to retrain a model.

A recipe has five tables (every key optional unless noted; see ``recipes/*.toml`` and the README):

- ``[model]``: ``id`` (required), ``task`` (required, one of engine.models.manifest.TASKS), ``arch`` (required, a
  key of ``ARCHITECTURES``), ``name``, ``description``, ``value_transform`` (srgb | linear | log1p),
  ``[model.config]`` (keyword arguments of the architecture's builder).
- ``[data]``: where the images come from and how patches are picked.
- ``[degradation]``: what is done on the fly to clean images (noise, JPEG, blur, downscaling).
- ``[train]``: budgets, optimiser, schedule, loss, validation cadence, seed.
- ``[export]``: user parameters of the exported model, scores to record.

Relative paths are relative to the repository root (so ``../shared/data/...`` works from any working folder).
Unknown keys are errors: a typo must not silently fall back to a default.

An experiment can state only what it changes: a top-level ``base = "other.toml"`` (a path relative to the
recipe's own folder) starts from that recipe, and this file's tables are merged over it key by key (a nested
table such as ``[model.config]`` merges too; a value, list included, replaces the base's). Bases may chain; a
cycle is an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EngineError
from ..models.manifest import TASKS, VALUE_TRANSFORMS

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


class RecipeError(EngineError):
    """A recipe file is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class ModelSection:
    id: str
    task: str
    arch: str
    name: str = ""
    description: str = ""
    value_transform: str = "srgb"
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSection:
    #: "clean": folders of clean images, degraded on the fly; "paired": input and target folders.
    kind: str = "clean"
    #: Folders of clean training images (kind "clean").
    train: tuple[str, ...] = ()
    #: Folders of validation images; empty: hold out ``val_count`` training images instead.
    val: tuple[str, ...] = ()
    #: Paired data (kind "paired"): files matched by name; see datasets.PairedImageDataset.
    input_dir: str = ""
    target_dir: str = ""
    val_input_dir: str = ""
    val_target_dir: str = ""
    val_count: int = 8
    #: Validation images are centre-cropped to this size (0: whole image) to keep validation fast.
    val_crop: int = 192
    #: Training patch size at the target (output) resolution.
    patch_size: int = 64
    #: "gradient" | "std" | "hf_power": mine the top fraction of a non-overlapping grid; "random": random crops.
    mining: str = "gradient"
    mine_fraction: float = 0.5
    #: Mining grid stride (0: the patch size; smaller values are refused, see mining.py).
    mine_stride: int = 0
    #: Use at most this many training images (0: all), the first ones in sorted order.
    max_images: int = 0
    #: Random flips and 90-degree rotations (seed 000 found they matter little: off by default).
    augment: bool = False
    #: With ``augment``, render buffers also get a random normal rotation and RGB permutation
    #: (datasets.augment_aovs: no scene's directions or hues become a cue). A per-shot fine-tune turns it off: there
    #: the shot's own directions and hues are what the network should learn.
    augment_aovs: bool = True
    #: HDR only: random exposure scale 2**U(-stops, stops) applied to input and target together.
    exposure_jitter_stops: float = 0.0
    #: Recurse into sub-folders.
    recursive: bool = False
    #: The commands that write this recipe's data folders when they are not in ../shared (run from the repository
    #: root, in order; ``python`` is this interpreter, ``bpy-python`` the one in $BPY_PYTHON). ``train --prepare``
    #: runs them; a missing folder's error names them.
    prepare: tuple[str, ...] = ()


@dataclass(frozen=True)
class DegradationSection:
    #: "noise" (denoising), "sr" (downscaling, then optional noise), "none" (paired data / identity), "raw"
    #: (noisy / clean Bayer mosaics unprocessed from the photographs with random cameras: training/raw_data.py).
    kind: str = "noise"
    #: Noise: "gaussian", "poisson-gaussian" (levels in 8-bit units, sigma 25 = 25/255) or "camera": Brooks et
    #: al. 2019's unprocessing, Poisson-Gaussian noise on an RGGB mosaic in raw space, then demosaicing, colour
    #: correction, gamma and tone curve (random camera per patch; ``degradations.add_camera_noise``).
    noise: str = "gaussian"
    sigma: tuple[float, float] = (0.0, 50.0)
    #: Poisson-Gaussian: shot-noise gain range (variance a * x, x in [0, 1]) and read noise (8-bit units).
    shot: tuple[float, float] = (0.0, 0.02)
    per_channel: bool = False
    #: Probability of spatially correlated noise, and its correlation radius range (pixels).
    correlated_prob: float = 0.0
    correlation: tuple[float, float] = (0.5, 1.5)
    #: Probability of a JPEG round trip, and its quality range.
    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (30, 95)
    #: JPEG chroma subsampling: probability of 4:2:0 (else 4:4:4), as phones and most cameras save.
    jpeg_subsampling_prob: float = 1.0
    #: Probability that the noisy image is clipped to [0, 1] after the noise, as every camera and 8-bit file
    #: does (a JPEG round trip clips anyway); ``val_clip`` clips the validation images too.
    clip_prob: float = 0.0
    val_clip: bool = False
    #: Super-resolution: scale factor, "bicubic" (MATLAB) or "kernel" (random Gaussian blur + decimation).
    scale: int = 1
    downscale: str = "bicubic"
    blur_sigma: tuple[float, float] = (0.2, 2.0)
    #: Denoising: probability of a mild isotropic Gaussian blur (sigma in ``blur_sigma``) of the clean patch
    #: before the noise, as camera optics and demosaicing soften real photos (the target stays sharp).
    blur_prob: float = 0.0
    #: Noise added to the LR image for SR (8-bit units; (0, 0) = none).
    sr_noise: tuple[float, float] = (0.0, 0.0)
    #: Validation uses this fixed noise level (8-bit units) so scores are comparable between steps.
    val_sigma: float = 25.0


@dataclass(frozen=True)
class TrainSection:
    #: Budgets: training stops at whichever comes first; 0 means no limit of that kind (one must be set).
    steps: int = 1000
    minutes: float = 0.0
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    #: Cosine annealing ends at lr * min_lr_ratio.
    min_lr_ratio: float = 0.01
    #: Gradient clipping (max global norm; 0: off).
    clip_grad: float = 1.0
    #: "l1", "l2", "relmse", "relmse-n2n" (against noisy Noise2Noise targets: losses.noise2noise_relative_mse),
    #: "l1+relmse", "ms-ssim" or "l1+ms-ssim" (weight ``ms_ssim_weight`` on the MS-SSIM term, as in OIDN's 0.84).
    loss: str = "l1"
    ms_ssim_weight: float = 0.84
    #: "l1+relmse" (log1p models): L1 in log space plus this weight times the relative MSE of the linear values,
    #: weighted by the reference as the render benchmark is (losses.relative_mse). 0.25: the shipped
    #: render-kprcan-aov's last stage (1.0 darkened emitter borders: recipes/lineage/render_kprcan_aov_relmse.toml).
    relmse_weight: float = 0.25
    #: "l1+relmse": plus this weight times the relative MSE of ``lowfreq_size`` px block means
    #: (losses.lowfreq_relative_mse), against a low-frequency bias (0: off, as every recipe before it).
    lowfreq_weight: float = 0.0
    lowfreq_size: int = 8
    val_every: int = 100
    checkpoint_every: int = 100
    seed: int = 0
    #: Mixed precision: "auto" (fp16 on CUDA, bf16 on CPUs with native bf16, else off), "off", "bf16", "fp16".
    amp: str = "auto"
    #: Start from these weights: a ``.pt`` file, a registered model id, or a recipe file (``recipes/lineage/X.toml``,
    #: ``#best`` appended for its best checkpoint): the weights its own run left in ``runs/X/`` (recipe_checkpoint),
    #: so a model grown in stages is a chain of recipes in the repository.
    init: str = ""
    #: Train one part and keep the rest as it is: "" (everything) or "refine" (a kernel-predicting render
    #: denoiser's refinement stage alone, its first pass a constant; needs weight_decay = 0, which would
    #: otherwise shrink the frozen rows of the tail they share) or "share" (a demodulating one's per-pixel share
    #: of the demodulated result alone, every kernel as it is).
    train_only: str = ""
    #: A recipe written for fine-tuning a trained model of its ``[model] id`` on a user's own images: the Train
    #: dialog offers it first when that model is the base, and uses its ``lr`` as it is (other recipes' rates
    #: are scaled by FINE_TUNE_LR_FACTOR there, as they were written for training from scratch or from a stage).
    for_fine_tuning: bool = False
    #: Shots (``[data] kind = "shots"``, engine/training/temporal.py): frames per training clip, run recurrently,
    #: and the weight of the temporal loss (consecutive-frame differences against the reference's).
    clip_frames: int = 4
    temporal_weight: float = 1.0


@dataclass(frozen=True)
class ExportSection:
    #: User parameters of the exported model (ParamSpec fields), e.g. the noise level of a non-blind denoiser.
    params: tuple[Mapping[str, Any], ...] = ()
    #: Default tile edge written into the manifest.
    tile: int = 512


@dataclass(frozen=True)
class Recipe:
    model: ModelSection
    data: DataSection = field(default_factory=DataSection)
    degradation: DegradationSection = field(default_factory=DegradationSection)
    train: TrainSection = field(default_factory=TrainSection)
    export: ExportSection = field(default_factory=ExportSection)
    #: The file it came from (repo-relative when inside the repo), recorded in model provenance.
    source: str = ""

    def replace(self, **sections: Any) -> Recipe:
        return dataclasses.replace(self, **sections)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of the model section: a resumed run must train the same network."""
        model = dataclasses.asdict(self.model)
        return hashlib.sha256(repr(sorted(model.items())).encode()).hexdigest()[:16]


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, Mapping):
        raise RecipeError(f"{where} must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(fields)})")
    values = {}
    for name, value in data.items():
        default = fields[name].default
        kind = str(fields[name].type)
        if kind.startswith("tuple"):
            if not isinstance(value, (list, tuple)):
                # A single value: one folder, or a fixed level given where a (low, high) range is expected.
                value = (value,) if kind.endswith("...]") else (value, value)
            value = tuple(value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        values[name] = value
    try:
        return cls(**values)
    except TypeError as error:
        raise RecipeError(f"{where}: {error}") from None


def recipe_from_dict(data: Mapping[str, Any], source: str = "recipe") -> Recipe:
    unknown = sorted(set(data) - {"model", "data", "degradation", "train", "export"})
    if unknown:
        raise RecipeError(f"{source}: unknown table(s) {', '.join(unknown)}")
    if "model" not in data:
        raise RecipeError(f"{source}: a recipe needs a [model] table")
    model_data = dict(data["model"])
    for key in ("id", "task", "arch"):
        if not model_data.get(key):
            raise RecipeError(f"{source}: [model] needs {key!r}")
    recipe = Recipe(
        model=_build(ModelSection, model_data, f"{source} [model]"),
        data=_build(DataSection, data.get("data", {}), f"{source} [data]"),
        degradation=_build(DegradationSection, data.get("degradation", {}), f"{source} [degradation]"),
        train=_build(TrainSection, data.get("train", {}), f"{source} [train]"),
        export=_build(ExportSection, data.get("export", {}), f"{source} [export]"),
        source=source,
    )
    validate(recipe)
    return recipe


def validate(recipe: Recipe) -> None:
    m, d, g, t = recipe.model, recipe.data, recipe.degradation, recipe.train
    where = recipe.source or "recipe"
    problems = []
    if m.task not in TASKS:
        problems.append(f"task {m.task!r} is not one of {', '.join(TASKS)}")
    if m.value_transform not in VALUE_TRANSFORMS:
        problems.append(f"value_transform {m.value_transform!r} is not one of {', '.join(VALUE_TRANSFORMS)}")
    if d.kind not in ("clean", "paired", "shots"):
        problems.append(f"data kind {d.kind!r} must be 'clean', 'paired' or 'shots'")
    if d.mining not in ("gradient", "std", "hf_power", "random"):
        problems.append(f"mining {d.mining!r} must be gradient, std, hf_power or random")
    if not 0 < d.mine_fraction <= 1:
        problems.append("mine_fraction must be in (0, 1]")
    if g.kind not in ("noise", "sr", "none", "raw"):
        problems.append(f"degradation kind {g.kind!r} must be noise, sr, none or raw")
    if g.kind == "raw" and d.kind != "clean":
        problems.append("a 'raw' degradation (Bayer mosaics unprocessed from photographs) needs clean data")
    for name in ("clip_prob", "jpeg_prob", "jpeg_subsampling_prob"):
        if not 0.0 <= getattr(g, name) <= 1.0:
            problems.append(f"{name} must be in [0, 1]")
    if g.noise not in ("gaussian", "poisson-gaussian", "camera"):
        problems.append(f"noise {g.noise!r} must be gaussian, poisson-gaussian or camera")
    if g.downscale not in ("bicubic", "kernel"):
        problems.append(f"downscale {g.downscale!r} must be bicubic or kernel")
    if g.kind == "sr" and g.scale < 2:
        problems.append("an 'sr' degradation needs scale >= 2")
    if t.loss not in ("l1", "l2", "ms-ssim", "l1+ms-ssim", "relmse", "relmse-n2n", "l1+relmse"):
        problems.append(f"loss {t.loss!r} must be l1, l2, ms-ssim, l1+ms-ssim, relmse, relmse-n2n or l1+relmse")
    if t.loss in ("relmse", "relmse-n2n", "l1+relmse") and m.value_transform != "log1p":
        problems.append(f"loss {t.loss!r} needs value_transform = \"log1p\" (it compares linear HDR values)")
    if t.lowfreq_weight < 0 or t.lowfreq_size < 1:
        problems.append("lowfreq_weight must be >= 0 and lowfreq_size >= 1")
    if t.lowfreq_weight and t.loss != "l1+relmse":
        problems.append("lowfreq_weight adds to the \"l1+relmse\" loss only")
    if t.amp not in ("auto", "off", "bf16", "fp16"):
        problems.append(f"amp {t.amp!r} must be auto, off, bf16 or fp16")
    if t.steps <= 0 and t.minutes <= 0:
        problems.append("set a budget: train.steps or train.minutes")
    if t.train_only not in ("", "refine", "share", "temporal"):
        problems.append(f"train_only {t.train_only!r} must be \"\" (everything), \"refine\", \"share\" or \"temporal\"")
    if t.train_only and t.weight_decay:
        problems.append("train_only needs weight_decay = 0 (decay would shrink the frozen weights too)")
    if not isinstance(t.for_fine_tuning, bool):
        problems.append(f"for_fine_tuning must be true or false, got {t.for_fine_tuning!r}")
    if t.batch_size < 1 or d.patch_size < 4:
        problems.append("batch_size must be >= 1 and patch_size >= 4")
    if problems:
        raise RecipeError(f"{where}: " + "; ".join(problems))


def resolve_path(path: str | Path) -> Path:
    """Recipe paths are relative to the repository root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


def load_recipe(path: str | Path) -> Recipe:
    """A recipe from a TOML file: a path, a path relative to the repository (or bundle), or a bundled recipe's
    name (``sr_x4_real`` for ``recipes/sr_x4_real.toml``)."""
    path = Path(path)
    if not path.is_file() and not path.is_absolute():
        for candidate in (REPO_ROOT / path, recipes_dir() / path, recipes_dir() / f"{path}.toml"):
            if candidate.is_file():
                path = candidate
                break
    data = _read_with_bases(path, ())
    try:
        source = str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        source = str(path)
    return recipe_from_dict(data, source)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"recipe {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RecipeError(f"cannot read recipe {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise RecipeError(f"recipe {path} is not valid TOML: {error}") from None


def _read_with_bases(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """The recipe's tables with its ``base`` chain merged in (base first, this file over it)."""
    resolved = path.resolve()
    if resolved in chain:
        names = " -> ".join(p.name for p in (*chain, resolved))
        raise RecipeError(f"recipe {path}: its bases form a cycle ({names})")
    data = _read_toml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise RecipeError(f"recipe {path}: base must be a file name, got {base!r}")
    base_path = Path(base).expanduser()
    if not base_path.is_absolute():
        base_path = path.parent / base_path
    if not base_path.is_file():
        raise RecipeError(f"recipe {path}: its base {base} does not exist")
    return merge_tables(_read_with_bases(base_path, (*chain, resolved)), data)


def merge_tables(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged onto ``base``: tables merge key by key, any other value replaces the base's."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_tables(merged[key], value)
        else:
            merged[key] = value
    return merged


#: A recipe not written for fine-tuning trains at this share of its learning rate when it starts from a trained
#: model: a smaller rate keeps what the base model knows (fine_tuning_lr).
FINE_TUNE_LR_FACTOR = 0.2


def recipe_for_fine_tuning(recipes: Sequence[Recipe], made_by: str) -> Recipe | None:
    """The recipe to fine-tune a model with, whose provenance names the recipe file ``made_by``: a
    ``for_fine_tuning`` recipe of the same model id when there is one, else ``made_by`` itself; None when
    ``made_by`` is not among ``recipes``. (Train it at :func:`fine_tuning_lr`.)"""
    name = Path(str(made_by)).name
    made = next((r for r in recipes if name and Path(str(r.source)).name == name), None)
    if made is None:
        return None
    if made.train.for_fine_tuning:
        return made
    return next((r for r in recipes if r.train.for_fine_tuning and r.model.id == made.model.id), made)


def fine_tuning_lr(recipe: Recipe) -> float:
    """The learning rate ``recipe`` fine-tunes a trained model at."""
    return recipe.train.lr if recipe.train.for_fine_tuning else recipe.train.lr * FINE_TUNE_LR_FACTOR


#: Where a recipe's own run keeps its checkpoints when another recipe starts from it (``runs/<recipe name>/``).
RUNS_DIR = REPO_ROOT / "runs"


def is_recipe_reference(spec: str) -> bool:
    """True when an ``init`` names a recipe file (``recipes/lineage/X.toml`` or ``...toml#best``)."""
    return str(spec).partition("#")[0].endswith(".toml")


def recipe_run_dir(recipe_path: str | Path, runs_dir: Path | None = None) -> Path:
    """The run folder of a recipe that another recipe starts from: ``runs/<file name without .toml>``."""
    return (runs_dir or RUNS_DIR) / Path(str(recipe_path)).stem


def recipe_checkpoint(spec: str, runs_dir: Path | None = None) -> Path:
    """The checkpoint an ``init = "recipes/lineage/X.toml"`` (or ``...#best``) starts from: ``runs/X/last.pt``
    (``best.pt``), written by training that recipe; a RecipeError naming the command when it is not there yet."""
    name, _, which = str(spec).partition("#")
    which = which or "last"
    if which not in ("last", "best"):
        raise RecipeError(f"init {spec!r}: a recipe's checkpoint is #last or #best, not #{which}")
    recipe = load_recipe(name)  # the chain's earlier stage must exist (and be valid) in the repository
    run_dir = recipe_run_dir(recipe.source, runs_dir)
    checkpoint = run_dir / f"{which}.pt"
    if not checkpoint.is_file():
        raise RecipeError(
            f"this recipe starts from the weights of {recipe.source}, which are not trained yet ({checkpoint} is "
            f"missing): train that stage first with `python main.py train --recipe {recipe.source} "
            f"--run-dir {_shown(run_dir)} --no-export` (with --prepare for its data)"
        )
    return checkpoint


def prepare_hint(recipe: Recipe) -> str:
    """What to add to a missing-data error: the commands that make the recipe's data, if it names them."""
    if not recipe.data.prepare:
        return ""
    return "; the recipe's data is made by: " + "; ".join(recipe.data.prepare) + " (train --prepare runs them)"


def run_prepare(recipe: Recipe, echo=print) -> None:
    """Run the recipe's ``[data] prepare`` commands from the repository root (``python`` = this interpreter,
    ``bpy-python`` = the Python with Blender's bpy named by the ``BPY_PYTHON`` variable, for the Cycles generator);
    an EngineError naming the command that failed."""
    import os
    import shlex
    import subprocess
    import sys

    for command in recipe.data.prepare:
        argv = shlex.split(command)
        if argv and argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        elif argv and argv[0] == "bpy-python":
            if not os.environ.get("BPY_PYTHON"):
                raise EngineError(f"the recipe's data step {command!r} renders with Blender: set BPY_PYTHON to a "
                                  "Python that has bpy 5.0.1 (engine/render_data/README.md)")
            argv[0] = os.environ["BPY_PYTHON"]
        echo(f"[prepare] {command}")
        try:
            done = subprocess.run(argv, cwd=REPO_ROOT, check=False)
        except OSError as error:
            raise EngineError(f"cannot run the recipe's data step {command!r}: {error}") from None
        if done.returncode != 0:
            raise EngineError(f"the recipe's data step {command!r} failed (exit status {done.returncode})")


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def recipes_dir() -> Path:
    """The repository's (or the bundle's) ``recipes/`` folder."""
    return REPO_ROOT / "recipes"


def list_recipes(folder: Path | None = None) -> list[Recipe]:
    """Every valid recipe in ``folder`` (default: :func:`recipes_dir`: the recipes of the shipped models and the
    fine-tuning recipes the app offers, not the earlier stages in ``recipes/lineage/``), sorted by file name;
    broken files are skipped (the command line reports their problem when used)."""
    folder = folder or recipes_dir()
    found = []
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        try:
            found.append(load_recipe(path))
        except RecipeError:
            continue
    return found
