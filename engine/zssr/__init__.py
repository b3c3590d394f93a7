"""Zero-Shot Super-Resolution (Shocher, Cohen, Irani, CVPR 2018): an image-specific CNN trained on the image.

Torch is imported only inside the job. Entry points: :func:`zssr_job`, :class:`ZssrRequest`,
:func:`preset_request`.
"""

from .config import PRESET_LABELS, PRESET_NAMES, PRESETS, ZssrRequest, preset_request
from .train import zssr_job

__all__ = ["PRESETS", "PRESET_LABELS", "PRESET_NAMES", "ZssrRequest", "preset_request", "zssr_job"]
