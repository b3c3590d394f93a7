"""OpenEXR: half and float, single- and multi-part, tiled, multi-layer files with render AOVs, read and written back
in the layout they came in.

Reading keeps a description of the file in ``meta.extra["exr_layout"]``: its parts (name, header attributes,
storage, tiles, compression, data and display windows) and every channel (its name in the file, pixel type,
sampling, and where its pixels live in the :class:`Image`). Channel names are the file's own: a multi-part file
from Blender (part ``ViewLayer.Combined`` holding ``ViewLayer.Combined.R``...) gives ``ViewLayer.Combined.R``,
not the part name twice; a part's name is put in front only when two parts hold channels of the same name.

The main colour is the root ``R, G, B`` (also ``r, g, b``, V-Ray's ``.R, .G, .B``, a lone ``Y`` or only ``R`` and
``G`` with a black blue), else a layer named like a beauty pass (``Combined``, ``rgba``, ``C``, ``Ci``,
``beauty``...), else the only RGB layer there is; its ``A`` is the alpha. Every other layer is kept under its own
name (``ViewLayer.Denoising Albedo``, with all its channels, also more than four). Which of them are albedo,
normal, depth, diffuse / specular, motion vectors is decided by the table of ``aov.py``; the model inputs are also
stored under the canonical names of engine/image.py (``albedo``, ``normal`` in world space, ``depth`` with its
background at 0), and ``meta.extra["aov_roles"]`` says where each role came from.

Writing an image with such a layout (and the same size) writes the same parts, channel names, pixel types,
sampling, compression, windows and header attributes; the colour (and alpha) channels take the image's pixels,
every other channel is written from its layer unchanged (half and float values survive float32 exactly; 32-bit
uint channels are written from the file's own integers). Layers the file did not have (sidecar AOVs) are added to
the first part. Known limits (the binding cannot write them; ``info`` notes it): a mip- or rip-mapped tiled file is
written with its full-resolution level only, subsampled (chroma) channels at full resolution; deep files are refused.

NOTE: this OpenEXR binding silently writes garbage for non-contiguous arrays; every array is made contiguous.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..display import srgb_decode
from ..errors import ImageReadError, ImageWriteError
from ..image import Image, ImageMeta, make_image
from . import aov
from .convert import channels_equal, rows_per_chunk
from .formats import check_dimensions
from .hdr import value_report

MAIN_KEY = "__main__"
ALPHA_KEY = "__alpha__"
_MAIN_LAYER_NAMES = {"rgba", "rgb", "color", "colour", "beauty", "combined", "image", "main", "default", "noisy",
                     "c", "ci"}
_ORDERS = (("R", "G", "B", "A"), ("r", "g", "b", "a"), ("X", "Y", "Z", "W"), ("x", "y", "z", "w"), ("U", "V"),
           ("u", "v"))
#: Header attributes that describe the pixel layout and that the writer recomputes.
_COMPUTED_ATTRIBUTES = {"channels", "chunkCount", "version", "name"}
#: Attributes worth reporting as plain values (``exr_header``).
_LAYOUT_ATTRIBUTES = {"channels", "dataWindow", "displayWindow", "type", "tiles", "chunkCount", "version", "name",
                      "lineOrder", "compression"}
_HALF_MAX = 65504.0


def canonical_aov(layer_name: str) -> str | None:
    """``"ViewLayer.Denoising Albedo"`` -> ``"albedo"``; None for a layer that is no model input."""
    found = aov.match(layer_name)
    return found[1].role if found and found[1].role in aov.MODEL_ROLES else None


def _ordered(channels: list[str]) -> list[str]:
    """Channel suffixes in their natural order (R G B A, X Y Z W), others alphabetically after them."""
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


#: EXR header keys giving a render's samples per pixel: Cycles writes ``cycles.<view layer>.samples``.
SAMPLES_KEY = re.compile(r"cycles\..+\.samples")  # view layer names may hold dots (ViewLayer.001)


def samples_in_header(header: dict) -> int | None:
    """Samples per pixel written in an EXR header (``meta.extra["exr_header"]``, :data:`SAMPLES_KEY`), or None."""
    for key, value in header.items():
        if SAMPLES_KEY.fullmatch(str(key)):
            try:
                return int(float(str(value).strip()))
            except ValueError:
                return None
    return None


@dataclass
class _Channel:
    """One channel of the file: where it is, its type, and its pixels (a 2-D array or view)."""

    part: int
    name: str
    kind: str
    x_sampling: int
    y_sampling: int
    p_linear: bool
    pixels: np.ndarray
    key: str = ""


@dataclass
class ExrLayout:
    """What ``write_exr`` needs to write a file back as it was read (kept in ``meta.extra["exr_layout"]``)."""

    width: int
    height: int
    #: One dict per part: ``name`` (None for a single-part file), ``header`` (attributes as read).
    parts: list[dict[str, Any]]
    #: One dict per channel: ``part``, ``name``, ``kind``, ``sampling``, ``p_linear``, ``layer`` (a key of
    #: image.layers, MAIN_KEY or ALPHA_KEY), ``index`` (channel of that layer), ``raw`` (the file's own array for
    #: channels the Image cannot hold exactly: uint, subsampled, parts of another size).
    channels: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def layer_keys(self) -> set[str]:
        return {c["layer"] for c in self.channels}


def read_exr(path: Path, max_pixels: int) -> Image:
    import OpenEXR

    try:
        header_file = OpenEXR.File(str(path), separate_channels=True, header_only=True)
    except Exception as error:
        raise ImageReadError(path, f"corrupt or truncated OpenEXR file ({_first_line(error)})") from error
    for part in header_file.parts:
        if "deep" in str(part.header.get("type", "")).lower():
            raise ImageReadError(path, "deep OpenEXR images (several samples per pixel) are not supported; "
                                       "flatten it first (e.g. Nuke's DeepToImage or oiiotool --flatten)")
        width, height = _part_size(part)
        check_dimensions(path, width, height, max_pixels)
    try:
        parts = _read_parts(path)
        records, groups = _collect_channels(parts)
        headers = [dict(part.header) for part in parts]
        names = [part.name() if len(parts) > 1 or "name" in part.header else None for part in parts]
        width, height = _part_size(parts[0])
        del parts
    except ImageReadError:
        raise
    except MemoryError:
        raise
    except Exception as error:
        raise ImageReadError(path, f"corrupt or truncated OpenEXR data ({_first_line(error)})") from error
    if not records:
        raise ImageReadError(path, "the OpenEXR file has no channels")
    return _assemble(path, records, groups, headers, names, width, height)


def _read_parts(path: Path) -> list[Any]:
    """The file's parts with their pixels: R G B (A) groups interleaved where the binding can (a float RGB image
    then becomes the engine's pixel array without a copy), channel by channel where a group mixes half and float."""
    import OpenEXR

    try:
        return list(OpenEXR.File(str(path), separate_channels=False).parts)
    except ValueError as error:
        if "coalesce" not in str(error):
            raise
    return list(OpenEXR.File(str(path), separate_channels=True).parts)


