"""OpenEXR: half and float, single- and multi-part, multi-layer files with render AOVs.

Channels are grouped into layers by the text before their last dot (``albedo.R`` -> layer ``albedo``, channel
``R``). The main colour is the root ``R, G, B`` (``A`` is the alpha), else a layer named like a beauty pass
(``rgba``, ``color``, ``beauty``, ``Combined``...), else the only layer there is (a lone ``Y`` or depth channel
reads as gray). AOVs are recognised by name and stored under the canonical names of engine/image.py:
``albedo`` (``albedo.*``, ``Albedo.*``, ``Denoising Albedo.*``, ``diffcol.*``), ``normal`` (``normal.*``,
``N.*``, ``nn.*``, ``Denoising Normal.*``) and ``depth`` (root ``Z``, ``depth.*``, ``Z.*``). Every other layer is
kept under its own name. The original channel names and pixel types are remembered in ``meta.extra`` so that
saving writes the same layout back.

NOTE: this OpenEXR binding silently writes garbage for non-contiguous arrays; every array is made contiguous.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..display import srgb_decode
from ..errors import ImageReadError, ImageWriteError
from ..image import Image, ImageMeta, make_image
from .convert import channels_equal, rows_per_chunk
from .formats import check_dimensions
from .hdr import value_report

MAIN_KEY = "__main__"
_MAIN_LAYER_NAMES = {"rgba", "rgb", "color", "colour", "beauty", "combined", "image", "main", "default", "noisy"}
_AOV_ALIASES = {
    "albedo": {"albedo", "diffcol", "diffusecolor", "diffusealbedo", "basecolor", "denoisingalbedo", "alb"},
    "normal": {"normal", "normals", "n", "nn", "worldnormal", "shadingnormal", "denoisingnormal", "nrm"},
    "depth": {"depth", "z", "zdepth", "distance", "denoisingdepth"},
}
_ORDERS = (("R", "G", "B", "A"), ("r", "g", "b", "a"), ("X", "Y", "Z"), ("x", "y", "z"), ("U", "V"), ("u", "v"))
_DEPTH_CHANNEL_PREFERENCE = ("Z", "z", "T", "t", "R", "r", "Y", "y", "X", "x", "V", "v")
#: Header attributes that describe the pixel layout; the writer recomputes them.
_LAYOUT_ATTRIBUTES = {"channels", "dataWindow", "displayWindow", "type", "tiles", "chunkCount", "version", "name",
                      "lineOrder", "compression"}
_HALF_MAX = 65504.0


def canonical_aov(layer_name: str) -> str | None:
    """``"ViewLayer.Denoising Albedo"`` -> ``"albedo"``; None for a layer that is no known AOV."""
    last = layer_name.rsplit(".", 1)[-1]
    key = re.sub(r"[\s_\-]", "", last).lower()
    for canonical, aliases in _AOV_ALIASES.items():
        if key in aliases:
            return canonical
    return None


def _ordered(channels: list[str]) -> list[str]:
    """Channel suffixes in their natural order (R G B A, X Y Z), others alphabetically after them."""
    for order in _ORDERS:
        if set(order[:2]) <= set(channels):
            known = [c for c in order if c in channels]
            return known + sorted(c for c in channels if c not in known)
    return sorted(channels)


def _pixel_type(arrays: list[np.ndarray]) -> str:
    kinds = {a.dtype for a in arrays}
    if kinds == {np.dtype(np.float16)}:
        return "half"
    if kinds == {np.dtype(np.uint32)}:
        return "uint"
    return "float"


def _header_channels(part: Any) -> list[Any]:
    return list(part.header.get("channels", []))


def _part_size(part: Any) -> tuple[int, int]:
    low, high = part.header["dataWindow"]
    return int(high[0]) - int(low[0]) + 1, int(high[1]) - int(low[1]) + 1


def _plain(value: Any) -> Any:
    """Header attribute -> a plain Python value for meta.extra, or None when it has no simple form."""
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, np.ndarray) and value.size <= 16:
        return value.tolist()
    return None


def read_exr(path: Path, max_pixels: int) -> Image:
    import OpenEXR

    try:
        header_file = OpenEXR.File(str(path), separate_channels=True, header_only=True)
    except Exception as error:
        raise ImageReadError(path, f"corrupt or truncated OpenEXR file ({_first_line(error)})") from error
    for part in header_file.parts:
        if "deep" in str(part.header.get("type", "")).lower():
            raise ImageReadError(path, "deep OpenEXR images are not supported")
        width, height = _part_size(part)
        check_dimensions(path, width, height, max_pixels)
    try:
        # Interleaved reading hands R, G, B(, A) groups over as one H x W x C array each: a float RGB image then
        # becomes the engine's pixel array without any copy (a 40 MP float EXR reads at ~1x its size in memory).
        exr_file = OpenEXR.File(str(path), separate_channels=False)
        parts = exr_file.parts
        header = dict(parts[0].header)
        width, height = _part_size(parts[0])
        channels, groups = _collect_channels(parts)
        del exr_file, parts
    except ImageReadError:
        raise
    except MemoryError:
        raise
    except Exception as error:
        raise ImageReadError(path, f"corrupt or truncated OpenEXR data ({_first_line(error)})") from error
    if not channels:
        raise ImageReadError(path, "the OpenEXR file has no channels")
    return _assemble(path, channels, groups, header, width, height)


def _first_line(error: BaseException) -> str:
    # The binding's RuntimeErrors say something useful; anything else (an IndexError from a half-read file) not.
    text = str(error).strip()
    if not isinstance(error, RuntimeError) or not text:
        return "the pixel data could not be read"
    return text.splitlines()[0]


def _collect_channels(parts: list[Any]) -> tuple[dict[str, np.ndarray], dict[str, tuple[list[str], np.ndarray]]]:
    """(channels by full name as 2-D arrays or views, interleaved groups {prefix: (full names, H x W x C array)}).

    Channels of later parts are prefixed by their part's name.
    """
    width, height = _part_size(parts[0])
    channels: dict[str, np.ndarray] = {}
    interleaved: dict[str, tuple[list[str], np.ndarray]] = {}
    for index, part in enumerate(parts):
        if _part_size(part) != (width, height):
            continue  # a part of another size cannot be a layer of this image
        part_name = part.name() if index else ""
        for name, channel in part.channels.items():
            pixels = channel.pixels
            if pixels is None:
                continue
            if pixels.ndim == 3:  # an R G B (A) group: "RGB"/"RGBA" at the root, else the layer's name
                prefix = "" if name in ("RGB", "RGBA") else name
                suffixes = ["R", "G", "B", "A"][: pixels.shape[2]]
                names = [_join(_join(part_name, prefix), suffix) for suffix in suffixes]
                interleaved[_join(part_name, prefix)] = (names, pixels)
                for position, full in enumerate(names):
                    channels[full] = pixels[:, :, position]
                continue
            if pixels.shape != (height, width):  # subsampled channel (e.g. chroma): nearest upsampling
                pixels = np.repeat(np.repeat(pixels, channel.ySampling, axis=0), channel.xSampling, axis=1)
                pixels = pixels[:height, :width]
            full = _join(part_name, name) if not (part_name and name.startswith(part_name + ".")) else name
            channels[full] = pixels
    return channels, interleaved


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _take(names: list[str], channels: dict[str, np.ndarray],
          interleaved: dict[str, tuple[list[str], np.ndarray]]) -> np.ndarray:
    """float32 H x W x len(names) of these channels; the file's own array when it already is exactly that."""
    for group_names, array in interleaved.values():
        if group_names == names and array.dtype == np.float32 and array.flags.c_contiguous:
            return array
    first = channels[names[0]]
    out = np.empty((*first.shape, len(names)), dtype=np.float32)
    for position, name in enumerate(names):
        out[:, :, position] = channels[name]
    return out


