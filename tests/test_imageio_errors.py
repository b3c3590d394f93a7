"""Bad input gives ImageReadError naming the file; writes are atomic and never replace the input by accident."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bench.malformed import build_corpus, valid_bytes
from engine.errors import ImageReadError, ImageWriteError
from engine.image import ImageMeta, make_image
from engine.imageio import MAX_PIXELS_ENV, read_image, write_image
from engine.imageio.atomic import atomic_write

_IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def test_every_malformed_file_gives_a_clear_read_error(tmp_path):
    corpus = build_corpus(tmp_path / "bad")
    assert len(corpus) > 30
    for path, words in corpus:
        with pytest.raises(ImageReadError) as caught:
            read_image(path)
        message = str(caught.value)
        assert str(path) in message, message
        assert any(word in caught.value.problem for word in words), f"{path.name}: {caught.value.problem}"


@pytest.mark.parametrize("fmt", ["png", "jpeg", "tiff", "bmp", "webp", "exr", "hdr"])
def test_damaged_files_never_escape_as_other_exceptions(tmp_path, fmt):
    """Bytes flipped or cut at seeded random places: the result is an image or an ImageReadError, nothing else."""
    data = valid_bytes(fmt, (24, 32))
    rng = np.random.default_rng(42)
    for index in range(12):
        damaged = bytearray(data)
        if index % 2:
            damaged = damaged[: int(rng.integers(8, len(damaged)))]
        else:
            for position in rng.integers(0, len(damaged), 6):
                damaged[position] = int(rng.integers(0, 256))
        path = tmp_path / f"damaged{index}.{fmt}"
        path.write_bytes(bytes(damaged))
        try:
            image = read_image(path)
        except ImageReadError as error:
            assert str(path) in str(error)
        else:
            assert image.pixels.shape[2] == 3 and image.pixels.dtype == np.float32
            assert not index % 2, "a truncated file must not read as an image"


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "nowhere.png")
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


@pytest.mark.skipif(_IS_ROOT or os.name == "nt", reason="root reads any file; needs POSIX permissions")
def test_unreadable_file(tmp_path):
    path = tmp_path / "locked.png"
    path.write_bytes(valid_bytes("png"))
    path.chmod(0)
    try:
        with pytest.raises(ImageReadError, match="permission denied"):
            read_image(path)
    finally:
        path.chmod(0o644)


def test_pixel_limit_argument_and_environment(tmp_path, monkeypatch):
    path = tmp_path / "small.png"
    path.write_bytes(valid_bytes("png", (48, 64)))
    assert read_image(path).width == 64
    with pytest.raises(ImageReadError, match="too large"):
        read_image(path, max_pixels=1000)
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")
    with pytest.raises(ImageReadError, match=MAX_PIXELS_ENV):
        read_image(path)
    assert read_image(path, max_pixels=10_000).height == 48  # an explicit limit wins over the environment
    exr = tmp_path / "small.exr"
    exr.write_bytes(valid_bytes("exr", (48, 64)))
    with pytest.raises(ImageReadError, match="too large"):
        read_image(exr)


def _image(path: str | None = None):
    return make_image(np.full((4, 5, 3), 0.5, np.float32), None, ImageMeta(path=path))


def test_refuses_to_overwrite_the_input_unless_asked(tmp_path):
    source = tmp_path / "photo.png"
    write_image(source, _image())
    image = read_image(source)
    before = source.read_bytes()
    with pytest.raises(ImageWriteError, match="overwrite the input"):
        write_image(source, image)
    with pytest.raises(ImageWriteError, match="overwrite the input"):
        write_image(tmp_path / "." / "photo.png", image)  # another spelling of the same file
    assert source.read_bytes() == before
    write_image(source, image.with_pixels(np.zeros((4, 5, 3), np.float32)), allow_overwrite_input=True)
    assert read_image(source).pixels.max() == 0.0


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    def half_then_fail(temporary: Path) -> None:
        temporary.write_bytes(b"partial")
        raise RuntimeError("disk on fire")

    target = tmp_path / "out.png"
    with pytest.raises(ImageWriteError, match="disk on fire"):
        atomic_write(target, half_then_fail)
    assert list(tmp_path.iterdir()) == []

    target.write_bytes(b"old content")
    with pytest.raises(ImageWriteError):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old content" and list(tmp_path.iterdir()) == [target]


def test_encoder_errors_become_write_errors_without_files(tmp_path):
    image = _image()
    with pytest.raises(ImageWriteError, match="16-bit"):
        write_image(tmp_path / "deep.jpg", image, bit_depth=16)
    with pytest.raises(ImageWriteError, match="extension"):
        write_image(tmp_path / "picture.gif", image)
    with pytest.raises(ImageWriteError, match="does not exist"):
        write_image(tmp_path / "no" / "such" / "folder.png", image)
    with pytest.raises(ImageWriteError, match="quality"):
        write_image(tmp_path / "q.jpg", image, jpeg_quality=0)
    clash = make_image(np.zeros((4, 5, 3), np.float32), None, ImageMeta(format="exr", hdr=True),
                       {"R": np.zeros((4, 5, 1), np.float32)})  # a layer named like the main red channel
    with pytest.raises(ImageWriteError, match="channel"):
        write_image(tmp_path / "clash.exr", clash)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(_IS_ROOT or os.name == "nt", reason="root writes anywhere; needs POSIX permissions")
def test_read_only_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ImageWriteError, match="permission denied"):
            write_image(folder / "out.png", _image())
    finally:
        folder.chmod(0o755)


def test_new_files_are_not_private(tmp_path):
    path = write_image(tmp_path / "shared.png", _image())
    assert path.stat().st_mode & 0o044  # mkstemp's 0600 is not kept


def test_permission_errors_are_reported_even_when_running_as_root(tmp_path, monkeypatch):
    """Root ignores file modes, so simulate the operating system's refusal."""
    import engine.imageio
    import engine.imageio.atomic

    path = tmp_path / "photo.png"
    path.write_bytes(valid_bytes("png"))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(engine.imageio, "open", refuse, raising=False)
    with pytest.raises(ImageReadError, match="permission denied"):
        read_image(path)
    monkeypatch.setattr(engine.imageio.atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(ImageWriteError, match="permission denied"):
        write_image(tmp_path / "out.png", _image())
