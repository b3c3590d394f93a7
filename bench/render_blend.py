"""How to weigh KPRCAN against OIDN in the blended render engine (engine/models/hybrid.py), on validation scenes.

Runs the bundled ``render-kprcan-aov`` and OIDN + AOVs through the app's restore job on every scene, scores the
blend ``share x KPRCAN + (1 - share) x OIDN`` for a grid of shares (relMSE, mean and geometric mean over scenes,
per sample count), then runs the blended engine itself at its default share as a check that the app computes
what the table says. Scenes: folders of ``render-data`` scenes of validation seeds; the benchmark's held-out
seeds (90000+) are refused, so the share is never chosen on them.

    .venv/bin/python main.py render-data --scenes 16 --seed 80000 --out runs/val80k --spp 1,4,16,64 --ref-spp 1024
    .venv/bin/python bench/render_blend.py runs/val80k runs/val81k [--spp 4,16]

Prints a markdown table and writes it to ``bench/results/render_blend.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from bench.render_checkpoints import load_cases, restored_outputs  # noqa: E402
from engine.metrics import relmse  # noqa: E402
from engine.models.hybrid import DEFAULT_SHARE, NETWORK_ID  # noqa: E402
from engine.models.registry import ModelRegistry  # noqa: E402

SHARES = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


def summary(errors: dict[int, list[float]]) -> dict[int, tuple[float, float]]:
    return {spp: (float(np.mean(v)), float(np.exp(np.mean(np.log(v))))) for spp, v in errors.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenes", nargs="+", help="folders of render-data scenes (validation seeds)")
    parser.add_argument("--spp", default="4,16", help="sample counts (default 4,16)")
    args = parser.parse_args()
    spps = [int(s) for s in args.spp.split(",")]
    registry = ModelRegistry([(ROOT / "resources" / "models", "bundled")])  # the bundled network, never a user's
    network, oidn, hybrid = (registry.get(i) for i in (NETWORK_ID, "oidn-aov", "render-kprcan-oidn"))

    lines = [f"# Blend of {NETWORK_ID} and OIDN + AOVs on validation scenes", "",
             f"`.venv/bin/python bench/render_blend.py {' '.join(args.scenes)} --spp {args.spp}` "
             f"({time.strftime('%Y-%m-%d')}). relMSE, mean / geometric mean over scenes; share = KPRCAN's weight "
             "(0 = OIDN + AOVs alone, 1 = KPRCAN alone).", ""]
    for folder in args.scenes:
        cases = load_cases(Path(folder), spps)
        ours, theirs = restored_outputs(network, cases), restored_outputs(oidn, cases)
        start = len(lines)
        lines += [f"## {folder} ({len(cases) // len(spps)} scenes)", "",
                  "| share | " + " | ".join(f"{spp} spp" for spp in spps) + " |", "|---|" + "---|" * len(spps)]
        for share in SHARES:
            errors: dict[int, list[float]] = {}
            for a, b, (spp, _, reference) in zip(ours, theirs, cases, strict=True):
                errors.setdefault(spp, []).append(relmse(share * a + (1 - share) * b, reference))
            result = summary(errors)
            lines.append(f"| {share:.1f} | " + " | ".join(f"{result[s][0]:.5f} / {result[s][1]:.5f}" for s in spps)
                         + " |")
        engine_errors: dict[int, list[float]] = {}
        for restored, (spp, _, reference) in zip(restored_outputs(hybrid, cases), cases, strict=True):
            engine_errors.setdefault(spp, []).append(relmse(restored, reference))
        result = summary(engine_errors)
        lines += ["", f"The app's blended engine (render-kprcan-oidn, share {DEFAULT_SHARE}): "
                  + ", ".join(f"{s} spp {result[s][0]:.5f} / {result[s][1]:.5f}" for s in spps), ""]
        print("\n".join(lines[start:]), flush=True)
    out = ROOT / "bench" / "results" / "render_blend.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
