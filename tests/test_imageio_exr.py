"""OpenEXR (half/float, layers, AOV names, multi-part), sidecar AOV files, Radiance .hdr, and bad HDR values."""

from __future__ import annotations

import numpy as np
import OpenEXR
import pytest

from engine.image import ImageMeta, make_image
from engine.imageio import describe, read_image, sanitize_hdr, sanitize_image, write_image

H, W = 6, 8


def _plane(seed: float, dtype=np.float32) -> np.ndarray:
    grid = np.arange(H * W, dtype=np.float32).reshape(H, W)
    return np.ascontiguousarray((grid * 0.37 + seed) % 5.0).astype(dtype)


def _write_exr(path, channels: dict[str, np.ndarray], compression=OpenEXR.ZIP_COMPRESSION) -> None:
    # The binding replaces the dict's arrays by Channel objects: hand it a copy.
    OpenEXR.File({"compression": compression, "type": OpenEXR.scanlineimage}, dict(channels)).write(str(path))


@pytest.mark.parametrize(
    ("albedo", "normal", "depth"),
    [
        (("albedo.R", "albedo.G", "albedo.B"), ("normal.X", "normal.Y", "normal.Z"), ("Z",)),
        (("Albedo.R", "Albedo.G", "Albedo.B"), ("N.x", "N.y", "N.z"), ("depth.Z",)),
        (("diffcol.R", "diffcol.G", "diffcol.B"), ("nn.X", "nn.Y", "nn.Z"), ("Z.Z",)),
        (
            ("ViewLayer.Denoising Albedo.R", "ViewLayer.Denoising Albedo.G", "ViewLayer.Denoising Albedo.B"),
            ("ViewLayer.Denoising Normal.X", "ViewLayer.Denoising Normal.Y", "ViewLayer.Denoising Normal.Z"),
            ("ViewLayer.Depth.Z",),
        ),
    ],
    ids=["lowercase", "capitalised", "short", "blender"],
)
def test_aov_layers_are_recognised_by_name_and_written_back(tmp_path, albedo, normal, depth):
    main = ("ViewLayer.Combined.R", "ViewLayer.Combined.G", "ViewLayer.Combined.B") if "ViewLayer" in albedo[0] \
        else ("R", "G", "B")
    names = [*main, *albedo, *normal, *depth, "specular.R", "specular.G", "specular.B"]
    channels = {name: _plane(index) for index, name in enumerate(names)}
    channels[normal[0]] = channels[normal[0]] - 2.5  # normals are signed
    _write_exr(tmp_path / "render.exr", channels)
    image = read_image(tmp_path / "render.exr")
    assert image.meta.hdr and image.meta.format == "exr" and image.meta.sample_type == "float"
    np.testing.assert_array_equal(image.pixels, np.dstack([channels[n] for n in main]))
    assert set(image.aovs) == {"albedo", "normal", "depth"}
    np.testing.assert_array_equal(image.layers["albedo"], np.dstack([channels[n] for n in albedo]))
    np.testing.assert_array_equal(image.layers["normal"], np.dstack([channels[n] for n in normal]))
    np.testing.assert_array_equal(image.layers["depth"][:, :, 0], channels[depth[0]])
    assert "specular" in image.layers and image.layers["specular"].shape == (H, W, 3)

    write_image(tmp_path / "out.exr", image)
    written = OpenEXR.File(str(tmp_path / "out.exr"), separate_channels=True).channels()
    assert set(written) == set(names)  # the same channel names come back
    for name in names:
        np.testing.assert_array_equal(written[name].pixels, channels[name])


