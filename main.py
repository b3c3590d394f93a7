"""Restoration Studio: ``python main.py [IMAGE...]`` opens the app; ``python main.py COMMAND ...`` is the CLI.

Double-clicking an image (or "Open with") runs ``main.py IMAGE``. ``--screenshot OUT.png IMAGE`` opens the
window on IMAGE in split view, saves a screenshot of it and exits. ``--selftest`` checks headlessly that the
installed (or frozen) app restores the bundled sample with the default model and can build its window; exit 0 when
all is well, 1 with a one-line reason otherwise.
"""

from __future__ import annotations

import os
import sys

# Torch's OpenMP pool spins while idle by default; on a busy 2-core machine that made small convolutions
# 50-200x slower (measured). It only takes effect if set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _is_cli(argv: list[str]) -> bool:
    first = next((arg for arg in argv if arg != "--debug"), None)
    if first is None or first == "--screenshot":
        return False
    if first in ("cli", "-h", "--help"):
        return True
    from engine.cli import command_names

    return first in command_names()


def _has_display() -> bool:
    """Whether Qt can open a window here (a platform chosen by the user counts as yes)."""
    if os.environ.get("QT_QPA_PLATFORM") or sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def selftest(debug: bool = False) -> int:
    """Engine check (sample -> default model -> file -> verify), then the main window built offscreen."""
    from engine.errors import EngineError
    from engine.selftest import run_selftest

    print("selftest: engine")
    try:
        report = run_selftest(log=lambda line: print(f"  {line}"))
    except EngineError as error:
        if debug:
            raise
        print(f"selftest FAILED: {error}", file=sys.stderr)
        return 1
    print("selftest: window (offscreen)")
    if not _has_display():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    try:
        from gui.app import selftest_window

        print(f"  {selftest_window()}")
    except Exception as error:  # a missing Qt plugin or library in a bundle shows up here
        if debug:
            raise
        print(f"selftest FAILED: the window could not be built: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"selftest passed in {report.seconds:.1f} s ({report.model_id} on {report.device})")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--selftest" in argv:
        return selftest(debug="--debug" in argv)
    first = next((arg for arg in argv if arg != "--debug"), None)
    if first is not None and not _is_cli(argv):
        from engine.cli import unknown_command_message

        problem = unknown_command_message(first)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    if _is_cli(argv):
        from engine.cli import main as cli_main

        if argv and argv[0] == "cli":
            argv = argv[1:]
        return cli_main(argv)
    screenshot = None
    if "--screenshot" in argv:
        index = argv.index("--screenshot")
        if index + 1 >= len(argv):
            print("error: --screenshot needs an output file", file=sys.stderr)
            return 2
        screenshot = argv[index + 1]
        del argv[index : index + 2]
    if not _has_display():
        if screenshot is None:
            print(
                "error: no display found (DISPLAY/WAYLAND_DISPLAY unset). Start the app from a desktop session, "
                "or run scripts/run_app.sh, which uses a virtual screen (Xvfb).",
                file=sys.stderr,
            )
            return 1
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no screen
    from gui.app import main as gui_main

    return gui_main([arg for arg in argv if not arg.startswith("-")], screenshot=screenshot)


if __name__ == "__main__":
    sys.exit(main())
