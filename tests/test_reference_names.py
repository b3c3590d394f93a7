"""References and training pairs found as users name them (issue 46, item 5)."""

from pathlib import Path

import numpy as np
import pytest

from engine.image import ImageMeta, make_image
from engine.imageio import folder_images, write_image
from engine.imageio.sidecars import companion_files, find_reference, pick_reference
from engine.training.datasets import DataError, describe_pairs, find_pairs, paired_folders


def touch(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        (folder / name).write_bytes(b"")
        paths.append(folder / name)
    return paths


@pytest.mark.parametrize(
    ("image", "reference"),
    [
        ("frame_0012.exr", "frame_0012_ref.exr"),
        ("frame_0012.exr", "frame_0012.ref.exr"),
        ("shot.exr", "shot_reference.exr"),
        ("IMG_4410.png", "IMG_4410_clean.png"),
        ("IMG_4410.png", "IMG_4410-gt.png"),
        ("page 3.png", "page 3 cleaned.png"),
        ("scene.exr", "gt_scene.exr"),
        # The Cornell box as rendered by the project's own generator (bench/renders/cbox256).
        ("cbox_256_spp00016_color.exr", "cbox_256_ref_spp04096_color.exr"),
        # No reference word, but the same render with more samples.
        ("kitchen_spp0016.exr", "kitchen_spp1024.exr"),
        ("kitchen_16spp.exr", "kitchen_4096spp.exr"),
    ],
)
def test_a_reference_is_found_as_users_name_it(tmp_path, image, reference):
    touch(tmp_path, image, reference, "unrelated.exr", "frame_0013_ref.exr")
    assert find_reference(tmp_path / image) == tmp_path / reference
    assert find_reference(tmp_path / reference) is None  # a reference has none of its own


def test_what_is_not_a_reference(tmp_path):
    files = touch(tmp_path, "cbox_256_spp00016_color.exr", "cbox_256_spp00016_albedo.exr", "refinery.exr",
                  "cbox_256_spp00004_color.exr", "frame_0001.exr", "frame_0002_ref.exr", "prefab_ref.exr")
    # A buffer of the same render, a word that merely contains "ref", fewer samples, another frame.
    assert pick_reference(files[0], files) is None
    assert find_reference(tmp_path / "refinery.exr") is None
    assert find_reference(tmp_path / "frame_0001.exr") is None
    # With more samples beside it, the marked reference still wins over a higher-spp render.
    touch(tmp_path, "cbox_256_ref_spp04096_color.exr", "cbox_256_spp00064_color.exr")
    assert find_reference(files[0]).name == "cbox_256_ref_spp04096_color.exr"
    assert find_reference(tmp_path / "cbox_256_spp00004_color.exr").name == "cbox_256_ref_spp04096_color.exr"


def test_a_folder_of_renders_leaves_the_references_out_but_keeps_the_sample_counts(tmp_path):
    files = touch(tmp_path, "cbox_256_ref_spp04096_color.exr", "cbox_256_spp00004_color.exr",
                  "cbox_256_spp00016_color.exr", "cbox_256_spp00016_albedo.exr")
    companions = companion_files(files)
    assert companions[tmp_path / "cbox_256_ref_spp04096_color.exr"].startswith("reference of")
    assert tmp_path / "cbox_256_spp00016_color.exr" not in companions  # a render of its own to restore


def _pair_images(folder: Path, names: list[str], seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        write_image(folder / name, make_image(rng.random((8, 8, 3)), None, ImageMeta(format="png")))


@pytest.mark.parametrize(
    ("inputs", "targets"),
    [("input", "target"), ("noisy", "clean"), ("train", "train_cleaned"), ("Noisy", "GT"), ("scans", "scans_clean")],
)
def test_paired_sub_folder_layouts(tmp_path, inputs, targets):
    _pair_images(tmp_path / inputs, ["101.png", "102.png"])
    _pair_images(tmp_path / targets, ["101.png", "102.png"], seed=1)
    _pair_images(tmp_path / "test", ["1.png"])  # Dirty Documents' unpaired test/ folder sits beside them
    assert paired_folders(tmp_path) == [(tmp_path / inputs, tmp_path / targets)]
    pairs = find_pairs(tmp_path)
    assert [(a.parent.name, a.name, b.parent.name, b.name) for a, b in pairs] == [
        (inputs, "101.png", targets, "101.png"), (inputs, "102.png", targets, "102.png")]
    assert describe_pairs(tmp_path).endswith(f"2 pair(s) ({inputs}/ + {targets}/)")


def test_flat_folder_pairs_each_input_with_the_reference_beside_it(tmp_path):
    _pair_images(tmp_path, ["a.png", "a_ref.png", "b.png", "b.clean.png", "c.png"])
    assert [(a.name, b.name) for a, b in find_pairs(tmp_path)] == [("a.png", "a_ref.png"), ("b.png", "b.clean.png")]
    # photos named NAME_clean beside NAME are still images of their own when a folder is opened
    assert len(folder_images(tmp_path)[0]) == 5


def test_no_pairs_says_which_layouts_work(tmp_path):
    _pair_images(tmp_path, ["a.png", "b.png"])
    with pytest.raises(DataError, match="train_cleaned"):
        find_pairs(tmp_path)
    _pair_images(tmp_path / "noisy", ["1.png"])
    _pair_images(tmp_path / "clean", ["2.png"])
    with pytest.raises(DataError, match="noisy/ \\+ clean/"):
        find_pairs(tmp_path)
