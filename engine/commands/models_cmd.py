"""``main.py models [--json]``: list the models with id, task, scale, inputs and parameters."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("models", help="list the available models")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--task", help="only models of this task")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..models.registry import ModelRegistry

    registry = ModelRegistry()
    entries = registry.models(args.task)
    if args.json:
        for problem in registry.problems:
            print(f"warning: {problem}", file=sys.stderr)
        data = [dict(entry.manifest.to_dict(), source=entry.source, path=str(entry.path or "")) for entry in entries]
        print(json.dumps(data, indent=2))
        return 0
    rows = [("ID", "TASK", "SCALE", "INPUTS", "PARAMETERS", "SOURCE")]
    for entry in entries:
        m = entry.manifest
        params = ", ".join(f"{p.name}={p.default}" for p in m.params) or "-"
        rows.append((m.id, m.task, f"x{m.scale}", "+".join(m.inputs), params, entry.source))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for problem in registry.problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 0