def _assemble(path: Path, channels: dict[str, np.ndarray], interleaved: dict[str, tuple[list[str], np.ndarray]],
              header: dict, width: int, height: int) -> Image:
    groups: dict[str, list[str]] = {}
    for full in channels:
        layer, _, suffix = full.rpartition(".")
        groups.setdefault(layer, []).append(suffix)

    main_layer, main_suffixes, gray = _choose_main(groups)
    if main_layer is None:
        raise ImageReadError(path, f"no colour channels found (channels: {', '.join(sorted(channels)[:12])})")

    main_names = [_join(main_layer, s) for s in main_suffixes]
    main_arrays = [channels[n] for n in main_names]
    pixels = _take(main_names, channels, interleaved)  # gray: H x W x 1, which make_image repeats to RGB
    alpha = None
    used = set(main_names)
    alpha_suffix = next((a for a in ("A", "a") if a in groups[main_layer] and a not in main_suffixes), None)
    if alpha_suffix:
        alpha_name = _join(main_layer, alpha_suffix)
        alpha = _take([alpha_name], channels, interleaved)[:, :, 0]
        used.add(alpha_name)
        main_names.append(alpha_name)

    layers: dict[str, np.ndarray] = {}
    layer_channels: dict[str, list[str]] = {MAIN_KEY: main_names}
    layer_types: dict[str, str] = {MAIN_KEY: _pixel_type(main_arrays)}
    # Root channels other than the main ones: Z is depth; anything else becomes a one-channel layer of its name.
    for name in groups.get("", []):
        if name in used:
            continue
        key = "depth" if name in ("Z", "depth") and "depth" not in layers else name
        if key in layers:
            continue
        layers[key] = _take([name], channels, interleaved)
        layer_channels[key] = [name]
        layer_types[key] = _pixel_type([channels[name]])
        used.add(name)
    for layer, suffixes in groups.items():
        if layer == "":
            continue
        if layer == main_layer:  # leftover channels of the main layer are kept as their own layer
            suffixes = [s for s in suffixes if _join(layer, s) not in used]
            if not suffixes:
                continue
        canonical = canonical_aov(layer)
        if canonical and canonical not in layers:
            names = _aov_channels(canonical, layer, _ordered(suffixes))
            key = canonical
        else:
            names = [_join(layer, s) for s in _ordered(suffixes)]
            key = layer if layer not in layers else f"{layer}#{len(layers)}"
        layers[key] = _take(names, channels, interleaved)
        layer_channels[key] = names
        layer_types[key] = _pixel_type([channels[n] for n in names])

    kind = layer_types[MAIN_KEY]
    extra: dict[str, Any] = dict(value_report(pixels))
    extra["exr_channels"] = layer_channels
    extra["exr_types"] = layer_types
    extra["exr_header"] = {k: v for k, v in ((k, _plain(v)) for k, v in header.items() if k not in _LAYOUT_ATTRIBUTES)
                           if v is not None}
    compression = header.get("compression")
    if compression is not None:
        extra["exr_compression"] = getattr(compression, "name", str(compression))
    data_window = header.get("dataWindow")
    display_window = header.get("displayWindow")
    if data_window is not None and display_window is not None:
        windows = [np.asarray(w).tolist() for w in (*data_window, *display_window)]
        if windows[0] != windows[2] or windows[1] != windows[3]:
            extra["exr_data_window"] = [windows[0], windows[1]]
            extra["exr_display_window"] = [windows[2], windows[3]]
    meta = ImageMeta(
        path=str(path),
        format="exr",
        bit_depth=16 if kind == "half" else 32,
        sample_type=kind,
        gray=gray,
        hdr=True,
        color_space="linear",
        extra=extra,
    )
    return make_image(pixels, alpha, meta, layers)


