"""Training data: folders of clean images degraded on the fly, or folders of pairs (noisy/clean, LR/HR,
render/reference with AOVs). HDR aware.

A dataset yields :class:`Sample` records already in the model's value space (engine/transforms.py, shared with
inference): ``inputs`` by ONNX role (``color`` C x h x w, ``noise_level`` 1 x 1 x 1, ``albedo``...), the
``target`` C x H x W, and ``valid`` (target points that are finite and non-negative; seed 001's lesson: mask
invalid ground truth out of the loss instead of training on it). Inputs are deliberately NOT sanitised: a
NaN/Inf input reaches the trainer, which skips the batch and counts it.

Images are kept in memory in their file's sample type (uint8 stays uint8: 4x less memory than float32) and
converted per patch.

Paired folders: a target file matches the input file with the same name, or the same name without a trailing
``_noisy``/``_lr``/``_input``/``_color`` (and the target may end in ``_clean``/``_hr``/``_target``/``_ref``/
``_color``), in the sub-folder layouts of :data:`PAIRED_LAYOUTS`; or one flat folder with ``NAME_ref`` beside each
input (:func:`find_pairs`). Render inputs carry
their AOVs as EXR layers or as ``NAME_albedo.exr``, ``NAME_normal.exr`` and ``NAME_depth.exr`` beside them,
read exactly as the app reads them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EngineError
from ..transforms import auto_exposure_scale, prepare_aov, to_model_space
from . import degradations as deg
from .mining import PatchRef, mine_patches, random_patches

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".exr", ".hdr", ".pfm")
HDR_EXTENSIONS = (".exr", ".hdr", ".pfm")
INPUT_SUFFIXES = ("_noisy", "_lr", "_input", "_color", "_in")
TARGET_SUFFIXES = ("_clean", "_hr", "_target", "_ref", "_color", "_gt", "")
AOV_NAMES = ("albedo", "normal", "depth")
#: LR pixels of real context downscaled around an SR patch (covers the bicubic and blur kernels' reach).
SR_CONTEXT = 4


class DataError(EngineError):
    """Training data is missing or unreadable."""


# ----------------------------------------------------------------------------------------------- loading


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist")
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def read_image(path: Path) -> np.ndarray:
    """An H x W x 3 (or x 1 for depth-like files) array in the file's own sample type, RGB order.

    8/16-bit files stay integer (see :func:`to_float`); EXR/HDR come as float32 linear."""
    if Path(path).suffix.lower() == ".exr":
        # The app's own EXR reader: multi-layer files, half/float, odd channel names (OpenCV reads only R/G/B/Y
        # of the default layer). A colour render's AOV layers are read by :func:`read_aovs`.
        from ..imageio import read_image as read_app_image

        return np.ascontiguousarray(read_app_image(path, max_pixels=None, load_sidecars=False).pixels)
    import cv2

    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if data is None:
        raise DataError(f"cannot read training image {path}")
    if data.ndim == 2:
        data = data[:, :, None]
    if data.shape[2] == 4:
        data = data[:, :, :3]  # alpha is not restored by any model
    if data.shape[2] == 3:
        data = data[:, :, ::-1]
    if data.dtype not in (np.uint8, np.uint16):
        data = data.astype(np.float32)
    return np.ascontiguousarray(data)


def to_float(data: np.ndarray, channels: int = 3) -> np.ndarray:
    """Integer samples scaled to [0, 1]; floats as they are; gray expanded to ``channels``."""
    if data.dtype == np.uint8:
        out = data.astype(np.float32) / 255.0
    elif data.dtype == np.uint16:
        out = data.astype(np.float32) / 65535.0
    else:
        out = data.astype(np.float32, copy=False)
    if out.shape[2] == 1 and channels == 3:
        out = np.repeat(out, 3, axis=2)
    elif out.shape[2] == 3 and channels == 1:
        out = (out[..., 0:1] * 0.2126 + out[..., 1:2] * 0.7152 + out[..., 2:3] * 0.0722).astype(np.float32)
    return out


def is_hdr_file(path: Path) -> bool:
    return Path(path).suffix.lower() in HDR_EXTENSIONS


class FloatView(Sequence):
    """Float32 views of stored images, converted one at a time on access (mining never holds all in float)."""

    def __init__(self, arrays: Sequence[np.ndarray], channels: int) -> None:
        self.arrays, self.channels = arrays, channels

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, index):
        return to_float(self.arrays[index], self.channels)


@dataclass
class ImageStore:
    """Images held in memory, in their file's sample type."""

    paths: list[Path]
    arrays: list[np.ndarray]
    hdr: list[bool]

    @classmethod
    def load(cls, paths: Sequence[Path]) -> ImageStore:
        arrays = [read_image(p) for p in paths]
        return cls(
            list(paths), arrays, [is_hdr_file(p) or a.dtype == np.float32 for p, a in zip(paths, arrays, strict=True)]
        )

    def shapes(self) -> list[tuple[int, int]]:
        return [a.shape[:2] for a in self.arrays]

    def __len__(self) -> int:
        return len(self.arrays)


