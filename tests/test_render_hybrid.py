"""The blended render engine (KPRCAN + OIDN, engine/models/hybrid.py) on a crop of the bundled sample render."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyoidn")

from engine.errors import JobCancelled  # noqa: E402
from engine.image import make_image  # noqa: E402
from engine.imageio import read_image  # noqa: E402
from engine.jobs import CancelToken, run_job  # noqa: E402
from engine.metrics import relmse  # noqa: E402
from engine.models import hybrid  # noqa: E402
from engine.models.builtin import builtin_engine  # noqa: E402
from engine.models.registry import ModelRegistry  # noqa: E402
from engine.restore import restore_job  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "resources" / "samples"


@pytest.fixture(scope="module")
def crop():
    """A 96 x 128 crop of the sample render (with its albedo and normal) and of its reference."""
    noisy, reference = read_image(SAMPLES / "sample_render.exr"), read_image(SAMPLES / "sample_render_ref.exr")
    box = (slice(80, 176), slice(128, 256))
    layers = {name: layer[box] for name, layer in noisy.layers.items()}
    return make_image(noisy.pixels[box], None, noisy.meta, layers), reference.pixels[box]


@pytest.fixture(scope="module")
def registry():
    return ModelRegistry()


def restore(image, entry, **params):
    return run_job(restore_job(image, entry, params, device="cpu"))


def test_offered_beside_its_parts_but_never_the_default(registry):
    ids = [entry.id for entry in registry.ranked("render-denoise", ("albedo", "normal"))]
    assert registry.get("render-kprcan-oidn").source == "blend"
    assert "render-kprcan-oidn" in ids and "oidn-aov" in ids and hybrid.NETWORK_ID in ids
    assert registry.default_for("render-denoise").id == hybrid.NETWORK_ID
    manifest = registry.get("render-kprcan-oidn").manifest
    assert manifest.default_params() == {"network_share": hybrid.DEFAULT_SHARE}
    network_tile = registry.get(hybrid.NETWORK_ID).manifest.tile
    assert manifest.tile.overlap == max(network_tile.overlap, hybrid.OIDN_OVERLAP)  # read from its manifest
    assert (manifest.tile.alignment, manifest.tile.bytes_per_pixel) == (network_tile.alignment,
                                                                       network_tile.bytes_per_pixel)


def test_hidden_without_the_bundled_network(monkeypatch, tmp_path):
    monkeypatch.setattr(hybrid, "resources_dir", lambda: tmp_path)
    assert not builtin_engine("render-kprcan-oidn").available()
    assert "render-kprcan-oidn" not in ModelRegistry(folders=[])


def test_is_the_weighted_mean_of_the_network_and_oidn(crop, registry):
    image, _ = crop
    network = restore(image, registry.get(hybrid.NETWORK_ID)).image.pixels
    oidn = restore(image, registry.get("oidn-aov")).image.pixels
    entry = registry.get("render-kprcan-oidn")
    assert not np.allclose(network, oidn, rtol=0.05)  # the two really differ, so the checks below mean something
    for share, expected in ((0.0, oidn), (1.0, network), (0.4, 0.4 * network + 0.6 * oidn)):
        result = restore(image, entry, network_share=share)
        np.testing.assert_allclose(result.image.pixels, expected, rtol=1e-4, atol=1e-5)
    result = restore(image, entry)
    assert result.device.startswith("CPU") and "KPRCAN and OIDN" in result.device
    assert set(result.image.layers) == set(image.layers) and result.image.meta == image.meta


def test_beats_both_parts_on_the_sample(crop, registry):
    """What it is for: on the sample render the default blend has lower relMSE than either denoiser alone."""
    image, reference = crop
    errors = {model_id: relmse(restore(image, registry.get(model_id)).image.pixels, reference)
              for model_id in (hybrid.NETWORK_ID, "oidn-aov", "render-kprcan-oidn")}
    assert errors["render-kprcan-oidn"] < 0.97 * min(errors[hybrid.NETWORK_ID], errors["oidn-aov"]), errors


def test_cancel_stops_it(crop, registry):
    image, _ = crop
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        run_job(restore_job(image, registry.get("render-kprcan-oidn"), device="cpu", token=token))


def user_network(folder: Path, model_id: str = "shot-ft", **changes) -> Path:
    """The bundled AOV network copied into a user models folder as ``model_id`` (what a shot fine-tune leaves)."""
    import json
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    data = json.loads((ROOT / "resources" / "models" / f"{hybrid.NETWORK_ID}.json").read_text(encoding="utf-8"))
    data.update(id=model_id, name="My shot", file=f"{model_id}.onnx", **changes)
    shutil.copyfile(ROOT / "resources" / "models" / f"{hybrid.NETWORK_ID}.onnx", folder / f"{model_id}.onnx")
    (folder / f"{model_id}.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


def test_a_users_render_network_is_also_offered_blended_with_oidn(crop, registry, tmp_path):
    user = ModelRegistry(folders=[(user_network(tmp_path / "user"), "user")])
    entry = user.get("shot-ft" + hybrid.USER_SUFFIX)
    assert entry.source == "blend" and entry.manifest.display_name == "My shot + OIDN blend"
    assert entry.manifest.default_params() == {"network_share": hybrid.USER_SHARE}
    assert entry.manifest.tile.overlap == user.get("shot-ft").manifest.tile.overlap  # the network's reach
    assert user.default_for("render-denoise").id == "shot-ft"  # the network itself before its blend
    image, _ = crop
    network = restore(image, user.get("shot-ft")).image.pixels
    oidn = restore(image, registry.get("oidn-aov")).image.pixels
    result = restore(image, entry, network_share=0.7)
    np.testing.assert_allclose(result.image.pixels, 0.7 * network + 0.3 * oidn, rtol=1e-4, atol=1e-5)
    assert "My shot and OIDN" in result.device
    # only networks that take what OIDN takes, and only the user's (the bundled one has its own blend)
    with_depth = ModelRegistry(folders=[(user_network(tmp_path / "d", "depth-ft",
                                                      inputs=["color", "albedo", "normal", "depth"]), "user")])
    assert "depth-ft" in with_depth and "depth-ft" + hybrid.USER_SUFFIX not in with_depth
    assert hybrid.NETWORK_ID + hybrid.USER_SUFFIX not in registry
    assert "shot-ft" + hybrid.USER_SUFFIX not in ModelRegistry(folders=[(tmp_path / "user", "user")],
                                                               include_classical=False)


def test_a_users_colour_only_network_is_blended_with_oidn_on_the_colour_alone(crop, registry, tmp_path):
    import json
    import shutil

    folder = tmp_path / "user"
    folder.mkdir()
    data = json.loads((ROOT / "resources" / "models" / "render-kprcan-color.json").read_text(encoding="utf-8"))
    data.update(id="col-ft", name="Colour shot", file="col-ft.onnx")
    shutil.copyfile(ROOT / "resources" / "models" / "render-kprcan-color.onnx", folder / "col-ft.onnx")
    (folder / "col-ft.json").write_text(json.dumps(data), encoding="utf-8")
    user = ModelRegistry(folders=[(folder, "user")])
    entry = user.get("col-ft" + hybrid.USER_SUFFIX)
    assert entry.manifest.inputs == ("color",) and "colour alone" in entry.manifest.description
    image, _ = crop
    network = restore(image, user.get("col-ft")).image.pixels
    oidn = restore(image, registry.get("oidn")).image.pixels  # OIDN colour only
    result = restore(image, entry, network_share=0.5)
    np.testing.assert_allclose(result.image.pixels, 0.5 * network + 0.5 * oidn, rtol=1e-4, atol=1e-5)
