"""Errors the engine raises on purpose. Each carries a message a user can read."""

from __future__ import annotations


class EngineError(Exception):
    """Base class: a problem with a clear, user-facing message (no traceback needed)."""


class ImageReadError(EngineError):
    """A file could not be read as an image (missing, corrupt, truncated, unsupported, too large)."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ImageWriteError(EngineError):
    """An image could not be written (bad target, unsupported combination, disk error)."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ModelError(EngineError):
    """A model is missing, its manifest is invalid, or its file fails the checksum."""


class JobCancelled(EngineError):
    """Raised inside a job when its cancel token was cancelled."""

    def __init__(self, message: str = "cancelled by the user") -> None:
        super().__init__(message)


class DeviceOutOfMemory(EngineError):
    """The CPU or GPU ran out of memory while running a model; a smaller tile may succeed (see engine.oom)."""
