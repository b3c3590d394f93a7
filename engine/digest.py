"""The sha256 of a file, read in blocks: how model files are checked (engine/models/entry.py) and how the
optimised-graph cache is keyed (engine/runtime.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
