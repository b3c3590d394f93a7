"""The Train / fine-tune dialog, offscreen, with a tiny recipe: train, finish early, see the model registered."""

import importlib.util

import numpy as np
import pytest

pytest.importorskip("pytestqt")
torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from engine.models.registry import ModelRegistry  # noqa: E402
from engine.training.recipes import load_recipe, recipe_from_dict  # noqa: E402


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):
        image = np.ones((40, 40, 3), np.float32) * rng.random(3).astype(np.float32)
        image[:, 20:] *= 0.5
        cv2.imwrite(str(folder / f"p{i}.png"), (image * 255).astype(np.uint8))
    return folder


def tiny_recipe():
    return recipe_from_dict(
        {
            "model": {
                "id": "tiny",
                "task": "photo-denoise",
                "arch": "dncnn",
                "name": "Tiny denoiser",
                "config": {"features": 4, "depth": 3},
            },
            "data": {"patch_size": 16, "val_crop": 32},
            "degradation": {"kind": "noise", "sigma": [10, 30]},
            "train": {"steps": 100000, "batch_size": 2, "val_every": 2, "checkpoint_every": 0},
        },
        source="tiny",
    )


def test_train_dialog_trains_registers_and_offers_fine_tuning(qtbot, images):
    from gui.train_dialog import TrainDialog

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        registry = ModelRegistry(include_classical=False)
        dialog = TrainDialog(None, registry)
        qtbot.addWidget(dialog)
        assert dialog.task_box.count() >= 1  # the repository's recipes are offered
        dialog.recipes = [tiny_recipe()]
        dialog.task_box.clear()
        dialog.task_box.addItem("Photo denoise", "photo-denoise")
        assert dialog.recipe_box.currentText() == "Tiny denoiser"
        dialog.add_folder(str(images))
        dialog.name_edit.setText("Test denoiser")
        trained = []
        dialog.model_trained.connect(trained.append)

        def stop_once_validated(progress):
            if progress.metrics.get("last_val_step"):
                dialog.runner.request_stop()

        dialog.runner.progress.connect(stop_once_validated)
        with qtbot.waitSignal(dialog.runner.finished, timeout=60000):
            dialog.start_training()
            assert not dialog.train_button.isEnabled() and dialog.stop_button.isEnabled()
        assert trained and trained[0].startswith("user-test-denoiser-")
        assert "validation PSNR" in dialog.status.text()
        assert dialog.loss_plot.series("train loss")[0] and dialog.val_plot.series("validation")[0]
        entry = registry.get(trained[0])
        assert entry.source == "user" and entry.manifest.name == "Test denoiser"
        assert dialog.train_button.isEnabled()

        again = TrainDialog(None, registry)
        qtbot.addWidget(again)
        again.task_box.setCurrentIndex(again.task_box.findData("photo-denoise"))
        bases = [again.base_box.itemData(i) for i in range(again.base_box.count())]
        assert bases[0] is None and trained[0] in bases
        # fine-tuning it: the starting model is scored first (a point at step 0) and the result is told
        # against that score
        again.recipes = dialog.recipes
        again.task_box.clear()
        again.task_box.addItem("Photo denoise", "photo-denoise")
        again.base_box.setCurrentIndex(again.base_box.findData(trained[0]))
        again.add_folder(str(images))
        again.runner.progress.connect(lambda progress: progress.metrics.get("last_val_step")
                                      and again.runner.request_stop())
        with qtbot.waitSignal(again.runner.finished, timeout=60000):
            again.start_training()
        assert again.val_plot.series("validation")[0][0] == 0.0
        assert "from the starting model's" in again.status.text() or "no step beat" in again.status.text()
    finally:
        torch.set_num_threads(previous)


def test_train_dialog_refuses_to_start_without_images(qtbot, monkeypatch):
    from gui import train_dialog

    dialog = train_dialog.TrainDialog(None, ModelRegistry(include_classical=False))
    qtbot.addWidget(dialog)
    with pytest.raises(ValueError, match="folder"):
        dialog.build_job_factory()
    warnings = []
    monkeypatch.setattr(train_dialog.QMessageBox, "warning", lambda *args: warnings.append(args[2]))
    dialog.start_training()
    assert warnings and not dialog.runner.is_running()


