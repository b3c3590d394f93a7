"""The device round (scripts/device/): what its Mitsuba pack keeps, how it picks a variant, and one whole round,
tiny, on this machine's CPU (render, pairs, training on the grown recipe, the files it brings back)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "device" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pack_keeps_the_rgb_variants_and_the_generators_plugins(tmp_path):
    pack = _load("pack_mitsuba")
    site = tmp_path / "site"
    names = [
        "mitsuba/__init__.py", "mitsuba/libmitsuba.so", "mitsuba/libembree3.so",
        "mitsuba/cuda_ad_rgb.cpython-312-x86_64-linux-gnu.so", "mitsuba/llvm_ad_rgb.cpython-312-x86_64-linux-gnu.so",
        "mitsuba/scalar_rgb.cpython-312-x86_64-linux-gnu.so",
        "mitsuba/cuda_ad_spectral.cpython-312-x86_64-linux-gnu.so",
        "mitsuba/llvm_ad_mono.cpython-312-x86_64-linux-gnu.so",
        "mitsuba/plugins/path.so", "mitsuba/plugins/aov.so", "mitsuba/plugins/roughdielectric.so",
        "mitsuba/plugins/volpathmis.so", "mitsuba/plugins/sunsky.so",
        "mitsuba/data/srgb.coeff", "mitsuba/data/ior/gold.eta.spd", "mitsuba/include/mitsuba/core.h", "mitsuba/ad.pyi",
        "drjit/__init__.py", "drjit/libdrjit-core.so", "drjit/include/drjit/array.h",
    ]
    for name in names:
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(name.encode())
    out = tmp_path / "m.tar.xz"
    pack.pack(pack._members_from_site(site), out)
    with tarfile.open(out) as tar:
        kept = set(tar.getnames())
        assert tar.extractfile("mitsuba/plugins/path.so").read() == b"mitsuba/plugins/path.so"
    assert kept == {
        "mitsuba/__init__.py", "mitsuba/libmitsuba.so", "mitsuba/libembree3.so",
        "mitsuba/cuda_ad_rgb.cpython-312-x86_64-linux-gnu.so", "mitsuba/llvm_ad_rgb.cpython-312-x86_64-linux-gnu.so",
        "mitsuba/scalar_rgb.cpython-312-x86_64-linux-gnu.so",
        "mitsuba/plugins/path.so", "mitsuba/plugins/aov.so", "mitsuba/plugins/roughdielectric.so",
        "mitsuba/data/ior/gold.eta.spd", "drjit/__init__.py", "drjit/libdrjit-core.so",
    }


def test_variant_preference_comes_from_the_environment(monkeypatch):
    from engine.render_data import mitsuba_backend as backend

    monkeypatch.delenv(backend.VARIANTS_ENV, raising=False)
    assert backend.variant_preference() == backend.DEFAULT_VARIANTS
    monkeypatch.setenv(backend.VARIANTS_ENV, " cuda_ad_rgb, llvm_ad_rgb ,,")
    assert backend.variant_preference() == ("cuda_ad_rgb", "llvm_ad_rgb")


def test_a_variant_that_cannot_render_here_is_skipped():
    pytest.importorskip("mitsuba")
    # A fresh process: the variant is process-wide. No CUDA here, so the CUDA variant must give way.
    code = ("from engine.render_data import mitsuba_backend as m; "
            "print(m.set_variant(1))")
    env = dict(os.environ, RS_MITSUBA_VARIANTS="cuda_ad_rgb,scalar_rgb")
    def run():
        return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)

    result = run()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "scalar_rgb"
    env["RS_MITSUBA_VARIANTS"] = "cuda_ad_rgb"
    result = run()
    assert result.returncode != 0 and "no usable Mitsuba variant (tried: cuda_ad_rgb)" in result.stderr


def test_a_tiny_round_renders_trains_and_brings_back_six_files(tmp_path):
    pytest.importorskip("mitsuba")
    out, work = tmp_path / "out", tmp_path / "work"
    override = {"data": {"patch_size": 32, "val_crop": 32}, "train": {"batch_size": 2, "val_every": 10,
                                                                      "checkpoint_every": 10}}
    command = [sys.executable, "scripts/device/render_round.py", "--out", str(out), "--work", str(work),
               "--device", "cpu", "--minutes", "0.8", "--procs", "1", "--val-scenes", "1", "--size", "32x32",
               "--ref-spp", "16", "--override", json.dumps(override), "--variants", "llvm_ad_rgb,scalar_rgb"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    info = json.loads((out / "round.json").read_text(encoding="utf-8"))
    assert sorted(info["files"]) == ["best.pt", "last.pt", "recipe.toml", "render.log", "round.json", "train.log"]
    assert info["scenes"]["val"] == 1 and info["scenes"]["train0"] >= 1
    assert info["train_pairs"] == 4 * info["scenes"]["train0"] and info["val_pairs"] == 4
    assert info["seconds"] < 0.8 * 60 + 15  # the budget holds (the last checkpoint and copies after it)
    import torch

    weights = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    # the device recipe's grown model: 8 blocks and a context branch, trained on the round's own pairs
    assert weights["config"]["blocks"] == 8 and weights["config"]["context_blocks"] == 2
    recipe = (out / "recipe.toml").read_text(encoding="utf-8")
    assert str(work / "pairs" / "input") in recipe and "render_kprcan_aov_device.toml" in recipe


def test_a_round_that_cannot_have_its_variant_stops_before_rendering(tmp_path):
    pytest.importorskip("mitsuba")
    out = tmp_path / "out"
    command = [sys.executable, "scripts/device/render_round.py", "--out", str(out), "--work", str(tmp_path / "w"),
               "--device", "cpu", "--variants", "cuda_ad_rgb,scalar_rgb", "--require-variant", "cuda_ad_rgb"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    info = json.loads((out / "round.json").read_text(encoding="utf-8"))
    assert info["variant"] == "scalar_rgb" and info["stopped"] == "variant scalar_rgb, not cuda_ad_rgb"
    assert "render" not in info["steps"] and not (tmp_path / "w" / "sets").exists()


def test_large_pair_sets_are_read_by_worker_processes_in_order(tmp_path, monkeypatch):
    from engine.training import datasets as ds

    cv2 = pytest.importorskip("cv2")
    pairs = []
    for i in range(6):
        rng = np.random.default_rng(i)
        a, b = tmp_path / f"{i}_in.png", tmp_path / f"{i}_ref.png"
        cv2.imwrite(str(a), rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
        cv2.imwrite(str(b), rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
        pairs.append((a, b))
    serial = list(ds._read_pairs(pairs, []))
    monkeypatch.setattr(ds, "PARALLEL_READ_PAIRS", 2)
    monkeypatch.setattr(ds.os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    parallel = list(ds._read_pairs(pairs, []))
    assert len(parallel) == 6
    for (a_in, a_ref, _), (b_in, b_ref, _) in zip(serial, parallel, strict=True):
        assert np.array_equal(a_in, b_in) and np.array_equal(a_ref, b_ref)
