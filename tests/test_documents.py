"""Document restoration: Restormer (shapes, value range, export parity), synthetic pages, classical cleaner, split."""

from __future__ import annotations

import numpy as np
import pytest

from engine.documents import classical, synth
from engine.documents.dataset import VALIDATION_IDS
from engine.metrics import pooled_rmse

TINY = {"dim": 4, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1, "heads": [1, 1, 1, 1]}


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTORATION_STUDIO_HOME", str(tmp_path / "home"))


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models run fastest on one thread, and far faster than with two on a busy machine."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------------- Restormer


@pytest.mark.parametrize("options", [{}, {"prior": "background", "stem_unshuffle": 2}])
@pytest.mark.parametrize("size", [(37, 53), (8, 8), (64, 24)])
def test_restormer_keeps_any_size_through_padding(options, size):
    torch = pytest.importorskip("torch")
    from engine.training.archs.restormer import build_restormer, restore_padded

    model = build_restormer("tiny", channels=1, **TINY, **options).eval()
    x = torch.rand(1, 1, *size)
    with torch.no_grad():
        y = restore_padded(model, x)
    assert y.shape == x.shape
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_restormer_rejects_unaligned_sizes_and_counts_alignment():
    torch = pytest.importorskip("torch")
    from engine.training.archs.restormer import build_restormer

    assert build_restormer("tiny", **TINY).alignment == 8
    model = build_restormer("tiny", **TINY, stem_unshuffle=2)
    assert model.alignment == 16
    with pytest.raises(RuntimeError):
        model(torch.rand(1, 1, 24, 24))


def test_restormer_starts_as_its_residual_base_and_learns():
    """Zero-initialised output: an untrained model returns the input (no prior) or the flattened page (prior);
    one optimiser step moves it. Eval clamps to [0, 1], training does not (gradients for overshoots)."""
    torch = pytest.importorskip("torch")
    from engine.training.archs.restormer import BackgroundPrior, build_restormer

    torch.manual_seed(0)
    x = torch.rand(2, 1, 32, 32)
    plain = build_restormer("tiny", **TINY).eval()
    with torch.no_grad():
        assert torch.allclose(plain(x), x)
    prior = build_restormer("tiny", **TINY, prior="background", prior_radius=2).eval()
    with torch.no_grad():
        assert torch.allclose(prior(x), BackgroundPrior(2, (0.15, 0.9))(x))
    plain.train()
    optimizer = torch.optim.AdamW(plain.parameters(), lr=1e-2)
    loss = (plain(x) - 0.5 * x).abs().mean()
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        assert not torch.allclose(plain(x), x)
        assert float(plain.eval()(x * 3).max()) <= 1.0


def test_background_prior_flattens_a_shaded_page():
    torch = pytest.importorskip("torch")
    from engine.training.archs.restormer import BackgroundPrior

    ramp = torch.linspace(0.4, 0.9, 64).reshape(1, 1, 1, 64).expand(1, 1, 64, 64).clone()
    page = ramp.clone()
    page[..., 30:33, 10:50] *= 0.2  # a 3-pixel stroke
    with torch.no_grad():
        flat = BackgroundPrior(3)(page)
    background = torch.ones_like(page, dtype=torch.bool)
    background[..., 28:35, :] = False
    assert float((flat[background] - 1).abs().max()) < 0.08  # the closing of a ramp lags by its radius
    assert float(flat[..., 31, 20:40].max()) < 0.3


