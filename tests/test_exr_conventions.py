"""Production EXRs (issue 43): Blender's two layouts written back faithfully, every renderer's AOV names mapped to
roles, normals and depth brought into the models' convention, the odd files other viewers trip on, alpha, OIDN as
Blender runs it. Every fixture is written here with the OpenEXR API in the renderer's conventions."""

from __future__ import annotations

import struct

import numpy as np
import OpenEXR
import pytest

from engine.cli import main as cli
from engine.errors import ImageReadError
from engine.imageio import describe, read_image, write_image
from engine.imageio.aov import BACKGROUND_DEPTH, CONVENTIONS, match

H, W = 12, 16
RNG = np.random.default_rng(43)
#: A camera rotation (about Y by 30 deg, then X by -20 deg) as Imath would store it in worldToCamera (row vectors).
_A, _B = np.radians(30), np.radians(-20)
ROTATION = (np.array([[np.cos(_A), 0, -np.sin(_A)], [0, 1, 0], [np.sin(_A), 0, np.cos(_A)]])
            @ np.array([[1, 0, 0], [0, np.cos(_B), np.sin(_B)], [0, -np.sin(_B), np.cos(_B)]])).astype(np.float32)


def _unit_normals() -> np.ndarray:
    normals = RNG.normal(size=(H, W, 3)).astype(np.float32)
    return normals / np.linalg.norm(normals, axis=2, keepdims=True)


