"""The real document pairs (NoisyOffice / Kaggle "Denoising Dirty Documents") and their fixed split.

The data lives outside the repository (``../shared/bench/documents`` from the repo root: ``train/N.png`` noisy,
``train_cleaned/N.png`` clean, gray). It is read at run time and never copied into the repo or the app.

:data:`VALIDATION_IDS` is the fixed validation split: every sixth page in numeric order (16 of 96, both page
heights represented). No training code may read these pages as training data; the benchmark reports on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DOCUMENTS_ROOT = REPO_ROOT.parent / "shared" / "bench" / "documents"

#: Pages held out for validation and benchmarks (ids sorted numerically, index % 6 == 3).
VALIDATION_IDS: tuple[int, ...] = (8, 21, 35, 48, 62, 75, 89, 102, 116, 129, 143, 156, 170, 183, 197, 210)


@dataclass(frozen=True)
class DocumentPair:
    id: int
    noisy_path: Path
    clean_path: Path

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """(noisy, clean) as gray float32 H x W in [0, 1]."""
        return read_gray(self.noisy_path), read_gray(self.clean_path)


def read_gray(path: Path) -> np.ndarray:
    import cv2

    data = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if data is None:
        raise FileNotFoundError(f"cannot read {path}")
    return data.astype(np.float32) / 255.0


def list_pairs(root: Path = DOCUMENTS_ROOT) -> list[DocumentPair]:
    """All pairs under ``root`` (``train/`` and ``train_cleaned/``), sorted by numeric id."""
    noisy_dir, clean_dir = Path(root) / "train", Path(root) / "train_cleaned"
    if not noisy_dir.is_dir() or not clean_dir.is_dir():
        raise FileNotFoundError(f"no document pairs under {root} (expected train/ and train_cleaned/)")
    pairs = [
        DocumentPair(int(path.stem), path, clean_dir / path.name)
        for path in noisy_dir.glob("*.png")
        if path.stem.isdigit() and (clean_dir / path.name).is_file()
    ]
    return sorted(pairs, key=lambda pair: pair.id)


def split_pairs(pairs: list[DocumentPair]) -> tuple[list[DocumentPair], list[DocumentPair]]:
    """(train, validation) by :data:`VALIDATION_IDS`."""
    held_out = set(VALIDATION_IDS)
    return [p for p in pairs if p.id not in held_out], [p for p in pairs if p.id in held_out]
