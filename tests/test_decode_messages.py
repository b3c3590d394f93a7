"""A decode's captured output: the OpenEXR library's complaints refuse the file, other writers' lines do not.

The capture of stdout / stderr during a decode is process-wide, so a Qt warning printed by the window's thread
while a frame is read lands in it; that must not make a valid EXR "damaged"."""

import os

import numpy as np
import pytest

import engine.imageio as imageio
from engine.errors import ImageReadError
from engine.image import ImageMeta, make_image
from engine.imageio import read_image, write_image


@pytest.fixture()
def exr(tmp_path):
    path = tmp_path / "frame.exr"
    pixels = np.random.default_rng(0).uniform(0, 2, (8, 8, 3)).astype(np.float32)
    write_image(path, make_image(pixels, None, ImageMeta(format="exr", hdr=True, bit_depth=32, sample_type="float")))
    return path


def _talking_decoder(monkeypatch, line):
    real = imageio._decode_quietly

    def decode(*args, **kwargs):
        os.write(2, (line + "\n").encode())  # what another thread (or the library) writes to fd 2 meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(imageio, "_decode_quietly", decode)


def test_a_qt_warning_during_a_decode_is_not_the_files_fault(exr, monkeypatch):
    _talking_decoder(monkeypatch, "QPainter::begin: Paint device returned engine == 0, type: 2")
    image = read_image(exr)
    assert image.width == 8
    _talking_decoder(monkeypatch, "qt.qpa.xcb: QXcbConnection: XCB error: 3 (BadWindow)")
    assert read_image(exr).height == 8


def test_the_openexr_librarys_complaint_still_refuses_the_file(exr, monkeypatch):
    _talking_decoder(monkeypatch, "Corrupt tile data at (0, 0)")
    with pytest.raises(ImageReadError, match="damaged OpenEXR"):
        read_image(exr)
