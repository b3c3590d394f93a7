"""The engine as the GUI sees it: every engine name the window, its panels and its dialogs use, in one module.

``gui/`` imports nothing else from ``engine`` (tests/test_project_layout.py scans it), so this file is the whole
contract between the two: what the GUI needs from a new engine feature is added here.

The types, requests and registries the GUI builds on are imported at once (they are light); the functions that
do the work (reading and writing images, restore and training jobs, metrics, the device probe) are imported the
first time they are used, so opening the window loads no more of the engine than it did before this module:

    from engine.api import Image, ModelRegistry          # at the top of a GUI module
    from engine.api import restore_job                   # inside the function that starts the job
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import __version__
from .ensemble import PASS_COUNTS
from .errors import EngineError, JobCancelled
from .image import AOV_NAMES, Image
from .jobs import CancelToken, ImageResult, Job, Progress
from .models.manifest import TASK_LABELS, TASKS, ModelManifest, ParamSpec
from .models.registry import ModelEntry, ModelRegistry
from .models.scores import headline_scores
from .paths import resources_dir

if TYPE_CHECKING:
    # The modules the lazy names below come from, spelled as imports so that static analysis (type checkers,
    # PyInstaller's module graph) sees them; build.spec leaves training and ZSSR out of the lite bundle.
    from . import (  # noqa: F401
        batch,
        chain,
        display,
        imageio,
        jobs,
        kernel_inspector,
        metrics,
        motion,
        noise_estimate,
        render_views,
        restore,
        runtime,
        shot,
        zssr,
    )
    from .imageio import aov, exr, pages, sidecars  # noqa: F401
    from .models import suggest  # noqa: F401
    from .training import datasets, recipes, trainer  # noqa: F401

#: name -> (module, attribute in it; "" for the module itself), imported on first use.
_LAZY: dict[str, tuple[str, str]] = {
    # images on disk
    "imageio": ("engine.imageio", ""),
    "read_image": ("engine.imageio", "read_image"),
    "write_image": ("engine.imageio", "write_image"),
    "folder_images": ("engine.imageio", "folder_images"),
    "find_reference": ("engine.imageio.sidecars", "find_reference"),
    "read_page": ("engine.imageio.pages", "read_page"),
    "write_pages": ("engine.imageio.pages", "write_pages"),
    "SUPPORTED_READ_EXTENSIONS": ("engine.imageio", "SUPPORTED_READ_EXTENSIONS"),
    "output_name": ("engine.imageio", "output_name"),
    # render passes: which pass plays which role (engine/imageio/aov.py), and choosing others
    "ROLES": ("engine.imageio.aov", "ROLES"),
    "MODEL_ROLES": ("engine.imageio.aov", "MODEL_ROLES"),
    "describe_roles": ("engine.imageio.aov", "describe_roles"),
    "assign_roles": ("engine.imageio.exr", "assign_roles"),
    "choose_colour": ("engine.imageio.exr", "choose_colour"),
    # display
    "TONEMAPS": ("engine.display", "TONEMAPS"),
    "to_display_uint8": ("engine.display", "to_display_uint8"),
    "tonemap_label": ("engine.display", "tonemap_label"),
    "Histogram": ("engine.render_views", "Histogram"),
    "histogram": ("engine.render_views", "histogram"),
    "layer_view": ("engine.render_views", "layer_view"),
    # restoring
    "restore_job": ("engine.restore", "restore_job"),
    "suitability_warning": ("engine.models.suggest", "suitability_warning"),
    "suggest_model": ("engine.models.suggest", "suggest_model"),
    "rank_models": ("engine.models.suggest", "rank"),
    "chain_job": ("engine.chain", "chain_job"),
    # shots: numbered frame sequences (engine/shot.py), restored frame by frame
    "Shot": ("engine.shot", "Shot"),
    "find_shot": ("engine.shot", "find_shot"),
    "describe_eta": ("engine.jobs", "describe_eta"),
    "describe_duration": ("engine.jobs", "describe_duration"),
    "folder_is_shot": ("engine.shot", "folder_is_shot"),
    "ShotRestoreRequest": ("engine.shot", "ShotRestoreRequest"),
    "ShotRestoreResult": ("engine.shot", "ShotRestoreResult"),
    "FrameOutcome": ("engine.shot", "FrameOutcome"),
    "FrameState": ("engine.shot", "FrameState"),
    "restore_shot": ("engine.shot", "restore_shot"),
    "shot_output_pattern": ("engine.shot", "output_pattern"),
    "format_frames": ("engine.shot", "format_frames"),
    "parse_frames": ("engine.batch", "parse_frames"),
    "ShotError": ("engine.shot", "ShotError"),
    "motion_pass": ("engine.motion", "motion_pass"),
    # the batch queue's items (shared with the command line's batch command)
    "BatchItem": ("engine.batch", "BatchItem"),
    "ItemState": ("engine.batch", "ItemState"),
    "ChainStep": ("engine.chain", "ChainStep"),
    "with_estimated_noise_level": ("engine.noise_estimate", "with_estimated_noise_level"),
    "noise_level_for": ("engine.noise_estimate", "noise_level_for"),
    "measure_noise": ("engine.noise_estimate", "measure_noise"),
    "has_kernels": ("engine.kernel_inspector", "has_kernels"),
    "inspect_kernel": ("engine.kernel_inspector", "inspect_kernel"),
    # ZSSR (not in the lite bundle: only its panel uses these)
    "zssr_job": ("engine.zssr", "zssr_job"),
    "PRESET_LABELS": ("engine.zssr", "PRESET_LABELS"),
    "PRESET_NAMES": ("engine.zssr", "PRESET_NAMES"),
    "ZssrRequest": ("engine.zssr", "ZssrRequest"),
    "preset_request": ("engine.zssr", "preset_request"),
    "device_summary": ("engine.runtime", "device_summary"),
    # scores against a reference
    "metrics": ("engine.metrics", ""),
    # training (torch is imported only when a job runs)
    "list_recipes": ("engine.training.recipes", "list_recipes"),
    "recipe_for_fine_tuning": ("engine.training.recipes", "recipe_for_fine_tuning"),
    "fine_tuning_lr": ("engine.training.recipes", "fine_tuning_lr"),
    "TrainOptions": ("engine.training.trainer", "TrainOptions"),
    "train_job": ("engine.training.trainer", "train_job"),
    "DataError": ("engine.training.datasets", "DataError"),
    "find_pairs": ("engine.training.datasets", "find_pairs"),
    "describe_pairs": ("engine.training.datasets", "describe_pairs"),
}

__all__ = [
    "AOV_NAMES", "PASS_COUNTS", "TASKS", "TASK_LABELS", "CancelToken", "EngineError", "Image", "ImageResult", "Job",
    "JobCancelled", "ModelEntry", "ModelManifest", "ModelRegistry", "ParamSpec", "Progress", "__version__",
    "headline_scores", "resources_dir",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    # Looked up on every use, not cached here: the name stays the engine module's own (a test that replaces
    # engine.restore.restore_job replaces what the GUI runs).
    return getattr(module, attribute) if attribute else module


def __dir__() -> list[str]:
    return sorted(__all__)
