"""The comparison viewer: every mode, zoom and pan, divider, flicker, difference map."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from engine.image import ImageMeta, make_image
from gui.viewer import MAX_ZOOM, CompareViewer


def solid(rgb, w=64, h=48, hdr=False):
    pixels = np.empty((h, w, 3), np.float32)
    pixels[:] = rgb
    meta = ImageMeta(format="exr", bit_depth=32, sample_type="float", hdr=True, color_space="linear") if hdr \
        else ImageMeta()
    return make_image(pixels, meta=meta)


def colour_at(viewer, x, y):
    c = viewer.grab().toImage().pixelColor(x, y)
    return c.red(), c.green(), c.blue()


@pytest.fixture
def viewer(qtbot):
    widget = CompareViewer()
    widget.resize(400, 300)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_images(solid((1, 0, 0)), solid((0, 0, 1)), "red", "blue")
    return widget


def test_fit_centres_the_canvas(viewer):
    assert viewer.zoom() == pytest.approx(min(400 / 64, 300 / 48))
    top_left = viewer.widget_point(0, 0)
    bottom_right = viewer.widget_point(64, 48)
    assert top_left.x() == pytest.approx(400 - bottom_right.x())


def test_split_shows_a_left_and_b_right_and_divider_drags(qtbot, viewer):
    viewer.set_mode("split")
    assert colour_at(viewer, 100, 150) == (255, 0, 0)
    assert colour_at(viewer, 300, 150) == (0, 0, 255)
    # Drag the divider from the middle to x = 300: the point at 250 now shows A.
    qtbot.mousePress(viewer, Qt.MouseButton.LeftButton, pos=QPoint(200, 150))
    qtbot.mouseMove(viewer, QPoint(300, 150))
    qtbot.mouseRelease(viewer, Qt.MouseButton.LeftButton, pos=QPoint(300, 150))
    assert viewer.divider() == pytest.approx(0.75, abs=0.01)
    assert colour_at(viewer, 250, 150) == (255, 0, 0)
    assert colour_at(viewer, 330, 150) == (0, 0, 255)


def test_side_by_side_panes_share_zoom_and_pan(viewer):
    viewer.set_mode("side")
    viewer.zoom_fit()
    left = viewer.canvas_point(QPointF(50, 150))
    right = viewer.canvas_point(QPointF(50 + 201, 150))  # same spot in the right pane (half + gap)
    assert left is not None and right is not None
    assert left.x() == pytest.approx(right.x(), abs=0.01)
    assert colour_at(viewer, 100, 150) == (255, 0, 0)
    assert colour_at(viewer, 300, 150) == (0, 0, 255)
    viewer.pan_by(10, 0)
    assert viewer.canvas_point(QPointF(60, 150)).x() == pytest.approx(left.x(), abs=0.01)
    assert viewer.canvas_point(QPointF(261, 150)).x() == pytest.approx(left.x(), abs=0.01)


def test_flicker_by_key_and_click(qtbot, viewer):
    viewer.set_mode("flicker")
    viewer.setFocus()
    assert colour_at(viewer, 200, 150) == (255, 0, 0)
    qtbot.keyPress(viewer, Qt.Key.Key_Space)
    assert viewer.showing_b()
    assert colour_at(viewer, 200, 150) == (0, 0, 255)
    qtbot.keyRelease(viewer, Qt.Key.Key_Space)
    assert not viewer.showing_b()
    qtbot.mouseClick(viewer, Qt.MouseButton.LeftButton, pos=QPoint(200, 150))
    assert viewer.showing_b()
    qtbot.mouseClick(viewer, Qt.MouseButton.LeftButton, pos=QPoint(200, 150))
    assert not viewer.showing_b()


def test_difference_mode_shows_false_colour_and_needs_equal_sizes(viewer):
    a = solid((0.5, 0.5, 0.5))
    pixels = np.full((48, 64, 3), 0.5, np.float32)
    pixels[:, 32:] = 0.9  # right half differs
    viewer.set_images(a, make_image(pixels), "a", "b")
    viewer.set_mode("diff")
    errors, vmax = viewer.diff_values()
    assert errors[0, 0] == 0.0 and errors[0, 40] == pytest.approx(0.4)
    assert vmax == pytest.approx(0.4)
    dark = colour_at(viewer, 120, 150)
    bright = colour_at(viewer, 280, 150)
    assert sum(bright) > sum(dark) + 200
    viewer.set_error_kind("rel_abs")
    assert viewer.diff_values()[0][0, 40] == pytest.approx(0.4 / 0.51)
    viewer.set_images(a, solid((0, 0, 0), w=128, h=96))
    assert viewer.diff_values() is None


def test_zoom_around_cursor_limits_and_one_to_one(qtbot, viewer):
    anchor = QPointF(120, 100)
    before = viewer.canvas_point(anchor)
    viewer.zoom_to(viewer.zoom() * 3, anchor)
    after = viewer.canvas_point(anchor)
    assert after.x() == pytest.approx(before.x(), abs=1e-3) and after.y() == pytest.approx(before.y(), abs=1e-3)
    viewer.zoom_to(1000)
    assert viewer.zoom() == MAX_ZOOM
    # MAX_ZOOM (64) goes beyond the 32x that pixel peeping needs, so that values can be written in pixels.
    viewer.zoom_1to1()
    assert viewer.zoom() == 1.0
    viewer.zoom_fit()
    fit = viewer.zoom()
    viewer.zoom_to(0.0001)
    assert viewer.zoom() == pytest.approx(min(fit * 0.5, 1.0))


def test_magnified_pixels_are_nearest_neighbour(qtbot):
    viewer = CompareViewer()
    viewer.resize(300, 300)
    qtbot.addWidget(viewer)
    viewer.show()
    pixels = np.zeros((4, 4, 3), np.float32)
    pixels[::2, ::2] = 1.0  # a checkerboard of single pixels
    pixels[1::2, 1::2] = 1.0
    image = make_image(pixels)
    viewer.set_images(image, image)
    viewer.set_mode("flicker")
    viewer.zoom_to(32.0, QPointF(150, 150))
    origin = viewer.widget_point(0, 0)
    # Sample near the edges inside pixel (1, 1) and (2, 1): a smooth filter would blend them there.
    inside_white = colour_at(viewer, int(origin.x() + 32 * 1 + 3), int(origin.y() + 32 * 1 + 3))
    inside_black = colour_at(viewer, int(origin.x() + 32 * 2 + 3), int(origin.y() + 32 * 1 + 3))
    assert inside_white == (255, 255, 255)
    assert inside_black == (0, 0, 0)


def test_wheel_zooms_and_hover_reports_canvas_pixels(qtbot, viewer):
    seen = []
    viewer.hovered.connect(lambda x, y: seen.append((x, y)))
    centre = viewer.widget_point(10.5, 20.5)
    qtbot.mouseMove(viewer, centre.toPoint())
    assert seen[-1] == (10, 20)
    viewer.zoom_to(viewer.zoom() / 2)
    qtbot.mouseMove(viewer, QPoint(2, 2))  # outside the image now
    assert seen[-1] == (-1, -1)
    # One wheel notch up zooms in by 2**0.25 around the cursor.
    anchor = QPointF(150, 120)
    before_zoom, before_point = viewer.zoom(), viewer.canvas_point(anchor)
    event = QWheelEvent(anchor, viewer.mapToGlobal(anchor), QPoint(0, 0), QPoint(0, 120), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(viewer, event)
    assert viewer.zoom() == pytest.approx(before_zoom * 2 ** 0.25)
    assert viewer.canvas_point(anchor).x() == pytest.approx(before_point.x(), abs=1e-3)


def test_exposure_applies_to_hdr_panes(viewer):
    hdr = solid((0.1, 0.1, 0.1), hdr=True)
    viewer.set_images(hdr, hdr)
    dim = colour_at(viewer, 100, 150)[0]
    viewer.set_exposure(3.0)
    bright_left = colour_at(viewer, 100, 150)[0]
    bright_right = colour_at(viewer, 300, 150)[0]
    assert bright_left > dim + 40
    assert bright_left == bright_right


def test_different_sizes_line_up_on_one_canvas(viewer):
    small = solid((1, 0, 0), w=32, h=24)
    big = solid((0, 0, 1), w=64, h=48)
    viewer.set_images(small, big)
    assert viewer.canvas_size() == (64, 48)
    viewer.set_mode("side")
    assert colour_at(viewer, 100, 150) == (255, 0, 0)


def test_pixel_values_are_written_into_pixels_at_high_zoom(qtbot):
    viewer = CompareViewer()
    viewer.resize(300, 300)
    qtbot.addWidget(viewer)
    viewer.show()
    image = make_image(np.full((4, 4, 3), 0.25, np.float32))
    viewer.set_images(image, image)
    viewer.set_mode("flicker")

    def light_pixels_in_cell():
        origin = viewer.widget_point(1, 1)
        shot = viewer.grab().toImage()
        cell = [shot.pixelColor(int(origin.x()) + dx, int(origin.y()) + dy).red()
                for dx in range(2, 60, 2) for dy in range(2, 60, 2)]
        return sum(1 for v in cell if v > 200)

    viewer.zoom_to(8.0)
    assert light_pixels_in_cell() == 0
    viewer.zoom_to(64.0, viewer.widget_point(1.5, 1.5))
    assert light_pixels_in_cell() > 5  # "0.250" three times, in light text on the dark pixel