def test_render_fine_tuning_from_a_flat_folder_of_shot_frames(qtbot, tmp_path, monkeypatch):
    """Per-scene fine-tuning: noisy frames with AOVs as EXR layers, each beside its NAME_ref.exr."""
    from engine.image import ImageMeta, make_image
    from engine.imageio import write_image
    from engine.training.datasets import find_pairs
    from engine.training.trainer import TrainOptions, train_job
    from gui.train_dialog import TrainDialog

    rng = np.random.default_rng(1)
    meta = ImageMeta(hdr=True, format="exr", color_space="linear")
    shot = tmp_path / "shot"
    shot.mkdir()
    for i in range(3):
        clean = np.ones((32, 32, 3), np.float32) * rng.random(3).astype(np.float32) * 2.0
        clean[:, 16:] *= 0.25
        noisy = clean * rng.gamma(2.0, 0.5, clean.shape).astype(np.float32)
        albedo = np.clip(clean, 0, 1)
        normal = np.zeros_like(clean)
        normal[..., 2] = 1.0
        layers = {"albedo": albedo, "normal": normal}
        write_image(shot / f"frame_{i:04d}.exr", make_image(noisy, meta=meta, layers=layers))
        write_image(shot / f"frame_{i:04d}_ref.exr", make_image(clean, meta=meta))
    pairs = find_pairs(shot)
    assert [(a.name, b.name) for a, b in pairs] == [(f"frame_{i:04d}.exr", f"frame_{i:04d}_ref.exr") for i in range(3)]

    recipe = recipe_from_dict(
        {
            "model": {"id": "tiny-render", "task": "render-denoise", "arch": "kprcan", "value_transform": "log1p",
                      "config": {"aux_inputs": ["albedo", "normal"], "features": 4, "blocks": 1}},
            "data": {"kind": "paired", "patch_size": 16, "val_crop": 32, "augment": True},
            "degradation": {"kind": "none"},
            "train": {"steps": 3, "batch_size": 2, "val_every": 2, "checkpoint_every": 0},
        },
        source="tiny-render",
    )
    result = None
    job = train_job(recipe, None, TrainOptions(data=(str(shot),), run_dir=tmp_path / "run", out_dir=tmp_path / "out",
                                               threads=1))
    try:
        while True:
            next(job)
    except StopIteration as stop:
        result = stop.value
    assert result.steps == 3 and (tmp_path / "out").is_dir()
    if importlib.util.find_spec("pyoidn") is not None:
        # the finished dialog names the new network's blend with OIDN, which the model list now offers beside it
        done = TrainDialog(None, ModelRegistry(folders=[(tmp_path / "out", "user")]))
        qtbot.addWidget(done)
        done._on_succeeded(result)
        name = result.export.manifest.display_name
        assert f"blended with Intel's OIDN as “{name} + OIDN blend”" in done.status.text()

    # the dialog offers fine-tuning the shipped render denoiser first, and says how to lay out a shot
    dialog = TrainDialog(None, ModelRegistry(include_classical=False))
    qtbot.addWidget(dialog)
    dialog.task_box.setCurrentIndex(dialog.task_box.findData("render-denoise"))
    base = dialog.base_box.currentData()
    assert str(base).startswith("render-")
    assert "NAME_ref" in dialog.data_note.text()
    # the base model's fine-tuning recipe is preselected (the one that made it trains its refinement alone), and
    # the job trains every weight at that recipe's own rate
    made_by = ModelRegistry(include_classical=False).get(base).manifest.provenance["recipe"]
    chosen = dialog.current_recipe()
    assert chosen.train.for_fine_tuning and chosen.train.train_only == ""
    assert chosen.model.id == load_recipe(made_by).model.id and not chosen.source.endswith(made_by.rsplit("/", 1)[-1])
    started = []
    monkeypatch.setattr("engine.training.trainer.train_job", lambda recipe, token, options: started.append(
        (recipe, options)))
    dialog.add_folder(str(shot))
    dialog.build_job_factory()(None)
    (recipe, options), = started
    assert recipe.train.lr == chosen.train.lr and recipe.train.train_only == "" and options.init == base

    # "From scratch" means it: the fine-tuning recipe (whose init is the shipped model) refuses it, and choosing
    # that recipe while "From scratch" is selected starts from its model instead
    assert chosen.train.init == base
    row_of = {id(dialog.recipes[dialog.recipe_box.itemData(row)]): row for row in range(dialog.recipe_box.count())}
    dialog.base_box.setCurrentIndex(dialog.base_box.findData(None))
    with pytest.raises(ValueError, match="Start from"):
        dialog.build_job_factory()
    dialog.recipe_box.setCurrentIndex(next(row for row in row_of.values() if row != row_of[id(chosen)]))
    dialog.base_box.setCurrentIndex(dialog.base_box.findData(None))
    dialog.recipe_box.setCurrentIndex(row_of[id(chosen)])
    assert dialog.base_box.currentData() == base

    # Opened from the main window with the colour-only render model picked and a frame of the shot open: that
    # model is the starting point and the frame's folder is the shot
    picked = TrainDialog(None, ModelRegistry(include_classical=False), model_id="render-kprcan-color",
                         image_path=shot / "frame_0001.exr")
    qtbot.addWidget(picked)
    assert picked.current_task() == "render-denoise" and picked.base_box.currentData() == "render-kprcan-color"
    assert picked.current_recipe().train.init == "render-kprcan-color" and picked.folder_list() == [str(shot.resolve())]
    assert "3 noisy frame(s)" in picked.status.text()
    # a render open in a folder without references, or a photo model picked: nothing is put in the folder list
    lone = tmp_path / "lone"
    lone.mkdir()
    write_image(lone / "frame.exr", make_image(rng.random((32, 32, 3), dtype=np.float32), meta=meta))
    for model_id, image in (("render-kprcan-aov", lone / "frame.exr"),
                            ("photo-denoise-color", shot / "frame_0001.exr")):
        other = TrainDialog(None, ModelRegistry(include_classical=False), model_id=model_id, image_path=image)
        qtbot.addWidget(other)
        assert other.base_box.currentData() == model_id and other.folder_list() == []
    assert other.current_task() == "photo-denoise"


def test_the_dialog_opens_big_enough_for_its_notes(qtbot):
    """Qt caps a dialog's first size at 2/3 of the screen; on a small display that squeezed the word-wrapped
    data note under the folder buttons. The dialog opens at the size its contents ask for (up to the screen)."""
    from gui.train_dialog import TrainDialog

    dialog = TrainDialog(None, ModelRegistry(include_classical=False))
    qtbot.addWidget(dialog)
    dialog.task_box.setCurrentIndex(dialog.task_box.findData("render-denoise"))
    dialog.show()
    qtbot.waitExposed(dialog)
    room = dialog.screen().availableGeometry()
    note = dialog.data_note
    assert dialog.height() <= room.height() and dialog.width() <= room.width()
    assert dialog.height() >= min(dialog.sizeHint().height(), room.height() - 60, 760)
    assert note.height() >= note.heightForWidth(note.width())  # not squeezed