def _blender_passes(denoising=True, world_normal=True, half=False) -> dict[str, np.ndarray]:
    """Blender 5 Cycles passes: Combined RGBA, Depth (1e10 where nothing was hit), world-space Normal, Vector,
    Diffuse Color and the Denoising Data passes (camera-space normal, depth 0 on the background)."""
    dtype = np.float16 if half else np.float32
    world = _unit_normals()
    background = np.zeros((H, W), bool)
    background[: H // 3] = True
    depth = RNG.uniform(2, 20, (H, W)).astype(np.float32)
    passes = {"Combined": np.dstack([RNG.random((H, W, 3)) * 4, np.ones((H, W))]),
              "Depth": np.where(background, 1e10, depth)[:, :, None],
              "Vector": RNG.normal(size=(H, W, 4)),
              "Diffuse Color": RNG.random((H, W, 3))}
    if world_normal:
        passes["Normal"] = world
    if denoising:
        camera = world @ ROTATION  # camera = world rotated (the inverse transpose of a rotation is itself)
        camera[-2:] = _unit_normals()[-2:]  # a mirror: the denoising normal is the reflected surface's
        passes.update({"Denoising Normal": camera, "Denoising Albedo": RNG.random((H, W, 3)),
                       "Denoising Depth": np.where(background, 0.0, depth)[:, :, None]})
    return {name: np.ascontiguousarray(array, dtype=dtype if name != "Depth" or not half else np.float32)
            for name, array in passes.items()}


_SUFFIXES = {"Combined": "RGBA", "Depth": "Z", "Normal": "XYZ", "Vector": "XYZW", "Diffuse Color": "RGB",
             "Denoising Normal": "XYZ", "Denoising Albedo": "RGB", "Denoising Depth": "Z"}
_BLENDER_HEADER = {"BlenderMultiChannel": "Blender V2.55.1 and newer", "Software": "Blender 5.0.1",
                   "Camera": "Camera", "cycles.ViewLayer.samples": "8", "colorInteropID": "lin_rec709_scene",
                   "xDensity": 72.0, "screenWindowCenter": np.array([0.0, 0.0], np.float32)}


def _channels(name: str, array: np.ndarray) -> dict[str, np.ndarray]:
    return {f"ViewLayer.{name}.{s}": np.ascontiguousarray(array[:, :, i]) for i, s in enumerate(_SUFFIXES[name])}


def write_blender(path, passes, layout="multipart", compression=OpenEXR.ZIP_COMPRESSION) -> None:
    """As Blender 5 writes a multi-layer EXR: one part per pass named ``ViewLayer.<pass>`` whose channels repeat
    that name (the default), or all channels in one part (``use_exr_interleave``, older versions)."""
    base = {"compression": compression, "type": OpenEXR.scanlineimage}
    if layout == "interleaved":
        channels = {}
        for name, array in passes.items():
            channels.update(_channels(name, array))
        OpenEXR.File({**base, **_BLENDER_HEADER}, channels).write(str(path))
        return
    parts = [OpenEXR.Part({**base, **(_BLENDER_HEADER if index == 0 else {"colorInteropID": "data"})},
                          _channels(name, array), name=f"ViewLayer.{name}")
             for index, (name, array) in enumerate(passes.items())]
    OpenEXR.File(parts).write(str(path))


def _file(path) -> list[tuple[str, dict, dict]]:
    exr = OpenEXR.File(str(path), separate_channels=True)
    return [(part.name(), dict(part.header), {n: c.pixels for n, c in part.channels.items()}) for part in exr.parts]


@pytest.mark.parametrize("half", [False, True], ids=["float", "half"])
@pytest.mark.parametrize("layout", ["multipart", "interleaved"])
def test_blender_layouts_come_back_with_every_pass_and_only_the_colour_replaced(tmp_path, layout, half):
    passes = _blender_passes(half=half)
    write_blender(tmp_path / "render.exr", passes, layout)
    image = read_image(tmp_path / "render.exr")

    assert not any("ViewLayer.Combined.ViewLayer" in name or name.count("ViewLayer") > 1 for name in image.layers)
    assert {"ViewLayer.Diffuse Color", "ViewLayer.Denoising Albedo", "ViewLayer.Vector"} <= set(image.layers)
    np.testing.assert_array_equal(image.pixels, passes["Combined"][:, :, :3].astype(np.float32))
    roles = image.meta.extra["aov_roles"]
    assert roles["albedo"]["layer"] == "ViewLayer.Denoising Albedo"  # Denoising * preferred, as Blender does
    assert roles["normal"]["layer"] == "ViewLayer.Denoising Normal"
    assert roles["depth"]["layer"] == "ViewLayer.Denoising Depth" and roles["motion"]["layer"] == "ViewLayer.Vector"
    # The camera-space denoising normal is turned into world space with the rotation fitted on Blender's Normal.
    assert "world" in roles["normal"]["note"]
    np.testing.assert_allclose(image.layers["normal"][:-2], passes["Normal"][:-2].astype(np.float32), atol=2e-2)

    restored = image.with_pixels(image.pixels * 0.5)
    write_image(tmp_path / "out.exr", restored)
    before, after = _file(tmp_path / "render.exr"), _file(tmp_path / "out.exr")
    assert [p[0] for p in after] == [p[0] for p in before]  # the same parts, in the same order
    for (_, header_before, channels_before), (_, header_after, channels_after) in zip(before, after, strict=True):
        assert set(channels_after) == set(channels_before)
        for key in ("compression", "dataWindow", "displayWindow", "lineOrder", "type", *_BLENDER_HEADER):
            assert str(header_after.get(key)) == str(header_before.get(key)), key
        for name, pixels in channels_before.items():
            assert channels_after[name].dtype == pixels.dtype, name
            if name in ("ViewLayer.Combined.R", "ViewLayer.Combined.G", "ViewLayer.Combined.B"):
                expected = (image.pixels[:, :, "RGB".index(name[-1])] * 0.5).astype(pixels.dtype)
                np.testing.assert_array_equal(channels_after[name], expected)
            else:
                assert channels_after[name].tobytes() == pixels.tobytes(), name  # byte-identical


def test_blender_depth_background_and_missing_denoising_data(tmp_path):
    passes = _blender_passes(denoising=False)
    write_blender(tmp_path / "render.exr", passes)
    image = read_image(tmp_path / "render.exr")
    roles = image.meta.extra["aov_roles"]
    assert roles["albedo"]["layer"] == "ViewLayer.Diffuse Color" and roles["normal"]["layer"] == "ViewLayer.Normal"
    assert roles["normal"]["note"] == "world space"
    depth = image.layers["depth"][:, :, 0]
    assert depth[: H // 3].max() == 0.0 and depth.max() < 20.0  # 1e10 no longer decides the normalisation
    assert "background pixels (33%) set to 0" in roles["depth"]["note"]
    from engine.models.manifest import ModelManifest
    from engine.restore import model_inputs

    manifest = ModelManifest(id="t", task="render-denoise", name="t", inputs=("color", "depth"),
                             value_transform="linear")
    inputs, _ = model_inputs(image, manifest, 1.0)
    assert inputs["depth"][H // 3 :].min() > 0.05  # foreground spread over [0, 1], not squashed near 0
    # The file's own Depth pass, 1e10 included, is written back unchanged.
    write_image(tmp_path / "out.exr", image)
    assert np.array_equal(_file(tmp_path / "out.exr")[1][2]["ViewLayer.Depth.Z"], passes["Depth"][:, :, 0])


def test_camera_normals_without_any_world_reference_are_used_as_written_and_said(tmp_path):
    passes = _blender_passes(world_normal=False)
    write_blender(tmp_path / "render.exr", passes, "interleaved")
    image = read_image(tmp_path / "render.exr")
    assert "used as written" in image.meta.extra["aov_roles"]["normal"]["note"]
    np.testing.assert_array_equal(image.layers["normal"], passes["Denoising Normal"])


def _write(path, channels: dict[str, np.ndarray], header: dict | None = None) -> None:
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage, **(header or {})},
                 {name: OpenEXR.Channel(np.ascontiguousarray(a)) for name, a in channels.items()}).write(str(path))


def _layer(name: str, suffixes: str, array: np.ndarray | None = None) -> dict[str, np.ndarray]:
    array = RNG.random((H, W, len(suffixes))).astype(np.float32) if array is None else array
    return {f"{name}.{s}" if name else s: np.ascontiguousarray(array[:, :, i]) for i, s in enumerate(suffixes)}


# (renderer, channels written, {role: layer expected}); every renderer's beauty must become the colour.
CONVENTION_FILES = [
    ("arnold", {**_layer("", "RGBA"), **_layer("denoise_albedo", "RGB"), **_layer("N", "RGB"), **_layer("", "Z"),
                **_layer("diffuse", "RGB"), **_layer("specular", "RGB"), **_layer("motionvector", "RGB")},
     {"albedo": "denoise_albedo", "normal": "N", "depth": "Z", "diffuse": "diffuse", "specular": "specular",
      "motion": "motionvector", "alpha": ""}),
    ("vray", {**_layer("", "RGBA"), **_layer("VRayDiffuseFilter", "RGB"),
              **_layer("VRayZDepth", "R"), **_layer("VRayVelocity", "RGB"), **_layer("VRaySpecular", "RGB")},
     {"albedo": "VRayDiffuseFilter", "depth": "VRayZDepth", "motion": "VRayVelocity", "specular": "VRaySpecular"}),
    ("karma", {**_layer("C", "RGBA"), **_layer("albedo", "RGB"), **_layer("N", "XYZ"), **_layer("Pz", "Z"),
               **_layer("motionvector", "XYZ")},
     {"albedo": "albedo", "normal": "N", "depth": "Pz", "motion": "motionvector", "alpha": "C"}),
    ("renderman", {**_layer("Ci", "RGB"), **_layer("a", "A"), **_layer("albedo", "RGB"), **_layer("normal", "RGB"),
                   **_layer("zfiltered", "R"), **_layer("diffuse", "RGB"), **_layer("specular", "RGB"),
                   **_layer("forward", "RGB")},
     {"albedo": "albedo", "normal": "normal", "depth": "zfiltered", "diffuse": "diffuse", "specular": "specular",
      "motion": "forward"}),
    ("redshift", {**_layer("", "RGBA"), **_layer("DiffuseFilter", "RGB"), **_layer("BumpNormals", "RGB"),
                  **_layer("Z", "Z"), **_layer("MotionVectors", "RGB"), **_layer("DiffuseLighting", "RGB"),
                  **_layer("SpecularLighting", "RGB")},
     {"albedo": "DiffuseFilter", "normal": "BumpNormals", "depth": "Z", "motion": "MotionVectors",
      "diffuse": "DiffuseLighting", "specular": "SpecularLighting"}),
    ("mitsuba", {**_layer("", "RGB"), **_layer("albedo", "RGB"), **_layer("nn", "XYZ"), **_layer("depth", "T")},
     {"albedo": "albedo", "normal": "nn", "depth": "depth"}),
    ("generic", {**_layer("", "RGB"), **_layer("albedo", "RGB"), **_layer("N", "XYZ"), **_layer("", "Z")},
     {"albedo": "albedo", "normal": "N", "depth": "Z"}),
    ("blender-legacy", {**_layer("RenderLayer.Combined", "RGBA"), **_layer("RenderLayer.DiffCol", "RGB"),
                        **_layer("RenderLayer.Normal", "XYZ"), **_layer("RenderLayer.Depth", "Z"),
                        **_layer("RenderLayer.DiffDir", "RGB"), **_layer("RenderLayer.GlossDir", "RGB")},
     {"albedo": "RenderLayer.DiffCol", "normal": "RenderLayer.Normal", "depth": "RenderLayer.Depth",
      "diffuse": "RenderLayer.DiffDir", "specular": "RenderLayer.GlossDir", "alpha": "RenderLayer.Combined"}),
]


@pytest.mark.parametrize(("channels", "expected"), [c[1:] for c in CONVENTION_FILES],
                         ids=[c[0] for c in CONVENTION_FILES])
def test_every_convention_maps_its_passes_to_roles_and_writes_them_back(tmp_path, channels, expected):
    _write(tmp_path / "render.exr", channels)
    image = read_image(tmp_path / "render.exr")
    roles = image.meta.extra["aov_roles"]
    assert {role: entry["layer"] for role, entry in roles.items() if role in expected} == expected
    assert set(image.aovs) == {r for r in ("albedo", "normal", "depth") if r in expected}
    if "albedo" in expected:
        keys = roles["albedo"]["channels"]
        np.testing.assert_array_equal(image.layers["albedo"], np.dstack([channels[k] for k in keys]))
    write_image(tmp_path / "out.exr", image)
    written = OpenEXR.File(str(tmp_path / "out.exr"), separate_channels=True).channels()
    assert set(written) == set(channels)
    for name, pixels in channels.items():
        assert written[name].pixels.tobytes() == pixels.tobytes(), name


def test_vray_dot_channels_are_the_beauty(tmp_path):
    channels = {".R": RNG.random((H, W), np.float32), ".G": RNG.random((H, W), np.float32),
                ".B": RNG.random((H, W), np.float32), ".A": np.ones((H, W), np.float32),
                **_layer("VRayNormals", "XYZ", _unit_normals())}
    world_to_camera = np.eye(4, dtype=np.float32)
    world_to_camera[:3, :3] = ROTATION
    _write(tmp_path / "vray.exr", channels, {"worldToCamera": world_to_camera})
    image = read_image(tmp_path / "vray.exr")
    np.testing.assert_array_equal(image.pixels[:, :, 1], channels[".G"])
    assert image.alpha is not None
    normal = image.meta.extra["aov_roles"]["normal"]
    assert normal["layer"] == "VRayNormals" and "worldToCamera" in normal["note"]
    camera = np.dstack([channels[f"VRayNormals.{s}"] for s in "XYZ"])
    # n_camera = n_world @ R  =>  n_world = n_camera @ R.T
    np.testing.assert_allclose(image.layers["normal"], camera @ ROTATION.T, atol=1e-5)
    write_image(tmp_path / "out.exr", image)
    assert set(OpenEXR.File(str(tmp_path / "out.exr"), separate_channels=True).channels()) == set(channels)


def test_the_table_is_one_list_and_every_row_is_reachable():
    seen = set()
    for index, convention in enumerate(CONVENTIONS):
        for name in convention.names:
            found = match(f"ViewLayer.{name}")
            assert found is not None and found[1].role == convention.role
            if (name.lower(), convention.role) not in seen:
                seen.add((name.lower(), convention.role))
                assert found[0] <= index  # an earlier row with the same name may win, never a later one
        if convention.role == "normal":
            assert convention.space in ("camera", "world", "")


# --- the odd files ------------------------------------------------------------------------------------------------


def test_layer_with_more_than_four_channels_is_kept_whole(tmp_path):
    channels = {**_layer("", "RGB"), **_layer("spectral", "ABCDEFG")}
    _write(tmp_path / "wide.exr", channels)
    image = read_image(tmp_path / "wide.exr")
    assert image.layers["spectral"].shape == (H, W, 7)
    write_image(tmp_path / "out.exr", image)
    written = OpenEXR.File(str(tmp_path / "out.exr"), separate_channels=True).channels()
    assert all(written[n].pixels.tobytes() == channels[n].tobytes() for n in channels)


def test_lowercase_rgb_and_y_only(tmp_path):
    lower = _layer("", "rgba")
    _write(tmp_path / "lower.exr", lower)
    image = read_image(tmp_path / "lower.exr")
    np.testing.assert_array_equal(image.pixels[:, :, 2], lower["b"])
    np.testing.assert_array_equal(image.alpha, lower["a"])
    write_image(tmp_path / "lower_out.exr", image.with_pixels(image.pixels * 2))
    written = OpenEXR.File(str(tmp_path / "lower_out.exr"), separate_channels=True).channels()
    assert set(written) == {"r", "g", "b", "a"}
    np.testing.assert_array_equal(written["g"].pixels, lower["g"] * 2)

    _write(tmp_path / "y.exr", {"Y": lower["r"]})
    gray = read_image(tmp_path / "y.exr")
    assert gray.meta.gray and describe(gray)["channels"] == 1
    write_image(tmp_path / "y_out.exr", gray)
    assert set(OpenEXR.File(str(tmp_path / "y_out.exr"), separate_channels=True).channels()) == {"Y"}


def test_half_and_float_mixed_in_one_layer(tmp_path):
    channels = {"R": RNG.random((H, W)).astype(np.float16), "G": RNG.random((H, W)).astype(np.float32),
                "B": RNG.random((H, W)).astype(np.float16), "albedo.R": RNG.random((H, W)).astype(np.float16),
                "albedo.G": RNG.random((H, W)).astype(np.float32), "albedo.B": RNG.random((H, W)).astype(np.float32)}
    _write(tmp_path / "mixed.exr", channels)
    image = read_image(tmp_path / "mixed.exr")  # once refused as "corrupt": the binding cannot group them
    np.testing.assert_array_equal(image.pixels[:, :, 0], channels["R"].astype(np.float32))
    assert image.meta.sample_type == "float"
    write_image(tmp_path / "out.exr", image)
    written = OpenEXR.File(str(tmp_path / "out.exr"), separate_channels=True).channels()
    assert {n: c.pixels.dtype for n, c in written.items()} == {n: a.dtype for n, a in channels.items()}
    assert all(written[n].pixels.tobytes() == channels[n].tobytes() for n in channels)


def test_only_r_and_g(tmp_path):
    channels = _layer("", "RG")
    _write(tmp_path / "rg.exr", channels)
    image = read_image(tmp_path / "rg.exr")
    np.testing.assert_array_equal(image.pixels[:, :, 1], channels["G"])
    assert not image.pixels[:, :, 2].any() and not image.meta.gray  # blue is black, as other viewers show it
    write_image(tmp_path / "out.exr", image.with_pixels(image.pixels + 1))
    written = OpenEXR.File(str(tmp_path / "out.exr"), separate_channels=True).channels()
    assert set(written) == {"R", "G"}
    np.testing.assert_array_equal(written["R"].pixels, channels["R"] + 1)


def _tiles(mode) -> OpenEXR.TileDescription:
    description = OpenEXR.TileDescription()
    description.xSize = description.ySize = 8
    description.mode, description.roundingMode = mode, OpenEXR.ROUND_DOWN
    return description


def test_tiled_file_stays_tiled(tmp_path):
    channels = {**_layer("", "RGB"), **_layer("albedo", "RGB")}
    _write(tmp_path / "tiled.exr", channels, {"type": OpenEXR.tiledimage, "tiles": _tiles(OpenEXR.ONE_LEVEL)})
    image = read_image(tmp_path / "tiled.exr")
    write_image(tmp_path / "out.exr", image)
    header = OpenEXR.File(str(tmp_path / "out.exr"), header_only=True).header()
    assert header["type"] == OpenEXR.tiledimage and (header["tiles"].xSize, header["tiles"].ySize) == (8, 8)
    written = OpenEXR.File(str(tmp_path / "out.exr"), separate_channels=True).channels()
    assert all(written[n].pixels.tobytes() == channels[n].tobytes() for n in channels)


def write_mipmapped(path, planes: dict[str, np.ndarray], tile: int = 4) -> None:
    """A mip-mapped, uncompressed tiled EXR (the binding writes only one level): the binding's one-level file with
    its tile description switched to MIPMAP_LEVELS, then every level's tiles and the offset table written here."""
    names = sorted(planes)
    height, width = planes[names[0]].shape
    _write(path, planes, {"type": OpenEXR.tiledimage, "tiles": _tiles(OpenEXR.ONE_LEVEL),
                          "compression": OpenEXR.NO_COMPRESSION})
    data = bytearray(path.read_bytes())
    position = 8
    while data[position] != 0:  # attributes: name\0 type\0 size value
        name_end = data.index(0, position)
        type_end = data.index(0, name_end + 1)
        size = struct.unpack_from("<i", data, type_end + 1)[0]
        if bytes(data[position:name_end]) == b"tiles":
            struct.pack_into("<II", data, type_end + 5, tile, tile)
            data[type_end + 13] = 1  # MIPMAP_LEVELS, ROUND_DOWN
        position = type_end + 5 + size
    header = bytes(data[: position + 1])
    levels, level = [], {n: planes[n].astype(np.float32) for n in names}
    while True:
        levels.append(level)
        h, w = level[names[0]].shape
        if h == w == 1:
            break
        level = {n: p[: max(1, h // 2) * 2 : 2] if h > 1 else p for n, p in level.items()}
        level = {n: p[:, : max(1, w // 2) * 2 : 2] if w > 1 else p for n, p in level.items()}
    chunks = []
    for index, level in enumerate(levels):
        h, w = level[names[0]].shape
        for ty in range(-(-h // tile)):
            for tx in range(-(-w // tile)):
                rows = [level[n][y, tx * tile : tx * tile + tile].astype("<f4").tobytes()
                        for y in range(ty * tile, min(h, ty * tile + tile)) for n in names]
                body = b"".join(rows)
                chunks.append(struct.pack("<iiiii", tx, ty, index, index, len(body)) + body)
    offset, table = len(header) + 8 * len(chunks), b""
    for chunk in chunks:
        table += struct.pack("<Q", offset)
        offset += len(chunk)
    path.write_bytes(header + table + b"".join(chunks))


def test_mipmapped_file_reads_its_full_resolution_level(tmp_path):
    planes = _layer("", "RGB")
    write_mipmapped(tmp_path / "mip.exr", planes)
    image = read_image(tmp_path / "mip.exr")
    np.testing.assert_array_equal(image.pixels[:, :, 2], planes["B"])
    assert any("full-resolution level" in note for note in image.meta.extra["exr_notes"])
    write_image(tmp_path / "out.exr", image)  # written tiled, one level (the binding cannot write levels)
    again = read_image(tmp_path / "out.exr")
    np.testing.assert_array_equal(again.pixels, image.pixels)
    assert str(OpenEXR.File(str(tmp_path / "out.exr"), header_only=True).header()["tiles"].mode).endswith("ONE_LEVEL")


def test_deep_exr_is_refused_clearly(tmp_path):
    samples = np.empty((H, W), dtype=object)
    for y in range(H):
        for x in range(W):
            samples[y, x] = np.array([0.5, 0.25], np.float32)
    OpenEXR.File({"type": OpenEXR.deepscanline, "compression": OpenEXR.ZIPS_COMPRESSION},
                 {"R": samples, "G": samples, "B": samples, "A": samples, "Z": samples}).write(str(tmp_path / "d.exr"))
    with pytest.raises(ImageReadError, match="deep OpenEXR.*flatten"):
        read_image(tmp_path / "d.exr")


def test_uint_ids_above_float_precision_survive_exactly(tmp_path):
    ids = (np.arange(H * W, dtype=np.uint32).reshape(H, W) + (1 << 30) + 1)
    channels = {**_layer("", "RGB"), "objectid": ids}
    _write(tmp_path / "ids.exr", channels)
    image = read_image(tmp_path / "ids.exr")
    write_image(tmp_path / "out.exr", image.with_pixels(image.pixels * 3))
    written = OpenEXR.File(str(tmp_path / "out.exr"), separate_channels=True).channels()
    assert written["objectid"].pixels.dtype == np.uint32
    np.testing.assert_array_equal(written["objectid"].pixels, ids)


def test_parts_with_the_same_channel_names_are_told_apart(tmp_path):
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    beauty, diffuse = _layer("", "RGB"), _layer("", "RGB")
    OpenEXR.File([OpenEXR.Part(dict(header), dict(beauty), name="rgba"),  # Part() writes its name into the dict
                  OpenEXR.Part(dict(header), dict(diffuse), name="diffuse")]).write(str(tmp_path / "nuke.exr"))
    image = read_image(tmp_path / "nuke.exr")
    np.testing.assert_array_equal(image.pixels[:, :, 0], beauty["R"])
    np.testing.assert_array_equal(image.layers["diffuse"][:, :, 0], diffuse["R"])
    assert image.meta.extra["aov_roles"]["diffuse"]["layer"] == "diffuse"
    write_image(tmp_path / "out.exr", image)
    after = _file(tmp_path / "out.exr")
    assert [(name, set(channels)) for name, _, channels in after] == [("rgba", set("RGB")), ("diffuse", set("RGB"))]
    assert after[1][2]["G"].tobytes() == diffuse["G"].tobytes()


def test_sidecar_aovs_join_the_first_part_of_a_multipart_file(tmp_path):
    passes = {"Combined": _blender_passes()["Combined"]}
    write_blender(tmp_path / "shot.exr", passes)
    _write(tmp_path / "shot_albedo.exr", _layer("", "RGB"))
    image = read_image(tmp_path / "shot.exr")
    assert "albedo" in image.aovs
    assert image.meta.extra["aov_roles"]["albedo"] == {"layer": "shot_albedo.exr", "channels": [], "renderer": "",
                                                       "note": "sidecar file", "sidecar": True}
    (tmp_path / "out").mkdir()
    write_image(tmp_path / "out" / "shot.exr", image)
    back = read_image(tmp_path / "out" / "shot.exr")
    assert "albedo" in back.aovs and back.meta.extra["exr_parts"] == 1


# --- info, alpha, OIDN ----------------------------------------------------------------------------------------


def test_info_prints_which_pass_took_which_role(tmp_path, capsys):
    write_blender(tmp_path / "render.exr", _blender_passes())
    assert cli(["info", str(tmp_path / "render.exr")]) == 0
    text = capsys.readouterr().out
    assert "albedo    <- ViewLayer.Denoising Albedo" in text and "depth     <- ViewLayer.Denoising Depth" in text
    assert "parts" in text and "ViewLayer.Combined.ViewLayer" not in text
    assert cli(["info", "--json", str(tmp_path / "render.exr")]) == 0
    import json

    info = json.loads(capsys.readouterr().out)
    assert info["roles"]["normal"]["layer"] == "ViewLayer.Denoising Normal" and info["parts"] == 8


def test_transparent_pixels_stay_transparent(tmp_path):
    pytest.importorskip("pyoidn")
    from engine.jobs import run_job
    from engine.models.registry import ModelRegistry
    from engine.restore import restore_job

    passes = _blender_passes(denoising=False)
    combined = passes["Combined"].copy()
    combined[:, : W // 2] = 0.0  # Film > Transparent: nothing there, alpha 0, colour 0 (premultiplied)
    combined[H // 2 :, W // 2 :, :3] += RNG.random((H - H // 2, W - W // 2, 3)).astype(np.float32) * 8
    write_blender(tmp_path / "alpha.exr", {"Combined": combined})
    image = read_image(tmp_path / "alpha.exr")
    result = run_job(restore_job(image, ModelRegistry().get("oidn"), {}), lambda progress: None).image
    assert not result.pixels[:, : W // 2].any()
    np.testing.assert_array_equal(result.alpha, combined[:, :, 3])


def test_oidn_prefilters_albedo_and_normal_as_blender_does():
    pytest.importorskip("pyoidn")
    from engine.models.oidn import PREFILTERS, oidn_denoise, oidn_manifest, prefilter_aux

    size = 64
    yy, xx = np.mgrid[0:size, 0:size] / size
    clean_albedo = np.dstack([0.2 + 0.6 * (xx > 0.5), 0.3 + 0.0 * yy, 0.5 + 0.3 * (yy > 0.5)]).astype(np.float32)
    noisy_albedo = np.clip(clean_albedo + RNG.normal(0, 0.08, clean_albedo.shape), 0, 1).astype(np.float32)
    filtered = prefilter_aux("albedo", noisy_albedo)
    assert np.mean((filtered - clean_albedo) ** 2) < 0.5 * np.mean((noisy_albedo - clean_albedo) ** 2)

    normal = np.dstack([np.zeros_like(xx), np.zeros_like(xx), np.ones_like(xx)]).astype(np.float32)
    color = (clean_albedo * (1 + RNG.normal(0, 0.3, clean_albedo.shape))).astype(np.float32)
    results = {p: oidn_denoise(color, noisy_albedo, normal, prefilter=p) for p in PREFILTERS}
    assert not np.array_equal(results["accurate"], results["fast"])
    assert not np.array_equal(results["accurate"], results["none"])
    params = {p.name: p for p in oidn_manifest(True).params}
    assert params["prefilter"].default == "auto" and params["quality"].choices == ("high", "balanced", "fast")
    assert "prefilter" not in {p.name for p in oidn_manifest(False).params}
    with pytest.raises(ValueError, match="prefilter"):
        oidn_denoise(color, noisy_albedo, normal, prefilter="best")


def test_background_depth_constant_is_blenders_infinity():
    assert 1e10 >= BACKGROUND_DEPTH > 1e6  # scenes in metres or centimetres stay far below it


def test_the_user_can_give_a_role_to_another_pass(tmp_path):
    from engine.imageio.exr import assign_roles

    passes = _blender_passes()
    write_blender(tmp_path / "render.exr", passes)
    image = read_image(tmp_path / "render.exr")
    chosen = assign_roles(image, {"albedo": "ViewLayer.Diffuse Color", "normal": "ViewLayer.Normal", "depth": None})
    roles = chosen.meta.extra["aov_roles"]
    assert roles["albedo"]["layer"] == "ViewLayer.Diffuse Color" and "chosen by the user" in roles["normal"]["note"]
    np.testing.assert_array_equal(chosen.layers["albedo"], passes["Diffuse Color"])
    np.testing.assert_array_equal(chosen.layers["normal"], passes["Normal"])
    assert "depth" not in chosen.aovs and "depth" not in roles
    write_image(tmp_path / "out.exr", chosen)  # what is written back does not change
    before, after = _file(tmp_path / "render.exr"), _file(tmp_path / "out.exr")
    assert all(a[2][n].tobytes() == b[2][n].tobytes() for a, b in zip(after, before, strict=True) for n in b[2])
    with pytest.raises(ValueError, match="no layer"):
        assign_roles(image, {"albedo": "nothing"})

    # A file pass literally named "albedo" keeps its data and name when another pass becomes the albedo.
    channels = {**_layer("", "RGB"), **_layer("albedo", "RGB"), **_layer("diffcol", "RGB")}
    _write(tmp_path / "plain.exr", channels)
    swapped = assign_roles(read_image(tmp_path / "plain.exr"), {"albedo": "diffcol"})
    np.testing.assert_array_equal(swapped.layers["albedo"][:, :, 0], channels["diffcol.R"])
    write_image(tmp_path / "plain_out.exr", swapped)
    written = OpenEXR.File(str(tmp_path / "plain_out.exr"), separate_channels=True).channels()
    assert set(written) == set(channels) and written["albedo.G"].pixels.tobytes() == channels["albedo.G"].tobytes()


def test_the_documented_table_is_the_one_the_code_uses():
    from pathlib import Path

    from engine.imageio import aov

    table = aov.table_markdown()
    assert table in aov.__doc__
    assert table in (Path(__file__).resolve().parent.parent / "docs" / "render-passes.md").read_text(encoding="utf-8")


def test_another_layer_can_be_the_colour_that_is_restored(tmp_path):
    from engine.imageio.exr import choose_colour

    passes = _blender_passes()
    write_blender(tmp_path / "render.exr", passes)
    image = read_image(tmp_path / "render.exr")
    diffuse = choose_colour(image, "ViewLayer.Diffuse Color")
    np.testing.assert_array_equal(diffuse.pixels, passes["Diffuse Color"])
    write_image(tmp_path / "out.exr", diffuse.with_pixels(diffuse.pixels + 1))
    before, after = _file(tmp_path / "render.exr"), _file(tmp_path / "out.exr")
    for (_, _, channels_before), (_, _, channels_after) in zip(before, after, strict=True):
        for name, pixels in channels_before.items():
            if name.startswith("ViewLayer.Diffuse Color."):
                np.testing.assert_array_equal(channels_after[name], pixels + 1)
            else:  # the beauty included: written back as it was
                assert channels_after[name].tobytes() == pixels.tobytes(), name
    with pytest.raises(ValueError, match="three"):
        choose_colour(image, "ViewLayer.Depth")


def test_oidn_auto_prefilter_is_blenders_on_blender_renders(tmp_path):
    pytest.importorskip("pyoidn")
    from engine.jobs import run_job
    from engine.models.registry import ModelRegistry
    from engine.restore import restore_job

    entry = ModelRegistry().get("oidn-aov")
    write_blender(tmp_path / "blender.exr", _blender_passes())
    _write(tmp_path / "mitsuba.exr", {**_layer("", "RGB"), **_layer("albedo", "RGB"), **_layer("nn", "XYZ")})
    for name, expected in (("blender.exr", "accurate"), ("mitsuba.exr", "fast")):
        image = read_image(tmp_path / name)
        result = run_job(restore_job(image, entry, {}), lambda progress: None)
        assert result.details["params"]["prefilter"] == expected
        chosen = run_job(restore_job(image, entry, {"prefilter": expected}), lambda progress: None)
        np.testing.assert_array_equal(result.image.pixels, chosen.image.pixels)


def test_without_its_layout_the_file_is_written_without_repeating_passes(tmp_path):
    write_blender(tmp_path / "render.exr", _blender_passes())
    image = read_image(tmp_path / "render.exr")
    # Same size but no layout any more (as after an edit that drops it): the generic writer, one part, no copies.
    extra = {k: v for k, v in image.meta.extra.items() if k != "exr_layout"}
    from engine.image import make_image

    plain = make_image(image.pixels, image.alpha, image.meta.replace(extra=extra), image.layers)
    write_image(tmp_path / "out.exr", plain)
    names = set(OpenEXR.File(str(tmp_path / "out.exr"), separate_channels=True).channels())
    assert "ViewLayer.Denoising Albedo.R" in names and not any(n.startswith(("albedo.", "normal.")) for n in names)


def write_subsampled(path, luminance: np.ndarray, chroma: dict[str, np.ndarray]) -> None:
    """An uncompressed scanline EXR with a full-resolution ``Y`` and 2 x 2 subsampled chroma channels (the binding
    writes no subsampled channel): the binding's full-resolution file with the channel list's sampling patched and
    every scanline written here (a subsampled channel only on even lines, every other pixel)."""
    names = sorted(["Y", *chroma])
    height, width = luminance.shape
    full = {"Y": luminance, **{n: np.repeat(np.repeat(c, 2, 0), 2, 1) for n, c in chroma.items()}}
    _write(path, full, {"compression": OpenEXR.NO_COMPRESSION})
    data = bytearray(path.read_bytes())
    position = 8
    while data[position] != 0:
        name_end = data.index(0, position)
        type_end = data.index(0, name_end + 1)
        size = struct.unpack_from("<i", data, type_end + 1)[0]
        if bytes(data[position:name_end]) == b"channels":
            cursor = type_end + 5
            while data[cursor] != 0:
                end = data.index(0, cursor)
                if bytes(data[cursor:end]).decode() in chroma:
                    struct.pack_into("<ii", data, end + 1 + 8, 2, 2)  # after pixelType, pLinear + 3 reserved
                cursor = end + 1 + 16
        position = type_end + 5 + size
    header = bytes(data[: position + 1])
    chunks = []
    for y in range(height):
        body = b"".join(luminance[y].astype("<f4").tobytes() if n == "Y"
                        else (chroma[n][y // 2].astype("<f4").tobytes() if y % 2 == 0 else b"") for n in names)
        chunks.append(struct.pack("<ii", y, len(body)) + body)
    offset, table = len(header) + 8 * height, b""
    for chunk in chunks:
        table += struct.pack("<Q", offset)
        offset += len(chunk)
    path.write_bytes(header + table + b"".join(chunks))


def test_subsampled_chroma_channels_are_kept(tmp_path):
    luminance = RNG.random((H, W)).astype(np.float32)
    chroma = {n: RNG.random((H // 2, W // 2)).astype(np.float32) for n in ("BY", "RY")}
    write_subsampled(tmp_path / "yc.exr", luminance, chroma)
    read_back = OpenEXR.File(str(tmp_path / "yc.exr"), separate_channels=True).channels()
    assert read_back["RY"].xSampling == 2 and read_back["RY"].pixels.shape == (H // 2, W // 2)  # a valid fixture
    image = read_image(tmp_path / "yc.exr")
    assert image.meta.gray and any("subsampled" in note for note in image.meta.extra["exr_notes"])
    write_image(tmp_path / "out.exr", image.with_pixels(image.pixels * 2))
    written = OpenEXR.File(str(tmp_path / "out.exr"), separate_channels=True).channels()
    np.testing.assert_array_equal(written["Y"].pixels, luminance * 2)
    for name, plane in chroma.items():  # at full resolution, the same values
        np.testing.assert_array_equal(written[name].pixels[::2, ::2], plane)
