"""Each location's output: a size-capped rotating file in the state folder, and the console."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from supervisor.private import open_private_bytes, private_dir
from supervisor.safepath import child_path

MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 3
COLOURS = (36, 32, 33, 35, 34, 91, 92, 93, 94, 95, 96)


def log_dir(state_dir: Path) -> Path:
    return state_dir / "logs"


def log_file(state_dir: Path, location: str) -> Path:
    """The log of LOCATION: inside the log folder whatever the name."""
    return child_path(log_dir(state_dir), location, ".log")


def use_colour(stream: TextIO) -> bool:
    """Colours only on a terminal, and never with NO_COLOR."""
    return stream.isatty() and "NO_COLOR" not in os.environ


class RotatingLog:
    """Appends lines to a file, rotating it to .1, .2, ... when it passes MAX_BYTES."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        private_dir(path.parent)
        self._handle = open_private_bytes(path)  # kept open while the location lives
        self._lock = threading.Lock()

    def write(self, line: bytes) -> None:
        with self._lock:
            self._handle.write(line if line.endswith(b"\n") else line + b"\n")
            self._handle.flush()
            if self._handle.tell() >= self.max_bytes:
                self._rotate()

    def _rotate(self) -> None:
        self._handle.close()
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._handle = open_private_bytes(self.path)

    def close(self) -> None:
        with self._lock:
            self._handle.close()


class Console:
    """Writes location lines to the `up` console, each prefixed by its location's name."""

    def __init__(self, stream: TextIO | None = None, width: int = 12) -> None:
        self.stream = stream or sys.stdout
        self.colour = use_colour(self.stream)
        # Live progress (a build's elapsed time) is for a person at a terminal, not a pipe.
        self.is_terminal = self.stream.isatty()
        self.width = width
        self._colours: dict[str, int] = {}
        self._lock = threading.Lock()

    def line(self, location: str, text: str) -> None:
        prefix = f"{location:<{self.width}} |"
        if self.colour:
            code = self._colours.setdefault(location, COLOURS[len(self._colours) % len(COLOURS)])
            prefix = f"\033[{code}m{prefix}\033[0m"
        with self._lock:
            self.stream.write(f"{prefix} {text.rstrip()}\n")
            self.stream.flush()

    def event(self, text: str) -> None:
        """A line of the supervisor's own."""
        self.line("supervisor", text)


def tail(path: Path, lines: int) -> list[str]:
    """Return the last LINES lines of a location's log, across its rotated files."""
    files = [path.with_name(f"{path.name}.{i}") for i in range(BACKUPS, 0, -1)] + [path]
    collected: list[str] = []
    for file in files:
        if file.exists():
            collected.extend(file.read_text(errors="replace").splitlines())
    return collected[-lines:] if lines > 0 else []


def follow(path: Path, poll: float = 0.2) -> Iterator[str]:
    """Yield lines appended to PATH from now on, following rotations, until interrupted."""
    handle = open(path, errors="replace") if path.exists() else None  # noqa: SIM115
    if handle:
        handle.seek(0, os.SEEK_END)
    inode = path.stat().st_ino if handle else None
    partial = ""
    while True:
        if handle is not None:
            chunk = handle.read()
            if chunk:
                partial += chunk
                *complete, partial = partial.split("\n")
                yield from complete
                continue
        try:
            current = path.stat().st_ino
        except FileNotFoundError:
            current = None
        if current is not None and current != inode:
            if handle:
                handle.close()
            handle = open(path, errors="replace")  # noqa: SIM115
            inode = current
            continue
        time.sleep(poll)
