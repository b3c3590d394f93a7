"""What a ZSSR run is asked to do: one frozen request, and the presets the app and CLI offer.

Defaults follow the reference implementation's ``configs.py`` (Shocher et al. 2018); ``PRESETS`` lists the
three starting points: "paper" (those defaults), "fast" (the same algorithm sized for a CPU) and "real"
(the reference's real-image config: noise on the LR sons, no back-projection).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

KERNEL_MODES = ("bicubic", "file", "estimate")
DEVICES = ("auto", "cpu", "cuda")
PRESET_NAMES = ("fast", "paper", "real")
PAPER_X2_SCHEDULE = ((1.0, 1.5), (1.5, 1.0), (1.5, 1.5), (1.5, 2.0), (2.0, 1.5), (2.0, 2.0))
PAPER_X2_BACK_PROJECTION = (6, 6, 8, 10, 10, 12)
#: Gradual steps of the Paper preset above x2 (geometric).
PAPER_GRADUAL_STEPS = 6
PRESET_LABELS = {"fast": "Fast (CPU)", "paper": "Paper", "real": "Real photo"}


@dataclass(frozen=True)
class ZssrRequest:
    #: Total scale factor per axis (rows, columns); may be non-integer and differ per axis.
    scale: tuple[float, float] = (2.0, 2.0)
    #: Number of gradual scale steps s_1 < ... < s_m = scale (geometric); 0 = one step per factor 2.
    gradual_steps: int = 0
    #: An explicit gradual schedule (per-axis factors, the last equal to ``scale``); overrides ``gradual_steps``.
    #: The reference's x2 config climbs 1.0x1.5, 1.5x1.0, 1.5x1.5, 1.5x2.0, 2.0x1.5, 2.0x2.0.
    schedule: tuple[tuple[float, float], ...] = ()
    #: Back-projection iterations per step of ``schedule`` (the reference: 6, 6, 8, 10, 10, 12); else
    #: ``back_projection_iters`` for every step.
    schedule_back_projection: tuple[int, ...] = ()
    #: "bicubic" (MATLAB imresize), "file" (``kernel_path``) or "estimate" (internal-statistics estimator).
    kernel: str = "bicubic"
    kernel_path: str | None = None
    back_projection: bool = True
    back_projection_iters: int = 10
    #: Std of Gaussian noise added to each LR son (0.0125 in the reference's real-image config).
    noise_std: float = 0.0
    crop_size: int = 128
    min_iterations: int = 256
    max_iterations: int = 3000
    #: Wall-clock budget for the whole run (all scale steps), None = no limit.
    seconds: float | None = None
    learning_rate: float = 1e-3
    min_learning_rate: float = 9e-6
    #: Divide lr by 10 when the std of the linear fit exceeds -ratio x its slope.
    lr_change_ratio: float = 1.5
    lr_check_every: int = 60
    lr_slope_range: int = 256
    #: Iterations between two reconstruction-error measurements (the points of the linear fit).
    test_every: int = 50
    width: int = 64
    depth: int = 8
    #: Median of the 8 rotations/flips at the end (the paper's geometric self-ensemble).
    ensemble: bool = True
    #: Train in bfloat16 autocast (CPU with AVX512-BF16 or CUDA); the ensemble always runs in float32.
    bf16: bool = False
    seed: int = 0
    device: str = "auto"
    #: Fathers: downscaled copies of each source at this many scales between ``min_father_scale`` and 1.
    father_levels: int = 10
    min_father_scale: float = 0.5
    preview_every_s: float = 3.0
    preset: str = "paper"

    def __post_init__(self) -> None:
        if len(self.scale) != 2 or min(self.scale) < 1.0:
            raise ValueError(f"scale must be two factors >= 1, got {self.scale}")
        if self.kernel not in KERNEL_MODES:
            raise ValueError(f"kernel must be one of {KERNEL_MODES}")
        if self.kernel == "file" and not self.kernel_path:
            raise ValueError("kernel 'file' needs kernel_path")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}")
        if self.crop_size < 8 or self.depth < 2 or self.width < 1:
            raise ValueError("crop_size >= 8, depth >= 2 and width >= 1 are needed")
        if self.min_iterations < 0 or self.max_iterations < 1:
            raise ValueError("need min_iterations >= 0 and max_iterations >= 1")
        if self.schedule:
            last = self.schedule[-1]
            if any(abs(a - b) > 1e-6 for a, b in zip(last, self.scale, strict=True)):
                raise ValueError(f"the schedule must end at the scale {self.scale}, not {last}")
            if self.schedule_back_projection and len(self.schedule_back_projection) != len(self.schedule):
                raise ValueError("schedule_back_projection needs one entry per schedule step")

    def back_projection_for_step(self, index: int) -> int:
        """Back-projection iterations after scale step ``index`` (0 when back-projection is off)."""
        if not self.back_projection:
            return 0
        if self.schedule and self.schedule_back_projection:
            return int(self.schedule_back_projection[index])
        return self.back_projection_iters

    def replace(self, **changes: Any) -> ZssrRequest:
        return dataclasses.replace(self, **changes)

    def scale_steps(self) -> list[tuple[float, float]]:
        """The gradual scale factors, each relative to the input (the reference's ``scale_factors``)."""
        if self.schedule:
            return [(float(a), float(b)) for a, b in self.schedule]
        steps = self.gradual_steps or max(1, math.ceil(math.log2(max(self.scale)) - 1e-9))
        out = []
        for i in range(1, steps + 1):
            out.append(tuple(float(s ** (i / steps)) for s in self.scale))
        out[-1] = (float(self.scale[0]), float(self.scale[1]))
        return out  # type: ignore[return-value]

    @property
    def label(self) -> str:
        sy, sx = self.scale
        factor = f"x{sy:g}" if sy == sx else f"x{sy:g}x{sx:g}"
        return f"ZSSR {factor} \u00b7 {PRESET_LABELS.get(self.preset, self.preset)}"


def preset_request(name: str, scale: float | tuple[float, float] = 2.0, **overrides: Any) -> ZssrRequest:
    """A request for preset ``name`` at ``scale``, with any field overridden."""
    if name not in PRESET_NAMES:
        raise ValueError(f"preset must be one of {PRESET_NAMES}")
    pair = (float(scale), float(scale)) if not isinstance(scale, tuple) else (float(scale[0]), float(scale[1]))
    base: dict[str, Any] = {"scale": pair, "preset": name}
    if name == "fast":
        # Same algorithm, a CPU budget: smaller crops (4x fewer FLOPs per step), an earlier learning-rate
        # policy and fewer iterations (bench/results/zssr.md). fp32: bf16 autocast costs 6x more CPU time at
        # 64x64 crops on this CPU (and saves only ~20% at 128), see bench/results/zssr_speed.md.
        base.update(
            crop_size=64,
            min_iterations=128,
            max_iterations=800,
            lr_check_every=30,
            lr_slope_range=128,
            test_every=25,
        )
    elif name == "paper" and pair == (2.0, 2.0) and "gradual_steps" not in overrides:
        # The reference's X2_GRADUAL_IMAGE_CONFIG (configs.py): six steps through anisotropic factors, each
        # result joining the fathers, with more back-projection as the factor grows.
        base["schedule"] = PAPER_X2_SCHEDULE
        if "back_projection_iters" not in overrides:
            base["schedule_back_projection"] = PAPER_X2_BACK_PROJECTION
    elif name == "paper" and max(pair) > 2.0 and "gradual_steps" not in overrides and "schedule" not in overrides:
        # Beyond x2, six geometric steps (x4: 1.26, 1.59, 2, 2.52, 3.17, 4), each result joining the fathers:
        # Set5 x4 31.08 dB (paper 31.13) against 30.42 with two steps (x2, x4); bench/results/zssr.md.
        base["gradual_steps"] = PAPER_GRADUAL_STEPS
    elif name == "real":
        base.update(noise_std=0.0125, back_projection=False)
    base.update(overrides)
    return ZssrRequest(**base)


PRESETS = {name: preset_request(name) for name in PRESET_NAMES}
