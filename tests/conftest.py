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


class FakeTerminal:
    """A text stream that says it is a terminal (80 columns, from COLUMNS): where the command line draws its
    progress bar (engine/commands/progress_bar.py)."""

    def __init__(self) -> None:
        import io

        self._text = io.StringIO()

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return self._text.write(text)

    def flush(self) -> None:
        pass

    def getvalue(self) -> str:
        return self._text.getvalue()

    def bars(self) -> list[str]:
        """Every bar drawn, as it stood on the line (a bar is redrawn after a carriage return)."""
        return [part for part in self.getvalue().split("\r") if part.startswith("[")]


@pytest.fixture
def terminal_stderr(monkeypatch):
    """A function that puts an 80-column FakeTerminal in sys.stderr's place and returns it; called in the test's
    body (capture re-takes sys.stderr when the test's call begins, after the fixtures)."""
    import sys

    def install() -> FakeTerminal:
        terminal = FakeTerminal()
        monkeypatch.setenv("COLUMNS", "80")
        monkeypatch.setattr(sys, "stderr", terminal)
        return terminal

    return install
