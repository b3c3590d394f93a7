"""The one place that writes model manifests (``<id>.json`` beside ``<id>.onnx``); manifest.py reads them.

- :func:`write_manifest`: a whole manifest, as the exporter makes it (``extra`` top-level fields allowed, e.g.
  measured tiling facts a later export records);
- :func:`update_manifest`: merge scores / provenance entries / fields into an existing manifest, keeping
  everything else as it is (key order, fields this version does not know), e.g. a benchmark's scores.

Both write ``json.dumps(data, indent=2)`` atomically (a temporary file replaced in one step), so a crash never
leaves half a manifest, and what is written is validated as a manifest first: a writer cannot ship a file the
registry would refuse.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .manifest import ModelManifest, manifest_from_dict


def _dump(path: Path, data: Mapping[str, Any]) -> Path:
    manifest_from_dict(data, source=str(path))  # raises ModelError for anything the registry would refuse
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False), encoding="utf-8")
    os.replace(temporary, path)
    return path


def write_manifest(path: Path, manifest: ModelManifest | Mapping[str, Any],
                   extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``manifest`` (a :class:`ModelManifest` or its dict) to ``path``, with ``extra`` top-level fields
    after its own."""
    data = manifest.to_dict() if isinstance(manifest, ModelManifest) else dict(manifest)
    data.update(extra or {})
    return _dump(path, data)


def update_manifest(
    path: Path,
    *,
    scores: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> bool:
    """Merge into the manifest at ``path``: ``scores`` and ``provenance`` entries (a value None removes its
    entry) and top-level ``fields``. Returns True when the file changed (it is not rewritten otherwise)."""
    path = Path(path)
    before = json.loads(path.read_text(encoding="utf-8"))
    data = json.loads(json.dumps(before))
    for key, changes in (("scores", scores), ("provenance", provenance)):
        if changes:
            merged = dict(data.get(key, {}))
            for name, value in changes.items():
                if value is None:
                    merged.pop(name, None)
                else:
                    merged[name] = value
            data[key] = merged
    data.update(fields or {})
    if data == before:
        return False
    _dump(path, data)
    return True
