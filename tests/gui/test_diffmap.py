import numpy as np
import pytest

from gui.diffmap import FalseColour, error_map, robust_max


def test_error_kinds():
    b = np.full((2, 2, 3), 0.5, np.float32)
    a = b.copy()
    a[0, 0] = 0.7
    assert error_map(a, b, "abs")[0, 0] == pytest.approx(0.2)
    assert error_map(a, b, "abs")[1, 1] == 0.0
    assert error_map(a, b, "sq")[0, 0] == pytest.approx(0.04)
    assert error_map(a, b, "rel_abs")[0, 0] == pytest.approx(0.2 / 0.51)
    assert error_map(a, b, "rel_sq")[0, 0] == pytest.approx(0.04 / (0.25 + 0.01))
    with pytest.raises(ValueError):
        error_map(a, b[:1], "abs")
    with pytest.raises(ValueError):
        error_map(a, b, "nope")


def test_robust_max_ignores_fireflies_and_false_colour_spans_the_map():
    values = np.zeros((100, 100), np.float32)
    values[:50] = 0.1
    values[0, 0] = 1000.0
    assert robust_max(values) == pytest.approx(0.1)
    assert robust_max(np.zeros((4, 4), np.float32)) == 1.0
    colours = FalseColour(0.1)(np.array([[0.0, 0.05, 0.1, 5.0]], np.float32))
    assert colours.shape == (1, 4, 3) and colours.dtype == np.uint8
    brightness = colours.astype(int).sum(axis=2)[0]
    assert brightness[0] < brightness[1] < brightness[2] == brightness[3]
