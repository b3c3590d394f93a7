"""Tools > Render Passes: the roles of a Blender render's passes, shown and changed."""

from __future__ import annotations

from engine.imageio import read_image
from gui.render_passes_dialog import NONE_TEXT, RenderPassesDialog, pass_choices
from tests.test_exr_conventions import _blender_passes, _layer, _write, write_blender


def test_dialog_shows_the_roles_and_gives_them_to_other_passes(qtbot, tmp_path):
    write_blender(tmp_path / "render.exr", _blender_passes())
    image = read_image(tmp_path / "render.exr")
    assert pass_choices(image, "albedo")[:2] == ["ViewLayer.Denoising Albedo", "ViewLayer.Diffuse Color"]
    dialog = RenderPassesDialog(image)
    qtbot.addWidget(dialog)
    assert dialog.combos["normal"].currentText() == "ViewLayer.Denoising Normal"
    assert dialog.choices() == {} and dialog.image() is image
    dialog.combos["albedo"].setCurrentText("ViewLayer.Diffuse Color")
    dialog.combos["depth"].setCurrentText(NONE_TEXT)
    assert dialog.choices() == {"albedo": "ViewLayer.Diffuse Color", "depth": None}
    chosen = dialog.image()
    assert chosen.meta.extra["aov_roles"]["albedo"]["layer"] == "ViewLayer.Diffuse Color"
    assert set(chosen.aovs) == {"albedo", "normal"}


def test_a_sidecar_albedo_is_kept_when_the_dialog_is_accepted(qtbot, tmp_path):
    write_blender(tmp_path / "shot.exr", {"Combined": _blender_passes()["Combined"]})
    _write(tmp_path / "shot_albedo.exr", _layer("", "RGB"))
    image = read_image(tmp_path / "shot.exr")
    dialog = RenderPassesDialog(image)
    qtbot.addWidget(dialog)
    assert dialog.combos["albedo"].currentText() == "shot_albedo.exr" and dialog.choices() == {}
    assert dialog.image() is image


def test_another_pass_can_be_the_colour(qtbot, tmp_path):
    passes = _blender_passes()
    write_blender(tmp_path / "render.exr", passes)
    dialog = RenderPassesDialog(read_image(tmp_path / "render.exr"))
    qtbot.addWidget(dialog)
    assert "ViewLayer.Diffuse Color" in [dialog.colour_combo.itemText(i) for i in range(dialog.colour_combo.count())]
    assert dialog.colour() is None
    dialog.colour_combo.setCurrentText("ViewLayer.Diffuse Color")
    chosen = dialog.image()
    assert chosen.meta.extra["exr_colour_layer"] == "ViewLayer.Diffuse Color"
    assert (chosen.pixels == passes["Diffuse Color"]).all()