def test_half_and_float_channels_keep_their_types(tmp_path):
    channels = {
        "R": _plane(0, np.float16), "G": _plane(1, np.float16), "B": _plane(2, np.float16), "A": _plane(3, np.float16),
        "albedo.R": _plane(4), "albedo.G": _plane(5), "albedo.B": _plane(6),
        "objectid": np.arange(H * W, dtype=np.uint32).reshape(H, W),
    }
    _write_exr(tmp_path / "mixed.exr", channels, OpenEXR.PIZ_COMPRESSION)
    image = read_image(tmp_path / "mixed.exr")
    assert image.meta.sample_type == "half" and image.meta.bit_depth == 16
    np.testing.assert_array_equal(image.alpha, channels["A"].astype(np.float32))
    info = describe(image)
    assert info["alpha"] and info["layers"] == {"objectid": 1, "albedo": 3} and info["compression"] == "PIZ_COMPRESSION"
    write_image(tmp_path / "out.exr", image)
    written = OpenEXR.File(str(tmp_path / "out.exr"), separate_channels=True)
    types = {name: channel.pixels.dtype for name, channel in written.channels().items()}
    assert types == {name: array.dtype for name, array in channels.items()}
    assert written.header()["compression"] == OpenEXR.PIZ_COMPRESSION
    np.testing.assert_array_equal(written.channels()["objectid"].pixels, channels["objectid"])
    # An explicit depth converts everything.
    write_image(tmp_path / "float.exr", image, bit_depth=32)
    floats = read_image(tmp_path / "float.exr")
    assert floats.meta.sample_type == "float"
    np.testing.assert_array_equal(floats.pixels, image.pixels)


def test_half_write_clamps_to_the_half_range_instead_of_infinity(tmp_path):
    image = make_image(np.full((2, 2, 3), 1.0e6, np.float32), None,
                       ImageMeta(format="exr", hdr=True, bit_depth=32, sample_type="float", color_space="linear"))
    write_image(tmp_path / "half.exr", image, bit_depth=16)
    back = read_image(tmp_path / "half.exr")
    assert np.isfinite(back.pixels).all() and back.pixels.max() == 65504.0


