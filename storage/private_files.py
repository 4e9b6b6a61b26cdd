"""Files and directories only the server's own account may read: 0700 directories, 0600 files.

Set explicitly with ``chmod`` after creation, so the process umask (022 on most systems) does not
decide who can read the database, the blobs or the key material. Only what is created here is
changed: an existing parent such as ``/srv`` keeps its mode.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: str | os.PathLike[str]) -> Path:
    """``mkdir -p`` where every directory this call creates gets mode 0700."""
    path = Path(path)
    missing: list[Path] = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:  # created meanwhile by another process or thread
            continue
        os.chmod(d, DIR_MODE)
    return path


def create_private_file(path: str | os.PathLike[str], data: bytes | None = None) -> bool:
    """Create ``path`` with mode 0600 if it does not exist (with ``data``); True if this call created it.
    ``O_EXCL``: no moment where the file exists with a wider mode, no overwrite of an existing one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, FILE_MODE)
        if data:
            os.write(fd, data)
            os.fsync(fd)
    finally:
        os.close(fd)
    return True


def tighten(path: str | os.PathLike[str], mode: int = FILE_MODE) -> None:
    """Take group and other permissions away from an existing file or directory of ours."""
    try:
        current = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        return
    if current & 0o077:
        os.chmod(path, current & mode)
