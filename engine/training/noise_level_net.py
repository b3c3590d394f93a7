"""Train the network that reads the noise a JPEG holds (engine/noise_estimate.py runs it through ONNX Runtime).

    .venv/bin/python -m engine.training.noise_level_net train --steps 8000 --run-dir RUN [--resume]
    .venv/bin/python -m engine.training.noise_level_net export --checkpoint RUN/best.pt \
        [--out resources/estimators/jpeg-noise.onnx]

Why a network: JPEG quantisation takes most of weak noise away and leaves its own error, so at sigma 5-10 the
simulation in engine/noise_estimate.py (matching the energy of the smoothest 8x8 blocks) was 20-60% off on a fifth
of the files (bench/results/noise_estimate_files*.md, before this network). The network learns what the file's
blocks look like at each level, given the file's own quantisation tables.

Data: clean photographs ``../shared/data/train/SunHays80``, the 11th to the 70th by name for training and the last
10 for choosing the checkpoint (the first 10 are bench/noise_estimate_files.py's, never read here; Kodak24, that
bench's second set, neither). Each sample: a random 128 px crop on the JPEG grid (flipped / rotated), Gaussian noise
of sigma log-uniform in 1.5-70 (8-bit units) added and clipped as cameras clip, saved by Pillow (libjpeg) at a
random quality 65-99 with 4:4:4, 4:2:2 or 4:2:0 subsampling and decoded. Targets, in logs: the noise the file holds,
``std(jpeg(noisy) - jpeg(clean)) * sqrt(1 + own^2 / sigma^2)`` (``own``: the photo's own level, Chen et al. on its
clean centre, counted as bench/noise_estimate_files.py counts it), and the sigma before compression
``sqrt(sigma^2 + own^2)`` (what a denoiser is told). L1 loss on the logs of the pooled pair, AdamW, one-cycle
schedule; the checkpoint with the lowest validation error of the held level is kept (``best.pt``).

The network (:class:`JpegNoiseNet`): per 8x8 block of the file (16x16 windows, stride 8, on the JPEG grid; no
padding) the log energies of learned filters of the high-passed YCbCr pixels (k times the noise adds 2 log k:
the task becomes additive), the block's brightness (clipping), the file's table features as a bias
(:func:`engine.noise_estimate.jpeg_table_features`), 3x3 convolutions at block resolution, then per block three
numbers (:func:`pooled` says how they make the image's two levels). The pooling is done by the caller: the ONNX
graph returns the per-block maps, so the app pools the whole image and each quadrant from one run. (Pooling the
held level like the sigma, by the softmax, read sigma 5 at quality 80 20-50% low: the weights pick smooth blocks,
where quantisation keeps least of the noise, while the file's level is a mean over all of them.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from ..noise_estimate import (
    JpegSettings,
    estimate_noise_level,
    jpeg_network_input,
    jpeg_table_features,
    settings_tables,
)

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data"))
PHOTOS = SHARED / "train" / "SunHays80"
#: More scenes for ``--more-photos``: BSDS500's 198 training images (481 x 321, mildly compressed JPEGs: their own
#: compression is part of the "clean" picture the noise is added to, as a phone's earlier processing would be).
MORE_PHOTOS = SHARED / "train" / "BSDS500_train"
TRAIN_SLICE, VALID_SLICE = slice(10, 70), slice(70, 80)
CROP = 128
SIGMA_RANGE = (1.5, 70.0)
QUALITY_RANGE = (65, 99)
SUBSAMPLING_SHARES = {0: 0.4, 1: 0.1, 2: 0.5}
OUTPUT = ROOT / "resources" / "estimators" / "jpeg-noise.onnx"


def load_photos(files: list[Path]) -> list[tuple[np.ndarray, float]]:
    """Each photo (uint8) with its own noise level (Chen et al. on its centre 384 px, 8-bit units)."""
    from PIL import Image as PILImage

    photos = []
    for file in files:
        with PILImage.open(file) as image:
            array = np.asarray(image.convert("RGB"), np.uint8)
        height, width = array.shape[:2]
        centre = array[max(0, height // 2 - 192): height // 2 + 192, max(0, width // 2 - 192): width // 2 + 192]
        photos.append((array, estimate_noise_level(centre.astype(np.float32) / 255.0)))
    return photos


def sample(photos: list, rng: np.random.Generator, crop: int = CROP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training sample: network input (3 x crop x crop), table features, log targets (held, before)."""
    array, own = photos[rng.integers(len(photos))]
    height, width = array.shape[:2]
    top = rng.integers(0, (height - crop) // 16 + 1) * 16
    left = rng.integers(0, (width - crop) // 16 + 1) * 16
    clean = array[top: top + crop, left: left + crop]
    if rng.random() < 0.5:
        clean = clean[:, ::-1]
    clean = np.ascontiguousarray(np.rot90(clean, rng.integers(4)))
    sigma = float(np.exp(rng.uniform(*np.log(SIGMA_RANGE))))
    quality = int(rng.integers(QUALITY_RANGE[0], QUALITY_RANGE[1] + 1))
    subsampling = int(rng.choice(list(SUBSAMPLING_SHARES), p=list(SUBSAMPLING_SHARES.values())))
    noisy = np.clip(np.rint(clean + sigma * rng.standard_normal(clean.shape)), 0, 255).astype(np.uint8)
    settings = JpegSettings(quality=quality, subsampling=subsampling)  # Pillow / libjpeg, as the app reads files
    decoded, reference = settings.compress(noisy / 255.0), settings.compress(clean / 255.0)
    held = 255.0 * float(np.std(decoded - reference)) * np.sqrt(1 + own**2 / sigma**2)
    before = float(np.sqrt(sigma**2 + own**2))
    return (jpeg_network_input(decoded), jpeg_table_features(settings_tables(settings), subsampling),
            np.log([max(held, 0.05), before]).astype(np.float32))


def batches(photos: list, seed: int, batch: int):
    rng = np.random.default_rng(seed)
    while True:
        items = [sample(photos, rng) for _ in range(batch)]
        yield tuple(np.stack([item[k] for item in items]) for k in range(3))


def build_model(width: int = 64, depth: int = 3, features: int = 9):
    import torch
    from torch import nn

    class JpegNoiseNet(nn.Module):
        """See the module docstring. ``forward`` returns the per-block maps N x 3 x (H/8 - 7) x (W/8 - 7): the log
        ratio of the noise the block holds to the sigma before compression, the log sigma before compression, and
        the block's pooling weight logit (see :func:`pooled`)."""

        def __init__(self) -> None:
            super().__init__()
            self.bands = nn.Conv2d(3, width, 16, stride=8, bias=False)
            self.light = nn.Conv2d(3, width, 16, stride=8)
            self.mix = nn.Conv2d(width, width, 1)
            self.tables = nn.Linear(features, width)
            layers: list[nn.Module] = []
            for _ in range(depth):
                layers += [nn.Conv2d(width, width, 3), nn.ReLU(inplace=True)]
            self.body = nn.Sequential(*layers)
            self.head = nn.Conv2d(width, 3, 1)

        def forward(self, pixels: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
            # pixels: N x 3 x H x W, YCbCr in 8-bit units with Y centred (jpeg_network_input); tables: N x F.
            # No padding anywhere: every output sees whole windows, so a block at the edge of the image is read as
            # one inside it and the pooled level does not depend on the image's size (with zero padding, a model
            # trained on 96 px crops read a 384 px crop 2.6x high at sigma 25: the share of edge blocks differs).
            padded = nn.functional.pad(pixels, (1, 1, 1, 1), mode="replicate")
            high = pixels - nn.functional.avg_pool2d(padded, 3, 1)
            energy = torch.log(self.bands(high) ** 2 + 0.01)
            x = self.mix(energy) + self.light(pixels / 128.0) + self.tables(tables)[:, :, None, None]
            return self.head(self.body(torch.relu(x)))

    return JpegNoiseNet()


def pooled(maps):
    """The image's (log held level, log sigma before compression), N x 2 (torch), from the per-block maps (see
    :class:`JpegNoiseNet`): the sigma before compression is one number for the whole image, read where the blocks
    say it best (softmax of the weights); the noise the file holds is a mean over all its pixels of what each
    block keeps, so each block's share (its log ratio to that sigma) is averaged uniformly, as squares."""
    import torch

    weights = torch.softmax(maps[:, 2].flatten(1), dim=1)
    before = (maps[:, 1].flatten(1) * weights).sum(-1)
    kept = 0.5 * torch.log(torch.mean(torch.exp(2.0 * maps[:, 0].flatten(1)), dim=1))
    return torch.stack([before + kept, before], dim=1)


def train(args: argparse.Namespace) -> None:
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    files = sorted(PHOTOS.glob("*.png"))
    if len(files) < 80:
        raise SystemExit(f"expected the 80 SunHays80 photos in {PHOTOS}, found {len(files)}")
    train_photos, valid_photos = load_photos(files[TRAIN_SLICE]), load_photos(files[VALID_SLICE])
    if args.more_photos:
        train_photos += load_photos(sorted(MORE_PHOTOS.glob("*.jpg")))
    valid_stream = batches(valid_photos, 99, 64)
    valid = [np.concatenate(part) for part in zip(*[next(valid_stream) for _ in range(8)], strict=True)]
    model = build_model(args.width, args.depth)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, total_steps=args.steps, pct_start=0.05)
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    start, best = 0, float("inf")
    if args.init:  # fine-tune: the weights of another run's checkpoint, a fresh optimiser and schedule
        model.load_state_dict(torch.load(args.init, weights_only=True)["model"])
    if args.resume and (run_dir / "last.pt").exists():
        state = torch.load(run_dir / "last.pt", weights_only=True)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        start, best = int(state["step"]), float(state["best"])
    stream = batches(train_photos, args.seed + start, args.batch)
    started = time.time()
    for step in range(start + 1, args.steps + 1):
        pixels, tables, targets = (torch.from_numpy(a) for a in next(stream))
        loss = torch.nn.functional.l1_loss(pooled(model(pixels, tables)), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % args.every and step != args.steps:
            continue
        model.eval()
        with torch.no_grad():
            predicted = pooled(model(torch.from_numpy(valid[0]), torch.from_numpy(valid[1]))).numpy()
        model.train()
        error = np.abs(np.exp(predicted - valid[2]) - 1)
        score = float(np.mean(error[:, 0]))
        print(f"step {step} loss {loss.item():.4f} validation: held {score:.4f} (within 15%: "
              f"{float(np.mean(error[:, 0] < 0.15)):.3f}), before {float(np.mean(error[:, 1])):.4f} "
              f"({time.time() - started:.0f} s)", flush=True)
        record = {"model": model.state_dict(), "width": args.width, "depth": args.depth, "step": step,
                  "validation_held_error": score, "best": min(best, score), "optimiser": optimiser.state_dict(),
                  "schedule": schedule.state_dict(), "steps": args.steps, "batch": args.batch, "lr": args.lr,
                  "seed": args.seed, "more_photos": bool(args.more_photos),
                  "init": _describe_init(args.init)}
        if score < best:
            best = score
            torch.save(record, run_dir / "best.pt")
        torch.save(record, run_dir / "last.pt")


def _describe_init(path: str | None) -> str | None:
    """How the checkpoint a fine-tune started from was made (its own command, recursively), for the record."""
    if not path:
        return None
    import torch

    state = torch.load(path, weights_only=True)
    return _command(state) + f" (its step {state['step']})"


def _command(state: dict) -> str:
    command = (f"python -m engine.training.noise_level_net train --steps {state['steps']} --batch {state['batch']} "
               f"--lr {state['lr']} --seed {state['seed']}"
               + "".join(f" --{key} {state[key]}" for key, default in (("width", 64), ("depth", 3))
                         if state.get(key, default) != default)
               + (" --more-photos" if state.get("more_photos") else ""))
    if state.get("init"):
        command = f"{state['init']}, then {command} --init CHECKPOINT"
    return command


def export(args: argparse.Namespace) -> None:
    """The checkpoint as ONNX (per-block maps; dynamic H, W), checked against torch, and its record beside it."""
    import onnxruntime as ort
    import torch

    state = torch.load(args.checkpoint, weights_only=True)
    model = build_model(state["width"], state["depth"])
    model.load_state_dict(state["model"])
    model.eval()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pixels = torch.from_numpy(np.random.default_rng(0).normal(0, 30, (1, 3, 96, 128)).astype(np.float32))
    tables = torch.from_numpy(jpeg_table_features([[4] * 64, [6] * 64], 2)[None])
    torch.onnx.export(model, (pixels, tables), str(out), input_names=["pixels", "tables"], output_names=["maps"],
                      dynamic_axes={"pixels": {2: "height", 3: "width"}, "maps": {2: "rows", 3: "cols"}},
                      opset_version=18, dynamo=False)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(pixels, tables).numpy()
    got = session.run(None, {"pixels": pixels.numpy(), "tables": tables.numpy()})[0]
    error = float(np.abs(got - expected).max())
    if error > 1e-3:
        raise SystemExit(f"ONNX and torch differ by {error}")
    record = {
        "what": "noise level of a JPEG (engine/noise_estimate.py: estimate_jpeg_noise)",
        "trained_by": _command(state),
        "data": f"SunHays80 photos {TRAIN_SLICE.start + 1}-{TRAIN_SLICE.stop} (training)"
                + (", BSDS500's 198 training images (training)" if state.get("more_photos") else "") + ", "
                f"SunHays80 photos "
                f"{VALID_SLICE.start + 1}-{VALID_SLICE.stop} (checkpoint choice); synthetic Gaussian noise, "
                "clipped, Pillow JPEG quality 65-99, 4:4:4 / 4:2:2 / 4:2:0",
        "step": int(state["step"]),
        "validation_held_error": round(float(state["validation_held_error"]), 4),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "parity_max_error": error,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
    }
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("train")
    run.add_argument("--steps", type=int, default=8000)
    run.add_argument("--batch", type=int, default=64)
    run.add_argument("--lr", type=float, default=1e-3)
    run.add_argument("--width", type=int, default=64)
    run.add_argument("--depth", type=int, default=3)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--threads", type=int, default=2)
    run.add_argument("--every", type=int, default=250)
    run.add_argument("--run-dir", required=True)
    run.add_argument("--resume", action="store_true")
    run.add_argument("--init", help="fine-tune from this checkpoint's weights")
    run.add_argument("--more-photos", action="store_true", help="also train on BSDS500's training images")
    out = commands.add_parser("export")
    out.add_argument("--checkpoint", required=True)
    out.add_argument("--out", default=str(OUTPUT))
    args = parser.parse_args(argv)
    (train if args.command == "train" else export)(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
