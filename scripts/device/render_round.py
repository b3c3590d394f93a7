"""One device round for the render denoiser: render fresh training scenes on the device, train there, bring
the checkpoints back. For a session that is lent a GPU machine (15 minutes of device time in all, at most
10 minutes a command), so the whole round is one command with one wall-clock budget.

Here, once (downloads Mitsuba, Dr.Jit, OpenEXR and platformdirs for the device's Python 3.12 and packs them
into ``.device/``, ~19 MB, which must travel: the working tree may be 64 MiB in all)::

    scripts/device/prepare.sh

Then one ``run`` of the device tool, ``carry = [".device"]``, ``timeout_s = 560``::

    PYTHONUNBUFFERED=1 python3 scripts/device/render_round.py --out "$OUT" --minutes 8.5 --require-variant cuda_ad_rgb

What it does, in order, each step logged with its time:

1. makes Mitsuba importable (unpacks ``.device/mitsuba.tar.xz`` and the wheels into /tmp/rs_site unless it
   imports already) and finds the fastest variant that renders (``RS_MITSUBA_VARIANTS``: CUDA first). With
   ``--require-variant`` it stops here, within a minute, when that one does not work, rather than render on
   the CPU for the rest of the budget;
2. renders until ``--render-share`` of the budget is spent: the 16 validation scenes (seeds 81000+, 1,024-spp
   references, the local ``runs/val81k``) in one process and training scenes in ``--procs`` others (seeds
   50000 + 1000 i, never the benchmark's 90000+), 20% full of caustics and 15% with a flush emitting panel as
   in the shipped model's data; workers still rendering at the deadline are stopped and their complete
   scenes kept;
3. writes the training view (``runs/device/pairs``, ``runs/device/val_pairs``) and trains
   ``--recipe`` (default lab/recipes/render_kprcan_aov_device.toml) on ``--device`` for the time left, less a
   margin to save and copy;
4. copies ``best.pt``, ``last.pt``, ``train.log``, ``render.log`` (each render process's last lines), the
   derived ``recipe.toml`` and ``round.json`` (variant, scenes, pairs, seconds of each step) to ``--out``: six
   files, the device returns at most eight.

Back here, score the candidates beside the shipped model on the same validation seeds, then through the
benchmark, as for every CPU round::

    .venv/bin/python bench/render_checkpoints.py runs/val81k resources/models/render-kprcan-aov.pt \\
        /work/.device/.../best.pt --threads 2

A dry run on this machine (tests/test_device_round.py does one, tiny): ``--device cpu --minutes 1.5 --procs 1
--val-scenes 1 --size 32x32 --ref-spp 16 --work /tmp/round --override '{"data": {"patch_size": 32, "val_crop":
32}, "train": {"batch_size": 2}}'``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = Path("runs/device")
VAL_SEED = 81000
TRAIN_SEED = 50000
#: Seeds per training worker: worker i renders TRAIN_SEED + SEEDS_PER_WORKER * i onwards.
SEEDS_PER_WORKER = 1000
#: Seconds kept back at the end for the trainer's last checkpoint and the copies (a tenth of short budgets).
END_MARGIN_S = 45.0


class Round:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.start = time.monotonic()
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = (ROOT / args.work).resolve()
        self.env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", RS_MITSUBA_VARIANTS=args.variants)
        self.info: dict = {"args": vars(args), "steps": {}}

    # -- bookkeeping ---------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.args.minutes * 60 - self.elapsed()

    def log(self, message: str) -> None:
        print(f"[{self.elapsed():6.1f} s] {message}", flush=True)

    def step(self, name: str, started: float) -> None:
        self.info["steps"][name] = round(self.elapsed() - started, 1)
        self.save_info()

    def save_info(self) -> None:
        (self.out / "round.json").write_text(json.dumps(self.info, indent=1), encoding="utf-8")

    def python(self, *argv: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=self.env, **kwargs)

    # -- 1. Mitsuba ----------------------------------------------------------------------------------
    def ensure_packages(self) -> None:
        probe = "import mitsuba, drjit, OpenEXR, platformdirs"
        if not self.args.unpack and subprocess.run([sys.executable, "-c", probe], env=self.env,
                                                   capture_output=True).returncode == 0:
            self.log("mitsuba, OpenEXR and platformdirs import as installed")
            return
        site = Path(self.args.site)
        site.mkdir(parents=True, exist_ok=True)
        pack = ROOT / self.args.packages / "mitsuba.tar.xz"
        if not pack.is_file():
            raise SystemExit(f"{pack} is missing: run scripts/device/prepare.sh here and carry {self.args.packages}")
        with tarfile.open(pack) as tar:
            tar.extractall(site, filter="data")
        for wheel in sorted((ROOT / self.args.packages).glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(site)
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), self.env.get("PYTHONPATH")]))
        where = "; print(mitsuba.__file__)"
        result = subprocess.run([sys.executable, "-c", probe + where], env=self.env, capture_output=True, text=True)
        if result.returncode != 0 or not result.stdout.strip().startswith(str(site)):
            raise SystemExit(f"the packed packages do not import from {site}:\n{result.stdout}{result.stderr}")
        self.log(f"packages unpacked into {site}")

    def pick_variant(self) -> str:
        code = ("from engine.render_data import mitsuba_backend as m; "
                "print(m.set_variant())")
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=self.env, capture_output=True,
                                text=True, timeout=300)
        if result.returncode != 0:
            raise SystemExit(f"no Mitsuba variant renders here:\n{result.stderr[-2000:]}")
        variant = result.stdout.strip().splitlines()[-1]
        self.info["variant"] = variant
        self.log(f"Mitsuba variant: {variant}")
        return variant

    # -- 2. Rendering --------------------------------------------------------------------------------
    def render_cmd(self, scenes: int, seed: int, out: Path, ref_spp: int, fireflies: float, panels: float):
        return ["main.py", "render-data", "--scenes", str(scenes), "--seed", str(seed), "--out", str(out),
                "--ref-spp", str(ref_spp), "--size", self.args.size, "--threads", str(self.args.threads),
                "--firefly-fraction", str(fireflies), "--panel-fraction", str(panels)]

    def render(self) -> None:
        started = self.elapsed()
        deadline = self.args.minutes * 60 * self.args.render_share
        logs = self.work / "render_logs"
        logs.mkdir(parents=True, exist_ok=True)

        def spawn(name: str, argv: list[str]) -> subprocess.Popen:
            handle = open(logs / f"{name}.log", "w", encoding="utf-8")  # noqa: SIM115 - closed with the process
            return self.python(*argv, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)

        val = spawn("val", self.render_cmd(self.args.val_scenes, VAL_SEED, self.work / "sets" / "val", 1024, 0, 0))
        workers = [spawn(f"train{i}", self.render_cmd(SEEDS_PER_WORKER, TRAIN_SEED + SEEDS_PER_WORKER * i,
                                                      self.work / "sets" / f"train{i}", self.args.ref_spp,
                                                      0.2, 0.15))
                   for i in range(self.args.procs)]
        while self.elapsed() < deadline and any(w.poll() is None for w in workers):
            time.sleep(2)
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.wait()
        # The validation set must be whole: give it until a fifth of the budget past the deadline.
        try:
            val.wait(timeout=max(5.0, self.args.minutes * 12))
        except subprocess.TimeoutExpired:
            os.killpg(val.pid, signal.SIGTERM)
            val.wait()
        self.step("render", started)

    def write_pairs(self) -> tuple[int, int]:
        started = self.elapsed()
        sets = self.work / "sets"
        # In a child with the round's environment (the packed packages; the checkout is the working folder), as
        # the render processes run: this script itself runs on a bare interpreter.
        result = subprocess.run([sys.executable, "-c", WRITE_PAIRS, str(sets), str(self.work)], cwd=ROOT,
                                env=self.env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise SystemExit(f"writing the training pairs failed:\n{result.stderr[-3000:]}")
        train, val = json.loads(result.stdout.strip().splitlines()[-1])
        scenes = {folder.name: len(list(folder.glob("*/scene.json"))) for folder in sorted(sets.iterdir())}
        self.info.update(scenes=scenes, train_pairs=train, val_pairs=val)
        self.log(f"scenes rendered: {scenes}; {train} training pairs, {val} validation pairs")
        self.step("pairs", started)
        if not train or not val:
            raise SystemExit("no complete training or validation scene: see render.log")
        return train, val

    # -- 3. Training ---------------------------------------------------------------------------------
    def train(self) -> None:
        started = self.elapsed()
        minutes = (self.left() - min(END_MARGIN_S, 6.0 * self.args.minutes)) / 60
        if minutes < 0.1:
            raise SystemExit(f"only {self.left():.0f} s left for training")
        run_dir = self.work / "run"
        argv = ["main.py", "train", "--recipe", str(self.derived_recipe()), "--device", self.args.device,
                "--run-dir", str(run_dir), "--no-export", "--minutes", f"{minutes:.2f}"]
        if self.args.workers is not None:
            argv += ["--workers", str(self.args.workers)]
        self.log(f"training {minutes:.2f} min: {' '.join(argv[1:])}")
        with open(self.out / "train.log", "w", encoding="utf-8") as handle:
            process = self.python(*argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for line in process.stdout:
                handle.write(line)
                if "val" in line or "step" in line.lower() or "error" in line.lower():
                    print("  " + line.rstrip(), flush=True)
            self.info["train_returncode"] = process.wait()
        self.step("train", started)

    def derived_recipe(self) -> Path:
        """``--recipe`` with this round's folders (and ``--override``'s tables over it): what trains."""
        tables = json.loads(self.args.override) if self.args.override else {}
        data = tables.setdefault("data", {})
        for key, folder in (("input_dir", "pairs/input"), ("target_dir", "pairs/target"),
                            ("val_input_dir", "val_pairs/input"), ("val_target_dir", "val_pairs/target")):
            data[key] = str(self.work / folder)
        lines = [f"# written by scripts/device/render_round.py for {self.work}",
                 f"base = {json.dumps(str((ROOT / self.args.recipe).resolve()))}"]

        def table(name: str, values: dict) -> None:
            lines.extend(["", f"[{name}]"])
            lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items() if not isinstance(value, dict))
            for key, value in values.items():
                if isinstance(value, dict):
                    table(f"{name}.{key}", value)

        for name, values in tables.items():
            table(name, values)
        path = self.work / "recipe.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        shutil.copy2(path, self.out / "recipe.toml")
        return path

    def collect(self) -> None:
        run_dir = self.work / "run"
        for name in ("best.pt", "last.pt"):  # all the trainer writes into its run folder
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, self.out / name)
        # The device brings back at most 8 files: the render logs' last lines go into one.
        with open(self.out / "render.log", "w", encoding="utf-8") as handle:
            for log in sorted((self.work / "render_logs").glob("*.log")):
                lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
                handle.write(f"== {log.name}\n" + "\n".join(lines[-5:]) + "\n")
        self.info["files"] = sorted(p.name for p in self.out.iterdir())
        self.info["seconds"] = round(self.elapsed(), 1)
        self.save_info()
        self.log(f"done: {self.info['files']} in {self.out}")


#: Writes the training view of every complete scene: argv = the sets folder, the work folder; prints
#: [training pairs, validation pairs].
WRITE_PAIRS = """
import json, sys
from pathlib import Path
from engine.render_data.pairs import write_pairs
sets, work = Path(sys.argv[1]), Path(sys.argv[2])
train = sum(write_pairs(folder, work / "pairs") for folder in sorted(sets.glob("train*"))
            if any(folder.glob("*/scene.json")))
