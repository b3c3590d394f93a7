"""The product's recipes: each shipped model names a recipe in ``recipes/``, every stage it grew from is a recipe in
``recipes/lineage/`` (no start from an ignored ``runs/`` folder or an old commit's weights), every recipe whose data
is not in ../shared names the commands that make it, and the Train dialog tells them apart."""

import json
import sys
from pathlib import Path

import pytest

from engine.training.recipes import (
    RecipeError,
    is_recipe_reference,
    list_recipes,
    load_recipe,
    recipe_checkpoint,
    run_prepare,
)

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = sorted((ROOT / "recipes").glob("*.toml")) + sorted((ROOT / "recipes" / "lineage").glob("*.toml"))


def _manifests():
    return sorted((ROOT / "resources" / "models").glob("*.json"))


def test_every_shipped_model_names_a_recipe_the_app_offers():
    offered = {r.source for r in list_recipes()}
    assert _manifests()
    for path in _manifests():
        recipe = json.loads(path.read_text(encoding="utf-8"))["provenance"]["recipe"]
        assert recipe in offered, f"{path.name}: {recipe} is not among recipes/*.toml"


def _lineage(source: str) -> list[str]:
    """The chain of recipes a recipe starts from, itself first."""
    chain = [source]
    while True:
        init = load_recipe(chain[-1]).train.init
        if not is_recipe_reference(init):
            return chain
        name = init.partition("#")[0]
        assert name not in chain, f"the lineage of {source} loops: {chain + [name]}"
        chain.append(name)


@pytest.mark.parametrize("path", PRODUCT, ids=lambda p: p.name)
def test_a_product_recipe_starts_from_the_repository_only(path):
    recipe = load_recipe(path)
    init = recipe.train.init
    assert "runs/" not in init and not init.endswith(".pt") or init.startswith("resources/models/"), init
    if is_recipe_reference(init):
        stage = Path(init.partition("#")[0])
        assert stage.parts[:2] == ("recipes", "lineage") and (ROOT / stage).is_file(), init
    for stage in _lineage(recipe.source):
        data = load_recipe(stage).data
        folders = (*data.train, *data.val, data.input_dir, data.target_dir, data.val_input_dir, data.val_target_dir)
        made_here = [f for f in folders if f and not f.startswith("../shared/")]
        assert not made_here or data.prepare, f"{stage} reads {made_here} but names no [data] prepare commands"


def test_the_shipped_render_models_are_chains_back_to_training_from_scratch():
    aov = _lineage("recipes/render_kprcan_aov_fireflies3.toml")
    color = _lineage("recipes/render_kprcan_color_fireflies.toml")
    # the AOV model grew from the colour-only one, which was trained from scratch
    assert aov[-1] == color[-1] == "recipes/lineage/render_kprcan_color.toml"
    assert load_recipe(aov[-1]).train.init == ""
    assert "recipes/lineage/render_kprcan_box_ft.toml" in aov and len(aov) >= 10
    assert _lineage("recipes/document_restormer_tiny_stage3.toml")[-1] == "recipes/lineage/document_restormer_tiny.toml"


def test_the_train_dialog_lists_each_offered_recipe_under_its_own_name():
    from gui.train_dialog import recipe_labels

    recipes = list_recipes()
    labels = recipe_labels(recipes)
    assert len(set(labels)) == len(labels) == len(recipes)
    # told apart by what they are, not by their file names
    assert not any(Path(r.source).stem in label for r, label in zip(recipes, labels, strict=True))
    assert not any(r.source.startswith(("lab/", "recipes/lineage/")) for r in recipes)


def test_a_stage_that_is_not_trained_yet_names_the_command_that_trains_it(tmp_path):
    stage = ROOT / "recipes" / "lineage" / "render_kprcan_aov_fireflies2.toml"
    with pytest.raises(RecipeError, match=r"main.py train --recipe recipes/lineage/render_kprcan_aov_fireflies2"):
        recipe_checkpoint(str(stage.relative_to(ROOT)), runs_dir=tmp_path)
    run = tmp_path / "render_kprcan_aov_fireflies2"
    run.mkdir()
    (run / "last.pt").write_bytes(b"weights")
    assert recipe_checkpoint("recipes/lineage/render_kprcan_aov_fireflies2.toml", runs_dir=tmp_path) == run / "last.pt"
    with pytest.raises(RecipeError, match="best.pt"):
        recipe_checkpoint("recipes/lineage/render_kprcan_aov_fireflies2.toml#best", runs_dir=tmp_path)
    with pytest.raises(RecipeError, match="#last or #best"):
        recipe_checkpoint("recipes/lineage/render_kprcan_aov_fireflies2.toml#first", runs_dir=tmp_path)


def _toy_recipe(tmp_path: Path, prepare: list[str]) -> Path:
    data = tmp_path / "made"
    recipe = tmp_path / "toy.toml"
    commands = ", ".join(json.dumps(c) for c in prepare)
    recipe.write_text(
        f"""
[model]
id = "toy-sr"
task = "super-resolution"
arch = "edsr"
[model.config]
features = 4
blocks = 1
scale = 2
[data]
prepare = [{commands}]
train = ["{data.as_posix()}"]
patch_size = 16
val_crop = 32
val_count = 1
[degradation]
kind = "sr"
scale = 2
[train]
steps = 2
batch_size = 2
""",
        encoding="utf-8",
    )
    return recipe


MAKE_IMAGES = (
    "python -c \"import sys, numpy as np, cv2, pathlib; d = pathlib.Path(sys.argv[1]); d.mkdir(parents=True); "
    "[cv2.imwrite(str(d / f'{i}.png'), np.random.default_rng(i).integers(0, 255, (48, 48, 3), np.uint8)) "
    "for i in range(3)]\" {out}"
)


def test_missing_data_names_the_recipe_s_prepare_commands_and_train_prepare_runs_them(tmp_path, capsys):
    pytest.importorskip("torch")
    from engine.cli import main

    command = MAKE_IMAGES.replace("{out}", (tmp_path / "made").as_posix())
    recipe = _toy_recipe(tmp_path, [command])
    run = ["train", "--recipe", str(recipe), "--steps", "1", "--run-dir", str(tmp_path / "run"), "--no-export"]
    assert main(run) == 1
    error = capsys.readouterr().err
    assert "does not exist" in error and "the recipe's data is made by: python -c" in error and "--prepare" in error
    assert main([*run, "--prepare"]) == 0
    assert len(list((tmp_path / "made").glob("*.png"))) == 3
    assert "trained 1 steps" in capsys.readouterr().out


def test_a_failing_prepare_command_is_named(tmp_path):
    from engine.errors import EngineError

    recipe = load_recipe(_toy_recipe(tmp_path, ["python -c \"import sys; sys.exit(3)\""]))
    with pytest.raises(EngineError, match=r"failed \(exit status 3\)"):
        run_prepare(recipe, echo=lambda line: None)
    assert sys.executable  # run_prepare replaces "python" with this interpreter