def test_restormer_exports_with_parity(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from engine.training.archs import ARCHITECTURES, build_model
    from engine.training.export import build_manifest, export_model

    config = dict(ARCHITECTURES["restormer"].tiny, prior="background", stem_unshuffle=2)
    model = build_model("restormer", config).eval()
    manifest = build_manifest(model, model_id="doc-test", task="document")
    assert manifest.channels == 1 and manifest.tile.alignment == 16 and manifest.tile.overlap >= 16
    result = export_model(model, manifest, tmp_path, arch="restormer", arch_config=config, trace_size=32)
    assert result.parity_error <= 1e-4
    assert result.onnx_path.is_file()


# ------------------------------------------------------------------------------------------ synthetic


def test_synthetic_pages_are_deterministic_and_degraded():
    noisy, clean = synth.synth_pair(5, 96, 128)
    again_noisy, again_clean = synth.synth_pair(5, 96, 128)
    other_noisy, _ = synth.synth_pair(6, 96, 128)
    assert noisy.shape == clean.shape == (96, 128) and noisy.dtype == np.float32
    assert np.array_equal(noisy, again_noisy) and np.array_equal(clean, again_clean)
    assert not np.array_equal(noisy, other_noisy)
    assert 0.0 <= noisy.min() and noisy.max() <= 1.0 and 0.0 <= clean.min() and clean.max() <= 1.0
    assert clean.max() == 1.0 and clean.min() < 0.5, "a clean page is white paper with dark ink"
    assert pooled_rmse([(noisy, clean)]) > 0.03, "the noisy page must differ visibly from the clean one"


@pytest.mark.parametrize(
    "field", [synth.uneven_lighting, synth.shadow, synth.stains, synth.coffee_rings, synth.folds, synth.crumples]
)
def test_each_background_degradation_is_a_seeded_multiplicative_field(field):
    a = field(np.random.default_rng(3), (40, 50))
    b = field(np.random.default_rng(3), (40, 50))
    assert a.shape == (40, 50) and np.array_equal(a, b)
    assert np.all(np.isfinite(a)) and a.min() > 0.0 and abs(float(a.mean()) - 1.0) < 0.5
    assert float(a.std()) > 1e-4, "a degradation that changes nothing"


def test_ink_and_sensor_degradations():
    rng = np.random.default_rng(0)
    ink = np.zeros((32, 32), np.float32)
    ink[10:20, 5:25] = 1.0
    faded = synth.low_ink(rng, ink)
    assert faded.max() <= 1.0 and faded[10:20, 5:25].mean() < 0.95 and faded[:8].max() == 0.0
    page = np.full((32, 32), 0.8, np.float32)
    assert synth.add_noise(rng, page).std() > 0.001
    assert synth.jpeg(rng, page).shape == page.shape
    assert synth.bleed_through(rng, ink).min() < 1.0


# ------------------------------------------------------------------------------------------ classical


def test_classical_cleaner_lowers_rmse_on_a_synthetic_page():
    noisy, clean = synth.synth_pair(11, 160, 200)
    before = pooled_rmse([(noisy, clean)])
    for method in classical.METHODS:
        out = classical.clean_page(noisy, method)
        assert out.shape == noisy.shape and out.dtype == np.float32
    soft = classical.clean_page(noisy, "soft")
    assert pooled_rmse([(soft, clean)]) < 0.7 * before


def test_classical_engine_is_registered_for_documents():
    from engine.models.builtin import builtin_engine

    engine = builtin_engine("document-background")
    assert engine.manifest.task == "document" and engine.manifest.channels == 1
    noisy, _ = synth.synth_pair(2, 64, 64)
    params = engine.manifest.resolve_params({"method": "sauvola"})
    out = engine.run({"color": noisy[:, :, None]}, params)
    assert out.shape == (64, 64, 1) and set(np.unique(out)) <= {0.0, 1.0}


# ------------------------------------------------------------------------------------------ data split


def test_prepare_keeps_validation_pages_out_of_training(tmp_path):
    pytest.importorskip("cv2")
    import cv2

    from engine.documents.prepare import prepare

    root = tmp_path / "documents"
    (root / "train").mkdir(parents=True)
    (root / "train_cleaned").mkdir()
    ids = [VALIDATION_IDS[0], VALIDATION_IDS[1], 1, 2, 3]
    for page_id in ids:
        for folder in ("train", "train_cleaned"):
            cv2.imwrite(str(root / folder / f"{page_id}.png"), np.full((16, 16), 200, np.uint8))
    counts = prepare(tmp_path / "out", synthetic=2, real_repeat=2, root=root)
    assert counts == {"real_train": 3, "real_repeat": 2, "validation": 2, "synthetic": 2}
    train_names = sorted(p.name for p in (tmp_path / "out" / "input").iterdir())
    assert not any(f"real_{VALIDATION_IDS[0]}_" in name for name in train_names)
    assert sorted(p.name for p in (tmp_path / "out" / "val_input").iterdir()) == sorted(
        f"{i}.png" for i in VALIDATION_IDS[:2]
    )
    assert len(train_names) == 3 * 2 + 2
