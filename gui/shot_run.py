"""Run the selected model over the open shot: where the frames go (a dialog the user confirms), the engine's
``restore_shot`` job on the window's job runner, progress over frames, and each finished frame shown at once.

Frames already restored at the output are skipped (the run resumes) unless the user asks to redo them; Cancel
stops between frames and keeps the finished ones. The input is never written to: an output that names the input's
files is refused before the run starts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from engine.api import describe_duration, describe_eta

if TYPE_CHECKING:
    from .model_panel import RunRequest
    from .shot_view import ShotView

_SEPARATORS = "._- "


def output_frame_path(pattern: str, frame: int) -> Path:
    """``out/shot_####.exr`` and 1004 -> ``out/shot_1004.exr`` (``%04d`` works too)."""
    from engine.api import Shot

    return Shot(str(pattern), ()).path(int(frame))


def _frame_token(name: str) -> tuple[int, int] | None:
    """(start, end) of the frame number's token (``####`` or ``%04d``) in a file name."""
    import re

    match = re.search(r"#+|%0?\d*d", name)
    return (match.start(), match.end()) if match else None


def default_output(shot) -> str:
    """Beside the input, never on it: ``renders/shot_####.exr`` -> ``renders/shot_restored/shot_####.exr``; a
    folder of bare numbers (``frames/####.png``) -> ``frames_restored/####.png`` beside that folder."""
    pattern = Path(shot.pattern)
    token = _frame_token(pattern.name)
    stem = pattern.name[: token[0]].rstrip(_SEPARATORS) if token else pattern.stem
    if stem:
        return str(pattern.parent / f"{stem}_restored" / pattern.name)
    folder = pattern.parent.resolve()
    return str(folder.parent / f"{folder.name}_restored" / pattern.name)


def resolve_output(shot, text: str) -> str:
    """The absolute output pattern for what the user typed (a pattern, or a folder: the frames keep their names);
    raises EngineError when it cannot take the shot (engine.shot.output_pattern: the one rule)."""
    from engine.api import shot_output_pattern

    return shot_output_pattern(shot, text.strip())


def check_output(shot, text: str) -> tuple[str | None, list[int]]:
    """(why ``text`` cannot take the shot's frames, or None; the frames already there)."""
    from engine.api import EngineError

    if not text.strip():
        return "Give the output: a folder, or a file name with #### where the frame number goes.", []
    try:
        pattern = resolve_output(shot, text)
    except EngineError as error:
        return str(error), []
    from .opening import imageio_module

    if not imageio_module().is_supported(Path(pattern.replace("#", "0"))):
        return f"{Path(pattern).suffix or 'That file type'} cannot be written; use .exr, .png, .tif\u2026", []
    inputs = {Path(shot.path(f)).resolve() for f in shot.frames}
    existing = []
    for frame in shot.frames:
        target = output_frame_path(pattern, frame)
        if target.resolve() in inputs:
            return "That is where the input frames are: the input is never overwritten. Choose another place.", []
        if target.is_file():
            existing.append(frame)
    return None, existing