def _first_line(error: BaseException) -> str:
    # The binding's RuntimeErrors say something useful; anything else (an IndexError from a half-read file) not.
    text = str(error).strip()
    if not isinstance(error, RuntimeError) or not text:
        return "the pixel data could not be read"
    return text.splitlines()[0]


def _collect_channels(parts: list[Any]) -> tuple[list[_Channel], dict[str, tuple[list[str], np.ndarray]]]:
    """Every channel of every part (file order within a part), and the interleaved groups {prefix: (keys, array)}.

    A channel's key is its name in the file; the part's name is put in front only when another part has a channel
    of the same name (two parts each with ``R G B``), never a second time (Blender's ``ViewLayer.Combined`` part
    holds ``ViewLayer.Combined.R``).
    """
    records: list[_Channel] = []
    interleaved_arrays: list[tuple[int, list[int], np.ndarray]] = []
    for index, part in enumerate(parts):
        in_file = {c.name for c in part.header.get("channels", [])}
        for name, channel in part.channels.items():
            pixels = channel.pixels
            if pixels is None:
                continue
            if pixels.ndim == 3:  # an R G B (A) group: "RGB"/"RGBA" at the root, else the layer's name
                prefix = "" if name in ("RGB", "RGBA") else name
                members = []
                for position, suffix in enumerate("RGBA"[: pixels.shape[2]]):
                    full = f"{prefix}.{suffix}" if prefix else suffix
                    if full not in in_file and f".{full}" in in_file:
                        full = f".{full}"  # V-Ray's ".R .G .B": grouped as the root "RGBA" by the binding
                    members.append(len(records))
                    records.append(_Channel(index, full, _pixel_type([pixels]), channel.xSampling,
                                            channel.ySampling, bool(channel.pLinear), pixels[:, :, position]))
                interleaved_arrays.append((index, members, pixels))
                continue
            records.append(_Channel(index, name, _pixel_type([pixels]), channel.xSampling,
                                    channel.ySampling, bool(channel.pLinear), pixels))
    counts: dict[str, int] = {}
    for record in records:
        counts[record.name] = counts.get(record.name, 0) + 1
    taken: set[str] = set()
    for record in records:
        key = record.name
        part_name = parts[record.part].name() if len(parts) > 1 else ""
        if counts[key] > 1 and part_name and not key.startswith(part_name + "."):
            key = f"{part_name}.{key}"
        while key in taken:
            key += "'"
        record.key = key
        taken.add(key)
    groups = {}
    for _, members, array in interleaved_arrays:
        keys = [records[m].key for m in members]
        groups[keys[0].rpartition(".")[0]] = (keys, array)
    return records, groups


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _take(keys: list[str], planes: dict[str, np.ndarray],
          interleaved: dict[str, tuple[list[str], np.ndarray]]) -> np.ndarray:
    """float32 H x W x len(keys) of these channels; the file's own array when it already is exactly that."""
    for group_keys, array in interleaved.values():
        if group_keys == keys and array.dtype == np.float32 and array.flags.c_contiguous:
            return array
    first = planes[keys[0]]
    out = np.empty((*first.shape, len(keys)), dtype=np.float32)
    for position, key in enumerate(keys):
        out[:, :, position] = planes[key]
    return out


