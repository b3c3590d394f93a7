"""Round trips and metadata of PNG, JPEG, TIFF, BMP and WebP through engine.imageio."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps

from engine.image import ImageMeta, make_image
from engine.imageio import describe, is_supported, read_image, write_image

LOSSLESS = {"png": (8, 16), "tif": (8, 16), "bmp": (8,), "webp": (8,)}


def _synthetic(bits: int, gray: bool, alpha: bool, seed: int = 0, size=(17, 23)):
    rng = np.random.default_rng(seed)
    full = 255 if bits == 8 else 65535
    values = rng.integers(0, full + 1, (*size, 3)).astype(np.float32) / full
    if gray:
        values[:, :, 1] = values[:, :, 0]
        values[:, :, 2] = values[:, :, 0]
    alpha_values = rng.integers(0, full + 1, size).astype(np.float32) / full if alpha else None
    return make_image(values, alpha_values, ImageMeta(bit_depth=bits, gray=gray))


def _icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif(orientation: int | None = None) -> bytes:
    exif = PILImage.Exif()
    exif[0x010F] = "RestorationTestCam"
    if orientation:
        exif[0x0112] = orientation
    return exif.tobytes()


@pytest.mark.parametrize("ext", sorted(LOSSLESS))
@pytest.mark.parametrize("gray", [False, True], ids=["rgb", "gray"])
@pytest.mark.parametrize("alpha", [False, True], ids=["opaque", "alpha"])
def test_lossless_round_trip_keeps_values_depth_alpha_and_grayness(tmp_path, ext, gray, alpha):
    for bits in LOSSLESS[ext]:
        image = _synthetic(bits, gray, alpha)
        target = tmp_path / f"out{bits}.{ext}"
        assert write_image(target, image) == target
        back = read_image(target)
        assert back.meta.bit_depth == bits
        assert back.pixels.dtype == np.float32 and back.pixels.shape == (17, 23, 3)
        np.testing.assert_array_equal(back.pixels, image.pixels)
        assert (back.alpha is not None) == alpha
        if alpha:
            np.testing.assert_array_equal(back.alpha, image.alpha)
        # WebP has no gray mode and BMP no gray + alpha: those come back as RGB(A) with equal channels.
        expect_gray = gray and not (ext == "webp" or (ext == "bmp" and alpha))
        assert back.meta.gray == expect_gray
        assert not back.meta.hdr and back.meta.color_space == "srgb"


@pytest.mark.parametrize("gray", [False, True])
def test_jpeg_round_trip_is_close_and_drops_alpha(tmp_path, gray):
    rng = np.random.default_rng(1)
    rows, cols = np.meshgrid(np.linspace(0, 1, 32), np.linspace(0, 1, 40), indexing="ij")
    smooth = rows.astype(np.float32)
    pixels = np.dstack([smooth, cols, (rows + cols) / 2]).astype(np.float32) if not gray else smooth
    image = make_image(pixels, rng.random((32, 40)).astype(np.float32), ImageMeta(gray=gray))
    write_image(tmp_path / "out.jpg", image, jpeg_quality=95)
    back = read_image(tmp_path / "out.jpg")
    assert back.alpha is None and back.meta.format == "jpeg" and back.meta.gray == gray
    assert np.abs(back.pixels - image.pixels).mean() < 0.01


def test_content_decides_the_format_not_the_extension(tmp_path):
    image = _synthetic(8, False, False)
    write_image(tmp_path / "photo.jpg", image)
    (tmp_path / "photo.jpg").rename(tmp_path / "actually_jpeg.png")
    back = read_image(tmp_path / "actually_jpeg.png")
    assert back.meta.format == "jpeg"


@pytest.mark.parametrize("ext", ["png", "jpg", "webp", "tif"])
def test_icc_and_exif_survive_read_and_write(tmp_path, ext):
    icc, exif = _icc(), _exif()
    pixels = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    PILImage.fromarray(pixels).save(tmp_path / f"in.{ext}", icc_profile=icc, exif=exif)
    image = read_image(tmp_path / f"in.{ext}")
    assert image.meta.icc_profile == icc
    write_image(tmp_path / f"out.{ext}", image)
    back = read_image(tmp_path / f"out.{ext}")
    assert back.meta.icc_profile == icc
    if ext != "tif":  # TIFF keeps the ICC profile but not EXIF (documented)
        assert image.meta.exif.startswith(b"Exif\x00\x00") and b"RestorationTestCam" in image.meta.exif
        assert back.meta.exif is not None and b"RestorationTestCam" in back.meta.exif
    info = describe(back)
    assert info["icc_profile"] == len(icc)


def test_sixteen_bit_png_keeps_icc_exif_and_text(tmp_path):
    icc = _icc()
    image = make_image(
        np.random.default_rng(3).random((9, 11, 3)).astype(np.float32),
        None,
        ImageMeta(bit_depth=16, icc_profile=icc, exif=b"Exif\x00\x00" + _exif()[6:], extra={"dpi": (300.0, 300.0)}),
    )
    write_image(tmp_path / "deep.png", image)
    back = read_image(tmp_path / "deep.png")
    assert back.meta.bit_depth == 16 and back.meta.icc_profile == icc
    assert b"RestorationTestCam" in back.meta.exif
    assert back.meta.extra["dpi"] == pytest.approx((300.0, 300.0), abs=0.01)
    # Pillow, an independent reader, sees the same chunks.
    with PILImage.open(tmp_path / "deep.png") as opened:
        assert opened.info["icc_profile"] == icc


def test_exif_orientation_is_applied_and_reset(tmp_path):
    pixels = np.random.default_rng(4).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    PILImage.fromarray(pixels).save(tmp_path / "rotated.png", exif=_exif(orientation=6))
    image = read_image(tmp_path / "rotated.png")
    with PILImage.open(tmp_path / "rotated.png") as opened:
        upright = np.asarray(ImageOps.exif_transpose(opened))
    assert image.pixels.shape == (30, 20, 3)
    np.testing.assert_array_equal(np.rint(image.pixels * 255).astype(np.uint8), upright)
    assert image.meta.extra["exif_orientation_applied"] == 6
    write_image(tmp_path / "again.png", image)
    again = read_image(tmp_path / "again.png")
    assert again.pixels.shape == (30, 20, 3) and "exif_orientation_applied" not in again.meta.extra
    assert b"RestorationTestCam" in again.meta.exif


def test_palette_png_with_transparency(tmp_path):
    pixels = np.random.default_rng(5).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    palette_image = PILImage.fromarray(pixels).quantize(8)
    palette_image.save(tmp_path / "opaque.png")
    palette_image.save(tmp_path / "clear.png", transparency=2)
    opaque = read_image(tmp_path / "opaque.png")
    assert opaque.meta.palette and opaque.alpha is None
    np.testing.assert_array_equal(np.rint(opaque.pixels * 255), np.asarray(palette_image.convert("RGB")))
    clear = read_image(tmp_path / "clear.png")
    with PILImage.open(tmp_path / "clear.png") as opened:
        expected = np.asarray(opened.convert("RGBA"))
    assert clear.meta.palette and clear.alpha is not None
    np.testing.assert_array_equal(np.rint(clear.alpha * 255), expected[:, :, 3])
    np.testing.assert_array_equal(np.rint(clear.pixels * 255), expected[:, :, :3])
    write_image(tmp_path / "clear_out.png", clear)
    back = read_image(tmp_path / "clear_out.png")
    assert not back.meta.palette and back.alpha is not None  # palette images are saved as RGBA
    np.testing.assert_array_equal(back.pixels, clear.pixels)


def test_low_bit_gray_png_expands_to_8_bit(tmp_path):
    mask = np.random.default_rng(6).random((12, 12)) > 0.5
    PILImage.fromarray(mask).save(tmp_path / "mask.png")
    image = read_image(tmp_path / "mask.png")
    assert image.meta.gray and image.meta.bit_depth == 8 and image.meta.extra["png_bit_depth"] == 1
    np.testing.assert_array_equal(image.pixels[:, :, 0], mask.astype(np.float32))


def test_gray_with_unequal_channels_is_written_as_rgb(tmp_path):
    image = make_image(np.random.default_rng(7).random((8, 8, 3)).astype(np.float32), None, ImageMeta(gray=True))
    write_image(tmp_path / "out.png", image)
    back = read_image(tmp_path / "out.png")
    assert not back.meta.gray  # a restoration that coloured a gray image is not squashed back to gray


def test_explicit_bit_depth_and_format(tmp_path):
    image = _synthetic(16, False, True)
    write_image(tmp_path / "eight.png", image, bit_depth=8)
    assert read_image(tmp_path / "eight.png").meta.bit_depth == 8
    written = write_image(tmp_path / "named_by_format.img", image, format="tiff")
    assert read_image(written).meta.format == "tiff"


def test_float_tiff_is_linear_hdr(tmp_path):
    import tifffile

    values = (np.random.default_rng(8).random((10, 12, 3)) * 5).astype(np.float32)
    tifffile.imwrite(tmp_path / "float.tif", values, photometric="rgb")
    image = read_image(tmp_path / "float.tif")
    assert image.meta.hdr and image.meta.sample_type == "float"
    np.testing.assert_array_equal(image.pixels, values)
    write_image(tmp_path / "copy.tif", image)
    np.testing.assert_array_equal(read_image(tmp_path / "copy.tif").pixels, values)


def test_hdr_to_png_is_srgb_encoded_and_clipped(tmp_path):
    linear = np.array([[[0.0, 0.318547, 4.0]]], dtype=np.float32)  # 0.318547 linear = 0.6 sRGB
    image = make_image(linear, None, ImageMeta(format="exr", hdr=True, color_space="linear", bit_depth=32,
                                                sample_type="float"))
    write_image(tmp_path / "out.png", image, bit_depth=8)
    back = read_image(tmp_path / "out.png")
    np.testing.assert_array_equal(np.rint(back.pixels * 255)[0, 0], [0, 153, 255])


def test_is_supported():
    assert is_supported("a.PNG") and is_supported("b.exr") and is_supported("c.jpeg") and is_supported("d.hdr")
    assert not is_supported("e.gif") and not is_supported("noext")


def test_tiff_variants_from_other_writers(tmp_path):
    import cv2
    import tifffile

    rng = np.random.default_rng(9)
    deep = rng.integers(0, 65536, (12, 10, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "lzw.tif"), deep[:, :, ::-1])  # OpenCV writes LZW, which tifffile cannot decode
    lzw = read_image(tmp_path / "lzw.tif")
    assert lzw.meta.bit_depth == 16
    np.testing.assert_array_equal(np.rint(lzw.pixels * 65535), deep)

    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(deep, 2, 0), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(np.rint(read_image(tmp_path / "planar.tif").pixels * 65535), deep)

    gray = rng.integers(0, 256, (12, 10), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "white.tif", gray, photometric="miniswhite")
    white = read_image(tmp_path / "white.tif")
    assert white.meta.gray
    np.testing.assert_array_equal(np.rint(white.pixels[:, :, 0] * 255), 255 - gray)


def test_webp_is_lossless_by_default_and_lossy_with_a_quality(tmp_path):
    image = _synthetic(8, False, True, size=(64, 64))
    lossless = write_image(tmp_path / "lossless.webp", image)
    lossy = write_image(tmp_path / "lossy.webp", image, jpeg_quality=50)
    np.testing.assert_array_equal(read_image(lossless).pixels, image.pixels)
    assert lossy.stat().st_size < lossless.stat().st_size
    assert read_image(lossy).alpha is not None


@pytest.mark.parametrize("ext", ["png", "tif", "exr", "jpg"])
def test_reading_and_writing_stay_memory_lean(tmp_path, ext):
    """A 2 MP image: numpy/Python allocations peak near the size of the float32 result, not several copies."""
    import tracemalloc

    rows, cols = np.mgrid[0:1000, 0:2000]
    pixels = np.dstack([(rows % 256) / 255, (cols % 256) / 255, ((rows + cols) % 256) / 255]).astype(np.float32)
    image = make_image(pixels, None, ImageMeta(format="png"))
    del rows, cols, pixels
    path = tmp_path / f"big.{ext}"
    tracemalloc.start()
    try:
        write_image(path, image)
        write_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        back = read_image(path)
        read_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = image.pixels.nbytes
    assert write_peak < 1.4 * size, f"write peak {write_peak / size:.2f}x the pixels"
    assert read_peak - back.pixels.nbytes < 0.8 * size, f"read peak {read_peak / size:.2f}x the pixels"


def test_xmp_travels_between_jpeg_png_and_webp(tmp_path):
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Restorer'
           b"</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>")
    PILImage.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.jpg", xmp=xmp)
    image = read_image(tmp_path / "in.jpg")
    for ext in ("png", "webp", "jpg"):
        back = read_image(write_image(tmp_path / f"out.{ext}", image))
        assert b"Restorer" in back.meta.extra["xmp"], ext
    from_png = read_image(tmp_path / "out.png")
    assert b"Restorer" in read_image(write_image(tmp_path / "again.jpg", from_png)).meta.extra["xmp"]


@pytest.mark.parametrize("quality", [30, 75, 92])
def test_jpeg_quality_is_estimated_and_kept_on_resave(tmp_path, quality):
    pixels = np.random.default_rng(10).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    PILImage.fromarray(pixels).save(tmp_path / "in.jpg", quality=quality)
    image = read_image(tmp_path / "in.jpg")
    assert image.meta.extra["jpeg_quality"] == quality
    write_image(tmp_path / "out.jpg", image)
    assert read_image(tmp_path / "out.jpg").meta.extra["jpeg_quality"] == quality


@pytest.mark.parametrize("ext", ["png", "jpg", "tif", "bmp", "webp", "exr", "hdr"])
def test_non_ascii_paths(tmp_path, ext):
    folder = tmp_path / "Bilder ü 图"
    folder.mkdir()
    image = _synthetic(8, False, False, size=(5, 6))
    back = read_image(write_image(folder / f"ïmage ü.{ext}", image))
    assert back.pixels.shape == (5, 6, 3)
    assert [p.name for p in folder.iterdir()] == [f"ïmage ü.{ext}"]  # and no temporary file left behind
