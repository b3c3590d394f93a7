"""The farm templates in packaging/farm (issue 49, part 1): Deadline, OpenCue and Flamenco cannot run here, so
the exact command lines they build are run, chunk by chunk, as each farm would, and the frames compared with one
whole run of the shot."""

from __future__ import annotations

import importlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.image import ImageMeta, make_image
from engine.imageio import write_image
from engine.models.registry import file_sha256
from tests.onnx_factory import install

ROOT = Path(__file__).resolve().parent.parent
FARM = ROOT / "packaging" / "farm"
APP = f"{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'main.py'))}"
FRAMES, CHUNK = (1001, 1005), 3


@pytest.fixture
def farm_scripts(monkeypatch):
    monkeypatch.syspath_prepend(str(FARM))  # the scripts import farm_command from their own folder
    for name in ("farm_command", "submit_deadline", "submit_opencue"):
        sys.modules.pop(name, None)
    return importlib.import_module("submit_deadline"), importlib.import_module("submit_opencue")


@pytest.fixture(scope="module")
def shot_once(tmp_path_factory):
    """Five frames, the tiny model in a models folder of their own, and one whole run of the shot (made once)."""
    folder = tmp_path_factory.mktemp("shot")
    home = folder / "home"
    sha = file_sha256(install(home / "models", "tiny"))
    (folder / "in").mkdir()
    for frame in range(FRAMES[0], FRAMES[1] + 1):
        pixels = np.random.default_rng(frame).random((40, 60, 3)).astype(np.float32)
        write_image(folder / "in" / f"b.{frame:04d}.png", make_image(pixels, None, ImageMeta(format="png")))
    whole = subprocess.run([sys.executable, str(ROOT / "main.py"), "batch", "in/b.####.png", "-o", "whole/d.####.png",
                            "--model", "tiny", "--tile", "32", "--device", "cpu"], cwd=folder, capture_output=True,
                           text=True, timeout=240, env={**os.environ, "RESTORATION_STUDIO_HOME": str(home)})
    assert whole.returncode == 0, whole.stderr
    return folder, sha, home


@pytest.fixture
def shot(shot_once, monkeypatch):
    folder, sha, home = shot_once
    monkeypatch.setenv("RESTORATION_STUDIO_HOME", str(home))  # the farm's nodes see the shot's models folder
    return folder, sha


def run_tasks(commands: list[list[str]], cwd: Path) -> list[dict]:
    events = []
    for command in commands:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, (command, result.stderr[-1500:])
        events += [json.loads(line) for line in result.stdout.splitlines()]  # --progress json: only JSON on stdout
    return events


def assert_same_as_whole(folder: Path, out: str, events: list[dict]) -> None:
    done = sorted(e["frame"] for e in events if e["event"] == "done")
    assert done == list(range(FRAMES[0], FRAMES[1] + 1))
    for frame in done:
        name = f"d.{frame:04d}.png"
        assert (folder / out / name).read_bytes() == (folder / "whole" / name).read_bytes()


def common(out: str) -> list[str]:
    return ["in/b.####.png", f"{out}/d.%04d.png", "--frames", f"{FRAMES[0]}-{FRAMES[1]}", "--chunk", str(CHUNK),
            "--model", "tiny", "--tile", "32", "--device", "cpu", "--app", APP]


@pytest.mark.slow
def test_deadline_job_files_run_chunk_by_chunk(farm_scripts, shot):
    deadline, _ = farm_scripts
    folder, sha = shot
    args = deadline.parse_args([*common("deadline"), "--pool", "gpu"])
    model = deadline.pinned_model(args.model, deadline.app_argv(args.app))  # looked up with `models --json`
    assert model == f"tiny@sha256:{sha}"
    job, plugin = deadline.job_files(args, model)
    job_values = dict(line.split("=", 1) for line in job.splitlines())
    assert job_values["Plugin"] == "CommandLine" and job_values["ChunkSize"] == str(CHUNK)
    assert job_values["Frames"] == "1001-1005" and job_values["Pool"] == "gpu"
    assert "--frames <STARTFRAME>-<ENDFRAME>" in plugin and "--skip-existing" in plugin
    commands = [deadline.task_command(plugin, start, end) for start, end in deadline.chunks(*FRAMES, CHUNK)]
    assert [c[c.index("--frames") + 1] for c in commands] == ["1001-1003", "1004-1005"]
    assert_same_as_whole(folder, "deadline", run_tasks(commands, folder))
    # a re-queued task resumes: everything exists, nothing is redone
    again = run_tasks(commands[:1], folder)
    assert {e["event"] for e in again} == {"start", "skipped", "finish"}