def _choose_main(groups: dict[str, list[str]]) -> tuple[str | None, list[str], bool]:
    """(layer, channel suffixes in R G B order, gray) of the main colour."""
    for layer in [""] + [g for g in groups if g]:
        suffixes = groups.get(layer)
        if suffixes is None:
            continue
        if layer and layer.rsplit(".", 1)[-1].lower().replace(" ", "") not in _MAIN_LAYER_NAMES:
            continue
        for rgb in (("R", "G", "B"), ("r", "g", "b")):
            if set(rgb) <= set(suffixes):
                return layer, list(rgb), False
        is_vector = {"X", "Z"} <= set(suffixes) or {"x", "z"} <= set(suffixes)  # X Y Z is a normal, not luminance
        if layer == "" and ("Y" in suffixes or "y" in suffixes) and not is_vector:
            return layer, ["Y" if "Y" in suffixes else "y"], True
    # No beauty pass by name: a single RGB layer that is not an AOV, then any lone layer (an AOV file read alone).
    candidates = [g for g in groups if g and canonical_aov(g) is None and {"R", "G", "B"} <= set(groups[g])]
    if len(candidates) == 1:
        return candidates[0], ["R", "G", "B"], False
    if len(groups) == 1:
        layer, suffixes = next(iter(groups.items()))
        ordered = _ordered(suffixes)
        if len(ordered) >= 3:
            return layer, ordered[:3], False
        return layer, ordered[:1], True
    return None, [], False


def _aov_channels(canonical: str, layer: str, suffixes: list[str]) -> list[str]:
    if canonical == "depth":
        chosen = next((s for s in _DEPTH_CHANNEL_PREFERENCE if s in suffixes), suffixes[0])
        return [f"{layer}.{chosen}"]
    return [f"{layer}.{s}" for s in suffixes[:3]] if len(suffixes) >= 3 else [f"{layer}.{s}" for s in suffixes]


# --- writing ----------------------------------------------------------------------------------------------------


def default_sample_type(image: Image) -> str:
    meta = image.meta
    if meta.format == "exr" and meta.sample_type in ("half", "float"):
        return meta.sample_type
    if meta.hdr or meta.sample_type == "float" or meta.bit_depth >= 16:
        return "float"
    return "half"  # 8-bit sources lose nothing in half precision


