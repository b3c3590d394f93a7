"""Tools > Render Passes: which pass of a multi-layer render the models use as albedo, normal and depth.

Shows every role the loader found (engine/imageio/aov.py's table: albedo, normal, depth, diffuse / specular split,
motion vectors, alpha) with the pass it took and why (``camera -> world space``, ``background set to 0``). The
three model inputs can be given to another pass of the file, or to none, and another pass (a light group, the
diffuse pass) can be the colour that is restored; :meth:`RenderPassesDialog.image` is the
image with that choice (engine/imageio/exr.assign_roles). The passes written back to an EXR never change.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QVBoxLayout,
)

from engine.api import MODEL_ROLES, ROLES, Image, describe_roles

NONE_TEXT = "(none)"
BEAUTY_TEXT = "(beauty)"


def colour_choices(image: Image) -> list[str]:
    """The file's passes with three channels or more that could be restored instead of the beauty."""
    layout = image.meta.extra.get("exr_layout")
    keys = getattr(layout, "layer_keys", set())
    return sorted(name for name, layer in image.layers.items() if name in keys and layer.shape[2] >= 3)


def pass_choices(image: Image, role: str) -> list[str]:
    """The file's passes that can take ``role``: the table's candidates first, then every other pass that has
    enough channels (three for albedo and normal)."""
    roles = dict(image.meta.extra.get("aov_roles", {}))
    entry = roles.get(role, {})
    preferred = [entry["layer"]] if entry.get("layer") else []
    preferred += list(entry.get("alternatives", []))
    minimum = 1 if role == "depth" else 3
    others = sorted(name for name, layer in image.layers.items()
                    if name not in MODEL_ROLES and layer.shape[2] >= minimum and name not in preferred)
    sidecar = [entry["layer"]] if entry.get("sidecar") else []  # a file beside the render: kept as it is
    return sidecar + [name for name in preferred if name in image.layers] + others


class RenderPassesDialog(QDialog):
    """The roles of an image's render passes, with the model inputs editable."""

    def __init__(self, image: Image, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Render Passes")
        self._image = image
        roles = dict(image.meta.extra.get("aov_roles", {}))
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Passes the models use. Written files keep every pass unchanged."))
        grid = QGridLayout()
        self.colour_combo = QComboBox()
        self.colour_combo.addItem(BEAUTY_TEXT)
        self.colour_combo.addItems(colour_choices(image))
        self.colour_combo.setToolTip("The colour that is restored; the beauty is written back unchanged if another "
                                     "pass is chosen")
        grid.addWidget(QLabel("Colour"), 0, 0)
        grid.addWidget(self.colour_combo, 0, 1)
        self.combos: dict[str, QComboBox] = {}
        for row, role in enumerate(MODEL_ROLES, start=1):
            grid.addWidget(QLabel(role.capitalize()), row, 0)
            combo = QComboBox()
            combo.addItem(NONE_TEXT)
            combo.addItems(pass_choices(image, role))
            current = roles.get(role, {}).get("layer")
            combo.setCurrentText(current if current else NONE_TEXT)
            combo.setToolTip(roles.get(role, {}).get("note", ""))
            self.combos[role] = combo
            grid.addWidget(combo, row, 1)
        layout.addLayout(grid)
        found = [line for line in describe_roles(roles) if line.split()[0] not in MODEL_ROLES]
        if found:
            layout.addWidget(QLabel("Also found:\n" + "\n".join(found)))
        notes = [f"{role}: {roles[role]['note']}" for role in MODEL_ROLES if roles.get(role, {}).get("note")]
        if notes:
            label = QLabel("\n".join(notes))
            label.setWordWrap(True)
            layout.addWidget(label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def choices(self) -> dict[str, str | None]:
        """{role: pass} for the roles whose pass the user changed (None: no such input)."""
        roles = dict(self._image.meta.extra.get("aov_roles", {}))
        changed: dict[str, str | None] = {}
        for role, combo in self.combos.items():
            chosen = None if combo.currentText() == NONE_TEXT else combo.currentText()
            if chosen != roles.get(role, {}).get("layer"):
                changed[role] = chosen
        return changed

    def colour(self) -> str | None:
        """The pass chosen as the colour to restore, or None for the beauty."""
        text = self.colour_combo.currentText()
        return None if text == BEAUTY_TEXT else text

    def image(self) -> Image:
        """The image with the chosen colour and passes as model inputs (the same image when nothing changed)."""
        from engine.api import assign_roles, choose_colour

        image = choose_colour(self._image, self.colour()) if self.colour() else self._image
        choices = self.choices()
        return assign_roles(image, choices) if choices else image


__all__ = ["ROLES", "RenderPassesDialog", "colour_choices", "pass_choices"]
