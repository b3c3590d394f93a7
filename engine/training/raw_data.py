"""Training data for raw (Bayer mosaic) denoisers, made from clean photographs by unprocessing them (Brooks et al.
2019; the pipeline itself is :mod:`.degradations`: ``random_camera``, ``unprocess``, ``add_sensor_noise``).

Each sample: a clean sRGB crop (twice the packed patch size), randomly flipped / rotated BEFORE unprocessing (a
flip of the mosaic itself would change its CFA pattern), unprocessed to an RGGB mosaic by a random camera, given
Poisson-Gaussian noise with that camera's shot / read levels, clipped as a sensor clips, and packed to 4 planes
(engine/raw/mosaic.py, the same packing as inference). Inputs: ``color`` (the noisy planes) and ``noise_map``
(their noise standard deviation, from the noisy values as at inference); target: the clean planes. Values are in
normalised raw units (0 black, 1 white), the model's value transform is ``linear``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..raw.mosaic import noise_map, pack
from . import degradations as deg
from .datasets import FloatView, ImageStore, Sample, augment_pair, centre_crop, to_float
from .mining import PatchRef, mine_patches, random_patches


def raw_sample(clean_rgb: np.ndarray, rng: np.random.Generator, camera: dict | None = None) -> Sample:
    """One training / validation sample from a clean H x W x 3 sRGB crop (even H and W)."""
    camera = camera or deg.random_camera(rng)
    clean = deg.unprocess(clean_rgb, camera)
    noisy = deg.add_sensor_noise(clean, camera["shot"], camera["read"], rng)
    clean_planes, _ = pack(clean)
    noisy_planes, _ = pack(noisy)
    inputs = {"color": noisy_planes, "noise_map": noise_map(noisy_planes, camera["shot"], camera["read"])}
    return Sample(inputs, clean_planes, info={"shot": camera["shot"], "read": camera["read"]})


class RawMosaicDataset:
    """Patches of clean photographs (mined or random), unprocessed to noisy / clean raw mosaics on the fly."""

    def __init__(self, store: ImageStore, *, patch_size: int, mining: str = "gradient", mine_fraction: float = 0.5,
                 mine_stride: int = 0, augment: bool = True) -> None:
        """``patch_size``: packed planes' size; the sRGB crop is twice that."""
        self.store, self.augment = store, augment
        self.crop = 2 * patch_size
        if not any(h >= self.crop and w >= self.crop for h, w in store.shapes()):
            raise ValueError(f"no training image is at least {self.crop} x {self.crop} pixels")
        self.patches: list[PatchRef] | None = None
        if mining != "random":
            self.patches = mine_patches(FloatView(store.arrays, 3), self.crop, mine_stride or self.crop,
                                        mine_fraction, mining)

    def __len__(self) -> int:
        return len(self.patches) if self.patches is not None else len(self.store)

    def sample(self, rng: np.random.Generator) -> Sample:
        if self.patches is not None:
            ref = self.patches[int(rng.integers(0, len(self.patches)))]
        else:
            ref = random_patches(self.store.shapes(), self.crop, 1, rng)[0]
        clean = to_float(ref.crop(self.store.arrays[ref.image]), 3)
        if self.augment:
            (clean,) = augment_pair([clean], rng)
        return raw_sample(clean, rng)


def raw_validation(store: ImageStore, crop: int, seed: int) -> list[Sample]:
    """Fixed validation samples: centre crops (``crop`` sRGB pixels, a multiple of 8) of each image, each with its
    own camera and noise drawn once from ``seed`` (so that scores are comparable between steps)."""
    rng = np.random.default_rng(seed)
    return [raw_sample(to_float(centre_crop(array, crop, 8), 3), rng) for array in store.arrays]


def raw_datasets(train_paths: Sequence, val_paths: Sequence, data, seed: int):
    """The trainer's (train, val) for a recipe whose ``[degradation] kind`` is "raw"."""
    train = RawMosaicDataset(ImageStore.load(train_paths), patch_size=data.patch_size, mining=data.mining,
                             mine_fraction=data.mine_fraction, mine_stride=data.mine_stride, augment=data.augment)
    return train, raw_validation(ImageStore.load(val_paths), data.val_crop, seed)
