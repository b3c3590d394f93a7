"""Issue 46, item 9: words a photographer understands. The ZSSR panel shows preset, size, time limit and device;
the paper's terms ("Noise on LR sons", kernel, back-projection...) wait under Advanced, each explained in a tooltip,
and the model facts no longer say "Values HDR (log1p)"."""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QLabel, QWidget

from gui.zssr_panel import ZssrPanel

JARGON = ("LR sons", "log1p", "Kernel", "Crop", "Gradual", "Seed", "bfloat16", "back-projection")


def visible_texts(widget: QWidget) -> list[str]:
    texts = [label.text() for label in widget.findChildren(QLabel) if label.isVisibleTo(widget)]
    for child in widget.findChildren(QWidget):
        if child.isVisibleTo(widget) and hasattr(child, "text") and not isinstance(child, QLabel):
            texts.append(child.text())
    return texts


def test_zssr_basics_in_plain_words_and_the_rest_under_advanced(qtbot):
    panel = ZssrPanel()
    qtbot.addWidget(panel)
    panel.show()
    shown = " | ".join(visible_texts(panel))
    assert all(word not in shown for word in JARGON), shown
    for word in ("Preset", "Enlarge by", "Time limit", "Advanced"):
        assert word in shown
    panel.advanced_button.click()
    assert panel.advanced.isVisible()
    advanced = panel.advanced.layout()
    assert isinstance(advanced, QFormLayout)
    # Every advanced row says what it does, in a tooltip naming the paper's term where there is one.
    tips = []
    for row in range(advanced.rowCount()):
        label = advanced.itemAt(row, QFormLayout.ItemRole.LabelRole)
        field = advanced.itemAt(row, QFormLayout.ItemRole.FieldRole)
        widgets = [field.widget()] if field.widget() else [field.layout().itemAt(i).widget()
                                                           for i in range(field.layout().count())]
        widgets = [w for w in widgets if w is not None and not (isinstance(w, QLabel) and w.text() == "to")]
        assert widgets and all(w.toolTip() for w in widgets), row
        if label is not None and label.widget() is not None and label.widget().text():
            assert label.widget().toolTip()
        tips.append(widgets[0].toolTip())
    joined = " ".join(tips)
    assert "LR sons" in joined and "kernel" in joined and "Back-projection" in joined
    # The request is what it was: plain words changed labels, not meanings.
    panel.noise.setValue(0.0125)
    assert panel.request().noise_std == 0.0125
    # It still fits the model dock.
    assert panel.minimumSizeHint().width() <= 300


def test_model_facts_say_what_a_model_is_made_for(window):
    panel = window.model_panel
    for entry in window.registry.models():
        panel.select("model", entry.id)
        facts = panel.facts.text()
        assert "log1p" not in facts and "<b>Values</b>" not in facts
        assert "<b>Made for</b>" in facts
