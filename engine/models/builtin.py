"""The built-in engines the app offers beside the networks in the models folders: the explicit list.

To add one, write its :class:`~engine.models.base.ClassicalEngine` (engine/models/base.py explains the tile
function's contract) in a module of its own and add it here. An engine whose ``requires`` or ``present`` fail
(a missing package or file) is hidden from the picker, never an error.
"""

from __future__ import annotations

from ..documents.classical import document_engines
from .base import ClassicalEngine
from .classical import classical_engines
from .hybrid import hybrid_engines
from .oidn import oidn_engines

BUILTIN_ENGINES: list[ClassicalEngine] = [
    # Non-local means, BM3D, Lanczos and bicubic resizing (engine/models/classical.py).
    *classical_engines(),
    # Intel Open Image Denoise (render denoising peer), colour only and with AOVs; shown when pyoidn is installed.
    *oidn_engines(),
    # Our bundled KPRCAN blended with OIDN; shown when pyoidn and the network are present.
    *hybrid_engines(),
    # Background division and thresholding of scanned pages (engine/documents/classical.py).
    *document_engines(),
]


def builtin_engine(model_id: str) -> ClassicalEngine:
    for engine in BUILTIN_ENGINES:
        if engine.manifest.id == model_id:
            return engine
    raise KeyError(model_id)
