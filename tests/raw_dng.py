"""Camera raw files for tests: minimal but valid DNGs (a CFA mosaic with the DNG tags LibRaw needs) written with
tifffile, their EXIF (camera, lens, exposure, date, orientation) added with libexiv2, and a tiny raw denoiser
(ONNX, no torch) following the raw-denoise contract. Nothing here comes from a real camera."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import tifffile
from onnx import TensorProto, helper, numpy_helper

from engine.models.registry import file_sha256

#: The colour of each letter in the DNG CFAPattern tag.
_CFA_CODES = {"R": 0, "G": 1, "B": 2}
#: A Sony-like ColorMatrix1 (XYZ -> camera, D65).
COLOR_MATRIX = (0.6722, -0.1350, -0.0641, -0.4418, 1.2045, 0.2575, -0.0761, 0.1688, 0.6347)
EXIF = {
    "Exif.Photo.ISOSpeedRatings": "3200",
    "Exif.Photo.ExposureTime": "1/250",
    "Exif.Photo.FNumber": "28/10",
    "Exif.Photo.FocalLength": "50/1",
    "Exif.Photo.LensModel": "Test Optics 50mm F1.8",
    "Exif.Photo.DateTimeOriginal": "2024:05:01 10:11:12",
}


def mosaic_of(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """An H x W x 3 image sampled through a 2x2 Bayer ``pattern`` ("RGGB", "BGGR", "GRBG", "GBRG")."""
    mosaic = np.empty(rgb.shape[:2], rgb.dtype)
    for index, letter in enumerate(pattern):
        dy, dx = divmod(index, 2)
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, "RGB".index(letter)]
    return mosaic


def write_dng(path: Path, mosaic: np.ndarray, *, pattern: str = "RGGB", black: int = 512, white: int = 16383,
              make: str = "Testmaker", model: str = "T-100", neutral: tuple[float, float, float] = (0.5, 1.0, 0.6),
              orientation: int = 1, exif: dict | None = None) -> Path:
    """A DNG of ``mosaic`` (H x W raw values, uint16) with its CFA ``pattern``, black / white levels, the camera's
    white balance (``neutral``, AsShotNeutral) and colour matrix, and EXIF (``EXIF`` by default)."""
    rational = lambda values, signed=False: tuple(v for x in values for v in (int(round(x * 10000)), 10000))  # noqa: E731
    tags = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, f"{make} {model}", True),  # UniqueCameraModel
        (271, "s", 0, make, True),
        (272, "s", 0, model, True),
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, tuple(_CFA_CODES[c] for c in pattern), True),  # CFAPattern
        (50710, "B", 3, (0, 1, 2), True),  # CFAPlaneColor
        (50711, "H", 1, 1, True),  # CFALayout: rectangular
        (50714, "I", 1, int(black), True),  # BlackLevel
        (50717, "I", 1, int(white), True),  # WhiteLevel
        (50721, "2i", 9, rational(COLOR_MATRIX), True),  # ColorMatrix1
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
        (50728, "2I", 3, rational(neutral), True),  # AsShotNeutral
    ]
    tifffile.imwrite(path, np.asarray(mosaic, np.uint16), photometric=32803, extratags=tags, subfiletype=0)
    import pyexiv2

    with pyexiv2.Image(str(path)) as image:
        image.modify_exif({**(EXIF if exif is None else exif), "Exif.Image.Orientation": str(orientation)})
    return path


def scene(height: int = 192, width: int = 256) -> np.ndarray:
    """A linear-light test scene in [0, 1]: a grey ramp, a red and a blue patch, a flat grey field."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rgb = np.stack([0.05 + 0.4 * x / width] * 3, axis=2)
    rgb[height // 8 : height // 3, width // 8 : width // 3] = (0.6, 0.08, 0.05)
    rgb[height // 8 : height // 3, width // 2 : 3 * width // 4] = (0.05, 0.1, 0.5)
    rgb[height // 2 :, width // 2 :] = 0.25
    return rgb


def raw_values(rgb_linear: np.ndarray, pattern: str, black: int, white: int,
               neutral=(0.5, 1.0, 0.6)) -> np.ndarray:
    """Linear scene -> camera raw values: camera-space response ~ the white balance's inverse, the pattern, levels."""
    camera = rgb_linear * np.asarray(neutral)[None, None, :]
    return black + mosaic_of(camera, pattern) * (white - black)


def box_filter_model(folder: Path, model_id: str = "raw-test-box", strength: float = 1.0) -> Path:
    """A tiny raw-denoise model: ``color + strength * (3x3 box(color) - color)`` per plane (it reads
    ``noise_map`` too, with zero weight, as a real one must accept it). strength 0 is the identity."""
    weight = np.zeros((4, 8, 3, 3), np.float32)
    for c in range(4):
        weight[c, c] = strength / 9.0
        weight[c, c, 1, 1] -= strength
    graph = helper.make_graph(
        [helper.make_node("Concat", ["color", "noise_map"], ["both"], axis=1),
         helper.make_node("Conv", ["both", "w"], ["delta"], pads=[1, 1, 1, 1]),
         helper.make_node("Add", ["color", "delta"], ["output"])],
        "raw_box",
        [helper.make_tensor_value_info("color", TensorProto.FLOAT, [1, 4, "H", "W"]),
         helper.make_tensor_value_info("noise_map", TensorProto.FLOAT, [1, 4, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, "H", "W"])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / f"{model_id}.onnx"
    onnx.save(model, str(onnx_path))
    manifest = {
        "id": model_id, "task": "raw-denoise", "name": f"Tiny {model_id}", "engine": "onnx", "file": onnx_path.name,
        "sha256": file_sha256(onnx_path), "scale": 1, "channels": 4, "inputs": ["color", "noise_map"],
        "value_transform": "linear", "tile": {"alignment": 4, "overlap": 4, "default": 0},
        "provenance": {"recipe": "tests/raw_dng.py (a fixed box filter, test only)"},
    }
    (folder / f"{model_id}.json").write_text(json.dumps(manifest), encoding="utf-8")
    return onnx_path
