"""Tiny ONNX models built node by node (no torch), following the ONNX contract of engine/models/manifest.py.

They are real networks (random but fixed convolution weights), small enough that tests run in milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from engine.models.registry import file_sha256


def conv_stack(
    path: Path,
    *,
    layers: int = 3,
    channels: int = 3,
    width: int = 4,
    scale: int = 1,
    noise_input: bool = False,
    extra_inputs: tuple[str, ...] = (),
    seed: int = 0,
) -> Path:
    """3x3 conv layers with ReLU (receptive radius = ``layers``), a residual, optional pixel shuffle."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    in_channels = channels + 3 * len(extra_inputs) + (1 if noise_input else 0)
    current = "color"
    graph_inputs = [helper.make_tensor_value_info("color", TensorProto.FLOAT, [1, channels, "H", "W"])]
    concat = ["color"]
    for name in extra_inputs:
        graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3, "H", "W"]))
        concat.append(name)
    if noise_input:
        graph_inputs.append(helper.make_tensor_value_info("noise_level", TensorProto.FLOAT, [1, 1, 1, 1]))
        nodes.append(helper.make_node("Shape", ["color"], ["shape"]))
        inits.append(numpy_helper.from_array(np.array([0], np.int64), "zero"))
        inits.append(numpy_helper.from_array(np.array([1], np.int64), "one"))
        nodes.append(helper.make_node("Shape", ["color"], ["hw"], start=2))
        nodes.append(helper.make_node("Concat", ["one", "one", "hw"], ["map_shape"], axis=0))
        nodes.append(helper.make_node("Expand", ["noise_level", "map_shape"], ["noise_map"]))
        concat.append("noise_map")
    if len(concat) > 1:
        nodes.append(helper.make_node("Concat", concat, ["features_in"], axis=1))
        current = "features_in"
    out_channels_last = channels * scale * scale
    for index in range(layers):
        c_in = in_channels if index == 0 else width
        c_out = out_channels_last if index == layers - 1 else width
        weight = (rng.standard_normal((c_out, c_in, 3, 3)) * (0.3 / np.sqrt(c_in))).astype(np.float32)
        bias = (rng.standard_normal(c_out) * 0.01).astype(np.float32)
        inits += [numpy_helper.from_array(weight, f"w{index}"), numpy_helper.from_array(bias, f"b{index}")]
        out = f"conv{index}"
        nodes.append(helper.make_node("Conv", [current, f"w{index}", f"b{index}"], [out], pads=[1, 1, 1, 1]))
        current = out
        if index < layers - 1:
            nodes.append(helper.make_node("Relu", [current], [f"relu{index}"]))
            current = f"relu{index}"
    if scale > 1:
        nodes.append(helper.make_node("DepthToSpace", [current], ["shuffled"], blocksize=scale, mode="CRD"))
        nodes.append(helper.make_node("Resize", ["color", "", "scales"], ["upsampled"], mode="nearest"))
        inits.append(numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "scales"))
        nodes.append(helper.make_node("Add", ["shuffled", "upsampled"], ["output"]))
    else:
        nodes.append(helper.make_node("Add", [current, "color"], ["output"]))
    graph = helper.make_graph(
        nodes,
        "tiny",
        graph_inputs,
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, channels, "H2", "W2"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def install(folder: Path, model_id: str, task: str = "photo-denoise", **manifest_fields) -> Path:
    """Write ``<id>.onnx`` (from ``conv_stack`` options in ``manifest_fields['build']``) and its manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    build = manifest_fields.pop("build", {})
    onnx_path = conv_stack(folder / f"{model_id}.onnx", **build)
    manifest = {
        "id": model_id,
        "task": task,
        "name": f"Tiny {model_id}",
        "engine": "onnx",
        "file": onnx_path.name,
        "sha256": file_sha256(onnx_path),
        "scale": build.get("scale", 1),
        "channels": build.get("channels", 3),
        "inputs": ["color", *build.get("extra_inputs", ()), *(["noise_level"] if build.get("noise_input") else [])],
        "tile": {"alignment": 1, "overlap": build.get("layers", 3) + 1, "default": 0},
        "provenance": {"recipe": "tests/onnx_factory.py (random weights, test only)"},
    }
    manifest.update(manifest_fields)
    (folder / f"{model_id}.json").write_text(json.dumps(manifest), encoding="utf-8")
    return onnx_path