def test_multipart_gray_and_data_window(tmp_path):
    beauty = OpenEXR.Part({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                          {"R": _plane(0), "G": _plane(1), "B": _plane(2)}, name="beauty")
    aovs = OpenEXR.Part({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                        {"albedo.R": _plane(3), "albedo.G": _plane(4), "albedo.B": _plane(5)}, name="aovs")
    OpenEXR.File([beauty, aovs]).write(str(tmp_path / "parts.exr"))
    image = read_image(tmp_path / "parts.exr")
    np.testing.assert_array_equal(image.layers["albedo"][:, :, 1], _plane(4))

    _write_exr(tmp_path / "gray.exr", {"Y": _plane(7)})
    gray = read_image(tmp_path / "gray.exr")
    assert gray.meta.gray
    write_image(tmp_path / "gray_out.exr", gray)
    assert set(OpenEXR.File(str(tmp_path / "gray_out.exr"), separate_channels=True).channels()) == {"Y"}
    tinted = gray.with_pixels(gray.pixels * np.array([1.0, 0.5, 0.25], np.float32))
    write_image(tmp_path / "tinted.exr", tinted)  # no longer gray: written as RGB, not squashed to Y
    assert set(OpenEXR.File(str(tmp_path / "tinted.exr"), separate_channels=True).channels()) == {"R", "G", "B"}

    window = (np.array([10, 20], np.int32), np.array([10 + W - 1, 20 + H - 1], np.int32))
    header = {"compression": OpenEXR.NO_COMPRESSION, "dataWindow": window,
              "displayWindow": (np.array([0, 0], np.int32), np.array([99, 99], np.int32))}
    OpenEXR.File(header, {"R": _plane(0), "G": _plane(0), "B": _plane(0)}).write(str(tmp_path / "window.exr"))
    cropped = read_image(tmp_path / "window.exr")
    assert (cropped.width, cropped.height) == (W, H)
    write_image(tmp_path / "window_out.exr", cropped)
    written = OpenEXR.File(str(tmp_path / "window_out.exr"), separate_channels=True, header_only=True).header()
    assert [list(v) for v in written["dataWindow"]] == [[10, 20], [10 + W - 1, 20 + H - 1]]


def _cbox_set(folder, stem="cbox_256_spp00004", size=(H, W)):
    """Files named like ../shared/bench/renders/cbox256 (Mitsuba: normal X/Y/Z, depth T), generated here."""
    height, width = size
    rng = np.random.default_rng(0)
    planes = {k: rng.random((height, width)).astype(np.float32) for k in "RGBabcxyzT"}
    _write_exr(folder / f"{stem}_color.exr", {"R": planes["R"], "G": planes["G"], "B": planes["B"]})
    _write_exr(folder / f"{stem}_albedo.exr", {"R": planes["a"], "G": planes["b"], "B": planes["c"]})
    _write_exr(folder / f"{stem}_normal.exr", {"X": planes["x"] - 0.5, "Y": planes["y"], "Z": planes["z"]})
    _write_exr(folder / f"{stem}_depth.exr", {"T": planes["T"]})
    return planes


def test_sidecars_of_a_cbox_style_set_are_attached(tmp_path):
    planes = _cbox_set(tmp_path)
    _cbox_set(tmp_path, stem="cbox_256_spp00016")  # a neighbouring set must not be mixed in
    image = read_image(tmp_path / "cbox_256_spp00004_color.exr")
    assert set(image.aovs) == {"albedo", "normal", "depth"}
    np.testing.assert_array_equal(image.layers["albedo"], np.dstack([planes["a"], planes["b"], planes["c"]]))
    np.testing.assert_array_equal(image.layers["normal"][:, :, 0], planes["x"] - 0.5)
    np.testing.assert_array_equal(image.layers["depth"][:, :, 0], planes["T"])
    assert describe(image)["sidecars"]["albedo"] == "cbox_256_spp00004_albedo.exr"
    assert read_image(tmp_path / "cbox_256_spp00004_color.exr", load_sidecars=False).layers == {}

    # Saved as one multi-layer EXR, the AOVs come back from the file alone.
    (tmp_path / "elsewhere").mkdir()
    write_image(tmp_path / "elsewhere" / "denoised.exr", image)
    back = read_image(tmp_path / "elsewhere" / "denoised.exr")
    for name in ("albedo", "normal", "depth"):
        np.testing.assert_array_equal(back.layers[name], image.layers[name])


def test_a_folder_of_renders_lists_each_render_once_without_its_sidecars_and_reference(tmp_path):
    """Opening or restoring a folder: a cbox-style set is one image (its AOV files are its layers), a shot's
    frame_0001_ref.exr is the reference of frame_0001.exr, not an input; photos named like that stay inputs."""
    from engine.imageio import folder_images

    _cbox_set(tmp_path)
    _cbox_set(tmp_path, stem="cbox_256_spp00016")
    for name in ("frame_0001", "frame_0001_ref", "frame_0002", "lonely_ref"):
        _write_exr(tmp_path / f"{name}.exr", {"R": _plane(0), "G": _plane(1), "B": _plane(2)})
    photo = make_image(np.zeros((4, 4, 3), np.float32), None, ImageMeta(format="png", bit_depth=8))
    write_image(tmp_path / "photo.png", photo)
    write_image(tmp_path / "photo_clean.png", photo)
    images, left_out = folder_images(tmp_path)
    assert [p.name for p in images] == ["cbox_256_spp00004_color.exr", "cbox_256_spp00016_color.exr",
                                        "frame_0001.exr", "frame_0002.exr", "lonely_ref.exr", "photo.png",
                                        "photo_clean.png"]
    assert left_out[tmp_path / "frame_0001_ref.exr"] == "reference of frame_0001.exr"
    assert left_out[tmp_path / "cbox_256_spp00004_albedo.exr"] == "albedo of cbox_256_spp00004_color.exr"
    assert len(left_out) == 7  # 3 AOV files per cbox set and one reference

@pytest.mark.parametrize("pattern", ["{stem}.{aov}.exr", "{stem}_{aov}.exr"])
def test_sidecar_naming_patterns_and_size_mismatch(tmp_path, pattern):
    _write_exr(tmp_path / "shot.exr", {"R": _plane(0), "G": _plane(1), "B": _plane(2)})
    _write_exr(tmp_path / pattern.format(stem="shot", aov="albedo"),
               {"R": _plane(3), "G": _plane(4), "B": _plane(5)})
    small = np.zeros((2, 2), np.float32)
    _write_exr(tmp_path / pattern.format(stem="shot", aov="normal"), {"X": small, "Y": small, "Z": small})
    image = read_image(tmp_path / "shot.exr")
    assert list(image.aovs) == ["albedo"]
    assert "normal" in image.meta.extra["sidecar_problems"]


def test_nonfinite_and_negative_values_are_read_reported_and_sanitized(tmp_path):
    red = _plane(0)
    red[0, 0], red[0, 1], red[0, 2], red[0, 3] = np.nan, np.inf, -np.inf, -0.5
    normal = np.full((H, W), -1.0, np.float32)
    normal[1, 1] = np.nan
    _write_exr(tmp_path / "bad.exr", {"R": red, "G": _plane(1), "B": _plane(2),
                                       "normal.X": normal, "normal.Y": normal, "normal.Z": normal})
    image = read_image(tmp_path / "bad.exr")
    assert np.isnan(image.pixels[0, 0, 0]) and np.isposinf(image.pixels[0, 1, 0])  # read as they are
    extra = image.meta.extra
    assert (extra["nan_count"], extra["inf_count"], extra["nonfinite_count"], extra["negative_count"]) == (1, 2, 3, 2)
    assert describe(image)["nonfinite_count"] == 3

    pixels, report = sanitize_hdr(image.pixels)
    assert np.isfinite(pixels).all() and pixels.min() == 0.0
    assert report["nonfinite_count"] == 3 and report["negative_count"] == 2
    np.testing.assert_array_equal(pixels[0, :4, 0], [0, 0, 0, 0])
    np.testing.assert_array_equal(pixels[1:], image.pixels[1:])
    assert np.isnan(image.pixels[0, 0, 0])  # the input is untouched

    clean, image_report = sanitize_image(image)
    assert np.isfinite(clean.layers["normal"]).all()
    assert clean.layers["normal"][0, 0, 0] == -1.0  # normals keep their sign
    assert image_report["layer_normal_nonfinite_count"] == 3


def test_radiance_hdr_round_trip(tmp_path):
    values = (np.random.default_rng(9).random((H, W, 3)) * 50).astype(np.float32) + 0.01
    image = make_image(values, None, ImageMeta(format="exr", hdr=True, bit_depth=32, sample_type="float",
                                               color_space="linear"))
    write_image(tmp_path / "out.hdr", image)
    back = read_image(tmp_path / "out.hdr")
    assert back.meta.format == "hdr" and back.meta.hdr
    # RGBE shares one exponent per pixel: 8 bits of mantissa relative to the pixel's brightest channel.
    assert np.max(np.abs(back.pixels - values) / values.max(axis=2, keepdims=True)) < 0.01


def test_display_image_to_exr_is_linearised_and_back(tmp_path):
    levels = np.arange(256, dtype=np.float32).reshape(16, 16) / 255
    image = make_image(np.dstack([levels, levels[::-1], levels.T]), None, ImageMeta(format="png"))
    write_image(tmp_path / "linear.exr", image)
    linear = read_image(tmp_path / "linear.exr")
    assert linear.meta.hdr and linear.meta.sample_type == "half"
    assert linear.pixels[15, 15, 0] == 1.0 and abs(linear.pixels[8, 0, 0] - 0.2158605) < 1e-3  # 128/255 sRGB
    write_image(tmp_path / "again.png", linear, bit_depth=8)
    np.testing.assert_array_equal(read_image(tmp_path / "again.png").pixels, image.pixels)