val = write_pairs(sets / "val", work / "val_pairs") if any((sets / "val").glob("*/scene.json")) else 0
print(json.dumps([train, val]))
"""

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT", str(ROOT / WORK / "out")))
    parser.add_argument("--minutes", type=float, default=8.5, help="the whole round's wall-clock budget")
    parser.add_argument("--render-share", type=float, default=0.4, help="share of the budget spent rendering")
    parser.add_argument("--procs", type=int, default=12, help="training-scene render processes")
    parser.add_argument("--threads", type=int, default=1, help="render threads per process (CPU variants)")
    parser.add_argument("--val-scenes", type=int, default=16)
    parser.add_argument("--ref-spp", type=int, default=256, help="reference samples of the training scenes")
    parser.add_argument("--size", default="128x128")
    parser.add_argument("--recipe", default="lab/recipes/render_kprcan_aov_device.toml")
    parser.add_argument("--override", default=None,
                        help='JSON of recipe tables over --recipe, e.g. {"train": {"batch_size": 2}} (tests)')
    parser.add_argument("--work", default=str(WORK), help="scratch folder (sets, pairs, the run), repo-relative")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu", "auto"))
    parser.add_argument("--workers", type=int, default=None, help="the trainer's data workers (default: its own)")
    parser.add_argument("--variants", default="cuda_ad_rgb,llvm_ad_rgb,scalar_rgb")
    parser.add_argument("--require-variant", default=None, help="stop unless this Mitsuba variant renders")
    parser.add_argument("--packages", default=".device", help="folder of prepare.sh's pack and wheels")
    parser.add_argument("--site", default="/tmp/rs_site", help="where the packed packages are unpacked")
    parser.add_argument("--unpack", action="store_true", help="unpack the packages even if they import already")
    args = parser.parse_args()
    job = Round(args)
    job.log(f"round of {args.minutes} min, output {job.out}")
    try:
        started = job.elapsed()
        job.ensure_packages()
        variant = job.pick_variant()
        job.step("setup", started)
        if args.require_variant and variant != args.require_variant:
            raise SystemExit(f"variant {variant}, not {args.require_variant}")
        job.render()
        job.write_pairs()
        job.train()
    except SystemExit as stop:
        job.info["stopped"] = str(stop)
        job.log(f"stopped: {stop}")
    job.collect()
    if "train_returncode" not in job.info:
        return 2  # stopped before training
    return 0 if job.info["train_returncode"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