def _assemble(path: Path, records: list[_Channel], interleaved: dict[str, tuple[list[str], np.ndarray]],
              headers: list[dict], part_names: list[str | None], width: int, height: int) -> Image:
    part_sizes = [_part_size_of(h) for h in headers]
    planes: dict[str, np.ndarray] = {}
    groups: dict[str, dict[str, str]] = {}
    by_key = {r.key: r for r in records}
    for record in records:
        if part_sizes[record.part] != (width, height) or (record.x_sampling, record.y_sampling) != (1, 1):
            continue  # kept as the file has it (raw), written back unchanged
        planes[record.key] = record.pixels
        layer, _, suffix = record.key.rpartition(".")
        if suffix in groups.setdefault(layer, {}):
            groups.setdefault(record.key, {})[""] = record.key  # a second ".R" beside "R": a layer of its own
        else:
            groups[layer][suffix] = record.key
    groups = {layer: suffixes for layer, suffixes in groups.items() if suffixes}

    main_layer, main_suffixes, gray = _choose_main(groups)
    if main_layer is None:
        raise ImageReadError(path, f"no colour channels found (channels: {', '.join(sorted(planes)[:12])})")
    main_keys = [groups[main_layer][s] for s in main_suffixes]
    placement: dict[str, tuple[str, int]] = {key: (MAIN_KEY, i) for i, key in enumerate(main_keys)}
    if len(main_keys) == 2:  # only R and G: blue is black, as other viewers show it
        pixels = np.dstack([planes[main_keys[0]], planes[main_keys[1]],
                            np.zeros((height, width), np.float32)]).astype(np.float32)
    else:
        pixels = _take(main_keys, planes, interleaved)  # gray: H x W x 1, which make_image repeats to RGB
    alpha = None
    alpha_suffix = next((a for a in ("A", "a") if a in groups[main_layer] and a not in main_suffixes), None)
    if alpha_suffix:
        alpha_key = groups[main_layer][alpha_suffix]
        alpha = _take([alpha_key], planes, interleaved)[:, :, 0]
        placement[alpha_key] = (ALPHA_KEY, 0)

    # Every other channel in a layer of its own name: root channels one by one ("Z", "objectid"), the main layer's
    # leftovers under its name, every other layer with all its channels in their natural order.
    file_layers: dict[str, list[str]] = {}
    for layer, suffixes in groups.items():
        left = [s for s in suffixes if suffixes[s] not in placement]
        if not left:
            continue
        if layer == "":
            for suffix in left:
                file_layers[suffixes[suffix]] = [suffixes[suffix]]
        else:
            file_layers[layer] = [suffixes[s] for s in _ordered(left)]

    roles, derived = _resolve_roles(file_layers, planes, interleaved, headers[0], main_layer, main_keys,
                                    alpha_suffix, groups)
    layers: dict[str, np.ndarray] = {}
    layer_keys: dict[str, str] = {}
    for layer, keys in file_layers.items():
        name = layer if layer not in derived or _same(derived[layer], keys, planes) else f"{layer} (file)"
        layer_keys[layer] = name
        layers[name] = _take(keys, planes, interleaved)
        for index, key in enumerate(keys):
            placement[key] = (name, index)
    for canonical, array in derived.items():
        layers.setdefault(canonical, array)

    channels = []
    for record in records:
        where = placement.get(record.key)
        entry = {"part": record.part, "name": record.name, "kind": record.kind,
                 "sampling": (record.x_sampling, record.y_sampling), "p_linear": record.p_linear,
                 "layer": where[0] if where else None, "index": where[1] if where else 0}
        if where is None or record.kind == "uint":
            entry["raw"] = np.ascontiguousarray(record.pixels)
        channels.append(entry)
    notes = []
    subsampled = [r.name for r in records if (r.x_sampling, r.y_sampling) != (1, 1)]
    if subsampled:
        notes.append(f"subsampled channels ({', '.join(subsampled[:4])}) are written at full resolution")
    parts = []
    for index, header in enumerate(headers):
        tiles = header.get("tiles")
        if tiles is not None and str(getattr(tiles, "mode", "")).endswith(("MIPMAP_LEVELS", "RIPMAP_LEVELS")):
            notes.append(f"part {index}: mip-/rip-mapped tiles; only the full-resolution level is read and written")
        parts.append({"name": part_names[index], "header": {k: v for k, v in header.items()
                                                             if k not in _COMPUTED_ATTRIBUTES}})
    layout = ExrLayout(width, height, parts, channels, notes)

    main_types = [by_key[k].kind for k in main_keys]
    kind = main_types[0] if len(set(main_types)) == 1 else "float"
    header = headers[0]
    extra: dict[str, Any] = dict(value_report(pixels))
    extra["exr_layout"] = layout
    extra["aov_roles"] = roles
    # The plain layer -> channel names map of the generic writer (used when the layout no longer fits, e.g. after
    # super-resolution): canonical AOVs under short names, file layers under theirs.
    extra["exr_channels"] = {MAIN_KEY: main_keys + ([groups[main_layer][alpha_suffix]] if alpha_suffix else []),
                             **{layer_keys[layer]: keys for layer, keys in file_layers.items()}}
    extra["exr_types"] = {MAIN_KEY: kind, **{layer_keys[layer]: _pixel_type([planes[k] for k in keys])
                                            for layer, keys in file_layers.items()}}
    extra["exr_parts"] = len(headers)
    extra["exr_header"] = {k: v for k, v in ((k, _plain(v)) for k, v in header.items() if k not in _LAYOUT_ATTRIBUTES)
                           if v is not None}
    compression = header.get("compression")
    if compression is not None:
        extra["exr_compression"] = getattr(compression, "name", str(compression))
    if header.get("tiles") is not None:
        tiles = header["tiles"]
        extra["exr_tiles"] = f"{tiles.xSize} x {tiles.ySize}, {getattr(tiles.mode, 'name', tiles.mode)}"
    if notes:
        extra["exr_notes"] = notes
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


