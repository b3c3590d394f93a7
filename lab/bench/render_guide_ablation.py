"""How much a shipped render denoiser owes to its guides, on a shot: the guide strengths scaled at inference.

The guided kernel-prediction models subtract a predicted strength times each tap's squared distance to the pixel in
the albedo, normal and colour buffers from the kernel's logits. Scaling those strengths after they are predicted
(1 = as shipped, 0 = no guide) shows whether a failure comes from the guides or from the logits themselves. Runs
the torch model on whole frames (no tiling) on the restore job's inputs (``restore.model_inputs``).

    .venv/bin/python lab/bench/render_guide_ablation.py [--model render-kprcan-aov] [--shots 92002:4 92003:16]
        [--factors 1 0.5 0]

The shots are ``bench/render_finetune.py``'s (rendered into bench/work when missing); the frames scored are the
odd ones, as there. Prints a markdown table (relMSE, mean over the scored frames) per guide set scaled and
writes it to lab/bench/results/render_guide_ablation.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent

from bench.render_finetune import ensure_shot, scored_frames  # noqa: E402
from engine.metrics import relmse  # noqa: E402
from engine.models.registry import ModelRegistry  # noqa: E402
from engine.restore import model_inputs  # noqa: E402
from engine.training.export import load_weights, model_from_weights  # noqa: E402
from engine.transforms import auto_exposure_scale, from_model_space  # noqa: E402


def denoise(model, manifest, image) -> np.ndarray:
    """The torch model's output in the image's linear space, from the inputs the restore job feeds its ONNX file."""
    import torch

    scale = auto_exposure_scale(image.pixels)  # the restore job's image-wide exposure for an HDR model
    inputs = model_inputs(image, manifest, scale)[0]
    tensors = [torch.from_numpy(np.ascontiguousarray(inputs[role].transpose(2, 0, 1)[None]))
               for role in ("color", *model.aux_inputs)]
    with torch.no_grad():
        out = model(*tensors)
    return from_model_space(out[0].numpy().transpose(1, 2, 0), manifest.value_transform, True, scale)


def main() -> int:
    import torch
    import torch.nn.functional as F  # the module kpcn.py calls softplus through

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="render-kprcan-aov")
    parser.add_argument("--shots", nargs="*", default=["92002:4", "92003:16"], metavar="SEED:SPP")
    parser.add_argument("--factors", nargs="*", type=float, default=[1.0, 0.5, 0.0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "lab" / "bench" / "results" / "render_guide_ablation.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    entry = ModelRegistry(include_classical=False).get(args.model)
    model = model_from_weights(load_weights(entry.path.with_suffix(".pt")))
    if not model.guide:
        raise SystemExit(f"{args.model} has no guides")
    scales = model.guide_scales
    # which strength channels each row scales: every guide, then each guide alone
    sets = {"all guides": list(range(len(model.guide) * scales))}
    for g, name in enumerate(model.guide):
        sets[f"{name} guide"] = list(range(g * scales, (g + 1) * scales))
    factor = {"rows": [], "value": 1.0}
    softplus = F.softplus

    def scaled_softplus(x, *a, **k):  # the guide strengths are the only softplus of the first pass
        y = softplus(x, *a, **k)
        if factor["rows"] and y.shape[1] == len(model.guide) * scales:
            gain = torch.ones(y.shape[1], dtype=y.dtype)
            gain[factor["rows"]] = factor["value"]
            y = y * gain[None, :, None, None]
        return y

    shots = [tuple(int(v) for v in shot.split(":")) for shot in args.shots]
    frames = {f"{seed} @ {spp} spp": scored_frames(ensure_shot(seed, spp)) for seed, spp in shots}
    lines = [f"| `{args.model}`, guide strengths scaled | " + " | ".join(frames) + " |",
             "|---|" + "---|" * len(frames)]
    F.softplus = scaled_softplus
    try:
        for label, rows in sets.items():
            for value in args.factors:
                if value == 1.0 and label != "all guides":
                    continue  # as shipped: one row
                factor.update(rows=rows, value=value)
                cells = [f"{np.mean([relmse(denoise(model, entry.manifest, image), ref) for _, image, ref in s]):.5f}"
                         for s in frames.values()]
                name = "as shipped" if value == 1.0 else f"{label} x {value:g}"
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
                print(lines[-1], file=sys.stderr, flush=True)
    finally:
        F.softplus = softplus
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = (f"## Guide strengths scaled at inference (one run, {when}; relMSE, mean over each shot's 5 scored "
            "frames)\n\n" + "\n".join(lines) + "\n")
    print(text)
    Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
