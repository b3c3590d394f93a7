import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Torch's OpenMP pool spins while idle by default; on a busy 2-core machine that made small convolutions
# 50-200x slower (measured). It only takes effect if set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _user_home(tmp_path_factory, monkeypatch):
    """Every test gets its own per-user data folder (models trained by tests never leak into the real one)."""
    home = tmp_path_factory.mktemp("studio_home")
    monkeypatch.setenv("RESTORATION_STUDIO_HOME", str(home))
    return home