def _part_size_of(header: dict) -> tuple[int, int]:
    low, high = header["dataWindow"]
    return int(high[0]) - int(low[0]) + 1, int(high[1]) - int(low[1]) + 1


def _same(array: np.ndarray, keys: list[str], planes: dict[str, np.ndarray]) -> bool:
    """Whether a derived role layer is exactly these file channels (then it can share the file layer's name)."""
    return array.shape[2] == len(keys) and all(np.array_equal(planes[k], array[:, :, i]) for i, k in enumerate(keys))


def _resolve_roles(file_layers: dict[str, list[str]], planes: dict[str, np.ndarray],
                   interleaved: dict[str, tuple[list[str], np.ndarray]], header: dict, main_layer: str,
                   main_keys: list[str], alpha_suffix: str | None, groups: dict[str, dict[str, str]]
                   ) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """({role: where it came from}, {canonical name: model-input layer}) by the table of aov.py."""
    candidates = aov.roles_of(list(file_layers))
    roles: dict[str, dict[str, Any]] = {}
    derived: dict[str, np.ndarray] = {}
    normals = {layer: _take(file_layers[layer], planes, interleaved) for layer in candidates.get("normal", [])}
    for role in aov.MODEL_ROLES:
        if role in candidates:
            layer = candidates[role][0]
            array = normals.get(layer) if role == "normal" else _take(file_layers[layer], planes, interleaved)
            derived[role], keys, note = aov.model_layer(role, layer, array, file_layers[layer], header, normals)
            roles[role] = _role_entry(layer, keys, note, candidates.get(role, []))
    for role in ("diffuse", "specular", "motion"):
        if role in candidates:
            layer = candidates[role][0]
            roles[role] = _role_entry(layer, file_layers[layer], "", candidates[role])
    if "motion" in roles:  # whether engine/motion.py can turn it into the engine's backward flow
        from ..motion import convention_key, convention_known, describe_convention

        renderer = roles["motion"]["renderer"]
        roles["motion"]["convention"] = convention_key(renderer) if convention_known(renderer) else ""
        roles["motion"]["note"] = describe_convention(renderer)
    roles["colour"] = {"layer": main_layer, "channels": main_keys, "renderer": "", "note": ""}
    if alpha_suffix:
        roles["alpha"] = {"layer": main_layer, "channels": [groups[main_layer][alpha_suffix]], "renderer": "",
                          "note": "premultiplied (OpenEXR's convention)"}
    return roles, derived


