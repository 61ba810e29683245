"""The data folder's disk: how full it is, and telling a full disk apart from other failures.

A full disk must never leave a job stuck or answer a bare 500. Uploads and live audio are refused before they
are written when free space is below ``[server] min_free_disk_mb`` (the room kept for the results and state of
the jobs already running); a write that meets a full disk anyway is recognised by :func:`is_full` and answered
with :data:`FULL` (HTTP 507), and the coordinator puts back what it could not store (see ``Coordinator.result``).
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

#: What a client is told when its audio meets a full disk (HTTP 507 Insufficient Storage).
FULL = "the server's disk is full"
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


def is_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is a write refused for want of space."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return True
        if isinstance(exc, sqlite3.Error) and (getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
                                               or "disk is full" in str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def free_mb(folder: Path) -> float:
    return shutil.disk_usage(folder).free / 2**20


def refusal(folder: Path, incoming_bytes: int, floor_mb: float) -> str | None:
    """Why ``incoming_bytes`` more may not be written under ``folder`` now (None: they may): writing them would
    leave less than ``floor_mb`` free."""
    free = free_mb(folder)
    if free - incoming_bytes / 2**20 >= floor_mb:
        return None
    return (f"{FULL}: it keeps {floor_mb:g} MB free for the jobs it is running and has {max(free, 0):.0f} MB "
            "left; try again once space is freed")
