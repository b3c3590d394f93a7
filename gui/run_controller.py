"""Starts and ends the window's jobs: one model run on the open image, or the batch queue, one file at a time.

The model panel hands over a frozen :class:`~gui.model_panel.RunRequest`; the controller turns it into an engine
job (:meth:`RunController.job_factory`), runs it on the :class:`~gui.worker.JobRunner`'s thread, throttles the
live previews and routes progress, results, failures and cancellations to the window (its ``host``), which owns
what is shown. Nothing else in the GUI starts or cancels a job.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer

from engine.api import CancelToken, Image, ImageResult, Progress, describe_eta

from .batch import BatchQueue
from .model_panel import RunRequest
from .worker import JobRunner

if TYPE_CHECKING:
    from .main_window import MainWindow


class RunController(QObject):
    def __init__(self, host: MainWindow) -> None:
        super().__init__(host)
        self.host = host
        self.runner = JobRunner(self)
        self.batch: BatchQueue | None = None
        #: Run was pressed while the photo's noise level was being measured: it goes once the level is known.
        self.run_when_measured = False
        self._request: RunRequest | None = None
        #: A job with its own outcome handling (a shot's run, gui/shot_run.py): told of progress and the outcome
        #: through on_progress / on_succeeded(result, seconds) / on_failed / on_cancelled.
        self.handler: Any = None
        self._job_started = 0.0
        self._job_title = ""
        self._pending_preview: Image | None = None
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(250)
        self._preview_timer.timeout.connect(self._show_pending_preview)
        self.runner.progress.connect(self._on_progress)
        self.runner.succeeded.connect(self._on_succeeded)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        self.runner.finished.connect(self._on_finished)

    def is_running(self) -> bool:
        return self.runner.is_running()

    # -- one run ----------------------------------------------------------------------------------------------
    def run(self, request: RunRequest | None, image: Image | None) -> None:
        """Run ``request`` on ``image`` (nothing when either is missing or a job is running)."""
        if image is None or request is None or self.runner.is_running():
            return
        if request.noise_level_pending:
            # Run pressed within a second of opening a photo: go once its noise level is measured, not with
            # the default level.
            self.run_when_measured = True
            self.host.flash("Measuring the image's noise level\u2026")
            return
        self.run_when_measured = False
        factory, title = self.job_factory(request)
        if factory is None:
            return
        # A task panel's make_job may touch its widgets, so it is called here, in the GUI thread.
        self.start(lambda token: factory(image, token), title, request, build_here=request.task_panel is not None)

    def job_factory(self, request: RunRequest, measure_each: bool = False):
        """(make_job(image, token), title) for ``request``, or (None, "").

        ``measure_each``: a noise level that is the app's measurement (not the user's) is measured again on each
        image the job is made for (the queue's photos each get their own, as on the command line)."""
        if request.task_panel is not None:
            return request.task_panel.make_job, request.title
        entry = request.entry
        if entry is None:
            return None, ""
        params, tile, ensemble = dict(request.params), request.tile, request.ensemble
        device = self.host.settings.device
        # The panel's level is then each image's fallback (an image too small to measure, or an HDR one).
        measure = measure_each and request.noise_level_measured

        then = request.then

        def make(image: Image, token: CancelToken):
            from engine.api import ChainStep, chain_job, restore_job, with_estimated_noise_level

            values, _level = with_estimated_noise_level(image, entry.manifest, params, replace=measure)
            if then is not None:  # "Then upscale with": both models as one job (the upscaler's defaults)
                return chain_job(image, [ChainStep(entry, values), ChainStep(then)], tile=tile, device=device,
                                 ensemble=ensemble, token=token)
            return restore_job(image, entry, values, tile=tile, device=device, ensemble=ensemble, token=token)

        return make, request.title

    def start(self, factory, title: str, request: RunRequest | None = None, build_here: bool = False,
              handler: Any = None) -> None:
        self.handler = handler
        self._job_title = title
        self._job_started = time.perf_counter()
        self._request = request
        panel = request.task_panel if request is not None else None
        if panel is not None and hasattr(panel, "set_stop_callback"):
            panel.set_stop_callback(self.show_kept_now)  # the panel's own "Stop and keep result" button
        try:
            self.runner.start(factory, build_here=build_here)
        except Exception as error:  # a panel that cannot build its job (bad settings) says why
            self.handler = None
            self.host.show_error(f"{title} cannot start", str(error))
            return
        self.host.model_panel.set_running(True)
        self.host.flash(f"Running {title}\u2026")
        self.host.update_actions()

    def noise_level_settled(self) -> None:
        """The opened photo's noise level is known: a Run that waited for it goes now."""
        if self.run_when_measured:
            self.run_when_measured = False
            self.run(self.host.model_panel.request(), self.host.session.original)

    def forget_held_run(self) -> None:
        """A new image was opened: a Run held for the previous image's noise level does not carry over."""
        self.run_when_measured = False

    def cancel(self) -> None:
        if self.runner.is_running():
            if self.batch is not None:
                self.batch.stop = True
            self.runner.cancel()
            self.host.flash("Cancelling\u2026")

    def request_stop(self) -> None:
        """"Stop and keep result": the job finishes early; what it has so far is shown at once."""
        if not self.runner.is_running() or self.batch is not None:
            return
        self.runner.request_stop()
        self.show_kept_now()

    def show_kept_now(self) -> None:
        """Show the newest preview as the kept result while the job finishes it off (ZSSR's ensemble and
        back-projection can take many seconds)."""
        self._preview_timer.stop()
        preview, self._pending_preview = self._pending_preview, None
        if preview is not None:
            self.host.show_preview(preview)
        self.host.show_kept_preview()

    # -- the job's signals ------------------------------------------------------------------------------------
    def _task_panel(self):
        return self._request.task_panel if self._request is not None else None

    def _on_progress(self, progress: Progress) -> None:
        self.host.model_panel.show_progress(progress)
        panel = self._task_panel()
        if panel is not None and hasattr(panel, "on_progress"):
            try:
                panel.on_progress(progress)
            except Exception as error:  # a panel's display bug must not stop the job's reporting
                self.host.flash(f"Panel display error: {error}", 5000)
        if self.handler is not None:
            self.handler.on_progress(progress)
            return
        eta = describe_eta(progress.eta_s)
        self.host.flash(f"{self._job_title}: {progress.message or progress.stage}" + (f" \u2014 {eta}" if eta else ""))
        if isinstance(progress.preview, Image) and self.batch is None:
            self._pending_preview = progress.preview
            # Previews arrive up to 20 times a second; showing 4 a second keeps the window fluid.
            if not self._preview_timer.isActive():
                self._preview_timer.start()

    def _show_pending_preview(self) -> None:
        preview, self._pending_preview = self._pending_preview, None
        if preview is None or not self.runner.is_running():
            return
        self.host.show_preview(preview)

    def _on_succeeded(self, result: Any) -> None:
        seconds = time.perf_counter() - self._job_started
        if self.handler is not None:
            self.handler.on_succeeded(result, seconds)
            return
        if self.batch is not None:
            self._batch_item_done(result)
            return
        if not isinstance(result, ImageResult):
            self.host.show_error("Unexpected result", f"The job returned {type(result).__name__}, not an image.")
            return
        self.host.show_result(result, result.seconds or seconds)

    def _on_failed(self, message: str, details: str) -> None:
        if self.handler is not None:
            self.handler.on_failed(message, details)
            return
        if self.batch is not None:
            self._batch_item_failed(message)
            return
        self.drop_preview()
        self.host.model_panel.show_outcome("Failed", False)
        self.host.flash(f"{self._job_title} failed", 6000)
        self.host.show_error(f"{self._job_title or 'The job'} failed", message, details)

    def _on_cancelled(self) -> None:
        if self.handler is not None:
            self.handler.on_cancelled()
            return
        if self.batch is not None:
            self._batch_item_failed("cancelled", status="cancelled")
            return
        self.drop_preview()
        self.host.model_panel.show_outcome("Cancelled", False)
        self.host.flash("Cancelled", 4000)

    def _on_finished(self) -> None:
        panel = self._task_panel()
        if panel is not None and hasattr(panel, "job_finished"):
            panel.job_finished()
        if self.batch is not None and self.batch.has_more():
            QTimer.singleShot(0, self._batch_next)
            return
        if self.batch is not None:
            self._batch_end()
        self.handler = None
        self.host.model_panel.set_running(False)
        self.host.update_actions()

    def drop_preview(self) -> None:
        self._pending_preview = None
        self._preview_timer.stop()
        self.host.drop_preview()

    # -- the batch queue ----------------------------------------------------------------------------------------
    def process_queue(self, paths: list[str], request: RunRequest | None, out_folder: Path) -> bool:
        """Run ``request``'s model on every file of ``paths``, saving ``<name>_<model><ext>`` into ``out_folder``."""
        if self.runner.is_running() or not paths:
            return False
        if request is not None and request.task_panel is not None:
            self.host.show_error("Choose a model", "The queue runs a model from the list on every file; "
                                 "ZSSR trains on one image at a time, so run it on the open image instead.")
            return False
        factory, title = self.job_factory(request, measure_each=True) if request is not None else (None, "")
        if factory is None:
            self.host.show_error("No model selected", "Choose a model in the Model panel first.")
            return False
        suffix = request.entry.id + (f"_then_{request.then.id}" if request.then is not None else "")
        self.batch = BatchQueue.of(list(paths), factory=factory, title=title, out=Path(out_folder), suffix=suffix)
        self._request = request
        for path in self.batch.todo:
            self.host.queue_panel.set_status(path, "waiting")
        self.host.model_panel.set_running(True)
        self._batch_next()
        return True

    def _batch_next(self) -> None:
        batch = self.batch
        path = batch.next()
        self.host.queue_panel.set_status(path, "running")
        factory, target = batch.factory, batch.target_for(path)

        def job(token: CancelToken):
            from engine.api import read_image, read_page, write_image, write_pages

            image = read_image(path)
            pages = int(image.meta.extra.get("pages", 1))
            if pages > 1:  # every page of a multi-page scan or animation, into one file like the input
                del image
                restored = []
                for index in range(pages):
                    result = yield from factory(read_page(path, index), token)
                    restored.append(result.image)
                return str(write_pages(target, restored))
            result = yield from factory(image, token)
            written = write_image(target, result.image)
            return str(written)

        self._job_title = f"{batch.title} ({Path(path).name})"
        self._job_started = time.perf_counter()
        self.runner.start(job)
        self.host.flash(f"Queue: {Path(path).name}\u2026")

    def _batch_item_done(self, written: Any) -> None:
        from engine.api import ItemState

        self.batch.finish_current(ItemState.DONE)
        self.host.queue_panel.set_status(self.batch.current, "done", f"saved {written}")

    def _batch_item_failed(self, message: str, status: str = "failed") -> None:
        from engine.api import ItemState

        self.batch.finish_current(ItemState(status), message)
        self.host.queue_panel.set_status(self.batch.current, status, message)

    def _batch_end(self) -> None:
        batch, self.batch = self.batch, None
        self.host.model_panel.show_outcome(f"Queue: {batch.done} done", batch.failed == 0)
        self.host.flash(batch.summary(), 10000)