class ShotOutputDialog(QDialog):
    """Where the restored frames go, what is there already (resumed or redone), confirmed before the run."""

    def __init__(self, shot, model_title: str, suggested: str, parent=None) -> None:
        super().__init__(parent)
        self.shot = shot
        self.setWindowTitle("Restore the shot")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        count = len(shot.frames)
        intro = QLabel(f"Restore all {count} frames of <b>{Path(shot.pattern).name}</b> "
                       f"({shot.first}\u2013{shot.last}) with <b>{model_title}</b>, frame by frame. "
                       "Cancel stops between frames and keeps the finished ones.")
        intro.setWordWrap(True)
        self.output_edit = QLineEdit(suggested)
        self.output_edit.setMinimumWidth(460)
        self.output_edit.setToolTip("A file name with #### where the frame number goes (or a folder: the frames "
                                    "keep their names); the folder is created")
        self.output_edit.textChanged.connect(self._check)
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.output_edit, 1)
        row.addWidget(browse)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.redo_box = QCheckBox()
        self.redo_box.toggled.connect(self._check)
        self.smooth_box = QCheckBox("Smooth over time (less flicker)")
        self.smooth_box.setChecked(True)
        self.smooth_box.setToolTip("Blend each frame with the previous result, moved along the render's motion pass "
                                   "(Blender's Vector), where the motion can be trusted: less flicker from frame to "
                                   "frame. Frames without a motion pass are left as restored; a temporal model "
                                   "already sees the previous frame and is not smoothed again.")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.run_button = self.buttons.addButton("Restore", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(QLabel("Write the frames to:"))
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.redo_box)
        layout.addWidget(self.smooth_box)
        layout.addWidget(self.buttons)
        self.existing: list[int] = []
        self._check()

    def pattern(self) -> str:
        """The output as an absolute pattern (what was typed when it cannot be one)."""
        try:
            return resolve_output(self.shot, self.output_edit.text())
        except Exception:
            return self.output_edit.text().strip()

    def overwrite(self) -> bool:
        return self.redo_box.isVisible() and self.redo_box.isChecked()

    def smoothing(self) -> float | None:
        """What ShotRestoreRequest.smoothing gets: None (the engine's default) when checked, else 0 (off)."""
        return None if self.smooth_box.isChecked() else 0.0

    def _browse(self) -> None:
        current = Path(self.pattern() or self.shot.pattern)
        folder = QFileDialog.getExistingDirectory(self, "Folder for the restored frames", str(current.parent))
        if folder:
            self.output_edit.setText(str(Path(folder) / current.name))

    def _check(self) -> None:
        problem, self.existing = check_output(self.shot, self.pattern())
        count = len(self.shot.frames)
        done = len(self.existing)
        self.redo_box.setVisible(problem is None and done > 0)
        self.redo_box.setText(f"Restore those {done} frames again (replaces them)")
        if problem is not None:
            self.status.setText(problem)
            self.status.setStyleSheet("color: #e06c5a;")
        elif done == count and not self.redo_box.isChecked():
            self.status.setText(f"All {count} frames are already restored there: nothing to do unless you "
                                "restore them again.")
            self.status.setStyleSheet("")
        elif done:
            self.status.setText(f"{done} of {count} frames are already restored there: they are kept and "
                                f"skipped, and the run resumes with the other {count - done}."
                                if not self.redo_box.isChecked() else
                                f"All {count} frames will be restored; the {done} already there are replaced.")
            self.status.setStyleSheet("")
        else:
            where = Path(self.pattern()).parent
            self.status.setText(f"New frames in {where}" + ("" if where.is_dir() else " (the folder is created)")
                                + ".")
            self.status.setStyleSheet("")
        self.run_button.setEnabled(problem is None and (done < count or self.redo_box.isChecked()))


