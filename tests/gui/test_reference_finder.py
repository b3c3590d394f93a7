"""Issue 46, item 5 in the window: the reference beside an opened image is loaded with it (the Cornell box's
``cbox_256_ref_spp04096_color.exr`` was not found), replaced or dropped with the next image, and a reference
picked by hand stays; the Train dialog says which paired layout it found."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import engine.imageio as imageio
from engine.image import ImageMeta, make_image
from tests.gui.conftest import open_and_wait

WAIT_MS = 10000


def render(path: Path, seed: int, size: int = 24) -> Path:
    rng = np.random.default_rng(seed)
    meta = ImageMeta(format="exr", bit_depth=32, sample_type="float", hdr=True, color_space="linear")
    return imageio.write_image(path, make_image((rng.random((size, size, 3)) * 4).astype(np.float32), None, meta))


def test_the_reference_beside_a_render_is_loaded_with_it(qtbot, window, tmp_path):
    noisy = render(tmp_path / "cbox_256_spp00016_color.exr", 0)
    reference = render(tmp_path / "cbox_256_ref_spp04096_color.exr", 1)
    open_and_wait(qtbot, window, noisy)
    qtbot.waitUntil(lambda: window.session.reference is not None, timeout=WAIT_MS)
    assert window.session.reference_path == reference
    assert "cbox_256_ref_spp04096_color.exr" in window.message_label.text()
    assert "vs reference" in window.metrics_bar.text()

    # The next image has no reference: the found one does not score it.
    (tmp_path / "elsewhere").mkdir()
    other = render(tmp_path / "elsewhere" / "teapot.exr", 2)
    open_and_wait(qtbot, window, other)
    qtbot.waitUntil(lambda: window.session.reference is None, timeout=WAIT_MS)

    # A reference the user picked by hand stays when the next image has none of its own.
    own = render(tmp_path / "elsewhere" / "mine.exr", 3)
    window.load_reference(str(own))
    qtbot.waitUntil(lambda: window.session.reference_path == own, timeout=WAIT_MS)
    open_and_wait(qtbot, window, render(tmp_path / "elsewhere" / "teapot2.exr", 4))
    qtbot.wait(200)
    assert window.session.reference_path == own


def test_a_reference_of_another_size_is_named_not_used(qtbot, window, tmp_path):
    noisy = render(tmp_path / "frame_0001.exr", 0)
    render(tmp_path / "frame_0001_ref.exr", 1, size=16)
    open_and_wait(qtbot, window, noisy)
    qtbot.waitUntil(lambda: "not used" in window.message_label.text(), timeout=WAIT_MS)
    assert window.session.reference is None


def test_train_dialog_names_the_paired_layout_it_found(qtbot, tmp_path):
    from engine.models.registry import ModelRegistry
    from gui.train_dialog import TrainDialog

    for folder, seed in (("train", 0), ("train_cleaned", 1)):
        (tmp_path / folder).mkdir()
        for name in ("1.png", "2.png", "3.png"):
            rng = np.random.default_rng(seed)
            imageio.write_image(tmp_path / folder / name, make_image(rng.random((16, 16, 3))))
    dialog = TrainDialog(None, ModelRegistry())
    qtbot.addWidget(dialog)
    document = dialog.task_box.findData("document")
    assert document >= 0
    dialog.task_box.setCurrentIndex(document)
    paired = next(i for i in range(dialog.recipe_box.count())
                  if dialog.recipes[dialog.recipe_box.itemData(i)].data.kind == "paired")
    dialog.recipe_box.setCurrentIndex(paired)
    assert "train/ + train_cleaned/" in dialog.data_note.text()
    dialog.add_folder(str(tmp_path))
    assert dialog.status.text() == f"{tmp_path.name}/: 3 pair(s) (train/ + train_cleaned/)"