# ----------------------------------------------------------------------------------------------- samples


@dataclass
class Sample:
    #: By ONNX role, C x h x w float32 in the model's value space; ``noise_level`` is 1 x 1 x 1.
    inputs: dict[str, np.ndarray]
    #: C x H x W float32 in the model's value space (invalid points set to 0).
    target: np.ndarray
    #: C x H x W bool: which target points count in the loss (None: all).
    valid: np.ndarray | None = None
    #: HDR only: the exposure scale used, to bring values back to linear for display-space metrics.
    exposure: float = 1.0
    hdr: bool = False
    info: dict = field(default_factory=dict)


def _chw(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(array, (2, 0, 1)), dtype=np.float32)


def _target_and_mask(target: np.ndarray, hdr: bool) -> tuple[np.ndarray, np.ndarray | None]:
    valid = np.isfinite(target)
    if hdr:
        valid &= target >= 0
    if valid.all():
        return target, None
    return np.where(valid, target, 0.0).astype(np.float32), valid


def augment_pair(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Apply one random flip/rotation (of 8) to every array of a sample alike (H x W x C)."""
    k = int(rng.integers(0, 4))
    flip = bool(rng.integers(0, 2))
    out = []
    for array in arrays:
        array = np.rot90(array, k, axes=(0, 1))
        out.append(np.ascontiguousarray(array[:, ::-1] if flip else array))
    return out


def finite_max(layer: np.ndarray) -> float:
    finite = layer[np.isfinite(layer)]
    return float(finite.max()) if finite.size else 1.0


def augment_aovs(
    x: np.ndarray, y: np.ndarray, aovs: dict[str, np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Make a render sample's buffers say only what holds in every scene.

    - Normals get one random rotation (an orthogonal 3x3 matrix): world-space directions mean nothing across
      scenes (our generator's floors face +Y, the Cornell box's walls face +-Z), so a network must learn to
      read normals as *where the surface turns*, not as which way it faces. Without this the AOV model learnt
      "facing +Y" as a cue and got worse than the colour-only model on scenes built another way.
    - Colour, target and albedo get one random permutation of their RGB channels, alike (colour = albedo x
      shading still holds), so that no hue of the training scenes becomes a cue.
    """
    aovs = dict(aovs)
    if "normal" in aovs:
        q, r = np.linalg.qr(rng.standard_normal((3, 3)))
        rotation = (q * np.sign(np.diag(r))).astype(np.float32)  # uniform over O(3)
        aovs["normal"] = np.ascontiguousarray(aovs["normal"][..., :3] @ rotation.T)
    if x.shape[2] == 3:
        order = rng.permutation(3)
        x, y = np.ascontiguousarray(x[..., order]), np.ascontiguousarray(y[..., order])
        if "albedo" in aovs and aovs["albedo"].shape[2] == 3:
            aovs["albedo"] = np.ascontiguousarray(aovs["albedo"][..., order])
    return x, y, aovs


def make_sample(
    clean_or_target: np.ndarray,
    degraded: np.ndarray,
    *,
    transform: str,
    hdr: bool,
    roles: Sequence[str],
    noise_level: float = 0.0,
    aovs: Mapping[str, np.ndarray] | None = None,
    exposure: float | None = None,
    depth_max: float | None = None,
) -> Sample:
    """Build a sample from H x W x C arrays in the image's own space.

    ``depth_max``: the whole image's largest finite depth, which inference divides depth by; a crop's own
    maximum would give the network a different convention in training than in use.
    """
    target, valid = _target_and_mask(clean_or_target, hdr)
    if hdr and transform != "srgb" and exposure is None:
        finite = degraded[np.isfinite(degraded).all(axis=2)]
        exposure = auto_exposure_scale(finite[None]) if finite.size else 1.0
    exposure = 1.0 if exposure is None else exposure
    inputs = {"color": _chw(to_model_space(degraded, transform, hdr, exposure))}
    target_model = _chw(to_model_space(target, transform, hdr, exposure))
    if "noise_level" in roles:
        inputs["noise_level"] = np.full((1, 1, 1), noise_level, dtype=np.float32)
    for name in AOV_NAMES:
        if name in roles:
            if not aovs or name not in aovs:
                raise DataError(f"the model takes {name!r} but the data has no {name} buffer")
            layer = aovs[name]
            if name == "depth":
                if depth_max is None:
                    depth_max = finite_max(layer)
                layer = prepare_aov(name, layer, depth_max)
            else:
                layer = prepare_aov(name, layer)
            inputs[name] = _chw(layer)
    return Sample(inputs, target_model, None if valid is None else _chw(valid).astype(bool), exposure, hdr)


# ----------------------------------------------------------------------------------------------- degradation


def degrade(
    clean: np.ndarray, spec, rng: np.random.Generator, fixed_sigma: float | None = None
) -> tuple[np.ndarray, float]:
    """Apply a recipe's ``[degradation]`` to a clean H x W x C patch. Returns the degraded image and the noise
    level (in [0, 1] units) that a noise-level input should be given."""
    image = clean
    if spec.kind == "sr":
        factor = spec.scale
        if spec.downscale == "bicubic":
            image = deg.bicubic_downscale(image, factor)
        else:
            kernel = deg.random_gaussian_kernel(
                rng, size=4 * factor + 3 if factor > 2 else 11, sigma_range=spec.blur_sigma
            )
            image = deg.kernel_downscale(image, kernel, factor)
        sigma_range = spec.sr_noise
    elif spec.kind == "noise":
        sigma_range = spec.sigma
        if fixed_sigma is None and spec.blur_prob > 0 and rng.random() < spec.blur_prob:
            sigma = float(rng.uniform(*spec.blur_sigma))
            image = deg.blur(image, deg.isotropic_gaussian_kernel(2 * int(np.ceil(3 * sigma)) + 1, sigma))
    else:
        return image.astype(np.float32), 0.0
    level = 0.0
    if fixed_sigma is not None:
        image, level = deg.add_gaussian_noise(image, fixed_sigma / 255.0, rng)
        if spec.val_clip:
            image = np.clip(image, 0.0, 1.0)
        return image.astype(np.float32), level
    if spec.kind == "noise" and spec.noise == "camera":
        image, level = deg.add_camera_noise(image, rng)  # Brooks et al. 2019: noise in raw space, processed
    elif max(sigma_range) > 0 or (spec.kind == "noise" and spec.noise == "poisson-gaussian"):
        correlated = spec.correlated_prob > 0 and rng.random() < spec.correlated_prob
        correlation = float(rng.uniform(*spec.correlation)) if correlated else 0.0
        if spec.noise == "poisson-gaussian" and spec.kind == "noise":
            shot = (spec.shot[0], spec.shot[1])
            read = (sigma_range[0] / 255.0, sigma_range[1] / 255.0)
            image, level = deg.add_poisson_gaussian_noise(image, shot, read, rng, correlation)
        else:
            sigma = (sigma_range[0] / 255.0, sigma_range[1] / 255.0)
            image, level = deg.add_gaussian_noise(image, sigma, rng, spec.per_channel, correlation)
    if spec.clip_prob > 0 and rng.random() < spec.clip_prob:
        image = np.clip(image, 0.0, 1.0)  # the camera clips after the noise; the level stays the one added
    if spec.jpeg_prob > 0 and rng.random() < spec.jpeg_prob:
        quality = int(rng.integers(spec.jpeg_quality[0], spec.jpeg_quality[1] + 1))
        subsampling = "420" if rng.random() < spec.jpeg_subsampling_prob else "444"
        # The noise-level input stays the sigma added: what the app tells a denoiser for a JPEG (its estimate of
        # the sigma before compression, engine.noise_estimate.NoiseEstimate.denoiser_level).
        image = deg.jpeg_compress(image, quality, subsampling)
    return image.astype(np.float32), level


# ----------------------------------------------------------------------------------------------- datasets


class CleanImageDataset:
    """Patches of clean images (mined or random) degraded on the fly by the recipe's ``[degradation]``."""

    def __init__(
        self,
        store: ImageStore,
        *,
        patch_size: int,
        degradation,
        roles: Sequence[str],
        transform: str = "srgb",
        channels: int = 3,
        mining: str = "gradient",
        mine_fraction: float = 0.5,
        mine_stride: int = 0,
        augment: bool = False,
        exposure_jitter_stops: float = 0.0,
        patches: Sequence[PatchRef] | None = None,
    ) -> None:
        """``patches`` (optional) is a fixed pool of patch refs to sample from, replacing mining."""
        if len(store) == 0:
            raise DataError("no training images")
        self.store = store
        self.degradation = degradation
        self.scale = degradation.scale if degradation.kind == "sr" else 1
        # Patches are cut at the target resolution, a multiple of the scale so LR and HR line up.
        self.patch_size = max(self.scale, patch_size - patch_size % self.scale)
        self.roles = tuple(roles)
        self.transform = transform
        self.channels = channels
        self.augment = augment
        self.exposure_jitter_stops = exposure_jitter_stops
        self.mining = mining
        usable = [i for i, (h, w) in enumerate(store.shapes()) if h >= self.patch_size and w >= self.patch_size]
        if not usable:
            raise DataError(f"no training image is at least {self.patch_size} x {self.patch_size} pixels")
        self.patches: list[PatchRef] | None = list(patches) if patches is not None else None
        if self.patches is None and mining != "random":
            images = FloatView(store.arrays, channels)
            stride = mine_stride or self.patch_size
            self.patches = mine_patches(images, self.patch_size, stride, mine_fraction, mining)
            if not self.patches:
                raise DataError("patch mining found no patches")

    def __len__(self) -> int:
        return len(self.patches) if self.patches is not None else len(self.store)

    def _pick(self, rng: np.random.Generator) -> PatchRef:
        if self.patches is not None:
            return self.patches[int(rng.integers(0, len(self.patches)))]
        return random_patches(self.store.shapes(), self.patch_size, 1, rng)[0]

    def sample(self, rng: np.random.Generator) -> Sample:
        ref = self._pick(rng)
        hdr = self.store.hdr[ref.image]
        if self.scale > 1:
            clean, degraded, level = self._downscale_with_context(ref, rng)
        else:
            clean = to_float(ref.crop(self.store.arrays[ref.image]), self.channels)
            degraded, level = degrade(clean, self.degradation, rng)
        if self.augment:
            clean, degraded = augment_pair([clean, degraded], rng)
        if hdr and self.exposure_jitter_stops > 0:
            gain = np.float32(2.0 ** rng.uniform(-self.exposure_jitter_stops, self.exposure_jitter_stops))
            clean, degraded = clean * gain, degraded * gain
        return make_sample(clean, degraded, transform=self.transform, hdr=hdr, roles=self.roles, noise_level=level)

    def _downscale_with_context(self, ref: PatchRef, rng: np.random.Generator):
        """Downscale the patch together with up to ``SR_CONTEXT`` LR pixels of real surroundings on each side,
        then cut the LR patch out: its border pixels then see the image around them, as when a whole image
        is downscaled (Set5's LR files), instead of a mirrored patch edge."""
        array, s, size = self.store.arrays[ref.image], self.scale, ref.size
        height, width = array.shape[:2]
        reach = SR_CONTEXT * s
        # Margins are multiples of the scale so that the LR grid of the region lines up with the patch's.
        top = min(reach, ref.top - ref.top % s)
        left = min(reach, ref.left - ref.left % s)
        bottom = min(reach, (height - ref.top - size) // s * s)
        right = min(reach, (width - ref.left - size) // s * s)
        region = to_float(
            array[ref.top - top : ref.top + size + bottom, ref.left - left : ref.left + size + right], self.channels
        )
        degraded, level = degrade(region, self.degradation, rng)
        clean = region[top : top + size, left : left + size]
        lr = size // s
        return clean, degraded[top // s : top // s + lr, left // s : left // s + lr], level


def match_pairs(input_dir: Path, target_dir: Path) -> list[tuple[Path, Path]]:
    """Pair input and target files by name (see the module docstring)."""

    def stem_key(path: Path, suffixes: Sequence[str]) -> str:
        stem = path.stem
        for suffix in suffixes:
            if suffix and stem.lower().endswith(suffix):
                return stem[: -len(suffix)]
        return stem

    aov_suffixes = tuple(f"_{name}" for name in AOV_NAMES)
    targets: dict[str, Path] = {}
    for path in list_images(target_dir):
        targets.setdefault(stem_key(path, TARGET_SUFFIXES), path)
    pairs = []
    for path in list_images(input_dir):
        if path.stem.lower().endswith(aov_suffixes):
            continue
        key = stem_key(path, INPUT_SUFFIXES)
        if key in targets:
            pairs.append((path, targets[key]))
    if not pairs:
        raise DataError(f"no input in {input_dir} has a matching target in {target_dir}")
    return pairs


def read_aovs(color_path: Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The AOV buffers of a render, found as the app finds them: layers of a multi-layer EXR
    (``albedo.R``...) or ``NAME_albedo.exr``-style files beside it (engine/imageio/sidecars.py)."""
    from ..imageio import read_image as read_app_image

    layers = read_app_image(color_path, max_pixels=None).layers
    stem = color_path.stem
    base = stem[: -len("_color")] if stem.lower().endswith("_color") else stem
    aovs = {}
    for name in names:
        if name not in layers:
            raise DataError(f"{color_path.name}: no {name} buffer (an EXR layer, or {base}_{name}.exr beside it)")
        aovs[name] = to_float(np.asarray(layers[name])[:, :, :1 if name == "depth" else 3], 1 if name == "depth" else 3)
    return aovs


#: Sub-folder pairs (inputs, targets) that training data comes in, as downloaded or as people arrange it.
#: Besides these, any folder ``X`` beside ``X_cleaned`` / ``X_clean`` / ``X_gt`` / ``X_ref`` / ``X_target`` pairs
#: (Kaggle's Dirty Documents: ``train/`` + ``train_cleaned/``).
PAIRED_LAYOUTS: tuple[tuple[str, str], ...] = (
    ("input", "target"), ("inputs", "targets"), ("noisy", "clean"), ("noisy", "gt"), ("input", "gt"),
    ("lr", "hr"), ("low", "high"), ("degraded", "clean"), ("dirty", "clean"), ("noisy", "reference"),
)
_TARGET_FOLDER_SUFFIXES = ("_cleaned", "_clean", "_gt", "_ref", "_target", "_reference")


def paired_folders(root: Path) -> list[tuple[Path, Path]]:
    """(inputs, targets) sub-folders of ``root`` in one of the layouts above (names compared case-blind)."""
    root = Path(root)
    try:
        folders = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    except OSError:
        return []
    found = [(folders[a], folders[b]) for a, b in PAIRED_LAYOUTS if a in folders and b in folders]
    for name, folder in sorted(folders.items()):
        for suffix in _TARGET_FOLDER_SUFFIXES:
            if name + suffix in folders and all(folder != pair[0] for pair in found):
                found.append((folder, folders[name + suffix]))
                break
    return found


def find_pairs(root: Path) -> list[tuple[Path, Path]]:
    """Training pairs in a folder the user chose: paired sub-folders (``input/`` + ``target/``, ``noisy/`` +
    ``clean/``, ``train/`` + ``train_cleaned/``... see :func:`paired_folders`) with matching file names, or one
    flat folder (a shot's frames) where each reference sits beside its input, named as the app finds references
    (``frame_0012.exr`` + ``frame_0012_ref.exr``, ``NAME.ref.exr``, ``NAME_gt``, ``NAME_clean``, ``cbox_ref_spp4096``
    beside ``cbox_spp0016``: engine/imageio/sidecars.pick_reference). Several inputs may share one reference."""
    from ..imageio.sidecars import pick_reference

    root = Path(root)
    layouts = paired_folders(root)
    if layouts:
        pairs = [pair for inputs, targets in layouts for pair in _matched_or_empty(inputs, targets)]
        if pairs:
            return pairs
        names = ", ".join(f"{a.name}/ + {b.name}/" for a, b in layouts)
        raise DataError(f"{root}: no file in {names} has a target of the same name")
    aov_suffixes = tuple(f"_{name}" for name in AOV_NAMES)
    files = [p for p in list_images(root) if not p.stem.lower().endswith(aov_suffixes)]
    pairs = []
    for path in files:
        reference = pick_reference(path, files, higher_spp=False)
        if reference is not None:
            pairs.append((path, reference))
    if not pairs:
        raise DataError(
            f"{root}: found no pairs. Put the noisy images in input/ and the clean ones in target/ (same names; "
            "noisy/ + clean/ and train/ + train_cleaned/ work too), or keep each reference beside its input named "
            "NAME_ref (e.g. frame_0012.exr and frame_0012_ref.exr)."
        )
    return pairs


def _matched_or_empty(inputs: Path, targets: Path) -> list[tuple[Path, Path]]:
    try:
        return match_pairs(inputs, targets)
    except DataError:
        return []


def describe_pairs(root: Path) -> str:
    """One line for the Train dialog: what :func:`find_pairs` finds in ``root`` and in which layout."""
    root = Path(root)
    try:
        pairs = find_pairs(root)
    except (DataError, OSError) as error:
        return str(error)
    layouts = paired_folders(root)
    where = " and ".join(f"{a.name}/ + {b.name}/" for a, b in layouts) if layouts else "references beside inputs"
    return f"{root.name}/: {len(pairs)} pair(s) ({where})"


#: From this many pairs on, the files are read by worker processes: a rendered pair (colour, albedo, normal,
#: reference EXRs) took 6.7 ms to read here, mostly decoding that holds the GIL (two threads: 1.3x), so a device
#: round's ~12,000 pairs would take ~80 s one after another. (Not timed on many cores: this machine has two.)
PARALLEL_READ_PAIRS = 512


def _read_pair(job: tuple[Path, Path, tuple[str, ...]]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    input_path, target_path, aov_names = job
    return (read_image(input_path), read_image(target_path),
            read_aovs(input_path, list(aov_names)) if aov_names else {})


def _read_pairs(pairs: Sequence[tuple[Path, Path]], aov_names: Sequence[str]):
    """Each pair's (input, target, AOVs), in order; in worker processes for large sets on a multi-core machine."""
    jobs = [(Path(i), Path(t), tuple(aov_names)) for i, t in pairs]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if len(jobs) < PARALLEL_READ_PAIRS or cores < 3:
        yield from map(_read_pair, jobs)
        return
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(min(16, cores - 1)) as pool:
        yield from pool.imap(_read_pair, jobs, chunksize=16)


class PairedImageDataset:
    """Random aligned crops of (input, target) pairs; the input may be 1/scale the target's size."""

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        *,
        patch_size: int,
        roles: Sequence[str],
        scale: int = 1,
        transform: str = "srgb",
        channels: int = 3,
        augment: bool = False,
        mining: str = "random",
        mine_fraction: float = 0.5,
        exposure_jitter_stops: float = 0.0,
        fit_multiple: int = 0,
        augment_aovs: bool = True,
    ) -> None:
        """``augment_aovs``: with ``augment``, also rotate normals and permute RGB (:func:`augment_aovs`).
        ``fit_multiple``: when no pair is as large as ``patch_size`` (a user's 96x96 shot against a recipe's
        128 px patches), use the largest patch, a multiple of this (the model's alignment), that the largest pair
        holds, and say so in :attr:`note`, instead of refusing (0: refuse)."""
        self.roles = tuple(roles)
        self.scale = scale
        #: What the dataset changed from the recipe (shown in the training progress), or "".
        self.note = ""
        self.transform = transform
        self.channels = channels
        self.augment = augment
        self.augment_aovs = augment_aovs
        self.exposure_jitter_stops = exposure_jitter_stops
        self.patch_size = max(scale, patch_size - patch_size % scale)
        aov_names = [r for r in self.roles if r in AOV_NAMES]
        self.items = []
        self.depth_max: list[float | None] = []
        for (input_path, target_path), (inp, tgt, aovs) in zip(pairs, _read_pairs(pairs, aov_names), strict=True):
            if (inp.shape[0] * scale, inp.shape[1] * scale) != tgt.shape[:2]:
                raise DataError(
                    f"{input_path.name} ({inp.shape[1]}x{inp.shape[0]}) does not match "
                    f"{target_path.name} ({tgt.shape[1]}x{tgt.shape[0]}) at scale {scale}"
                )
            hdr = is_hdr_file(input_path) or inp.dtype == np.float32
            exposure = None
            if hdr and transform != "srgb":
                # One scale per image, from the whole noisy input, exactly as inference computes it.
                exposure = auto_exposure_scale(np.nan_to_num(to_float(inp, 3), nan=0.0, posinf=0.0))
            self.items.append((input_path, inp, tgt, aovs, hdr, exposure))
            self.depth_max.append(finite_max(aovs["depth"]) if "depth" in aovs else None)
        lr_patch = self.patch_size // scale
        largest = max((min(it[1].shape[:2]) for it in self.items), default=0)
        if fit_multiple > 0 and self.items and largest < lr_patch:
            step = fit_multiple * scale // math.gcd(fit_multiple, scale)  # a multiple of both, in input pixels
            fitted = largest // step * step
            if fitted >= max(step, 16):
                self.note = (f"training patches of {fitted * scale} px instead of the recipe's {self.patch_size} px: "
                             f"the largest training image is {largest} px")
                self.patch_size, lr_patch = fitted * scale, fitted
        keep = [i for i, it in enumerate(self.items) if it[1].shape[0] >= lr_patch and it[1].shape[1] >= lr_patch]
        self.items = [self.items[i] for i in keep]
        self.depth_max = [self.depth_max[i] for i in keep]
        if not self.items:
            raise DataError(f"no training pair is at least {lr_patch} x {lr_patch} pixels")
        self.patches: list[PatchRef] | None = None
        if mining != "random":
            # Mine on the inputs' grid: a target patch is then the same ref at ``scale``.
            targets = FloatView([item[2] for item in self.items], channels)
            refs = mine_patches(targets, self.patch_size, self.patch_size, mine_fraction, mining)
            self.patches = [PatchRef(r.image, r.top // scale, r.left // scale, lr_patch) for r in refs]

    def __len__(self) -> int:
        return len(self.patches) if self.patches is not None else len(self.items)

    def sample(self, rng: np.random.Generator) -> Sample:
        lr_patch = self.patch_size // self.scale
        if self.patches is not None:
            ref = self.patches[int(rng.integers(0, len(self.patches)))]
        else:
            index = int(rng.integers(0, len(self.items)))
            h, w = self.items[index][1].shape[:2]
            ref = PatchRef(
                index, int(rng.integers(0, h - lr_patch + 1)), int(rng.integers(0, w - lr_patch + 1)), lr_patch
            )
        _, inp, tgt, aovs, hdr, exposure = self.items[ref.image]
        x = to_float(ref.crop(inp), self.channels)
        y = to_float(ref.crop(tgt, self.scale), self.channels)
        crops = {name: ref.crop(layer) for name, layer in aovs.items()}
        if self.augment:
            names = list(crops)
            # Rotating/flipping an LR patch and its HR patch alike keeps them aligned at any scale.
            arrays = augment_pair([x, y] + [crops[n] for n in names], rng)
            x, y = arrays[0], arrays[1]
            crops = dict(zip(names, arrays[2:], strict=True))
            if crops and self.augment_aovs:
                x, y, crops = augment_aovs(x, y, crops, rng)
        if hdr and self.exposure_jitter_stops > 0 and exposure is not None:
            exposure = exposure * float(2.0 ** rng.uniform(-self.exposure_jitter_stops, self.exposure_jitter_stops))
        return make_sample(y, x, transform=self.transform, hdr=hdr, roles=self.roles, aovs=crops, exposure=exposure,
                           depth_max=self.depth_max[ref.image])


# ----------------------------------------------------------------------------------------------- validation


def centre_crop(array: np.ndarray, size: int, multiple: int = 1) -> np.ndarray:
    h, w = array.shape[:2]
    ch = min(h, size) if size else h
    cw = min(w, size) if size else w
    ch, cw = ch - ch % multiple, cw - cw % multiple
    top, left = (h - ch) // 2, (w - cw) // 2
    return array[top : top + ch, left : left + cw]


def validation_from_clean(
    store: ImageStore,
    *,
    crop: int,
    degradation,
    roles: Sequence[str],
    transform: str,
    channels: int,
    multiple: int,
    seed: int = 12345,
) -> list[Sample]:
    """Fixed validation samples: centre crops degraded once with a fixed seed (and fixed noise level)."""
    rng = np.random.default_rng(seed)
    samples = []
    scale = degradation.scale if degradation.kind == "sr" else 1
    for array, hdr in zip(store.arrays, store.hdr, strict=True):
        clean = to_float(centre_crop(array, crop, multiple * scale), channels)
        # Camera noise validates on camera noise (seeded, so the same each time): a Gaussian level would pick the
        # checkpoint best at a noise the model is not trained for.
        camera = degradation.kind == "noise" and degradation.noise == "camera"
        fixed = degradation.val_sigma if degradation.kind == "noise" and not camera else None
        degraded, level = degrade(clean, degradation, rng, fixed_sigma=fixed)
        samples.append(make_sample(clean, degraded, transform=transform, hdr=hdr, roles=roles, noise_level=level))
    return samples


def validation_from_pairs(dataset: PairedImageDataset, crop: int, multiple: int) -> list[Sample]:
    samples = []
    for (_, inp, tgt, aovs, hdr, exposure), depth_max in zip(dataset.items, dataset.depth_max, strict=True):
        x = to_float(centre_crop(inp, crop // dataset.scale if crop else 0, multiple), dataset.channels)
        h, w = x.shape[:2]
        top, left = (inp.shape[0] - h) // 2, (inp.shape[1] - w) // 2
        ref = PatchRef(0, top, left, 0)
        y = to_float(
            tgt[top * dataset.scale : (top + h) * dataset.scale, left * dataset.scale : (left + w) * dataset.scale],
            dataset.channels,
        )
        crops = {n: layer[ref.top : ref.top + h, ref.left : ref.left + w] for n, layer in aovs.items()}
        samples.append(
            make_sample(y, x, transform=dataset.transform, hdr=hdr, roles=dataset.roles, aovs=crops, exposure=exposure,
                        depth_max=depth_max)
        )
    return samples
