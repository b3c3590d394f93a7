"""Atomic file replacement: write a temporary file beside the target, then rename it over the target.

A reader never sees a half-written image, and an error (or a crash) leaves the old file, or no file, in place.
The temporary file lies in the same folder so that ``os.replace`` is a rename on one file system.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import EngineError, ImageWriteError


def _describe_os_error(error: OSError) -> str:
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied"
    if error.errno == errno.ENOSPC:
        return "no space left on the disk"
    if error.errno == errno.ENOENT:
        return "the folder does not exist"
    if error.errno == errno.EISDIR:
        return "a folder has this name"
    return error.strerror or str(error)


def atomic_write(path: Path, produce: Callable[[Path], None]) -> Path:
    """Call ``produce(temporary_path)`` to write the file, then move it onto ``path``.

    The temporary name keeps the target's extension, since some encoders pick the format from it. Any failure
    removes the temporary file and raises :class:`ImageWriteError` naming ``path``.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ImageWriteError(path, f"the folder {folder} does not exist")
    if path.is_dir():
        raise ImageWriteError(path, "a folder has this name")
    try:
        # The writer's process id is in the name, so a later save can recognise a partial file left by a killed one.
        handle, temporary_name = tempfile.mkstemp(
            prefix=f".{path.stem}.{os.getpid()}.", suffix=f".part{path.suffix}", dir=folder
        )
    except OSError as error:
        raise ImageWriteError(path, _describe_os_error(error)) from error
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        produce(temporary)
        if not temporary.exists() or temporary.stat().st_size == 0:
            raise ImageWriteError(path, "the encoder produced no data")
        _keep_permissions(path, temporary)
        os.replace(temporary, path)
        _remove_orphans(path, folder)
    except ImageWriteError:
        temporary.unlink(missing_ok=True)
        raise
    except EngineError as error:
        temporary.unlink(missing_ok=True)
        raise ImageWriteError(path, str(error)) from error
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ImageWriteError(path, _describe_os_error(error)) from error
    except MemoryError as error:
        temporary.unlink(missing_ok=True)
        raise ImageWriteError(path, "not enough memory to encode the image") from error
    except Exception as error:  # encoder failures (cv2.error, ValueError...) become one clear error
        temporary.unlink(missing_ok=True)
        raise ImageWriteError(path, f"encoding failed: {error}") from error
    except BaseException:  # KeyboardInterrupt and friends: clean up, then let them through
        temporary.unlink(missing_ok=True)
        raise
    return path


def _keep_permissions(path: Path, temporary: Path) -> None:
    # mkstemp creates 0600 files; give the new file the old file's mode, or the usual umask-based mode.
    try:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.chmod(temporary, mode)
    except OSError:
        pass


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else (or cannot tell): leave its file alone
    return True


def _remove_orphans(path: Path, folder: Path) -> None:
    """Delete partial files of ``path`` whose writer process no longer exists (killed mid-save).

    A process killed with SIGKILL cannot clean up; its hidden ``.<stem>.<pid>.<random>.part<ext>`` stays behind until
    the next successful save of the same file. Files of live processes (a concurrent save) are left alone.
    """
    prefix = f".{path.stem}."
    suffix = f".part{path.suffix}"
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(suffix)):
            continue
        parts = name[len(prefix) : len(name) - len(suffix)].split(".")
        # Exactly <pid>.<random> (mkstemp's random part has no dots): "photo.12.png"'s files do not match "photo".
        if len(parts) != 2 or not parts[0].isdigit():
            continue
        pid = int(parts[0])
        if pid == os.getpid() or _process_alive(pid):
            continue
        try:
            os.unlink(folder / name)
        except OSError:
            pass
