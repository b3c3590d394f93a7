"""Task panels contributed by other parts of the app (ZSSR), listed explicitly.

A task panel is a QWidget with a ``title`` and ``make_job(image, token) -> Job[ImageResult]`` and, optionally,
``on_progress(progress)`` to update its own live display. It shows up in the model panel as an entry of its
task. A panel whose module cannot be imported (its feature is not installed) is simply left out.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtWidgets import QWidget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskPanelSpec:
    key: str
    task: str
    title: str
    description: str
    factory: Callable[[], QWidget]


#: (key, task, module, class name, title, description)
KNOWN_PANELS = (
    ("zssr", "super-resolution", "gui.zssr_panel", "ZssrPanel", "ZSSR (train on this image)",
     "Zero-shot super-resolution: trains a small network on the image itself, so it adapts to this image's "
     "own blur and noise. Takes from seconds to minutes; you can stop early and keep the current result."),
)


def available_task_panels() -> list[TaskPanelSpec]:
    found: list[TaskPanelSpec] = []
    for key, task, module_name, class_name, title, description in KNOWN_PANELS:
        try:
            module = importlib.import_module(module_name)
            cls = getattr(module, class_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                log.warning("task panel %s unavailable: %s", key, error)
            continue
        except Exception as error:  # a broken optional panel must not keep the app from starting
            log.warning("task panel %s unavailable: %s", key, error)
            continue
        found.append(TaskPanelSpec(key, task, str(getattr(cls, "title", title)) or title, description, cls))
    return found
