"""The model panel hands the run controller one frozen request; the controller starts and ends jobs from it; the
batch queue is a typed value."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gui.batch import BatchQueue
from gui.model_panel import RunRequest
from tests.gui.conftest import open_and_wait
from tests.gui.test_main_window import WAIT_MS, write_png


@pytest.fixture
def photo(tmp_path):
    return write_png(tmp_path / "photo.png", size=48)


def test_the_panel_emits_a_frozen_request_that_later_edits_do_not_change(qtbot, window, photo):
    open_and_wait(qtbot, window, photo)
    panel = window.model_panel
    assert panel.select("model", "nlm")
    panel.tile_box.setValue(256)
    with qtbot.waitSignal(panel.runRequested, timeout=WAIT_MS) as emitted:
        panel.run_button.click()
    request = emitted.args[0]
    assert isinstance(request, RunRequest) and request.entry.id == "nlm" and request.task_panel is None
    assert request.tile == 256 and request.ensemble == panel.ensemble()
    assert request.title == request.entry.manifest.display_name
    assert dict(request.params) == panel.params()
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.tile = 512
    with pytest.raises(TypeError):
        request.params["h"] = 1.0  # a read-only view of the values at Run time
    panel.tile_box.setValue(512)
    assert request.tile == 256 and panel.request().tile == 512
    qtbot.waitUntil(lambda: not window.runner.is_running() and bool(window.session.results), timeout=WAIT_MS)
    assert window.session.results[-1].model_id == "nlm"


def test_a_task_panel_request_names_the_panel_and_no_model(qtbot, window):
    panel = window.model_panel
    if not panel.select("panel", "zssr"):
        pytest.skip("ZSSR needs torch")
    request = panel.request()
    assert request.entry is None and request.task_panel is panel.current_task_panel()
    factory, title = window.runs.job_factory(request)
    assert factory == request.task_panel.make_job and title == request.title


def test_the_run_controller_builds_a_restore_job_from_the_request_alone(qtbot, window, photo):
    open_and_wait(qtbot, window, photo)
    assert window.model_panel.select("model", "bicubic-x2")
    request = window.model_panel.request()
    window.model_panel.select("model", "nlm")  # the selection moves on; the request does not
    factory, title = window.runs.job_factory(request)
    assert title == request.entry.manifest.display_name
    from engine.jobs import CancelToken, run_job

    result = run_job(factory(window.session.original, CancelToken()))
    assert result.model_id == "bicubic-x2" and result.image.width == 2 * window.session.original.width


def test_nothing_selected_is_no_request_and_runs_nothing(qtbot, window, photo):
    open_and_wait(qtbot, window, photo)
    window.model_panel.tree.setCurrentItem(None)
    assert window.model_panel.request() is None
    window.runs.run(None, window.session.original)
    assert not window.runner.is_running()


def test_the_batch_queue_is_typed():
    """The window's queue is made of the engine's BatchItems (one batch module for the window and the CLI)."""
    from engine.batch import BatchItem, ItemState

    queue = BatchQueue.of(["/in/a.png", "/in/b.tif", "/in/c.exr"], factory=lambda image, token: None, title="NLM",
                          out=Path("/out"), suffix="nlm")
    assert all(isinstance(item, BatchItem) and item.state is ItemState.PENDING for item in queue.items)
    assert [item.target for item in queue.items] == [Path("/out/a_nlm.png"), Path("/out/b_nlm.tif"),
                                                     Path("/out/c_nlm.exr")]
    assert queue.has_more() and queue.next() == "/in/a.png" and queue.current == "/in/a.png"
    assert queue.items[0].state is ItemState.RUNNING and queue.items[0].attempts == 1
    queue.finish_current(ItemState.DONE)
    queue.next()
    queue.finish_current(ItemState.FAILED, "cannot read")
    assert queue.items[1].error == "cannot read" and queue.items[1].seconds >= 0
    assert (queue.done, queue.failed, queue.todo) == (1, 1, ["/in/c.exr"])
    assert queue.summary() == "Queue finished: 1 saved to /out, 1 failed (hover over them for the reason)"
    queue.next()
    queue.finish_current(ItemState.CANCELLED, "cancelled")
    assert queue.items[2].finished and queue.failed == 1  # cancelled is not counted as a failure
    queue.stop = True
    assert not queue.has_more()
