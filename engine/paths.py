"""Where things live: bundled resources (also inside a PyInstaller bundle) and the per-user data folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "RestorationStudio"


def resources_dir() -> Path:
    """The bundled ``resources/`` folder (models, icons, sample image)."""
    bundle_root = getattr(sys, "_MEIPASS", None)  # set by PyInstaller
    root = Path(bundle_root) if bundle_root else Path(__file__).resolve().parent.parent
    return root / "resources"


def user_data_dir() -> Path:
    """Per-user data folder (platform convention); ``RESTORATION_STUDIO_HOME`` overrides it (tests use this)."""
    override = os.environ.get("RESTORATION_STUDIO_HOME")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_cache_dir() -> Path:
    """Per-user cache folder for files the app can always rebuild (optimised ONNX graphs);
    ``RESTORATION_STUDIO_HOME`` moves it to ``<home>/cache`` (tests use this)."""
    override = os.environ.get("RESTORATION_STUDIO_HOME")
    if override:
        return Path(override) / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def user_models_dir() -> Path:
    """Where models trained on this machine are registered."""
    return user_data_dir() / "models"


def sample_image_path() -> Path:
    return resources_dir() / "samples" / "sample_render.exr"
