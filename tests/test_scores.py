from engine.models.scores import headline_scores


def test_headline_scores_are_readable_and_skip_unknown_keys():
    render = {"cbox256_spp1_relmse": 0.017, "cbox256_spp4_relmse": 0.00672, "cbox256_spp4_psnr_tonemapped": 31.9,
              "cbox256_spp16_relmse": 0.004816, "generated_spp4_relmse": 0.0077, "benchmark": "bench/results/x.md"}
    assert headline_scores(render) == ["Cornell box 4 spp: relMSE 0.0067", "Cornell box 16 spp: relMSE 0.0048"]
    photo = {"val_psnr": 29.48, "kodak24_sigma15_psnr": 33.61, "kodak24_sigma25_psnr": 31.06}
    assert headline_scores(photo) == ["Kodak24 \u03c315: 33.61 dB", "Kodak24 \u03c325: 31.06 dB"]
    docs = {"documents_val16_rmse_tile_whole_page_overlap_48": 0.03037, "documents_val16_rmse_tile_512": 0.0304}
    assert headline_scores(docs) == ["Dirty Documents (16 held-out pages): RMSE 0.0304"]
    assert headline_scores({"val_psnr": 31.2}) == ["validation PSNR 31.20 dB (training's own split)"]
    assert headline_scores({"mystery": 1.0}) == []


def test_render_scores_lead_with_the_foreign_set():
    """A render model's card says first how it does on scenes no training saw, against OIDN, not its Cornell box."""
    render = {"cbox256_spp4_relmse": 0.00104, "foreign_spp4_ratio_oidn_aov": 1.217, "foreign_spp4_wins": 3,
              "foreign_spp64_ratio_oidn_aov": 2.569}
    assert headline_scores(render) == [
        "Unseen Blender scenes, 4 spp: 1.22x the error of OIDN + AOVs",
        "Unseen Blender scenes, 64 spp: 2.57x the error of OIDN + AOVs",
        "Cornell box 4 spp: relMSE 0.0010"]
