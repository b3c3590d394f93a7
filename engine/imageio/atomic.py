"""Atomic file replacement: write a temporary file beside the target, then rename it over the target.

A reader never sees a half-written image, and an error (or a crash) leaves the old file, or no file, in place.
The temporary file lies in the same folder so that ``os.replace`` is a rename on one file system.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time
from collections.abc import Callable, Iterator
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


def atomic_write(path: Path, produce: Callable[[Path], None], *, replace_existing: bool = True) -> Path:
    """Call ``produce(temporary_path)`` to write the file, then move it onto ``path``.

    The temporary name keeps the target's extension, since some encoders pick the format from it. Any failure
    removes the temporary file and raises :class:`ImageWriteError` naming ``path``. With
    ``replace_existing=False`` the file is published only if ``path`` still does not exist at that moment (a hard
    link, which fails when the name is taken), so that of several writers racing for one new name exactly one
    wins and the others get an error, never a silently replaced file.
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
        if replace_existing:
            os.replace(temporary, path)
        else:
            _publish_new(temporary, path)
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


def _publish_new(temporary: Path, path: Path) -> None:
    """Give ``temporary`` the name ``path`` only if no file has it (atomically), then drop the temporary name."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise ImageWriteError(path, "already exists (another run wrote it first; ask to overwrite to replace it)") \
            from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # A file system without hard links (FAT, some network shares): the claim (claim_output) still guards it.
        if path.exists():
            raise ImageWriteError(path, "already exists (ask to overwrite to replace it)") from None
        os.replace(temporary, path)
        return
    temporary.unlink(missing_ok=True)


def claim_path(path: Path) -> Path:
    """The hidden lock file that marks ``path`` as being produced by a running process."""
    return path.parent / f".{path.name}.claim"


@contextlib.contextmanager
def claim_output(path: Path, *, overwrite: bool = False) -> Iterator[None]:
    """Reserve a new output name for the duration of a long job, before the work starts.

    Without ``overwrite`` an existing file is refused at once, and a hidden ``.<name>.claim`` file (created with
    O_EXCL, holding the process id) makes every other process that wants the same new name fail at once with a
    clear error, instead of all of them working and replacing each other's results at the end. A claim left by a
    killed process (its process id no longer runs) is taken over. Pair it with ``write_image(...,
    overwrite=False)``, whose no-clobber publish settles any race the claim cannot see.
    """
    path = Path(path)
    if overwrite:
        yield
        return
    if path.exists():
        raise ImageWriteError(path, "already exists (use --overwrite to replace it)")
    lock = claim_path(path)
    for _ in range(3):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _claim_owner(lock)
            if owner is not None and owner != os.getpid() and _process_alive(owner):
                raise ImageWriteError(path, f"another run (process {owner}) is already writing this file") from None
            if owner == os.getpid():
                raise ImageWriteError(path, "this run already writes this file (two inputs give the same output)") \
                    from None
            lock.unlink(missing_ok=True)  # left by a killed process: take it over
            continue
        except OSError as error:
            raise ImageWriteError(path, _describe_os_error(error)) from error
        with os.fdopen(handle, "w") as stream:
            stream.write(str(os.getpid()))
        break
    else:
        raise ImageWriteError(path, "another run keeps claiming this file")
    try:
        yield
    finally:
        if _claim_owner(lock) == os.getpid():
            lock.unlink(missing_ok=True)


def _claim_owner(lock: Path) -> int | None:
    try:
        text = lock.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


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


#: A partial file this old is stale whatever its process id says (the id may have been reused by another process).
STALE_PART_SECONDS = 6 * 3600


def _remove_orphans(path: Path, folder: Path) -> None:
    """Delete partial files in ``folder`` left by killed saves: those whose writer process no longer exists, and
    any older than :data:`STALE_PART_SECONDS`.

    A process killed with SIGKILL cannot clean up; its hidden ``.<stem>.<pid>.<random>.part<ext>`` would otherwise
    stay behind. Every save sweeps its folder, whatever name it writes. Files of live processes (a concurrent save)
    are left alone unless stale.
    """
    try:
        names = os.listdir(folder)
    except OSError:
        return
    now = time.time()
    for name in names:
        if not name.startswith(".") or ".part" not in name:
            continue
        stem, dot, ext = name[1:].rpartition(".part")
        # <stem>.<pid>.<random> (mkstemp's random part has no dots), then ".part" and the extension (no dots).
        parts = stem.rsplit(".", 2)
        well_formed = dot and (not ext or ext.startswith(".")) and "." not in ext[1:]
        if not well_formed or len(parts) != 3 or not parts[1].isdigit() or not parts[2]:
            continue
        pid = int(parts[1])
        try:
            old = now - os.stat(folder / name).st_mtime > STALE_PART_SECONDS
        except OSError:
            continue
        if not old and (pid == os.getpid() or _process_alive(pid)):
            continue
        try:
            os.unlink(folder / name)
        except OSError:
            pass
