"""The command line: ``python main.py <command> ...``.

Contract (scripts rely on it): exit status 0 on success, 2 for usage errors, 1 for processing errors, with a
one-line message on stderr and no traceback unless ``--debug``. ``batch`` adds 3 (the model is missing or fails
its pinned sha256) and 4 (only missing inputs failed); see engine/batch.py and docs/farm.md.

Sub-commands live in their own modules, listed explicitly in ``SUBCOMMAND_MODULES``; each exposes
``add_parser(subparsers) -> argparse.ArgumentParser`` and sets ``handler=run`` where ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .commands.progress_bar import clear_bar
from .errors import EngineError

#: Modules that add a sub-command (imported only to build the parser; keep their top level light).
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "engine.commands.models_cmd",
    "engine.commands.info_cmd",
    "engine.commands.restore_cmd",
    "engine.commands.batch_cmd",
    "engine.render_data.cli",
    "engine.training.cli",
    "engine.zssr.cli",
    "engine.commands.noise_cmd",
    "engine.commands.ship_cmd",
)


class UsageError(Exception):
    """A usage problem (bad option value, missing file argument...): exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints usage and exits 2; keep it, but one clean line
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="restoration-studio", description="Restoration Studio command line.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            # The inference-only ("lite") bundle leaves out training, ZSSR and the render generator; their
            # commands are then absent. Any other missing module is a real error.
            if error.name and module_name.startswith(error.name + ".") and error.name != "engine":
                continue
            raise
        module.add_parser(subparsers)
    return parser


def command_names() -> set[str]:
    """Names of all sub-commands (main.py uses them to tell the CLI from image arguments)."""
    names: set[str] = set()
    for action in build_parser()._subparsers._group_actions:  # the one sub-parsers action
        names.update(getattr(action, "choices", {}) or {})
    return names


def unknown_command_message(word: str) -> str | None:
    """Why ``word``, the first argument of ``main.py``, is neither a command nor an image to open, or None when it
    may be a file. A word without an extension that names no file is taken as a mistyped command
    (``restor x.png``), so the app is not started on it."""
    import difflib
    from pathlib import Path

    path = Path(word)
    if word.startswith("-") or path.exists() or path.suffix or any(sep in word for sep in "/\\"):
        return None
    names = sorted(command_names())
    close = difflib.get_close_matches(word, names, n=2, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}?" if close else f"commands: {', '.join(names)}"
    return f"unknown command {word!r} (and no such file): {hint}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help()
            return 2
        return int(args.handler(args) or 0)
    except UsageError as error:
        clear_bar()  # a command's progress bar: the message starts at the left edge, not after it
        print(f"error: {error}", file=sys.stderr)
        return 2
    except EngineError as error:
        clear_bar()
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return int(getattr(error, "exit_code", 1))  # e.g. 3 for a model that fails its pin (engine/batch.py)
    except KeyboardInterrupt:
        clear_bar()
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # an unexpected bug: still one line unless --debug
        clear_bar()
        if debug:
            raise
        print(f"error: {type(error).__name__}: {error} (run with --debug for details)", file=sys.stderr)
        return 1
