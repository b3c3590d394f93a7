"""Recognising out-of-memory failures from every layer that can report one.

ONNX Runtime raises ``RuntimeException`` / ``Fail`` whose text says "Failed to allocate memory" (CPU arena) or
"CUDA failure 2: out of memory" / "CUBLAS_STATUS_ALLOC_FAILED" (CUDA); PyTorch raises
``torch.cuda.OutOfMemoryError``; OpenCV says "Insufficient memory"; numpy raises ``MemoryError``. None of them
shares a class, so the type name and the message are checked, without importing torch or onnxruntime.
"""

from __future__ import annotations

#: Lower-case fragments of the messages that only out-of-memory failures produce.
OOM_MARKERS = (
    "failed to allocate",
    "out of memory",
    "outofmemory",
    "bad_alloc",
    "alloc_failed",
    "cudaerrormemoryallocation",
    "insufficient memory",
    "cannot allocate memory",
    "smaller than requested bytes",  # ORT's BFC arena when a memory limit is set
)


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) reports that memory ran out."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError) or type(current).__name__ in ("OutOfMemoryError", "DeviceOutOfMemory"):
            return True
        text = str(current).lower()
        if any(marker in text for marker in OOM_MARKERS):
            return True
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return False
