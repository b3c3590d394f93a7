"""The foreign-set benchmark (bench/render_foreign.py): case discovery, scoring and the summary it reports."""

from __future__ import annotations

import numpy as np
import pytest

from bench.render_foreign import PEER, evaluate, foreign_cases, summarise
from engine.image import make_image
from engine.imageio import read_image, write_image
from engine.metrics import relmse, tonemapped_psnr


def _write(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, make_image(pixels.astype(np.float32)))


@pytest.fixture()
def foreign_set(tmp_path):
    rng = np.random.default_rng(3)
    clean = {}
    for scene in ("alpha", "beta"):
        clean[scene] = rng.uniform(0.05, 2.0, (12, 16, 3)).astype(np.float32)
        _write(tmp_path / scene / "ref1024.exr", clean[scene])
        for spp, sigma in ((4, 0.4), (16, 0.2)):
            noisy = clean[scene] + rng.normal(0, sigma, clean[scene].shape)
            _write(tmp_path / scene / f"spp{spp:04d}.exr", noisy)
    _write(tmp_path / "unfinished" / "spp0004.exr", clean["alpha"])  # no reference yet: left out
    return tmp_path, clean


def test_foreign_cases_pairs_every_noisy_render_with_its_scene_reference(foreign_set):
    folder, _ = foreign_set
    cases = foreign_cases(folder)
    assert [(c["scene"], c["spp"]) for c in cases] == [("alpha", 4), ("alpha", 16), ("beta", 4), ("beta", 16)]
    assert all(c["reference_path"].name == "ref1024.exr" and c["ref_spp"] == 1024 for c in cases)


def test_evaluate_scores_the_noisy_input_with_engine_metrics(foreign_set):
    folder, _ = foreign_set
    rows = evaluate(foreign_cases(folder), [], log=lambda text: None)
    assert len(rows) == 4 and {r["method"] for r in rows} == {"noisy"}
    noisy = np.asarray(read_image(folder / "beta" / "spp0016.exr").pixels)
    reference = np.asarray(read_image(folder / "beta" / "ref1024.exr").pixels)
    row = next(r for r in rows if r["scene"] == "beta" and r["spp"] == 16)
    assert row["rel_mse"] == pytest.approx(relmse(noisy, reference))
    assert row["psnr"] == pytest.approx(tonemapped_psnr(noisy, reference))
    assert next(r for r in rows if r["scene"] == "beta" and r["spp"] == 4)["rel_mse"] > row["rel_mse"]


def _row(method, scene, spp, rel_mse, psnr):
    return {"method": method, "scene": scene, "spp": spp, "ref_spp": 1024, "rel_mse": rel_mse, "psnr": psnr,
            "seconds": 0.1}


def test_summary_geometric_mean_of_ratios_wins_and_do_no_harm():
    rows = [_row("noisy", "a", 16, 0.1, 30.0), _row("noisy", "b", 16, 0.2, 28.0),
            _row(PEER, "a", 16, 0.01, 35.0), _row(PEER, "b", 16, 0.04, 33.0),
            _row("ours", "a", 16, 0.02, 29.0), _row("ours", "b", 16, 0.01, 34.0)]
    text, summary = summarise(rows, {PEER: "OIDN + AOVs", "ours": "Ours"})
    ours = summary["ours"]["16"]
    assert ours["geo_ratio"] == pytest.approx(np.sqrt(2.0 * 0.25))  # ratios 2 and 1/4
    assert ours["wins"] == 1 and ours["scenes"] == 2
    assert ours["worst_dpsnr"] == pytest.approx(-1.0)  # scene a: 29 against the noisy input's 30
    assert summary[PEER]["16"]["geo_ratio"] == pytest.approx(1.0)
    assert summary["noisy"]["16"]["geo_ratio"] == pytest.approx(np.sqrt(10 * 5))
    assert "| Ours (`ours`) | 0.707, 1/2, -1.00 |" in text
    assert "0.0200 (2.00x) / 29.0 (-1.0)" in text


def test_reference_noise_estimate_scales_the_noisy_inputs_error_by_sample_counts():
    from bench.render_foreign import reference_noise

    rows = [_row("noisy", "a", 16, 0.4, 20.0), _row("noisy", "a", 64, 0.1, 25.0), _row(PEER, "a", 64, 0.02, 30.0)]
    noise = reference_noise(rows)["a"]
    assert noise["spp"] == 64 and noise["estimate"] == pytest.approx(0.1 * 64 / 1024)
    assert noise["share_of_peer"] == pytest.approx(0.1 * 64 / 1024 / 0.02)