def _role_entry(layer: str, keys: list[str], note: str, candidates: list[str]) -> dict[str, Any]:
    found = aov.match(layer)
    others = [c for c in candidates if c != layer]
    return {"layer": layer, "channels": keys, "renderer": found[1].renderer if found else "", "note": note,
            **({"alternatives": others} if others else {})}


def assign_roles(image: Image, choices: dict[str, str | None]) -> Image:
    """The image with other passes as model inputs: ``{"normal": "ViewLayer.Normal", "depth": None}`` (None: no
    such input). A layer is named as in ``image.layers``; it is converted as on reading (normal to world space,
    depth background to 0). What is written back does not change: the file's passes keep their names and data."""
    extra = dict(image.meta.extra)
    roles = dict(extra.get("aov_roles", {}))
    layers = dict(image.layers)
    layout = extra.get("exr_layout")
    header = layout.parts[0]["header"] if isinstance(layout, ExrLayout) else {}
    file_keys = layout.layer_keys if isinstance(layout, ExrLayout) else set()
    channel_names = dict(extra.get("exr_channels", {}))
    for role, layer in choices.items():
        if role not in aov.MODEL_ROLES:
            raise ValueError(f"{role!r} is not a model input (choose from {', '.join(aov.MODEL_ROLES)})")
        if layer is not None and (layer not in layers or layer in aov.MODEL_ROLES and layer not in file_keys):
            raise ValueError(f"no layer {layer!r} in this image")
        if role in file_keys:  # a file pass named like the role ("albedo"): keep it under another name first
            renamed = f"{role} (file)"
            layers[renamed] = layers[role]
            layout = dataclasses.replace(layout, channels=[dict(c, layer=renamed) if c["layer"] == role else c
                                                           for c in layout.channels])
            file_keys = layout.layer_keys
            extra["exr_layout"] = layout
            if role in channel_names:
                channel_names[renamed] = channel_names.pop(role)
            if layer == role:
                layer = renamed
        if layer is None:
            layers.pop(role, None)
            roles.pop(role, None)
            continue
        names = channel_names.get(layer) or [f"{layer}.{i}" for i in range(layers[layer].shape[2])]
        others = {name: array for name, array in layers.items() if name not in aov.MODEL_ROLES}
        layers[role], keys, note = aov.model_layer(role, layer, layers[layer], names, header, others)
        roles[role] = _role_entry(layer, keys, note or "chosen by the user", [])
        if note:
            roles[role]["note"] = f"{note}; chosen by the user"
    extra["aov_roles"] = roles
    extra["exr_channels"] = channel_names
    return make_image(image.pixels, image.alpha, image.meta.replace(extra=extra), layers)


