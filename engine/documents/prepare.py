"""Write the document model's training folders: real training pairs plus synthetic pages, and the validation pairs.

``python -m engine.documents.prepare [--out runs/documents] [--synthetic 400] [--real-repeat 5]`` writes

- ``OUT/input``, ``OUT/target``: the real training pairs (symbolic links, each repeated ``real_repeat`` times so
  that real and synthetic pages are drawn about equally often by the trainer's uniform page sampling) and
  ``synthetic`` generated pages (``synth_N.png``, seeds 0..N-1, 8-bit PNG);
- ``OUT/val_input``, ``OUT/val_target``: links to the fixed validation pages (dataset.VALIDATION_IDS), never
  mixed with the training pages.

The recipe ``recipes/lineage/document_restormer_tiny.toml`` reads these folders ([data] kind = "paired"). The real data
stays in ../shared (only links are written), and OUT should be an ignored folder (``runs/`` is).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from .dataset import DOCUMENTS_ROOT, REPO_ROOT, list_pairs, split_pairs
from .synth import synth_pair


def _write_gray(path: Path, values: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(path), np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8)):
        raise OSError(f"cannot write {path}")


def _link(source: Path, link: Path) -> None:
    link.symlink_to(source.resolve())


def prepare(out: Path, synthetic: int = 400, real_repeat: int = 5, root: Path = DOCUMENTS_ROOT) -> dict[str, int]:
    """Write the folders (replacing earlier contents); returns counts of what was written."""
    out = Path(out)
    folders = {name: out / name for name in ("input", "target", "val_input", "val_target")}
    for folder in folders.values():
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    train, val = split_pairs(list_pairs(root))
    for pair in train:
        for copy in range(real_repeat):
            name = f"real_{pair.id}_{copy}.png"
            _link(pair.noisy_path, folders["input"] / name)
            _link(pair.clean_path, folders["target"] / name)
    for pair in val:
        _link(pair.noisy_path, folders["val_input"] / f"{pair.id}.png")
        _link(pair.clean_path, folders["val_target"] / f"{pair.id}.png")
    for seed in range(synthetic):
        noisy, clean = synth_pair(seed)
        _write_gray(folders["input"] / f"synth_{seed}.png", noisy)
        _write_gray(folders["target"] / f"synth_{seed}.png", clean)
    return {"real_train": len(train), "real_repeat": real_repeat, "validation": len(val), "synthetic": synthetic}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "runs" / "documents"))
    parser.add_argument("--synthetic", type=int, default=400)
    parser.add_argument("--real-repeat", type=int, default=5)
    args = parser.parse_args(argv)
    counts = prepare(Path(args.out), args.synthetic, args.real_repeat)
    print(f"wrote {args.out}: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
