"""Guards against a Qt binding regression that kills the app after a few hundred signals.

PySide6 6.12.0 on Python 3.11 decrements the reference count of ``True`` on every ``Signal.emit()``; the
interpreter then aborts with "bool_dealloc". Every progress update is an emit, so this must stay fixed.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    fired = Signal(object)


def test_signal_emit_keeps_reference_counts(qtbot):
    emitter = _Emitter()
    emitter.fired.connect(lambda value: None)
    before_true, before_none = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(200):
        emitter.fired.emit(None)
    # Other threads may hold a few references at any moment; a leak of one per emit would show 200.
    assert abs(sys.getrefcount(True) - before_true) < 50
    assert abs(sys.getrefcount(None) - before_none) < 50
