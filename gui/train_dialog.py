"""The "Train / fine-tune" dialog: train a model on the user's own images, watch its curves, get it registered.

The user picks a task, a recipe of that task (the architecture and degradations, from ``recipes/``), a base
model (from scratch, or fine-tune a model whose torch weights ``<id>.pt`` lie beside its ONNX file: every
model exported by this app has them), image folders and a time budget. The engine's ``train_job`` runs in a
:class:`gui.worker.JobRunner`; loss and validation PSNR are plotted live. "Finish now" stops early and still
exports the best weights; "Cancel" discards the run (its checkpoint stays for a later resume). When the job
succeeds the model is in the per-user models folder, the registry is refreshed, ``model_trained(id)`` is
emitted and the validation score is shown.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.api import TASK_LABELS
from gui.loss_plot import LossPlot
from gui.worker import JobRunner


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "model"


def recipe_labels(recipes) -> list[str]:
    """What the recipe list shows: each recipe's model name, ", fine-tuning" after a recipe written to fine-tune a
    trained model on your own images, and the file name where two would still read the same."""
    names = [(r.model.name or r.model.id) + (", fine-tuning" if r.train.for_fine_tuning else "") for r in recipes]
    return [f"{name} ({Path(str(r.source)).stem})" if names.count(name) > 1 else name
            for name, r in zip(names, recipes, strict=True)]


class TrainDialog(QDialog):
    """Train or fine-tune a model on the user's images; the result appears in the model picker."""

    model_trained = Signal(str)

    def __init__(self, parent: QWidget | None, registry, *, model_id: str | None = None,
                 image_path: Path | None = None) -> None:
        """``model_id`` / ``image_path``: the model picked and the image open in the main window. A model that can
        be fine-tuned becomes the starting point (its task and fine-tuning recipe with it), and for a render the
        image's folder is offered as the shot when it holds noisy frames beside their NAME_ref references."""
        super().__init__(parent)
        from engine.api import list_recipes

        self.setWindowTitle("Train / fine-tune a model")
        self.setMinimumWidth(620)
        self.registry = registry
        self.recipes = list_recipes()
        self.result = None
        self.runner = JobRunner(self)
        self.runner.progress.connect(self._on_progress)
        self.runner.succeeded.connect(self._on_succeeded)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        self.runner.finished.connect(self._on_finished)
        self._last_val_step = -1.0
        self._sized = False  # given its first size in showEvent

        self.task_box = QComboBox()
        tasks = sorted({r.model.task for r in self.recipes}, key=lambda t: list(TASK_LABELS).index(t))
        for task in tasks:
            self.task_box.addItem(TASK_LABELS.get(task, task), task)
        self.recipe_box = QComboBox()
        self.base_box = QComboBox()
        self.base_note = QLabel()
        self.base_note.setWordWrap(True)
        self.base_note.setStyleSheet("color: gray")
        self.folders = QListWidget()
        self.folders.setMaximumHeight(80)
        add_folder = QPushButton("Add folder…")
        remove_folder = QPushButton("Remove")
        add_folder.clicked.connect(self._add_folder)
        remove_folder.clicked.connect(self._remove_folder)
        self.data_note = QLabel()
        self.data_note.setWordWrap(True)
        self.data_note.setStyleSheet("color: gray")
        self.minutes = QSpinBox()
        self.minutes.setRange(1, 24 * 60)
        self.minutes.setValue(10)
        self.minutes.setSuffix(" min")
        self.name_edit = QLineEdit()

        folder_buttons = QHBoxLayout()
        folder_buttons.addWidget(add_folder)
        folder_buttons.addWidget(remove_folder)
        folder_buttons.addStretch(1)
        form = QFormLayout()
        form.addRow("Task", self.task_box)
        form.addRow("Recipe", self.recipe_box)
        form.addRow("Start from", self.base_box)
        form.addRow("", self.base_note)
        form.addRow("Image folders", self.folders)
        form.addRow("", folder_buttons)
        form.addRow("", self.data_note)
        form.addRow("Time budget", self.minutes)
        form.addRow("Model name", self.name_edit)

        self.loss_plot = LossPlot(self, log_y=True, y_label="loss")
        self.val_plot = LossPlot(self, log_y=False, y_label="validation PSNR (dB)", markers=True)
        plots = QHBoxLayout()
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.val_plot)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.status = QLabel("Choose images and press Train.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.train_button = QPushButton("Train")
        self.train_button.setDefault(True)
        self.stop_button = QPushButton("Finish now")
        self.stop_button.setToolTip("Stop training and register the best model so far")
        self.cancel_button = QPushButton("Cancel")
        self.close_button = QPushButton("Close")
        self.train_button.clicked.connect(self.start_training)
        self.stop_button.clicked.connect(self.runner.request_stop)
        self.cancel_button.clicked.connect(self.runner.cancel)
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.train_button, self.stop_button, self.cancel_button, self.close_button):
            buttons.addWidget(button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(plots, 1)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

        # Photos are what most users have at hand: start there when a photo recipe exists.
        photo = self.task_box.findData("photo-denoise")
        if photo >= 0:
            self.task_box.setCurrentIndex(photo)
        self.task_box.currentIndexChanged.connect(self._task_changed)
        self.base_box.currentIndexChanged.connect(self._base_changed)
        self.recipe_box.currentIndexChanged.connect(self._recipe_changed)
        self._task_changed()
        self._set_running(False)
        if not self.recipes:
            self.status.setText("No training recipes were found, so nothing can be trained.")
            self.train_button.setEnabled(False)
        self._suggest(model_id, image_path)

    def _suggest(self, model_id: str | None, image_path: Path | None) -> None:
        """Start from what the main window shows (see ``__init__``); anything that does not fit is left alone."""
        if not model_id:
            return
        try:
            task = self.registry.get(model_id).manifest.task
        except Exception:  # noqa: BLE001 - an unknown or vanished model: keep the defaults
            return
        row = self.task_box.findData(task)
        if row < 0:
            return  # no recipe trains this task
        self.task_box.setCurrentIndex(row)
        base = self.base_box.findData(model_id)
        if base > 0:
            self.base_box.setCurrentIndex(base)
        if task == "render-denoise" and image_path is not None:
            from engine.api import DataError, find_pairs

            folder = Path(image_path).resolve().parent
            try:
                pairs = find_pairs(folder)
            except (DataError, OSError):
                return  # no noisy/reference pairs beside this image: the user picks a shot folder
            self.add_folder(str(folder))
            text = (f"{folder.name}/ holds {len(pairs)} noisy frame(s) with references, from the image you have "
                    "open: press Train to fine-tune on them, or add other folders.")
            if len(pairs) == 1:
                text += " With one frame, validation scores the frame it trains on: add frames for a fair score."
            self.status.setText(text)

    # -- choices ---------------------------------------------------------------------------------------------
    def current_task(self) -> str | None:
        return self.task_box.currentData()

    def current_recipe(self):
        index = self.recipe_box.currentData()
        return self.recipes[index] if index is not None else None

    def _task_changed(self) -> None:
        task = self.current_task()
        self.recipe_box.blockSignals(True)
        self.recipe_box.clear()
        mine = [(index, recipe) for index, recipe in enumerate(self.recipes) if recipe.model.task == task]
        for index, label in zip((index for index, _ in mine), recipe_labels([r for _, r in mine]), strict=True):
            self.recipe_box.addItem(label, index)
        self.recipe_box.blockSignals(False)
        self.base_box.clear()
        self.base_box.addItem("From scratch", None)
        fine_tunable, frozen = 0, 0
        for entry in self.registry.models(task) if task else []:
            if entry.path is None:
                continue  # classical engines have no weights
            if entry.path.with_suffix(".pt").is_file():
                self.base_box.addItem(f"Fine-tune: {entry.manifest.display_name}", entry.id)
                fine_tunable += 1
            else:
                frozen += 1
        self.base_note.setText(
            f"{frozen} model(s) of this task ship without torch weights and can only be retrained from their recipe."
            if frozen
            else ""
        )
        self.base_note.setVisible(bool(frozen))
        if task == "render-denoise" and fine_tunable:
            # Per-scene fine-tuning is what a renderer's user wants here: a few high-sample frames of a shot
            # adapt the shipped denoiser to its look in minutes; training from scratch needs hundreds of scenes.
            self.base_box.setCurrentIndex(1)
            self.minutes.setValue(10)
        if task:
            self.name_edit.setText(f"My {TASK_LABELS.get(task, task).lower()} model")
        self._recipe_changed()

    def _base_changed(self) -> None:
        """Fine-tuning a model: preselect the recipe written for fine-tuning it, else the one that trained it
        (its data layout and loss)."""
        from engine.api import recipe_for_fine_tuning

        base = self.base_box.currentData()
        if not base:
            return
        try:
            made_by = str(self.registry.get(base).manifest.provenance.get("recipe", ""))
        except Exception:  # noqa: BLE001 - a model that vanished meanwhile: keep the user's recipe
            return
        chosen = recipe_for_fine_tuning(self.recipes, made_by)
        for row in range(self.recipe_box.count()):
            if chosen is not None and self.recipes[self.recipe_box.itemData(row)] is chosen:
                self.recipe_box.setCurrentIndex(row)
                return

    def _recipe_changed(self) -> None:
        recipe = self.current_recipe()
        if recipe is None:
            self.data_note.setText("")
            return
        if recipe.train.for_fine_tuning and self.base_box.currentData() is None:
            # a recipe written to fine-tune a model: start from that model, not from scratch
            row = self.base_box.findData(recipe.train.init)
            if row >= 0:
                self.base_box.blockSignals(True)
                self.base_box.setCurrentIndex(row)
                self.base_box.blockSignals(False)
        if recipe.model.task == "render-denoise":
            self.data_note.setText(
                "A folder of a shot's frames: each noisy frame as you render it (albedo and normal as EXR layers, "
                "or NAME_albedo.exr / NAME_normal.exr beside it) and the same frame rendered with many samples, "
                "named NAME_ref.exr. A few frames are enough to fine-tune; one is held out for validation."
            )
        elif recipe.data.kind == "paired":
            self.data_note.setText(
                "Give one folder holding noisy and clean sub-folders with matching file names (input/ + target/, "
                "noisy/ + clean/, train/ + train_cleaned/...), or one folder with each clean image beside its "
                "input named NAME_ref (or NAME_clean, NAME_gt). The last pairs are held out for validation."
            )
        else:
            what = "noise is added" if recipe.degradation.kind == "noise" else "they are downscaled"
            self.data_note.setText(
                f"Folders of clean images; {what} on the fly. Some of your images are held out for validation."
            )

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of training images")
        if folder:
            self.add_folder(folder)

    def add_folder(self, folder: str) -> None:
        existing = {self.folders.item(i).text() for i in range(self.folders.count())}
        if folder not in existing:
            self.folders.addItem(folder)
        recipe = self.current_recipe()
        if recipe is not None and (recipe.data.kind == "paired" or recipe.model.task == "render-denoise"):
            from engine.api import describe_pairs

            self.status.setText(describe_pairs(Path(folder)))  # what was found, or why nothing was

    def _remove_folder(self) -> None:
        for item in self.folders.selectedItems():
            self.folders.takeItem(self.folders.row(item))

    def folder_list(self) -> list[str]:
        return [self.folders.item(i).text() for i in range(self.folders.count())]

    # -- running ---------------------------------------------------------------------------------------------
    def build_job_factory(self):
        """The job to run for the current choices (raises ValueError with a message for the user)."""
        from engine.api import TrainOptions, fine_tuning_lr, train_job

        recipe = self.current_recipe()
        if recipe is None:
            raise ValueError("Choose a recipe.")
        folders = self.folder_list()
        if not folders:
            raise ValueError("Add at least one folder of training images.")
        missing = [f for f in folders if not Path(f).is_dir()]
        if missing:
            raise ValueError(f"Folder not found: {missing[0]}")
        name = self.name_edit.text().strip() or recipe.model.name or recipe.model.id
        model_id = f"user-{slug(name)}-{time.strftime('%Y%m%d-%H%M%S')}"
        base = self.base_box.currentData()
        if base:
            recipe = recipe.replace(train=replace(recipe.train, lr=fine_tuning_lr(recipe)))
        elif recipe.train.for_fine_tuning:
            raise ValueError(
                "This recipe fine-tunes a trained model for minutes; it cannot train one from scratch. "
                "Choose the model to fine-tune under Start from."
            )
        options = TrainOptions(
            minutes=float(self.minutes.value()),
            data=tuple(folders),
            model_id=model_id,
            model_name=name,
            init=base or "",  # "From scratch" means it, even for a recipe that names an init of its own
        )
        return lambda token: train_job(recipe, token, options)

    def start_training(self) -> None:
        try:
            factory = self.build_job_factory()
        except ValueError as error:
            QMessageBox.warning(self, "Cannot train", str(error))
            return
        self.loss_plot.clear()
        self.val_plot.clear()
        self._last_val_step = -1.0
        self.result = None
        self.progress_bar.setValue(0)
        self.status.setText("Preparing…")
        self._set_running(True)
        self.runner.start(factory)

    def _set_running(self, running: bool) -> None:
        for widget in (
            self.task_box,
            self.recipe_box,
            self.base_box,
            self.folders,
            self.minutes,
            self.name_edit,
            self.train_button,
            self.close_button,
        ):
            widget.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.cancel_button.setEnabled(running)

    def _on_progress(self, progress) -> None:
        metrics = progress.metrics
        if progress.fraction is not None:
            self.progress_bar.setValue(int(progress.fraction * 1000))
        if "loss" in metrics and "step" in metrics:
            self.loss_plot.add_point("train loss", metrics["step"], metrics["loss"])
        if "start_val_psnr" in metrics and not self.val_plot.series("validation")[0]:
            self.val_plot.add_point("validation", 0.0, metrics["start_val_psnr"])  # the starting model's score
        val_step = metrics.get("last_val_step")
        if val_step is not None and val_step != self._last_val_step:
            self._last_val_step = val_step
            self.val_plot.add_point("validation", val_step, metrics["last_val_psnr"])
        text = progress.message or progress.stage
        if progress.eta_s:
            text += f" — about {progress.eta_s / 60:.1f} min left"
        if "skipped" in metrics and metrics["skipped"]:
            text += f" — {int(metrics['skipped'])} bad batch(es) skipped"
        self.status.setText(text)

    def _on_succeeded(self, result) -> None:
        self.result = result
        self.progress_bar.setValue(1000)
        self.registry.refresh()
        exported = result.export
        score = (
            "no validation score" if result.best_val_psnr is None else f"validation PSNR {result.best_val_psnr:.2f} dB"
        )
        start = result.start_val_psnr
        if start is not None and result.best_val_psnr is not None:
            if result.best_step == 0:
                score += " — no step beat the starting model, so these are its weights unchanged"
            else:
                score += f", up {result.best_val_psnr - start:.2f} dB from the starting model's {start:.2f} dB"
        if exported is not None:
            blends = [e for e in self.registry.models(exported.manifest.task)
                      if e.source == "blend" and e.manifest.provenance.get("network") == exported.manifest.id]
            blend = (f" It is also offered blended with Intel's OIDN as “{blends[0].manifest.display_name}”, which "
                     "did better on the Cycles shots we measured." if blends else "")
            self.status.setText(
                f"“{exported.manifest.display_name}” is ready in the model list: {score} "
                f"({result.steps} steps, {result.seconds / 60:.1f} min on {result.device}).{blend}"
            )
            self.model_trained.emit(exported.manifest.id)
        else:
            self.status.setText(f"Training finished: {score}.")

    def _on_failed(self, message: str, details: str) -> None:
        self.status.setText(f"Training failed: {message}")

    def _on_cancelled(self) -> None:
        self.status.setText("Training cancelled; nothing was registered.")

    def _on_finished(self) -> None:
        self._set_running(False)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        """Open at the size the contents ask for, up to the screen: Qt's default caps a dialog at 2/3 of the
        screen, which on a 1280x720 display squeezed the data note under the folder buttons."""
        if not self._sized:
            self._sized = True
            hint, room = self.sizeHint(), self.screen().availableGeometry()
            self.resize(min(max(hint.width(), self.width()), room.width() - 40, 1100),
                        min(max(hint.height(), self.height()), room.height() - 60, 760))
        super().showEvent(event)

    def reject(self) -> None:
        if self.runner.is_running():
            self.runner.cancel()
            self.runner.wait(10.0)
        super().reject()
