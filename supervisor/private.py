"""State the supervisor writes is private: folders 0700 and files 0600, whatever the umask.

Environments are not state: they stay readable (envs/ keeps the default modes).
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import IO

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create PATH (and missing parents) as 0700 folders; an existing PATH is made 0700."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        # A concurrent process may have made it in the meantime.
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=DIR_MODE)
    if (path.stat().st_mode & 0o777) != DIR_MODE:
        path.chmod(DIR_MODE)
    return path


def private_fd(path: Path, flags: int) -> int:
    """Open PATH with FLAGS (O_CREAT added) as a 0600 file; an existing one is made 0600."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


_FLAGS = {
    "a": os.O_WRONLY | os.O_APPEND,
    "a+": os.O_RDWR | os.O_APPEND,
    "w": os.O_WRONLY | os.O_TRUNC,
}


def open_private_bytes(path: Path, mode: str = "a") -> IO[bytes]:
    """open(PATH, MODE + "b") for a private file; MODE is "a", "a+" or "w"."""
    return os.fdopen(private_fd(path, _FLAGS[mode]), mode + "b")


def open_private_text(path: Path, mode: str = "w") -> IO[str]:
    """open(PATH, MODE) for a private text file; MODE is "a", "a+" or "w"."""
    return os.fdopen(private_fd(path, _FLAGS[mode]), mode)


def write_private(path: Path, text: str) -> None:
    """Write TEXT to PATH, a private file, replacing it atomically (two threads of one
    process writing the same file each write their own temporary file)."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    with open_private_text(temp) as handle:
        handle.write(text)
    os.replace(temp, path)