@pytest.mark.slow
def test_opencue_layer_command_runs_chunk_by_chunk(farm_scripts, shot, capsys):
    _, opencue = farm_scripts
    folder, sha = shot
    args = opencue.parse_args([*common("opencue"), "--model", f"tiny@sha256:{sha}"])
    command = opencue.layer_command(args, args.model)
    assert "#FRAME_START#-#FRAME_END#" in command
    commands = [opencue.task_command(command, start, end) for start, end in opencue.chunks(*FRAMES, CHUNK)]
    assert_same_as_whole(folder, "opencue", run_tasks(commands, folder))
    assert opencue.main([*common("x"), "--model", f"tiny@sha256:{sha}", "--dry-run"]) == 0
    assert "task 1004-1005:" in capsys.readouterr().out


NODE_HARNESS = r"""
const fs = require("fs"), vm = require("vm");
const settings = JSON.parse(process.argv[3]);
function frameChunker(frames, size) {          // Flamenco's helper, for contiguous ranges
    const [a, b] = frames.split("-").map(Number), out = [];
    for (let s = a; s <= b; s += size) {
        const e = Math.min(s + size - 1, b);
        out.push(s === e ? `${s}` : `${s}-${e}`);
    }
    return out;
}
const tasks = [];
const author = {
    Task: (name, type) => ({ name, type, commands: [], addCommand(c) { this.commands.push(c); } }),
    Command: (type, params) => ({ type, params }),
};
const context = vm.createContext({ author, frameChunker });
vm.runInContext(fs.readFileSync(process.argv[2], "utf8"), context);
for (const s of vm.runInContext("JOB_TYPE", context).settings) {
    if (!(s.key in settings) && "default" in s) settings[s.key] = s.default;
}
context.job = { settings, addTask(t) { tasks.push(t); } };
try { vm.runInContext("compileJob(job)", context); } catch (e) { console.error(String(e)); process.exit(3); }
console.log(JSON.stringify(tasks.map(t => ({ name: t.name, type: t.type, commands: t.commands }))));
"""


@pytest.mark.slow
def test_flamenco_job_type_compiles_to_runnable_tasks(shot, tmp_path):
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("Node.js is not installed (scripts/apt-packages.txt lists it)")
    folder, sha = shot
    harness = tmp_path / "harness.js"
    harness.write_text(NODE_HARNESS, encoding="utf-8")
    script = FARM / "flamenco" / "restoration-studio-batch.js"
    settings = {"input_pattern": "in/b.####.png", "output_pattern": "flamenco/d.%04d.png",
                "frames": f"{FRAMES[0]}-{FRAMES[1]}", "chunk_size": CHUNK, "model": "tiny", "model_sha256": sha,
                "tile": 32, "device": "cpu", "exe": sys.executable, "exe_args": str(ROOT / "main.py")}
    compiled = subprocess.run([node, str(harness), str(script), json.dumps(settings)], capture_output=True,
                              text=True, timeout=60)
    assert compiled.returncode == 0, compiled.stderr
    tasks = json.loads(compiled.stdout)
    assert [t["name"] for t in tasks] == ["restore-1001-1003", "restore-1004-1005"]
    commands = []
    for task in tasks:
        (command,) = task["commands"]
        assert command["type"] == "exec"
        commands.append([command["params"]["exe"], *command["params"]["args"]])
    assert_same_as_whole(folder, "flamenco", run_tasks(commands, folder))
    bad = subprocess.run([node, str(harness), str(script), json.dumps({**settings, "model_sha256": "beef"})],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 3 and "64 hexadecimal digits" in bad.stderr


@pytest.mark.slow
def test_openjd_template_runs_under_the_openjd_runtime(shot):
    """The OpenJD template is run by the real Open Job Description CLI (a local session, chunks of 3 frames)."""
    openjd = Path(sys.executable).with_name("openjd")
    if not openjd.exists():
        pytest.skip("openjd-cli is not installed (requirements-dev.txt)")
    folder, sha = shot
    template = FARM / "openjd" / "restoration-studio-batch.yaml"
    check = subprocess.run([str(openjd), "check", str(template)], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    params = {"InputPattern": str(folder / "in" / "b.####.png"), "OutputPattern": str(folder / "openjd" / "d.%04d.png"),
              "Frames": f"{FRAMES[0]}-{FRAMES[1]}", "ChunkSize": str(CHUNK), "Model": "tiny", "ModelSha256": sha,
              "Tile": "32", "Device": "cpu", "App": APP}
    command = [str(openjd), "run", str(template), "--step", "Restore", "--output", "json"]
    for key, value in params.items():
        command += ["-p", f"{key}={value}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    log = json.loads(result.stdout[result.stdout.index("{"):])
    events = []
    for entry in log.get("logs", []):
        message = entry.get("message", "") if isinstance(entry, dict) else str(entry)
        if message.startswith('{"event"'):
            events.append(json.loads(message))
    assert sum(e["event"] == "start" for e in events) == 2  # two tasks: 1001-1003 and 1004-1005
    assert_same_as_whole(folder, "openjd", events)
