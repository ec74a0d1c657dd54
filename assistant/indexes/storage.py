"""The data directory's two hard conditions, full and read-only, as one clear line each.

Chroma's embedded engine opens its SQLite file for writing even to read, so a read-only index is opened
through a private copy in the temp folder (read commands only; `ingest` and `remove` refuse). Errors from
a full or read-only disk, whichever layer raises them, become a `StorageError` naming the folder."""

from __future__ import annotations

import atexit
import errno
import os
import shutil
import tempfile
from pathlib import Path

from assistant.core.errors import KildeError

_FULL = ("database or disk is full", "no space left on device", "disk quota exceeded")
_READ_ONLY = ("readonly database", "read-only file system", "attempt to write a readonly")
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class StorageError(KildeError):
    """The data directory is full or cannot be written."""


def writable(folder: Path) -> bool:
    """Can this process create files in `folder` (its nearest existing ancestor, if it does not exist)?"""
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        return False
    try:
        return not os.statvfs(probe).f_flag & os.ST_RDONLY
    except OSError:
        return True


def private_copy(folder: Path) -> Path:
    """A throw-away copy of a read-only Chroma folder that SQLite may open for writing; removed at exit."""
    target = Path(tempfile.mkdtemp(prefix="kilde-readonly-")) / folder.name
    try:
        shutil.copytree(folder, target)
    except OSError as exc:
        shutil.rmtree(target.parent, ignore_errors=True)
        raise StorageError(
            f"The index at {folder} is read-only and cannot be copied to the temp folder to be "
            f"read ({exc.strerror or exc}). Free space in {tempfile.gettempdir()} or set TMPDIR."
        ) from None
    for path in target.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)
    target.chmod(target.stat().st_mode | 0o700)
    atexit.register(shutil.rmtree, target.parent, True)
    return target


def disk_fault(exc: BaseException) -> str | None:
    """ "full" or "read-only" when `exc` says the disk is full or cannot be written, whichever layer raised it."""
    text = str(exc).lower()
    code = getattr(exc, "errno", None)
    if code in _FULL_ERRNOS or any(s in text for s in _FULL):
        return "full"
    if code in (errno.EROFS, errno.EACCES, errno.EPERM) or any(s in text for s in _READ_ONLY):
        return "read-only"
    return None


def as_storage_error(exc: BaseException, where: str) -> StorageError | None:
    """`exc` as one line naming the data directory, when it says the disk is full or read-only."""
    fault = disk_fault(exc)
    if fault == "full":
        return StorageError(
            f"The disk holding {where} is full; nothing was lost. Free some space and run the "
            "command again (an interrupted ingest completes on the next run)."
        )
    if fault == "read-only":
        return StorageError(
            f"{where} cannot be written (read-only or no permission). Read commands (stats, "
            "ask, articles, show, serve) work on it; to ingest or remove, point KILDE_DATA_DIR "
            "at a writable folder."
        )
    return None
