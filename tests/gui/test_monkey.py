"""GUI monkey test: 500 seeded random user actions on small images with tiny models, offscreen, without a crash.

Actions: open (good, odd and corrupt files, sometimes several at once), pick a model, run, cancel (also
moments after a run), save (to every
format, sometimes over the original, which must be refused), switch compare modes, swap A/B, zoom, pan, exposure,
tone map, hover, keys, load/clear a reference, resize, dismiss dialogs. pytest-qt fails the test on any exception
raised inside a Qt slot; at the end the window must still work and every job must have ended.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from bench.malformed import build_corpus
from engine.image import ImageMeta, make_image
from engine.imageio import read_image, write_image
from engine.paths import user_models_dir
from gui import background
from gui.app import build_window
from tests.onnx_factory import install

ACTIONS = 500
SEED = int(os.environ.get("RS_MONKEY_SEED", "2026"))
MODELS = ("tiny-denoise", "tiny-slow", "tiny-sr2", "nlm", "bicubic-x2", "photo-denoise-color")


def _images(folder: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir()
    files = []
    for index, (ext, meta, alpha, channels) in enumerate([
        ("png", ImageMeta(bit_depth=8), False, 3),
        ("png", ImageMeta(bit_depth=16), True, 3),
        ("tif", ImageMeta(bit_depth=8, gray=True), False, 1),
        ("jpg", ImageMeta(bit_depth=8), False, 3),
        ("exr", ImageMeta(format="exr", bit_depth=32, hdr=True, color_space="linear"), False, 3),
        ("png", ImageMeta(bit_depth=8), False, 3),
    ]):
        height, width = (24, 40) if index % 2 else (32, 32)
        pixels = rng.random((height, width, channels), dtype=np.float32) * (4 if meta.hdr else 1)
        a = rng.random((height, width), dtype=np.float32) if alpha else None
        files.append(write_image(folder / f"image{index}.{ext}", make_image(pixels, a, meta)))
    corrupt = [path for path, _words in build_corpus(folder / "bad")][::6]
    return files + corrupt


@pytest.mark.timeout(180)
def test_500_random_actions_without_a_crash(qtbot, tmp_path):
    install(user_models_dir(), "tiny-denoise", build={"layers": 3, "noise_input": True},
            params=[{"name": "noise_level", "type": "float", "default": 25, "min": 0, "max": 75}])
    install(user_models_dir(), "tiny-slow", build={"layers": 12, "width": 96})  # ~0.1 s: long enough to cancel
    install(user_models_dir(), "tiny-sr2", task="super-resolution", build={"layers": 2, "scale": 2})
    files = _images(tmp_path / "images")
    good = [path for path in files if "bad" not in str(path)]
    originals = {path: path.read_bytes() for path in good}
    window = build_window([])
    qtbot.addWidget(window)
    qtbot.waitExposed(window)
    window.refresh_models()
    jobs: dict[str, list[str]] = {"succeeded": [], "cancelled": [], "failed": []}
    window.runner.succeeded.connect(lambda result: jobs["succeeded"].append(result.model_id))
    window.runner.cancelled.connect(lambda: jobs["cancelled"].append(""))
    window.runner.failed.connect(lambda message, details: jobs["failed"].append(message))
    rng = np.random.default_rng(SEED)
    saves = tmp_path / "saves"
    saves.mkdir()
    counts: dict[str, int] = {}

    def pick(sequence):
        return sequence[int(rng.integers(len(sequence)))]

    def open_one():
        window.open_paths([str(pick(files))])

    def open_several():
        window.open_paths([str(p) for p in rng.choice(files, size=3, replace=False)])

    def choose_model():
        window.model_panel.select("model", pick(MODELS))

    def save():
        ext = pick(["png", "tif", "exr", "jpg", "webp", "hdr"])
        window.save_result(saves / f"save{counts.get('save', 0)}.{ext}", wait=bool(rng.integers(2)))

    def save_over_original():
        if window.session.original_path is not None:
            window.save_result(window.session.original_path, wait=True)  # the confirmation answers Cancel

    def zoom():
        pick([window.viewer.zoom_in, window.viewer.zoom_out, window.viewer.zoom_fit, window.viewer.zoom_1to1])()

    def keys():
        QTest.keyClick(window.viewer, pick([Qt.Key.Key_F, Qt.Key.Key_1, Qt.Key.Key_Plus, Qt.Key.Key_Minus,
                                            Qt.Key.Key_X, Qt.Key.Key_E, Qt.Key.Key_Space, Qt.Key.Key_Escape]))

    def reference():
        if rng.integers(2):
            window.load_reference(str(pick(files)))
        else:
            window.clear_reference()

    def run_then_cancel():
        window.run_current()
        qtbot.wait(int(rng.integers(0, 40)))
        window.cancel_job()

    def dismiss():
        dialog = getattr(window, "last_error_dialog", None)
        if dialog is not None:
            dialog.close()

    actions = {
        "open": (open_one, 8),
        "open several": (open_several, 1),
        "model": (choose_model, 8),
        "run": (window.run_current, 14),
        "cancel": (window.cancel_job, 6),
        "run then cancel": (run_then_cancel, 5),
        "save": (save, 5),
        "save over original": (save_over_original, 1),
        "mode": (lambda: window.set_mode(pick(list(window.mode_actions))), 8),
        "swap": (window.compare_bar.swap, 3),
        "zoom": (zoom, 8),
        "pan": (lambda: window.viewer.pan_by(float(rng.normal(0, 30)), float(rng.normal(0, 30))), 4),
        "exposure": (lambda: window.compare_bar.set_exposure(float(rng.uniform(-4, 4))), 3),
        "hover": (lambda: window.viewer.hovered.emit(int(rng.integers(-2, 50)), int(rng.integers(-2, 50))), 5),
        "keys": (keys, 4),
        "reference": (reference, 2),
        "resize": (lambda: window.resize(int(rng.integers(500, 1400)), int(rng.integers(400, 900))), 2),
        "dismiss dialog": (dismiss, 4),
    }
    names = list(actions)
    weights = np.array([actions[n][1] for n in names], float)
    weights /= weights.sum()
    started = time.monotonic()
    for _ in range(ACTIONS):
        name = names[int(rng.choice(len(names), p=weights))]
        counts[name] = counts.get(name, 0) + 1
        actions[name][0]()
        qtbot.wait(int(rng.integers(0, 25)))  # the event loop runs between actions, as between clicks
    window.cancel_job()
    qtbot.waitUntil(lambda: not window.runner.is_running(), timeout=15_000)
    assert background.wait_idle(15_000)
    qtbot.wait(50)
    elapsed = time.monotonic() - started
    outcomes = {k: len(v) for k, v in jobs.items()}
    print(f"monkey: {ACTIONS} actions in {elapsed:.1f} s; jobs {outcomes}; actions {counts}; failures {jobs['failed']}")

    assert sum(counts.values()) == ACTIONS and counts["run"] > 20 and counts["cancel"] > 10
    assert outcomes["succeeded"] >= 5 and outcomes["cancelled"] >= 3, outcomes  # the storm really ran jobs
    assert not jobs["failed"], jobs["failed"]  # small valid images with suitable models must not fail
    assert window.isVisible() and not window.viewer.grab().toImage().isNull()
    for path, data in originals.items():
        assert path.read_bytes() == data, f"{path.name} was modified"
    for saved in saves.iterdir():  # whatever was saved is complete, and nothing half-written is left
        assert ".part" not in saved.name
        read_image(saved)
    # The app still does real work after the storm.
    with qtbot.waitSignal(window.imageOpened, timeout=10_000):
        window.open_paths([str(good[0])])
    window.model_panel.select("model", "nlm")
    before = len(window.session.results)
    with qtbot.waitSignal(window.resultAdded, timeout=15_000):
        window.run_current()
    assert len(window.session.results) == before + 1
    window.runner.wait(5)
    background.wait_idle(5000)