def _default_layer_names(name: str, count: int) -> list[str]:
    if name == "normal" and count == 3:
        return ["normal.X", "normal.Y", "normal.Z"]
    if name == "depth" and count == 1:
        return ["depth.Z"]
    if count == 1:
        return [name]
    suffixes = ("R", "G", "B", "A") if count <= 4 else tuple(str(i) for i in range(count))
    return [f"{name}.{s}" for s in suffixes[:count]]


_DTYPES = {"half": np.float16, "float": np.float32, "uint": np.uint32}


def _plane(source: np.ndarray, index: int | None, kind: str, *, to_linear: bool = False) -> np.ndarray:
    """One contiguous channel plane of the EXR pixel type, converted in row chunks (no whole-image temporaries).

    Half: values beyond its range are kept at the largest half instead of becoming Inf (NaN stays NaN).
    """
    height, width = source.shape[:2]
    out = np.empty((height, width), dtype=_DTYPES[kind])
    rows = rows_per_chunk(width)
    for top in range(0, height, rows):
        part = source[top : top + rows] if index is None else source[top : top + rows, :, index]
        part = np.asarray(part, dtype=np.float32)
        if to_linear:
            part = srgb_decode(part)
        if kind == "half":
            part = np.clip(part, -_HALF_MAX, _HALF_MAX)
        elif kind == "uint":
            part = np.rint(np.clip(np.nan_to_num(part), 0, 4294967295))
        out[top : top + rows] = part
    return out


def write_exr(temporary: Path, image: Image, bit_depth: int | None, path: Path) -> None:
    import OpenEXR

    meta = image.meta
    if bit_depth not in (None, 16, 32):
        raise ImageWriteError(path, "OpenEXR stores 16-bit (half) or 32-bit (float) samples")
    kind = {16: "half", 32: "float"}.get(bit_depth) if bit_depth else default_sample_type(image)
    known_channels: dict[str, list[str]] = dict(meta.extra.get("exr_channels", {})) if meta.format == "exr" else {}
    known_types: dict[str, str] = dict(meta.extra.get("exr_types", {})) if meta.format == "exr" else {}
    pixels = image.pixels
    to_linear = not meta.hdr  # display-referred images are stored linear in EXR
    main_names = known_channels.get(MAIN_KEY, [])
    channels: dict[str, np.ndarray] = {}
    gray_original = (meta.gray and len(main_names) in (1, 2) and not main_names[0].endswith(("R", "r"))
                     and channels_equal(pixels))
    if gray_original:
        channels[main_names[0]] = _plane(pixels, 0, kind, to_linear=to_linear)
        alpha_name = main_names[1] if len(main_names) > 1 else "A"
    else:
        rgb = main_names[:3] if len(main_names) >= 3 else ["R", "G", "B"]
        for index, name in enumerate(rgb):
            channels[name] = _plane(pixels, index, kind, to_linear=to_linear)
        alpha_name = main_names[3] if len(main_names) > 3 else (rgb[0].rpartition(".")[0] + ".A").lstrip(".")
    if image.alpha is not None:
        channels[alpha_name] = _plane(image.alpha, None, kind)
    for name, layer in image.layers.items():
        names = known_channels.get(name)
        if not names or len(names) != layer.shape[2]:
            names = _default_layer_names(name, layer.shape[2])
        layer_kind = known_types.get(name, kind) if bit_depth is None else kind
        for index, channel_name in enumerate(names):
            if channel_name in channels:
                raise ImageWriteError(path, f"two layers would write the channel {channel_name!r}")
            channels[channel_name] = _plane(layer, index, layer_kind)

    header: dict[str, Any] = {"type": OpenEXR.scanlineimage}
    for key, value in dict(meta.extra.get("exr_header", {})).items() if meta.format == "exr" else ():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            header[key] = value
    compression_name = meta.extra.get("exr_compression") if meta.format == "exr" else None
    header["compression"] = getattr(OpenEXR.Compression, str(compression_name), None) or OpenEXR.ZIP_COMPRESSION
    data_window = meta.extra.get("exr_data_window")
    display_window = meta.extra.get("exr_display_window")
    if data_window and display_window and meta.format == "exr":
        (x0, y0), (x1, y1) = data_window
        if (x1 - x0 + 1, y1 - y0 + 1) == (image.width, image.height):
            header["dataWindow"] = (np.array([x0, y0], dtype=np.int32), np.array([x1, y1], dtype=np.int32))
            header["displayWindow"] = tuple(np.array(v, dtype=np.int32) for v in display_window)
    OpenEXR.File(header, channels).write(str(temporary))