def choose_colour(image: Image, layer: str) -> Image:
    """The image with another layer of the file as the colour that is restored (a light group, the diffuse pass):
    that layer's first three channels become the pixels and take the restored colour on writing; the beauty becomes
    a layer of its own (``<name> (colour)``), written back unchanged."""
    extra = dict(image.meta.extra)
    layout = extra.get("exr_layout")
    if not isinstance(layout, ExrLayout) or layer not in layout.layer_keys or layer in (MAIN_KEY, ALPHA_KEY):
        raise ValueError(f"no layer {layer!r} of this file can be the colour")
    source = image.layers[layer]
    if source.shape[2] < 3:
        raise ValueError(f"{layer!r} has {source.shape[2]} channel(s); the colour needs three")
    main = [c for c in layout.channels if c["layer"] == MAIN_KEY]
    beauty = (main[0]["name"].rpartition(".")[0] or "colour") + " (colour)"
    layers = dict(image.layers)
    layers[beauty] = np.array(image.pixels[:, :, : max(1, len(main))])
    channels = []
    for entry in layout.channels:
        if entry["layer"] == MAIN_KEY:
            entry = dict(entry, layer=beauty)
        elif entry["layer"] == layer and entry["index"] < 3:
            entry = dict(entry, layer=MAIN_KEY)
        channels.append(entry)
    extra["exr_layout"] = dataclasses.replace(layout, channels=channels)
    names = dict(extra.get("exr_channels", {}))
    names[beauty] = [c["name"] for c in main]
    names[MAIN_KEY] = names.get(layer, [])[:3]
    extra["exr_channels"] = names
    extra["exr_colour_layer"] = layer
    extra["aov_roles"] = {**dict(extra.get("aov_roles", {})),
                          "colour": {"layer": layer, "channels": names[MAIN_KEY], "renderer": "",
                                     "note": "chosen by the user; the beauty is written back unchanged"}}
    meta = image.meta.replace(extra=extra, gray=False)
    return make_image(np.array(source[:, :, :3]), image.alpha, meta, layers)


def _choose_main(groups: dict[str, dict[str, str]]) -> tuple[str | None, list[str], bool]:
    """(layer, channel suffixes in R G B order, gray) of the main colour."""
    for layer in [""] + [g for g in groups if g]:
        suffixes = groups.get(layer)
        if suffixes is None:
            continue
        if layer and aov.layer_tail(layer).lower().replace(" ", "") not in _MAIN_LAYER_NAMES:
            continue
        for rgb in (("R", "G", "B"), ("r", "g", "b")):
            if set(rgb) <= set(suffixes):
                return layer, list(rgb), False
        is_vector = {"X", "Z"} <= set(suffixes) or {"x", "z"} <= set(suffixes)  # X Y Z is a normal, not luminance
        if layer == "" and ("Y" in suffixes or "y" in suffixes) and not is_vector:
            return layer, ["Y" if "Y" in suffixes else "y"], True
        for rg in (("R", "G"), ("r", "g")):
            if set(rg) <= set(suffixes):
                return layer, list(rg), False
    # No beauty pass by name: a single RGB layer that is not an AOV, then any lone layer (an AOV file read alone).
    candidates = [g for g in groups if g and canonical_aov(g) is None and {"R", "G", "B"} <= set(groups[g])]
    if len(candidates) == 1:
        return candidates[0], ["R", "G", "B"], False
    if len(groups) == 1:
        layer, suffixes = next(iter(groups.items()))
        ordered = _ordered(list(suffixes))
        if len(ordered) >= 3:
            return layer, ordered[:3], False
        return layer, ordered[:1], True
    return None, [], False


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
    layout = meta.extra.get("exr_layout") if meta.format == "exr" else None
    if isinstance(layout, ExrLayout) and (layout.width, layout.height) == (image.width, image.height):
        _write_layout(temporary, image, layout, {16: "half", 32: "float"}.get(bit_depth or 0), path)
        return
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
    derived = _file_role_layers(image)  # written once, under the file's own names
    for name, layer in image.layers.items():
        if name in derived and name not in known_channels:
            continue
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


def _file_role_layers(image: Image) -> set[str]:
    """The canonical layers (albedo, normal, depth) that were derived from the file's own passes: not written again."""
    roles = image.meta.extra.get("aov_roles", {})
    return {role for role in aov.MODEL_ROLES if role in roles and not roles[role].get("sidecar")}


