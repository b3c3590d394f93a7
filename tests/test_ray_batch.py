"""Batch restoration on a real Ray cluster (issue 49, part 2).

The cluster is two Ray nodes on this machine, a head and a second node, each with one CPU, started with
``ray start`` by the fixture and stopped after (by their own process groups, never ``ray stop``, which would end
every Ray process of the user). The driver is the real command line, ``main.py batch --ray HOST:PORT``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from engine import batch
from engine.cli import main as cli
from engine.image import ImageMeta, make_image
from engine.imageio import read_image, write_image
from engine.paths import user_models_dir
from tests.onnx_factory import install

ROOT = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).with_name("ray")


def test_ray_stays_out_of_the_app_imports():
    code = ("import sys; import engine.cli, engine.batch, engine.commands.batch_cmd; engine.cli.build_parser(); "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_missing_ray_is_one_clear_line(tmp_path, monkeypatch, capsys):
    install(user_models_dir(), "tiny")
    write_image(tmp_path / "a.png", make_image(np.zeros((8, 8, 3), np.float32), None, ImageMeta(format="png")))
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as where it is not installed
    assert cli(["batch", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--ray", "auto",
                "--model", "tiny"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install ray==" in err and "optional" in err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the Ray head did not open port {port}")


def _our_leftovers(marker: str) -> list[int]:
    """Processes whose command line names this cluster's own temp folder (ours, whatever group they are in)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.fixture(scope="module")
def ray_cluster():
    if not RAY.exists():
        pytest.skip("Ray is not installed (pip install -r requirements-dev.txt)")
    temp = tempfile.mkdtemp(prefix="rsray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    port = _free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    common = ["--num-cpus", "1", "--temp-dir", temp, "--block", "--disable-usage-stats"]
    nodes = []
    try:
        nodes.append(subprocess.Popen([str(RAY), "start", "--head", "--port", str(port), "--include-dashboard=false",
                                       *common], env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        _wait_for_port(port, time.monotonic() + 90)
        nodes.append(subprocess.Popen([str(RAY), "start", "--address", f"127.0.0.1:{port}", *common], env=env,
                                      start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield {"address": f"127.0.0.1:{port}"}
    finally:
        for node in reversed(nodes):
            try:
                os.killpg(node.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 6  # then SIGKILL: the head's GCS sometimes ignores SIGTERM
        for node in nodes:
            try:
                node.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(node.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(1)
        for pid in _our_leftovers(temp):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(temp, ignore_errors=True)


def _frames(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for frame in range(1, count + 1):
        pixels = np.random.default_rng(frame).random((96, 128, 3)).astype(np.float32)
        write_image(folder / f"f.{frame:04d}.png", make_image(pixels, None, ImageMeta(format="png", bit_depth=16)))


@pytest.mark.slow
@pytest.mark.timeout(280)
def test_ray_cluster_run_survives_a_killed_worker(tmp_path, ray_cluster):
    """Two nodes, two actors; one actor's process is SIGKILLed midway. Every frame is reported exactly once as
    done, every output exists and equals the local run's bytes, and no partial file is left."""
    count = 24
    install(user_models_dir(), "tiny", build={"layers": 4, "width": 8})
    _frames(tmp_path / "in", count)
    reference = batch.plan([str(tmp_path / "in/f.####.png")], str(tmp_path / "ref"))
    options = batch.BatchOptions(model_id="tiny", tile=32, device="cpu")
    assert list(batch.run_local(reference, options))[-1]["exit_code"] == 0

    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")  # this test's models folder
    args = [sys.executable, str(ROOT / "main.py"), "batch", "in/f.####.png", "-o", "out/", "--model", "tiny",
            "--tile", "32", "--device", "cpu", "--progress", "json", "--ray", ray_cluster["address"],
            "--workers", "2", "--retries", "2"]
    driver = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    events, killed = [], None
    try:
        for line in driver.stdout:
            record = json.loads(line)
            events.append(record)
            if record["event"] == "done" and killed is None:
                killed = int(record["worker"].rsplit(":", 1)[1])
                os.kill(killed, signal.SIGKILL)  # the actor process, with its next file already in hand
        driver.wait(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    stderr = driver.stderr.read()
    assert driver.returncode == 0, stderr[-2000:]
    assert killed is not None
    start, finish = events[0], events[-1]
    assert start["event"] == "start" and start["backend"] == "ray" and start["workers"] == 2
    assert finish["event"] == "finish" and (finish["done"], finish["failed"]) == (count, 0)
    done = [e for e in events if e["event"] == "done"]
    assert sorted(e["frame"] for e in done) == list(range(1, count + 1))  # each exactly once
    retries = [e for e in events if e["event"] == "retry"]
    assert retries and all("worker was lost" in e["reason"] for e in retries)
    assert len({e["worker"] for e in done}) >= 2  # both nodes' actors (and the replacement) worked
    outputs = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in outputs] == [f"f.{i:04d}.png" for i in range(1, count + 1)]  # nothing partial
    for path in outputs:
        assert path.read_bytes() == (tmp_path / "ref" / path.name).read_bytes(), path.name
    assert read_image(outputs[0]).meta.bit_depth == 16
