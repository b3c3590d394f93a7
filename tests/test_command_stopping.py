"""A farm manager's SIGTERM stops ``batch`` and the shot ``restore`` as Ctrl+C does (engine/commands/stopping.py):
exit 130, the frames written stay whole, the same command resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.commands.stopping import sigterm_as_ctrl_c
from engine.image import make_image
from engine.imageio import read_image, write_image

ROOT = Path(__file__).resolve().parent.parent


def test_sigterm_raises_keyboard_interrupt_inside_the_block_only():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_ctrl_c():
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs as soon as os.kill returns
    assert signal.getsignal(signal.SIGTERM) is before


def test_off_the_main_thread_nothing_changes():
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def run():
        with sigterm_as_ctrl_c():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [before]


def test_a_shot_stopped_by_sigterm_keeps_its_finished_frames_and_resumes(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    for frame in range(1, 61):
        write_image(tmp_path / "in" / f"plate.{frame:04d}.png", make_image(rng.random((160, 240, 3), np.float32)))
    args = [sys.executable, str(ROOT / "main.py"), "restore", "in/plate.####.png", "-o", "out/plate.####.png",
            "--model", "nlm", "--set", "noise_level=10"]
    process = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:  # the second finished frame, then the farm manager stops the task
        if line.startswith("frame 2 (2/60) ->"):
            break
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    written = sorted((tmp_path / "out").iterdir())
    assert 2 <= len(written) < 60 and all(p.suffix == ".png" for p in written)  # no partial files
    assert f"interrupted: {len(written)} frame(s) restored and kept" in err
    for path in written:
        assert read_image(path).pixels.shape == (160, 240, 3)
    resumed = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{60 - len(written)} restored, {len(written)} skipped, 0 failed of 60 frames" in resumed.stderr