def _write_layout(temporary: Path, image: Image, layout: ExrLayout, kind_override: str | None, path: Path) -> None:
    """Write ``image`` in the parts, channels, types and headers it was read with (see the module docstring)."""
    import OpenEXR

    pixels = image.pixels
    main = [c for c in layout.channels if c["layer"] == MAIN_KEY]
    still_gray = len(main) != 1 or channels_equal(pixels)
    part_channels: list[dict[str, Any]] = [{} for _ in layout.parts]

    def add(part: int, name: str, array: np.ndarray, sampling=(1, 1), p_linear=False) -> None:
        if name in part_channels[part]:
            raise ImageWriteError(path, f"two layers would write the channel {name!r}")
        channel = OpenEXR.Channel(np.ascontiguousarray(array))
        channel.xSampling, channel.ySampling = int(sampling[0]), int(sampling[1])
        channel.pLinear = bool(p_linear)
        part_channels[part][name] = channel

    for entry in layout.channels:
        kind = entry["kind"] if kind_override is None or entry["kind"] == "uint" else kind_override
        layer, index, raw = entry["layer"], entry["index"], entry.get("raw")
        if layer == MAIN_KEY and not still_gray:  # a gray file whose result has colour: Y becomes R, G, B
            prefix = entry["name"].rpartition(".")[0]
            for position, suffix in enumerate("RGB"):
                add(entry["part"], _join(prefix, suffix), _plane(pixels, position, kind))
            continue
        source = {MAIN_KEY: pixels, ALPHA_KEY: image.alpha}.get(layer) if layer in (MAIN_KEY, ALPHA_KEY) \
            else image.layers.get(layer) if layer else None
        if source is not None and source.ndim == 3 and index >= source.shape[2]:
            source = None
        if raw is not None and (source is None or np.array_equal(_layer_plane(source, index), raw.astype(np.float32))):
            if tuple(entry["sampling"]) != (1, 1):  # the binding writes no subsampled channel: full resolution
                x_step, y_step = entry["sampling"]
                full = np.repeat(np.repeat(raw, y_step, axis=0), x_step, axis=1)[: layout.height, : layout.width]
                add(entry["part"], entry["name"], full, (1, 1), entry["p_linear"])
                continue
            add(entry["part"], entry["name"], raw, entry["sampling"], entry["p_linear"])
            continue
        if source is None:
            continue  # the image no longer has it (alpha removed): nothing to write
        add(entry["part"], entry["name"], _plane(source, index if source.ndim == 3 else None, kind),
            entry["sampling"], entry["p_linear"])

    # Layers the file did not have (sidecar AOVs attached on reading) go into the first part under short names.
    known = layout.layer_keys | _file_role_layers(image)
    fallback_kind = kind_override or "float"
    for name, layer in image.layers.items():
        if name in known:
            continue
        for index, channel_name in enumerate(_default_layer_names(name, layer.shape[2])):
            add(0, channel_name, _plane(layer, index, fallback_kind))

    written = []
    for part, channels in zip(layout.parts, part_channels, strict=True):
        header = dict(part["header"])
        tiles = header.get("tiles")
        if tiles is not None and str(getattr(tiles, "mode", "")).endswith(("MIPMAP_LEVELS", "RIPMAP_LEVELS")):
            one = OpenEXR.TileDescription()
            one.xSize, one.ySize, one.mode, one.roundingMode = tiles.xSize, tiles.ySize, OpenEXR.ONE_LEVEL, \
                tiles.roundingMode
            header["tiles"] = one
        written.append((part["name"], header, channels))
    try:
        _write_parts(temporary, written)
    except (TypeError, ValueError, RuntimeError):
        # An attribute the binding reads but cannot write back: keep the standard ones and the plain values.
        plain = [(name, {k: v for k, v in header.items() if k in _LAYOUT_ATTRIBUTES or _plain(v) is not None},
                  channels) for name, header, channels in written]
        _write_parts(temporary, plain)


def _layer_plane(source: np.ndarray, index: int) -> np.ndarray:
    return source[:, :, index] if source.ndim == 3 else source


def _write_parts(temporary: Path, parts: list[tuple[str | None, dict[str, Any], dict[str, Any]]]) -> None:
    import OpenEXR

    if len(parts) == 1 and parts[0][0] is None:
        _, header, channels = parts[0]
        OpenEXR.File(header, dict(channels)).write(str(temporary))
        return
    OpenEXR.File([OpenEXR.Part(header, dict(channels), name=name or f"part{index}")
                  for index, (name, header, channels) in enumerate(parts)]).write(str(temporary))
