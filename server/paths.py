"""Paths built from anything that came from outside stay inside their folder, provably.

Every file the server reads, writes or deletes on a client's say-so goes through :func:`inside`: the path is
resolved (``..``, ``.``, symbolic links) and must then lie strictly below the folder, or :class:`OutsideFolder` is
raised before anything touches the disk.
"""

from __future__ import annotations

from pathlib import Path


class OutsideFolder(ValueError):
    """A path would leave its folder (or be the folder itself)."""


def inside(folder: Path, *parts: str) -> Path:
    """``folder / parts...``, resolved, guaranteed to be strictly inside ``folder`` (resolved too)."""
    base = folder.resolve()
    path = base.joinpath(*parts).resolve()
    if path == base or base not in path.parents:
        raise OutsideFolder(f"{'/'.join(parts)!r} is not inside {folder}")
    return path
