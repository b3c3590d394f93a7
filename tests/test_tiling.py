import numpy as np
import pytest

from engine.errors import JobCancelled
from engine.jobs import CancelToken
from engine.tiling import axis_weights, pad_to_multiple, plan_axis, run_tiled


@pytest.mark.parametrize("length", [1, 37, 100, 257, 1000, 1031])
@pytest.mark.parametrize("tile,overlap", [(64, 4), (96, 16), (200, 8)])
@pytest.mark.parametrize("scale", [1, 2, 3])
def test_weights_are_a_partition_of_unity(length, tile, overlap, scale):
    spans = plan_axis(length, tile, overlap)
    total = np.zeros(length * scale, np.float64)
    for span in spans:
        total[span.start * scale : span.stop * scale] += axis_weights(span, scale)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    assert spans[0].start == 0 and spans[-1].stop == length


def test_tiles_are_no_longer_than_their_count_needs():
    """1920 px in tiles of at most 1024 with overlap 88 needs three tiles; each is 768 long, not 1024 (the
    model's work is what the tiles cover), and the weights still sum to one."""
    spans = plan_axis(1920, 1024, 88)
    assert len(spans) == 3 and {span.stop - span.start for span in spans} == {768}
    for length in (1080, 2160, 3840):
        spans = plan_axis(length, 1024, 88)
        fewest = -(-(length - 1024) // (1024 - 2 * 88 - 16)) + 1  # tiles of 1024 advancing by their exact part
        assert len(spans) == fewest and max(span.stop - span.start for span in spans) < 1024
        total = np.zeros(length)
        for span in spans:
            total[span.start : span.stop] += axis_weights(span, 1)
        np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_weights_vanish_where_a_tile_is_inexact():
    overlap = 8
    spans = plan_axis(500, 100, overlap)
    for index, span in enumerate(spans):
        weights = axis_weights(span, 1)
        if index > 0:
            assert np.all(weights[:overlap] == 0)
        if index + 1 < len(spans):
            assert np.all(weights[-overlap:] == 0)


def box_blur_radius(image: np.ndarray, radius: int) -> np.ndarray:
    """A model with receptive radius ``radius``: repeated 3x3 box blurs with zero padding."""
    out = image
    for _ in range(radius):
        padded = np.pad(out, ((1, 1), (1, 1), (0, 0)))
        out = sum(padded[dy : dy + out.shape[0], dx : dx + out.shape[1]] for dy in range(3) for dx in range(3)) / 9
    return out


@pytest.mark.parametrize("scale", [1, 2])
def test_tiled_equals_untiled(scale):
    rng = np.random.default_rng(1)
    image = rng.random((123, 157, 3)).astype(np.float32)

    def model(tile):
        out = box_blur_radius(tile["color"], 3)
        return np.repeat(np.repeat(out, scale, 0), scale, 1)

    whole = model({"color": image})
    job = run_tiled({"color": image}, model, scale=scale, tile=48, overlap=4, feather=8)
    steps = []
    while True:
        try:
            steps.append(next(job))
        except StopIteration as done:
            tiled = done.value
            break
    assert steps[-1][0] == steps[-1][1] > 4
    assert np.abs(tiled - whole).max() < 1e-4


def test_alignment_padding_is_cropped_away():
    image = np.random.default_rng(2).random((50, 61, 3)).astype(np.float32)
    seen = []

    def model(tile):
        seen.append(tile["color"].shape[:2])
        assert tile["color"].shape[0] % 8 == 0 and tile["color"].shape[1] % 8 == 0
        return tile["color"] * 2

    job = run_tiled({"color": image}, model, tile=0, alignment=8)
    with pytest.raises(StopIteration) as done:
        while True:
            next(job)
    np.testing.assert_allclose(done.value.value, image * 2, atol=1e-6)
    assert seen == [(56, 64)]
    padded, pad_h, pad_w = pad_to_multiple(image, 8)
    assert (pad_h, pad_w) == (6, 3) and padded.shape == (56, 64, 3)


def test_cancel_between_tiles():
    image = np.zeros((200, 200, 3), np.float32)
    token = CancelToken()
    job = run_tiled({"color": image}, lambda t: t["color"], tile=64, overlap=4, token=token)
    next(job)
    token.cancel()
    with pytest.raises(JobCancelled):
        next(job)


def test_tile_too_small_for_overlap_is_refused():
    with pytest.raises(ValueError):
        plan_axis(500, 20, 16)


def test_output_may_be_written_into_an_input_buffer():
    """Rows are moved into ``out`` only after the last tile that reads them: ``out`` may alias the input."""
    rng = np.random.default_rng(11)
    source = rng.random((157, 131, 3)).astype(np.float32)

    def blur(tiles):  # a 5 x 5 box filter: its receptive radius (2) is within the overlap
        tile = tiles["color"]
        padded = np.pad(tile, ((2, 2), (2, 2), (0, 0)), mode="edge")
        return sum(padded[y : y + tile.shape[0], x : x + tile.shape[1]] for y in range(5) for x in range(5)) / 25

    def run(out):
        inputs = {"color": source.copy() if out is None else out}
        generator = run_tiled(inputs, blur, tile=48, overlap=4, out=out)
        while True:
            try:
                next(generator)
            except StopIteration as finished:
                return finished.value

    separate = run(None)
    shared = source.copy()
    in_place = run(shared)
    assert in_place is shared
    np.testing.assert_array_equal(in_place, separate)


def test_output_buffer_of_the_wrong_shape_is_refused():
    generator = run_tiled({"color": np.zeros((8, 8, 3), np.float32)}, lambda t: t["color"], tile=0,
                          out=np.zeros((8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="out has shape"):
        next(generator)