class ShotRun:
    """One run of a model over the open shot; the window's RunController reports the job's signals to it."""

    def __init__(self, view: ShotView) -> None:
        self.view = view
        self.window = view.window
        self.dialog: ShotOutputDialog | None = None
        self._order: list[int] = []
        self._scanned = 0
        self._started = 0.0
        self._shown_first = False
        self._skipped_before = 0
        self.pattern: str | None = None
        self.last_summary = ""

    # -- before the run ------------------------------------------------------------------------------------
    def ask(self, request: RunRequest | None) -> None:
        """Run pressed with a shot open: check the request, then ask where the frames go (non-blocking)."""
        problem = self.refusal(request)
        if problem:
            self.window.show_error("Cannot restore the shot", problem)
            return
        shot = self.view.shot
        suggested = self.view.output_pattern or default_output(shot)
        self.dialog = ShotOutputDialog(shot, request.title, suggested, self.window)
        self.dialog.accepted.connect(lambda: self._confirmed(request))
        self.dialog.open()

    def _confirmed(self, request: RunRequest) -> None:
        dialog = self.dialog
        self.start(request, dialog.pattern(), dialog.overwrite(), dialog.smoothing())
        self.window.activateWindow()  # the frame keys and Esc (cancel) go to the window again
        self.window.viewer.setFocus()

    def refusal(self, request: RunRequest | None) -> str | None:
        if self.view.shot is None:
            return "No shot is open."
        if request is None or (request.entry is None and request.task_panel is None):
            return "Choose a model in the Model panel first."
        if request.task_panel is not None:
            return (f"{request.title} trains on one image at a time. Choose a model from the list to restore "
                    "the shot, or open one frame as an image for it.")
        if request.then is not None:
            return ("\u201cThen upscale\u201d is not available for shots yet: restore the shot first, then open "
                    "the restored shot and run the upscaler on it.")
        return None

    def start(self, request: RunRequest, pattern: str, overwrite: bool = False, smoothing: float | None = None) -> bool:
        """Start ``restore_shot`` into ``pattern`` (checked again here: never the input); ``smoothing`` as
        ShotRestoreRequest's (None: the engine's default)."""
        from engine.api import ShotRestoreRequest, restore_shot

        view, window = self.view, self.window
        shot = view.shot
        problem = self.refusal(request)
        existing: list[int] = []
        if problem is None:
            problem, existing = check_output(shot, pattern)
        if problem is not None:
            window.show_error("Cannot restore the shot", problem)
            return False
        if window.runner.is_running():
            return False
        pattern = resolve_output(shot, pattern)
        job_request = ShotRestoreRequest(shot=shot, output=pattern, model_id=request.entry.id,
                                         params=dict(request.params), tile=request.tile,
                                         device=window.settings.device, overwrite=overwrite,
                                         ensemble=request.ensemble, smoothing=smoothing)
        registry = window.registry
        self.pattern = pattern
        view.set_output(pattern)
        self._order = list(shot.frames)
        self._scanned = 0
        self._shown_first = False
        self._skipped_before = 0 if overwrite else len(existing)
        self._started = time.perf_counter()
        title = f"{request.title} on {Path(shot.pattern).name}"

        def factory(token):
            return restore_shot(job_request, token, registry=registry)

        window.runs.start(factory, title, request, handler=self)
        if self._skipped_before:
            window.flash(f"Resuming {title}: {self._skipped_before} of {len(shot.frames)} frames are already "
                         "restored and are skipped", 8000)
        return True

    # -- while it runs (called by the RunController) ------------------------------------------------------------
    def on_progress(self, progress) -> None:
        frame = (progress.metrics or {}).get("frame")
        if frame is not None and int(frame) in self._order:
            self._catch_up(self._order.index(int(frame)) + 1)
        eta = describe_eta(progress.eta_s)
        text = progress.message or progress.stage
        self.view.transport.setToolTip(f"{text}, {eta}" if eta else text)
        self.window.flash(f"Restoring the shot: {text}" + (f", {eta}" if eta else ""))

    def _catch_up(self, upto: int) -> None:
        """Mark the frames finished so far (the job goes in order); the shown frame's result appears at once."""
        view = self.view
        if view.shot is None:
            return
        indices = range(self._scanned, min(upto, len(self._order)))
        if not indices:
            return
        view.scan_outputs(indices)
        self._scanned = max(self._scanned, min(upto, len(self._order)) - 1)  # the current one may still be written
        if view.index in view.done and view.session_result_missing():
            view.show_result_now(select=not self._shown_first)
            self._shown_first = True

    def on_succeeded(self, result: Any, seconds: float) -> None:
        view, window = self.view, self.window
        view.scan_outputs()
        self._after_run()
        took = float(result.seconds or seconds)
        parts = [f"{result.restored} frame{'s' if result.restored != 1 else ''} restored"]
        if result.skipped:
            parts.append(f"{result.skipped} already done (skipped)")
        if result.failed:
            parts.append(f"{result.failed} failed or missing")
        took_text = describe_duration(took)
        self.last_summary = ", ".join(parts) + f" in {took_text} \u2192 {Path(result.output_pattern).parent}"
        window.model_panel.show_outcome(f"Done in {took_text}" if not result.failed
                                        else f"{result.failed} frame(s) failed", not result.failed)
        window.run_label.setText(f"Last run: {took:.1f} s")
        window.run_label.setToolTip("\n".join(result.notes))
        window.flash(self.last_summary, 10000)
        failures = [o for o in result.frames if o.message and o.state.value in ("failed", "missing")]
        if failures:
            window.show_error("Some frames were not restored",
                              f"{len(failures)} of {len(result.frames)} frames were not restored; the others are "
                              "kept. Run again to retry them.",
                              "\n".join(f"frame {o.frame}: {o.message}" for o in failures))
        if view.index in view.done:
            view.show_result_now(select=not self._shown_first)

    def on_failed(self, message: str, details: str) -> None:
        self.view.scan_outputs()
        self._after_run()
        kept = len(self.view.done)
        self.window.model_panel.show_outcome("Failed", False)
        self.window.show_error("Restoring the shot failed",
                               message + (f"\n\n{kept} restored frame(s) are kept; Run again resumes." if kept else ""),
                               details)

    def on_cancelled(self) -> None:
        self.view.scan_outputs()
        self._after_run()
        kept, count = len(self.view.done), self.view.count()
        self.last_summary = (f"Cancelled: {kept} of {count} frames are restored and kept; Run again resumes"
                             if kept else "Cancelled")
        self.window.model_panel.show_outcome(f"Cancelled \u00b7 {kept}/{count} kept", False)
        self.window.flash(self.last_summary, 10000)

    def _after_run(self) -> None:
        self.view.transport.setToolTip("")

